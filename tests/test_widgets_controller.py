"""The Playground's engine without widgets: PlaygroundController against the emulator, callbacks recorded."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from polling import long_retry_waits, until

from qwen_nb.errors import InputError, ModelNotGrantedError
from qwen_nb.widgets.controller import PlaygroundController, Run


def chat_requests(emu) -> list:
    return [r for r in emu.requests if r.method == "POST" and ("chat/completions" in r.path or "generation" in r.path)]



class Recorder:
    """Every callback the controller makes, in order, as (name, args)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []
        self.lock = threading.Lock()

    def callbacks(self) -> dict:
        def make(name):
            def callback(*args):
                with self.lock:
                    self.calls.append((name, args))

            callback.__name__ = name
            return callback

        return {n: make(n) for n in ("on_start", "on_update", "on_status", "on_error", "on_finish", "on_clear")}

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    def args(self, name: str) -> list[tuple]:
        return [a for n, a in self.calls if n == name]


@pytest.fixture
def rec():
    return Recorder()


@pytest.fixture
def ctl(session, rec):
    c = PlaygroundController(session, **rec.callbacks())
    yield c
    c.stop()
    c.wait(5)


def send(ctl, prompt, **kw):
    kw.setdefault("model", "qwen-plus")
    kw.setdefault("profile", "default")
    return ctl.send(prompt, **kw)


