"""How a usage report is shown: a text table, HTML with bars, CSV, and a pandas DataFrame."""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def bars_html(report: UsageReport) -> str:
    """Horizontal bars per group (cost per currency, or tokens where no cost is known), pure HTML/CSS."""
    if not report.rows:
        return ""
    cur = report.currencies
    top = {c: max((r.costs.get(c, 0.0) for r in report.rows), default=0.0) for c in cur}
    top_tok = max((r.input_tokens + r.output_tokens for r in report.rows), default=0)
    out = ['<div style="font-size:12px;line-height:1.5;margin-top:6px">']
    for r in report.rows:
        bars = []
        for c in cur:
            if c in r.costs and top[c] > 0:
                pct = 100 * r.costs[c] / top[c]
                bars.append((pct, f"{_fmt_cost(r.costs[c])} {c}", "#3b82f6" if c == "USD" else "#ef4444"))
        if not bars and top_tok:
            tok = r.input_tokens + r.output_tokens
            bars.append((100 * tok / top_tok, f"{_fmt_int(tok)} tokens (price unknown)", "#9ca3af"))
        key = html.escape(str(r.key))
        for pct, label, color in bars:
            out.append(
                '<div style="display:flex;align-items:center;gap:6px">'
                f'<span style="width:14em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap" '
                f'title="{key}">{key}</span>'
                f'<span style="display:inline-block;height:10px;width:{max(pct, 0.5) * 2:.1f}px;'
                f'background:{color};border-radius:2px"></span>'
                f"<span>{html.escape(label)}</span></div>"
            )
    out.append("</div>")
    return "".join(out)


def to_html(report: UsageReport) -> str:
    """The table, the bars and a note on calls of unknown price, as HTML (the notebook display)."""
    if not report.rows:
        return f"<p><em>{html.escape(_empty(report))}</em></p>"
    head, body = table(report)

    def align(i: int) -> str:
        return "left" if i == 0 else "right"

    th = "".join(f'<th style="text-align:{align(i)}">{html.escape(h)}</th>' for i, h in enumerate(head))
    trs = []
    for n, b in enumerate(body):
        style = ' style="font-weight:bold;border-top:1px solid #888"' if n == len(body) - 1 else ""
        tds = "".join(f'<td style="text-align:{align(i)}">{html.escape(c)}</td>' for i, c in enumerate(b))
        trs.append(f"<tr{style}>{tds}</tr>")
    note = ""
    unknown = report.totals.unknown_price_calls
    if unknown:
        note = (f"<p style='font-size:11px;color:#666'>{unknown} call{'s' if unknown != 1 else ''} with unknown "
                "price are not in the cost columns (add prices with qwen_nb.prices.load_extra).</p>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(trs)}</tbody></table>{bars_html(report)}{note}"


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
