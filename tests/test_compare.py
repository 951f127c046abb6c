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


def test_html_shows_latency_tokens_and_cost_and_escapes_answers(session) -> None:
    res = compare("Who are you?", models=["qwen-plus", "qwen-max"], session=session)
    page = res._repr_html_()
    assert " ms" in page and " in · " in page and "fastest" in page
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
