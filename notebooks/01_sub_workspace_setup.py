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
# # 01 · Sub-workspaces: keys, regions, grants
#
# A Model Studio account starts with a **default workspace** per region; its API keys may call
# every model the account has there. **Sub-workspaces** (up to 20 workspaces per account,
# the default one included) are for two things:
#
# * **Model access control** — a sub-workspace's key may call only the models granted to that
#   workspace; any other model gets `403 Model.AccessDenied`.
# * **Cost split** — bills list every call's workspace ID and API key ID, so each team,
#   service or experiment can see what it spent.
#
# A call from a sub-workspace is the same request as from the default one; only the key
# differs (and, if you like, the host: every workspace also has its own).
#
# **You will learn to**
# * set up several workspace keys as qwen-nb profiles;
# * tell the region's shared host from a workspace's own host, and which regions have which;
# * check what a key may call: the region's catalogue versus the workspace's grants;
# * read (and, as the account, change) a sub-workspace's model grants through the API.
#
# **Prerequisites** — none on the emulator. On the service: an Alibaba Cloud account with
# Model Studio activated in the region; a default-workspace key (`DASHSCOPE_API_KEY`); for the
# sub-workspace parts a sub-workspace created in the console, its workspace id and one of its
# keys (`QWEN_NB_<NAME>_API_KEY`, `QWEN_NB_<NAME>_WORKSPACE`). Changing grants is done by the
# Alibaba Cloud account.
#
# **Time** — about 25 minutes.
#
# ![Account, workspaces, keys, granted models, bill](img/workspaces.svg)

# %% [markdown]
# ## In the console
#
# 1. Pick the **region** first (top of the Model Studio console): workspaces and API keys
#    belong to the region they are created in.
# 2. On the **Workspaces** page, add a workspace and its members (RAM users). Workspaces can be
#    renamed but not deleted, and this cannot be done by API.
# 3. With that workspace selected, create an API key on the **API Key** page. The key belongs to
#    this workspace, this region and this billing plan; all keys of a workspace have the same
#    permissions.
# 4. Grant models to the workspace: the service's pages say this is done **with the Alibaba Cloud
#    account** (Workspaces page > *Authorization & Throttling Settings* of the workspace); a RAM
#    user needs the super-administrator policy (`AliyunBailianFullAccess`). Until a model is
#    granted, the workspace's keys get `403 Model.AccessDenied` for it.
# 5. Note the workspace id (`llm-…`, shown on the Workspaces page and under *Workspace
#    Details*): qwen-nb uses it for the workspace's own host and for its grants.

# %% [markdown]
# ## Regions and hosts
#
# Three kinds of host serve the same paths (`/compatible-mode/v1` for the OpenAI-compatible
# API, `/api/v1` for the native one):
#
# * the region's **shared host** (`dashscope-intl` for Singapore, `dashscope` for Beijing,
#   `dashscope-us` for US (Virginia), `cn-hongkong.dashscope` for Hong Kong): any workspace's
#   key of that region may call it;
# * each workspace's **own host**, `https://{WorkspaceId}.{region}.maas.aliyuncs.com`: only
#   that workspace's keys. Germany (Frankfurt) and Japan (Tokyo) have only these, so a profile
#   there needs its workspace id;
# * a **trial host** `https://trial.{region}.maas.aliyuncs.com` (Beijing, Singapore) with lower
#   rate limits and no SLA.
#
# The `openai` SDK always needs a base URL; the `dashscope` SDK defaults to Beijing's shared
# host, so every other region must set one (qwen-nb does it for you).

# %%
import qwen_nb as q

for r in q.regions().values():
    if r.host:
        print(f"{r.id:15} {r.label:27} shared: {r.compatible_base()}")
        print(f"{'':15} {'':27}         {r.native_base()}")
    print(f"{'':15} {'' if r.host else r.label:27} workspace: {r.compatible_base('{WorkspaceId}')}")

# %% [markdown]
# Which models a region offers (qwen-nb's catalog; the service's own list is the authority):

# %%
for region in ("ap-southeast-1", "cn-beijing"):
    print(region, "->", ", ".join(m.id for m in q.models(region)))

