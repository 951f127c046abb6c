"""``Emulator``: the app served by uvicorn in a background thread on a free loopback port."""

from __future__ import annotations

import os
from typing import Any

from qwen_nb._regions import Region, get_region
from qwen_nb._serve import ThreadedServer, check_port
from qwen_nb.emulator.config import EmulatorConfig, Flags, Pacing, new_token, profiles_for, resolve_config
from qwen_nb.emulator.hosts import emulator_regions, is_loopback, lan_address
from qwen_nb.emulator.state import EmulatorState, RecordedRequest
from qwen_nb.errors import InputError

#: seconds a client may take to send a request's headers, or between two pieces of its body
CLIENT_TIMEOUT = 10.0
#: open connections (and requests in progress) served at once; requests beyond get 503
MAX_CONNECTIONS = 1000


def guarded_h11(client_timeout: float) -> type:
    """uvicorn's h11 protocol, closing connections whose client stalls while sending a request.

    uvicorn bounds the idle time between requests (``timeout_keep_alive``) but not a request in
    flight: a client that trickles its headers, or stops halfway through its body, would hold its
    connection forever. Here a request's headers must all arrive within ``client_timeout`` seconds
    of its first byte (of the connection, for the first request), and a body may not pause for
    longer than that between pieces.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _guard: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            cycle = self.cycle
            if cycle is None or cycle.response_complete:
                if self._guard is None and not self.transport.is_closing():
                    self._arm()  # (the rest of) a request's headers: a deadline from its first byte
            elif cycle.more_body:
                self._disarm()  # a body in progress: it may pause at most client_timeout
                self._arm()
            else:
                self._disarm()  # the request is in: the app has it

        def on_response_complete(self) -> None:
            self._disarm()  # idle now: uvicorn's keep-alive timeout takes over
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._guard = self.loop.call_later(client_timeout, self._stalled)

        def _disarm(self) -> None:
            if self._guard is not None:
                self._guard.cancel()
                self._guard = None

        def _stalled(self) -> None:
            self._guard = None
            if self.transport.is_closing():
                return
            if self.flow is not None and self.flow.read_paused:
                self._arm()  # the server stopped reading (the app is busy with the body so far): not the client
                return
            self.transport.close()

    return GuardedH11Protocol


class Emulator:
    """A local Model Studio emulator serving every region on one loopback port.

    ``with Emulator() as emu:`` starts it on a free port and stops it on exit;
    ``emu.base_url("ap-southeast-1", "openai")`` is a base URL for the ``openai``
    SDK, ``emu.profiles()`` the demo workspaces' profiles. Pacing is off unless
    ``ttft`` / ``tokens_per_second`` (or the config) say otherwise. Answers are a few
    sentences long; ``reply_tokens=N`` (or ``set_faults(reply_tokens=N)``) makes text answers
    at least N tokens long, still deterministic and capped by ``max_tokens``.

    Guards: request bodies over ``max_body_bytes`` (default: the service's 6 MiB) are refused with
    the service's 400 ("Exceeded limit on max bytes to request body"); a client that takes over
    ``client_timeout`` seconds to send its headers, or pauses that long inside a body, is disconnected;
    beyond ``max_connections`` open connections requests are answered 503.

    A class: a config with a ``[classroom]`` table (``qwen-nb classroom init``) gives the control
    endpoints, the request log and usage a teacher token (``teacher_token`` here overrides it); an
    emulator listening on a non-loopback ``host`` makes one up when it has none (``emu.teacher_token``).
    With a token, only the token opens them (see ``qwen_nb.emulator.app``); ``emu.usage()`` is each
    workspace's calls, errors, tokens and estimated spend.
    """

    def __init__(
        self,
        config: EmulatorConfig | str | os.PathLike[str] | None = None,
        ttft: float | None = None,
        tokens_per_second: float | None = None,
        *,
        latency: float | None = None,
        rate_limit: int | None = None,
        rate_window: float | None = None,
        reply_tokens: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_bytes: int | None = None,
        client_timeout: float = CLIENT_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        teacher_token: str | None = None,
    ) -> None:
        cfg = resolve_config(config).with_pacing(
            ttft=ttft, tokens_per_second=tokens_per_second or None, latency=latency,
            rate_limit=rate_limit, rate_window=rate_window, reply_tokens=reply_tokens or None,
        )
        for name, value in (("client_timeout", client_timeout), ("max_connections", max_connections),
                            ("max_body_bytes", max_body_bytes)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise InputError(f"{name}={value!r} must be a positive number.")
        self.config = cfg
        self.state = EmulatorState(cfg)
        self.max_body_bytes = int(max_body_bytes) if max_body_bytes is not None else None
        self.client_timeout = float(client_timeout)
        self.max_connections = int(max_connections)
        self._handler: Any = None
        check_port(port, "Emulator", "E.g. Emulator(port=8765), or leave it out for a free port.")
        if not isinstance(host, str) or not host.strip():
            raise InputError(f"Emulator host must be an address string, got {host!r}.", fix='E.g. host="127.0.0.1".')
        self.host = host
        self._port = port
        classroom_token = cfg.classroom.teacher_token if cfg.classroom is not None else None
        if teacher_token is not None and (not isinstance(teacher_token, str) or len(teacher_token) < 16):
            raise InputError("teacher_token must be a string of at least 16 characters.",
                             fix="Leave it out to use the classroom file's, or make one with "
                             "qwen_nb.emulator.config.new_token().")
        token = teacher_token or classroom_token
        if token is None and not is_loopback(host):
            token = new_token()  # other machines reach it: its control endpoints need a token
        self._teacher_token = token
        self._serving: ThreadedServer | None = None
        self._bound_port: int | None = None

    # -- lifecycle -----------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the server thread is serving."""
        return self._serving is not None and self._serving.running

    @property
    def port(self) -> int:
        """The port (after ``start()``; kept after ``stop()``)."""
        if self._bound_port is None:
            raise RuntimeError("The emulator is not started; call emu.start() or use 'with Emulator() as emu:'.")
        return self._bound_port

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> Emulator:
        """Start serving in a background thread; returns self once the port accepts requests."""
        if self.running:
            return self
        from qwen_nb.emulator.app import MAX_BODY_BYTES, build_app
        from qwen_nb.emulator.replies import warm_tokenizer

        warm_tokenizer()
        serving = ThreadedServer("emulator", self.host, self._port)
        self._bound_port = serving.bind(backlog=512)
        app = build_app(self.state, max_body_bytes=self.max_body_bytes or MAX_BODY_BYTES,
                        teacher_token=self._teacher_token)
        self._handler = app.state.emulator
        self._serving = serving
        serving.serve(app, timeout, lifespan="off", http=guarded_h11(self.client_timeout), backlog=512,
                      limit_concurrency=self.max_connections)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and release the port (open streams are closed)."""
        if self._serving is None:
            return
        self._serving.stop(timeout, force=True)
        self._serving = None
        if self._handler is not None:
            self._handler.close()
            self._handler = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self.running else "not running"
        cls = f", class {self.config.classroom.name!r}" if self.config.classroom is not None else ""
        return f"<Emulator {where}, {len(self.config.workspaces)} workspaces{cls}>"

    @property
    def teacher_token(self) -> str | None:
        """The token the control endpoints need (None: they answer loopback clients only)."""
        return self._teacher_token

    @property
    def lan_url(self) -> str:
        """The root URL other machines use: for a wildcard host (0.0.0.0, ::) this machine's network
        address (``hosts.lan_address()``), never the wildcard; else ``url``."""
        if self.host in ("0.0.0.0", "::", ""):
            addr = lan_address()
            if addr is not None:
                return f"http://{addr}:{self.port}"
        return self.url

    # -- addresses ---------------------------------------------------------------
    def regions(self) -> dict[str, Region]:
        """Region id -> ``Region`` served by this emulator."""
        return emulator_regions(self.url)

    def base_url(self, region: str = "ap-southeast-1", api: str = "openai", workspace: str | None = None) -> str:
        """Base URL for an SDK: ``api`` "openai" (compatible) or "dashscope" (native).

        ``workspace`` (an id or a workspace/profile name) selects the workspace gateway.
        """
        r = get_region(region, self.regions())
        ws_id = self.config.workspace(workspace).id if workspace else None
        return r.base_url(api, ws_id)

    def profiles(self) -> dict:
        """Profiles of the demo workspaces (``source="emulator"``), keyed by name."""
        return profiles_for(self.config, self.url)

    def key(self, workspace: str | None = None) -> str:
        """The first demo key of a workspace (by name or id; default: the "default" workspace or the first one)."""
        if workspace is None:
            names = [ws.name for ws in self.config.workspaces]
            workspace = "default" if "default" in names else next(
                (ws.name for ws in self.config.workspaces if ws.default), names[0])
        return self.config.workspace(workspace).keys[0]

    # -- runtime changes ---------------------------------------------------------
    def set_faults(self, **changes: Any) -> Pacing:
        """Change pacing and faults now.

        Fields: ``ttft``, ``tokens_per_second``, ``latency``, ``rate_limit``, ``rate_window``,
        ``fail_next`` (next N requests answer 500), ``fail_status``, ``fail_rate`` (that fraction
        of model requests answers ``fail_status``), ``throttle_rate`` (that fraction answers 429),
        ``retry_after`` (seconds sent as ``Retry-After`` on 429s; None, the default, sends none, as
        the service does), ``cut_after`` (drop streams after N events), ``cut_streams`` (how many
        streams to cut), ``reply_tokens`` (text answers at least N tokens long, still
        deterministic and capped by ``max_tokens``), ``batch_speed`` (the Batch API's clock: emulated
        seconds per real second, default 3600), ``batch_hours`` (emulated hours a batch job runs,
        default 1; past its completion window it expires) and ``batch_fail_rate`` (that fraction of a
        job's lines fail into its error file). Random faults repeat run to run.
        """
        return self.state.set_faults(**changes)

    def set_workspace(self, workspace: str, **flags: Any) -> Flags:
        """Change how the service treats a workspace's calls (by name or id), until ``reset()``.

        Each flag answers like the service with one row of ``qwen_nb.facts.ERRORS``:
        ``free_tier_only`` (True, or a list of models: 403 AllocationQuota.FreeTierOnly),
        ``overdue`` (400 Arrearage), ``bill_overdue`` ("prepaid" / "postpaid": 429 Prepaid- /
        PostpaidBillOverdue), ``unpurchased`` (models: 403 AccessDenied.Unpurchased),
        ``budget_exhausted`` (429 Budget Management), ``subscribed=False`` (429
        CommodityNotPurchased), ``blocked_words_input`` (400 DataInspectionFailed before the answer),
        ``blocked_words_output`` (a word in the answer or the prompt: streams fail midway with
        DataInspectionFailed, other calls get the 400), ``tokens_per_minute`` (429
        Throttling.AllocationQuota once a model's tokens of the last minute pass it), ``burst_limit``
        (429 Throttling.BurstRate past N requests of a model within 1 s), ``rate_limit`` (429
        Throttling.RateQuota past N requests of a model per ``rate_window``), and ``fail_with`` (any row
        key, e.g. "unavailable") with ``fail_models``, ``fail_times`` and ``error_after`` (inside streams,
        after that many events). Returns the workspace's flags now.
        """
        return self.state.set_flags(self.config.workspace(workspace), **flags)

    def set_key(self, key: str, **flags: Any) -> Flags:
        """The same flags as ``set_workspace`` for one key only (they win over its workspace's), until
        ``reset()``; returns that key's flags now."""
        ws = self.state.workspace_for_key(key)
        if ws is None:
            raise InputError("That is not a key of one of this emulator's workspaces.",
                             fix="Use emu.key(\"<workspace>\") (or a key listed in the emulator's config).")
        return self.state.set_key_flags(ws, key, **flags)

    def flags(self, workspace: str, key: str | None = None) -> Flags:
        """How the service treats a workspace's calls now (with ``key``: that key's)."""
        return self.state.flags(self.config.workspace(workspace), key)

    def reset(self) -> None:
        """Pacing, faults and workspace flags back to the configured defaults, counters and grants restored,
        log cleared."""
        self.state.reset()

    def reset_workspace(self, workspace: str) -> None:
        """One workspace (by name or id) back to its configured grants and flags, its usage and spend zeroed."""
        self.state.reset_workspace(self.config.workspace(workspace))

    def usage(self, workspace: str | None = None) -> dict[str, dict[str, Any]]:
        """Per workspace (by name; ``workspace``: only that one): ``calls``, ``errors``, ``input_tokens``,
        ``output_tokens``, estimated ``cost``, ``budget``, ``by_status`` and ``granted_now``, since the last reset."""
        return self.state.usage(self.config.workspace(workspace).id if workspace else None)

    def grant(self, workspace: str, models: list[str] | tuple[str, ...] | None) -> None:
        """Set a workspace's granted models (None: all) until ``reset()``."""
        self.state.set_grants(self.config.workspace(workspace), None if models is None else tuple(models))

    def grants(self, workspace: str) -> tuple[str, ...] | None:
        """A workspace's granted models now (None: all)."""
        return self.state.grants(self.config.workspace(workspace))

    def stats(self) -> dict[str, Any]:
        """Punctuality since the last reset, in ms: lateness of paced streamed writes, and the worst
        stall of the emulator's event loop (``loop_lag_ms_max``, ``loop_stalls_over_100ms``)."""
        return self.state.stats()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Requests received since the last ``reset()`` (keys masked), oldest first.

        The newest 100,000 as compact summaries; the newest 1,000 (bodies up to 64 KB) also with
        their parsed ``body`` and masked ``headers``. ``counters()`` counts every request exactly.
        """
        return self.state.requests

    def counters(self) -> dict[str, Any]:
        """Exact request counts since the last ``reset()``: ``total``, ``chat`` (POSTs to a chat
        endpoint), ``unauthenticated``, ``body_bytes``, and ``by_endpoint`` / ``by_status`` /
        ``by_model`` / ``by_region``."""
        return self.state.counters()
