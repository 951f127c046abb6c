"""``chat_many``: many calls at bounded concurrency on a private event loop, stopped at once by Ctrl-C.

The calls run as asyncio tasks on the async SDK clients of an event loop in a worker
thread, so an interrupt can abandon them for real: the tasks are cancelled (their HTTP
connections closed), no attempt starts after the interrupt, retry waits end, and the
answered items are kept. Retries are counted (on the progress bar) instead of logged one
by one, and summed up in one line at the end.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from qwen_nb._limits import RateLimiter
from qwen_nb._pipeline import CancelToken, RetryEvent, retry_sink
from qwen_nb.errors import CancelledCallError, InputError, QwenNbError
from qwen_nb.results import ChatResult

if TYPE_CHECKING:
    from qwen_nb.session import Session

log = logging.getLogger("qwen_nb")

Item = ChatResult | QwenNbError


class LoopRunner:
    """An event loop in a worker thread, kept for a session's ``chat_many`` runs.

    Its async clients (and their connection pools) live as long as the loop, so a second
    ``chat_many`` reuses them; ``close()`` shuts the loop down, closing those clients.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="qwen-nb-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Any) -> Any:
        """Run ``coro`` on the loop; returns a ``concurrent.futures.Future``."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        """Close the loop's async generators (and so its clients), then stop the loop and its thread."""
        if self.loop.is_closed():
            return
        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self.loop.shutdown_asyncgens(), self.loop).result(10)
            except Exception:  # closing is best effort
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


class ChatManyInterrupted(KeyboardInterrupt):
    """``chat_many`` was interrupted: ``results`` holds the answered items, ``CancelledCallError`` for the rest."""

    def __init__(self, results: list[Item], checkpoint: str | None = None) -> None:
        self.results = results
        self.answered = sum(1 for r in results if isinstance(r, ChatResult))
        again = (f" Run it again with checkpoint={checkpoint!r}: the answered prompts are not sent again."
                 if checkpoint else "")
        super().__init__(
            f"chat_many was interrupted: {self.answered} of {len(results)} prompts were answered (kept in "
            f".results, and recorded in the usage ledger); nothing more was sent.{again}")


def _check(prompts: Any, concurrency: Any, kw: Mapping[str, Any], checkpoint: Any) -> list[Any]:
    if isinstance(prompts, (str, Mapping)) or not isinstance(prompts, Sequence):
        raise InputError("chat_many needs a list of prompts (strings or message lists).",
                         fix='chat_many(["first prompt", "second prompt"], concurrency=8).')
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InputError(f"concurrency must be a positive integer, got {concurrency!r}.")
    if "cancel" in kw:
        raise InputError("chat_many makes its own cancel token (Ctrl-C stops the run).",
                         fix="Leave cancel= out of chat_many(...).")
    if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint.strip()):
        raise InputError(f"checkpoint must be a name (a non-empty string), got {checkpoint!r}.",
                         fix='E.g. chat_many(prompts, checkpoint="grading-week-3").')
    return list(prompts)


def _keys(session: Session, items: list[Any], kw: Mapping[str, Any]) -> list[str]:
    """One key per item for a checkpoint: the item and everything that shapes its answer (the n-th repeat of the
    same item has its own key, so duplicates are each answered once)."""
    where = {
        "model": kw.get("model") or session.default_model,
        "api": kw.get("api") or session.default_api,
        "profile": session.get_profile(kw.get("profile")).name,
        "params": {k: v for k, v in kw.items() if k not in ("model", "api", "profile")},
    }
    seen: Counter[str] = Counter()
    keys = []
    for item in items:
        body = json.dumps([item, where], sort_keys=True, ensure_ascii=False, default=repr)
        seen[body] += 1
        keys.append(hashlib.sha256(f"{seen[body]}:{body}".encode()).hexdigest())
    return keys


