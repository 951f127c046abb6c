"""Shared bits of the widgets: the session they use and small HTML helpers."""

from __future__ import annotations

import html
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


def error_html(err: BaseException) -> str:
    """A guided error as HTML: what went wrong and how to fix it; never a traceback."""
    if isinstance(err, QwenNbError):
        parts = [f"<b>{esc(type(err).__name__)}</b>: {esc(err.message)}"]
        if err.fix:
            parts.append(f"<br><b>How to fix:</b> {esc(err.fix)}")
        details = []
        if err.status_text:
            details.append(err.status_text)
        if err.request_id:
            details.append(f"request id {err.request_id}")
        if details:
            parts.append(f"<br><small>{esc('; '.join(details))}</small>")
    else:
        parts = [f"<b>{esc(type(err).__name__)}</b>: {esc(err)}"]
    return (
        '<div style="border-left:4px solid #d9534f;padding:4px 8px;background:rgba(217,83,79,0.08)">'
        + "".join(parts)
        + "</div>"
    )


def note_html(text: str, kind: str = "info") -> str:
    """A one-line note; ``kind`` is "info", "ok" or "warn"."""
    color = {"info": "#5bc0de", "ok": "#5cb85c", "warn": "#f0ad4e"}.get(kind, "#5bc0de")
    return f'<div style="border-left:4px solid {color};padding:2px 8px">{esc(text)}</div>'


def pre_html(text: str) -> str:
    """Plain text kept as typed (reasoning text)."""
    return f'<div style="white-space:pre-wrap;font-size:90%;opacity:0.85">{esc(text)}</div>'
