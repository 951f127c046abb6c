"""``ThreadedServer``: an ASGI app served by uvicorn in a daemon thread, on a socket bound here (emulator, proxy)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from qwen_nb.errors import InputError


def check_port(port: Any, what: str, fix: str) -> int:
    """``port`` if it is a whole number from 0 to 65535 (0: a free one); else an ``InputError`` naming ``what``."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InputError(f"{what} port must be a whole number from 0 to 65535 (0: any free port), got {port!r}.",
                         fix=fix)
    return port


class ThreadedServer:
    """One uvicorn server in a background thread.

    ``bind()`` takes the port at once (so the URL is known and a busy port is a clear error),
    ``serve(app, ...)`` runs uvicorn on that socket and returns once it accepts connections,
    ``stop()`` ends it and releases the port.
    """

    def __init__(self, kind: str, host: str, port: int) -> None:
        self.kind = kind
        self.host = host
        self.port = port
        self.bound: int | None = None
        self._sock: socket.socket | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def running(self) -> bool:
        """True while the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    def bind(self, backlog: int = 128) -> int:
        """Bind and listen on ``host:port``; returns the port (the free one chosen for port 0)."""
        # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (else Nagle + delayed
        # ACKs add ~40 ms to every request)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise InputError(f"The {self.kind} cannot listen on {self.host}:{self.port}: {exc.strerror}.",
                             fix="Pick another port, or port=0 for a free one.") from None
        sock.listen(backlog)
        sock.setblocking(False)
        self._sock = sock
        self.bound = int(sock.getsockname()[1])
        return self.bound

    def serve(self, app: Any, timeout: float = 10.0, **config: Any) -> None:
        """Serve ``app`` on the bound socket (``config``: more ``uvicorn.Config`` options) until ``stop()``."""
        import uvicorn

        sock = self._sock
        if sock is None:
            raise RuntimeError(f"The {self.kind} is not bound; call bind() first.")
        options: dict[str, Any] = dict(log_level="warning", access_log=False, loop="asyncio", ws="none",
                                       timeout_graceful_shutdown=1, timeout_keep_alive=30)
        self._server = server = uvicorn.Server(uvicorn.Config(app, **{**options, **config}))
        self._error = None

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # pragma: no cover - reported below
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"qwen-nb-{self.kind.replace(' ', '-')}-{self.bound}",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"The {self.kind} failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"The {self.kind} did not start in time.")
            time.sleep(0.002)

    def stop(self, timeout: float = 5.0, *, force: bool = False) -> None:
        """Stop serving and release the port (``force``: close open connections, such as streams, at once)."""
        if self._server is not None:
            self._server.should_exit = True
            if force:
                self._server.force_exit = True
            if self._thread is not None:
                self._thread.join(timeout)
        self._thread = None
        self._server = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def serve_until_interrupted(server: Any) -> int:
    """Keep a started ``server`` (anything with ``running`` and ``stop()``) serving until Ctrl-C, then stop it."""
    try:
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
