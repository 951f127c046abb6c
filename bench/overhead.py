"""Per-call overhead of qwen-nb over the raw SDK call, both APIs, streaming and not.

    python bench/overhead.py                        # a table
    python bench/overhead.py --json                 # one JSON object for bench/run_all.py
    python bench/overhead.py --emulator subprocess  # only the judged figures (or: inprocess)

Against the emulator with pacing off, each scenario alternates one raw SDK call (a reused
``openai.OpenAI`` / ``dashscope.Client``, SDK retries off) with the same call through
``Session.chat`` / ``Session.stream_chat`` (validation, normalising, cost estimate and a ledger
record included), and reports the medians. Target: chat() within 5 % of the raw call.
Bounded: a few seconds per scenario (``--rounds``, ``--seconds``).

The judged figures use an emulator in its own process (``python -m qwen_nb.cli emulator``),
as the real service is: an emulator in this process shares the GIL with the client, so
whatever the client does that releases the GIL (such as the SQLite commit of a ledger record)
lets the server thread run in between and inflates the measured overhead. The default
(``--emulator both``) also reports the in-memory-ledger scenarios against an in-process
emulator, for comparison, without a target.

Rows: with an in-memory ledger (the figure the target is about), with the ledger off (qwen-nb's
own code alone) and with a SQLite file ledger (what a notebook uses by default).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dashscope  # noqa: E402
import openai  # noqa: E402
from _emulator_process import EmulatorProcess  # bench/_emulator_process.py: the emulator as a server
from _rows import emit  # bench/_rows.py: how every benchmark prints its rows

from qwen_nb.emulator import Emulator  # noqa: E402
from qwen_nb.ledger import Ledger  # noqa: E402
from qwen_nb.session import Session  # noqa: E402

PROMPT = "Who are you?"
MODEL = "qwen-plus"
TARGET = 1.05


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    """``fn`` made to return its own wall time in seconds."""

    def run() -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    return run


def paired(raw: Callable[[], float], ours: Callable[[], float], rounds: int, seconds: float) -> tuple[float, float]:
    """Median of the seconds ``raw`` and ``ours`` each return, run alternately (warm-up first)."""
    for _ in range(10):
        raw()
        ours()
    a: list[float] = []
    b: list[float] = []
    deadline = time.perf_counter() + seconds
    for i in range(rounds):
        if i % 2:
            b.append(ours())
            a.append(raw())
        else:
            a.append(raw())
            b.append(ours())
        if time.perf_counter() > deadline and i >= 20:
            break
    return statistics.median(a), statistics.median(b)


def raw_clients(emu: Emulator | EmulatorProcess) -> tuple[openai.OpenAI, dashscope.Client]:
    """The baselines: the raw SDK clients, each made once and reused, as a careful user would."""
    key = emu.key("default")
    oa = openai.OpenAI(api_key=key, base_url=emu.base_url("ap-southeast-1", "openai"), max_retries=0)
    ds = dashscope.Client(api_key=key, base_url=emu.base_url("ap-southeast-1", "dashscope"), workspace="",
                          region="ap-southeast-1", protocol="native", max_retries=0)
    return oa, ds


def ttft_scenarios(emu: Emulator | EmulatorProcess, session: Session) -> dict[str, tuple[Callable, Callable, str]]:
    """Time from the call to the first answer text, raw SDK stream vs ``stream_chat()`` (rest drained)."""
    oa, ds = raw_clients(emu)
    messages = [{"role": "user", "content": PROMPT}]

    def first_text(chunks, text_of) -> float:
        t0 = time.perf_counter()
        first = None
        for chunk in chunks():
            if first is None and text_of(chunk):
                first = time.perf_counter() - t0
        return first

    def oa_text(c):
        return c.choices and c.choices[0].delta.content

    def ds_text(c):
        return c.choices and c.choices[0].delta.content

    def ours(api: str) -> Callable[[], float]:
        return lambda: first_text(lambda: session.stream_chat(PROMPT, api=api), lambda d: d.content)

    return {
        "stream_chat() time to first token, openai": (
            lambda: first_text(lambda: oa.chat.completions.create(
                model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}), oa_text),
            ours("openai"), "raw openai SDK stream"),
        "stream_chat() time to first token, dashscope": (
            lambda: first_text(lambda: ds.chat.completions.create(
                model=MODEL, messages=messages, stream=True, incremental_output=True), ds_text),
            ours("dashscope"), "raw dashscope SDK stream"),
    }


class _NoLedger(Ledger):
    """A ledger that stores nothing, to time qwen-nb's own code apart from the SQLite insert."""

    def record(self, rec, *, budget=None, wait=True):  # noqa: D102
        return None

    def record_later(self, make, *, budget=None):  # noqa: D102
        return None


