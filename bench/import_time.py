"""Cost of ``import qwen_nb``: its own cumulative import time, and that the heavy packages stay unloaded.

    python bench/import_time.py            # a table
    python bench/import_time.py --json     # one JSON object for bench/run_all.py

Runs ``python -X importtime -c "import qwen_nb"`` in fresh subprocesses (best of several runs,
to keep disk-cache noise out) and reads qwen_nb's cumulative time from the report; a second
subprocess lists which of openai, dashscope, ipywidgets, starlette, uvicorn got imported.
Targets: <= 5 ms, none of those packages imported.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _rows import emit  # bench/_rows.py: how every benchmark prints its rows

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("openai", "dashscope", "ipywidgets", "starlette", "uvicorn", "httpx")
TARGET_MS = 5.0


def own_import_ms(module: str = "qwen_nb") -> float:
    """``module``'s cumulative import time in ms, from one ``-X importtime`` run."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                          text=True, cwd=ROOT, check=True)
    for line in proc.stderr.splitlines():
        # "import time: self [us] | cumulative | imported package"
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1000.0
    raise RuntimeError(f"{module} not found in the -X importtime report")


def loaded_heavy(module: str = "qwen_nb") -> list[str]:
    """Which heavy packages ``import module`` pulled in."""
    code = f"import sys, json, {module}; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object (for bench/run_all.py)")
    ap.add_argument("--runs", type=int, default=7, help="subprocess runs (best is kept; default 7)")
    args = ap.parse_args(argv)
    times = sorted(own_import_ms() for _ in range(max(args.runs, 1)))
    best, median = times[0], times[len(times) // 2]
    heavy = loaded_heavy()
    session_ms = sorted(own_import_ms("qwen_nb.session") for _ in range(3))[0]
    session_heavy = loaded_heavy("qwen_nb.session")
    rows = [
        {"figure": "import qwen_nb, cumulative (best run)", "value": round(best, 2), "unit": "ms",
         "target": f"<= {TARGET_MS:g} ms", "ok": best <= TARGET_MS},
        {"figure": "import qwen_nb, cumulative (median run)", "value": round(median, 2), "unit": "ms",
         "target": f"<= {TARGET_MS:g} ms", "ok": median <= TARGET_MS},
        {"figure": f"heavy packages imported ({', '.join(HEAVY)})", "value": len(heavy), "unit": "packages",
         "target": "0", "ok": not heavy, "detail": heavy},
        {"figure": "import qwen_nb.session (what the first chat() loads before the SDK)",
         "value": round(session_ms, 2), "unit": "ms"},
        {"figure": "heavy packages imported by qwen_nb.session", "value": len(session_heavy), "unit": "packages",
         "target": "0", "ok": not session_heavy, "detail": session_heavy},
    ]
    emit("import_time", rows, args.json)
    if heavy and not args.json:
        print("imported:", ", ".join(heavy))
    return 0


if __name__ == "__main__":
    sys.exit(main())
