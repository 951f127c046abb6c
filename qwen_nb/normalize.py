"""SDK responses and stream chunks -> one shape (``Completion``, ``ChatDelta``, ``Usage``, ``ToolCall``).

Pure: it reads attributes of the objects the ``openai`` and ``dashscope`` SDKs
return (pydantic models, extras included) without importing either SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qwen_nb.results import ChatDelta, ToolCall, Usage


@dataclass
class Completion:
    """A finished answer as read off the wire, before the session adds who/where/cost."""

    text: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    request_id: str | None = None
    model: str | None = None
    raw: Any = field(default=None, repr=False)


_MISSING = object()


def _get(obj: Any, name: str) -> Any:
    """A field of an SDK object (pydantic extras included) or a key of a dict; None if absent.

    Reads the instance dict and pydantic's extras directly: a missed ``getattr`` on a pydantic
    model costs microseconds, and a stream does several per chunk.
    """
    if obj is None:
        return None
    if type(obj) is dict:
        return obj.get(name)
    fields = getattr(obj, "__dict__", None)
    if fields is not None:
        value = fields.get(name, _MISSING)
        if value is not _MISSING:
            return value
        extra = getattr(obj, "__pydantic_extra__", _MISSING)
        if extra is not _MISSING:
            return extra.get(name) if extra else None
    return getattr(obj, name, None)


_EMPTY: dict[str, Any] = {}


def _fields(obj: Any) -> dict[str, Any]:
    """An SDK object's fields as a dict (pydantic extras included), a dict as it is; ``{}`` for None."""
    if obj is None:
        return _EMPTY
    if type(obj) is dict:
        return obj
    fields = getattr(obj, "__dict__", None)
    if fields is None:
        return {name: getattr(obj, name) for name in dir(obj) if not name.startswith("_")}
    extra = getattr(obj, "__pydantic_extra__", None)
    return {**fields, **extra} if extra else fields


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def finish(value: Any) -> str | None:
    """A finish reason, with the native streams' ``"null"`` read as None."""
    if value in (None, "", "null"):
        return None
    return str(value)


def usage(obj: Any) -> Usage | None:
    """``Usage`` from either SDK's usage object (or dict); None if there is none."""
    if obj is None:
        return None
    f = _fields(obj)  # one read of the object's fields: a missed attribute on a pydantic model is slow
    if "prompt_tokens" in f or "completion_tokens" in f:  # compatible mode
        inp, out = _int(f.get("prompt_tokens")), _int(f.get("completion_tokens"))
        details = f.get("completion_tokens_details")
    else:  # native
        inp, out = _int(f.get("input_tokens")), _int(f.get("output_tokens"))
        details = f.get("output_tokens_details")
    reasoning = _int(_fields(details).get("reasoning_tokens")) if details is not None else 0
    total = _int(f.get("total_tokens")) or inp + out
    # context cache: the same ``prompt_tokens_details`` on both APIs (the service's context-cache page)
    cache = f.get("prompt_tokens_details") or f.get("input_tokens_details")
    if cache is None:
        return Usage(inp, out, reasoning, total)
    c = _fields(cache)
    cache_type = c.get("cache_type")
    return Usage(inp, out, reasoning, total, _int(c.get("cached_tokens")),
                 _int(c.get("cache_creation_input_tokens")), cache_type if isinstance(cache_type, str) else "")


def _tool_call(call: Any) -> ToolCall:
    fn = _get(call, "function")
    return ToolCall(id=_get(call, "id") or "", name=_get(fn, "name") or "", arguments=_get(fn, "arguments") or "")


def _message_fields(msg: Any) -> tuple[str, str, tuple[ToolCall, ...]]:
    m = _fields(msg)
    content = m.get("content")
    if isinstance(content, list):  # multimodal native answers: [{"text": ...}]
        content = "".join(_get(p, "text") or "" for p in content)
    reasoning = m.get("reasoning_content") or ""
    tool_calls = m.get("tool_calls")
    calls = tuple(_tool_call(c) for c in tool_calls) if tool_calls else ()
    return content or "", reasoning, calls


def _from_response(resp: Any, f: dict[str, Any], request_id: str | None) -> Completion:
    """``Completion`` from a whole-answer response of either SDK (``f``: its fields; both carry
    ``choices[0].message``)."""
    choices = f.get("choices") or []
    text = reasoning = ""
    calls: tuple[ToolCall, ...] = ()
    reason = None
    if choices:
        first = _fields(choices[0])
        text, reasoning, calls = _message_fields(first.get("message"))
        reason = finish(first.get("finish_reason"))
    return Completion(
        text=text,
        reasoning=reasoning,
        finish_reason=reason,
        usage=usage(f.get("usage")),
        tool_calls=calls,
        request_id=request_id,
        model=f.get("model"),
        raw=resp,
    )


def from_openai(resp: Any) -> Completion:
    """``Completion`` from an ``openai`` ``ChatCompletion``."""
    f = _fields(resp)
    return _from_response(resp, f, getattr(resp, "_request_id", None) or f.get("id"))


