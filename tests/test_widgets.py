"""Widgets against the local emulator: their own handlers (set .value, button.click()), real SDKs over loopback."""

from __future__ import annotations

import pytest
from polling import until

from qwen_nb.errors import InputError, ModelNotGrantedError
from qwen_nb.widgets import ApiToggle, KeyEntry, ModelPicker, ParamsBox, Playground, ProfilePicker, RegionPicker
from qwen_nb.widgets.pickers import NOT_GRANTED, is_transient


def chat_requests(emu) -> list:
    return [r for r in emu.requests if r.method == "POST" and ("chat/completions" in r.path or "generation" in r.path)]


def model_requests(emu) -> list:
    return [r for r in emu.requests if r.method == "GET" and r.path.endswith(("/models", "/models/permissions"))]



@pytest.fixture
def pg(session):
    p = Playground(session)
    p.model.wait()
    yield p
    p.stop()
    p.wait(5)


# ----------------------------------------------------------------------------- pickers


def test_profile_switch_sets_region_and_lists_that_workspace_models(session, emu):
    region = RegionPicker(session)
    profile = ProfilePicker(session, region=region)
    model = ModelPicker(session, profile=profile)
    assert model.wait(10)
    assert (profile.value, region.value, model.source) == ("default", "ap-southeast-1", "workspace")
    assert "qwen-max" in model.options[0][0] or "qwen-max" in [v for _, v in model.options]

    profile.value = "beijing-lab"
    assert region.value == "cn-beijing"
    assert model.wait(10)
    assert model.source == "workspace"
    labels = dict((v, lab) for lab, v in model.options)
    granted = ["qwen-plus", "qwen-turbo", "qwen3-8b"]
    assert [v for _, v in model.options][:3] == granted  # granted first
    assert all(labels[m] == m for m in granted)
    assert labels["qwen-max"] == "qwen-max" + NOT_GRANTED
    assert model.value == "qwen-plus"
    assert any("/cn-beijing/ws/" in r.path for r in model_requests(emu))

    profile.value = "team-a"
    assert region.value == "ap-southeast-1"
    assert model.wait(10)
    assert model.label_for("qwen-max") == "qwen-max  (not granted)"
    assert model.value == "qwen-plus"  # kept across profiles when granted

    # cached: coming back does not fetch the list again
    before = len(model_requests(emu))
    profile.value = "beijing-lab"
    assert model.wait(10) and model.source == "workspace"
    assert len(model_requests(emu)) == before


def test_region_choice_switches_to_a_profile_of_that_region(session):
    region = RegionPicker(session)
    profile = ProfilePicker(session, region=region)
    # only the regions the session has profiles for are offered
    assert {v for _, v in region.options} == {p.region for p in session.profiles()}
    assert "cn-hongkong" not in [v for _, v in region.options]
    region.value = "cn-beijing"
    assert session.get_profile(profile.value).region == "cn-beijing"
    assert "keys work only in their own region" in profile.note
    every = RegionPicker(session, all_regions=True)  # every region, when asked for
    profile = ProfilePicker(session, region=every)
    every.value = "cn-hongkong"  # no profile there: the choice stays, the note says why
    assert session.get_profile(profile.value).region == "ap-southeast-1"
    assert "No profile for Hong Kong" in profile.note


def test_pickers_follow_profiles_added_to_the_session(session, emu):
    region = RegionPicker(session)
    profile = ProfilePicker(session, region=region)
    model = ModelPicker(session, profile=profile)
    assert model.wait(10)
    session.add_profile("hk", "sk-" + "H" * 32, region="cn-hongkong")  # e.g. from KeyEntry or code
    assert "hk" in [v for _, v in profile.options]
    assert "cn-hongkong" in [v for _, v in region.options]
    profile.value = "hk"
    assert region.value == "cn-hongkong"
    session.remove_profile("hk")
    assert "hk" not in [v for _, v in profile.options] and "cn-hongkong" not in [v for _, v in region.options]
    assert profile.value != "hk"


