"""The usage ledger: one record per call, in SQLite, and cost reports per workspace, profile, model or day.

Every logical call made through qwen-nb (helpers, widgets, magics, batch runs) is
recorded once by the ``Session``: a retried call is one record carrying its
number of attempts, a failed call is one record with status ``"error"``, a
stream closed early is ``"interrupted"`` with the usage received so far.

Storage: SQLite in WAL mode with ``synchronous=NORMAL``; each ``record()`` is
its own committed transaction, so a process killed at any moment leaves every
record whose ``record()`` had returned. The default file is
``platformdirs.user_data_dir("qwen-nb")/usage.sqlite`` (``$QWEN_NB_LEDGER``
overrides it; ``":memory:"`` keeps nothing). A session on the local emulator
does not use that file: its demo calls go to ``$QWEN_NB_LEDGER`` if set, else
to an in-memory ledger, so fake usage never mixes with real spend. The schema is versioned with
``PRAGMA user_version`` and migrated forward on open.

Costs are summed per currency (USD and CNY are never added together); calls
whose price is unknown are counted apart, never priced at zero.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import html
import io
import logging
import os
import sqlite3
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from pathlib import Path
from typing import Any

from qwen_nb.errors import ConfigError, InputError, QwenNbError

log = logging.getLogger(__name__)

ENV_LEDGER = "QWEN_NB_LEDGER"
STATUSES = ("ok", "error", "interrupted")
GROUPINGS = ("workspace", "profile", "model", "day")


class BudgetWarning(UserWarning):
    """A profile's known spend crossed 80 % or 100 % of its budget."""


class OptionalDependencyError(QwenNbError, ImportError):
    """An optional package (such as pandas) is needed for this and is not installed."""


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
    call_id: str = field(default_factory=lambda: uuid.uuid4().hex)


_COLUMNS = tuple(f.name for f in fields(CallRecord))
#: a record's column values in ``_COLUMNS`` order (``dataclasses.astuple`` deep-copies: 50x slower)
_values = attrgetter(*_COLUMNS)


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


# ---------------------------------------------------------------- schema and migrations

#: version -> statements that take a database from version - 1 to version
MIGRATIONS: dict[int, tuple[str, ...]] = {
    # v1: the first release: one row per call, indexed by time
    1: (
        """CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            time REAL NOT NULL,
            profile TEXT NOT NULL,
            workspace TEXT,
            region TEXT NOT NULL,
            api TEXT NOT NULL,
            model TEXT NOT NULL,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens INTEGER NOT NULL DEFAULT 0,
            latency REAL NOT NULL DEFAULT 0,
            request_id TEXT,
            status TEXT NOT NULL,
            error_code TEXT,
            attempts INTEGER NOT NULL DEFAULT 1,
            cost REAL,
            currency TEXT
        )""",
        "CREATE INDEX calls_time ON calls(time)",
    ),
    # v2: a unique call id (idempotent record()), and an index for per-profile spend
    2: (
        "ALTER TABLE calls ADD COLUMN call_id TEXT",
        "UPDATE calls SET call_id = 'v1-' || id WHERE call_id IS NULL",
        "CREATE UNIQUE INDEX calls_call_id ON calls(call_id)",
        "CREATE INDEX calls_profile ON calls(profile, currency)",
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the database to schema ``target``, one version at a time, atomically; returns the version.

    Safe when several processes open the same file at once: the version is re-read
    under the write lock.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"The usage ledger has schema version {version}, newer than this qwen-nb understands ({SCHEMA_VERSION}).",
            fix="Upgrade qwen-nb, or point QWEN_NB_LEDGER at another file.",
        )
    if version >= target:
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        while version < target:
            version += 1
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return version


def default_path() -> Path:
    """``$QWEN_NB_LEDGER`` if set, else ``usage.sqlite`` in the per-user data dir."""
    env = os.environ.get(ENV_LEDGER)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("qwen-nb")) / "usage.sqlite"


# ---------------------------------------------------------------- time parsing


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


# ---------------------------------------------------------------- the report


def _fmt_cost(value: float) -> str:
    return f"{value:.4f}" if value >= 0.01 or value == 0 else f"{value:.6f}"


def _fmt_int(value: int) -> str:
    return f"{value:,}"


