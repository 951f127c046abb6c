"""The emulator's endpoints beyond chat: embeddings, rerank, images (sync and task API), speech, ASR, Responses.

Every answer is deterministic: the same text gives the same vector (a hashed bag of words,
normalised, so texts sharing words score closer than unrelated ones), rerank scores are those
vectors' similarity, images are small PNGs drawn from the prompt, speech is a short WAV made from
the text, transcripts come from a table (the emulator's own speech is transcribed back to its
text), and the Responses API answers with canned tool steps. Models, regions, rows per request,
sizes and voices are read from ``qwen_nb.facts``; refusals are rows of ``facts.ERRORS`` (not
granted, unknown model, bad parameter), sent through the same error bodies as chat.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import re
import struct
import time
import uuid
import zlib
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from qwen_nb import facts
from qwen_nb.emulator import wire

if TYPE_CHECKING:
    from qwen_nb.emulator.app import EmulatorApp, _Ctx

C, N = facts.COMPATIBLE_PATH, facts.NATIVE_PATH
COMPAT_EMBEDDINGS = C + facts.KIND_PATHS[("embedding", "openai")]
NATIVE_EMBEDDINGS = N + facts.KIND_PATHS[("embedding", "dashscope")]
NATIVE_RERANK = N + facts.KIND_PATHS[("rerank", "dashscope")]
NATIVE_IMAGE_TASK = N + facts.KIND_PATHS[("image", "dashscope")]
COMPAT_RESPONSES = C + facts.KIND_PATHS[("responses", "openai")]
TASKS_PREFIX = N + "/tasks/"
#: where result files (images, audio) are served: ``/_files/{name}``, no key needed (like the service's signed URLs)
FILES_PREFIX = "/_files/"
#: most result files and responses kept (oldest dropped first)
KEEP_FILES = 512
#: the largest body a multimodal / chat request is read whole to see whether it is for a model beyond chat
PEEK_BYTES = 16 * 1024 * 1024
#: the dimension of the vectors rerank scores are computed from
RERANK_DIM = 256
#: how many polls an image task stays RUNNING before it succeeds
TASK_POLLS = 1

#: transcripts the emulator knows besides its own speech: sha256 of the audio -> text
TRANSCRIPTS: dict[str, str] = {}
_WORD = re.compile(r"\w+", re.UNICODE)


class KindState:
    """What the endpoints beyond chat remember: result files, image tasks, stored responses, transcripts."""

    def __init__(self) -> None:
        self.files: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self.tasks: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.responses: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.heard: dict[str, str] = dict(TRANSCRIPTS)
        #: explicit context-cache blocks: (workspace, model, prefix hash) -> when last written or hit
        self.cache: OrderedDict[tuple[str, str, str], float] = OrderedDict()

    @staticmethod
    def _keep(store: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        store[key] = value
        while len(store) > KEEP_FILES:
            store.popitem(last=False)

    def add_file(self, data: bytes, ext: str, mime: str) -> str:
        name = f"{hashlib.sha256(data).hexdigest()[:24]}.{ext}"
        self._keep(self.files, name, (data, mime))
        return name


# ---------------------------------------------------------------------------------------------- vectors


def _words(text: str) -> list[str]:
    out = []
    for w in _WORD.findall(text.lower()):
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]  # "cats" and "cat" share a dimension
        out.append(w)
    return out


def vector(text: str, dim: int) -> list[float]:
    """A deterministic unit vector: each word adds ±1 at a hashed position; a little text-specific noise."""
    sparse: dict[int, float] = {}
    for w in _words(text):
        h = hashlib.blake2b(w.encode("utf-8"), digest_size=8).digest()
        i = int.from_bytes(h[:4], "little") % dim
        sparse[i] = sparse.get(i, 0.0) + (1.0 if h[4] & 1 else -1.0)
    seed = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
    for k in range(0, 16, 2):  # a few small text-specific components: equal texts only give equal vectors
        i = int.from_bytes(seed[k:k + 2], "little") % dim
        sparse[i] = sparse.get(i, 0.0) + (0.05 if seed[k] & 1 else -0.05)
    norm = math.sqrt(sum(x * x for x in sparse.values())) or 1.0
    v = [0.0] * dim
    for i, x in sparse.items():
        v[i] = round(x / norm, 6)
    return v


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text.encode("utf-8")) / 4))


# ---------------------------------------------------------------------------------------------- images and audio


def png(prompt: str, size: str, seed: int = 0) -> bytes:
    """A small PNG drawn from ``prompt`` (a gradient and bands, colours from its hash), ``size``'s aspect ratio."""
    try:
        w0, h0 = (int(x) for x in size.split("*"))
    except ValueError:
        w0 = h0 = 1024
    scale = 48 / max(w0, h0)
    w, h = max(8, round(w0 * scale)), max(8, round(h0 * scale))
    digest = hashlib.sha256(f"{prompt}\n{seed}".encode()).digest()
    c1, c2, c3 = digest[0:3], digest[3:6], digest[6:9]
    bands = [digest[9 + k] % max(h, 1) for k in range(4)]
    rows = []
    for y in range(h):
        row = bytearray([0])
        for x in range(w):
            t = (x + y) / (w + h)
            if any(abs(y - b) < 2 for b in bands) and (x // 4) % 2 == 0:
                px = c3
            else:
                px = bytes(int(c1[k] * (1 - t) + c2[k] * t) for k in range(3))
            row += px
        rows.append(bytes(row))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
            + chunk(b"IEND", b""))


