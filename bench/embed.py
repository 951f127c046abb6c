"""``q.embed()`` over 10,000 short texts against the raw SDK loop with the same batching, and with concurrency.

    python bench/embed.py            # a table
    python bench/embed.py --json     # one JSON object for bench/run_all.py

Against the emulator in its own process (as the real service is), pacing off: the raw
``openai.OpenAI().embeddings.create`` loop over batches of the model's 10 rows per request
(SDK retries off) and ``Session.embed`` over the same texts (checks, batching, the pipeline, the
numpy view and one ledger row) are run alternately, ``--rounds`` times each; the medians are
compared (target: within 5 %). qwen-nb reads the SDK's raw answer with ``json.loads`` (the SDK's
own model building visits every float in Python), so a second baseline does the same by hand:
that ratio is qwen-nb's own overhead. Then ``embed(concurrency=N)``: the speed-up over one batch
at a time.
Vectors of 256 dimensions keep the emulator's share of the time small.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai  # noqa: E402
from _emulator_process import EmulatorProcess  # bench/_emulator_process.py: the emulator as a server
from _rows import emit  # bench/_rows.py: how every benchmark prints its rows

from qwen_nb import facts  # noqa: E402
from qwen_nb.ledger import Ledger  # noqa: E402
from qwen_nb.session import Session  # noqa: E402

MODEL = "text-embedding-v4"
DIM = 256
TARGET = 1.05


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--texts", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    texts = [f"short text number {i} about topic {i % 37}" for i in range(args.texts)]
    rows_per_request = facts.KIND_MODELS[MODEL].max_rows
    batches = [texts[i:i + rows_per_request] for i in range(0, len(texts), rows_per_request)]
    emu = EmulatorProcess()
    try:
        base = emu.base_url("ap-southeast-1", "openai")
        raw = openai.OpenAI(api_key=emu.key(), base_url=base, max_retries=0)
        session = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"))

        def raw_loop(part: list[list[str]] | None = None) -> float:
            t0 = time.perf_counter()
            out = []
            for b in batches if part is None else part:
                resp = raw.embeddings.create(model=MODEL, input=b, dimensions=DIM, encoding_format="float")
                out += [d.embedding for d in resp.data]
            assert part is not None or len(out) == len(texts)
            return time.perf_counter() - t0

        def raw_json_loop() -> float:
            """The same requests read the way qwen-nb reads them (the SDK's raw response, ``json.loads``)."""
            t0 = time.perf_counter()
            out = []
            for b in batches:
                resp = raw.embeddings.with_raw_response.create(model=MODEL, input=b, dimensions=DIM,
                                                               encoding_format="float")
                out += [d["embedding"] for d in resp.http_response.json()["data"]]
            assert len(out) == len(texts)
            return time.perf_counter() - t0

        def ours(concurrency: int = 1) -> float:
            t0 = time.perf_counter()
            r = session.embed(texts, model=MODEL, dimensions=DIM, concurrency=concurrency)
            took = time.perf_counter() - t0
            assert r.shape == (len(texts), DIM)  # the numpy view is made on first use, not by embed()
            return took

        raw_loop(batches[:20])  # warm-up: connections, imports
        session.embed(texts[:200], model=MODEL, dimensions=DIM)
        a, b, j = [], [], []
        for i in range(args.rounds):
            if i % 2:
                b.append(ours())
                j.append(raw_json_loop())
                a.append(raw_loop())
            else:
                a.append(raw_loop())
                j.append(raw_json_loop())
                b.append(ours())
        t_raw, t_ours, t_json = statistics.median(a), statistics.median(b), statistics.median(j)
        c = [ours(args.concurrency) for _ in range(args.rounds)]
        t_conc = statistics.median(c)
        session.close()
        raw.close()
    finally:
        emu.stop()
    rows = [
        {"figure": f"embed() {len(texts)} texts, {len(batches)} requests", "value": round(t_ours, 3), "unit": "s",
         "baseline": round(t_raw, 3), "baseline_label": "raw openai SDK loop, same batches",
         "target": f"<= {TARGET}x", "ok": t_ours <= TARGET * t_raw},
        {"figure": f"embed() {len(texts)} texts, against the same raw JSON reading", "value": round(t_ours, 3),
         "unit": "s", "baseline": round(t_json, 3), "baseline_label": "raw SDK with_raw_response + json.loads",
         "target": f"<= {TARGET}x", "ok": t_ours <= TARGET * t_json},
        {"figure": f"embed(concurrency={args.concurrency}) {len(texts)} texts", "value": round(t_conc, 3),
         "unit": "s", "baseline": round(t_ours, 3), "baseline_label": "embed(), one request at a time",
         "target": "speed-up", "ok": None},
    ]
    emit("embed", rows, args.json)


if __name__ == "__main__":
    main()
