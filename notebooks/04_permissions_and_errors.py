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
# # 04 · Permissions and errors
#
# Every failure qwen-nb raises is a `QwenNbError` subclass whose message says **who** (profile,
# masked key, workspace), **where** (region, endpoint), **what** went wrong and **how to fix
# it**; `status`, `code` and `request_id` are kept for a support ticket. This notebook causes
# the common failures on purpose and catches them, so it runs top to bottom.
#
# **You will learn to**
# * recognise a model not granted to a sub-workspace (`403 Model.AccessDenied`) and fall back;
# * recognise a key used in the wrong region, an unknown model, bad input;
# * tell the answers worth retrying (rates, server faults) from those that need a person;
# * find who may call what with `probe()` and `compare()`.
#
# **Prerequisites** — none on the emulator: the lessons that need a particular failure use a
# private local emulator whatever keys you have. On the service: Model Studio activated in the
# region; a default-workspace key and, to see a refusal for real, a sub-workspace key.
#
# **Time** — about 30 minutes.

# %%
import exercises as ex
import qwen_nb as q
from qwen_nb import errors
from qwen_nb.errors import QwenNbError

tut = q.tutorial_setup()
s, profile = tut.s, tut.profile


def attempt(session, prompt="Who are you?", **kw):
    """Make a call; return the error instead of raising it, so the notebook goes on."""
    try:
        result = session.chat(prompt, **kw)
    except QwenNbError as err:
        return err
    print("Answered:", result.summary())
    return result

# %% [markdown]
# The emulator answers with the service's documented status, code and message for each case;
# the wording of a guided error's first line is qwen-nb's own.
#
# ## 1. A model the sub-workspace was not granted
#
# The service answers `403` with code `Model.AccessDenied`, "Model access denied.", on both
# endpoints (the OpenAI-compatible body carries `Model.AccessDenied` as its `code` and its
# `type`). The same answer also comes for every model when the account itself has no access
# (Model Studio not set up in that region). qwen-nb raises `ModelNotGrantedError` and names
# your profiles that *can* call the model.
#
# To see it whatever keys you have, here is a private emulator whose sub-workspace `team-a` was
# granted `qwen-plus` but not `qwen-max`:

# %%
with q.Emulator() as emu:
    local = q.Session(emu.profiles(), regions=emu.regions(), ledger=q.Ledger(":memory:"), max_retries=0)
    denied = attempt(local, model="qwen-max", profile="team-a")
    local.close()
denied

# %%
print("an AccessDeniedError:", isinstance(denied, errors.AccessDeniedError))
print("HTTP", denied.status, denied.code, "· retried:", denied.retryable)
print("for a support ticket: request id", "present" if denied.request_id else "missing")

# %% [markdown]
# With your own profiles: the lessons' profile asks for a model it may not have been granted.
# A default-workspace key may call every model, so with one you will see an answer here.

# %%
candidates = ["qwen-max", "qwen3-max", "qwen-turbo"]
not_granted = next((m for m in candidates if profile.models is not None and m not in profile.models), candidates[0])
mine = attempt(s, model=not_granted, profile=profile.name)
print(type(mine).__name__)

# %% [markdown]
# **Fix:** grant the model to the workspace (the Alibaba Cloud account does it in the console,
# see [01](01_sub_workspace_setup.ipynb)), or call it with a profile that has it. `probe()`
# finds out who may call what with the cheapest possible calls (one word in, one token out):

# %%
from qwen_nb import probe

probe(models=["qwen-plus", not_granted, "qwen-turbo"])

# %% [markdown]
# `compare()` asks the same prompt through several models × profiles × APIs at once; a cell that
# fails keeps its guided error while the others answer:

# %%
from qwen_nb import compare

names = list(dict.fromkeys(p.name for p in (tut.sub, tut.home) if p is not None))
compare("Who are you?", models=[not_granted], profiles=names)

# %% [markdown]
# In code, catch the specific class and fall back; say clearly when no profile may call it:

# %%
def ask(prompt, model, profile_names):
    for name in profile_names:
        try:
            return s.chat(prompt, model=model, profile=name)
        except errors.ModelNotGrantedError:
            print(f"{name}: not granted {model}, trying the next profile")
    print(f"none of {profile_names} may call {model}: ask the account to grant it")
    return None


