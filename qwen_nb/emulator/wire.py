"""Pure builders of the bytes the emulator sends: bodies, SSE events and errors, for both protocols.

* OpenAI-compatible: ``chat.completion`` bodies, ``data: {chunk}`` events ending in
  ``data: [DONE]``, errors as ``{"error": {"code", "message", "type", "param"}, "id", "request_id"}``
  (inside a stream: a ``data: {"error": ...}`` event).
* Native: ``{"output", "usage", "request_id"}`` bodies, events of ``id:``,
  ``event:result``, ``:HTTP_STATUS/200``, ``data:{...}``, errors as
  ``{"code", "message", "request_id"}`` (for a stream: an ``event:error`` event with
  ``:HTTP_STATUS/<status>``).

Every error is one row of the service-facts table (``qwen_nb.facts.ERRORS``): its status,
codes and message.

A stream is built once per request as a list of ``Event(slot, data)``: ``slot`` is
the index of the token the event carries, which the app turns into a send time.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from qwen_nb import facts
from qwen_nb.emulator.replies import Reply, token_pieces


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Event(NamedTuple):
    """One SSE event and the token slot it is due at."""

    slot: int
    data: bytes


# ---------------------------------------------------------------------------
# errors


#: the error rows the emulator answers with: the service-facts table (status, both codes, message)
ERRORS = facts.ERRORS
#: an injected HTTP status -> the row answering it (the table's, plus 429: the requests-per-minute limit)
STATUS_KIND = {**facts.STATUS_ERROR, 429: "rate_limit"}


def error_message(protocol: str, kind: str) -> str:
    """The service's message of a row in ``protocol``'s wording."""
    row = ERRORS[kind]
    return (row.compat_message or row.message) if protocol == "compatible" else row.message


def error_fields(protocol: str, kind: str, message: str, request_id: str, *, code: str | None = None,
                 param: str | None = None) -> dict[str, Any]:
    """The error object of a row: ``{"code", "message", "request_id"}`` (native) or the compatible
    ``{"error": {"code", "message", "type", "param"}}``. ``message`` "" is the row's ``message``
    (callers pass ``error_message(protocol, kind)`` for the compatible wording); ``code`` replaces
    the row's code of that protocol (where the service's message picks a sibling code)."""
    row = ERRORS[kind]
    text = message or row.message
    if protocol == "compatible":
        return {"error": {"code": code or row.compat, "message": text, "type": row.compat_type, "param": param}}
    return {"code": code or row.native, "message": text, "request_id": request_id}


def native_error(code: str, message: str, request_id: str) -> bytes:
    """Native error body."""
    return dumps({"code": code, "message": message, "request_id": request_id})


def compat_error(code: str, message: str, typ: str, request_id: str, param: str | None = None) -> bytes:
    """OpenAI-compatible error body."""
    return dumps(
        {
            "error": {"code": code, "message": message, "type": typ, "param": param},
            "id": f"chatcmpl-{request_id}",
            "request_id": request_id,
        }
    )


def error_body(protocol: str, kind: str, message: str, request_id: str, *, code: str | None = None,
               param: str | None = None) -> tuple[int, bytes]:
    """``(status, body)`` of an error in the shape of ``protocol`` ("compatible" or "native")."""
    fields = error_fields(protocol, kind, message, request_id, code=code, param=param)
    if protocol == "compatible":
        return ERRORS[kind].status, dumps({**fields, "id": f"chatcmpl-{request_id}", "request_id": request_id})
    return ERRORS[kind].status, dumps(fields)


def native_error_event(status: int, fields: dict[str, Any], event_id: int = 1) -> bytes:
    """A native ``event:error`` SSE event: the body of a stream refused before its first event (with a
    non-2xx status) and the last event of a stream that fails midway."""
    return b"id:%d\nevent:error\n:HTTP_STATUS/%d\ndata:%s\n\n" % (event_id, status, dumps(fields))


def compat_error_event(fields: dict[str, Any], request_id: str) -> bytes:
    """A compatible ``data: {"error": ...}`` event, the last of a stream that fails midway (the openai SDK
    raises ``openai.APIError`` with that error object)."""
    return b"data: " + dumps({**fields, "request_id": request_id}) + b"\n\n"


# ---------------------------------------------------------------------------
# OpenAI-compatible


def compat_usage(r: Reply) -> dict[str, Any]:
    """``usage`` of a compatible response."""
    u: dict[str, Any] = {
        "prompt_tokens": r.input_tokens,
        "completion_tokens": r.output_tokens,
        "total_tokens": r.input_tokens + r.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    if r.reasoning_tokens:
        u["completion_tokens_details"] = {"reasoning_tokens": r.reasoning_tokens}
    return u


def _tool_calls(r: Reply) -> list[dict[str, Any]]:
    return [{"index": i, **c} for i, c in enumerate(r.tool_calls)]


def compat_completion(r: Reply, *, model: str, request_id: str, created: int) -> bytes:
    """A non-streaming ``chat.completion`` body."""
    msg: dict[str, Any] = {"role": "assistant", "content": r.content}
    if r.reasoning:
        msg["reasoning_content"] = r.reasoning
    if r.tool_calls:
        msg["tool_calls"] = _tool_calls(r)
    return dumps(
        {
            "choices": [{"message": msg, "finish_reason": r.finish_reason, "index": 0, "logprobs": None}],
            "object": "chat.completion",
            "usage": compat_usage(r),
            "created": created,
            "system_fingerprint": None,
            "model": model,
            "id": f"chatcmpl-{request_id}",
        }
    )


def compat_stream(r: Reply, *, model: str, request_id: str, created: int, include_usage: bool) -> list[Event]:
    """The ``data:`` events of a compatible stream, ``[DONE]`` included."""
    head = (
        b'{"choices":[{"delta":',
        b',"index":0,"logprobs":null,"finish_reason":',
        b'}],"object":"chat.completion.chunk","usage":null,"created":'
        + str(created).encode()
        + b',"system_fingerprint":null,"model":'
        + dumps(model)
        + b',"id":"chatcmpl-'
        + request_id.encode()
        + b'"}',
    )

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return b"data: " + head[0] + dumps(delta) + head[1] + dumps(finish) + head[2] + b"\n\n"

    events: list[Event] = []
    slot = 0
    first: dict[str, Any] = {"content": "", "role": "assistant"}
    if r.reasoning_pieces:
        first = {"content": None, "role": "assistant", "reasoning_content": ""}
    events.append(Event(0, chunk(first)))
    for piece in r.reasoning_pieces:
        events.append(Event(slot, chunk({"content": None, "reasoning_content": piece})))
        slot += 1
    for piece in r.content_pieces:
        events.append(Event(slot, chunk({"content": piece})))
        slot += 1
    for i, call in enumerate(r.tool_calls):
        fn = call["function"]
        opening = {"index": i, "id": call["id"], "type": "function", "function": {"name": fn["name"], "arguments": ""}}
        events.append(Event(slot, chunk({"content": None, "tool_calls": [opening]})))
        slot += 1
        for piece in token_pieces(fn["arguments"]):
            part = {"index": i, "id": "", "type": "function", "function": {"arguments": piece}}
            events.append(Event(slot, chunk({"content": None, "tool_calls": [part]})))
            slot += 1
    last = max(slot - 1, 0)
    events.append(Event(last, chunk({"content": ""}, r.finish_reason)))
    if include_usage:
        usage = dumps({
            "choices": [], "object": "chat.completion.chunk", "usage": compat_usage(r), "created": created,
            "system_fingerprint": None, "model": model, "id": f"chatcmpl-{request_id}",
        })
        events.append(Event(last, b"data: " + usage + b"\n\n"))
    events.append(Event(last, b"data: [DONE]\n\n"))
    return events


def models_list(models: list[str]) -> bytes:
    """``GET /models`` body in the OpenAI list format."""
    return dumps({
        "object": "list",
        "data": [{"id": m, "object": "model", "created": 1735689600, "owned_by": "system"} for m in models],
    })


def native_models_list(models: list[dict[str, Any]], *, page_no: int, page_size: int, total: int,
                       request_id: str) -> bytes:
    """Native ``GET /api/v1/models`` body: one page of ``output.models`` (the fields the dashscope SDK reads)."""
    return dumps({"request_id": request_id, "output": {"models": models, "page_no": page_no,
                                                       "page_size": page_size, "total": total}})


def permissions_list(rows: list[dict[str, Any]], *, page_no: int, page_size: int, total: int,
                     request_id: str) -> bytes:
    """``GET .../api/v1/models/permissions`` body, as the service's API reference documents it."""
    return dumps({"request_id": request_id, "code": None, "message": None, "success": True,
                  "output": {"total": total, "page_no": page_no, "page_size": page_size, "permissions": rows}})


