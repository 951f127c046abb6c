"""Record and replay: cassette size per call, and the time a replayed call takes against the emulator's.

Records ``--calls`` distinct calls (the openai SDK, non-streaming and streaming) through the
recording proxy with the emulator as the upstream, then times the same calls, interleaved,
against the emulator directly and against the replay server serving the cassette (both in this
process, pacing off). Figures: cassette bytes per call against the HTTP body bytes the client
received (the storage overhead), and the median replayed call against the median emulator call
(same run), plus the recording proxy's median against the emulator's.

    python bench/record_replay.py          # table
    python bench/record_replay.py --json   # for bench/run_all.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import emit  # noqa: E402


def _calls(client, n: int, stream: bool) -> tuple[list[float], int]:
    times, received = [], 0
    for i in range(n):
        msgs = [{"role": "user", "content": f"Question number {i}: what is a cassette?"}]
        t0 = time.perf_counter()
        if stream:
            with client.chat.completions.with_streaming_response.create(
                    model="qwen-plus", messages=msgs, stream=True, stream_options={"include_usage": True}) as r:
                received += sum(len(b) for b in r.iter_bytes())
        else:
            r = client.chat.completions.with_raw_response.create(model="qwen-plus", messages=msgs)
            received += len(r.http_response.content)
        times.append(time.perf_counter() - t0)
    return times, received


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object (for bench/run_all.py)")
    ap.add_argument("--calls", type=int, default=40, help="distinct calls of each kind (default 40)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds over those calls (default 5)")
    args = ap.parse_args(argv)
    from openai import OpenAI

    from qwen_nb.emulator import Emulator
    from qwen_nb.recorder import PLACEHOLDER_KEY, Cassette, RecordingProxy, ReplayServer

    rows: list[dict] = []
    with Emulator() as emu, tempfile.TemporaryDirectory() as tmp:
        key = emu.key()
        direct = OpenAI(api_key=key, base_url=emu.base_url("ap-southeast-1", "openai"), max_retries=0)
        _calls(direct, 3, False)  # warm up (tokenizer, connections)
        sizes: dict[bool, tuple[int, int]] = {}
        record_times: list[float] = []
        for stream in (False, True):
            folder = Path(tmp) / f"{'stream' if stream else 'plain'}.cassettes"
            with RecordingProxy(folder, {"default": f"{emu.url}/ap-southeast-1"}) as proxy:
                via = OpenAI(api_key=key, base_url=f"{proxy.url}/default/compatible-mode/v1", max_retries=0)
                times, received = _calls(via, args.calls, stream)
                record_times += times
            stored = sum(p.stat().st_size for p in Cassette.load(folder).files()[1:])
            sizes[stream] = (stored, received)
        for stream in (False, True):
            stored, received = sizes[stream]
            kind = "streamed" if stream else "non-streaming"
            rows.append({"figure": f"cassette size per {kind} call (openai SDK)", "value": stored / args.calls,
                         "unit": "bytes", "baseline": received / args.calls,
                         "baseline_label": "HTTP body bytes the client received"})
        emu_times: dict[bool, list[float]] = {False: [], True: []}
        rep_times: dict[bool, list[float]] = {False: [], True: []}
        with ReplayServer() as server:
            replay = OpenAI(api_key=PLACEHOLDER_KEY, base_url=f"{server.url}/default/compatible-mode/v1",
                            max_retries=0)
            for _ in range(args.rounds):
                for stream in (False, True):
                    server.use(Path(tmp) / f"{'stream' if stream else 'plain'}.cassettes")
                    emu_times[stream] += _calls(direct, args.calls, stream)[0]
                    rep_times[stream] += _calls(replay, args.calls, stream)[0]
            assert server.served == args.rounds * 2 * args.calls
        for stream in (False, True):
            kind = "streamed" if stream else "non-streaming"
            emu_ms = statistics.median(emu_times[stream]) * 1000
            rep_ms = statistics.median(rep_times[stream]) * 1000
            rows.append({"figure": f"replayed {kind} call, median (openai SDK)", "value": rep_ms, "unit": "ms",
                         "baseline": emu_ms, "baseline_label": "the same calls to the emulator",
                         "target": "<= 1.5x", "ok": rep_ms <= 1.5 * emu_ms})
        rows.append({"figure": "recorded call through the proxy, median (half streamed)",
                     "value": statistics.median(record_times) * 1000, "unit": "ms",
                     "baseline": statistics.median(emu_times[False] + emu_times[True]) * 1000,
                     "baseline_label": "the same calls to the emulator"})
    emit("record_replay", rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
