"""The settings chain: explicit > environment > ``.env`` > user config file > defaults, and where each value came from.

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
"""

from __future__ import annotations

import html
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwen_nb import facts
from qwen_nb._secrets import mask_key
from qwen_nb.errors import ConfigError

SOURCES = ("explicit", "environment", ".env", "config file", "default")

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
    "QWEN_NB_CONFIG": (None, "user config file (default: config.toml in the per-user config dir)"),
}
#: per-profile settings: ``QWEN_NB_<NAME>_<FIELD>``
PROFILE_FIELDS = ("API_KEY", "REGION", "WORKSPACE", "MODELS", "BUDGET", "BASE_URL")


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
        """The value as it may be shown (keys masked)."""
        if self.value is None:
            return "—"
        return mask_key(self.value) if is_secret(self.name) else self.value


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


def read_dotenv(path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """The values of a ``.env`` file (``path``, or the nearest one from the working directory up)."""
    from dotenv import dotenv_values, find_dotenv

    if path is None:
        found = find_dotenv(usecwd=True)
        if not found:
            return {}
        path = found
    if not Path(path).is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


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
    ) -> None:
        self._explicit = dict(explicit or {})
        self._env = dict(os.environ if env is None else env)
        self._dotenv_path = dotenv_path
        self._use_dotenv = use_dotenv
        self._config_path = Path(config_path) if config_path is not None else None
        self._use_config = use_config
        self._layers: list[tuple[str, dict[str, str]]] | None = None

    def _sources(self) -> list[tuple[str, dict[str, str]]]:
        if self._layers is None:
            dotenv = read_dotenv(self._dotenv_path) if self._use_dotenv else {}
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
        """``name``'s value from the first source that has it (empty values count as unset)."""
        for source, values in self._sources():
            value = values.get(name)
            if value is not None and str(value).strip():
                return Setting(name, str(value), source, KNOWN.get(name, (None, ""))[1])
        default, about = KNOWN.get(name, (None, ""))
        return Setting(name, default, "default", about)

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
        """``<NAME>`` of every ``QWEN_NB_<NAME>_API_KEY`` with a value, in name order (the one place they are found)."""
        out = []
        for var in self.names():
            m = facts.NAMED_KEY_VAR.match(var)
            if m and self.get(var):
                out.append(m.group(1))
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
