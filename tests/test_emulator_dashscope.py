"""The emulator through the real ``dashscope`` SDK (native protocol, 1.x and 2.x APIs) and raw HTTP."""

from __future__ import annotations

import json

import dashscope
import httpx
import pytest

SG, BJ = "ap-southeast-1", "cn-beijing"
WHO = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Who are you?"}]


def count(text: str) -> int:
    return len(dashscope.get_tokenizer("qwen-plus").encode(text))


def call(emu, profile=None, region=SG, **kw):
    kw.setdefault("model", "qwen-plus")
    kw.setdefault("messages", WHO)
    return dashscope.Generation.call(api_key=emu.key(profile), base_address=emu.base_url(region, "dashscope"), **kw)


def client(emu, profile=None, region=SG, **kw) -> dashscope.Client:
    return dashscope.Client(api_key=emu.key(profile), base_url=emu.base_url(region, "dashscope"), max_retries=0, **kw)


# -- dashscope 1.x: Generation.call / MultiModalConversation.call ---------------------------


def test_generation_message_format(emu):
    r = call(emu, result_format="message")
    assert r.status_code == 200 and r.request_id
    msg = r.output.choices[0].message
    assert msg.role == "assistant" and msg.content.startswith("I am Qwen")
    assert r.output.choices[0].finish_reason == "stop"
    assert r.usage.output_tokens == count(msg.content)
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.headers["x-request-id"] == r.request_id


def test_generation_text_format_is_the_default_for_non_thinking_models(emu):
    r = call(emu, model="qwen-max")
    assert r.status_code == 200
    assert r.output.text.startswith("I am Qwen") and r.output.finish_reason == "stop"
    assert r.output.choices is None
    same = call(emu, model="qwen-max", result_format="message")
    assert same.output.choices[0].message.content == r.output.text


def test_generation_streaming_incremental_and_merged(emu):
    full = call(emu, result_format="message").output.choices[0].message.content
    deltas = [x.output.choices[0].message.content for x in
              call(emu, result_format="message", stream=True, incremental_output=True)]
    assert len(deltas) > 10 and "".join(deltas) == full
    # the SDK asks for deltas on the wire and merges them itself when incremental_output=False
    snapshots = [x.output.choices[0].message.content for x in
                 call(emu, result_format="message", stream=True, incremental_output=False)]
    assert snapshots[-1] == full and all(full.startswith(s) for s in snapshots)
    last = list(call(emu, result_format="message", stream=True, incremental_output=True))[-1]
    assert last.output.choices[0].finish_reason == "stop"
    assert last.usage.output_tokens == count(full)


def test_generation_thinking_stream(emu):
    reasoning, content = "", ""
    for x in call(emu, messages=[{"role": "user", "content": "Why do cats purr?"}], result_format="message",
                  stream=True, incremental_output=True, enable_thinking=True):
        m = x.output.choices[0].message
        reasoning += m.get("reasoning_content") or ""
        content += m.content or ""
    assert reasoning and content and "cats" in content
    assert x.usage.output_tokens == count(reasoning) + count(content)
    assert x.usage["output_tokens_details"]["reasoning_tokens"] == count(reasoning)


def test_open_source_thinking_non_streaming_is_refused(emu):
    r = call(emu, model="qwen3-8b", result_format="message")
    assert r.status_code == 400 and r.code == "InvalidParameter"
    assert "enable_thinking" in r.message
    ok = call(emu, model="qwen3-8b", result_format="message", enable_thinking=False)
    assert ok.status_code == 200


def test_generation_tools(emu):
    tools = [{"type": "function", "function": {
        "name": "get_stock_price", "description": "Latest stock price for a ticker symbol",
        "parameters": {"type": "object", "properties": {"ticker": {"type": "string", "enum": ["BABA", "AAPL"]}},
                       "required": ["ticker"]}}}]
    r = call(emu, messages=[{"role": "user", "content": "What is the stock price of AAPL?"}], tools=tools,
             result_format="message")
    choice = r.output.choices[0]
    assert choice.finish_reason == "tool_calls"
    fn = choice.message.tool_calls[0]["function"]
    assert fn["name"] == "get_stock_price" and json.loads(fn["arguments"]) == {"ticker": "AAPL"}


def test_multimodal_conversation_vision(emu):
    messages = [{"role": "user", "content": [{"image": "https://example.com/photos/beach.jpg"},
                                             {"text": "What animal is in this picture?"}]}]
    r = dashscope.MultiModalConversation.call(api_key=emu.key(), base_address=emu.base_url(SG, "dashscope"),
                                              model="qwen-vl-plus", messages=messages)
    assert r.status_code == 200
    content = r.output.choices[0].message.content
    assert isinstance(content, list) and "beach.jpg" in content[0]["text"]
    assert r.usage.input_tokens > 256 and r.usage["image_tokens"] == 256
    parts = [x.output.choices[0].message.content for x in dashscope.MultiModalConversation.call(
        api_key=emu.key(), base_address=emu.base_url(SG, "dashscope"), model="qwen-vl-plus", messages=messages,
        stream=True, incremental_output=True)]
    assert "".join(p[0]["text"] for p in parts if p) == content[0]["text"]


def test_beijing_and_workspace_gateway(emu):
    r = call(emu, "beijing-lab", region=BJ, model="qwen-turbo")
    assert r.status_code == 200
    denied = call(emu, "beijing-lab", region=BJ, model="qwen-max")
    assert denied.status_code == 403 and denied.code == "Model.AccessDenied"
    ws = emu.config.workspace("beijing-lab").id
    r = dashscope.Generation.call(api_key=emu.key("beijing-lab"), base_address=emu.base_url(BJ, "dashscope", ws),
                                  model="qwen-plus", messages=WHO, result_format="message")
    assert r.status_code == 200
    assert emu.requests[-1].path == f"/{BJ}/ws/{ws}/api/v1/services/aigc/text-generation/generation"


