"""The tutorial notebooks as saved: jupytext pairs in sync, recorded, free of keys, ready for nbval.

The notebooks themselves are run by ``pytest --nbval notebooks`` (see the Makefile) and, in the
three key setups, by tests/test_notebooks_keys.py; these checks are static and fast: each
``NN_name.py`` and its ``NN_name.ipynb`` hold the same cells, every code cell was run and has its
outputs recorded, nothing failed, no key (not even an emulator demo key) is saved, every output
nbval cannot compare is tagged, no test machinery shows in learner text, and every tutorial has
its frame (objectives, prerequisites, time, exercises, "What you learned", the service's pages).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from qwen_nb.facts import DOCS
from qwen_nb.notebooks import scan_notebook
from qwen_nb.recording import out_of_sync, pairs

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
NAMES = [p.stem for p in pairs(NOTEBOOKS)]
TUTORIALS = [n for n in NAMES if n[:2] in {f"{i:02d}" for i in range(8)}]
LINK = re.compile(r"\]\((https?://[^)\s]+)\)")


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def test_every_notebook_is_a_pair():
    on_disk = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    assert on_disk == sorted(NAMES), "each notebook needs its jupytext twin NN_name.py (formats: ipynb,py:percent)"
    assert len(TUTORIALS) == 8


def test_readme_lists_every_notebook():
    readme = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    for name in NAMES:
        assert f"({name}.ipynb)" in readme, name


@pytest.mark.parametrize("name", NAMES)
def test_pair_is_in_sync(name):
    why = out_of_sync(NOTEBOOKS / f"{name}.py")
    assert why is None, f"{name}: {why}; run: qwen-nb notebooks record {name}"
    nb = _read(name)
    nbformat.validate(nb)
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
def test_outputs_nbval_cannot_compare_are_tagged_not_commented(name):
    """Widget views carry random model ids: their cells carry the nbval-ignore-output tag."""
    for cell in _read(name).cells:
        assert "NBVAL_" not in cell.source, f"cell {cell.id}: use the nbval-ignore-output tag, not a comment"
        if cell.cell_type != "code":
            continue
        has_widget = any(WIDGET_MIME in out.get("data", {}) for out in cell.outputs)
        if has_widget:
            assert "nbval-ignore-output" in cell.metadata.get("tags", []), f"cell {cell.id} shows a widget"
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
    """The notebooks must run unchanged against the real service: no emulator-only profile names in code
    (a private q.Emulator() made in the cell itself may be addressed by its demo names)."""
    for cell in _read(name).cells:
        if cell.cell_type == "code" and "q.Emulator(" not in cell.source:
            for demo in ("team-a", "team-b", "beijing-lab"):
                assert f'"{demo}"' not in cell.source and f"'{demo}'" not in cell.source, (cell.id, demo)


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_has_its_frame(name):
    cells = _read(name).cells
    first = cells[0].source
    for part in ("**You will learn to**", "**Prerequisites**", "**Time**"):
        assert part in first, f"{name}: the first cell lacks {part}"
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert "## What you learned" in text and "## The service's pages" in text
    assert cells[-1].cell_type == "markdown", "a notebook ends on text (recap, links, next), not on code"
    checks = [c for c in cells if c.cell_type == "code" and re.search(r'^ex\.check\("', c.source, re.M)]
    assert 2 <= len(checks) <= 3, f"{name}: {len(checks)} exercises"
    assert "notebook tests" not in text.lower()


@pytest.mark.parametrize("name", TUTORIALS)
def test_links_to_the_service_are_the_checked_pages(name):
    """Every link to the service's docs is one of qwen_nb.facts.DOCS (checked, one list)."""
    known = {url for _, url in DOCS.values()}
    text = "\n".join(c.source for c in _read(name).cells if c.cell_type == "markdown")
    links = [u for u in LINK.findall(text) if "alibabacloud.com" in u or "aliyun.com" in u]
    assert links, f"{name} links to none of the service's pages"
    assert set(links) <= known, set(links) - known


def test_the_first_call_comes_after_using_your_own_key():
    cells = _read("00_quickstart").cells
    own = next(i for i, c in enumerate(cells) if "## Using your own key" in c.source)
    first_call = next(i for i, c in enumerate(cells) if c.cell_type == "code" and "q.chat(" in c.source)
    assert own < first_call


def test_images_the_notebooks_show_are_committed():
    for name in NAMES:
        for cell in _read(name).cells:
            for src in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", cell.source if cell.cell_type == "markdown" else ""):
                assert (NOTEBOOKS / src).is_file(), f"{name}: {src} missing"
