"""The first hour: notebooks recorded with plain Jupyter pass ``pytest --nbval`` with no flag,
magics as people type them, and every bad input a newcomer met gets a guided InputError."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from qwen_nb.errors import InputError

KEY_VARS = ("DASHSCOPE_API_KEY", "QWEN_NB_EMULATOR", "PYTEST_ADDOPTS")


def _clean_env() -> dict[str, str]:
    """This environment without keys or an emulator URL: what a newcomer's shell has."""
    return {
        k: v for k, v in os.environ.items()
        if k not in KEY_VARS and not (k.startswith("QWEN_NB_") and k.endswith("_API_KEY"))
    }


def _record(path: Path, cells: list[str]) -> nbformat.NotebookNode:
    """Run the cells with plain nbclient (no pytest, no plugin, no emulator URL) and save them."""
    from nbclient import NotebookClient

    nb = v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [v4.new_code_cell(src) for src in cells]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute(
        env=_clean_env()
    )
    nbformat.write(nb, str(path))
    return nb


def _nbval(tmp_path: Path, *names: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", *names],
        cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=600,
    )
    return run.stdout + run.stderr


PLAIN = [
    "import qwen_nb as q",
    'r = q.chat("Who are you?")\nprint(r.text)\nr',
    'q.chat("Explain RAG in two sentences", model="qwen-max")',
]
COMPARE_AND_STREAM = [
    "import qwen_nb as q\n%load_ext qwen_nb",
    'q.compare("Explain RAG in two sentences", models=["qwen-plus", "qwen-max"], apis=["openai", "dashscope"])',
    "%%qwen --stream\nTell me a story",
    "%%qwen -s \"Be brief.\" -o answer\nWho are you?",
    "%qwen Who are you?",
    "answer",
]


def test_plain_jupyter_notebook_passes_nbval_with_no_flag(tmp_path: Path) -> None:
    nb = _record(tmp_path / "plain.ipynb", PLAIN)
    assert "started a local Model Studio emulator" in nb.cells[1].outputs[0]["text"]  # the kernel's own
    out = _nbval(tmp_path, "plain.ipynb")
    assert re.search(r"\b3 passed\b", out) and "failed" not in out, out
    assert "qwen-nb: nbval outputs sanitized with qwen-nb's rules" in out, out
    assert "qwen-nb: emulator at http://127.0.0.1:" in out, out


def test_compare_and_streamed_magic_pass_nbval_with_no_flag(tmp_path: Path) -> None:
    nb = _record(tmp_path / "magic.ipynb", COMPARE_AND_STREAM)
    # the streamed cell ends with one ordinary output holding the answer
    streamed = [o for o in nb.cells[2].outputs if o.get("output_type") == "display_data"]
    assert streamed[0]["data"] == {"text/plain": ""} and "text/markdown" in streamed[-1]["data"]
    # "%qwen Who are you?" is a question, not IPython's "?" help
    assert "I am Qwen" in nb.cells[4].outputs[-1]["data"]["text/markdown"]
    outs = []
    for _ in range(2):  # the "fastest" badge moves between runs; every run must still pass
        out = _nbval(tmp_path, "magic.ipynb")
        outs.append(out)
        assert re.search(r"\b6 passed\b", out) and "failed" not in out, out


def test_users_sanitize_file_is_applied_after_the_shipped_rules(tmp_path: Path) -> None:
    _record(tmp_path / "mine.ipynb", ['import random\nprint("lucky", random.random())'])
    (tmp_path / "mine.cfg").write_text("[lucky]\nregex: lucky \\S+\nreplace: lucky <N>\n", encoding="utf-8")
    out = _nbval(tmp_path, "--nbval-sanitize-with=mine.cfg", "mine.ipynb")
    assert re.search(r"\b1 passed\b", out), out
    assert "sanitized with qwen-nb's rules, then mine.cfg" in out, out


# -- magics as people type them ------------------------------------------------------------------


@pytest.fixture
def ip(session):
    from IPython.core.interactiveshell import InteractiveShell

    import qwen_nb._default

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "qwen_nb")
    before = qwen_nb._default.set_default_session(session)
    yield shell
    qwen_nb._default.set_default_session(before)


def _bodies(emu) -> list[dict]:
    return [r.body for r in emu.requests if r.path.endswith(("/chat/completions", "/generation"))]


def _system(body: dict) -> str:
    msgs = body["messages"] if "messages" in body else body["input"]["messages"]
    return next(m["content"] for m in msgs if m["role"] == "system")


def test_quoted_option_values_are_sent_without_the_quotes(ip, emu) -> None:
    from IPython.utils.capture import capture_output

    with capture_output():
        ip.run_cell_magic("qwen", '-s "Be brief." -o answer', "Who are you?")
    assert _system(_bodies(emu)[-1]) == "Be brief."
    with capture_output():
        ip.run_cell_magic("qwen", "-s 'Answer in French.'", "Who are you?")
    assert _system(_bodies(emu)[-1]) == "Answer in French."


