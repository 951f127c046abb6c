"""The emulator's ASGI app (Starlette): one port, every region under ``/{region_id}``.

Layout, for each region id of ``qwen_nb._regions.REGIONS``::

    /{region}/compatible-mode/v1/chat/completions            POST (OpenAI-compatible)
    /{region}/compatible-mode/v1/models                      GET (the region's catalogue)
    /{region}/api/v1/services/aigc/text-generation/generation        POST (native)
    /{region}/api/v1/services/aigc/multimodal-generation/generation  POST (native, vision)
    /{region}/api/v1/models                                  GET (native, paginated catalogue)
    /{region}/compatible-mode/v1/files[/{id}[/content]]     POST, GET (the Batch API's files)
    /{region}/compatible-mode/v1/batches[/{id}[/cancel]]    POST, GET (batch jobs: qwen_nb.emulator.batches)
    /{region}/ws/{workspace_id}/...                          the workspace gateway: same paths, plus
                                                             GET and POST /api/v1/models/permissions
    /_emulator/faults | reset | requests | counters | stats | usage | workspaces[/{name}] | keys
                                                             control endpoints (see "Who may" below)
    /_emulator/health | whoami                               open: liveness; a key's own workspace

Who may use the control endpoints: an emulator without a teacher token (the default, listening on
loopback) answers clients on 127.0.0.1 / ::1 only, as before. With a teacher token (a ``[classroom]``
table, or an emulator listening on a non-loopback address, which makes one up) the token alone
decides, whatever the client's address: ``Authorization: Bearer <token>`` or ``X-Qwen-Nb-Teacher:
<token>`` may do everything; a workspace key may read only its own workspace's requests and usage
(``GET /_emulator/requests``, ``GET /_emulator/usage``); anything else is 401 (no credentials) or 403.
``GET /_emulator/whoami`` answers any client presenting a valid key with that key's workspace.

Every error answer is a row of the service-facts table (``qwen_nb.facts.ERRORS``): its status,
both codes and message. A workspace's (or a key's) flags (``config.Flags``) make the emulator
answer like the service does for an overdue account, a used-up free tier or budget, a missing
subscription, content moderation, token and burst limits, or any row at all (``fail_with``),
before the answer or, for streams, inside it.

Under load and abuse: request bodies are read piece by piece and refused past ``max_body_bytes``
(the emulator's own guard); a body is parsed, validated and answered on the event loop only
when it is small (``INLINE_BODY_BYTES``), bigger ones are prepared in a worker process (a thread
if no process can be started) so one huge prompt does not stall every other client; clients
that go away mid-request or mid-stream are logged as nothing but a request with status 499.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from qwen_nb import facts
from qwen_nb._regions import REGIONS
from qwen_nb._secrets import mask_key
from qwen_nb.catalog import MODELS, ModelInfo, model_info
from qwen_nb.emulator import kinds, wire
from qwen_nb.emulator.config import BILLS, Flags, Workspace
from qwen_nb.emulator.replies import Reply, build_reply, count_tokens, get_tokenizer, prompt_tokens, render_prompt
from qwen_nb.emulator.state import (
    KEEP_BODY_BYTES,
    EmulatorState,
    RecordedRequest,
    body_summary,
    mask_headers,
)
from qwen_nb.emulator.validate import BadRequest, ChatRequest, parse_compatible, parse_native
from qwen_nb.errors import InputError

COMPAT_CHAT = facts.COMPATIBLE_PATH + "/chat/completions"
COMPAT_MODELS = facts.COMPATIBLE_PATH + "/models"
NATIVE_TEXT = facts.NATIVE_PATH + facts.NATIVE_TEXT_GENERATION
NATIVE_VISION = facts.NATIVE_PATH + facts.NATIVE_MULTIMODAL_GENERATION
NATIVE_MODELS = facts.NATIVE_PATH + "/models"
PERMISSIONS = facts.NATIVE_PATH + facts.PERMISSIONS_PATH
#: the Batch API (OpenAI-compatible): files and jobs, their ids in the path
COMPAT_FILES = facts.COMPATIBLE_PATH + facts.FILES_PATH
COMPAT_BATCHES = facts.COMPATIBLE_PATH + facts.BATCHES_PATH
CHAT_ENDPOINTS = (COMPAT_CHAT, NATIVE_TEXT, NATIVE_VISION)
ENDPOINTS = (*CHAT_ENDPOINTS, COMPAT_MODELS, NATIVE_MODELS, PERMISSIONS, *kinds.ROUTES)
LOOPBACK = ("127.0.0.1", "::1", "localhost", "testclient")

#: Largest request body accepted: the service's (6 MiB, observed: "Exceeded limit on max bytes to
#: request body : 6291456", see ``facts.MAX_REQUEST_BODY_BYTES``), answered with its error. An
#: emulator started with another ``max_body_bytes`` answers with its own message instead.
MAX_BODY_BYTES = facts.MAX_REQUEST_BODY_BYTES
#: Bodies up to this size are parsed and answered on the event loop (a few ms of work at most);
#: bigger ones are prepared off the loop.
INLINE_BODY_BYTES = 64 * 1024
#: At most this many big bodies are read and prepared at once; more wait their turn (bounds memory).
BIG_BODIES_AT_ONCE = 4
#: Status recorded for a request whose client went away before it was answered (nginx's convention).
CLIENT_GONE = 499

MSG_NO_KEY = "No API-key provided."
#: Who may change a workspace's grants is not documented (the console says: the Alibaba Cloud
#: account). The emulator's choice: the region's default-workspace key may; a sub-workspace's own
#: key gets 403 AccessDenied with this message (the service's answer to it is unverified).
MSG_NO_GRANT_RIGHTS = "The API key does not have permission to modify model permissions."
#: the permissions list's page size: default and largest (its API reference)
PERMISSIONS_PAGE, PERMISSIONS_MAX_PAGE = 20, 200
#: the native model list's page size when none is given (the dashscope SDK's default)
MODELS_PAGE = 10
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


def _demo_keys() -> frozenset[str]:
    from qwen_nb.emulator.config import demo_keys

    return demo_keys()


class _Fail(Exception):
    """An error answer: ``kind`` is the row of ``facts.ERRORS``; ``message`` "" sends the row's own;
    ``code`` replaces the row's code in the request's protocol."""

    def __init__(self, kind: str, message: str = "", *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message or kind)
        self.kind, self.message, self.code, self.param, self.headers = kind, message, code, param, headers


def _bad_request(bad: BadRequest) -> _Fail:
    """The answer to a bad body: the row its code names (through the table), else ``invalid_parameter``."""
    fact = facts.error_fact(bad.code, 400) if bad.code else None
    return _Fail(fact.key if fact is not None else "invalid_parameter", bad.message, code=bad.code, param=bad.param)


def _wants_sse(request: Request) -> bool:
    """A native call asking for a stream (the SDKs send ``X-DashScope-SSE: enable``)."""
    return (request.headers.get("x-dashscope-sse", "").lower() == "enable"
            or "text/event-stream" in request.headers.get("accept", ""))


def _listed(model: str, names: tuple[str, ...] | None) -> bool:
    """``model`` (or the model a dated snapshot of it follows) is one of ``names``; None lists every model."""
    if names is None:
        return True
    info = model_info(model)
    return model in names or (info is not None and info.id in names)


def _display_name(model_id: str) -> str:
    """A model's name as a list shows it: "qwen3-max" -> "Qwen3 Max"."""
    return " ".join(w.upper() if w in ("vl", "ocr") else w.capitalize() for w in model_id.split("-"))


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


