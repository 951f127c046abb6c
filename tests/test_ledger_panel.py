"""UsagePanel: a view of the ledger per workspace that refreshes itself when calls are recorded."""

from __future__ import annotations

import json
import time

import pytest
from records import rec

from qwen_nb.ledger import Ledger

pytest.importorskip("ipywidgets")

from qwen_nb.widgets.usage_panel import UsagePanel  # noqa: E402


def test_panel_shows_session_totals_per_workspace(led):
    led.record(rec(time=led.opened_at - 3600, workspace="old-ws"))  # before this session
    panel = UsagePanel(ledger=led, min_interval=0)
    try:
        assert "No calls recorded" in panel.table.value
        led.record(rec())
        led.record(rec(workspace="ws-b", status="error", error_code="AccessDenied", input_tokens=0,
                       output_tokens=0, cost=None))
        led.record(rec(workspace="ws-bj", region="cn-beijing", cost=0.02, currency="CNY"))
        html = panel.table.value
        assert "ws-a" in html and "ws-b" in html and "ws-bj" in html and "old-ws" not in html
        assert "cost USD" in html and "cost CNY" in html
        assert "3 calls, 1 errors" in panel.title.value
        assert panel.report is not None and panel.report.totals["calls"] == 3
    finally:
        panel.close()


def test_panel_since_none_shows_everything(led):
    led.record(rec(time=1_700_000_000.0, workspace="old-ws"))
    panel = UsagePanel(ledger=led, since=None, auto=False)
    assert "old-ws" in panel.table.value
    panel.close()


def test_manual_refresh_and_button(led):
    panel = UsagePanel(ledger=led, auto=False)
    n = panel.refresh_count
    led.record(rec())
    assert panel.refresh_count == n  # not listening
    assert "ws-a" not in panel.table.value
    panel.button.click()
    assert panel.refresh_count == n + 1 and "ws-a" in panel.table.value
    panel.close()


def test_auto_refresh_is_throttled_with_a_trailing_refresh(led):
    panel = UsagePanel(ledger=led, min_interval=0.3)
    try:
        start = panel.refresh_count
        for _ in range(20):
            led.record(rec())
        assert panel.refresh_count - start <= 2  # not once per record
        deadline = time.monotonic() + 5
        while "20 calls" not in panel.title.value and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "20 calls" in panel.title.value  # the trailing refresh caught up
    finally:
        panel.close()


def test_closed_panel_stops_listening(led):
    panel = UsagePanel(ledger=led, min_interval=0)
    panel.close()
    n = panel.refresh_count
    led.record(rec())
    assert panel.refresh_count == n
    assert led._listeners == []


def test_panel_state_holds_no_key(led):
    key = "sk-abcdef0123456789abcdef0123456789"
    led.record(rec(profile="team-a"))
    panel = UsagePanel(ledger=led, min_interval=0)
    try:
        states = [w.get_state() for w in (panel, panel.title, panel.table, panel.button)]
        blob = json.dumps(states, default=str)
        assert key not in blob and "sk-" not in blob
    finally:
        panel.close()


def test_session_period_starts_when_the_session_started(emu, tmp_path, monkeypatch):
    """The session opens its ledger at its first record: the calls made before the panel still count."""
    from qwen_nb.session import Session

    monkeypatch.setenv("QWEN_NB_LEDGER", str(tmp_path / "usage.sqlite"))
    with Ledger(tmp_path / "usage.sqlite") as earlier:  # a call from an earlier kernel
        earlier.record(rec(time=time.time() - 60, workspace="earlier-ws"))
    s = Session(emu.profiles(), regions=emu.regions())
    assert s.started_at <= time.time()
    try:
        s.chat("Who are you?", profile="team-a")
        s.chat("Who are you?", profile="team-b", api="dashscope")
        assert s.ledger.opened_at > s.ledger.records()[0].time  # why the ledger's own start is not enough
        panel = UsagePanel(s, auto=False)
        assert panel.since == s.started_at
        assert panel.report.totals["calls"] == 2 and "earlier-ws" not in panel.table.value
        panel.close()
    finally:
        s.close()


def test_panel_names_workspaces_by_profile_and_counts_probe_refusals_apart(led):
    panel = UsagePanel(ledger=led, min_interval=0)
    try:
        led.record(rec(profile="team-a", workspace="llm-aaa1"))
        led.record(rec(profile="team-a", workspace="llm-aaa1", status="error", error_code="AccessDenied",
                       input_tokens=0, output_tokens=0, cost=None, call_id="probe-1"))
        led.record(rec(profile="team-b", workspace="llm-bbb1", status="error", error_code="Throttling",
                       input_tokens=0, output_tokens=0, cost=None))
        title, table = panel.title.value, panel.table.value
        # the header's figures are separated, probe refusals apart from errors
        assert "3 calls, 1 errors, 1 probe refusals" in title and " · " in title
        # a workspace by the name the user knows, with its id
        assert table.index("team-a") < table.index("llm-aaa1") and "team-b" in table
        totals = panel.report.totals
        assert (totals.errors, totals.probe_refusals) == (1, 1)
        # cost and tokens each on their own scale, and a legend
        assert "cost USD" in table and "tokens (input + output)" in table and "qnb-bar qnb-tok" in table
        assert 'class="qnb-legend"' in table and "not a failure" in table
        assert panel.report.aka == {"llm-aaa1": ["team-a"], "llm-bbb1": ["team-b"]}
    finally:
        panel.close()
