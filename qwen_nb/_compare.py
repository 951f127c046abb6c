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

from qwen_nb import _html, facts
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
    #: which of the prompts this cell answered (0 for a single prompt)
    prompt_index: int = 0

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


def _prompt_label(prompt: Any, limit: int = 160) -> str:
    """A prompt as one short line: the text, or a conversation's last user message and its length."""
    if isinstance(prompt, str):
        text = prompt
    elif isinstance(prompt, (list, tuple)) and prompt and all(isinstance(m, dict) for m in prompt):
        users = [m.get("content") for m in prompt if m.get("role") == "user"]
        last = users[-1] if users else prompt[-1].get("content")
        text = f"{last if isinstance(last, str) else '(non-text content)'} ({len(prompt)} messages)"
    else:
        text = repr(prompt)
    text = " ".join(scrub(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class CompareResult:
    """The grid's outcomes in order (prompts, then models, profiles, apis); shown as a models x prompts matrix."""

    def __init__(self, prompt: str, cells: list[CompareCell], prompts: list[str] | None = None) -> None:
        #: the prompts, each as one short line (``prompt`` is the first)
        self.prompts = prompts if prompts else [prompt]
        self.prompt = self.prompts[0]
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

    @property
    def total_cost(self) -> dict[str, float]:
        """Known cost of the answered calls per currency (currencies are never added together)."""
        out: dict[str, float] = {}
        for r in self.ok:
            if r.cost is not None and r.currency:
                out[r.currency] = out.get(r.currency, 0.0) + r.cost
        return out

    def to_rows(self) -> list[dict[str, Any]]:
        """One flat dict per cell (see ``CompareCell.row``), with the prompt it answered."""
        return [{"prompt": self.prompts[c.prompt_index], **c.row()} for c in self.cells]

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
        many = len(self.prompts) > 1
        for c in self.cells:
            head = f"  {c.model} · {c.profile} · {c.api}" + (f" · prompt {c.prompt_index + 1}" if many else "") + ": "
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

    def _rows(self) -> list[tuple[str, str, str]]:
        """The (model, profile, api) of each matrix row, in grid order."""
        return list(dict.fromkeys((c.model, c.profile, c.api) for c in self.cells))

    def _cell_html(self, c: CompareCell | None) -> str:
        if c is None:
            return ""
        if c.result is None:
            e = c.error if c.error is not None else QwenNbError("No result.")
            return _html.error_card_body(e.summary(), title=type(e).__name__, bullets=1)
        r = c.result
        body = f"<div class='qnb-answer'>{markdownish(r.text) or '<i>(no text)</i>'}</div>"
        if r.reasoning:
            body = (f"<details class='qnb-details'><summary>Thinking</summary><div class='qnb-muted'>"
                    f"{markdownish(r.reasoning)}</div></details>{body}")
        foot = " · ".join(x for x in (r.usage.line(), _fmt_cost(r.cost, r.currency)) if x)
        return body + f"<div class='qnb-muted qnb-small'>{_html.esc(foot)}</div>"

    def _repr_html_(self) -> str:
        """A matrix: a row per model (profile, api), a column per prompt; the prompt(s) and total cost on top.

        The layout depends only on the inputs and the answers: no timings, no badges, no ids, so a
        saved notebook's output is the same on every run.
        """
        varying = [d for d in self._varying() if d != "model"]
        rows = self._rows()
        by = {(c.model, c.profile, c.api, c.prompt_index): c for c in self.cells}
        fixed_dims = [f"{d} {getattr(self.cells[0], d)}" for d in ("profile", "api") if d not in varying] \
            if self.cells else []
        many = len(self.prompts) > 1
        cost = " + ".join(f"≈{v:.6f} {k}" for k, v in sorted(self.total_cost.items())) or "no known cost"
        tokens = sum(r.usage.total_tokens for r in self.ok)
        kind = "rows" if varying else "models"
        what = f"{len(self.prompts)} prompts × {len(rows)} {kind}" if many else f"{len(rows)} model(s)"
        head = (
            "<div class='qnb-head'><b>Compare</b>"
            + ("" if many else f" · “{_html.esc(self.prompts[0])}”")
            + f"<div class='qnb-muted qnb-small'>{what} · {len(self.ok)} of {len(self.cells)} calls answered · "
            f"{tokens} tokens · total {_html.esc(cost)}"
            + (f" · {_html.esc(' · '.join(fixed_dims))}" if fixed_dims else "")
            + "</div></div>"
        )
        label = "model" + "".join(f" · {d}" for d in varying)
        cols = [f"<span class='qnb-muted qnb-small'>prompt {i + 1}</span><br>“{_html.esc(p)}”"
                for i, p in enumerate(self.prompts)] if many else ["answer"]
        body = []
        for m, p, a in rows:
            sub = " · ".join(x for d, x in (("profile", p), ("api", a)) if d in varying)
            name = f"<span class='qnb-name'>{_html.esc(m)}</span>" + (
                f"<br><span class='qnb-muted qnb-small'>{_html.esc(sub)}</span>" if sub else "")
            body.append([name] + [self._cell_html(by.get((m, p, a, i))) for i in range(len(self.prompts))])
        table = _html.table([_html.esc(label), *cols], body, fixed=True, widths=["9.5em"] + [""] * len(cols))
        return _html.block(head + table, "qwen-nb-compare")

    def _repr_markdown_(self) -> str:
        many = len(self.prompts) > 1
        lead = "| prompt " if many else ""
        lines = [lead + "| model | profile | api | answer | latency | tokens | cost |",
                 ("|---" if many else "") + "|---|---|---|---|---|---|---|"]
        for row in self.to_rows():
            if row["ok"]:
                answer = (row["text"] or "").replace("\n", " ").replace("|", "\\|")
                lat, tok = f"{row['latency'] * 1000:.0f} ms", str(row["total_tokens"])
                cost = _fmt_cost(row["cost"], row["currency"])
            else:
                answer = f"**{row['error']}**: {row['message']}".replace("|", "\\|").replace("\n", " ")
                lat = tok = cost = ""
            first = "| " + row["prompt"].replace("|", "\\|") + " " if many else ""
            lines.append(first + f"| {row['model']} | {row['profile']} | {row['api']} | {answer} | {lat} | {tok} "
                         f"| {cost} |")
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


_PROMPTS_FIX = ('Several prompts: compare(["First question", "Second question"], ...) (each item a string, or a '
                'list of message dicts for a conversation). One conversation: compare([{"role": "user", "content": '
                '"..."}, ...], ...) with message dicts only.')


def prompt_list(prompt: Any) -> list[Any]:
    """The prompts a ``compare()`` call asks: the rule for lists, checked before any call.

    A string (or any single prompt) is one prompt. A list of message dicts (``{"role": ..., "content": ...}``)
    is ONE conversation, as everywhere in qwen-nb. Any other list is several prompts: each item a string,
    or a list of message dicts (one conversation each). A list mixing message dicts with other items is
    ambiguous and refused.
    """
    if not isinstance(prompt, (list, tuple)):
        return [prompt]
    items = list(prompt)
    if not items:
        raise InputError("The prompt list is empty.", fix=_PROMPTS_FIX)
    dicts = [isinstance(x, dict) for x in items]
    if all(dicts):
        return [items]
    if any(dicts):
        raise InputError(
            "The prompt list mixes message dicts with other items, so it is neither one conversation nor a list "
            f"of prompts (items {', '.join(str(i) for i, d in enumerate(dicts) if not d)} are not dicts).",
            fix=_PROMPTS_FIX,
        )
    for i, x in enumerate(items):
        if isinstance(x, str):
            continue
        if isinstance(x, (list, tuple)) and x and all(isinstance(m, dict) for m in x):
            continue
        raise InputError(f"Prompt {i} of the list is a {type(x).__name__}, not a string or a list of messages.",
                         fix=_PROMPTS_FIX)
    return [list(x) if isinstance(x, tuple) else x for x in items]


def _precheck(prompts: list[Any], models: list[str], params: dict[str, Any]) -> None:
    """Bad prompt, model name or parameter: one InputError now, before any call."""
    from qwen_nb.requests import build_request

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the real calls warn, once each
        for i, prompt in enumerate(prompts):
            for model in models:
                try:
                    build_request(prompt, model=model, **params)
                except InputError as e:
                    if len(prompts) == 1:
                        raise
                    raise InputError(f"Prompt {i} of the list: {e.message}", fix=e.fix) from None


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
    """Ask the same prompt(s) of every (model, profile, api) combination, concurrently; shown as a matrix.

    ``prompt`` is a string, a conversation (a list of message dicts), or a list of prompts
    (``["First question", "Second question"]``: one matrix column each; see ``prompt_list`` for the rule).
    ``models``, ``profiles`` and ``apis`` default to the session's defaults; ``params`` go to every call
    (temperature, max_tokens, enable_thinking, system, ...). A failed call shows its short error in its
    cell; the others complete. Returns a ``CompareResult`` (``.results``, ``.to_rows()``).
    """
    if session is None:
        from qwen_nb._default import default_session

        session = default_session()
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise InputError(f"concurrency must be a positive integer, got {concurrency!r}.")
    prompts = prompt_list(prompt)
    grid = _grid(session, models, profiles, apis)
    if len(grid) * len(prompts) > max_cells:
        raise InputError(
            f"This compare would make {len(grid) * len(prompts)} calls, more than max_cells={max_cells}.",
            fix="Narrow models / profiles / apis / prompts, or pass a larger max_cells= if you mean it.",
        )
    _precheck(prompts, sorted({m for m, _, _ in grid}), params)
    cells = [CompareCell(m, p, a, prompt_index=i) for m, p, a in grid for i in range(len(prompts))]

    def run(cell: CompareCell) -> None:
        try:
            ask = prompts[cell.prompt_index]
            cell.result = session.chat(ask, model=cell.model, profile=cell.profile, api=cell.api, **params)
        except QwenNbError as e:
            cell.error = e
        except Exception as e:  # a bug must not sink the other cells
            cell.error = _unexpected(e, cell.model, cell.profile, cell.api)

    if len(cells) == 1:
        run(cells[0])
    else:  # (first SDK imports in the workers are safe: qwen_nb.backends.load_sdk serialises them)
        with ThreadPoolExecutor(max_workers=min(concurrency, len(cells)), thread_name_prefix="qwen-nb-compare") as ex:
            list(ex.map(run, cells))
    labels = [_prompt_label(p) for p in prompts]
    return CompareResult(labels[0], cells, labels)
