"""compare(): a grid of calls over the emulator, one failing cell among good ones."""

from __future__ import annotations

import threading

import pytest

import qwen_nb._default
from qwen_nb._compare import CompareResult, compare, markdownish
from qwen_nb.errors import InputError, ModelNotGrantedError


def test_grid_is_models_by_profiles_by_apis_in_order(session, emu) -> None:
    res = compare(
        "Who are you?",
        models=["qwen-plus", "qwen-flash"],
        profiles=["default", "team-a"],
        apis=["openai", "dashscope"],
        session=session,
    )
    assert isinstance(res, CompareResult) and len(res) == 8
    coords = [(c.model, c.profile, c.api) for c in res.cells]
    assert coords[0] == ("qwen-plus", "default", "openai") and coords[-1] == ("qwen-flash", "team-a", "dashscope")
    for c in res.cells:
        assert c.ok and c.result.text.startswith("I am Qwen"), (c.model, c.profile, c.api, c.error)
    assert {(r.model, r.profile, r.api) for r in res.results} == set(coords)
    assert len(session.ledger) == 8  # every cell went through the session and its ledger
    paths = [r.path for r in emu.requests]
    assert sum("/compatible-mode/" in p for p in paths) == 4 and sum("/api/v1/" in p for p in paths) == 4


def test_one_failed_cell_shows_its_guided_error_and_the_rest_complete(session, emu) -> None:
    res = compare("Who are you?", models=["qwen-plus", "qwen-max"], profiles=["team-a", "default"], session=session)
    bad = [c for c in res.cells if not c.ok]
    assert [(c.model, c.profile) for c in bad] == [("qwen-max", "team-a")]
    assert isinstance(bad[0].error, ModelNotGrantedError) and len(res.ok) == 3
    assert isinstance(res.results[2], ModelNotGrantedError)  # grid order kept
    page = res._repr_html_()
    assert "ModelNotGrantedError" in page and "How to fix:" in page and page.count("I am Qwen") == 3
    rows = res.to_rows()
    assert rows[2]["ok"] is False and rows[2]["error_code"] and rows[2]["fix"]
    assert rows[0]["ok"] and rows[0]["total_tokens"] > 0 and rows[0]["latency"] > 0
    everything = page + res._repr_markdown_() + repr(res) + repr(rows)
    for p in emu.profiles().values():
        assert p.key not in everything


def test_html_shows_tokens_and_cost_and_escapes_answers(session) -> None:
    res = compare("Who are you?", models=["qwen-plus", "qwen-max"], session=session)
    page = res._repr_html_()
    # tokens and cost per cell; no timings or "fastest" badge, which change from run to run in a saved output
    assert " in · " in page and " ms" not in page and "fastest" not in page
    assert all(row["latency"] > 0 for row in res.to_rows()) and " ms" in repr(res)
    assert all(r.currency for r in res.ok) and ("≈" in page or "cost unknown" in page)
    assert "<script>" not in markdownish("<script>alert(1)</script> **b** `c`")
    assert markdownish("**b** `c`\n```py\nx = 1\n```").startswith("<b>b</b> <code>c</code>")


def test_params_reach_every_call(session, emu) -> None:
    compare("Who are you?", models=["qwen-plus", "qwen-flash"], session=session, temperature=0.1, max_tokens=7)
    bodies = [r.body for r in emu.requests]
    assert len(bodies) == 2 and all(b["temperature"] == 0.1 and b["max_tokens"] == 7 for b in bodies)


def test_defaults_come_from_the_session(session, emu) -> None:
    before = qwen_nb._default.set_default_session(session)
    try:
        res = compare("Who are you?")
        assert [(c.model, c.profile, c.api) for c in res.cells] == [("qwen-plus", "default", "openai")]
    finally:
        qwen_nb._default.set_default_session(before)


class _Rendezvous:
    """The real session, but each chat() waits until ``n`` calls are in flight at once."""

    def __init__(self, session, n: int, timeout: float = 20) -> None:
        self._session = session
        self._barrier = threading.Barrier(n, timeout=timeout)

    def __getattr__(self, name):
        return getattr(self._session, name)

    def chat(self, *args, **kw):
        self._barrier.wait()  # breaks (and fails the cell) if the grid ran one call at a time
        return self._session.chat(*args, **kw)


def test_cells_run_concurrently(session, emu) -> None:
    models = ["qwen-plus", "qwen-flash", "qwen-max", "qwen-turbo"]
    res = compare("Who are you?", models=models, session=_Rendezvous(session, 4), concurrency=4)
    assert len(res.ok) == 4, res.errors


