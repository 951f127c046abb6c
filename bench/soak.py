"""Soak: the public API driven hard against a faulty emulator in its own process, and the emulator abused.

    python bench/soak.py            # a table (about 2-3 minutes on 2 cores)
    python bench/soak.py --quick    # fewer calls and smaller bodies (well under a minute)
    python bench/soak.py --json     # one JSON object for bench/run_all.py

The emulator (``python -m qwen_nb.emulator.cli`` on a free loopback port) answers 10 % of model
requests with 500 and 3 % with 429 + ``Retry-After``, and cuts streams when asked. Through one
``qwen_nb.Session``:

* ``chat_many`` over 2,000 prompts at concurrency 16, per API: are the items in input order, and
  does the ledger's sum of ``attempts`` equal the requests the emulator counted?
* 200 streams cut after a few events (``stream_chat``): each one an interrupted item, same count check;
* 500 concurrent ``achat`` calls: order and count again;
* the client's RSS before and after, per 1,000 calls.

Then the emulator itself: how late a small request is answered while a 50 MB body is being
processed, and the emulator's RSS after ten 20 MB requests. Loopback only; every phase is
bounded in count and time, and the script stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _rows import emit  # bench/_rows.py: how every benchmark prints its rows

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from qwen_nb.emulator.config import default_profiles  # noqa: E402
from qwen_nb.emulator.hosts import emulator_regions  # noqa: E402
from qwen_nb.errors import QwenNbError  # noqa: E402
from qwen_nb.ledger import Ledger  # noqa: E402
from qwen_nb.results import ChatResult  # noqa: E402
from qwen_nb.session import Session  # noqa: E402

FAULTS = {"fail_rate": 0.10, "throttle_rate": 0.03, "retry_after": 0.05}
WORDS = ("bridge", "river", "stone", "arch", "history", "engineer", "steel", "cable", "tower", "road", "the", "of")


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of a process in MB (from /proc, else ``resource`` for this process)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Served:
    """The emulator in a child process on a free loopback port."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.stderr = open(os.devnull, "wb")
        # bodies up to 128 MB are read and processed (the service's own cap, 6 MiB, would refuse the big
        # bodies of the abuse section at once: bench/classroom.py measures that case)
        self.proc = subprocess.Popen([sys.executable, "-m", "qwen_nb.emulator.cli", "--port", str(self.port),
                                      "--max-body-bytes", str(128 * 10**6)],
                                     stdout=subprocess.DEVNULL, stderr=self.stderr, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(timeout=60)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.http.get(self.url + "/_emulator/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the emulator did not start") from None
                time.sleep(0.05)
        self.key = default_profiles(self.url)["default"].key

    def faults(self, **changes: object) -> None:
        self.http.post(self.url + "/_emulator/faults", json=changes).raise_for_status()

    def chat_requests(self) -> int:
        return self.http.get(self.url + "/_emulator/counters").json()["chat"]

    def rss(self) -> float:
        return rss_mb(self.proc.pid)

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


def attempts_of(session: Session, first: int) -> tuple[int, int]:
    """(records, sum of attempts) of the ledger records after the first ``first`` ones."""
    recs = session.ledger.records()[first:]
    return len(recs), sum(r.attempts for r in recs)


def in_order(prompts: list[str], out: list) -> bool:
    """Every result answers its own prompt: the emulator's reply names the prompt's marker word."""
    return len(out) == len(prompts) and all(
        not isinstance(r, ChatResult) or p.split()[0] in r.text for p, r in zip(prompts, out, strict=True))


def count_row(what: str, attempts: int, requests: int) -> dict:
    return {"figure": f"{what}: ledger attempts (vs emulator chat requests)", "value": float(attempts),
            "unit": "1", "baseline": float(requests), "baseline_label": "emulator's counter",
            "target": "equal", "ok": attempts == requests}


def soak(srv: Served, n: int, apis: list[str], cuts: int, concurrent: int) -> tuple[list[dict], dict]:
    """The Session phases; returns rows and details."""
    rows: list[dict] = []
    details: dict = {}
    profiles = default_profiles(srv.url)
    session = Session(profiles, regions=emulator_regions(srv.url), ledger=Ledger(":memory:"))
    session.chat("warm up")
    session.chat("warm up", api="dashscope")
    calls = 0
    rss0 = rss_mb()
    srv.faults(**FAULTS)
    for api in apis:
        prompts = [f"Zq{i:05d} asks about the history of bridges" for i in range(n)]
        before, seen = srv.chat_requests(), len(session.ledger.records())
        t0 = time.perf_counter()
        out = session.chat_many(prompts, concurrency=16, progress=False, model="qwen-plus", api=api)
        wall = time.perf_counter() - t0
        records, attempts = attempts_of(session, seen)
        requests = srv.chat_requests() - before
        failed = sum(isinstance(r, QwenNbError) for r in out)
        calls += n
        ordered = in_order(prompts, out)
        details[f"chat_many_{api}"] = {"wall_s": round(wall, 2), "failed": failed, "records": records,
                                       "attempts": attempts, "emulator_requests": requests, "in_order": ordered}
        rows += [
            {"figure": f"chat_many {n} prompts, concurrency 16, {api}, 10% 500 / 3% 429: items in input order",
             "value": float(ordered), "unit": "yes=1", "target": "1", "ok": ordered},
            {"figure": f"chat_many {n} prompts, {api}: wall time ({failed} items failed after retries)",
             "value": round(wall, 2), "unit": "s"},
            count_row(f"chat_many {n} prompts, {api}", attempts, requests),
        ]
    # streams cut after a few events: each is an interrupted item, never a hang
    srv.faults(fail_rate=0.0, throttle_rate=0.0, cut_after=5, cut_streams=cuts)
    before, seen = srv.chat_requests(), len(session.ledger.records())

    def one_stream(i: int) -> str:
        try:
            s = session.stream_chat(f"Zc{i:05d} explain tides in detail", api=apis[i % len(apis)])
            for _ in s:
                pass
            return "completed"
        except QwenNbError as exc:
            return type(exc).__name__

    t0 = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(one_stream, range(cuts)))
    wall = time.perf_counter() - t0
    records, attempts = attempts_of(session, seen)
    requests = srv.chat_requests() - before
    calls += cuts
    kinds = {k: outcomes.count(k) for k in sorted(set(outcomes))}
    details["cut_streams"] = {"wall_s": round(wall, 2), "outcomes": kinds, "attempts": attempts,
                              "emulator_requests": requests}
    rows += [
        {"figure": f"{cuts} streams cut after 5 events: items that ended in an error (not a hang)",
         "value": float(cuts - outcomes.count("completed")), "unit": "1", "baseline": float(cuts),
         "baseline_label": "streams cut", "target": "all", "ok": outcomes.count("completed") == 0},
        count_row(f"{cuts} cut streams", attempts, requests),
    ]
    # many concurrent asyncio calls
    srv.faults(cut_after=None, **FAULTS)
    before, seen = srv.chat_requests(), len(session.ledger.records())
    prompts = [f"Za{i:05d} asks about the history of bridges" for i in range(concurrent)]

    async def gather() -> list:
        async def one(i: int, p: str):
            try:
                return await session.achat(p, api=apis[i % len(apis)])
            except QwenNbError as exc:
                return exc

        return await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))

    t0 = time.perf_counter()
    out = asyncio.run(gather())
    wall = time.perf_counter() - t0
    records, attempts = attempts_of(session, seen)
    requests = srv.chat_requests() - before
    calls += concurrent
    ordered = in_order(prompts, out)
    failed = sum(isinstance(r, QwenNbError) for r in out)
    details["achat"] = {"wall_s": round(wall, 2), "failed": failed, "attempts": attempts,
                        "emulator_requests": requests, "in_order": ordered}
    rows += [
        {"figure": f"{concurrent} concurrent achat ({failed} failed after retries): results in input order",
         "value": float(ordered), "unit": "yes=1", "target": "1", "ok": ordered},
        {"figure": f"{concurrent} concurrent achat: wall time", "value": round(wall, 2), "unit": "s"},
        count_row(f"{concurrent} concurrent achat", attempts, requests),
    ]
    rss1 = rss_mb()
    per_1000 = (rss1 - rss0) / calls * 1000
    details["client_rss_mb"] = {"before": round(rss0, 1), "after": round(rss1, 1), "calls": calls}
    rows.append({"figure": f"client RSS growth per 1,000 calls ({calls} calls, {rss0:.0f} -> {rss1:.0f} MB)",
                 "value": round(per_1000, 2), "unit": "MB"})
    srv.faults(fail_rate=0.0, throttle_rate=0.0, retry_after=None)
    session.close()
    return rows, details


