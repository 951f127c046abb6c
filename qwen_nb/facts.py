"""Facts about Model Studio, read by the client and the emulator alike: APIs, hosts, parameters, errors, key shapes.

One place for each fact. The client validates requests, picks hosts, classifies errors and
gives fixes from these tables; the emulator answers requests, builds error bodies and
refuses bad parameters from the same tables, so the two cannot drift apart. Pure data
and small pure helpers: this module imports nothing from qwen-nb.

Sources are named beside each table; the README's "Notes on the service" cites them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

# ---------------------------------------------------------------------------------------------
# the two APIs


@dataclass(frozen=True)
class ApiFact:
    """One way to call a model: the SDK, the base path on a host, and the names people type for it."""

    id: str
    label: str
    #: the Python SDK that speaks it
    sdk: str
    #: path under a host (``{host}{path}`` is the SDK's base URL)
    path: str
    aliases: tuple[str, ...] = ()


APIS: dict[str, ApiFact] = {
    a.id: a
    for a in (
        ApiFact("openai", "OpenAI-compatible", "openai", "/compatible-mode/v1",
                ("compatible", "compatible-mode", "oai")),
        ApiFact("dashscope", "DashScope native", "dashscope", "/api/v1", ("native",)),
    )
}
#: api ids, the default first
API_NAMES: tuple[str, ...] = tuple(APIS)
COMPATIBLE_PATH = APIS["openai"].path
NATIVE_PATH = APIS["dashscope"].path
#: native endpoints under ``NATIVE_PATH``
NATIVE_TEXT_GENERATION = "/services/aigc/text-generation/generation"
NATIVE_MULTIMODAL_GENERATION = "/services/aigc/multimodal-generation/generation"
#: a workspace's granted models (``GET``) and changing them (``POST``), under ``NATIVE_PATH``
PERMISSIONS_PATH = "/models/permissions"
#: chat under ``COMPATIBLE_PATH`` (the OpenAI-compatible chat page)
COMPATIBLE_CHAT = "/chat/completions"
#: the region whose shared host the DashScope SDKs (Python, Java) call when no base URL is set; the pages
#: say "You do not need to configure the base_url for SDK calls" for Beijing (``DASHSCOPE_HTTP_BASE_URL``
#: overrides it in both SDKs)
DASHSCOPE_SDK_DEFAULT_REGION = "cn-beijing"


def api_id(name: Any) -> str | None:
    """The api id for ``name`` (an id or an alias, any case), or None."""
    if type(name) is str and name in APIS:  # the common case: an id as it is
        return name
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    if key in APIS:
        return key
    for api in APIS.values():
        if key in api.aliases:
            return api.id
    return None


# ---------------------------------------------------------------------------------------------
# regions and hosts (the service's base-URL page)


#: the workspace-dedicated host: only keys of that workspace may call it
WORKSPACE_HOST = "https://{workspace}.{region}.maas.aliyuncs.com"
#: the trial host of a region (lower rate limits)
TRIAL_HOST = "https://trial.{region}.maas.aliyuncs.com"


@dataclass(frozen=True)
class RegionFact:
    """One region: its shared host (if it has one), its billing currency and the names people type."""

    id: str
    label: str
    #: the shared ("DashScope domain") host, any workspace's key of the region may call it; "" where the
    #: region has none and every call goes to a workspace host (the profile needs a workspace id)
    host: str
    currency: str = "USD"
    aliases: tuple[str, ...] = ()


REGION_FACTS: tuple[RegionFact, ...] = (
    RegionFact("ap-southeast-1", "Singapore (international)", "https://dashscope-intl.aliyuncs.com",
               aliases=("singapore", "intl", "international")),
    RegionFact("cn-beijing", "Beijing (China mainland)", "https://dashscope.aliyuncs.com", currency="CNY",
               aliases=("beijing", "china", "cn")),
    RegionFact("cn-hongkong", "Hong Kong", "https://cn-hongkong.dashscope.aliyuncs.com",
               aliases=("hongkong", "hong-kong", "hk")),
    # the service's base-URL page (English edition) gives US its own shared host
    RegionFact("us-east-1", "US (Virginia)", "https://dashscope-us.aliyuncs.com", aliases=("us", "virginia")),
    # Frankfurt and Tokyo have workspace hosts only (the base-URL and OpenAI-compatible chat pages)
    RegionFact("eu-central-1", "Germany (Frankfurt)", "", aliases=("frankfurt", "germany", "eu")),
    RegionFact("ap-northeast-1", "Japan (Tokyo)", "", aliases=("tokyo", "japan")),
)
REGION_IDS: tuple[str, ...] = tuple(r.id for r in REGION_FACTS)
DEFAULT_REGION = "ap-southeast-1"

# ---------------------------------------------------------------------------------------------
# keys and workspace ids

#: a whole Model Studio API key
KEY_PATTERN = re.compile(r"^sk-[A-Za-z0-9][A-Za-z0-9_-]{7,}$")
#: a key inside longer text (messages, logs, notebooks): ``sk-`` then 16+ key characters, also right
#: after ``_`` or a letter; the scrubber masks every match, the notebook scanner filters them further
KEY_SEARCH = re.compile(r"sk-[A-Za-z0-9][A-Za-z0-9_-]{15,}")
#: a workspace id as the console shows it
WORKSPACE_PATTERN = re.compile(r"^llm-[a-z0-9]{4,40}$")
#: the environment variables that hold keys: the SDKs' own and one per named profile
DEFAULT_KEY_VAR = "DASHSCOPE_API_KEY"
NAMED_KEY_VAR = re.compile(r"^QWEN_NB_([A-Z0-9_]+?)_API_KEY$")
KEY_VAR = re.compile(r"^(DASHSCOPE_API_KEY|QWEN_NB_[A-Z0-9_]+?_API_KEY)$")

# ---------------------------------------------------------------------------------------------
# request parameters (the service's API reference for chat on both APIs)


@dataclass(frozen=True)
class ParamSpec:
    """One generation parameter: its type and range, where it goes, and how to use it."""

    name: str
    #: "number", "int", "bool", "stop", "response_format", "tools" or "any"
    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    #: the ``openai`` SDK sends it in ``extra_body`` (not part of the OpenAI schema)
    extra_body: bool = False
    #: one of the generation parameters every call understands (shown in help and code snippets)
    core: bool = False
    #: how to use it, for an error's fix
    hint: str = ""

    def range_text(self) -> str:
        """``[0, 2)``, ``(0, 1]``, ``>= 1`` ..."""
        if self.low is not None and self.high is not None:
            lo = "(" if self.low_open else "["
            hi = ")" if self.high_open else "]"
            high = "2**31" if self.high == 2**31 else f"{self.high:g}"
            return f"{lo}{self.low:g}, {high}{hi}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return ""

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this parameter (``"must be ..., got ..."``), or None."""
        kind = self.kind
        if kind == "bool":
            return None if isinstance(value, bool) else f"must be True or False, got {value!r}"
        if kind in ("number", "int"):
            is_int = isinstance(value, int) and not isinstance(value, bool)
            if kind == "int" and not is_int:
                return f"must be {self._int_words()}, got {value!r}"
            if not is_int and (isinstance(value, bool) or not isinstance(value, float)):
                return f"must be a number, got {value!r}"
            if not is_int and not math.isfinite(value):
                return f"must be a finite number, got {value!r}"
            if not self._in_range(float(value)):
                return (f"must be {self._int_words()}" if kind == "int" else f"must be in {self.range_text()}") + (
                    f", got {value!r}")
            return None
        if kind == "stop":
            ok = isinstance(value, str) or (
                isinstance(value, (list, tuple)) and bool(value) and all(isinstance(s, str) for s in value)
            )
            return None if ok else f"must be a string or a list of strings, got {value!r}"
        return None

    def _in_range(self, x: float) -> bool:
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        return not (self.high is not None and (x >= self.high if self.high_open else x > self.high))

    def _int_words(self) -> str:
        if self.low == 1 and self.high is None:
            return "a positive integer"
        if self.low is not None and self.high is not None:
            return f"an integer in {self.range_text()}"
        return "an integer"


