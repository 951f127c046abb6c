"""Client-side rate limits for ``chat_many``: requests and tokens per minute as token buckets.

Model Studio limits each account and model to so many requests (RPM) and tokens (TPM) per
minute, shared by all the account's workspaces, and answers 429 beyond them
(``Throttling.RateQuota`` for requests, ``Throttling.AllocationQuota`` for tokens). A
``RateLimiter`` keeps a run under limits the user gives, so those 429s do not happen in the
first place; when one comes anyway (another notebook shares the account's limit), the bucket
of its kind is emptied, which pauses every call of the run for a moment, and the retry itself
counts as a request.

Each bucket holds at most one second's worth (so a minute never sees more than the limit plus
that second), refills continuously, and may go into debt: a call whose tokens are only known
after it ran reserves an estimate first and settles the difference afterwards.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from qwen_nb.errors import InputError, RateLimitError, TokenLimitError


class Bucket:
    """``per_minute`` units a minute, refilled continuously, holding at most one second's worth."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1.0, self.rate)
        self.level = self.burst
        self._clock = clock
        self._t = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.burst, self.level + (now - self._t) * self.rate)
        self._t = now

    def wait(self, amount: float) -> float:
        """Seconds until ``amount`` may be taken (a call larger than the bucket waits for a full bucket)."""
        self._refill()
        need = min(amount, self.burst)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        """Take ``amount`` (the level may go below zero: a debt the next calls wait for)."""
        self._refill()
        self.level -= amount

    def give(self, amount: float) -> None:
        """Give back ``amount`` (a settled estimate that was too high); never above a full bucket."""
        self._refill()
        self.level = min(self.burst, self.level + amount)

    def empty(self) -> None:
        """The service said the limit was hit: nothing more for about a second."""
        self._refill()
        self.level = min(self.level, 0.0)


def _limit(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive number (per minute), got {value!r}.",
                         fix=f"E.g. chat_many(prompts, {name}=60), or leave {name} out for no limit.")
    return float(value)


def estimate_input_tokens(item: Any, kw: Mapping[str, Any]) -> int:
    """A rough count of an item's input tokens (about 3 characters each), settled after the call."""
    text = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False, default=str)
    system = kw.get("system")
    if isinstance(system, str):
        text += system
    return max(1, math.ceil(len(text) / 3))


class RateLimiter:
    """Requests and tokens per minute for one ``chat_many`` run (used on its event loop only)."""

    def __init__(self, rpm: Any = None, tpm: Any = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        rpm_value, tpm_value = _limit(rpm, "rpm"), _limit(tpm, "tpm")
        self.requests = Bucket(rpm_value, clock) if rpm_value is not None else None
        self.tokens = Bucket(tpm_value, clock) if tpm_value is not None else None
        self._outputs: list[int] = []

    def __bool__(self) -> bool:
        return self.requests is not None or self.tokens is not None

    def estimate(self, item: Any, kw: Mapping[str, Any]) -> int:
        """Tokens to reserve for ``item``: its input estimate plus ``max_tokens`` or the run's mean answer so far."""
        if self.tokens is None:
            return 0
        out = kw.get("max_tokens")
        if not isinstance(out, int) or isinstance(out, bool) or out <= 0:
            out = round(sum(self._outputs) / len(self._outputs)) if self._outputs else 256
        return estimate_input_tokens(item, kw) + out

    async def acquire(self, tokens: int) -> None:
        """Wait until one request and ``tokens`` tokens fit under the limits, then take them."""
        while True:
            delay = max(self.requests.wait(1) if self.requests else 0.0,
                        self.tokens.wait(tokens) if self.tokens else 0.0)
            if delay <= 0:
                break
            await asyncio.sleep(delay)
        if self.requests:
            self.requests.take(1)
        if self.tokens:
            self.tokens.take(tokens)

    def settle(self, reserved: int, used: int | None, output: int | None = None) -> None:
        """After a call: the tokens it really used (None: unknown, the reservation stands)."""
        if output is not None:
            self._outputs.append(output)
            del self._outputs[:-50]
        if self.tokens is None or used is None:
            return
        if used > reserved:
            self.tokens.take(used - reserved)
        else:
            self.tokens.give(reserved - used)

    def retried(self, error: BaseException) -> None:
        """A retry is another request; a 429 of a kind empties that kind's bucket."""
        if self.requests:
            self.requests.take(1)
        if isinstance(error, TokenLimitError):
            if self.tokens:
                self.tokens.empty()
        elif isinstance(error, RateLimitError) and self.requests:
            self.requests.empty()


__all__ = ["Bucket", "RateLimiter", "estimate_input_tokens"]
