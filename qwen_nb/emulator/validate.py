"""Request validation: turn a compatible or native body into one normalised ``ChatRequest``.

A bad body raises ``BadRequest`` naming the offending field; the app answers it with 400
in the protocol's error shape (the row of ``qwen_nb.facts.ERRORS`` its code names, else
``InvalidParameter``), never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qwen_nb import facts

ROLES = facts.ROLES


class BadRequest(Exception):
    """A request body the service would refuse with 400."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        """``code``: the service's code in the protocol of the body, where it is not the plain
        ``InvalidParameter`` / ``invalid_parameter_error``."""
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


@dataclass
class ChatRequest:
    """What the reply builder needs, whichever protocol the request came through."""

    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    include_usage: bool = False
    incremental: bool = False
    result_format: str = "message"
    enable_thinking: bool | None = None
    thinking_budget: int | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None

    @property
    def has_images(self) -> bool:
        return any(m.get("images") for m in self.messages)


def _opt_bool(params: dict[str, Any], name: str, prefix: str) -> bool | None:
    v = params.get(name)
    if v is None:
        return None
    if not isinstance(v, bool):
        raise BadRequest(f"{prefix}{name} must be a boolean (true or false), got {v!r}.", name)
    return v


def _checked(p: dict[str, Any], name: str, prefix: str) -> Any:
    """``p[name]`` checked against the service facts' spec (the same the client checks), or None."""
    value = p.get(name)
    if value is not None:
        problem = facts.PARAMS[name].problem(value)
        if problem is not None:
            raise BadRequest(f"{prefix}{name} {problem}.", name)
    return value


def _common_params(p: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("max_tokens", "seed", "thinking_budget"):
        out[name] = _checked(p, name, prefix)
    for name in ("temperature", "top_p", "presence_penalty", "top_k", "repetition_penalty"):
        _checked(p, name, prefix)
    stop = _checked(p, "stop", prefix)
    out["stop"] = [] if stop is None else [stop] if isinstance(stop, str) else list(stop)
    out["enable_thinking"] = _checked(p, "enable_thinking", prefix)
    tools = p.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise BadRequest(f"{prefix}tools must be a list of tool objects.", "tools")
        for i, tool in enumerate(tools):
            fn = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
                raise BadRequest(
                    f"{prefix}tools[{i}] must be {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}.", "tools"
                )
            if "parameters" in fn and not isinstance(fn["parameters"], dict):
                raise BadRequest(f"{prefix}tools[{i}].function.parameters must be a JSON schema object.", "tools")
    out["tools"] = tools or None
    out["tool_choice"] = p.get("tool_choice")
    rf = p.get("response_format")
    if rf is not None:
        if isinstance(rf, dict) and rf.get("type") == "json_schema" and not isinstance(rf.get("json_schema"), dict):
            raise BadRequest(f"{prefix}response_format.json_schema must be an object like {{\"name\": ..., "
                             f"\"schema\": {{...}}}}, got {rf.get('json_schema')!r}.", "response_format")
        if not isinstance(rf, dict) or rf.get("type") not in facts.RESPONSE_FORMATS:
            raise BadRequest(
                f"{prefix}response_format must be {{\"type\": \"text\" | \"json_object\" | \"json_schema\"}}, "
                f"got {rf!r}.",
                "response_format",
            )
    out["response_format"] = rf
    return out


def _parts_compatible(content: list[Any], where: str) -> tuple[str, list[str]]:
    texts, images = [], []
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise BadRequest(f"{where}.content[{j}] must be an object like {{\"type\": \"text\", \"text\": ...}}.",
                             "messages")
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            iu = part.get("image_url")
            url = iu.get("url") if isinstance(iu, dict) else iu
            if not isinstance(url, str) or not url:
                raise BadRequest(f"{where}.content[{j}].image_url.url must be a URL string.", "messages")
            images.append(url)
        else:
            raise BadRequest(
                f"{where}.content[{j}] has unsupported type {kind!r}; use \"text\" or \"image_url\".", "messages"
            )
    return "\n".join(texts), images


def _parts_native(content: list[Any], where: str) -> tuple[str, list[str]]:
    texts, images = [], []
    for j, part in enumerate(content):
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part, dict) and isinstance(part.get("image"), str):
            images.append(part["image"])
        else:
            raise BadRequest(f"{where}.content[{j}] must be {{\"text\": ...}} or {{\"image\": url}}.", "messages")
    return "\n".join(texts), images