def test_not_granted_models_are_grouped_under_a_heading_that_cannot_be_chosen(session):
    from qwen_nb.widgets.pickers import HEADING

    model = ModelPicker(session, profile="team-a")
    assert model.wait(10)
    values = [v for _, v in model.options]
    labels = [lab for lab, _ in model.options]
    i = values.index(HEADING)
    assert labels[i] == "── not granted to team-a ──"
    assert all(not lab.endswith(NOT_GRANTED) for lab in labels[:i])
    assert labels[i + 1:] and all(lab.endswith(NOT_GRANTED) for lab in labels[i + 1:])
    assert model.value == "qwen-plus"
    model.value = HEADING  # the heading is not a model: the choice stays
    assert model.value == "qwen-plus"
    assert model.layout.width == "22em" and model.layout.max_width == "100%"  # a fixed width, never wider


def test_model_list_falls_back_to_the_catalog_when_the_workspace_list_fails(session, emu):
    emu.set_faults(fail_next=10, fail_status=503)
    model = ModelPicker(session, profile="team-b")
    assert model.wait(15)
    assert model.source == "catalog"
    assert model.fetch_error is not None
    ids = [v for _, v in model.options]
    assert "qwen-plus" in ids and "qwen-max" in ids
    # team-b's grants are known: the others are marked
    assert model.label_for("qwen-flash").endswith(NOT_GRANTED)


def test_replacing_options_never_passes_through_a_choice_nobody_made(session, emu):
    region = RegionPicker(session)
    profile = ProfilePicker(session, region=region)
    model = ModelPicker(session, profile=profile)
    params = ParamsBox(session, model=model)
    assert model.wait(10)
    model.value = "qwq-plus"  # thinking only: the params follow it
    assert params.thinking.value is True and params.thinking.disabled
    everything: list = []
    seen: dict[str, list] = {"region": [], "profile": [], "model": []}
    for name, w in (("region", region), ("profile", profile), ("model", model)):
        def watch(change, name=name):
            everything.append((name, change["old"], change["new"]))
            if not is_transient(change):
                seen[name].append(change["new"])

        w.observe(watch, names="value")

    listed = len(model_requests(emu))
    profile.refresh()  # the same profiles again: the choice stays, linked views see no change
    assert model.wait(10) and len(model_requests(emu)) == listed  # the model list was not reloaded
    model.refresh(force=True)  # a fresh list from the service: the choice stays
    assert model.wait(10) and len(model_requests(emu)) == listed + 1
    assert seen == {"region": [], "profile": [], "model": []}
    assert ("profile", "default", None) in everything  # what passed meanwhile was flagged transient
    assert model.value == "qwq-plus" and params.thinking.value is True and params.thinking.disabled

    profile.value = "beijing-lab"  # the model list is replaced: only real choices are seen
    assert model.wait(10)
    assert seen["region"] == ["cn-beijing"] and seen["profile"] == ["beijing-lab"]
    assert None not in seen["model"]


def test_api_toggle_and_params_follow_the_model(session):
    api = ApiToggle(session)
    assert api.value == "openai"
    api.value = "dashscope"
    model = ModelPicker(session, profile="default", fetch=False)
    params = ParamsBox(session, model=model)
    model.value = "qwq-plus"  # thinking only
    assert params.thinking.value is True and params.thinking.disabled
    model.value = "qwen-max"  # no thinking
    assert params.thinking.value is False and params.thinking.disabled
    assert "enable_thinking" not in params.params()
    model.value = "qwen-plus"  # hybrid, off by default
    assert not params.thinking.disabled and params.thinking.value is False
    params.thinking.value = True
    params.thinking_budget.value = 64
    params.max_tokens.value = 100
    params.seed.value = 7
    params.temperature.value = 0.3
    assert params.params() == {
        "temperature": 0.3, "max_tokens": 100, "enable_thinking": True, "thinking_budget": 64, "seed": 7,
    }


# ----------------------------------------------------------------------------- playground


def test_playground_displays_as_its_widget_and_keeps_widget_send(pg, emu):
    import ipywidgets as widgets

    from qwen_nb.widgets import PlaygroundController

    assert isinstance(pg.widget, widgets.VBox) and not isinstance(pg, widgets.Widget)
    assert isinstance(pg.controller, PlaygroundController) and pg.controller.session is pg.session
    bundle = pg._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == pg.widget.model_id
    assert bundle["text/plain"] == repr(pg) and "qwen-plus" in repr(pg) and "idle" in repr(pg)
    assert emu.key("default") not in repr(pg)
    # the widgets' own ``send`` (custom messages to the frontend) keeps its meaning
    assert type(pg.widget).send is widgets.Widget.send and type(pg.prompt).send is widgets.Widget.send
    assert pg.prompt in pg.widget.children and pg.chat in pg.widget.children
    assert pg.answer is None  # no turn yet: the answers live in the turns of the chat


