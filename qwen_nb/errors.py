"""The exception hierarchy: every error qwen-nb raises, with its status, code, request id and fix.

Every error qwen-nb raises is a ``QwenNbError``: its message says what went wrong and how
to fix it, and it keeps what a bug report needs (HTTP status, service code, request id,
raw body). Whether an error is worth retrying is a property of its class (``retryable``).
Which class a service answer becomes is decided by the service-facts table
(``qwen_nb.facts.ERRORS``) through ``error_class``; the guidance text is built in
``qwen_nb._guidance``. Keys never appear in messages: only masked keys (``sk-…1a2b``) do.
"""

from __future__ import annotations

from typing import Any, ClassVar

from qwen_nb import facts


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

    def _repr_markdown_(self) -> str:
        lines = [f"**{type(self).__name__}**: {self.message}"]
        if self.fix:
            lines.append(f"\n**How to fix:** {self.fix}")
        details = []
        if self.status is not None or self.code:
            details.append(" ".join(([f"HTTP {self.status}"] if self.status is not None else [])
                                    + ([f"`{self.code}`"] if self.code else [])))
        if self.request_id:
            details.append(f"request id `{self.request_id}`")
        if details:
            lines.append(f"\n<small>{' · '.join(details)}</small>")
        return _scrub("\n".join(lines))


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
