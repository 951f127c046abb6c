"""The exception hierarchy: every error qwen-nb raises, with its status, code, request id and fix.

Every error qwen-nb raises is a ``QwenNbError``: its message says what went wrong and how
to fix it, and it keeps what a bug report needs (HTTP status, service code, request id,
raw body). Whether an error is worth retrying is a property of its class (``retryable``).
Which class a service answer becomes is decided by the service-facts table
(``qwen_nb.facts.ERRORS``) through ``error_class``; the guidance text is built in
``qwen_nb._guidance``. Keys never appear in messages: only masked keys (``sk-…1a2b``) do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from qwen_nb import _html, facts


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
    """``text`` (made a string) with anything that looks like an API key masked (``sk-…1a2b``).

    The one scrubber: every error text passes through it here, and ``qwen_nb._secrets`` hands it to
    everything else qwen-nb writes (logs, reprs, labels).
    """
    if text is None:
        return ""
    text = text if isinstance(text, str) else str(text)
    if "sk-" not in text:
        return text
    return facts.KEY_SEARCH.sub(lambda m: mask_key(m.group(0)), text)


_scrub = scrub


@dataclass(frozen=True)
class ErrorSummary:
    """An error made short: a one-line headline, two or three fix bullets, chips, and the long text.

    ``chips`` are ``(label, value)`` pairs (HTTP status, service code, request id); ``details``
    is the full message and fix (and the service's raw answer), keys masked.
    """

    headline: str
    fixes: tuple[str, ...]
    chips: tuple[tuple[str, str], ...]
    details: str


_URL = re.compile(r"https?://[^\s'\"<>)]*[^\s'\"<>).,;:]")
_WHICH_URL = re.compile(r",?\s*which (?:POSTs|GETs|calls|sends to)\s+https?://[^\s'\"<>)]*[^\s'\"<>).,;:]")
_JSON = re.compile(r"\{[^{}]*\"[^{}]*\}")
#: where the guidance ends and the quoted answer of the service (or the emulator) begins
_SAID = re.compile(r" The (?:service|emulator) said:")
_WHO = re.compile(r" \((?:key [^()]*|default workspace)\)")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z'\"(])")
#: fix sentences that name something the user already has come first
_FIRST = ("Profiles of yours", "Your other profile", "Did you mean", "Retrying is safe", "The text received")
HEADLINE_MAX = 180
BULLET_MAX = 240


def _short(text: str, limit: int) -> str:
    """``text`` on one line, URLs reduced to their host, JSON left out, cut at ``limit`` characters."""
    text = _WHICH_URL.sub("", text)
    text = _URL.sub(lambda m: m.group(0).split("/")[2], text)
    text = _JSON.sub("{…}", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text or "") if s.strip()]


def summarize(err: BaseException) -> ErrorSummary:
    """The ``ErrorSummary`` of any exception: a ``QwenNbError``'s own, or its type and first line, keys masked."""
    if isinstance(err, QwenNbError):
        return err.summary()
    text = scrub(str(err))
    first = text.strip().splitlines()[0] if text.strip() else ""
    headline = _short(f"{type(err).__name__}: {first}" if first else type(err).__name__, HEADLINE_MAX)
    return ErrorSummary(headline, (), (), text)


class QwenNbError(Exception):
    """Base class: a message a user can act on, plus the service's details."""

    #: the failure may pass if the same call is made again (the pipeline retries it)
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        fix: str | None = None,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        profile: str | None = None,
        region: str | None = None,
        model: str | None = None,
        api: str | None = None,
        raw: Any = None,
    ) -> None:
        self.message = _scrub(message)
        self.fix = None if fix is None else _scrub(fix)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.profile = profile
        self.region = region
        self.model = model
        self.api = api
        self.raw = raw
        super().__init__(self.__str__())

    @property
    def status_text(self) -> str:
        """What is known of the service's answer: ``HTTP 404 ModelNotFound``, ``HTTP 500``, ``Throttling`` or ``""``."""
        parts = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(str(self.code))
        return " ".join(parts)

    def __str__(self) -> str:
        text = self.message
        if self.fix:
            text += f"\nHow to fix: {self.fix}"
        details = [self.status_text] if self.status_text else []
        if self.request_id:
            details.append(f"request id {self.request_id}")
        if details:
            text += f"\n({'; '.join(details)})"
        return _scrub(text)

    def summary(self) -> ErrorSummary:
        """This error made short: headline, 2-3 fix bullets, status/code/request-id chips, the long text folded.

        The headline is the message's first sentence; the bullets are the fix's sentences, the ones
        naming what the user already has (other profiles that can call the model) first. URLs are
        cut to their host and JSON is left to ``details``. Keys are masked everywhere.
        """
        said = _SAID.split(self.message)[0]
        sentences = _sentences(said)
        # the key and workspace of the profile are in the details: the headline names the profile only
        first = _WHO.sub("", sentences[0]) if sentences else type(self).__name__
        headline = _short(first, HEADLINE_MAX)
        hints = [s for s in sentences[1:] if s.startswith(_FIRST)]  # "Did you mean 'qwen-plus'?"
        ordered = sorted(hints + _sentences(self.fix or ""), key=lambda s: 0 if s.startswith(_FIRST) else 1)
        fixes = tuple(_short(s, BULLET_MAX) for s in ordered[:3])
        chips: list[tuple[str, str]] = []
        if self.status is not None:
            chips.append(("HTTP", str(self.status)))
        if self.code:
            chips.append(("code", str(self.code)))
        if self.request_id:
            chips.append(("request id", str(self.request_id)))
        details = str(self)
        if self.raw:
            try:
                raw = json.dumps(self.raw, indent=1, ensure_ascii=False, default=str)
            except (TypeError, ValueError):
                raw = repr(self.raw)
            details += "\n\nThe service's answer:\n" + raw
        return ErrorSummary(_scrub(headline), tuple(_scrub(f) for f in fixes),
                            tuple((k, _scrub(v)) for k, v in chips), _scrub(details))

    def _repr_html_(self) -> str:
        return _html.error_card(self.summary(), title=type(self).__name__)

    def _repr_markdown_(self) -> str:
        s = self.summary()
        lines = [f"**{type(self).__name__}**: {s.headline}"]
        if s.fixes:
            lines.append("\n**How to fix:**\n")
            lines += [f"- {f}" for f in s.fixes]
        details = []
        if self.status is not None or self.code:
            details.append(" ".join(([f"HTTP {self.status}"] if self.status is not None else [])
                                    + ([f"`{self.code}`"] if self.code else [])))
        if self.request_id:
            details.append(f"request id `{self.request_id}`")
        if details:
            lines.append(f"\n<small>{' · '.join(details)}</small>")
        return _scrub("\n".join(lines))

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for this error uncaught in a cell: the guidance, then the user's own frames.

        qwen-nb's frames (and IPython's) are left out; ``%tb verbose`` (or ``%xmode Verbose``) shows
        them all. Every line is key-scrubbed.
        """
        return _traceback_lines(self)


class InputError(QwenNbError, ValueError):
    """Bad input caught before any network call."""


class ConfigError(QwenNbError):
    """No usable profile, key or region configuration."""


class ServiceError(QwenNbError):
    """The service answered with an error (base of the service-side errors)."""


class InvalidKeyError(ServiceError):
    """401 ``InvalidApiKey``: wrong key, or a key used in another region."""


class AccessDeniedError(ServiceError):
    """403 ``AccessDenied``: not allowed (service not activated, async-only API, ...)."""


class ModelNotGrantedError(AccessDeniedError):
    """403 ``AccessDenied`` for a model the sub-workspace was not granted."""


class ModelNotFoundError(ServiceError):
    """404 ``ModelNotFound``: unknown model, or not offered in this region."""


class InvalidParameterError(ServiceError, ValueError):
    """400 ``InvalidParameter``: the service rejected a parameter."""


class ContentBlockedError(ServiceError):
    """400 ``DataInspectionFailed``: content moderation refused the input or output."""


class AccountOverdueError(ServiceError):
    """``Arrearage``: the account is overdue; not retryable."""


class RateLimitError(ServiceError):
    """429 ``Throttling*``: too many requests or tokens; retryable."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class TokenLimitError(RateLimitError):
    """429 ``Throttling.AllocationQuota`` / ``insufficient_quota``: tokens per minute used up; retryable."""


