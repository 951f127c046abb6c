"""``compare()``: one prompt over a grid of models x profiles x apis, run concurrently, shown side by side.

Each cell is one ``Session.chat`` call (so it is recorded in the ledger). A
failing cell keeps its guided error (message and fix) while the others finish.
"""

from __future__ import annotations

import html
import itertools
import re
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qwen_nb import facts
from qwen_nb._profiles import Profile
from qwen_nb._secrets import scrub
from qwen_nb.errors import InputError, QwenNbError
from qwen_nb.requests import name_list
from qwen_nb.results import ChatResult

if TYPE_CHECKING:
    from qwen_nb.session import Session

#: at most this many calls in one compare() unless max_cells says otherwise
MAX_CELLS = 48
APIS = facts.API_NAMES


@dataclass
class CompareCell:
    """One call of the grid: its coordinates and its result or error."""

    model: str
    profile: str
    api: str
    result: ChatResult | None = None
    error: QwenNbError | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def outcome(self) -> ChatResult | QwenNbError:
        """The ChatResult, or the error this cell ended with."""
        return self.result if self.result is not None else self.error  # type: ignore[return-value]

    def row(self) -> dict[str, Any]:
        """A flat dict: coordinates, answer or error, latency, tokens, cost."""
        r, e = self.result, self.error
        return {
            "model": self.model,
            "profile": self.profile,
            "api": self.api,
            "region": r.region if r else (e.region if e else None),
            "ok": self.ok,
            "text": r.text if r else None,
            "latency": r.latency if r else None,
            "input_tokens": r.usage.input_tokens if r else None,
            "output_tokens": r.usage.output_tokens if r else None,
            "reasoning_tokens": r.usage.reasoning_tokens if r else None,
            "total_tokens": r.usage.total_tokens if r else None,
            "cost": r.cost if r else None,
            "currency": r.currency if r else None,
            "request_id": r.request_id if r else (e.request_id if e else None),
            "error": type(e).__name__ if e else None,
            "error_code": e.code if e else None,
            "message": scrub(e.message) if e else None,
            "fix": scrub(e.fix) if e and e.fix else None,
        }



def markdownish(text: str) -> str:
    """Escaped HTML for an answer: fenced code as <pre>, `code`, **bold**, line breaks. No raw HTML passes."""
    out = []
    for i, part in enumerate(re.split(r"```[^\n]*\n?", text)):
        if i % 2:  # inside a fence
            out.append(f"<pre style='white-space:pre-wrap;margin:4px 0'>{html.escape(part.rstrip())}</pre>")
            continue
        esc = html.escape(part)
        esc = re.sub(r"`([^`\n]+)`", r"<code>\1</code>", esc)
        esc = re.sub(r"\*\*([^*\n]+)\*\*", r"<b>\1</b>", esc)
        esc = re.sub(r"(?m)^#{1,6} (.+)$", r"<b>\1</b>", esc)
        out.append(esc.replace("\n", "<br>"))
    return "".join(out)


def _fmt_cost(cost: float | None, currency: str | None) -> str:
    if not currency:
        return ""
    return f"≈{cost:.6f} {currency}" if cost is not None else "cost unknown"


