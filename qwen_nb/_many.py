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
import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

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

    def __init__(self, results: list[Item]) -> None:
        self.results = results
        self.answered = sum(1 for r in results if isinstance(r, ChatResult))
        super().__init__(
            f"chat_many was interrupted: {self.answered} of {len(results)} prompts were answered (kept in "
            ".results, and recorded in the usage ledger); nothing more was sent.")


def _check(prompts: Any, concurrency: Any, kw: Mapping[str, Any]) -> list[Any]:
    if isinstance(prompts, (str, Mapping)) or not isinstance(prompts, Sequence):
        raise InputError("chat_many needs a list of prompts (strings or message lists).",
                         fix='chat_many(["first prompt", "second prompt"], concurrency=8).')
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InputError(f"concurrency must be a positive integer, got {concurrency!r}.")
    if "cancel" in kw:
        raise InputError("chat_many makes its own cancel token (Ctrl-C stops the run).",
                         fix="Leave cancel= out of chat_many(...).")
    return list(prompts)


def run_many(session: Session, prompts: Sequence[Any], *, concurrency: int, progress: bool,
             kw: Mapping[str, Any]) -> list[Item]:
    """``Session.chat_many``: see there."""
    items = _check(prompts, concurrency, kw)
    if not items:
        return []
    out: list[Item | None] = [None] * len(items)
    token = CancelToken()
    retries: Counter[str] = Counter()
    failed = 0
    lock = threading.Lock()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), desc=str(kw.get("model") or session.default_model), unit="call")

    def postfix() -> None:
        if bar is not None:
            extra = {"failed": failed} if failed else {}
            if retries:
                extra["retries"] = sum(retries.values())
            bar.set_postfix(extra, refresh=False)

    def count_retry(event: RetryEvent) -> None:
        with lock:
            retries[type(event.error).__name__] += 1
            postfix()

    async def one(sem: asyncio.Semaphore, i: int, item: Any) -> None:
        nonlocal failed
        async with sem:
            res: Item
            try:
                res = await session.achat(item, cancel=token, **kw)
            except QwenNbError as err:
                res = err
            except Exception as exc:  # a bug or an unexpected failure: keep it with its item
                res = QwenNbError(f"Unexpected {type(exc).__name__}: {exc}")
                res.__cause__ = exc
            out[i] = res
            if bar is not None:
                with lock:
                    if isinstance(res, QwenNbError):
                        failed += 1
                        postfix()
                    bar.update(1)

    async def main() -> None:
        retry_sink.set(count_retry)  # this task's context (and its children's) only
        sem = asyncio.Semaphore(min(concurrency, len(items)))
        await asyncio.gather(*(one(sem, i, item) for i, item in enumerate(items)))

    future = session._loop_runner().submit(main())
    try:
        while True:
            try:
                future.result(0.05)
                break
            except concurrent.futures.TimeoutError:
                continue
    except KeyboardInterrupt:
        token.cancel("interrupted")
        future.cancel()  # cancels the task on the loop: the calls in flight are abandoned
        try:
            future.exception(1.0)
        except BaseException:  # cancelled, or still winding down: the answered items are kept either way
            pass
        results: list[Item] = [r if r is not None else _cancelled(session, kw) for r in out]
        raise ChatManyInterrupted(results) from None
    finally:
        if bar is not None:
            bar.close()
    if retries:
        kinds = ", ".join(f"{n} {name}" for name, n in retries.most_common())
        log.warning("qwen-nb: %d retr%s over %d calls (%s)", sum(retries.values()),
                    "y" if sum(retries.values()) == 1 else "ies", len(items), kinds)
    return [r if r is not None else _cancelled(session, kw) for r in out]


def _cancelled(session: Session, kw: Mapping[str, Any]) -> CancelledCallError:
    model = kw.get("model") or session.default_model
    return CancelledCallError(f"The call to {model!r} was not made: chat_many was interrupted.", model=model)
