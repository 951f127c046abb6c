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
        return text

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


class BudgetExceededError(QwenNbError):
    """A profile's budget is spent and the session refuses further calls (``hard_budget=True``)."""


# --------------------------------------------------------------------------------------------
# Translation of service failures into guided errors (pure: the backends describe what the SDK
# raised as a ``ServiceFailure``; ``guided_error`` turns it into the right class and message).
# --------------------------------------------------------------------------------------------

_KEY_IN_TEXT = None


def scrub(text: str | None) -> str:
    """``text`` with anything that looks like an API key masked (``sk-…1a2b``)."""
    global _KEY_IN_TEXT
    if not text:
        return ""
    if _KEY_IN_TEXT is None:
        import re

        _KEY_IN_TEXT = re.compile(r"sk-[A-Za-z0-9][A-Za-z0-9_-]{7,}")
    return _KEY_IN_TEXT.sub(lambda m: f"sk-…{m.group(0)[-4:]}", text)


class ServiceFailure:
    """What went wrong on the wire, independent of the SDK that saw it.

    ``kind`` is ``"status"`` (the service answered with an error), ``"network"``
    (no answer) or ``"timeout"``.
    """

    __slots__ = ("kind", "status", "code", "message", "request_id", "body", "retry_after")

    def __init__(
        self,
        kind: str,
        *,
        status: int | None = None,
        code: str | None = None,
        message: str = "",
        request_id: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        self.kind = kind
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.body = body
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"ServiceFailure({self.kind!r}, status={self.status!r}, code={self.code!r})"


class ErrorContext:
    """Who made the call, where, and what else the user has: the raw material of a fix.

    ``profile`` and ``others`` are ``qwen_nb.profiles.Profile`` objects (duck-typed here).
    """

    __slots__ = ("profile", "region", "region_label", "base_url", "model", "api", "others", "known_models",
                 "attempts", "gateway")

    def __init__(
        self,
        *,
        profile: Any = None,
        region: str | None = None,
        region_label: str | None = None,
        base_url: str | None = None,
        model: str | None = None,
        api: str | None = None,
        others: tuple = (),
        known_models: list[str] | None = None,
        attempts: int = 1,
        gateway: str | None = None,
    ) -> None:
        #: the workspace gateway host of the call's region (``{WorkspaceId}`` where the id is unknown)
        self.gateway = gateway
        self.profile = profile
        self.region = region
        self.region_label = region_label
        self.base_url = base_url
        self.model = model
        self.api = api
        self.others = others
        self.known_models = known_models
        self.attempts = attempts

    @property
    def who(self) -> str:
        """``profile 'team-a' (key sk-…1a2b, workspace llm-…)``."""
        p = self.profile
        if p is None:
            return "this call"
        ws = f", workspace {p.workspace}" if getattr(p, "workspace", None) else ", default workspace"
        return f"profile {p.name!r} (key {p.masked_key}{ws})"

    @property
    def where(self) -> str:
        """``Singapore (international) [ap-southeast-1]``."""
        if self.region_label and self.region:
            return f"{self.region_label} [{self.region}]"
        return self.region or "an unknown region"


def _can_call(profile: Any, model: str | None) -> str | None:
    """Why ``profile`` can call ``model`` ("granted", "default workspace"), or None if not known to."""
    if model is None:
        return None
    models = getattr(profile, "models", None)
    if models is not None:
        return "granted" if model in models else None
    if getattr(profile, "workspace", None) is None:
        return "default workspace"
    return None


def _env_name(profile: Any) -> str:
    name = getattr(profile, "name", "default")
    return "DASHSCOPE_REGION" if name == "default" else f"QWEN_NB_{name.upper().replace('-', '_')}_REGION"


def _invalid_key(f: ServiceFailure, ctx: ErrorContext) -> tuple[str, str]:
    msg = (
        f"The API key of {ctx.who} was rejected as invalid by {ctx.where}"
        + (f" at {ctx.base_url}" if ctx.base_url else "")
        + "."
    )
    fix = (
        f"Model Studio API keys are per region: a key created in another region's console is refused here. "
        f"Check that this key was created in the {ctx.region} console (API-KEY page) and was not deleted, "
        f"or set the profile's region to the one the key belongs to ({_env_name(ctx.profile)})."
    )
    region = ctx.region
    elsewhere = [o for o in ctx.others if getattr(o, "region", region) != region]
    if elsewhere:
        names = ", ".join(f"{o.name!r} ({o.region})" for o in elsewhere)
        fix += (
            f" Your other profile(s) {names} use another region; if this key came from that console, "
            f"add it with region={elsewhere[0].region!r}."
        )
    return msg, fix


def _not_granted(f: ServiceFailure, ctx: ErrorContext) -> tuple[str, str]:
    model = ctx.model or "this model"
    msg = f"{ctx.who[0].upper()}{ctx.who[1:]} in {ctx.where} is not allowed to call {model!r}: access denied."
    p = ctx.profile
    if getattr(p, "workspace", None):
        msg += " A sub-workspace key can only call the models granted to its workspace."
    ws = getattr(p, "workspace", None) or "{WorkspaceId}"
    gateway = ctx.gateway or f"https://{ws}.{ctx.region}.maas.aliyuncs.com"
    fix = (
        f"Grant {model!r} to the workspace: Model Studio console > the workspace > model permissions "
        f"(authorization) > add {model!r} for inference; or by API: POST "
        f"{gateway}/api/v1/models/permissions with "
        f'{{"models": [{{"model": "{model}", "inference": true}}], "access_all_entities": "KEEP"}}.'
    )
    callers = []
    for o in ctx.others:
        why = _can_call(o, ctx.model)
        if why and getattr(o, "region", None) == ctx.region:
            callers.append(f"{o.name!r} ({why})")
        elif why:
            callers.append(f"{o.name!r} ({why}, {o.region})")
    if callers:
        fix += f" Profiles of yours that can call it: {', '.join(callers)} — e.g. profile={callers[0].split(' ')[0]}."
    models = getattr(p, "models", None)
    if models:
        fix += f" This workspace is known to be granted: {', '.join(models)}."
    return msg, fix


def _not_found(f: ServiceFailure, ctx: ErrorContext) -> tuple[str, str]:
    from qwen_nb.catalog import model_info, suggest

    model = ctx.model or "?"
    msg = f"Model {model!r} was not found in {ctx.where} ({ctx.who})."
    guess = suggest(model, ctx.known_models) if ctx.model else None
    if guess and guess != model:
        msg += f" Did you mean {guess!r}?"
    info = model_info(model) if ctx.model else None
    if info is not None and ctx.region not in info.regions:
        fix = f"{model!r} is offered in {', '.join(info.regions)}, not {ctx.region}: use a profile in one of those."
    else:
        fix = "Check the spelling; list_models(profile=...) shows the models this key can see in its region."
    return msg, fix


def guided_error(failure: ServiceFailure, ctx: ErrorContext) -> QwenNbError:
    """The ``QwenNbError`` for ``failure``, with a message naming who, where, what and the fix."""
    common: dict[str, Any] = {
        "status": failure.status,
        "code": failure.code,
        "request_id": failure.request_id,
        "profile": getattr(ctx.profile, "name", None),
        "region": ctx.region,
        "model": ctx.model,
        "api": ctx.api,
        "raw": failure.body,
    }
    service_says = scrub(failure.message).strip()
    said = f" The service said: {service_says}" if service_says else ""
    if failure.kind in ("network", "timeout"):
        what = "timed out" if failure.kind == "timeout" else "could not be reached"
        tries = f" after {ctx.attempts} attempt(s)" if ctx.attempts > 1 else ""
        msg = f"Model Studio at {ctx.base_url or ctx.where} {what}{tries} ({ctx.who}, model {ctx.model!r})."
        if service_says:
            msg += f" ({service_says})"
        fix = "Check the network connection, proxy settings and the base URL; calls are retried with backoff."
        return NetworkError(msg, fix=fix, **{k: v for k, v in common.items() if k not in ("status", "code")})

    cls = error_class(failure.status, failure.code)
    code = (failure.code or "").lower()
    low = service_says.lower()
    if cls is AccessDeniedError:
        if code.endswith("unpurchased") or "not activated" in low or "eligible" in low:
            # e.g. 403 AccessDenied.Unpurchased "Access to model denied. Please make sure you are eligible ..."
            msg = (f"The account of {ctx.who} is not entitled to {ctx.model!r} in {ctx.where}: the model (or "
                   f"Model Studio in this region) has not been activated or purchased.{said}")
            fix = ("Activate Model Studio for this region and the model in the Alibaba Cloud console (some models "
                   "need a paid plan), or call a model the account has; granting it to a workspace does not help.")
            return AccessDeniedError(msg, fix=fix, **common)
        if code.startswith("workspace.") or "workspace access denied" in low:
            # e.g. 403 Workspace.AccessDenied: the key may not be used in the workspace the call names
            ws = getattr(ctx.profile, "workspace", None)
            msg = (f"{ctx.who} may not use workspace {ws or '(the one the call named)'} in {ctx.where}.{said}")
            fix = ("Use the API key of that workspace, or the workspace id the key belongs to (console > the "
                   "workspace > API keys); check DASHSCOPE_WORKSPACE / QWEN_NB_<NAME>_WORKSPACE.")
            return AccessDeniedError(msg, fix=fix, **common)
        if "synchronous" in low or "async" in low:
            msg = f"{ctx.model!r} can only be called asynchronously ({ctx.who}, {ctx.where}).{said}"
            fix = "Use the model's asynchronous task API; chat() makes synchronous calls."
            return AccessDeniedError(msg, fix=fix, **common)
        msg, fix = _not_granted(failure, ctx)
        return ModelNotGrantedError(msg + said, fix=fix, **common)
    if cls is InvalidKeyError:
        msg, fix = _invalid_key(failure, ctx)
        return InvalidKeyError(msg + said, fix=fix, **common)
    if cls is ModelNotFoundError:
        msg, fix = _not_found(failure, ctx)
        return ModelNotFoundError(msg + said, fix=fix, **common)
    if cls is RateLimitError:
        wait = f" The service asks to retry after {failure.retry_after:g} s." if failure.retry_after is not None else ""
        tries = f" Gave up after {ctx.attempts} attempt(s)." if ctx.attempts > 1 else ""
        msg = f"Rate limited calling {ctx.model!r} with {ctx.who} in {ctx.where}.{wait}{tries}{said}"
        fix = "Wait a little, lower concurrency (chat_many(concurrency=...)), or raise the rate limit in the console."
        return RateLimitError(msg, fix=fix, retry_after=failure.retry_after, **common)
    if cls is QuotaExceededError:
        msg = f"A quota is used up for {ctx.who} in {ctx.where} (model {ctx.model!r}); not retried.{said}"
        fix = "Check the free quota and billing of this account in the console, or use another workspace's profile."
        return QuotaExceededError(msg, fix=fix, **common)
    if cls is ContentBlockedError:
        msg = f"Content moderation blocked the input or the output of {ctx.model!r} ({ctx.who}).{said}"
        fix = "Rephrase the prompt (or the image); the service's content inspection refused it. Not retried."
        return ContentBlockedError(msg, fix=fix, **common)
    if cls is AccountOverdueError:
        msg = f"The Alibaba Cloud account of {ctx.who} is overdue (Arrearage); calls are refused.{said}"
        fix = "Top up or settle the overdue bill in the Alibaba Cloud billing console, then retry."
        return AccountOverdueError(msg, fix=fix, **common)
    if cls is InvalidParameterError:
        msg = f"The service rejected a parameter of the call to {ctx.model!r} ({ctx.who}, {ctx.where}).{said}"
        fix = "Check the parameters named in the service's message (not retried)."
        return InvalidParameterError(msg, fix=fix, **common)
    if cls is ServerError:
        tries = f" after {ctx.attempts} attempt(s)" if ctx.attempts > 1 else ""
        msg = (f"Model Studio had a service error (HTTP {failure.status}){tries} calling {ctx.model!r} "
               f"in {ctx.where} ({ctx.who}).{said}")
        fix = "This is on the service side; retry later, or try another region or model."
        return ServerError(msg, fix=fix, **common)
    msg = f"Model Studio refused the call to {ctx.model!r} ({ctx.who}, {ctx.where}).{said}"
    return cls(msg, fix="See the service's message and code above.", **common)


def stream_cut_error(
    detail: str,
    ctx: ErrorContext,
    *,
    partial: str = "",
    partial_reasoning: str = "",
    request_id: str | None = None,
) -> StreamInterruptedError:
    """The ``StreamInterruptedError`` for a stream that broke off after some text had arrived.

    ``detail`` is what the transport said (``"RemoteProtocolError: peer closed connection ..."``).
    The service was reached and answered: this says so, how much arrived, where it is kept, and
    that calling again is safe.
    """
    got = f"{len(partial)} characters of the answer"
    if partial_reasoning:
        got += f" (and {len(partial_reasoning)} characters of thinking)"
    said = scrub(detail).strip()
    msg = (f"The streamed answer of {ctx.model!r} ({ctx.who}, {ctx.where}) was cut after {got}: the connection "
           f"closed before the answer was complete" + (f" ({said})." if said else "."))
    fix = ("The text received so far is in .partial" + (" (the thinking in .partial_reasoning)" if partial_reasoning
                                                         else "")
           + ". Retrying is safe: call again for the complete answer.")
    return StreamInterruptedError(
        msg,
        fix=fix,
        partial=partial,
        partial_reasoning=partial_reasoning,
        request_id=request_id,
        profile=getattr(ctx.profile, "name", None),
        region=ctx.region,
        model=ctx.model,
        api=ctx.api,
        code="StreamInterrupted",
    )


def failure_from_response(resp: Any) -> ServiceFailure | None:
    """A ``ServiceFailure`` from a dashscope 1.x response object (``Generation.call`` and friends
    return errors instead of raising), or None if the response is a success."""
    status = getattr(resp, "status_code", None)
    code = getattr(resp, "code", None) or None
    if status in (None, 200) and not code:
        return None
    headers = getattr(resp, "headers", None) or {}
    from qwen_nb.retry import retry_after_from_headers

    return ServiceFailure(
        "status",
        status=None if status == 200 else status,
        code=code,
        message=getattr(resp, "message", "") or "",
        request_id=getattr(resp, "request_id", None) or None,
        body={"code": code, "message": getattr(resp, "message", ""), "request_id": getattr(resp, "request_id", None)},
        retry_after=retry_after_from_headers(headers),
    )
