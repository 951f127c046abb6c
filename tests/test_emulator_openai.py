"""The emulator through the real ``openai`` SDK (OpenAI-compatible protocol)."""

from __future__ import annotations

import json

import openai
import pytest
from openai import OpenAI

from qwen_nb.emulator.replies import render_prompt

SG = "ap-southeast-1"


def client(emu, profile="default", region=SG, workspace=None, **kw) -> OpenAI:
    return OpenAI(base_url=emu.base_url(region, "openai", workspace), api_key=emu.key(profile),
                  max_retries=kw.pop("max_retries", 0), **kw)


def count(text: str) -> int:
    """Tokens of ``text`` by the dashscope SDK's own Qwen tokenizer."""
    import dashscope

    return len(dashscope.get_tokenizer("qwen-plus").encode(text))


def test_who_are_you_canned_answer_and_usage_from_tokenizer(emu):
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Who are you?"}]
    r = client(emu).chat.completions.create(model="qwen-plus", messages=messages)
    text = r.choices[0].message.content
    assert text.startswith("I am Qwen")
    assert r.choices[0].finish_reason == "stop"
    assert r.object == "chat.completion" and r.model == "qwen-plus"
    assert r.id.startswith("chatcmpl-") and r.id == f"chatcmpl-{r._request_id}"
    expected_prompt = count(render_prompt([{"role": m["role"], "text": m["content"]} for m in messages]))
    assert r.usage.prompt_tokens == expected_prompt
    assert r.usage.completion_tokens == count(text)
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_replies_are_deterministic_and_follow_the_prompt(emu):
    c = client(emu)
    ask = [{"role": "user", "content": "Tell me about volcanoes in Iceland"}]
    a = c.chat.completions.create(model="qwen-plus", messages=ask).choices[0].message.content
    b = c.chat.completions.create(model="qwen-plus", messages=ask).choices[0].message.content
    other = c.chat.completions.create(model="qwen-plus", messages=[{"role": "user", "content": "Explain tides"}])
    assert a == b
    assert "volcanoes" in a.lower()
    assert other.choices[0].message.content != a


def test_streaming_matches_non_streaming_and_reports_usage(emu):
    c = client(emu)
    ask = [{"role": "user", "content": "Describe the history of chess"}]
    full = c.chat.completions.create(model="qwen-flash", messages=ask)
    stream = c.chat.completions.create(model="qwen-flash", messages=ask, stream=True,
                                       stream_options={"include_usage": True})
    parts, finishes, usage = [], [], None
    for chunk in stream:
        assert chunk.id == full.id.replace(full._request_id, chunk.id.removeprefix("chatcmpl-"))
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            finishes.append(chunk.choices[0].finish_reason)
        else:
            usage = chunk.usage
    assert "".join(parts) == full.choices[0].message.content
    assert len(parts) > 10  # token-sized deltas, not one blob
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert usage is not None and usage.completion_tokens == full.usage.completion_tokens


def test_stream_without_include_usage_has_no_usage_chunk(emu):
    stream = client(emu).chat.completions.create(
        model="qwen-plus", messages=[{"role": "user", "content": "Say hello"}], stream=True)
    chunks = list(stream)
    assert all(ch.choices for ch in chunks)
    assert all(ch.usage is None for ch in chunks)


def test_thinking_streams_reasoning_content_first(emu):
    stream = client(emu).chat.completions.create(
        model="qwen-plus", messages=[{"role": "user", "content": "Why is the sky blue?"}], stream=True,
        stream_options={"include_usage": True}, extra_body={"enable_thinking": True, "thinking_budget": 20})
    reasoning, content, usage, order = [], [], None, []
    for chunk in stream:
        if not chunk.choices:
            usage = chunk.usage
            continue
        d = chunk.choices[0].delta
        rc = (d.model_extra or {}).get("reasoning_content")
        if rc:
            reasoning.append(rc)
            order.append("r")
        if d.content:
            content.append(d.content)
            order.append("c")
    assert reasoning and content
    assert order.index("c") > max(i for i, x in enumerate(order) if x == "r")
    r_text = "".join(reasoning)
    assert count(r_text) <= 20  # thinking_budget caps the reasoning
    assert usage.completion_tokens_details.reasoning_tokens == count(r_text)
    assert usage.completion_tokens == count(r_text) + count("".join(content))


def test_commercial_thinking_off_by_default_and_on_when_asked(emu):
    c = client(emu)
    ask = [{"role": "user", "content": "Why is the sky blue?"}]
    plain = c.chat.completions.create(model="qwen-plus", messages=ask)
    assert not (plain.choices[0].message.model_extra or {}).get("reasoning_content")
    thinking = c.chat.completions.create(model="qwen-plus", messages=ask, extra_body={"enable_thinking": True})
    assert thinking.choices[0].message.model_extra["reasoning_content"]
    assert thinking.usage.completion_tokens_details.reasoning_tokens > 0