PARAMS: dict[str, ParamSpec] = {
    p.name: p
    for p in (
        ParamSpec("temperature", "number", 0, 2, high_open=True, core=True,
                  hint="Use 0 for focused answers, around 0.7 for varied ones; below 2."),
        ParamSpec("top_p", "number", 0, 1, low_open=True, core=True, hint="Use e.g. top_p=0.8."),
        ParamSpec("max_tokens", "int", 1, core=True, hint="Use e.g. max_tokens=512 (an int, not a float or string)."),
        ParamSpec("seed", "int", 0, 2**31, high_open=True, core=True, hint="Use e.g. seed=42."),
        ParamSpec("stop", "stop", core=True, hint='Use e.g. stop=["\\n\\n"].'),
        ParamSpec("enable_thinking", "bool", extra_body=True, core=True, hint="Use enable_thinking=True or False."),
        ParamSpec("thinking_budget", "int", 1, extra_body=True, core=True,
                  hint="Use e.g. thinking_budget=512 (an int, not a float or string)."),
        ParamSpec("response_format", "response_format", core=True,
                  hint='Use response_format={"type": "json_object"} (or "json") and ask for JSON in the prompt.'),
        ParamSpec("tools", "tools", core=True,
                  hint='Each tool is {"type": "function", "function": {"name": ..., "parameters": {...}}}.'),
        ParamSpec("top_k", "int", 1, extra_body=True, hint="Use e.g. top_k=20 (an int)."),
        ParamSpec("presence_penalty", "number", -2, 2, hint="Use a number from -2 to 2."),
        ParamSpec("repetition_penalty", "number", 0, low_open=True, extra_body=True, hint="Use e.g. 1.05."),
        ParamSpec("enable_search", "bool", extra_body=True, hint="Use enable_search=True or False."),
        ParamSpec("tool_choice", "any", hint='Use "auto", "none" or {"type": "function", ...}.'),
        ParamSpec("parallel_tool_calls", "bool", hint="Use parallel_tool_calls=True or False."),
    )
}
#: the parameters every call understands, in the order help texts list them
CORE_PARAMS: tuple[str, ...] = tuple(p.name for p in PARAMS.values() if p.core)
#: the parameters that sit in ``extra_body`` for the ``openai`` SDK
EXTRA_BODY_PARAMS: tuple[str, ...] = tuple(p.name for p in PARAMS.values() if p.extra_body)
#: ``response_format`` types the service knows
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
#: message roles
ROLES = ("system", "user", "assistant", "tool")

