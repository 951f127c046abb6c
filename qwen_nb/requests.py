"""Checking what a caller asked for and building one normalised request. Pure (reads image files only).

Everything here runs before any network call: a bad prompt, parameter, image or
model name becomes an ``InputError`` that says what is wrong and how to fix it.
The result, ``ChatRequest``, is the same whichever SDK then sends it; the
``openai_kwargs`` / ``native_kwargs`` helpers shape it for each SDK.

Messages are kept in the OpenAI chat shape (``{"role", "content"}`` with content
a string or a list of ``{"type": "text"|"image_url", ...}`` parts); native-shape
parts (``{"text": ...}``, ``{"image": ...}``) are accepted and converted.
"""

from __future__ import annotations

import base64
import difflib
import mimetypes
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_nb import facts
from qwen_nb.catalog import MODELS, model_info, suggest
from qwen_nb.errors import InputError

APIS = facts.API_NAMES
ROLES = facts.ROLES

#: generation parameters every call understands (the facts' specs say the rest)
PARAMS = facts.CORE_PARAMS
#: Qwen parameters passed through as they are (in ``extra_body`` on the compatible API)
EXTRA_PARAMS = tuple(p for p in facts.PARAMS if p not in facts.CORE_PARAMS)
#: parameters that sit in ``extra_body`` for the openai SDK (not part of the OpenAI schema)
OPENAI_EXTRA_BODY = facts.EXTRA_BODY_PARAMS
#: request-shaping arguments besides the generation parameters
SHAPING = ("images", "system")

#: a model id: letters, digits and . _ - : / (no spaces)
_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+-]{0,127}$")
_URL_PREFIXES = ("http://", "https://", "data:", "oss://")
#: the service's limit for an inline (base64) image
MAX_IMAGE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class ChatRequest:
    """One call, checked and normalised: model, messages (OpenAI shape) and parameters."""

    model: str
    messages: list[dict[str, Any]]
    #: only the parameters the caller gave
    params: dict[str, Any] = field(default_factory=dict)
    #: the messages carry images, or the model is a vision model (native multimodal endpoint)
    vision: bool = False
    #: whether thinking will be on (None: unknown model, service default)
    thinking: bool | None = None
    #: the service refuses a non-streaming call like this one: chat() streams internally
    stream_only: bool = False


# ------------------------------------------------------------------ checks


def check_api(api: Any) -> str:
    """``"openai"`` or ``"dashscope"`` (or an alias of one); anything else is an ``InputError``."""
    found = facts.api_id(api)
    if found is not None:
        return found
    raise InputError(
        f"Unknown api {api!r}.",
        fix='Use api="openai" (OpenAI-compatible endpoint, openai SDK) or api="dashscope" (native endpoint).',
    )


def check_model(model: Any) -> str:
    """A model name that could exist; a did-you-mean for names that clearly are not models.

    Names unknown to the catalog are allowed (the service has many more models).
    """
    if type(model) is str and model in MODELS:  # a catalog id as it is: nothing to check
        return model
    if not isinstance(model, str) or not model.strip():
        raise InputError(f"Model must be a non-empty string, got {model!r}.", fix='Use e.g. model="qwen-plus".')
    name = model.strip()
    if not _MODEL_RE.match(name):
        guess = suggest(name.replace(" ", "-").lower())
        hint = f" Did you mean {guess!r}?" if guess else ""
        raise InputError(
            f"{model!r} is not a model name (model ids have no spaces or punctuation other than . _ - : /).{hint}",
            fix=f"Known models include: {', '.join(list(MODELS)[:8])}, ...; list_models() shows all of yours.",
        )
    return name


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate generation parameters against the service facts' specs; drop the ones set to None."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        spec = facts.PARAMS.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, list(facts.PARAMS) + list(SHAPING) + ["model", "profile", "api"],
                                              n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InputError(f"Unknown parameter {name!r}.{hint}", fix=f"Parameters: {', '.join(PARAMS)}.")
        if value is None:
            continue
        if spec.kind == "response_format":
            value = _response_format(value)
        elif spec.kind == "tools":
            value = _tools(value)
        else:
            problem = spec.problem(value)
            if problem is not None:
                raise InputError(f"{name} {problem}.", fix=spec.hint or None)
            if spec.kind == "stop" and not isinstance(value, str):
                value = list(value)
        out[name] = value
    return out


