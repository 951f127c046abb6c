"""Classroom: 30 students on one emulator in its own process, and a 50 MB body sent next to small requests.

1. A class of 30 (``qwen-nb classroom init``) served by ``qwen-nb emulator --classroom`` on
   127.0.0.2; each student, in its own thread, runs tutorial-like calls (a session call, a stream,
   a refused model, a grant, both SDKs, their own request log). Figures: calls, p99 latency against
   one student alone (the same calls, same run), the emulator's RSS.
2. A 50 MB request body while a poller sends small chat requests: how much later the small ones
   are answered than when idle. With the service's cap (6 MiB, the default) the big body is refused
   from its Content-Length, or, sent chunked, after 6 MiB; with a raised cap (``--max-body-bytes``)
   it is read whole and tokenised in the helper process, off the event loop. Target: the small
   request's p99 delay over idle <= 100 ms.

Loopback only (127.0.0.0/8). ``python bench/classroom.py [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _rows import emit  # bench/_rows.py: how every benchmark prints its rows

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from qwen_nb.classroom import init_classroom  # noqa: E402
from qwen_nb.emulator.config import load_config, running_profiles  # noqa: E402
from qwen_nb.emulator.hosts import emulator_regions  # noqa: E402
from qwen_nb.errors import QwenNbError  # noqa: E402
from qwen_nb.ledger import Ledger  # noqa: E402
from qwen_nb.session import Session  # noqa: E402

HOST = "127.0.0.2"
PATH = "/ap-southeast-1/compatible-mode/v1/chat/completions"


class Served:
    """``qwen-nb emulator`` in a child process on 127.0.0.2."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "qwen_nb.cli", "emulator", "--host", HOST, "--port", "0",
                                      *args], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        match = re.search(r"on (http://\S+?):(\d+)", first)
        if match is None:
            self.stop()
            raise RuntimeError(f"the emulator did not start: {first!r}")
        self.url = f"{match.group(1)}:{match.group(2)}"
        self.port = int(match.group(2))
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def rss(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _p(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))] * 1000


def student_run(url: str, key: str, name: str) -> list[float]:
    """One student's tutorial-like calls; the latency of each, seconds."""
    import dashscope
    import openai

    times: list[float] = []

    def timed(fn, *a, **kw):
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            times.append(time.perf_counter() - t)

    regions = emulator_regions(url)
    s = Session(timed(running_profiles, url, key=key), regions=regions, ledger=Ledger(":memory:"), max_retries=0)
    try:
        timed(s.chat, f"Hello from {name}")
        timed(lambda: list(s.stream_chat(f"Stream for {name}")))
        try:
            timed(s.chat, "hi", model="qwen-max")
        except QwenNbError:
            pass
        timed(s.grant, "qwen-max")
        timed(s.chat, "hi", model="qwen-max")
        timed(s.revoke, "qwen-max")
        with openai.OpenAI(base_url=regions["ap-southeast-1"].compatible_base(), api_key=key, max_retries=0) as oa:
            timed(oa.chat.completions.create, model="qwen-flash", messages=[{"role": "user", "content": name}])
        timed(dashscope.Generation.call, api_key=key, base_address=regions["ap-southeast-1"].native_base(),
              model="qwen-flash", messages=[{"role": "user", "content": name}], result_format="message")
        timed(httpx.get, url + "/_emulator/requests", headers={"Authorization": f"Bearer {key}"}, timeout=60)
    finally:
        s.close()
    return times


def classroom(students: int) -> tuple[list[dict], dict]:
    with tempfile.TemporaryDirectory() as tmp:
        files = init_classroom(students, tmp, url=f"http://{HOST}:8765", name="bench")
        token = load_config(files.config).classroom.teacher_token  # type: ignore[union-attr]
        srv = Served("--classroom", str(files.config))
        try:
            alone = student_run(srv.url, files.students[0].key, files.students[0].name)  # warm-up
            alone = student_run(srv.url, files.students[0].key, files.students[0].name)
            httpx.post(srv.url + "/_emulator/reset", headers={"Authorization": f"Bearer {token}"}).raise_for_status()
            rss0 = srv.rss()
            all_times: list[float] = []
            lock = threading.Lock()

            def one(st) -> None:
                t = student_run(srv.url, st.key, st.name)
                with lock:
                    all_times.extend(t)

            t0 = time.perf_counter()
            threads = [threading.Thread(target=one, args=(st,)) for st in files.students]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            counted = httpx.get(srv.url + "/_emulator/counters", headers={"Authorization": f"Bearer {token}"}).json()
            rss1 = srv.rss()
        finally:
            srv.stop()
    p99, base = _p(all_times, 0.99), _p(alone, 0.5)
    rows = [
        {"figure": f"classroom: {students} students at once, {len(all_times)} calls ({counted['total']} requests) "
         f"in {wall:.1f} s: p99 latency", "value": round(p99, 1), "unit": "ms", "baseline": round(base, 2),
         "baseline_label": "one student alone, p50"},
        {"figure": f"classroom: emulator RSS after {students} students", "value": round(rss1, 1), "unit": "MB",
         "baseline": round(rss0, 1), "baseline_label": "after one student"},
    ]
    return rows, {"calls": len(all_times), "requests": counted["total"], "wall_s": round(wall, 1),
                  "p50_ms": round(_p(all_times, 0.5), 1), "p99_ms": round(p99, 1), "rss_mb": round(rss1, 1),
                  "load_average": round(os.getloadavg()[0], 1)}


