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
# # 08 · Teaching with qwen-nb
#
# For teachers. A class of thirty works on **one emulator** running on the teacher's machine:
# every student has their own workspace and key, with their own grants and budget, so one
# student's grant change or spending never reaches another's, and nobody but the teacher can read
# the class's prompts or inject faults. Later, the same class moves to real Model Studio
# sub-workspaces.
#
# What you will do here:
#
# 1. write a class (`qwen-nb classroom init`): the emulator's config and the handouts;
# 2. start the emulator for it, and see the class through one student's eyes;
# 3. watch usage per student, and reset one student (or everyone);
# 4. read how to move the class to real sub-workspaces, and how to hand out keys on JupyterHub.
#
# Everything below runs against a local emulator: nothing leaves this machine, nothing is billed.

# %% [markdown]
# ## 1. Write the class
#
# In a terminal, `qwen-nb classroom init --students 30 --name "Qwen 101" --out classroom` writes
# three files into `classroom/`, each readable by you only (mode 0600), next to a `.gitignore`
# that keeps them out of version control:
#
# * `classroom.toml`: the emulator's config, one sub-workspace per student (`student-01` …),
#   each with its own key, its first grants (`qwen-plus`, `qwen-flash`, `qwen-vl-plus`), a budget,
#   and the right to change its own grants; a default `teacher` workspace; and the **teacher
#   token**, which the emulator's control endpoints, request log and usage then require;
# * `handout.csv` and `handout.html`: each student's two `.env` lines (print the HTML page and cut
#   it into cards). The keys are the point of the handouts: they are written there in full, and
#   nowhere else. Keep the files out of notebooks; `qwen-nb check-notebooks` reports a handout key
#   pasted into one like any other key.
#
# The same from Python (here into a temporary folder, with the address students will use):

# %%
import stat
import tempfile
from pathlib import Path

import qwen_nb as q
from qwen_nb.classroom import init_classroom

folder = Path(tempfile.mkdtemp(prefix="class-"))
files = init_classroom(30, folder, url="http://192.168.1.20:8765", name="Qwen 101")
print(len(files.students), "students")
for path in (files.config, files.csv, files.html):
    print(f"{path.name:15} mode {oct(stat.S_IMODE(path.stat().st_mode))}")

# %% [markdown]
# Each student's card holds two lines for the `.env` file next to their notebooks (shown here with
# the key left out: a notebook is no place for it):

# %%
me = files.students[6]
print(me.env_lines(files.url).replace(me.key, "<the key on student-07's card>"))
print(me.name, me.region, "· models:", ", ".join(me.models), "· budget:", me.budget)

# %% [markdown]
# ## 2. Start the emulator for the class
#
# For a room, on the teacher's machine:
#
# ```
# qwen-nb emulator --classroom classroom/classroom.toml --host 0.0.0.0 --port 8765
# ```
#
# `--host 0.0.0.0` makes it reachable from the other machines of the local network (the default,
# `127.0.0.1`, serves this machine only). The banner then prints the address students use: the
# machine's network address (e.g. `http://192.168.1.20:8765`), never `0.0.0.0`. If it differs
# from the one on the handouts, `qwen-nb classroom handout classroom/classroom.toml --url ...`
# writes them again. Here, the emulator runs inside this notebook on loopback:

# %%
emu = q.Emulator(files.config)
emu.start()
print(emu)

# %% [markdown]
# A student's `qwen_nb.connect()` reads `QWEN_NB_EMULATOR` and `QWEN_NB_EMULATOR_KEY` and asks the
# emulator which workspace that key belongs to (`GET /_emulator/whoami`, answered to any machine
# that shows a valid key: no teacher secret needed). Their session then holds their own workspace
# only. An emulator that does not answer, or a key it does not know, is a clear error, never a
# silent switch to other profiles. The same lookup by hand, for student-07:

# %%
from qwen_nb.emulator.config import running_profiles

student = q.Session(running_profiles(emu.url, key=me.key), regions=emu.regions(), ledger=q.Ledger(":memory:"))
print("profiles:", [p.name for p in student.profiles()])
print(student.chat("Who are you?").text)

# %% [markdown]
# Grants are per workspace. Student-07 grants their own workspace `qwen-max` (tutorial 01 does
# this); nobody else's grants change:

# %%
student.grant("qwen-max")
print(student.chat("Say hello", model="qwen-max").model)
print("student-07:", sorted(emu.grants("student-07")))
print("student-08:", sorted(emu.grants("student-08")))

# %% [markdown]
# What a student may not do: inject faults, reset the emulator, or read other students' prompts.
# With their key they get `403`; without credentials `401`. They may read their own requests:

# %%
import httpx

mine = {"Authorization": f"Bearer {me.key}"}
r = httpx.post(emu.url + "/_emulator/faults", json={"fail_next": 100}, headers=mine)
print("inject a fault:", r.status_code, "-", r.json()["message"])
print("reset:", httpx.post(emu.url + "/_emulator/reset", headers=mine).status_code)
print("the log, no credentials:", httpx.get(emu.url + "/_emulator/requests").status_code)
own = httpx.get(emu.url + "/_emulator/requests", headers=mine).json()
print(f"their own log: {len(own)} requests, all of workspace {me.workspace[:4]}…:",
      {x["workspace"] for x in own} == {me.workspace})

# %% [markdown]
# ## 3. Usage per student, and resets
#
# The teacher token (in `classroom.toml`, or `QWEN_NB_TEACHER_TOKEN`) opens everything. In a
# terminal, `qwen-nb emulator usage --classroom classroom/classroom.toml` prints calls, errors,
# tokens, estimated spend and grants per student; in Python, `emu.usage()` returns the same:

