"""The ledger store: ``CallRecord`` and ``Ledger`` (SQLite, shared safely by threads and processes)."""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import random
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from pathlib import Path
from typing import Any, TypeVar

from qwen_nb.errors import ConfigError, InputError, QwenNbError
from qwen_nb.ledger._budget import BudgetPolicy
from qwen_nb.ledger._paths import ENV_LEDGER, check_path, default_path
from qwen_nb.ledger._report import UsageReport, parse_since, report_query
from qwen_nb.ledger._schema import check_schema, migrate

log = logging.getLogger("qwen_nb.ledger")

STATUSES = ("ok", "error", "interrupted")

#: seconds a ledger keeps waiting for another process's lock before giving up (``Ledger(timeout=)``)
DEFAULT_TIMEOUT = 30.0
#: seconds the writer thread gathers rows handed over after a first one, to commit them together
GATHER_SECONDS = 0.05

_T = TypeVar("_T")


class LedgerBusyError(QwenNbError):
    """The ledger file stayed locked by another process for longer than the ledger's ``timeout``."""


_id_prefix = ""
_id_counter = itertools.count()


def _new_id_prefix() -> None:
    """A fresh random prefix (also in a forked child, which would otherwise repeat its parent's ids)."""
    global _id_prefix, _id_counter
    _id_prefix = os.urandom(8).hex()
    _id_counter = itertools.count()


_new_id_prefix()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_id_prefix)


def new_call_id() -> str:
    """A new unique call id: 32 hex digits, a random per-process prefix then a counter.

    Unique across processes sharing a ledger like a ``uuid4().hex`` (which it replaces: that reads
    the OS's random source on every call, about 20 times slower).
    """
    return f"{_id_prefix}{next(_id_counter):016x}"


@dataclass
class CallRecord:
    """One logical call, as the ledger stores it."""

    time: float
    profile: str
    workspace: str | None
    region: str
    api: str
    model: str
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    latency: float
    request_id: str | None
    #: "ok", "error" or "interrupted"
    status: str
    error_code: str | None
    attempts: int
    #: estimated cost in ``currency``; None when the price is unknown
    cost: float | None
    currency: str | None
    #: unique id of the logical call: recording the same id twice stores it once
    call_id: str = field(default_factory=new_call_id)
    #: the batch job this call was a line of (billed at the batch price), None for a real-time call
    batch_id: str | None = None
    #: "chat", or the kind of a call beyond chat ("embedding", "rerank", "image", "tts", "asr", "responses")
    kind: str = "chat"
    #: input tokens read from the context cache, and written to an explicit cache (both part of input_tokens)
    cached_tokens: int = 0
    cache_creation_tokens: int = 0


