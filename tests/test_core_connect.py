"""connect() and the module-level API: with no key anywhere the emulator is used, and it says so once."""

from __future__ import annotations

import os
import threading

import pytest

import qwen_nb
import qwen_nb._default as core
from qwen_nb._profiles import Profile
from qwen_nb.emulator.config import demo_keys
from qwen_nb.errors import InputError
from qwen_nb.ledger import Ledger, default_path
from qwen_nb.session import Session


@pytest.fixture
def no_keys(monkeypatch, tmp_path):
    """No key in the environment or a .env; the default session starts empty and is closed after."""
    for var in list(os.environ):
        if var == "DASHSCOPE_API_KEY" or (var.startswith("QWEN_NB_") and var.endswith("_API_KEY")):
            monkeypatch.delenv(var)
    monkeypatch.delenv("QWEN_NB_EMULATOR", raising=False)
    monkeypatch.setenv("QWEN_NB_LEDGER", str(tmp_path / "usage.sqlite"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(core, "_emulator_notice_shown", False)
    before = core.set_default_session(None)
    yield
    left = core.set_default_session(before)
    if left is not None:
        left.close()


def test_connect_uses_the_emulator_named_in_the_environment(no_keys, emulator, monkeypatch, capsys):
    monkeypatch.setenv("QWEN_NB_EMULATOR", emulator.url)
    s = core.connect(ledger=Ledger(":memory:"))
    assert s.on_emulator and s is core.default_session()
    assert set(p.name for p in s.profiles()) == set(emulator.profiles())
    assert s.region().host == f"{emulator.url}/ap-southeast-1"
    assert qwen_nb.chat("Who are you?").text.startswith("I am Qwen")
    core.connect(ledger=Ledger(":memory:"))  # replacing the session does not repeat the notice
    out = capsys.readouterr().out
    assert out.count("emulator") == 1 and emulator.url in out and len(out.strip().splitlines()) == 1


def test_connect_starts_an_emulator_in_process(no_keys, capsys):
    s = qwen_nb.connect(ledger=Ledger(":memory:"))
    try:
        assert s.on_emulator and s._emulator is not None
        assert "started a local Model Studio emulator" in capsys.readouterr().out
        r = core.chat("Who are you?", api="dashscope")
        assert r.text.startswith("I am Qwen")
        stream = core.stream_chat("Who are you?")
        assert "".join(d.content for d in stream) == r.text
        assert core.list_models("team-a") == ["qwen-plus", "qwen-flash", "qwen-vl-plus"]
        out = core.chat_many(["one", "two"], progress=False)
        assert [x.text for x in out] == [core.chat("one").text, core.chat("two").text]
    finally:
        s.close()
    assert s._emulator is None


def test_default_session_is_lazy(no_keys, emulator, monkeypatch):
    monkeypatch.setenv("QWEN_NB_EMULATOR", emulator.url)
    assert core.set_default_session(None) is None
    s = core.default_session()
    assert s is core.default_session() and s.on_emulator


def test_async_module_functions(no_keys, emulator, monkeypatch):
    import asyncio

    monkeypatch.setenv("QWEN_NB_EMULATOR", emulator.url)
    core.connect(ledger=Ledger(":memory:"))

    async def main():
        r = await core.achat("Who are you?")
        deltas = [d async for d in core.astream_chat("Who are you?", api="dashscope")]
        return r, deltas

    r, deltas = asyncio.run(main())
    assert "".join(d.content for d in deltas) == r.text


def test_profiles_table_masks_keys(no_keys, emulator, monkeypatch):
    monkeypatch.setenv("QWEN_NB_EMULATOR", emulator.url)
    core.connect(ledger=Ledger(":memory:"))
    core.add_profile("mine", key=emulator.key("team-b"), models=["qwen-max"], budget=5)
    table = core.profiles()
    assert isinstance(table, list) and [p.name for p in table][-1] == "mine"
    shown = table._repr_html_() + table._repr_markdown_() + str(table) + repr(table)
    assert "<table>" in table._repr_html_() and "sk-…" in shown and "qwen-max" in shown
    for key in demo_keys():
        assert key not in shown


def test_profiles_from_the_environment(monkeypatch, tmp_path, emulator):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DASHSCOPE_API_KEY", emulator.key("default"))
    monkeypatch.setenv("QWEN_NB_LAB_API_KEY", emulator.key("beijing-lab"))
    monkeypatch.setenv("QWEN_NB_LAB_REGION", "cn-beijing")
    monkeypatch.setenv("QWEN_NB_LAB_WORKSPACE", "llm-0bd024d4a9a447cb")
    before = core.set_default_session(None)
    s = core.connect(regions=emulator.regions(), ledger=Ledger(":memory:"))
    try:
        assert {p.name: p.source for p in s.profiles()} == {"default": "environment", "lab": "environment"}
        r = s.chat("hi", profile="lab", model="qwen-turbo")
        assert r.region == "cn-beijing" and r.workspace == "llm-0bd024d4a9a447cb"
    finally:
        s.close()
        core.set_default_session(before)


def test_threads_racing_to_the_default_session_connect_once(no_keys, emulator, monkeypatch):
    monkeypatch.setenv("QWEN_NB_EMULATOR", emulator.url)
    calls = []
    real = core.load_profiles
    monkeypatch.setattr(core, "load_profiles", lambda **kw: calls.append(1) or real(**kw))
    barrier = threading.Barrier(6)
    got = []

    def first_use():
        barrier.wait()
        got.append(core.default_session())

    threads = [threading.Thread(target=first_use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 6 and len({id(s) for s in got}) == 1 and len(calls) == 1


def test_set_default_session_waits_for_a_connect_in_progress(no_keys, emulator, monkeypatch):
    """A session set while another thread is connecting is not overwritten (nor closed) by that connect."""
    monkeypatch.setenv("QWEN_NB_EMULATOR", emulator.url)
    entered, release = threading.Event(), threading.Event()
    real = core.load_profiles

    def slow_profiles(**kw):
        entered.set()
        assert release.wait(30)
        return real(**kw)

    monkeypatch.setattr(core, "load_profiles", slow_profiles)
    mine = core.Session(emulator.profiles(), regions=emulator.regions(), ledger=Ledger(":memory:"))
    first = threading.Thread(target=core.default_session)
    first.start()
    assert entered.wait(30)
    setter = threading.Thread(target=core.set_default_session, args=(mine,))
    setter.start()
    release.set()
    first.join(30)
    setter.join(30)
    assert core.default_session() is mine
    assert mine.chat("Who are you?").text.startswith("I am Qwen")
    mine.close()


def test_set_default_session_takes_sessions_only(no_keys):
    with pytest.raises(InputError, match="takes a Session"):
        core.set_default_session("default")
    assert core.set_default_session(None) is None


def test_emulator_sessions_keep_demo_calls_out_of_the_per_user_ledger(no_keys, emulator, monkeypatch, tmp_path):
    """connect() with no key: the calls go to an in-memory ledger, not the per-user file."""
    monkeypatch.delenv("QWEN_NB_LEDGER")
    data_home = tmp_path / "data-home"
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))  # where the per-user ledger file would be
    monkeypatch.setenv("QWEN_NB_EMULATOR", emulator.url)
    s = core.connect()
    assert qwen_nb.chat("Who are you?").text.startswith("I am Qwen")
    assert s.ledger.path == ":memory:" and len(s.ledger.records()) == 1
    assert not data_home.exists()
    again = core.connect()  # a new run starts from nothing: outputs do not depend on earlier runs
    assert again.ledger.path == ":memory:" and again.ledger.records() == []
    # an emulator Session made directly behaves the same
    direct = Session(emulator.profiles(), regions=emulator.regions())
    direct.chat("hi")
    assert direct.ledger.path == ":memory:" and not data_home.exists()
    direct.close()


def test_emulator_sessions_use_QWEN_NB_LEDGER_when_set(no_keys, emulator, monkeypatch, tmp_path):
    monkeypatch.setenv("QWEN_NB_EMULATOR", emulator.url)
    s = core.connect()
    s.chat("Who are you?")
    assert s.ledger.flush(timeout=10)  # the row is committed by the ledger's writer thread; another reader waits
    assert s.ledger.path == str(tmp_path / "usage.sqlite") and len(Ledger(tmp_path / "usage.sqlite")) == 1


def test_a_session_on_the_real_service_uses_the_per_user_ledger(monkeypatch, tmp_path):
    monkeypatch.delenv("QWEN_NB_LEDGER", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    real = Session({"default": Profile("default", key="sk-" + "0" * 32)})
    assert not real.on_emulator and real.ledger.path == str(default_path()) and real.ledger.path != ":memory:"
    real.close()