def _response_format(value: Any) -> dict[str, Any]:
    if value in ("json", "json_object"):
        return {"type": "json_object"}
    if value == "text":
        return {"type": "text"}
    if isinstance(value, Mapping) and value.get("type") in facts.RESPONSE_FORMATS:
        if value.get("type") == "json_schema":
            spec = value.get("json_schema")
            if not isinstance(spec, Mapping) or not isinstance(spec.get("schema", {}), Mapping):
                raise InputError(
                    f"response_format's json_schema must be a dict with a 'schema' dict, got {spec!r}.",
                    fix='response_format={"type": "json_schema", "json_schema": {"name": "answer", '
                    '"schema": {"type": "object", "properties": {...}}}}.',
                )
        return dict(value)
    raise InputError(
        f"response_format must be {{'type': 'json_object'}} (JSON mode), {{'type': 'text'}} or a json_schema "
        f"dict, got {value!r}.",
        fix='Use response_format={"type": "json_object"} (or the shortcut response_format="json") and ask for '
        "JSON in the prompt.",
    )


def _tools(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, (list, tuple)) or not value:
        raise InputError(f"tools must be a non-empty list of tool definitions, got {value!r}.")
    out = []
    for i, tool in enumerate(value):
        if isinstance(tool, Mapping) and "function" not in tool and "name" in tool:
            tool = {"type": "function", "function": dict(tool)}  # a bare function schema
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise InputError(
                f"tools[{i}] is not a function tool: {tool!r}.",
                fix='Each tool is {"type": "function", "function": {"name": ..., "description": ..., '
                '"parameters": {JSON schema}}}.',
            )
        out.append({"type": tool.get("type", "function"), "function": dict(fn)})
    return out


# ------------------------------------------------------------------ images


def image_url(image: Any) -> str:
    """A URL the service can read: URLs and data URLs as they are, local files as base64 data URLs."""
    if isinstance(image, os.PathLike):
        path = Path(image)
    elif isinstance(image, str) and image.strip():
        text = image.strip()
        if text.startswith(_URL_PREFIXES):
            return text
        scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
        if scheme and scheme.group(1).lower() != "file":
            raise InputError(
                f"Image {text!r} uses {scheme.group(1)}://; the service reads only http(s), data: and oss:// URLs.",
                fix="Download the image and pass its local path, or pass an http(s) URL.",
            )
        path = Path(text[len("file://"):] if text.startswith("file://") else text).expanduser()
    else:
        raise InputError(f"An image must be a URL or a local file path, got {image!r}.")
    if not path.is_file():
        raise InputError(
            f"Image file {str(path)!r} does not exist (resolved to {str(path.resolve())!r}).",
            fix="Check the path (relative paths start from the notebook's folder), or pass an http(s) URL.",
        )
    size = path.stat().st_size
    if size * 4 / 3 > MAX_IMAGE_BYTES:
        raise InputError(
            f"Image {str(path)!r} is {size / 1e6:.1f} MB; inline images must stay under "
            f"{MAX_IMAGE_BYTES / 1e6:.0f} MB once base64-encoded.",
            fix="Resize or compress it, or upload it somewhere and pass its URL.",
        )
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    if not mime.startswith("image/"):
        raise InputError(f"{str(path)!r} does not look like an image ({mime}).",
                         fix="Use a PNG, JPEG, WEBP, GIF or BMP file.")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _image_list(images: Any) -> list[str]:
    if images is None:
        return []
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    if not isinstance(images, (list, tuple)) or not images:
        raise InputError(f"images must be a URL, a path or a list of them, got {images!r}.")
    return [image_url(i) for i in images]


# ------------------------------------------------------------------ messages


def _part(part: Any, where: str) -> tuple[dict[str, Any], bool]:
    """One content part in OpenAI shape, and whether it is an image."""
    if isinstance(part, str):
        return {"type": "text", "text": part}, False
    if not isinstance(part, Mapping):
        raise InputError(f"{where} must be a dict content part, got {type(part).__name__}.")
    kind = part.get("type")
    if kind == "text" or (kind is None and "text" in part):
        if not isinstance(part.get("text"), str):
            raise InputError(f"{where} is a text part without a string 'text'.")
        text_part: dict[str, Any] = {"type": "text", "text": part["text"]}
        if "cache_control" in part:  # an explicit context-cache marker, passed through to both APIs
            if part["cache_control"] != facts.CACHE_MARKER:
                raise InputError(f"{where} has cache_control={part['cache_control']!r}.",
                                 fix=f'Mark a block for the explicit cache with "cache_control": {facts.CACHE_MARKER}.')
            text_part["cache_control"] = dict(facts.CACHE_MARKER)
        return text_part, False
    if kind in ("image_url", "image") or (kind is None and ("image" in part or "image_url" in part)):
        url = part.get("image_url", part.get("image", part.get("url")))
        detail = url.get("detail") if isinstance(url, Mapping) else None
        if isinstance(url, Mapping):
            url = url.get("url")
        out: dict[str, Any] = {"type": "image_url", "image_url": {"url": image_url(url)}}
        if detail:
            out["image_url"]["detail"] = detail
        return out, True
    if kind in ("input_audio", "video_url", "video", "audio"):
        return dict(part), True
    raise InputError(
        f"{where} is not a content part this library knows: {dict(part)!r}.",
        fix='Use {"type": "text", "text": ...} or {"type": "image_url", "image_url": {"url": ...}}.',
    )


