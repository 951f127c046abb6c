"""End to end: the Playground in JupyterLab 4 and Notebook 7, driven in headless Chromium against the emulator.

Runs when Debian's Chromium (/usr/bin/chromium), Playwright, JupyterLab and Notebook are installed
(CI installs them); skipped with the reason otherwise. Playwright drives the system Chromium, so
no browser is downloaded. A screenshot is saved under tests/artifacts/.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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

missing = [
    what
    for what, ok in (
        (f"Chromium at {CHROMIUM}", shutil.which(CHROMIUM) is not None),
        ("the playwright package", importlib.util.find_spec("playwright") is not None),
        ("JupyterLab", importlib.util.find_spec("jupyterlab") is not None),
    )
    if not ok
]
pytestmark = pytest.mark.skipif(bool(missing), reason=f"browser test needs {', '.join(missing)}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FRONTENDS = {
    # frontend: (server module, URL path of the notebook)
    "jupyterlab": ("jupyterlab", "lab/tree/playground.ipynb"),
    "notebook7": ("notebook", "notebooks/playground.ipynb"),
}


@pytest.fixture(params=list(FRONTENDS))
def lab(request, emulator, tmp_path):
    """A Jupyter frontend on loopback serving one notebook that shows a Playground; kernels use the emulator."""
    module, path = FRONTENDS[request.param]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import qwen_nb as q\npg = q.Playground()\npg")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "playground.ipynb")
    env = {k: v for k, v in os.environ.items() if not (k == "DASHSCOPE_API_KEY" or k.startswith("QWEN_NB_"))}
    env.update(QWEN_NB_EMULATOR=emulator.url, QWEN_NB_LEDGER=str(tmp_path / "usage.sqlite"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"))
    port = _free_port()
    log = open(tmp_path / "lab.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={tmp_path}", "--ServerApp.open_browser=False"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log_text = (tmp_path / "lab.log").read_text()[-3000:]
                    raise RuntimeError(f"{module} did not start:\n" + log_text) from None
                time.sleep(0.3)
        yield request.param, f"{base}/{path}?token={TOKEN}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _choose(page, label: str, contains: str) -> str:
    """Pick the option of the dropdown called ``label`` whose text contains ``contains``.

    The model list reloads in the background when the profile changes, so wait for the option,
    select it, and select again if a reload replaced the choice.
    """
    select = page.locator(f".widget-dropdown:has(label:text-is('{label}')) select").first
    for _attempt in range(20):
        options = select.locator("option").all_inner_texts()
        choice = next((o for o in options if contains in o), None)
        if choice is not None:
            select.select_option(label=choice)
            page.wait_for_timeout(400)
            selected = select.evaluate("s => s.options[s.selectedIndex] && s.options[s.selectedIndex].text")
            if selected and contains in selected:
                return selected
        page.wait_for_timeout(250)
    raise AssertionError(f"no option containing {contains!r} stayed selected in {label}: {options}")


def test_playground_streams_an_answer_and_shows_guidance(lab):
    from playwright.sync_api import expect, sync_playwright

    frontend, url = lab

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        try:
            page.goto(url)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            page.wait_for_function(
                "() => document.querySelector('.jp-Notebook-ExecutionIndicator')"
                "?.getAttribute('data-status') === 'idle'",
                timeout=90_000,
            )
            send = page.locator("button.jupyter-button:has-text('Send')")
            for _attempt in range(3):  # the kernel may still be connecting on the first try
                page.click(".jp-Cell .jp-InputArea-editor")
                page.keyboard.press("Shift+Enter")
                try:
                    send.wait_for(timeout=20_000)
                    break
                except Exception:  # noqa: BLE001 - retried, then reported by the last wait below
                    page.screenshot(path=str(ARTIFACTS / f"{frontend}-playground-waiting.png"), full_page=True)
            send.wait_for(timeout=20_000)

            # a default-workspace profile and a model it may call
            _choose(page, "Profile", "default")
            _choose(page, "Model", "qwen-plus")
            page.fill("textarea[placeholder^='Ask Qwen']", "Who are you?")
            send.click()
            expect(page.locator(".jp-OutputArea-output:has-text('I am Qwen')").first).to_be_visible(timeout=30_000)
            usage = page.locator(".widget-html:has-text(' total')").first
            expect(usage).to_be_visible(timeout=30_000)
            assert "qwen-plus" in usage.inner_text()
            page.screenshot(path=str(ARTIFACTS / f"{frontend}-playground-answer.png"), full_page=True)

            # a sub-workspace calling a model it was not granted: the guidance, not a traceback
            _choose(page, "Profile", "team-a")
            assert "not granted" in _choose(page, "Model", "qwen-max").replace("\xa0", " ")
            page.fill("textarea[placeholder^='Ask Qwen']", "Who are you?")
            send.click()
            guidance = page.locator(".widget-html:has-text('How to fix')").first
            expect(guidance).to_be_visible(timeout=30_000)
            text = guidance.inner_text()
            assert "qwen-max" in text and "team-a" in text
            assert "Traceback" not in page.content()
            page.screenshot(path=str(ARTIFACTS / f"{frontend}-playground-access-denied.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / f"{frontend}-playground-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
