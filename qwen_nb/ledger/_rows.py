"""One group of a usage report (``UsageRow``): its fields are the one list every total, table and export follows."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _count(sql: str, label: str | None) -> Any:
    """A counter field: how SQL sums it per group, and its printed table header (None: not in the table)."""
    return field(default=0, metadata={"sql": sql, "label": label})


@dataclass
class UsageRow:
    """Usage of one group (a workspace, profile, model or day), or of all of them (``UsageReport.totals``).

    ``costs`` maps currency -> known cost (currencies are never added together);
    ``unknown_price_calls`` counts calls that used tokens but whose price is unknown (a call
    that used no tokens costs nothing). ``row["calls"]`` works like ``row.calls``.
    """

    key: str
    calls: int = _count("COUNT(*)", "calls")
    errors: int = _count("SUM(status = 'error' AND COALESCE(call_id, '') NOT LIKE 'probe-%')", "errors")
    #: calls of ``probe()`` the service refused (not granted, not offered...): answers, not errors
    probe_refusals: int = _count("SUM(status = 'error' AND COALESCE(call_id, '') LIKE 'probe-%')", "probe refusals")
    interrupted: int = _count("SUM(status = 'interrupted')", None)
    input_tokens: int = _count("SUM(input_tokens)", "input tok")
    output_tokens: int = _count("SUM(output_tokens)", "output tok")
    reasoning_tokens: int = _count("SUM(reasoning_tokens)", "thinking tok")
    costs: dict[str, float] = field(default_factory=dict, metadata={"label": "cost {}"})
    unknown_price_calls: int = _count("SUM(cost IS NULL AND input_tokens + output_tokens > 0)", "unknown price")
    #: calls that were lines of a batch job (billed at the batch price)
    batch_calls: int = _count("SUM(batch_id IS NOT NULL)", "batch")

    def add(self, counts: Any, costs: dict[str, float]) -> None:
        """Add ``counts`` (one value per ``COUNTERS`` name, in order) and ``costs`` (currency -> cost)."""
        for name, value in zip(COUNTERS, counts, strict=True):
            setattr(self, name, getattr(self, name) + value)
        for currency, value in costs.items():
            self.costs[currency] = self.costs.get(currency, 0.0) + value

    def __getitem__(self, name: str) -> Any:
        """``row["calls"]``: the dict-style access of earlier releases, same as ``row.calls``."""
        if name not in FIELDS:
            raise KeyError(name)
        return getattr(self, name)


#: every field, in order: the columns of tables, CSV and DataFrames ("costs" is one column per currency)
FIELDS: tuple[str, ...] = tuple(f.name for f in fields(UsageRow))
#: the counter fields, in order
COUNTERS: tuple[str, ...] = tuple(f.name for f in fields(UsageRow) if "sql" in f.metadata)
#: the SQL aggregate of each counter, in ``COUNTERS`` order
COUNTER_SQL: tuple[str, ...] = tuple(f.metadata["sql"] for f in fields(UsageRow) if "sql" in f.metadata)
#: the printed table's header of each field shown there
LABELS: dict[str, str] = {f.name: f.metadata["label"] for f in fields(UsageRow) if f.metadata.get("label")}