def _message(msg: Any, i: int) -> tuple[dict[str, Any], bool]:
    where = f"messages[{i}]"
    if not isinstance(msg, Mapping):
        raise InputError(
            f"{where} must be a dict with 'role' and 'content', got {type(msg).__name__} {msg!r}.",
            fix='Use [{"role": "user", "content": "Hello"}] or simply pass the prompt string.',
        )
    role = msg.get("role")
    if role not in ROLES:
        raise InputError(f"{where} has unknown role {role!r}.", fix=f"Roles are: {', '.join(ROLES)}.")
    out = dict(msg)
    content = msg.get("content")
    has_image = False
    if isinstance(content, str):
        pass
    elif isinstance(content, (list, tuple)):
        if not content:
            raise InputError(f"{where} has an empty content list.")
        parts = [_part(p, f"{where}.content[{j}]") for j, p in enumerate(content)]
        out["content"] = [p for p, _ in parts]
        has_image = any(img for _, img in parts)
    elif content is None and role == "assistant" and msg.get("tool_calls"):
        pass
    else:
        raise InputError(
            f"{where} ({role}) content must be a string or a list of content parts, got "
            f"{type(content).__name__} {content!r}.",
            fix="Convert it to a string (str(...)), or use parts like [{'type': 'text', 'text': ...}].",
        )
    if role == "tool" and not msg.get("tool_call_id"):
        raise InputError(f"{where} is a tool result without 'tool_call_id'.",
                         fix="Copy the id of the tool call it answers (result.tool_calls[i].id).")
    return out, has_image


def check_text(text: str, where: str) -> str:
    """``text`` if it can be sent as UTF-8; a lone surrogate (half of a broken emoji, e.g. from a
    bad decode or a cut string) cannot, and is named with its position."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad, before = text[e.start], text[max(0, e.start - 20):e.start]
        raise InputError(
            f"{where} holds a lone surrogate {bad!r} at position {e.start} (after {before!r}),"
            " which cannot be sent as UTF-8.",
            fix="It usually comes from a broken decode or a string cut inside an emoji: remove it, e.g. "
            "text.encode('utf-8', 'replace').decode('utf-8'), or fix the decode "
            "(bytes.decode('utf-8'), not 'surrogateescape').",
        ) from None
    return text


def check_messages(prompt_or_messages: Any) -> tuple[list[dict[str, Any]], bool]:
    """Messages in OpenAI shape from a prompt string or a message list, and whether they carry images."""
    if isinstance(prompt_or_messages, str):
        if not prompt_or_messages.strip():
            raise InputError("The prompt is empty.", fix="Pass some text, e.g. chat('Who are you?').")
        check_text(prompt_or_messages, "The prompt")
        return [{"role": "user", "content": prompt_or_messages}], False
    if isinstance(prompt_or_messages, Mapping):
        prompt_or_messages = [prompt_or_messages]
    if not isinstance(prompt_or_messages, Sequence) or isinstance(prompt_or_messages, (bytes, bytearray)):
        raise InputError(
            f"Pass a prompt string or a list of messages, got {type(prompt_or_messages).__name__}.",
            fix='chat("Hello") or chat([{"role": "user", "content": "Hello"}]).',
        )
    if not prompt_or_messages:
        raise InputError("The message list is empty.", fix='Add at least one {"role": "user", "content": ...}.')
    checked = [_message(m, i) for i, m in enumerate(prompt_or_messages)]
    messages = [m for m, _ in checked]
    markers = sum(1 for m in messages if isinstance(m.get("content"), list)
                  for p in m["content"] if isinstance(p, Mapping) and "cache_control" in p)
    if markers > facts.CACHE_MAX_MARKERS:
        raise InputError(f"{markers} cache_control markers; the service takes at most {facts.CACHE_MAX_MARKERS} "
                         "per request.", fix="Mark only the ends of the long, repeated prefixes (system prompt, "
                         "documents).")
    for i, m in enumerate(messages):
        content = m.get("content")
        parts = [content] if isinstance(content, str) else list(content or [])
        texts = [p if isinstance(p, str) else p.get("text") for p in parts if isinstance(p, (str, Mapping))]
        for text in texts:
            if isinstance(text, str):
                check_text(text, f"message {i}")
    if all(isinstance(m.get("content"), str) and not m["content"].strip() for m in messages):
        raise InputError("Every message is empty.", fix="Put the question in the last user message.")
    return messages, any(img for _, img in checked)


def _attach_images(messages: list[dict[str, Any]], urls: list[str]) -> list[dict[str, Any]]:
    """Put the images before the text of the last user message."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i]["role"] == "user":
            msg = dict(messages[i])
            content = msg.get("content")
            parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
            msg["content"] = [{"type": "image_url", "image_url": {"url": u}} for u in urls] + parts
            return messages[:i] + [msg] + messages[i + 1:]
    raise InputError("images= needs a user message to attach them to.")


