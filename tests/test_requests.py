"""Input checks and request building: every bad input is an InputError before any network call."""

from __future__ import annotations

import base64
import warnings

import pytest

from qwen_nb.errors import InputError
from qwen_nb.requests import (
    build_request,
    check_api,
    check_model,
    image_url,
    native_kwargs,
    openai_kwargs,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_prompt_becomes_one_user_message():
    req = build_request("Who are you?", model="qwen-plus")
    assert req.messages == [{"role": "user", "content": "Who are you?"}]
    assert req.params == {} and not req.vision and not req.stream_only


@pytest.mark.parametrize("bad", ["", "   \n", [], ()])
def test_empty_prompt_or_messages(bad):
    with pytest.raises(InputError) as e:
        build_request(bad, model="qwen-plus")
    assert "empty" in str(e.value).lower()
    assert e.value.fix


def test_unknown_role_names_the_roles():
    with pytest.raises(InputError, match="unknown role 'bot'") as e:
        build_request([{"role": "bot", "content": "hi"}], model="qwen-plus")
    assert "assistant" in e.value.fix


@pytest.mark.parametrize("content", [42, {"a": 1}, None, 3.5])
def test_non_string_content(content):
    with pytest.raises(InputError, match="content must be a string"):
        build_request([{"role": "user", "content": content}], model="qwen-plus")


def test_message_not_a_dict():
    with pytest.raises(InputError, match="must be a dict"):
        build_request(["hello"], model="qwen-plus")


def test_content_part_lists_are_accepted_and_normalised(tmp_path):
    img = tmp_path / "dot.png"
    img.write_bytes(PNG)
    req = build_request(
        [{"role": "user", "content": [{"text": "what is this?"}, {"image": str(img)}]}], model="qwen-vl-plus"
    )
    parts = req.messages[0]["content"]
    assert parts[0] == {"type": "text", "text": "what is this?"}
    assert parts[1]["type"] == "image_url" and parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert req.vision


def test_bad_content_part():
    with pytest.raises(InputError, match="content part"):
        build_request([{"role": "user", "content": [{"type": "sound", "x": 1}]}], model="qwen-plus")


def test_tool_message_needs_call_id():
    with pytest.raises(InputError, match="tool_call_id"):
        build_request([{"role": "user", "content": "x"}, {"role": "tool", "content": "42"}], model="qwen-plus")


def test_assistant_tool_call_message_may_have_no_content():
    msgs = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    assert len(build_request(msgs, model="qwen-plus").messages) == 3


@pytest.mark.parametrize("value", [-0.1, 2, 2.5, "0.5", True])
def test_temperature_range(value):
    with pytest.raises(InputError, match="temperature"):
        build_request("hi", model="qwen-plus", temperature=value)


@pytest.mark.parametrize("value", [0, -1, 1.01, "1"])
def test_top_p_range(value):
    with pytest.raises(InputError, match="top_p"):
        build_request("hi", model="qwen-plus", top_p=value)


@pytest.mark.parametrize("value", [0, -5, 10.0, "100", True])
def test_max_tokens_positive_int(value):
    with pytest.raises(InputError, match="max_tokens must be a positive integer"):
        build_request("hi", model="qwen-plus", max_tokens=value)


def test_good_params_pass_and_none_is_dropped():
    req = build_request("hi", model="qwen-plus", temperature=0, top_p=1, max_tokens=5, seed=7, stop=["\n"],
                        enable_thinking=None)
    assert req.params == {"temperature": 0, "top_p": 1, "max_tokens": 5, "seed": 7, "stop": ["\n"]}


def test_unknown_parameter_gets_did_you_mean():
    with pytest.raises(InputError, match="Did you mean 'temperature'"):
        build_request("hi", model="qwen-plus", temprature=0.5)


def test_response_format_shortcut_and_bad_value():
    assert build_request("json please", model="qwen-plus", response_format="json").params["response_format"] == {
        "type": "json_object"
    }
    with pytest.raises(InputError, match="response_format"):
        build_request("hi", model="qwen-plus", response_format={"type": "yaml"})


def test_tools_checked():
    with pytest.raises(InputError, match="tools"):
        build_request("hi", model="qwen-plus", tools=[{"type": "function"}])
    req = build_request("hi", model="qwen-plus", tools=[{"name": "f", "parameters": {"type": "object"}}])
    assert req.params["tools"][0] == {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def test_missing_image(tmp_path):
    with pytest.raises(InputError, match="does not exist") as e:
        build_request("what?", model="qwen-vl-plus", images=str(tmp_path / "nope.png"))
    assert "path" in e.value.fix


def test_local_image_becomes_data_url_and_urls_pass_through(tmp_path):
    img = tmp_path / "dot.png"
    img.write_bytes(PNG)
    assert image_url(img) == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert image_url("file://" + str(img)).startswith("data:image/png;base64,")
    assert image_url("https://example.com/a.jpg") == "https://example.com/a.jpg"
    req = build_request("describe", model="qwen-vl-plus", images=[img, "https://example.com/a.jpg"])
    parts = req.messages[-1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]


def test_images_on_a_text_model(tmp_path):
    img = tmp_path / "dot.png"
    img.write_bytes(PNG)
    with pytest.raises(InputError, match="does not take images") as e:
        build_request("describe", model="qwen-plus", images=img)
    assert "qwen-vl-plus" in e.value.fix


def test_images_allowed_on_models_unknown_to_the_catalog(tmp_path):
    img = tmp_path / "dot.png"
    img.write_bytes(PNG)
    assert build_request("describe", model="qwen-vl-ocr-2099", images=img).vision


def test_unknown_api():
    assert check_api("openai") == "openai" and check_api("DashScope") == "dashscope"
    with pytest.raises(InputError, match="Unknown api 'anthropic'"):
        check_api("anthropic")


def test_model_names():
    assert check_model("qwen-plus-2025-07-28") == "qwen-plus-2025-07-28"
    assert check_model("some-new-model") == "some-new-model"  # unknown to the catalog: allowed
    with pytest.raises(InputError, match="Did you mean 'qwen-plus'"):
        check_model("qwen plus")
    with pytest.raises(InputError):
        check_model("")
    with pytest.raises(InputError):
        check_model(None)


def test_system_prompt():
    req = build_request("hi", model="qwen-plus", system="Be brief.")
    assert req.messages[0] == {"role": "system", "content": "Be brief."}
    with pytest.raises(InputError, match="once"):
        build_request([{"role": "system", "content": "a"}, {"role": "user", "content": "b"}], model="qwen-plus",
                      system="c")


def test_thinking_defaults_from_the_catalog():
    assert build_request("hi", model="qwen3-32b").stream_only  # open-source Qwen3: thinking on by default
    assert not build_request("hi", model="qwen3-32b", enable_thinking=False).stream_only
    assert build_request("hi", model="qwq-plus").stream_only  # thinking only
    assert not build_request("hi", model="qwen-plus", enable_thinking=True).stream_only  # commercial: fine
    assert build_request("hi", model="qwen-plus").thinking is False
    assert build_request("hi", model="unknown-model").thinking is None


def test_thinking_on_a_model_without_it_warns():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        build_request("hi", model="qwen-max", enable_thinking=True)
    assert any("no thinking mode" in str(x.message) for x in w)


def test_openai_kwargs_put_qwen_extras_in_extra_body():
    req = build_request("hi", model="qwen-plus", enable_thinking=True, thinking_budget=50, temperature=0.3,
                        top_k=20)
    kw = openai_kwargs(req, stream=True)
    assert kw["extra_body"] == {"enable_thinking": True, "thinking_budget": 50, "top_k": 20}
    assert kw["temperature"] == 0.3 and kw["stream"] is True
    assert kw["stream_options"] == {"include_usage": True}
    assert "extra_body" not in openai_kwargs(build_request("hi", model="qwen-plus"), stream=False)


def test_native_kwargs():
    req = build_request("hi", model="qwen-plus", enable_thinking=True, max_tokens=9)
    kw = native_kwargs(req, stream=True)
    assert kw["enable_thinking"] is True and kw["max_tokens"] == 9
    assert kw["incremental_output"] is True and kw["stream"] is True
    vl = build_request("hi", model="qwen-vl-plus", system="s")
    assert all(isinstance(m["content"], list) for m in native_kwargs(vl, stream=False)["messages"])
