"""chat_many's requests/tokens-per-minute limits and its checkpoint: a killed run resumes without asking again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from qwen_nb import errors
from qwen_nb._limits import Bucket, RateLimiter
from qwen_nb.emulator import Emulator
from qwen_nb.ledger import Ledger
from qwen_nb.session import Session


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_bucket_never_lets_more_than_the_limit_plus_one_second_through_in_a_minute():
    clock = FakeClock()
    bucket = Bucket(120, clock)  # 2 a second
    taken = 0
    while clock.t < 60:
        wait = bucket.wait(1)
        if wait:
            clock.t += wait
            continue
        bucket.take(1)
        taken += 1
    assert 120 <= taken <= 122


def test_a_call_bigger_than_the_bucket_waits_for_a_full_bucket_then_goes_into_debt():
    clock = FakeClock()
    tokens = Bucket(600, clock)  # 10 tokens a second, holds 10
    tokens.take(10)
    assert tokens.wait(50) == pytest.approx(1.0)
    clock.t += 1.0
    tokens.take(50)
    assert tokens.wait(1) == pytest.approx(4.1)  # 40 of debt, then one token


def test_429s_empty_the_bucket_of_their_kind_and_a_retry_counts_as_a_request():
    clock = FakeClock()
    lim = RateLimiter(rpm=60, tpm=6000, clock=clock)
    assert lim.requests is not None and lim.tokens is not None
    lim.retried(errors.TokenLimitError("Allocated quota exceeded"))
    assert lim.tokens.level <= 0 and lim.requests.level == 0  # one request taken by the retry
    lim.retried(errors.RateLimitError("Requests rate limit exceeded"))
    assert lim.requests.level <= -1


def test_settling_gives_back_what_was_reserved_too_much_and_takes_what_was_too_little():
    clock = FakeClock()
    lim = RateLimiter(tpm=60_000, clock=clock)  # 1000 a second
    assert lim.tokens is not None
    lim.tokens.take(500)
    lim.settle(500, 100)
    assert lim.tokens.level == pytest.approx(900)
    lim.settle(100, 1100)
    assert lim.tokens.level == pytest.approx(-100)


@pytest.mark.parametrize("kw, bad", [({"rpm": 0}, "rpm"), ({"tpm": -5}, "tpm"), ({"rpm": True}, "rpm"),
                                     ({"checkpoint": ""}, "checkpoint"), ({"checkpoint": 3}, "checkpoint")])
def test_bad_limits_and_checkpoint_names_are_refused_before_any_call(kw, bad):
    emu = Emulator().start()
    try:
        s = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"))
        with pytest.raises(errors.InputError, match=bad):
            s.chat_many(["a", "b"], progress=False, **kw)
        assert emu.counters()["chat"] == 0
        s.close()
    finally:
        emu.stop()


@pytest.fixture
def emu():
    e = Emulator().start()
    yield e
    e.stop()


def test_limited_runs_answer_everything_in_order(emu):
    s = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"))
    prompts = [f"What is {i} + {i}?" for i in range(12)]
    out = s.chat_many(prompts, rpm=6000, tpm=600_000, concurrency=4, progress=False)
    assert all(not isinstance(r, Exception) for r in out)
    assert len(out) == 12 and emu.counters()["chat"] == 12
    s.close()


def test_a_checkpointed_run_asks_nothing_twice_and_keeps_duplicates_apart(emu, tmp_path):
    led = Ledger(tmp_path / "u.sqlite")
    s = Session(emu.profiles(), regions=emu.regions(), ledger=led)
    prompts = ["Who are you?", "What is 2 + 2?", "Who are you?"]
    first = s.chat_many(prompts, checkpoint="run-1", progress=False)
    assert emu.counters()["chat"] == 3
    again = s.chat_many(prompts, checkpoint="run-1", progress=False)
    assert emu.counters()["chat"] == 3  # every answer came from the checkpoint
    assert [r.text for r in again] == [r.text for r in first]
    assert len(led) == 3  # the usage was recorded once, when the answers came
    # another model is another call: not taken from this checkpoint
    s.chat_many(prompts[:1], checkpoint="run-1", model="qwen-turbo", progress=False)
    assert emu.counters()["chat"] == 4
    assert led.clear_checkpoint("run-1") == 4
    s.close()


def test_achat_many_can_be_awaited(emu):
    s = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"))

    async def main():
        return await s.achat_many(["Who are you?"] * 3, progress=False, rpm=6000)

    out = asyncio.run(main())
    assert [r.text for r in out] == [out[0].text] * 3
    s.close()


RUN = textwrap.dedent("""
    import sys
    import qwen_nb as q
    prompts = [f"Question number {i}: what is {i} squared?" for i in range(int(sys.argv[1]))]
    out = q.chat_many(prompts, concurrency=2, checkpoint="kill-test", progress=False)
    print("answered", sum(1 for r in out if not isinstance(r, Exception)), flush=True)
""")


def test_a_run_killed_half_way_resumes_in_a_new_process_without_sending_an_answered_prompt_again(tmp_path):
    emu = Emulator(ttft=0.05).start()
    n = 40
    path = tmp_path / "usage.sqlite"
    env = {k: v for k, v in os.environ.items() if not (k.startswith("DASHSCOPE_") or k.startswith("QWEN_NB_"))}
    env.update(QWEN_NB_EMULATOR=emu.url, QWEN_NB_LEDGER=str(path), QWEN_NB_CONFIG=os.devnull)
    try:
        proc = subprocess.Popen([sys.executable, "-c", RUN, str(n)], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        answered = 0
        while time.monotonic() < deadline and answered < n // 2:
            time.sleep(0.05)
            if path.exists():
                try:
                    conn = sqlite3.connect(path, timeout=5)
                    answered = conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
                    conn.close()
                except sqlite3.OperationalError:  # not migrated yet
                    pass
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert n // 2 <= answered < n, "the run was not killed half-way"

        conn = sqlite3.connect(path)
        stored = conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
        assert all(json.loads(r)["text"] for (r,) in conn.execute("SELECT result FROM checkpoints"))
        conn.close()
        time.sleep(1.0)  # the calls in flight at the kill reach the emulator's log
        before = len(emu.requests)
        asked_before = [r.body["messages"][-1]["content"] for r in emu.requests if r.body and "messages" in r.body]

        done = subprocess.run([sys.executable, "-c", RUN, str(n)], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert f"answered {n}" in done.stdout
        resumed = [r.body["messages"][-1]["content"] for r in emu.requests[before:] if r.body and "messages" in r.body]
        # nothing answered before the kill is sent again; the rest (and what was in flight) is sent once
        assert len(resumed) == n - stored
        assert len(set(resumed)) == len(resumed)
        twice = [p for p in set(asked_before) if p in resumed]
        assert len(twice) <= 2  # at most the 2 calls in flight at the kill (sent, never answered) went twice
    finally:
        emu.stop()
