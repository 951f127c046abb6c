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
# # 03 · The native DashScope endpoint
#
# Model Studio's own protocol lives under `{host}/api/v1`: text models at
# `/services/aigc/text-generation/generation`, vision and audio models at
# `/services/aigc/multimodal-generation/generation`. The `dashscope` SDK speaks it; qwen-nb uses
# the SDK's 2.x client for `api="dashscope"`.
#
# **You will learn to**
# * call the native endpoint through qwen-nb, with `dashscope.Generation.call` and with the 2.x
#   `dashscope.Client`;
# * set the base URL per call, so two regions can share a kernel;
# * read the native request and response bodies on the wire.
#
# **Prerequisites** — none on the emulator. On the service: Model Studio activated in the
# region and a key of a workspace that may call `qwen-plus`.
#
# **Time** — about 20 minutes.

# %%
import exercises as ex
import qwen_nb as q

tut = q.tutorial_setup()
s, profile = tut.s, tut.profile

# %% [markdown]
# ## Through qwen-nb

# %%
r = s.chat("Who are you?", api="dashscope", profile=profile.name)
r

# %%
stream = s.stream_chat("Write a haiku about the sea", api="dashscope", profile=profile.name)
for delta in stream:
    print(delta.content, end="")
print()
print(stream.result.usage.line())

# %% [markdown]
# Same `ChatResult`, whichever endpoint: code written for one API runs on the other by changing
# `api=` (or `q.connect(default_api="dashscope")` for the whole session).
#
# ## By hand: `dashscope.Generation.call`
#
# The native base URL is the region's shared host plus `/api/v1` (Singapore:
# `https://dashscope-intl.aliyuncs.com/api/v1`, Beijing: `https://dashscope.aliyuncs.com/api/v1`)
# or the workspace's own host. The SDK defaults to Beijing's, so only a Beijing key works
# without one. Pass it **per call** with `base_address`: the module-wide
# `dashscope.base_http_api_url` is shared by every call in the kernel, which goes wrong as soon
# as two regions are in use.

# %%
from dashscope import Generation

base = tut.base_url(profile, "dashscope")  # the service's URL, or the local emulator standing in for it
print("base_address:", base)
print("on the service:", tut.service_url(profile, "dashscope"))

response = Generation.call(
    api_key=profile.key,  # outside qwen-nb: os.getenv("DASHSCOPE_API_KEY")
    base_address=base,
    model="qwen-plus",
    messages=[
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Who are you?"},
    ],
    result_format="message",
)
print(response.status_code)
print(response.output.choices[0].message.content)
print(response.usage)

# %% [markdown]
# Streaming with `Generation.call`: `stream=True` with `incremental_output=True` (each event then
# carries only the new text; without it, each event repeats the whole text so far).

# %%
for event in Generation.call(
    api_key=profile.key,
    base_address=base,
    model="qwen-plus",
    messages=[{"role": "user", "content": "Count from 1 to 10"}],
    result_format="message",
    stream=True,
    incremental_output=True,
):
    print(event.output.choices[0].message.content, end="")
print()

# %% [markdown]
# ## By hand: the 2.x `dashscope.Client`
#
# A client object carries its own key, base URL, region and workspace, so clients for several
# regions live side by side.

# %%
import dashscope

client = dashscope.Client(api_key=profile.key, base_url=base, region=profile.region,
                          workspace=profile.workspace or "")
reply = client.chat.completions.create(
    model="qwen-plus",
    messages=[{"role": "user", "content": "What is the capital of France?"}],
)
print(reply.choices[0].message.content)
print(reply.usage)

# %% [markdown]
# ## On the wire
#
# The native body nests the messages under `input` and the options under `parameters`; the
# answer comes back under `output`, with `usage` and a `request_id`:

# %%
import json

import httpx

body = {
    "model": "qwen-plus",
    "input": {"messages": [{"role": "user", "content": "What is 2+2"}]},
    "parameters": {"result_format": "message"},
}
http = httpx.post(base + "/services/aigc/text-generation/generation", json=body,
                  headers={"Authorization": f"Bearer {profile.key}"}, timeout=60)
print(json.dumps(http.json(), indent=2))

# %% [markdown]
# The same call as code to copy, for the native endpoint, with the service's URL for your profile:

# %%
q.snippet(language="python", api="dashscope", profile=tut.for_snippet())

# %% [markdown]
# ## Exercises
#
# **03.1** — With `dashscope.Generation.call` (base address per call), ask `qwen-plus` "Tell me
# a joke" with `result_format="message"` and at most 15 output tokens; keep the response.

# %%
response1 = None  # your Generation.call(...) here

# %%
ex.check("03.1", response1, tut)

# %% [markdown]
# **03.2** — Write the native request body (a dict) that asks `qwen-plus` "What is 2+2" with
# `result_format` `"message"` and `max_tokens` 20. The check sends it for you.

# %%
body2 = None  # your dict here

# %%
ex.check("03.2", body2, tut)

# %% [markdown]
# ## What you learned
#
# * The native base URL is `{host}/api/v1`; the `dashscope` SDK defaults to Beijing's host.
# * Set the base URL per call (`base_address=`) or per client (`dashscope.Client`), not globally.
# * Native bodies: `input.messages` and `parameters`; replies: `output.choices`, `usage`, `request_id`.
#
# ## The service's pages
#
# * [Base URLs per region (shared, workspace and trial hosts)](https://www.alibabacloud.com/help/en/model-studio/base-url)
# * [Get an API key (per region; its workspace decides what it may call)](https://www.alibabacloud.com/help/en/model-studio/get-api-key)
# * [Error messages (status, code, cause, fix)](https://www.alibabacloud.com/help/en/model-studio/error-code)
#
# Next: [04 · permissions and errors](04_permissions_and_errors.ipynb).
