"""Mutable emulator state: grants, pacing and faults, rate counters, recorded requests.

Shared between the server thread and the caller's thread, so every change goes
through one lock. No web framework here.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, replace
from typing import Any

from qwen_nb._secrets import mask_key
from qwen_nb.catalog import MODELS, model_info
from qwen_nb.emulator.config import EmulatorConfig, Pacing, Workspace
from qwen_nb.errors import InputError

MAX_RECORDED = 1000


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator received; the key in ``headers`` is masked.

    Readable as attributes or like a dict (``rec["body"]``).
    """

    method: str
    path: str
    body: Any
    headers: dict[str, str]
    status: int
    time: float
    request_id: str

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        """Dict-style access with a default."""
        return getattr(self, name, default)


def mask_headers(headers: dict[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with the bearer key masked."""
    out = {}
    for k, v in headers.items():
        if k.lower() == "authorization":
            scheme, _, token = v.partition(" ")
            v = f"{scheme} {mask_key(token)}" if token else mask_key(v)
        out[k] = v
    return out


class EmulatorState:
    """Everything an emulator knows and can change at runtime."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._by_key: dict[str, Workspace] = {k: ws for ws in config.workspaces for k in ws.keys}
        self._by_id: dict[str, Workspace] = {ws.id: ws for ws in config.workspaces}
        self.pacing: Pacing = config.pacing
        self._grants: dict[str, tuple[str, ...] | None] = {}
        self._hits: dict[str, deque[float]] = {}
        self._cuts_done = 0
        self._requests: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED)
        #: how late each streamed write left the emulator compared with its pacing (seconds)
        self.lateness: deque[float] = deque(maxlen=200_000)
        self.reset()

    # -- pacing and faults -------------------------------------------------
    def reset(self) -> None:
        """Back to the configured defaults: pacing, no faults, counters and grants restored, log cleared."""
        with self._lock:
            self.pacing = self.config.pacing
            self._grants = {ws.id: ws.models for ws in self.config.workspaces}
            self._hits.clear()
            self._cuts_done = 0
            self._requests.clear()
            self.lateness.clear()

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
            self.pacing = new
            return new

    def pacing_dict(self) -> dict[str, Any]:
        """Current pacing and faults as a plain dict."""
        return asdict(self.pacing)

    def take_failure(self) -> int | None:
        """Status to fail this request with, consuming one injected failure."""
        with self._lock:
            if self.pacing.fail_next > 0:
                self.pacing = replace(self.pacing, fail_next=self.pacing.fail_next - 1)
                return self.pacing.fail_status
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

    def set_grants(self, ws: Workspace, models: tuple[str, ...] | None) -> None:
        """Replace a workspace's grants (None: all models)."""
        with self._lock:
            self._grants[ws.id] = None if models is None else tuple(models)

    def apply_permissions(self, ws: Workspace, items: list[tuple[str, bool]], mode: str) -> tuple[str, ...] | None:
        """The permissions API: ``mode`` OPEN (all), CLOSE (none) or KEEP, then each (model, inference) item."""
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

    def stats(self) -> dict[str, Any]:
        """How punctual streaming has been since the last reset: lateness of writes, in ms."""
        late = sorted(self.lateness)

        def pct(q: float) -> float | None:
            return round(late[min(len(late) - 1, int(q / 100 * len(late)))] * 1000, 3) if late else None

        return {"writes": len(late), "late_ms_p50": pct(50), "late_ms_p99": pct(99),
                "late_ms_max": round(late[-1] * 1000, 3) if late else None}

    # -- recording ---------------------------------------------------------
    def record(self, rec: RecordedRequest) -> None:
        """Keep a request (bounded)."""
        with self._lock:
            self._requests.append(rec)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Recorded requests, oldest first."""
        with self._lock:
            return list(self._requests)