def _text(nbytes: int) -> str:
    import random

    rng = random.Random(1)
    parts, size = [], 0
    while size < nbytes:
        w = rng.choice(WORDS) + rng.choice((" ", " ", ", ", ". "))
        parts.append(w)
        size += len(w)
    return "".join(parts)[:nbytes]


def _post_raw(port: int, path: str, key: str, body: bytes) -> int:
    """POST ``body`` over a plain socket (sendall releases the GIL for the whole upload); the status."""
    with socket.create_connection(("127.0.0.1", port), timeout=300) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                  .encode())
        s.sendall(body)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0


def abuse(srv: Served, probe_mb: int, big_mb: int, bigs: int) -> tuple[list[dict], dict]:
    """Small requests while a huge body is processed; RSS after several big requests."""
    path = "/ap-southeast-1/compatible-mode/v1/chat/completions"
    small = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {srv.key}"}
    client = httpx.Client(timeout=60)
    for _ in range(20):
        client.post(srv.url + path, json=small, headers=headers)
    idle = []
    for _ in range(50):
        t = time.perf_counter()
        client.post(srv.url + path, json=small, headers=headers)
        idle.append(time.perf_counter() - t)
    body = json.dumps({"model": "qwen-plus", "messages": [{"role": "user", "content": _text(probe_mb * 10**6)}]})
    raw = body.encode()
    del body
    during: list[float] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            t = time.perf_counter()
            client.post(srv.url + path, json=small, headers=headers)
            during.append(time.perf_counter() - t)
            time.sleep(0.005)

    # the same polling without a big body first: how late the loop wakes on this machine anyway
    srv.http.post(srv.url + "/_emulator/reset").raise_for_status()
    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(3.0)
    done.set()
    poller.join()
    quiet_lag = client.get(srv.url + "/_emulator/stats").json()["loop_lag_ms_max"]
    during.clear()
    done.clear()
    srv.http.post(srv.url + "/_emulator/reset").raise_for_status()  # zero the loop-stall figures
    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    status = _post_raw(srv.port, path, srv.key, raw)
    big_s = time.perf_counter() - t0
    done.set()
    poller.join()
    del raw
    stats = client.get(srv.url + "/_emulator/stats").json()
    idle_ms = sorted(idle)[len(idle) // 2] * 1000
    worst_ms = max(during) * 1000
    p99_ms = sorted(during)[int(0.99 * (len(during) - 1))] * 1000
    rss0 = srv.rss()
    big = json.dumps({"model": "qwen-plus", "messages": [{"role": "user", "content": _text(big_mb * 10**6)}]})
    raw = big.encode()
    del big
    statuses = [_post_raw(srv.port, path, srv.key, raw) for _ in range(bigs)]
    rss1 = srv.rss()
    t = time.perf_counter()
    log = client.get(srv.url + "/_emulator/requests", params={"limit": "all"})
    log_s = time.perf_counter() - t
    client.close()
    details = {"loop_lag_ms_max": stats["loop_lag_ms_max"], "loop_lag_ms_max_quiet": quiet_lag,
               "probe_status": status, "probe_s": round(big_s, 2),
               "small_during": len(during),
               "idle_ms_p50": round(idle_ms, 2), "big_statuses": statuses, "log_bytes": len(log.content),
               "log_s": round(log_s, 3)}
    lag = stats["loop_lag_ms_max"]
    rows = [
        {"figure": f"emulator event loop, worst stall while a {probe_mb} MB body is processed ({big_s:.1f} s, "
         f"answer {status})", "value": lag, "unit": "ms", "baseline": quiet_lag,
         "baseline_label": "same polling, no big body, 3 s", "target": "<= 100 ms", "ok": lag <= 100},
        {"figure": f"small request while the {probe_mb} MB body is processed: p99 ({len(during)} requests)",
         "value": round(p99_ms, 1), "unit": "ms", "baseline": round(idle_ms, 2), "baseline_label": "idle p50",
         "target": "<= 100 ms", "ok": p99_ms <= 100},
        {"figure": f"small request while the {probe_mb} MB body is processed: worst (client side, incl. CPU "
         "contention)", "value": round(worst_ms, 1), "unit": "ms", "baseline": round(idle_ms, 2),
         "baseline_label": "idle p50"},
        {"figure": f"emulator RSS after {bigs} requests of {big_mb} MB (answers {sorted(set(statuses))})",
         "value": round(rss1, 1), "unit": "MB", "baseline": round(rss0, 1), "baseline_label": "before them"},
        {"figure": f"GET /_emulator/requests?limit=all afterwards ({len(log.content) / 1e6:.2f} MB)",
         "value": round(log_s * 1000, 1), "unit": "ms"},
    ]
    return rows, details


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object (for bench/run_all.py)")
    ap.add_argument("--quick", action="store_true", help="fewer calls, smaller bodies")
    ap.add_argument("--apis", default="openai,dashscope", help="comma-separated APIs for chat_many (default both)")
    args = ap.parse_args(argv)
    logging.getLogger("qwen_nb").setLevel(logging.ERROR)  # no line per retry: the rows count them
    apis = args.apis.split(",")
    n, cuts, concurrent = (300, 50, 200) if args.quick else (2000, 200, 500)
    probe_mb, big_mb, bigs = (10, 5, 4) if args.quick else (50, 20, 10)
    srv = Served()
    try:
        rows, details = soak(srv, n, apis, cuts, concurrent)
        more, abuse_details = abuse(srv, probe_mb, big_mb, bigs)
    finally:
        srv.close()
    details.update(abuse_details)
    rows += more
    if args.json:
        print(json.dumps({"name": "soak", "rows": rows, "details": details}))
    else:
        emit("soak", rows, False)
        print(json.dumps(details, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
