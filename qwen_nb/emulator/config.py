"""Emulator configuration: workspaces, their demo keys and grants, pacing and faults.

Pure data and TOML loading; no web framework is imported here, so
``default_profiles()`` stays cheap for a notebook that talks to an emulator
running in another process (``QWEN_NB_EMULATOR=http://127.0.0.1:PORT``).

TOML format (see ``qwen_nb/data/emulator_default.toml``)::

    [emulator]
    ttft = 0.0              # seconds before the first token
    tokens_per_second = 0   # 0 = unpaced
    latency = 0.0           # extra fixed latency per request
    rate_limit = 0          # requests per key per window, 0 = off
    rate_window = 60.0
    reply_tokens = 0        # lengthen text replies to at least this many tokens, 0 = natural length
    fail_rate = 0.0         # fraction of model requests answering fail_status (500), at random
    throttle_rate = 0.0     # fraction of model requests answering 429 Throttling, at random
    retry_after = 1.5       # seconds sent as Retry-After on 429s (leave out: no header, like the service)

    [[workspace]]
    name = "team-a"                 # also the profile name
    id = "llm-a2c8c0cbb1380af9"     # workspace id (gateway path /{region}/ws/{id})
    region = "ap-southeast-1"
    default = false                 # the region's default workspace?
    keys = ["sk-..."]
    models = ["qwen-plus"]          # or "all"
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qwen_nb._regions import REGIONS, get_region
from qwen_nb.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "data" / "emulator_default.toml"


@dataclass(frozen=True)
class Workspace:
    """One emulated workspace: its id, region, API keys and granted models."""

    name: str
    id: str
    region: str
    keys: tuple[str, ...] = field(default=(), repr=False)
    #: granted models; None means every model (the default workspace)
    models: tuple[str, ...] | None = None
    default: bool = False


@dataclass(frozen=True)
class Pacing:
    """Pacing and faults; the values ``emu.reset()`` returns to."""

    ttft: float = 0.0
    tokens_per_second: float | None = None
    latency: float = 0.0
    rate_limit: int | None = None
    rate_window: float = 60.0
    #: the next N model requests answer 500 InternalError
    fail_next: int = 0
    #: status used by fail_next and fail_rate (500, 502, 503, 504, or 429 for a throttling answer)
    fail_status: int = 500
    #: fraction (0..1) of model requests that answer ``fail_status``, drawn from a seeded generator
    fail_rate: float = 0.0
    #: fraction (0..1) of model requests that answer 429 Throttling.RateQuota, drawn likewise
    throttle_rate: float = 0.0
    #: seconds sent as ``Retry-After`` (and ``retry-after-ms``) on 429 answers; None sends no such
    #: header, which is what the service does as far as its public documentation shows
    retry_after: float | None = None
    #: streams are dropped after this many data events (None: never)
    cut_after: int | None = None
    #: how many streams to cut (None: every stream while cut_after is set)
    cut_streams: int | None = None
    #: text replies are lengthened to at least this many tokens, deterministically (None: natural
    #: length, a few sentences); ``max_tokens`` still caps them
    reply_tokens: int | None = None

    def validated(self) -> Pacing:
        """Return self after checking every field, raising ``InputError`` on nonsense."""

        def nonneg(name: str, value: Any, *, integer: bool = False) -> None:
            kind = int if integer else (int, float)
            if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
                what = "integer" if integer else "number"
                raise InputError(f"Emulator setting {name}={value!r} must be a non-negative {what}.")

        nonneg("ttft", self.ttft)
        nonneg("latency", self.latency)
        nonneg("rate_window", self.rate_window)
        nonneg("fail_next", self.fail_next, integer=True)
        for name in ("fail_rate", "throttle_rate"):
            value = getattr(self, name)
            nonneg(name, value)
            if value > 1:
                raise InputError(f"Emulator setting {name}={value!r} must be a fraction between 0 and 1.")
        if self.retry_after is not None:
            nonneg("retry_after", self.retry_after)
        for name in ("tokens_per_second",):
            if getattr(self, name) is not None:
                nonneg(name, getattr(self, name))
        for name in ("rate_limit", "cut_after", "cut_streams", "reply_tokens"):
            if getattr(self, name) is not None:
                nonneg(name, getattr(self, name), integer=True)
        if self.fail_status not in (429, 500, 502, 503, 504):
            raise InputError(f"fail_status={self.fail_status!r} must be one of 429, 500, 502, 503, 504.")
        return self


PACING_FIELDS = tuple(Pacing.__dataclass_fields__)


@dataclass(frozen=True)
class EmulatorConfig:
    """Workspaces plus the default pacing of an emulator."""

    workspaces: tuple[Workspace, ...]
    pacing: Pacing = Pacing()

    def workspace(self, name_or_id: str) -> Workspace:
        """A workspace by profile name or workspace id."""
        for ws in self.workspaces:
            if name_or_id in (ws.name, ws.id):
                return ws
        names = ", ".join(ws.name for ws in self.workspaces)
        raise InputError(f"No emulator workspace named {name_or_id!r}.", fix=f"Use one of: {names}.")

    def with_pacing(self, **changes: Any) -> EmulatorConfig:
        """A copy with some pacing fields changed (None values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return replace(self, pacing=replace(self.pacing, **changes).validated())


def _pacing_from(table: dict[str, Any], source: str) -> Pacing:
    unknown = set(table) - set(PACING_FIELDS)
    if unknown:
        raise InputError(
            f"Unknown setting(s) {', '.join(sorted(unknown))} in [emulator] of {source}.",
            fix=f"Known settings: {', '.join(PACING_FIELDS)}.",
        )
    values = dict(table)
    # 0 means "off" in the file, None in code
    for name in ("tokens_per_second", "rate_limit", "cut_after", "cut_streams", "reply_tokens"):
        if values.get(name) == 0:
            values[name] = None
    return Pacing(**values).validated()


def _workspace_from(item: dict[str, Any], source: str, index: int) -> Workspace:
    where = f"workspace #{index + 1} of {source}"
    for required in ("name", "id", "region", "keys"):
        if required not in item:
            raise InputError(f"{where} has no {required!r}.", fix="Each [[workspace]] needs name, id, region, keys.")
    region = get_region(item["region"]).id
    keys = item["keys"]
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(keys, list) or not all(isinstance(k, str) and k.startswith("sk-") for k in keys):
        raise InputError(f"{where}: keys must be a list of strings starting with 'sk-'.")
    models = item.get("models", "all")
    if models in ("all", "*", None):
        grants = None
    elif isinstance(models, list) and all(isinstance(m, str) for m in models):
        grants = tuple(models)
    else:
        raise InputError(f"{where}: models must be \"all\" or a list of model names.")
    return Workspace(
        name=str(item["name"]),
        id=str(item["id"]),
        region=region,
        keys=tuple(keys),
        models=grants,
        default=bool(item.get("default", False)),
    )


def parse_config(data: dict[str, Any], source: str = "emulator config") -> EmulatorConfig:
    """Build an ``EmulatorConfig`` from an already-parsed TOML document."""
    unknown = set(data) - {"emulator", "workspace"}
    if unknown:
        raise InputError(f"Unknown table(s) {', '.join(sorted(unknown))} in {source}.",
                         fix="Use [emulator] and [[workspace]].")
    pacing = _pacing_from(data.get("emulator", {}), source)
    items = data.get("workspace", [])
    if not isinstance(items, list) or not items:
        raise InputError(f"{source} declares no [[workspace]].")
    workspaces = tuple(_workspace_from(it, source, i) for i, it in enumerate(items))
    seen_keys: dict[str, str] = {}
    seen: set[str] = set()
    for ws in workspaces:
        for label in (ws.name, ws.id):
            if label in seen:
                raise InputError(f"Workspace name or id {label!r} is used twice in {source}.")
            seen.add(label)
        for key in ws.keys:
            if key in seen_keys:
                raise InputError(f"Workspaces {seen_keys[key]!r} and {ws.name!r} share a key in {source}.")
            seen_keys[key] = ws.name
    return EmulatorConfig(workspaces=workspaces, pacing=pacing)


def load_config(path: str | os.PathLike[str] | None = None) -> EmulatorConfig:
    """Read a TOML config file; ``None`` reads the built-in default."""
    p = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot read emulator config {str(p)!r}: {exc.strerror}.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"Emulator config {str(p)!r} is not valid TOML: {exc}.") from None
    return parse_config(data, source=str(p))