def _page(q: Any, name: str, default: int, high: int | None = None) -> int:
    """A positive page number or size from the query string (400 InvalidParameter otherwise)."""
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1 or (high is not None and int(raw) > high):
        bound = f" and at most {high}" if high is not None else ""
        raise _Fail("invalid_parameter", f"{name} must be an integer of at least 1{bound}, got {raw!r}.", param=name)
    return int(raw)


def _too_large(size: int, limit: int) -> _Fail:
    if limit == facts.MAX_REQUEST_BODY_BYTES:
        return _Fail("body_too_large")  # the service's own answer
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
    reply_tokens: int | None
    #: return the parsed body (kept in the request log)
    keep_body: bool
    #: content moderation (the workspace's flags): words refused in a prompt, and in an answer
    blocked_input: tuple[str, ...] = ()
    blocked_output: tuple[str, ...] = ()


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
    #: the prompt holds a word of ``blocked_input``
    input_blocked: bool = False
    #: the answer (or the prompt) holds a word of ``blocked_output``: the content piece the
    #: answer is stopped at (a stream sends the pieces before it, then the error)
    output_blocked_at: int | None = None


def _model(name: str, region: str, protocol: str) -> ModelInfo:
    info = model_info(name)
    if info is None or region not in info.regions:
        if protocol == "native":  # the native API: 400 InvalidParameter "Model not exist."
            raise _Fail("model_not_exist")
        # the compatible API: 404 model_not_found, in the wording of the service's error-code page
        # that names the model ("The model xxx does not exist or you do not have access to it.")
        where = "" if info is None else f" in region {region}"
        raise _Fail("model_not_found", f"The model `{name}` does not exist or you do not have access to it{where}.")
    return info


def _holds(text: str, words: tuple[str, ...]) -> str | None:
    """The first of ``words`` in ``text`` (any case), or None."""
    low = text.lower()
    return next((w for w in words if w and w.lower() in low), None)


