"""The call pipeline: every call goes attempt → translate → retry → record through one ``Tracker``, sync or async.

A ``Call`` is one logical call, checked and resolved (who, where, what). A ``Tracker`` holds
its bookkeeping and makes every decision: whether a failure is retried and after how long,
what error the user sees, and the one ledger row the call leaves (ok, error or
interrupted), whatever number of attempts it took. The sync and async drivers (``_run`` /
``_arun``) are the only loops for whole calls; streams (``qwen_nb._streams``) use the same tracker for their
open and read failures. The transport is injected: the pipeline asks ``backend_for(call)``
for a backend and never knows which SDK it drives.

Cancellation: a ``CancelToken`` stops a call at once: no attempt starts after it is set and
a retry wait ends early (Ctrl-C in ``chat_many``, Stop in the Playground).

Retries are reported to hooks (``Pipeline.on_retry``); by default one log warning each,
unless a ``retry_sink`` is active (``chat_many`` counts them and prints one summary line).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from qwen_nb._guidance import ErrorContext, ServiceFailure, guided_error, stream_cut_error
from qwen_nb._profiles import Profile
from qwen_nb._regions import Region
from qwen_nb.errors import (
    CancelledCallError,
    ModelNotGrantedError,
    NetworkError,
    QwenNbError,
    StreamInterruptedError,
)
from qwen_nb.normalize import Completion, StreamAccumulator, estimate_tokens
from qwen_nb.requests import ChatRequest
from qwen_nb.results import ChatResult, Usage
from qwen_nb.retry import RetryPolicy

if TYPE_CHECKING:
    from qwen_nb.backends import Backend
    from qwen_nb.ledger import Ledger

log = logging.getLogger("qwen_nb")
T = TypeVar("T")


class CancelToken:
    """Set once to give a call (or many) up: no new attempt starts, and a retry wait ends early."""

    __slots__ = ("_event", "reason")

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = "interrupted"

    def cancel(self, reason: str = "interrupted") -> None:
        """Give up: calls that see this token send nothing more."""
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once ``cancel()`` was called."""
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if cancelled meanwhile (returns at once then)."""
        return self._event.wait(max(seconds, 0.0))


@dataclass
class Call:
    """One logical call, checked and resolved: who, where, what, and how it may be stopped."""

    profile: Profile
    region: Region
    api: str
    req: ChatRequest
    base_url: str
    #: keep the SDK objects (every stream chunk) in ``ChatResult.raw``
    keep_raw: bool = False
    cancel: CancelToken | None = None
    #: a streamed answer the caller wants whole (``chat()`` on a stream-only model): a cut stream is retried
    whole: bool = False
    #: "chat", or a kind beyond chat ("embedding", "rerank", "image", "tts", "asr", "responses"); the ledger keeps it
    kind: str = "chat"


@dataclass
class RetryEvent:
    """What a retry hook is told: the call, the error that will be retried, the attempt and the wait."""

    call: Call
    error: QwenNbError
    attempt: int
    delay: float
    #: the most retries the policy allows
    max_retries: int = 0


#: what made the calls of this context ("probe" for probe()); their ledger rows' call ids start with it
#: (``probe-…``), so usage reports can count probe refusals apart from errors
call_origin: contextvars.ContextVar[str | None] = contextvars.ContextVar("qwen_nb_call_origin", default=None)

#: an active retry sink: retries are counted there instead of logged one by one
retry_sink: contextvars.ContextVar[Callable[[RetryEvent], None] | None] = contextvars.ContextVar(
    "qwen_nb_retry_sink", default=None)


def _log_retry(event: RetryEvent) -> None:
    sink = retry_sink.get()
    if sink is not None:
        sink(event)
        return
    call = event.call
    log.warning(
        "qwen-nb: %s calling %s (profile %s, %s); retry %d/%d in %.2f s",
        type(event.error).__name__, call.req.model, call.profile.name, call.region.id, event.attempt,
        event.max_retries, event.delay,
    )


def partial_usage(call: Call, acc: StreamAccumulator) -> Usage:
    """The usage of a stream that did not finish: the service's if it sent any, else an estimate."""
    if acc.usage is not None:
        return acc.usage
    prompt = " ".join(m["content"] if isinstance(m.get("content"), str) else "" for m in call.req.messages)
    out, think = estimate_tokens(acc.text), estimate_tokens(acc.reasoning)
    inp = estimate_tokens(prompt)
    return Usage(inp, out + think, think, inp + out + think)


