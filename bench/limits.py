"""chat_many's rpm / tpm limits: the busiest 60-second window of a run against the limit it was given.

    python bench/limits.py            # a table
    python bench/limits.py --json     # one JSON object for bench/run_all.py

Two runs against an emulator in this process (no pacing: only when calls are sent matters),
each longer than a minute: one limited by requests per minute, one by tokens per minute
(prompts of mixed length, answers of a fixed length, so the token estimate has to be settled
after each call). The figures are counted where the service would count them: requests by the
time the emulator received them, tokens as the usage the answers report, at their request's
time. Target: the busiest 60-second window holds at most 5 % more than the limit.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _rows import emit  # noqa: E402  bench/_rows.py

from qwen_nb.emulator import Emulator  # noqa: E402
from qwen_nb.ledger import Ledger  # noqa: E402
from qwen_nb.session import Session  # noqa: E402

TARGET = 1.05


def busiest_window(events: list[tuple[float, float]], width: float = 60.0) -> float:
    """The largest sum of amounts in any ``width``-second window of ``(time, amount)`` events."""
    events = sorted(events)
    best = total = 0.0
    lo = 0
    for t, amount in events:
        total += amount
        while events[lo][0] <= t - width:
            total -= events[lo][1]
            lo += 1
        best = max(best, total)
    return best


def run(emu: Emulator, prompts: list[str], **limits: float) -> tuple[list[tuple[float, float]], ...]:
    """Run ``prompts`` under ``limits``; returns (request times, token amounts at those times), wall seconds."""
    session = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"))
    sent: dict[str, float] = {}
    t0 = time.time()
    out = session.chat_many(prompts, concurrency=8, progress=False, max_tokens=60, **limits)
    wall = time.time() - t0
    for rec in emu.requests:
        body = rec.body or {}
        messages = body.get("messages") or (body.get("input") or {}).get("messages") or []
        if messages:
            sent.setdefault(messages[-1]["content"], rec.time)
    requests = [(sent[p], 1.0) for p in prompts if p in sent]
    tokens = [(sent[p], float(r.usage.input_tokens + r.usage.output_tokens))
              for p, r in zip(prompts, out, strict=True) if p in sent and not isinstance(r, Exception)]
    session.close()
    return requests, tokens, [(wall, 0.0)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object (for bench/run_all.py)")
    ap.add_argument("--rpm", type=float, default=120.0, help="requests per minute of the first run (default 120)")
    ap.add_argument("--tpm", type=float, default=12_000.0, help="tokens per minute of the second run (default 12000)")
    ap.add_argument("--seconds", type=float, default=75.0, help="length of each run (default 75)")
    args = ap.parse_args(argv)
    rows = []
    emu = Emulator().start()
    try:
        n = int(args.rpm * args.seconds / 60)
        reqs, _, ((wall, _),) = run(emu, [f"Request {i}: say hello." for i in range(n)], rpm=args.rpm)
        peak = busiest_window(reqs)
        rows.append({"figure": f"chat_many rpm={args.rpm:g}: busiest 60 s window ({n} calls in {wall:.0f} s)",
                     "value": peak, "unit": "requests", "baseline": args.rpm, "baseline_label": "the limit",
                     "target": f"<= {TARGET:.2f}x", "ok": peak <= args.rpm * TARGET})
        emu.reset()
        # mixed prompt lengths: the reservation is an estimate, settled with the usage the answer reports
        per_call = 60 + 40  # max_tokens answers plus about 40 input tokens on average
        count = int(args.tpm * args.seconds / 60 / per_call)
        prompts = [f"Item {i}: " + "please summarise this sentence. " * (1 + i % 7) for i in range(count)]
        reqs, toks, ((wall, _),) = run(emu, prompts, tpm=args.tpm)
        peak = busiest_window(toks)
        rows.append({"figure": f"chat_many tpm={args.tpm:g}: busiest 60 s window of tokens ({len(toks)} calls)",
                     "value": peak, "unit": "tokens", "baseline": args.tpm, "baseline_label": "the limit",
                     "target": f"<= {TARGET:.2f}x", "ok": peak <= args.tpm * TARGET})
    finally:
        emu.stop()
    emit("limits", rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
