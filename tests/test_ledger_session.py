"""The ledger behind a real Session over the emulator: one record per logical call, nothing double counted.

These drive the real SDKs over loopback HTTP against the local emulator.
"""

from __future__ import annotations

import pytest

pytest.importorskip("qwen_nb.session")

from qwen_nb.errors import QwenNbError  # noqa: E402
from qwen_nb.prices import estimate  # noqa: E402


def only_record(session):
    records = session.ledger.records()
    assert len(records) == 1, records
    return records[0]


@pytest.mark.parametrize("api", ["openai", "dashscope"])
def test_ok_call_is_recorded_once_with_its_usage_and_cost(session, api):
    result = session.chat("Who are you?", profile="team-a", model="qwen-plus", api=api)
    rec = only_record(session)
    assert rec.status == "ok" and rec.attempts == 1 and rec.error_code is None
    assert (rec.profile, rec.region, rec.api, rec.model) == ("team-a", "ap-southeast-1", api, result.model)
    assert rec.workspace == session.get_profile("team-a").workspace
    assert rec.input_tokens == result.usage.input_tokens > 0
    assert rec.output_tokens == result.usage.output_tokens > 0
    assert rec.request_id == result.request_id
    assert (rec.cost, rec.currency) == estimate(rec.model, rec.region, rec.input_tokens, rec.output_tokens,
                                                rec.reasoning_tokens)


def test_failed_call_is_recorded_once_as_failed(session):
    with pytest.raises(QwenNbError) as info:
        session.chat("hello", profile="team-a", model="qwen-max")  # not granted to team-a
    rec = only_record(session)
    assert rec.status == "error" and rec.error_code
    assert rec.error_code.lower() == (info.value.code or "").lower()
    assert rec.input_tokens == rec.output_tokens == 0
    assert session.ledger.report().totals["errors"] == 1


def test_retried_call_is_one_record_with_its_attempts(session, emu):
    emu.set_faults(fail_next=1)
    result = session.chat("Who are you?", profile="default")
    rec = only_record(session)
    assert rec.status == "ok" and rec.attempts == result.attempts == 2


def test_call_failing_every_attempt_is_one_error_record(session, emu):
    emu.set_faults(fail_next=10)
    with pytest.raises(QwenNbError):
        session.chat("Who are you?", profile="default")
    rec = only_record(session)
    assert rec.status == "error" and rec.attempts == 3  # max_retries=2 in the fixture


def test_interrupted_stream_is_recorded_with_partial_usage(session, emu):
    emu.set_faults(cut_after=3, cut_streams=1)
    stream = session.stream_chat("Who are you?", profile="default")
    with pytest.raises(QwenNbError):
        for _ in stream:
            pass
    rec = only_record(session)
    assert rec.status == "interrupted"


def test_closed_stream_is_recorded_as_interrupted(session):
    stream = session.stream_chat("Who are you?", profile="default")
    next(iter(stream))
    stream.close()
    rec = only_record(session)
    assert rec.status == "interrupted"


def test_report_splits_workspaces_and_currencies(session):
    session.chat("Who are you?", profile="team-a", model="qwen-plus")
    session.chat("Who are you?", profile="team-b", model="qwen-plus")
    session.chat("Who are you?", profile="beijing-lab", model="qwen-plus")
    report = session.ledger.report()
    keys = {r["key"] for r in report.rows}
    assert {session.get_profile(p).workspace for p in ("team-a", "team-b", "beijing-lab")} <= keys
    assert report.totals["calls"] == 3
    # Beijing calls are never added to USD: they are CNY or unknown
    assert report.totals["costs"].get("USD", 0) == pytest.approx(
        sum(r.cost for r in session.ledger.records() if r.currency == "USD" and r.cost is not None)
    )


def test_panel_over_a_session_uses_its_ledger(session):
    pytest.importorskip("ipywidgets")
    from qwen_nb.widgets.usage_panel import UsagePanel

    panel = UsagePanel(session, min_interval=0)
    try:
        assert panel.ledger is session.ledger
        session.chat("Who are you?")
        assert panel.report is not None and panel.report.totals["calls"] == 1
    finally:
        panel.close()