@dataclass
class Pipeline:
    """The stages every call goes through; the session gives it its transport, ledger and context."""

    retry: RetryPolicy
    #: the backend (SDK clients) for a call
    backend_for: Callable[[Call], Backend]
    #: the ledger rows go to (opened lazily by the session)
    ledger: Callable[[], Ledger]
    #: who else could make the call, known models ...: the raw material of a fix
    context_for: Callable[[Call, int, ServiceFailure | None], ErrorContext]
    #: told of each final ModelNotGrantedError (the session remembers it for its views)
    on_not_granted: Callable[[Call], None] = lambda call: None
    #: told of each retry
    on_retry: list[Callable[[RetryEvent], None]] = field(default_factory=lambda: [_log_retry])

    def tracker(self, call: Call) -> Tracker:
        """The bookkeeping of one logical call."""
        return Tracker(self, call)

    # -------------------------------------------------------------- the two drivers
    def _run(self, call: Call, attempt: Callable[[Backend], T]) -> tuple[Tracker, T]:
        """Call ``attempt(backend)`` until it succeeds (returns the tracker and its value) or the tracker gives up."""
        tracker = self.tracker(call)
        while True:
            backend = tracker.begin()
            try:
                return tracker, attempt(backend)
            except Exception as exc:
                failed = exc
            # handled outside the ``except``: the error raised carries no SDK exception in its chain
            tracker.sleep(tracker.failure(failed))

    async def _arun(self, call: Call, attempt: Callable[[Backend], Awaitable[T]]) -> tuple[Tracker, T]:
        """``_run`` for asyncio: a cancelled task stops the call at once (recorded as interrupted)."""
        import asyncio

        tracker = self.tracker(call)
        try:
            while True:
                backend = tracker.begin()
                try:
                    return tracker, await attempt(backend)
                except Exception as exc:
                    failed = exc
                await tracker.asleep(tracker.failure(failed))
        except asyncio.CancelledError:  # in flight or waiting to retry: what was sent is recorded once
            if tracker.attempts:
                tracker.interrupted(None, "Cancelled")
            raise

    def complete(self, call: Call) -> ChatResult:
        """A whole-answer call."""
        tracker, comp = self._run(call, lambda backend: backend.complete(call.req))
        return tracker.ok(comp)

    async def acomplete(self, call: Call) -> ChatResult:
        """``complete`` for asyncio."""
        tracker, comp = await self._arun(call, lambda backend: backend.acomplete(call.req))
        return tracker.ok(comp)

    # -------------------------------------------------------------- stages
    def translate(self, exc: BaseException, call: Call, backend: Backend, attempts: int) -> QwenNbError | None:
        """The guided error for what ``backend``'s SDK raised, or None if it is not a service failure (a bug)."""
        if isinstance(exc, QwenNbError):
            return exc
        failure = backend.failure(exc)
        if failure is None:
            return None
        err = guided_error(failure, self.context_for(call, attempts, failure))
        strip_transport(exc)
        return detach(err)

    def retry_delay(self, err: QwenNbError, call: Call, attempts: int) -> float | None:
        """Seconds to wait before the next attempt, or None if ``err`` is final."""
        if not self.retry.should_retry(err, attempts):
            return None
        delay = self.retry.delay(attempts, getattr(err, "retry_after", None))
        event = RetryEvent(call, err, attempts, delay, self.retry.max_retries)
        for hook in list(self.on_retry):
            try:
                hook(event)
            except Exception:  # a hook must not change the call's outcome
                log.debug("qwen-nb: retry hook %r failed", hook, exc_info=True)
        return delay

    def result(self, call: Call, comp: Completion, latency: float, attempts: int,
               ttft: float | None = None, finish_reason: str | None = None) -> ChatResult:
        """The ``ChatResult`` of a finished (or partial) answer, with its estimated cost."""
        usage = comp.usage or Usage()
        cost, currency = _cost(call, usage)
        return ChatResult(
            text=comp.text,
            model=call.req.model,
            api=call.api,
            profile=call.profile.name,
            region=call.profile.region,
            reasoning=comp.reasoning,
            finish_reason=finish_reason or comp.finish_reason,
            usage=usage,
            request_id=comp.request_id,
            latency=latency,
            time_to_first_token=ttft,
            tool_calls=comp.tool_calls,
            cost=cost,
            currency=currency,
            workspace=call.profile.workspace,
            attempts=attempts,
            raw=comp.raw,  # a whole answer's SDK object; a stream's chunks only with keep_raw=True
            emulator=call.profile.source == "emulator",
        )

    def record(self, call: Call, *, status: str, attempts: int, latency: float, usage: Usage | None = None,
               request_id: str | None = None, error_code: str | None = None, cost: float | None = None,
               currency: str | None = None) -> None:
        """One ledger row per logical call, built and stored off the call's path; a ledger failure is logged."""
        try:
            now, call_id = time.time(), _call_id()  # here: the call's end, and its caller's context

            def make() -> Any:
                u = usage or Usage()
                price, unit = cost, currency
                if price is None and unit is None and (u.input_tokens or u.output_tokens):
                    price, unit = _cost(call, u)
                return _call_record()(
                    time=now, profile=call.profile.name, workspace=call.profile.workspace,
                    region=call.profile.region, api=call.api, model=call.req.model, input_tokens=u.input_tokens,
                    output_tokens=u.output_tokens, reasoning_tokens=u.reasoning_tokens, latency=latency,
                    request_id=request_id, status=status, error_code=error_code, attempts=attempts, cost=price,
                    currency=unit, kind=call.kind, cached_tokens=u.cached_tokens,
                    cache_creation_tokens=u.cache_creation_tokens, call_id=call_id,
                )

            self.ledger().record_later(make, budget=call.profile.budget)
        except Exception as exc:
            log.warning("qwen-nb: the call could not be recorded in the usage ledger (%s: %s)",
                        type(exc).__name__, exc)


