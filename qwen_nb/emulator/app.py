"""The emulator's ASGI app (Starlette): one port, every region under ``/{region_id}``.

Layout, for each region id of ``qwen_nb._regions.REGIONS``::

    /{region}/compatible-mode/v1/chat/completions            POST (OpenAI-compatible)
    /{region}/compatible-mode/v1/models                      GET
    /{region}/api/v1/services/aigc/text-generation/generation        POST (native)
    /{region}/api/v1/services/aigc/multimodal-generation/generation  POST (native, vision)
    /{region}/ws/{workspace_id}/...                          the workspace gateway: same paths,
                                                             plus POST /api/v1/models/permissions
    /_emulator/faults | reset | requests | stats | health | workspaces   (loopback-only control endpoints)
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import asdict
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from qwen_nb._regions import REGIONS
from qwen_nb._secrets import mask_key
from qwen_nb.catalog import MODELS, ModelInfo, model_info
from qwen_nb.emulator import wire
from qwen_nb.emulator.config import Workspace
from qwen_nb.emulator.replies import build_reply
from qwen_nb.emulator.state import EmulatorState, RecordedRequest, mask_headers
from qwen_nb.emulator.validate import BadRequest, ChatRequest, parse_compatible, parse_native

COMPAT_CHAT = "/compatible-mode/v1/chat/completions"
COMPAT_MODELS = "/compatible-mode/v1/models"
NATIVE_TEXT = "/api/v1/services/aigc/text-generation/generation"
NATIVE_VISION = "/api/v1/services/aigc/multimodal-generation/generation"
PERMISSIONS = "/api/v1/models/permissions"
LOOPBACK = ("127.0.0.1", "::1", "localhost", "testclient")

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
    """Keep injected stream cuts, and streams cancelled by ``stop()``, out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        seen = 0
        while exc is not None and seen < 10:
            if isinstance(exc, (StreamCut, asyncio.CancelledError)):
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
    def __init__(self, kind: str, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.code, self.param = kind, message, code, param


def _split(path: str) -> tuple[str | None, str | None, str]:
    """``/{region}[/ws/{id}]/rest`` -> (region, workspace id, "/rest")."""
    parts = path.strip("/").split("/")
    region = parts[0] if parts and parts[0] else None
    rest = parts[1:]
    ws = None
    if len(rest) >= 2 and rest[0] == "ws":
        ws, rest = rest[1], rest[2:]
    return region, ws, "/" + "/".join(rest)


class EmulatorApp:
    """Request handling on top of an ``EmulatorState``."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    # -- helpers -----------------------------------------------------------
    @staticmethod
    def _json(status: int, body: bytes, rid: str, extra: dict[str, str] | None = None) -> Response:
        headers = {"x-request-id": rid}
        if extra:
            headers.update(extra)
        return Response(body, status_code=status, media_type="application/json", headers=headers)

    def _error(self, protocol: str, fail: _Fail, rid: str) -> Response:
        status, body = wire.error_body(protocol, fail.kind, fail.message, rid, code=fail.code, param=fail.param)
        return self._json(status, body, rid)

    def _record(self, request: Request, body: Any, status: int, rid: str, path: str | None = None) -> None:
        self.state.record(RecordedRequest(
            method=request.method,
            path=path or request.url.path,
            body=body,
            headers=mask_headers(dict(request.headers)),
            status=status,
            time=time.time(),
            request_id=rid,
        ))

    def _authenticate(self, request: Request, region: str, ws_id: str | None, *, admin: bool = False) -> Workspace:
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
        if not self.state.check_rate(key):
            raise _Fail("rate_limit", MSG_RATE)
        return ws

    @staticmethod
    async def _body(request: Request) -> Any:
        raw = await request.body()
        if not raw:
            raise _Fail("invalid_parameter", "The request body is empty; send a JSON object.")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _Fail("invalid_parameter", "The request body is not valid JSON.") from None

    def _model(self, name: str, region: str, protocol: str) -> ModelInfo:
        info = model_info(name)
        if info is None or region not in info.regions:
            where = "" if info is None else f" in region {region}"
            if protocol == "compatible":
                msg = f"The model `{name}` does not exist or you do not have access to it{where}."
            else:
                msg = f"Model not exist: {name!r} is not offered{where or ''}." if info else "Model not exist."
            raise _Fail("model_not_found", msg)
        return info

    # -- routes ------------------------------------------------------------
    async def dispatch(self, request: Request) -> Response:
        """Entry point for every path."""
        path = request.url.path
        if path.startswith("/_emulator"):
            return await self.control(request, path)
        region, ws_id, sub = _split(path)
        protocol = "compatible" if sub.startswith("/compatible-mode/") else "native"
        rid = str(uuid.uuid4())
        body: Any = await _peek_body(request)
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
            response, _ = await handler(request, region, ws_id, sub, protocol, rid)
        except _Fail as fail:
            response = self._error(protocol, fail, rid)
        except BadRequest as bad:
            response = self._error(protocol, _Fail("invalid_parameter", bad.message, code=_native_code(bad),
                                                   param=bad.param), rid)
        self._record(request, body, response.status_code, rid)
        return response

    async def list_models(self, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                          rid: str) -> tuple[Response, Any]:
        ws = self._authenticate(request, region, ws_id)
        status = self.state.take_failure()
        if status:
            raise _Fail(wire.STATUS_KIND[status], MSG_INTERNAL)
        models = [m.id for m in MODELS.values() if region in m.regions and self.state.is_granted(ws, m.id)]
        return self._json(200, wire.models_list(models), rid), None

    async def permissions(self, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                          rid: str) -> tuple[Response, Any]:
        self._authenticate(request, region, ws_id, admin=True)
        body = await self._body(request)
        ws = self.state.workspace_by_id(ws_id or "")
        assert ws is not None
        if not isinstance(body, dict):
            raise _Fail("invalid_parameter", "The request body must be a JSON object.")
        mode = body.get("access_all_entities", "KEEP")
        if mode not in ("OPEN", "CLOSE", "KEEP"):
            raise _Fail("invalid_parameter", f"access_all_entities must be OPEN, CLOSE or KEEP, got {mode!r}.",
                        param="access_all_entities")
        raw = body.get("models", [])
        if not isinstance(raw, list) or (mode == "KEEP" and not 1 <= len(raw) <= 20):
            raise _Fail("invalid_parameter", "models must be a list of 1 to 20 {\"model\", \"inference\"} items "
                        "when access_all_entities is KEEP.", param="models")
        items = []
        for i, it in enumerate(raw):
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
        return self._json(200, wire.dumps(out), rid), body

    async def chat(self, request: Request, region: str, ws_id: str | None, sub: str, protocol: str,
                   rid: str) -> tuple[Response, Any]:
        arrived = asyncio.get_running_loop().time()
        ws = self._authenticate(request, region, ws_id)
        body = await self._body(request)
        status = self.state.take_failure()
        if status:
            raise _Fail(wire.STATUS_KIND[status], MSG_INTERNAL)
        if protocol == "compatible":
            req = parse_compatible(body)
        else:
            accept = request.headers.get("accept", "")
            stream = request.headers.get("x-dashscope-sse", "").lower() == "enable" or "text/event-stream" in accept
            req = parse_native(body, stream=stream)
        info = self._model(req.model, region, protocol)
        if not self.state.is_granted(ws, req.model):
            raise _Fail("access_denied", (
                f"Access denied: the workspace of this API key ({ws.name}, {ws.id}) has not been granted "
                f"the model {req.model!r}. An administrator can grant it in the workspace's model "
                "permissions, or use a key of a workspace that has it."))
        multimodal = sub == NATIVE_VISION
        if protocol == "native" and multimodal != info.vision:
            right = NATIVE_VISION if info.vision else NATIVE_TEXT
            raise _Fail("invalid_parameter", f"url error, please check url! Model {req.model!r} is served on {right}.")
        if req.has_images and not info.vision:
            raise _Fail("invalid_parameter", f"The model {req.model!r} does not take image input; "
                        "use a vision model such as qwen-vl-plus.", param="messages")
        thinking = self._thinking(req, info)
        fmt = (req.response_format or {}).get("type")
        if fmt == "json_object" and not any("json" in (m.get("text") or "").lower() for m in req.messages):
            raise _Fail("invalid_parameter", MSG_JSON_WORD, param="response_format")
        result_format = req.result_format or ("message" if info.thinking != "never" or req.tools else "text")
        if thinking or req.tools or multimodal:
            result_format = "message"
        pacing = self.state.pacing
        reply = build_reply(
            model=req.model, messages=req.messages, tools=req.tools, tool_choice=req.tool_choice,
            thinking=thinking, thinking_budget=req.thinking_budget, max_tokens=req.max_tokens, stop=req.stop,
            seed=req.seed, response_format=req.response_format, min_tokens=pacing.reply_tokens,
        )
        created = int(time.time())
        start = arrived + pacing.latency
        headers = {"x-request-id": rid}
        if req.stream:
            if protocol == "compatible":
                events = wire.compat_stream(reply, model=req.model, request_id=rid, created=created,
                                            include_usage=req.include_usage)
            else:
                events = wire.native_stream(reply, request_id=rid, result_format=result_format,
                                            multimodal=multimodal, incremental=req.incremental)
            gen = _paced(events, start, pacing.ttft, pacing.tokens_per_second, self.state.take_cut(),
                         self.state.lateness.append)
            return StreamingResponse(gen, media_type="text/event-stream",
                                     headers={**headers, "cache-control": "no-cache"}), body
        n_tokens = len(reply.reasoning_pieces) + len(reply.content_pieces) + len(reply.tool_calls)
        due = start + pacing.ttft + (max(n_tokens - 1, 0) / pacing.tokens_per_second
                                     if pacing.tokens_per_second else 0.0)
        delay = due - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)
        if protocol == "compatible":
            data = wire.compat_completion(reply, model=req.model, request_id=rid, created=created)
        else:
            data = wire.native_body(reply, request_id=rid, result_format=result_format, multimodal=multimodal)
        return self._json(200, data, rid), body

    @staticmethod
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
            if name == "workspaces" and request.method == "GET":
                # demo keys are public: they only work on this emulator
                # "models": the configured grants (what a profile knows); "granted_now": after runtime changes
                spaces = [{"name": ws.name, "id": ws.id, "region": ws.region, "default": ws.default,
                           "keys": list(ws.keys), "models": ws.models, "granted_now": self.state.grants(ws)}
                          for ws in self.state.config.workspaces]
                return Response(wire.dumps(spaces), media_type="application/json")
            if name == "requests" and request.method == "GET":
                return Response(wire.dumps([asdict(r) for r in self.state.requests]), media_type="application/json")
        except (ValueError, TypeError) as exc:
            return Response(wire.dumps({"message": str(exc)}), 400, media_type="application/json")
        return Response(wire.dumps({"message": f"unknown control endpoint {request.method} {path}"}), 404,
                        media_type="application/json")


async def _peek_body(request: Request) -> Any:
    """The body as recorded: parsed JSON if it is JSON, else (truncated) text, None if empty."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw[:2000].decode("utf-8", "replace")


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


def build_app(state: EmulatorState) -> Starlette:
    """The Starlette app serving ``state``."""
    handler = EmulatorApp(state)
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    install_log_filter()
    return Starlette(routes=[Route("/{path:path}", handler.dispatch, methods=methods)])


__all__ = ["EmulatorApp", "StreamCut", "build_app", "mask_key"]
