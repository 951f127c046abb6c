"""Usage reports: the grouping query, ``UsageReport`` (rows of ``UsageRow``) and how ``since`` is read."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_nb.errors import InputError
from qwen_nb.ledger import _render
from qwen_nb.ledger._rows import COUNTER_SQL, COUNTERS, UsageRow

GROUPINGS = ("workspace", "profile", "model", "day", "kind")

_GROUP_SQL = {
    "workspace": "COALESCE(workspace, '(default ' || region || ')')",
    "profile": "profile",
    "model": "model",
    "day": "date(time, 'unixepoch', 'localtime')",
    "kind": "kind",
}


def parse_since(since: Any) -> float | None:
    """A start time as epoch seconds from None, epoch seconds, date, datetime, timedelta (ago) or ISO text."""
    if since is None:
        return None
    if isinstance(since, bool):
        raise InputError(f"since={since!r} is not a time.")
    if isinstance(since, (int, float)):
        return float(since)
    if isinstance(since, dt.timedelta):
        return time.time() - since.total_seconds()
    if isinstance(since, dt.datetime):
        return since.timestamp()
    if isinstance(since, dt.date):
        return dt.datetime(since.year, since.month, since.day).timestamp()
    if isinstance(since, str):
        text = since.strip()
        if text.lower() == "today":
            return dt.datetime.combine(dt.date.today(), dt.time()).timestamp()
        if text[-1:].lower() == "d" and text[:-1].isdigit():
            return time.time() - int(text[:-1]) * 86400
        try:
            return parse_since(dt.datetime.fromisoformat(text))
        except ValueError:
            pass
    raise InputError(
        f"Cannot read since={since!r} as a time.",
        fix="Use a date like 2026-01-31, a datetime, 'today', '7d' (last 7 days) or a timedelta.",
    )


#: what else a group is known by: a workspace by the profiles that used it, a profile by its workspace
_AKA_SQL = {
    "workspace": "GROUP_CONCAT(DISTINCT profile)",
    "profile": "GROUP_CONCAT(DISTINCT COALESCE(workspace, 'default ' || region))",
    "model": "NULL",
    "day": "NULL",
    "kind": "NULL",
}


def report_query(by: str, start: float | None) -> tuple[str, tuple[Any, ...]]:
    """The SQL (and its arguments) that sums the ``calls`` table per group and currency, from ``start`` on.

    Each result row is ``(key, currency, known cost, aka, *counters)``: what ``UsageReport.from_groups``
    reads (``aka``: the group's other names, comma-separated: a workspace's profiles, a profile's workspace).
    """
    if by not in GROUPINGS:
        raise InputError(f"Cannot group usage by {by!r}.", fix=f"Use by= one of: {', '.join(GROUPINGS)}.")
    where, args = ("WHERE time >= ?", (start,)) if start is not None else ("", ())
    sql = (f"SELECT {_GROUP_SQL[by]} AS k, currency, SUM(cost), {_AKA_SQL[by]}, {', '.join(COUNTER_SQL)} "
           f"FROM calls {where} GROUP BY k, currency")
    return sql, args


@dataclass
class UsageReport:
    """Usage and cost grouped by workspace, profile, model or day.

    ``rows`` is plain data: one ``UsageRow`` per group (``key``, ``calls``, ``errors``,
    ``interrupted``, ``input_tokens``, ``output_tokens``, ``reasoning_tokens``, ``costs``
    as currency -> known cost, ``unknown_price_calls``); ``totals`` is one more row summing them.
    """

    by: str
    since: float | None
    rows: list[UsageRow]
    #: group key -> its other names, sorted: the profiles that used a workspace, the workspace of a profile
    aka: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_groups(cls, by: str, since: float | None, groups: Iterable[tuple[Any, ...]]) -> UsageReport:
        """A report from the result rows of ``report_query``: one ``UsageRow`` per key, costs kept per currency."""
        rows: dict[str, UsageRow] = {}
        aka: dict[str, set[str]] = {}
        for key, currency, cost, names, *counts in groups:
            row = rows.get(key)
            if row is None:
                row = rows[key] = UsageRow(key)
            row.add(counts, {currency: cost} if cost is not None and currency else {})
            if names:
                aka.setdefault(key, set()).update(str(names).split(","))
        if by == "day":
            ordered = sorted(rows.values(), key=lambda r: r.key)
        else:
            ordered = sorted(rows.values(), key=lambda r: (-sum(r.costs.values()), -r.calls, str(r.key)))
        return cls(by=by, since=since, rows=ordered, aka={k: sorted(v) for k, v in aka.items()})

    @property
    def currencies(self) -> list[str]:
        """Currencies present in the report, sorted."""
        return sorted({c for r in self.rows for c in r.costs})

    @property
    def totals(self) -> UsageRow:
        """One row (key ``"total"``) summing every group, costs still per currency."""
        total = UsageRow("total")
        for r in self.rows:
            total.add([getattr(r, name) for name in COUNTERS], r.costs)
        return total

    def __len__(self) -> int:
        return len(self.rows)

    def to_text(self) -> str:
        """A plain-text table (what ``qwen-nb usage`` prints)."""
        return _render.to_text(self)

    __str__ = to_text

    def __repr__(self) -> str:
        return f"<UsageReport by={self.by} groups={len(self.rows)} calls={self.totals.calls}>"

    def to_csv(self, path: str | Path | None = None) -> str | None:
        """The rows as CSV (one cost column per currency); written to ``path``, or returned if no path."""
        return _render.to_csv(self, path)

    def to_pandas(self) -> Any:
        """The rows as a ``pandas.DataFrame`` indexed by the group key (needs pandas)."""
        return _render.to_pandas(self)

    def bars_html(self) -> str:
        """Horizontal bars per group (cost per currency, or tokens where no cost is known), pure HTML/CSS."""
        return _render.bars_html(self)

    def _repr_html_(self) -> str:
        return _render.to_html(self)