_COLUMNS = tuple(f.name for f in fields(CallRecord))
#: a record's column values in ``_COLUMNS`` order (``dataclasses.astuple`` deep-copies: 50x slower)
_values = attrgetter(*_COLUMNS)
_INSERT = f"INSERT OR IGNORE INTO calls ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def _check_record(rec: CallRecord) -> None:
    if not isinstance(rec, CallRecord):
        raise InputError(f"ledger.record() takes a CallRecord, got {type(rec).__name__}.")
    if rec.status not in STATUSES:
        raise InputError(f"CallRecord.status must be one of {STATUSES}, got {rec.status!r}.")
    for name in ("input_tokens", "output_tokens", "reasoning_tokens", "attempts"):
        value = getattr(rec, name)
        if not isinstance(value, int) or value < 0:
            raise InputError(f"CallRecord.{name} must be a non-negative int, got {value!r}.")
    if rec.cost is not None and (rec.cost < 0 or not rec.currency):
        raise InputError("CallRecord.cost must be >= 0 and come with its currency.", fix="Set currency='USD'/'CNY'.")


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: another connection holds the lock; trying again later can succeed."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return (code & 0xFF) in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (named in sqlite3 from Python 3.11)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class Ledger:
    """Usage records in SQLite. Thread-safe; share one per process (the Session owns one).

    Several processes may share one file. Waiting for another process's lock is bounded by
    ``timeout`` seconds: SQLite's busy handler waits first, and where SQLite answers "locked"
    without waiting (opening a new file, switching it to WAL) the operation is retried with a
    short randomized backoff. ``record()`` never drops a call on a transient lock; only a lock
    held for longer than ``timeout`` raises ``LedgerBusyError``.
    """

    def __init__(self, path: str | Path | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        if path is None:
            path = default_path()
        memory = str(path) == ":memory:"
        self.path: str = ":memory:" if memory else str(Path(path).expanduser())
        #: seconds to keep waiting for a lock held by another process
        self.timeout = float(timeout)
        if not memory:
            check_path(Path(self.path))
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"Cannot create the folder of the usage ledger {self.path!r}: {exc.strerror or exc}.",
                    fix=f"Set {ENV_LEDGER} (or --ledger) to a path in a folder you can write.",
                ) from None
        #: when this ledger was opened (the start of "this session")
        self.opened_at = time.time()
        self._lock = threading.RLock()
        self._listeners: list[Callable[[CallRecord], Any]] = []
        self._budget = BudgetPolicy()
        self._spent: dict[tuple[str, str], float] = {}
        # records handed over with ``record(..., wait=False)``, written by one writer thread
        #: rows handed to the writer: column values, or (``record_later``) the function that builds the record
        self._pending: deque[Any] = deque()
        self._writing = 0
        self._written = threading.Condition(threading.Lock())
        self._writer: threading.Thread | None = None
        self._writer_pid = 0
        #: the writer waits for rows (a new row wakes it); a reader wants the rows now (no gathering)
        self._idle = False
        self._urgent = False
        try:
            # the busy handler is in force from the first statement on, before any pragma
            self._conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                         check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._cannot_open(exc) from None
        try:
            self._retry(self._prepare, time.monotonic(), "open it")
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise self._cannot_open(exc) from None
        except BaseException:
            self._conn.close()
            raise

    def _cannot_open(self, exc: Exception) -> ConfigError:
        return ConfigError(
            f"Cannot open the usage ledger at {self.path!r}: {exc}.",
            fix=f"Check the file, or set {ENV_LEDGER} to another path.",
        )

    def _prepare(self) -> None:
        """Check the schema (reading only), then switch to WAL and migrate: safe to run again after a lock."""
        check_schema(self._conn, self.path)
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        migrate(self._conn)

    def _retry(self, op: Callable[[], _T], started: float, what: str) -> _T:
        """``op()``, retried with a randomized backoff while the database is locked, until ``timeout`` has passed."""
        delay = 0.002
        while True:
            try:
                return op()
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc):
                    raise
                left = started + self.timeout - time.monotonic()
                if left <= 0:
                    raise LedgerBusyError(
                        f"The usage ledger {self.path!r} stayed locked by another process for "
                        f"{self.timeout:g} s; could not {what} ({exc}).",
                        fix="Close the program holding the file open, or give each program its own "
                            f"ledger with {ENV_LEDGER}.",
                    ) from None
                time.sleep(min(left, delay * (0.5 + random.random())))
                delay = min(delay * 2, 0.1)

    # -- writing

    def record(self, rec: CallRecord, *, budget: float | None = None, wait: bool = True) -> None:
        """Store one call (committed before returning). The same ``call_id`` is stored only once.

        With ``budget`` (in the record's currency), warns with ``BudgetWarning`` once when the
        profile's known spend reaches 80 % of it and once more at 100 %. A lock held by another
        process is waited for (up to ``timeout``, then ``LedgerBusyError``): no call is dropped.

        ``wait=False`` (what a ``Session`` uses for the calls it makes, each with a new
        ``call_id``) hands the row to this ledger's writer thread, which commits it within
        milliseconds, off the caller's path; the budget check and the listeners still run here,
        at once. Every read of this ledger (``report``, ``records``, ``spent``, ``len``) and
        ``close()`` first waits for the rows handed over; so does the end of the process. Only a
        process killed in those milliseconds loses them.
        """
        _check_record(rec)
        values = _values(rec)
        if not wait:
            self._submit(rec, values, budget)
            return
        if self._pending or self._writing:
            self.flush()  # rows handed over earlier go first (and count in the budget)
        with self._lock:
            started = time.monotonic()
            try:
                cur = self._conn.execute(_INSERT, values)
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc):
                    raise
                cur = self._retry(lambda: self._conn.execute(_INSERT, values), started, "record a call")
            inserted = cur.rowcount == 1
            if inserted and rec.cost is not None and rec.currency:
                key = (rec.profile, rec.currency)
                if key in self._spent:
                    self._spent[key] += rec.cost
            if inserted and budget is not None and rec.currency:
                spent = self._spent_locked(rec.profile, rec.currency)
                self._budget.check(rec.profile, rec.currency, spent, budget)
        if inserted:
            self._tell(rec)

    def _submit(self, rec: CallRecord, values: tuple[Any, ...], budget: float | None) -> None:
        key = (rec.profile, rec.currency) if rec.currency else None
        if budget is not None and key is not None and key not in self._spent:
            self.spent(*key)  # the profile's total so far (waits for the writer once), then kept here
        with self._lock:
            if rec.cost is not None and key is not None and key in self._spent:
                self._spent[key] += rec.cost
            self._hand_over(values)
            if budget is not None and key is not None and key in self._spent:
                self._budget.check(key[0], key[1], self._spent[key], budget)
        self._tell(rec)

    def record_later(self, make: Callable[[], CallRecord], *, budget: float | None = None) -> None:
        """Hand a call's row to the writer thread, which builds it (``make()``) and commits it.

        What a ``Session`` uses for the calls it makes: building the row, its cost included, is
        then off the call's path too. When something must happen at once (a ``budget`` to check,
        or a listener such as a usage panel to tell), the row is built here and handed over as
        ``record(..., wait=False)`` does. Reads and ``close()`` wait for it like for any handed-over row.
        """
        if budget is not None or self._listeners:
            self.record(make(), budget=budget, wait=False)
            return
        self._hand_over(make)

    def _hand_over(self, row: Any) -> None:
        """Queue ``row`` for the writer thread; only an idle writer is woken (a burst of calls wakes it once)."""
        with self._written:
            self._pending.append(row)
            if self._writer is None or self._writer_pid != os.getpid():
                self._start_writer()
            elif self._idle:
                self._written.notify_all()

    def _start_writer(self) -> None:
        """Start the writer thread (again in a forked child, which inherits none). Holds ``_written``."""
        self._writing = 0
        self._writer_pid = os.getpid()
        self._writer = threading.Thread(target=_write_behind, args=(weakref.ref(self),), daemon=True,
                                        name="qwen-nb-ledger-writer")
        self._writer.start()
        _LIVE.add(self)

    def _take(self) -> list[Any]:
        """The rows waiting to be written (waits a little for some); marks them as being written.

        Once a row arrives, the rows that follow within ``GATHER_SECONDS`` join it in one transaction
        (a reader waiting for them cuts this short): a burst of calls costs one commit, not one each.
        """
        with self._written:
            if not self._pending:
                self._idle = True
                self._written.wait(0.5)
                self._idle = False
            if self._pending and not self._urgent:
                self._written.wait(GATHER_SECONDS)
            self._urgent = False
            rows = list(self._pending)
            self._pending.clear()
            self._writing = len(rows)
            return rows

    def _write(self, rows: list[Any]) -> None:
        """Commit ``rows`` in one transaction (waiting out another process's lock); a failure is logged.

        A row is its column values, or (from ``record_later``) the function that builds its record.
        """
        try:
            with self._lock:
                if not all(type(row) is tuple for row in rows):
                    rows = [values for values in map(self._built, rows) if values is not None]
                self._insert_rows(rows, f"record {len(rows)} call(s)")
        except Exception as exc:
            log.warning("qwen-nb: %d call(s) could not be recorded in the usage ledger (%s: %s)",
                        len(rows), type(exc).__name__, exc)
        finally:
            with self._written:
                self._writing = 0
                self._written.notify_all()

    def _built(self, row: Any) -> tuple[Any, ...] | None:
        """Column values: ``row`` itself, or those of the record ``row()`` builds, its cost counted in the spend.

        Holds ``_lock``. A record that cannot be built is logged and left out (the others are kept).
        """
        if type(row) is tuple:
            return row
        try:
            rec = row()
            _check_record(rec)
        except Exception as exc:
            log.warning("qwen-nb: a call could not be recorded in the usage ledger (%s: %s)", type(exc).__name__, exc)
            return None
        if rec.cost is not None and rec.currency:
            key = (rec.profile, rec.currency)
            if key in self._spent:
                self._spent[key] += rec.cost
        return _values(rec)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row handed over with ``record(..., wait=False)`` is written; False on timeout."""
        if self._writer is None or self._writer_pid != os.getpid():
            return not self._pending
        with self._written:
            if self._pending or self._writing:
                self._urgent = True  # the writer stops gathering and writes at once
                self._written.notify_all()
            return self._written.wait_for(lambda: not self._pending and not self._writing, timeout)

    def _tell(self, rec: CallRecord) -> None:
        for callback in list(self._listeners):
            try:
                callback(rec)
            except Exception:  # a view must never break recording
                log.exception("usage ledger listener %r failed", callback)

    def record_many(self, records: Iterable[CallRecord]) -> int:
        """Store many calls in one transaction (imports, benchmarks); returns how many were new."""
        rows = []
        for rec in records:
            _check_record(rec)
            rows.append(_values(rec))

        with self._lock:
            added = self._insert_rows(rows, "record calls")
            self._spent.clear()
            return added

    def _insert_rows(self, rows: list[tuple[Any, ...]], what: str) -> int:
        """Insert ``rows`` in one transaction, waiting out another process's lock; returns how many were new."""
        def write() -> int:
            before = self._conn.total_changes
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(_INSERT, rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            return self._conn.total_changes - before

        return self._retry(write, time.monotonic(), what)

    # -- checkpoints (chat_many(checkpoint=...))

    def checkpoint(self, name: str) -> dict[str, str]:
        """The answers stored for the run ``name``: key -> the result as JSON."""
        with self._lock:
            rows = self._conn.execute("SELECT key, result FROM checkpoints WHERE name = ?", (name,)).fetchall()
        return dict(rows)

    def save_checkpoint(self, name: str, key: str, result: str) -> None:
        """Store one answer of the run ``name`` (committed before returning: a killed run does not ask again)."""
        values = (name, key, time.time(), result)
        sql = "INSERT OR REPLACE INTO checkpoints (name, key, time, result) VALUES (?, ?, ?, ?)"
        with self._lock:
            self._retry(lambda: self._conn.execute(sql, values), time.monotonic(), "store a checkpoint")

    def clear_checkpoint(self, name: str) -> int:
        """Forget the answers stored for the run ``name``; returns how many there were."""
        with self._lock:
            cur = self._retry(lambda: self._conn.execute("DELETE FROM checkpoints WHERE name = ?", (name,)),
                              time.monotonic(), "clear a checkpoint")
            return int(cur.rowcount)

    # -- listeners

    def add_listener(self, callback: Callable[[CallRecord], Any]) -> Callable[[], None]:
        """Call ``callback(record)`` after each new record; returns a function that removes it."""
        with self._lock:
            self._listeners.append(callback)
        return lambda: self.remove_listener(callback)

    def remove_listener(self, callback: Callable[[CallRecord], Any]) -> None:
        """Stop calling ``callback`` (no error if it was not registered)."""
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    # -- reading

    def _spent_locked(self, profile: str, currency: str | None) -> float:
        if currency is None:
            row = self._conn.execute(
                "SELECT currency FROM calls WHERE profile = ? AND cost IS NOT NULL ORDER BY time DESC LIMIT 1",
                (profile,),
            ).fetchone()
            if row is None:
                return 0.0
            currency = row[0]
        key = (profile, currency)
        if key not in self._spent:
            (total,) = self._conn.execute(
                "SELECT COALESCE(SUM(cost), 0) FROM calls WHERE profile = ? AND currency = ? AND cost IS NOT NULL",
                key,
            ).fetchone()
            self._spent[key] = float(total)
        return self._spent[key]

    def spent(self, profile: str, currency: str | None = None) -> float:
        """Total known cost of ``profile`` in this ledger (in ``currency``, default: the profile's own).

        Read from the database once, then kept up to date by this ``Ledger``'s own records
        (calls written meanwhile by another process count from the next time the file is opened).
        """
        if currency is None or (profile, currency) not in self._spent or self._pending or self._writing:
            self.flush()  # rows handed to the writer count
        with self._lock:
            return self._spent_locked(profile, currency)

    def report(self, since: Any = None, by: str = "workspace") -> UsageReport:
        """Usage grouped ``by`` workspace, profile, model or day, from ``since`` (None: everything)."""
        start = parse_since(since)
        sql, args = report_query(by, start)
        self.flush()
        with self._lock:
            groups = self._conn.execute(sql, args).fetchall()
        return UsageReport.from_groups(by, start, groups)

    def records(self, since: Any = None, limit: int | None = None) -> list[CallRecord]:
        """Stored records, oldest first (``limit``: only the most recent ones)."""
        start = parse_since(since)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM calls"
        args: tuple[Any, ...] = ()
        if start is not None:
            sql += " WHERE time >= ?"
            args = (start,)
        if limit is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY time DESC, id DESC LIMIT {int(limit)})"
        self.flush()
        with self._lock:
            raw = self._conn.execute(sql + " ORDER BY time", args).fetchall()
        return [CallRecord(*row) for row in raw]

    def __len__(self) -> int:
        self.flush()
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    # -- lifecycle

    def close(self) -> None:
        """Write what is pending, then close the database connection."""
        self.flush()
        _LIVE.discard(self)
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Ledger {self.path}>"


#: ledgers with a writer thread: what they hold is written before the interpreter exits
_LIVE: weakref.WeakSet[Ledger] = weakref.WeakSet()


def _write_behind(ref: weakref.ref[Ledger]) -> None:
    """The writer thread of one ledger: commits handed-over rows in batches until the ledger is gone."""
    while True:
        ledger = ref()
        if ledger is None:
            return
        rows = ledger._take()
        if rows:
            ledger._write(rows)
        del ledger


@atexit.register
def _flush_all() -> None:
    for ledger in list(_LIVE):
        try:
            ledger.flush(timeout=ledger.timeout)
        except Exception:  # exiting: never raise
            pass
