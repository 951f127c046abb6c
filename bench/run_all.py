"""Run every benchmark in bench/ and write bench/RESULTS.md (``make bench``).

Each ``bench/*.py`` (but this file and ``_*.py``) is run as ``python bench/X.py --json`` and must
print one JSON object whose ``rows`` list holds figures::

    {"figure": "chat() non-streaming, openai", "value": 1.9, "unit": "ms",
     "baseline": 1.85, "baseline_label": "raw openai SDK", "target": "<= 1.05x", "ok": true}

``ratio`` (value / baseline) is added here when both are numbers.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> str:
    """One line describing the machine the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {system}"


def run(script: Path, timeout: float) -> dict:
    """Run one benchmark script and return its JSON (or an error row)."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(script), "--json"], capture_output=True, text=True, timeout=timeout, cwd=HERE.parent
        )
    except subprocess.TimeoutExpired:
        return {"name": script.stem, "error": f"timed out after {timeout:.0f} s"}
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        return {"name": script.stem, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"name": script.stem, "error": "did not print a JSON object on its last line"}
    data.setdefault("name", script.stem)
    data["seconds"] = round(elapsed, 1)
    return data


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return "" if v is None else str(v)


def render(results: list[dict]) -> str:
    """The Markdown report."""
    out = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Machine: {machine()}.",
        "Every figure is measured in the same run as its baseline; ratio = value / baseline.",
        "",
        "| bench | figure | value | unit | baseline | ratio | target | met |",
        "| --- | --- | ---: | --- | --- | ---: | --- | :---: |",
    ]
    for res in results:
        if "error" in res:
            out.append(f"| {res['name']} | **failed**: {res['error']} | | | | | | ✗ |")
            continue
        for row in res.get("rows", []):
            base, value = row.get("baseline"), row.get("value")
            ratio = row.get("ratio")
            if ratio is None and isinstance(base, (int, float)) and isinstance(value, (int, float)) and base:
                ratio = value / base
            label = row.get("baseline_label") or ""
            base_txt = f"{_fmt(base)} ({label})" if base is not None else label
            ok = {True: "✓", False: "✗"}.get(row.get("ok"), "")
            ratio_txt = f"{ratio:.2f}x" if isinstance(ratio, (int, float)) else ""
            out.append(
                f"| {res['name']} | {row.get('figure', '')} | {_fmt(value)} | {row.get('unit', '')} | "
                f"{base_txt} | {ratio_txt} | {row.get('target') or ''} | {ok} |"
            )
    return "\n".join(out) + "\n"


def _keep_others(report: str, ran: set[str]) -> str:
    """``report`` of the benchmarks in ``ran``, with the earlier RESULTS.md rows of every other one kept."""
    path = HERE / "RESULTS.md"
    earlier = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in earlier if line.startswith("| ") and not line.startswith(("| bench |", "| --- |"))
            and line.split(" | ", 1)[0][2:] not in ran]
    # where the kept rows come from: the earlier file's own provenance lines
    provenance = [line.removeprefix("Earlier: ") for line in earlier if line.startswith(("Written by", "Re-run of",
                                                                                        "Earlier: "))]
    lines = report.rstrip("\n").splitlines()
    lines[2] = lines[2].replace("Written by `make bench`", f"Re-run of {', '.join(sorted(ran))} by `bench/run_all.py`")
    lines[3:3] = [f"Earlier: {line}" for line in provenance]
    return "\n".join(lines + kept) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run all benchmarks (or those named on the command line) and write RESULTS.md."""
    names = set(argv if argv is not None else sys.argv[1:])
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != "run_all.py" and not p.name.startswith("_"))
    results = []
    for script in scripts:
        if names and script.stem not in names:
            continue
        print(f"running {script.name} ...", flush=True)
        res = run(script, timeout=900)  # each benchmark bounds itself; this only stops a hung one
        print("   ", res.get("error") or f"{len(res.get('rows', []))} figures in {res['seconds']} s", flush=True)
        results.append(res)
    report = render(results)
    if names:
        report = _keep_others(report, {r["name"] for r in results})
    (HERE / "RESULTS.md").write_text(report)
    print(report)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
