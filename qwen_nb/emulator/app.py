"""The emulator's ASGI app (Starlette): one port, every region under ``/{region_id}``.

Layout, for each region id of ``qwen_nb._regions.REGIONS``::

    /{region}/compatible-mode/v1/chat/completions            POST (OpenAI-compatible)
    /{region}/compatible-mode/v1/models                      GET
    /{region}/api/v1/services/aigc/text-generation/generation        POST (native)
    /{region}/api/v1/services/aigc/multimodal-generation/generation  POST (native, vision)
    /{region}/ws/{workspace_id}/...                          the workspace gateway: same paths,
                                                             plus POST /api/v1/models/permissions
    /_emulator/faults | reset | requests | counters | stats | health | workspaces
                                                             (loopback-only control endpoints)

Under load and abuse: request bodies are read piece by piece and refused past ``max_body_bytes``
(the emulator's own guard); a body is parsed, validated and answered on the event loop only
when it is small (``INLINE_BODY_BYTES``), bigger ones are prepared in a worker process (a thread
if no process can be started) so one huge prompt does not stall every other client; clients
that go away mid-request or mid-stream are logged as nothing but a request with status 499.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from qwen_nb._regions import REGIONS
from qwen_nb._secrets import mask_key
from qwen_nb.catalog import MODELS, ModelInfo, model_info
from qwen_nb.emulator import wire
from qwen_nb.emulator.config import Workspace
from qwen_nb.emulator.replies import Reply, build_reply, count_tokens, get_tokenizer, prompt_tokens, render_prompt
from qwen_nb.emulator.state import (
    KEEP_BODY_BYTES,
    EmulatorState,
    RecordedRequest,
    body_summary,
    mask_headers,
)
from qwen_nb.emulator.validate import BadRequest, ChatRequest, parse_compatible, parse_native

COMPAT_CHAT = "/compatible-mode/v1/chat/completions"
COMPAT_MODELS = "/compatible-mode/v1/models"
NATIVE_TEXT = "/api/v1/services/aigc/text-generation/generation"
NATIVE_VISION = "/api/v1/services/aigc/multimodal-generation/generation"
PERMISSIONS = "/api/v1/models/permissions"
CHAT_ENDPOINTS = (COMPAT_CHAT, NATIVE_TEXT, NATIVE_VISION)
ENDPOINTS = (*CHAT_ENDPOINTS, COMPAT_MODELS, PERMISSIONS)
LOOPBACK = ("127.0.0.1", "::1", "localhost", "testclient")

#: Largest request body accepted. The service documents no request-size limit for chat calls
#: (only per-model input token limits, which are checked too), so this is the emulator's own
#: guard against unbounded memory use, generous enough for any prompt a model can take.
MAX_BODY_BYTES = 64 * 1024 * 1024
#: Bodies up to this size are parsed and answered on the event loop (a few ms of work at most);
#: bigger ones are prepared off the loop.
INLINE_BODY_BYTES = 64 * 1024
#: At most this many big bodies are read and prepared at once; more wait their turn (bounds memory).
BIG_BODIES_AT_ONCE = 4
#: Status recorded for a request whose client went away before it was answered (nginx's convention).
CLIENT_GONE = 499

MSG_BAD_KEY = (
    "Invalid API-key provided. Check that the API key is valid and that the API key, the region and "
    "the base URL match: a key only works in the region (and on the workspace gateway) it was created for."
)
MSG_NO_KEY = "No API-key provided. Send it as 'Authorization: Bearer sk-...'."
MSG_RATE = "Requests rate limit exceeded, please try again later."
MSG_INTERNAL = "An internal error has occurred, please try again later or contact service support."
MSG_JSON_WORD = "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'."
MSG_STREAM_ONLY = "This model only support stream mode, please enable the stream parameter to access the model."
MSG_THINK_STREAM = "parameter.enable_thinking must be set to false for non-streaming calls"
MSG_INCREMENTAL = 'The incremental_output parameter must be "true" when enable_thinking is true'


class StreamCut(Exception):
    """Raised inside a stream to drop the connection (fault injection)."""


class _QuietCuts(logging.Filter):
    """Keep injected stream cuts, streams cancelled by ``stop()`` and vanished clients out of uvicorn's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        seen = 0
        while exc is not None and seen < 10:
            if isinstance(exc, (StreamCut, asyncio.CancelledError, ClientDisconnect)):
                return False
            inner = getattr(exc, "exceptions", None)
            exc = inner[0] if inner else (exc.__cause__ or exc.__context__)
            seen += 1
        return True


