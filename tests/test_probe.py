"""probe(): which profile may call which model, against the emulator's demo workspaces."""

from __future__ import annotations

import pytest

import qwen_nb._default
from qwen_nb import errors as E
from qwen_nb._probe import ProbeResult, classify, default_models, probe

MODELS = ["qwen-plus", "qwen-max", "qwen-flash"]


def probe_bodies(emu) -> list[dict]:
    return [r.body for r in emu.requests if r.method == "POST"]


def test_matrix_matches_the_workspace_grants(session, emu) -> None:
    res = probe(["default", "team-a", "team-b"], MODELS, session=session)
    assert isinstance(res, ProbeResult)
    assert res.matrix == {
        "default": {"qwen-plus": True, "qwen-max": True, "qwen-flash": True},
        "team-a": {"qwen-plus": True, "qwen-max": False, "qwen-flash": True},
        "team-b": {"qwen-plus": True, "qwen-max": True, "qwen-flash": False},
    }
    assert res.allowed("team-a") == ["qwen-plus", "qwen-flash"] and res.denied("team-b") == ["qwen-flash"]
    assert res.reasons["team-a"]["qwen-max"] == "not granted"
    page = res._repr_html_()
    matrix, legend = page.split('class="qnb-legend"')  # the marks of the matrix, then the legend's own
    assert matrix.count("✓") == 7 and matrix.count("✗") == 2 and "not granted" in page
    # "not granted" is said once, in the legend, not in every ✗ cell
    assert "not granted" not in matrix and "✗</b> not granted" in legend
    # a column per profile, named with its workspace id; a row per model
    for name in ("default", "team-a", "team-b"):
        ws = session.get_profile(name).workspace
        assert f">{name}<" in matrix and (ws or "default workspace") in matrix
    assert matrix.index("qwen-plus") < matrix.index("qwen-max") < matrix.index("qwen-flash")
    for p in emu.profiles().values():
        assert p.key not in page + repr(res) + repr(res.to_rows())


def test_probe_calls_are_the_cheapest_possible_and_go_through_the_ledger(session, emu) -> None:
    res = probe(["team-a"], MODELS, session=session)
    bodies = probe_bodies(emu)
    assert len(bodies) == 3
    for b in bodies:
        assert b["max_tokens"] == 1
        assert len(b["messages"]) == 1 and len(b["messages"][0]["content"]) <= 2
    assert next(b for b in bodies if b["model"] == "qwen-plus")["enable_thinking"] is False  # hybrid model
    ok = [r for r in session.ledger.records() if r.status == "ok"]
    assert len(session.ledger) == 3 and len(ok) == 2
    assert res.spent_tokens == sum(r.input_tokens + r.output_tokens for r in ok) > 0
    assert all(r.output_tokens <= 1 for r in ok)
    assert f"{res.spent_tokens} tokens" in res._repr_html_()


def test_results_are_cached_per_session_unless_refreshed(session, emu) -> None:
    first = probe(["team-a"], ["qwen-plus", "qwen-max"], session=session)
    assert first.calls == 2
    again = probe(["team-a", "team-b"], ["qwen-plus", "qwen-max"], session=session)
    assert again.calls == 2 and len(probe_bodies(emu)) == 4  # only team-b was new
    assert again.cell("team-a", "qwen-plus").cached and again.spent_tokens == sum(
        c.tokens for c in again.cells if c.profile == "team-b"
    )
    assert again.matrix["team-a"] == first.matrix["team-a"]
    fresh = probe(["team-a"], ["qwen-plus"], session=session, refresh=True)
    assert fresh.calls == 1 and len(probe_bodies(emu)) == 5


def test_cache_follows_grant_changes_only_on_refresh(session, emu) -> None:
    assert probe(["team-a"], ["qwen-max"], session=session).matrix["team-a"]["qwen-max"] is False
    emu.grant("team-a", ["qwen-plus", "qwen-max"])
    assert probe(["team-a"], ["qwen-max"], session=session).matrix["team-a"]["qwen-max"] is False  # cached
    assert probe(["team-a"], ["qwen-max"], session=session, refresh=True).matrix["team-a"]["qwen-max"] is True