def wav(text: str, voice: str) -> bytes:
    """A short mono 8 kHz WAV: one soft tone per word (pitch from the word and voice), at most 2 seconds."""
    rate = 8000
    words = _words(text)[:16] or ["_"]
    per = min(0.25, 2.0 / len(words))
    frames = bytearray()
    for w in words:
        h = hashlib.blake2b(f"{voice}:{w}".encode(), digest_size=2).digest()
        freq = 220 + (int.from_bytes(h, "little") % 440)
        n = int(rate * per)
        for i in range(n):
            env = min(1.0, i / 200, (n - i) / 200)
            frames += struct.pack("<h", int(6000 * env * math.sin(2 * math.pi * freq * i / rate)))
    data = bytes(frames)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


# ---------------------------------------------------------------------------------------------- the handlers


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


async def _json_body(app: EmulatorApp, request: Request, ctx: _Ctx) -> Any:
    from qwen_nb.emulator.app import _Fail
    from qwen_nb.emulator.state import KEEP_BODY_BYTES, body_summary

    raw = await app._read_body(request, ctx)
    if not raw:
        raise _Fail("invalid_parameter", "The request body is empty; send a JSON object.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _Fail("invalid_parameter", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise _Fail("invalid_parameter", "The request body must be a JSON object.")
    if len(raw) <= KEEP_BODY_BYTES:
        ctx.body = body
    try:
        ctx.summary = body_summary(body)
    except Exception:
        ctx.summary = {"model": body.get("model")}
    return body


def _admit(app: EmulatorApp, request: Request, region: str, ws_id: str | None, ctx: _Ctx, body: dict[str, Any],
           kind: str, protocol: str) -> facts.KindModel:
    """Authenticate, apply the workspace's flags and injected faults, and check the model: the row to refuse with."""
    from qwen_nb.emulator.app import _Fail, _listed

    ws = app._authenticate(request, region, ws_id, ctx)  # again after a body was read: the same answer
    flags = app.state.flags(ws, ctx.api_key)
    status = app.state.take_failure()
    if status:
        raise app._fault(status)
    app._account_refusal(flags)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _Fail("bad_request")
    info = facts.kind_model(model)
    if info is None or info.kind != kind or region not in info.regions:
        if protocol == "native":
            raise _Fail("model_not_exist")
        raise _Fail("model_not_found", f"The model `{model}` does not exist or you do not have access to it.")
    if not _listed(model, app.state.grants(ws)):
        raise _Fail("model_denied")
    if _listed(model, flags.unpurchased or ()):
        raise _Fail("unpurchased")
    if flags.fail_with and _listed(model, flags.fail_models) and app.state.take_fail(
            app.state.scope(ws, ctx.api_key, "fail_with"), flags.fail_times):
        raise _Fail(flags.fail_with, headers=app._wait_headers(flags.fail_with))
    return info


def _obj(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    return value if isinstance(value, dict) else {}


def _bad(message: str, param: str | None = None) -> Exception:
    from qwen_nb.emulator.app import _Fail

    return _Fail("invalid_parameter", message, param=param)


def _texts(value: Any, info: facts.KindModel) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise _bad("input must be a non-empty string or a list of non-empty strings.", "input")
    if len(texts) > info.max_rows:
        raise _bad(f"batch size is invalid, it should not be larger than {info.max_rows}.: input.contents", "input")
    return texts


def _dimension(value: Any, info: facts.KindModel) -> int:
    if value is None:
        return info.dimensions[0]
    if isinstance(value, bool) or not isinstance(value, int) or value not in info.dimensions:
        raise _bad(f"dimension must be one of {', '.join(map(str, info.dimensions))}, got {value!r}.", "dimension")
    return value


async def embeddings(app: EmulatorApp, request: Request, region: str, ws_id: str | None, sub: str,
                     protocol: str, rid: str, ctx: _Ctx) -> Response:
    """``POST /compatible-mode/v1/embeddings`` and the native text-embedding endpoint."""
    app._authenticate(request, region, ws_id, ctx)
    body = await _json_body(app, request, ctx)
    info = _admit(app, request, region, ws_id, ctx, body, "embedding", protocol)
    if protocol == "compatible":
        texts = _texts(body.get("input"), info)
        dim = _dimension(body.get("dimensions"), info)
        fmt = body.get("encoding_format", "float")
        if fmt not in ("float", None):
            raise _bad(f"encoding_format must be float, got {fmt!r}.", "encoding_format")
        tokens = sum(_tokens(t) for t in texts)
        data = [{"object": "embedding", "index": i, "embedding": vector(t, dim)} for i, t in enumerate(texts)]
        return app._json(200, wire.dumps({"object": "list", "data": data, "model": info.id, "id": rid,
                                          "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}), rid)
    inp = _obj(body, "input")
    texts = _texts(inp.get("texts"), info)
    params = _obj(body, "parameters")
    dim = _dimension(params.get("dimension"), info)
    tokens = sum(_tokens(t) for t in texts)
    rows = [{"text_index": i, "embedding": vector(t, dim)} for i, t in enumerate(texts)]
    return app._json(200, wire.dumps({"output": {"embeddings": rows}, "usage": {"total_tokens": tokens},
                                      "request_id": rid}), rid)


async def rerank(app: EmulatorApp, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                 rid: str, ctx: _Ctx) -> Response:
    """The native text-rerank endpoint: documents scored by their similarity to the query."""
    app._authenticate(request, region, ws_id, ctx)
    body = await _json_body(app, request, ctx)
    info = _admit(app, request, region, ws_id, ctx, body, "rerank", protocol)
    inp = _obj(body, "input")
    query, docs = inp.get("query"), inp.get("documents")
    if not isinstance(query, str) or not query:
        raise _bad("input.query must be a non-empty string.", "query")
    if not isinstance(docs, list) or not docs or not all(isinstance(d, str) for d in docs):
        raise _bad("input.documents must be a non-empty list of strings.", "documents")
    if len(docs) > info.max_rows:
        raise _bad(f"The number of documents must not be more than {info.max_rows}.", "documents")
    params = _obj(body, "parameters")
    top_n = params.get("top_n")
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
        raise _bad("top_n must be a positive integer.", "top_n")
    q = vector(query, RERANK_DIM)
    scored = []
    for i, d in enumerate(docs):
        cos = sum(a * b for a, b in zip(q, vector(d, RERANK_DIM), strict=True))
        scored.append((i, round(max(0.0, min(1.0, 0.05 + 0.9 * cos)), 6)))
    scored.sort(key=lambda p: (-p[1], p[0]))
    keep = scored[:top_n] if top_n else scored
    results = [{"index": i, "relevance_score": s, **({"document": {"text": docs[i]}}
                                                       if params.get("return_documents") else {})} for i, s in keep]
    tokens = _tokens(query) * len(docs) + sum(_tokens(d) for d in docs)
    return app._json(200, wire.dumps({"output": {"results": results}, "usage": {"total_tokens": tokens},
                                      "request_id": rid}), rid)


def _image_params(body: dict[str, Any], info: facts.KindModel) -> tuple[str, str, int]:
    inp = _obj(body, "input")
    prompt = inp.get("prompt")
    if prompt is None:  # the multimodal protocol: input.messages[0].content[{"text"}]
        for m in inp.get("messages") or []:
            for part in (m.get("content") or []) if isinstance(m, dict) else []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    prompt = part["text"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise _bad("input.prompt must be a non-empty string.", "prompt")
    params = _obj(body, "parameters")
    size = params.get("size") or info.options[0]
    m = re.match(r"^(\d+)\*(\d+)$", str(size))
    if m is None or not all(256 <= int(v) <= 2048 for v in m.groups()):
        raise _bad(f"size must be WIDTH*HEIGHT with sides from 256 to 2048, got {size!r}.", "size")
    n = params.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= info.max_rows:
        raise _bad(f"n must be an integer from 1 to {info.max_rows}, got {n!r}.", "n")
    return prompt, str(size), n


def _image_urls(app: EmulatorApp, request: Request, prompt: str, size: str, n: int) -> list[str]:
    state = _kind_state(app)
    return [f"{_base(request)}{FILES_PREFIX}{state.add_file(png(prompt, size, k), 'png', 'image/png')}"
            for k in range(n)]


async def image_task(app: EmulatorApp, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                     rid: str, ctx: _Ctx) -> Response:
    """``POST .../text2image/image-synthesis``: only as a task (``X-DashScope-Async: enable``)."""
    from qwen_nb.emulator.app import _Fail

    app._authenticate(request, region, ws_id, ctx)
    body = await _json_body(app, request, ctx)
    info = _admit(app, request, region, ws_id, ctx, body, "image", protocol)
    name, value = facts.ASYNC_HEADER
    if request.headers.get(name.lower(), "").lower() != value:
        raise _Fail("async_only")
    if "async" not in info.modes:
        raise _bad(f"{info.id} is not served by the task API.")
    prompt, size, n = _image_params(body, info)
    task_id = str(uuid.uuid4())
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    task = {"task_id": task_id, "workspace": ctx.workspace, "polls": 0, "submit_time": now,
            "urls": _image_urls(app, request, prompt, size, n), "prompt": prompt}
    _kind_state(app)._keep(_kind_state(app).tasks, task_id, task)
    return app._json(200, wire.dumps({"output": {"task_id": task_id, "task_status": "PENDING"}, "request_id": rid}),
                     rid)


async def task_status(app: EmulatorApp, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                      rid: str, ctx: _Ctx) -> Response:
    """``GET /api/v1/tasks/{task_id}``: RUNNING for a poll, then SUCCEEDED with the image URLs."""
    app._authenticate(request, region, ws_id, ctx)
    task_id = sub[len(TASKS_PREFIX):]
    task = _kind_state(app).tasks.get(task_id)
    if task is None or task["workspace"] != ctx.workspace:
        return app._json(200, wire.dumps({"output": {"task_id": task_id, "task_status": "UNKNOWN"},
                                          "request_id": rid}), rid)
    task["polls"] += 1
    out: dict[str, Any] = {"task_id": task_id, "submit_time": task["submit_time"]}
    if task["polls"] <= TASK_POLLS:
        out["task_status"] = "RUNNING"
        return app._json(200, wire.dumps({"output": out, "request_id": rid}), rid)
    n = len(task["urls"])
    out.update(task_status="SUCCEEDED", end_time=time.strftime("%Y-%m-%d %H:%M:%S"),
               results=[{"orig_prompt": task["prompt"], "url": u} for u in task["urls"]],
               task_metrics={"TOTAL": n, "SUCCEEDED": n, "FAILED": 0})
    return app._json(200, wire.dumps({"output": out, "usage": {"image_count": n}, "request_id": rid}), rid)


async def serve_file(app: EmulatorApp, request: Request, path: str) -> Response:
    """A result file (no key needed, like the service's signed URLs)."""
    found = _kind_state(app).files.get(path[len(FILES_PREFIX):])
    if found is None:
        return Response(b"", status_code=404)
    return Response(found[0], media_type=found[1])


async def multimodal(app: EmulatorApp, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                     rid: str, ctx: _Ctx, body: dict[str, Any], kind: str) -> Response:
    """The native multimodal-generation endpoint for a synchronous image, speech or speech recognition."""
    info = _admit(app, request, region, ws_id, ctx, body, kind, protocol)
    if kind == "image":
        if "sync" not in info.modes:
            raise _bad(f"url error, please check url! {info.id} is served through the task API.")
        prompt, size, n = _image_params(body, info)
        content = [{"image": u, "type": "image"} for u in _image_urls(app, request, prompt, size, n)]
        w, h = size.split("*")
        return app._json(200, wire.dumps({"output": {"choices": [{"finish_reason": "stop", "message": {
            "role": "assistant", "content": content}}], "finished": True},
            "usage": {"image_count": n, "width": int(w), "height": int(h)}, "request_id": rid}), rid)
    if kind == "tts":
        inp = _obj(body, "input")
        text, voice = inp.get("text"), inp.get("voice")
        if not isinstance(text, str) or not text.strip():
            raise _bad("input.text must be a non-empty string.", "text")
        if len(text) > info.max_input:
            raise _bad(f"input.text must be at most {info.max_input} characters.", "text")
        if voice not in info.options:
            raise _bad(f"voice {voice!r} is not supported; use one of {', '.join(info.options)}.", "voice")
        data = wav(text, voice)
        state = _kind_state(app)
        name = state.add_file(data, "wav", "audio/wav")
        state.heard[hashlib.sha256(data).hexdigest()] = text
        chars = sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)
        return app._json(200, wire.dumps({"output": {"finish_reason": "stop", "audio": {
            "url": f"{_base(request)}{FILES_PREFIX}{name}", "id": f"audio_{rid}", "data": "",
            "expires_at": int(time.time()) + 86400}},
            "usage": {"characters": chars, "input_tokens": _tokens(text), "output_tokens": len(data) // 640},
            "request_id": rid}), rid)
    text, tokens = _heard(app, _audio_of(body, "native"))
    return app._json(200, wire.dumps({"output": {"choices": [{"finish_reason": "stop", "message": {
        "role": "assistant", "content": [{"text": text}]}}]},
        "usage": {"input_tokens": tokens, "output_tokens": _tokens(text), "total_tokens": tokens + _tokens(text)},
        "request_id": rid}), rid)


def _audio_of(body: dict[str, Any], protocol: str) -> str:
    msgs = body.get("messages") if protocol == "compatible" else (body.get("input") or {}).get("messages")
    for m in msgs or []:
        for part in (m.get("content") or []) if isinstance(m, dict) and isinstance(m.get("content"), list) else []:
            if not isinstance(part, dict):
                continue
            if protocol == "compatible" and part.get("type") == "input_audio":
                data = (part.get("input_audio") or {}).get("data")
                if isinstance(data, str) and data:
                    return data
            if protocol == "native" and isinstance(part.get("audio"), str):
                return part["audio"]
    raise _bad("The message holds no audio: send an input_audio part (a URL or a data URL).", "messages")


def _heard(app: EmulatorApp, source: str) -> tuple[str, int]:
    """The transcript of ``source`` (a data URL or one of the emulator's own file URLs) and its input tokens."""
    state = _kind_state(app)
    data = b""
    if source.startswith("data:"):
        try:
            data = base64.b64decode(source.split(",", 1)[1], validate=False)
        except (ValueError, IndexError):
            raise _bad("The audio data URL is not valid base64.", "input_audio") from None
    elif FILES_PREFIX in source:
        data = state.files.get(source.rsplit("/", 1)[-1], (b"", ""))[0]
    seconds = max(1, len(data) // 16000)
    text = state.heard.get(hashlib.sha256(data).hexdigest()) if data else None
    if text is None:
        text = f"(emulator) {seconds} s of audio; this emulator transcribes only the speech it made."
    return text, 25 * seconds


async def asr_chat(app: EmulatorApp, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                   rid: str, ctx: _Ctx, body: dict[str, Any]) -> Response:
    """``POST /compatible-mode/v1/chat/completions`` for a speech-recognition model (``input_audio``)."""
    info = _admit(app, request, region, ws_id, ctx, body, "asr", protocol)
    if body.get("stream"):
        raise _bad("The emulator answers speech recognition without streaming; set stream=false.", "stream")
    text, tokens = _heard(app, _audio_of(body, "compatible"))
    out = _tokens(text)
    return app._json(200, wire.dumps({"id": f"chatcmpl-{rid}", "object": "chat.completion", "created": int(time.time()),
                                      "model": info.id, "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                          "role": "assistant", "content": text}}],
                                      "usage": {"prompt_tokens": tokens, "completion_tokens": out,
                                                "total_tokens": tokens + out}}), rid)


def _input_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    parts = []
    for m in value if isinstance(value, list) else []:
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, str):
            parts.append(c)
        elif isinstance(c, list):
            parts += [str(p.get("text") or "") for p in c if isinstance(p, dict)]
    return " ".join(parts)


def _last_user_text(value: Any) -> str:
    """What the user asked last: the input string, or the last user message's text (the rest is history)."""
    if isinstance(value, list):
        for m in reversed(value):
            if isinstance(m, dict) and m.get("role", "user") == "user":
                text = _input_text([m])
                if text.strip():
                    return text
    return _input_text(value)


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 1] + "…"


async def responses(app: EmulatorApp, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                    rid: str, ctx: _Ctx) -> Response:
    """``POST /compatible-mode/v1/responses``: canned built-in tool steps, then an answer; streamed if asked."""
    app._authenticate(request, region, ws_id, ctx)
    body = await _json_body(app, request, ctx)
    info = _admit(app, request, region, ws_id, ctx, body, "responses", protocol)
    text = _input_text(body.get("input"))
    if not text.strip():
        raise _bad("input must be a non-empty string or a list of messages.", "input")
    state = _kind_state(app)
    prev = body.get("previous_response_id")
    before = None
    if prev is not None:
        before = state.responses.get(prev) if isinstance(prev, str) else None
        if before is None or before["workspace"] != ctx.workspace:
            raise _bad(f"Previous response with id '{prev}' not found.", "previous_response_id")
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise _bad("tools must be a list.", "tools")
    names = []
    for t in tools:
        kind = t.get("type") if isinstance(t, dict) else None
        if kind not in (*facts.RESPONSE_TOOLS, "function"):
            raise _bad(f"Unsupported tool type {kind!r}.", "tools")
        names.append(kind)
    digest = hashlib.sha256(text.encode()).hexdigest()
    items: list[dict[str, Any]] = []
    topic = _clip(_last_user_text(body.get("input")), 60)
    if "web_search" in names:
        items.append({"type": "web_search_call", "id": f"ws_{digest[:16]}", "status": "completed",
                      "action": {"type": "search", "query": topic,
                                 "sources": [{"type": "url", "url": f"https://example.com/search/{digest[:8]}"}]}})
    if "code_interpreter" in names:
        n_words = len(_words(text))
        items.append({"type": "code_interpreter_call", "id": f"ci_{digest[:16]}", "status": "completed",
                      "container_id": "emulator", "code": f"words = {topic!r}.split()\nprint(len(words))",
                      "outputs": [{"type": "logs", "logs": str(n_words)}]})
    lead = f"Continuing from {prev}: " if prev else ""
    used = f" (after {', '.join(n.replace('_', ' ') for n in names if n != 'function')})" if names else ""
    answer = f"{lead}(emulator) A canned answer to “{topic}”{used}."
    items.append({"type": "message", "id": f"msg_{digest[:16]}", "role": "assistant", "status": "completed",
                  "content": [{"type": "output_text", "text": answer, "annotations": []}]})
    inp_tokens = _tokens(text) + (before["tokens"] if before else 0)
    out_tokens = _tokens(answer)
    resp_id = f"resp_{uuid.uuid4()}"
    response = {"id": resp_id, "object": "response", "created_at": int(time.time()), "model": info.id,
                "status": "completed", "output": items, "parallel_tool_calls": True, "tool_choice": "auto",
                "tools": tools, "previous_response_id": prev, "text": {"format": {"type": "text"}},
                "usage": {"input_tokens": inp_tokens, "output_tokens": out_tokens,
                          "total_tokens": inp_tokens + out_tokens, "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}}}
    state._keep(state.responses, resp_id, {"workspace": ctx.workspace, "tokens": inp_tokens + out_tokens})
    if not body.get("stream"):
        return app._json(200, wire.dumps(response), rid)
    return StreamingResponse(_response_events(response, app.state.pacing.tokens_per_second),
                             media_type="text/event-stream",
                             headers={"x-request-id": rid, "cache-control": "no-cache"})


def _response_events(response: dict[str, Any], tps: float | None = None) -> Any:
    """The stream of a response; the answer's pieces paced at ``tps`` a second when the emulator is paced."""
    seq = 0
    interval = 1.0 / tps if tps else 0.0

    def event(kind: str, **data: Any) -> bytes:
        nonlocal seq
        payload = {"type": kind, "sequence_number": seq, **data}
        seq += 1
        return f"event: {kind}\ndata: ".encode() + wire.dumps(payload) + b"\n\n"

    async def gen() -> Any:
        yield event("response.created", response={**response, "status": "in_progress", "output": []})
        for i, item in enumerate(response["output"]):
            if item["type"] == "message":
                text = item["content"][0]["text"]
                yield event("response.output_item.added", output_index=i,
                            item={**item, "status": "in_progress", "content": []})
                for piece in re.findall(r"\S+\s*", text):
                    if interval:
                        await asyncio.sleep(interval)
                    yield event("response.output_text.delta", item_id=item["id"], output_index=i, content_index=0,
                                delta=piece, logprobs=[])
                yield event("response.output_text.done", item_id=item["id"], output_index=i, content_index=0,
                            text=text, logprobs=[])
            else:
                yield event("response.output_item.added", output_index=i, item={**item, "status": "in_progress"})
            yield event("response.output_item.done", output_index=i, item=item)
        yield event("response.completed", response=response)

    return gen()


def apply_cache(app: EmulatorApp, body: Any, data: bytes, protocol: str, workspace: str | None) -> bytes:
    """A chat answer's usage with the explicit context cache applied: the prefix up to the last
    ``cache_control`` marker is written on first use (``cache_creation_input_tokens``) and read back
    (``cached_tokens``, ``cache_type: "ephemeral"``) within its validity; prefixes under the minimum are
    not cached. Implicit caching is not emulated (its hits are not guaranteed by the service either)."""
    if not isinstance(body, dict):
        return data
    msgs = body.get("messages") if protocol == "compatible" else _obj(body, "input").get("messages")
    prefix: list[str] = []
    marked = ""
    for m in msgs if isinstance(msgs, list) else []:
        content = m.get("content") if isinstance(m, dict) else None
        for part in content if isinstance(content, list) else [content]:
            text = part.get("text") if isinstance(part, dict) else part
            prefix.append(str(text or ""))
            if isinstance(part, dict) and part.get("cache_control") == facts.CACHE_MARKER:
                marked = "\n".join(prefix)
    if not marked:
        return data
    answer = json.loads(data)
    usage = answer.get("usage") or {}
    inp = int(usage.get("prompt_tokens", usage.get("input_tokens", 0)) or 0)
    tokens = min(_tokens(marked), inp)
    if tokens < facts.CACHE_EXPLICIT_MIN_TOKENS:
        return data
    state = _kind_state(app)
    key = (workspace or "", str(body.get("model")), hashlib.sha256(marked.encode()).hexdigest())
    now = time.time()
    seen = state.cache.get(key)
    details = usage.setdefault("prompt_tokens_details", {})
    if seen is not None and now - seen < facts.CACHE_EXPLICIT_SECONDS:
        details.update(cached_tokens=tokens, cache_type="ephemeral")
    else:
        details.update(cached_tokens=0, cache_creation_input_tokens=tokens,
                       cache_creation={"ephemeral_5m_input_tokens": tokens}, cache_type="ephemeral")
    state._keep(state.cache, key, now)
    answer["usage"] = usage
    return wire.dumps(answer)


def _kind_state(app: EmulatorApp) -> KindState:
    state = getattr(app, "_kinds", None)
    if state is None:
        state = KindState()
        app._kinds = state  # type: ignore[attr-defined]
    return state


#: path (under a region) -> method -> handler
ROUTES = {
    COMPAT_EMBEDDINGS: {"POST": embeddings},
    NATIVE_EMBEDDINGS: {"POST": embeddings},
    NATIVE_RERANK: {"POST": rerank},
    NATIVE_IMAGE_TASK: {"POST": image_task},
    COMPAT_RESPONSES: {"POST": responses},
}
#: kinds served on the chat endpoints (told apart by the body's model): endpoint -> kinds
SHARED = {facts.NATIVE_PATH + facts.NATIVE_MULTIMODAL_GENERATION: ("image", "tts", "asr"),
          facts.COMPATIBLE_PATH + "/chat/completions": ("asr",)}


async def peek(app: EmulatorApp, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
               rid: str, ctx: _Ctx) -> Response | None:
    """For a chat endpoint: the answer if the body is for a model beyond chat, else None (chat answers it).

    The body is read here only when small enough; the chat handler then reads it again (Starlette keeps it).
    """
    from qwen_nb.emulator.app import _content_length

    kinds = SHARED.get(sub)
    if kinds is None or request.method != "POST":
        return None
    size = _content_length(request)
    if size is None or size > PEEK_BYTES:
        return None
    # read as the chat handler reads (a client gone mid-body is a 499, the size guard applies), then kept
    # where Starlette keeps a body it read, so the chat handler reads the same bytes again
    raw = bytes(await app._read_body(request, ctx))
    request._body = raw
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    model = body.get("model") if isinstance(body, dict) else None
    info = facts.kind_model(model) if isinstance(model, str) else None
    if info is None or info.kind not in kinds:
        return None
    ctx.body_bytes = len(raw)
    if len(raw) <= 64 * 1024:
        ctx.body = body
    ctx.summary = {"model": info.id}
    if protocol == "compatible":
        return await asr_chat(app, request, region, ws_id, sub, protocol, rid, ctx, body)
    return await multimodal(app, request, region, ws_id, sub, protocol, rid, ctx, body, info.kind)


__all__ = ["FILES_PREFIX", "ROUTES", "TASKS_PREFIX", "TRANSCRIPTS", "KindState", "peek", "png", "serve_file",
           "task_status", "vector", "wav"]
