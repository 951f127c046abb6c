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
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 11 · Record once, replay in CI
#
# A notebook that calls a model is hard to test: the answers change from run to run, a key
# cannot live in CI, and a mock drifts away from what the service really says. qwen-nb's answer
# has three steps:
#
# 1. **Record** the notebook once against Model Studio, through a local recording proxy:
#    `qwen-nb record -- jupyter nbconvert --to notebook --execute --inplace 11_record_and_replay.ipynb`.
#    Every call (qwen-nb's own, the raw `openai` and `dashscope` SDKs, `curl`) and its answer,
#    streams included, lands in `11_record_and_replay.cassettes/` beside the notebook, with the
#    keys and workspace ids taken out; the notebook keeps the real answers as its outputs.
# 2. **Commit** the notebook and its cassette folder together.
# 3. **Replay** in CI: `pytest --nbval --qwen-replay notebooks/` runs the notebook against the
#    cassette — no key, no network — and nbval checks that every output is still the recorded one.
#
# This notebook was recorded that way (with the local emulator standing in for the service), and
# `make test` replays it. The cells below are ordinary calls: nothing in them knows about recording.

# %% [markdown]
# ## Where the calls go
#
# `qwen-nb record` starts the proxy on `127.0.0.1` and runs the command with variables that point
# every client at it (the keys stay as they are; the proxy passes them on and never stores them):
#
# | variable | used by | set to |
# | --- | --- | --- |
# | `DASHSCOPE_BASE_URL` | qwen-nb's default profile, `curl` below | `http://127.0.0.1:PORT/default` |
# | `QWEN_NB_<NAME>_BASE_URL` | each named profile | `http://127.0.0.1:PORT/<name>` |
# | `OPENAI_BASE_URL` | the `openai` SDK | `http://127.0.0.1:PORT/default/compatible-mode/v1` |
# | `DASHSCOPE_HTTP_BASE_URL` | the `dashscope` SDK | `http://127.0.0.1:PORT/default/api/v1` |
#
# Each route forwards to that profile's Model Studio host (its region's, or its workspace's). A
# notebook that builds its own base URL should read these variables, with the service's URL as
# the default, as the cells below do.

# %%
import os

import qwen_nb

print("calls go to", os.environ.get("DASHSCOPE_BASE_URL", "https://dashscope-intl.aliyuncs.com"))

# %% [markdown]
# ## The calls: qwen-nb, the SDKs, curl

# %%
answer = qwen_nb.chat("In one sentence: why record a notebook's model calls?", model="qwen-plus")
print(answer.text)
print(answer.usage.total_tokens, "tokens")

# %%
# a stream on the native protocol: every event is in the cassette, in order
for piece in qwen_nb.stream_chat("Count from one to five.", model="qwen-plus", api="dashscope"):
    print(piece.content, end="")
print()

# %%
from openai import OpenAI

client = OpenAI(api_key=os.environ["DASHSCOPE_API_KEY"],
                base_url=os.environ.get("OPENAI_BASE_URL", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"))
stream = client.chat.completions.create(
    model="qwen-plus", messages=[{"role": "user", "content": "Name three colours."}],
    stream=True, stream_options={"include_usage": True})
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="")
    elif chunk.usage:
        print(f"\n{chunk.usage.total_tokens} tokens")

# %%
import dashscope

response = dashscope.Generation.call(
    model="qwen-turbo", messages=[{"role": "user", "content": "What is a cassette?"}],
    result_format="message", api_key=os.environ["DASHSCOPE_API_KEY"])  # base URL: DASHSCOPE_HTTP_BASE_URL
print(response.status_code, response.output.choices[0].message.content)

# %%
import json
import subprocess

base = os.environ.get("DASHSCOPE_BASE_URL", "https://dashscope-intl.aliyuncs.com")
body = {"model": "qwen-plus", "messages": [{"role": "user", "content": "Say hi from curl."}]}
out = subprocess.run(
    ["curl", "-sS", f"{base}/compatible-mode/v1/chat/completions",
     "-H", "Authorization: Bearer " + os.environ["DASHSCOPE_API_KEY"],
     "-H", "Content-Type: application/json", "-d", json.dumps(body)],
    capture_output=True, text=True, check=True).stdout
print(json.loads(out)["choices"][0]["message"]["content"])

# %% [markdown]
# Errors are recorded too: the service's answer (here a misspelt model) is replayed as it was,
# so the notebook's error handling is tested as well.

# %%
try:
    qwen_nb.chat("Hello", model="qwen-plsu")
except qwen_nb.errors.QwenNbError as err:
    print(type(err).__name__, "-", err.fix)

# %% [markdown]
# ## Commit: what a cassette looks like
#
# ```
# 11_record_and_replay.cassettes/
#   cassette.json                                  format, the command, the routes (profile, region)
#   0001-default-POST-chat-completions.json        one file per call, in call order
#   0002-default-POST-text-generation-generation.json
#   ...
# ```
#
# Each file is pretty-printed JSON with a fixed key order, so a re-recording reviews well in a diff.
# Only the headers that change the answer are kept (never `Authorization`); keys left anywhere
# become `sk-…1a2b` and workspace ids `llm-redacted`. A body is stored as JSON when that gives its
# bytes back exactly, and a stream as the list of its events:
#
# ```json
# "response": {
#   "status": 200,
#   "headers": {"content-type": "text/event-stream; charset=utf-8", ...},
#   "body": {
#     "events": [
#       "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[...]},\"usage\":{...}}",
#       ...
# ```
#
# `qwen-nb check-notebooks notebooks/` scans the cassette folders for keys as it scans the notebooks.

# %% [markdown]
# ## Replay in CI
#
# ```yaml
# # .github/workflows/notebooks.yml (no secrets needed)
# - run: pip install qwen-nb pytest nbval
# - run: pytest --nbval --qwen-replay notebooks/
# ```
#
# Each notebook's kernel gets the recorded profiles with a placeholder key and base URLs that point
# at a local replay server; every answer is the recorded one, byte for byte. A notebook without a
# cassette folder fails at once (`-o qwen_replay_missing=run` lets such notebooks run as usual). A
# call that was not recorded — a prompt changed since — gets HTTP 409 `NotRecorded` in the service's
# own error shape, so the SDK raises and qwen-nb shows it:
#
# ```
# ServiceError: Model Studio refused the call to 'qwen-plus' (...). The service said: qwen-nb replay:
# no recording of POST /compatible-mode/v1/chat/completions (model 'qwen-plus', 'A new prompt') on
# the default route in the cassette notebooks/11_record_and_replay.cassettes (7 interaction(s)).
# ```
#
# Re-record after changing the calls, review the diff, commit. To poke at a cassette by hand,
# `qwen-nb emulator --replay 11_record_and_replay.cassettes` serves it and prints the variables to set.
