"""The settings chain: explicit > environment > ``.env`` > secret stores > user config file > defaults, and sources.

Every module that needs a setting asks a ``Settings`` object; nothing else in qwen-nb reads
``os.environ``. Each source is read once per ``Settings`` (``settings()`` returns a fresh
one, so a changed environment is seen on the next call). ``explain_config()`` shows every
setting qwen-nb knows, its value (keys masked) and its source, like pydantic-settings'
sources.

* environment: ``os.environ`` (or a mapping given for tests);
* ``.env``: the nearest ``.env`` found from the working directory up (python-dotenv), or a
  given path;
* user config file: ``$QWEN_NB_CONFIG`` or ``config.toml`` in the per-user config dir
  (platformdirs), a flat TOML table of the same names (``DASHSCOPE_REGION = "cn-beijing"``).

Keys (``DASHSCOPE_API_KEY``, ``QWEN_NB_<NAME>_API_KEY``) are also looked up, after ``.env``
and in this order, in the secret stores people already use:

* ``keyring``: the OS keyring through the ``keyring`` package (the optional extra
  ``qwen-nb[keyring]``), service ``qwen-nb``, user name the variable's name;
* ``colab``: Google Colab's secrets (``google.colab.userdata``), when running in Colab;
* ``command``: the output of ``<VAR>_COMMAND`` (e.g. ``QWEN_NB_TEAM_API_KEY_COMMAND="op read
  op://vault/team/key"``), run without a shell, stdout stripped.

A ``.env`` file that holds a key and is not git-ignored (inside a git work tree) is warned
about once per file. ``QWEN_NB_PROFILES=team-a,team-b`` names profiles whose keys live only in
a secret store (the stores cannot be listed).
"""

from __future__ import annotations

import html
import logging
import os
import shlex
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwen_nb import facts
from qwen_nb._secrets import mask_key, scrub
from qwen_nb.errors import ConfigError

log = logging.getLogger("qwen_nb")

SOURCES = ("explicit", "environment", ".env", "keyring", "colab", "command", "config file", "default")
#: the secret stores keys are looked up in, in order, after ``.env``
SECRET_STORES = ("keyring", "colab", "command")
#: the keyring's service name (the user name is the variable, e.g. ``QWEN_NB_TEAM_API_KEY``)
KEYRING_SERVICE = "qwen-nb"
#: seconds a key command may take
COMMAND_TIMEOUT = 10.0
#: seconds ``git check-ignore`` may take
GIT_TIMEOUT = 3.0

#: settings qwen-nb reads besides the per-profile ones: name -> (default, what it is)
KNOWN: dict[str, tuple[str | None, str]] = {
    facts.DEFAULT_KEY_VAR: (None, "API key of the default profile"),
    "DASHSCOPE_REGION": (facts.DEFAULT_REGION, "region of the default profile"),
    "DASHSCOPE_WORKSPACE": (None, "workspace id of the default profile (workspace host)"),
    "DASHSCOPE_BASE_URL": (None, "explicit base host of the default profile (proxy, gateway)"),
    "QWEN_NB_DEFAULT_MODELS": (None, "models granted to the default profile's workspace"),
    "QWEN_NB_DEFAULT_BUDGET": (None, "budget of the default profile"),
    "QWEN_NB_LEDGER": (None, "usage ledger file (default: the per-user data dir)"),
    "QWEN_NB_PRICES": (None, "extra price file (TOML)"),
    "QWEN_NB_EMULATOR": (None, "URL of a running emulator to use when no key is set"),
    "QWEN_NB_EMULATOR_KEY": (None, "your key on that emulator (a class handout's): only its workspace is used"),
    "QWEN_NB_TEACHER_TOKEN": (None, "teacher token of a class emulator (qwen-nb emulator reset|usage)"),
    "QWEN_NB_CONFIG": (None, "user config file (default: config.toml in the per-user config dir)"),
    "QWEN_NB_PROFILES": (None, "profile names whose keys are in a secret store (keyring, Colab, command)"),
    f"{facts.DEFAULT_KEY_VAR}_COMMAND": (None, "command that prints the default profile's key"),
}
#: per-profile settings: ``QWEN_NB_<NAME>_<FIELD>``
PROFILE_FIELDS = ("API_KEY", "API_KEY_COMMAND", "REGION", "WORKSPACE", "MODELS", "BUDGET", "BASE_URL")


