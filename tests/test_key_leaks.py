"""A canary key put in every careless place leaves no piece of itself in any output, file, repr or exception.

Each path below is a real mistake (a key passed as the region, the workspace, the model, the
profile name, a budget; a service error on the canary key; a key pasted into the widgets'
workspace box; a checkpoint holding a key). Everything the path produces is searched for any
7-character piece of the key (a masked key shows 4): captured stdout and stderr, log records
of every logger at DEBUG, the ledger file, the emulator's request log, and the exception
raised with its whole chain (``__cause__`` / ``__context__``, their ``str``, ``repr`` and
attributes, request headers included).
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path
from typing import Any

import pytest

from qwen_nb._profiles import load_profiles
from qwen_nb._settings import explain_config
from qwen_nb.errors import QwenNbError
from qwen_nb.ledger import Ledger
from qwen_nb.session import Session

CANARY = "sk-" + secrets.token_hex(16)


def fragments(key: str = CANARY, size: int = 7) -> set[str]:
    return {key[i : i + size] for i in range(len(key) - size + 1)}


def leaked(text: str, key: str = CANARY) -> list[str]:
    return sorted(f for f in fragments(key) if f in text)


def deep_texts(obj: Any, depth: int = 5, seen: set[int] | None = None) -> list[str]:
    """``str`` and ``repr`` of ``obj`` and of everything reachable through its attributes, items and headers."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth < 0:
        return []
    seen.add(id(obj))
    out = []
    for show in (str, repr):
        try:
            out.append(show(obj))
        except Exception:
            pass
    if isinstance(obj, (str, bytes, int, float, bool)) or obj is None:
        return out
    children: list[Any] = []
    if isinstance(obj, dict):
        children += list(obj.keys()) + list(obj.values())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children += list(obj)
    headers = getattr(obj, "headers", None)
    if headers is not None:
        try:
            children.append(dict(headers))
        except Exception:
            pass
    try:
        children += list(vars(obj).values())
    except TypeError:
        pass
    for child in children:
        if callable(child) and not isinstance(child, BaseException):
            continue
        out += deep_texts(child, depth - 1, seen)
    return out


def exception_texts(err: BaseException | None) -> list[str]:
    """Every text of ``err`` and of each exception in its chain."""
    out: list[str] = []
    seen: set[int] = set()
    todo = [err]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        out += deep_texts(e)
        todo += [e.__cause__, e.__context__]
    return out


