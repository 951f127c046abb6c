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
# # 00 · Quickstart: one call in three lines
#
# qwen-nb calls Alibaba Cloud Model Studio (Qwen models) from a Jupyter notebook. With an API
# key configured, calls go to the service and are billed; with no key anywhere, qwen-nb uses a
# **local emulator**: the same endpoints and request shapes, the service's documented error
# answers (from the table qwen-nb itself reads, `qwen_nb.facts.ERRORS`), canned replies, no
# network and no cost. Every notebook in this folder runs either way.
#
# **You will learn to**
# * tell whether your notebook talks to Model Studio or to the local emulator;
# * make a call and read its answer, token usage and estimated cost;
# * pass parameters, pick a model and switch between the two APIs;
# * use the `%%qwen` cell magic.
#
# **Prerequisites** — none to run it on the emulator. For the real service: an Alibaba Cloud
# account with Model Studio activated in the region you use (the console offers it on first
# visit), and an API key of that region's **default workspace** (`DASHSCOPE_API_KEY`).
#
# **Time** — about 15 minutes.
#
# ![An Alibaba Cloud account holds workspaces per region; each workspace has API keys; a sub-workspace's keys may call only the models granted to it; calls are billed per workspace and key.](img/workspaces.svg)

# %% [markdown]
# ## Using your own key (before the first call)
#
# Put the key in the environment or in a `.env` file next to the notebooks — never in a
# notebook — then restart the kernel:
#
# ```
# DASHSCOPE_API_KEY=sk-...
# DASHSCOPE_REGION=ap-southeast-1
# ```
#
# A key belongs to one **region** and one **billing plan**. A key made in the Singapore console
# works only with the Singapore hosts (`DASHSCOPE_REGION=ap-southeast-1`, the default here), a
# Beijing key only with `cn-beijing`; a Coding Plan key (`sk-sp-…`) only with that plan's own
# host. Sent anywhere else, a key gets `401 InvalidApiKey` — the same answer as a mistyped key.
# So if you have a Beijing key, set `DASHSCOPE_REGION=cn-beijing` before running the next cell.

# %% [markdown]
# ## The first call

# %%
import qwen_nb as q

answer = q.chat("Who are you?")
answer

# %% [markdown]
# The first call made a default session (`q.connect()`) and said where it talks to. The
# answer is a `ChatResult`: it shows as Markdown with a footer (model, profile, region, API,
# tokens, estimated cost, and "(emulator)" when the local emulator answered); it keeps all of
# that as attributes.

# %%
s = q.default_session()  # the session q.chat() made
print("Running on:", "the local emulator (canned answers, no cost)" if s.on_emulator else "Model Studio (billed)")
print("Profile:", answer.profile, "· region:", answer.region, "· model:", answer.model, "· api:", answer.api)
print(answer.usage.line())
if answer.cost is not None:
    print(f"estimated cost: {answer.cost:.6f} {answer.currency} (an estimate from qwen-nb's price table; the bill decides)")

# %% [markdown]
# The tutorials share one setup helper: it picks which of your profiles plays the **default
# workspace** and which a **sub-workspace**, and says what that means for you (a default key
# only, a sub-workspace key only, both, or the emulator's demo workspaces).

# %%
tut = q.tutorial_setup()
print("Base URL of the lessons' profile:", tut.base_url())

# %% [markdown]
# ## Parameters, other models, the other API
#
# `chat()` takes the usual parameters (`system`, `temperature`, `max_tokens`, `seed`, `stop`,
# ...), a `model`, a `profile` (which workspace's key to use) and an `api`: `"openai"` (the
# OpenAI-compatible endpoint, the default) or `"dashscope"` (the native endpoint).

# %%
q.chat("What is the capital of France?", system="Answer in one sentence.", temperature=0.2, api="dashscope")

# %% [markdown]
# ## The `%%qwen` cell magic
#
# `%load_ext qwen_nb` adds `%%qwen`: the cell body is the prompt. `{name}` inserts a notebook
# variable; `-m` picks the model, `-p` the profile, `-o` stores the result in a variable.

# %%
# %load_ext qwen_nb

# %%
# %%qwen -o haiku
Write a haiku about the sea

# %%
print(haiku.usage.line())

# %%
# %qwen_profiles

# %% [markdown]
# ## Exercises
#
# Replace `None` with your code, then run the check cell below it. The checks look at *what*
# you called and *how* (endpoint, limits), not at the model's wording, so they work on the
# emulator and on the service. `ex.hint("00.1")` gives a hint, `ex.solution("00.1")` the answer.
#
# **00.1** — Ask "What is the capital of France?" through the **native** endpoint, with a
# system prompt asking for one sentence.

# %%
import exercises as ex

answer1 = None  # your call here, e.g. q.chat(...)

# %%
ex.check("00.1", answer1, tut)

# %% [markdown]
# **00.2** — Ask for a haiku about the sea, but let the model write **at most 20 tokens**.

# %%
answer2 = None  # your call here

# %%
ex.check("00.2", answer2, tut)

# %% [markdown]
# ## What you learned
#
# * With no key, qwen-nb runs on a local emulator (canned answers, footers marked "(emulator)");
#   with `DASHSCOPE_API_KEY` (and `DASHSCOPE_REGION`) it calls Model Studio and you are billed.
# * A key works only in its region and billing plan; elsewhere it gets `401 InvalidApiKey`.
# * `q.chat()` returns a `ChatResult` with `.text`, `.usage`, `.cost`; `api=` picks the endpoint.
# * `%%qwen` turns a cell into a prompt.
#
# ## The service's pages
#
# * [Get an API key (per region; its workspace decides what it may call)](https://www.alibabacloud.com/help/en/model-studio/get-api-key)
# * [Base URLs per region (shared, workspace and trial hosts)](https://www.alibabacloud.com/help/en/model-studio/base-url)
# * [OpenAI-compatible Chat API](https://www.alibabacloud.com/help/en/model-studio/compatibility-of-openai-with-dashscope)
# * [Bill query and cost management (bills by workspace ID and API key ID)](https://www.alibabacloud.com/help/en/model-studio/bill-query-and-cost-management)
#
# Next: [01 · sub-workspaces](01_sub_workspace_setup.ipynb) — several keys at once.