class CompareResult:
    """The grid's outcomes in order (models, then profiles, then apis); shown side by side."""

    def __init__(self, prompt: str, cells: list[CompareCell]) -> None:
        self.prompt = prompt
        self.cells = cells

    @property
    def results(self) -> list[ChatResult | QwenNbError]:
        """One entry per cell, in grid order: a ChatResult or the error it ended with."""
        return [c.outcome for c in self.cells]

    @property
    def ok(self) -> list[ChatResult]:
        """The successful results only."""
        return [c.result for c in self.cells if c.result is not None]

    @property
    def errors(self) -> list[QwenNbError]:
        """The errors only."""
        return [c.error for c in self.cells if c.error is not None]

    def to_rows(self) -> list[dict[str, Any]]:
        """One flat dict per cell (see ``CompareCell.row``)."""
        return [c.row() for c in self.cells]

    def to_pandas(self) -> Any:
        """A pandas DataFrame of ``to_rows()`` (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.to_rows())

    def __len__(self) -> int:
        return len(self.cells)

    def __iter__(self):
        return iter(self.cells)

    def __repr__(self) -> str:
        lines = [f"CompareResult({len(self.ok)} ok, {len(self.errors)} failed)"]
        for c in self.cells:
            head = f"  {c.model} · {c.profile} · {c.api}: "
            if c.result:
                r = c.result
                snippet = r.text.replace("\n", " ")
                snippet = snippet[:60] + ("…" if len(snippet) > 60 else "")
                lines.append(head + f"{r.latency * 1000:.0f} ms · {r.usage.total_tokens} tokens · {snippet}")
            else:
                message = c.error.message if c.error is not None else ""
                lines.append(head + f"{type(c.error).__name__}: {scrub(message)}")
        return "\n".join(lines)

    def _varying(self) -> list[str]:
        dims = []
        for name in ("model", "profile", "api"):
            if len({getattr(c, name) for c in self.cells}) > 1:
                dims.append(name)
        return dims or ["model"]

    def _badges(self) -> dict[int, list[str]]:
        badges: dict[int, list[str]] = {}
        done = [(i, c.result) for i, c in enumerate(self.cells) if c.result is not None]
        if len(done) > 1:
            fastest = min(done, key=lambda t: t[1].latency)[0]
            badges.setdefault(fastest, []).append("fastest")
            priced = [(i, r) for i, r in done if r.cost is not None]
            if len({r.currency for _, r in priced}) == 1 and len(priced) > 1:
                badges.setdefault(min(priced, key=lambda t: t[1].cost or 0.0)[0], []).append("cheapest")
        return badges

    def _repr_html_(self) -> str:
        badges = self._badges()
        cards = []
        for i, c in enumerate(self.cells):
            title = " · ".join(html.escape(str(getattr(c, d))) for d in ("model", "profile", "api"))
            tags = "".join(
                f"<span style='background:#e6f4ea;color:#137333;border-radius:3px;padding:0 4px;"
                f"margin-left:4px;font-size:0.8em'>{b}</span>"
                for b in badges.get(i, [])
            )
            if c.result is not None:
                r = c.result
                body = f"<div style='flex:1'>{markdownish(r.text) or '<i>(no text)</i>'}</div>"
                if r.reasoning:
                    body = (
                        f"<details><summary>Thinking</summary><div style='opacity:.7'>{markdownish(r.reasoning)}"
                        f"</div></details>{body}"
                    )
                foot = " · ".join(
                    x
                    for x in (
                        f"{r.latency * 1000:.0f} ms",
                        html.escape(r.usage.line()),
                        html.escape(_fmt_cost(r.cost, r.currency)),
                    )
                    if x
                )
                border = "#d0d7de"
            else:
                e = c.error
                fix = f"<div><b>How to fix:</b> {html.escape(scrub(e.fix))}</div>" if e and e.fix else ""
                code = e.status_text if e else ""
                body = (
                    f"<div style='flex:1;color:#b3261e'><b>{html.escape(type(e).__name__)}</b>: "
                    f"{html.escape(scrub(e.message if e else ''))}{fix}</div>"
                )
                foot = html.escape(code)
                border = "#f1a7a1"
            cards.append(
                f"<div style='border:1px solid {border};border-radius:6px;padding:8px;display:flex;"
                f"flex-direction:column;gap:6px;min-width:0'>"
                f"<div style='font-weight:600'>{title}{tags}</div>{body}"
                f"<div style='font-size:0.85em;opacity:0.75'>{foot}</div></div>"
            )
        cols = min(len(self.cells), 3) or 1
        summary = f"{len(self.ok)} of {len(self.cells)} calls answered"
        tokens = sum(r.usage.total_tokens for r in self.ok)
        return (
            f"<div class='qwen-nb-compare'><div style='margin-bottom:6px'><b>Compare</b> · {summary} · "
            f"{tokens} tokens</div><div style='display:grid;grid-template-columns:repeat({cols},minmax(0,1fr));"
            f"gap:8px'>{''.join(cards)}</div></div>"
        )

    def _repr_markdown_(self) -> str:
        lines = ["| model | profile | api | answer | latency | tokens | cost |", "|---|---|---|---|---|---|---|"]
        for row in self.to_rows():
            if row["ok"]:
                answer = (row["text"] or "").replace("\n", " ").replace("|", "\\|")
                lat, tok = f"{row['latency'] * 1000:.0f} ms", str(row["total_tokens"])
                cost = _fmt_cost(row["cost"], row["currency"])
            else:
                answer = f"**{row['error']}**: {row['message']}".replace("|", "\\|").replace("\n", " ")
                lat = tok = cost = ""
            lines.append(f"| {row['model']} | {row['profile']} | {row['api']} | {answer} | {lat} | {tok} | {cost} |")
        return "\n".join(lines) + "\n"


def _grid(
    session: Session, models: Any, profiles: Any, apis: Any
) -> list[tuple[str, str, str]]:
    model_list = name_list(models, "models") or [getattr(session, "default_model", "qwen-plus")]
    for m in model_list:
        if not isinstance(m, str) or not m.strip():
            raise InputError(f"Each model must be a model name, got {m!r}.", fix='E.g. models=["qwen-plus"].')
    profile_names = []
    for p in name_list(profiles, "profiles") or [None]:
        if p is not None and not isinstance(p, (str, Profile)):
            raise InputError(f"Each profile must be a profile name, got {type(p).__name__}.")
        profile_names.append(session.get_profile(p.name if isinstance(p, Profile) else p).name)
    api_list = name_list(apis, "apis") or [getattr(session, "default_api", "openai")]
    for a in api_list:
        if a not in APIS:
            raise InputError(f"Unknown api {a!r}.", fix='Use apis=["openai", "dashscope"] or one of them.')
    dedup = lambda xs: list(dict.fromkeys(xs))  # noqa: E731
    return list(itertools.product(dedup(m.strip() for m in model_list), dedup(profile_names), dedup(api_list)))


def _precheck(prompt: Any, models: list[str], params: dict[str, Any]) -> None:
    """Bad prompt, model name or parameter: one InputError now, before any call."""
    from qwen_nb.requests import build_request

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the real calls warn, once each
        for model in models:
            build_request(prompt, model=model, **params)


def _unexpected(e: Exception, model: str, profile: str, api: str) -> QwenNbError:
    return QwenNbError(
        f"Unexpected {type(e).__name__}: {scrub(str(e))}",
        fix="This looks like a bug in qwen-nb; please report it with the model, api and this message.",
        model=model,
        profile=profile,
        api=api,
    )


def compare(
    prompt: Any,
    models: Sequence[str] | str | None = None,
    profiles: Sequence[str | Profile] | str | Profile | None = None,
    apis: Sequence[str] | str | None = None,
    session: Session | None = None,
    *,
    concurrency: int = 4,
    max_cells: int = MAX_CELLS,
    **params: Any,
) -> CompareResult:
    """Ask the same prompt of every (model, profile, api) combination, concurrently; compare side by side.

    ``models``, ``profiles`` and ``apis`` default to the session's defaults; ``params`` go to every call
    (temperature, max_tokens, enable_thinking, system, ...). A failed call shows its guided error in its
    cell; the others complete. Returns a ``CompareResult`` (``.results``, ``.to_rows()``).
    """
    if session is None:
        from qwen_nb._default import default_session

        session = default_session()
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise InputError(f"concurrency must be a positive integer, got {concurrency!r}.")
    grid = _grid(session, models, profiles, apis)
    if len(grid) > max_cells:
        raise InputError(
            f"This compare would make {len(grid)} calls, more than max_cells={max_cells}.",
            fix="Narrow models / profiles / apis, or pass a larger max_cells= if you mean it.",
        )
    _precheck(prompt, sorted({m for m, _, _ in grid}), params)
    cells = [CompareCell(m, p, a) for m, p, a in grid]

    def run(cell: CompareCell) -> None:
        try:
            cell.result = session.chat(prompt, model=cell.model, profile=cell.profile, api=cell.api, **params)
        except QwenNbError as e:
            cell.error = e
        except Exception as e:  # a bug must not sink the other cells
            cell.error = _unexpected(e, cell.model, cell.profile, cell.api)

    if len(cells) == 1:
        run(cells[0])
    else:  # (first SDK imports in the workers are safe: qwen_nb.backends.load_sdk serialises them)
        with ThreadPoolExecutor(max_workers=min(concurrency, len(cells)), thread_name_prefix="qwen-nb-compare") as ex:
            list(ex.map(run, cells))
    return CompareResult(prompt if isinstance(prompt, str) else repr(prompt), cells)
