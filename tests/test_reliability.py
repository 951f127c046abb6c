"""Reliability: interrupts stop at once, streams keep no garbage, async clients close with their loop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from polling import long_retry_waits

from qwen_nb import CancelToken, ChatManyInterrupted
from qwen_nb.emulator import Emulator
from qwen_nb.errors import CancelledCallError
from qwen_nb.ledger import Ledger
from qwen_nb.retry import RetryPolicy
from qwen_nb.session import Session


@pytest.fixture
def emu():
    with Emulator() as e:
        yield e


def _session(emu, **kw):
    return Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"), **kw)


def test_sigint_stops_chat_many_at_once_and_sends_nothing_after(emu):
    """Calls waiting on retries are abandoned: the run returns within 1 s and no request follows the signal."""
    s = _session(emu, retry=long_retry_waits(5, 8.0))
    asyncio.run(s.achat("warm up"))  # the SDK is imported and a client made before the clock starts
    emu.set_faults(rate_limit=2, rate_window=60)  # after two calls every request is refused with 429
    before = len(emu.requests)
    seen: dict[str, float] = {}

    def interrupt() -> None:
        seen["requests"] = len(emu.requests)
        seen["at"] = time.perf_counter()
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(1.5, interrupt)
    timer.start()
    with pytest.raises(ChatManyInterrupted) as e:
        s.chat_many([f"prompt {i}" for i in range(12)], concurrency=4, progress=False)
    returned = time.perf_counter() - seen["at"]
    time.sleep(0.5)
    assert returned < 1.0
    assert len(emu.requests) == seen["requests"]  # nothing was sent after the interrupt
    results = e.value.results
    assert len(results) == 12 and e.value.answered == 2
    assert sum(1 for r in results if isinstance(r, CancelledCallError)) >= 8
    records = s.ledger.records()[1:]  # after the warm-up call
    assert sum(r.attempts for r in records) == seen["requests"] - before  # every request sent is recorded once
    assert sum(1 for r in records if r.status == "ok") == 2
    s.close()


def test_cancelled_gather_stops_in_flight_calls(emu):
    emu.set_faults(latency=5.0)
    s = _session(emu)

    async def main() -> None:
        calls = asyncio.gather(*(s.achat(f"q{i}") for i in range(6)))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(calls, timeout=0.5)
        await s.aclose()

    t0 = time.perf_counter()
    asyncio.run(main())
    assert time.perf_counter() - t0 < 2.0
    records = s.ledger.records()
    assert len(records) == 6 and {r.status for r in records} == {"interrupted"}
    assert sum(r.attempts for r in records) == 6


def test_a_cancel_token_ends_a_retry_wait(emu):
    emu.set_faults(fail_next=5)
    s = _session(emu, retry=long_retry_waits(5, 10.0))
    token = CancelToken()
    threading.Timer(0.3, token.cancel).start()
    t0 = time.perf_counter()
    with pytest.raises(CancelledCallError):
        s.chat("hi", cancel=token)
    assert time.perf_counter() - t0 < 1.5
    assert len(emu.requests) == 1 and s.ledger.records()[-1].status == "interrupted"


def test_stream_only_answers_keep_no_chunks_unless_asked(emu):
    s = _session(emu)
    lean = s.chat("Hello", model="qwen3-32b", profile="team-b")
    assert lean.text and lean.raw is None
    full = s.chat("Hello", model="qwen3-32b", profile="team-b", keep_raw=True)
    assert full.text == lean.text and isinstance(full.raw, list) and len(full.raw) > 3
    stream = s.stream_chat("Hello")
    "".join(d.content for d in stream)
    assert stream.result.raw is None


def test_a_cut_stream_inside_chat_is_retried_as_one_call(emu):
    emu.set_faults(cut_after=4, cut_streams=1)
    s = _session(emu, retry=RetryPolicy(max_retries=2, base=0.01))
    r = s.chat("Hello", model="qwen3-32b", profile="team-b")
    assert r.attempts == 2 and r.finish_reason == "stop"
    records = s.ledger.records()
    assert len(records) == 1 and records[0].status == "ok" and records[0].attempts == 2


def test_chat_many_sums_retries_up_in_one_line(emu, caplog):
    emu.set_faults(fail_next=3)
    s = _session(emu, retry=RetryPolicy(max_retries=3, base=0.01))
    with caplog.at_level("WARNING", logger="qwen_nb"):
        out = s.chat_many(["a", "b", "c", "d"], concurrency=2, progress=False)
    assert all(r.text for r in out)
    lines = [r.getMessage() for r in caplog.records if r.name == "qwen_nb"]
    assert len(lines) == 1 and lines[0].startswith("qwen-nb: 3 retries over 4 calls") and "ServerError" in lines[0]


SCRIPT = textwrap.dedent(
    """
    import asyncio, gc, warnings
    warnings.simplefilter("error", ResourceWarning)
    from qwen_nb.emulator import Emulator
    from qwen_nb.ledger import Ledger
    from qwen_nb.session import Session

    with Emulator() as emu:
        s = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"))
        for api in ("openai", "dashscope"):
            s.chat("sync", api=api)
            asyncio.run(s.achat("first loop", api=api))
            asyncio.run(s.achat("second loop", api=api))  # a later loop gets a client of its own

        async def inside():
            async with Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:")) as t:
                await t.achat("x")
                await t.achat("y", api="dashscope")

        asyncio.run(inside())
        s.close()
        gc.collect()
    print("clean")
    """
)


def test_sessions_across_event_loops_leave_nothing_unclosed():
    proc = subprocess.run([sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", SCRIPT],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("clean")
    for bad in ("ResourceWarning", "unclosed", "Event loop is closed", "Traceback"):
        assert bad not in proc.stderr, proc.stderr[-3000:]
