# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · Beyond chat
#
# Embeddings for a small retrieval exercise, a reranker, an image from a prompt, a spoken answer
# and its transcript, the Responses API with built-in tools, and the context cache. Each call has
# one result type with a notebook display, the same guided errors and one ledger row with its
# kind, usage and cost.
#
# On the local emulator (no key configured) every answer is deterministic: vectors come from the
# words of a text, images are small pictures drawn from the prompt, speech is a short tone
# sequence, and the Responses API answers with canned tool steps. With a key, the same cells call
# Model Studio (Singapore): `text-embedding-v4`, `qwen3-rerank`, `wan2.6-t2i`, `qwen3-tts-flash`,
# `qwen3-asr-flash` and `qwen3-max-2026-01-23` must be available to your workspace.

# %%
import qwen_nb as q

session = q.connect()

# %% [markdown]
# ## Embeddings: a tiny retrieval exercise
#
# `q.embed()` sends the texts in batches of the model's 10 rows per request and keeps their order;
# `.array` is a numpy array with one row per text.

# %%
docs = [
    "Model Studio bills text models per million input and output tokens.",
    "A sub-workspace can only call the models granted to it.",
    "Keys are per region: a Singapore key does not work in Beijing.",
    "Cats sleep for most of the day.",
    "The context cache bills cached input tokens at a fraction of the price.",
]
index = q.embed(docs, dimensions=256)
index

# %%
question = q.embed("how are tokens billed?", dimensions=256)
index.most_similar(question, k=2)

# %% [markdown]
# ## Rerank the candidates

# %%
q.rerank("how are tokens billed?", docs, top_n=3)

# %% [markdown]
# ## An image from a prompt
#
# Shown inline and saved at once in `qwen_images/` (the service's URLs expire after a day).
# `wan2.6-t2i` answers in one request; task-only models (`sync=False`) are submitted with
# `X-DashScope-Async: enable` and polled with a progress line.

# %%
picture = q.image("a lighthouse at dusk, watercolour", size="1024*1024")
picture

# %%
[p.name for p in picture.paths]

# %% [markdown]
# ## Speech, and back to text

# %%
hello = q.speak("Hello from Model Studio", voice="Cherry")
hello

# %%
q.transcribe(hello).text

# %% [markdown]
# ## The Responses API with built-in tools
#
# Tool calls are kept as steps; pass `previous_response_id` to continue the conversation.

# %%
answer = q.respond("What is new in Qwen3?", tools=["web_search", "code_interpreter"])
answer

# %%
[step.title for step in answer.steps]

# %% [markdown]
# ## The context cache
#
# Mark a long, repeated prefix with `cache_control`; the first call writes the cache (billed at
# 125 % of the input price), later calls within five minutes read it (10 %).

# %%
manual = "Model Studio keeps usage per workspace. " * 300
messages = [
    {"role": "system", "content": [{"type": "text", "text": manual, "cache_control": {"type": "ephemeral"}}]},
    {"role": "user", "content": "In one sentence: where is usage kept?"},
]
first = q.chat(messages)
second = q.chat(messages)
print(first.usage.line())
print(second.usage.line())

# %% [markdown]
# ## What it all cost, by kind

# %%
q.usage(by="kind")

# %% [markdown]
# **Try it** — change the question, or `api="dashscope"` in `q.embed()`: the vectors are the same
# size and order; `q.image(..., sync=False)` goes through the task API.
