"""``probe()``: which workspace (profile) may call which model, found with the cheapest possible calls.

Each probe is one ``Session.chat`` call with a one-word prompt, ``max_tokens=1`` and
thinking off where the model allows it, so it is recorded in the ledger like any
call. Conclusive answers are cached per session: the same profile (same key) and
model are not probed twice unless ``refresh=True``.
"""

from __future__ import annotations

import html
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from qwen_nb import errors as E
from qwen_nb._profiles import Profile
from qwen_nb._secrets import scrub
from qwen_nb.catalog import MODELS, model_info
from qwen_nb.requests import name_list

if TYPE_CHECKING:
    from qwen_nb.session import Session

PROBE_PROMPT = "Hi"
ALLOWED, DENIED, UNKNOWN = "allowed", "denied", "unknown"

# session -> {(Profile, model): ProbeCell}; a Profile compares by its key too, so a new key is probed again
_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple[Profile, str], ProbeCell]] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class ProbeCell:
    """The answer for one profile and model."""

    profile: str
    model: str
    status: str  # "allowed" | "denied" | "unknown"
    reason: str = ""
    error: str | None = None
    code: str | None = None
    tokens: int = 0
    cached: bool = False

    @property
    def allowed(self) -> bool | None:
        """True / False, or None when the probe could not tell (rate limit, outage)."""
        return {ALLOWED: True, DENIED: False}.get(self.status)


def classify(err: E.QwenNbError, model: str, region: str) -> tuple[str, str]:
    """(status, short reason) for the error a probe call ended with. Pure."""
    if isinstance(err, E.ModelNotGrantedError):
        return DENIED, "not granted"
    if isinstance(err, E.AccessDeniedError):
        return DENIED, "access denied"
    if isinstance(err, E.InvalidKeyError):
        return DENIED, "invalid key (wrong region?)"
    if isinstance(err, E.ModelNotFoundError):
        info = model_info(model)
        if info is None:
            return DENIED, "unknown model"
        return DENIED, "not offered in region" if region not in info.regions else "not found"
    if isinstance(err, E.AccountOverdueError):
        return DENIED, "account overdue"
    if isinstance(err, E.QuotaExceededError):
        return DENIED, "quota exhausted"
    if isinstance(err, E.RateLimitError):
        return UNKNOWN, "rate limited, try again"
    if isinstance(err, (E.ServerError, E.NetworkError)):
        return UNKNOWN, "service unreachable or failing"
    if isinstance(err, E.InputError):
        return UNKNOWN, "rejected before the call: " + err.message
    if isinstance(err, E.InvalidParameterError):
        # refused for its parameters, so the answer to "may it call?" stays open
        return UNKNOWN, "probe request refused (" + (err.code or "invalid parameter") + ")"
    return UNKNOWN, type(err).__name__



class ProbeResult:
    """A profile x model matrix of ✓ / ✗ (with the reason) and what the probe spent."""

    def __init__(self, cells: list[ProbeCell], profiles: list[Profile], models: list[str]) -> None:
        self.cells = cells
        self.profiles = [p.name for p in profiles]
        self._regions = {p.name: (p.region, p.workspace) for p in profiles}
        self.models = models

    @property
    def matrix(self) -> dict[str, dict[str, bool | None]]:
        """``{profile: {model: True | False | None}}`` (None: the probe could not tell)."""
        out: dict[str, dict[str, bool | None]] = {p: {} for p in self.profiles}
        for c in self.cells:
            out[c.profile][c.model] = c.allowed
        return out

    @property
    def reasons(self) -> dict[str, dict[str, str]]:
        """``{profile: {model: reason}}`` for every cell that is not a plain ✓."""
        out: dict[str, dict[str, str]] = {p: {} for p in self.profiles}
        for c in self.cells:
            if c.reason:
                out[c.profile][c.model] = c.reason
        return out

    def allowed(self, profile: str) -> list[str]:
        """Models this profile may call."""
        return [c.model for c in self.cells if c.profile == profile and c.allowed]

    def denied(self, profile: str) -> list[str]:
        """Models this profile may not call."""
        return [c.model for c in self.cells if c.profile == profile and c.allowed is False]

    @property
    def spent_tokens(self) -> int:
        """Tokens the probe's own calls used (answers from the cache cost nothing)."""
        return sum(c.tokens for c in self.cells if not c.cached)

    @property
    def calls(self) -> int:
        """Calls this probe made (not counting cached answers)."""
        return sum(1 for c in self.cells if not c.cached)

    def cell(self, profile: str, model: str) -> ProbeCell:
        """The answer for one profile and model."""
        for c in self.cells:
            if c.profile == profile and c.model == model:
                return c
        raise KeyError((profile, model))

    def to_rows(self) -> list[dict[str, Any]]:
        """One flat dict per cell."""
        return [
            {
                "profile": c.profile,
                "region": self._regions[c.profile][0],
                "workspace": self._regions[c.profile][1],
                "model": c.model,
                "allowed": c.allowed,
                "reason": c.reason,
                "error_code": c.code,
                "tokens": c.tokens,
                "cached": c.cached,
            }
            for c in self.cells
        ]

    def _summary(self) -> str:
        cached = len(self.cells) - self.calls
        extra = f", {cached} answers from the cache" if cached else ""
        return f"probe spent {self.spent_tokens} tokens in {self.calls} calls{extra}"

    def __repr__(self) -> str:
        width = max([len(p) for p in self.profiles] + [7])
        lines = [" " * width + "  " + "  ".join(self.models)]
        notes = []
        for p in self.profiles:
            marks = []
            by_reason: dict[str, list[str]] = {}
            for m in self.models:
                c = self.cell(p, m)
                marks.append({True: "✓", False: "✗", None: "?"}[c.allowed].ljust(len(m)))
                if c.reason:
                    by_reason.setdefault(c.reason, []).append(m)
            lines.append(p.ljust(width) + "  " + "  ".join(marks).rstrip())
            notes += [f"  {p}: {reason}: {', '.join(ms)}" for reason, ms in by_reason.items()]
        return "\n".join(lines + notes + [f"({self._summary()})"])

    def _repr_html_(self) -> str:
        th = "padding:3px 8px;border-bottom:1px solid #ccc;text-align:center"
        head = f"<th style='{th};text-align:left'>profile</th>" + "".join(
            f"<th style='{th}'>{html.escape(m)}</th>" for m in self.models
        )
        rows = []
        for p in self.profiles:
            region, ws = self._regions[p]
            where = html.escape(region + (f" · {ws}" if ws else ""))
            tds = [f"<td style='padding:3px 8px'><b>{html.escape(p)}</b><br><small>{where}</small></td>"]
            for m in self.models:
                c = self.cell(p, m)
                if c.allowed:
                    mark, color = "✓", "#137333"
                elif c.allowed is False:
                    mark, color = "✗", "#b3261e"
                else:
                    mark, color = "?", "#8a6d00"
                reason = f"<br><small>{html.escape(c.reason)}</small>" if c.reason else ""
                title = f" title='{html.escape(c.error or '')}'" if c.error else ""
                tds.append(f"<td style='padding:3px 8px;text-align:center;color:{color}'{title}>{mark}{reason}</td>")
            rows.append("<tr>" + "".join(tds) + "</tr>")
        return (
            "<div class='qwen-nb-probe'><table style='border-collapse:collapse'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<div style='font-size:0.85em;opacity:0.75;margin-top:4px'>{html.escape(self._summary())}</div></div>"
        )


