"""Classroom load on the local emulator: N concurrent streaming clients through the openai SDK.

Each client streams answers of ``--tokens`` tokens with the emulator paced at
``--ttft`` seconds to the first token and ``--tps`` tokens per second, and we
measure, for every content chunk, how late it arrived compared with that pacing
(the emulator's and the SDK's own overhead). Bounded in time by ``--duration``.

    python bench/emulator.py                     # table
    python bench/emulator.py --json              # one JSON object for bench/run_all.py (rows; all figures
                                                 # also under "details")
    python bench/emulator.py --server subprocess # emulator in its own process
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


class _Server:
    """The emulator, in this process (a thread) or in a child process."""

    def __init__(self, mode: str, ttft: float, tps: float, tokens: int) -> None:
        self.mode, self.proc, self.emu = mode, None, None
        if mode == "inprocess":
            from qwen_nb.emulator import Emulator

            self.emu = Emulator(ttft=ttft, tokens_per_second=tps, reply_tokens=tokens).start()
            self.url = self.emu.url
        else:
            import socket

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            cmd = [sys.executable, "-m", "qwen_nb.emulator.cli", "--port", str(port), "--ttft", str(ttft),
                   "--tps", str(tps), "--reply-tokens", str(tokens)]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.url = f"http://127.0.0.1:{port}"
            import httpx

            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    if httpx.get(self.url + "/_emulator/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            else:
                raise RuntimeError("emulator subprocess did not start")

    def close(self) -> None:
        if self.emu is not None:
            self.emu.stop()
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def _asyncio_load(base: str, key: str, clients: int, ttft: float, tps: float, tokens: int, duration: float,
                  streams: list, done: list[float], errors: list[str]) -> float:
    """All clients as tasks of one event loop (``AsyncOpenAI``); returns the wall time of the load."""
    import asyncio

    from openai import AsyncOpenAI

    async def student(i: int, client: AsyncOpenAI, stop_at: float) -> None:
        n = 0
        while time.perf_counter() < stop_at - (ttft + tokens / tps):
            mine: list[float] = []
            t0 = time.perf_counter()
            try:
                stream = await client.chat.completions.create(
                    model="qwen-plus", stream=True, max_tokens=tokens,
                    messages=[{"role": "user", "content": f"Student {i} asks about the history of bridges, #{n}"}])
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        mine.append(time.perf_counter())
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            streams.append((t0, mine))
            done.append(time.perf_counter() - t0)
            n += 1

    async def main() -> float:
        cs = [AsyncOpenAI(base_url=base, api_key=key, max_retries=0, timeout=60) for _ in range(clients)]
        await asyncio.gather(*(c.chat.completions.create(model="qwen-plus", max_tokens=1,
                                                         messages=[{"role": "user", "content": "hi"}]) for c in cs))
        t = time.perf_counter()
        await asyncio.gather(*(student(i, c, t + duration) for i, c in enumerate(cs)))
        wall = time.perf_counter() - t
        for c in cs:
            await c.close()
        return wall

    return asyncio.run(main())


def run(clients: int = 30, ttft: float = 0.2, tps: float = 50.0, tokens: int = 100, duration: float = 20.0,
        server: str = "inprocess", client_mode: str = "threads") -> dict:
    """Run the load and return the figures."""
    from openai import OpenAI

    from qwen_nb.emulator.config import default_profiles

    t_start = time.perf_counter()
    srv = _Server(server, ttft, tps, tokens)  # answers are exactly `tokens` long (reply_tokens + max_tokens)
    startup = time.perf_counter() - t_start
    key = default_profiles(srv.url)["default"].key
    base = f"{srv.url}/ap-southeast-1/compatible-mode/v1"
    streams: list[tuple[float, list[float]]] = []  # (request start, arrival time of each content chunk)
    done: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def student(i: int) -> None:
        client = OpenAI(base_url=base, api_key=key, max_retries=0, timeout=60)
        try:  # warm up: open the connection and the SDK's first-use paths before measuring
            client.chat.completions.create(model="qwen-plus", max_tokens=1,
                                           messages=[{"role": "user", "content": "hi"}])
        except Exception as exc:
            with lock:
                errors.append(f"warm-up {type(exc).__name__}: {exc}")
        barrier.wait()
        n = 0
        while time.perf_counter() < stop_at - (ttft + tokens / tps):
            mine: list[float] = []
            t0 = time.perf_counter()
            try:
                stream = client.chat.completions.create(
                    model="qwen-plus", stream=True, max_tokens=tokens,
                    messages=[{"role": "user", "content": f"Student {i} asks about the history of bridges, #{n}"}])
                for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        mine.append(time.perf_counter())
            except Exception as exc:  # reported, not raised: a bench counts failures
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                streams.append((t0, mine))
                done.append(time.perf_counter() - t0)
            n += 1
        client.close()

    if client_mode == "asyncio":
        wall = _asyncio_load(base, key, clients, ttft, tps, tokens, duration, streams, done, errors)
    else:
        threads = [threading.Thread(target=student, args=(i,)) for i in range(clients)]
        stop_at = float("inf")
        for t in threads:
            t.start()
        stop_at = time.perf_counter() + duration + 1.0  # (warm-ups finish within the extra second)
        barrier.wait()
        t_load = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t_load
    import httpx

    server_stats = httpx.get(srv.url + "/_emulator/stats").json()
    t_stop = time.perf_counter()
    srv.close()
    shutdown = time.perf_counter() - t_stop
    # per chunk: lateness against the pacing counted from the stream's first token (delivery jitter),
    # and against the request start (which also includes the client's own request-building time)
    ms = [(a - (arr[0] + k / tps)) * 1000 for _, arr in streams for k, a in enumerate(arr) if k]
    ms_abs = [(a - (t0 + ttft + k / tps)) * 1000 for t0, arr in streams for k, a in enumerate(arr)]
    first = [arr[0] - t0 for t0, arr in streams if arr]
    return {
        "server": server,
        "client_mode": client_mode,
        "clients": clients,
        "ttft_s": ttft,
        "tokens_per_second": tps,
        "tokens_per_answer": tokens,
        "requests": len(done),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(done) / wall, 2) if wall else 0.0,
        "chunks": len(ms_abs),
        "chunks_per_s": round(len(ms_abs) / wall, 1) if wall else 0.0,
        "extra_delay_ms_p50": round(_percentile(ms, 50), 2),
        "extra_delay_ms_p95": round(_percentile(ms, 95), 2),
        "extra_delay_ms_p99": round(_percentile(ms, 99), 2),
        "extra_delay_ms_max": round(max(ms), 2) if ms else None,
        "extra_delay_from_request_ms_p50": round(_percentile(ms_abs, 50), 2),
        "extra_delay_from_request_ms_p99": round(_percentile(ms_abs, 99), 2),
        "server_writes": server_stats["writes"],
        "server_late_ms_p50": server_stats["late_ms_p50"],
        "server_late_ms_p99": server_stats["late_ms_p99"],
        "server_late_ms_max": server_stats["late_ms_max"],
        "ttft_ms_p50": round(_percentile(first, 50) * 1000, 1),
        "ttft_ms_p99": round(_percentile(first, 99) * 1000, 1),
        "request_s_mean": round(statistics.fmean(done), 3) if done else None,
        "server_start_s": round(startup, 3),
        "server_stop_s": round(shutdown, 3),
        "cpus": os.cpu_count(),
    }


def rows_of(res: dict) -> list[dict]:
    """The figures in bench/run_all.py's row format."""
    what = (f"{res['clients']} streaming clients ({res['client_mode']}, emulator {res['server']}), "
            f"{res['tokens_per_answer']}-token answers")
    ideal = res["clients"] / (res["ttft_s"] + res["tokens_per_answer"] / res["tokens_per_second"])
    return [
        {"figure": f"requests/s, {what}", "value": res["requests_per_s"], "unit": "1/s", "baseline": round(ideal, 2),
         "baseline_label": "exact pacing (clients / (ttft + tokens / tps))"},
        {"figure": "failed requests", "value": float(res["errors"]), "unit": "1", "target": "0",
         "ok": res["errors"] == 0},
        {"figure": "extra delay per chunk, p50", "value": res["extra_delay_ms_p50"], "unit": "ms"},
        {"figure": "extra delay per chunk, p99", "value": res["extra_delay_ms_p99"], "unit": "ms"},
        {"figure": "time to first token, p50", "value": res["ttft_ms_p50"], "unit": "ms",
         "baseline": res["ttft_s"] * 1000, "baseline_label": "configured ttft"},
        {"figure": "emulator write lateness, p99", "value": res["server_late_ms_p99"], "unit": "ms"},
        {"figure": "emulator start", "value": res["server_start_s"], "unit": "s", "target": "< 1 s"
         if res["server"] == "inprocess" else None, "ok": res["server_start_s"] < 1 if res["server"] == "inprocess"
         else None},
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=30)
    p.add_argument("--ttft", type=float, default=0.2)
    p.add_argument("--tps", type=float, default=50.0)
    p.add_argument("--tokens", type=int, default=100, help="answer length in tokens (max_tokens)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of load (the whole run stays under ~1 min)")
    p.add_argument("--server", choices=("inprocess", "subprocess"), default="inprocess")
    p.add_argument("--clients-as", dest="client_mode", choices=("threads", "asyncio"), default="threads",
                   help="client concurrency: one thread per client (sync SDK) or one event loop (async SDK)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    a = p.parse_args(argv)
    res = run(a.clients, a.ttft, a.tps, a.tokens, min(a.duration, 50.0), a.server, a.client_mode)
    if a.json:
        print(json.dumps({"name": "emulator", "rows": rows_of(res), "details": res}))
        return 0
    print(f"emulator classroom bench: {a.clients} streaming clients, ttft {a.ttft}s, {a.tps} tokens/s, "
          f"{a.tokens}-token answers, server {a.server}, clients as {a.client_mode}, {res['cpus']} CPUs")
    rows = [
        ("requests (errors)", f"{res['requests']} ({res['errors']})"),
        ("requests/s", res["requests_per_s"]),
        ("chunks/s", res["chunks_per_s"]),
        ("extra delay per chunk p50 / p95 / p99 / max", f"{res['extra_delay_ms_p50']} / {res['extra_delay_ms_p95']} / "
         f"{res['extra_delay_ms_p99']} / {res['extra_delay_ms_max']} ms"),
        ("  same, counted from request start p50 / p99", f"{res['extra_delay_from_request_ms_p50']} / "
         f"{res['extra_delay_from_request_ms_p99']} ms"),
        ("emulator write lateness p50 / p99 / max", f"{res['server_late_ms_p50']} / {res['server_late_ms_p99']} / "
         f"{res['server_late_ms_max']} ms"),
        ("time to first token p50 / p99", f"{res['ttft_ms_p50']} / {res['ttft_ms_p99']} ms"),
        ("mean request time", f"{res['request_s_mean']} s"),
        ("server start / stop", f"{res['server_start_s']} / {res['server_stop_s']} s"),
    ]
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{w}}  {v}")
    if res["first_error"]:
        print(f"  first error: {res['first_error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
