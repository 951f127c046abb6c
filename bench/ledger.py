"""Ledger benchmark: cost of record() on a file-backed WAL database, and report() over 100,000 calls.

    python bench/ledger.py            # a table
    python bench/ledger.py --json     # one JSON object for bench/run_all.py

Targets: median record() <= 1 ms (each record committed); report() over 100,000 records < 0.5 s.
Bounded: about 10-20 s on a small machine.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from _rows import emit  # bench/_rows.py: how every benchmark prints its rows

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qwen_nb.ledger import CallRecord, Ledger  # noqa: E402

WORKSPACES = [("team-a", "llm-a", "ap-southeast-1"), ("team-b", "llm-b", "ap-southeast-1"),
              ("default", None, "ap-southeast-1"), ("beijing-lab", "llm-bj", "cn-beijing"),
              ("course-1", "llm-c1", "ap-southeast-1"), ("course-2", "llm-c2", "ap-southeast-1")]
MODELS = ["qwen-plus", "qwen-max", "qwen-flash", "qwen3-max", "qwen-turbo"]


def make_record(rng: random.Random, t: float) -> CallRecord:
    profile, ws, region = rng.choice(WORKSPACES)
    currency = "CNY" if region == "cn-beijing" else "USD"
    status = rng.choices(["ok", "error", "interrupted"], [0.94, 0.04, 0.02])[0]
    tin, tout = rng.randint(10, 4000), rng.randint(0, 2000)
    known = rng.random() < 0.9
    return CallRecord(
        time=t, profile=profile, workspace=ws, region=region, api=rng.choice(["openai", "dashscope"]),
        model=rng.choice(MODELS), input_tokens=tin, output_tokens=tout, reasoning_tokens=0,
        latency=rng.random(), request_id=f"req-{rng.getrandbits(48):x}", status=status,
        error_code="InternalError" if status == "error" else None, attempts=rng.choice([1, 1, 1, 2]),
        cost=(tin * 0.4 + tout * 1.2) / 1e6 if known else None, currency=currency,
    )


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_record(tmp: Path, n: int) -> tuple[list[float], list[float]]:
    """Per-call seconds of Ledger.record() and of a bare INSERT+commit with the same pragmas."""
    rng = random.Random(1)
    led = Ledger(tmp / "record.sqlite")
    recs = [make_record(rng, time.time()) for _ in range(n)]
    for r in recs[:50]:  # warm up
        led.record(r)
    ours = []
    for r in recs[50:]:
        t0 = time.perf_counter()
        led.record(r)
        ours.append(time.perf_counter() - t0)
    led.close()

    conn = sqlite3.connect(tmp / "raw.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (a REAL, b TEXT, c INTEGER, d INTEGER, e REAL, f TEXT UNIQUE)")
    raw = []
    for i, r in enumerate(recs):
        t0 = time.perf_counter()
        conn.execute("INSERT OR IGNORE INTO t VALUES (?, ?, ?, ?, ?, ?)",
                     (r.time, r.profile, r.input_tokens, r.output_tokens, r.cost, r.call_id))
        if i >= 50:
            raw.append(time.perf_counter() - t0)
    conn.close()
    return ours, raw


def bench_threads(tmp: Path) -> float:
    """Wall seconds for 8 threads x 500 records on one file ledger."""
    led = Ledger(tmp / "threads.sqlite")
    rng = random.Random(2)
    batches = [[make_record(rng, time.time()) for _ in range(500)] for _ in range(8)]
    barrier = threading.Barrier(9)

    def work(batch):
        barrier.wait()
        for r in batch:
            led.record(r)

    threads = [threading.Thread(target=work, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    assert len(led) == 4000
    led.close()
    return wall


def bench_report(tmp: Path, n: int) -> tuple[dict[str, float], float, float]:
    """Median seconds of report(by=...) over n records, of report(since=1 day), and the fill time."""
    rng = random.Random(3)
    now = time.time()
    led = Ledger(tmp / "report.sqlite")
    recs = [make_record(rng, now - rng.random() * 90 * 86400) for _ in range(n)]
    t0 = time.perf_counter()
    led.record_many(recs)
    fill = time.perf_counter() - t0
    out = {}
    for by in ("workspace", "profile", "model", "day"):
        out[by] = statistics.median(timed(lambda by=by: led.report(by=by), 5))
    recent = statistics.median(timed(lambda: led.report(since=now - 86400), 5))
    assert led.report().totals["calls"] == n
    led.close()
    return out, recent, fill


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object (for bench/run_all.py)")
    parser.add_argument("--records", type=int, default=3000, help="record() calls to time (default 3000)")
    parser.add_argument("--report-size", type=int, default=100_000, help="records for report() (default 100000)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ours, raw = bench_record(tmp, args.records)
        threads_wall = bench_threads(tmp)
        by, recent, fill = bench_report(tmp, args.report_size)

    med, raw_med = statistics.median(ours), statistics.median(raw)
    p99 = statistics.quantiles(ours, n=100)[98]
    rows = [
        {"figure": "Ledger.record() median, file WAL, committed", "value": med * 1e3, "unit": "ms",
         "baseline": raw_med * 1e3, "baseline_label": "bare sqlite3 INSERT+commit", "target": "<= 1 ms",
         "ok": med <= 1e-3},
        {"figure": "Ledger.record() p99", "value": p99 * 1e3, "unit": "ms"},
        {"figure": "8 threads x 500 record() (all 4,000 stored)", "value": threads_wall, "unit": "s"},
        {"figure": f"record_many() of {args.report_size:,} records", "value": fill, "unit": "s"},
    ]
    for k, v in by.items():
        rows.append({"figure": f"report(by={k!r}) over {args.report_size:,} records", "value": v * 1e3,
                     "unit": "ms", "target": "< 500 ms", "ok": v < 0.5})
    rows.append({"figure": f"report(since=1 day ago) over {args.report_size:,} records", "value": recent * 1e3,
                 "unit": "ms", "target": "< 500 ms", "ok": recent < 0.5})

    emit("ledger", rows, args.json)
    return 0 if all(r.get("ok", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
