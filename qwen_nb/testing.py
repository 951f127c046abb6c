"""pytest plugin: the local Model Studio emulator for tests and for notebooks under nbval.

Installed with qwen-nb and loaded automatically by pytest (entry point ``pytest11``).
Loading it costs nothing: the emulator and the SDKs are imported only when used.

Fixtures
--------
``qwen_emulator`` (session scope)
    A running :class:`qwen_nb.emulator.Emulator` on a free loopback port, pacing off,
    stopped when the test session ends. Its ``url``, ``profiles()``, ``regions()``,
    ``requests``, ``set_faults(...)`` and ``reset()`` are there to use.
``qwen_session`` (test scope)
    A :class:`qwen_nb.session.Session` over the emulator's demo workspaces with an
    in-memory ledger; the emulator is reset (faults, pacing, recorded requests) before
    each test, and the session is closed after it::

        def test_answer(qwen_session):
            assert qwen_session.chat("Who are you?").text.startswith("I am Qwen")

Notebooks under nbval
---------------------
Notebook kernels are separate processes that inherit the environment of pytest. When
pytest runs with ``--nbval`` or ``--nbval-lax``, no ``QWEN_NB_EMULATOR`` is set and no key
is configured (``DASHSCOPE_API_KEY`` or ``QWEN_NB_<NAME>_API_KEY``, in the environment or a
``.env`` in the working directory), the plugin starts one emulator in the pytest process
at session start and exports ``QWEN_NB_EMULATOR=http://127.0.0.1:PORT``, so
``qwen_nb.connect()`` / ``qwen_nb.chat()`` in the notebooks talk to it; it is stopped and
the variable removed at the end. The ``qwen_emulator`` fixture reuses that emulator.

Control it with the ini setting ``qwen_emulator = auto|true|false`` or, for one run, the
options ``--qwen-emulator`` (= true) and ``--no-qwen-emulator`` (= false): ``auto``
(default) as above; ``true`` starts it for any run, key or not (still not when
``QWEN_NB_EMULATOR`` already points at a running emulator); ``false`` never starts it.
The pytest header says which emulator, if any, the run uses. Plain pytest runs without
nbval are left alone.

Sanitizing outputs
------------------
Replies of the emulator are deterministic, but request ids, latencies, timestamps, loopback
ports, memory addresses, the emulator notice and compare()'s "fastest" badge are not. Every
``--nbval`` / ``--nbval-lax`` run applies the rules shipped with qwen-nb
(:func:`sanitize_file`) by itself: ``pytest --nbval notebook.ipynb`` needs no other flag. A
file of your own given with ``--nbval-sanitize-with=PATH`` is applied after them (nbval reads
one file: the plugin hands it both, merged). The pytest header says which rules are in use.
Turn this off with the ini setting ``qwen_sanitize = false``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from qwen_nb._settings import Settings

if TYPE_CHECKING:
    from qwen_nb.emulator import Emulator
    from qwen_nb.session import Session

#: the environment variable that points notebooks (and ``qwen_nb.connect()``) at an emulator
ENV_VAR = "QWEN_NB_EMULATOR"
_MODES = {"auto": "auto", "true": "true", "on": "true", "yes": "true", "1": "true",
          "false": "false", "off": "false", "no": "false", "0": "false"}
_STATE = pytest.StashKey[dict]()


def sanitize_file() -> str:
    """Path of the nbval sanitize rules shipped with qwen-nb (for ``--nbval-sanitize-with``)."""
    return str(Path(__file__).resolve().parent / "data" / "nbval_sanitize.cfg")


def key_configured(env: dict[str, str] | None = None, dotenv_path: str | os.PathLike | None = None) -> bool:
    """Is a Model Studio key configured (``DASHSCOPE_API_KEY`` / ``QWEN_NB_*_API_KEY``, env or ``.env``)?"""
    env = Settings(use_dotenv=False, use_config=False).env if env is None else env

    def has_key(values: dict[str, str]) -> bool:
        return any(
            (k == "DASHSCOPE_API_KEY" or (k.startswith("QWEN_NB_") and k.endswith("_API_KEY"))) and (v or "").strip()
            for k, v in values.items()
        )

    if has_key(env):
        return True
    try:
        from qwen_nb._settings import read_dotenv as _read_dotenv

        return has_key(_read_dotenv(dotenv_path))
    except Exception:  # no python-dotenv or an unreadable .env: treat as no key
        return False


# -- options and session start / end -----------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qwen-nb", "qwen-nb local Model Studio emulator")
    group.addoption(
        "--qwen-emulator",
        dest="qwen_emulator",
        action="store_const",
        const="true",
        default=None,
        help="start a local Model Studio emulator for this run and export QWEN_NB_EMULATOR to notebook kernels "
        "(default: ini qwen_emulator, else auto = only for --nbval/--nbval-lax runs without a configured key)",
    )
    group.addoption(
        "--no-qwen-emulator",
        dest="qwen_emulator",
        action="store_const",
        const="false",
        help="never start the qwen-nb emulator for this run",
    )
    parser.addini(
        "qwen_sanitize",
        "apply qwen-nb's nbval sanitize rules to --nbval runs (before any --nbval-sanitize-with file): true or false",
        default="true",
    )
    parser.addini(
        "qwen_emulator",
        "start the qwen-nb emulator for notebooks: auto (nbval runs without a key), true or false",
        default="auto",
    )


def _mode(config: pytest.Config) -> str:
    raw = config.getoption("qwen_emulator", default=None)
    if raw is None:
        raw = config.getini("qwen_emulator") or "auto"
    mode = _MODES.get(str(raw).strip().lower())
    if mode is None:
        raise pytest.UsageError(f"ini option qwen_emulator = {raw!r}: use auto, true or false.")
    return mode


def _nbval_run(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False))


def _decide(config: pytest.Config) -> tuple[bool, str]:
    """Whether to start the emulator, and why (for the pytest header)."""
    mode = _mode(config)
    running = Settings(use_dotenv=False, use_config=False).get(ENV_VAR)
    if running:
        return False, f"using the emulator at {running} ({ENV_VAR})"
    if mode == "false":
        return False, "emulator off (qwen_emulator = false)"
    if mode == "true":
        return True, "forced on"
    if not _nbval_run(config):
        return False, ""
    if key_configured():
        return False, "a Model Studio key is configured: notebooks call the real service"
    return True, "nbval run without a key"


def _setup_sanitize(config: pytest.Config, state: dict[str, Any]) -> None:
    """Point nbval at qwen-nb's sanitize rules (merged before the user's own file, if any)."""
    if not _nbval_run(config) or not hasattr(config.option, "nbval_sanitize_with"):
        return
    raw = str(config.getini("qwen_sanitize") or "true").strip().lower()
    if _MODES.get(raw) == "false":
        return
    ours = sanitize_file()
    theirs = config.option.nbval_sanitize_with
    if not theirs:
        config.option.nbval_sanitize_with = ours
        state["sanitize"] = f"nbval outputs sanitized with qwen-nb's rules ({ours})"
        return
    if Path(theirs).resolve() == Path(ours).resolve():
        state["sanitize"] = f"nbval outputs sanitized with qwen-nb's rules ({ours})"
        return
    import tempfile

    try:
        extra = Path(theirs).read_text(encoding="utf-8")
    except OSError as exc:
        raise pytest.UsageError(f"--nbval-sanitize-with={theirs}: cannot read it ({exc.strerror or exc}).") from exc
    merged = Path(ours).read_text(encoding="utf-8") + f"\n# ---- {theirs}\n" + extra
    fd, path = tempfile.mkstemp(prefix="qwen-nb-sanitize-", suffix=".cfg")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(merged)
    state["sanitize_tmp"] = path
    config.option.nbval_sanitize_with = path
    state["sanitize"] = f"nbval outputs sanitized with qwen-nb's rules, then {theirs}"


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    state: dict[str, Any] = {"emulator": None, "note": "", "sanitize": "", "sanitize_tmp": None}
    config.stash[_STATE] = state
    _setup_sanitize(config, state)
    if hasattr(config, "workerinput"):  # xdist worker: the controller exported the variable
        return
    start, why = _decide(config)
    state["note"] = why
    if not start:
        return
    try:
        from qwen_nb.emulator import Emulator

        emu = Emulator()
        emu.start()
    except Exception as exc:
        message = f"qwen-nb: could not start the local emulator ({type(exc).__name__}: {exc})"
        if _mode(config) == "true":
            raise pytest.UsageError(message) from exc
        state["note"] = message
        config.issue_config_time_warning(pytest.PytestWarning(message), stacklevel=2)
        return
    state["emulator"] = emu
    state["note"] = f"emulator at {emu.url} exported as {ENV_VAR} ({why})"
    os.environ[ENV_VAR] = emu.url


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(_STATE, None)
    lines = [f"qwen-nb: {state[k]}" for k in ("note", "sanitize") if state and state.get(k)]
    return lines or None


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    tmp = state and state.get("sanitize_tmp")
    if tmp:
        state["sanitize_tmp"] = None  # type: ignore[index]
        Path(tmp).unlink(missing_ok=True)
    emu = state and state.get("emulator")
    if not emu:
        return
    state["emulator"] = None  # type: ignore[index]
    if os.environ.get(ENV_VAR) == emu.url:
        del os.environ[ENV_VAR]
    emu.stop()


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def qwen_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """A local Model Studio emulator for the whole test session (the plugin's own, if it started one)."""
    state = request.config.stash.get(_STATE, None)
    if state and state.get("emulator") is not None:
        yield state["emulator"]
        return
    from qwen_nb.emulator import Emulator

    with Emulator() as emu:
        yield emu


@pytest.fixture
def qwen_session(qwen_emulator: Emulator) -> Iterator[Session]:
    """A Session over the emulator's demo workspaces with an in-memory ledger (emulator reset first)."""
    from qwen_nb.ledger import Ledger
    from qwen_nb.session import Session

    qwen_emulator.reset()
    session = Session(qwen_emulator.profiles(), regions=qwen_emulator.regions(), ledger=Ledger(":memory:"))
    try:
        yield session
    finally:
        close = getattr(session, "close", None)
        if close is not None:
            close()
        qwen_emulator.reset()
