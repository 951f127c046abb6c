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
# # 06 · The Playground and the pickers
#
# The widgets are views over the plain-Python API: everything a button does is also a method, so
# this notebook shows each widget and then drives it from code. Keys never enter a widget's
# synced state, so a saved notebook does not carry them.
#
# **You will learn to**
# * use the Playground: pickers, parameters, Send / Stop / Clear, history, Show code;
# * build your own layout from the region, profile, model and parameter pickers;
# * add a key from a password box without saving it in the notebook;
# * keep the usage report live with `UsagePanel`.
#
# **Prerequisites** — JupyterLab 4 or Notebook 7 (widgets do not show on GitHub: the pictures
# below show them). On the service: Model Studio activated in the region and a workspace key.
#
# **Time** — about 20 minutes.

# %%
import time

start = time.time()  # for the usage panel at the end: this notebook's calls only

# %%
import exercises as ex
import qwen_nb as q

tut = q.tutorial_setup()
s, profile = tut.s, tut.profile

# %% [markdown]
# ## The Playground
#
# Region, profile, model and API pickers, parameters, a prompt box, **Send / Stop / Clear**, the
# streamed answer (with thinking, when the model thinks), the usage line, the conversation
# history, and **Show code** for the same call outside qwen-nb. In JupyterLab it looks like this:
#
# ![The Playground in JupyterLab after one answer: pickers for region, profile, model and API, the prompt box, the Send, Stop, Clear and Show code buttons, the answer and its usage line.](img/playground.png)

# %% tags=["nbval-ignore-output"]
pg = q.Playground(model="qwen-plus")
pg

# %% [markdown]
# What the Send button does, from code:

# %%
pg.model.wait()  # the model list is fetched in the background
pg.send("Who are you?")
pg.wait()
print(pg.answer_text)
print(pg.last_result.summary())

# %% [markdown]
# A second turn keeps the conversation:

# %%
pg.send("Tell me a joke")
pg.wait()
print(pg.answer_text)
print([m["role"] for m in pg.history])

# %% [markdown]
# **Show code** renders the call for the current choices (model, profile, API, parameters) with
# `q.snippet()`; the language list offers Python, curl, Node.js, Java, Go, C# and PHP:

# %%
from IPython.display import Markdown

pg.code_toggle.value = True
pg.code_language.value = "curl"
Markdown(pg.code_text("Who are you?"))

# %% [markdown]
# ## The pickers on their own
#
# `RegionPicker`, `ProfilePicker` and `ModelPicker` link up: picking a profile sets its region;
# the model list is the one the profile's key may use, with models its workspace was refused in
# this session marked `(not granted)`.

# %% tags=["nbval-ignore-output"]
import ipywidgets as widgets

region = q.RegionPicker()
profile_picker = q.ProfilePicker(region=region)
model = q.ModelPicker(profile=profile_picker)
api = q.ApiToggle()
widgets.VBox([widgets.HBox([region, profile_picker]), widgets.HBox([model, api])])

# %%
profile_picker.value = profile.name
model.wait()
print("region:", region.value, "· list from:", model.source)
for label, _ in model.options[:8]:
    print(" ", label)

# %% [markdown]
# `ParamsBox` follows the model (thinking switch on, off or locked as the model allows) and gives
# the keyword arguments for `chat()`:

# %% tags=["nbval-ignore-output"]
params = q.ParamsBox(model=model)
params

# %%
if "qwen-plus" in [value for _, value in model.options]:
    model.value = "qwen-plus"
params.max_tokens.value = 64
print(params.params())
r = s.chat("Who are you?", model=model.value, profile=profile_picker.value, api=api.value, **params.params())
print(r.text)

# %% [markdown]
# ## Keys and usage
#
# `KeyEntry` takes a key typed into a password box, turns it into a profile of the chosen region
# and clears the box at once: the key is never a synced widget value, so it is not saved with the
# notebook. `UsagePanel` shows `q.usage()` live, per workspace.

# %% tags=["nbval-ignore-output"]
q.KeyEntry()

# %% tags=["nbval-ignore-output"]
panel = q.UsagePanel(since=start)  # the calls of this notebook (start: noted at the top)
panel

# %%
totals = panel.refresh().totals
print(totals["calls"], "calls in this notebook so far,", totals["errors"], "errors")

# %% [markdown]
# ## Exercises
#
# **06.1** — Drive the Playground from code: pick the model `qwen-flash`, send "Tell me a joke",
# wait, and keep `pg.last_result`.

# %%
pg_result = None  # pg.model.value = ...; pg.send(...); pg.wait(); pg_result = pg.last_result

# %%
ex.check("06.1", pg_result, tut, pg=pg)

# %% [markdown]
# **06.2** — Get the curl command for the Playground's current choices (what *Show code* shows).

# %%
curl_text = None  # your code here

# %%
ex.check("06.2", curl_text, tut, pg=pg)

# %% [markdown]
# ## What you learned
#
# * The Playground and the pickers are views: `pg.send()`, `pg.wait()`, `pg.code_text()` do
#   what the buttons do.
# * Keys typed into `KeyEntry` become profiles and never enter the saved notebook.
# * `UsagePanel` keeps the usage report of [05](05_splitting_costs.ipynb) live.
#
# ## The service's pages
#
# * [OpenAI-compatible Chat API](https://www.alibabacloud.com/help/en/model-studio/compatibility-of-openai-with-dashscope)
# * [Get an API key (per region; its workspace decides what it may call)](https://www.alibabacloud.com/help/en/model-studio/get-api-key)
# * [Bill query and cost management (bills by workspace ID and API key ID)](https://www.alibabacloud.com/help/en/model-studio/bill-query-and-cost-management)
#
# Next: [07 · beyond the basics](07_beyond_basics.ipynb).