answer = ask("What is 2+2", not_granted, names)
print(answer.text if answer else "(no answer)")

# %% [markdown]
# ## 2. A key used in the wrong region
#
# Keys are per region (and billing plan): a Singapore key sent to Beijing is refused with
# `401 InvalidApiKey` (`invalid_api_key` on the compatible endpoint) — the same answer as a
# mistyped key. The message says which region the call went to and which of your profiles use
# another one. Shown on a private emulator: its Singapore default key, declared in Beijing.

# %%
with q.Emulator() as emu:
    local = q.Session(emu.profiles(), regions=emu.regions(), ledger=q.Ledger(":memory:"), max_retries=0)
    local.add_profile("misplaced", local.get_profile("default").key, region="cn-beijing")
    wrong_region = attempt(local, profile="misplaced")
    local.close()
wrong_region

# %% [markdown]
# **Fix:** set the profile's region to the console the key came from (`DASHSCOPE_REGION` /
# `QWEN_NB_<NAME>_REGION`), or create a key in the region you need.
#
# ## 3. An unknown model
#
# A misspelt model gets a different answer on each endpoint: the OpenAI-compatible one says
# `404 model_not_found`, the native one `400 InvalidParameter` "Model not exist.". qwen-nb
# raises `ModelNotFoundError` for both and suggests the closest name it knows.

# %%
for api in ("openai", "dashscope"):
    err = attempt(s, model="qwen-plsu", api=api, profile=profile.name)
    print(f"{api:9} HTTP {err.status} {err.code!s:24} {type(err).__name__}: {err.message[:90]}")

# %% [markdown]
# ## 4. Bad input never leaves the notebook
#
# Values the service would reject are caught before any request, as `InputError`:

# %%
attempt(s, temperature=5, profile=profile.name)

# %% [markdown]
# ## 5. Throttling and retries
#
# Rate limits are set **per account and model**: every workspace and key of the account shares
# them, so spreading work over workspaces does not raise them. Too many requests get `429
# Throttling.RateQuota` (`limit_requests`), too many tokens `429 Throttling.AllocationQuota`
# (`insufficient_quota`), a too steep ramp-up `429 Throttling.BurstRate`. qwen-nb retries those
# (and 5xx answers and dropped connections) with exponential backoff, then raises
# `RateLimitError`. Throttling cannot be caused on demand on the service without hammering it,
# so a private emulator limited to 2 requests a minute and a session with retries off show it:

# %%
with q.Emulator(rate_limit=2, rate_window=60) as emu:
    local = q.Session(emu.profiles(), regions=emu.regions(), ledger=q.Ledger(":memory:"), max_retries=0)
    throttled = None
    for i in range(1, 4):
        try:
            print(i, local.chat("Say hello").text)
        except errors.RateLimitError as err:
            print(i, type(err).__name__)
            throttled = err
    local.close()
throttled

# %% [markdown]
# **Fix:** slow down (`chat_many(concurrency=...)`), spread the work over time or over other
# models, or ask for a higher limit for the account. The service usually lifts a rate limit
# within a minute.
#
# Retries are automatic. Here the emulator answers `500` once, and the session's retry notes are
# sent to this notebook through the `qwen_nb` logger:

# %%
import logging
import sys

notes = logging.StreamHandler(sys.stdout)
logging.getLogger("qwen_nb").addHandler(notes)
with q.Emulator() as emu:
    emu.set_faults(fail_next=1)
    local = q.Session(emu.profiles(), regions=emu.regions(), ledger=q.Ledger(":memory:"), max_retries=3)
    result = local.chat("Say hello")
    local.close()
logging.getLogger("qwen_nb").removeHandler(notes)
print(result.text, f"({result.attempts} attempts)")

# %% [markdown]
# ## More of the service's answers
#
# The emulator can give every documented answer, per workspace or per key
# (`emu.set_workspace(name, free_tier_only=True)`, `budget_exhausted=True`, `subscribed=False`,
# `tokens_per_minute=...`, `blocked_words_input=[...]`, ...), so you can see how each looks
# before you meet it for real. Note which ones are retried: only those where the service means
# "try again".

