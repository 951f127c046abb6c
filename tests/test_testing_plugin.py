"""qwen_nb.testing: the pytest plugin's fixtures, its emulator start for nbval runs, the sanitize rules."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from qwen_nb.testing import ENV_VAR, key_configured, sanitize_file

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _no_key_no_emulator(monkeypatch):
    """Runs inside these tests must decide from a known environment: no key, no emulator URL."""
    for var in list(os.environ):
        if var in ("DASHSCOPE_API_KEY", ENV_VAR) or (var.startswith("QWEN_NB_") and var.endswith("_API_KEY")):
            monkeypatch.delenv(var)


def _clean_env() -> dict[str, str]:
    drop = ("DASHSCOPE_API_KEY", ENV_VAR, "PYTEST_ADDOPTS")
    return {k: v for k, v in os.environ.items() if k not in drop and not (k.startswith("QWEN_NB_") and "API_KEY" in k)}


# -- fixtures ----------------------------------------------------------------------------------


def test_fixtures_in_a_test_file(pytester):
    pytester.makepyfile(
        """
        import os

        def test_emulator(qwen_emulator):
            assert qwen_emulator.url.startswith("http://127.0.0.1:")
            assert "default" in qwen_emulator.profiles()
            # a plain run does not export the variable: only nbval runs (or --qwen-emulator) do
            assert "QWEN_NB_EMULATOR" not in os.environ

        def test_chat(qwen_session, qwen_emulator):
            result = qwen_session.chat("Who are you?")
            assert result.text.startswith("I am Qwen")
            assert qwen_session.on_emulator
            assert len(qwen_emulator.requests) == 1
            assert qwen_session.ledger.spent("default") > 0  # recorded in the in-memory ledger

        def test_emulator_reset_between_tests(qwen_session, qwen_emulator):
            assert qwen_emulator.requests == []
            assert qwen_session.ledger.spent("default") == 0  # a fresh in-memory ledger per test

        def test_same_emulator_for_the_session(qwen_emulator, request):
            assert request.getfixturevalue("qwen_emulator") is qwen_emulator
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=4)
    assert "qwen-nb:" not in result.stdout.str()  # nothing to say on a plain run


