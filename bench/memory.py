"""Memory of a big ``chat_many`` on a stream-only thinking model: results held, then dropped.

    python bench/memory.py            # a table
    python bench/memory.py --json     # one JSON object for bench/run_all.py
    python bench/memory.py --prompts 500

Against the emulator in its own process (its memory is not counted), ``chat_many`` sends N
prompts (default 2,000, concurrency 16) to ``qwen3-32b``, which the service answers only as a
stream while thinking, so ``chat()`` streams each answer internally. Each run is a fresh child
process: the resident set size (RSS) is read after the SDK is warmed up, with the results held,
and after dropping them (``del`` and ``gc.collect()``). The baseline is the same run with
``keep_raw=True`` (every SDK chunk kept in ``ChatResult.raw``, what 0.1.0 always did).
Targets: under 150 MB above the start with results held; back within 20 MB after dropping them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _emulator_process import EmulatorProcess  # noqa: E402
from _rows import emit  # noqa: E402

CHILD = r"""
import gc, json, sys
sys.path.insert(0, sys.argv[1])
from qwen_nb.emulator.config import default_profiles
from qwen_nb.emulator.hosts import emulator_regions
from qwen_nb.ledger import Ledger
from qwen_nb.session import Session

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0

url, n, keep_raw = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
s = Session(default_profiles(url), regions=emulator_regions(url), ledger=Ledger(":memory:"))
s.chat_many(["warm up"] * 16, concurrency=16, progress=False, model="qwen3-32b", profile="team-b")
gc.collect()
start = rss_mb()
results = s.chat_many([f"Question {i}: why is the sky blue?" for i in range(n)], concurrency=16, progress=False,
                      model="qwen3-32b", profile="team-b", keep_raw=keep_raw)
ok = sum(1 for r in results if hasattr(r, "text"))
held = rss_mb()
del results
gc.collect()
after = rss_mb()
print(json.dumps({"start": start, "held": held, "after": after, "ok": ok}))
"""


def run(url: str, n: int, keep_raw: bool) -> dict:
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", CHILD, root, url, str(n), "1" if keep_raw else "0"],
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--prompts", type=int, default=2000)
    args = ap.parse_args()
    with EmulatorProcess() as emu:
        lean = run(emu.url, args.prompts, keep_raw=False)
        raw = run(emu.url, args.prompts, keep_raw=True)
    n = args.prompts
    held, raw_held = lean["held"] - lean["start"], raw["held"] - raw["start"]
    rows = [
        {"figure": f"RSS above start, {n} stream-only answers held (chat_many, qwen3-32b)", "value": round(held, 1),
         "unit": "MB", "baseline": round(raw_held, 1), "baseline_label": "the same with keep_raw=True",
         "target": "< 150 MB", "ok": held < 150 and lean["ok"] == n},
        {"figure": f"RSS above start after dropping the {n} results", "value": round(lean["after"] - lean["start"], 1),
         "unit": "MB", "target": "< 20 MB", "ok": lean["after"] - lean["start"] < 20},
        {"figure": "memory per 1,000 answers held", "value": round(held * 1000 / n, 1), "unit": "MB",
         "baseline": round(raw_held * 1000 / n, 1), "baseline_label": "keep_raw=True"},
    ]
    emit("memory", rows, args.json)


if __name__ == "__main__":
    main()