# %% [markdown]
# ## Several keys in `.env`
#
# The default profile comes from the SDKs' own variables, so an existing setup keeps working.
# Each sub-workspace gets a **named profile**: `QWEN_NB_<NAME>_API_KEY` (required) and optionally
# `_REGION`, `_WORKSPACE`, `_MODELS` (the grants, if you know them) and `_BUDGET` (in the
# region's currency). `<NAME>` becomes the profile name in lower case, `_` turned into `-`.
#
# ```
# # default workspace, Singapore
# DASHSCOPE_API_KEY=sk-...
# DASHSCOPE_REGION=ap-southeast-1
#
# # sub-workspace of team A, Singapore
# QWEN_NB_TEAM_A_API_KEY=sk-...
# QWEN_NB_TEAM_A_REGION=ap-southeast-1
# QWEN_NB_TEAM_A_WORKSPACE=llm-...
# QWEN_NB_TEAM_A_MODELS=qwen-plus,qwen-flash
# QWEN_NB_TEAM_A_BUDGET=5
#
# # a sub-workspace in Beijing (its key comes from the Beijing console)
# QWEN_NB_BEIJING_LAB_API_KEY=sk-...
# QWEN_NB_BEIJING_LAB_REGION=cn-beijing
# ```
#
# Keep `.env` out of version control. Here is how qwen-nb reads such a file — with
# placeholder keys, in a temporary folder:

# %%
import tempfile
from pathlib import Path

from qwen_nb import ProfileTable, load_profiles

example = '''
DASHSCOPE_API_KEY=sk-example0001
QWEN_NB_TEAM_A_API_KEY=sk-example0002
QWEN_NB_TEAM_A_WORKSPACE=llm-example
QWEN_NB_TEAM_A_MODELS=qwen-plus,qwen-flash
QWEN_NB_TEAM_A_BUDGET=5
QWEN_NB_BEIJING_LAB_API_KEY=sk-example0003
QWEN_NB_BEIJING_LAB_REGION=cn-beijing
'''
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / ".env"
    path.write_text(example)
    parsed = load_profiles(env={}, dotenv_path=path)  # env={}: ignore this kernel's environment
ProfileTable(parsed.values())

# %% [markdown]
# Keys are only ever shown masked (`sk-…0002`). Now the profiles of this kernel — yours, or the
# emulator's demo workspaces when no key is set — and what this notebook will do with them:

# %%
tut = q.tutorial_setup()
s = tut.s
q.profiles()

# %% [markdown]
# ## What may a key call?
#
# Two different lists — do not mix them up:
#
# * `GET /compatible-mode/v1/models` lists the **region's catalogue**. Every working key of the
#   region sees it, granted or not, so it proves only that the key works in its region.
# * A workspace's **grants** come from the permissions list,
#   `GET {workspace host}/api/v1/models/permissions?authorization_scope=AUTHORIZED`
#   (`s.granted_models(profile)`; it needs the workspace id). The service documents this API for
#   Beijing's workspace hosts; where it is not available qwen-nb falls back to the catalogue.

# %%
from qwen_nb.errors import QwenNbError

for p in s.profiles():
    try:
        if p.workspace:
            granted = s.granted_models(p.name)
            print(f"{p.name:12} {p.region:15} granted ({len(granted)}): {', '.join(granted[:6])}"
                  + (" ..." if len(granted) > 6 else ""))
        else:
            seen = s.list_models(p.name)
            print(f"{p.name:12} {p.region:15} key works; the region's catalogue lists {len(seen)} models")
    except QwenNbError as err:
        print(f"{p.name:12} {p.region:15} {type(err).__name__}: {err.message}")

# %% [markdown]
# ## Granting a model by API
#
# Besides the console, a workspace's model permissions can be changed with
# `POST {workspace host}/api/v1/models/permissions`, body
# `{"models": [{"model": "qwen-turbo", "inference": true}], "access_all_entities": "KEEP"}`:
# `true` grants, `false` revokes, an absent field leaves it as it is (the fine-tuning field is
# spelt `finetune` here, `fine_tune` in the list); `KEEP` changes only the 1 to 20 models
# listed, `OPEN` grants every inference model (future ones too), `CLOSE` clears the grants.
# The reply carries no data: `{"request_id": "…", "code": null, "message": null, "success": true,
# "output": null}`.
#
# **Who may call it?** The API page asks only for an API key. The service's pages on
# workspaces say grants are given by the Alibaba Cloud account (or a super administrator);
# whether the service accepts a sub-workspace's *own* key here is not documented. So this
# notebook sends the request with the **default workspace's key** to the sub-workspace's host,
# and only on the emulator (which stands in for that host, and refuses a sub-workspace's own key
# with `403`). On the service it prints the request; set `SEND = True` yourself if you mean it.
#
# First, a model the sub-workspace was not granted:

# %%
candidates = ["qwen-turbo", "qwen-max"]
sub = tut.profile
model = next((m for m in candidates if sub.models is not None and m not in sub.models), candidates[0])


def try_call():
    try:
        r = s.chat("Say hello", model=model, profile=sub.name)
        print(f"{sub.name} -> {model}: answered ({r.summary()})")
    except QwenNbError as err:
        print(f"{sub.name} -> {model}: {type(err).__name__} (HTTP {err.status} {err.code})")


try_call()
if tut.sub is None:
    print("(a default-workspace key may call every model: a sub-workspace key would get 403 Model.AccessDenied)")

# %%
SEND = s.on_emulator
account = tut.account_profile()  # the default workspace's key, aimed at the sub-workspace's host
if account is None:
    print("Granting needs both a default-workspace key and a sub-workspace profile with its workspace id:"
          " skipped with this setup.")
else:
    print(f"POST {tut.service_url(account, 'dashscope')}/models/permissions")
    print({"models": [{"model": model, "inference": True}], "access_all_entities": "KEEP"})
    if SEND:
        print(s.grant(model, profile=account.name))
        try_call()
    else:
        print("(not sent)")

# %% [markdown]
# On the emulator, the sub-workspace's own key may not change its grants (the service's answer
# to that is not documented):

# %%
if SEND and tut.sub is not None:
    try:
        s.revoke(model, profile=sub.name)
    except QwenNbError as err:
        print(f"{type(err).__name__} (HTTP {err.status} {err.code}): {err.message}")

# %% [markdown]
# Revoke it again, with the account's key, so the next notebooks find the workspace as it was:

# %%
if SEND and account is not None:
    print(s.revoke(model, profile=account.name))
    try_call()
if account is not None:
    s.remove_profile(account.name)

# %% [markdown]
# ## Exercises
#
# **01.1** — Write the `.env` lines (one string) for a sub-workspace profile named `marketing`
# in Singapore, workspace `llm-marketing`, granted `qwen-plus` and `qwen-flash`. Use a
# placeholder key, never a real one.

# %%
import exercises as ex

env_text = None  # your .env lines here, e.g. "QWEN_NB_...=...\n..."

# %%
ex.check("01.1", env_text, tut)

# %% [markdown]
# **01.2** — Make a dict: profile name → the OpenAI-compatible base URL that profile's calls go
# to (`tut.base_url(profile, "openai")` tells you one).

# %%
base_urls = None  # your dict here

# %%
ex.check("01.2", base_urls, tut)

# %% [markdown]
# ## What you learned
#
# * Keys belong to a workspace, a region and a billing plan; a sub-workspace's keys may call only
#   its granted models (`403 Model.AccessDenied` otherwise).
# * Singapore, Beijing, US (Virginia) and Hong Kong have shared hosts; every workspace has its
#   own host; Frankfurt and Tokyo have only workspace hosts.
# * `GET /models` is the region's catalogue; a workspace's grants come from the permissions list.
# * Grants are changed by the Alibaba Cloud account (console, or the permissions API).
#
# ## The service's pages
#
# * [Use workspaces: create one, find its ID, authorize models](https://www.alibabacloud.com/help/en/model-studio/use-workspace)
# * [Authorize models for a sub-workspace (with the Alibaba Cloud account)](https://www.alibabacloud.com/help/en/model-studio/videos/model-authentication-instructions)
# * [Permission management: who may grant models, manage keys and rate limits](https://www.alibabacloud.com/help/en/model-studio/grant-the-business-space-permission-to-ram-users)
# * [Get an API key (per region; its workspace decides what it may call)](https://www.alibabacloud.com/help/en/model-studio/get-api-key)
# * [Base URLs per region (shared, workspace and trial hosts)](https://www.alibabacloud.com/help/en/model-studio/base-url)
# * [API: list a workspace's model permissions](https://www.alibabacloud.com/help/en/model-studio/list-model-permissions)
# * [API: update a workspace's model permissions](https://www.alibabacloud.com/help/en/model-studio/update-model-permissions)
#
# Next: [02 · the OpenAI-compatible endpoint](02_openai_compatible.ipynb).