# ---------------------------------------------------------------------------------------------
# errors (the service's error-code page; codes seen in public bodies)


@dataclass(frozen=True)
class ErrorFact:
    """One documented answer of the service: its status, both code spellings, message, and what to do."""

    #: qwen-nb's own name for the row (the emulator's fault names use it)
    key: str
    status: int
    #: the native API's ``code``
    native: str
    #: the OpenAI-compatible API's ``error.code`` and ``error.type``
    compat: str
    compat_type: str
    #: the class qwen-nb raises (a name in ``qwen_nb.errors``)
    error: str
    #: the service means "try again": qwen-nb retries it
    retryable: bool
    #: the service's message (the emulator sends it)
    message: str
    #: the fix to give a user (guidance may add who/where)
    fix: str
    #: other spellings of the code that mean the same (matched case-insensitively)
    also: tuple[str, ...] = ()
    #: where rows share a code: a piece of the service's message (lower case) that picks this row
    match: str = ""
    #: which guidance explains it (``qwen_nb._guidance``); "" for the row's own fix
    guide: str = ""
    #: the OpenAI-compatible API's message where it differs from the native one
    compat_message: str = ""
    #: how sure we are: "documented" (the service's error-code page), "observed" (public bodies) or "unverified"
    evidence: str = "documented"


_SERVER_FIX = "This is on the service side; retry later, or try another region or model."

#: The largest request body the service accepts, in bytes (6 MiB). Observed, not documented: a 400
#: "Exceeded limit on max bytes to request body : 6291456" for qwen-plus-latest (langgenius/dify#35311).
MAX_REQUEST_BODY_BYTES = 6_291_456