# %%
import pandas as pd

usage = pd.DataFrame(emu.usage()).T
usage.loc[["student-06", "student-07", "student-08"], ["calls", "errors", "input_tokens", "output_tokens", "budget"]]

# %% [markdown]
# The command, for one student (it sends the teacher token from the class's file):

# %%
from qwen_nb.emulator.cli import teacher_main

status = teacher_main(["usage", "--classroom", str(files.config), "--url", emu.url, "--workspace", "student-07"])

# %% [markdown]
# A student who is stuck (a revoked model, a used-up budget) gets a fresh start with
# `qwen-nb emulator reset --classroom classroom/classroom.toml --workspace student-07`: their
# grants, flags, usage and budget go back to the class file's. Without `--workspace` the whole
# emulator is reset (and its request log cleared).

# %%
status = teacher_main(["reset", "--classroom", str(files.config), "--url", emu.url, "--workspace", "student-07"])
print("student-07 now:", sorted(emu.grants("student-07")))

# %%
student.close()
emu.stop()

# %% [markdown]
# ## 4. Moving the class to Model Studio
#
# When the class is ready for the real service, give it the same shape there:
#
# * **One sub-workspace per team** (not per student: a team of three shares one). Create them in
#   the console (Workspaces), grant each the models the course needs, and create one API key per
#   team inside its workspace. A sub-workspace's key calls only what its workspace was granted,
#   and only the Alibaba Cloud account (or an administrator it names) grants models to
#   sub-workspaces ([permission management](https://help.aliyun.com/en/model-studio/use-workspace);
#   [model authorisation for sub-workspaces](https://www.alibabacloud.com/help/en/model-studio/videos/model-authentication-instructions)).
# * **Budgets per workspace and per key.** Budget Management sets monthly limits and alerts at the
#   account, workspace and API-key level, optionally stopping pay-as-you-go calls once a budget is
#   used up ([Budget management](https://www.alibabacloud.com/help/en/model-studio/budget-management)).
#   The stop is not instant, and it is not offered in every region (the same page): keep an account
#   budget as a backstop. A call refused by a budget is a `429`; qwen-nb raises
#   `ServiceBudgetError` for it and does not retry.
# * **Rate limits are shared by the class.** Requests and tokens per minute are limits of the
#   account, per model, summed over all its workspaces
#   ([regions and access domains](https://help.aliyun.com/zh/model-studio/regions);
#   [rate limits](https://docs.qwencloud.com/developer-guides/administration/rate-limits)): thirty
#   students pressing Run at once share one account's limit. A sub-workspace can be given lower
#   per-model limits of its own (same page), so one team cannot take the whole class's share. Plan
#   exercises that do not all fire at the same second, and keep `max_retries` on.
# * Give each team its key as this notebook's handouts do, in `.env` or the environment, now as
#   `QWEN_NB_<TEAM>_API_KEY` with `QWEN_NB_<TEAM>_WORKSPACE` and `QWEN_NB_<TEAM>_REGION`
#   (notebook 01), never in a notebook.

# %% [markdown]
# ## JupyterHub: a key per user, never one for the whole hub
#
# On a JupyterHub, hand each user their own key through their server's environment. Do **not**
# put one key into `c.Spawner.environment` for everybody: every user would then spend the same
# budget, share its limits, and could read it from their environment. Instead, look up the
# user's own key when their server starts: `c.Spawner.pre_spawn_hook` runs before each spawn and
# may fill `spawner.environment`, and values of `c.Spawner.environment` may be callables that
# receive the spawner ([JupyterHub's Spawner reference](https://jupyterhub.readthedocs.io/en/stable/reference/api/spawner.html)).
# Keep the key file readable by the hub only. A hook for the emulator class above, reading the
# handout's CSV (for the real service, read `DASHSCOPE_API_KEY` and `DASHSCOPE_WORKSPACE` per team
# from your secret store instead):

# %%
import csv
from types import SimpleNamespace


def read_keys(handout_csv):
    """Username -> (emulator URL, key): here the handout's rows; a users' secret store on a real hub."""
    with open(handout_csv, newline="") as f:
        return {row["student"]: (row["QWEN_NB_EMULATOR"], row["QWEN_NB_EMULATOR_KEY"]) for row in csv.DictReader(f)}


KEYS = read_keys(files.csv)


def pre_spawn_hook(spawner):
    """In jupyterhub_config.py: c.Spawner.pre_spawn_hook = pre_spawn_hook. This user's key only."""
    url, key = KEYS[spawner.user.name]  # a user without a key gets no server: an error, not someone else's key
    spawner.environment["QWEN_NB_EMULATOR"] = url
    spawner.environment["QWEN_NB_EMULATOR_KEY"] = key


# what the hook gives student-07's server (a stand-in for JupyterHub's spawner object)
spawner = SimpleNamespace(user=SimpleNamespace(name="student-07"), environment={})
pre_spawn_hook(spawner)
print(sorted(spawner.environment), "· their own key:", spawner.environment["QWEN_NB_EMULATOR_KEY"] == me.key)

# %% [markdown]
# ## Recap
#
# * `qwen-nb classroom init` writes a class: a workspace, key and budget per student, a teacher
#   token, and handouts (mode 0600, out of git and notebooks).
# * `qwen-nb emulator --classroom FILE --host 0.0.0.0` serves it to the room and prints the address
#   students use; their `connect()` finds their own workspace from their key.
# * Students cannot see each other's prompts or touch the controls; the teacher sees usage per
#   student and resets one or all (`qwen-nb emulator usage|reset`).
# * On the real service: a sub-workspace and key per team, budgets per workspace and key, one
#   account's rate limits for everyone; on JupyterHub, each user's key through their own spawn.
