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
# # 09 · Batch jobs: from `chat_many()` to the Batch API
#
# `chat_many()` sends many prompts from this kernel, at the real-time price, within your
# account's rate limits, and only while the kernel stays alive. For thousands of prompts
# (grading a class's answers, labelling a data set, evaluating a prompt over a benchmark)
# Model Studio has a Batch API: you upload a file of requests, the service works through it on
# its side within a *completion window* (24 hours to 14 days) and bills the successful lines at
# **half** the real-time price.
#
# `q.batch()` drives it from a notebook: it checks every row the way `chat()` does, writes and
# uploads the file (split into several jobs where the service's limits ask for it: 50,000 lines
# or 500 MB per file), creates the job and records it in the usage ledger, so you can pick it up
# again after a restart. Singapore's Batch API serves qwen-max, qwen-plus, qwen-flash and
# qwen-turbo; Beijing adds vision, OCR and embedding models. Other regions have no Batch API.
#
# On the local emulator (no key configured) a job runs on a fast clock: an hour's job ends in
# about a second. On the service, expect minutes to hours.

# %%
import qwen_nb as q

s = q.connect()
print("Running on", "the local emulator" if s.on_emulator else "Alibaba Cloud Model Studio")
region = s.region().id
print(f"Batch models in {region}:", ", ".join(q.facts.BATCH_MODELS.get(region, ())[:6]))

# %% [markdown]
# ## The in-kernel way: `chat_many()`
#
# Twenty short classification prompts, answered now, at the real-time price.

# %%
reviews = [
    "The battery lasts two days, great value.", "Screen cracked after a week.", "Does what it says.",
    "Support never answered my emails.", "Fast delivery and well packed.", "Too loud for an office.",
    "My kids love it.", "The app keeps crashing.", "Fair price for what you get.", "Stopped working in a month.",
    "Light and easy to carry.", "Instructions were confusing.", "Better than the previous model.",
    "The colour is not as shown.", "Setup took two minutes.", "Charger missing from the box.",
    "Quiet and efficient.", "Overpriced for the quality.", "Would buy again.", "Arrived late and damaged.",
]
prompts = [f"Answer with one word, positive or negative. Review: {r}" for r in reviews]

now = q.chat_many(prompts, model="qwen-plus", max_tokens=20, progress=False)
realtime_cost = sum(r.cost for r in now)
print(f"{len(now)} answers now, about {realtime_cost:.6f} {now[0].currency}")

# %% [markdown]
# ## Check the file first, for free: `dry_run=True`
#
# A dry run sends the lines to `batch-test-model` at `/v1/chat/ds-test`: the service checks the
# file and the calls end to end without running a model and without charge (it takes at most
# 100 lines; a longer input is checked row by row here and a sample is sent).

# %%
check = q.batch(prompts, model="qwen-plus", max_tokens=20, dry_run=True)
print(check.model, check.rows, "lines:", check.results(progress=False)[0].text)

# %% [markdown]
# ## The batch job
#
# `q.batch()` returns a `BatchJob` right after the job was created. `wait()` polls the service
# with a growing pause (and shows a progress bar; `progress=False` here keeps the saved notebook
# tidy). The job keeps running if you stop waiting, or close the notebook.

# %%
job = q.batch(prompts, model="qwen-plus", max_tokens=20, completion_window="24h")
job.wait(progress=False)
print(job.status, job.counts)

# %% [markdown]
# `results()` gives each prompt's `ChatResult` in input order (the service writes its result file
# in an order of its own), or the error of a line that failed. The usage goes into the ledger once,
# at the batch price.

# %%
later = job.results(progress=False)
batch_cost = sum(r.cost for r in later if isinstance(r, q.ChatResult))
for prompt, a, b in list(zip(reviews, now, later))[:4]:
    print(f"{prompt[:32]:<34} now: {a.text[:26]:<28} batch: {b.text[:26]}")
print()
print(f"{'':<12}{'answers':>8}{'cost':>14}")
print(f"{'chat_many':<12}{len(now):>8}{realtime_cost:>14.6f}")
print(f"{'batch':<12}{len(later):>8}{batch_cost:>14.6f}")
print(f"the batch costs {batch_cost / realtime_cost:.0%} of the real-time calls")

# %% [markdown]
# ## A DataFrame in, a DataFrame out
#
# With pandas (`pip install 'qwen-nb[pandas]'`), pass a DataFrame and a `template` naming its
# columns; the results come back as the same DataFrame with `answer`, token and `cost` columns.

# %%
import pandas as pd

df = pd.DataFrame({"review": reviews[:5], "stars": [5, 1, 4, 1, 5]})
labelled = q.batch(df, template="Answer with one word, positive or negative. Review: {review}",
                   model="qwen-plus", max_tokens=20).results(progress=False)
labelled[["review", "stars", "answer", "output_tokens", "cost"]]

# %% [markdown]
# ## After a restart
#
# Every job is in the ledger database from the moment it is created. In a new kernel,
# `q.batch_jobs()` lists them with the service's status, and `q.BatchJob.attach(id)` gives the
# job back: `wait()`, `results()`, `cancel()` as before. (On the emulator the ledger is kept in
# memory unless `QWEN_NB_LEDGER` names a file.)

# %%
print([(j.model, j.rows, j.status) for j in q.batch_jobs()])
again = q.BatchJob.attach(job.id)
print(again.status, len(again.results(progress=False)), "results")

# %% [markdown]
# The usage report marks the calls that were batch lines (the `batch` column); the dry run
# cost nothing and is not in it.

# %%
q.usage(by="model")

# %% [markdown]
# ## From a terminal
#
# The same steps as a command, for files too big to keep in a notebook:
#
# ```
# qwen-nb batch submit reviews.csv --model qwen-plus --template "Label: {review}"
# qwen-nb batch wait batch_...
# qwen-nb batch fetch batch_... -o labelled.csv
# qwen-nb batch list
# ```
#
# On the emulator, `emu.set_faults(batch_speed=86400 / 5, batch_hours=24)` makes a "24 hour"
# job take five seconds, and `batch_fail_rate=0.1` sends a tenth of the lines to the error file
# (each failed row then holds its error in `results()`).
