"""Waiting for a condition in tests: a guard against hanging, never a timing assert."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; its last answer."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return bool(predicate())


def long_retry_waits(max_retries: int = 5, seconds: float = 10.0):  # -> RetryPolicy
    """A retry policy whose every wait is ``seconds`` long (no jitter).

    The default policy draws each wait at random below its ceiling ("full jitter"), so a test
    that stops a call *during* a wait would now and then see the wait end first.
    """
    from qwen_nb.retry import RetryPolicy

    class _LongWaits(RetryPolicy):
        def delay(self, attempts, retry_after=None, rand=None):  # type: ignore[override]
            return seconds

    return _LongWaits(max_retries=max_retries, base=seconds, cap=seconds)
