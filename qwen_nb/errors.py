"""The exception hierarchy, and the pure mapping from service error codes to it.

Every error qwen-nb raises is a ``QwenNbError``: its message says what went
wrong and how to fix it, and it keeps what a bug report needs (HTTP status,
service code, request id, raw body). Keys never appear in messages: only
masked keys (``sk-…1a2b``) do.
"""

from __future__ import annotations

from typing import Any


class QwenNbError(Exception):
    """Base class: a message a user can act on, plus the service's details."""

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
        self.message = message
        self.fix = fix
        self.status = status
        self.code = code
        self.request_id = request_id
        self.profile = profile
        self.region = region
        self.model = model
        self.api = api
        self.raw = raw
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = self.message
        if self.fix:
            text += f"\nHow to fix: {self.fix}"
        details = []
        if self.status is not None or self.code:
            details.append(f"HTTP {self.status} {self.code or ''}".strip())
        if self.request_id:
            details.append(f"request id {self.request_id}")
        if details:
            text += f"\n({'; '.join(details)})"
        return text

    def _repr_markdown_(self) -> str:
        lines = [f"**{type(self).__name__}**: {self.message}"]
        if self.fix:
            lines.append(f"\n**How to fix:** {self.fix}")
        if self.code or self.request_id:
            lines.append(f"\n<small>HTTP {self.status} `{self.code}` · request id `{self.request_id}`</small>")
        return "\n".join(lines)


class InputError(QwenNbError, ValueError):
    """Bad input caught before any network call."""


class ConfigError(QwenNbError):
    """No usable profile, key or region configuration."""


class ServiceError(QwenNbError):
    """The service answered with an error (base of the service-side errors)."""

    retryable = False


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


class QuotaExceededError(ServiceError):
    """429 ``Throttling.AllocationQuota`` / ``insufficient_quota``: a quota, not a rate; not retried."""


class ServerError(ServiceError):
    """5xx from the service; retryable."""

    retryable = True


class NetworkError(QwenNbError):
    """The service could not be reached (connection refused, timeout); retryable."""

    retryable = True


class StreamInterruptedError(QwenNbError):
    """A stream was cut midway; ``partial`` holds the text received so far."""

    retryable = False

    def __init__(self, message: str, *, partial: str = "", partial_reasoning: str = "", **kw: Any) -> None:
        self.partial = partial
        self.partial_reasoning = partial_reasoning
        super().__init__(message, **kw)


def error_class(status: int | None, code: str | None) -> type[QwenNbError]:
    """Which exception class a service error of this status and code becomes.

    Codes are compared case-insensitively across the native and compatible spellings.
    """
    c = (code or "").lower()
    if c in ("invalidapikey", "invalid_api_key") or status == 401:
        return InvalidKeyError
    if c.startswith("arrearage"):
        return AccountOverdueError
    if c in ("datainspectionfailed", "data_inspection_failed") or "inspection" in c:
        return ContentBlockedError
    if c in ("throttling.allocationquota", "insufficient_quota", "throttling.allocation_quota"):
        return QuotaExceededError
    if c.startswith("throttling") or c in ("rate_limit_exceeded", "ratelimit") or status == 429:
        return RateLimitError
    if c in ("modelnotfound", "model_not_found", "model.notexist", "notfound", "not_found") or status == 404:
        return ModelNotFoundError
    if c.startswith("accessdenied") or c == "access_denied" or status == 403:
        return AccessDeniedError
    if c in ("invalidparameter", "invalid_parameter", "invalid_request_error") or status == 400:
        return InvalidParameterError
    if status is not None and status >= 500:
        return ServerError
    return ServiceError
