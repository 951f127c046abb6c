# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Beyond the basics
#
# Streaming, thinking, JSON output, function calling, images, many prompts at once, async, and
# the `%%qwen` magic. Everything works on both endpoints (`api="openai"` or `api="dashscope"`)
# with the same result types.
#
# **You will learn to**
# * stream answers and stop a stream early;
# * turn thinking on and cap it, and read the reasoning apart from the answer;
# * ask for JSON, describe tools for function calling, send images;
# * run many prompts at once, and use the async API and the `%%qwen` magic's options.
#
# **Prerequisites** — none on the emulator (its replies are canned: it does not reason, look at
# pictures or follow a JSON schema beyond the keys asked for). On the service: Model Studio
# activated in the region and a key of a workspace granted `qwen-plus` and `qwen-vl-plus`.
#
# **Time** — about 30 minutes.

# %%
import exercises as ex
import qwen_nb as q

tut = q.tutorial_setup()
s = tut.s

# %% [markdown]
# ## Streaming
#
# `stream_chat()` returns a stream of `ChatDelta` pieces; `.result` is the whole
# `ChatResult` once it ends, and `.close()` stops it early (the partial answer is kept and
# recorded as interrupted).

# %%
stream = q.stream_chat("Write a haiku about the sea")
for delta in stream:
    print(delta.content, end="")
print()
print(stream.result.usage.line())

# %% [markdown]
# ## Thinking
#
# Hybrid models (qwen-plus, qwen-flash, Qwen3) think when `enable_thinking=True`;
# `thinking_budget` caps the thinking tokens. The reasoning is kept apart from the answer
# (`.reasoning`) and shows as a folded *Thinking* section. Models that think by default
# and only stream while thinking are streamed for you by `chat()`.

# %%
r = q.chat("Is 17 a prime number?", enable_thinking=True, thinking_budget=200)
r

# %%
print(len(r.reasoning), "characters of thinking ·", r.usage.line())

# %% [markdown]
# While streaming, thinking and answer arrive as separate fields of each delta:

# %%
stream = q.stream_chat("Is 17 a prime number?", enable_thinking=True)
thinking = answer = 0
for delta in stream:
    thinking += len(delta.reasoning)
    answer += len(delta.content)
print(f"{thinking} characters of thinking, then {answer} of answer")

# %% [markdown]
# ## JSON output
#
# `response_format={"type": "json_object"}` asks for one JSON object; the prompt must
# mention JSON. `.json()` parses the answer.

# %%
r = q.chat(
    "Describe the fruit banana as JSON with the keys name, color and taste.",
    response_format={"type": "json_object"},
)
print(r.text)
data = r.json()
print(type(data).__name__, sorted(data))

# %% [markdown]
# (The emulator's JSON is canned: it has the keys the prompt names, with made-up values; a
# real model fills them in. Always check the keys you need before using them.)

# %% [markdown]
# ## Function calling
#
# Describe the tools; the model answers with a `tool_calls` request instead of text; run
# the function and send its result back as a `tool` message for the final answer.

# %%
import json

tools = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]


def get_weather(city):
    return {"city": city, "temperature_c": 31, "sky": "thunderstorms"}  # a stand-in


messages = [{"role": "user", "content": "What is the weather in Singapore?"}]
first = q.chat(messages, tools=tools)
print(first.finish_reason, [(c.name, c.arguments) for c in first.tool_calls])

# %%
if first.tool_calls:
    calls = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
             for c in first.tool_calls]
    messages.append({"role": "assistant", "content": first.text, "tool_calls": calls})
    for c in first.tool_calls:
        output = get_weather(**json.loads(c.arguments))
        messages.append({"role": "tool", "tool_call_id": c.id, "content": json.dumps(output)})
    final = q.chat(messages, tools=tools)
    print(final.text)
else:  # a model may also answer directly
    print(first.text)

# %% [markdown]
# ## Images
#
# Vision models (qwen-vl-plus, qwen-vl-max, qwen3-vl-plus) take `images=`: URLs, or local
# files that are sent inline (base64). A 16×16 PNG made with the standard library:

# %%
import struct
import tempfile
import zlib
from pathlib import Path