def test_a_key_used_in_the_wrong_region_is_reported(session, emu) -> None:
    key = emu.profiles()["team-a"].key
    session.add_profile("team-a-in-beijing", key, region="cn-beijing")
    res = probe(["team-a-in-beijing"], ["qwen-plus"], session=session)
    assert res.matrix["team-a-in-beijing"]["qwen-plus"] is False
    assert res.reasons["team-a-in-beijing"]["qwen-plus"] == "invalid key (wrong region?)"


def test_unknown_model_and_unreachable_service(session, emu) -> None:
    res = probe(["default"], ["qwen-nonexistent-9"], session=session)
    assert (
        res.matrix["default"]["qwen-nonexistent-9"] is False
        and "unknown model" in res.reasons["default"]["qwen-nonexistent-9"]
    )
    emu.set_faults(fail_next=10)
    flaky = probe(["team-b"], ["qwen-plus"], session=session)
    assert flaky.matrix["team-b"]["qwen-plus"] is None and "?" in flaky._repr_html_()
    emu.reset()
    assert probe(["team-b"], ["qwen-plus"], session=session).calls == 1  # inconclusive answers are not cached


def test_defaults_all_profiles_and_the_catalog_models(session, emu) -> None:
    before = qwen_nb._default.set_default_session(session)
    try:
        res = probe(models=["qwen-plus"])
        assert res.profiles == [p.name for p in session.profiles()]
        assert res.matrix["beijing-lab"]["qwen-plus"] is True
        names = default_models(session.profiles())
        assert "qwen-plus" in names and "qwq-plus" not in names  # thinking-only models are left out
    finally:
        qwen_nb._default.set_default_session(before)


def test_pure_classification() -> None:
    nf = E.ModelNotFoundError("no such model", status=404, code="ModelNotFound")
    assert classify(nf, "qwen-plus", "cn-hongkong") == ("denied", "not offered in region")
    assert classify(nf, "qwen-plus", "ap-southeast-1") == ("denied", "not found")
    assert classify(E.ModelNotGrantedError("x"), "qwen-plus", "ap-southeast-1") == ("denied", "not granted")
    assert classify(E.RateLimitError("x"), "qwen-plus", "ap-southeast-1")[0] == "unknown"
    assert classify(E.AccountOverdueError("x"), "qwen-plus", "ap-southeast-1") == ("denied", "account overdue")


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"profiles": ["nobody"]}, ["nobody"]),
        ({"profiles": []}, ["profiles", "empty"]),
        ({"models": ["not a model!"]}, ["not a model name"]),
        ({"concurrency": 0}, ["concurrency"]),
    ],
)
def test_bad_input_before_any_call(session, emu, kwargs, words) -> None:
    with pytest.raises(E.InputError) as e:
        probe(session=session, **{"models": ["qwen-plus"], **kwargs})
    for w in words:
        assert w in str(e.value)
    assert probe_bodies(emu) == []


def test_legend_skipped_models_cost_and_probe_refusals_in_the_ledger(session, emu) -> None:
    res = probe(["team-a"], session=session)  # the catalog's models for the profile's region
    page = res._repr_html_()
    assert res.skipped and "Not probed:" in page
    assert any("thinking-only" in why for why in res.skipped.values())
    for m in res.skipped:
        assert m not in res.models and f"not probed: {m}" in repr(res)
    assert res.spent_cost and all(v > 0 for v in res.spent_cost.values())
    assert "probe spent" in page and "≈" in page and "? could not tell" in page.replace("<b>?</b>", "?")
    # the ledger counts the probe's refusals apart from errors
    refused = sum(1 for c in res.cells if c.allowed is False)
    totals = session.ledger.report().totals
    assert refused > 0 and totals.probe_refusals == refused and totals.errors == 0
    with pytest.raises(Exception):  # noqa: B017 - an ordinary failed call is still an error
        session.chat("Hi", model="qwen-max", profile="team-a")
    totals = session.ledger.report().totals
    assert totals.errors == 1 and totals.probe_refusals == refused
    usage_page = session.ledger.report()._repr_html_()
    assert "probe refusals" in usage_page and "not a failure" in usage_page