class QuotaExceededError(ServiceError):
    """A quota is used up (the model's free quota, with no pay-as-you-go price): not a rate; not retried."""


class FreeTierOnlyError(QuotaExceededError):
    """403 ``AllocationQuota.FreeTierOnly``: the free tier is used up while "use free tier only" is on."""


class NotSubscribedError(ServiceError):
    """429 ``CommodityNotPurchased``: the workspace or account is not subscribed; not a rate limit, never retried."""


class ServiceBudgetError(ServiceError):
    """429 from the console's Budget Management: the account, workspace or key budget stopped calls; not retried."""


class WorkspaceNotFoundError(ServiceError):
    """404 ``WorkSpaceNotFound`` (or 401 on a workspace host): the workspace id is wrong or not the key's."""


class ServerError(ServiceError):
    """5xx from the service; retryable."""

    retryable = True


class NetworkError(QwenNbError):
    """The service could not be reached (connection refused, timeout); retryable."""

    retryable = True


class StreamInterruptedError(QwenNbError):
    """A stream was cut midway; ``partial`` holds the text received so far."""

    def __init__(self, message: str, *, partial: str = "", partial_reasoning: str = "", **kw: Any) -> None:
        self.partial = partial
        self.partial_reasoning = partial_reasoning
        super().__init__(message, **kw)


