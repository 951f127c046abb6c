"""Streams: ``ChatStream`` and ``AsyncChatStream``, driven by the pipeline's tracker for every failure and ledger row.

A stream opens at once (errors before the first byte raise there, retried like any call),
then yields ``ChatDelta`` pieces. A failure before any text arrived is retried from
scratch; after, a broken connection raises ``StreamInterruptedError`` with the partial text
(unless the caller wants the answer whole: ``chat()`` on a stream-only model retries it).
``close()`` cancels: the HTTP response is closed at once and the call is recorded as
interrupted with the usage received so far. Only the assembled answer is kept, not the
SDK's chunks, unless the call asked for ``keep_raw=True``.
"""

from __future__ import annotations

import html
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from qwen_nb._pipeline import Call, Pipeline, StreamCut, Tracker
from qwen_nb.errors import InputError, QwenNbError
from qwen_nb.normalize import StreamAccumulator
from qwen_nb.results import ChatDelta, ChatResult

if TYPE_CHECKING:
    from qwen_nb.backends import Backend


def _header_request_id(raw: Any) -> str | None:
    """``x-request-id`` of an open stream's HTTP response (openai and dashscope stream objects)."""
    inner = getattr(raw, "_stream", raw)  # the async openai wrapper
    response = getattr(inner, "response", None)
    headers = getattr(response, "headers", None) if response is not None else getattr(inner, "headers", None)
    try:
        return headers.get("x-request-id") if headers is not None else None
    except Exception:  # pragma: no cover - an SDK without headers on its stream
        return None


class _StreamBase:
    """What the sync and async streams share: the accumulator, timing, state and the tracker."""

    def __init__(self, pipeline: Pipeline, call: Call) -> None:
        self._pipeline = pipeline
        self._call = call
        self._tracker: Tracker = pipeline.tracker(call)
        self._acc = StreamAccumulator(keep_chunks=call.keep_raw)
        self._ttft: float | None = None
        self._yielded = 0
        self._closed = False
        self._done = False
        self._error: QwenNbError | None = None
        self._result: ChatResult | None = None
        self._lock = threading.Lock()
        self._raw: Any = None

    @property
    def text(self) -> str:
        """The answer text received so far."""
        return self._acc.text

    @property
    def reasoning(self) -> str:
        """The thinking text received so far."""
        return self._acc.reasoning

    @property
    def _received(self) -> bool:
        return bool(self._yielded or self._acc.text or self._acc.reasoning)

    def _seen(self, delta: ChatDelta) -> None:
        if self._ttft is None and (delta.content or delta.reasoning):
            self._ttft = self._tracker.elapsed
        self._yielded += 1

    def _finish_ok(self) -> None:
        self._result = self._tracker.ok(self._acc.completion(), ttft=self._ttft)
        self._done = True

    def _read_failure(self, exc: Exception) -> float:
        """A failure reading the stream: the delay before a fresh attempt, or raise what the user sees."""
        try:
            delay = self._tracker.failure(exc, received=self._received, acc=self._acc)
        except QwenNbError as err:
            self._error = err
            raise
        self._acc = StreamAccumulator(keep_chunks=self._call.keep_raw)
        self._yielded = 0
        self._ttft = None
        return delay

    def _open_failure(self, exc: Exception) -> float:
        try:
            return self._tracker.failure(exc)
        except QwenNbError as err:
            self._error = err
            raise

    def _partial_result(self) -> ChatResult:
        return self._tracker.partial_result(self._acc, self._ttft)

    def _state(self) -> str:
        return "done" if self._done else "cancelled" if self._closed else "streaming"

    def _repr_markdown_(self) -> str:
        return f"{self._acc.text}\n\n<small>{html.escape(self._call.req.model)} · {self._state()}</small>"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._call.req.model} {self._state()}: {len(self._acc.text)} chars>"


