"""README.md's Python and magic examples run as written against the default emulator.

Each ```python block runs, in order, in one IPython shell (so ``%load_ext``, ``%%qwen`` and
top-level ``await`` work as in a notebook), with no key configured: ``q.connect()`` finds the
emulator through ``QWEN_NB_EMULATOR``. A block whose first line is ``# not run in tests: ...``
says why it is skipped (a real key, a file of the reader's, a display).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
SKIP = "# not run in tests:"


def python_blocks() -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, re.M | re.S):
        line = text.count("\n", 0, m.start()) + 1
        out.append((line, m.group(1)))
    return out


def test_readme_has_runnable_examples() -> None:
    blocks = python_blocks()
    assert len([b for _, b in blocks if not b.startswith(SKIP)]) >= 6
    assert all(b.startswith(SKIP) for _, b in blocks if "photo.png" in b)


def test_readme_pre_commit_example_names_something_that_exists() -> None:
    text = README.read_text(encoding="utf-8")
    hooks = (README.parent / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert example is not None
    assert "rev: v0.1.0" not in example.group(1)
    hook_id = re.search(r"id: (\S+)", example.group(1))
    assert hook_id is not None and f"id: {hook_id.group(1)}" in hooks


def test_readme_examples_run_against_the_default_emulator(emulator, tmp_path, monkeypatch) -> None:
    pytest.importorskip("ipywidgets")
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    import qwen_nb._default

    for var in list(__import__("os").environ):
        if var == "DASHSCOPE_API_KEY" or (var.startswith("QWEN_NB_") and var.endswith("_API_KEY")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("QWEN_NB_EMULATOR", emulator.url)
    monkeypatch.setenv("QWEN_NB_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("QWEN_NB_LEDGER", str(tmp_path / "usage.sqlite"))
    monkeypatch.chdir(tmp_path)
    emulator.reset()
    before = qwen_nb._default.set_default_session(None)
    shell = InteractiveShell.instance()
    try:
        for line, block in python_blocks():
            if block.startswith(SKIP) or block.lstrip().startswith("def test_"):
                continue
            with capture_output() as cap:
                result = shell.run_cell(block, store_history=False)
            where = f"README.md line {line}:\n{block}\n{cap.stdout}\n{cap.stderr}"
            assert result.success, where + repr(result.error_in_exec or result.error_before_exec)
            assert "Error" not in cap.stderr and "UsageError" not in cap.stdout, where
            shown = cap.stdout + "".join(o.data.get("text/markdown", "") for o in cap.outputs)
            assert "How to fix" not in shown, where
    finally:
        qwen_nb._default.set_default_session(before)
