"""Tutorial notebooks as jupytext pairs: sync the ``.py`` text twin to its ``.ipynb`` and record outputs.

A *pair* is ``NAME.py`` (jupytext ``py:percent``, whose header names ``formats: ipynb,py:percent``)
plus ``NAME.ipynb`` in the same folder. The ``.py`` file is the one to edit and review (a plain
text diff); the ``.ipynb`` carries the recorded outputs a reader sees on GitHub. In JupyterLab
with jupytext installed, saving either file updates both.

``qwen-nb notebooks record [NOTEBOOK...]`` rewrites each ``.ipynb`` from its ``.py`` and executes
it with nbclient against a fresh local emulator, with no key in the environment (the outputs
must be the emulator's deterministic ones), then replaces per-run identifiers (loopback ports,
request ids, memory addresses) with the nbval sanitize placeholders, so a re-record only
changes what really changed. It refuses to save a notebook holding anything key-shaped.
``qwen-nb notebooks check [NOTEBOOK...]`` says whether every pair is in sync (exit 1 if not).
Without arguments both work on every pair in ``notebooks/`` (or ``--dir``).

jupytext and nbclient are development dependencies (``pip install -e '.[dev]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qwen_nb.errors import InputError

KERNEL = "python3"
CELL_TIMEOUT = 120
FORMATS = "ipynb,py:percent"
#: set in the kernels by ``record(..., solutions=True)`` (and by the key-setup tests): exercise check
#: cells then grade the shipped solutions instead of saying "not attempted yet"
SOLUTIONS_VAR = "QWEN_NB_TUTORIAL_SOLUTIONS"


def _sanitize_rules() -> list[tuple[re.Pattern[str], str]]:
    """The rules nbval compares outputs with (``qwen_nb/data/nbval_sanitize.cfg``): recorded outputs get the same
    placeholders, so a saved notebook holds no port, id or time of the run that recorded it."""
    text = (Path(__file__).resolve().parent / "data" / "nbval_sanitize.cfg").read_text(encoding="utf-8")
    rules, pattern = [], None
    for line in text.splitlines():
        if line.startswith("regex:"):
            pattern = re.compile(line[len("regex:"):].strip())
        elif line.startswith("replace:") and pattern is not None:
            rules.append((pattern, line[len("replace:"):].strip()))
            pattern = None
    return rules


STABLE_OUTPUT = _sanitize_rules()
_HEADER = re.compile(r"^#\s*jupytext:\s*$.*?^#\s*formats:\s*(\S+)", re.MULTILINE | re.DOTALL)


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"Recording notebooks needs {module}, which is not installed.",
                         fix="pip install -e '.[dev]' (or: pip install jupytext nbclient ipykernel)") from None


def is_pair_source(path: Path) -> bool:
    """Is ``path`` the ``.py`` twin of a notebook (a jupytext header pairing it with ``ipynb``)?"""
    if path.suffix != ".py" or not path.is_file():
        return False
    head = path.read_text(encoding="utf-8", errors="replace")[:2000]
    m = _HEADER.search(head)
    return bool(m and "ipynb" in m.group(1).split(",") and any(f.startswith("py") for f in m.group(1).split(",")))


def pairs(folder: str | os.PathLike[str] = "notebooks", only: list[str] | None = None) -> list[Path]:
    """The ``.py`` twins of the notebooks in ``folder``, by name; ``only`` keeps the names/paths given.

    An item of ``only`` may be a path to either file of a pair, or the start of a notebook's name
    (``04`` for ``04_permissions_and_errors``).
    """
    root = Path(folder)
    found = sorted(p for p in root.glob("*.py") if is_pair_source(p))
    if not only:
        return found
    picked: list[Path] = []
    for item in only:
        p = Path(item)
        if p.suffix in (".py", ".ipynb") and p.with_suffix(".py").is_file():
            cand = [p.with_suffix(".py")]
        else:
            cand = [f for f in found if f.stem.startswith(item)]
        if not cand or not all(is_pair_source(c) for c in cand):
            names = ", ".join(f.stem for f in found) or "none"
            raise InputError(f"No notebook pair matches {item!r} in {root}.",
                             fix=f"Give a name (or its start) of a pair: {names}.")
        picked += [c for c in cand if c not in picked]
    return picked


def read_pair(py: Path) -> Any:
    """The notebook the ``.py`` twin describes (no outputs), with stable cell ids and kernelspec."""
    jupytext = _need("jupytext")
    nb = jupytext.read(py, fmt="py:percent")
    prefix = py.stem.split("_", 1)[0]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"nb{prefix}-{i:02d}"
        if cell.cell_type == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["jupytext"] = {"formats": FORMATS}
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def cell_sources(nb: Any) -> list[tuple[str, str, list[str]]]:
    """What a pair must agree on: each cell's type, source and tags."""
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def out_of_sync(py: Path) -> str | None:
    """Why ``py`` and its ``.ipynb`` differ (None when they hold the same cells)."""
    nbformat = _need("nbformat")
    ipynb = py.with_suffix(".ipynb")
    if not ipynb.exists():
        return f"{ipynb.name} is missing"
    want = cell_sources(read_pair(py))
    have = cell_sources(nbformat.read(ipynb, as_version=4))
    if want == have:
        return None
    for i, (w, h) in enumerate(zip(want, have, strict=False)):
        if w != h:
            return f"cell {i} differs ({h[0]} in {ipynb.name}, {w[0]} in {py.name})"
    return f"{len(have)} cells in {ipynb.name}, {len(want)} in {py.name}"


