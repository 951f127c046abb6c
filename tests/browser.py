"""Browser-test harness: a Jupyter frontend on loopback against the emulator, driven by Playwright in Debian's Chromium.

Shared by the browser tests (``tests/test_browser_*.py``); nothing here is a test. Playwright
drives the system Chromium (``/usr/bin/chromium``, or ``$QWEN_NB_CHROMIUM``), so no browser is
downloaded; tests skip with the reason when Chromium, Playwright or the frontend is missing.
Screenshots go under ``tests/artifacts/`` (git-ignored; kept by CI as artifacts).

    pytestmark = browser_skip()
    with jupyter_server("jupyterlab", root, emulator_url) as base: ...
    page = open_notebook(browser, url, width=1400)
    run_all(page); choose(page, "Model", "qwen-plus"); set_theme(page, "dark")
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

CHROMIUM = os.environ.get("QWEN_NB_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
TOKEN = "qwen-nb-e2e"
# flags for a root, offline, headless Chromium
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]

FRONTENDS = {
    # frontend: (server module, URL path prefix of a notebook)
    "jupyterlab": ("jupyterlab", "lab/tree/"),
    "notebook7": ("notebook", "notebooks/"),
}


def missing_requirements() -> list[str]:
    """What a browser test needs and this machine lacks (empty when everything is there)."""
    return [
        what
        for what, ok in (
            (f"Chromium at {CHROMIUM}", shutil.which(CHROMIUM) is not None),
            ("the playwright package", importlib.util.find_spec("playwright") is not None),
            ("JupyterLab", importlib.util.find_spec("jupyterlab") is not None),
        )
        if not ok
    ]


def browser_skip() -> Any:
    """A ``pytestmark`` skipping the module when something a browser test needs is missing."""
    missing = missing_requirements()
    return pytest.mark.skipif(bool(missing), reason=f"browser test needs {', '.join(missing)}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(path: Path, *sources: str) -> Path:
    """A notebook at ``path`` with one code cell per source."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@contextlib.contextmanager
def jupyter_server(frontend: str, root: Path, emulator_url: str, *, timeout: float = 150) -> Iterator[str]:
    """A JupyterLab or Notebook 7 server on loopback serving ``root``; yields a base URL that takes
    a notebook path (``base + "name.ipynb"``). Kernels talk to the emulator, with no key in their
    environment and a private config dir and ledger."""
    module, prefix = FRONTENDS[frontend]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    env = {k: v for k, v in os.environ.items() if not (k == "DASHSCOPE_API_KEY" or k.startswith("QWEN_NB_"))}
    settings = root / "lab-settings"
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')  # no news toast over the screenshots
    env.update(QWEN_NB_EMULATOR=emulator_url, QWEN_NB_LEDGER=str(root / "usage.sqlite"),
               JUPYTER_CONFIG_DIR=str(root / "jupyter-config"), JUPYTERLAB_SETTINGS_DIR=str(settings))
    port = free_port()
    log_path = root / f"{frontend}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--no-browser", "--allow-root", "--expose-app-in-browser", "--ip=127.0.0.1",
         f"--port={port}",
         f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{module} did not start:\n" + log_path.read_text()[-3000:]) from None
                time.sleep(0.3)
        yield f"{base}/{prefix}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def notebook_url(base: str, name: str) -> str:
    return f"{base}{name}?token={TOKEN}"


def launch(playwright: Any) -> Any:
    """Headless system Chromium."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def open_notebook(browser: Any, url: str, *, width: int = 1400, height: int = 1100) -> Any:
    """A page showing the notebook at ``url``, its kernel idle."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_function(
        "() => document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') === 'idle'",
        timeout=90_000,
    )
    return page


def run_all(page: Any, wait_for: str, name: str = "notebook") -> None:
    """Run the notebook's cells (Shift+Enter from the first) until ``wait_for`` (a selector) shows.

    The kernel may still be connecting on the first try: retried, then reported.
    """
    target = page.locator(wait_for).first
    for _attempt in range(3):
        page.click(".jp-Cell .jp-InputArea-editor")
        page.keyboard.press("Shift+Enter")
        try:
            target.wait_for(timeout=20_000)
            return
        except Exception:  # noqa: BLE001 - retried, then reported by the last wait below
            shot(page, f"{name}-waiting")
    target.wait_for(timeout=20_000)


def shot(page: Any, name: str, *, full_page: bool = True, path: Path | None = None, **kw: Any) -> Path:
    """A screenshot under tests/artifacts/ (or at ``path``)."""
    ARTIFACTS.mkdir(exist_ok=True)
    out = path or ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(out), full_page=full_page, **kw)
    return out


