"""qwen_nb.notebooks: finding and scrubbing API keys in .ipynb files (API and command line)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from qwen_nb.notebooks import (
    Finding,
    NotebookReadError,
    cli_main,
    configured_secrets,
    read_notebook,
    scan_notebook,
    scrub_notebook,
)

KEY = "sk-0123456789abcdef0123456789abcdef"
KEY2 = "sk-fedcba9876543210fedcba9876543210"
MASKED = "sk-…cdef"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_configured_keys(monkeypatch, tmp_path):
    """No keys from the real environment or a .env: each test configures what it needs."""
    for var in list(os.environ):
        if var == "DASHSCOPE_API_KEY" or (var.startswith("QWEN_NB_") and var.endswith("_API_KEY")):
            monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)


def seeded_notebook(key: str = KEY) -> nbformat.NotebookNode:
    """A valid v4 notebook with ``key`` in every place a key can end up."""
    nb = v4.new_notebook()
    code = v4.new_code_cell(f'client = OpenAI(api_key="{key}")', execution_count=1)
    code.metadata["note"] = f"tried {key}"
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0ctEXtComment\x00" + key.encode() + b"\x00IEND"
    code.outputs = [
        v4.new_output("stream", name="stdout", text=f"key is {key}\n"),
        v4.new_output(
            "display_data",
            data={
                "text/plain": f"Profile(key='{key}')",
                "text/html": f"<code>{key}</code>",
                "text/markdown": f"**{key}**",
                "application/json": {"profile": {"key": key}},
                "image/png": base64.b64encode(png).decode(),
            },
        ),
        v4.new_output("execute_result", data={"text/plain": repr(key)}, execution_count=1),
        v4.new_output(
            "error", ename="AuthenticationError", evalue=f"bad key {key}", traceback=[f"\x1b[0;31m{key}\x1b[0m"]
        ),
    ]
    md = v4.new_markdown_cell("![key](attachment:k.txt)", attachments={"k.txt": {"text/plain": key}})
    clean = v4.new_code_cell("import sklearn  # sk-learn, masked sk-…1a2b, sk-learn-contrib-lightning-models")
    clean.outputs = [v4.new_output("stream", name="stdout", text="profile key sk-…cdef (masked)\n")]
    nb.cells = [code, md, clean]
    nb.metadata["qwen_nb"] = {"last_key": key}
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {
            "version_major": 2,
            "version_minor": 0,
            "state": {
                "8c2f0a1e5b": {
                    "model_name": "PasswordModel",
                    "model_module": "@jupyter-widgets/controls",
                    "model_module_version": "2.0.0",
                    "state": {"value": key, "description": "API key"},
                }
            },
        }
    }
    nbformat.validate(nb)
    return nb


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


EXPECTED_PLACES = {
    (None, "metadata.qwen_nb.last_key"),
    (None, "metadata.widgets[application/vnd.jupyter.widget-state+json].state[8c2f0a1e5b].state.value"),
    (0, "metadata.note"),
    (0, "source"),
    (0, "outputs[0].text"),
    (0, "outputs[1].data[text/plain]"),
    (0, "outputs[1].data[text/html]"),
    (0, "outputs[1].data[text/markdown]"),
    (0, "outputs[1].data[application/json].profile.key"),
    (0, "outputs[1].data[image/png](base64)"),
    (0, "outputs[2].data[text/plain]"),
    (0, "outputs[3].evalue"),
    (0, "outputs[3].traceback[0]"),
    (1, "attachments[k.txt][text/plain]"),
}


def test_finds_key_in_every_place():
    findings = scan_notebook(seeded_notebook())
    assert {(f.cell, f.where) for f in findings} == EXPECTED_PLACES
    assert all(f.masked == MASKED and f.reason == "key pattern" for f in findings)


def test_findings_never_show_the_key(tmp_path):
    path = write(seeded_notebook(), tmp_path / "nb.ipynb")
    for f in scan_notebook(path):
        assert KEY not in str(f) and KEY not in repr(f)
        assert str(f).startswith(f"{path}:")
    first = scan_notebook(path)[0]
    assert isinstance(first, Finding)
    assert first.location == f"{path}:notebook:metadata.qwen_nb.last_key"


def test_masked_keys_and_words_are_not_flagged():
    nb = v4.new_notebook()
    nb.cells = [
        v4.new_code_cell("pip install sk-learn scikit-learn  # not sk-learn-contrib-lightning-models either"),
        v4.new_markdown_cell("Your key: sk-…1a2b, or sk-…REDACTED; placeholder sk-xxxxxxxxxxxxxxxxxxxxxxxx"),
        v4.new_code_cell("task-0123456789abcdef0123 risk-0123456789abcdef0123 ask-0123456789abcdef0123"),
    ]
    assert scan_notebook(nb) == []


def test_scrub_fixes_everything_and_stays_valid(tmp_path):
    path = write(seeded_notebook(), tmp_path / "nb.ipynb")
    fixed, n = scrub_notebook(path, write=True)
    assert n == len(EXPECTED_PLACES)
    text = path.read_text(encoding="utf-8")
    assert KEY not in text
    assert MASKED in text  # the masked form replaces the key
    reread = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    nbformat.validate(reread)
    assert reread.nbformat == 4
    assert scan_notebook(path) == []
    # the payload that held the key in binary form is dropped, the rest of the bundle kept
    bundle = reread.cells[0].outputs[1].data
    assert "image/png" not in bundle and bundle["text/html"] == f"<code>{MASKED}</code>"
    assert reread.cells[0].source == f'client = OpenAI(api_key="{MASKED}")'
    # the clean cell is untouched
    assert reread.cells[2].source.startswith("import sklearn  # sk-learn")


def test_scrub_without_write_leaves_file_alone(tmp_path):
    path = write(seeded_notebook(), tmp_path / "nb.ipynb")
    before = path.read_bytes()
    fixed, n = scrub_notebook(path)
    assert n > 0 and scan_notebook(fixed) == []
    assert path.read_bytes() == before


def test_key_in_dict_name_is_found_and_renamed():
    nb = v4.new_notebook()
    nb.metadata["cache"] = {KEY: "x"}
    assert [f.where for f in scan_notebook(nb)] == [f"metadata.cache[{MASKED}](name)"]
    fixed, n = scrub_notebook(nb)
    assert n == 1 and fixed.metadata["cache"] == {MASKED: "x"}


def test_env_configured_values_found_even_if_not_sk(monkeypatch):
    monkeypatch.setenv("QWEN_NB_TEAM_A_API_KEY", "plainvalue-9f8e7d6c")
    monkeypatch.setenv("DASHSCOPE_API_KEY", "'abcdEFGH12345678'\n")  # quotes / newline stripped
    monkeypatch.setenv("QWEN_NB_SHORT_API_KEY", "abc")  # too short to search for
    nb = v4.new_notebook()
    nb.cells = [
        v4.new_code_cell("x = 'plainvalue-9f8e7d6c'"),
        v4.new_markdown_cell("abc abc: abcdEFGH12345678"),
    ]
    findings = scan_notebook(nb)
    assert [(f.cell, f.masked, f.reason) for f in findings] == [
        (0, "…7d6c", "QWEN_NB_TEAM_A_API_KEY"),
        (1, "…5678", "DASHSCOPE_API_KEY"),
    ]
    assert "value of QWEN_NB_TEAM_A_API_KEY" in str(findings[0])
    assert scan_notebook(nb, use_env=False) == []
    fixed, n = scrub_notebook(nb)
    assert n == 2 and fixed.cells[0].source == "x = '…7d6c'"


def test_extra_secrets_and_dotenv(tmp_path):
    env_file = tmp_path / "team.env"
    env_file.write_text("QWEN_NB_LAB_API_KEY=dotenv-secret-123456\nOTHER=ignored-value-123456\n")
    assert configured_secrets(env={}, dotenv_path=env_file) == {"dotenv-secret-123456": "QWEN_NB_LAB_API_KEY"}
    nb = v4.new_notebook()
    nb.cells = [v4.new_raw_cell("dotenv-secret-123456 ignored-value-123456 given-secret-0000")]
    found = scan_notebook(nb, extra_secrets=["given-secret-0000"], use_env=False)
    assert [f.reason for f in found] == ["a given secret"]


def test_malformed_files_raise_clear_errors(tmp_path):
    bad_json = tmp_path / "bad.ipynb"
    bad_json.write_text('{"cells": [,]}')
    with pytest.raises(NotebookReadError, match=r"bad\.ipynb: not valid JSON \(line 1, column 12"):
        read_notebook(bad_json)
    not_nb = tmp_path / "data.ipynb"
    not_nb.write_text('{"hello": "world"}')
    with pytest.raises(NotebookReadError, match="valid JSON but not a Jupyter notebook"):
        read_notebook(not_nb)
    with pytest.raises(NotebookReadError, match="not a Jupyter notebook"):
        scan_notebook(str(not_nb))


# -- command line ------------------------------------------------------------------------


def test_cli_finds_and_fixes(tmp_path, capsys):
    path = write(seeded_notebook(), tmp_path / "work" / "nb.ipynb")
    checkpoint = write(seeded_notebook(), tmp_path / "work" / ".ipynb_checkpoints" / "nb-checkpoint.ipynb")
    clean = v4.new_notebook()
    clean.cells = [v4.new_code_cell("print('hello')")]
    write(clean, tmp_path / "work" / "sub" / "clean.ipynb")

    assert cli_main([str(tmp_path / "work")]) == 1
    out = capsys.readouterr().out
    assert KEY not in out
    assert f"{path}:cell 0:outputs[1].data[text/plain]: API key {MASKED}" in out
    # the checkpoint copy holds the key too: it is scanned and named
    assert f"{checkpoint}:cell 0:outputs[1].data[text/plain]: API key {MASKED}" in out
    assert f"{2 * len(EXPECTED_PLACES)} API key(s) in 2 of 3 notebooks (1 checkpoint)" in out

    assert cli_main(["--fix", str(path)]) == 1  # files changed: fail so they get re-staged
    assert "review and re-stage" in capsys.readouterr().out
    nbformat.validate(nbformat.read(str(path), as_version=4))
    # fixing the notebook alone leaves the checkpoint's copy: the folder is not reported clean
    assert cli_main([str(tmp_path / "work")]) == 1
    assert f"{len(EXPECTED_PLACES)} API key(s) in 1 of 3 notebooks (1 checkpoint)" in capsys.readouterr().out
    assert cli_main(["--fix", str(tmp_path / "work")]) == 1
    capsys.readouterr()
    assert KEY not in checkpoint.read_text(encoding="utf-8")
    assert cli_main([str(tmp_path / "work")]) == 0
    assert "No API keys found in 3 notebooks (1 checkpoint)" in capsys.readouterr().out
    assert cli_main(["--quiet", str(tmp_path / "work")]) == 0
    assert capsys.readouterr().out == ""


def test_cli_quiet_prints_only_summary(tmp_path, capsys):
    path = write(seeded_notebook(), tmp_path / "nb.ipynb")
    assert cli_main(["-q", str(path)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"{len(EXPECTED_PLACES)} API key(s) in 1 of 1 notebook (run with --fix to scrub)."]


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"cells": [', "not valid JSON"),
        (b'["a", "list"]', "valid JSON but not a Jupyter notebook"),
        (b'{"nbformat": 99, "nbformat_minor": 0, "cells": []}', "not a readable notebook"),
        (b"\xff\xfe\x00garbage", "not UTF-8 text"),
    ],
)
def test_cli_malformed_exit_2_without_traceback(tmp_path, capsys, content, message):
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content)
    assert cli_main(["--fix", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and message in err
    assert "Traceback" not in err
    assert path.read_bytes() == content


def test_cli_usage_errors(tmp_path, capsys):
    assert cli_main([]) == 2
    assert "usage:" in capsys.readouterr().err
    assert cli_main([str(tmp_path / "missing.ipynb")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert cli_main(["--dotenv", str(tmp_path / "nope.env"), str(tmp_path)]) == 2


def test_cli_subprocess_end_to_end(tmp_path):
    """The installed console command, with a non-sk key configured only in the child's environment."""
    nb = v4.new_notebook()
    nb.cells = [v4.new_code_cell("print(token)")]
    nb.cells[0].outputs = [v4.new_output("stream", name="stdout", text="token-secret-5555\n")]
    path = write(nb, tmp_path / "nb.ipynb")
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    exe = ROOT / ".venv" / "bin" / "qwen-nb"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "qwen_nb.cli"]
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k}
    env["QWEN_NB_CI_API_KEY"] = "token-secret-5555"

    run = subprocess.run([*cmd, "check-notebooks", str(path)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert f"{path}:cell 0:outputs[0].text: API key …5555 (value of QWEN_NB_CI_API_KEY)" in run.stdout
    assert "token-secret-5555" not in run.stdout + run.stderr

    run = subprocess.run([*cmd, "check-notebooks", str(broken)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 2
    assert "not valid JSON" in run.stderr and "Traceback" not in run.stderr
    assert broken.read_text() == "{not json"


def test_pre_commit_hook_definition():
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert "id: qwen-nb-check-notebooks" in text
    assert "entry: qwen-nb check-notebooks" in text
    assert "language: python" in text
    assert "files: \\.ipynb$" in text
    # the pattern in the hook definition is a valid regex that matches notebooks only
    import re

    pattern = re.search(r"files:\s*(\S+)", text).group(1).strip("'\"")
    assert re.search(pattern, "notebooks/intro.ipynb") and not re.search(pattern, "intro.py")


def test_scan_speed_is_reasonable_on_a_big_notebook():
    """Smoke check, not a timing assert: a 500-cell notebook scans and finds its one key."""
    nb = v4.new_notebook()
    for i in range(500):
        cell = v4.new_code_cell(f"x{i} = {i}\nprint('row', x{i})" * 3, execution_count=i)
        cell.outputs = [
            v4.new_output("stream", name="stdout", text="row 1\n" * 20),
            v4.new_output("execute_result", data={"text/plain": str(i), "text/html": f"<b>{i}</b>"}, execution_count=i),
        ]
        nb.cells.append(cell)
    nb.cells[321].outputs[1].data["text/html"] = json.dumps({"key": KEY2})
    findings = scan_notebook(nb)
    assert [(f.cell, f.where) for f in findings] == [(321, "outputs[1].data[text/html]")]


def test_keys_after_escapes_and_underscores_are_found():
    nb = v4.new_notebook()
    nb.cells = [
        v4.new_code_cell("s = 'header\\\\n" + KEY + "'"),  # a literal backslash-n before the key
        v4.new_code_cell("MY_" + KEY2),
        v4.new_code_cell("x = '\x1b[1;31m" + KEY + "\x1b[0m'"),
    ]
    assert [f.cell for f in scan_notebook(nb)] == [0, 1, 2]


def test_emulator_demo_keys_are_not_reported_unless_strict(tmp_path, capsys):
    from qwen_nb.emulator.config import demo_keys

    demo = sorted(demo_keys())[0]
    nb = v4.new_notebook()
    nb.cells = [v4.new_code_cell(f"emulator key: {demo}")]
    assert scan_notebook(nb) == []
    assert [f.cell for f in scan_notebook(nb, allow_demo_keys=False)] == [0]
    path = write(nb, tmp_path / "demo.ipynb")
    assert cli_main([str(path)]) == 0
    assert cli_main(["--strict", str(path)]) == 1
    assert demo not in capsys.readouterr().out


def test_a_named_pipe_is_refused_not_read(tmp_path, capsys):
    """check-notebooks on a FIFO says it is not a file instead of blocking on the read."""
    import os

    from qwen_nb.cli import main

    fifo = tmp_path / "pipe.ipynb"
    os.mkfifo(fifo)
    assert main(["check-notebooks", str(fifo)]) == 2
    assert "not a regular file" in capsys.readouterr().err