def test_open_source_qwen3_refuses_non_streaming_with_thinking_on(emu):
    c = client(emu)
    ask = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError) as exc:
        c.chat.completions.create(model="qwen3-32b", messages=ask)
    assert exc.value.code == "invalid_parameter_error"
    assert "enable_thinking must be set to false for non-streaming calls" in exc.value.message
    ok = c.chat.completions.create(model="qwen3-32b", messages=ask, extra_body={"enable_thinking": False})
    assert ok.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as exc:
        c.chat.completions.create(model="qwq-plus", messages=ask)
    assert "only support stream mode" in exc.value.message
    chunks = list(c.chat.completions.create(model="qwq-plus", messages=ask, stream=True))
    assert any((ch.choices[0].delta.model_extra or {}).get("reasoning_content") for ch in chunks if ch.choices)


def test_max_tokens_and_stop(emu):
    c = client(emu)
    ask = [{"role": "user", "content": "Who are you?"}]
    r = c.chat.completions.create(model="qwen-plus", messages=ask, max_tokens=5)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 5
    assert "I am Qwen".startswith(r.choices[0].message.content[:9])
    s = c.chat.completions.create(model="qwen-plus", messages=ask, stop=["large"])
    assert s.choices[0].message.content == "I am Qwen, a "
    assert s.choices[0].finish_reason == "stop"


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "f"]}},
            "required": ["location"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_current_time", "description": "Current local time",
                                         "parameters": {"type": "object", "properties": {}}}}


def test_tool_call_then_answer_from_tool_result(emu):
    c = client(emu)
    messages = [{"role": "user", "content": "What's the weather like in Hangzhou today?"}]
    r = c.chat.completions.create(model="qwen-plus", messages=messages, tools=[TIME, WEATHER])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_current_weather"
    assert json.loads(call.function.arguments) == {"location": "Hangzhou"}
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "Hangzhou: sunny, 24 °C"}]
    answer = c.chat.completions.create(model="qwen-plus", messages=messages, tools=[TIME, WEATHER])
    assert answer.choices[0].finish_reason == "stop"
    assert "sunny, 24 °C" in answer.choices[0].message.content


def test_streamed_tool_call_accumulates(emu):
    stream = client(emu).chat.completions.create(
        model="qwen-plus", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER], stream=True)
    name, args, finish = "", "", None
    for chunk in stream:
        if chunk.choices:
            for tc in chunk.choices[0].delta.tool_calls or []:
                name += tc.function.name or ""
                args += tc.function.arguments or ""
            finish = chunk.choices[0].finish_reason or finish
    assert name == "get_current_weather" and json.loads(args) == {"location": "Paris"}
    assert finish == "tool_calls"


def test_json_mode(emu):
    c = client(emu)
    r = c.chat.completions.create(model="qwen-plus", response_format={"type": "json_object"},
                                  messages=[{"role": "user", "content": "List facts about Mars as JSON"}])
    obj = json.loads(r.choices[0].message.content)
    assert isinstance(obj, dict) and "Mars" in obj["keywords"]
    with pytest.raises(openai.BadRequestError) as exc:
        c.chat.completions.create(model="qwen-plus", response_format={"type": "json_object"},
                                  messages=[{"role": "user", "content": "List facts about Mars"}])
    assert "must contain the word 'json'" in exc.value.message


def test_image_parts_for_vision_models_only(emu):
    c = client(emu)
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
               {"type": "text", "text": "What is in this picture?"}]
    r = c.chat.completions.create(model="qwen-vl-plus", messages=[{"role": "user", "content": content}])
    assert "cat.png" in r.choices[0].message.content
    assert r.usage.prompt_tokens > 256  # the image is counted
    with pytest.raises(openai.BadRequestError) as exc:
        c.chat.completions.create(model="qwen-plus", messages=[{"role": "user", "content": content}])
    assert "image" in exc.value.message


def test_models_list_is_the_regions_catalogue_not_the_grants(emu):
    from qwen_nb.catalog import models

    everything = [m.id for m in client(emu).models.list()]
    assert {"qwen-plus", "qwen-max", "qwen-vl-plus", "qwq-plus"} <= set(everything)
    assert everything == [m.id for m in models("ap-southeast-1")]
    # like the service: a sub-workspace's key lists the catalogue too (its grants are in the permissions list)
    assert [m.id for m in client(emu, "team-a").models.list()] == everything
    beijing = [m.id for m in client(emu, "beijing-lab", region="cn-beijing").models.list()]
    assert beijing == [m.id for m in models("cn-beijing")]


