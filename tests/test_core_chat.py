"""Calls through both real SDKs against the local emulator: one result type, streams, async, batches."""

from __future__ import annotations

import asyncio
import base64
import json
import threading

import pytest

from qwen_nb.errors import InputError, QwenNbError, ServerError
from qwen_nb.ledger import Ledger
from qwen_nb.results import ChatDelta, ChatResult
from qwen_nb.retry import RetryPolicy
from qwen_nb.session import Session

APIS = ("openai", "dashscope")
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def chat_paths(emu):
    return [r.path for r in emu.requests if "models" not in r.path]


@pytest.mark.parametrize("api", APIS)
def test_chat_fills_the_result(session, api):
    r = session.chat("Who are you?", api=api)
    assert isinstance(r, ChatResult)
    assert r.text.startswith("I am Qwen")
    assert r.finish_reason == "stop"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert (r.model, r.api, r.profile, r.region, r.workspace) == ("qwen-plus", api, "default", "ap-southeast-1", None)
    assert r.request_id and r.latency > 0 and r.attempts == 1
    assert r.time_to_first_token is None
    assert r.currency in ("USD", None)
    assert r.raw is not None


def test_both_apis_give_the_same_normalised_result(session):
    kw = dict(system="Be brief.", temperature=0.2, max_tokens=200, seed=3)
    a = session.chat("Tell me about the sea.", api="openai", **kw)
    b = session.chat("Tell me about the sea.", api="dashscope", **kw)
    assert (a.text, a.usage, a.finish_reason, a.reasoning) == (b.text, b.usage, b.finish_reason, b.reasoning)
    ta = session.chat("Think about rivers", api="openai", enable_thinking=True)
    tb = session.chat("Think about rivers", api="dashscope", enable_thinking=True)
    assert (ta.text, ta.reasoning, ta.usage) == (tb.text, tb.reasoning, tb.usage)


def test_calls_go_to_the_right_endpoints(session, emu):
    session.chat("hi", api="openai")
    session.chat("hi", api="dashscope")
    session.chat("hi", api="dashscope", profile="team-a")
    assert chat_paths(emu) == [
        "/ap-southeast-1/compatible-mode/v1/chat/completions",
        "/ap-southeast-1/api/v1/services/aigc/text-generation/generation",
        "/ap-southeast-1/ws/llm-a2c8c0cbb1380af9/api/v1/services/aigc/text-generation/generation",
    ]
    compat = emu.requests[0]
    assert "sk-bfacf042881a3eab43a2d2c8631a7401" not in json.dumps(compat.headers)


@pytest.mark.parametrize("api", APIS)
def test_stream(session, emu, api):
    whole = session.chat("Who are you?", api=api)
    stream = session.stream_chat("Who are you?", api=api)
    deltas = list(stream)
    assert deltas and all(isinstance(d, ChatDelta) for d in deltas)
    assert "".join(d.content for d in deltas) == whole.text == stream.text
    r = stream.result
    assert (r.text, r.usage, r.finish_reason) == (whole.text, whole.usage, whole.finish_reason)
    assert r.time_to_first_token is not None and r.time_to_first_token <= r.latency
    assert deltas[-1].finish_reason == "stop"
    assert r.request_id == emu.requests[-1].request_id


@pytest.mark.parametrize("api", APIS)
def test_thinking_streams_reasoning_apart(session, api):
    stream = session.stream_chat("Why is the sky blue?", api=api, enable_thinking=True, thinking_budget=200)
    deltas = list(stream)
    reasoning = "".join(d.reasoning for d in deltas)
    content = "".join(d.content for d in deltas)
    assert reasoning and content
    assert not any(d.reasoning and d.content for d in deltas)
    r = stream.result
    assert r.reasoning == reasoning and r.text == content
    assert 0 < r.usage.reasoning_tokens < r.usage.output_tokens


@pytest.mark.parametrize("api", APIS)
def test_stream_only_model_is_streamed_internally(session, emu, api):
    r = session.chat("Hello there", model="qwen3-32b", api=api, profile="team-b")
    assert r.text and r.reasoning and r.usage.reasoning_tokens > 0
    assert r.time_to_first_token is not None
    sent = [x for x in emu.requests if "models" not in x.path][-1]
    if api == "openai":
        assert sent.body["stream"] is True
        assert "enable_thinking" not in sent.body  # the caller left it to the service default
    else:
        assert sent.headers.get("x-dashscope-sse") == "enable"
    off = session.chat("Hello there", model="qwen3-32b", api=api, profile="team-b", enable_thinking=False)
    assert off.reasoning == "" and off.time_to_first_token is None