def test_concurrency_is_bounded(session, emu) -> None:
    models = ["qwen-plus", "qwen-flash", "qwen-max"]
    res = compare("Who are you?", models=models, session=_Rendezvous(session, 3, timeout=0.5), concurrency=2)
    # with two workers the third call can never join the first two: every cell fails the rendezvous
    assert len(res.ok) == 0 and all("BrokenBarrierError" in e.message for e in res.errors)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"models": []}, ["models", "empty"]),
        ({"profiles": ["nobody"]}, ["nobody"]),
        ({"apis": ["grpc"]}, ["grpc"]),
        ({"models": ["qwen plus!"]}, ["not a model name"]),
        ({"temperature": 5}, ["temperature"]),
        ({"concurrency": 0}, ["concurrency"]),
        ({"models": ["qwen-plus", "qwen-max"], "apis": ["openai", "dashscope"], "max_cells": 3}, ["max_cells"]),
    ],
)
def test_bad_input_fails_before_any_call(session, emu, kwargs, words) -> None:
    with pytest.raises(InputError) as e:
        compare("Who are you?", session=session, **kwargs)
    for w in words:
        assert w in str(e.value)
    assert emu.requests == []


def test_empty_prompt_is_refused_up_front(session, emu) -> None:
    with pytest.raises(InputError):
        compare("  ", models=["qwen-plus", "qwen-max"], session=session)
    assert emu.requests == []


# --------------------------------------------------------------------------- several prompts, the matrix


def test_a_list_of_prompts_is_a_models_by_prompts_matrix(session, emu) -> None:
    res = compare(["Who are you?", "Tell me a joke"], models=["qwen-plus", "qwen-max"], session=session)
    assert len(res) == 4 and len(res.ok) == 4 and res.prompts == ["Who are you?", "Tell me a joke"]
    assert [(c.model, c.prompt_index) for c in res.cells] == [
        ("qwen-plus", 0), ("qwen-plus", 1), ("qwen-max", 0), ("qwen-max", 1)]
    asked = [last_user_text(r.body) for r in emu.requests]
    assert sorted(asked) == sorted(["Who are you?", "Tell me a joke"] * 2)
    page = res._repr_html_()
    # row labels (models), column labels (the prompts), the total cost in the header
    assert page.index("prompt 1") < page.index("“Who are you?”") < page.index("prompt 2")
    assert page.index("qwen-plus") < page.index("qwen-max") and "total ≈" in page
    assert [r["prompt"] for r in res.to_rows()] == ["Who are you?", "Tell me a joke"] * 2
    assert "| prompt |" in res._repr_markdown_() and "prompt 2" in repr(res)
    assert res.total_cost and all(v > 0 for v in res.total_cost.values())


def test_a_list_of_message_dicts_is_one_conversation(session, emu) -> None:
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Who are you?"}]
    res = compare(chat, models=["qwen-plus"], session=session)
    assert len(res) == 1 and res.ok and res.prompts == ["Who are you? (3 messages)"]
    assert len(emu.requests[-1].body["messages"]) == 3


def test_the_matrix_is_the_same_on_every_run(session, emu) -> None:
    pages = [sanitized(compare(["Who are you?", "Hi"], models=["qwen-plus", "qwen-max"], profiles=["team-a"],
                               session=session)._repr_html_()) for _ in range(2)]
    assert pages[0] == pages[1]  # (request ids differ: the nbval rules qwen-nb applies by itself mask them)
    assert "request id" in pages[0]  # the failed cells' chips (qwen-max is not granted to team-a)...
    assert pages[0].count("<b>How to fix:</b>") == 2 and "https://" not in pages[0].split("<details")[0]


@pytest.mark.parametrize(
    "prompt, words",
    [
        ([], ["empty"]),
        (["Who are you?", {"role": "user", "content": "Hi"}], ["mixes", "one conversation"]),
        (["Who are you?", 3], ["Prompt 1", "int"]),
        (["Who are you?", "  "], ["Prompt 1"]),
    ],
)
def test_ambiguous_or_bad_prompt_lists_fail_before_any_call(session, emu, prompt, words) -> None:
    with pytest.raises(InputError) as e:
        compare(prompt, models=["qwen-plus"], session=session)
    for w in words:
        assert w in str(e.value)
    assert emu.requests == []


def test_max_cells_counts_the_prompts_too(session, emu) -> None:
    with pytest.raises(InputError, match="max_cells"):
        compare(["a", "b"], models=["qwen-plus", "qwen-max"], max_cells=3, session=session)
    assert emu.requests == []


def last_user_text(body: dict) -> str:
    msgs = body["messages"] if "messages" in body else body["input"]["messages"]
    return msgs[-1]["content"]


def sanitized(text: str) -> str:
    """``text`` after the nbval sanitize rules qwen-nb applies to --nbval runs by itself."""
    import re

    from qwen_nb.testing import sanitize_file

    lines = open(sanitize_file(), encoding="utf-8").read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("regex: "):
            text = re.sub(line[7:], lines[i + 1][9:], text)
    return text
