"""Keys from the secret stores people already use: the OS keyring, Colab's secrets, a command, a ``.env``.

The keyring is a tiny in-memory backend (``keyring.set_keyring``); Colab's ``userdata`` is
faked at the module boundary (a ``google.colab`` module in ``sys.modules``); the command is
a real process; the ``.env`` checks use a real git repository in a temporary folder.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
import warnings

import pytest

from qwen_nb._profiles import ProfileTable, load_profiles
from qwen_nb._settings import Settings, explain_config
from qwen_nb.errors import ConfigError

KEY_A = "sk-" + "a1b2c3d4" * 4
KEY_B = "sk-" + "0f9e8d7c" * 4


@pytest.fixture
def memory_keyring():
    keyring = pytest.importorskip("keyring")
    from keyring.backend import KeyringBackend

    class Memory(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            super().__init__()
            self.items: dict[tuple[str, str], str] = {}

        def get_password(self, service, username):
            return self.items.get((service, username))

        def set_password(self, service, username, password):
            self.items[(service, username)] = password

        def delete_password(self, service, username):
            self.items.pop((service, username), None)

    before = keyring.get_keyring()
    backend = Memory()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(before)


def test_keyring_holds_the_default_and_listed_profiles(memory_keyring):
    memory_keyring.set_password("qwen-nb", "DASHSCOPE_API_KEY", KEY_A)
    memory_keyring.set_password("qwen-nb", "QWEN_NB_TEAM_A_API_KEY", KEY_B)
    env = {"QWEN_NB_PROFILES": "team-a", "QWEN_NB_TEAM_A_REGION": "cn-beijing"}
    profiles = load_profiles(env=env, use_dotenv=False, use_stores=True)
    assert profiles["default"].key == KEY_A and profiles["default"].source == "keyring"
    assert profiles["team-a"].key == KEY_B and profiles["team-a"].region == "cn-beijing"
    assert profiles["team-a"].source == "keyring"
    assert "keyring" in str(ProfileTable(profiles.values()))
    report = str(explain_config(env=env, use_dotenv=False, use_config=False, use_stores=True))
    assert "keyring" in report and KEY_A not in report and KEY_B not in report
    # the environment wins over the keyring; with a given env and no use_stores the keyring is not read
    env2 = {"DASHSCOPE_API_KEY": KEY_B}
    assert load_profiles(env=env2, use_dotenv=False, use_stores=True)["default"].source == "environment"
    assert load_profiles(env={}, use_dotenv=False) == {}


def test_a_listed_profile_without_a_key_is_warned_about(memory_keyring):
    with pytest.warns(UserWarning, match="QWEN_NB_GHOST_API_KEY"):
        assert load_profiles(env={"QWEN_NB_PROFILES": "ghost"}, use_dotenv=False, use_stores=True) == {}


def test_key_entry_remembers_the_key_in_the_keyring(memory_keyring, session, emu):
    from qwen_nb.widgets import KeyEntry

    entry = KeyEntry(session)
    assert entry.remember is not None
    entry.name.value = "kept"
    entry.remember.value = True
    entry.key.value = emu.key("team-a")
    assert entry.submit() is not None, entry.last_error
    assert memory_keyring.get_password("qwen-nb", "QWEN_NB_KEPT_API_KEY") == emu.key("team-a")
    assert "keyring" in entry.message.value and emu.key("team-a") not in entry.message.value


def _fake_colab(monkeypatch, secrets: dict[str, str], *, access: bool = True):
    google = types.ModuleType("google")
    colab = types.ModuleType("google.colab")
    userdata = types.ModuleType("google.colab.userdata")

    class SecretNotFoundError(Exception):
        pass

    class NotebookAccessError(Exception):
        pass

    def get(name):
        if not access:
            raise NotebookAccessError(name)
        if name not in secrets:
            raise SecretNotFoundError(name)
        return secrets[name]

    userdata.get = get  # type: ignore[attr-defined]
    userdata.SecretNotFoundError = SecretNotFoundError  # type: ignore[attr-defined]
    userdata.NotebookAccessError = NotebookAccessError  # type: ignore[attr-defined]
    colab.userdata = userdata  # type: ignore[attr-defined]
    google.colab = colab  # type: ignore[attr-defined]
    for name, module in (("google", google), ("google.colab", colab), ("google.colab.userdata", userdata)):
        monkeypatch.setitem(sys.modules, name, module)


def test_colab_userdata_is_a_key_source(monkeypatch):
    import keyring
    from keyring.backends.fail import Keyring as NoKeyring

    before = keyring.get_keyring()
    keyring.set_keyring(NoKeyring())
    try:
        _fake_colab(monkeypatch, {"DASHSCOPE_API_KEY": KEY_A, "QWEN_NB_LAB_API_KEY": KEY_B})
        profiles = load_profiles(env={"QWEN_NB_PROFILES": "lab"}, use_dotenv=False, use_stores=True)
        assert profiles["default"].source == "colab" and profiles["default"].key == KEY_A
        assert profiles["lab"].source == "colab" and profiles["lab"].key == KEY_B
        _fake_colab(monkeypatch, {"DASHSCOPE_API_KEY": KEY_A}, access=False)  # access not granted: not a source
        assert load_profiles(env={}, use_dotenv=False, use_stores=True) == {}
    finally:
        keyring.set_keyring(before)


def test_a_command_prints_the_key(tmp_path):
    cmd = f'"{sys.executable}" -c "print(\'  {KEY_A}  \')"'
    env = {"QWEN_NB_OPS_API_KEY_COMMAND": cmd, "DASHSCOPE_API_KEY_COMMAND": cmd}
    profiles = load_profiles(env=env, use_dotenv=False)
    assert profiles["ops"].key == KEY_A and profiles["ops"].source == "command"
    assert profiles["default"].source == "command"
    report = str(explain_config(env=env, use_dotenv=False, use_config=False))
    assert "command" in report and KEY_A not in report


def test_a_failing_command_is_a_config_error_without_its_output():
    secret_output = "sk-" + "9z" * 12
    cmd = f'"{sys.executable}" -c "import sys; print(\'{secret_output}\'); sys.exit(3)"'
    with pytest.raises(ConfigError, match="exit status 3") as info:
        load_profiles(env={"QWEN_NB_OPS_API_KEY_COMMAND": cmd}, use_dotenv=False)
    assert secret_output[3:12] not in str(info.value)
    with pytest.raises(ConfigError, match="not found"):
        load_profiles(env={"DASHSCOPE_API_KEY_COMMAND": "no-such-command-qwen-nb"}, use_dotenv=False)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_dotenv_with_a_key_warns_once_unless_git_ignored(tmp_path, monkeypatch):
    import qwen_nb._settings as settings_mod

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    dotenv = repo / ".env"
    dotenv.write_text(f"DASHSCOPE_API_KEY={KEY_A}\n")
    monkeypatch.setattr(settings_mod, "_warned_dotenv", set())
    with pytest.warns(UserWarning, match="not git-ignored") as rec:
        assert Settings(env={}, dotenv_path=dotenv).get("DASHSCOPE_API_KEY") == KEY_A
    assert all(KEY_A not in str(w.message) for w in rec)
    with warnings.catch_warnings():  # once per file
        warnings.simplefilter("error")
        Settings(env={}, dotenv_path=dotenv).get("DASHSCOPE_API_KEY")

    (repo / ".gitignore").write_text(".env\n")
    monkeypatch.setattr(settings_mod, "_warned_dotenv", set())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Settings(env={}, dotenv_path=dotenv).source("DASHSCOPE_API_KEY") == ".env"

    outside = tmp_path / "plain"  # not a git work tree: no warning
    outside.mkdir()
    (outside / ".env").write_text(f"DASHSCOPE_API_KEY={KEY_A}\n")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Settings(env={}, dotenv_path=outside / ".env").get("DASHSCOPE_API_KEY") == KEY_A