def test_unquoted_words_say_how_to_quote(ip, emu) -> None:
    from IPython.utils.capture import capture_output

    with capture_output() as cap:
        ip.run_cell_magic("qwen", "-s Be brief.", "Who are you?")
    assert "unexpected words" in cap.stderr and '-s "Be brief."' in cap.stderr
    assert not _bodies(emu)


def test_line_magic_with_a_question_mark_asks_the_model(ip, emu) -> None:
    from IPython.utils.capture import capture_output

    with capture_output() as cap:
        ip.run_cell("%qwen -m qwen-max What's RAG?")
    body = _bodies(emu)[-1]
    msgs = body["messages"] if "messages" in body else body["input"]["messages"]
    assert msgs[-1]["content"] == "What's RAG?" and body["model"] == "qwen-max"
    assert any("text/markdown" in o.data for o in cap.outputs)


def test_help_transformer_leaves_help_and_cells_alone() -> None:
    from qwen_nb.magics import qwen_help_end

    assert qwen_help_end(["%qwen?\n"]) == ["%qwen?\n"]
    assert qwen_help_end(["%%qwen\n", "%qwen Who?\n"]) == ["%%qwen\n", "%qwen Who?\n"]
    assert qwen_help_end(["x = 1\n", "  %qwen Who are you?\n"]) == [
        "x = 1\n", "  get_ipython().run_line_magic('qwen', 'Who are you?')\n"]
    assert qwen_help_end(["%qwen Who are you\n"]) == ["%qwen Who are you\n"]


# -- snippets ------------------------------------------------------------------------------------


def test_named_profile_snippet_reads_that_profiles_variable(tmp_path: Path) -> None:
    from qwen_nb._profiles import load_profiles
    from qwen_nb.session import Session
    from qwen_nb.snippets import snippet

    env = {"DASHSCOPE_API_KEY": "sk-" + "a" * 32, "QWEN_NB_TEAM_API_KEY": "sk-" + "b" * 32}
    s = Session(load_profiles(env=env))
    team = snippet(profile="team", language="python", session=s).code
    assert 'os.getenv("QWEN_NB_TEAM_API_KEY")' in team and "DASHSCOPE_API_KEY" not in team
    assert "$QWEN_NB_TEAM_API_KEY" in snippet(profile="team", language="curl", session=s).code
    assert 'os.getenv("DASHSCOPE_API_KEY")' in snippet(language="python", session=s).code
    assert env["QWEN_NB_TEAM_API_KEY"] not in str(snippet(profile="team", session=s))


def test_print_snippet_prints_the_code(session, capsys) -> None:
    from qwen_nb.snippets import snippet

    s = snippet(session=session)
    print(s)
    printed = capsys.readouterr().out
    assert "from openai import OpenAI" in printed and "curl" in printed and not printed.startswith("SnippetSet(")


# -- bad input is an InputError before any request ----------------------------------------------


def test_playground_model_typo_is_a_did_you_mean(session, emu) -> None:
    pytest.importorskip("ipywidgets")
    from qwen_nb.widgets import Playground

    with pytest.raises(InputError) as e:
        Playground(session, model="qwen-plsu")
    assert "qwen-plsu" in str(e.value) and "Did you mean 'qwen-plus'?" in str(e.value)
    with pytest.raises(InputError, match="first argument is a Session"):
        Playground(42)  # type: ignore[arg-type]
    assert Playground(session, model="qwen-max").model.value == "qwen-max"
    assert not _bodies(emu)


BAD_CALLS = {
    "nan penalty": (dict(presence_penalty=float("nan")), "finite"),
    "lone surrogate": (dict(prompt="hi \ud800 there"), "lone surrogate"),
    "surrogate in system": (dict(system="be \udcff brief"), "lone surrogate"),
    "surrogate in messages": (dict(prompt=[{"role": "user", "content": [{"type": "text", "text": "\ud83d"}]}]),
                              "lone surrogate"),
    "json_schema 5": (dict(response_format={"type": "json_schema", "json_schema": 5}), "json_schema must be a dict"),
    "ftp image": (dict(model="qwen-vl-plus", images="ftp://example.com/cat.png"), "ftp://"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_call_input_is_guided_before_any_request(session, emu, case: str) -> None:
    kwargs, words = BAD_CALLS[case]
    kwargs = dict(kwargs)
    prompt = kwargs.pop("prompt", "Who are you?")
    # (the emulator is shared: a model-list fetch left running by an earlier test may still arrive)
    calls = [r for r in emu.requests if r.method == "POST"]
    with pytest.raises(InputError) as e:
        session.chat(prompt, **kwargs)
    assert words in str(e.value) and e.value.fix
    assert [r for r in emu.requests if r.method == "POST"] == calls  # no call was sent


def test_bad_session_arguments_are_guided() -> None:
    from qwen_nb.session import Session

    with pytest.raises(InputError, match="mapping of name"):
        Session([1, 2])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="positive number of seconds"):
        Session({}, timeout=0)
