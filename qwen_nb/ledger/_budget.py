"""The budget policy: one ``BudgetWarning`` when a profile's known spend passes 80 % of its budget, one at 100 %."""

from __future__ import annotations

import warnings


class BudgetWarning(UserWarning):
    """A profile's known spend crossed 80 % or 100 % of its budget."""


class BudgetPolicy:
    """Warns at most once per (profile, currency, threshold); jumping straight past 100 % warns once."""

    thresholds = (0.8, 1.0)

    def __init__(self) -> None:
        self._warned: set[tuple[str, str, float]] = set()

    def check(self, profile: str, currency: str, spent: float, budget: float, *, stacklevel: int = 3) -> None:
        """Warn if ``spent`` newly crossed a threshold of ``budget`` (``stacklevel`` 3: the caller of ``record()``)."""
        if budget <= 0:
            return
        crossed = [t for t in self.thresholds if spent >= t * budget]
        if not crossed or (profile, currency, crossed[-1]) in self._warned:
            return
        self._warned.update((profile, currency, t) for t in crossed)
        what = "has reached" if crossed[-1] >= 1.0 else f"has passed {crossed[-1] * 100:.0f} % of"
        warnings.warn(
            f"Profile {profile!r} {what} its budget: spent {spent:.4f} {currency} of "
            f"{budget:.4f} {currency} ({100 * spent / budget:.0f} %).",
            BudgetWarning,
            stacklevel=stacklevel,
        )
