"""%%qwen, %qwen_profiles and %qwen_usage in a real IPython shell, against the emulator."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import qwen_nb._default
from qwen_nb.errors import InputError
from qwen_nb.magics import interpolate
from qwen_nb.results import ChatResult


@pytest.fixture(scope="module")
def shell():
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "qwen_nb")
    return ip


@pytest.fixture
def ip(shell, session):
    """The shell, with the fixture's emulator session as the default session."""
    before = qwen_nb._default.set_default_session(session)
    for name in ("answer", "topic", "n", "items"):
        shell.user_ns.pop(name, None)
    yield shell
    qwen_nb._default.set_default_session(before)


def markdown(cap) -> str:
    return "\n".join(o.data.get("text/markdown", "") for o in cap.outputs)


def chat_bodies(emu) -> list[dict]:
    return [r.body for r in emu.requests if r.path.endswith(("/chat/completions", "/generation"))]


def last_user_text(body: dict) -> str:
    msgs = body["messages"] if "messages" in body else body["input"]["messages"]
    return msgs[-1]["content"]


# --------------------------------------------------------------------------- pure


def test_interpolate_names_attributes_items_formats_and_escapes() -> None:
    ns = {"topic": "cats", "n": 3.14159, "items": ["a", "b"], "d": {"k": "v"}}
    assert interpolate("About {topic}: {n:.2f} {items[1]} {d[k]} {topic!r}", ns) == "About cats: 3.14 b v 'cats'"
    assert interpolate("{{topic}} stays, }} too", ns) == "{topic} stays, } too"
    code = 'function f() { return {"a": 1}; }'
    assert interpolate(code, ns) == code  # braces that hold no name are left alone


def test_interpolate_missing_name_is_a_clear_input_error() -> None:
    with pytest.raises(InputError) as e:
        interpolate("Tell me about {subject}", {})
    msg = str(e.value)
    assert "'subject'" in msg and "not defined" in msg and "{{subject}}" in msg


# --------------------------------------------------------------------------- magics


def test_load_ext_registers_the_magics(shell) -> None:
    magics = shell.magics_manager.magics
    assert "qwen" in magics["cell"] and "qwen" in magics["line"]
    assert "qwen_profiles" in magics["line"] and "qwen_usage" in magics["line"]


def test_cell_is_sent_and_the_answer_shown_as_markdown(ip, emu, session) -> None:
    with capture_output() as cap:
        out = ip.run_cell_magic("qwen", "", "Who are you?\n")
    assert out is None
    md = markdown(cap)
    assert md.startswith("I am Qwen") and "qwen-plus" in md  # answer, then the footer
    assert len(session.ledger) == 1


def test_options_model_profile_api_and_output_variable(ip, emu) -> None:
    with capture_output():
        ip.run_cell_magic("qwen", "-m qwen-flash -p team-a --api dashscope -o answer", "Who are you?")
    res = ip.user_ns["answer"]
    assert isinstance(res, ChatResult)
    assert (res.model, res.profile, res.api) == ("qwen-flash", "team-a", "dashscope")
    assert res.text.startswith("I am Qwen")
    assert emu.requests[-1].path.endswith("/services/aigc/text-generation/generation")


def test_notebook_variables_are_interpolated(ip, emu) -> None:
    ip.user_ns["topic"] = "penguins"
    ip.user_ns["n"] = 3
    with capture_output():
        ip.run_cell_magic("qwen", "", "List {n} facts about {topic}. Format: {{fact}}")
    assert last_user_text(chat_bodies(emu)[-1]) == "List 3 facts about penguins. Format: {fact}"


def test_raw_sends_braces_untouched(ip, emu) -> None:
    with capture_output():
        ip.run_cell_magic("qwen", "--raw", "Keep {this} as is")
    assert last_user_text(chat_bodies(emu)[-1]) == "Keep {this} as is"


def test_missing_variable_shows_a_message_and_makes_no_call(ip, emu) -> None:
    with capture_output() as cap:
        ip.run_cell_magic("qwen", "", "About {nowhere_defined}")
    md = markdown(cap)
    assert "nowhere_defined" in md and "not defined" in md and "Traceback" not in md + cap.stderr
    assert chat_bodies(emu) == []


def test_bad_option_prints_the_usage_line_not_a_traceback(ip, emu) -> None:
    with capture_output() as cap:
        ip.run_cell_magic("qwen", "--bogus", "Who are you?")
    assert "usage: %qwen" in cap.stderr or "usage: qwen" in cap.stderr
    assert "--bogus" in cap.stderr and "Traceback" not in cap.stderr
    with capture_output() as cap2:
        ip.run_cell_magic("qwen", "--api grpc", "Who are you?")
    assert "usage:" in cap2.stderr and "grpc" in cap2.stderr
    assert chat_bodies(emu) == []


def test_bad_option_through_run_cell_shows_usage(ip, emu) -> None:
    with capture_output() as cap:
        res = ip.run_cell("%%qwen -m\nWho are you?\n")
    assert res.error_in_exec is None and res.error_before_exec is None
    assert "usage:" in cap.stderr and "Traceback" not in cap.stdout + cap.stderr


