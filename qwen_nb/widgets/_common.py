"""Shared bits of the widgets: the session they use and small HTML helpers."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from qwen_nb._cards import error_card_html
from qwen_nb._regions import get_region
from qwen_nb._secrets import scrub

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


def chip(text: str, style: str = "") -> str:
    """A small rounded label (status, code, request id, usage)."""
    return f'<span style="{_CHIP};{style}">{esc(text)}</span>'



def error_panel_html(err: BaseException) -> str:
    """The error card every qwen-nb view shows (``qwen_nb._cards.error_card_html``): a one-line headline, 2-3 fix
    bullets, status / code / request id as chips, details folded; keys are scrubbed everywhere.

    The one place the widgets render an error (the Playground's turns, refused sends, KeyEntry).
    """
    return f'<div class="qwen-nb-error">{error_card_html(err)}</div>'


def note_html(text: str, kind: str = "info") -> str:
    """A one-line note; ``kind`` is "info", "ok" or "warn"."""
    color = {"info": "var(--jp-info-color1, #0097a7)", "ok": "var(--jp-success-color1, #388e3c)",
             "warn": "var(--jp-warn-color1, #f57c00)"}.get(kind, "var(--jp-info-color1, #0097a7)")
    return f'<div style="border-left:4px solid {color};padding:2px 8px;overflow-wrap:anywhere">{esc(text)}</div>'


def pre_html(text: str) -> str:
    """Plain text kept as typed (reasoning text)."""
    return f'<div style="white-space:pre-wrap;font-size:90%;opacity:0.85">{esc(text)}</div>'
