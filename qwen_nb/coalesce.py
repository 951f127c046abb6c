"""Coalescing of streamed updates: at most N display pushes a second, whatever the token rate.

Pure logic with an injectable clock, no threads and no widgets. A stream producer calls
``mark()`` for every piece it receives; the display side asks ``delay()`` how long to wait
before it may push, calls ``try_flush()`` to claim a push, and ``final()`` once the stream
has ended so the last pieces are always shown.

The first piece after a quiet period is shown at once (leading edge); later pieces are
gathered until the interval has passed (trailing edge).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from qwen_nb.errors import InputError

DEFAULT_RATE = 20.0


class Coalescer:
    """Throttle for display pushes: leading edge immediate, then at most ``rate`` pushes a second."""

    def __init__(self, rate: float = DEFAULT_RATE, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate <= 0:
            raise InputError(f"Update rate must be a positive number of pushes per second, got {rate!r}.")
        self.rate = float(rate)
        self.interval = 1.0 / self.rate
        self.clock = clock
        self._last: float | None = None
        self._pending = False
        #: pieces received (``mark`` calls) and pushes granted, for measurements
        self.marks = 0
        self.flushes = 0

    @property
    def pending(self) -> bool:
        """True when pieces arrived since the last push."""
        return self._pending

    def mark(self) -> None:
        """Record that a new piece arrived and is waiting to be shown."""
        self._pending = True
        self.marks += 1

    def delay(self) -> float | None:
        """Seconds until a push is allowed: None if nothing is pending, 0.0 if a push may happen now."""
        if not self._pending:
            return None
        if self._last is None:
            return 0.0
        return max(0.0, self._last + self.interval - self.clock())

    def try_flush(self) -> bool:
        """Claim a push if one is pending and allowed now; True means: push the current text."""
        if self.delay() != 0.0:
            return False
        self._record()
        return True

    def final(self) -> bool:
        """End of stream: claim a push if anything is still pending, regardless of the interval."""
        if not self._pending:
            return False
        self._record()
        return True

    def reset(self) -> None:
        """Forget history and counters (a new stream)."""
        self._last = None
        self._pending = False
        self.marks = 0
        self.flushes = 0

    def _record(self) -> None:
        self._last = self.clock()
        self._pending = False
        self.flushes += 1