def stabilize(nb: Any) -> None:
    """Replace per-run identifiers in outputs with the nbval placeholders; drop per-run metadata."""

    def fix(value: Any) -> Any:
        if isinstance(value, str):
            for pattern, repl in STABLE_OUTPUT:
                value = pattern.sub(repl, value)
            return value
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = fix(out["text"])
            if "data" in out:
                for mime, value in list(out["data"].items()):
                    if mime.startswith("text/") or mime == "application/json":
                        out["data"][mime] = fix(value)
            if "traceback" in out:
                out["traceback"] = fix(out["traceback"])
    nb.metadata.pop("widgets", None)


_KEY_VAR = re.compile(r"^(DASHSCOPE_API_KEY(_COMMAND)?|QWEN_NB_\w+_API_KEY(_COMMAND)?|QWEN_NB_PROFILES)$")


@contextlib.contextmanager
def keyless_environment(folder: Path, extra: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
    """The kernels' environment: this one without key variables, with an empty user config and a private ledger.

    Refuses (``InputError``) when a key is still found the way a kernel started in ``folder``
    looks for one (a ``.env`` on the way up, a secret store).
    """
    from qwen_nb._profiles import load_profiles
    from qwen_nb._settings import Settings

    with tempfile.TemporaryDirectory(prefix="qwen-nb-record-") as tmp:
        env = {k: v for k, v in Settings(use_dotenv=False, use_config=False).env.items()
               if not (_KEY_VAR.match(k) or k in ("QWEN_NB_EMULATOR", "DASHSCOPE_BASE_URL", "DASHSCOPE_WORKSPACE"))}
        config = Path(tmp) / "config.toml"
        config.write_text("", encoding="utf-8")
        env["QWEN_NB_CONFIG"] = str(config)
        env["QWEN_NB_LEDGER"] = str(Path(tmp) / "usage.sqlite")
        env.update(extra or {})
        dotenv = next((d / ".env" for d in (folder.resolve(), *folder.resolve().parents) if (d / ".env").is_file()),
                      None)
        found = load_profiles(env=env, dotenv_path=dotenv, use_dotenv=dotenv is not None)
        if found:
            raise InputError(
                f"A Model Studio key is configured for notebooks in {folder} ({', '.join(found)}), "
                "e.g. in a .env file: recorded outputs must come from the emulator.",
                fix="Move the .env away (or clear the secret store entry) while recording.")
        yield env


def execute(nb: Any, folder: Path, timeout: int = CELL_TIMEOUT, env: dict[str, str] | None = None) -> Any:
    """Run ``nb`` top to bottom in a fresh ``python3`` kernel started in ``folder`` with environment ``env``."""
    nbclient = _need("nbclient")
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL, timeout=timeout, resources={"metadata": {"path": str(folder)}},
        record_timing=False, store_widget_state=False, coalesce_streams=True,
    )
    client.execute(**({"env": env} if env is not None else {}))
    nb.metadata["kernelspec"]["name"] = KERNEL
    return nb


def check_keys(path: Path) -> None:
    """Refuse a notebook holding anything key-shaped (emulator demo keys included)."""
    from qwen_nb.notebooks import scan_notebook

    findings = scan_notebook(path, allow_demo_keys=False)
    if findings:
        raise InputError(f"{path}: key-like strings found, not saved: " + "; ".join(str(f) for f in findings),
                         fix="Print keys masked (profile.masked_key), never in full; then record again.")