# -- dashscope 2.x: Client ------------------------------------------------------------------------------


def test_client_native_protocol(emu):
    c = client(emu)
    r = c.chat.completions.create(model="qwen-plus", messages=WHO)
    assert r.output_text.startswith("I am Qwen") and r.request_id
    assert r.usage.output_tokens == count(r.output_text)
    chunks = list(c.chat.completions.create(model="qwen-plus", messages=WHO, stream=True))
    assert "".join(ch.delta.content or "" for ch in chunks) == r.output_text
    assert chunks[-1].choices[0].finish_reason == "stop"
    sent = emu.requests[-1]
    assert sent.headers["x-dashscope-sse"] == "enable" and sent.body["parameters"]["incremental_output"] is True


def test_client_thinking_and_vision(emu):
    c = client(emu)
    r = c.chat.completions.create(model="qwen-plus", messages=[{"role": "user", "content": "Why is ice slippery?"}],
                                  enable_thinking=True)
    assert r.choices[0].message.reasoning_content and r.choices[0].message.content
    v = c.chat.completions.create(model="qwen-vl-max", messages=[{"role": "user", "content": [
        {"type": "image", "url": "https://example.com/chart.png"}, {"type": "text", "text": "Describe it"}]}])
    assert "chart.png" in v.output_text
    assert emu.requests[-1].path.endswith("/multimodal-generation/generation")


def test_client_openai_protocol_uses_the_compatible_endpoint(emu):
    c = dashscope.Client(api_key=emu.key(), base_url=emu.base_url(SG, "openai"), protocol="openai", max_retries=0)
    r = c.chat.completions.create(model="qwen-plus", messages=WHO)
    assert r.output_text.startswith("I am Qwen")
    assert emu.requests[-1].path == f"/{SG}/compatible-mode/v1/chat/completions"
    text = "".join(ch.delta.content or "" for ch in c.chat.completions.create(
        model="qwen-plus", messages=WHO, stream=True) if ch.delta)
    assert text == r.output_text


# -- raw HTTP: the wire format itself ------------------------------------------------------------------------


def _events(text: str) -> list[dict[str, str]]:
    out = []
    for block in text.strip().split("\n\n"):
        ev = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                ev["comment"] = line[1:]
            else:
                k, _, v = line.partition(":")
                ev[k] = v
        out.append(ev)
    return out


def _native_stream(emu, parameters, accept_header=False):
    headers = {"Authorization": f"Bearer {emu.key()}"}
    headers.update({"Accept": "text/event-stream"} if accept_header else {"X-DashScope-SSE": "enable"})
    body = {"model": "qwen-plus", "input": {"messages": WHO}, "parameters": parameters}
    r = httpx.post(emu.base_url(SG, "dashscope") + "/services/aigc/text-generation/generation", json=body,
                   headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    return _events(r.text)


def test_native_sse_framing_and_cumulative_output(emu):
    events = _native_stream(emu, {"result_format": "message"})  # incremental_output defaults to false
    assert [e["id"] for e in events] == [str(i) for i in range(1, len(events) + 1)]
    assert all(e["event"] == "result" and e["comment"] == "HTTP_STATUS/200" for e in events)
    datas = [json.loads(e["data"]) for e in events]
    texts = [d["output"]["choices"][0]["message"]["content"] for d in datas]
    assert texts[-1].startswith("I am Qwen") and all(texts[-1].startswith(t) for t in texts)
    assert [d["output"]["choices"][0]["finish_reason"] for d in datas][-2:] == ["null", "stop"]
    assert all(d["request_id"] == datas[0]["request_id"] for d in datas)
    assert datas[-1]["usage"]["output_tokens"] == count(texts[-1])


def test_native_sse_incremental_text_format_via_accept_header(emu):
    events = _native_stream(emu, {"result_format": "text", "incremental_output": True}, accept_header=True)
    datas = [json.loads(e["data"]) for e in events]
    assert "".join(d["output"]["text"] for d in datas).startswith("I am Qwen")
    assert datas[-1]["output"]["finish_reason"] == "stop"


def test_compatible_sse_framing(emu):
    r = httpx.post(emu.base_url(SG, "openai") + "/chat/completions", headers={"Authorization": f"Bearer {emu.key()}"},
                   json={"model": "qwen-plus", "messages": WHO, "stream": True,
                         "stream_options": {"include_usage": True}})
    lines = [ln for ln in r.text.split("\n") if ln]
    assert all(ln.startswith("data: ") for ln in lines)
    assert lines[-1] == "data: [DONE]"
    first, usage = json.loads(lines[0][6:]), json.loads(lines[-2][6:])
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"]["role"] == "assistant"
    assert first["id"] == f"chatcmpl-{r.headers['x-request-id']}" and first["system_fingerprint"] is None
    assert usage["choices"] == [] and usage["usage"]["prompt_tokens"] > 0


def test_same_request_same_reply_across_protocols_and_sdks(emu):
    ask = [{"role": "user", "content": "Give me advice about learning Rust"}]
    native = call(emu, messages=ask, result_format="message").output.choices[0].message.content
    v2 = client(emu).chat.completions.create(model="qwen-plus", messages=ask).output_text
    assert native == v2 and "Rust" in native


@pytest.mark.parametrize("result_format", ["text", "message"])
def test_max_tokens_on_native(emu, result_format):
    r = call(emu, result_format=result_format, max_tokens=3)
    finish = r.output.finish_reason if result_format == "text" else r.output.choices[0].finish_reason
    assert finish == "length" and r.usage.output_tokens == 3