def test_thinking_goes_in_extra_body_on_the_compatible_api(session, emu):
    session.chat("hi", api="openai", enable_thinking=True, thinking_budget=64)
    body = emu.requests[-1].body
    assert body["enable_thinking"] is True and body["thinking_budget"] == 64
    session.chat("hi", api="dashscope", enable_thinking=True, thinking_budget=64)
    params = emu.requests[-1].body["parameters"]
    assert params["enable_thinking"] is True and params["thinking_budget"] == 64


@pytest.mark.parametrize("api", APIS)
def test_json_mode(session, api):
    r = session.chat("Give me a json object describing a cat.", api=api, response_format={"type": "json_object"})
    assert isinstance(r.json(), dict)


@pytest.mark.parametrize("api", APIS)
def test_tool_calls(session, api):
    r = session.chat("What is the weather in Paris?", api=api, tools=[WEATHER])
    assert r.finish_reason == "tool_calls"
    assert len(r.tool_calls) == 1
    call = r.tool_calls[0]
    assert call.name == "get_weather" and call.id
    assert "city" in json.loads(call.arguments)
    stream = session.stream_chat("What is the weather in Paris?", api=api, tools=[WEATHER])
    list(stream)
    assert [(c.name, c.arguments) for c in stream.result.tool_calls] == [(call.name, call.arguments)]
    follow = session.chat(
        [
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"},
        ],
        api=api,
        tools=[WEATHER],
    )
    assert follow.text


@pytest.mark.parametrize("api", APIS)
def test_images(session, emu, tmp_path, api):
    img = tmp_path / "dot.png"
    img.write_bytes(PNG)
    r = session.chat("What is in this picture?", model="qwen-vl-plus", api=api, images=img)
    assert r.text
    sent = emu.requests[-1]
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    if api == "openai":
        parts = sent.body["messages"][-1]["content"]
        assert parts[0] == {"type": "image_url", "image_url": {"url": data_url}}
    else:
        assert sent.path.endswith("/multimodal-generation/generation")
        parts = sent.body["input"]["messages"][-1]["content"]
        assert {"image": data_url} in parts and {"text": "What is in this picture?"} in parts


@pytest.mark.parametrize("api", APIS)
def test_async(session, api):
    async def main():
        r = await session.achat("Who are you?", api=api)
        stream = session.astream_chat("Who are you?", api=api)
        deltas = [d async for d in stream]
        both = await asyncio.gather(session.achat("one", api=api), session.achat("two", api=api))
        return r, deltas, stream, both

    r, deltas, stream, both = asyncio.run(main())
    assert r.text.startswith("I am Qwen")
    assert "".join(d.content for d in deltas) == r.text == stream.result.text
    assert stream.result.usage == r.usage
    assert [b.text for b in both] == [session.chat("one", api=api).text, session.chat("two", api=api).text]


def test_async_stream_can_be_awaited_and_closed(session):
    async def main():
        stream = await session.astream_chat("Tell me about mountains.", api="dashscope")
        first = await stream.__anext__()
        await stream.aclose()
        return first, stream

    first, stream = asyncio.run(main())
    assert first.content or first.reasoning
    assert stream.result.finish_reason == "cancelled"
    assert session.ledger.records()[-1].status == "interrupted"


@pytest.mark.parametrize("api", APIS)
def test_chat_many_keeps_order_and_returns_failures(session, api):
    prompts = [f"Tell me about topic number {i}" for i in range(10)]
    prompts[3] = ""  # bad input: its own InputError, the rest still run
    out = session.chat_many(prompts, concurrency=4, progress=False, api=api)
    assert len(out) == 10
    assert isinstance(out[3], InputError)
    for i in (0, 5, 9):
        assert out[i].text == session.chat(prompts[i], api=api).text


def test_chat_many_service_failure_is_per_item(emu):
    s = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"), max_retries=0)
    emu.set_faults(fail_next=1)
    out = s.chat_many(["a", "b", "c", "d"], concurrency=1, progress=False)
    assert isinstance(out[0], ServerError)
    assert all(isinstance(r, ChatResult) for r in out[1:])
    assert [r.status for r in s.ledger.records()].count("error") == 1
    s.close()


def test_chat_many_progress_bar(session, capsys):
    out = session.chat_many(["a", "b"], concurrency=2, progress=True)
    assert all(isinstance(r, ChatResult) for r in out)
    assert "2/2" in capsys.readouterr().err