def is_secret(name: str) -> bool:
    """True for settings that hold keys (shown masked, never in full)."""
    return bool(facts.KEY_VAR.match(name))


@dataclass(frozen=True)
class Setting:
    """One setting's value and where it came from."""

    name: str
    value: str | None
    source: str
    about: str = ""

    @property
    def shown(self) -> str:
        """The value as it may be shown (keys masked, anything key-shaped in other values too)."""
        if self.value is None:
            return "—"
        return mask_key(self.value) if is_secret(self.name) else scrub(self.value)


def _config_path(env: Mapping[str, str]) -> Path:
    given = env.get("QWEN_NB_CONFIG")
    if given:
        return Path(given).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("qwen-nb")) / "config.toml"


def _read_config(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Cannot read the qwen-nb config file {str(path)!r}: {exc}.",
                          fix="Fix the file (a flat TOML table like DASHSCOPE_REGION = \"cn-beijing\"), or set "
                          "QWEN_NB_CONFIG to another file.") from None
    return {str(k): str(v) for k, v in data.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)}


# ------------------------------------------------------------------------------ secret stores


def keyring_available() -> bool:
    """True when the ``keyring`` package can be imported (``pip install qwen-nb[keyring]``)."""
    try:
        import keyring  # noqa: F401
    except Exception:
        return False
    return True


def from_keyring(name: str) -> str | None:
    """The OS keyring's password for ``name`` under service ``qwen-nb``, or None (no package, no backend, no entry)."""
    try:
        import keyring
    except Exception:
        return None
    try:
        value = keyring.get_password(KEYRING_SERVICE, name)
    except Exception as exc:  # no usable backend, a locked keyring ...: not a key source here
        log.debug("qwen-nb: keyring lookup of %s failed (%s)", name, type(exc).__name__)
        return None
    return value or None


def store_in_keyring(name: str, key: str) -> None:
    """Save ``key`` in the OS keyring as ``name`` (service ``qwen-nb``); a ``ConfigError`` if that is not possible."""
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, name, key)
    except Exception as exc:
        raise ConfigError(f"The key could not be saved in the OS keyring ({type(exc).__name__}).",
                          fix="Install and configure a keyring backend (pip install qwen-nb[keyring]), or set "
                          f"{name} in the environment or a git-ignored .env file.") from None


def from_colab(name: str) -> str | None:
    """Google Colab's secret ``name`` (``google.colab.userdata``) when running in Colab, else None."""
    if "google.colab" not in sys.modules:  # Colab imports it at start-up; elsewhere it is absent
        return None
    try:
        from google.colab import userdata
    except Exception:
        return None
    try:
        value = userdata.get(name)
    except Exception as exc:  # SecretNotFoundError, NotebookAccessError (access not granted) ...
        log.debug("qwen-nb: no Colab secret %s (%s)", name, type(exc).__name__)
        return None
    return value if isinstance(value, str) and value.strip() else None


def run_key_command(var: str, command: str) -> str:
    """The key printed by ``command`` (the value of setting ``var``), run without a shell; its stdout stripped.

    A failure is a ``ConfigError`` naming the setting and the exit status, never the command's output.
    """
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"{var} is not a valid command line ({exc}).",
                          fix=f"Write {var} as a command and its arguments, quoted like a shell would.") from None
    if not argv:
        raise ConfigError(f"{var} is empty.", fix=f"Give {var} a command that prints the key, or unset it.")
    fix = f"Run the command of {var} in a terminal and check that it prints only the key."
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT, shell=False, check=False)
    except FileNotFoundError:
        raise ConfigError(f"The command of {var} was not found: {argv[0]!r}.", fix=fix) from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"The command of {var} did not finish within {COMMAND_TIMEOUT:g} s.", fix=fix) from None
    except OSError as exc:
        raise ConfigError(f"The command of {var} could not be run ({type(exc).__name__}).", fix=fix) from None
    if done.returncode != 0:
        raise ConfigError(f"The command of {var} failed with exit status {done.returncode} (its output is not "
                          "shown: it may hold a secret).", fix=fix)
    key = (done.stdout or "").strip()
    if not key:
        raise ConfigError(f"The command of {var} printed nothing.", fix=fix)
    return key


_warned_dotenv: set[str] = set()
_warned_lock = threading.Lock()


