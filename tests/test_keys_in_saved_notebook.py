"""A key typed into KeyEntry never reaches a notebook saved with widget state.

The notebook is built with nbformat, uses every widget (a key entered through KeyEntry,
calls through the Playground against an emulator started by this test), is executed by
nbclient with ``store_widget_state=True`` and saved; then the file is searched for the key
and for any fragment of it longer than the masked form shows.
"""

from __future__ import annotations

import json
import secrets
import string

import nbformat
from nbclient import NotebookClient

SETUP = """\
import os
from qwen_nb.emulator.config import default_profiles
from qwen_nb.ledger import Ledger
from qwen_nb.emulator.hosts import emulator_regions
from qwen_nb.session import Session

url = os.environ["QWEN_NB_EMULATOR"]
s = Session(default_profiles(url), regions=emulator_regions(url), ledger=Ledger(":memory:"), max_retries=1)
s
"""

PICKERS = """\
from qwen_nb.widgets import ApiToggle, KeyEntry, ModelPicker, ParamsBox, Playground, ProfilePicker, RegionPicker
region = RegionPicker(s)
profile = ProfilePicker(s, region=region)
model = ModelPicker(s, profile=profile)
display(region, profile, model, ApiToggle(s), ParamsBox(s, model=model))
model.wait(10)
print(model.source, model.value)
"""

KEY_ENTRY = """\
entry = KeyEntry(s)
display(entry)
entry.name.value = "mine"
entry.key.value = os.environ.pop("WIDGET_TEST_KEY")  # as if typed into the box
entry.button.click()
print(s.get_profile("mine"))
"""

PLAYGROUND = """\
pg = Playground(s)
display(pg)
pg.send("Who are you?")
pg.wait(20)
print(pg.answer_text[:9], pg.busy, pg.last_error)
pg.profile.value = "mine"          # the entered (unknown) key: a guided error, not a traceback
pg.send("Hello")
pg.wait(20)
print(type(pg.last_error).__name__)
pg.code_toggle.value = True
pg.key_entry.name.value = "again"
pg.key_entry.key.value = os.environ["WIDGET_TEST_KEY2"]
pg.key_entry.button.click()
print([label for label, _ in pg.profile.options])
"""

USAGE = """\
from qwen_nb.widgets import UsagePanel
UsagePanel(s)
"""


def fake_key() -> str:
    """A valid-looking key made of mixed-case letters and digits (so fragments cannot occur by chance)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        body = "".join(secrets.choice(alphabet) for _ in range(32))
        if any(c.isupper() for c in body) and any(c.islower() for c in body):
            return "sk-" + body


def fragments(key: str, size: int = 7) -> set[str]:
    """Every piece of ``key`` of ``size`` characters: longer than the 4 a masked key shows."""
    return {key[i : i + size] for i in range(len(key) - size + 1)}


def test_entered_keys_are_not_in_the_saved_notebook(tmp_path, emulator, monkeypatch):
    key, key2 = fake_key(), fake_key()
    monkeypatch.setenv("QWEN_NB_EMULATOR", emulator.url)
    monkeypatch.setenv("WIDGET_TEST_KEY", key)
    monkeypatch.setenv("WIDGET_TEST_KEY2", key2)
    for var in ("DASHSCOPE_API_KEY", "DASHSCOPE_WORKSPACE"):
        monkeypatch.delenv(var, raising=False)

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (SETUP, PICKERS, KEY_ENTRY, PLAYGROUND, USAGE)]
    client = NotebookClient(
        nb, kernel_name="python3", timeout=90, store_widget_state=True, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    path = tmp_path / "widgets.ipynb"
    nbformat.write(nb, path)
    text = path.read_text(encoding="utf-8")

    # the notebook really ran and really stored widget state
    outputs = "".join(
        o.get("text", "") + json.dumps(o.get("data", {})) for c in nb.cells for o in c.get("outputs", [])
    )
    assert "error" not in [o.get("output_type") for c in nb.cells for o in c.get("outputs", [])], outputs
    assert "workspace" in outputs  # the model list came from the workspace
    assert f"key='sk-…{key[-4:]}'" in outputs  # profile added with the entered key, shown masked
    assert "I am Qwen" in outputs
    assert "InvalidKeyError" in outputs
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    passwords = [m for m in state.values() if m["model_name"] == "PasswordModel"]
    assert len(passwords) == 2 and all(m["state"].get("value", "") == "" for m in passwords)
    assert f"sk-…{key2[-4:]}" in text  # the picker lists the second key, masked

    for k in (key, key2):
        assert k not in text
        leaked = [f for f in fragments(k) if f in text]
        assert not leaked, f"fragments of the key found in the saved notebook: {len(leaked)}"