def _cache_of(session: Session) -> dict[tuple[Profile, str], ProbeCell]:
    return _CACHE.setdefault(session, {})


def clear_cache(session: Session | None = None) -> None:
    """Forget cached probe answers (of one session, or of all)."""
    with _CACHE_LOCK:
        if session is None:
            _CACHE.clear()
        else:
            _cache_of(session).clear()


def default_models(profiles: list[Profile]) -> list[str]:
    """Catalog models offered in the profiles' regions; thinking-only models left out (their answers cost more)."""
    regions = {p.region for p in profiles}
    return [m.id for m in MODELS.values() if m.thinking != "always" and regions & set(m.regions)]


def _probe_params(model: str) -> dict[str, Any]:
    info = model_info(model)
    params: dict[str, Any] = {"max_tokens": 1}
    if info is not None and info.thinking == "hybrid":
        params["enable_thinking"] = False
    return params


def probe(
    profiles: Any = None,
    models: Any = None,
    session: Session | None = None,
    *,
    refresh: bool = False,
    api: str | None = None,
    concurrency: int = 4,
) -> ProbeResult:
    """Which profile (workspace) may call which model: one tiny call per pair, concurrently, cached.

    ``profiles``: names (default: all of the session's); ``models``: ids (default: the catalog's
    models offered in those regions, thinking-only ones left out). Each call sends a one-word
    prompt with ``max_tokens=1`` and thinking off; it goes through the session and its ledger.
    """
    from qwen_nb.requests import check_model

    if session is None:
        from qwen_nb._default import default_session

        session = default_session()
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise E.InputError(f"concurrency must be a positive integer, got {concurrency!r}.")
    chosen = name_list(profiles, "profiles")
    if chosen is None:
        plist = list(session.profiles())
    else:
        plist = []
        for p in chosen:
            if not isinstance(p, (str, Profile)):
                raise E.InputError(f"Each profile must be a profile name, got {type(p).__name__}.")
            plist.append(session.get_profile(p.name if isinstance(p, Profile) else p))
    plist = list({p.name: p for p in plist}.values())
    mlist = [check_model(m) for m in (name_list(models, "models") or default_models(plist))]
    mlist = list(dict.fromkeys(mlist))

    with _CACHE_LOCK:
        cache = _cache_of(session)
        if refresh:
            for p in plist:
                for m in mlist:
                    cache.pop((p, m), None)
        known = dict(cache)

    cells: dict[tuple[str, str], ProbeCell] = {}
    todo: list[tuple[Profile, str]] = []
    for p in plist:
        for m in mlist:
            hit = known.get((p, m))
            if hit is not None:
                cells[(p.name, m)] = replace(hit, cached=True)
            else:
                todo.append((p, m))

    def run(pair: tuple[Profile, str]) -> None:
        p, m = pair
        try:
            r = session.chat(PROBE_PROMPT, model=m, profile=p.name, api=api, **_probe_params(m))
            cell = ProbeCell(p.name, m, ALLOWED, tokens=r.usage.total_tokens)
        except E.QwenNbError as err:
            status, reason = classify(err, m, p.region)
            cell = ProbeCell(p.name, m, status, reason, scrub(err.message), err.code)
        except Exception as err:  # a bug must not sink the other probes
            cell = ProbeCell(p.name, m, UNKNOWN, type(err).__name__, scrub(str(err)))
        cells[(p.name, m)] = cell
        if cell.status != UNKNOWN:
            with _CACHE_LOCK:
                _cache_of(session)[(p, m)] = cell

    if len(todo) == 1:
        run(todo[0])
    elif todo:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(todo)), thread_name_prefix="qwen-nb-probe") as ex:
            list(ex.map(run, todo))
    ordered = [cells[(p.name, m)] for p in plist for m in mlist]
    return ProbeResult(ordered, plist, mlist)
