"""Pure parts of the widgets: the update coalescer (fake clock) and the conversation history."""

from __future__ import annotations

import pytest

from qwen_nb.coalesce import Coalescer
from qwen_nb.errors import InputError
from qwen_nb.widgets.conversation import Conversation


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drive(coalescer: Coalescer, clock: FakeClock, pieces: int, per_second: float) -> list[float]:
    """Feed ``pieces`` at ``per_second``; the display side flushes whenever allowed. Returns flush times."""
    times = []
    for _ in range(pieces):
        coalescer.mark()
        if coalescer.try_flush():
            times.append(clock.now)
        clock.now += 1.0 / per_second
        # the display side wakes when a pending push becomes due
        wait = coalescer.delay()
        if wait is not None and wait <= 1.0 / per_second and coalescer.try_flush():
            times.append(clock.now)
    if coalescer.final():
        times.append(clock.now)
    return times


@pytest.mark.parametrize("rate_in", [50, 200, 1000, 5000])
def test_flush_rate_is_bounded_whatever_the_token_rate(rate_in):
    clock = FakeClock()
    c = Coalescer(20, clock=clock)
    seconds = 5
    times = drive(c, clock, pieces=rate_in * seconds, per_second=rate_in)
    assert c.marks == rate_in * seconds
    # at most 20 a second plus the final flush
    assert len(times) <= 20 * seconds + 2
    # and never two pushes closer than the interval, except the final one
    regular = times[:-1]
    gaps = [b - a for a, b in zip(regular, regular[1:], strict=False)]
    assert all(g >= c.interval - 1e-9 for g in gaps)
    # coalescing actually happened for fast streams
    if rate_in > 20:
        assert c.flushes < c.marks


def test_first_piece_is_shown_at_once_and_trailing_piece_waits():
    clock = FakeClock()
    c = Coalescer(20, clock=clock)
    assert c.delay() is None and not c.try_flush()  # nothing pending
    c.mark()
    assert c.delay() == 0.0 and c.try_flush()  # leading edge: immediately
    clock.now += 0.01
    c.mark()
    assert c.delay() == pytest.approx(0.04)
    assert not c.try_flush()
    clock.now += 0.04
    assert c.try_flush()
    assert not c.pending


def test_final_flush_only_when_something_is_pending():
    clock = FakeClock()
    c = Coalescer(20, clock=clock)
    c.mark()
    assert c.try_flush()
    assert not c.final()  # nothing new since
    c.mark()
    assert c.final()  # regardless of the interval
    assert c.flushes == 2
    c.reset()
    assert (c.flushes, c.marks, c.pending) == (0, 0, False)


def test_slow_stream_pushes_every_piece():
    clock = FakeClock()
    c = Coalescer(20, clock=clock)
    times = drive(c, clock, pieces=30, per_second=10)
    assert c.flushes == 30 == len(times)


@pytest.mark.parametrize("bad", [0, -1, "20", True])
def test_bad_rate_is_an_input_error(bad):
    with pytest.raises(InputError):
        Coalescer(bad)


def test_conversation_accumulates_and_clears():
    conv = Conversation(system="Be brief.")
    msgs = conv.request("Hello")
    assert msgs == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    assert conv.messages == []  # asking does not change the history
    assert conv.commit("Hello", "Hi!")
    msgs = conv.request("And then?")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    conv.commit("And then?", "Then this.")
    assert conv.turns == 2
    assert "**You**" in conv.markdown() and "Then this." in conv.markdown()
    conv.clear()
    assert conv.messages == [] and conv.turns == 0 and conv.system == "Be brief."


def test_conversation_request_is_a_copy():
    conv = Conversation()
    conv.commit("a", "b")
    msgs = conv.request("c")
    msgs[0]["content"] = "changed"
    assert conv.messages[0]["content"] == "a"


def test_stopped_turn_kept_only_with_text_and_empty_prompt_refused():
    conv = Conversation()
    assert not conv.commit("q", "  ", interrupted=True)
    assert conv.commit("q", "partial", interrupted=True)
    assert conv.turns == 1
    with pytest.raises(InputError):
        conv.request("   ")


def test_error_panel_is_short_with_chips_and_folded_details():
    from qwen_nb.errors import ModelNotGrantedError
    from qwen_nb.widgets._common import error_panel_html

    err = ModelNotGrantedError(
        "Profile 'team-a' in Singapore is not allowed to call 'qwen-max': access denied. A sub-workspace key can "
        "only call the models granted to its workspace.",
        fix="Grant 'qwen-max' to the workspace: console > model permissions; or by API: q.grant(['qwen-max']), "
        "which POSTs https://example.invalid/api/v1/models/permissions. Something else. A fourth sentence. "
        "Profiles of yours that can call it: 'default' (default workspace) — e.g. profile='default'.",
        status=403, code="Model.AccessDenied", request_id="req-1",
    )
    panel = error_panel_html(err)
    shown, details = panel.split("<details", 1)
    assert "ModelNotGrantedError</span> Profile &#x27;team-a&#x27; in Singapore is not allowed" in shown
    assert "A sub-workspace key" not in shown and "A sub-workspace key" in details  # one-line headline
    assert shown.count("<li>") == 3 and shown.index("Profiles of yours") < shown.index("<li>Grant")
    assert "https://" not in shown and "https://example.invalid" in details  # the URL is folded
    for c in ("ModelNotGrantedError", "HTTP 403", "Model.AccessDenied", "request id req-1"):
        assert c in shown
    key = "sk-" + "k" * 32
    assert key not in error_panel_html(ValueError(f"bad {key}"))
