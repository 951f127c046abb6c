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
    keys = ["sk-..."]               # or {key = "sk-...", <flags>} for flags of that key only
    models = ["qwen-plus"]          # or "all"
    # the service's failures, each answering with one row of qwen_nb.facts.ERRORS (all optional):
    free_tier_only = true           # 403 AllocationQuota.FreeTierOnly (or a list of models)
    overdue = true                  # 400 Arrearage
    bill_overdue = "prepaid"        # 429 PrepaidBillOverdue ("postpaid": PostpaidBillOverdue)
    unpurchased = ["qwen-max"]      # 403 AccessDenied.Unpurchased for these models
    budget_exhausted = true         # 429, Budget Management stopped the calls
    subscribed = false              # 429 CommodityNotPurchased
    blocked_words_input = ["..."]   # 400 DataInspectionFailed before the answer (a word in the prompt)
    blocked_words_output = ["..."]  # the answer (or a prompt) holding a word: streams fail midway, others get 400
    tokens_per_minute = 5000        # 429 Throttling.AllocationQuota once the minute's tokens pass it (per model)
    burst_limit = 5                 # 429 Throttling.BurstRate past this many requests within 1 s (per model)
    rate_limit = 60                 # 429 Throttling.RateQuota past this many requests per rate_window (per model)
    fail_with = "unavailable"       # any row key of qwen_nb.facts.ERRORS ...
    fail_models = ["qwen-max"]      # ... only for these models (default: every model)
    fail_times = 2                  # ... only this many times (default: every time)
    error_after = 3                 # ... inside streams, after this many events (default: before the first)
    budget = 0.50                   # 429 (Budget Management) once the estimated spend passes it (region currency)
    manage_grants = true            # its own key may change its own grants (a class: each student their own)

    [classroom]                     # written by ``qwen-nb classroom init``; makes the control endpoints,
    name = "Qwen 101"               # the request log and usage need the teacher token
    teacher_token = "sk-teacher-..."
    url = "http://192.168.1.20:8765"  # the address students use (the handout's QWEN_NB_EMULATOR)
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


#: the service answers a flag leads to (flag -> row keys of ``qwen_nb.facts.ERRORS``)
FLAG_ROWS: dict[str, tuple[str, ...]] = {
    "free_tier_only": ("free_tier_only",),
    "overdue": ("arrearage",),
    "bill_overdue": ("prepaid_overdue", "postpaid_overdue"),
    "unpurchased": ("unpurchased",),
    "budget_exhausted": ("budget",),
    "subscribed": ("not_subscribed",),
    "blocked_words_input": ("data_inspection",),
    "blocked_words_output": ("data_inspection_output",),
    "tokens_per_minute": ("token_limit",),
    "burst_limit": ("burst_rate",),
    "rate_limit": ("rate_limit",),
    "fail_with": (),
    "budget": ("budget",),
}
BILLS = {"prepaid": "prepaid_overdue", "postpaid": "postpaid_overdue"}