# ------------------------------------------------------------------ the request


def build_request(
    prompt_or_messages: Any,
    *,
    model: str,
    system: str | None = None,
    images: Any = None,
    **params: Any,
) -> ChatRequest:
    """Check everything and build the ``ChatRequest`` (raises ``InputError`` on bad input)."""
    model = check_model(model)
    messages, has_image = check_messages(prompt_or_messages)
    checked = check_params(params) if params else {}
    if system is not None:
        if not isinstance(system, str) or not system.strip():
            raise InputError(f"system must be a non-empty string, got {system!r}.")
        check_text(system, "system")
        if messages[0]["role"] == "system":
            raise InputError("Both system= and a system message were given.", fix="Give the system prompt once.")
        messages = [{"role": "system", "content": system}] + messages
    urls = _image_list(images) if images is not None else None
    if urls:
        messages = _attach_images(messages, urls)
        has_image = True
    info = model_info(model)
    if has_image and info is not None and not info.vision:
        vision = [m.id for m in MODELS.values() if m.vision]
        raise InputError(
            f"Model {model!r} does not take images.",
            fix=f"Use a vision model, e.g. {', '.join(vision)}.",
        )
    thinking: bool | None = checked.get("enable_thinking")
    if info is not None:
        if thinking and info.thinking == "never":
            warnings.warn(f"{model!r} has no thinking mode; enable_thinking=True may be refused.", stacklevel=3)
        if thinking is False and info.thinking == "always":
            warnings.warn(f"{model!r} always thinks; enable_thinking=False may be refused.", stacklevel=3)
        if thinking is None:
            thinking = info.thinking == "always" or (info.thinking == "hybrid" and info.thinking_default)
    stream_only = bool(info is not None and info.stream_only_thinking and thinking)
    if "thinking_budget" in checked and thinking is False:
        warnings.warn("thinking_budget has no effect with thinking off.", stacklevel=3)
    return ChatRequest(
        model=model,
        messages=messages,
        params=checked,
        vision=has_image or bool(info is not None and info.vision),
        thinking=thinking,
        stream_only=stream_only,
    )


def openai_kwargs(req: ChatRequest, *, stream: bool) -> dict[str, Any]:
    """Keyword arguments for ``OpenAI().chat.completions.create``."""
    kw: dict[str, Any] = {"model": req.model, "messages": req.messages}
    extra: dict[str, Any] = {}
    for name, value in req.params.items():
        if name in OPENAI_EXTRA_BODY:
            extra[name] = value
        else:
            kw[name] = value
    if extra:
        kw["extra_body"] = extra
    if stream:
        kw["stream"] = True
        kw["stream_options"] = {"include_usage": True}
    return kw


def native_messages(req: ChatRequest) -> list[dict[str, Any]]:
    """Messages for the native endpoint: on the multimodal endpoint every content is a part list."""
    if not req.vision:
        return req.messages
    out = []
    for m in req.messages:
        content = m.get("content")
        if isinstance(content, str):
            m = {**m, "content": [{"type": "text", "text": content}]}
        out.append(m)
    return out


def native_kwargs(req: ChatRequest, *, stream: bool) -> dict[str, Any]:
    """Keyword arguments for ``dashscope.Client().chat.completions.create`` (or ``multimodal.chat``)."""
    kw: dict[str, Any] = {"model": req.model, "messages": native_messages(req), **req.params}
    if stream:
        kw["stream"] = True
        kw["incremental_output"] = True
    return kw


def name_list(value: Any, what: str) -> list[Any] | None:
    """``None``, one name (or ``Profile``), or a non-empty list of them, as a list (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str) or hasattr(value, "masked_key"):  # one name, or one Profile
        return [value]
    if not isinstance(value, Iterable):
        raise InputError(f"{what} must be a name or a list of names, got {type(value).__name__}.")
    items = list(value)
    if not items:
        raise InputError(f"{what} is empty.", fix=f"Give at least one, or leave {what} out to use the default.")
    return items
