"""Keys as secrets: the one scrubber every text qwen-nb writes passes through, masking, and checking a pasted key.

A key is shown only masked (``sk-…1a2b``: enough to tell keys apart, never enough to use
one). ``scrub`` masks anything key-shaped inside a text; messages, warnings, reprs, labels
and logs go through it. The key patterns are the service facts' (``qwen_nb.facts``).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from qwen_nb import facts
from qwen_nb.errors import InputError, mask_key, scrub


def scrub_data(value: Any) -> Any:
    """A plain copy of ``value`` (dicts, lists, strings, numbers) with every key-shaped string masked.

    Anything else (SDK objects, requests, responses) becomes its scrubbed ``str``: what an error
    keeps of a service answer is plain data only.
    """
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k): scrub_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_data(v) for v in value]
    return scrub(value)


def looks_like_key(value: Any) -> bool:
    """True if ``value`` is a string shaped like an API key (for refusing a key typed in the wrong place)."""
    return isinstance(value, str) and bool(facts.KEY_SEARCH.search(value))


def key_var(profile: str | None) -> str:
    """The variable a profile's key belongs in: ``DASHSCOPE_API_KEY`` or ``QWEN_NB_<NAME>_API_KEY``."""
    if not isinstance(profile, str) or not profile.strip() or profile == "default" or looks_like_key(profile):
        return facts.DEFAULT_KEY_VAR if profile == "default" else "QWEN_NB_<NAME>_API_KEY"
    return f"QWEN_NB_{profile.strip().upper().replace('-', '_')}_API_KEY"


def refuse_key(value: Any, what: str, *, profile: str | None = None) -> None:
    """Raise ``InputError`` if ``value`` (or any string in it) looks like an API key: it does not belong in ``what``.

    The message names the place and where keys go, never the value (not even masked beyond
    ``sk-…1a2b``). Call it before a value is used, shown or sent.
    """
    items = value if isinstance(value, (list, tuple, set, frozenset)) else (value,)
    for item in items:
        if looks_like_key(item):
            found = facts.KEY_SEARCH.search(item)
            masked = mask_key(found.group(0)) if found else "sk-…"
            raise InputError(
                f"The {what} looks like an API key ({masked}); a key does not belong there.",
                fix=f"This looks like an API key; it belongs in {key_var(profile)} (or the key argument of "
                "add_profile(name, key, region=...)). If it was pasted by mistake, revoke it on the console's "
                "API-KEY page when in doubt.",
            )


def check_workspace(value: Any, what: str = "workspace id", *, profile: str | None = None) -> str | None:
    """A workspace id shaped like the console's (``llm-…``), stripped; None for an empty value."""
    if value is None:
        return None
    refuse_key(value, what, profile=profile)
    if not isinstance(value, str):
        raise InputError(f"The {what} must be a string like 'llm-…', got {type(value).__name__}.")
    text = value.strip()
    if not text:
        return None
    if not facts.WORKSPACE_PATTERN.match(text):
        shown = text if len(text) <= 48 else text[:45] + "…"
        raise InputError(
            f"The {what} {scrub(shown)!r} is not a Model Studio workspace id (these look like 'llm-' followed by "
            "lower-case letters and digits).",
            fix="Copy the id from the console (Workspaces > Workspace Details), e.g. 'llm-a2c8c0cbb1380af9'; leave it "
            "empty for the default workspace.",
        )
    return text


class ScrubFilter(logging.Filter):
    """A logging filter that masks keys in a record's message, arguments and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what can be shown
            message = f"{record.msg} {record.args}"
        record.msg, record.args = scrub(message), None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


#: the loggers qwen-nb writes to
LOGGERS = ("qwen_nb", "qwen_nb.ledger")
_FILTER = ScrubFilter()


def install_log_filter() -> None:
    """Put the scrubbing filter on qwen-nb's loggers (once; done when this module is imported)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ScrubFilter) for f in logger.filters):
            logger.addFilter(_FILTER)


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


install_log_filter()