# Sources: the service's error-code page (alibabacloud.com/help/en/model-studio/error-code and its
# Chinese edition), response bodies quoted in public issue threads, the dashscope 2.x SDK.
ERRORS: dict[str, ErrorFact] = {
    e.key: e
    for e in (
        # 400
        ErrorFact("invalid_parameter", 400, "InvalidParameter", "invalid_parameter_error", "invalid_request_error",
                  "InvalidParameterError", False, "Required parameter(s) missing or invalid, please check the request "
                  "parameters.", "Check the parameters named in the service's message (not retried).",
                  also=("invalid_parameter", "invalid_request_error", "InternalError.Algo.InvalidParameter",
                        "invalid_value"), guide="parameter"),
        ErrorFact("model_not_exist", 400, "InvalidParameter", "invalid_parameter_error", "invalid_request_error",
                  "ModelNotFoundError", False, "Model not exist.",
                  "Check the spelling; list_models(profile=...) shows the models this key can see in its region.",
                  match="model not exist", guide="not_found", evidence="observed"),
        ErrorFact("bad_request", 400, "BadRequest.EmptyModel", "invalid_request_error", "invalid_request_error",
                  "InvalidParameterError", False, 'Required parameter "model" missing from request.',
                  "Send the request the API expects (model, messages; JSON body).", guide="parameter",
                  also=("badrequest.emptyinput", "badrequest.emptyparameters", "badrequest.illegalinput",
                        "badrequest.toolarge"), compat_message="you must provide a model parameter.",
                  match="must provide a model"),
        # the request body cap: observed as a 400 for qwen-plus-latest (langgenius/dify#35311); not in the docs
        ErrorFact("body_too_large", 400, "InvalidParameter", "invalid_parameter_error", "invalid_request_error",
                  "InvalidParameterError", False,
                  f"Exceeded limit on max bytes to request body : {MAX_REQUEST_BODY_BYTES}",
                  "Send a smaller request: the service takes request bodies up to 6 MiB (6,291,456 bytes); shorten "
                  "the input, or send images as URLs instead of inline data.", match="max bytes to request body",
                  evidence="observed"),
        ErrorFact("data_inspection", 400, "DataInspectionFailed", "data_inspection_failed", "data_inspection_failed",
                  "ContentBlockedError", False, "Input data may contain inappropriate content.",
                  "Rephrase the prompt (or the image); the service's content inspection refused it. Not retried.",
                  guide="blocked"),
        ErrorFact("data_inspection_output", 400, "DataInspectionFailed", "data_inspection_failed",
                  "data_inspection_failed", "ContentBlockedError", False,
                  "Output data may contain inappropriate content.",
                  "The answer was stopped by the service's content inspection: rephrase the prompt. Not retried.",
                  match="output data", guide="blocked"),
        ErrorFact("arrearage", 400, "Arrearage", "Arrearage", "Arrearage", "AccountOverdueError", False,
                  "Access denied, please make sure your account is in good standing.",
                  "Top up or settle the overdue bill in the Alibaba Cloud billing console; calls resume after that. "
                  "Not retried.", guide="overdue", evidence="observed"),
        # 401
        ErrorFact("invalid_key", 401, "InvalidApiKey", "invalid_api_key", "invalid_request_error", "InvalidKeyError",
                  False, "Invalid API-key provided.",
                  "Check the key and its region: keys are per region and per billing plan.", guide="invalid_key",
                  compat_message="Incorrect API key provided."),
        ErrorFact("workspace_unknown", 401, "InvalidApiKey", "invalid_api_key", "invalid_request_error",
                  "WorkspaceNotFoundError", False,
                  "Access denied: Either you are not authorized to access this workspace, or the workspace does "
                  "not exist.", "Check the workspace id (console > Workspaces > Workspace Details) and that the key "
                  "belongs to that workspace and region.", match="access this workspace", guide="workspace_unknown",
                  evidence="unverified"),
        # 403
        ErrorFact("model_denied", 403, "Model.AccessDenied", "Model.AccessDenied", "Model.AccessDenied",
                  "ModelNotGrantedError", False, "Model access denied.",
                  "Grant the model to the workspace (console or permissions API), or call it with a profile "
                  "that may.", guide="not_granted", evidence="observed"),
        ErrorFact("access_denied", 403, "AccessDenied", "access_denied", "invalid_request_error",
                  "AccessDeniedError", False, "Access denied.",
                  "Grant the model to the workspace (console or permissions API), or call it with a profile "
                  "that may.", guide="not_granted"),
        ErrorFact("async_only", 403, "AccessDenied", "access_denied", "invalid_request_error", "AccessDeniedError",
                  False, "current user api does not support synchronous calls.",
                  "Use the model's asynchronous task API; chat() makes synchronous calls.", match="synchronous",
                  guide="async_only"),
        ErrorFact("unpurchased", 403, "AccessDenied.Unpurchased", "AccessDenied.Unpurchased",
                  "AccessDenied.Unpurchased", "AccessDeniedError", False,
                  "Access to model denied. Please make sure you are eligible for using the model.",
                  "Activate Model Studio for this region and the model in the Alibaba Cloud console (some models "
                  "need a paid plan), or call a model the account has; granting it to a workspace does not help.",
                  guide="unpurchased"),
        ErrorFact("workspace_denied", 403, "Workspace.AccessDenied", "Workspace.AccessDenied",
                  "Workspace.AccessDenied", "AccessDeniedError", False, "Workspace access denied.",
                  "Use the API key of that workspace, or the workspace id the key belongs to (console > the "
                  "workspace > API keys); check DASHSCOPE_WORKSPACE / QWEN_NB_<NAME>_WORKSPACE.", guide="workspace"),
        ErrorFact("app_denied", 403, "App.AccessDenied", "App.AccessDenied", "App.AccessDenied", "AccessDeniedError",
                  False, "App access denied.", "Use a key of the workspace the application belongs to."),
        ErrorFact("free_tier_only", 403, "AllocationQuota.FreeTierOnly", "AllocationQuota.FreeTierOnly",
                  "AllocationQuota.FreeTierOnly", "FreeTierOnlyError", False,
                  "The free tier of the model has been exhausted. If you want to continue access the model on a "
                  "paid basis, please disable the \"use free tier only\" mode in the management console.",
                  "Turn off \"use free tier only\" in the Model Studio console (the model's free quota settings) to "
                  "go on at the paid price; granting the model or retrying does not help.", guide="free_tier_only"),
        # 404
        ErrorFact("model_not_found", 404, "ModelNotFound", "model_not_found", "invalid_request_error",
                  "ModelNotFoundError", False, "Model can not be found.",
                  "Check the spelling; list_models(profile=...) shows the models this key can see in its region.",
                  also=("model.notexist", "model_not_supported"), guide="not_found"),
        ErrorFact("workspace_not_found", 404, "WorkSpaceNotFound", "WorkSpaceNotFound", "WorkSpaceNotFound",
                  "WorkspaceNotFoundError", False, "WorkSpace can not be found.",
                  "Check the workspace id (console > Workspaces > Workspace Details): DASHSCOPE_WORKSPACE / "
                  "QWEN_NB_<NAME>_WORKSPACE.", guide="workspace_unknown"),
        ErrorFact("not_found", 404, "NotFound", "not_found", "invalid_request_error", "ServiceError", False,
                  "Request path not found.", "Check the URL path and the base URL (…/compatible-mode/v1 for the "
                  "openai SDK, …/api/v1 for dashscope)."),
        ErrorFact("method", 405, "MethodNotAllowed", "method_not_allowed", "invalid_request_error", "ServiceError",
                  False, "Method not allowed.", "Use POST for calls and GET for lists."),
        # 429: rates (try again) and what only looks like one (never retried)
        ErrorFact("rate_limit", 429, "Throttling.RateQuota", "limit_requests", "limit_requests", "RateLimitError",
                  True, "Requests rate limit exceeded, please try again later.",
                  "Wait a little, lower concurrency (chat_many(concurrency=...)) or add a requests-per-minute "
                  "limit; limits are per account and model, shared by all its workspaces.",
                  also=("throttling", "rate_limit_exceeded", "ratelimit", "limitrequests"), guide="rate_limit",
                  compat_message="You have exceeded your current request limit."),
        ErrorFact("burst_rate", 429, "Throttling.BurstRate", "limit_burst_rate", "limit_burst_rate", "RateLimitError",
                  True, "Request rate increased too quickly. To ensure system stability, please adjust your client "
                  "logic to scale requests more smoothly over time.",
                  "Ramp the request rate up gradually (start with lower concurrency and raise it).",
                  guide="rate_limit"),
        ErrorFact("token_limit", 429, "Throttling.AllocationQuota", "insufficient_quota", "insufficient_quota",
                  "TokenLimitError", True, "Allocated quota exceeded, please increase your quota limit.",
                  "Wait for the minute's tokens to free up, send shorter prompts, or ask for a higher "
                  "tokens-per-minute limit; limits are per account and model.",
                  also=("throttling.allocation_quota",), guide="rate_limit"),
        ErrorFact("free_quota", 429, "Throttling.AllocationQuota", "insufficient_quota", "insufficient_quota",
                  "QuotaExceededError", False, "Free allocated quota exceeded.",
                  "The model's free quota is used up and it has no pay-as-you-go price for this account: choose "
                  "another model or plan. Not retried.", match="free allocated quota", guide="quota"),
        ErrorFact("not_subscribed", 429, "CommodityNotPurchased", "CommodityNotPurchased", "CommodityNotPurchased",
                  "NotSubscribedError", False, "Commodity has not purchased yet.",
                  "The workspace (or the account) is not subscribed to Model Studio in this region: activate it in "
                  "the console. Not a rate limit; not retried.", guide="not_subscribed"),
        ErrorFact("budget", 429, "BudgetExhausted", "budget_exhausted", "budget_exhausted", "ServiceBudgetError",
                  False, "The budget configured in Budget Management has been exhausted. You will be unable to make "
                  "further API calls until the budget limit is increased or reset.",
                  "Raise or reset the budget in the console's Budget Management (it may be set for the account, "
                  "the workspace or the API key). Not retried.", match="budget management", guide="budget",
                  evidence="unverified"),
        ErrorFact("prepaid_overdue", 429, "PrepaidBillOverdue", "PrepaidBillOverdue", "PrepaidBillOverdue",
                  "AccountOverdueError", False, "The prepaid bill is overdue.",
                  "Settle the overdue bill in the Alibaba Cloud billing console. Not retried.", guide="overdue"),
        ErrorFact("postpaid_overdue", 429, "PostpaidBillOverdue", "PostpaidBillOverdue", "PostpaidBillOverdue",
                  "AccountOverdueError", False, "The postpaid bill is overdue.",
                  "Settle the overdue bill in the Alibaba Cloud billing console. Not retried.", guide="overdue"),
        # 5xx: the service side; try again
        ErrorFact("internal", 500, "InternalError", "internal_error", "internal_error", "ServerError", True,
                  "An internal error has occured, try again later or contact service support.", _SERVER_FIX,
                  also=("internalerror.algo", "systemerror", "modelservicefailed", "internalerror.timeout"),
                  guide="server"),
        ErrorFact("request_timeout", 500, "RequestTimeOut", "request_timeout", "request_timeout", "ServerError", True,
                  "Request timed out, try again later.", _SERVER_FIX, guide="server"),
        ErrorFact("bad_gateway", 502, "InternalError", "internal_error", "internal_error", "ServerError", True,
                  "Bad gateway.", _SERVER_FIX, guide="server"),
        ErrorFact("unavailable", 503, "ModelUnavailable", "model_unavailable", "model_unavailable", "ServerError",
                  True, "Model is unavailable, try again later.", _SERVER_FIX,
                  also=("serviceunavailable", "service_unavailable"), guide="server"),
        ErrorFact("serving", 503, "ModelServingError", "model_serving_error", "model_serving_error", "ServerError",
                  True, "Too many requests. Your requests are being throttled due to system capacity limits. Try "
                  "again later.", _SERVER_FIX, guide="server"),
        ErrorFact("timeout", 504, "GatewayTimeout", "gateway_timeout", "gateway_timeout", "ServerError", True,
                  "Gateway timeout.", _SERVER_FIX, guide="server", evidence="unverified"),
    )
}