def test_close_stops_and_closes_the_widgets(session, emu):
    pg = Playground(session)
    pg.model.wait()
    emu.set_faults(tokens_per_second=40)
    assert pg.send("Tell me about rivers")
    pg.close()
    assert not pg.busy
    assert pg.widget.comm is None and pg.prompt.comm is None and pg.model.comm is None


def test_send_streams_and_completes(pg, emu):
    pg.prompt.value = "Who are you?"
    pg.send_button.click()
    assert pg.wait(15)
    assert not pg.busy
    assert pg.last_error is None, pg.error.value
    assert pg.answer_text.startswith("I am Qwen")
    assert pg.last_result.text == pg.answer_text
    assert pg.updates_sent >= 1
    shown = pg.answer.outputs[-1]["data"]["text/markdown"]
    assert shown == pg.answer_text  # the final push shows everything
    assert "out" in pg.usage.value and "ms" in pg.usage.value  # tokens and latency
    assert f"≈{pg.last_result.cost:.6f} {pg.last_result.currency}" in pg.usage.value  # and cost
    assert pg.chat.children == (pg.current.widget,) and pg.answer in pg.current.main.children
    assert "Who are you?" in pg.current.question.value  # the question stays shown with its answer
    assert "1 earlier turn" in pg.context.value and "Playground total: 0.0000" in pg.total.value
    assert pg.history == [
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": pg.answer_text},
    ]
    assert pg.prompt.value == ""
    (req,) = chat_requests(emu)
    assert req.body["stream"] is True and req.body["model"] == "qwen-plus"
    assert pg.send_button.disabled is False and pg.stop_button.disabled is True


def test_thinking_text_goes_to_the_collapsible_section(pg):
    pg.model.value = "qwen-plus"
    pg.params.thinking.value = True
    assert pg.send("Explain tea")
    assert pg.wait(15) and pg.last_error is None, pg.error.value
    assert pg.reasoning_text
    assert pg.thinking_box.layout.display is None  # shown
    assert pg.thinking_box.selected_index is None  # collapsed once the answer started
    assert "tokens" in pg.thinking_box.get_title(0)
    assert pg.last_result.reasoning == pg.reasoning_text


def test_native_api_is_used_when_toggled(pg, emu):
    pg.api.value = "dashscope"
    assert pg.send("Who are you?") and pg.wait(15)
    assert pg.last_error is None, pg.error.value
    assert pg.last_result.api == "dashscope"
    assert "/api/v1/services/aigc/text-generation/generation" in chat_requests(emu)[-1].path


def test_stop_cancels_and_keeps_the_partial_answer(pg, emu, session):
    full = session.chat("Tell me about the ocean tides").text
    emu.set_faults(tokens_per_second=40)
    assert pg.send("Tell me about the ocean tides")
    assert until(lambda: len(pg.answer_text) > 10)
    pg.stop_button.click()
    assert pg.wait(5)
    assert not pg.busy
    assert 0 < len(pg.answer_text) < len(full)
    assert full.startswith(pg.answer_text)
    assert pg.last_result is not None and pg.last_result.finish_reason == "cancelled"
    assert pg.last_error is None
    assert "Stopped" in pg.status.value
    assert pg.history[-1] == {"role": "assistant", "content": pg.answer_text}
    # the turn says it was stopped, and what it was billed
    usage = pg.last_result.usage
    assert "■ stopped" in pg.usage.value and f"billed {usage.line()}" in pg.usage.value
    assert usage.output_tokens > 0 and pg.turns[-1].outcome == "stopped"
    statuses = [r.status for r in session.ledger.records()]
    assert "interrupted" in statuses


