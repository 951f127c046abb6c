"""The one look of qwen-nb's HTML outputs: the stylesheet (JupyterLab theme colours), tables, chips, legends, cards.

Pure and dependency-free: callers pass text they have already key-scrubbed; everything here is
HTML-escaped where it is text. Every output carries the same small ``<style>`` block, scoped to
``.qnb``; colours come from JupyterLab's theme variables (``--jp-*``) so they follow the light and
dark themes, with fallbacks for frontends that do not define them. The variables chosen keep text at
4.5:1 contrast or more in JupyterLab's light and dark themes (error text ``--jp-error-color1``:
4.98 on white, 5.1 on the dark theme's #111; ✓ ``--jp-success-color0``: 7.9 and 4.6).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

#: the one stylesheet of compare, probe, usage, the usage panel and error cards
STYLE = (
    ".qnb{--qnb-fg:var(--jp-content-font-color1,#1f1f1f);--qnb-muted:var(--jp-content-font-color2,#5c5c5c);"
    "--qnb-err:var(--jp-error-color1,#c62828);--qnb-ok:var(--jp-success-color0,#1b5e20);"
    "--qnb-line:var(--jp-border-color2,#e0e0e0);--qnb-rule:var(--jp-border-color1,#bdbdbd);"
    "color:var(--qnb-fg);font-family:var(--jp-content-font-family,system-ui,sans-serif);"
    "font-size:var(--jp-content-font-size1,14px);line-height:1.45;max-width:100%;box-sizing:border-box;"
    "overflow-wrap:break-word}"
    ".qnb *{box-sizing:border-box}"
    ".qnb .qnb-head{margin:0 0 6px}"
    ".qnb .qnb-muted{color:var(--qnb-muted)}"
    ".qnb .qnb-small{font-size:0.88em}"
    ".qnb .qnb-err{color:var(--qnb-err)}"
    ".qnb .qnb-ok{color:var(--qnb-ok)}"
    ".qnb .qnb-nowrap{white-space:nowrap}"
    ".qnb .qnb-wrap{max-width:100%;overflow-x:auto}"
    ".qnb .qnb-wrap>table{border-collapse:collapse;max-width:100%;margin:0;font-size:inherit;"
    "color:inherit;background:transparent;table-layout:auto;border:none}"
    ".qnb .qnb-fixed>table{table-layout:fixed;width:100%}"
    ".qnb .qnb-full>table{width:100%}"
    ".qnb .qnb-wrap>table>*>tr,.qnb .qnb-wrap>table>tbody>tr:nth-child(odd),"
    ".qnb .qnb-wrap>table>tbody>tr:hover{background:transparent}"
    ".qnb .qnb-wrap>table>*>tr>th,.qnb .qnb-wrap>table>*>tr>td{padding:4px 6px;border:none;"
    "border-bottom:1px solid var(--qnb-line);vertical-align:top;text-align:left;background:transparent;"
    "color:inherit;overflow-wrap:break-word;max-width:none;line-height:inherit}"
    ".qnb .qnb-wrap>table>thead>tr>th{font-weight:600;border-bottom:1px solid var(--qnb-rule);"
    "vertical-align:bottom}"
    ".qnb .qnb-wrap>table>tbody>tr>th{font-weight:600}"
    ".qnb .qnb-wrap>table>tbody>tr.qnb-total>*{font-weight:600;border-top:1px solid var(--qnb-rule)}"
    ".qnb .qnb-wrap>table>*>tr>.qnb-num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    ".qnb .qnb-wrap>table>*>tr>.qnb-mark{text-align:center;white-space:nowrap}"
    ".qnb .qnb-wrap>table>thead>tr>th.qnb-num,.qnb .qnb-wrap>table>thead>tr>th.qnb-mark{white-space:normal}"
    ".qnb .qnb-wrap>table>*>tr>th .qnb-muted{font-weight:normal}"
    ".qnb .qnb-name{white-space:nowrap;overflow-wrap:normal}"
    ".qnb .qnb-fixed .qnb-name{white-space:normal;overflow-wrap:break-word}"
    ".qnb .qnb-chips{display:flex;flex-wrap:wrap;gap:4px;margin:4px 0}"
    ".qnb .qnb-chip{border:1px solid var(--qnb-rule);border-radius:10px;padding:0 7px;font-size:0.85em;"
    "max-width:100%}"
    ".qnb .qnb-legend{display:flex;flex-wrap:wrap;gap:2px 14px;margin-top:6px;font-size:0.88em;"
    "color:var(--qnb-muted)}"
    ".qnb .qnb-legend b{color:var(--qnb-fg);font-weight:600}"
    ".qnb .qnb-bar{display:inline-block;height:9px;border-radius:2px;vertical-align:middle;margin-right:6px;"
    "background:var(--jp-brand-color1,#1976d2)}"
    ".qnb .qnb-bar.qnb-tok{background:var(--jp-border-color1,#9e9e9e)}"
    ".qnb .qnb-card{border-left:3px solid var(--qnb-err);padding:4px 10px;margin:2px 0}"
    ".qnb .qnb-card-title{color:var(--qnb-err);font-weight:600;margin-right:6px}"
    ".qnb .qnb-card ul{margin:4px 0;padding-left:1.3em}"
    ".qnb .qnb-card li{margin:1px 0}"
    ".qnb details.qnb-details{margin-top:2px}"
    ".qnb details.qnb-details summary{cursor:pointer;color:var(--qnb-muted);font-size:0.88em}"
    ".qnb details.qnb-details pre{white-space:pre-wrap;overflow-wrap:break-word;font-size:0.85em;margin:4px 0;"
    "color:inherit;background:transparent;padding:0;max-height:24em;overflow-y:auto}"
    ".qnb .qnb-answer pre{white-space:pre-wrap;overflow-wrap:break-word;margin:4px 0;background:transparent}"
    ".qnb .qnb-actions{margin-top:4px}"
)


def esc(text: Any) -> str:
    """HTML-escaped text (the caller has already key-scrubbed it)."""
    return html.escape("" if text is None else str(text))


def block(inner: str, cls: str = "") -> str:
    """``inner`` in the scoped container that carries the stylesheet."""
    classes = f"qnb {cls}".strip()
    return f'<div class="{classes}"><style>{STYLE}</style>{inner}</div>'


def chips(pairs: Iterable[tuple[str, str]]) -> str:
    """Small bordered chips, ``label value`` each (as one text run, so ``request id …`` reads as one)."""
    items = "".join(f'<span class="qnb-chip">{esc(k)} {esc(v)}</span>' for k, v in pairs)
    return f'<div class="qnb-chips">{items}</div>' if items else ""


def legend(items: Iterable[tuple[str, str]]) -> str:
    """A one-line legend: ``(mark HTML, meaning text)`` pairs."""
    parts = "".join(f"<span>{mark} {esc(text)}</span>" for mark, text in items)
    return f'<div class="qnb-legend">{parts}</div>'


def table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    classes: Sequence[str] = (),
    total: Sequence[str] | None = None,
    fixed: bool = False,
    full: bool = False,
    widths: Sequence[str] | None = None,
) -> str:
    """A table of HTML cells: the first cell of each row is its header (``th``).

    ``classes`` gives a class per column (``qnb-num`` right-aligns figures, ``qnb-mark`` centres
    marks, ``qnb-name`` keeps a name on one line); ``total`` is a last, bold row; ``fixed`` spreads
    the columns over the whole width (``widths`` per column, e.g. ``"9em"``); ``full`` takes the whole width
    and sizes the columns by their content.
    """

    def cls(i: int) -> str:
        c = classes[i] if i < len(classes) else ""
        return f' class="{c}"' if c else ""

    def tr(cells: Sequence[str], row_cls: str = "") -> str:
        out = [f'<th scope="row"{cls(0)}>{cells[0]}</th>'] + [f"<td{cls(i)}>{c}</td>" for i, c in
                                                                enumerate(cells) if i]
        return f"<tr{row_cls}>" + "".join(out) + "</tr>"

    cols = ""
    if widths:
        cols = "<colgroup>" + "".join(f'<col style="width:{w}">' if w else "<col>" for w in widths) + "</colgroup>"
    thead = "<thead><tr>" + "".join(f'<th scope="col"{cls(i)}>{h}</th>' for i, h in enumerate(head)) + "</tr></thead>"
    body = [tr(r) for r in rows]
    if total is not None:
        body.append(tr(total, ' class="qnb-total"'))
    kind = "qnb-wrap" + (" qnb-fixed" if fixed else "") + (" qnb-full" if full else "")
    return f'<div class="{kind}"><table>{cols}{thead}<tbody>{"".join(body)}</tbody></table></div>'


def bar(fraction: float, label: str, *, tokens: bool = False) -> str:
    """A bar of ``fraction`` (0..1) of 8em, then its label; token bars are grey (another scale than cost)."""
    width = max(0.0, min(1.0, fraction)) * 8
    kind = "qnb-bar qnb-tok" if tokens else "qnb-bar"
    return f'<span class="qnb-nowrap"><span class="{kind}" style="width:{width:.2f}em"></span>{esc(label)}</span>'


def error_card(summary: Any, *, title: str, actions_html: str = "") -> str:
    """An ``ErrorSummary`` as a card: title and headline, fix bullets, chips, actions, the long text folded."""
    return block(error_card_body(summary, title=title, actions_html=actions_html), "qnb-error")


def error_card_body(summary: Any, *, title: str, actions_html: str = "", bullets: int = 3) -> str:
    """The card of ``error_card`` without the stylesheet, for a cell inside a larger output.

    ``bullets`` caps the fix bullets shown (a matrix cell shows one; all are in the folded details).
    """
    fixes = "".join(f"<li>{esc(f)}</li>" for f in summary.fixes[:bullets])
    return (
        f'<div class="qnb-card" role="alert"><div><span class="qnb-card-title">{esc(title)}</span> '
        f"{esc(summary.headline)}</div>"
        + (f'<div class="qnb-fixes"><b>How to fix:</b><ul>{fixes}</ul></div>' if fixes else "")
        + chips(summary.chips)
        + (f'<div class="qnb-actions">{actions_html}</div>' if actions_html else "")
        + (f'<details class="qnb-details"><summary>Details</summary><pre>{esc(summary.details)}</pre></details>'
           if summary.details else "")
        + "</div>"
    )