def _post_big(port: int, key: str, body: bytes, chunked: bool) -> int:
    """POST a big body over a plain socket (sendall releases the GIL); the answer's status (0: none)."""
    with socket.create_connection((HOST, port), timeout=300) as s:
        length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
        s.sendall(f"POST {PATH} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {key}\r\n"
                  f"Content-Type: application/json\r\n{length}\r\nConnection: close\r\n\r\n".encode())
        try:
            if chunked:
                step = 1 << 20
                for i in range(0, len(body), step):
                    piece = body[i:i + step]
                    s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
                s.sendall(b"0\r\n\r\n")
            else:
                s.sendall(body)
        except OSError:
            pass  # refused midway: the server closed the connection
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0


def big_body(mb: int, args: tuple[str, ...], chunked: bool, label: str) -> tuple[dict, dict]:
    srv = Served(*args)
    try:
        key = json.loads(httpx.get(srv.url + "/_emulator/workspaces").content)[0]["keys"][0]
        small = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"Authorization": f"Bearer {key}"}
        client = httpx.Client(timeout=60)
        for _ in range(20):
            client.post(srv.url + PATH, json=small, headers=headers)
        idle = []
        for _ in range(60):
            t = time.perf_counter()
            client.post(srv.url + PATH, json=small, headers=headers)
            idle.append(time.perf_counter() - t)
        words = ("bridge ", "river ", "stone ", "arch, ", "the ", "of. ")
        text = "".join(words[i % len(words)] for i in range(mb * 10**6 // 5))[:mb * 10**6]
        raw = json.dumps({"model": "qwen-plus", "messages": [{"role": "user", "content": text}]}).encode()
        del text
        during: list[float] = []
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                t = time.perf_counter()
                client.post(srv.url + PATH, json=small, headers=headers)
                during.append(time.perf_counter() - t)
                time.sleep(0.005)

        # the emulator's own event-loop stalls (its /_emulator/stats; this client is 127.0.0.1, its loopback):
        # first the same polling without a big body, for how late the loop wakes on this machine anyway
        client.post(srv.url + "/_emulator/reset").raise_for_status()
        poller = threading.Thread(target=poll)
        poller.start()
        time.sleep(3.0)
        done.set()
        poller.join()
        quiet_lag = client.get(srv.url + "/_emulator/stats").json()["loop_lag_ms_max"]
        during.clear()
        done.clear()
        client.post(srv.url + "/_emulator/reset").raise_for_status()
        poller = threading.Thread(target=poll)
        poller.start()
        time.sleep(0.2)
        t0 = time.perf_counter()
        status = _post_big(srv.port, key, raw, chunked)
        big_s = time.perf_counter() - t0
        time.sleep(0.1)
        done.set()
        poller.join()
        lag = client.get(srv.url + "/_emulator/stats").json()["loop_lag_ms_max"]
        client.close()
    finally:
        srv.stop()
    idle_p50 = _p(idle, 0.5)
    delay_p99 = max(0.0, _p(during, 0.99) - idle_p50)
    row = {"figure": f"small request while a {mb} MB body is sent {label} (answer {status} after {big_s:.1f} s): "
           f"p99 delay over idle ({len(during)} requests)", "value": round(delay_p99, 1), "unit": "ms",
           "baseline": round(idle_p50, 2), "baseline_label": "idle p50", "target": "<= 100 ms",
           "ok": delay_p99 <= 100}
    return row, {"status": status, "big_s": round(big_s, 2), "worst_ms": round(max(during) * 1000, 1),
                 "loop_lag_ms_max": lag, "loop_lag_ms_max_quiet": quiet_lag}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--skip-class", action="store_true", help="only the big-body rows")
    args = parser.parse_args()
    rows, details = ([], {}) if args.skip_class else classroom(args.students)
    cases = (((), False, "with Content-Length, the service's 6 MiB cap"),
             ((), True, "chunked, the service's 6 MiB cap"),
             (("--max-body-bytes", str(64 * 2**20)), False, "under a raised 64 MiB cap (read and tokenised)"))
    for extra, chunked, label in cases:
        row, more = big_body(args.mb, extra, chunked, label)
        rows.append(row)
        details[label] = more
    rows.append({"figure": f"emulator event loop, worst stall while the {args.mb} MB body is read and tokenised "
                 "(raised cap)", "value": more["loop_lag_ms_max"], "unit": "ms",
                 "baseline": more["loop_lag_ms_max_quiet"], "baseline_label": "same polling, no big body, 3 s",
                 "target": "<= 100 ms",
                 "ok": more["loop_lag_ms_max"] <= 100})
    details["load_average_end"] = round(os.getloadavg()[0], 1)
    if not args.json:
        print(json.dumps(details, indent=2))
    emit("classroom", rows, args.json)


if __name__ == "__main__":
    main()