def _git_ignored(path: Path) -> bool | None:
    """True / False if ``path`` is (not) git-ignored; None outside a git work tree (or without git)."""
    folder = str(path.parent)
    try:
        inside = subprocess.run(["git", "-C", folder, "rev-parse", "--is-inside-work-tree"], capture_output=True,
                                text=True, timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL)
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return None
        done = subprocess.run(["git", "-C", folder, "check-ignore", "-q", path.name], capture_output=True,
                              timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode == 0:
        return True
    return False if done.returncode == 1 else None


def warn_if_dotenv_not_ignored(path: str | os.PathLike[str], values: Mapping[str, str]) -> None:
    """Warn (once per file) when a ``.env`` that holds a key is inside a git work tree and not git-ignored."""
    if not any(facts.KEY_VAR.match(k) and str(v).strip() for k, v in values.items()):
        return
    resolved = Path(path).resolve()
    with _warned_lock:
        if str(resolved) in _warned_dotenv:
            return
        _warned_dotenv.add(str(resolved))
    if _git_ignored(resolved) is False:
        warnings.warn(
            f"{resolved} holds an API key and is not git-ignored: a commit would publish the key. "
            "Add '.env' to .gitignore (or keep the key in the OS keyring: pip install qwen-nb[keyring]).",
            stacklevel=4,
        )


def read_dotenv(path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """The values of a ``.env`` file (``path``, or the nearest one from the working directory up)."""
    from dotenv import dotenv_values

    found = dotenv_file(path)
    if found is None:
        return {}
    return {k: v for k, v in dotenv_values(found).items() if v is not None}


def dotenv_file(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The ``.env`` file to read: ``path`` if it is a file, else (no path) the nearest one from the working dir up."""
    from dotenv import find_dotenv

    if path is None:
        found = find_dotenv(usecwd=True)
        if not found:
            return None
        path = found
    return Path(path) if Path(path).is_file() else None


class Settings:
    """The layered settings of one moment: ask ``get(name)``, ``source(name)``, or ``explain()``."""

    def __init__(
        self,
        explicit: Mapping[str, str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        dotenv_path: str | os.PathLike[str] | None = None,
        use_dotenv: bool = True,
        config_path: str | os.PathLike[str] | None = None,
        use_config: bool = True,
        use_stores: bool | None = None,
    ) -> None:
        """``use_stores``: look keys up in the keyring and Colab's secrets (default: unless ``env`` is given,
        so a test or tutorial that gives its environment sees only that); key commands always run."""
        self._explicit = dict(explicit or {})
        self._env = dict(os.environ if env is None else env)
        self._dotenv_path = dotenv_path
        self._use_dotenv = use_dotenv
        self._config_path = Path(config_path) if config_path is not None else None
        self._use_config = use_config
        self._use_stores = env is None if use_stores is None else bool(use_stores)
        self._layers: list[tuple[str, dict[str, str]]] | None = None
        #: secret-store answers of this Settings: name -> (value, source)
        self._stored: dict[str, tuple[str | None, str]] = {}
        self._lock = threading.Lock()

    def _sources(self) -> list[tuple[str, dict[str, str]]]:
        if self._layers is None:
            dotenv: dict[str, str] = {}
            if self._use_dotenv:
                found = dotenv_file(self._dotenv_path)
                if found is not None:
                    dotenv = read_dotenv(found)
                    warn_if_dotenv_not_ignored(found, dotenv)
            config: dict[str, str] = {}
            if self._use_config:
                config = _read_config(self._config_path or _config_path({**dotenv, **self._env}))
            self._layers = [("explicit", self._explicit), ("environment", self._env), (".env", dotenv),
                            ("config file", config)]
        return self._layers

    @property
    def env(self) -> dict[str, str]:
        """The environment layer (a copy)."""
        return dict(self._env)

    def lookup(self, name: str) -> Setting:
        """``name``'s value from the first source that has it (empty values count as unset).

        Keys are looked up in the secret stores (keyring, Colab, command) after ``.env``.
        """
        about = KNOWN.get(name, (None, ""))[1]
        layers = self._sources()
        for source, values in layers:
            if source == "config file" and is_secret(name):
                value, store = self._from_stores(name)
                if value is not None:
                    return Setting(name, value, store, about)
            value = values.get(name)
            if value is not None and str(value).strip():
                return Setting(name, str(value), source, about)
        default = KNOWN.get(name, (None, ""))[0]
        return Setting(name, default, "default", about)

    def _from_stores(self, name: str) -> tuple[str | None, str]:
        with self._lock:
            if name not in self._stored:
                self._stored[name] = self._ask_stores(name)
            return self._stored[name]

    def _ask_stores(self, name: str) -> tuple[str | None, str]:
        readers: list[tuple[str, Callable[[str], str | None]]] = []
        if self._use_stores:
            readers += [("keyring", from_keyring), ("colab", from_colab)]
        for store, read in readers:
            value = read(name)
            if value is not None:
                return value, store
        var = f"{name}_COMMAND"
        command = next((str(values[var]) for _, values in self._sources()
                        if values.get(var) is not None and str(values[var]).strip()), None)
        if command is not None:
            return run_key_command(var, command), "command"
        return None, "default"

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of ``name`` (stripped), or ``default``."""
        value = self.lookup(name).value
        return value.strip() if isinstance(value, str) and value.strip() else default

    def source(self, name: str) -> str:
        """Where ``name``'s value comes from: one of ``SOURCES``."""
        return self.lookup(name).source

    def names(self) -> list[str]:
        """Every setting name any source holds, sorted."""
        seen: set[str] = set()
        for _, values in self._sources():
            seen.update(values)
        return sorted(seen)

    def profile_names(self) -> list[str]:
        """``<NAME>`` of every named profile with a key, in name order (the one place they are found).

        Named by a ``QWEN_NB_<NAME>_API_KEY`` or ``QWEN_NB_<NAME>_API_KEY_COMMAND`` setting, or
        listed in ``QWEN_NB_PROFILES`` (``team-a,team-b``: their keys may be in the keyring or
        Colab's secrets, which cannot be listed). A listed profile without a key anywhere is
        warned about and left out.
        """
        candidates: set[str] = set()
        for var in self.names():
            m = facts.NAMED_KEY_VAR.match(var.removesuffix("_COMMAND"))
            if m:
                candidates.add(m.group(1))
        listed = [n.strip().upper().replace("-", "_") for n in (self.get("QWEN_NB_PROFILES") or "").split(",")
                  if n.strip()]
        for raw in listed:
            if not raw.replace("_", "").isalnum():
                raise ConfigError(f"QWEN_NB_PROFILES names {scrub(raw.lower())!r}, which is not a profile name.",
                                  fix="List names like QWEN_NB_PROFILES=team-a,team-b (letters, digits, - and _).")
            if raw == "DEFAULT":
                continue
            candidates.add(raw)
        out = []
        for raw in sorted(candidates):
            if self.get(f"QWEN_NB_{raw}_API_KEY"):
                out.append(raw)
            elif raw in listed:
                warnings.warn(f"QWEN_NB_PROFILES lists {raw.lower().replace('_', '-')!r}, but no key "
                              f"QWEN_NB_{raw}_API_KEY was found (environment, .env, keyring, Colab, command).",
                              stacklevel=3)
        return out

    def ours(self) -> Iterator[Setting]:
        """The settings qwen-nb reads, with their values and sources (keys masked when shown)."""
        names = list(KNOWN)
        for raw in self.profile_names():
            names += [f"QWEN_NB_{raw}_{field}" for field in PROFILE_FIELDS]
        for name in dict.fromkeys(names):
            setting = self.lookup(name)
            if setting.value is not None or name in KNOWN:
                yield setting

    def explain(self) -> ConfigReport:
        """Every setting qwen-nb reads, its value (keys masked) and where it came from."""
        return ConfigReport(list(self.ours()))


class ConfigReport(list):
    """``explain_config()``: a list of ``Setting`` that shows as a table (keys masked)."""

    COLUMNS = ("setting", "value", "source", "about")

    def _rows(self) -> list[tuple[str, str, str, str]]:
        return [(s.name, s.shown, s.source, s.about) for s in self]

    def __str__(self) -> str:
        rows = self._rows()
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(self.COLUMNS)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        return "\n".join([fmt.format(*self.COLUMNS)] + [fmt.format(*r).rstrip() for r in rows])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{c}</th>" for c in self.COLUMNS)
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in r) + "</tr>"
                       for r in self._rows())
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def settings(**kw: Any) -> Settings:
    """The settings as they are now (a fresh read of the environment, ``.env`` and config file)."""
    return Settings(**kw)


def explain_config(**kw: Any) -> ConfigReport:
    """Each setting qwen-nb reads, its value (keys masked) and where it came from."""
    return Settings(**kw).explain()
