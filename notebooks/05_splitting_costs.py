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
# # 05 · Splitting costs between workspaces
#
# Every call made through qwen-nb — `chat()`, streams, `chat_many()`, magics, widgets,
# `compare()`, `probe()` — is recorded once in a local **usage ledger** (SQLite, in your user
# data folder; `QWEN_NB_LEDGER` moves it) with its profile, workspace, region, model, tokens and
# estimated cost. `q.usage()` reports it per workspace, profile, model or day.
#
# The ledger is an **estimate** kept on your machine. The bill is the authority: the service
# bills every call to its workspace, and the bill details list each call's workspace ID and API
# key ID, so the real split per workspace comes from there. Budgets set in the console (per
# account, workspace or API key) can alert, and can stop calls (not in US (Virginia)).
#
# **You will learn to**
# * do the same work through two workspaces' keys and report usage per workspace and profile;
# * export the report (CSV, pandas);
# * relate the local estimate to the bill and the console's budgets.
#
# **Prerequisites** — none on the emulator. On the service: two workspace keys of one region
# show the split best; with one key the report has one row (the lesson still shows how it is
# built).
#
# **Time** — about 15 minutes.

# %%
import time

start = time.time()  # report only this notebook's calls: q.usage(since=start)

# %%
import exercises as ex
import qwen_nb as q

tut = q.tutorial_setup()
s = tut.s

# %% [markdown]
# Two teams: on your account the default workspace and a sub-workspace when both are
# configured; with only one key, that key does both teams' work (and the report shows one
# workspace). On the emulator: its demo default and `team-a` workspaces.

# %%
teams = [p for p in (tut.home, tut.sub) if p is not None]
team_a, team_b = (teams + teams)[:2]
print("team A:", team_a.name, "· workspace", team_a.workspace or "(the region's default workspace)")
print("team B:", team_b.name, "· workspace", team_b.workspace or "(the region's default workspace)")
if team_a is team_b:
    print("One key only: both teams' calls land in one workspace. Add a sub-workspace key (notebook 01) to split.")

# %% [markdown]
# The same kind of work, done through each team's own key:

# %%
work_a = ["What is the capital of France?", "Translate hello into French", "Tell me a joke"]
work_b = ["Write a haiku about the sea", "Count from 1 to 10"]

for team, work in ((team_a, work_a), (team_b, work_b)):
    for result in s.chat_many(work, profile=team.name, model="qwen-plus", progress=False):
        print(f"{team.name}: {result.text if not isinstance(result, Exception) else result.message}")

# %% [markdown]
# ## The report
#
# Grouped by workspace (calls of a profile without a workspace id count under its region's
# default workspace), with tokens, errors and the estimated cost per currency, and a bar per
# workspace:

# %%
q.usage(since=start)

# %% [markdown]
# Other groupings: `by="profile"`, `by="model"`, `by="day"`. Plain text works anywhere
# (`qwen-nb usage` prints the same table in a terminal):

# %%
print(q.usage(since=start, by="profile"))

# %% [markdown]
# The numbers as data, for a spreadsheet or pandas (`report.to_pandas()` when pandas is installed):

# %%
report = q.usage(since=start, by="profile")
for row in report.rows:
    print(row["key"], row["calls"], row["input_tokens"], row["output_tokens"], row["costs"])
print(report.to_csv())

# %% [markdown]
# ## The real bill and the console's budgets
#
# * **Bill details** (Billing console, product *Alibaba Cloud Model Studio*): export the bill;
#   its *Instance ID* column reads `ApiKeyID;WorkspaceID;ModelName;Input/Output type;channel`, so
#   the bill splits by workspace and by key. Inference bills appear minutes after the calls.
# * **Budget management** (Model Studio console): budgets per account, per workspace and per API
#   key, with alerts and an optional automatic stop; a stopped call gets `429` "The budget
#   configured in Budget Management has been exhausted." (automatic stop is not offered in US
#   (Virginia), and it takes effect with a delay).
# * qwen-nb's estimate uses its price table (`qwen_nb.prices`, per model and region, USD for
#   international regions, CNY for Beijing); calls whose price is unknown are counted apart,
#   never as zero. Failed calls are recorded too (`errors` column); a stream stopped early counts
#   the tokens received.
# * A local budget per profile (`QWEN_NB_<NAME>_BUDGET`) warns at 80 % and 100 % of it;
#   `q.Session(..., hard_budget=True)` refuses calls once it is spent. `%qwen_usage` shows the
#   report from a magic; the `UsagePanel` widget ([06](06_playground_and_pickers.ipynb)) keeps
#   it live while you work.
#
# ## Exercises
#
# **05.1** — How many calls has this notebook made so far? Take the number from the usage report.

# %%
my_calls = None  # a number from q.usage(since=start)

# %%
ex.check("05.1", my_calls, tut, start=start)

# %% [markdown]
# **05.2** — Export this notebook's usage **per model** as CSV text.

# %%
csv_text = None  # your CSV text here

# %%
ex.check("05.2", csv_text, tut, start=start)

# %% [markdown]
# ## What you learned
#
# * Calls are billed to the workspace of the key used; a key per team gives a split per team.
# * `q.usage(by=...)` reports the local estimate per workspace, profile, model or day; CSV and pandas for more.
# * The bill (by workspace ID and API key ID) is the authority; budgets live in the console.
#
# ## The service's pages
#
# * [Bill query and cost management (bills by workspace ID and API key ID)](https://www.alibabacloud.com/help/en/model-studio/bill-query-and-cost-management)
# * [Budget management (per account, workspace and API key)](https://www.alibabacloud.com/help/en/model-studio/budget-management)
# * [Use workspaces: create one, find its ID, authorize models](https://www.alibabacloud.com/help/en/model-studio/use-workspace)
#
# Next: [06 · the Playground and the pickers](06_playground_and_pickers.ipynb).