class BudgetExceededError(QwenNbError):
    """A profile's budget is spent and the session refuses further calls (``hard_budget=True``)."""


class CancelledCallError(QwenNbError):
    """A call given up because the user interrupted it (Ctrl-C, Stop, a cancelled task): nothing more is sent."""


def error_class(status: int | None, code: str | None, message: str = "") -> type[QwenNbError]:
    """Which exception class a service error of this status and code becomes (from ``facts.ERRORS``).

    Codes are compared case-insensitively across the native and compatible spellings; an
    unknown code falls back on the status.
    """
    fact = facts.error_fact(code, status, message)
    if fact is not None:
        return _CLASSES[fact.error]
    if status is not None and status in facts.STATUS_CLASS:
        return _CLASSES[facts.STATUS_CLASS[status]]
    if status is not None and status >= 500:
        return ServerError
    return ServiceError


_CLASSES: dict[str, type[QwenNbError]] = {
    cls.__name__: cls
    for cls in (ServiceError, InvalidKeyError, AccessDeniedError, ModelNotGrantedError, ModelNotFoundError,
                InvalidParameterError, ContentBlockedError, AccountOverdueError, RateLimitError, TokenLimitError,
                QuotaExceededError, FreeTierOnlyError, NotSubscribedError, ServiceBudgetError, WorkspaceNotFoundError,
                ServerError)
}


# ------------------------------------------------------------------------------ uncaught in a cell


def _ipython_mode() -> str | None:
    """IPython's current exception mode ("Context", "Verbose", ...), or None outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    tb = getattr(shell, "InteractiveTB", None)
    return getattr(tb, "mode", None)


def _own_file(filename: str) -> bool:
    """A frame of qwen-nb itself or of IPython's machinery (not the user's code)."""
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    name = os.path.abspath(filename) if filename and not filename.startswith("<") else filename
    parts = name.replace("\\", "/").split("/")
    return name.startswith(here + os.sep) or ("IPython" in parts and "core" in parts)


def _traceback_lines(err: QwenNbError) -> list[str]:
    import traceback

    bold, dim, reset = "\x1b[1m", "\x1b[2m", "\x1b[0m"
    if _ipython_mode() == "Verbose":  # the full traceback asked for: IPython's own rendering, scrubbed
        from IPython import get_ipython

        shell = get_ipython()
        stb = shell.InteractiveTB.structured_traceback(type(err), err, err.__traceback__, tb_offset=1)
        return [_scrub(line) for line in stb]
    s = err.summary()
    # bold, not red: red text on the frontend's red-tinted error background reads at about 2:1 in dark themes
    lines = [f"{bold}{type(err).__name__}{reset}: {s.headline}"]
    lines += [f"  • {f}" for f in s.fixes]
    if s.chips:
        lines.append(f"{dim}  " + " · ".join(f"{k} {v}" for k, v in s.chips) + reset)
    user: list[traceback.FrameSummary] = []
    for frame in traceback.extract_tb(err.__traceback__):
        if _own_file(frame.filename):
            if user:  # the call into qwen-nb: what follows is qwen-nb's own
                break
            continue
        user.append(frame)
    if user:
        lines.append("")
        lines += [line.rstrip("\n") for line in traceback.format_list(user)]
    lines.append(f"{dim}(qwen-nb's own frames are hidden: %tb verbose shows the full traceback){reset}")
    return [_scrub(line) for line in lines]
