"""``chat_many``: many calls at bounded concurrency on a private event loop, stopped at once by Ctrl-C.

The calls run as asyncio tasks on the async SDK clients of an event loop in a worker
thread, so an interrupt can abandon them for real: the tasks are cancelled (their HTTP
connections closed), no attempt starts after the interrupt, retry waits end, and the
answered items are kept. Retries are counted (on the progress bar) instead of logged one
by one, and summed up in one line at the end.
"""

from __future__ import annotations

import asyncio
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

    loop_box: list[asyncio.AbstractEventLoop] = []
    main_box: list[asyncio.Task[Any]] = []
    error: list[BaseException] = []

    async def main() -> None:
        retry_sink.set(count_retry)
        loop_box.append(asyncio.get_running_loop())
        main_box.append(asyncio.current_task())  # type: ignore[arg-type]
        sem = asyncio.Semaphore(min(concurrency, len(items)))
        await asyncio.gather(*(one(sem, i, item) for i, item in enumerate(items)))

    def worker() -> None:
        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # handed to the caller's thread
            error.append(exc)

    thread = threading.Thread(target=worker, name="qwen-nb-chat-many", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.05)
    except KeyboardInterrupt:
        token.cancel("interrupted")
        if loop_box and main_box:
            try:
                loop_box[0].call_soon_threadsafe(main_box[0].cancel)
            except RuntimeError:  # the loop already finished
                pass
        thread.join(1.0)
        results: list[Item] = [r if r is not None else _cancelled(session, kw) for r in out]
        if bar is not None:
            bar.close()
        raise ChatManyInterrupted(results) from None
    if bar is not None:
        bar.close()
    if error:
        raise error[0]
    if retries:
        kinds = ", ".join(f"{n} {name}" for name, n in retries.most_common())
        log.warning("qwen-nb: %d retr%s over %d calls (%s)", sum(retries.values()),
                    "y" if sum(retries.values()) == 1 else "ies", len(items), kinds)
    return [r if r is not None else _cancelled(session, kw) for r in out]


def _cancelled(session: Session, kw: Mapping[str, Any]) -> CancelledCallError:
    model = kw.get("model") or session.default_model
    return CancelledCallError(f"The call to {model!r} was not made: chat_many was interrupted.", model=model)