def test_close_cancels_a_stream(emu, session):
    emu.set_faults(tokens_per_second=50)
    stream = session.stream_chat("Tell me a long story about the sea and the mountains.")
    it = iter(stream)
    first = next(it)
    stream.close()
    assert list(it) == []
    r = stream.result
    assert r.finish_reason == "cancelled" and r.text.startswith(first.content)
    rec = session.ledger.records()[-1]
    assert rec.status == "interrupted" and rec.error_code == "Cancelled"


def test_close_from_another_thread(emu, session):
    emu.set_faults(tokens_per_second=40)
    stream = session.stream_chat("Tell me a long story about rivers.", api="dashscope")
    got = []
    first = threading.Event()

    def reader():
        for d in stream:
            got.append(d)
            first.set()

    t = threading.Thread(target=reader)
    t.start()
    first.wait(10)
    stream.close()
    t.join(10)
    assert not t.is_alive()
    assert got and len(session.ledger.records()) == 1


def test_one_ledger_record_per_call(session):
    session.chat("hi")
    list(session.stream_chat("hi", api="dashscope"))
    recs = session.ledger.records()
    assert [(r.api, r.status, r.attempts) for r in recs] == [("openai", "ok", 1), ("dashscope", "ok", 1)]
    assert recs[0].input_tokens > 0 and recs[0].request_id


def test_list_models(session):
    assert session.list_models("team-a") == ["qwen-plus", "qwen-flash", "qwen-vl-plus"]
    assert "qwen-max" in session.list_models()
    assert session.list_models("team-a", api="dashscope") == ["qwen-plus", "qwen-flash", "qwen-vl-plus"]


def test_one_client_per_profile_and_api_shared_by_threads(session):
    from qwen_nb._pipeline import Call as _Call

    session.chat("hi")
    backend = next(iter(session._backends.values()))
    session.chat("hi again")
    assert next(iter(session._backends.values())) is backend
    prof = session.get_profile("team-b")
    region = session.region("team-b")
    call = _Call(prof, region, "dashscope", None, region.base_url("dashscope", prof.workspace))
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(session._backend(call))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(b) for b in seen}) == 1


def test_no_sdk_globals_are_touched(session):
    import dashscope

    before = (dashscope.api_key, dashscope.base_http_api_url)
    session.chat("hi", api="dashscope")
    session.chat("hi", api="dashscope", profile="beijing-lab", model="qwen-turbo")
    assert (dashscope.api_key, dashscope.base_http_api_url) == before


def test_beijing_profile_uses_its_own_region(session, emu):
    r = session.chat("hi", profile="beijing-lab", model="qwen-turbo", api="dashscope")
    assert r.region == "cn-beijing" and r.workspace == "llm-0bd024d4a9a447cb"
    assert chat_paths(emu)[-1].startswith("/cn-beijing/ws/llm-0bd024d4a9a447cb/api/v1/")


def test_fast_retry_policy_can_be_given(emu):
    s = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"),
                retry=RetryPolicy(max_retries=1, base=0.001))
    emu.set_faults(fail_next=1)
    assert s.chat("hi").attempts == 2
    s.close()


def test_errors_are_qwen_nb_errors(session):
    with pytest.raises(QwenNbError):
        session.chat("hi", model="qwen-max", profile="team-a")


def test_regions_is_the_sessions_table(session, emu):
    table = session.regions()
    assert table == emu.regions() and table["cn-beijing"].host == f"{emu.url}/cn-beijing"
    table.pop("cn-beijing")  # a copy
    assert "cn-beijing" in session.regions()
    real = Session({}, ledger=Ledger(":memory:")).regions()
    assert real["ap-southeast-1"].host.startswith("https://") and not real["ap-southeast-1"].host.startswith(emu.url)


def test_snippet_of_an_outside_profile_uses_the_sessions_regions(session, emu):
    """A profile that is not one of the session's still gets the session's (here the emulator's) base URL."""
    from qwen_nb._profiles import Profile
    from qwen_nb.snippets import snippet

    class PublicOnly:  # the session as seen through its public names only
        def __getattr__(self, name):
            if name.startswith("_"):
                raise AttributeError(name)
            return getattr(session, name)

    outsider = Profile("outsider", region="cn-beijing", key=emu.key("beijing-lab"))
    snip = snippet(profile=outsider, session=PublicOnly(), language="python", api="openai", emulator=True)
    assert f"{emu.url}/cn-beijing/compatible-mode/v1" in snip.code