def install_log_filter() -> None:
    """Silence the tracebacks of deliberate stream cuts (idempotent)."""
    log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietCuts) for f in log.filters):
        log.addFilter(_QuietCuts())


class _Fail(Exception):
    def __init__(self, kind: str, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.code, self.param, self.headers = kind, message, code, param, headers


class _ClientGone(Exception):
    """The client closed the connection before its request was read."""


def _split(path: str) -> tuple[str | None, str | None, str]:
    """``/{region}[/ws/{id}]/rest`` -> (region, workspace id, "/rest")."""
    parts = path.strip("/").split("/")
    region = parts[0] if parts and parts[0] else None
    rest = parts[1:]
    ws = None
    if len(rest) >= 2 and rest[0] == "ws":
        ws, rest = rest[1], rest[2:]
    return region, ws, "/" + "/".join(rest)


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _too_large(size: int, limit: int) -> _Fail:
    return _Fail("invalid_parameter", f"The request body is too large: {size} bytes, more than the {limit} bytes "
                 f"({limit / 2**20:.3g} MiB) this emulator accepts. Send a shorter input.")


# ---------------------------------------------------------------------------
# preparing a chat answer: pure, so it can run on the loop, in a thread or in a worker process


@dataclass
class ChatJob:
    """Everything needed to turn a chat request body into an answer plan (picklable)."""

    raw: bytes | bytearray
    protocol: str
    sub: str
    region: str
    #: native protocol: the client asked for a stream with a header
    sse: bool
    grants: tuple[str, ...] | None
    ws_name: str
    ws_id: str
    reply_tokens: int | None
    #: return the parsed body (kept in the request log)
    keep_body: bool


@dataclass
class ChatPlan:
    """What ``prepare_chat`` found: a refusal, or the reply and how to send it."""

    summary: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    #: the body was valid JSON (injected faults apply only then, as before bodies were checked)
    json_ok: bool = False
    #: (error kind, message, native code, param) when the request is refused
    refusal: tuple[str, str, str | None, str | None] | None = None
    model: str = ""
    stream: bool = False
    include_usage: bool = False
    incremental: bool = False
    result_format: str = "message"
    multimodal: bool = False
    reply: Reply | None = None


def _granted(grants: tuple[str, ...] | None, model: str) -> bool:
    if grants is None:
        return True
    info = model_info(model)
    return model in grants or (info is not None and info.id in grants)


def _model(name: str, region: str, protocol: str) -> ModelInfo:
    info = model_info(name)
    if info is None or region not in info.regions:
        where = "" if info is None else f" in region {region}"
        if protocol == "compatible":
            msg = f"The model `{name}` does not exist or you do not have access to it{where}."
        else:
            msg = f"Model not exist: {name!r} is not offered{where or ''}." if info else "Model not exist."
        raise _Fail("model_not_found", msg)
    return info


def _thinking(req: ChatRequest, info: ModelInfo) -> bool:
    if info.thinking == "never":
        thinking = False
    elif info.thinking == "always":
        thinking = True
    else:
        thinking = info.thinking_default if req.enable_thinking is None else req.enable_thinking
    if thinking and not req.stream and info.stream_only_thinking:
        raise _Fail("invalid_parameter", MSG_STREAM_ONLY if info.thinking == "always" else MSG_THINK_STREAM,
                    param="enable_thinking")
    if thinking and req.stream and not req.incremental:
        raise _Fail("invalid_parameter", MSG_INCREMENTAL, param="incremental_output")
    return thinking


def _input_limit(info: ModelInfo) -> int:
    """Most input tokens a model takes. The service refuses longer inputs with 400 InvalidParameter
    "Range of input length should be [1, N]", N a little below the context length (room for the
    answer, e.g. 129,024 for a 131,072-token context); the emulator uses the catalog's context length."""
    return info.context


def _surely_over(messages: list[dict[str, Any]], limit: int, piece: int = 1_000_000) -> bool:
    """True if the prompt surely has more than ``limit`` tokens, found without counting all of a huge one.

    Only tried when the text is over four bytes per allowed token (English runs about 4.5): it is
    counted a piece at a time, cut at whitespace, and given up on as soon as the pieces (less a
    generous margin per cut) pass the limit; otherwise the caller counts exactly.
    """
    text = render_prompt(messages)
    if len(text) <= 4 * limit:
        return False
    total = pieces = pos = 0
    while pos < len(text):
        end = min(len(text), pos + piece)
        while end < len(text) and not text[end].isspace() and end - pos < 2 * piece:
            end += 1
        total += count_tokens(text[pos:end])
        pieces += 1
        if total - 16 * pieces > limit:
            return True
        pos = end
    return False


def prepare_chat(job: ChatJob) -> ChatPlan:
    """Parse, validate and answer a chat body: the CPU-heavy part of a chat request, without I/O or state."""
    plan = ChatPlan()
    if job.protocol == "native":
        plan.summary["stream"] = job.sse
    if not job.raw:
        plan.refusal = ("invalid_parameter", "The request body is empty; send a JSON object.", None, None)
        return plan
    try:
        body = json.loads(job.raw)
    except (ValueError, UnicodeDecodeError):
        plan.refusal = ("invalid_parameter", "The request body is not valid JSON.", None, None)
        return plan
    plan.json_ok = True
    plan.summary.update(body_summary(body))
    if job.protocol == "native":
        plan.summary["stream"] = job.sse
    if job.keep_body:
        plan.body = body
    try:
        if job.protocol == "compatible":
            req = parse_compatible(body)
        else:
            req = parse_native(body, stream=job.sse)
        plan.summary["stream"] = req.stream
        info = _model(req.model, job.region, job.protocol)
        if not _granted(job.grants, req.model):
            raise _Fail("access_denied", (
                f"Access denied: the workspace of this API key ({job.ws_name}, {job.ws_id}) has not been granted "
                f"the model {req.model!r}. An administrator can grant it in the workspace's model "
                "permissions, or use a key of a workspace that has it."))
        multimodal = job.sub == NATIVE_VISION
        if job.protocol == "native" and multimodal != info.vision:
            right = NATIVE_VISION if info.vision else NATIVE_TEXT
            raise _Fail("invalid_parameter", f"url error, please check url! Model {req.model!r} is served on {right}.")
        if req.has_images and not info.vision:
            raise _Fail("invalid_parameter", f"The model {req.model!r} does not take image input; "
                        "use a vision model such as qwen-vl-plus.", param="messages")
        thinking = _thinking(req, info)
        fmt = (req.response_format or {}).get("type")
        if fmt == "json_object" and not any("json" in (m.get("text") or "").lower() for m in req.messages):
            raise _Fail("invalid_parameter", MSG_JSON_WORD, param="response_format")
        limit = _input_limit(info)
        tokens = limit + 1 if _surely_over(req.messages, limit) else prompt_tokens(req.messages, req.tools)
        if tokens > limit:
            msg = f"Range of input length should be [1, {limit}]"
            if job.protocol == "compatible":
                msg = "<400> InternalError.Algo.InvalidParameter: " + msg
            raise _Fail("invalid_parameter", msg)
        result_format = req.result_format or ("message" if info.thinking != "never" or req.tools else "text")
        if thinking or req.tools or multimodal:
            result_format = "message"
        plan.reply = build_reply(
            model=req.model, messages=req.messages, tools=req.tools, tool_choice=req.tool_choice,
            thinking=thinking, thinking_budget=req.thinking_budget, max_tokens=req.max_tokens, stop=req.stop,
            seed=req.seed, response_format=req.response_format, min_tokens=job.reply_tokens, input_tokens=tokens,
        )
    except _Fail as fail:
        plan.refusal = (fail.kind, fail.message, fail.code, fail.param)
        return plan
    except BadRequest as bad:
        plan.refusal = ("invalid_parameter", bad.message, _native_code(bad), bad.param)
        return plan
    plan.model, plan.stream, plan.include_usage, plan.incremental = (
        req.model, req.stream, req.include_usage, req.incremental)
    plan.result_format, plan.multimodal = result_format, multimodal
    return plan


class Offload:
    """Runs the preparation of big requests away from the event loop.

    In one helper process (its own interpreter lock, so even seconds of tokenising do not slow
    the loop's thread): ``python -c`` importing this module, started on first use, fed pickled
    jobs over a pipe one at a time by a thread. Not ``multiprocessing``: its start methods run the
    caller's main script again in the child, which a notebook or a plain script does not expect.
    If the helper cannot be started, or dies, the job runs in a thread instead.
    """

    def __init__(self) -> None:
        self._proc: Any = None
        self._lock = threading.Lock()
        self._no_process = False
        self._limiter: Any = None

    def _start(self) -> Any:
        import pickle
        import subprocess
        import sys

        code = ("import pickle, sys; sys.path[:0] = pickle.load(sys.stdin.buffer); "
                "from qwen_nb.emulator.app import worker_main; worker_main()")
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                close_fds=True)
        assert proc.stdin is not None
        pickle.dump([p for p in sys.path if p], proc.stdin)
        proc.stdin.flush()
        return proc

    def _call(self, fn: Any, arg: Any) -> Any:
        """Blocking: ``fn(arg)`` in the helper process (started if needed); the thread fallback otherwise."""
        import pickle

        with self._lock:
            if not self._no_process and (self._proc is None or self._proc.poll() is not None):
                try:
                    self._proc = self._start()
                except OSError:  # pragma: no cover - no interpreter or no processes here
                    self._no_process, self._proc = True, None
            if self._proc is not None:
                try:
                    # a job's body goes next to the pickle, not in it: pickling copies it holding the
                    # interpreter lock, writing it to the pipe does not
                    blob, job = (arg.raw, replace(arg, raw=b"")) if isinstance(arg, ChatJob) else (b"", arg)
                    head = pickle.dumps((fn, job), protocol=pickle.HIGHEST_PROTOCOL)
                    pipe = self._proc.stdin
                    pipe.write(len(head).to_bytes(8, "big") + head + len(blob).to_bytes(8, "big"))
                    pipe.write(blob)
                    pipe.flush()
                    del blob, head
                    size = int.from_bytes(_read_exactly(self._proc.stdout, 8), "big")
                    ok, value = pickle.loads(_read_exactly(self._proc.stdout, size))
                except (OSError, EOFError, ValueError, pickle.PickleError):
                    self._stop_locked()  # the helper died: a new one next time, this job in a thread
                else:
                    if ok:
                        return value
                    raise value
        return fn(arg)

    async def run(self, fn: Any, arg: Any) -> Any:
        """``fn(arg)`` (a picklable module-level function) off the event loop, awaited."""
        import anyio.to_thread

        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(BIG_BODIES_AT_ONCE)
        return await anyio.to_thread.run_sync(self._call, fn, arg, limiter=self._limiter)

    def _stop_locked(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(2)
            except Exception:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()

    def close(self) -> None:
        """Stop the helper process (if one was started)."""
        with self._lock:
            self._stop_locked()


def _read_exactly(stream: Any, n: int) -> bytes:
    data = stream.read(n)
    if data is None or len(data) != n:
        raise EOFError("the helper process closed its pipe")
    return data


def worker_main() -> None:
    """The helper process of ``Offload``: answer jobs from stdin on stdout until EOF.

    A job is a pickled ``(fn, arg)`` then a blob (a ``ChatJob``'s body), each after its length in
    8 bytes; the answer is a pickled ``(ok, value or exception)`` after its length.
    """
    import pickle
    import sys

    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers may reach the pipe
    if hasattr(os, "nice"):
        try:
            os.nice(10)  # a huge prompt's work yields the CPU to the emulator's own loop
        except OSError:  # pragma: no cover
            pass
    get_tokenizer()
    while True:
        head = inp.read(8)
        if len(head) < 8:
            return
        fn, arg = pickle.loads(_read_exactly(inp, int.from_bytes(head, "big")))
        blob = _read_exactly(inp, int.from_bytes(_read_exactly(inp, 8), "big"))
        if isinstance(arg, ChatJob):
            arg.raw = blob
        del blob
        try:
            answer: Any = (True, fn(arg))
        except Exception as exc:  # sent back and raised in the emulator
            answer = (False, exc)
        del arg
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(len(data).to_bytes(8, "big"))
        out.write(data)
        out.flush()


@dataclass
class _Ctx:
    """What one request turned out to be, for its log entry."""

    authenticated: bool = False
    workspace: str | None = None
    body: Any = None
    body_bytes: int = 0
    summary: dict[str, Any] = field(default_factory=dict)


class _QuietStream(StreamingResponse):
    """A streaming response that ends quietly when the client goes away mid-stream."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except (ClientDisconnect, ConnectionError):
            pass


class EmulatorApp:
    """Request handling on top of an ``EmulatorState``."""

    def __init__(self, state: EmulatorState, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.state = state
        self.max_body_bytes = int(max_body_bytes)
        self.offload = Offload()
        self._big = asyncio.Semaphore(BIG_BODIES_AT_ONCE)
        self._watch: Any = None

    def close(self) -> None:
        """Release the worker process."""
        self.offload.close()

    # -- helpers -----------------------------------------------------------
    @staticmethod
    def _json(status: int, body: bytes, rid: str, extra: dict[str, str] | None = None) -> Response:
        headers = {"x-request-id": rid}
        if extra:
            headers.update(extra)
        return Response(body, status_code=status, media_type="application/json", headers=headers)

    def _error(self, protocol: str, fail: _Fail, rid: str) -> Response:
        status, body = wire.error_body(protocol, fail.kind, fail.message, rid, code=fail.code, param=fail.param)
        return self._json(status, body, rid, fail.headers)

    def _retry_after(self) -> dict[str, str] | None:
        """``Retry-After`` headers for a 429, if the settings ask for them (the service sends none)."""
        seconds = self.state.pacing.retry_after
        if seconds is None:
            return None
        return {"retry-after": str(math.ceil(seconds)), "retry-after-ms": str(round(seconds * 1000))}

    def _fault(self, status: int) -> _Fail:
        if status == 429:
            return _Fail("rate_limit", MSG_RATE, headers=self._retry_after())
        return _Fail(wire.STATUS_KIND[status], MSG_INTERNAL)

    def _record(self, request: Request, ctx: _Ctx, status: int, rid: str, region: str | None, ws_id: str | None,
                sub: str | None) -> None:
        auth = request.headers.get("authorization", "")
        token = auth.partition(" ")[2].strip() if " " in auth else auth.strip()
        summary = ctx.summary if ctx.authenticated else {}
        keep = ctx.authenticated and ctx.body is not None
        path = request.url.path
        self.state.record(RecordedRequest(
            method=request.method,
            path=path if len(path) <= 300 else path[:299] + "…",  # a log entry stays small, whatever is sent
            body=ctx.body if keep else None,
            headers=mask_headers(dict(request.headers)),
            status=status,
            time=time.time(),
            request_id=rid,
            endpoint=sub if sub in ENDPOINTS else "(other)",
            region=region,
            workspace=ctx.workspace or (ws_id[:100] if ws_id else None),
            key=mask_key(token) if token else None,
            authenticated=ctx.authenticated,
            model=summary.get("model"),
            stream=summary.get("stream"),
            messages=summary.get("messages"),
            body_bytes=ctx.body_bytes,
            preview=summary.get("preview", ""),
        ), chat=request.method == "POST" and sub in CHAT_ENDPOINTS)

    def _authenticate(self, request: Request, region: str, ws_id: str | None, ctx: _Ctx, *,
                      admin: bool = False) -> Workspace:
        auth = request.headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        key = key.strip()
        if not auth or scheme.lower() != "bearer" or not key:
            raise _Fail("invalid_key", MSG_NO_KEY)
        ws = self.state.workspace_for_key(key)
        if ws is None or ws.region != region:
            raise _Fail("invalid_key", MSG_BAD_KEY)
        if ws_id is not None and ws.id != ws_id and not (admin and ws.default):
            raise _Fail("invalid_key", MSG_BAD_KEY)
        ctx.authenticated, ctx.workspace = True, ws.id
        if not self.state.check_rate(key):
            raise _Fail("rate_limit", MSG_RATE, headers=self._retry_after())
        return ws

    async def _read_body(self, request: Request, ctx: _Ctx) -> bytearray:
        """The body, read piece by piece and refused as soon as it passes ``max_body_bytes``."""
        declared = _content_length(request)
        if declared is not None:
            ctx.body_bytes = declared
            if declared > self.max_body_bytes:
                raise _too_large(declared, self.max_body_bytes)  # nothing read; the server discards the rest
        buf = bytearray()
        try:
            async for chunk in request.stream():
                buf += chunk
                if len(buf) > self.max_body_bytes:
                    ctx.body_bytes = len(buf)
                    raise _too_large(len(buf), self.max_body_bytes)
        except ClientDisconnect:
            raise _ClientGone() from None
        ctx.body_bytes = len(buf)
        return buf

    async def _watch_loop(self, every: float = 0.02) -> None:
        """Wake up every ``every`` seconds and note how late: a stalled event loop shows in ``stats()``."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + every
            await asyncio.sleep(every)
            self.state.note_loop_lag(max(0.0, loop.time() - due))

    # -- routes ------------------------------------------------------------
    async def dispatch(self, request: Request) -> Response:
        """Entry point for every path."""
        if self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._watch_loop())
        path = request.url.path
        if path.startswith("/_emulator"):
            return await self.control(request, path)
        region, ws_id, sub = _split(path)
        protocol = "compatible" if sub.startswith("/compatible-mode/") else "native"
        rid = str(uuid.uuid4())
        ctx = _Ctx(body_bytes=_content_length(request) or 0)
        try:
            if region not in REGIONS:
                raise _Fail("not_found", f"Unknown region prefix {region!r}; use one of {', '.join(REGIONS)}.")
            if ws_id is not None and self.state.workspace_by_id(ws_id) is None:
                raise _Fail("invalid_key", MSG_BAD_KEY)
            routes = {
                COMPAT_CHAT: ("POST", self.chat),
                NATIVE_TEXT: ("POST", self.chat),
                NATIVE_VISION: ("POST", self.chat),
                COMPAT_MODELS: ("GET", self.list_models),
                PERMISSIONS: ("POST", self.permissions),
            }
            if sub not in routes or (sub == PERMISSIONS and ws_id is None):
                raise _Fail("not_found", f"The requested path {sub} does not exist on this endpoint.")
            method, handler = routes[sub]
            if request.method != method:
                raise _Fail("method", f"Method {request.method} is not allowed on {sub}; use {method}.")
            latency = self.state.pacing.latency
            if latency:
                await asyncio.sleep(latency)
            response = await handler(request, region, ws_id, sub, protocol, rid, ctx)
        except _Fail as fail:
            response = self._error(protocol, fail, rid)
        except BadRequest as bad:
            response = self._error(protocol, _Fail("invalid_parameter", bad.message, code=_native_code(bad),
                                                   param=bad.param), rid)
        except _ClientGone:
            response = Response(status_code=CLIENT_GONE)  # nobody reads it: the connection is gone
        known = region in REGIONS
        self._record(request, ctx, response.status_code, rid, region if known else None, ws_id, sub if known else None)
        return response

    async def list_models(self, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                          rid: str, ctx: _Ctx) -> Response:
        ws = self._authenticate(request, region, ws_id, ctx)
        status = self.state.take_failure()
        if status:
            raise self._fault(status)
        models = [m.id for m in MODELS.values() if region in m.regions and self.state.is_granted(ws, m.id)]
        return self._json(200, wire.models_list(models), rid)

    async def permissions(self, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                          rid: str, ctx: _Ctx) -> Response:
        self._authenticate(request, region, ws_id, ctx, admin=True)
        raw = await self._read_body(request, ctx)
        if not raw:
            raise _Fail("invalid_parameter", "The request body is empty; send a JSON object.")
        try:
            if len(raw) > INLINE_BODY_BYTES:
                import anyio.to_thread

                body = await anyio.to_thread.run_sync(json.loads, raw)
            else:
                body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _Fail("invalid_parameter", "The request body is not valid JSON.") from None
        if len(raw) <= KEEP_BODY_BYTES:
            ctx.body = body
        ws = self.state.workspace_by_id(ws_id or "")
        assert ws is not None
        if not isinstance(body, dict):
            raise _Fail("invalid_parameter", "The request body must be a JSON object.")
        mode = body.get("access_all_entities", "KEEP")
        if mode not in ("OPEN", "CLOSE", "KEEP"):
            raise _Fail("invalid_parameter", f"access_all_entities must be OPEN, CLOSE or KEEP, got {mode!r}.",
                        param="access_all_entities")
        raw_models = body.get("models", [])
        if not isinstance(raw_models, list) or (mode == "KEEP" and not 1 <= len(raw_models) <= 20):
            raise _Fail("invalid_parameter", "models must be a list of 1 to 20 {\"model\", \"inference\"} items "
                        "when access_all_entities is KEEP.", param="models")
        items = []
        for i, it in enumerate(raw_models):
            if not isinstance(it, dict) or not isinstance(it.get("model"), str) or not isinstance(
                    it.get("inference", True), bool):
                raise _Fail("invalid_parameter", f"models[{i}] must be {{\"model\": str, \"inference\": bool}}.",
                            param="models")
            if model_info(it["model"]) is None:
                raise _Fail("model_not_found", f"Model not exist: {it['model']!r}.")
            items.append((it["model"], it.get("inference", True)))
        grants = self.state.apply_permissions(ws, items, mode)
        out = {"request_id": rid, "workspace_id": ws.id,
               "access_all_entities": "OPEN" if grants is None else "CLOSE",
               "models": [{"model": m, "inference": True} for m in (grants or ())]}
        return self._json(200, wire.dumps(out), rid)

    async def chat(self, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                   rid: str, ctx: _Ctx) -> Response:
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        ws = self._authenticate(request, region, ws_id, ctx)
        accept = request.headers.get("accept", "")
        job = ChatJob(
            raw=b"", protocol=protocol, sub=sub, region=region,
            sse=request.headers.get("x-dashscope-sse", "").lower() == "enable" or "text/event-stream" in accept,
            grants=self.state.grants(ws), ws_name=ws.name, ws_id=ws.id, reply_tokens=self.state.pacing.reply_tokens,
            keep_body=False,
        )
        declared = _content_length(request)
        if declared is not None and declared <= INLINE_BODY_BYTES:  # the server delivers no more than declared
            job.raw = await self._read_body(request, ctx)
            job.keep_body = True
            plan = prepare_chat(job)
        else:
            async with self._big:
                job.raw = await self._read_body(request, ctx)
                job.keep_body = len(job.raw) <= KEEP_BODY_BYTES
                if len(job.raw) > INLINE_BODY_BYTES:
                    plan = await self.offload.run(prepare_chat, job)
                else:
                    plan = prepare_chat(job)
                job.raw = b""
        ctx.summary, ctx.body = plan.summary, plan.body
        if plan.json_ok:
            status = self.state.take_failure()
            if status:
                raise self._fault(status)
        if plan.refusal is not None:
            kind, message, code, param = plan.refusal
            raise _Fail(kind, message, code=code, param=param)
        reply = plan.reply
        assert reply is not None
        pacing = self.state.pacing
        created = int(time.time())
        start = arrived + pacing.latency
        headers = {"x-request-id": rid}
        if plan.stream:
            if protocol == "compatible":
                events = wire.compat_stream(reply, model=plan.model, request_id=rid, created=created,
                                            include_usage=plan.include_usage)
            else:
                events = wire.native_stream(reply, request_id=rid, result_format=plan.result_format,
                                            multimodal=plan.multimodal, incremental=plan.incremental)
            gen = _paced(events, start, pacing.ttft, pacing.tokens_per_second, self.state.take_cut(),
                         self.state.lateness.append)
            return _QuietStream(gen, media_type="text/event-stream",
                                headers={**headers, "cache-control": "no-cache"})
        n_tokens = len(reply.reasoning_pieces) + len(reply.content_pieces) + len(reply.tool_calls)
        due = start + pacing.ttft + (max(n_tokens - 1, 0) / pacing.tokens_per_second
                                     if pacing.tokens_per_second else 0.0)
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if protocol == "compatible":
            data = wire.compat_completion(reply, model=plan.model, request_id=rid, created=created)
        else:
            data = wire.native_body(reply, request_id=rid, result_format=plan.result_format,
                                    multimodal=plan.multimodal)
        return self._json(200, data, rid)

    # -- control -----------------------------------------------------------
    async def control(self, request: Request, path: str) -> Response:
        """Loopback-only control endpoints for other processes."""
        host = request.client.host if request.client else ""
        if host not in LOOPBACK:
            return Response(b'{"message":"control endpoints are loopback-only"}', 403, media_type="application/json")
        name = path[len("/_emulator"):].strip("/")
        try:
            if name == "health" and request.method == "GET":
                return Response(wire.dumps({"ok": True}), media_type="application/json")
            if name == "faults" and request.method == "GET":
                return Response(wire.dumps(self.state.pacing_dict()), media_type="application/json")
            if name == "faults" and request.method == "POST":
                changes = json.loads(await request.body() or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("send a JSON object of settings")
                self.state.set_faults(**changes)
                return Response(wire.dumps(self.state.pacing_dict()), media_type="application/json")
            if name == "reset" and request.method == "POST":
                self.state.reset()
                return Response(wire.dumps(self.state.pacing_dict()), media_type="application/json")
            if name == "stats" and request.method == "GET":
                return Response(wire.dumps(self.state.stats()), media_type="application/json")
            if name == "counters" and request.method == "GET":
                return Response(wire.dumps(self.state.counters()), media_type="application/json")
            if name == "workspaces" and request.method == "GET":
                # demo keys are public: they only work on this emulator
                # "models": the configured grants (what a profile knows); "granted_now": after runtime changes
                spaces = [{"name": ws.name, "id": ws.id, "region": ws.region, "default": ws.default,
                           "keys": list(ws.keys), "models": ws.models, "granted_now": self.state.grants(ws)}
                          for ws in self.state.config.workspaces]
                return Response(wire.dumps(spaces), media_type="application/json")
            if name == "requests" and request.method == "GET":
                # ?since=SEQ: only records after that one; ?limit=N (default 1000) or limit=all: the newest N
                q = request.query_params
                since = int(q.get("since", "0"))
                raw_limit = q.get("limit", "1000")
                limit = None if raw_limit == "all" else int(raw_limit)
                if since < 0 or (limit is not None and limit < 0):
                    raise ValueError("since and limit must be >= 0 (or limit=all)")
                recs = self.state.requests_since(since, limit)
                return Response(wire.dumps([r.to_dict() for r in recs]), media_type="application/json")
        except (ValueError, TypeError) as exc:
            return Response(wire.dumps({"message": str(exc)}), 400, media_type="application/json")
        return Response(wire.dumps({"message": f"unknown control endpoint {request.method} {path}"}), 404,
                        media_type="application/json")


def _native_code(bad: BadRequest) -> str | None:
    if bad.param == "model" and "missing" in bad.message:
        return "BadRequest.EmptyModel"
    if bad.param == "input" and "missing" in bad.message:
        return "BadRequest.EmptyInput"
    return None


async def _paced(events: list[wire.Event], start: float, ttft: float, tps: float | None, cut: int | None,
                 note_lateness: Any = None):
    """Yield the events at their due times; drop the connection after ``cut`` events if asked.

    ``note_lateness(seconds)`` is told how late each write is (only when paced).
    """
    loop = asyncio.get_running_loop()
    cutting = cut is not None and cut < len(events)
    if cutting:
        events = events[:cut]
    interval = 1.0 / tps if tps else 0.0
    i, n = 0, len(events)
    while i < n:
        slot = events[i].slot
        due = start + ttft + slot * interval
        delay = due - loop.time()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        # send every event already due in one write
        now = loop.time()
        if note_lateness is not None and interval:
            note_lateness(max(0.0, now - due))
        j = i + 1
        while j < n and start + ttft + events[j].slot * interval <= now:
            j += 1
        yield b"".join(e.data for e in events[i:j]) if j - i > 1 else events[i].data
        i = j
    if cutting:
        raise StreamCut(f"stream cut after {cut} events (injected fault)")


def build_app(state: EmulatorState, *, max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    """The Starlette app serving ``state`` (its ``EmulatorApp`` is ``app.state.emulator``)."""
    handler = EmulatorApp(state, max_body_bytes=max_body_bytes)
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    install_log_filter()
    app = Starlette(routes=[Route("/{path:path}", handler.dispatch, methods=methods)])
    app.state.emulator = handler
    return app


__all__ = ["MAX_BODY_BYTES", "ChatJob", "ChatPlan", "EmulatorApp", "Offload", "StreamCut", "build_app", "mask_key",
           "prepare_chat"]