def _execute_pair(py: Path, folder: Path, env: dict[str, str], emulator: Any) -> Any:
    """Run one pair; a pair with a cassette folder beside it (``NAME.cassettes/``) runs through the recording
    proxy, the emulator standing in for the service, and its cassette is written anew."""
    from qwen_nb.recorder import RecordingProxy, cassette_dir, profile_routes, record_env

    target = py.with_suffix(".ipynb")
    cassettes = cassette_dir(target)
    if not cassettes.is_dir():
        return execute(read_pair(py), folder, env=env)
    keys = {"DASHSCOPE_API_KEY": emulator.key()}
    upstreams, routes = profile_routes(upstream=f"{emulator.url}/ap-southeast-1", env=keys)
    command = f"jupyter nbconvert --to notebook --execute --inplace {target.name}"
    with RecordingProxy(cassettes, upstreams, routes, command=command) as proxy:
        run_env = {k: v for k, v in env.items() if k != "QWEN_NB_EMULATOR"}
        run_env.update(keys, **record_env(proxy.url, routes), QWEN_NB_LEDGER=":memory:")
        return execute(read_pair(py), folder, env=run_env)


def record(paths: list[Path], *, solutions: bool = False, log: Any = print) -> float:
    """Sync each pair's ``.ipynb`` from its ``.py`` and record its outputs against one fresh emulator.

    A pair with a cassette folder (``NAME.cassettes/``) is recorded through the recording proxy
    instead, its cassette written anew, so that ``pytest --nbval --qwen-replay`` replays it.

    Returns the seconds taken. ``solutions=True`` lets exercise check cells grade the shipped
    solutions (for trying them out; the saved notebooks are recorded without it).
    """
    nbformat = _need("nbformat")
    _need("jupytext")
    _need("nbclient")
    if not paths:
        raise InputError("No notebook pair to record.",
                         fix="Pairs are NN_name.py (jupytext py:percent, formats: ipynb,py:percent) + NN_name.ipynb.")
    from qwen_nb.emulator import Emulator

    total = time.perf_counter()
    folders = {p.parent.resolve() for p in paths}
    for folder in sorted(folders):
        group = [p for p in paths if p.parent.resolve() == folder]
        extra = {SOLUTIONS_VAR: "1"} if solutions else {}
        with keyless_environment(folder, extra) as env:
            emulator = Emulator().start()
            env["QWEN_NB_EMULATOR"] = emulator.url
            try:
                for py in group:
                    t0 = time.perf_counter()
                    # each notebook starts with an empty usage ledger, as it does under nbval
                    own = dict(env, QWEN_NB_LEDGER=str(Path(env["QWEN_NB_LEDGER"]).with_name(f"{py.stem}.sqlite")))
                    nb = _execute_pair(py, folder, own, emulator)
                    stabilize(nb)
                    nbformat.validate(nb)
                    target = py.with_suffix(".ipynb")
                    tmp = target.with_suffix(".ipynb.tmp")
                    nbformat.write(nb, tmp)
                    try:
                        check_keys(tmp)
                    except InputError:
                        tmp.unlink()
                        raise
                    tmp.replace(target)
                    log(f"{target}: {len(nb.cells)} cells, {time.perf_counter() - t0:.1f} s")
            finally:
                emulator.stop()
    return time.perf_counter() - total


def cli_main(argv: list[str]) -> int:
    """``qwen-nb notebooks record|check [NOTEBOOK...]``."""
    parser = argparse.ArgumentParser(prog="qwen-nb notebooks",
                                     description="Tutorial notebooks kept as jupytext pairs (NAME.py + NAME.ipynb).")
    sub = parser.add_subparsers(dest="action", required=True)
    rec = sub.add_parser("record", help="sync .py -> .ipynb and record outputs against a fresh local emulator")
    chk = sub.add_parser("check", help="exit 1 if a pair's .py and .ipynb hold different cells")
    for action in (rec, chk):
        action.add_argument("notebooks", nargs="*", help="names (or their start: 04) or paths; default: all")
        action.add_argument("--dir", default="notebooks", help="folder holding the pairs (default: notebooks)")
    rec.add_argument("--solutions", action="store_true",
                     help=f"exercise checks grade the shipped solutions ({SOLUTIONS_VAR}=1); for trying them out")
    args = parser.parse_args(argv)
    try:
        chosen = pairs(args.dir, args.notebooks)
        if not chosen:
            print(f"qwen-nb notebooks: no pair in {args.dir}", file=sys.stderr)
            return 2
        if args.action == "check":
            bad = [(p, why) for p in chosen if (why := out_of_sync(p))]
            for p, why in bad:
                print(f"{p}: out of sync: {why}; run: qwen-nb notebooks record {p.stem}")
            if not bad:
                print(f"{len(chosen)} pair(s) in sync")
            return 1 if bad else 0
        seconds = record(chosen, solutions=args.solutions)
        print(f"recorded {len(chosen)} notebook(s) in {seconds:.1f} s")
        return 0
    except InputError as err:
        print(f"qwen-nb notebooks: {err}", file=sys.stderr)
        return 2


__all__ = ["SOLUTIONS_VAR", "cell_sources", "check_keys", "cli_main", "execute", "is_pair_source",
           "keyless_environment", "out_of_sync", "pairs", "read_pair", "record", "stabilize"]