@dataclass
class UsageReport:
    """Usage and cost grouped by workspace, profile, model or day.

    ``rows`` is plain data: one dict per group with ``key``, ``calls``, ``errors``,
    ``interrupted``, ``input_tokens``, ``output_tokens``, ``reasoning_tokens``,
    ``costs`` (currency -> known cost) and ``unknown_price_calls`` (calls that used
    tokens but whose price is unknown; a call that used no tokens costs nothing).
    """

    by: str
    since: float | None
    rows: list[dict[str, Any]]

    @property
    def currencies(self) -> list[str]:
        """Currencies present in the report, sorted."""
        return sorted({c for r in self.rows for c in r["costs"]})

    @property
    def totals(self) -> dict[str, Any]:
        """One dict like a row, summing every group (costs still per currency)."""
        total: dict[str, Any] = {"key": "total", "calls": 0, "errors": 0, "interrupted": 0, "input_tokens": 0,
                                 "output_tokens": 0, "reasoning_tokens": 0, "costs": {}, "unknown_price_calls": 0}
        for r in self.rows:
            for k in ("calls", "errors", "interrupted", "input_tokens", "output_tokens", "reasoning_tokens",
                      "unknown_price_calls"):
                total[k] += r[k]
            for cur, v in r["costs"].items():
                total["costs"][cur] = total["costs"].get(cur, 0.0) + v
        return total

    def __len__(self) -> int:
        return len(self.rows)

    def _table(self) -> tuple[list[str], list[list[str]]]:
        cur = self.currencies
        head = [self.by, "calls", "errors", "input tok", "output tok", "thinking tok"]
        head += [f"cost {c}" for c in cur] + ["unknown price"]
        body = []
        for r in [*self.rows, self.totals] if self.rows else []:
            line = [str(r["key"]), _fmt_int(r["calls"]), _fmt_int(r["errors"]), _fmt_int(r["input_tokens"]),
                    _fmt_int(r["output_tokens"]), _fmt_int(r["reasoning_tokens"])]
            line += [_fmt_cost(r["costs"][c]) if c in r["costs"] else "-" for c in cur]
            n = r["unknown_price_calls"]
            line.append(f"{n} call{'s' if n != 1 else ''}" if n else "-")
            body.append(line)
        return head, body

    def to_text(self) -> str:
        """A plain-text table (what ``qwen-nb usage`` prints)."""
        if not self.rows:
            return "No calls recorded" + (" in this period." if self.since else " yet.")
        head, body = self._table()
        widths = [max(len(head[i]), *(len(b[i]) for b in body)) for i in range(len(head))]

        def fmt(cells: list[str]) -> str:
            pairs = enumerate(zip(cells, widths, strict=True))
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

        rule = "  ".join("-" * w for w in widths)
        lines = [fmt(head), rule, *(fmt(b) for b in body[:-1]), rule, fmt(body[-1])]
        return "\n".join(lines)

    __str__ = to_text

    def __repr__(self) -> str:
        return f"<UsageReport by={self.by} groups={len(self.rows)} calls={self.totals['calls']}>"

    def to_csv(self, path: str | Path | None = None) -> str | None:
        """The rows as CSV (one cost column per currency); written to ``path``, or returned if no path."""
        cur = self.currencies
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([self.by, "calls", "errors", "interrupted", "input_tokens", "output_tokens", "reasoning_tokens",
                    *(f"cost_{c}" for c in cur), "unknown_price_calls"])
        for r in self.rows:
            w.writerow([r["key"], r["calls"], r["errors"], r["interrupted"], r["input_tokens"], r["output_tokens"],
                        r["reasoning_tokens"], *(repr(r["costs"][c]) if c in r["costs"] else "" for c in cur),
                        r["unknown_price_calls"]])
        text = buf.getvalue()
        if path is None:
            return text
        Path(path).expanduser().write_text(text, encoding="utf-8")
        return None

    def to_pandas(self) -> Any:
        """The rows as a ``pandas.DataFrame`` indexed by the group key (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise OptionalDependencyError(
                "UsageReport.to_pandas() needs pandas, which is not installed.",
                fix="pip install pandas — or use report.rows or report.to_csv() instead.",
            ) from None
        cur = self.currencies
        records = [
            {self.by: r["key"], "calls": r["calls"], "errors": r["errors"], "interrupted": r["interrupted"],
             "input_tokens": r["input_tokens"], "output_tokens": r["output_tokens"],
             "reasoning_tokens": r["reasoning_tokens"], **{f"cost_{c}": r["costs"].get(c) for c in cur},
             "unknown_price_calls": r["unknown_price_calls"]}
            for r in self.rows
        ]
        return pd.DataFrame.from_records(records, columns=[self.by, "calls", "errors", "interrupted", "input_tokens",
                                                           "output_tokens", "reasoning_tokens",
                                                           *(f"cost_{c}" for c in cur), "unknown_price_calls"]
                                         ).set_index(self.by)

    def bars_html(self) -> str:
        """Horizontal bars per group (cost per currency, or tokens where no cost is known), pure HTML/CSS."""
        if not self.rows:
            return ""
        cur = self.currencies
        top = {c: max((r["costs"].get(c, 0.0) for r in self.rows), default=0.0) for c in cur}
        top_tok = max((r["input_tokens"] + r["output_tokens"] for r in self.rows), default=0)
        out = ['<div style="font-size:12px;line-height:1.5;margin-top:6px">']
        for r in self.rows:
            bars = []
            for c in cur:
                if c in r["costs"] and top[c] > 0:
                    pct = 100 * r["costs"][c] / top[c]
                    bars.append((pct, f"{_fmt_cost(r['costs'][c])} {c}", "#3b82f6" if c == "USD" else "#ef4444"))
            if not bars and top_tok:
                tok = r["input_tokens"] + r["output_tokens"]
                bars.append((100 * tok / top_tok, f"{_fmt_int(tok)} tokens (price unknown)", "#9ca3af"))
            for pct, label, color in bars:
                out.append(
                    '<div style="display:flex;align-items:center;gap:6px">'
                    f'<span style="width:14em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap" '
                    f'title="{html.escape(str(r["key"]))}">{html.escape(str(r["key"]))}</span>'
                    f'<span style="display:inline-block;height:10px;width:{max(pct, 0.5) * 2:.1f}px;'
                    f'background:{color};border-radius:2px"></span>'
                    f"<span>{html.escape(label)}</span></div>"
                )
        out.append("</div>")
        return "".join(out)

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p><em>{html.escape(self.to_text())}</em></p>"
        head, body = self._table()
        th = "".join(f'<th style="text-align:{"left" if i == 0 else "right"}">{html.escape(h)}</th>'
                     for i, h in enumerate(head))
        trs = []
        for n, b in enumerate(body):
            style = ' style="font-weight:bold;border-top:1px solid #888"' if n == len(body) - 1 else ""
            tds = "".join(f'<td style="text-align:{"left" if i == 0 else "right"}">{html.escape(c)}</td>'
                          for i, c in enumerate(b))
            trs.append(f"<tr{style}>{tds}</tr>")
        note = ""
        unknown = self.totals["unknown_price_calls"]
        if unknown:
            note = (f"<p style='font-size:11px;color:#666'>{unknown} call{'s' if unknown != 1 else ''} with unknown "
                    "price are not in the cost columns (add prices with qwen_nb.prices.load_extra).</p>")
        return (f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(trs)}</tbody></table>"
                f"{self.bars_html()}{note}")


# ---------------------------------------------------------------- the ledger

_GROUP_SQL = {
    "workspace": "COALESCE(workspace, '(default ' || region || ')')",
    "profile": "profile",
    "model": "model",
    "day": "date(time, 'unixepoch', 'localtime')",
}


class Ledger:
    """Usage records in SQLite. Thread-safe; share one per process (the Session owns one)."""

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            path = default_path()
        self.path: str = str(path) if str(path) == ":memory:" else str(Path(path).expanduser())
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        #: when this ledger was opened (the start of "this session")
        self.opened_at = time.time()
        self._lock = threading.RLock()
        self._listeners: list[Callable[[CallRecord], Any]] = []
        self._warned: set[tuple[str, str, float]] = set()
        self._spent: dict[tuple[str, str], float] = {}
        try:
            self._conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=10000")
            migrate(self._conn)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"Cannot open the usage ledger at {self.path!r}: {exc}.",
                fix=f"Check the file, or set {ENV_LEDGER} to another path.",
            ) from None
        self._insert = f"INSERT OR IGNORE INTO calls ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"

    # -- writing

    def record(self, rec: CallRecord, *, budget: float | None = None) -> None:
        """Store one call (committed before returning). The same ``call_id`` is stored only once.

        With ``budget`` (in the record's currency), warns with ``BudgetWarning`` once when the
        profile's known spend reaches 80 % of it and once more at 100 %.
        """
        _check_record(rec)
        with self._lock:
            cur = self._conn.execute(self._insert, _values(rec))
            inserted = cur.rowcount == 1
            if inserted and rec.cost is not None and rec.currency:
                key = (rec.profile, rec.currency)
                if key in self._spent:
                    self._spent[key] += rec.cost
            if inserted and budget is not None and rec.currency:
                self._check_budget(rec.profile, rec.currency, self._spent_locked(rec.profile, rec.currency), budget)
        if not inserted:
            return
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
            before = self._conn.total_changes
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(self._insert, rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._spent.clear()
            return self._conn.total_changes - before

    def _check_budget(self, profile: str, currency: str, spent: float, budget: float) -> None:
        if budget <= 0:
            return
        for threshold in (1.0, 0.8):
            if spent >= threshold * budget:
                key = (profile, currency, threshold)
                if key in self._warned:
                    return
                self._warned.update({(profile, currency, 1.0), (profile, currency, 0.8)} if threshold == 1.0 else {key})
                what = "has reached" if threshold == 1.0 else "has passed 80 % of"
                warnings.warn(
                    f"Profile {profile!r} {what} its budget: spent {spent:.4f} {currency} of "
                    f"{budget:.4f} {currency} ({100 * spent / budget:.0f} %).",
                    BudgetWarning,
                    stacklevel=3,
                )
                return

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
        with self._lock:
            return self._spent_locked(profile, currency)

    def report(self, since: Any = None, by: str = "workspace") -> UsageReport:
        """Usage grouped ``by`` workspace, profile, model or day, from ``since`` (None: everything)."""
        if by not in GROUPINGS:
            raise InputError(f"Cannot group usage by {by!r}.", fix=f"Use by= one of: {', '.join(GROUPINGS)}.")
        start = parse_since(since)
        where, args = ("WHERE time >= ?", (start,)) if start is not None else ("", ())
        sql = (
            f"SELECT {_GROUP_SQL[by]} AS k, currency, COUNT(*), "
            "SUM(status = 'error'), SUM(status = 'interrupted'), SUM(input_tokens), SUM(output_tokens), "
            "SUM(reasoning_tokens), SUM(cost), SUM(cost IS NULL AND input_tokens + output_tokens > 0), MIN(time) "
            f"FROM calls {where} GROUP BY k, currency"
        )
        with self._lock:
            raw = self._conn.execute(sql, args).fetchall()
        rows: dict[str, dict[str, Any]] = {}
        first: dict[str, float] = {}
        for key, currency, n, errors, interrupted, tin, tout, treason, cost, unknown, t0 in raw:
            r = rows.setdefault(key, {"key": key, "calls": 0, "errors": 0, "interrupted": 0, "input_tokens": 0,
                                      "output_tokens": 0, "reasoning_tokens": 0, "costs": {},
                                      "unknown_price_calls": 0})
            r["calls"] += n
            r["errors"] += errors
            r["interrupted"] += interrupted
            r["input_tokens"] += tin
            r["output_tokens"] += tout
            r["reasoning_tokens"] += treason
            r["unknown_price_calls"] += unknown
            if cost is not None and currency:
                r["costs"][currency] = r["costs"].get(currency, 0.0) + cost
            first[key] = min(first.get(key, t0), t0)
        if by == "day":
            ordered = sorted(rows.values(), key=lambda r: r["key"])
        else:
            ordered = sorted(rows.values(), key=lambda r: (-sum(r["costs"].values()), -r["calls"], str(r["key"])))
        return UsageReport(by=by, since=start, rows=ordered)

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
        with self._lock:
            raw = self._conn.execute(sql + " ORDER BY time", args).fetchall()
        return [CallRecord(*row) for row in raw]

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    # -- lifecycle

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Ledger {self.path}>"


def usage(since: Any = None, by: str = "workspace", ledger: Ledger | None = None) -> UsageReport:
    """Usage and cost report of the default session's ledger (or of ``ledger``)."""
    if ledger is None:
        from qwen_nb.session import default_session

        ledger = default_session().ledger
    return ledger.report(since=since, by=by)


# ---------------------------------------------------------------- `qwen-nb usage`


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qwen-nb usage",
        description="Usage and estimated cost of the calls recorded by qwen-nb, per workspace, model, day or profile.",
    )
    p.add_argument("--since", help="only calls from this date/time on (2026-01-31, 'today', '7d')")
    p.add_argument("--by", choices=GROUPINGS, default="workspace", help="how to group (default: workspace)")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    p.add_argument("--ledger", metavar="PATH", help=f"ledger file (default: ${ENV_LEDGER} or the per-user data dir)")
    return p


def cli_main(argv: list[str] | None = None) -> int:
    """``qwen-nb usage``: print the usage report; returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse already printed usage and the problem
        return int(exc.code or 0)
    path = Path(args.ledger).expanduser() if args.ledger else default_path()
    if not path.exists():
        if args.ledger:
            print(f"qwen-nb usage: no ledger at {path}", file=sys.stderr)
            return 1
        print(f"No calls recorded yet (ledger: {path}).")
        return 0
    try:
        with Ledger(path) as ledger:
            report = ledger.report(since=args.since, by=args.by)
    except QwenNbError as exc:
        print(parser.format_usage().rstrip(), file=sys.stderr)
        print(f"qwen-nb usage: {exc}", file=sys.stderr)
        return 2
    if args.csv:
        sys.stdout.write(report.to_csv() or "")
    else:
        print(report.to_text())
    return 0