# %%
kinds = [
    {"free_tier_only": True},     # the free quota is used up while "free quota only" is on
    {"budget_exhausted": True},   # a budget of the console's Budget Management stopped calls
    {"subscribed": False},        # the workspace is not subscribed (a 429 that is no rate limit)
    {"tokens_per_minute": 10},    # tokens per minute: wait and try again
    {"blocked_words_input": ["hello"]},  # content moderation of the input
]
with q.Emulator() as emu:
    local = q.Session(emu.profiles(), regions=emu.regions(), ledger=q.Ledger(":memory:"), max_retries=0)
    for flags in kinds:
        emu.reset()
        emu.set_workspace("default", **flags)
        try:
            local.chat("Say hello", profile="default")
            local.chat("Say hello again", profile="default")
            print(f"{str(flags):36} answered")
        except errors.QwenNbError as err:
            print(f"{str(flags):36} HTTP {err.status} {err.code!s:28} {type(err).__name__:20} "
                  f"retried: {'yes' if err.retryable else 'no'}")
    local.close()

# %% [markdown]
# ## Cheat sheet
#
# Every answer qwen-nb knows, printed from the table the client and the emulator share
# (`qwen_nb.facts.ERRORS`, built from the service's error-code page and public response bodies;
# sources in the README's notes on the service). `evidence` says how sure that row is.

# %%
from qwen_nb import facts

print(f"{'HTTP':4}  {'native code':34}  {'compatible code':24}  {'qwen-nb class':22}  {'retried':7}  evidence")
for row in sorted(facts.ERRORS.values(), key=lambda r: (r.status, r.native)):
    print(f"{row.status:<4}  {row.native or '-':34}  {row.compat or '-':24}  {row.error:22}  "
          f"{'yes' if row.retryable else 'no':7}  {row.evidence}")

# %% [markdown]
# ## Exercises
#
# **04.1** — Write `safe_chat(prompt, model, profile_names)`: the first answer one of the
# profiles may give, trying them in order, or `None` when none was granted the model (no
# exception). Let other errors surface.

# %%
safe_chat = None  # def safe_chat(prompt, model, profile_names): ...

# %%
ex.check("04.1", safe_chat, tut)

# %% [markdown]
# **04.2** — Of these codes, which should a program retry (later)? `Throttling.RateQuota`,
# `Arrearage`, `InternalError`, `CommodityNotPurchased`, `Model.AccessDenied`. A list.

# %%
retry_these = None  # e.g. ["..."]

# %%
ex.check("04.2", retry_these, tut)

# %% [markdown]
# **04.3** — Make a call with `temperature=5`, catch the error qwen-nb raises before anything
# is sent, and keep the error object.

# %%
bad = None  # try: ... except ...: bad = ...

# %%
ex.check("04.3", bad, tut)

# %% [markdown]
# ## What you learned
#
# * `403 Model.AccessDenied`: the workspace was not granted the model (or the account has no
#   access) — grant it or use another profile; `ModelNotGrantedError` in code.
# * `401 InvalidApiKey`: a wrong key, or a key of another region or billing plan.
# * A misspelt model: `404 model_not_found` (compatible) or `400 InvalidParameter` "Model not exist." (native).
# * Rate limits are per account and model, shared by all workspaces; 429 rates and 5xx are
#   retried, bills, budgets, subscriptions and grants are not.
#
# ## The service's pages
#
# * [Error messages (status, code, cause, fix)](https://www.alibabacloud.com/help/en/model-studio/error-code)
# * [Rate limiting best practices (limits are per account and model)](https://www.alibabacloud.com/help/en/model-studio/rate-limiting-best-practices)
# * [Authorize models for a sub-workspace (with the Alibaba Cloud account)](https://www.alibabacloud.com/help/en/model-studio/videos/model-authentication-instructions)
# * [Budget management (per account, workspace and API key)](https://www.alibabacloud.com/help/en/model-studio/budget-management)
# * [Get an API key (per region; its workspace decides what it may call)](https://www.alibabacloud.com/help/en/model-studio/get-api-key)
#
# Next: [05 · splitting costs](05_splitting_costs.ipynb).
