"""The Batch API at scale: a 100,000-line batch through the emulator (build, upload, fetch, join), time and memory.

    python bench/batch_api.py            # a table
    python bench/batch_api.py --json     # one JSON object for bench/run_all.py
    python bench/batch_api.py --lines 20000

The emulator runs in this process (its clock runs a job as soon as its answers are made; it
answers the 1,000 distinct prompts once each and the repeats from that: its own speed is not
what is measured). Each client runs in a fresh child process, which reports its wall time per
stage and its peak resident memory (``resource.getrusage``):

- ``qwen-nb``: ``q.batch(prompts)`` (every row checked like ``chat()``, written to a temporary
  file, uploaded as a file), ``job.wait()``, ``job.results()`` (output and error files streamed to
  disk, indexed by row, usage recorded in a ledger file at the batch price) and the join: every
  row's answer, in input order, written to a CSV file.
- baseline, the raw ``openai`` SDK as its docs show it: the JSONL built in memory and uploaded,
  the batch polled, ``files.content(id).read()`` parsed whole and sorted by ``custom_id``, then
  the same CSV.

Target: the qwen-nb client stays below 200 MB peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from _rows import emit  # bench/_rows.py: how every benchmark prints its rows

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qwen_nb.emulator import Emulator  # noqa: E402

LINES, DISTINCT, TARGET_MB = 100_000, 1_000, 200.0

QWEN_NB = textwrap.dedent(
    """
    import csv, json, resource, sys, time
    import qwen_nb as q
    n, distinct, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    q.connect()
    stages = {}
    t0 = time.perf_counter()
    prompts = [f"Label the topic of message {i % distinct}." for i in range(n)]
    job = q.batch(prompts, model="qwen-flash", max_tokens=30)
    del prompts
    stages["build+upload"] = time.perf_counter() - t0
    t = time.perf_counter()
    job.wait(progress=False, poll=0.2)
    stages["wait"] = time.perf_counter() - t
    t = time.perf_counter()
    results = job.results(progress=False)
    stages["fetch"] = time.perf_counter() - t
    t = time.perf_counter()
    answered = 0
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        for i, r in enumerate(results):
            ok = isinstance(r, q.ChatResult)
            answered += ok
            w.writerow([i, r.text if ok else "", r.usage.output_tokens if ok else 0])
    stages["join"] = time.perf_counter() - t
    total = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"stages": stages, "total": total, "peak_mb": peak, "answered": answered,
                      "jobs": len(job.ids)}))
    """
)

RAW_SDK = textwrap.dedent(
    """
    import csv, json, resource, sys, time
    import openai
    n, distinct, out, key, base = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    client = openai.OpenAI(api_key=key, base_url=base)
    stages = {}
    t0 = time.perf_counter()
    def line(i):
        msg = {"role": "user", "content": f"Label the topic of message {i % distinct}."}
        return json.dumps({"custom_id": str(i), "method": "POST", "url": "/v1/chat/completions",
                           "body": {"model": "qwen-flash", "max_tokens": 30, "enable_thinking": False,
                                    "messages": [msg]}})
    lines = [line(i) for i in range(n)]
    jobs = []
    for start in range(0, n, 50_000):  # the service's per-file limit
        data = ("\\n".join(lines[start:start + 50_000]) + "\\n").encode()
        f = client.files.create(file=("in.jsonl", data), purpose="batch")
        jobs.append(client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                          completion_window="24h"))
    stages["build+upload"] = time.perf_counter() - t0
    t = time.perf_counter()
    while True:
        jobs = [client.batches.retrieve(j.id) for j in jobs]
        if all(j.status in ("completed", "failed", "expired", "cancelled") for j in jobs):
            break
        time.sleep(0.2)
    stages["wait"] = time.perf_counter() - t
    t = time.perf_counter()
    answers = {}
    for j in jobs:
        for line in client.files.content(j.output_file_id).read().decode().splitlines():
            obj = json.loads(line)
            answers[int(obj["custom_id"])] = obj["response"]["body"]
    stages["fetch"] = time.perf_counter() - t
    t = time.perf_counter()
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        for i in range(n):
            body = answers.get(i)
            w.writerow([i, body["choices"][0]["message"]["content"] if body else "",
                        body["usage"]["completion_tokens"] if body else 0])
    stages["join"] = time.perf_counter() - t
    total = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"stages": stages, "total": total, "peak_mb": peak, "answered": len(answers), "jobs": len(jobs)}))
    """
)


def _child(code: str, args: list[str], env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"client failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object (for bench/run_all.py)")
    ap.add_argument("--lines", type=int, default=LINES, help=f"lines in the batch (default {LINES:,})")
    args = ap.parse_args(argv)
    n = args.lines
    rows = []
    with Emulator() as emu, tempfile.TemporaryDirectory() as tmp:
        emu.set_faults(batch_speed=1e9, batch_hours=1.0)
        env = {k: v for k, v in os.environ.items() if "API_KEY" not in k}
        env.update(QWEN_NB_EMULATOR=emu.url, QWEN_NB_LEDGER=str(Path(tmp) / "usage.sqlite"),
                   PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
        ours = _child(QWEN_NB, [str(n), str(DISTINCT), str(Path(tmp) / "ours.csv")], env)
        raw = _child(RAW_SDK, [str(n), str(DISTINCT), str(Path(tmp) / "raw.csv"), emu.key(),
                               emu.base_url("ap-southeast-1")], env)
        same = (Path(tmp) / "ours.csv").read_bytes() == (Path(tmp) / "raw.csv").read_bytes()
    assert ours["answered"] == raw["answered"] == n, (ours, raw)
    assert same, "qwen-nb's joined answers differ from the raw SDK's"
    label = f"{n:,} lines"
    rows.append({"figure": f"batch {label}: client peak memory", "value": round(ours["peak_mb"], 1), "unit": "MB",
                 "baseline": round(raw["peak_mb"], 1), "baseline_label": "raw openai SDK, whole files in memory",
                 "target": f"< {TARGET_MB:g} MB", "ok": ours["peak_mb"] < TARGET_MB,
                 "ratio": round(ours["peak_mb"] / raw["peak_mb"], 3)})
    rows.append({"figure": f"batch {label}: wall time (build, upload, wait, fetch, join)",
                 "value": round(ours["total"], 2), "unit": "s", "baseline": round(raw["total"], 2),
                 "baseline_label": "raw openai SDK", "ratio": round(ours["total"] / raw["total"], 3)})
    for stage, seconds in ours["stages"].items():
        rows.append({"figure": f"batch {label}: {stage}", "value": round(seconds, 2), "unit": "s",
                     "baseline": round(raw["stages"][stage], 2), "baseline_label": "raw openai SDK"})
    emit("batch_api", rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
