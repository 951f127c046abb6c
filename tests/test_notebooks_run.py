"""The tutorial notebooks as saved: generated, executed, free of keys, ready for nbval.

The notebooks themselves are run by ``pytest --nbval notebooks`` (see the Makefile); these
checks are static and fast: the saved notebooks match their source in
scripts/build_notebooks.py, every code cell was run and has its outputs recorded, nothing
failed, no key (not even an emulator demo key) is saved, and every output nbval cannot
compare is marked to be ignored.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest

from qwen_nb.notebooks import scan_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
IGNORED = re.compile(r"^\s*#\s*NBVAL_IGNORE_OUTPUT\s*$", re.MULTILINE)


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "scripts" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


BUILDER = _builder()
NAMES = list(BUILDER.NOTEBOOKS)


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def _ignored(cell: nbformat.NotebookNode) -> bool:
    return bool(IGNORED.search(cell.source)) or "nbval-ignore-output" in cell.metadata.get("tags", [])


def test_the_folder_holds_exactly_the_generated_notebooks():
    # jupytext pairs (NN_name.py next to NN_name.ipynb) are written by hand, not by the generator
    on_disk = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb") if not p.with_suffix(".py").exists())
    assert on_disk == sorted(NAMES)
    assert [n[:2] for n in NAMES] == [f"{i:02d}" for i in range(len(NAMES))]


def test_readme_lists_every_notebook():
    readme = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    for name in NAMES:
        assert f"({name}.ipynb)" in readme, name


@pytest.mark.parametrize("name", NAMES)
def test_saved_cells_match_the_generator(name):
    nb = _read(name)
    nbformat.validate(nb)
    expected = BUILDER.build(name, BUILDER.NOTEBOOKS[name])
    assert [(c.cell_type, c.id, c.source) for c in nb.cells] == [
        (c.cell_type, c.id, c.source) for c in expected.cells
    ], "notebook edited by hand? run: .venv/bin/python scripts/build_notebooks.py"
    assert [c.metadata.get("tags", []) for c in nb.cells] == [c.metadata.get("tags", []) for c in expected.cells]
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", NAMES)
def test_every_code_cell_ran_in_order_without_errors(name):
    code = [c for c in _read(name).cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "not executed top to bottom"
    assert sum(len(c.outputs) for c in code) >= len(code) // 2, "outputs missing: were they recorded?"
    for i, cell in enumerate(code):
        for out in cell.outputs:
            assert out.output_type != "error", f"code cell {i} failed: {out.get('ename')}: {out.get('evalue')}"
            assert not (out.output_type == "stream" and out.name == "stderr"), (
                f"code cell {i} wrote to stderr (a warning?): {out.text[:200]!r}"
            )


@pytest.mark.parametrize("name", NAMES)
def test_no_key_is_saved_not_even_a_demo_key(name):
    findings = scan_notebook(NOTEBOOKS / f"{name}.ipynb", allow_demo_keys=False)
    assert findings == [], [str(f) for f in findings]


@pytest.mark.parametrize("name", NAMES)
def test_outputs_nbval_cannot_compare_are_marked(name):
    """Widget views carry random model ids: their cells must be ignored by nbval."""
    for cell in _read(name).cells:
        if cell.cell_type != "code":
            continue
        has_widget = any(WIDGET_MIME in out.get("data", {}) for out in cell.outputs)
        if has_widget:
            assert _ignored(cell), f"cell {cell.id} shows a widget but is not marked NBVAL_IGNORE_OUTPUT"
        assert "NBVAL_SKIP" not in cell.source, f"cell {cell.id} is skipped by nbval"
        assert "nbval-skip" not in cell.metadata.get("tags", [])


@pytest.mark.parametrize("name", NAMES)
def test_recorded_outputs_hold_no_per_run_identifiers(name):
    """Ports and request ids are saved as the sanitize placeholders, so rebuilds diff cleanly."""
    nb = _read(name)
    text = nbformat.writes(nb)
    assert not re.search(r"127\.0\.0\.1:\d", text)
    assert not re.search(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", text)
    assert "widgets" not in nb.metadata, "widget state saved: it changes on every run"


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_pick_profiles_without_hard_coding_emulator_names(name):
    """The notebooks must run unchanged against the real service: no emulator-only profile names in code."""
    for cell in _read(name).cells:
        if cell.cell_type == "code":
            for demo in ("team-a", "team-b", "beijing-lab"):
                assert f'"{demo}"' not in cell.source and f"'{demo}'" not in cell.source, (cell.id, demo)