#: an injected HTTP status -> the error row the emulator answers with
STATUS_ERROR = {500: "internal", 502: "bad_gateway", 503: "unavailable", 504: "timeout"}

#: the class for a status when the code is unknown (the service's status alone)
STATUS_CLASS = {400: "InvalidParameterError", 401: "InvalidKeyError", 403: "AccessDeniedError",
                404: "ModelNotFoundError", 429: "RateLimitError"}


def _codes(fact: ErrorFact) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c.lower() for c in (fact.native, fact.compat, *fact.also)))


def _index_codes() -> dict[str, list[ErrorFact]]:
    index: dict[str, list[ErrorFact]] = {}
    for fact in ERRORS.values():
        for code in _codes(fact):
            index.setdefault(code, []).append(fact)
    return index


_BY_CODE = _index_codes()


def error_fact(code: str | None, status: int | None = None, message: str = "") -> ErrorFact | None:
    """The documented row for a service ``code`` (either spelling, any case), or None.

    Where rows share a code, the one whose ``match`` is in ``message`` wins, else the one
    without a ``match`` (of ``status`` when given). Unlisted ``Throttling.*`` codes are rate limits.
    """
    low = (message or "").lower()
    if low:  # rows told apart by their message (some share a code; some codes are not known)
        for fact in ERRORS.values():
            if fact.match and fact.match in low and (status is None or fact.status == status) and (
                    not code or code.lower() in _codes(fact)):
                return fact
    if not code:
        return None
    c = code.lower()
    rows = _BY_CODE.get(c)
    if rows:
        plain = [f for f in rows if not f.match]
        for fact in plain:
            if status is None or fact.status == status:
                return fact
        return (plain or rows)[0]
    if c.startswith("throttling"):
        return ERRORS["rate_limit"]
    if "inspection" in c:
        return ERRORS["data_inspection"]
    if c.startswith("arrearage"):
        return ERRORS["arrearage"]
    return None