@pytest.fixture
def capture(capsys, caplog):
    """Collects every text a path produced: stdout, stderr, all log records at DEBUG, and extra texts."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("qwen_nb").setLevel(logging.DEBUG)

    class Capture:
        texts: list[str] = []

        def run(self, fn, *args, **kw) -> BaseException | None:
            try:
                fn(*args, **kw)
            except Exception as exc:  # noqa: BLE001 - every failure is searched
                self.texts += exception_texts(exc)
                return exc
            return None

        def check(self, *extra: str) -> None:
            out = capsys.readouterr()
            logs = [r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
                    + str(r.exc_text or "") for r in caplog.records]
            everything = "\n".join([out.out, out.err, *logs, *self.texts, *extra])
            assert not leaked(everything), f"pieces of the canary key leaked: {leaked(everything)[:3]}"

    yield Capture()


@pytest.fixture
def emu_session(emu, tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    s = Session(emu.profiles(), regions=emu.regions(), ledger=ledger, max_retries=2)
    yield s
    s.close()
    ledger.close()


def _ledger_text(tmp_path: Path) -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in tmp_path.glob("ledger.sqlite*"))


# -- keys typed into the wrong place: refused before anything is shown or sent -----------------


def test_swapped_add_profile_arguments(capture, emu_session, emu):
    err = capture.run(emu_session.add_profile, "team2", "ap-southeast-1", CANARY)
    assert isinstance(err, QwenNbError) and "looks like an API key" in err.message
    assert "QWEN_NB_TEAM2_API_KEY" in (err.fix or "")
    capture.check(repr(emu_session), *map(repr, emu_session.profiles()))


@pytest.mark.parametrize("var", ["DASHSCOPE_REGION", "DASHSCOPE_WORKSPACE", "QWEN_NB_DEFAULT_BUDGET",
                                 "QWEN_NB_DEFAULT_MODELS", "DASHSCOPE_BASE_URL"])
def test_key_in_a_default_profile_setting(capture, emu, var):
    env = {"DASHSCOPE_API_KEY": emu.key(), var: CANARY}
    err = capture.run(load_profiles, env=env, use_dotenv=False)
    assert isinstance(err, QwenNbError) and "looks like an API key" in err.message, err
    assert "DASHSCOPE_API_KEY" in (err.fix or "")
    capture.check(str(explain_config(env=env, use_dotenv=False, use_config=False)))


@pytest.mark.parametrize("field", ["REGION", "WORKSPACE", "BUDGET", "MODELS", "BASE_URL"])
def test_key_in_a_named_profile_setting(capture, emu, field):
    env = {"QWEN_NB_TEAM_API_KEY": emu.key("team-a"), f"QWEN_NB_TEAM_{field}": CANARY}
    err = capture.run(load_profiles, env=env, use_dotenv=False)
    assert isinstance(err, QwenNbError) and "QWEN_NB_TEAM_API_KEY" in (err.fix or ""), err
    capture.check(str(explain_config(env=env, use_dotenv=False, use_config=False)))


def test_key_as_profile_or_model_is_refused_before_any_request(capture, emu_session, emu, tmp_path):
    emu.set_faults(fail_next=5)  # a request, if sent, would be retried and its model logged
    before = len(emu.requests)
    for kw in ({"profile": CANARY}, {"model": CANARY}):
        err = capture.run(emu_session.chat, "hi", **kw)
        assert isinstance(err, QwenNbError) and "looks like an API key" in err.message
    err = capture.run(emu_session.stream_chat, "hi", model=CANARY)
    assert isinstance(err, QwenNbError)
    assert len(emu.requests) == before  # nothing was sent
    capture.check(_ledger_text(tmp_path), repr(emu.requests))


def test_key_in_other_add_profile_arguments(capture, emu_session, emu):
    key = emu.key("team-a")
    for kw in ({"workspace": CANARY}, {"models": [CANARY]}, {"budget": CANARY}, {"base_url": CANARY}):
        err = capture.run(emu_session.add_profile, "team2", key, **kw)
        assert isinstance(err, QwenNbError), kw
    err = capture.run(emu_session.add_profile, CANARY, key)
    assert isinstance(err, QwenNbError)
    capture.check(repr(emu_session), *map(repr, emu_session.profiles()))


def test_workspace_ids_are_checked():
    from qwen_nb._profiles import Profile
    from qwen_nb.errors import InputError

    key = "sk-" + "a1" * 12
    assert Profile("t", key=key, workspace="llm-a2c8c0cbb1380af9").workspace == "llm-a2c8c0cbb1380af9"
    for bad in ("ws-a", "LLM-ABCD", "llm-a", "https://llm-abcd.example", "llm-abcd/x"):
        with pytest.raises(InputError, match="not a Model Studio workspace id"):
            Profile("t", key=key, workspace=bad)


# -- a service error on the canary key -------------------------------------------------------


@pytest.mark.parametrize("api", ["openai", "dashscope"])
@pytest.mark.parametrize("how", ["chat", "stream", "list"])
def test_service_error_keeps_no_request_in_its_chain(capture, emu_session, tmp_path, api, how):
    emu_session.add_profile("canary", CANARY, region="ap-southeast-1")
    calls = {
        "chat": lambda: emu_session.chat("hi", profile="canary", api=api),
        "stream": lambda: list(emu_session.stream_chat("hi", profile="canary", api=api)),
        "list": lambda: emu_session.list_models("canary", api=api, refresh=True),
    }
    err = capture.run(calls[how])
    assert isinstance(err, QwenNbError) and err.status == 401, err
    assert err.__cause__ is None and err.__suppress_context__
    assert isinstance(err.raw, (dict, list, str, type(None)))
    capture.check(_ledger_text(tmp_path), repr(emu_session), json.dumps(err.raw, default=str))


def test_retry_warnings_and_errors_on_the_canary_key_mask_it(capture, emu_session, emu, tmp_path):
    emu_session.add_profile("canary", CANARY, region="ap-southeast-1")
    emu.set_faults(fail_next=5)
    capture.run(emu_session.chat, "hi", profile="canary")
    capture.check(_ledger_text(tmp_path))


def test_tables_and_config_report_mask_the_key(capture, emu_session):
    emu_session.add_profile("canary", CANARY)
    from qwen_nb._profiles import ProfileTable

    table = ProfileTable(emu_session.profiles())
    env = {"QWEN_NB_CANARY_API_KEY": CANARY, "QWEN_NB_CANARY_API_KEY_COMMAND": f"echo {CANARY}"}
    report = explain_config(env=env, use_dotenv=False, use_config=False)
    capture.check(str(table), table._repr_html_(), table._repr_markdown_(), str(report), report._repr_html_())


# -- widgets: a key pasted into the workspace box --------------------------------------------


def test_key_pasted_as_workspace_never_reaches_widget_state(capture, emu_session, emu):
    from qwen_nb.widgets import KeyEntry, ProfilePicker

    entry = KeyEntry(emu_session)
    entry.name.value = "mine"
    entry.workspace.value = CANARY  # pasted into the wrong box
    assert entry.workspace.value == "" and entry.workspace_id is None
    assert "looks like an API key" in entry.message.value
    entry.key.value = emu.key("team-a")
    assert entry.submit() is None or entry.last_error is None
    picker = ProfilePicker(emu_session)
    states = [json.dumps(w.get_state(), default=str) for w in (entry, *entry.children, entry.workspace,
                                                               entry.message, picker)]
    capture.check(*states, str(picker.options))


SAVED = """\
import os
from qwen_nb.emulator.config import default_profiles
from qwen_nb.emulator.hosts import emulator_regions
from qwen_nb.ledger import Ledger
from qwen_nb.session import Session
from qwen_nb.widgets import KeyEntry, ProfilePicker

