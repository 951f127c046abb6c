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
# # 02 · The OpenAI-compatible endpoint
#
# Model Studio speaks the OpenAI chat-completions protocol under `{host}/compatible-mode/v1`, so
# the official `openai` SDK works with a Model Studio key and base URL. qwen-nb uses that SDK
# for `api="openai"` (its default).
#
# **You will learn to**
# * call the endpoint through qwen-nb and with the `openai` SDK by hand;
# * stream, and get the token usage of a stream;
# * pass Qwen-only options (`enable_thinking`) through `extra_body`;
# * copy the same call as code for other languages.
#
# **Prerequisites** — none on the emulator. On the service: Model Studio activated in the
# region, and a key of a workspace that may call `qwen-plus` (a default-workspace key may call
# every model; a sub-workspace key needs the grant — see [01](01_sub_workspace_setup.ipynb)).
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
r = s.chat("Who are you?", api="openai", profile=profile.name)
r

# %% [markdown]
# The SDK's own response object is kept in `r.raw`, for anything qwen-nb does not surface:

# %%
print(type(r.raw).__module__ + "." + type(r.raw).__name__)
print(r.raw.choices[0].finish_reason, r.raw.usage.prompt_tokens, r.raw.usage.completion_tokens)

# %% [markdown]
# ## By hand, with the `openai` SDK
#
# The same call without qwen-nb. The base URL is the region's shared host (Singapore:
# `https://dashscope-intl.aliyuncs.com/compatible-mode/v1`, Beijing:
# `https://dashscope.aliyuncs.com/compatible-mode/v1`, US (Virginia):
# `https://dashscope-us.aliyuncs.com/compatible-mode/v1`) or the workspace's own host when a
# workspace id is set. The key is passed to the client and never printed; outside qwen-nb you
# would write `api_key=os.getenv("DASHSCOPE_API_KEY")`.

# %%
from openai import OpenAI

base_url = tut.base_url(profile, "openai")  # the service's URL, or the local emulator standing in for it
print("base_url:", base_url)
print("on the service:", tut.service_url(profile, "openai"))

client = OpenAI(api_key=profile.key, base_url=base_url)
completion = client.chat.completions.create(
    model="qwen-plus",
    messages=[
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Who are you?"},
    ],
)
print(completion.choices[0].message.content)
print(completion.usage.prompt_tokens, "in ·", completion.usage.completion_tokens, "out")

# %% [markdown]
# Streaming by hand: `stream=True`, and `stream_options={"include_usage": True}` adds a last chunk
# (with no choices) holding the token counts. Qwen-only options go in `extra_body` — e.g.
# `enable_thinking` (open-source Qwen3 models think by default and then refuse non-streaming
# calls; the commercial ones do not think unless asked).

# %%
stream = client.chat.completions.create(
    model="qwen-plus",
    messages=[{"role": "user", "content": "Write a haiku about the sea"}],
    stream=True,
    stream_options={"include_usage": True},
    extra_body={"enable_thinking": False},
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="")
    if chunk.usage:
        print(f"\n[{chunk.usage.total_tokens} tokens]")

# %% [markdown]
# `GET /compatible-mode/v1/models` lists the **region's catalogue** — not what your workspace
# was granted (that is the permissions list of [01](01_sub_workspace_setup.ipynb)):

# %%
catalogue = sorted(m.id for m in client.models.list())
print(len(catalogue), "models, e.g.", ", ".join(catalogue[:8]))

# %% [markdown]
# ## The same call as code to copy
#
# `q.snippet()` writes the call in Python (either SDK), curl, Node.js, Java, Go, C# or PHP, with
# the **service's** URL for your profile (its workspace host when it has a workspace id) and the
# key read from an environment variable, so it runs when copied. `tut.for_snippet()` is your
# profile as the service knows it (no local emulator URL, no key).

# %%
q.snippet(language="python", api="openai", profile=tut.for_snippet())

# %%
q.snippet(language="curl", api="openai", profile=tut.for_snippet())

# %% [markdown]
# Several languages side by side (the snippet set shows them one after the other):

# %%
for language in ("node", "go"):
    print(q.snippet(language=language, api="openai", profile=tut.for_snippet()))
    print()

# %% [markdown]
# Errors of the `openai` SDK (`openai.PermissionDeniedError`, `openai.AuthenticationError`, ...)
# become qwen-nb's guided errors when the call goes through qwen-nb: see
# [04 · permissions and errors](04_permissions_and_errors.ipynb).
#
# ## Exercises
#
# **02.1** — With the `openai` SDK by hand (no qwen-nb), ask `qwen-plus` "Tell me a joke" with
# at most 10 output tokens; keep the SDK's completion object.

# %%
joke = None  # your client.chat.completions.create(...) here

# %%
ex.check("02.1", joke, tut)

# %% [markdown]
# **02.2** — Stream "Count from 1 to 10" with the `openai` SDK and return a pair: (the whole
# text, the total tokens from the usage chunk).

# %%
counted = None  # (text, total_tokens)

# %%
ex.check("02.2", counted, tut)

# %% [markdown]
# ## What you learned
#
# * The OpenAI-compatible base URL is `{host}/compatible-mode/v1`; the `openai` SDK needs it
#   and a key of the same region.
# * `stream_options={"include_usage": True}` gives a stream's tokens; Qwen options go in `extra_body`.
# * `GET /models` is the region's catalogue, not your grants.
# * `q.snippet()` writes runnable code with the service's URLs.
#
# ## The service's pages
#
# * [OpenAI-compatible Chat API](https://www.alibabacloud.com/help/en/model-studio/compatibility-of-openai-with-dashscope)
# * [Base URLs per region (shared, workspace and trial hosts)](https://www.alibabacloud.com/help/en/model-studio/base-url)
# * [Get an API key (per region; its workspace decides what it may call)](https://www.alibabacloud.com/help/en/model-studio/get-api-key)
# * [Error messages (status, code, cause, fix)](https://www.alibabacloud.com/help/en/model-studio/error-code)
#
# Next: [03 · the native DashScope endpoint](03_dashscope_native.ipynb).
