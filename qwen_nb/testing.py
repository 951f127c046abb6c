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

Recorded notebooks (cassettes)
------------------------------
``pytest --nbval --qwen-replay`` runs each notebook against the cassette beside it
(``NAME.cassettes/`` next to ``NAME.ipynb``, written by ``qwen-nb record`` or
``--qwen-record``): its kernel gets the recorded profiles with a placeholder key, their base
URLs pointing at a local replay server, and ``OPENAI_BASE_URL`` / ``DASHSCOPE_HTTP_BASE_URL``
/ ``DASHSCOPE_BASE_URL`` for raw SDK calls and curl. No key, no network: every answer is the
recorded one, byte for byte; a call with no recording fails with HTTP 409 ``NotRecorded``
naming the cassette and the request. A notebook with no cassette fails at once, unless the
ini setting ``qwen_replay_missing = run`` (``-o qwen_replay_missing=run``) lets it run as it
would without the flag (the emulator when no key is set).

``pytest --nbval --qwen-record`` records instead: each notebook's calls go through a
recording proxy to the real service (each profile's host) or to ``--qwen-upstream URL``,
and its cassette folder is rewritten.
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
    _add_cassette_options(group, parser)


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
    if _cassette_mode(config) in ("record", "replay"):  # every notebook has (or makes) its cassette
        return False, ""
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
    _setup_cassettes(config, state)
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
    lines = [f"qwen-nb: {state[k]}" for k in ("note", "sanitize", "cassettes") if state and state.get(k)]
    return lines or None


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state:
        _stop_cassettes(state)
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


# -- cassettes: --qwen-record / --qwen-replay (qwen_nb.recorder) ----------------------------------------


def _add_cassette_options(group: Any, parser: pytest.Parser) -> None:
    group.addoption("--qwen-replay", dest="qwen_replay", action="store_true", default=False,
                    help="run each notebook against the cassette beside it (NAME.cassettes/): recorded answers, "
                    "no key, no network")
    group.addoption("--qwen-record", dest="qwen_record", action="store_true", default=False,
                    help="record each notebook's calls through a local proxy into NAME.cassettes/ beside it")
    group.addoption("--qwen-upstream", dest="qwen_upstream", default=None, metavar="URL",
                    help="with --qwen-record: send every call to URL instead of each profile's Model Studio host")
    parser.addini("qwen_replay_missing",
                  "with --qwen-replay, a notebook without a cassette: fail (default) or run (as without the flag)",
                  default="fail")


def _cassette_mode(config: pytest.Config) -> str:
    record = bool(config.getoption("qwen_record", default=False))
    replay = bool(config.getoption("qwen_replay", default=False))
    if record and replay:
        raise pytest.UsageError("--qwen-record and --qwen-replay exclude each other: record first, then replay.")
    if replay:
        missing = str(config.getini("qwen_replay_missing") or "fail").strip().lower()
        if missing not in ("fail", "run"):
            raise pytest.UsageError(f"ini option qwen_replay_missing = {missing!r}: use fail or run.")
        return "replay" if missing == "fail" else "replay-or-run"
    return "record" if record else ""


def _setup_cassettes(config: pytest.Config, state: dict[str, Any]) -> None:
    mode = _cassette_mode(config)
    state.update(cassette_mode=mode, current=None, saved_env={}, proxy=None, failed=None)
    if not mode or hasattr(config, "workerinput"):
        return
    from qwen_nb.errors import QwenNbError

    if mode == "record":
        from qwen_nb.recorder import profile_routes

        try:
            state["upstreams"], state["routes"] = profile_routes(config.getoption("qwen_upstream", default=None))
        except QwenNbError as exc:
            raise pytest.UsageError(f"--qwen-record: {exc}") from None
        where = config.getoption("qwen_upstream", default=None) or "each profile's Model Studio host"
        state["cassettes"] = f"recording each notebook's calls to {where} into NAME.cassettes/ beside it"
        return
    from qwen_nb.recorder import ReplayServer

    state["replay"] = ReplayServer().start()
    others = "fail" if mode == "replay" else "run as without --qwen-replay"
    state["cassettes"] = (f"replaying NAME.cassettes/ beside each notebook at {state['replay'].url} (no key, no "
                          f"network); notebooks without one {others}")


def _apply_env(state: dict[str, Any], values: dict[str, str], drop: list[str]) -> None:
    saved = state["saved_env"]
    for name in list(values) + list(drop):
        saved.setdefault(name, os.environ.get(name))
    for name in drop:
        os.environ.pop(name, None)
    os.environ.update(values)


def _leave_notebook(state: dict[str, Any]) -> None:
    """Undo what the last notebook's cassette set up: its variables, its recording proxy."""
    for name, value in state.get("saved_env", {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    state["saved_env"] = {}
    proxy = state.get("proxy")
    if proxy is not None:
        state["proxy"] = None
        proxy.stop()
    replay = state.get("replay")
    if replay is not None:
        replay.use(None, "qwen-nb replay: no notebook is running.")


def _stop_cassettes(state: dict[str, Any]) -> None:
    _leave_notebook(state)
    replay = state.pop("replay", None)
    if replay is not None:
        replay.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a notebook's kernel starts (its first cell): point it at its cassette (replay or record)."""
    state = item.config.stash.get(_STATE, None)
    if not state or not state.get("cassette_mode") or not str(item.path).endswith(".ipynb"):
        return
    path = Path(str(item.path))
    if state["current"] == path:
        if state["failed"]:
            pytest.fail(state["failed"], pytrace=False)
        return
    _leave_notebook(state)
    state["current"], state["failed"] = path, None
    from qwen_nb.errors import QwenNbError
    from qwen_nb.recorder import cassette_dir, record_env, replay_env
    from qwen_nb.recorder.cassette import INDEX_FILE

    folder = cassette_dir(path)
    if state["cassette_mode"] == "record":
        from qwen_nb.recorder import RecordingProxy

        proxy = RecordingProxy(folder, state["upstreams"], state["routes"],
                               command=f"pytest --nbval --qwen-record {path.name}").start()
        state["proxy"] = proxy
        _apply_env(state, record_env(proxy.url, state["routes"]), [])
        return
    if not (folder / INDEX_FILE).is_file():
        if state["cassette_mode"] == "replay-or-run":
            return
        state["failed"] = (
            f"--qwen-replay: {path.name} has no cassette: {folder.name}/ (with {INDEX_FILE}) is not beside it. "
            f"Record it with a key: qwen-nb record -- jupyter nbconvert --to notebook --execute --inplace {path.name} "
            f"(or pytest --nbval --qwen-record {path.name}) and commit {folder.name}/; or let notebooks without a "
            "cassette run as usual: -o qwen_replay_missing=run.")
        pytest.fail(state["failed"], pytrace=False)
    try:
        cassette = state["replay"].use(folder)
    except QwenNbError as exc:
        state["failed"] = f"--qwen-replay: {exc}"
        pytest.fail(state["failed"], pytrace=False)
    values, drop = replay_env(state["replay"].url, cassette.routes, os.environ)
    _apply_env(state, values, drop)


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