def test_workspace_gateway_routing(emu):
    r = client(emu, "team-a", workspace="team-a").chat.completions.create(
        model="qwen-plus", messages=[{"role": "user", "content": "Say hello"}])
    assert r.choices[0].message.content.startswith("Hello")
    assert emu.requests[-1].path == f"/{SG}/ws/{emu.config.workspace('team-a').id}/compatible-mode/v1/chat/completions"
    with pytest.raises(openai.AuthenticationError):
        client(emu, "team-a", workspace="team-b").chat.completions.create(
            model="qwen-plus", messages=[{"role": "user", "content": "Say hello"}])


def test_async_client_streams_concurrently(emu):
    import asyncio

    async def main() -> list[str]:
        c = openai.AsyncOpenAI(base_url=emu.base_url(SG, "openai"), api_key=emu.key(), max_retries=0)

        async def one(i: int) -> str:
            ask = [{"role": "user", "content": f"Rivers of the world, part {i}"}]
            stream = await c.chat.completions.create(model="qwen-turbo", messages=ask, stream=True)
            return "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])

        try:
            return await asyncio.gather(*(one(i) for i in range(8)))
        finally:
            await c.close()

    texts = asyncio.run(main())
    assert len(texts) == 8 and all("rivers" in t.lower() for t in texts)


def test_json_schema_and_tool_choice(emu):
    c = client(emu)
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["city", "population"]}
    r = c.chat.completions.create(
        model="qwen-plus", messages=[{"role": "user", "content": "How many people live in Singapore? 6000000?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}})
    assert json.loads(r.choices[0].message.content) == {"city": "Singapore", "population": 6000000}
    ask = [{"role": "user", "content": "What's the weather in Paris?"}]
    none = c.chat.completions.create(model="qwen-plus", messages=ask, tools=[WEATHER], tool_choice="none")
    assert none.choices[0].finish_reason == "stop" and not none.choices[0].message.tool_calls
    forced = c.chat.completions.create(model="qwen-plus", messages=ask, tools=[WEATHER, TIME],
                                       tool_choice={"type": "function", "function": {"name": "get_current_time"}})
    assert forced.choices[0].message.tool_calls[0].function.name == "get_current_time"


def test_reply_tokens_makes_long_deterministic_answers(emu, tmp_path):
    import httpx

    from qwen_nb.emulator import Emulator

    c = client(emu)
    ask = [{"role": "user", "content": "Write a long guide to brewing tea"}]
    short = c.chat.completions.create(model="qwen-plus", messages=ask)
    assert short.usage.completion_tokens < 200
    emu.set_faults(reply_tokens=1500)
    long = c.chat.completions.create(model="qwen-plus", messages=ask, max_tokens=4000)
    text = long.choices[0].message.content
    assert long.usage.completion_tokens >= 1500 and long.choices[0].finish_reason == "stop"
    assert text.startswith(short.choices[0].message.content) and "tea" in text
    assert count(text) == long.usage.completion_tokens
    again = c.chat.completions.create(model="qwen-plus", messages=ask, max_tokens=4000)
    assert again.choices[0].message.content == text  # deterministic
    streamed = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
        model="qwen-plus", messages=ask, max_tokens=4000, stream=True) if ch.choices)
    assert streamed == text
    capped = c.chat.completions.create(model="qwen-plus", messages=ask, max_tokens=300)
    assert capped.usage.completion_tokens == 300 and capped.choices[0].finish_reason == "length"
    # JSON answers stay JSON
    js = c.chat.completions.create(model="qwen-plus", response_format={"type": "json_object"},
                                   messages=[{"role": "user", "content": "Tea facts as JSON"}])
    assert isinstance(json.loads(js.choices[0].message.content), dict)
    # the control endpoint and a TOML file set it too; reset() goes back to natural length
    assert httpx.post(emu.url + "/_emulator/faults", json={"reply_tokens": 600}).json()["reply_tokens"] == 600
    assert c.chat.completions.create(model="qwen-plus", messages=ask).usage.completion_tokens >= 600
    emu.reset()
    assert c.chat.completions.create(model="qwen-plus", messages=ask).usage.completion_tokens < 200
    with pytest.raises(Exception, match="non-negative integer"):
        emu.set_faults(reply_tokens=-1)
    from qwen_nb.emulator.config import DEFAULT_CONFIG_PATH

    toml = tmp_path / "long.toml"
    toml.write_text(DEFAULT_CONFIG_PATH.read_text().replace("[emulator]\n", "[emulator]\nreply_tokens = 800\n", 1))
    with Emulator(toml) as other:
        r = client(other).chat.completions.create(model="qwen-plus", messages=ask)
        assert r.usage.completion_tokens >= 800
    with Emulator(reply_tokens=700) as other:
        assert client(other).chat.completions.create(model="qwen-plus", messages=ask).usage.completion_tokens >= 700
