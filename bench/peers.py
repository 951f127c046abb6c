"""qwen-nb beside LiteLLM, the peer a user might pick instead: import time and per-call overhead.

Both call the same local emulator (pacing off, in its own process like the real service) in the
same run, against the raw ``openai`` SDK with a reused client as the baseline. LiteLLM goes
through its ``dashscope/`` provider.
Run: ``python bench/peers.py [--calls N] [--json]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from _rows import emit  # bench/_rows.py: how every benchmark prints its rows

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch of LiteLLM's price map

IMPORTS = {
    "raw openai SDK": "import openai",
    "qwen_nb (with openai, ready to call)": "import qwen_nb, qwen_nb.session, openai",
    "litellm": "import litellm",
}


def import_seconds(stmt: str, repeat: int = 3) -> float:
    """Median wall time of ``stmt`` in a fresh interpreter (the import cost a notebook pays once)."""
    code = f"import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                 check=True).stdout.strip().splitlines()[-1]) for _ in range(repeat)]
    return statistics.median(runs)


def per_call(calls: int) -> dict[str, float]:
    """Median seconds per non-streaming call for raw openai, qwen_nb.chat and litellm.completion."""
    import litellm
    from openai import OpenAI
    from overhead import EmulatorProcess  # bench/overhead.py: the emulator in its own process

    from qwen_nb.ledger import Ledger
    from qwen_nb.session import Session

    with EmulatorProcess() as emu:
        prof = emu.profiles()["default"]
        base = emu.base_url(prof.region, "openai")
        messages = [{"role": "user", "content": "Who are you?"}]
        raw = OpenAI(api_key=prof.key, base_url=base, max_retries=0)
        session = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"))
        runners = {
            "raw openai SDK": lambda: raw.chat.completions.create(model="qwen-plus", messages=messages),
            "qwen_nb.chat()": lambda: session.chat(messages, model="qwen-plus", profile="default"),
            "litellm.completion()": lambda: litellm.completion(
                model="dashscope/qwen-plus", api_base=base, api_key=prof.key, messages=messages
            ),
        }
        for run in runners.values():  # warm up connections and lazy imports
            for _ in range(5):
                run()
        times: dict[str, list[float]] = {name: [] for name in runners}
        names = list(runners)
        for i in range(calls):  # interleaved and rotated, so drift and after-effects hit all three alike
            for name in names[i % 3:] + names[: i % 3]:
                t = time.perf_counter()
                runners[name]()
                times[name].append(time.perf_counter() - t)
                time.sleep(0.005)  # let background work a call leaves behind (LiteLLM's logging) settle, untimed
        session.close()
    return {name: statistics.median(ts) for name, ts in times.items()}


def main(argv: list[str] | None = None) -> int:
    """Measure and print a table (or, with --json, the figures for bench/run_all.py)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=150)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        import litellm  # noqa: F401
    except ImportError:
        print("litellm is not installed: pip install litellm (or make bench)", file=sys.stderr)
        return 2

    imports = {name: import_seconds(stmt) for name, stmt in IMPORTS.items()}
    calls = per_call(args.calls)
    raw_import, raw_call = imports["raw openai SDK"], calls["raw openai SDK"]
    rows = [
        {"figure": f"import: {name}", "value": round(sec * 1000, 1), "unit": "ms",
         "baseline": round(raw_import * 1000, 1), "baseline_label": "import openai"}
        for name, sec in imports.items() if name != "raw openai SDK"
    ] + [
        {"figure": f"per call (non-streaming): {name}", "value": round(sec * 1000, 3), "unit": "ms",
         "baseline": round(raw_call * 1000, 3), "baseline_label": "raw openai SDK, reused client"}
        for name, sec in calls.items() if name != "raw openai SDK"
    ]
    emit("peers", rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
