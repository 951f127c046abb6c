"""One ledger file shared by several processes: opening a fresh file at once, and waiting out locks."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time

import pytest
from records import rec

from qwen_nb.errors import QwenNbError
from qwen_nb.ledger import Ledger, LedgerBusyError

PROCESSES = 8
ROUNDS = 50
PER_PROCESS = 4


def _open_and_record(folder: str, rounds: int, start: multiprocessing.synchronize.Barrier, results) -> None:
    """Each round: wait for every worker, open the round's fresh file at the same moment, record a few calls."""
    import time as _time

    from qwen_nb.ledger import CallRecord, Ledger

    for n in range(rounds):
        start.wait(timeout=120)
        try:
            with Ledger(f"{folder}/round-{n}.sqlite") as led:
                for i in range(PER_PROCESS):
                    led.record(CallRecord(
                        time=_time.time(), profile="p", workspace="ws", region="ap-southeast-1", api="openai",
                        model="qwen-plus", input_tokens=i, output_tokens=1, reasoning_tokens=0, latency=0.0,
                        request_id=None, status="ok", error_code=None, attempts=1, cost=None, currency=None,
                    ))
            results.put((n, PER_PROCESS, None))
        except Exception as exc:
            results.put((n, 0, f"{type(exc).__name__}: {exc}"))


def test_eight_processes_opening_one_fresh_file_at_once_lose_nothing(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    workers = [ctx.Process(target=_open_and_record, args=(str(tmp_path), ROUNDS, start, results))
               for _ in range(PROCESSES)]
    for w in workers:
        w.start()
    try:
        answers = [results.get(timeout=120) for _ in range(PROCESSES * ROUNDS)]
        for w in workers:
            w.join(timeout=60)
    finally:
        for w in workers:
            if w.is_alive():
                w.terminate()
                w.join()
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    assert [err for _, _, err in answers if err] == []
    returned = {n: 0 for n in range(ROUNDS)}
    for n, count, _ in answers:
        returned[n] += count
    assert set(returned.values()) == {PROCESSES * PER_PROCESS}
    for n in range(ROUNDS):
        conn = sqlite3.connect(tmp_path / f"round-{n}.sqlite")
        try:
            assert conn.execute("SELECT COUNT(DISTINCT call_id) FROM calls").fetchone()[0] == returned[n], n
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()


def _hold_write_lock(path, locked: threading.Event, release: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    locked.set()
    release.wait(30)
    conn.execute("COMMIT")
    conn.close()


def test_record_waits_for_another_process_lock_and_keeps_the_call(tmp_path):
    path = tmp_path / "u.sqlite"
    with Ledger(path) as led:
        locked, release = threading.Event(), threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, locked, release))
        holder.start()
        locked.wait(10)
        threading.Timer(0.3, release.set).start()
        r = rec()
        led.record(r)  # blocks until the other writer commits, then stores the call
        holder.join()
        assert led.records() == [r]


def test_lock_held_past_the_timeout_is_a_clear_error_and_nothing_is_half_written(tmp_path):
    path = tmp_path / "u.sqlite"
    with Ledger(path, timeout=0.2) as led:
        locked, release = threading.Event(), threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, locked, release))
        holder.start()
        locked.wait(10)
        try:
            with pytest.raises(LedgerBusyError, match="stayed locked by another process") as info:
                led.record(rec())
            assert isinstance(info.value, QwenNbError) and info.value.fix
            with pytest.raises(LedgerBusyError):
                led.record_many([rec(), rec()])
        finally:
            release.set()
            holder.join()
        r = rec()
        led.record(r)  # once the lock is gone, recording works again
        assert led.records() == [r]


def test_locked_answers_given_without_waiting_are_retried_until_the_timeout(led):
    """SQLite answers "locked" without calling its busy handler in some cases (e.g. switching to WAL)."""
    answers = iter([sqlite3.OperationalError("database is locked")] * 3 + ["done"])

    def flaky():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert led._retry(flaky, time.monotonic(), "test") == "done"

    def other_error():
        raise sqlite3.OperationalError("no such table: calls")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        led._retry(other_error, time.monotonic(), "test")  # not a lock: not retried

    def always_locked():
        raise sqlite3.OperationalError("database is locked")

    led.timeout = 0.05
    with pytest.raises(LedgerBusyError, match="could not test"):
        led._retry(always_locked, time.monotonic(), "test")
