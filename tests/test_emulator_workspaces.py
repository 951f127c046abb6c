"""Notebooks pointed at a running emulator get that emulator's own workspaces (custom --config too)."""

from __future__ import annotations

import pytest

from qwen_nb.emulator import Emulator
from qwen_nb.emulator.config import running_profiles

CLASS_TOML = """
[[workspace]]
name = "teacher"
id = "llm-0000000000000001"
region = "ap-southeast-1"
default = true
keys = ["sk-11111111111111111111111111111111"]
models = "all"

[[workspace]]
name = "students"
id = "llm-0000000000000002"
region = "ap-southeast-1"
keys = ["sk-22222222222222222222222222222222"]
models = ["qwen-flash"]
"""


@pytest.fixture
def classroom(tmp_path):
    path = tmp_path / "class.toml"
    path.write_text(CLASS_TOML)
    with Emulator(config=path) as emu:
        yield emu


def test_running_profiles_come_from_the_emulator(classroom):
    got = running_profiles(classroom.url)
    assert set(got) == {"teacher", "students"}
    assert got["students"].models == ("qwen-flash",) and got["students"].workspace == "llm-0000000000000002"
    assert got["teacher"].workspace is None and got["teacher"].source == "emulator"


def test_connect_uses_the_running_emulators_workspaces(classroom, monkeypatch, tmp_path):
    from qwen_nb._default import connect, set_default_session

    for var in ("DASHSCOPE_API_KEY", "DASHSCOPE_REGION", "DASHSCOPE_WORKSPACE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("QWEN_NB_EMULATOR", classroom.url)
    monkeypatch.chdir(tmp_path)  # no .env here
    previous = set_default_session(None)
    try:
        s = connect()
        assert [p.name for p in s.profiles()] == ["teacher", "students"]
        assert s.chat("Who are you?", profile="students", model="qwen-flash").text.startswith("I am Qwen")
        s.close()
    finally:
        set_default_session(previous)


def test_an_unreachable_emulator_is_a_clear_error_not_the_demo_profiles():
    # it used to fall back to the built-in demo profiles silently: every call then failed elsewhere
    from qwen_nb.errors import NetworkError

    with pytest.raises(NetworkError, match="does not answer") as exc:
        running_profiles("http://127.0.0.1:9", timeout=0.5)
    assert "QWEN_NB_EMULATOR" in str(exc.value)


def test_profiles_keep_the_configured_grants_after_runtime_changes(classroom):
    classroom.grant("students", ["qwen-plus", "qwen-flash"])  # e.g. a notebook granting by API
    try:
        assert running_profiles(classroom.url)["students"].models == ("qwen-flash",)
    finally:
        classroom.reset()


def test_the_workspaces_endpoint_masks_keys_from_a_config_file(classroom):
    """A plain look at /_emulator/workspaces shows a config's keys masked; connect() asks for them (?keys=full)."""
    import httpx

    shown = httpx.get(classroom.url + "/_emulator/workspaces").json()
    keys = [k for ws in shown for k in ws["keys"]]
    assert keys and all(k.startswith("sk-…") for k in keys)
    assert "sk-11111111111111111111111111111111" not in httpx.get(classroom.url + "/_emulator/workspaces").text
    assert running_profiles(classroom.url)["students"].key == "sk-22222222222222222222222222222222"
