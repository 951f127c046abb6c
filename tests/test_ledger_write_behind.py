"""A session's ledger rows are written by the ledger's writer thread: every read sees them, and so does the file
after the process ends, even without close()."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from qwen_nb.ledger import CallRecord, Ledger


def _rec(i: int, profile: str = "p", cost: float = 0.5) -> CallRecord:
    return CallRecord(time=time.time(), profile=profile, workspace="ws", region="ap-southeast-1", api="openai",
                      model="qwen-plus", input_tokens=i, output_tokens=1, reasoning_tokens=0, latency=0.0,
                      request_id=None, status="ok", error_code=None, attempts=1, cost=cost, currency="USD")


@pytest.mark.parametrize("where", ["memory", "file"])
def test_reads_wait_for_the_rows_handed_over(tmp_path, where):
    led = Ledger(":memory:" if where == "memory" else tmp_path / "u.sqlite")
    for i in range(500):
        led.record(_rec(i), wait=False)
    assert len(led) == 500
    assert [r.input_tokens for r in led.records()] == list(range(500))
    assert led.report(by="profile").rows[0].calls == 500
    assert led.spent("p") == pytest.approx(250.0)
    led.close()


def test_listeners_and_budget_run_in_the_callers_thread():
    led = Ledger(":memory:")
    seen: list[str] = []
    led.add_listener(lambda rec: seen.append(threading.current_thread().name))
    with pytest.warns(UserWarning):
        for i in range(4):
            led.record(_rec(i), budget=1.0, wait=False)  # 0.5 each: 80 % then 100 % of 1.0 are crossed
    assert seen == [threading.current_thread().name] * 4
    assert led.spent("p") == pytest.approx(2.0)


def test_mixed_waiting_and_handed_over_rows_keep_every_row(tmp_path):
    led = Ledger(tmp_path / "u.sqlite")
    for i in range(100):
        led.record(_rec(i), wait=bool(i % 2))
    assert sorted(r.input_tokens for r in led.records()) == list(range(100))


def test_rows_handed_over_reach_the_file_when_the_process_exits_without_close(tmp_path):
    path = tmp_path / "u.sqlite"
    code = textwrap.dedent(f"""
        import time
        from qwen_nb.ledger import CallRecord, Ledger
        led = Ledger({str(path)!r})
        for i in range(300):
            led.record(CallRecord(time=time.time(), profile="p", workspace=None, region="r", api="openai",
                                  model="m", input_tokens=i, output_tokens=0, reasoning_tokens=0, latency=0.0,
                                  request_id=None, status="ok", error_code=None, attempts=1, cost=None,
                                  currency=None), wait=False)
        # no close(): the interpreter's exit writes what is pending
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 300
    conn.close()


def test_a_write_failure_is_logged_not_raised(tmp_path, caplog):
    led = Ledger(tmp_path / "u.sqlite")
    led.record(_rec(0), wait=False)
    led.flush()
    led._conn.execute("DROP TABLE calls")  # what a broken file would do to the writer
    with caplog.at_level("WARNING", logger="qwen_nb.ledger"):
        led.record(_rec(1), wait=False)
        assert led.flush(timeout=10)
    assert "could not be recorded" in caplog.text


def test_rows_built_by_the_writer_count_in_every_read_and_in_the_spend():
    led = Ledger(":memory:")
    assert led.spent("p", "USD") == 0.0  # the spend is now kept in memory, and must follow the built rows
    built: list[str] = []

    def make(i: int):
        def build() -> CallRecord:
            built.append(threading.current_thread().name)
            return _rec(i)

        return build

    for i in range(50):
        led.record_later(make(i))
    assert led.spent("p", "USD") == pytest.approx(25.0)
    assert [r.input_tokens for r in led.records()] == list(range(50))
    assert set(built) == {"qwen-nb-ledger-writer"}  # off the caller's path


def test_with_a_budget_or_a_listener_the_row_is_built_at_once():
    led = Ledger(":memory:")
    seen: list[int] = []
    led.add_listener(lambda rec: seen.append(rec.input_tokens))
    led.record_later(lambda: _rec(7))
    assert seen == [7]
    with pytest.warns(UserWarning):
        led.record_later(lambda: _rec(8), budget=0.5)  # 0.5 more of a 0.5 budget: crossed at once
    assert seen == [7, 8] and len(led) == 2


def test_a_row_that_cannot_be_built_is_logged_and_the_others_are_kept(caplog):
    led = Ledger(":memory:")

    def broken() -> CallRecord:
        raise ValueError("no price")

    with caplog.at_level("WARNING", logger="qwen_nb.ledger"):
        led.record_later(lambda: _rec(1))
        led.record_later(broken)
        led.record_later(lambda: _rec(2))
        assert led.flush(timeout=10)
    assert "could not be recorded" in caplog.text and "no price" in caplog.text
    assert [r.input_tokens for r in led.records()] == [1, 2]