def tiny_png(path, width=16, height=16, rgb=(220, 30, 30)):
    """Write a plain-colour PNG with the standard library only."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    png = b"\x89PNG\r\n\x1a\n" + body
    Path(path).write_bytes(png)
    return path


folder = tempfile.TemporaryDirectory()
square = tiny_png(Path(folder.name) / "red-square.png")
print(square.name, square.stat().st_size, "bytes")

# %%
q.chat("What colour is this square?", model="qwen-vl-plus", images=[square])

# %% [markdown]
# (The emulator does not look at pixels: its answer says so. A real vision model answers
# about the red square.) A public image URL works the same way
# (`images=["https://..."]`): the service fetches it.
#
# ## Many prompts at once
#
# `chat_many()` runs the prompts concurrently (`concurrency=8` by default), with a progress
# bar, and returns the results in input order; a failed prompt is its error, not an
# exception, so one failure does not lose the rest.

# %% tags=["nbval-ignore-output"]
prompts = ["Say hello", "Tell me a joke", "What is 2+2", "What is the capital of France?",
           "Translate hello into French", "Count from 1 to 10"]
results = q.chat_many(prompts, concurrency=4)

# %%
for prompt, result in zip(prompts, results):
    print(f"{prompt:32} -> {result.text if not isinstance(result, Exception) else type(result).__name__}")

# %% [markdown]
# ## Async
#
# `achat()` and `astream_chat()` use the SDKs' async clients; notebooks allow top-level
# `await`:

# %%
import asyncio

hello, joke = await asyncio.gather(q.achat("Say hello"), q.achat("Tell me a joke", api="dashscope"))
print(hello.text)
print(joke.text)

# %% [markdown]
# ## The `%%qwen` magic
#
# `{name}` in the cell inserts a notebook variable; options pick the model, profile, API,
# thinking, system prompt, temperature and token cap. `--stream` shows the answer as it
# grows, updating the cell's output in place.

# %%
# %load_ext qwen_nb

# %%
country = "France"

# %%
# %%qwen --max-tokens 100 -o about
What is the capital of {country}?

# %% tags=["nbval-ignore-output"]
# %%qwen --stream --thinking
Is 17 a prime number?

# %%
print(about.model, "·", about.usage.line())

# %% [markdown]
# ## Exercises
#
# **07.1** — Ask for a JSON object with the keys `city` and `country` (for the capital of
# France) and parse it into a dict.

# %%
data = None  # your call and .json() here

# %%
ex.check("07.1", data, tut)

# %% [markdown]
# **07.2** — Run three prompts at once, two at a time, without a progress bar; keep the list of
# results.

# %%
three = None  # your chat_many(...) here

# %%
ex.check("07.2", three, tut)

# %% [markdown]
# **07.3** — Describe a tool `get_time(city)` and ask "What time is it in Tokyo right now?"; keep
# the result whose `tool_calls` ask for `get_time`.

# %%
asked = None  # your q.chat(..., tools=[...]) here

# %%
ex.check("07.3", asked, tut)

# %% [markdown]
# ## What you learned
#
# * `stream_chat()` streams `ChatDelta` pieces; `.result` is the whole answer, `.close()` stops early.
# * `enable_thinking=True` (and `thinking_budget`) keeps the reasoning in `.reasoning`; thinking
#   tokens are billed as output.
# * `response_format={"type": "json_object"}` and `.json()`; `tools=` and the `tool` message loop;
#   `images=` for vision models.
# * `chat_many()` keeps going when one prompt fails; `achat()` for async; `%%qwen` options.
#
# ## The service's pages
#
# * [OpenAI-compatible Chat API](https://www.alibabacloud.com/help/en/model-studio/compatibility-of-openai-with-dashscope)
# * [Rate limiting best practices (limits are per account and model)](https://www.alibabacloud.com/help/en/model-studio/rate-limiting-best-practices)
# * [OpenAI-compatible Batch API](https://www.alibabacloud.com/help/en/model-studio/batch-interfaces-compatible-with-openai)
# * [Error messages (status, code, cause, fix)](https://www.alibabacloud.com/help/en/model-studio/error-code)
#
# This is the last notebook of the series: back to [the list](README.md).
