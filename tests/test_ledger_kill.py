"""A process killed with SIGKILL in the middle of writes leaves a readable ledger with every returned record."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from qwen_nb.ledger import Ledger

WRITER = textwrap.dedent(
    """
    import sys, threading, time
    from qwen_nb.ledger import CallRecord, Ledger

    led = Ledger(sys.argv[1])

    def one(i, who):
        return CallRecord(time=time.time(), profile=who, workspace="ws", region="ap-southeast-1", api="openai",
                          model="qwen-plus", input_tokens=i, output_tokens=1, reasoning_tokens=0, latency=0.0,
                          request_id=None, status="ok", error_code=None, attempts=1, cost=0.0, currency="USD")

    def background():  # a second writer thread, so the kill can land mid-transaction
        i = 0
        while True:
            led.record(one(i, "bg"))
            i += 1

    threading.Thread(target=background, daemon=True).start()
    i = 0
    while True:
        r = one(i, "main")
        led.record(r)
        print(r.call_id, flush=True)  # printed only after record() returned
        i += 1
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("after", [50, 400])
def test_sigkill_mid_writes_keeps_every_returned_record(tmp_path, after):
    path = tmp_path / "usage.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    returned: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            returned.append(line.strip())
            if len(returned) >= after:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    assert len(returned) == after

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {row[0] for row in conn.execute("SELECT call_id FROM calls WHERE profile = 'main'")}
    conn.close()
    assert set(returned) <= stored

    with Ledger(path) as led:  # and qwen-nb itself reopens it and keeps writing
        n = len(led)
        assert n >= after
        assert led.report(by="profile").totals["calls"] == n
