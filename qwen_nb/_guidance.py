"""Guided errors: a failure seen on the wire plus who called, where and what, becomes one ``QwenNbError`` with its fix.

Pure. The backends describe what their SDK raised as a ``ServiceFailure``; the pipeline
adds an ``ErrorContext``; ``guided_error`` looks the code up once in the service-facts
table (``qwen_nb.facts.ERRORS``) and builds the message from the row's guidance: the
row's own fix, or a builder that names the user's profiles, regions and models. There is
no second dispatch on the service's wording where a code exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qwen_nb import facts
from qwen_nb._secrets import scrub, scrub_data
from qwen_nb.errors import (
    _CLASSES,
    AccessDeniedError,
    ModelNotGrantedError,
    NetworkError,
    QwenNbError,
    RateLimitError,
    ServiceError,
    StreamInterruptedError,
    error_class,
)


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

    ``profile`` and ``others`` are ``qwen_nb.Profile`` objects (duck-typed here).
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


# ------------------------------------------------------------------------------ the builders

#: a builder: (failure, context, what the service said, the row) -> (message, fix)
Builder = Callable[[ServiceFailure, ErrorContext, str, facts.ErrorFact], tuple[str, str]]


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


def _env_name(profile: Any, field: str = "REGION") -> str:
    name = getattr(profile, "name", "default")
    if name == "default":
        return f"DASHSCOPE_{field}"
    return f"QWEN_NB_{name.upper().replace('-', '_')}_{field}"


def _tries(ctx: ErrorContext, words: str) -> str:
    return words.format(n=ctx.attempts) if ctx.attempts > 1 else ""


def _invalid_key(f: ServiceFailure, ctx: ErrorContext, said: str, fact: facts.ErrorFact) -> tuple[str, str]:
    msg = (
        f"The API key of {ctx.who} was rejected as invalid by {ctx.where}"
        + (f" at {ctx.base_url}" if ctx.base_url else "")
        + "."
    )
    fix = (
        f"Model Studio API keys are per region and per billing plan: a key created in another region's console is "
        f"refused here. Check that this key was created in the {ctx.region} console (API-KEY page) and was not "
        f"deleted, or set the profile's region to the one the key belongs to ({_env_name(ctx.profile)})."
    )
    region = ctx.region
    elsewhere = [o for o in ctx.others if getattr(o, "region", region) != region]
    if elsewhere:
        names = ", ".join(f"{o.name!r} ({o.region})" for o in elsewhere)
        fix += (
            f" Your other profile(s) {names} use another region; if this key came from that console, "
            f"add it with region={elsewhere[0].region!r}."
        )
    return msg + said, fix


def _not_granted(f: ServiceFailure, ctx: ErrorContext, said: str, fact: facts.ErrorFact) -> tuple[str, str]:
    model = ctx.model or "this model"
    msg = f"{ctx.who[0].upper()}{ctx.who[1:]} in {ctx.where} is not allowed to call {model!r}: access denied."
    p = ctx.profile
    if getattr(p, "workspace", None):
        msg += " A sub-workspace key can only call the models granted to its workspace."
    ws = getattr(p, "workspace", None) or "{WorkspaceId}"
    gateway = ctx.gateway or facts.WORKSPACE_HOST.format(workspace=ws, region=ctx.region)
    fix = (
        f"Grant {model!r} to the workspace: Model Studio console > the workspace > model permissions "
        f"(authorization) > add {model!r} for inference (done with the Alibaba Cloud account); or by API: "
        f"q.grant([{model!r}], profile=...), which POSTs {gateway}{facts.NATIVE_PATH}{facts.PERMISSIONS_PATH}."
    )
    if not getattr(p, "workspace", None):
        fix += " On a default-workspace key this also means the account is not entitled to the model: activate it."
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
    return msg + said, fix


def _not_found(f: ServiceFailure, ctx: ErrorContext, said: str, fact: facts.ErrorFact) -> tuple[str, str]:
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
        fix = facts.ERRORS["model_not_found"].fix
    return msg + said, fix


def _unpurchased(f: ServiceFailure, ctx: ErrorContext, said: str, fact: facts.ErrorFact) -> tuple[str, str]:
    return (f"The account of {ctx.who} is not entitled to {ctx.model!r} in {ctx.where}: the model (or "
            f"Model Studio in this region) has not been activated or purchased.{said}", fact.fix)


def _workspace(f: ServiceFailure, ctx: ErrorContext, said: str, fact: facts.ErrorFact) -> tuple[str, str]:
    ws = getattr(ctx.profile, "workspace", None)
    return f"{ctx.who} may not use workspace {ws or '(the one the call named)'} in {ctx.where}.{said}", fact.fix


def _workspace_unknown(f: ServiceFailure, ctx: ErrorContext, said: str, fact: facts.ErrorFact) -> tuple[str, str]:
    ws = getattr(ctx.profile, "workspace", None)
    msg = (f"Workspace {ws or '(none given)'} was not found in {ctx.where}, or the key of {ctx.who} does not belong "
           f"to it.{said}")
    return msg, f"{fact.fix} ({_env_name(ctx.profile, 'WORKSPACE')})"


def _async_only(f: ServiceFailure, ctx: ErrorContext, said: str, fact: facts.ErrorFact) -> tuple[str, str]:
    return f"{ctx.model!r} can only be called asynchronously ({ctx.who}, {ctx.where}).{said}", fact.fix


def _rate_limit(f: ServiceFailure, ctx: ErrorContext, said: str, fact: facts.ErrorFact) -> tuple[str, str]:
    what = {"burst_rate": "The request rate rose too fast", "token_limit": "Tokens-per-minute limit reached"}.get(
        fact.key, "Rate limited")
    wait = f" The service asks to retry after {f.retry_after:g} s." if f.retry_after is not None else ""
    msg = (f"{what} calling {ctx.model!r} with {ctx.who} in {ctx.where}.{wait}"
           f"{_tries(ctx, ' Gave up after {n} attempt(s).')}{said}")
    return msg, fact.fix


def _server(f: ServiceFailure, ctx: ErrorContext, said: str, fact: facts.ErrorFact) -> tuple[str, str]:
    status = f"HTTP {f.status}" if f.status else f"code {f.code}"
    msg = (f"Model Studio had a service error ({status}){_tries(ctx, ' after {n} attempt(s)')} calling "
           f"{ctx.model!r} in {ctx.where} ({ctx.who}).{said}")
    return msg, fact.fix


#: the message of a row whose guidance is its own fix: {model}, {who}, {where} are filled in
_MESSAGES = {
    "quota": "A quota is used up for {who} in {where} (model {model!r}); not retried.",
    "blocked": "Content moderation blocked the input or the output of {model!r} ({who}).",
    "overdue": "The Alibaba Cloud account of {who} is overdue; calls are refused.",
    "parameter": "The service rejected a parameter of the call to {model!r} ({who}, {where}).",
    "free_tier_only": "The free tier of {model!r} is used up and \"use free tier only\" is on ({who}, {where}).",
    "not_subscribed": "The workspace of {who} is not subscribed to Model Studio in {where} (calling {model!r}).",
    "budget": "The budget set in the console's Budget Management is used up: calls of {who} are stopped.",
}

BUILDERS: dict[str, Builder] = {
    "invalid_key": _invalid_key,
    "not_granted": _not_granted,
    "not_found": _not_found,
    "unpurchased": _unpurchased,
    "workspace": _workspace,
    "workspace_unknown": _workspace_unknown,
    "async_only": _async_only,
    "rate_limit": _rate_limit,
    "server": _server,
}


def guided_error(failure: ServiceFailure, ctx: ErrorContext) -> QwenNbError:
    """The ``QwenNbError`` for ``failure``, with a message naming who, where, what and the fix.

    The code (with the status and, where rows share a code, the message) picks one row of
    ``facts.ERRORS``; the row gives the class and its guidance the message and fix.
    """
    common: dict[str, Any] = {
        "status": failure.status,
        "code": failure.code,
        "request_id": failure.request_id,
        "profile": getattr(ctx.profile, "name", None),
        "region": ctx.region,
        "model": ctx.model,
        "api": ctx.api,
        # plain data only, keys masked: never an SDK object that could hold the request
        "raw": scrub_data(failure.body),
    }
    service_says = scrub(failure.message).strip()
    # the emulator's wording is its own: say so, so nobody takes it for the service's
    speaker = "emulator" if getattr(ctx.profile, "source", None) == "emulator" else "service"
    said = f" The {speaker} said: {service_says}" if service_says else ""
    if failure.kind in ("network", "timeout"):
        what = "timed out" if failure.kind == "timeout" else "could not be reached"
        msg = (f"Model Studio at {ctx.base_url or ctx.where} {what}{_tries(ctx, ' after {n} attempt(s)')} "
               f"({ctx.who}, model {ctx.model!r}).")
        if service_says:
            msg += f" ({service_says})"
        fix = "Check the network connection, proxy settings and the base URL; calls are retried with backoff."
        return NetworkError(msg, fix=fix, **{k: v for k, v in common.items() if k not in ("status", "code")})

    fact = facts.error_fact(failure.code, failure.status, failure.message)
    if fact is None:  # an unknown code: what its status means
        fact = _fact_for_status(failure.status)
    if fact is None:
        cls = error_class(failure.status, failure.code, failure.message)
        msg = f"Model Studio refused the call to {ctx.model!r} ({ctx.who}, {ctx.where}).{said}"
        return cls(msg, fix="See the service's message and code above.", **common)
    cls = _CLASSES[fact.error]
    if fact.guide in BUILDERS:
        msg, fix = BUILDERS[fact.guide](failure, ctx, said, fact)
    elif fact.guide in _MESSAGES:
        msg, fix = _MESSAGES[fact.guide].format(who=ctx.who, where=ctx.where, model=ctx.model) + said, fact.fix
    else:
        msg, fix = f"Model Studio refused the call to {ctx.model!r} ({ctx.who}, {ctx.where}).{said}", fact.fix
    if fact.guide == "not_granted" and cls is AccessDeniedError:
        cls = ModelNotGrantedError
    if issubclass(cls, RateLimitError):
        return cls(msg, fix=fix, retry_after=failure.retry_after, **common)
    return cls(msg, fix=fix, **common)


def _fact_for_status(status: int | None) -> facts.ErrorFact | None:
    """The row that stands for a bare status (a code the table does not know)."""
    if status is None:
        return None
    if status >= 500:
        return facts.ERRORS["internal"]
    name = facts.STATUS_CLASS.get(status)
    for fact in facts.ERRORS.values():
        if fact.status == status and fact.error == name and not fact.match:
            return fact
    return None


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


__all__ = ["BUILDERS", "ErrorContext", "ServiceError", "ServiceFailure", "guided_error", "stream_cut_error"]