url = os.environ["QWEN_NB_EMULATOR"]
s = Session(default_profiles(url), regions=emulator_regions(url), ledger=Ledger(":memory:"), max_retries=1)
entry = KeyEntry(s)
display(entry)
entry.name.value = "oops"
entry.workspace.value = os.environ.pop("CANARY_KEY")   # a key pasted into the workspace box
entry.key.value = s.get_profile("team-a").key
entry.button.click()
display(ProfilePicker(s))
print(entry.workspace_id, [label for label, _ in ProfilePicker(s).options])
"""


def test_saved_notebook_with_widget_state_holds_no_piece_of_the_key(tmp_path, emulator, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("QWEN_NB_EMULATOR", emulator.url)
    monkeypatch.setenv("CANARY_KEY", CANARY)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SAVED)]
    NotebookClient(nb, kernel_name="python3", timeout=90, store_widget_state=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    text = path.read_text(encoding="utf-8")
    assert "widget-state" in text and "None" in text  # it ran and stored widget state
    assert not leaked(text), leaked(text)[:3]


# -- check-notebooks and checkpoints -------------------------------------------------------


def test_check_notebooks_fix_scrubs_the_checkpoint_too(tmp_path, capsys):
    import nbformat

    from qwen_nb.notebooks import cli_main

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"key = '{CANARY}'")]
    work = tmp_path / "work"
    (work / ".ipynb_checkpoints").mkdir(parents=True)
    nbformat.write(nb, str(work / "nb.ipynb"))
    nbformat.write(nb, str(work / ".ipynb_checkpoints" / "nb-checkpoint.ipynb"))
    assert cli_main(["--no-env", str(work)]) == 1
    assert "in 2 of 2 notebooks (1 checkpoint)" in capsys.readouterr().out
    assert cli_main(["--no-env", "--fix", str(work)]) == 1
    assert cli_main(["--no-env", str(work)]) == 0
    out = capsys.readouterr().out
    assert "No API keys found in 2 notebooks (1 checkpoint)" in out
    files = "".join(p.read_text(encoding="utf-8") for p in work.rglob("*.ipynb"))
    assert not leaked(files + out)
