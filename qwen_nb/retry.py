"""Retry policy: which failures are retried and how long to wait. Pure, no I/O.

Exponential backoff with full jitter (a uniform wait between 0 and
``base * 2 ** (attempt - 1)``, capped), and a server's ``Retry-After`` honoured
when it sends one. Rate limits (not quotas), 5xx and connection failures are
retried; 400 / 401 / 403 / 404 never are.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from qwen_nb.errors import QwenNbError


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry a failed call and how long to wait in between."""

    #: retries after the first attempt (so at most ``max_retries + 1`` attempts)
    max_retries: int = 3
    #: first backoff ceiling in seconds; doubles per attempt
    base: float = 0.5
    #: largest backoff ceiling in seconds
    cap: float = 20.0
    #: longest ``Retry-After`` honoured, in seconds
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            from qwen_nb.errors import InputError

            raise InputError(
                f"max_retries must be an integer >= 0, got {self.max_retries!r}.",
                fix="Use e.g. max_retries=3 (0 turns retries off).",
            )

    def should_retry(self, error: BaseException, attempts: int) -> bool:
        """True if ``error`` (after ``attempts`` attempts so far) deserves another try."""
        if attempts > self.max_retries:
            return False
        return isinstance(error, QwenNbError) and bool(getattr(error, "retryable", False))

    def delay(
        self, attempts: int, retry_after: float | None = None, rand: Callable[[], float] = random.random
    ) -> float:
        """Seconds to wait before attempt ``attempts + 1``."""
        if retry_after is not None and retry_after >= 0:
            return min(float(retry_after), self.max_retry_after)
        ceiling = min(self.cap, self.base * (2 ** max(attempts - 1, 0)))
        return rand() * ceiling


def retry_after_from_headers(headers: Mapping[str, str] | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds asked for by ``Retry-After`` / ``retry-after-ms``, or None if absent or unreadable."""
    if not headers:
        return None
    get = headers.get
    ms = get("retry-after-ms") or get("Retry-After-Ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = get("retry-after") or get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(when - now(), 0.0)
