"""``qwen-nb notebooks record|check``: jupytext pairs synced, executed on a fresh emulator, keys refused."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("jupytext")
pytest.importorskip("nbclient")

from qwen_nb.errors import InputError  # noqa: E402
from qwen_nb.recording import cli_main, is_pair_source, out_of_sync, pairs, record  # noqa: E402

HEADER = """# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---
"""


def _pair(folder: Path, name: str, body: str) -> Path:
    py = folder / f"{name}.py"
    py.write_text(HEADER + body, encoding="utf-8")
    return py


def test_record_writes_the_ipynb_runs_it_on_the_emulator_and_check_agrees(tmp_path, capsys):
    py = _pair(tmp_path, "01_demo", '\n# %% [markdown]\n# Hello\n\n# %% tags=["nbval-ignore-output"]\n'
               'import os, qwen_nb as q\nprint(os.environ.get("QWEN_NB_EMULATOR", "")[:7], q.chat("Say hello").text)\n')
    (tmp_path / "helper.py").write_text("X = 1\n")  # not a pair
    assert pairs(tmp_path) == [py] and not is_pair_source(tmp_path / "helper.py")
    assert cli_main(["check", "--dir", str(tmp_path)]) == 1  # no .ipynb yet
    record([py], log=lambda *_: None)
    import nbformat

    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    out = nb.cells[1].outputs[-1]["text"]
    assert "http://" in out and "Hello!" in out
    assert nb.cells[1].metadata["tags"] == ["nbval-ignore-output"] and nb.cells[1].id == "nb01-01"
    assert out_of_sync(py) is None and cli_main(["check", "--dir", str(tmp_path), "01"]) == 0
    py.write_text(py.read_text() + "\n# %%\n1 + 1\n")
    assert "differ" in out_of_sync(py) or "cells" in out_of_sync(py)
    capsys.readouterr()


def test_record_refuses_a_notebook_that_prints_a_key(tmp_path):
    py = _pair(tmp_path, "02_leak", '\n# %%\nprint("sk-" + "0123456789abcdef0123456789abcdef")\n')
    with pytest.raises(InputError, match="key-like"):
        record([py], log=lambda *_: None)
    assert not py.with_suffix(".ipynb").exists()


def test_unknown_names_are_refused_with_the_known_ones(tmp_path):
    _pair(tmp_path, "03_x", "\n# %%\n1\n")
    with pytest.raises(InputError, match="03_x"):
        pairs(tmp_path, ["99"])