class Tracker:
    """One logical call's attempts, timing and single ledger row; every decision on a failure is made here."""

    __slots__ = ("pipeline", "call", "attempts", "t0", "recorded", "_backend")

    def __init__(self, pipeline: Pipeline, call: Call) -> None:
        self.pipeline = pipeline
        self.call = call
        self.attempts = 0
        self.t0 = time.perf_counter()
        self.recorded = False
        self._backend: Backend | None = None

    @property
    def backend(self) -> Backend:
        """The backend of the current attempt."""
        if self._backend is None:
            self._backend = self.pipeline.backend_for(self.call)
        return self._backend

    @property
    def elapsed(self) -> float:
        """Seconds since the call started."""
        return time.perf_counter() - self.t0

    def begin(self) -> Backend:
        """Start an attempt (refused once the call was cancelled); returns the backend to use."""
        self.check_cancelled()
        self.attempts += 1
        return self.backend

    def check_cancelled(self) -> None:
        """Raise ``CancelledCallError`` (recorded once if an attempt was sent) if the call was cancelled."""
        token = self.call.cancel
        if token is not None and token.cancelled:
            if self.attempts:
                self.interrupted(None, "Cancelled")
            raise CancelledCallError(f"The call to {self.call.req.model!r} was {token.reason}; nothing more is sent.",
                                     model=self.call.req.model, profile=self.call.profile.name,
                                     region=self.call.profile.region, api=self.call.api)

    def sleep(self, delay: float) -> None:
        """Wait before the next attempt; a cancel ends the wait (and the call) at once."""
        token = self.call.cancel
        if token is None:
            time.sleep(delay)
        elif token.wait(delay):
            self.check_cancelled()

    async def asleep(self, delay: float) -> None:
        """``sleep`` for asyncio."""
        import asyncio

        await asyncio.sleep(delay)
        self.check_cancelled()

    # -------------------------------------------------------------- decisions
    def failure(self, exc: Exception, *, received: bool = False, acc: StreamAccumulator | None = None) -> float:
        """A failed attempt: the delay before the next one, or raise what the user sees (recorded once).

        ``received``: part of a streamed answer had arrived. Then the call is not retried, except
        when the caller wants the answer whole (``Call.whole``); a broken connection becomes
        ``StreamInterruptedError`` with the partial text.
        """
        call = self.call
        original = exc
        if isinstance(exc, StreamCut):
            exc = NetworkError(str(exc))
        err = self.pipeline.translate(exc, call, self.backend, max(self.attempts, 1))
        if err is None:
            raise original
        if not received or call.whole:
            delay = self.pipeline.retry_delay(err, call, self.attempts)
            if delay is not None:
                return delay
        if received and isinstance(err, NetworkError) and acc is not None:
            cut = self.cut_error(exc, acc)
            self.interrupted(acc, "StreamInterrupted")
            raise detach(cut) from None
        self.error(err)
        raise detach(err) from None

    def cut_error(self, exc: BaseException, acc: StreamAccumulator) -> StreamInterruptedError:
        """The error for a stream that broke off after some text arrived (``exc``: what the transport raised)."""
        if isinstance(exc, QwenNbError):
            detail = exc.message
        else:
            failure = self.backend.failure(exc)
            detail = failure.message if failure is not None and failure.message else f"{type(exc).__name__}: {exc}"
        ctx = self.pipeline.context_for(self.call, max(self.attempts, 1), None)
        return stream_cut_error(detail, ctx, partial=acc.text, partial_reasoning=acc.reasoning,
                                request_id=acc.request_id)

    # -------------------------------------------------------------- the one ledger row
    def ok(self, comp: Completion, ttft: float | None = None) -> ChatResult:
        """The result of a successful call, recorded."""
        result = self.pipeline.result(self.call, comp, self.elapsed, self.attempts, ttft=ttft)
        if not self.recorded:
            self.recorded = True
            self.pipeline.record(self.call, status="ok", attempts=result.attempts, latency=result.latency,
                                 usage=result.usage, request_id=result.request_id, cost=result.cost,
                                 currency=result.currency)
        return result

    def done(self, usage: Usage, request_id: str | None = None, cost: float | None = None,
             currency: str | None = None) -> None:
        """Record a successful call beyond chat (its result type is the caller's); once."""
        if not self.recorded:
            self.recorded = True
            self.pipeline.record(self.call, status="ok", attempts=self.attempts, latency=self.elapsed, usage=usage,
                                 request_id=request_id, cost=cost, currency=currency)

    def error(self, err: QwenNbError) -> None:
        """Record a call that ended in ``err``."""
        if isinstance(err, ModelNotGrantedError):
            self.pipeline.on_not_granted(self.call)
        if self.recorded:
            return
        self.recorded = True
        self.pipeline.record(self.call, status="error", attempts=max(self.attempts, 1), latency=self.elapsed,
                             request_id=err.request_id, error_code=err.code or type(err).__name__)

    def interrupted(self, acc: StreamAccumulator | None, code: str) -> None:
        """Record a call stopped before its end (cut, closed, cancelled) with the usage received so far."""
        if self.recorded:
            return
        self.recorded = True
        acc = acc if acc is not None else StreamAccumulator(keep_chunks=False)
        self.pipeline.record(self.call, status="interrupted", attempts=max(self.attempts, 1), latency=self.elapsed,
                             usage=partial_usage(self.call, acc), request_id=acc.request_id, error_code=code)

    def partial_result(self, acc: StreamAccumulator, ttft: float | None) -> ChatResult:
        """What a stopped stream amounts to, ``finish_reason="cancelled"``."""
        comp = acc.completion()
        comp.usage = partial_usage(self.call, acc)
        return self.pipeline.result(self.call, comp, self.elapsed, max(self.attempts, 1), ttft=ttft,
                                    finish_reason="cancelled")


