"""Shared bits of the widgets: the session they use and small HTML helpers."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Any

from qwen_nb._regions import get_region
from qwen_nb._secrets import scrub
from qwen_nb.errors import QwenNbError

if TYPE_CHECKING:
    from qwen_nb.session import Session


def resolve_session(session: Session | None = None) -> Session:
    """The given session, or the default one (``qwen_nb.default_session()``)."""
    if session is not None:
        return session
    from qwen_nb._default import default_session

    return default_session()


def region_label(region_id: str) -> str:
    """``Singapore (international)`` for ``ap-southeast-1`` (the id itself if unknown)."""
    try:
        return get_region(region_id).label
    except Exception:
        return region_id


def esc(text: Any) -> str:
    """HTML-escaped, key-scrubbed text."""
    return html.escape(scrub(str(text)))


#: text colours from JupyterLab's theme variables, mixed toward the theme's strongest text colour so
#: they keep >= 4.5:1 contrast on the output background in light and dark themes (fallbacks: light)
_MIX = "color:{light};color:color-mix(in srgb, var({var}, {fallback}) {share}%, var(--jp-content-font-color0, #000))"
BAD = _MIX.format(light="#b71c1c", var="--jp-error-color1", fallback="#d32f2f", share=70)
WARN = _MIX.format(light="#8a4b00", var="--jp-warn-color1", fallback="#f57c00", share=62)
OK = _MIX.format(light="#1b5e20", var="--jp-success-color1", fallback="#388e3c", share=70)
MUTED = "color:var(--jp-ui-font-color1, rgba(0,0,0,.87));opacity:.85"
_CHIP = ("display:inline-block;margin:1px 4px 1px 0;line-height:1.6;padding:0 6px;border-radius:8px;font-size:85%;"
         "background:var(--jp-layout-color2, #eee);color:var(--jp-ui-font-color0, #000);"
         "overflow-wrap:anywhere")
_URL = re.compile(r"(?:,?\s*which\s+(?:POST|GET|PUT|DELETE)s?\s+)?\bhttps?://\S+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z'\"(])")


def chip(text: str, style: str = "") -> str:
    """A small rounded label (status, code, request id, usage)."""
    return f'<span style="{_CHIP};{style}">{esc(text)}</span>'


def _sentences(text: str) -> list[str]:
    return [t.strip() for t in _SENTENCE.split(text or "") if t.strip()]


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def error_panel_html(err: BaseException) -> str:
    """A short error panel: a one-line headline, 2-3 fix bullets, status / code / request id as chips, details folded.

    The one place the widgets render an error (the Playground's turns, refused sends, KeyEntry).
    URLs and long text stay in the folded details; keys are scrubbed everywhere.
    """
    name = type(err).__name__
    if isinstance(err, QwenNbError):
        message, fix = err.message, err.fix or ""
    else:
        message, fix = str(err), ""
    first = _sentences(message)
    headline = _short(first[0] if first else name, 160)
    bullets = [_short(_URL.sub("", b).rstrip(" ,;:"), 170) for b in _sentences(fix)]
    bullets = [b for b in bullets if len(b) > 3]
    # "Profiles of yours that can call it" is the most useful line: first
    bullets.sort(key=lambda b: 0 if b.startswith("Profiles of yours") else 1)
    bullets = bullets[:3]
    chips = [chip(name)]
    if isinstance(err, QwenNbError):
        if err.status is not None:
            chips.append(chip(f"HTTP {err.status}"))
        if err.code:
            chips.append(chip(str(err.code)))
        if err.request_id:
            chips.append(chip(f"request id {err.request_id}"))
    parts = [
        f'<div style="font-weight:600;{BAD}">✗ {esc(headline)}</div>',
    ]
    if bullets:
        items = "".join(f"<li>{esc(b)}</li>" for b in bullets)
        parts.append(f'<div style="margin-top:2px"><b>How to fix</b><ul style="margin:2px 0 2px 1.2em;'
                     f'padding:0">{items}</ul></div>')
    parts.append(f"<div>{''.join(chips)}</div>")
    details = message + (f"\n\nHow to fix: {fix}" if fix else "")
    parts.append(
        '<details style="margin-top:2px"><summary style="cursor:pointer;font-size:90%">Details</summary>'
        f'<div style="white-space:pre-wrap;overflow-wrap:anywhere;font-size:90%">{esc(details)}</div></details>'
    )
    return (
        '<div class="qwen-nb-error" style="border-left:4px solid var(--jp-error-color1, #d32f2f);line-height:1.45;'
        'padding:4px 8px;margin:2px 0;overflow-wrap:anywhere;color:var(--jp-content-font-color1, inherit)">'
        + "".join(parts)
        + "</div>"
    )


def note_html(text: str, kind: str = "info") -> str:
    """A one-line note; ``kind`` is "info", "ok" or "warn"."""
    color = {"info": "var(--jp-info-color1, #0097a7)", "ok": "var(--jp-success-color1, #388e3c)",
             "warn": "var(--jp-warn-color1, #f57c00)"}.get(kind, "var(--jp-info-color1, #0097a7)")
    return f'<div style="border-left:4px solid {color};padding:2px 8px;overflow-wrap:anywhere">{esc(text)}</div>'


def pre_html(text: str) -> str:
    """Plain text kept as typed (reasoning text)."""
    return f'<div style="white-space:pre-wrap;font-size:90%;opacity:0.85">{esc(text)}</div>'