def from_native(resp: Any) -> Completion:
    """``Completion`` from a ``dashscope`` 2.x ``ChatCompletion`` (native protocol)."""
    f = _fields(resp)
    return _from_response(resp, f, f.get("request_id") or (f.get("headers") or {}).get("x-request-id"))


class StreamAccumulator:
    """Folds stream chunks of either SDK into deltas and, at the end, one ``Completion``."""

    __slots__ = ("text_parts", "reasoning_parts", "_calls", "_usage", "finish_reason", "request_id", "model",
                 "chunks", "keep_chunks")

    def __init__(self, keep_chunks: bool = True) -> None:
        self.text_parts: list[str] = []
        self.reasoning_parts: list[str] = []
        self._calls: list[dict[str, str]] = []
        self._usage: Any = None  # the last usage object seen, read only when asked for
        self.finish_reason: str | None = None
        self.request_id: str | None = None
        self.model: str | None = None
        self.chunks: list[Any] = []
        self.keep_chunks = keep_chunks

    @property
    def usage(self) -> Usage | None:
        """The usage the service sent last (native streams send it with every chunk), or None."""
        return usage(self._usage)

    @property
    def text(self) -> str:
        """Answer text received so far."""
        return "".join(self.text_parts)

    @property
    def reasoning(self) -> str:
        """Thinking text received so far."""
        return "".join(self.reasoning_parts)

    @property
    def finished(self) -> bool:
        """True once the service sent a finish reason."""
        return self.finish_reason is not None

    def _merge_calls(self, deltas: Any) -> tuple[ToolCall, ...]:
        deltas = list(deltas or ())
        if deltas and all(_get(c, "index") is None for c in deltas):
            # no index: a snapshot of every call so far (native), not fragments (compatible mode)
            self._calls = [
                {"id": _get(c, "id") or "", "name": _get(_get(c, "function"), "name") or "",
                 "arguments": _get(_get(c, "function"), "arguments") or ""}
                for c in deltas
            ]
            return tuple(_tool_call(c) for c in deltas)
        new = []
        for pos, call in enumerate(deltas):
            index = _get(call, "index")
            index = pos if index is None else int(index)
            while len(self._calls) <= index:
                self._calls.append({"id": "", "name": "", "arguments": ""})
            slot = self._calls[index]
            fn = _get(call, "function")
            cid, name, args = _get(call, "id"), _get(fn, "name"), _get(fn, "arguments")
            if cid:
                slot["id"] = cid
            if name:
                slot["name"] = name if slot["name"] in ("", name) else slot["name"] + name
            if args:
                slot["arguments"] += args
            new.append(ToolCall(id=cid or slot["id"], name=name or "", arguments=args or ""))
        return tuple(new)

    def feed(self, chunk: Any) -> ChatDelta | None:
        """Take one chunk (either SDK); return the delta it carries, or None if it carries no text.

        The hot path of every stream: it reads each object's fields once (``_fields``) instead of
        one attribute look-up per field.
        """
        if self.keep_chunks:
            self.chunks.append(chunk)
        f = _fields(chunk)
        if self.request_id is None:
            self.request_id = f.get("request_id") or getattr(chunk, "_request_id", None) or f.get("id")
            self.model = f.get("model")
        u = f.get("usage")
        if u is not None:
            self._usage = u
        choices = f.get("choices")
        if not choices:
            return None
        choice = _fields(choices[0])
        delta = choice.get("delta")
        if delta is None:
            delta = choice.get("message")
        d = _fields(delta)
        content = d.get("content") or ""
        if content.__class__ is list:
            content = "".join(_get(p, "text") or "" for p in content)
        reasoning = d.get("reasoning_content") or ""
        raw_calls = d.get("tool_calls")
        calls = self._merge_calls(raw_calls) if raw_calls else ()
        reason = choice.get("finish_reason")
        if reason == "null" or reason == "":
            reason = None
        if content:
            self.text_parts.append(content)
        if reasoning:
            self.reasoning_parts.append(reasoning)
        if reason:
            self.finish_reason = reason
        elif not (content or reasoning or calls):
            return None
        return ChatDelta(content, reasoning, calls, reason)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls assembled from the fragments so far."""
        return tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in self._calls if c["name"] or c["id"])

    def completion(self) -> Completion:
        """What the stream amounts to so far."""
        return Completion(
            text=self.text,
            reasoning=self.reasoning,
            finish_reason=self.finish_reason,
            usage=self.usage,
            tool_calls=self.tool_calls(),
            request_id=self.request_id,
            model=self.model,
            raw=self.chunks if self.keep_chunks else None,
        )


def estimate_tokens(text: str) -> int:
    """A rough token count for text the service sent no usage for (about 4 characters a token, CJK 1)."""
    if not text:
        return 0
    wide = sum(1 for ch in text if ord(ch) > 0x2E80)
    return max(1, wide + (len(text) - wide + 3) // 4)
