"""Batch jobs in the ledger database: one row per job, written when it is created, so it outlives the kernel."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from qwen_nb.errors import InputError

if TYPE_CHECKING:
    from qwen_nb.ledger._store import Ledger


@dataclass
class BatchJobRecord:
    """One batch job as the ledger keeps it: where it runs, which input rows it holds, what became of it."""

    #: the service's batch id
    id: str
    #: one ``batch()`` call (its jobs share it; a split input makes several jobs)
    group_id: str
    #: this job's place in its group, and how many jobs the group has
    part: int
    parts: int
    #: the input row of its first line, and how many lines it has
    first_row: int
    rows: int
    created: float
    profile: str
    workspace: str | None
    region: str
    model: str
    endpoint: str
    completion_window: str
    input_file_id: str | None = None
    dry_run: bool = False
    #: the service's status when last seen
    status: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    #: small JSON-able facts about the input (e.g. that a DataFrame went in)
    meta: dict[str, Any] = field(default_factory=dict)
    #: when its usage went into the ``calls`` table (None: not yet)
    recorded: float | None = None


_COLUMNS = tuple(f.name for f in fields(BatchJobRecord))
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM batch_jobs"
_UPDATABLE = ("status", "output_file_id", "error_file_id", "recorded")


def _row(values: tuple[Any, ...]) -> BatchJobRecord:
    rec = BatchJobRecord(*values)
    rec.dry_run = bool(rec.dry_run)
    rec.meta = json.loads(rec.meta) if isinstance(rec.meta, str) and rec.meta else {}
    return rec


def _values(rec: BatchJobRecord) -> tuple[Any, ...]:
    out = []
    for name in _COLUMNS:
        value = getattr(rec, name)
        if name == "meta":
            value = json.dumps(value or {})
        elif name == "dry_run":
            value = int(bool(value))
        out.append(value)
    return tuple(out)


def save_batch_job(ledger: Ledger, rec: BatchJobRecord) -> None:
    """Store a new job (committed before returning); a job id already stored is replaced."""
    if not isinstance(rec, BatchJobRecord):
        raise InputError(f"save_batch_job() takes a BatchJobRecord, got {type(rec).__name__}.")
    sql = f"INSERT OR REPLACE INTO batch_jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
    values = _values(rec)
    with ledger._lock:
        ledger._retry(lambda: ledger._conn.execute(sql, values), time.monotonic(), "record a batch job")


def update_batch_job(ledger: Ledger, job_id: str, **changes: Any) -> None:
    """Change what is known of a stored job: ``status``, ``output_file_id``, ``error_file_id``, ``recorded``."""
    bad = set(changes) - set(_UPDATABLE)
    if bad:
        raise InputError(f"Cannot change {', '.join(sorted(bad))} of a stored batch job.")
    if not changes:
        return
    sets = ", ".join(f"{k} = ?" for k in changes)
    args = (*changes.values(), job_id)
    with ledger._lock:
        ledger._retry(lambda: ledger._conn.execute(f"UPDATE batch_jobs SET {sets} WHERE id = ?", args),
                      time.monotonic(), "update a batch job")


def batch_job_records(ledger: Ledger, *, job_id: str | None = None, group_id: str | None = None,
                      limit: int | None = None) -> list[BatchJobRecord]:
    """Stored jobs, newest first (of one id, or of one group in part order)."""
    sql, args = _SELECT, ()  # type: tuple[str, tuple[Any, ...]]
    if job_id is not None:
        sql, args = sql + " WHERE id = ?", (job_id,)
    elif group_id is not None:
        sql, args = sql + " WHERE group_id = ? ORDER BY part", (group_id,)
    else:
        sql += " ORDER BY created DESC, group_id, part"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with ledger._lock:
        rows = ledger._conn.execute(sql, args).fetchall()
    return [_row(r) for r in rows]