def test_the_controller_module_does_not_import_ipywidgets():
    code = (
        "import sys; import qwen_nb.widgets.controller, qwen_nb.widgets.conversation; "
        "from qwen_nb.widgets import PlaygroundController; "
        "assert 'ipywidgets' not in sys.modules, 'ipywidgets was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_send_streams_calls_back_in_order_and_keeps_the_turn(ctl, rec, emu):
    assert send(ctl, "Who are you?")
    assert ctl.wait(15)
    assert not ctl.busy and ctl.last_error is None
    assert ctl.answer_text.startswith("I am Qwen")
    assert ctl.last_result.text == ctl.answer_text
    assert ctl.history == [
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": ctl.answer_text},
    ]
    names = rec.names()
    assert names[:2] == ["on_start", "on_status"] and names[-2:] == ["on_status", "on_finish"]
    assert set(names[2:-2]) == {"on_update"}
    assert rec.args("on_status")[0][0].startswith("Asking qwen-plus via default (openai)")
    assert rec.args("on_status")[-1] == ("", "info")
    updates = rec.args("on_update")
    assert updates and updates[-1] == (ctl.answer_text, "")  # the last update shows everything
    assert len(set(updates)) == len(updates)  # never the same text twice
    (run,) = rec.args("on_finish")[0]
    assert isinstance(run, Run) and run is ctl.run
    assert (run.outcome, run.kept, run.error) == ("done", True, None)
    assert run.result is ctl.last_result
    assert ctl.stats["pushes"] == len(updates) == ctl.updates and ctl.stats["deltas"] >= 1
    (req,) = chat_requests(emu)
    assert req.body["stream"] is True and req.body["model"] == "qwen-plus"


def test_history_is_sent_params_pass_through_and_thinking_is_reported(ctl, rec, emu):
    assert send(ctl, "Hello") and ctl.wait(15)
    assert send(ctl, "Explain tea", params={"enable_thinking": True, "max_tokens": 300}) and ctl.wait(15)
    assert ctl.last_error is None
    sent = chat_requests(emu)[-1].body
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["max_tokens"] == 300
    assert ctl.reasoning_text and ctl.last_result.reasoning == ctl.reasoning_text
    assert rec.args("on_update")[-1] == (ctl.answer_text, ctl.reasoning_text)
    assert ctl.conversation.turns == 2


def test_bad_input_is_refused_before_any_call(ctl, rec, emu):
    assert not send(ctl, "   ")
    assert isinstance(ctl.last_error, InputError) and "prompt is empty" in str(ctl.last_error)
    assert not send(ctl, "Hi", model="")
    assert "No model is selected" in str(ctl.last_error)
    assert not send(ctl, "Hi", profile=None)
    assert "No profile is selected" in str(ctl.last_error)
    assert not send(ctl, "Hi", region="cn-hongkong")
    assert "keys work only in their own region" in str(ctl.last_error)
    assert not send(ctl, "Hi", profile="nobody")
    assert "Unknown profile" in str(ctl.last_error)
    assert rec.names() == ["on_error"] * 5
    assert chat_requests(emu) == [] and not ctl.busy and ctl.run is None


def test_a_second_send_and_a_clear_while_answering_are_refused(ctl, rec, emu):
    emu.set_faults(tokens_per_second=40)
    assert send(ctl, "Tell me about rivers")
    assert not send(ctl, "And lakes?")
    assert not ctl.clear()
    assert ctl.refused == 2
    refusals = [a for a in rec.args("on_status") if a[1] == "warn"]
    assert "Still answering" in refusals[0][0] and "before clearing" in refusals[1][0]
    run = ctl.run
    assert ctl.stop()
    assert ctl.wait(5)
    assert run.settled.wait(10)  # the call's threads have exited (the request may have been opening)
    assert len(chat_requests(emu)) <= 1  # the refused send sent nothing; a stop before the first request, nothing


def test_stop_closes_the_stream_at_once_and_no_further_request_is_made(ctl, rec, emu, session):
    full = session.chat("Tell me about the ocean tides").text
    emu.set_faults(tokens_per_second=40)
    assert send(ctl, "Tell me about the ocean tides")
    assert until(lambda: len(ctl.answer_text) > 10)
    requests_before = len(chat_requests(emu))
    run = ctl.run

    assert ctl.stop()
    # stop() returns with the call finished (STOP_GRACE at most, then it finishes the call itself)
    assert not ctl.busy and run.done.is_set()
    # the stream was closed inside stop(): its ledger record (interrupted, cancelled) is already written
    interrupted = [r for r in session.ledger.records() if r.status == "interrupted"]
    assert len(interrupted) == 1 and interrupted[0].model == "qwen-plus"
    partial = ctl.answer_text

    assert run.settled.wait(5)  # the call's threads have exited
    assert len(chat_requests(emu)) == requests_before  # no retry, no reopened stream
    assert ctl.answer_text == partial  # nothing arrived after the stop
    assert 0 < len(partial) < len(full) and full.startswith(partial)
    assert (run.outcome, run.kept) == ("stopped", True)
    assert ctl.history[-1] == {"role": "assistant", "content": partial}
    assert ctl.last_result is not None and ctl.last_result.finish_reason == "cancelled"
    assert ctl.last_error is None
    assert rec.args("on_update")[-1] == (partial, "")
    assert rec.names()[-2:] == ["on_status", "on_finish"]
    assert rec.args("on_status")[-1] == ("Stopped. The partial answer is kept in the history.", "warn")
    assert [r.status for r in session.ledger.records()].count("interrupted") == 1
    assert not ctl.stop()  # nothing left to stop


def test_stop_while_the_stream_is_still_opening(ctl, emu, session):
    emu.set_faults(latency=0.5)
    assert send(ctl, "Who are you?")
    run = ctl.run
    assert ctl.stop()
    assert not ctl.busy and run.outcome == "stopped"
    assert run.settled.wait(10)
    assert ctl.history == []  # nothing arrived: the turn is not kept
    # a request already on its way is made once and its stream closed as soon as it opens; a stop that
    # comes before it is sent sends nothing (the call's cancel token)
    sent = len(chat_requests(emu))
    assert sent <= 1
    assert [r.status for r in session.ledger.records()] == ["interrupted"] * sent


def test_a_refused_model_is_reported_and_marked_on_the_session(ctl, rec, session):
    assert send(ctl, "Hello", profile="team-a") and ctl.wait(15)
    history = [dict(m) for m in ctl.history]
    assert "qwen-max" not in session.not_granted("team-a")
    assert send(ctl, "Hello", profile="team-a", model="qwen-max") and ctl.wait(15)
    assert isinstance(ctl.last_error, ModelNotGrantedError)
    assert rec.args("on_error")[-1] == (ctl.last_error,)
    assert ctl.run.outcome == "failed" and ctl.run.error is ctl.last_error
    assert "qwen-max" in session.not_granted("team-a")
    assert ctl.history == history
    assert rec.args("on_status")[-1] == ("The call failed; the conversation is unchanged.", "warn")


def test_clear_forgets_the_conversation_and_the_last_answer(ctl, rec):
    assert send(ctl, "Hello") and ctl.wait(15)
    assert ctl.clear()
    assert ctl.history == [] and ctl.answer_text == "" and ctl.run is None and ctl.stats == {}
    assert rec.names()[-2:] == ["on_clear", "on_status"]
    assert rec.args("on_status")[-1] == ("Conversation cleared.", "info")


def test_a_failing_callback_does_not_stop_the_call(session):
    seen: list[str] = []

    def flaky_update(answer: str, reasoning: str) -> None:
        if not seen:
            seen.append("failed")
            raise RuntimeError("display hiccup")
        seen.append(answer)

    def bad_finish(run: Run) -> None:
        raise RuntimeError("view bug")

    ctl = PlaygroundController(session, on_update=flaky_update, on_finish=bad_finish)
    assert send(ctl, "Who are you?") and ctl.wait(15)
    assert not ctl.busy and ctl.last_error is None
    assert seen[0] == "failed" and seen[-1] == ctl.answer_text  # retried: the final text was shown
    assert ctl.history[-1]["content"] == ctl.answer_text


def test_bad_rate_is_refused_at_construction(session):
    with pytest.raises(InputError):
        PlaygroundController(session, rate=0)


def test_stop_during_a_retry_wait_sends_nothing_more(ctl, emu, session):
    """Stop while the call waits to retry (a 429): the wait ends at once and no new request follows."""
    session.retry = long_retry_waits(5, 10.0)
    emu.set_faults(fail_next=5, fail_status=503)
    assert send(ctl, "Who are you?")
    assert until(lambda: len(chat_requests(emu)) >= 1)
    run = ctl.run
    assert ctl.stop()
    assert not ctl.busy and run.outcome == "stopped"
    assert run.settled.wait(5)  # the retry wait ended at once
    assert len(chat_requests(emu)) == 1
    assert [r.status for r in session.ledger.records()] == ["interrupted"]


def test_turns_context_and_totals(ctl, emu, session):
    assert ctl.context("Hi") == (0, 1) and ctl.context_line() == "New chat: nothing earlier is sent"
    assert send(ctl, "Hello") and ctl.wait(15)
    turns, tokens = ctl.context("What is 2+2?")
    assert turns == 1 and tokens > 3
    assert ctl.context_line("What is 2+2?") == f"1 earlier turn · ~{tokens} tokens will be sent"
    assert send(ctl, "What is 2+2?") and ctl.wait(15)
    first, second = ctl.turns
    assert (first.index, second.index) == (1, 2) and (first.earlier_turns, second.earlier_turns) == (0, 1)
    assert second.context_tokens == tokens and second.messages[-1]["content"] == "What is 2+2?"
    assert second.usage == second.result.usage and second.cost == second.result.cost
    spent = first.cost + second.cost
    assert ctl.totals == {"USD": pytest.approx(spent)} and ctl.calls == 2
    assert ctl.total_tokens == sum(r.usage.input_tokens + r.usage.output_tokens for r in ctl.turns)
    assert ctl.total_line().startswith(f"Playground total: {spent:.6f} USD · ")
    assert ctl.new_chat() and ctl.turns == [] and ctl.history == []
    assert ctl.totals == {"USD": pytest.approx(spent)}  # what was spent stays counted


def test_a_stopped_turn_keeps_what_it_was_billed(ctl, emu, session):
    emu.set_faults(tokens_per_second=40)
    assert send(ctl, "Tell me about the ocean tides")
    assert until(lambda: len(ctl.answer_text) > 10)
    assert ctl.stop()
    run = ctl.turns[-1]
    assert run.outcome == "stopped" and run.usage is not None and run.usage.output_tokens > 0
    assert run.cost is not None and ctl.totals["USD"] == pytest.approx(run.cost)


def test_not_granted_refusals_offer_a_profile_that_can_call_the_model(ctl, session, emu):
    # known from the grants: with check_grants nothing is sent
    assert send(ctl, "Hello", profile="team-a", model="qwen-max", check_grants=True)
    run = ctl.turns[-1]
    assert run.outcome == "failed" and not run.sent and chat_requests(emu) == []
    assert isinstance(run.error, ModelNotGrantedError) and "nothing was sent" in run.error.message
    assert run.usage.input_tokens == 0 and ctl.calls == 0
    assert run.action == "default"  # a default-workspace key of the same region
    assert [p.name for p in session.profiles_for("qwen-max", "ap-southeast-1")] == ["default", "team-b"]
    assert ctl.retry_with_profile(run) and ctl.wait(15)
    again = ctl.turns[-1]
    assert again.outcome == "done" and again.profile == "default" and again.prompt == "Hello"
    assert chat_requests(emu)[-1].body["model"] == "qwen-max"
    # refused by the service: the ledger row says what was billed (nothing)
    session.add_profile("team-a2", emu.key("team-a"), workspace=emu.config.workspace("team-a").id)
    assert send(ctl, "Hi", profile="team-a2", model="qwen-max") and ctl.wait(15)
    run = ctl.turns[-1]
    assert run.sent and run.outcome == "failed" and run.usage is not None and run.usage.output_tokens == 0
    assert run.action == "default" and "team-a2" not in [p.name for p in session.profiles_for("qwen-max")]


def test_profiles_changed_callbacks(session):
    seen = []

    class View:
        def changed(self):
            seen.append("view")

    view = View()
    remove = session.on_profiles_changed(lambda: seen.append("fn"))
    session.on_profiles_changed(view.changed)
    session.add_profile("x", "sk-" + "X" * 32)
    assert seen == ["fn", "view"]
    del view  # a bound method is held weakly
    remove()
    session.remove_profile("x")
    assert seen == ["fn", "view"]


# ---------------------------------------------------------------------------------------------- Responses API turns

RESPONSES_MODEL = "qwen3-max-2026-01-23"


def response_requests(emu) -> list:
    return [r for r in emu.requests if r.method == "POST" and r.path.endswith("/responses")]


def respond(ctl, prompt, **kw):
    kw.setdefault("model", RESPONSES_MODEL)
    kw.setdefault("profile", "default")
    return ctl.send(prompt, api="responses", **kw)


def test_a_responses_turn_streams_steps_then_text_and_the_next_one_continues_from_it(session, emu, rec):
    steps = []
    ctl = PlaygroundController(session, **rec.callbacks(), on_step=steps.append)
    assert ctl.context_line("Hi", api="responses") == "New chat: nothing earlier is sent · ~1 tokens"
    assert respond(ctl, "What is new in Qwen3?", tools=["web_search", "code_interpreter"]) and ctl.wait(15)
    first = ctl.turns[-1]
    assert first.outcome == "done" and first.error is None and first.responses
    assert [s.type for s in first.steps] == ["web_search_call", "code_interpreter_call"] == [s.type for s in steps]
    assert first.steps[1].output == "5"
    assert ctl.answer_text == first.result.text and "canned answer" in ctl.answer_text
    # the steps were handed over before the first text
    assert rec.names().index("on_update") > 0 and rec.args("on_update")[-1] == (ctl.answer_text, "")
    assert ctl.response_id == first.result.id and ctl.response_id.startswith("resp_")
    body = response_requests(emu)[-1].body
    assert body["input"] == "What is new in Qwen3?" and body["stream"] is True
    assert body["tools"] == [{"type": "web_search"}, {"type": "code_interpreter"}]
    assert "previous_response_id" not in body and "temperature" not in body
    # billed like a chat turn: the result's usage, the ledger row
    assert first.usage == first.result.usage and first.usage.output_tokens > 0 and ctl.calls == 1
    assert [r.kind for r in session.ledger.records()] == ["responses"]

    line = ctl.context_line("And the models?", api="responses")
    assert line.startswith("Continues from the previous response: 1 earlier turn kept by the service, not resent")
    assert respond(ctl, "And the models?", params={"temperature": 0.5}) and ctl.wait(15)
    second = ctl.turns[-1]
    body = response_requests(emu)[-1].body
    assert body["previous_response_id"] == first.result.id and body["input"] == "And the models?"
    assert "tools" not in body and "temperature" not in body  # chat parameters are not sent
    assert second.previous_response_id == first.result.id and first.result.id in ctl.answer_text
    assert second.earlier_turns == 1 and second.messages == [{"role": "user", "content": "And the models?"}]

    assert ctl.new_chat() and ctl.response_id is None
    assert respond(ctl, "Fresh start") and ctl.wait(15)
    assert "previous_response_id" not in response_requests(emu)[-1].body


def test_switching_modes_keeps_the_conversation_and_says_what_is_sent(ctl, emu):
    assert send(ctl, "Hello") and ctl.wait(15)  # a chat turn
    line = ctl.context_line("Now with tools", api="responses")
    assert line.startswith("1 earlier turn · ~") and "as input messages" in line
    assert respond(ctl, "Now with tools", tools=["web_search"]) and ctl.wait(15)
    body = response_requests(emu)[-1].body
    assert [m["role"] for m in body["input"]] == ["user", "assistant", "user"]  # the chat turn, resent as input
    assert "previous_response_id" not in body and ctl.response_id
    # back to chat: the whole history (the Responses turn's text too) is sent; no response id on the wire
    assert send(ctl, "And now?") and ctl.wait(15)
    sent = chat_requests(emu)[-1].body["messages"]
    assert [m["content"] for m in sent[:4:2]] == ["Hello", "Now with tools"] and len(sent) == 5
    assert ctl.response_id is None  # the last turn was a chat turn: the next Responses turn resends the history
    assert ctl.context_line("x", api="responses").startswith("3 earlier turns")


def test_stop_ends_a_responses_turn_mid_stream(ctl, emu, session):
    emu.set_faults(tokens_per_second=40)
    assert respond(ctl, "Tell me about the ocean tides and the moon", tools=["web_search"])
    assert until(lambda: len(ctl.answer_text) > 10)
    run = ctl.run
    assert ctl.stop() and not ctl.busy and run.outcome == "stopped"
    assert run.settled.wait(5)
    assert run.steps and 0 < len(ctl.answer_text) and run.kept
    assert len(response_requests(emu)) == 1  # nothing more was sent
    assert ctl.response_id is None  # a stopped turn is not continued from: the next turn resends the history
    assert [r.status for r in session.ledger.records()] == ["interrupted"]


def test_responses_refusals_before_anything_is_sent(ctl, rec, emu, session):
    # a model the profile's grants do not list: a failed turn at once, nothing sent, another profile offered
    assert respond(ctl, "Hello", profile="team-a", check_grants=True)
    run = ctl.turns[-1]
    assert run.outcome == "failed" and not run.sent and isinstance(run.error, ModelNotGrantedError)
    assert run.action == "default" and response_requests(emu) == []
    assert ctl.retry_with_profile(run) and ctl.wait(15)
    assert ctl.turns[-1].outcome == "done" and ctl.turns[-1].api == "responses"
    # bad input: refused with the reason, no turn
    for kw, match in (({"model": "qwen-plus"}, "not a Responses API model"),
                      ({"tools": ["calculator"]}, "Unknown built-in tool"),
                      ({"profile": "beijing"}, "not offered in"),
                      ({"model": None}, "No Responses API model")):
        assert not respond(ctl, "Hi", **kw)
        assert isinstance(ctl.last_error, InputError) and match in str(ctl.last_error)
    assert not send(ctl, "Hi", tools=["web_search"])  # tools are for Responses turns
    assert len(response_requests(emu)) == 1
