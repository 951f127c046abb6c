"""How a usage report is shown: a text table, HTML with bars, CSV, and a pandas DataFrame."""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwen_nb import _html
from qwen_nb.errors import QwenNbError
from qwen_nb.ledger._rows import FIELDS, LABELS, UsageRow

if TYPE_CHECKING:
    from qwen_nb.ledger._report import UsageReport


class OptionalDependencyError(QwenNbError, ImportError):
    """An optional package (such as pandas) is needed for this and is not installed."""


def _fmt_cost(value: float) -> str:
    return f"{value:.4f}" if value >= 0.01 or value == 0 else f"{value:.6f}"


def _fmt_int(value: int) -> str:
    return f"{value:,}"


def _fmt_unknown(n: int) -> str:
    return f"{n} call{'s' if n != 1 else ''}" if n else "-"


# ---------------------------------------------------------------- the printed table (text and HTML)


def _head(by: str, currencies: list[str]) -> list[str]:
    head: list[str] = []
    for name in FIELDS:
        if name == "key":
            head.append(by)
        elif name == "costs":
            head += [LABELS["costs"].format(c) for c in currencies]
        elif name in LABELS:
            head.append(LABELS[name])
    return head


def _cells(row: UsageRow, currencies: list[str]) -> list[str]:
    cells: list[str] = []
    for name in FIELDS:
        if name == "key":
            cells.append(str(row.key))
        elif name == "costs":
            cells += [_fmt_cost(row.costs[c]) if c in row.costs else "-" for c in currencies]
        elif name == "unknown_price_calls":
            cells.append(_fmt_unknown(row.unknown_price_calls))
        elif name in LABELS:
            cells.append(_fmt_int(getattr(row, name)))
    return cells


def table(report: UsageReport) -> tuple[list[str], list[list[str]]]:
    """The header and the formatted lines of the printed table, the totals line last (no lines if no rows)."""
    cur = report.currencies
    body = [_cells(r, cur) for r in [*report.rows, report.totals]] if report.rows else []
    return _head(report.by, cur), body


def _empty(report: UsageReport) -> str:
    return "No calls recorded" + (" in this period." if report.since else " yet.")


def to_text(report: UsageReport) -> str:
    """A plain-text table (what ``qwen-nb usage`` prints)."""
    if not report.rows:
        return _empty(report)
    head, body = table(report)
    widths = [max(len(head[i]), *(len(b[i]) for b in body)) for i in range(len(head))]

    def fmt(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(head), rule, *(fmt(b) for b in body[:-1]), rule, fmt(body[-1])])


def _label_html(report: UsageReport, key: str) -> str:
    """A group's name as shown: a workspace by its profiles' names with the id below; a profile with its workspace."""
    aka = report.aka.get(key) or []
    if report.by == "workspace" and aka:
        return (f"<span class='qnb-name'>{html.escape(', '.join(aka))}</span><br>"
                f"<span class='qnb-muted qnb-small qnb-nowrap'>{html.escape(str(key))}</span>")
    if report.by == "profile" and aka:
        return (f"<span class='qnb-name'>{html.escape(str(key))}</span><br>"
                f"<span class='qnb-muted qnb-small qnb-nowrap'>{html.escape(', '.join(aka))}</span>")
    return f"<span class='qnb-name'>{html.escape(str(key))}</span>"


def _bars(report: UsageReport) -> str:
    """Cost (per currency) and tokens (input + output) as bars, each on its own scale, one row per group."""
    cur = report.currencies
    top = {c: max((r.costs.get(c, 0.0) for r in report.rows), default=0.0) for c in cur}
    top_tok = max((r.input_tokens + r.output_tokens for r in report.rows), default=0)
    head = [html.escape(report.by)] + [f"cost {html.escape(c)}" for c in cur] + ["tokens (input + output)"]
    rows = []
    for r in report.rows:
        cells = [_label_html(report, r.key)]
        for c in cur:
            value = r.costs.get(c)
            cells.append(_html.bar(value / top[c] if value and top[c] else 0.0, _fmt_cost(value))
                         if value is not None else "<span class='qnb-muted'>-</span>")
        tok = r.input_tokens + r.output_tokens
        cells.append(_html.bar(tok / top_tok if top_tok else 0.0, _fmt_int(tok), tokens=True))
        rows.append(cells)
    return _html.table(head, rows)


def bars_html(report: UsageReport) -> str:
    """Bars per group: cost per currency and tokens, each on its own scale (pure HTML/CSS)."""
    if not report.rows:
        return ""
    return _html.block(_bars(report), "qwen-nb-usage-bars")


