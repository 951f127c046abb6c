"""Mutable emulator state: grants, pacing and faults, rate counters, the request log and its counters.

Shared between the server thread and the caller's thread, so every change goes
through one lock. No web framework here.
"""

from __future__ import annotations

import itertools
import random
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from qwen_nb._secrets import mask_key
from qwen_nb.catalog import MODELS, model_info
from qwen_nb.emulator.config import EmulatorConfig, Flags, Pacing, Workspace, flag_values
from qwen_nb.errors import InputError

#: compact request summaries kept, oldest dropped first (the counters never drop anything)
MAX_RECORDED = 100_000
#: the most recent requests whose whole body and (masked) headers are kept besides the summary
KEEP_BODIES = 1_000
#: bodies larger than this are never kept whole, only summarised
KEEP_BODY_BYTES = 64 * 1024
#: length of the prompt preview in a summary
PREVIEW_CHARS = 200
#: distinct model names counted one by one; any further ones are counted under "(other)"
MAX_COUNTED_MODELS = 1_000


@dataclass(slots=True)
class RecordedRequest:
    """One request the emulator received: a compact summary, plus body and headers while recent.

    ``body`` (the parsed JSON) and ``headers`` (bearer key masked) are kept for the most recent
    ``KEEP_BODIES`` requests with bodies up to ``KEEP_BODY_BYTES``; older records keep only the
    summary (``body`` None, ``headers`` empty). Requests without a valid key never keep a body
    or a preview. Readable as attributes or like a dict (``rec["body"]``).
    """

    method: str
    path: str
    body: Any
    headers: dict[str, str]
    status: int
    time: float
    request_id: str
    #: position in the log since the last reset (1, 2, ...)
    seq: int = 0
    #: the route without region and workspace prefix, e.g. "/compatible-mode/v1/chat/completions",
    #: or "(other)" for a path the emulator does not serve (``path`` has it, cut to 300 characters)
    endpoint: str = ""
    region: str | None = None
    #: workspace id: the key's workspace, or the gateway path's for an unauthenticated request
    workspace: str | None = None
    #: the bearer key, masked ("sk-…abcd"), or None if none was sent
    key: str | None = None
    authenticated: bool = False
    model: str | None = None
    stream: bool | None = None
    #: number of messages in the body (None if the body was not read or has none)
    messages: int | None = None
    #: size of the request body in bytes (as declared by Content-Length when it was not read)
    body_bytes: int = 0
    #: the last user message, cut to ``PREVIEW_CHARS`` characters
    preview: str = ""

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        """Dict-style access with a default."""
        return getattr(self, name, default)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of every field (what ``GET /_emulator/requests`` sends)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def mask_headers(headers: dict[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with the bearer key masked."""
    out = {}
    for k, v in headers.items():
        if k.lower() == "authorization":
            scheme, _, token = v.partition(" ")
            v = f"{scheme} {mask_key(token)}" if token else mask_key(v)
        out[k] = v
    return out


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def body_summary(body: Any) -> dict[str, Any]:
    """``model``, ``messages`` (count), ``preview`` and ``stream`` (compatible bodies) of a parsed chat body.

    Works on both protocols' bodies and never raises, whatever the body holds.
    """
    out: dict[str, Any] = {}
    if not isinstance(body, dict):
        return out
    model = body.get("model")
    if isinstance(model, str):
        out["model"] = model[:200]
    if isinstance(body.get("stream"), bool):
        out["stream"] = body["stream"]
    messages = body.get("messages")
    inp = body.get("input")
    if messages is None and isinstance(inp, dict):
        messages = inp.get("messages")
        if messages is None and isinstance(inp.get("prompt"), str):
            messages = [{"role": "user", "content": inp["prompt"]}]
    if isinstance(messages, list):
        out["messages"] = len(messages)
        for m in reversed(messages):
            if isinstance(m, dict) and m.get("role") == "user":
                out["preview"] = _text_of(m.get("content"))[:PREVIEW_CHARS]
                break
    return out


@dataclass
class Counters:
    """Exact request counts since the last reset; unlike the log, never drops anything."""

    total: int = 0
    #: POSTs to a chat endpoint (either protocol), whatever their answer
    chat: int = 0
    unauthenticated: int = 0
    body_bytes: int = 0
    by_endpoint: Counter = field(default_factory=Counter)
    by_status: Counter = field(default_factory=Counter)
    by_model: Counter = field(default_factory=Counter)
    by_region: Counter = field(default_factory=Counter)

    def add(self, rec: RecordedRequest, chat: bool) -> None:
        """Count one request."""
        self.total += 1
        self.chat += chat
        self.unauthenticated += not rec.authenticated
        self.body_bytes += rec.body_bytes
        self.by_endpoint[rec.endpoint] += 1
        self.by_status[rec.status] += 1
        self.by_region[rec.region or "(none)"] += 1
        if rec.model is not None:
            name = rec.model if rec.model in self.by_model or len(self.by_model) < MAX_COUNTED_MODELS else "(other)"
            self.by_model[name] += 1

    def as_dict(self) -> dict[str, Any]:
        """Plain dicts, sorted by count."""
        return {
            "total": self.total, "chat": self.chat, "unauthenticated": self.unauthenticated,
            "body_bytes": self.body_bytes,
            "by_endpoint": dict(self.by_endpoint.most_common()),
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_model": dict(self.by_model.most_common()),
            "by_region": dict(self.by_region.most_common()),
        }


@dataclass
class Usage:
    """What one workspace did since the last reset: its calls, errors, tokens and estimated spend."""

    calls: int = 0
    #: answers with a status of 400 or more (refusals, faults, clients gone)
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    #: estimated with qwen-nb's price table, in the region's currency (unknown prices count 0)
    cost: float = 0.0
    by_status: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """Plain values."""
        return {"calls": self.calls, "errors": self.errors, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "cost": round(self.cost, 6),
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())}}


class EmulatorState:
    """Everything an emulator knows and can change at runtime.

    Everything a call can change belongs to one workspace (or one key): grants, flags, rate and
    token windows, usage and budget spend are kept per workspace id (or key), so one workspace's
    changes never reach another's. Pacing and injected faults are the whole emulator's.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._by_key: dict[str, Workspace] = {k: ws for ws in config.workspaces for k in ws.keys}
        self._by_id: dict[str, Workspace] = {ws.id: ws for ws in config.workspaces}
        self.pacing: Pacing = config.pacing
        self._grants: dict[str, tuple[str, ...] | None] = {}
        self._hits: dict[str, deque[float]] = {}
        #: workspace id -> its flags now; key -> the flags of that key only (names and values)
        self._flags: dict[str, Flags] = {}
        self._key_flags: dict[str, dict[str, Any]] = {}
        #: scope -> failures sent for ``fail_with``; (what, scope, model) -> request times, or (time, tokens)
        self._failed: Counter = Counter()
        self._windows: dict[tuple[str, str, str], deque[tuple[float, int]]] = {}
        self._cuts_done = 0
        self._requests: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED)
        self._with_body: deque[RecordedRequest] = deque()
        self._seq = 0
        self._counters = Counters()
        #: workspace id -> what it did; budget scope ("ws:<id>" or "key:<key>") -> estimated spend
        self._usage: dict[str, Usage] = {}
        self._spent: dict[str, float] = {}
        self._fault_rng = random.Random(0)
        #: how late each streamed write left the emulator compared with its pacing (seconds)
        self.lateness: deque[float] = deque(maxlen=200_000)
        #: worst delay of the event loop's own wake-ups (seconds), and how many passed 100 ms
        self.loop_lag_max = 0.0
        self.loop_stalls = 0
        self.reset()

    # -- pacing and faults -------------------------------------------------
    def reset(self) -> None:
        """Back to the configured defaults: pacing, no faults, counters and grants restored, log cleared."""
        with self._lock:
            self.pacing = self.config.pacing
            self._grants = {ws.id: ws.models for ws in self.config.workspaces}
            self._hits.clear()
            self._flags = {ws.id: ws.flags for ws in self.config.workspaces}
            self._key_flags = {k: dict(v) for ws in self.config.workspaces for k, v in ws.key_flags.items()}
            self._failed.clear()
            self._windows.clear()
            self._cuts_done = 0
            self._requests.clear()
            self._with_body.clear()
            self._seq = 0
            self._counters = Counters()
            self._usage = {}
            self._spent = {}
            self._fault_rng = random.Random(0)
            self.lateness.clear()
            self.loop_lag_max, self.loop_stalls = 0.0, 0

    def reset_workspace(self, ws: Workspace) -> None:
        """One workspace back to its configured grants and flags (its keys' too), usage and spend zeroed."""
        with self._lock:
            self._grants[ws.id] = ws.models
            self._flags[ws.id] = ws.flags
            for key in ws.keys:
                self._key_flags.pop(key, None)
                self._hits.pop(key, None)
                self._spent.pop(f"key:{key}", None)
                self._failed.pop(f"key:{key}", None)
            self._key_flags.update({k: dict(v) for k, v in ws.key_flags.items()})
            scopes = {f"ws:{ws.id}", *(f"key:{k}" for k in ws.keys)}
            for k in [k for k in self._windows if k[1] in scopes]:
                del self._windows[k]
            self._failed.pop(f"ws:{ws.id}", None)
            self._spent.pop(f"ws:{ws.id}", None)
            self._usage.pop(ws.id, None)

    def set_faults(self, **changes: Any) -> Pacing:
        """Change pacing/fault fields (see ``Pacing``); returns the new settings."""
        from qwen_nb.emulator.config import PACING_FIELDS

        unknown = set(changes) - set(PACING_FIELDS)
        if unknown:
            raise InputError(
                f"Unknown emulator setting(s): {', '.join(sorted(unknown))}.",
                fix=f"Use any of: {', '.join(PACING_FIELDS)}.",
            )
        with self._lock:
            new = replace(self.pacing, **changes).validated()
            if "cut_after" in changes or "cut_streams" in changes:
                self._cuts_done = 0
            if "rate_limit" in changes or "rate_window" in changes:
                self._hits.clear()
            if "fail_rate" in changes or "throttle_rate" in changes:
                self._fault_rng = random.Random(0)
            self.pacing = new
            return new

    def pacing_dict(self) -> dict[str, Any]:
        """Current pacing and faults as a plain dict."""
        return asdict(self.pacing)

    def take_failure(self) -> int | None:
        """Status to fail this model request with (an injected fault), or None.

        ``fail_next`` first (consuming one), then ``throttle_rate`` (429), then ``fail_rate``
        (``fail_status``), the last two drawn from a generator seeded at reset, so a run repeats.
        """
        with self._lock:
            p = self.pacing
            if p.fail_next > 0:
                self.pacing = replace(p, fail_next=p.fail_next - 1)
                return p.fail_status
            if p.throttle_rate and self._fault_rng.random() < p.throttle_rate:
                return 429
            if p.fail_rate and self._fault_rng.random() < p.fail_rate:
                return p.fail_status
        return None

    def take_cut(self) -> int | None:
        """Number of events after which to drop this stream, or None."""
        with self._lock:
            p = self.pacing
            if p.cut_after is None:
                return None
            if p.cut_streams is not None and self._cuts_done >= p.cut_streams:
                return None
            self._cuts_done += 1
            return p.cut_after

    def check_rate(self, key: str, now: float | None = None) -> bool:
        """Count a request of ``key``; False if it exceeds the rate limit."""
        with self._lock:
            limit = self.pacing.rate_limit
            if not limit:
                return True
            now = time.monotonic() if now is None else now
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.pacing.rate_window:
                hits.popleft()
            if len(hits) >= limit:
                return False
            hits.append(now)
            return True

    # -- workspaces --------------------------------------------------------
    def workspace_for_key(self, key: str) -> Workspace | None:
        """The workspace a key belongs to."""
        return self._by_key.get(key)

    def workspace_by_id(self, ws_id: str) -> Workspace | None:
        """A workspace by id."""
        return self._by_id.get(ws_id)

    def grants(self, ws: Workspace) -> tuple[str, ...] | None:
        """Models the workspace may call now (None: all)."""
        with self._lock:
            return self._grants.get(ws.id, ws.models)

    def is_granted(self, ws: Workspace, model: str) -> bool:
        """Whether ``ws`` may call ``model`` (dated snapshots follow their base model's grant)."""
        grants = self.grants(ws)
        if grants is None:
            return True
        info = model_info(model)
        return model in grants or (info is not None and info.id in grants)

    # -- flags: how the service treats a workspace or a key ----------------
    def flags(self, ws: Workspace, key: str | None = None) -> Flags:
        """The flags of a call with ``key`` of ``ws`` now: the workspace's, with the key's own on top."""
        with self._lock:
            flags = self._flags.get(ws.id, ws.flags)
            own = self._key_flags.get(key or "")
        return replace(flags, **own) if own else flags

    def set_flags(self, ws: Workspace, **changes: Any) -> Flags:
        """Change a workspace's flags (until ``reset()``); returns them."""
        with self._lock:
            new = self._flags.get(ws.id, ws.flags).changed(**changes)
            self._flags[ws.id] = new
            self._forget(f"ws:{ws.id}", changes)
            return new

    def set_key_flags(self, ws: Workspace, key: str, **changes: Any) -> Flags:
        """Change the flags of one key of ``ws`` (until ``reset()``); returns that key's flags now."""
        values = flag_values(changes, "emulator key flags")
        with self._lock:
            own = {**self._key_flags.get(key, {}), **values}
            merged = replace(self._flags.get(ws.id, ws.flags), **own).validated("emulator key flags")
            self._key_flags[key] = own
            self._forget(f"key:{key}", changes)
            return merged

    def _forget(self, scope: str, changes: dict[str, Any]) -> None:
        """Counts of a scope start again when the flags they count for change (lock held)."""
        if {"fail_with", "fail_times", "fail_models", "error_after"} & set(changes):
            self._failed.pop(scope, None)
        for what in ("burst", "rate", "tokens"):
            if any(what in name for name in changes):
                for k in [k for k in self._windows if k[0] == what and k[1] == scope]:
                    del self._windows[k]

    def scope(self, ws: Workspace, key: str | None, name: str) -> str:
        """Who a flag's counts belong to: the key when it has the flag itself, else its workspace."""
        with self._lock:
            own = self._key_flags.get(key or "", {})
        return f"key:{key}" if name in own else f"ws:{ws.id}"

    def take_fail(self, scope: str, times: int | None) -> bool:
        """Count one ``fail_with`` failure of ``scope``; False once ``times`` were sent."""
        with self._lock:
            if times is not None and self._failed[scope] >= times:
                return False
            self._failed[scope] += 1
            return True

    def check_window(self, what: str, scope: str, model: str, limit: int, window: float,
                     now: float | None = None) -> bool:
        """Count one request in a sliding window; False (not counted) if ``limit`` are already in it."""
        with self._lock:
            now = time.monotonic() if now is None else now
            hits = self._windows.setdefault((what, scope, model), deque())
            while hits and hits[0][0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                return False
            hits.append((now, 1))
            return True

    def tokens_used(self, scope: str, model: str, window: float = 60.0, now: float | None = None) -> int:
        """Input+output tokens of ``model`` answered for ``scope`` within the last ``window`` seconds."""
        with self._lock:
            now = time.monotonic() if now is None else now
            spent = self._windows.setdefault(("tokens", scope, model), deque())
            while spent and spent[0][0] <= now - window:
                spent.popleft()
            return sum(n for _, n in spent)

    def note_tokens(self, scope: str, model: str, tokens: int, now: float | None = None) -> None:
        """Count the tokens of an answered call (for ``tokens_per_minute``)."""
        with self._lock:
            now = time.monotonic() if now is None else now
            self._windows.setdefault(("tokens", scope, model), deque()).append((now, tokens))

    def set_grants(self, ws: Workspace, models: tuple[str, ...] | None) -> None:
        """Replace a workspace's grants (None: all models)."""
        with self._lock:
            self._grants[ws.id] = None if models is None else tuple(models)

    def apply_permissions(self, ws: Workspace, items: list[tuple[str, bool | None]],
                          mode: str) -> tuple[str, ...] | None:
        """The permissions API: ``mode`` OPEN (all), CLOSE (none) or KEEP, then each (model, inference) item
        (inference None: left as it is)."""
        with self._lock:
            current = self._grants.get(ws.id, ws.models)
            if mode == "OPEN":
                granted = set(MODELS)
                all_models = True
            elif mode == "CLOSE":
                granted, all_models = set(), False
            else:
                all_models = current is None
                granted = set(MODELS) if current is None else set(current)
            for model, inference in items:
                if inference is None:
                    continue
                if inference:
                    granted.add(model)
                else:
                    granted.discard(model)
                    all_models = False
            if all_models and granted >= set(MODELS):
                new: tuple[str, ...] | None = None
            else:
                new = tuple(sorted(granted))
            self._grants[ws.id] = new
            return new

    # -- usage and budgets ------------------------------------------------
    def spent(self, scope: str) -> float:
        """Estimated spend of a budget scope ("ws:<id>" or "key:<key>") since the last reset."""
        with self._lock:
            return self._spent.get(scope, 0.0)

    def note_answer(self, ws: Workspace, key: str, model: str, input_tokens: int, output_tokens: int) -> None:
        """Count an answered call's tokens and estimated cost for its workspace (and a key with its own budget)."""
        from qwen_nb.prices import estimate

        try:
            cost = estimate(model, ws.region, input_tokens, output_tokens)[0] or 0.0
        except Exception:  # a price table that cannot price it: tokens still count
            cost = 0.0
        with self._lock:
            use = self._usage.setdefault(ws.id, Usage())
            use.input_tokens += input_tokens
            use.output_tokens += output_tokens
            use.cost += cost
            self._spent[f"ws:{ws.id}"] = self._spent.get(f"ws:{ws.id}", 0.0) + cost
            if "budget" in self._key_flags.get(key, {}):
                self._spent[f"key:{key}"] = self._spent.get(f"key:{key}", 0.0) + cost

    def usage(self, ws_id: str | None = None) -> dict[str, dict[str, Any]]:
        """Per workspace (by name): calls, errors, tokens, estimated cost, budget and grants now.

        ``ws_id``: only that workspace.
        """
        out = {}
        for ws in self.config.workspaces:
            if ws_id is not None and ws.id != ws_id:
                continue
            with self._lock:
                use = self._usage.get(ws.id, Usage()).as_dict()
                budget = self._flags.get(ws.id, ws.flags).budget
                grants = self._grants.get(ws.id, ws.models)
            out[ws.name] = {"workspace": ws.id, "region": ws.region, **use, "budget": budget,
                            "granted_now": None if grants is None else list(grants)}
        return out

    def stats(self) -> dict[str, Any]:
        """How punctual the emulator has been since the last reset, in ms: lateness of streamed
        writes, and the worst stall of its event loop (``loop_stalls_over_100ms`` counts them)."""
        late = sorted(self.lateness)

        def pct(q: float) -> float | None:
            return round(late[min(len(late) - 1, int(q / 100 * len(late)))] * 1000, 3) if late else None

        return {"writes": len(late), "late_ms_p50": pct(50), "late_ms_p99": pct(99),
                "late_ms_max": round(late[-1] * 1000, 3) if late else None,
                "loop_lag_ms_max": round(self.loop_lag_max * 1000, 1), "loop_stalls_over_100ms": self.loop_stalls}

    def note_loop_lag(self, seconds: float) -> None:
        """Record how late the event loop woke up once."""
        if seconds > self.loop_lag_max:
            self.loop_lag_max = seconds
        if seconds > 0.1:
            self.loop_stalls += 1

    # -- recording ---------------------------------------------------------
    def record(self, rec: RecordedRequest, *, chat: bool = False) -> None:
        """Log a request (bounded) and count it (exactly); ``chat``: it was a POST to a chat endpoint."""
        for name in ("method", "path", "endpoint", "region", "workspace", "key", "model"):
            value = getattr(rec, name)
            if isinstance(value, str) and len(value) <= 100:
                setattr(rec, name, sys.intern(value))
        with self._lock:
            self._seq += 1
            rec.seq = self._seq
            self._requests.append(rec)
            self._counters.add(rec, chat)
            if rec.authenticated and rec.workspace is not None:
                use = self._usage.setdefault(rec.workspace, Usage())
                use.calls += 1
                use.errors += rec.status >= 400
                use.by_status[rec.status] += 1
            if rec.body is not None or rec.headers:
                self._with_body.append(rec)
                while len(self._with_body) > KEEP_BODIES:
                    old = self._with_body.popleft()
                    old.body, old.headers = None, {}

    @property
    def requests(self) -> list[RecordedRequest]:
        """Logged requests, oldest first (at most ``MAX_RECORDED``)."""
        with self._lock:
            return list(self._requests)

    def requests_since(self, seq: int = 0, limit: int | None = None,
                       workspace: str | None = None) -> list[RecordedRequest]:
        """Logged requests with ``seq`` above ``seq``, oldest first; ``limit`` keeps the newest ones;
        ``workspace`` (an id): only the authenticated requests of that workspace."""
        with self._lock:
            first = self._requests[0].seq if self._requests else 0
            skip = max(0, seq - first + 1)
            out = list(itertools.islice(self._requests, skip, None))
        if workspace is not None:
            out = [r for r in out if r.authenticated and r.workspace == workspace]
        if limit is not None:
            out = out[-limit:] if limit > 0 else []
        return out

    def counters(self) -> dict[str, Any]:
        """Exact counts since the last reset: total, chat, unauthenticated, by endpoint/status/model/region."""
        with self._lock:
            return self._counters.as_dict()