@dataclass(frozen=True)
class Flags:
    """How the service treats a workspace (or one of its keys): account states, limits and faults.

    Each flag answers like the service with one row of ``qwen_nb.facts.ERRORS`` (``FLAG_ROWS``);
    the defaults answer every call normally.
    """

    #: 403 ``AllocationQuota.FreeTierOnly``: True for every model, or the models whose free tier is used up
    free_tier_only: bool | tuple[str, ...] = False
    #: 400 ``Arrearage``: the account is overdue
    overdue: bool = False
    #: "prepaid" or "postpaid": 429 ``PrepaidBillOverdue`` / ``PostpaidBillOverdue``
    bill_overdue: str | None = None
    #: 403 ``AccessDenied.Unpurchased`` for these models
    unpurchased: tuple[str, ...] = ()
    #: 429: the budget set in the console's Budget Management is used up
    budget_exhausted: bool = False
    #: False: 429 ``CommodityNotPurchased``
    subscribed: bool = True
    #: 400 ``DataInspectionFailed`` ("Input data ...") when a prompt holds one of these words (any case)
    blocked_words_input: tuple[str, ...] = ()
    #: ``DataInspectionFailed`` ("Output data ...") when the answer or the prompt holds one of these words:
    #: a stream fails after some events, other calls get the 400
    blocked_words_output: tuple[str, ...] = ()
    #: 429 ``Throttling.AllocationQuota`` once the last minute's input+output tokens of a model pass this
    tokens_per_minute: int | None = None
    #: 429 ``Throttling.BurstRate`` for a model's request past this many within one second
    burst_limit: int | None = None
    #: 429 ``Throttling.RateQuota`` for a model's request past this many within ``rate_window`` seconds
    rate_limit: int | None = None
    #: answer model calls with this row of ``qwen_nb.facts.ERRORS`` (its key, e.g. "unavailable")
    fail_with: str | None = None
    #: ... only calls of these models (None: every model)
    fail_models: tuple[str, ...] | None = None
    #: ... only this many times (None: every time)
    fail_times: int | None = None
    #: ... streams: after this many events (an error event inside the stream); None: before the first
    error_after: int | None = None
    #: 429 (Budget Management) once the estimated spend of the workspace (or of a key with its own
    #: budget) passes this, in the region's currency; None: no budget
    budget: float | None = None

    def validated(self, where: str = "emulator flags") -> Flags:
        """Return self after checking every flag, raising ``InputError`` on nonsense."""
        from qwen_nb import facts

        for name in ("overdue", "budget_exhausted", "subscribed"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{where}: {name} must be true or false, got {getattr(self, name)!r}.")
        fto = self.free_tier_only
        if not isinstance(fto, bool) and not _names(fto):
            raise InputError(f"{where}: free_tier_only must be true, false or a list of model names, got {fto!r}.")
        if self.bill_overdue is not None and self.bill_overdue not in BILLS:
            raise InputError(f"{where}: bill_overdue must be \"prepaid\" or \"postpaid\", got {self.bill_overdue!r}.")
        for name in ("unpurchased", "blocked_words_input", "blocked_words_output"):
            if not _names(getattr(self, name), empty=True):
                raise InputError(f"{where}: {name} must be a list of strings, got {getattr(self, name)!r}.")
        if self.fail_models is not None and not _names(self.fail_models):
            raise InputError(f"{where}: fail_models must be a list of model names, got {self.fail_models!r}.")
        for name in ("tokens_per_minute", "burst_limit", "rate_limit", "fail_times", "error_after"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise InputError(f"{where}: {name}={value!r} must be a non-negative integer.")
        if self.fail_with is not None and self.fail_with not in facts.ERRORS:
            raise InputError(f"{where}: fail_with={self.fail_with!r} is not a row of the service's errors.",
                             fix=f"Use one of: {', '.join(facts.ERRORS)}.")
        if self.budget is not None and (isinstance(self.budget, bool) or not isinstance(self.budget, (int, float))
                                        or self.budget < 0 or self.budget != self.budget):
            raise InputError(f"{where}: budget={self.budget!r} must be a non-negative amount (the region's currency).")
        if self.fail_with is None and self.error_after is not None:
            raise InputError(f"{where}: error_after needs fail_with (the error to send inside the stream).")
        return self

    def changed(self, **changes: Any) -> Flags:
        """A copy with ``changes`` (lists become tuples; unknown names raise ``InputError``)."""
        return replace(self, **flag_values(changes, "emulator flags")).validated()


FLAG_FIELDS = tuple(Flags.__dataclass_fields__)


def _names(value: Any, empty: bool = False) -> bool:
    return isinstance(value, tuple) and (empty or bool(value)) and all(isinstance(v, str) and v for v in value)


def flag_values(table: dict[str, Any], where: str) -> dict[str, Any]:
    """Flags read from TOML or JSON: names checked, lists made tuples, 0 limits meaning "off"."""
    unknown = set(table) - set(FLAG_FIELDS)
    if unknown:
        raise InputError(f"Unknown workspace flag(s) {', '.join(sorted(unknown))} in {where}.",
                         fix=f"Known flags: {', '.join(FLAG_FIELDS)}.")
    out = {}
    for name, value in table.items():
        if isinstance(value, list):
            value = tuple(value)
        if name in ("tokens_per_minute", "burst_limit", "rate_limit") and value == 0:
            value = None
        out[name] = value
    return out


@dataclass(frozen=True)
class Workspace:
    """One emulated workspace: its id, region, API keys, granted models and flags."""

    name: str
    id: str
    region: str
    keys: tuple[str, ...] = field(default=(), repr=False)
    #: granted models; None means every model (the default workspace)
    models: tuple[str, ...] | None = None
    default: bool = False
    #: how the service treats the workspace's calls (all normal by default)
    flags: Flags = Flags()
    #: key -> flags of that key only (they replace the workspace's flags of the same names)
    key_flags: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False, hash=False)
    #: its own keys may change its own grants through the permissions API (in a class, each student
    #: manages their own workspace; otherwise only the region's default-workspace key may)
    manage_grants: bool = False


@dataclass(frozen=True)
class Classroom:
    """The ``[classroom]`` table: a class served by one emulator, and the teacher's token."""

    name: str = "class"
    #: the token of the control endpoints, the request log and usage (``Authorization: Bearer``)
    teacher_token: str = field(default="", repr=False)
    #: the address students use (what the handout's ``QWEN_NB_EMULATOR`` says), if known
    url: str | None = None


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
    #: the Batch API's clock: emulated seconds per real second (86,400 / 5 runs a "24 h" job in 5 s)
    batch_speed: float = 3600.0
    #: emulated hours a batch job takes from in_progress to done, whatever its size (past its
    #: ``completion_window`` it expires with the lines done so far)
    batch_hours: float = 1.0
    #: fraction (0..1) of a batch job's lines that fail (500 InternalError in its error file), drawn
    #: from a generator seeded by the line's custom_id, so a run repeats
    batch_fail_rate: float = 0.0

    def validated(self) -> Pacing:
        """Return self after checking every field, raising ``InputError`` on nonsense."""

        def nonneg(name: str, value: Any, *, integer: bool = False) -> None:
            kind = int if integer else (int, float)
            if isinstance(value, bool) or not isinstance(value, kind) or value < 0 or value != value \
                    or value == float("inf"):
                what = "integer" if integer else "number"
                raise InputError(f"Emulator setting {name}={value!r} must be a finite non-negative {what}.",
                                 fix="Use seconds or counts such as ttft=0.2 (inf would make every request hang).")

        nonneg("ttft", self.ttft)
        nonneg("latency", self.latency)
        nonneg("rate_window", self.rate_window)
        nonneg("fail_next", self.fail_next, integer=True)
        nonneg("batch_hours", self.batch_hours)
        nonneg("batch_speed", self.batch_speed)
        if not self.batch_speed:
            raise InputError("Emulator setting batch_speed must be above 0 (emulated seconds per real second).")
        for name in ("fail_rate", "throttle_rate", "batch_fail_rate"):
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
    #: set by a ``[classroom]`` table: the emulator serves a class (see ``Classroom``)
    classroom: Classroom | None = None

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
    if isinstance(keys, (str, dict)):
        keys = [keys]
    key_flags: dict[str, dict[str, Any]] = {}
    if isinstance(keys, list):
        plain = []
        for i, k in enumerate(keys):
            if isinstance(k, dict):  # {key = "sk-...", <flags of this key>}
                own = {n: v for n, v in k.items() if n != "key"}
                k = k.get("key")
                if isinstance(k, str):
                    values = flag_values(own, f"key #{i + 1} of {where}")
                    replace(Flags(), **values).validated(f"key #{i + 1} of {where}")
                    key_flags[k] = values
            plain.append(k)
        keys = plain
    if isinstance(keys, list) and not keys:
        raise InputError(f"{where} has no key (keys = []): nobody could call it.",
                         fix='Give it at least one, e.g. keys = ["sk-' + '0' * 32 + '"].')
    if not isinstance(keys, list) or not all(isinstance(k, str) and k.startswith("sk-") for k in keys):
        raise InputError(f"{where}: keys must be a list of strings starting with 'sk-' (or {{key = \"sk-...\", "
                         "<flags>}} tables).")
    flags = replace(Flags(), **flag_values({n: v for n, v in item.items() if n in FLAG_FIELDS}, where)).validated(
        where)
    unknown = set(item) - {"name", "id", "region", "keys", "models", "default", "manage_grants", *FLAG_FIELDS}
    if unknown:
        raise InputError(f"Unknown setting(s) {', '.join(sorted(unknown))} in {where}.",
                         fix=f"A [[workspace]] has name, id, region, keys, models, default, manage_grants and the "
                         f"flags {', '.join(FLAG_FIELDS)}.")
    if not isinstance(item.get("manage_grants", False), bool):
        raise InputError(f"{where}: manage_grants must be true or false.")
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
        flags=flags,
        key_flags=key_flags,
        manage_grants=bool(item.get("manage_grants", False)),
    )