def error_by_key(key: str) -> ErrorFact:
    """The row named ``key`` (``"rate_limit"``, ``"access_denied"`` ...)."""
    return ERRORS[key]




# ---------------------------------------------------------------------------------------------
# the Batch API (the service's "OpenAI compatible - Batch (file input)" and "Batch inference" pages)
#
# Files and batches live under ``COMPATIBLE_PATH``: ``POST /files`` (multipart, ``purpose=batch``),
# ``GET /files/{id}/content``, ``POST /batches``, ``GET /batches[/{id}]``, ``POST /batches/{id}/cancel``.

FILES_PATH = "/files"
BATCHES_PATH = "/batches"
#: the ``purpose`` of an uploaded batch input file
BATCH_PURPOSE = "batch"
#: a line's ``url`` (and the batch's ``endpoint``): chat (text and multimodal), embeddings, the free test
BATCH_CHAT_URL = "/v1/chat/completions"
BATCH_EMBEDDINGS_URL = "/v1/embeddings"
BATCH_TEST_URL = "/v1/chat/ds-test"
BATCH_URLS: tuple[str, ...] = (BATCH_CHAT_URL, BATCH_EMBEDDINGS_URL, BATCH_TEST_URL)
#: the free dry-run model: no inference, a fixed answer, no fees
BATCH_TEST_MODEL = "batch-test-model"
BATCH_TEST_ANSWER = "This is a test result."
#: what a batch's lines are billed at, as a share of the real-time price (only successful lines; no free
#: quota, no context-cache discount)
BATCH_PRICE_FACTOR = 0.5
#: a job's states, and the ones it does not leave
BATCH_STATUSES: tuple[str, ...] = ("validating", "failed", "in_progress", "finalizing", "completed", "expired",
                                   "cancelling", "cancelled")
BATCH_FINAL: tuple[str, ...] = ("failed", "completed", "expired", "cancelled")
#: ``completion_window``: whole hours ("24h") or days ("14d"), from 24 h to 336 h (14 days)
BATCH_WINDOW_HOURS: tuple[int, int] = (24, 336)
#: batch jobs can be queried for this many days after they were created
BATCH_QUERY_DAYS = 30


@dataclass(frozen=True)
class BatchLimits:
    """What one batch input file may hold (decimal MB, the pages' unit, as the safe reading)."""

    lines: int
    file_bytes: int
    line_bytes: int
    #: jobs of this kind running at once (None: the account's general limit)
    parallel: int | None = None


#: an input file: at most 50,000 requests and 500 MB; each line at most 6 MB (and within the model's context)
BATCH_LIMITS = BatchLimits(lines=50_000, file_bytes=500_000_000, line_bytes=6_000_000)
#: ``batch-test-model``: at most 100 lines and 1 MB, two test jobs at a time
BATCH_TEST_LIMITS = BatchLimits(lines=100, file_bytes=1_000_000, line_bytes=1_000_000, parallel=2)

#: region -> the models its Batch API serves (batch is offered in Singapore and Beijing only; US, Frankfurt,
#: Tokyo and Hong Kong have none). Singapore: qwen-max, qwen-plus, qwen-flash and qwen-turbo (English page,
#: 2026), qwen3.7-plus added on the October 2026 edition. Beijing: text, multimodal and embedding models.
BATCH_MODELS: dict[str, tuple[str, ...]] = {
    "ap-southeast-1": ("qwen-max", "qwen-plus", "qwen-flash", "qwen-turbo", "qwen3.7-plus"),
    "cn-beijing": (
        # text
        "qwen3.8-max", "qwen3.7-max", "qwen3-max", "qwen-max", "qwen-max-latest",
        "qwen3.7-plus", "qwen3.6-plus", "qwen3.5-plus", "qwen-plus", "qwen-plus-latest",
        "qwen3.7-flash", "qwen3.6-flash", "qwen3.5-flash", "qwen-flash", "qwen-long", "qwen-long-latest",
        "qwq-plus", "deepseek-r1", "deepseek-v3.2", "deepseek-v3",
        # multimodal
        "qwen3-vl-plus", "qwen3-vl-flash", "qwen-vl-max", "qwen-vl-max-latest", "qwen-vl-plus",
        "qwen-vl-plus-latest", "qwen-vl-ocr", "qwen-vl-ocr-latest", "qwen3.5-omni-plus",
        # embeddings
        "text-embedding-v1", "text-embedding-v2", "text-embedding-v3", "text-embedding-v4",
        "qwen3.7-text-embedding", "qwen3.7-text-embedding-flash",
    ),
}
#: error codes of failed lines (in a job's error file) the service documents
BATCH_LINE_ERRORS: tuple[str, ...] = ("mismatched_model", "duplicate_custom_id", "model_not_found",
                                      "mismatched_test_url")