def detach(err: QwenNbError) -> QwenNbError:
    """``err`` without a cause or context: what the user sees keeps status, code, request id and a scrubbed body.

    (An SDK exception in the chain would keep the request, and with it the ``Authorization``
    header.) Raised outside an ``except`` block, the error then has no chain at all.
    """
    err.__cause__ = None
    err.__context__ = None
    err.__suppress_context__ = True
    return err


def strip_transport(exc: BaseException) -> None:
    """Drop the HTTP request and response (their headers hold the key) and the tracebacks from an SDK exception
    and its chain, once it has been read into a ``ServiceFailure``: an error raised while it is handled keeps
    it as context, and nothing in that context may hold the key."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen or isinstance(e, QwenNbError):
            continue
        seen.add(id(e))
        try:
            for name, value in list(vars(e).items()):
                module = type(value).__module__.split(".")[0]
                if module in ("httpx", "httpx2", "requests", "aiohttp", "urllib3") or hasattr(value, "headers"):
                    setattr(e, name, None)
        except TypeError:  # no __dict__
            pass
        e.__traceback__ = None
        todo += [e.__cause__, e.__context__]


class StreamCut(Exception):
    """A stream that ended without finishing."""


_ESTIMATE: Any = None
_CALL_RECORD: Any = None
_NEW_ID: Any = None


def _cost(call: Call, usage: Usage) -> tuple[float | None, str | None]:
    global _ESTIMATE
    if _ESTIMATE is None:
        from qwen_nb.prices import estimate

        _ESTIMATE = estimate
    try:
        return _ESTIMATE(call.req.model, call.profile.region, usage.input_tokens, usage.output_tokens,
                         usage.reasoning_tokens, usage.cached_tokens, usage.cache_creation_tokens, usage.cache_type)
    except Exception as exc:  # a price problem must not lose the answer
        log.debug("qwen-nb: no cost estimate: %s", exc)
        return None, None


def _call_id() -> str:
    """A new call id; inside a ``call_origin`` context it starts with the origin (``probe-<hex>``)."""
    global _NEW_ID
    if _NEW_ID is None:
        from qwen_nb.ledger import new_call_id

        _NEW_ID = new_call_id
    origin = call_origin.get()
    return f"{origin}-{_NEW_ID()}" if origin else _NEW_ID()


def _call_record() -> Any:
    global _CALL_RECORD
    if _CALL_RECORD is None:
        from qwen_nb.ledger import CallRecord

        _CALL_RECORD = CallRecord
    return _CALL_RECORD


def base_url_for(profile: Profile, region: Region, api: str) -> str:
    """Where a profile's calls on ``api`` go: its own base URL, else its region's (workspace) host."""
    if profile.base_url:
        from qwen_nb.facts import APIS

        return profile.base_url + APIS[api].path
    return region.base_url(api, profile.workspace)


__all__ = ["Call", "CancelToken", "Pipeline", "RetryEvent", "StreamCut", "Tracker", "base_url_for", "detach",
           "partial_usage", "retry_sink", "strip_transport"]