def scenarios(emu: Emulator | EmulatorProcess, session: Session) -> dict[str, tuple[Callable, Callable, str]]:
    oa, ds = raw_clients(emu)
    messages = [{"role": "user", "content": PROMPT}]

    def oa_call():
        return oa.chat.completions.create(model=MODEL, messages=messages).choices[0].message.content

    def oa_stream():
        return [c for c in oa.chat.completions.create(model=MODEL, messages=messages, stream=True,
                                                      stream_options={"include_usage": True})]

    def ds_call():
        return ds.chat.completions.create(model=MODEL, messages=messages).output_text

    def ds_stream():
        return [c for c in ds.chat.completions.create(model=MODEL, messages=messages, stream=True,
                                                      incremental_output=True)]

    def ours(api: str, stream: bool) -> Callable[[], object]:
        if stream:
            return lambda: session.stream_chat(PROMPT, api=api).result
        return lambda: session.chat(PROMPT, api=api)

    return {
        "chat() non-streaming, openai": (oa_call, ours("openai", False), "raw openai SDK"),
        "chat() non-streaming, dashscope": (ds_call, ours("dashscope", False), "raw dashscope SDK"),
        "stream_chat() whole stream, openai": (oa_stream, ours("openai", True), "raw openai SDK stream"),
        "stream_chat() whole stream, dashscope": (ds_stream, ours("dashscope", True), "raw dashscope SDK stream"),
    }


def measure(emu: Emulator | EmulatorProcess, where: str, kinds: list[str], rounds: int, seconds: float,
            judged: bool, rows: list[dict]) -> None:
    """Run the scenarios of each ledger kind against ``emu``; append one row per scenario."""
    with tempfile.TemporaryDirectory() as tmp:
        makers = {
            "in-memory ledger": lambda: Ledger(":memory:"),
            # qwen-nb's own code: everything but the ledger insert
            "ledger off": lambda: _NoLedger(":memory:"),
            # the default kind of ledger: a SQLite file, each record committed before chat() returns
            "SQLite file ledger": lambda: Ledger(Path(tmp) / "usage.sqlite"),
        }
        for kind in kinds:
            session = Session(emu.profiles(), regions=emu.regions(), ledger=makers[kind]())
            todo = list(scenarios(emu, session).items())
            runs = [(f, timed(r), timed(o), lbl) for f, (r, o, lbl) in todo]
            if kind == "in-memory ledger":  # these return their own time to the first token
                runs += [(f, r, o, lbl) for f, (r, o, lbl) in ttft_scenarios(emu, session).items()]
            for figure, raw, ours, label in runs:
                base, value = paired(raw, ours, rounds, seconds)
                row = {"figure": f"{figure} ({kind}; {where})", "value": round(value * 1000, 3), "unit": "ms",
                       "baseline": round(base * 1000, 3), "baseline_label": label}
                if judged:
                    row.update(target=f"<= {TARGET:.2f}x", ok=value <= base * TARGET)
                rows.append(row)
            session.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object (for bench/run_all.py)")
    ap.add_argument("--rounds", type=int, default=300, help="paired calls per scenario (default 300)")
    ap.add_argument("--seconds", type=float, default=8.0, help="time cap per scenario (default 8)")
    ap.add_argument("--emulator", choices=("both", "subprocess", "inprocess"), default="both",
                    help="where the emulator runs: its own process (judged against the target), this process "
                         "(in-memory ledger scenarios, for comparison), or both (default)")
    args = ap.parse_args(argv)
    all_kinds = ["in-memory ledger", "ledger off", "SQLite file ledger"]

    rows: list[dict] = []
    if args.emulator in ("both", "subprocess"):
        with EmulatorProcess() as emu:
            measure(emu, "emulator in a subprocess", all_kinds, args.rounds, args.seconds, True, rows)
    if args.emulator in ("both", "inprocess"):
        with Emulator() as emu:
            kinds = all_kinds if args.emulator == "inprocess" else all_kinds[:1]
            measure(emu, "emulator in this process", kinds, args.rounds, args.seconds,
                    args.emulator == "inprocess", rows)

    emit("overhead", rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
