"""The two ways to reach Model Studio, behind one small protocol.

``openai_compat`` drives the ``openai`` SDK against ``/compatible-mode/v1``;
``dashscope_native`` drives the ``dashscope`` 2.x SDK against ``/api/v1``.
Each backend owns the SDK clients of one (profile, api) pair, configured per
client (never through SDK globals), with the SDK's own retries off: the session
retries. The SDKs are imported only when a backend is created, through
``load_sdk`` (one lock, ``httpx`` first), so a first import in one thread never
races a call in another.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from qwen_nb._guidance import ServiceFailure
    from qwen_nb._profiles import Profile
    from qwen_nb.normalize import Completion
    from qwen_nb.requests import ChatRequest

#: seconds before a call is given up (thinking answers can take minutes)
DEFAULT_TIMEOUT = 300.0


class OpenStream(Protocol):
    """An open HTTP stream: iterate for SDK chunks; ``close()`` drops the connection."""

    def __iter__(self) -> Iterator[Any]: ...

    def close(self) -> None: ...


class AsyncOpenStream(Protocol):
    """The asyncio twin of ``OpenStream``."""

    def __aiter__(self) -> AsyncIterator[Any]: ...

    async def aclose(self) -> None: ...


class Backend(Protocol):
    """One (profile, api) pair: its SDK clients and the calls qwen-nb makes through them."""

    api: str
    profile: Profile
    base_url: str

    def complete(self, req: ChatRequest) -> Completion:
        """One non-streaming call."""

    def stream(self, req: ChatRequest) -> OpenStream:
        """Open a streaming call (errors before the first byte raise here)."""

    async def acomplete(self, req: ChatRequest) -> Completion:
        """``complete`` on asyncio."""

    async def astream(self, req: ChatRequest) -> AsyncOpenStream:
        """``stream`` on asyncio."""

    def list_models(self) -> list[str]:
        """Model ids the service lists for this key."""

    def failure(self, exc: BaseException) -> ServiceFailure | None:
        """Describe an exception raised by this backend's SDK, or None if it is not one."""

    def close(self) -> None:
        """Release the SDK clients."""

    async def aclose(self) -> None:
        """Release the SDK clients, closing the running event loop's async client before returning."""


async def _aclose(client: Any) -> None:
    close = getattr(client, "aclose", None) or client.close  # dashscope: aclose(); openai: close()
    try:
        await close()
    except Exception:  # closing is best effort
        pass


async def _closer(client: Any) -> Any:
    """An async generator the event loop finalises when it shuts down: it closes ``client`` then."""
    try:
        yield
    finally:
        await _aclose(client)


class LoopClients:
    """Async SDK clients, one per event loop, each closed with its loop.

    An async client belongs to the loop it was made on. Each one is paired with an async
    generator started on that loop; ``asyncio.run()`` (and any loop shut down with
    ``shutdown_asyncgens()``) closes those, and so the client, before the loop closes: no
    unclosed transport is left behind, and a later loop gets a client of its own.
    ``close()`` closes the clients of loops still alive.
    """

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._lock = threading.Lock()
        #: event loop -> (client, the async generator that closes it with the loop)
        self._by_loop: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = weakref.WeakKeyDictionary()

    def get(self) -> Any:
        """The client of the running loop (made on first use)."""
        import asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._by_loop.get(loop)
            if entry is None:
                client = self._make()
                guard = _closer(client)
                self._by_loop[loop] = entry = (client, guard)
                guard_task = loop.create_task(guard.__anext__())  # runs it to its yield: the loop now owns it
                guard_task.add_done_callback(lambda t: t.cancelled() or t.exception())
            return entry[0]

    def close(self) -> None:
        """Close every client whose loop can still run its close."""
        import asyncio

        with self._lock:
            entries = list(self._by_loop.items())
            self._by_loop.clear()
        for loop, (_client, guard) in entries:
            if loop.is_closed():
                continue
            running: Any
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            try:
                if loop is running:
                    loop.create_task(guard.aclose())
                elif loop.is_running():
                    asyncio.run_coroutine_threadsafe(guard.aclose(), loop)
                else:
                    loop.run_until_complete(guard.aclose())
            except Exception:  # closing is best effort
                pass

    async def aclose(self) -> None:
        """Close the running loop's client now (and schedule the others' close)."""
        import asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._by_loop.pop(loop, None)
        if entry is not None:
            await entry[1].aclose()
        self.close()


def transport_failure(exc: BaseException) -> ServiceFailure | None:
    """A ``ServiceFailure`` for a raw httpx / httpx2 transport error (raised mid-stream), else None."""
    from qwen_nb._guidance import ServiceFailure

    for cls in type(exc).__mro__:
        if cls.__module__.split(".")[0] in ("httpx", "httpx2") and cls.__name__ in (
            "RequestError", "TransportError", "StreamError", "TimeoutException"
        ):
            kind = "timeout" if "Timeout" in type(exc).__name__ else "network"
            return ServiceFailure(kind, message=f"{type(exc).__name__}: {exc}")
    return None


#: api -> the backend module that imports its SDK
_BACKEND_MODULES = {"openai": "qwen_nb.backends.openai_compat", "dashscope": "qwen_nb.backends.dashscope_native"}
_sdk_lock = threading.Lock()
_loaded: dict[str, ModuleType] = {}


def load_sdk(api: str) -> ModuleType:
    """Import the SDK of ``api`` (and qwen-nb's backend module for it) once; returns that backend module.

    Every first SDK import goes through one lock, and ``httpx`` is imported completely before
    either SDK: the ``openai`` SDK looks ``httpx`` up in ``sys.modules`` during each call, so a
    first ``import dashscope`` (which imports ``httpx``) in one thread while an ``openai`` call runs
    in another would let that call see a half-initialised module. Cheap after the first time.
    """
    module = _loaded.get(api)
    if module is not None:
        return module
    if api not in _BACKEND_MODULES:
        from qwen_nb.errors import InputError

        raise InputError(f"Unknown api {api!r}.", fix='Use api="openai" or api="dashscope".')
    with _sdk_lock:
        module = _loaded.get(api)
        if module is None:
            import importlib

            try:
                import httpx  # noqa: F401
            except ImportError:  # pragma: no cover - httpx is a dependency of both SDKs today
                pass
            module = importlib.import_module(_BACKEND_MODULES[api])
            _loaded[api] = module
    return module


def create_backend(api: str, profile: Profile, base_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> Backend:
    """The backend for ``api`` (``"openai"`` or ``"dashscope"``)."""
    module = load_sdk(api)
    if api == "openai":
        return module.OpenAICompatBackend(profile, base_url, timeout=timeout)
    return module.DashScopeNativeBackend(profile, base_url, timeout=timeout)
