"""connect() and the module-level API: with no key anywhere the emulator is used, and it says so once."""

from __future__ import annotations

import os

import pytest

import qwen_nb
import qwen_nb.session as core
from qwen_nb.emulator.config import demo_keys
from qwen_nb.ledger import Ledger


@pytest.fixture
def no_keys(monkeypatch, tmp_path):
    """No key in the environment or a .env; the default session starts empty and is closed after."""
    for var in list(os.environ):
        if var == "DASHSCOPE_API_KEY" or (var.startswith("QWEN_NB_") and var.endswith("_API_KEY")):
            monkeypatch.delenv(var)
    monkeypatch.delenv("QWEN_NB_EMULATOR", raising=False)
    monkeypatch.setenv("QWEN_NB_LEDGER", str(tmp_path / "usage.sqlite"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(core, "_default", None)
    monkeypatch.setattr(core, "_emulator_notice_shown", False)
    yield
    if core._default is not None:
        core._default.close()


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
    assert core._default is None
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
    monkeypatch.setattr(core, "_default", None)
    s = core.connect(regions=emulator.regions(), ledger=Ledger(":memory:"))
    try:
        assert {p.name: p.source for p in s.profiles()} == {"default": "environment", "lab": "environment"}
        r = s.chat("hi", profile="lab", model="qwen-turbo")
        assert r.region == "cn-beijing" and r.workspace == "llm-0bd024d4a9a447cb"
    finally:
        s.close()
