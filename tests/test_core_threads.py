"""Threads and first SDK imports: a first ``import dashscope`` never breaks an ``openai`` call in flight."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

# Run in a fresh interpreter (nothing imported yet): the main thread makes one openai call (so the
# openai SDK is loaded), then one thread keeps calling through openai while another creates the
# dashscope backend (its first import pulls in httpx) and calls through it.
RACE = textwrap.dedent("""
    import os, sys, threading
    from qwen_nb.emulator.config import default_profiles
    from qwen_nb.ledger import Ledger
    from qwen_nb.emulator.hosts import emulator_regions
    from qwen_nb.session import Session

    url = os.environ["QWEN_NB_EMULATOR"]
    s = Session(default_profiles(url), regions=emulator_regions(url), ledger=Ledger(":memory:"), max_retries=0)
    s.chat("hi", api="openai", max_tokens=5)
    assert "dashscope" not in sys.modules
    errors, done, start = [], threading.Event(), threading.Barrier(2)

    def openai_calls():
        try:
            start.wait()
            s.chat("hi", api="openai", max_tokens=5)
            while not done.is_set():
                s.chat("hi", api="openai", max_tokens=5)
        except BaseException as exc:
            errors.append(repr(exc))

    def dashscope_call():
        try:
            start.wait()
            s.chat("hi", api="dashscope", max_tokens=5)
        except BaseException as exc:
            errors.append(repr(exc))
        finally:
            done.set()

    threads = [threading.Thread(target=openai_calls), threading.Thread(target=dashscope_call)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    print(errors)
    sys.exit(1 if errors else 0)
""")


@pytest.mark.parametrize("attempt", range(4))
def test_first_dashscope_import_while_openai_calls_run(emulator, attempt) -> None:
    env = {**os.environ, "QWEN_NB_EMULATOR": emulator.url}
    proc = subprocess.run([sys.executable, "-c", RACE], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]


def test_load_sdk_imports_httpx_first_and_refuses_unknown_apis() -> None:
    code = ("import sys; from qwen_nb.backends import load_sdk; m = load_sdk('openai'); "
            "assert 'httpx' in sys.modules and load_sdk('openai') is m and m.OpenAICompatBackend; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]
    from qwen_nb.backends import load_sdk
    from qwen_nb.errors import InputError

    with pytest.raises(InputError, match="Unknown api 'bogus'"):
        load_sdk("bogus")