def batch_serves(region: str, model: str) -> bool:
    """Whether the Batch API of ``region`` takes ``model`` (the test model is taken wherever batch is)."""
    served = BATCH_MODELS.get(region)
    if served is None:
        return False
    return model == BATCH_TEST_MODEL or model in served


def batch_window_hours(window: Any) -> int | None:
    """``completion_window`` ("24h", "14d") in hours if the service takes it, else None."""
    if not isinstance(window, str):
        return None
    m = re.fullmatch(r"([1-9][0-9]{0,3})([hd])", window.strip())
    if m is None:
        return None
    hours = int(m.group(1)) * (24 if m.group(2) == "d" else 1)
    low, high = BATCH_WINDOW_HOURS
    return hours if low <= hours <= high else None


# the service's own pages (Alibaba Cloud Model Studio, international edition), by topic: the
# tutorials link them. Checked against the pages' stored copies (see README, notes on the service).
DOCS: dict[str, tuple[str, str]] = {
    "base_url": ("Base URLs per region (shared, workspace and trial hosts)",
                 "https://www.alibabacloud.com/help/en/model-studio/base-url"),
    "api_key": ("Get an API key (per region; its workspace decides what it may call)",
                "https://www.alibabacloud.com/help/en/model-studio/get-api-key"),
    "workspaces": ("Use workspaces: create one, find its ID, authorize models",
                   "https://www.alibabacloud.com/help/en/model-studio/use-workspace"),
    "authorize_models": ("Authorize models for a sub-workspace (with the Alibaba Cloud account)",
                         "https://www.alibabacloud.com/help/en/model-studio/videos/model-authentication-instructions"),
    "roles": ("Permission management: who may grant models, manage keys and rate limits",
              "https://www.alibabacloud.com/help/en/model-studio/grant-the-business-space-permission-to-ram-users"),
    "list_permissions": ("API: list a workspace's model permissions",
                         "https://www.alibabacloud.com/help/en/model-studio/list-model-permissions"),
    "update_permissions": ("API: update a workspace's model permissions",
                           "https://www.alibabacloud.com/help/en/model-studio/update-model-permissions"),
    "openai_chat": ("OpenAI-compatible Chat API",
                    "https://www.alibabacloud.com/help/en/model-studio/compatibility-of-openai-with-dashscope"),
    "error_codes": ("Error messages (status, code, cause, fix)",
                    "https://www.alibabacloud.com/help/en/model-studio/error-code"),
    "rate_limits": ("Rate limiting best practices (limits are per account and model)",
                    "https://www.alibabacloud.com/help/en/model-studio/rate-limiting-best-practices"),
    "billing": ("Bill query and cost management (bills by workspace ID and API key ID)",
                "https://www.alibabacloud.com/help/en/model-studio/bill-query-and-cost-management"),
    "budget": ("Budget management (per account, workspace and API key)",
               "https://www.alibabacloud.com/help/en/model-studio/budget-management"),
    "batch": ("OpenAI-compatible Batch API",
              "https://www.alibabacloud.com/help/en/model-studio/batch-interfaces-compatible-with-openai"),
}


# beyond chat: embeddings, rerank, images, speech, the Responses API, context cache
# Sources (README, "Notes on the service"): the service's pages on text embedding (synchronous API and
# OpenAI-compatible), text rerank, Wan / Qwen text-to-image (sync and asynchronous task API), Qwen-TTS,
# Qwen-ASR, the OpenAI-compatible Responses API and context cache.


@dataclass(frozen=True)
class KindModel:
    """A model of one kind beyond chat: where it is offered, which API paths serve it, and its limits."""

    id: str
    #: "embedding", "rerank", "image", "tts", "asr" or "responses"
    kind: str
    regions: tuple[str, ...] = ("ap-southeast-1",)
    #: the APIs that serve it ("openai": the compatible endpoint, "dashscope": the native one)
    apis: tuple[str, ...] = ("dashscope",)
    #: most inputs (texts, documents, images) in one request
    max_rows: int = 1
    #: embedding sizes it can return, the default first
    dimensions: tuple[int, ...] = ()
    #: images: "sync" (one request), "async" (task API), or both
    modes: tuple[str, ...] = ()
    #: image sizes ("1024*1024"), voices, ... the first is the default
    options: tuple[str, ...] = ()
    #: most characters (TTS) or tokens per row (embedding, rerank) the service takes
    max_input: int = 0
    description: str = ""


