"""Playground streaming benchmark: a 2,000-token answer at 200 tokens/s from the local emulator.

    python bench/widgets.py            # a table
    python bench/widgets.py --json     # one JSON object for bench/run_all.py

Figures: widget value pushes per second while streaming (target <= 25/s; the uncoalesced
baseline is one push per delta), time from the first delta received to the first display
push (target <= 60 ms; for the long answer, and the median and worst of ``--samples`` short
answers, since one sample is at the mercy of the scheduler), how long Stop takes to end a
running answer (target <= 200 ms), and the longest stall of the kernel's main thread while
streaming (the stream runs in threads).

The emulator's replies are a few sentences long; for a long answer it runs with
``reply_tokens`` set (text answers at least that many tokens, deterministic) and the
Playground asks for max_tokens=2000. Runs in-process without a frontend: a push is counted
when a widget value is set (what ipywidgets then serialises and sends on a live kernel).
The layout is the conversation view: each answer streams into its own turn, the earlier
turns stay shown.
Bounded: about 20 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from _rows import emit  # bench/_rows.py: how every benchmark prints its rows

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qwen_nb.emulator import Emulator  # noqa: E402
from qwen_nb.ledger import Ledger  # noqa: E402
from qwen_nb.session import Session  # noqa: E402
from qwen_nb.widgets import Playground  # noqa: E402

PROMPT = "Write a long guide to brewing tea"


def stream_once(pg: Playground, tokens: int) -> dict:
    push_times: list[float] = []
    shown = pg.controller.on_update  # the view's handler: it updates the turn's widgets

    def timed(answer: str, reasoning: str) -> None:
        assert shown is not None
        shown(answer, reasoning)
        push_times.append(time.perf_counter())

    pg.controller.on_update = timed
    pg.params.max_tokens.value = tokens
    pushes_before = pg.updates_sent
    stall = 0.0
    assert pg.send(PROMPT)
    while pg.busy:  # the main thread stays free: measure how late a 5 ms sleep wakes up
        t0 = time.perf_counter()
        time.sleep(0.005)
        stall = max(stall, time.perf_counter() - t0 - 0.005)
    pg.wait(60)
    pg.controller.on_update = shown
    if pg.last_error is not None:
        raise SystemExit(f"stream failed: {pg.last_error}")
    st = pg.stats
    pushes = pg.updates_sent - pushes_before
    seconds = st["stream_seconds"]
    # the busiest one-second window of pushes
    busiest = max((sum(1 for u in push_times if t <= u < t + 1.0) for t in push_times), default=0)
    return {
        "deltas": st["deltas"],
        "output_tokens": pg.last_result.usage.output_tokens,
        "seconds": seconds,
        "pushes": pushes,
        "pushes_per_s": pushes / seconds,
        "busiest_window": busiest,
        "baseline_per_s": st["deltas"] / seconds,
        "first_display_ms": st["first_push_after_first_delta"] * 1e3,
        "stall_ms": stall * 1e3,
    }


def first_display(pg: Playground, samples: int, tokens: int = 60) -> list[float]:
    """First delta -> first display push (ms) for ``samples`` short answers (the conversation cleared between)."""
    pg.params.max_tokens.value = tokens
    out = []
    for _ in range(samples):
        assert pg.send(PROMPT)
        pg.wait(60)
        if pg.last_error is not None:
            raise SystemExit(f"stream failed: {pg.last_error}")
        out.append(pg.stats["first_push_after_first_delta"] * 1e3)
        pg.clear()
    return sorted(out)


def stop_once(pg: Playground, tokens: int, after: float = 1.0) -> dict:
    pg.params.max_tokens.value = tokens
    assert pg.send(PROMPT)
    time.sleep(after)
    t0 = time.perf_counter()
    pg.stop()
    while pg.busy and time.perf_counter() - t0 < 5:
        time.sleep(0.001)
    took = time.perf_counter() - t0
    return {"stop_ms": took * 1e3, "partial_chars": len(pg.answer_text)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object (for bench/run_all.py)")
    parser.add_argument("--tokens", type=int, default=2000, help="answer length in tokens (default 2000)")
    parser.add_argument("--rate", type=float, default=200.0, help="emulator tokens per second (default 200)")
    parser.add_argument("--samples", type=int, default=15, help="short answers timed for the first display (15)")
    args = parser.parse_args(argv)

    with Emulator(tokens_per_second=args.rate, reply_tokens=args.tokens) as emu:
        session = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"), max_retries=1)
        pg = Playground(session, model="qwen-plus")
        pg.model.wait(10)
        run = stream_once(pg, args.tokens)
        stop = stop_once(pg, args.tokens)
        pg.wait(10)
        pg.clear()
        firsts = first_display(pg, args.samples)
        session.close()

    rows = [
        {"figure": f"Playground pushes/s, {run['output_tokens']}-token answer at {args.rate:.0f} tok/s",
         "value": run["pushes_per_s"], "unit": "1/s", "baseline": run["baseline_per_s"],
         "baseline_label": "one push per delta (uncoalesced)", "target": "<= 25/s", "ok": run["pushes_per_s"] <= 25},
        {"figure": "busiest 1-second window of pushes", "value": float(run["busiest_window"]), "unit": "1",
         "target": "<= 25", "ok": run["busiest_window"] <= 25},
        {"figure": "pushes in total (deltas received)", "value": float(run["pushes"]), "unit": "1",
         "baseline": float(run["deltas"]), "baseline_label": "deltas"},
        {"figure": "first delta -> first display push", "value": run["first_display_ms"], "unit": "ms",
         "target": "<= 60 ms", "ok": run["first_display_ms"] <= 60},
        {"figure": f"first delta -> first display push, median of {len(firsts)} short answers",
         "value": statistics.median(firsts), "unit": "ms", "target": "<= 60 ms",
         "ok": statistics.median(firsts) <= 60},
        {"figure": f"first delta -> first display push, worst of {len(firsts)}", "value": firsts[-1], "unit": "ms"},
        {"figure": "stream duration (first delta to end)", "value": run["seconds"], "unit": "s"},
        {"figure": "longest main-thread stall while streaming", "value": run["stall_ms"], "unit": "ms"},
        {"figure": "Stop -> not busy", "value": stop["stop_ms"], "unit": "ms", "target": "<= 200 ms",
         "ok": stop["stop_ms"] <= 200},
    ]
    emit("widgets", rows, args.json)
    return 0 if all(r.get("ok", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
