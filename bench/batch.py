"""chat_many() throughput: 64 prompts, concurrency 16, against an emulator answering in 200 ms.

    python bench/batch.py            # a table
    python bench/batch.py --json     # one JSON object for bench/run_all.py

For each API: the same 64 prompts through a sequential ``chat()`` loop and through
``chat_many(concurrency=16)``; the speed-up is sequential time / batch time. The ideal is 16x
(64 calls of 200 ms in 4 waves); target >= 12x. Bounded: about 15 s per API.

(The service's Batch API at scale, ``q.batch()``: bench/batch_api.py.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _rows import emit  # bench/_rows.py: how every benchmark prints its rows

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qwen_nb.emulator import Emulator  # noqa: E402
from qwen_nb.ledger import Ledger  # noqa: E402
from qwen_nb.results import ChatResult  # noqa: E402
from qwen_nb.session import Session  # noqa: E402

N, CONCURRENCY, TTFT, TARGET = 64, 16, 0.2, 12.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object (for bench/run_all.py)")
    ap.add_argument("--apis", default="openai,dashscope", help="comma-separated (default both)")
    args = ap.parse_args(argv)
    prompts = [f"Tell me one fact about the number {i}." for i in range(N)]
    rows = []
    with Emulator(ttft=TTFT) as emu:
        session = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"))
        for api in args.apis.split(","):
            session.chat("warm up", api=api)
            t0 = time.perf_counter()
            seq = [session.chat(p, api=api) for p in prompts]
            sequential = time.perf_counter() - t0
            t0 = time.perf_counter()
            out = session.chat_many(prompts, concurrency=CONCURRENCY, progress=False, api=api)
            batch = time.perf_counter() - t0
            assert all(isinstance(r, ChatResult) for r in out)
            assert [r.text for r in out] == [r.text for r in seq], "chat_many changed the order"
            speedup = sequential / batch
            rows.append({"figure": f"chat_many {N} prompts, concurrency {CONCURRENCY}, {api}: speed-up",
                         "value": round(speedup, 2), "unit": "x", "baseline": 1.0,
                         "baseline_label": f"sequential loop, {sequential:.2f} s", "target": f">= {TARGET:g}x",
                         "ok": speedup >= TARGET, "ratio": round(speedup, 2)})
            rows.append({"figure": f"chat_many {N} prompts, {api}: wall time", "value": round(batch, 3),
                         "unit": "s", "baseline": round(N * TTFT / CONCURRENCY, 3),
                         "baseline_label": "ideal (4 waves of 200 ms)"})
        session.close()
    emit("batch", rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