KIND_MODELS: dict[str, KindModel] = {
    m.id: m
    for m in (
        KindModel("text-embedding-v4", "embedding",
                  ("ap-southeast-1", "cn-beijing", "cn-hongkong"), ("openai", "dashscope"), max_rows=10,
                  dimensions=(1024, 2048, 1536, 768, 512, 256, 128, 64), max_input=8192,
                  description="Qwen3-Embedding series, 100+ languages"),
        KindModel("text-embedding-v3", "embedding", ("ap-southeast-1", "cn-beijing"), ("openai", "dashscope"),
                  max_rows=10, dimensions=(1024, 768, 512), max_input=8192, description="50+ languages"),
        KindModel("qwen3-rerank", "rerank", ("ap-southeast-1",), ("dashscope",), max_rows=500, max_input=4000,
                  description="Text rerank, 100+ languages"),
        KindModel("gte-rerank-v2", "rerank", ("cn-beijing",), ("dashscope",), max_rows=500, max_input=4000,
                  description="Text rerank, 50+ languages"),
        KindModel("wan2.6-t2i", "image", ("ap-southeast-1", "cn-beijing", "us-east-1"), ("dashscope",), max_rows=4,
                  modes=("sync", "async"), options=("1280*1280", "1024*1024", "1104*1472", "1472*1104"),
                  description="Wan text-to-image, synchronous (multimodal-generation) or a task"),
        KindModel("wan2.5-t2i-preview", "image", ("ap-southeast-1", "cn-beijing"), ("dashscope",), max_rows=4,
                  modes=("async",), options=("1024*1024", "1280*720", "720*1280"),
                  description="Wan text-to-image through the asynchronous task API"),
        KindModel("qwen-image-plus", "image", ("ap-southeast-1", "cn-beijing"), ("dashscope",), max_rows=1,
                  modes=("async",), options=("1328*1328", "1664*928", "928*1664"),
                  description="Qwen-Image text-to-image (text rendering) through the task API"),
        KindModel("qwen3-tts-flash", "tts", ("ap-southeast-1", "cn-beijing"), ("dashscope",), max_input=600,
                  options=("Cherry", "Ethan", "Jennifer", "Ryan", "Katerina", "Elias"),
                  description="Qwen3 text-to-speech (multimodal-generation); audio comes back as a URL"),
        KindModel("qwen3-asr-flash", "asr", ("ap-southeast-1", "cn-beijing"), ("openai", "dashscope"),
                  description="Speech recognition of audio up to 5 minutes, through chat with input_audio"),
        KindModel("qwen3-max-2026-01-23", "responses", ("ap-southeast-1",), ("openai",),
                  options=("web_search", "code_interpreter", "web_extractor"),
                  description="The Responses API's model, with built-in tools"),
    )
}

#: the endpoints of each kind, under ``COMPATIBLE_PATH`` ("openai") or ``NATIVE_PATH`` ("dashscope")
KIND_PATHS: dict[tuple[str, str], str] = {
    ("embedding", "openai"): "/embeddings",
    ("embedding", "dashscope"): "/services/embeddings/text-embedding/text-embedding",
    ("rerank", "dashscope"): "/services/rerank/text-rerank/text-rerank",
    ("image", "dashscope"): "/services/aigc/text2image/image-synthesis",  # the task API (X-DashScope-Async)
    ("image_sync", "dashscope"): NATIVE_MULTIMODAL_GENERATION,
    ("tts", "dashscope"): NATIVE_MULTIMODAL_GENERATION,
    ("asr", "openai"): "/chat/completions",
    ("asr", "dashscope"): NATIVE_MULTIMODAL_GENERATION,
    ("responses", "openai"): "/responses",
}
#: a task's status (``GET``) under ``NATIVE_PATH``; the header that makes a submission a task
TASKS_PATH = "/tasks/{task_id}"
ASYNC_HEADER = ("X-DashScope-Async", "enable")
#: task states: still going, and finished
TASK_PENDING = ("PENDING", "RUNNING")
TASK_DONE = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")
#: the built-in tools of the Responses API
RESPONSE_TOOLS = ("web_search", "code_interpreter", "web_extractor")
#: speech recognition: most bytes of a base64 data URL (the Qwen-ASR reference: 10 MB), and of audio (5 minutes)
ASR_MAX_DATA_URL_BYTES = 10 * 1024 * 1024
ASR_MAX_SECONDS = 300
#: result URLs (images, audio) and task ids expire after this many hours
RESULT_URL_HOURS = 24

# context cache (the service's context-cache page): what a cached input token costs, as a share of the
# model's input price. An explicit cache marker is ``{"cache_control": {"type": "ephemeral"}}`` on a content
# block (at most 4 per request); an explicit cache needs 1024 tokens and lives 5 minutes (renewed on a hit)
CACHE_IMPLICIT_HIT = 0.20
CACHE_EXPLICIT_CREATE = 1.25
CACHE_EXPLICIT_HIT = 0.10
CACHE_MARKER = {"type": "ephemeral"}
CACHE_MAX_MARKERS = 4
CACHE_EXPLICIT_MIN_TOKENS = 1024
CACHE_EXPLICIT_SECONDS = 300


def kind_model(model: str) -> KindModel | None:
    """The row of a model beyond chat (a dated snapshot maps to its base), or None."""
    if model in KIND_MODELS:
        return KIND_MODELS[model]
    for mid in sorted(KIND_MODELS, key=len, reverse=True):
        if model.startswith(mid + "-") and model[len(mid) + 1:len(mid) + 2].isdigit():
            return KIND_MODELS[mid]
    return None


def kind_models(kind: str, region: str | None = None) -> list[str]:
    """The models of ``kind`` (offered in ``region`` when given)."""
    return [m.id for m in KIND_MODELS.values() if m.kind == kind and (region is None or region in m.regions)]