def new_token() -> str:
    """A fresh teacher token: key-shaped (``sk-teacher-`` + 32 hex digits), so every scrubber masks it."""
    import secrets

    return "sk-teacher-" + secrets.token_hex(16)


def _classroom_from(table: Any, source: str) -> Classroom:
    if not isinstance(table, dict):
        raise InputError(f"[classroom] of {source} must be a table.")
    unknown = set(table) - {"name", "teacher_token", "url"}
    if unknown:
        raise InputError(f"Unknown setting(s) {', '.join(sorted(unknown))} in [classroom] of {source}.",
                         fix="[classroom] has name, teacher_token and url.")
    token = table.get("teacher_token")
    if not isinstance(token, str) or len(token) < 16:
        raise InputError(f"[classroom] of {source} needs a teacher_token of at least 16 characters.",
                         fix="Write the file with `qwen-nb classroom init`, which makes one.")
    url = table.get("url")
    if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        raise InputError(f"[classroom] url of {source} must be an http(s) URL, got {url!r}.")
    return Classroom(name=str(table.get("name", "class")), teacher_token=token, url=url)


def parse_config(data: dict[str, Any], source: str = "emulator config") -> EmulatorConfig:
    """Build an ``EmulatorConfig`` from an already-parsed TOML document."""
    unknown = set(data) - {"emulator", "workspace", "classroom"}
    if unknown:
        raise InputError(f"Unknown table(s) {', '.join(sorted(unknown))} in {source}.",
                         fix="Use [emulator], [[workspace]] and [classroom].")
    classroom = _classroom_from(data["classroom"], source) if "classroom" in data else None
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
    return EmulatorConfig(workspaces=workspaces, pacing=pacing, classroom=classroom)


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