_DEFAULT: EmulatorConfig | None = None


def default_config() -> EmulatorConfig:
    """The built-in configuration (cached)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_config(None)
    return _DEFAULT


def resolve_config(config: EmulatorConfig | str | os.PathLike[str] | None) -> EmulatorConfig:
    """Accept a config object, a TOML path or None (the built-in default)."""
    if config is None:
        return default_config()
    if isinstance(config, EmulatorConfig):
        return config
    if isinstance(config, (str, os.PathLike)):
        return load_config(config)
    raise InputError(f"config must be None, a path or an EmulatorConfig, not {type(config).__name__}.")


def profiles_for(config: EmulatorConfig, root_url: str) -> dict:
    """One ``Profile`` per workspace of ``config`` (source ``"emulator"``), keyed by name.

    ``root_url`` is unused by the profiles themselves (regions carry URLs) but kept
    so callers state which emulator the keys belong to.
    """
    from qwen_nb._profiles import Profile

    del root_url
    return {
        ws.name: Profile(
            ws.name,
            region=ws.region,
            key=ws.keys[0],
            workspace=None if ws.default else ws.id,
            models=ws.models,
            source="emulator",
        )
        for ws in config.workspaces
        if ws.keys
    }


def default_profiles(root_url: str) -> dict:
    """The demo profiles of an emulator with the built-in config running at ``root_url``."""
    return profiles_for(default_config(), root_url)


def running_profiles(root_url: str, timeout: float = 2.0) -> dict:
    """The profiles of the emulator running at ``root_url``, asked from its ``/_emulator/workspaces``.

    So notebooks pointed at an emulator started with its own ``--config`` get that config's
    workspaces; an emulator that does not answer gives the built-in demo profiles.
    """
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(root_url.rstrip("/") + "/_emulator/workspaces", timeout=timeout) as resp:
            spaces = json.loads(resp.read())
        workspaces = tuple(
            Workspace(name=w["name"], id=w["id"], region=w["region"], keys=tuple(w.get("keys") or ()),
                      models=None if w.get("models") is None else tuple(w["models"]), default=bool(w.get("default")))
            for w in spaces
        )
    except (OSError, ValueError, KeyError, TypeError):
        return default_profiles(root_url)
    return profiles_for(replace(default_config(), workspaces=workspaces), root_url)


def demo_keys(config: EmulatorConfig | None = None) -> frozenset[str]:
    """Every key of the emulator's workspaces (handy to tell demo keys from real ones)."""
    cfg = config or default_config()
    return frozenset(k for ws in cfg.workspaces for k in ws.keys)


__all__ = [
    "DEFAULT_CONFIG_PATH",
    "REGIONS",
    "EmulatorConfig",
    "Pacing",
    "Workspace",
    "default_config",
    "default_profiles",
    "demo_keys",
    "load_config",
    "parse_config",
    "profiles_for",
    "running_profiles",
    "resolve_config",
]