#: what the columns mean, under the table
LEGEND = (
    ("errors", "calls that failed (probe refusals not included)"),
    ("probe refusals", "probe() calls the service refused: an answer to \"may it call?\", not a failure"),
    ("unpriced", "calls that used tokens at no known price: not in the cost"),
    ("bars", "cost and tokens each on their own scale (the largest row is full width)"),
)


def table_html(report: UsageReport) -> str:
    """The table as HTML, compact enough for 800 px: the group (with its other names), calls, errors, probe
    refusals, tokens (input / output / thinking) and the cost per currency (calls of unknown price under it)."""
    cur = report.currencies

    def cells(r: UsageRow, label: str) -> list[str]:
        out = [label, _fmt_int(r.calls), _fmt_int(r.errors), _fmt_int(r.probe_refusals),
               f"{_fmt_int(r.input_tokens)} / {_fmt_int(r.output_tokens)} / {_fmt_int(r.reasoning_tokens)}"]
        for c in cur:
            out.append(_fmt_cost(r.costs[c]) if c in r.costs else "-")
        if r.unknown_price_calls:
            unknown = _fmt_unknown(r.unknown_price_calls)
            note = f"<br><span class='qnb-muted qnb-small'>+{unknown} unpriced</span>"
            if cur:
                out[-1] += note
            else:
                out.append(note[4:])
        elif not cur:
            out.append("-")
        return out

    head = [html.escape(report.by), "calls", "errors", "probe refusals", "tokens in / out / thinking",
            *(f"cost {html.escape(c)}" for c in cur)] + ([] if cur else ["cost"])
    rows = [cells(r, _label_html(report, r.key)) for r in report.rows]
    total = cells(report.totals, "<b>total</b>")
    numeric = ["", *["qnb-num"] * (len(head) - 1)]
    return _html.table(head, rows, classes=numeric, total=total)


def to_html(report: UsageReport) -> str:
    """The table, the bars (cost and tokens on separate scales) and a legend, as HTML (the notebook display)."""
    if not report.rows:
        return _html.block(f"<p><em>{html.escape(_empty(report))}</em></p>", "qwen-nb-usage")
    note = ""
    unknown = report.totals.unknown_price_calls
    if unknown:
        note = (f"<div class='qnb-muted qnb-small'>{unknown} call{'s' if unknown != 1 else ''} with unknown "
                "price are not in the cost columns (add prices with qwen_nb.prices.load_extra).</div>")
    legend = _html.legend((f"<b>{html.escape(k)}</b>", v) for k, v in LEGEND)
    return _html.block(f"{table_html(report)}<div style='margin-top:8px'>{_bars(report)}</div>{legend}{note}",
                       "qwen-nb-usage")


# ---------------------------------------------------------------- data exports (CSV and pandas)


def columns(by: str, currencies: list[str]) -> list[str]:
    """The export columns: the group key named ``by``, every counter, and ``cost_<currency>`` per currency."""
    out: list[str] = []
    for name in FIELDS:
        if name == "key":
            out.append(by)
        elif name == "costs":
            out += [f"cost_{c}" for c in currencies]
        else:
            out.append(name)
    return out


def values(row: UsageRow, currencies: list[str]) -> list[Any]:
    """A row's export values, in ``columns()`` order (None where a currency has no known cost)."""
    out: list[Any] = []
    for name in FIELDS:
        if name == "costs":
            out += [row.costs.get(c) for c in currencies]
        else:
            out.append(getattr(row, name))
    return out


def to_csv(report: UsageReport, path: str | Path | None = None) -> str | None:
    """The rows as CSV (one cost column per currency); written to ``path``, or returned if no path."""
    cur = report.currencies
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns(report.by, cur))
    w.writerows(values(r, cur) for r in report.rows)
    text = buf.getvalue()
    if path is None:
        return text
    Path(path).expanduser().write_text(text, encoding="utf-8")
    return None


def to_pandas(report: UsageReport) -> Any:
    """The rows as a ``pandas.DataFrame`` indexed by the group key (needs pandas)."""
    try:
        import pandas as pd
    except ImportError:
        raise OptionalDependencyError(
            "UsageReport.to_pandas() needs pandas, which is not installed.",
            fix="pip install pandas — or use report.rows or report.to_csv() instead.",
        ) from None
    cur = report.currencies
    cols = columns(report.by, cur)
    records = [dict(zip(cols, values(r, cur), strict=True)) for r in report.rows]
    return pd.DataFrame.from_records(records, columns=cols).set_index(report.by)
