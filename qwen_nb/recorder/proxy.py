"""The recording proxy and the replay server: small HTTP servers on a loopback port, in a background thread.

Both serve ``{url}/{route}/...``: a route stands for one upstream host (a profile's region or
workspace host, or any base URL), so the SDKs and curl are pointed at ``{url}/{route}`` and
send their usual paths (``/compatible-mode/v1/...``, ``/api/v1/...``). The proxy forwards each
request to the route's upstream, streams the answer back as it arrives (SSE included, not
buffered) and stores it in the cassette; the replay server answers from the cassette only.
A request with no recording gets an error in the service's own envelope (HTTP 409, code
``NotRecorded``) naming the cassette and the request.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from qwen_nb import facts
from qwen_nb._serve import ThreadedServer, check_port
from qwen_nb.errors import InputError, scrub
from qwen_nb.recorder.cassette import Cassette, Interaction, is_sse, redact, sse_chunks

#: the status of "no recording for this request" (not one the service uses, so nothing reads it as a
#: misspelt model or a bad parameter, and nothing retries it)
MISS_STATUS = 409
#: its code in both envelopes
MISS_CODE = "NotRecorded"
#: request headers not passed on upstream (hop-by-hop, or set by the proxy's own client)
_HOP = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "accept-encoding",
                  "proxy-connection", "upgrade", "te"})


def error_response(path: str, headers: Mapping[str, str], status: int, code: str, message: str) -> Any:
    """An error in the envelope of the protocol ``path`` belongs to (what the SDKs parse and raise)."""
    from starlette.responses import Response

    request_id = str(uuid.uuid4())
    message = redact(message)
    if path.startswith(facts.COMPATIBLE_PATH):
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code},
                "request_id": request_id}
        return Response(json.dumps(body, ensure_ascii=False), status, media_type="application/json")
    fields = {"request_id": request_id, "code": code, "message": message}
    data = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    if str(headers.get("x-dashscope-sse", "")).lower() == "enable":  # a refused native stream: one error event
        frame = f"id:1\nevent:error\n:HTTP_STATUS/{status}\ndata:{data}\n\n"
        return Response(frame, status, media_type="text/event-stream")
    return Response(data, status, media_type="application/json")


def _split(request: Any) -> tuple[str, str]:
    route = request.path_params.get("route", "")
    return route, "/" + request.path_params.get("path", "")


# -- the apps --------------------------------------------------------------------------------------


def build_record_app(cassette: Cassette, upstreams: Mapping[str, str], *, timeout: float = 600.0) -> Any:
    """The recording proxy: ``/{route}/{path}`` goes to ``upstreams[route] + path``; answers are stored."""
    import contextlib

    import httpx
    from starlette.applications import Starlette
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    holder: dict[str, httpx.AsyncClient] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        holder["client"] = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=15.0), follow_redirects=False)
        try:
            yield
        finally:
            await holder.pop("client").aclose()

    async def forward(request: Any) -> Any:
        route, path = _split(request)
        low = {k.lower(): v for k, v in request.headers.items()}
        upstream = upstreams.get(route)
        if upstream is None:
            return error_response(path, low, 404, "NotFound",
                                  f"qwen-nb record: no route {route!r}; this proxy serves {', '.join(upstreams)} "
                                  f"(base URLs {request.base_url}ROUTE).")
        body = await request.body()
        query = request.url.query
        url = upstream.rstrip("/") + path + (f"?{query}" if query else "")
        out = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP]
        out.append(("accept-encoding", "identity"))
        client = holder["client"]
        try:
            resp = await client.send(client.build_request(request.method, url, headers=out, content=body),
                                     stream=True)
        except httpx.HTTPError as exc:
            return error_response(path, low, 502, "ProxyError",
                                  f"qwen-nb record: the upstream {upstream} could not be reached "
                                  f"({type(exc).__name__}: {scrub(exc)}); nothing was recorded.")
        headers = [(k, v) for k, v in resp.headers.items() if k.lower() not in
                   ("content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive")]

        def store(raw: bytes) -> None:
            cassette.add(Interaction.capture(route, request.method, path, query, low, body, resp.status_code,
                                             resp.headers.items(), raw))

        if is_sse(resp.headers.get("content-type")):
            async def relay() -> AsyncIterator[bytes]:
                chunks: list[bytes] = []
                complete = False
                try:
                    async for chunk in resp.aiter_bytes():
                        chunks.append(chunk)
                        yield chunk
                    complete = True
                finally:
                    await resp.aclose()
                    if complete:  # a stream the client dropped halfway is not a recording
                        store(b"".join(chunks))

            return StreamingResponse(relay(), resp.status_code, headers=dict(headers))
        try:
            raw = await resp.aread()
        finally:
            await resp.aclose()
        store(raw)  # before answering: once the client has its answer, the cassette has it too
        return Response(raw, resp.status_code, headers=dict(headers))

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{route}/{path:path}", forward, methods=methods)], lifespan=lifespan)


class _Replay:
    """The replay server's state: the cassette in use (swapped per notebook by the pytest plugin)."""

    def __init__(self, cassette: Cassette | None, missing: str = "") -> None:
        self.cassette = cassette
        self.missing = missing
        self.served = 0

    def use(self, cassette: Cassette | None, missing: str = "") -> None:
        self.cassette, self.missing = cassette, missing