def test_forced_on_exports_the_url_and_reuses_it(pytester):
    pytester.makepyfile(
        """
        import os, urllib.request

        def test_exported(qwen_emulator):
            url = os.environ["QWEN_NB_EMULATOR"]
            assert url == qwen_emulator.url  # the fixture reuses the emulator the plugin started
            assert url.startswith("http://127.0.0.1:")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio", "--qwen-emulator")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["qwen-nb: emulator at http://127.0.0.1:* exported as QWEN_NB_EMULATOR (forced on)"])
    assert ENV_VAR not in os.environ  # removed again at the end of the inner run


@pytest.mark.parametrize(
    "ini, args, header",
    [
        ("qwen_emulator = false", ["--nbval"], "qwen-nb: emulator off (qwen_emulator = false)"),
        ("", ["--nbval", "--no-qwen-emulator"], "qwen-nb: emulator off (qwen_emulator = false)"),
        ("", ["--nbval-lax", "--qwen-emulator", "--no-qwen-emulator"], "qwen-nb: emulator off*"),
    ],
)
def test_switched_off(pytester, ini, args, header):
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("import os\n\ndef test_off():\n    assert 'QWEN_NB_EMULATOR' not in os.environ\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio", *args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([header])


def test_auto_with_nbval_starts_and_with_a_key_does_not(pytester, monkeypatch):
    pytester.makepyfile("import os\n\ndef test_url():\n    assert os.environ['QWEN_NB_EMULATOR']\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio", "--nbval")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["qwen-nb: emulator at http://127.0.0.1:* (nbval run without a key)"])

    monkeypatch.setenv("QWEN_NB_TEAM_API_KEY", "sk-0123456789abcdef0123456789abcdef")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio", "--nbval")
    result.assert_outcomes(failed=1)  # the variable is not exported: the real service would be used
    result.stdout.fnmatch_lines(["qwen-nb: a Model Studio key is configured: notebooks call the real service"])


def test_existing_emulator_url_is_respected(pytester, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "http://127.0.0.1:9")
    pytester.makepyfile("import os\n\ndef test_url():\n    assert os.environ['QWEN_NB_EMULATOR'] == 'http://127.0.0.1:9'\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio", "--qwen-emulator")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["qwen-nb: using the emulator at http://127.0.0.1:9 (QWEN_NB_EMULATOR)"])


def test_bad_ini_value_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\nqwen_emulator = maybe\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*qwen_emulator = 'maybe': use auto, true or false*"])


def test_key_configured_reads_env_and_dotenv(tmp_path):
    assert not key_configured({}, dotenv_path=tmp_path / "missing.env")
    assert key_configured({"DASHSCOPE_API_KEY": "sk-x"}, dotenv_path=tmp_path / "missing.env")
    assert not key_configured({"DASHSCOPE_API_KEY": "  "}, dotenv_path=tmp_path / "missing.env")
    env_file = tmp_path / ".env"
    env_file.write_text("QWEN_NB_LAB_API_KEY=sk-0123456789abcdef\n")
    assert key_configured({}, dotenv_path=env_file)


# -- sanitize rules ------------------------------------------------------------------------------


def _sanitize(text: str) -> str:
    from nbval.plugin import get_sanitize_patterns

    for regex, replace in get_sanitize_patterns(Path(sanitize_file()).read_text(encoding="utf-8")):
        text = re.sub(regex, replace, text)
    return text


def test_sanitize_file_is_shipped_and_parsed_by_nbval():
    from nbval.plugin import get_sanitize_patterns

    path = Path(sanitize_file())
    assert path.is_file() and path.parent.name == "data"
    patterns = get_sanitize_patterns(path.read_text(encoding="utf-8"))
    assert len(patterns) >= 10
    for regex, _ in patterns:
        re.compile(regex)


@pytest.mark.parametrize(
    "first, second, expected",
    [
        ("id chatcmpl-3f2a9c1b-0d4e-4f5a-8b6c-7d8e9f0a1b2c", "id chatcmpl-0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
         "id chatcmpl-<ID>"),
        ("(HTTP 429 Throttling; request id 7f7e0c1d2b3a4958)", "(HTTP 429 Throttling; request id 0011aabbccdd)",
         "(HTTP 429 Throttling; request id <ID>)"),
        ("qwen-plus · 12 in · 34 out · 46 total · 123 ms · ≈0.000012 USD",
         "qwen-plus · 12 in · 34 out · 46 total · 7 ms · ≈0.000012 USD",
         "qwen-plus · 12 in · 34 out · 46 total · <N> ms · ≈<COST> USD"),
        ("took 0.123 s", "took 12.5 s", "took <N> s"),
        ("at 2025-11-25T09:02:11.123Z", "at 2024-01-02 23:59:59", "at <TIMESTAMP>"),
        ("Using the emulator at http://127.0.0.1:53211", "Using the emulator at http://127.0.0.1:8765",
         "Using the emulator at http://127.0.0.1:<PORT>"),
        ("<Session object at 0x7f3a2b1c0d90>", "<Session object at 0x7fa0011e2e50>", "<Session object at 0x<ADDR>>"),
        ("ChatResult(request_id='3f2a9c1b-0d4e-4f5a-8b6c-7d8e9f0a1b2c', latency=0.01234)",
         "ChatResult(request_id='0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', latency=1.5)",
         "ChatResult(request_id='<UUID>', latency=<N>)"),
        ('{"created": 1732525331, "request_id": "a1b2c3d4e5f6a7b8"}',
         '{"created": 1732525999, "request_id": "ffeeddccbbaa9988"}',
         '{"created": <EPOCH>, "request_id": "<ID>"}'),
        ("/tmp/ipykernel_1234/567890.py:3: UserWarning", "/tmp/ipykernel_99/12.py:3: UserWarning",
         "<CELL>:3: UserWarning"),
    ],
)
def test_sanitize_rules_make_varying_outputs_equal(first, second, expected):
    assert first != second
    assert _sanitize(first) == _sanitize(second) == expected


def test_sanitize_rules_keep_deterministic_text():
    text = "I am Qwen, a large language model. qwen-plus · default (ap-southeast-1) · 12 in · 34 out · 46 total"
    assert _sanitize(text) == text


# -- a notebook under nbval, with the emulator started by the plugin -----------------------------


CELLS = [
    'import os\nprint(os.environ["QWEN_NB_EMULATOR"])',  # KeyError unless the plugin exported it
    'import qwen_nb\nr = qwen_nb.chat("Who are you?")\nprint(r.text)',
    "r",
]


def _record(emulator, path: Path) -> nbformat.NotebookNode:
    """Execute the notebook once against ``emulator`` and save it with its outputs."""
    from nbclient import NotebookClient

    nb = v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [v4.new_code_cell(src) for src in CELLS]
    env = dict(_clean_env(), **{ENV_VAR: emulator.url})
    client = NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)  # the kernel's environment: no key, the emulator's URL
    nbformat.write(nb, str(path))
    return nb


def test_notebook_under_nbval_uses_the_plugins_emulator(emulator, tmp_path):
    good = tmp_path / "chat.ipynb"
    nb = _record(emulator, good)
    stdout = ["".join(o.text for o in c.outputs if o.get("name") == "stdout") for c in nb.cells]
    assert stdout[0].strip() == emulator.url
    assert stdout[1].splitlines()[-1].startswith("I am Qwen")  # after the one-time emulator notice
    assert any("text/markdown" in o.get("data", {}) for o in nb.cells[2].outputs)

    tampered = copy.deepcopy(nb)
    for out in tampered.cells[1].outputs:
        if out.get("name") == "stdout":
            out["text"] = out["text"].replace("I am Qwen", "I am someone else")
    nbformat.write(tampered, str(tmp_path / "tampered.ipynb"))

    run = subprocess.run(
        # "--opt=PATH" in one word: a separate PATH argument would also count for pytest's rootdir search
        [sys.executable, "-m", "pytest", "--nbval", "-p", "no:cacheprovider", "-p", "no:asyncio",
         f"--nbval-sanitize-with={sanitize_file()}", "-rf", "chat.ipynb", "tampered.ipynb"],
        cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=240,
    )
    out = run.stdout + run.stderr
    assert "qwen-nb: emulator at http://127.0.0.1:" in out, out
    # the fresh run (another emulator, another port, other request ids and latencies) matches the
    # recording once sanitized; the tampered recording is caught
    assert re.search(r"\b1 failed, 5 passed\b", out), out
    assert re.search(r"^chat\.ipynb \.\.\. ", out, re.M), out
    assert "FAILED tampered.ipynb::Cell 1" in out, out