def choose(page: Any, label: str, contains: str) -> str:
    """Pick the option of the dropdown called ``label`` whose text contains ``contains``.

    A list may reload in the background (the model list when the profile changes): wait for
    the option, select it, and select again if a reload replaced the choice.
    """
    select = page.locator(f".widget-dropdown:has(label:text-is('{label}')) select").first
    options: list[str] = []
    for _attempt in range(20):
        options = select.locator("option").all_inner_texts()
        choice = next((o for o in options if contains in o), None)
        if choice is not None:
            try:
                select.select_option(label=choice, timeout=2_000)
            except Exception:  # noqa: BLE001 - the list reloaded between reading and choosing: read it again
                page.wait_for_timeout(250)
                continue
            page.wait_for_timeout(400)
            selected = select.evaluate("s => s.options[s.selectedIndex] && s.options[s.selectedIndex].text")
            if selected and contains in selected:
                return selected
        page.wait_for_timeout(250)
    raise AssertionError(f"no option containing {contains!r} stayed selected in {label}: {options}")


def set_theme(page: Any, theme: str) -> None:
    """Switch the frontend to JupyterLab's "light" or "dark" theme (through its command registry)."""
    name = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}[theme]
    page.evaluate(
        """async (name) => {
            const app = window.jupyterapp;  // the servers run with --expose-app-in-browser
            if (app) { await app.commands.execute('apputils:change-theme', {theme: name}); return; }
            throw new Error('no application object to change the theme with');
        }""",
        name,
    )
    page.wait_for_function(
        "(light) => document.body.dataset.jpThemeLight === light", arg=str(theme == "light").lower(), timeout=15_000
    )
    page.wait_for_timeout(300)


# --- measurements made in the page ----------------------------------------------------------------

#: JS: every element under ``root`` whose content overflows its box, or whose box leaves ``root``'s
OVERFLOW_JS = """(root) => {
  const out = [];
  const rb = root.getBoundingClientRect();
  for (const el of root.querySelectorAll('*')) {
    const cs = getComputedStyle(el);
    if (cs.display === 'none' || cs.visibility === 'hidden') continue;
    if (el.closest('details:not([open]) > :not(summary)')) continue;
    if (el.closest('.noUi-base')) continue;  // the slider's own handle parts overhang by design
    const b = el.getBoundingClientRect();
    if (b.width === 0 && b.height === 0) continue;
    const tag = el.tagName.toLowerCase();
    const scrolls = ['auto', 'scroll'].includes(cs.overflowX);
    const name = tag + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '')
      + ' "' + (el.innerText || el.value || '').slice(0, 40).replace(/\\s+/g, ' ') + '"';
    if (!scrolls && tag !== 'select' && tag !== 'textarea' && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0)
      out.push(`${name}: content ${el.scrollWidth}px > box ${el.clientWidth}px`);
    if (b.left < rb.left - 1 || b.right > rb.right + 1)
      out.push(`${name}: box ${Math.round(b.left)}..${Math.round(b.right)} outside `
               + `${Math.round(rb.left)}..${Math.round(rb.right)}`);
  }
  return out;
}"""

#: JS: the colour of ``el``'s text and of the first opaque background behind it, as [r, g, b, a] lists
COLORS_JS = """(el) => {
  const parse = (c) => {
    const ctx = document.createElement('canvas').getContext('2d');
    ctx.fillStyle = '#000'; ctx.fillStyle = c; ctx.fillRect(0, 0, 1, 1);
    const d = ctx.getImageData(0, 0, 1, 1).data; return [d[0], d[1], d[2], d[3] / 255];
  };
  const alpha = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return 1;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean); return p.length > 3 ? parseFloat(p[3]) : 1;
  };
  const fg = parse(getComputedStyle(el).color);
  fg[3] = fg[3] * parseFloat(getComputedStyle(el).opacity || '1');
  let node = el, bg = [255, 255, 255, 1];
  while (node && node.nodeType === 1) {
    const c = getComputedStyle(node).backgroundColor;
    if (c && c !== 'transparent' && alpha(c) > 0.99) { bg = parse(c); break; }
    node = node.parentElement;
  }
  return {fg, bg};
}"""


def _luminance(rgb: list[float]) -> float:
    def ch(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (ch(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(page: Any, locator: Any) -> float:
    """WCAG contrast ratio of an element's text against the background behind it (computed colours)."""
    colors = locator.evaluate(COLORS_JS)
    fg, bg = colors["fg"], colors["bg"]
    a = fg[3]
    mixed = [fg[i] * a + bg[i] * (1 - a) for i in range(3)]  # a translucent text colour over its background
    hi, lo = sorted((_luminance(mixed), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def overflows(locator: Any) -> list[str]:
    """Elements under ``locator`` whose content overflows their box or whose box leaves it."""
    return list(locator.evaluate(OVERFLOW_JS))