def build_replay_app(state: _Replay) -> Any:
    """The replay server: every answer comes from ``state.cassette``; anything else is a clear 409."""
    from starlette.applications import Starlette
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    async def answer(request: Any) -> Any:
        route, path = _split(request)
        low = {k.lower(): v for k, v in request.headers.items()}
        body = await request.body()
        cassette = state.cassette
        if cassette is None:
            return error_response(path, low, MISS_STATUS, MISS_CODE,
                                  state.missing or "qwen-nb replay: no cassette is loaded.")
        found = cassette.next_for(route, request.method, path, request.url.query, low, body)
        if isinstance(found, str):
            return error_response(path, low, MISS_STATUS, MISS_CODE, found)
        state.served += 1
        chunks = sse_chunks(found.response_body)
        headers = dict(found.response_headers)
        if "events" in found.response_body:
            async def events() -> AsyncIterator[bytes]:
                # a recording keeps no timing: the events go out in one write (the bytes are the recorded ones)
                yield b"".join(chunks)

            return StreamingResponse(events(), found.status, headers=headers)
        return Response(chunks[0], found.status, headers=headers)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{route}/{path:path}", answer, methods=methods)])


# -- servers -------------------------------------------------------------------------------------


class _Server:
    """An app of this package served on a loopback port in a background thread (``ThreadedServer``)."""

    kind = "server"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        check_port(port, f"The {self.kind}'s", "Pick another port, or 0 for a free one.")
        self.host = host
        self._port = port
        self._bound: int | None = None
        self._serving: ThreadedServer | None = None

    def _app(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def url(self) -> str:
        """Root URL, ``http://127.0.0.1:PORT``; routes are ``{url}/{route}``."""
        if self._bound is None:
            raise RuntimeError(f"The {self.kind} is not started.")
        return f"http://{self.host}:{self._bound}"

    @property
    def running(self) -> bool:
        return self._serving is not None and self._serving.running

    def start(self, timeout: float = 10.0) -> Any:
        """Serve in a background thread; returns self once the port accepts connections."""
        if self.running:
            return self
        serving = ThreadedServer(self.kind, self.host, self._port)
        self._bound = serving.bind()
        self._serving = serving
        serving.serve(self._app(), timeout)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and release the port."""
        if self._serving is not None:
            self._serving.stop(timeout)
            self._serving = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RecordingProxy(_Server):
    """Forward ``{url}/{route}/...`` to ``upstreams[route]`` and store every answer in ``cassette``.

    ``routes`` says what each route stood for (profile, region, settings prefix; no secrets) and
    goes into the cassette's index so a replay can set the same profiles up.
    """

    kind = "recording proxy"

    def __init__(self, cassette: Cassette | str | Path, upstreams: Mapping[str, str],
                 routes: Mapping[str, Mapping[str, Any]] | None = None, *, command: str = "",
                 host: str = "127.0.0.1", port: int = 0, timeout: float = 600.0) -> None:
        super().__init__(host, port)
        if not upstreams:
            raise InputError("A recording proxy needs at least one upstream route.")
        for name, url in upstreams.items():
            if not str(url).startswith(("http://", "https://")):
                raise InputError(f"Upstream of route {name!r} must be an http(s) URL, got {url!r}.",
                                 fix="E.g. https://dashscope-intl.aliyuncs.com")
        self.cassette = cassette if isinstance(cassette, Cassette) else Cassette(Path(cassette))
        self.upstreams = {k: str(v).rstrip("/") for k, v in upstreams.items()}
        self.routes = {k: dict((routes or {}).get(k, {})) for k in self.upstreams}
        self.command = command
        self.timeout = timeout

    def _app(self) -> Any:
        self.cassette.start(self.routes, self.command)
        return build_record_app(self.cassette, self.upstreams, timeout=self.timeout)


class ReplayServer(_Server):
    """Answer ``{url}/{route}/...`` from a cassette only; ``use()`` swaps the cassette."""

    kind = "replay server"

    def __init__(self, cassette: Cassette | str | Path | None = None, *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        super().__init__(host, port)
        loaded = Cassette.load(cassette) if isinstance(cassette, (str, Path)) else cassette
        self._state = _Replay(loaded)

    @property
    def cassette(self) -> Cassette | None:
        return self._state.cassette

    @property
    def served(self) -> int:
        """Answers given from the cassette so far."""
        return self._state.served

    def use(self, cassette: Cassette | str | Path | None, missing: str = "") -> Cassette | None:
        """Answer from ``cassette`` from now on (rewound); ``None`` refuses every call with ``missing``."""
        loaded = Cassette.load(cassette) if isinstance(cassette, (str, Path)) else cassette
        if loaded is not None:
            loaded.rewind()
        self._state.use(loaded, missing)
        return loaded

    def _app(self) -> Any:
        return build_replay_app(self._state)