def _blocked_piece(reply: Reply, word: str) -> int:
    """The content piece where ``word`` starts in the answer (half-way if only the prompt holds it)."""
    at = reply.content.lower().find(word.lower())
    if at < 0:
        return len(reply.content_pieces) // 2
    seen = 0
    for i, piece in enumerate(reply.content_pieces):
        seen += len(piece)
        if seen > at:
            return i
    return len(reply.content_pieces)


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
        if not _listed(req.model, job.grants):  # a sub-workspace not granted the model
            raise _Fail("model_denied")
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
        if job.blocked_input or job.blocked_output:
            prompt = "\n".join(m["text"] for m in req.messages)
            plan.input_blocked = _holds(prompt, job.blocked_input) is not None
            word = _holds(plan.reply.content, job.blocked_output) or _holds(prompt, job.blocked_output)
            if word is not None:
                plan.output_blocked_at = _blocked_piece(plan.reply, word)
    except _Fail as fail:
        plan.refusal = (fail.kind, fail.message, fail.code, fail.param)
        return plan
    except BadRequest as bad:
        refused = _bad_request(bad)
        plan.refusal = (refused.kind, refused.message, refused.code, refused.param)
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
    #: the caller's key (never logged: the record keeps it masked)
    api_key: str = field(default="", repr=False)
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

    def __init__(self, state: EmulatorState, *, max_body_bytes: int = MAX_BODY_BYTES,
                 teacher_token: str | None = None) -> None:
        self.state = state
        self.max_body_bytes = int(max_body_bytes)
        #: with a token, the control endpoints need it (see the module's "Who may"); None: loopback only
        self.teacher_token = teacher_token or None
        self.offload = Offload()
        self._big = asyncio.Semaphore(BIG_BODIES_AT_ONCE)
        self._watch: Any = None
        self._batches: Any = None
        self._batch_plans: dict[Any, ChatPlan] = {}

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

    def _error(self, protocol: str, fail: _Fail, rid: str, sse: bool = False) -> Response:
        """The error answer; for a native stream refused before its first event, an ``event:error`` body."""
        message = fail.message or wire.error_message(protocol, fail.kind)
        if sse and protocol == "native":
            fields = wire.error_fields(protocol, fail.kind, message, rid, code=fail.code, param=fail.param)
            status = wire.ERRORS[fail.kind].status
            headers = {"x-request-id": rid, **(fail.headers or {})}
            return Response(wire.native_error_event(status, fields), status_code=status,
                            media_type="text/event-stream", headers=headers)
        status, body = wire.error_body(protocol, fail.kind, message, rid, code=fail.code, param=fail.param)
        return self._json(status, body, rid, fail.headers)

    def _retry_after(self) -> dict[str, str] | None:
        """``Retry-After`` headers for a 429, if the settings ask for them (the service sends none)."""
        seconds = self.state.pacing.retry_after
        if seconds is None:
            return None
        return {"retry-after": str(math.ceil(seconds)), "retry-after-ms": str(round(seconds * 1000))}

    def _wait_headers(self, kind: str) -> dict[str, str] | None:
        """``Retry-After`` (if the settings ask for it) on a 429 that means "wait", none on the others."""
        row = wire.ERRORS[kind]
        return self._retry_after() if row.status == 429 and row.retryable else None

    def _fault(self, status: int) -> _Fail:
        """The row answering an injected status (``fail_status``; 429 is the requests-per-minute row)."""
        kind = wire.STATUS_KIND[status]
        return _Fail(kind, headers=self._wait_headers(kind))

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
            # only a valid key's requests keep their headers: the bounded set of kept bodies and headers
            # is not filled by anyone who can reach the port
            headers=mask_headers(dict(request.headers)) if ctx.authenticated else {},
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
        """The caller's workspace. ``admin``: the region's default-workspace key may use any workspace host."""
        auth = request.headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        key = key.strip()
        if not auth or scheme.lower() != "bearer" or not key:
            raise _Fail("invalid_key", MSG_NO_KEY)
        ws = self.state.workspace_for_key(key)
        if ws is None or ws.region != region:  # keys are per region: another region's key is just invalid
            raise _Fail("invalid_key")
        if ws_id is not None and ws.id != ws_id and not (admin and ws.default):
            raise _Fail("workspace_unknown")  # only that workspace's keys may call its host
        named = request.headers.get("x-dashscope-workspace", "").strip()
        if named and named != ws.id and not (admin and ws.default and named == ws_id):
            raise _Fail("workspace_denied")  # the call names a workspace the key does not belong to
        ctx.authenticated, ctx.workspace, ctx.api_key = True, ws.id, key
        if not self.state.check_rate(key):
            raise _Fail("rate_limit", headers=self._retry_after())
        return ws

    async def _read_body(self, request: Request, ctx: _Ctx, limit: int | None = None) -> bytearray:
        """The body, read piece by piece and refused as soon as it passes ``max_body_bytes`` (or ``limit``,
        for an endpoint with a cap of its own, such as a file upload)."""
        cap = self.max_body_bytes if limit is None else limit
        declared = _content_length(request)
        if declared is not None:
            ctx.body_bytes = declared
            if declared > cap:
                raise _too_large(declared, cap)  # nothing read; the server discards the rest
        buf = bytearray()
        try:
            async for chunk in request.stream():
                buf += chunk
                if len(buf) > cap:
                    ctx.body_bytes = len(buf)
                    raise _too_large(len(buf), cap)
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
        if path.startswith(kinds.FILES_PREFIX):  # result files of the endpoints beyond chat (qwen_nb.emulator.kinds)
            return await kinds.serve_file(self, request, path)
        region, ws_id, sub = _split(path)
        protocol = "compatible" if sub.startswith("/compatible-mode/") else "native"
        sse = protocol == "native" and sub in CHAT_ENDPOINTS and _wants_sse(request)
        rid = str(uuid.uuid4())
        ctx = _Ctx(body_bytes=_content_length(request) or 0)
        try:
            if region not in REGIONS:
                raise _Fail("not_found", f"Unknown region prefix {region!r}; use one of {', '.join(REGIONS)}.")
            if ws_id is not None and self.state.workspace_by_id(ws_id) is None:
                raise _Fail("workspace_unknown")
            routes: dict[str, dict[str, Any]] = {
                COMPAT_CHAT: {"POST": self.chat},
                NATIVE_TEXT: {"POST": self.chat},
                NATIVE_VISION: {"POST": self.chat},
                COMPAT_MODELS: {"GET": self.list_models},
                NATIVE_MODELS: {"GET": self.native_models},
                PERMISSIONS: {"GET": self.list_permissions, "POST": self.permissions},
                # beyond chat: embeddings, rerank, image tasks, the Responses API (qwen_nb.emulator.kinds)
                **{p: {m: functools.partial(h, self) for m, h in hs.items()} for p, hs in kinds.ROUTES.items()},
            }
            if sub.split("/")[:4] in (COMPAT_FILES.split("/"), COMPAT_BATCHES.split("/")):
                routes[sub] = {request.method: self.batch_api}  # the Batch API's paths carry ids: one handler
            if sub.startswith(kinds.TASKS_PREFIX) and len(sub) > len(kinds.TASKS_PREFIX):
                routes[sub] = {"GET": functools.partial(kinds.task_status, self)}
            if sub not in routes or (sub == PERMISSIONS and ws_id is None):
                raise _Fail("not_found")  # e.g. ".../api/v1/chat/completions": a native base URL + a compatible path
            handler = routes[sub].get(request.method)
            if handler is None:
                raise _Fail("method", headers={"allow": ", ".join(routes[sub])})
            latency = self.state.pacing.latency
            if latency:
                await asyncio.sleep(latency)
            peeked = await kinds.peek(self, request, region, ws_id, sub, protocol, rid, ctx)  # a model beyond chat
            response = peeked or await handler(request, region, ws_id, sub, protocol, rid, ctx)
        except _Fail as fail:
            response = self._error(protocol, fail, rid, sse)
        except BadRequest as bad:
            response = self._error(protocol, _bad_request(bad), rid, sse)
        except _ClientGone:
            response = Response(status_code=CLIENT_GONE)  # nobody reads it: the connection is gone
        known = region in REGIONS
        self._record(request, ctx, response.status_code, rid, region if known else None, ws_id, sub if known else None)
        return response

    async def list_models(self, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                          rid: str, ctx: _Ctx) -> Response:
        """``GET /compatible-mode/v1/models``: the region's catalogue (not what the workspace was granted)."""
        self._authenticate(request, region, ws_id, ctx)
        status = self.state.take_failure()
        if status:
            raise self._fault(status)
        models = [m.id for m in MODELS.values() if region in m.regions]
        return self._json(200, wire.models_list(models), rid)

    async def native_models(self, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                            rid: str, ctx: _Ctx) -> Response:
        """``GET /api/v1/models``: the region's catalogue a page at a time (``page_no``, ``page_size``,
        ``model`` for one model)."""
        self._authenticate(request, region, ws_id, ctx)
        q = request.query_params
        page_no, page_size = _page(q, "page_no", 1), _page(q, "page_size", MODELS_PAGE)
        status = self.state.take_failure()
        if status:
            raise self._fault(status)
        infos = [m for m in MODELS.values() if region in m.regions and q.get("model") in (None, m.id)]
        # the fields the dashscope SDK reads (model, provider, opensource); "name" and "description" besides
        rows = [{"model": m.id, "name": _display_name(m.id), "provider": "qwen", "opensource": m.open_source,
                 "description": m.description} for m in infos[(page_no - 1) * page_size:page_no * page_size]]
        return self._json(200, wire.native_models_list(rows, page_no=page_no, page_size=page_size, total=len(infos),
                                                       request_id=rid), rid)

    async def list_permissions(self, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                               rid: str, ctx: _Ctx) -> Response:
        """``GET {workspace host}/api/v1/models/permissions``: the workspace's grants, as documented:
        ``authorization_scope`` AUTHORIZABLE (default: every model of the region, each with its
        ``inference`` grant) or AUTHORIZED (the granted ones), ``model`` (exact), ``name`` (part of the
        name or id), ``page_no``, ``page_size`` (1 to 200, default 20)."""
        self._authenticate(request, region, ws_id, ctx, admin=True)
        ws = self.state.workspace_by_id(ws_id or "")
        assert ws is not None
        q = request.query_params
        scope = q.get("authorization_scope") or "AUTHORIZABLE"
        if scope not in ("AUTHORIZABLE", "AUTHORIZED"):
            raise _Fail("invalid_parameter", f"authorization_scope must be AUTHORIZABLE or AUTHORIZED, got {scope!r}.",
                        param="authorization_scope")
        action = q.get("action") or "INFERENCE"
        if action != "INFERENCE":
            raise _Fail("invalid_parameter", f"action must be INFERENCE, got {action!r}.", param="action")
        page_no, page_size = _page(q, "page_no", 1), _page(q, "page_size", PERMISSIONS_PAGE, PERMISSIONS_MAX_PAGE)
        status = self.state.take_failure()  # injected faults reach the lists too
        if status:
            raise self._fault(status)
        grants = self.state.grants(ws)
        offered = [m.id for m in MODELS.values() if region in m.regions]
        if scope == "AUTHORIZED":
            ids = offered if grants is None else [
                m for m in dict.fromkeys(g if g in MODELS else getattr(model_info(g), "id", g) for g in grants)
                if m in offered]
        else:
            ids = offered
        name, exact = (q.get("name") or "").lower(), q.get("model")
        ids = [m for m in ids if (exact is None or m == exact)
               and (not name or name in m.lower() or name in _display_name(m).lower())]
        rows = [{"model": m, "name": _display_name(m),
                 "permissions": {"inference": _listed(m, grants), "fine_tune": False, "deploy": False}}
                for m in ids[(page_no - 1) * page_size:page_no * page_size]]
        return self._json(200, wire.permissions_list(rows, page_no=page_no, page_size=page_size, total=len(ids),
                                                     request_id=rid), rid)

    async def permissions(self, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                          rid: str, ctx: _Ctx) -> Response:
        """``POST {workspace host}/api/v1/models/permissions``: change the workspace's grants."""
        caller = self._authenticate(request, region, ws_id, ctx, admin=True)
        if not caller.default and not (caller.manage_grants and caller.id == ws_id):
            raise _Fail("access_denied", MSG_NO_GRANT_RIGHTS)  # the emulator's choice, see MSG_NO_GRANT_RIGHTS
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
        items: list[tuple[str, bool | None]] = []
        for i, it in enumerate(raw_models):
            # true grants, false revokes, absent leaves it as it is ("finetune" and "deploy" are not emulated)
            if not isinstance(it, dict) or not isinstance(it.get("model"), str) or not all(
                    isinstance(it.get(f, False), bool) for f in ("inference", "finetune", "deploy")):
                raise _Fail("invalid_parameter", f"models[{i}] must be {{\"model\": str, \"inference\": bool, "
                            "\"finetune\": bool, \"deploy\": bool}} (the booleans optional).", param="models")
            if model_info(it["model"]) is None:
                raise _Fail("model_not_exist", f"Model not exist: {it['model']!r}.")
            items.append((it["model"], it.get("inference")))
        self.state.apply_permissions(ws, items, mode)
        return self._json(200, wire.permissions_updated(rid), rid)

    # -- chat ----------------------------------------------------------------
    def _account_refusal(self, flags: Flags) -> None:
        """What the service answers every call of an account in a bad state (before reading the request)."""
        if flags.overdue:
            raise _Fail("arrearage")
        if flags.bill_overdue:
            raise _Fail(BILLS[flags.bill_overdue])
        if not flags.subscribed:
            raise _Fail("not_subscribed")
        if flags.budget_exhausted:
            raise _Fail("budget")

    def _budget_refusal(self, ws: Workspace, key: str, flags: Flags) -> None:
        """429 (Budget Management) once the workspace's (or the key's own) estimated spend reached its budget."""
        if flags.budget is not None and self.state.spent(self.state.scope(ws, key, "budget")) >= flags.budget:
            raise _Fail("budget")

    def _model_refusal(self, ws: Workspace, key: str, flags: Flags, plan: ChatPlan) -> int | None:
        """What the service answers a valid call of this model: raises the refusal, or returns after how
        many events a stream fails with ``flags.fail_with`` (None: it does not)."""
        model = plan.model
        base = getattr(model_info(model), "id", model)
        if _listed(model, flags.unpurchased or ()):
            raise _Fail("unpurchased")
        fto = flags.free_tier_only
        if fto is True or (isinstance(fto, tuple) and _listed(model, fto)):
            raise _Fail("free_tier_only")
        error_after = None
        if flags.fail_with and _listed(model, flags.fail_models) and self.state.take_fail(
                self.state.scope(ws, key, "fail_with"), flags.fail_times):
            if not plan.stream or flags.error_after is None:
                raise _Fail(flags.fail_with, headers=self._wait_headers(flags.fail_with))
            error_after = flags.error_after
        limits = (("burst", "burst_limit", flags.burst_limit, 1.0, "burst_rate"),
                  ("rate", "rate_limit", flags.rate_limit, self.state.pacing.rate_window, "rate_limit"))
        for what, name, limit, window, kind in limits:
            if limit is not None and not self.state.check_window(what, self.state.scope(ws, key, name), base, limit,
                                                                 window):
                raise _Fail(kind, headers=self._retry_after())
        tpm = flags.tokens_per_minute
        if tpm is not None and self.state.tokens_used(self.state.scope(ws, key, "tokens_per_minute"), base) > tpm:
            raise _Fail("token_limit", headers=self._retry_after())
        if plan.input_blocked:
            raise _Fail("data_inspection")
        if plan.output_blocked_at is not None and not plan.stream:
            raise _Fail("data_inspection_output")
        return error_after

    async def chat(self, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                   rid: str, ctx: _Ctx) -> Response:
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        ws = self._authenticate(request, region, ws_id, ctx)
        key = ctx.api_key
        flags = self.state.flags(ws, key)
        job = ChatJob(
            raw=b"", protocol=protocol, sub=sub, region=region, sse=_wants_sse(request),
            grants=self.state.grants(ws), reply_tokens=self.state.pacing.reply_tokens, keep_body=False,
            blocked_input=flags.blocked_words_input, blocked_output=flags.blocked_words_output,
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
        self._account_refusal(flags)
        self._budget_refusal(ws, key, flags)
        if plan.refusal is not None:
            kind, message, code, param = plan.refusal
            raise _Fail(kind, message, code=code, param=param)
        error_after = self._model_refusal(ws, key, flags, plan)
        reply = plan.reply
        assert reply is not None
        self.state.note_answer(ws, key, plan.model, reply.input_tokens, reply.output_tokens)
        if flags.tokens_per_minute is not None:
            self.state.note_tokens(self.state.scope(ws, key, "tokens_per_minute"),
                                   getattr(model_info(plan.model), "id", plan.model),
                                   reply.input_tokens + reply.output_tokens)
        pacing = self.state.pacing
        created = int(time.time())
        start = arrived + pacing.latency
        headers = {"x-request-id": rid}
        if plan.stream:
            if protocol == "compatible":
                events = wire.compat_stream(reply, model=plan.model, request_id=rid, created=created,
                                            include_usage=plan.include_usage)
                last_body = len(events) - 2 - plan.include_usage  # the chunks before the finishing one
            else:
                events = wire.native_stream(reply, request_id=rid, result_format=plan.result_format,
                                            multimodal=plan.multimodal, incremental=plan.incremental)
                last_body = len(events) - 1
            if error_after is not None:
                events = _fail_midway(events, protocol, min(error_after, last_body), flags.fail_with or "", rid)
            elif plan.output_blocked_at is not None:
                # the answer streams until the piece holding the word, then content moderation stops it
                head = (1 if protocol == "compatible" else 0) + len(reply.reasoning_pieces)
                keep = max(1, min(head + plan.output_blocked_at, last_body))
                events = _fail_midway(events, protocol, keep, "data_inspection_output", rid)
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
        data = kinds.apply_cache(self, plan.body, data, protocol, ctx.workspace)  # explicit context cache markers
        return self._json(200, data, rid)

    # -- the Batch API (files and jobs; qwen_nb.emulator.batches) ------------------
    @property
    def batches(self) -> Any:
        """The files and batch jobs (made on first use)."""
        if self._batches is None:
            from qwen_nb.emulator.batches import BatchStore

            self._batches = BatchStore(self._batch_answer, lambda: self.state.pacing)
        return self._batches

    def _batch_answer(self, region: str, ws_id: str, body: dict[str, Any], rid: str) -> tuple[bool, bytes]:
        """One batch line answered like a real-time call: (True, chat.completion) or (False, error body)."""
        ws = self.state.workspace_by_id(ws_id)
        if body.get("stream"):
            return False, wire.error_body("compatible", "invalid_parameter", "A batch line cannot stream.", rid,
                                          param="stream")[1]
        grants = self.state.grants(ws) if ws is not None else None
        info = model_info(str(body.get("model")))
        if info is not None and info.stream_only_thinking:
            # the service streams such a line for itself (a model that thinks only in streams is on the batch
            # list): the answer is prepared as for a stream and written whole
            body = {**body, "stream": True}
        raw = wire.dumps(body)
        key = (region, grants, self.state.pacing.reply_tokens, raw)
        plan = self._batch_plans.get(key)  # the same body gets the same (deterministic) answer: made once
        if plan is None:
            plan = prepare_chat(ChatJob(raw=raw, protocol="compatible", sub=COMPAT_CHAT, region=region, sse=False,
                                        grants=grants, reply_tokens=self.state.pacing.reply_tokens, keep_body=False))
            if len(self._batch_plans) >= 10_000:
                self._batch_plans.clear()
            self._batch_plans[key] = plan
        if plan.refusal is not None:
            kind, message, code, param = plan.refusal
            return False, wire.error_body("compatible", kind, message or wire.error_message("compatible", kind), rid,
                                          code=code, param=param)[1]
        assert plan.reply is not None
        return True, wire.compat_completion(plan.reply, model=plan.model, request_id=rid, created=int(time.time()))

    async def batch_api(self, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                        rid: str, ctx: _Ctx) -> Response:
        """``POST /files``, ``GET /files/{id}[/content]``, ``POST /batches``, ``GET /batches[/{id}]``,
        ``POST /batches/{id}/cancel`` (the service's shapes; errors from the facts table)."""
        from qwen_nb.emulator.batches import BatchRefusal, parse_multipart

        ws = self._authenticate(request, region, ws_id, ctx)
        if region not in facts.BATCH_MODELS:
            raise _Fail("not_found", f"The Batch API is not offered in region {region}; it is offered in "
                        f"{' and '.join(facts.BATCH_MODELS)}.")
        parts = sub[len(facts.COMPATIBLE_PATH):].strip("/").split("/")
        method = request.method
        store = self.batches
        try:
            if parts[0] == "files":
                if parts == ["files"] and method == "POST":
                    raw = bytes(await self._read_body(request, ctx, max(self.max_body_bytes,
                                                                        facts.BATCH_LIMITS.file_bytes + 2**20)))
                    form = parse_multipart(request.headers.get("content-type", ""), raw)
                    filename, data = form.get("file", (None, b""))
                    purpose = form.get("purpose", (None, b""))[1].decode("utf-8", "replace")
                    if "file" not in form:
                        raise BatchRefusal("invalid_parameter", "The upload has no file field.", "file")
                    stored = store.add_file(ws.id, filename or "input.jsonl", purpose, data)
                    return self._json(200, wire.dumps(stored.to_dict()), rid)
                if len(parts) == 2 and method == "GET":
                    return self._json(200, wire.dumps(store.get_file(ws.id, parts[1]).to_dict()), rid)
                if len(parts) == 3 and parts[2] == "content" and method == "GET":
                    data = store.get_file(ws.id, parts[1]).data
                    chunk = 1 << 20

                    async def body() -> Any:
                        for i in range(0, len(data), chunk):
                            yield data[i:i + chunk]

                    return _QuietStream(body(), media_type="application/jsonl",
                                        headers={"x-request-id": rid, "content-length": str(len(data))})
            elif parts[0] == "batches":
                if parts == ["batches"] and method == "POST":
                    try:
                        payload = json.loads(await self._read_body(request, ctx) or b"{}")
                    except ValueError:
                        raise _Fail("invalid_parameter", "The request body is not valid JSON.") from None
                    if not isinstance(payload, dict):
                        raise _Fail("invalid_parameter", "Send a JSON object.")
                    job = store.create(ws.id, region, payload)
                    return self._json(200, wire.dumps(store.to_dict(job)), rid)
                if parts == ["batches"] and method == "GET":
                    q = request.query_params
                    limit = _page(q, "limit", 20, 100)
                    return self._json(200, wire.dumps(store.list(ws.id, q.get("after"), limit)), rid)
                if len(parts) == 2 and method == "GET":
                    return self._json(200, wire.dumps(store.to_dict(store.get(ws.id, parts[1]))), rid)
                if len(parts) == 3 and parts[2] == "cancel" and method == "POST":
                    return self._json(200, wire.dumps(store.to_dict(store.cancel(ws.id, parts[1]))), rid)
        except BatchRefusal as refused:
            raise _Fail(refused.kind, refused.message, param=refused.param) from None
        raise _Fail("not_found") if method in ("GET", "POST") else _Fail("method")

    # -- control -----------------------------------------------------------
    def _caller(self, request: Request) -> tuple[str, Workspace | None]:
        """Who calls a control endpoint: ("teacher", None), ("student", their workspace) or ("", None)."""
        import hmac

        token = request.headers.get("x-qwen-nb-teacher", "").strip()
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        bearer = bearer.strip() if scheme.lower() == "bearer" else ""
        if self.teacher_token is None:
            host = request.client.host if request.client else ""
            return ("teacher", None) if host in LOOPBACK else ("", None)
        for given in (token, bearer):
            if given and hmac.compare_digest(given.encode(), self.teacher_token.encode()):
                return "teacher", None
        ws = self.state.workspace_for_key(bearer) if bearer else None
        return ("student", ws) if ws is not None else ("", None)

    def _whoami(self, request: Request) -> Response:
        """``GET /_emulator/whoami``: the workspace of the key presented (any client; the key is the proof)."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        ws = self.state.workspace_for_key(key.strip()) if scheme.lower() == "bearer" else None
        if ws is None:
            status, body = wire.error_body("native", "invalid_key", "", str(uuid.uuid4()))
            return Response(body, status, media_type="application/json")
        return Response(wire.dumps({
            "name": ws.name, "id": ws.id, "region": ws.region, "default": ws.default, "keys": [key.strip()],
            "models": ws.models, "granted_now": self.state.grants(ws), "manage_grants": ws.manage_grants,
            "classroom": getattr(self.state.config.classroom, "name", None)}), media_type="application/json")

    async def control(self, request: Request, path: str) -> Response:
        """Control endpoints: the teacher's (or, without a teacher token, loopback clients'); see "Who may"."""
        name = path[len("/_emulator"):].strip("/")
        if name == "health" and request.method == "GET":
            return Response(wire.dumps({"ok": True}), media_type="application/json")
        if name == "whoami" and request.method == "GET":
            return self._whoami(request)
        role, own = self._caller(request)
        # the list of workspaces is open unless the emulator serves a class; only the teacher (or, without a
        # token, a loopback client) gets keys of a config file in full (the demo keys are public anyway)
        public_list = name == "workspaces" and request.method == "GET" and self.state.config.classroom is None
        if role == "student" and request.method == "GET" and name in ("requests", "usage"):
            pass  # their own workspace's only (below)
        elif role != "teacher" and not public_list:
            if self.teacher_token is None:
                return Response(b'{"message":"control endpoints are loopback-only"}', 403,
                                media_type="application/json")
            if role == "student":
                return Response(wire.dumps({"message": f"/_emulator/{name} needs the teacher token; a workspace "
                                            "key may read only its own requests and usage."}), 403,
                                media_type="application/json")
            return Response(wire.dumps({"message": "This emulator's control endpoints need the teacher token "
                                        "(Authorization: Bearer <token> or X-Qwen-Nb-Teacher: <token>)."}), 401,
                            media_type="application/json", headers={"www-authenticate": "Bearer"})
        mine = own.id if role == "student" and own is not None else None
        try:
            if name == "usage" and request.method == "GET":
                return Response(wire.dumps(self.state.usage(mine)), media_type="application/json")
            if name == "reset" and request.method == "POST" and request.headers.get("content-length", "0") != "0":
                # {"workspace": "<name or id>"}: only that workspace (its grants, flags, usage and spend)
                target = _json_object(await request.body()).get("workspace")
                if target is not None:
                    if not isinstance(target, str):
                        raise ValueError("send {\"workspace\": <a workspace's name or id>}")
                    ws = self.state.config.workspace(target)
                    self.state.reset_workspace(ws)
                    return Response(wire.dumps(self.state.usage(ws.id)), media_type="application/json")
            if name == "faults" and request.method == "GET":
                return Response(wire.dumps(self.state.pacing_dict()), media_type="application/json")
            if name == "faults" and request.method == "POST":
                self.state.set_faults(**_json_object(await request.body()))
                return Response(wire.dumps(self.state.pacing_dict()), media_type="application/json")
            if name == "reset" and request.method == "POST":
                self.state.reset()
                return Response(wire.dumps(self.state.pacing_dict()), media_type="application/json")
            if name == "stats" and request.method == "GET":
                return Response(wire.dumps(self.state.stats()), media_type="application/json")
            if name == "counters" and request.method == "GET":
                return Response(wire.dumps(self.state.counters()), media_type="application/json")
            if name == "workspaces" and request.method == "GET":
                # the built-in demo keys are public (they only work on this emulator); keys from a config file
                # are shown masked unless asked for with ?keys=full (what connect() does, on loopback only)
                # "models": the configured grants (what a profile knows); "granted_now": after runtime changes;
                # "flags": how the service treats the workspace's calls now
                full = request.query_params.get("keys") == "full" and role == "teacher"
                public = _demo_keys()
                spaces = [{"name": ws.name, "id": ws.id, "region": ws.region, "default": ws.default,
                           "keys": [k if full or k in public else mask_key(k) for k in ws.keys], "models": ws.models,
                           "granted_now": self.state.grants(ws), "flags": asdict(self.state.flags(ws))}
                          for ws in self.state.config.workspaces]
                return Response(wire.dumps(spaces), media_type="application/json")
            if name.startswith("workspaces/") and request.method in ("GET", "POST"):
                # POST {"free_tier_only": true, ...}: change a workspace's flags (by name or id) until reset
                ws = self.state.config.workspace(name[len("workspaces/"):])
                if request.method == "POST":
                    self.state.set_flags(ws, **_json_object(await request.body()))
                return Response(wire.dumps(asdict(self.state.flags(ws))), media_type="application/json")
            if name == "keys" and request.method == "POST":
                # {"key": "sk-...", <flags>}: the flags of one key until reset (answers with that key's flags)
                changes = _json_object(await request.body())
                key = changes.pop("key", None)
                owner = self.state.workspace_for_key(key) if isinstance(key, str) else None
                if owner is None or not isinstance(key, str):
                    raise ValueError("send {\"key\": <a key of one of the emulator's workspaces>, <flags>}")
                flags = self.state.set_key_flags(owner, key, **changes)
                return Response(wire.dumps(asdict(flags)), media_type="application/json")
            if name == "requests" and request.method == "GET":
                # ?since=SEQ: only records after that one; ?limit=N (default 1000) or limit=all: the newest N
                q = request.query_params
                since = int(q.get("since", "0"))
                raw_limit = q.get("limit", "1000")
                limit = None if raw_limit == "all" else int(raw_limit)
                if since < 0 or (limit is not None and limit < 0):
                    raise ValueError("since and limit must be >= 0 (or limit=all)")
                recs = self.state.requests_since(since, limit, workspace=mine) if role == "student" else \
                    self.state.requests_since(since, limit)
                return Response(wire.dumps([r.to_dict() for r in recs]), media_type="application/json")
        except (ValueError, TypeError, InputError) as exc:
            return Response(wire.dumps({"message": str(exc)}), 400, media_type="application/json")
        return Response(wire.dumps({"message": f"unknown control endpoint {request.method} {path}"}), 404,
                        media_type="application/json")


def _json_object(raw: bytes) -> dict[str, Any]:
    """A control request's JSON object of settings (ValueError otherwise)."""
    changes = json.loads(raw or b"{}")
    if not isinstance(changes, dict):
        raise ValueError("send a JSON object of settings")
    return changes


