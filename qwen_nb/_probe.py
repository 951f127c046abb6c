"""``probe()``: which workspace (profile) may call which model, found with the cheapest possible calls.

Each probe is one ``Session.chat`` call with a one-word prompt, ``max_tokens=1`` and
thinking off where the model allows it, so it is recorded in the ledger like any
call. Conclusive answers are cached per session: the same profile (same key) and
model are not probed twice unless ``refresh=True``.
"""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from qwen_nb import _html
from qwen_nb import errors as E
from qwen_nb._pipeline import call_origin
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
    #: what the probe call cost (None: unknown price or no call), in ``currency``
    cost: float | None = None
    currency: str | None = None

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

    def __init__(self, cells: list[ProbeCell], profiles: list[Profile], models: list[str],
                 skipped: dict[str, str] | None = None) -> None:
        self.cells = cells
        self.profiles = [p.name for p in profiles]
        self._regions = {p.name: (p.region, p.workspace) for p in profiles}
        self.models = models
        #: catalog models not probed, with the reason (thinking-only, not offered in these regions)
        self.skipped: dict[str, str] = dict(skipped or {})

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
    def spent_cost(self) -> dict[str, float]:
        """What the probe's own calls cost, per currency (cached answers cost nothing)."""
        out: dict[str, float] = {}
        for c in self.cells:
            if not c.cached and c.cost is not None and c.currency:
                out[c.currency] = out.get(c.currency, 0.0) + c.cost
        return out

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
        cost = " + ".join(f"≈{v:.6f} {k}" for k, v in sorted(self.spent_cost.items()))
        return f"probe spent {self.spent_tokens} tokens in {self.calls} calls" + (f" ({cost})" if cost else "") + extra

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
        skipped = [f"  not probed: {m} ({why})" for m, why in self.skipped.items()]
        return "\n".join(lines + notes + skipped + [f"({self._summary()})"])

    def _common_denial(self) -> str | None:
        """The reason most ✗ cells share ("not granted"): said once in the legend, not in every cell."""
        reasons = [c.reason for c in self.cells if c.allowed is False and c.reason]
        if not reasons:
            return None
        return max(sorted(set(reasons)), key=reasons.count)

    def _repr_html_(self) -> str:
        """A model x profile matrix (a row per model, a column per profile with its workspace id), a legend,
        the models left out with the reason, and what the probe cost. Same layout on every run."""
        common = self._common_denial()
        head = ["model"]
        for p in self.profiles:
            region, ws = self._regions[p]
            head.append(f"<span class='qnb-name'>{_html.esc(p)}</span><br><span class='qnb-muted qnb-small'>"
                        f"{_html.esc(ws or 'default workspace')}<br>{_html.esc(region)}</span>")
        rows = []
        for m in self.models:
            tds = [f"<span class='qnb-name'>{_html.esc(m)}</span>"]
            for p in self.profiles:
                c = self.cell(p, m)
                if c.allowed:
                    mark = "<span class='qnb-ok' title='may call'>✓</span>"
                elif c.allowed is False:
                    mark = "<span class='qnb-err' title='may not call'>✗</span>"
                else:
                    mark = "<span title='could not tell'>?</span>"
                note = c.reason if c.reason and c.reason != common else ""
                tds.append(mark + (f"<br><span class='qnb-muted qnb-small'>{_html.esc(note)}</span>" if note else ""))
            rows.append(tds)
        table = _html.table(head, rows, classes=["", *["qnb-mark"] * len(self.profiles)])
        legend = _html.legend([
            ("<b class='qnb-ok'>✓</b>", "may call"),
            ("<b class='qnb-err'>✗</b>", common or "may not call"),
            ("<b>?</b>", "could not tell (rate limit, outage): probe again"),
        ] + ([("", "other reasons are written in the cell")] if any(
            c.reason and c.reason != common for c in self.cells) else []))
        skipped = ""
        if self.skipped:
            items = "; ".join(f"{_html.esc(m)} ({_html.esc(why)})" for m, why in self.skipped.items())
            skipped = f"<div class='qnb-muted qnb-small'>Not probed: {items}.</div>"
        summary = f"<div class='qnb-muted qnb-small'>{_html.esc(self._summary())}</div>"
        title = "<div class='qnb-head'><b>Which profile may call which model</b></div>"
        return _html.block(title + table + legend + skipped + summary, "qwen-nb-probe")


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


def skipped_models(profiles: list[Profile]) -> dict[str, str]:
    """The catalog models ``default_models`` leaves out, each with the reason."""
    regions = {p.region for p in profiles}
    out = {}
    for m in MODELS.values():
        if not regions & set(m.regions):
            out[m.id] = f"not offered in {', '.join(sorted(regions))}"
        elif m.thinking == "always":
            out[m.id] = "thinking-only: a probe would cost more; pass it in models= to probe it"
    return out


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
    chosen_models = name_list(models, "models")
    mlist = [check_model(m) for m in (chosen_models or default_models(plist))]
    mlist = list(dict.fromkeys(mlist))
    skipped = {} if chosen_models else skipped_models(plist)

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
        token = call_origin.set("probe")  # the ledger counts this call's refusal apart from errors
        try:
            r = session.chat(PROBE_PROMPT, model=m, profile=p.name, api=api, **_probe_params(m))
            cell = ProbeCell(p.name, m, ALLOWED, tokens=r.usage.total_tokens, cost=r.cost, currency=r.currency)
        except E.QwenNbError as err:
            status, reason = classify(err, m, p.region)
            cell = ProbeCell(p.name, m, status, reason, scrub(err.message), err.code)
        except Exception as err:  # a bug must not sink the other probes
            cell = ProbeCell(p.name, m, UNKNOWN, type(err).__name__, scrub(str(err)))
        finally:
            call_origin.reset(token)
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
    return ProbeResult(ordered, plist, mlist, skipped)