def test_second_send_while_streaming_is_refused(pg, emu):
    emu.set_faults(tokens_per_second=40)
    assert pg.send("Tell me about rivers")
    pg.prompt.value = "And lakes?"
    pg.send_button.click()
    assert pg.refused == 1
    assert "Still answering" in pg.status.value
    assert pg.prompt.value == "And lakes?"  # not consumed
    pg.stop()
    assert pg.wait(5)
    assert len(chat_requests(emu)) <= 1  # the refused send sent nothing (and Stop may come before the first)


def test_access_denied_shows_guidance_and_marks_the_model(pg, emu, session):
    pg.profile.value = "team-a"
    assert pg.model.wait(10)
    assert pg.send("Who are you?") and pg.wait(15)  # granted model: one turn in the history
    history = [dict(m) for m in pg.history]
    assert "qwen-max" not in session.not_granted("team-a")  # nothing marked it yet: the refusal below does

    pg.model.value = "qwen-max"
    pg.prompt.value = "Hello"
    pg.send_button.click()
    assert pg.wait(15)
    assert isinstance(pg.last_error, ModelNotGrantedError)
    panel = pg.error.value
    assert "ModelNotGrantedError" in panel and "How to fix" in panel and "qwen-max" in panel
    assert "Traceback" not in panel
    assert emu.key("team-a") not in panel
    assert "qwen-max" in session.not_granted("team-a")
    assert dict((v, lab) for lab, v in pg.model.options)["qwen-max"] == "qwen-max" + NOT_GRANTED
    assert pg.history == history  # a failure never loses history
    assert not pg.busy
    # known from the grants: nothing was sent, the turn says so, and offers a profile that can call it
    failed = pg.current
    assert failed.run.outcome == "failed" and not failed.run.sent
    assert "✗ not sent" in failed.usage.value and "nothing billed" in failed.usage.value
    assert pg.error is failed.error and "<details" in panel  # the long text folded
    assert failed.action.layout.display is None and failed.action.description == "Use profile 'default'"
    assert len(chat_requests(emu)) == 1
    failed.action.click()  # switches the profile picker and sends the turn again
    assert pg.profile.value == "default" and pg.model.value == "qwen-max"
    assert pg.wait(15) and pg.last_error is None, pg.error.value
    assert pg.turns[-1].profile == "default" and pg.turns[-1].prompt == "Hello" and pg.turns[-1].outcome == "done"
    assert chat_requests(emu)[-1].body["model"] == "qwen-max"
    assert pg.prompt.value == ""


def test_a_model_refused_by_the_service_fails_on_its_turn_with_nothing_billed(pg, emu, session):
    # team-a's key and workspace without its grants list: only the service can say no
    session.add_profile("team-a2", emu.key("team-a"), workspace=emu.config.workspace("team-a").id)
    pg.profile.value = "team-a2"
    assert pg.model.wait(10)
    assert pg.controller.send("Hello", model="qwen-max", profile="team-a2") and pg.wait(15)
    assert isinstance(pg.last_error, ModelNotGrantedError)
    turn = pg.current
    assert turn.run.sent and turn.run.outcome == "failed"
    assert "✗ failed" in turn.usage.value and "nothing billed" in turn.usage.value
    assert "HTTP 403" in turn.error.value and "request id" in turn.error.value
    assert "POST" not in turn.error.value.split("<details")[0]  # the URL stays in the folded details
    assert turn.action.description == "Use profile 'default'"
    assert pg.prompt.value == ""  # the action offers to send it again instead