def _messages(raw: Any, where: str, native: bool) -> list[dict[str, Any]]:
    if raw is None:
        raise BadRequest(f"Required parameter '{where}' is missing: send a non-empty list of messages.", "messages")
    if not isinstance(raw, list) or not raw:
        raise BadRequest(f"'{where}' must be a non-empty list of message objects, got {type(raw).__name__}.",
                         "messages")
    out = []
    for i, m in enumerate(raw):
        loc = f"{where}[{i}]"
        if not isinstance(m, dict):
            raise BadRequest(f"{loc} must be an object with 'role' and 'content'.", "messages")
        role = m.get("role")
        if role not in ROLES:
            raise BadRequest(f"{loc}.role {role!r} is not valid; use one of {', '.join(ROLES)}.", "messages")
        content = m.get("content")
        images: list[str] = []
        if isinstance(content, str):
            text = content
        elif content is None and role == "assistant" and m.get("tool_calls"):
            text = ""
        elif isinstance(content, list):
            text, images = (_parts_native if native else _parts_compatible)(content, loc)
        else:
            raise BadRequest(f"{loc}.content must be a string or a list of content parts, got "
                             f"{type(content).__name__}.", "messages")
        item: dict[str, Any] = {"role": role, "text": text, "images": images}
        if m.get("tool_calls"):
            if not isinstance(m["tool_calls"], list):
                raise BadRequest(f"{loc}.tool_calls must be a list.", "messages")
            item["tool_calls"] = m["tool_calls"]
        if isinstance(m.get("name"), str):
            item["name"] = m["name"]
        out.append(item)
    if all(m["role"] == "system" for m in out):
        raise BadRequest(
            f"The {where} list should not contain only messages with role \"system\"; add a user message.",
            "messages",
        )
    return out


#: the service's answers to a request without a model (its error-code page)
NO_MODEL_NATIVE = ('Required parameter "model" missing from request.', "BadRequest.EmptyModel")
NO_MODEL_COMPATIBLE = ("you must provide a model parameter.", "invalid_request_error")
NO_INPUT_NATIVE = ("Required input parameter missing from request.", "BadRequest.EmptyInput")


def _model(body: dict[str, Any], native: bool) -> str:
    model = body.get("model")
    if model is None or model == "":
        message, code = NO_MODEL_NATIVE if native else NO_MODEL_COMPATIBLE
        raise BadRequest(message, "model", code)
    if not isinstance(model, str) or not model.strip():
        raise BadRequest(f"model must be a non-empty string, got {model!r}.", "model")
    return model.strip()


def parse_compatible(body: Any) -> ChatRequest:
    """Validate an OpenAI-compatible chat-completions body."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", None)
    model = _model(body, native=False)
    messages = _messages(body.get("messages"), "messages", native=False)
    common = _common_params(body, "")
    stream = _opt_bool(body, "stream", "") or False
    so = body.get("stream_options")
    if so is not None and not isinstance(so, dict):
        raise BadRequest("stream_options must be an object like {\"include_usage\": true}.", "stream_options")
    include_usage = bool((so or {}).get("include_usage")) and stream
    return ChatRequest(model=model, messages=messages, stream=stream, include_usage=include_usage,
                       incremental=True, result_format="message", **common)


def parse_native(body: Any, *, stream: bool) -> ChatRequest:
    """Validate a native ``{"model", "input", "parameters"}`` body."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", None)
    model = _model(body, native=True)
    inp = body.get("input")
    if inp is None:
        raise BadRequest(NO_INPUT_NATIVE[0], "input", NO_INPUT_NATIVE[1])
    if not isinstance(inp, dict):
        raise BadRequest(f"input must be an object like {{\"messages\": [...]}}, got {type(inp).__name__}.", "input")
    if inp.get("messages") is None and isinstance(inp.get("prompt"), str) and inp["prompt"]:
        raw = [{"role": "user", "content": inp["prompt"]}]
    else:
        if inp.get("messages") is None:
            raise BadRequest('Either "prompt" or "messages" must exist in input and cannot both be none.',
                             "input.messages")
        raw = inp["messages"]
    messages = _messages(raw, "input.messages", native=True)
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise BadRequest("parameters must be an object.", "parameters")
    common = _common_params(params, "parameters.")
    rf = params.get("result_format")
    if rf is not None and rf not in ("text", "message"):
        raise BadRequest(f"parameters.result_format must be \"text\" or \"message\", got {rf!r}.", "result_format")
    inc = _opt_bool(params, "incremental_output", "parameters.")
    return ChatRequest(model=model, messages=messages, stream=stream, include_usage=stream,
                       incremental=bool(inc), result_format=rf or "", **common)
