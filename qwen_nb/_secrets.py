"""Keys as secrets: the one scrubber every text qwen-nb writes passes through, masking, and checking a pasted key.

A key is shown only masked (``sk-…1a2b``: enough to tell keys apart, never enough to use
one). ``scrub`` masks anything key-shaped inside a text; messages, warnings, reprs, labels
and logs go through it. The key patterns are the service facts' (``qwen_nb.facts``).
"""

from __future__ import annotations

import warnings
from typing import Any

from qwen_nb import facts
from qwen_nb.errors import InputError


def mask_key(key: str | None) -> str:
    """``sk-…1a2b``: enough to tell keys apart, never enough to use one."""
    if not key:
        return "(no key)"
    key = key.strip()
    if len(key) <= 8:
        return "sk-…" if key.startswith("sk-") else "…"
    prefix = "sk-" if key.startswith("sk-") else ""
    return f"{prefix}…{key[-4:]}"


def scrub(text: Any) -> str:
    """``text`` (made a string) with anything that looks like an API key masked (``sk-…1a2b``)."""
    if text is None:
        return ""
    text = text if isinstance(text, str) else str(text)
    if "sk-" not in text:
        return text
    return facts.KEY_SEARCH.sub(lambda m: mask_key(m.group(0)), text)


def looks_like_key(value: Any) -> bool:
    """True if ``value`` is a string shaped like an API key (for refusing a key typed in the wrong place)."""
    return isinstance(value, str) and bool(facts.KEY_SEARCH.search(value))


def clean_key(key: Any, *, source: str = "key") -> str:
    """Strip paste debris (spaces, newlines, quotes) with a warning; reject non-keys."""
    if not isinstance(key, str):
        raise InputError(f"The {source} must be a string, got {type(key).__name__}.")
    stripped = key.strip().strip("'\"").strip()
    if stripped and stripped != key:
        warnings.warn(
            f"The {source} {mask_key(stripped)} had surrounding whitespace, quotes or a newline "
            "(a common paste error); it was stripped.",
            stacklevel=3,
        )
    if not stripped:
        raise InputError(
            f"The {source} is empty.", fix="Paste the API key from the Model Studio console (API-KEY page)."
        )
    if not facts.KEY_PATTERN.match(stripped):
        raise InputError(
            f"The {source} {mask_key(stripped)} does not look like a Model Studio API key.",
            fix="Model Studio keys start with 'sk-' followed by letters and digits; "
            "copy it again from the console's API-KEY page of the right workspace and region.",
        )
    return stripped