def _workspace_from_reply(w: dict[str, Any]) -> Workspace:
    return Workspace(name=w["name"], id=w["id"], region=w["region"], keys=tuple(w.get("keys") or ()),
                     models=None if w.get("models") is None else tuple(w["models"]), default=bool(w.get("default")))


def running_profiles(root_url: str, key: str | None = None, timeout: float = 5.0) -> dict:
    """The profiles of the emulator running at ``root_url``.

    With ``key`` (a student's key from a class handout, ``QWEN_NB_EMULATOR_KEY``): the one workspace
    that key belongs to, asked from ``GET /_emulator/whoami`` with the key itself, which works from
    any machine. Without: every workspace, from ``/_emulator/workspaces`` (answered to clients on
    the emulator's own machine, or to anyone when the emulator holds only public demo keys).
    An emulator that does not answer, or refuses, raises a ``QwenNbError`` saying what to set:
    a notebook never falls back to profiles that are not that emulator's.
    """
    import json
    import urllib.error
    import urllib.request

    from qwen_nb._secrets import mask_key
    from qwen_nb.errors import ConfigError, NetworkError

    root = root_url.rstrip("/")
    path = "/_emulator/whoami" if key else "/_emulator/workspaces?keys=full"
    req = urllib.request.Request(root + path, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        # ?keys=full: the keys themselves (the endpoint shows keys from a config file masked otherwise)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            reply = json.loads(resp.read())
        spaces = [reply] if key else reply
        workspaces = tuple(_workspace_from_reply(w) for w in spaces)
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
        if key and status in (401, 403):
            raise ConfigError(f"The emulator at {root} does not know the key {mask_key(key)} "
                              "(QWEN_NB_EMULATOR_KEY).",
                              fix="Copy QWEN_NB_EMULATOR_KEY from your handout again, or ask your teacher whether "
                              "the emulator runs with the class's file.") from None
        if status in (401, 403):
            raise ConfigError(f"The emulator at {root} serves a class (or another machine): it does not hand out "
                              "its workspaces' keys.",
                              fix="Set QWEN_NB_EMULATOR_KEY to the key from your handout (in .env or the "
                              "environment), next to QWEN_NB_EMULATOR.") from None
        raise ConfigError(f"The emulator at {root} answered HTTP {status} to {path.split('?')[0]}.",
                          fix="Check QWEN_NB_EMULATOR: it must be the emulator's root URL, e.g. "
                          "http://127.0.0.1:8765 (an older emulator may not know this request).") from None
    except OSError as exc:
        raise NetworkError(f"The emulator at {root} (QWEN_NB_EMULATOR) does not answer: "
                           f"{getattr(exc, 'reason', None) or exc}.",
                           fix="Start it (`qwen-nb emulator`), check the address and port, or unset "
                           "QWEN_NB_EMULATOR to start one in this process.") from None
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"The service at {root} does not answer like a qwen-nb emulator.",
                          fix="Check QWEN_NB_EMULATOR: it must be the emulator's root URL.") from None
    if not workspaces:
        raise ConfigError(f"The emulator at {root} lists no workspace.")
    if any("…" in k for ws in workspaces for k in ws.keys):  # keys of a config file, shown masked to this client
        raise ConfigError(f"The emulator at {root} runs with its own config and shows its keys only to its own "
                          "machine.", fix="Set QWEN_NB_EMULATOR_KEY to your key on that emulator (in .env or the "
                          "environment), next to QWEN_NB_EMULATOR.")
    return profiles_for(replace(default_config(), workspaces=workspaces), root_url)


def demo_keys(config: EmulatorConfig | None = None) -> frozenset[str]:
    """Every key of the emulator's workspaces (handy to tell demo keys from real ones)."""
    cfg = config or default_config()
    return frozenset(k for ws in cfg.workspaces for k in ws.keys)


__all__ = [
    "DEFAULT_CONFIG_PATH",
    "REGIONS",
    "Classroom",
    "EmulatorConfig",
    "Flags",
    "Pacing",
    "Workspace",
    "default_config",
    "default_profiles",
    "demo_keys",
    "load_config",
    "new_token",
    "parse_config",
    "profiles_for",
    "running_profiles",
    "resolve_config",
]