class _Run:
    """One ``chat_many`` run: its items, limits, checkpoint and progress; ``main()`` runs on the session's loop."""

    def __init__(self, session: Session, prompts: Sequence[Any], *, concurrency: int, progress: bool,
                 rpm: Any, tpm: Any, checkpoint: str | None, kw: Mapping[str, Any]) -> None:
        self.items = _check(prompts, concurrency, kw, checkpoint)
        self.session, self.kw, self.concurrency = session, kw, concurrency
        self.limiter = RateLimiter(rpm, tpm)
        self.out: list[Item | None] = [None] * len(self.items)
        self.token = CancelToken()
        self.retries: Counter[str] = Counter()
        self.failed = 0
        self.lock = threading.Lock()
        self.checkpoint = checkpoint
        self.keys: list[str] = []
        done = 0
        if checkpoint is not None and self.items:
            self.keys = _keys(session, self.items, kw)
            stored = session.ledger.checkpoint(checkpoint)
            for i, key in enumerate(self.keys):
                if key in stored:
                    self.out[i] = ChatResult.from_dict(json.loads(stored[key]))
                    done += 1
            if done:
                log.info("qwen-nb: %d of %d prompts were answered before; kept from checkpoint %r",
                         done, len(self.items), checkpoint)
        self.bar = None
        if progress and self.items:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=len(self.items), initial=done, desc=str(kw.get("model") or session.default_model),
                            unit="call")

    def postfix(self) -> None:
        if self.bar is not None:
            extra = {"failed": self.failed} if self.failed else {}
            if self.retries:
                extra["retries"] = sum(self.retries.values())
            self.bar.set_postfix(extra, refresh=False)

    def count_retry(self, event: RetryEvent) -> None:
        if self.limiter:
            self.limiter.retried(event.error)
        with self.lock:
            self.retries[type(event.error).__name__] += 1
            self.postfix()

    async def one(self, sem: asyncio.Semaphore, i: int, item: Any) -> None:
        async with sem:
            res: Item
            reserved = self.limiter.estimate(item, self.kw)
            try:
                if self.limiter:
                    await self.limiter.acquire(reserved)
                res = await self.session.achat(item, cancel=self.token, **self.kw)
            except QwenNbError as err:
                res = err
            except Exception as exc:  # a bug or an unexpected failure: keep it with its item
                res = QwenNbError(f"Unexpected {type(exc).__name__}: {exc}")
                res.__cause__ = exc
            if isinstance(res, ChatResult):
                self.limiter.settle(reserved, res.usage.input_tokens + res.usage.output_tokens,
                                    res.usage.output_tokens)
                if self.checkpoint is not None:
                    self._save(i, res)
            self.out[i] = res
            if self.bar is not None:
                with self.lock:
                    if isinstance(res, QwenNbError):
                        self.failed += 1
                        self.postfix()
                    self.bar.update(1)

    def _save(self, i: int, res: ChatResult) -> None:
        assert self.checkpoint is not None
        try:
            self.session.ledger.save_checkpoint(self.checkpoint, self.keys[i], json.dumps(res.to_dict()))
        except Exception as exc:  # the answer is kept; only a restart would ask again
            log.warning("qwen-nb: answer %d could not be stored in checkpoint %r (%s: %s)", i, self.checkpoint,
                        type(exc).__name__, exc)

    async def main(self) -> None:
        retry_sink.set(self.count_retry)  # this task's context (and its children's) only
        todo = [(i, item) for i, item in enumerate(self.items) if self.out[i] is None]
        if not todo:
            return
        sem = asyncio.Semaphore(min(self.concurrency, len(todo)))
        await asyncio.gather(*(self.one(sem, i, item) for i, item in todo))

    def results(self) -> list[Item]:
        return [r if r is not None else _cancelled(self.session, self.kw) for r in self.out]

    def interrupted(self) -> ChatManyInterrupted:
        self.token.cancel("interrupted")
        return ChatManyInterrupted(self.results(), self.checkpoint)

    def finish(self) -> list[Item]:
        if self.retries:
            total = sum(self.retries.values())
            kinds = ", ".join(f"{n} {name}" for name, n in self.retries.most_common())
            log.warning("qwen-nb: %d retr%s over %d calls (%s)", total, "y" if total == 1 else "ies",
                        len(self.items), kinds)
        return self.results()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _start(session: Session, prompts: Sequence[Any], **options: Any) -> tuple[_Run, concurrent.futures.Future[None]]:
    """A run made and started on the session's loop (its future is already done when nothing is left to ask)."""
    run = _Run(session, prompts, **options)
    if run.items:
        return run, session._loop_runner().submit(run.main())
    done: concurrent.futures.Future[None] = concurrent.futures.Future()
    done.set_result(None)
    return run, done


def run_many(session: Session, prompts: Sequence[Any], *, concurrency: int, progress: bool,
             kw: Mapping[str, Any], rpm: Any = None, tpm: Any = None, checkpoint: str | None = None) -> list[Item]:
    """``Session.chat_many``: see there."""
    run, future = _start(session, prompts, concurrency=concurrency, progress=progress, rpm=rpm, tpm=tpm,
                         checkpoint=checkpoint, kw=kw)
    try:
        while True:
            try:
                future.result(0.05)
                break
            except concurrent.futures.TimeoutError:
                continue
    except KeyboardInterrupt:
        error = run.interrupted()
        future.cancel()  # cancels the task on the loop: the calls in flight are abandoned
        try:
            future.exception(1.0)
        except BaseException:  # cancelled, or still winding down: the answered items are kept either way
            pass
        raise error from None
    finally:
        run.close()
    return run.finish()


async def arun_many(session: Session, prompts: Sequence[Any], *, concurrency: int, progress: bool,
                    kw: Mapping[str, Any], rpm: Any = None, tpm: Any = None,
                    checkpoint: str | None = None) -> list[Item]:
    """``Session.achat_many``: ``chat_many`` awaited (top-level ``await`` in a notebook), on the same private loop."""
    run, future = _start(session, prompts, concurrency=concurrency, progress=progress, rpm=rpm, tpm=tpm,
                         checkpoint=checkpoint, kw=kw)
    try:
        await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        error = run.interrupted()
        future.cancel()
        raise error from None
    finally:
        run.close()
    return run.finish()


def _cancelled(session: Session, kw: Mapping[str, Any]) -> CancelledCallError:
    model = kw.get("model") or session.default_model
    return CancelledCallError(f"The call to {model!r} was not made: chat_many was interrupted.", model=model)
