"""Shared bits of the widgets: the session they use, per-session view state, HTML helpers."""

from __future__ import annotations

import html
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from qwen_nb._secrets import mask_key
from qwen_nb.errors import QwenNbError
from qwen_nb.facts import KEY_SEARCH


def resolve_session(session: Any = None) -> Any:
    """The given session, or the default one (``qwen_nb.session.default_session()``)."""
    if session is not None:
        return session
    from qwen_nb._default import default_session

    return default_session()


@dataclass
class ViewState:
    """What the widgets learned about one session's workspaces (kept in the kernel only)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    #: (profile name, api) -> model ids listed by the workspace
    models: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    #: profile name -> models that failed with ModelNotGrantedError in this session
    not_granted: dict[str, set[str]] = field(default_factory=dict)

    def mark_not_granted(self, profile: str, model: str) -> None:
        with self.lock:
            self.not_granted.setdefault(profile, set()).add(model)

    def denied(self, profile: str) -> set[str]:
        with self.lock:
            return set(self.not_granted.get(profile, ()))

    def forget(self, profile: str) -> None:
        """Drop what is known about ``profile`` (its key changed)."""
        with self.lock:
            self.not_granted.pop(profile, None)
            for k in [k for k in self.models if k[0] == profile]:
                del self.models[k]


_STATES: weakref.WeakKeyDictionary[Any, ViewState] = weakref.WeakKeyDictionary()
_STATES_BY_ID: dict[int, ViewState] = {}
_STATES_LOCK = threading.Lock()


def view_state(session: Any) -> ViewState:
    """The per-session view state shared by every widget over ``session``."""
    with _STATES_LOCK:
        try:
            state = _STATES.get(session)
            if state is None:
                state = _STATES[session] = ViewState()
        except TypeError:  # not weak-referenceable
            state = _STATES_BY_ID.setdefault(id(session), ViewState())
        return state


def scrub(text: str) -> str:
    """Mask anything that looks like a key (defence in depth: messages should not hold keys)."""
    return KEY_SEARCH.sub(lambda m: mask_key(m.group(0)), text)


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