def permissions_updated(request_id: str) -> bytes:
    """``POST .../api/v1/models/permissions`` body, as documented."""
    return dumps({"request_id": request_id, "code": None, "message": None, "success": True, "output": None})


# ---------------------------------------------------------------------------
# native


def native_usage(r: Reply, output_tokens: int | None = None, multimodal: bool = False) -> dict[str, Any]:
    """``usage`` of a native response (``output_tokens`` overrides the count while streaming)."""
    out = r.output_tokens if output_tokens is None else output_tokens
    u: dict[str, Any] = {"input_tokens": r.input_tokens, "output_tokens": out, "total_tokens": r.input_tokens + out}
    if r.reasoning_tokens and output_tokens is None:
        u["output_tokens_details"] = {"reasoning_tokens": r.reasoning_tokens}
    if multimodal and r.image_tokens:
        u["image_tokens"] = r.image_tokens
    if output_tokens is None:
        u["prompt_tokens_details"] = {"cached_tokens": 0}
    return u


def _native_message(content: str, multimodal: bool, reasoning: str | None = None,
                    tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": [{"text": content}] if multimodal else content}
    if multimodal and not content and (reasoning is not None or tool_calls):
        msg["content"] = []
    if reasoning is not None:
        msg["reasoning_content"] = reasoning
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return msg


def native_body(r: Reply, *, request_id: str, result_format: str, multimodal: bool) -> bytes:
    """A non-streaming native body."""
    if result_format == "text":
        output: dict[str, Any] = {"text": r.content, "finish_reason": r.finish_reason}
    else:
        msg = _native_message(r.content, multimodal, r.reasoning or None, _tool_calls(r) or None)
        output = {"choices": [{"finish_reason": r.finish_reason, "message": msg}]}
    return dumps({"output": output, "usage": native_usage(r, multimodal=multimodal), "request_id": request_id})


def native_stream(r: Reply, *, request_id: str, result_format: str, multimodal: bool,
                  incremental: bool) -> list[Event]:
    """The events of a native stream (deltas if ``incremental``, else cumulative text)."""
    events: list[Event] = []
    n = 0

    def emit(slot: int, output: dict[str, Any], produced: int | None) -> None:
        nonlocal n
        n += 1
        usage = native_usage(r, produced, multimodal)
        data = dumps({"output": output, "usage": usage, "request_id": request_id})
        events.append(Event(slot, b"id:%d\nevent:result\n:HTTP_STATUS/200\ndata:%s\n\n" % (n, data)))

    def output(content: str, finish: str, reasoning: str | None = None,
               calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        if result_format == "text":
            return {"text": content, "finish_reason": finish}
        msg = _native_message(content, multimodal, reasoning, calls)
        return {"choices": [{"message": msg, "finish_reason": finish}]}

    slot = 0
    reasoning_so_far = ""
    for piece in r.reasoning_pieces:
        reasoning_so_far += piece
        emit(slot, output("", "null", piece if incremental else reasoning_so_far), slot + 1)
        slot += 1
    text = ""
    for piece in r.content_pieces:
        text += piece
        reasoning = ("" if incremental else reasoning_so_far) if r.reasoning_pieces else None
        emit(slot, output(piece if incremental else text, "null", reasoning), slot + 1)
        slot += 1
    calls = _tool_calls(r)
    last = max(slot - 1, 0) if not calls else slot
    final_reasoning = ("" if incremental else r.reasoning) if r.reasoning_pieces else None
    emit(last, output("" if incremental else r.content, r.finish_reason, final_reasoning, calls or None), None)
    return events