def test_history_accumulates_is_sent_and_clears(pg, emu):
    assert pg.send("Hello") and pg.wait(15)
    assert pg.send("What is 2+2?") and pg.wait(15)
    assert [m["role"] for m in pg.history] == ["user", "assistant", "user", "assistant"]
    assert pg.history[-1]["content"] == "2 + 2 = 4."
    sent = chat_requests(emu)[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert "2 earlier turns" in pg.context.value and "tokens will be sent" in pg.context.value
    assert "sent with 1 earlier turn" in pg.current.question.value
    # both turns shown in order, questions with their answers
    assert [v.run.prompt for v in pg.turn_views] == ["Hello", "What is 2+2?"]
    total = pg.controller.totals
    assert "Playground total" in pg.total.value and sum(total.values()) > 0
    pg.clear_button.click()
    assert pg.history == [] and pg.chat.children == ()
    assert "New chat" in pg.context.value
    assert pg.controller.totals == total  # what was spent stays counted


def test_empty_prompt_and_region_mismatch_are_refused_before_any_call(pg, emu):
    assert not pg.send("   ")
    assert isinstance(pg.last_error, InputError) and "prompt is empty" in pg.error.value
    assert pg.error is pg.refusal and pg.chat.children == ()
    # a region without a profile is not offered; a mismatch given in code is still refused
    assert "cn-hongkong" not in [v for _, v in pg.region.options]
    assert not pg.controller.send("Hello", model="qwen-plus", profile="default", region="cn-hongkong")
    assert "keys work only in their own region" in pg.error.value
    assert chat_requests(emu) == []


def test_show_code_uses_the_current_choices(pg, emu):
    pg.profile.value = "team-b"
    pg.model.wait(10)
    pg.model.value = "qwen-max"
    code = pg.code_text("Hi")  # before any turn: the current choices
    assert "```python" in code and "qwen-max" in code and "DASHSCOPE_API_KEY" in code
    assert emu.key("team-b") not in code


def test_show_code_beside_the_answer_is_the_request_actually_sent(pg, emu):
    assert pg.send("Hello") and pg.wait(15)
    assert pg.send("What is 2+2?") and pg.wait(15)
    turn = pg.current
    assert turn.code_box.layout.display == "none"
    turn.code_toggle.value = True
    assert turn.code_box in turn.body.children  # beside the answer, not under the conversation
    code = turn.code.outputs[-1]["data"]["text/markdown"]
    sent = chat_requests(emu)[-1].body["messages"]
    assert "```python" in code and all(m["content"] in code for m in sent)  # the history too
    assert turn.code_language.description == "Language" and "Copy" in turn.copy.value
    turn.code_language.value = "curl"
    assert "curl" in turn.code.outputs[-1]["data"]["text/markdown"]
    assert "2 + 2 = 4." in turn.code.outputs[-1]["data"]["text/markdown"] or "Hello" in code
    first = pg.turn_views[0]
    first.code_toggle.value = True
    assert "What is 2+2?" not in first.code.outputs[-1]["data"]["text/markdown"]
    turn.code_toggle.value = False
    assert turn.code_box.layout.display == "none"
    assert emu.key("default") not in code


# ----------------------------------------------------------------------------- keys


def test_key_entry_clears_the_box_and_adds_the_profile(session, emu):
    key = emu.key("team-b")
    entry = KeyEntry(session)
    entry.name.value = "mine"
    entry.workspace.value = emu.config.workspace("team-b").id
    entry.key.value = key
    assert entry.key.value == ""  # moved out of the widget at once
    assert entry.key.get_state()["value"] == ""
    assert entry.has_key
    entry.button.click()
    profile = session.get_profile("mine")
    # the workspace id was taken out of the box too (checked, kept kernel-side)
    assert profile.key == key and profile.workspace == entry.workspace_id == emu.config.workspace("team-b").id
    assert entry.workspace.value == "" and entry.workspace.get_state()["value"] == ""
    assert profile.masked_key in entry.message.value and key not in entry.message.value
    assert not entry.has_key
    for w in (entry.name, entry.workspace, entry.key, entry.message, entry.region):
        assert key not in str(w.get_state())
    # the new profile works
    assert session.chat("Who are you?", profile="mine", model="qwen-max").text.startswith("I am Qwen")


def test_key_box_never_sends_a_key_out(session):
    entry = KeyEntry(session)
    entry.key.unobserve_all("value")  # even a value nobody took is serialised as ""
    entry.key.value = "sk-" + "Q" * 28
    assert entry.key.get_state()["value"] == ""
    assert entry.key.trait_metadata("value", "echo_update") is False


def test_invalid_key_gives_guidance_and_is_cleared(session):
    entry = KeyEntry(session)
    entry.name.value = "broken"
    entry.key.value = "not a key at all"
    entry.button.click()
    assert entry.key.value == "" and not entry.has_key
    assert "How to fix" in entry.message.value and "paste it again" in entry.message.value
    assert "not a key at all" not in entry.message.value
    assert "broken" not in [p.name for p in session.profiles()]
    entry.name.value = ""
    entry.key.value = "sk-" + "Z" * 30
    assert entry.submit() is None and "needs a name" in entry.message.value


def test_key_added_in_the_playground_appears_in_the_picker_and_is_usable(pg, emu):
    key = emu.key("beijing-lab")
    entry = pg.key_entry
    entry.name.value = "lab"
    entry.region.value = "cn-beijing"
    entry.workspace.value = emu.config.workspace("beijing-lab").id
    entry.key.value = key
    entry.button.click()
    labels = [lab for lab, _ in pg.profile.options]
    assert any(lab.startswith("lab · sk-…" + key[-4:]) for lab in labels)
    assert all(key not in lab for lab in labels)
    assert pg.profile.value == "lab" and pg.region.value == "cn-beijing"
    assert pg.model.wait(10) and pg.model.value == "qwen-plus"
    assert pg.send("Who are you?") and pg.wait(15)
    assert pg.last_error is None, pg.error.value
    assert pg.last_result.region == "cn-beijing"


# ----------------------------------------------------------------------------- the Responses API mode


def test_the_responses_mode_shows_tools_and_the_responses_models(pg, session, emu):
    from qwen_nb import facts

    assert [v for _, v in pg.api.options] == [*facts.API_NAMES, "responses"]
    assert [v for _, v in ApiToggle(session).options] == list(facts.API_NAMES)  # alone: the two APIs
    assert pg.tools_box.layout.display == "none" and not pg.params.temperature.disabled
    chat_model = pg.model.value
    pg.api.value = "responses"
    assert pg.tools_box.layout.display is None and list(pg.tools) == list(facts.RESPONSE_TOOLS)
    assert not any(box.value for box in pg.tools.values())  # none ticked at first
    assert [v for _, v in pg.model.options] == facts.kind_models("responses", "ap-southeast-1")
    assert pg.params.temperature.disabled and pg.params.thinking.disabled and "not sent" in pg.params.hint.value
    pg.profile.value = "team-a"  # its grants do not list the model: grouped under the heading, labelled
    assert [label for label, _ in pg.model.options][0].startswith("── not granted to team-a")
    pg.profile.value = "beijing"
    assert pg.model.options == () and "No Responses API model is offered in" in pg.status.value
    pg.profile.value = "default"
    pg.api.value = "openai"  # back to chat: the chat model chosen before, the parameters enabled
    assert pg.model.value == chat_model and not pg.params.temperature.disabled
    assert pg.tools_box.layout.display == "none"
    assert model_requests(emu) == [] or all("responses" not in r.path for r in model_requests(emu))


def test_a_responses_turn_shows_its_steps_answer_chips_and_code(pg, emu):
    pg.api.value = "responses"
    pg.tools["web_search"].value = True
    pg.tools["code_interpreter"].value = True
    assert pg.send("What is new in Qwen3?") and pg.wait(15)
    turn = pg.current
    assert turn.steps.layout.display is None and len(turn.steps.children) == 2
    assert "web search" in turn.steps.children[0].value and "completed" in turn.steps.children[0].value
    assert "<details" in turn.steps.children[1].value and "print(len(words))" in turn.steps.children[1].value
    assert "canned answer" in turn.answer.outputs[-1]["data"]["text/markdown"]
    assert "Responses API" in turn.usage.value and " out · " in turn.usage.value
    assert "Responses API · tools: web_search, code_interpreter" in turn.question.value
    assert "Continues from the previous response" in pg.context.value
    assert list(turn.code_language.options) == ["python", "curl"]
    turn.code_toggle.value = True
    code = turn.code.outputs[-1]["data"]["text/markdown"]
    assert "client.responses.create(" in code and '{"type": "code_interpreter"}' in code
    assert pg.send("And the models?") and pg.wait(15)
    rid = pg.turns[0].result.id
    assert "continues from the previous response" in pg.current.question.value
    pg.current.code_toggle.value = True
    assert f'previous_response_id="{rid}"' in pg.current.code.outputs[-1]["data"]["text/markdown"]
    pg.api.value = "openai"  # mid-conversation: said what the next chat turn sends
    assert "Chat mode: the next turn sends the 2 earlier turns" in pg.status.value
    assert pg.new_chat() and pg.controller.response_id is None