def _fail_midway(events: list[wire.Event], protocol: str, keep: int, kind: str, rid: str) -> list[wire.Event]:
    """The first ``keep`` events of a stream, then the service's error event for the row ``kind``: native
    ``event:error`` with ``:HTTP_STATUS/<status>``, compatible ``data: {"error": ...}`` (no ``[DONE]``)."""
    keep = max(0, keep)
    slot = events[keep - 1].slot if keep else 0
    fields = wire.error_fields(protocol, kind, wire.error_message(protocol, kind), rid)
    if protocol == "compatible":
        data = wire.compat_error_event(fields, rid)
    else:
        data = wire.native_error_event(wire.ERRORS[kind].status, fields, keep + 1)
    return [*events[:keep], wire.Event(slot, data)]


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


def build_app(state: EmulatorState, *, max_body_bytes: int = MAX_BODY_BYTES,
              teacher_token: str | None = None) -> Starlette:
    """The Starlette app serving ``state`` (its ``EmulatorApp`` is ``app.state.emulator``); with
    ``teacher_token`` the control endpoints need it (see the module's "Who may")."""
    handler = EmulatorApp(state, max_body_bytes=max_body_bytes, teacher_token=teacher_token)
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    install_log_filter()
    app = Starlette(routes=[Route("/{path:path}", handler.dispatch, methods=methods)])
    app.state.emulator = handler
    return app


__all__ = ["MAX_BODY_BYTES", "ChatJob", "ChatPlan", "EmulatorApp", "Offload", "StreamCut", "build_app", "mask_key",
           "prepare_chat"]