class ChatStream(_StreamBase):
    """A streaming answer: iterate for ``ChatDelta``; ``.result`` when done; ``.close()`` to cancel."""

    def __init__(self, pipeline: Pipeline, call: Call) -> None:
        super().__init__(pipeline, call)
        self._open()
        self._gen = self._generate()

    def _open(self) -> None:
        while True:
            backend: Backend = self._tracker.begin()
            try:
                self._raw = backend.stream(self._call.req)
                self._acc.request_id = _header_request_id(self._raw)
                return
            except Exception as exc:
                self._tracker.sleep(self._open_failure(exc))

    def _generate(self) -> Iterator[ChatDelta]:
        while True:
            try:
                feed = self._acc.feed
                for chunk in self._raw:
                    if self._closed:  # close() was called: chunks the SDK had already read are dropped
                        return
                    delta = feed(chunk)
                    if delta is not None:
                        self._seen(delta)
                        yield delta
                if not self._acc.finished and not self._closed:
                    raise StreamCut("the stream ended without a finish reason")
                break
            except GeneratorExit:
                raise
            except Exception as exc:
                if self._closed:
                    return
                self._close_raw()
                self._tracker.sleep(self._read_failure(exc))
                self._open()
        if not self._closed:
            self._finish_ok()

    def __iter__(self) -> Iterator[ChatDelta]:
        return self._gen  # a for loop runs the generator itself: one call less per piece

    def __next__(self) -> ChatDelta:
        return next(self._gen)

    def _close_raw(self) -> None:
        try:
            if self._raw is not None:
                self._raw.close()
        except Exception:  # closing is best effort
            pass

    def close(self) -> None:
        """Cancel: close the HTTP response at once; the call is recorded as interrupted."""
        with self._lock:
            if self._closed or self._done:
                return
            self._closed = True
        self._close_raw()
        if self._error is None:
            self._tracker.interrupted(self._acc, "Cancelled")

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def result(self) -> ChatResult:
        """The whole answer (reads the rest of the stream first if needed).

        After ``close()`` it is the partial answer, with ``finish_reason="cancelled"``.
        """
        if self._result is not None:
            return self._result
        if self._error is not None:
            raise self._error
        if self._closed:
            return self._partial_result()
        for _ in self:
            pass
        if self._result is None:  # closed from another thread meanwhile
            return self._partial_result()
        return self._result


class AsyncChatStream(_StreamBase):
    """A streaming answer on asyncio: ``async for delta in stream``; ``.result`` when done."""

    def __init__(self, pipeline: Pipeline, call: Call) -> None:
        super().__init__(pipeline, call)
        self._agen: Any = None

    async def _open(self) -> None:
        import asyncio

        while True:
            backend: Backend = self._tracker.begin()
            try:
                self._raw = await backend.astream(self._call.req)
                self._acc.request_id = _header_request_id(self._raw)
                return
            except asyncio.CancelledError:
                self._tracker.interrupted(self._acc, "Cancelled")
                raise
            except Exception as exc:
                delay = self._open_failure(exc)
                try:
                    await self._tracker.asleep(delay)
                except asyncio.CancelledError:
                    self._tracker.interrupted(self._acc, "Cancelled")
                    raise

    async def _generate(self) -> AsyncIterator[ChatDelta]:
        import asyncio

        if self._raw is None:
            await self._open()
        while True:
            try:
                feed = self._acc.feed
                async for chunk in self._raw:
                    if self._closed:
                        return
                    delta = feed(chunk)
                    if delta is not None:
                        self._seen(delta)
                        yield delta
                if not self._acc.finished and not self._closed:
                    raise StreamCut("the stream ended without a finish reason")
                break
            except GeneratorExit:
                raise
            except asyncio.CancelledError:
                await self.aclose()
                raise
            except Exception as exc:
                if self._closed:
                    return
                await self._aclose_raw()
                try:
                    await self._tracker.asleep(self._read_failure(exc))
                except asyncio.CancelledError:
                    self._tracker.interrupted(self._acc, "Cancelled")
                    raise
                await self._open()
        if not self._closed:
            self._finish_ok()

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def __anext__(self) -> ChatDelta:
        if self._agen is None:
            self._agen = self._generate()
        return await self._agen.__anext__()

    def __await__(self) -> Any:
        async def opened() -> AsyncChatStream:
            if self._raw is None:
                await self._open()
            return self

        return opened().__await__()

    async def _aclose_raw(self) -> None:
        if self._raw is not None:
            try:
                await self._raw.aclose()
            except Exception:  # closing is best effort
                pass

    async def aclose(self) -> None:
        """Cancel: close the HTTP response; the call is recorded as interrupted."""
        with self._lock:
            if self._closed or self._done:
                return
            self._closed = True
        await self._aclose_raw()
        if self._error is None and self._raw is not None:
            self._tracker.interrupted(self._acc, "Cancelled")

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aresult(self) -> ChatResult:
        """The whole answer, reading the rest of the stream first."""
        if self._result is None and self._error is None and not self._closed:
            async for _ in self:
                pass
        return self.result

    @property
    def result(self) -> ChatResult:
        """The whole answer once the stream was read to its end (``await stream.aresult()`` reads it)."""
        if self._result is not None:
            return self._result
        if self._error is not None:
            raise self._error
        if self._closed:
            return self._partial_result()
        raise InputError("The stream has not been read to its end yet.",
                         fix="Iterate it (async for ...) or use `await stream.aresult()`.")


__all__ = ["AsyncChatStream", "ChatStream"]