def test_service_error_shows_the_guided_message(ip, emu) -> None:
    with capture_output() as cap:
        ip.run_cell_magic("qwen", "-p team-a -m qwen-max -o answer", "Who are you?")
    md = markdown(cap)
    assert "ModelNotGrantedError" in md and "How to fix" in md
    assert "Traceback" not in md + cap.stderr
    assert "answer" not in ip.user_ns
    for p in emu.profiles().values():
        assert p.key not in md + cap.stdout + cap.stderr


def test_thinking_flag_turns_thinking_on(ip, emu) -> None:
    with capture_output() as cap:
        ip.run_cell_magic("qwen", "--thinking --stream -o answer", "Why is the sky blue?")
    assert chat_bodies(emu)[-1].get("enable_thinking") is True
    assert ip.user_ns["answer"].reasoning  # the emulator thinks aloud when asked
    assert "Thinking" in markdown(cap)


def test_stream_updates_one_display_and_ends_with_the_result(ip, emu) -> None:
    with capture_output() as cap:
        ip.run_cell_magic("qwen", "--stream -o answer", "Who are you?")
    res = ip.user_ns["answer"]
    first, *updates, final = cap.outputs
    assert not first.update and updates and all(o.update for o in updates)
    ids = {o.transient.get("display_id") for o in [first, *updates]}
    assert len(ids) == 1 and None not in ids  # one live display, updated in place
    # the live display starts and ends empty; the answer is then an ordinary output, so a saved
    # notebook holds what a re-run emits (nbval ignores display updates)
    assert first.data == {"text/plain": ""} and updates[-1].data == {"text/plain": ""}
    assert not final.update and "display_id" not in (final.transient or {})
    assert final.data["text/markdown"] == res._repr_markdown_()
    # coalesced: never more pushes than pieces received (plus the final one)
    assert len(updates) <= res.usage.output_tokens + 1


def test_stream_cut_shows_partial_text_and_the_error(ip, emu) -> None:
    emu.set_faults(cut_after=3, cut_streams=1)
    with capture_output() as cap:
        ip.run_cell_magic("qwen", "--stream -o answer", "Who are you?")
    last = cap.outputs[-1].data["text/markdown"]
    assert "StreamInterruptedError" in last or "interrupted" in last.lower()
    assert "answer" not in ip.user_ns


def test_line_magic_sends_the_rest_of_the_line(ip, emu) -> None:
    with capture_output() as cap:
        ip.run_line_magic("qwen", "-m qwen-max Who are you?")
    assert markdown(cap).startswith("I am Qwen")
    assert chat_bodies(emu)[-1]["model"] == "qwen-max"


def test_empty_cell_is_an_input_error(ip, emu) -> None:
    with capture_output() as cap:
        ip.run_cell_magic("qwen", "", "   \n")
    assert "empty" in markdown(cap) and chat_bodies(emu) == []


def test_profiles_table_masks_keys(ip, emu) -> None:
    with capture_output() as cap:
        ip.run_line_magic("qwen_profiles", "")
    shown = "".join(str(v) for o in cap.outputs for v in o.data.values()) + cap.stdout
    for p in emu.profiles().values():
        assert p.name in shown and p.masked_key in shown and p.key not in shown
    assert "default" in shown


def test_usage_report_after_calls(ip, emu) -> None:
    with capture_output():
        ip.run_cell_magic("qwen", "-p team-a", "Who are you?")
    with capture_output() as cap:
        ip.run_line_magic("qwen_usage", "--by profile")
    shown = "".join(str(v) for o in cap.outputs for v in o.data.values())
    assert "team-a" in shown
    with capture_output() as cap2:
        ip.run_line_magic("qwen_usage", "--by colour")
    assert "usage:" in cap2.stderr


class _InterruptAfter:
    """The real session, but its stream raises KeyboardInterrupt (the stop button) after ``n`` pieces."""

    def __init__(self, session, n: int) -> None:
        self._session, self._n = session, n
        self.stream = None

    def __getattr__(self, name):
        return getattr(self._session, name)

    def stream_chat(self, *args, **kw):
        outer = self
        real = self._session.stream_chat(*args, **kw)
        self.stream = real

        class Stream:
            def __iter__(self):
                for i, delta in enumerate(real):
                    if i == outer._n:
                        raise KeyboardInterrupt
                    yield delta

            def close(self):
                real.close()

        return Stream()


def test_interrupting_a_stream_keeps_the_partial_text_and_records_it(ip, emu, session) -> None:
    proxy = _InterruptAfter(session, 3)
    qwen_nb._default.set_default_session(proxy)  # (the ip fixture restores the default afterwards)
    with capture_output() as cap:
        ip.run_cell_magic("qwen", "--stream -o answer", "Who are you?")
    last = cap.outputs[-1].data["text/markdown"]
    assert "(interrupted)" in last and "answer" not in ip.user_ns
    assert [r.status for r in session.ledger.records()] == ["interrupted"]
