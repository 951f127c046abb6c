"""The usage ledger: records, idempotency, threads, migrations, reports, budgets, listeners, CLI."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import sqlite3
import sys
import threading
import warnings

import pytest
from records import rec

from qwen_nb import ledger as ledger_mod
from qwen_nb.errors import ConfigError, InputError
from qwen_nb.ledger import (
    MIGRATIONS,
    SCHEMA_VERSION,
    BudgetWarning,
    CallRecord,
    Ledger,
    OptionalDependencyError,
    UsageReport,
    UsageRow,
    cli_main,
    migrate,
)


@pytest.fixture
def file_ledger(tmp_path):
    with Ledger(tmp_path / "usage.sqlite") as ledger:
        yield ledger


def test_call_record_fields_follow_the_contract():
    names = [f.name for f in dataclasses.fields(CallRecord)]
    assert names[:18] == [
        "time", "profile", "workspace", "region", "api", "model", "input_tokens", "output_tokens",
        "reasoning_tokens", "latency", "request_id", "status", "error_code", "attempts", "cost", "currency",
        "call_id", "batch_id",
    ]
    assert names[18:] == ["kind", "cached_tokens", "cache_creation_tokens"]  # schema v4: calls beyond chat
    a, b = rec(), rec()
    assert a.call_id and a.call_id != b.call_id


def test_record_round_trips_every_field(file_ledger):
    r = rec(status="interrupted", error_code="StreamCut", reasoning_tokens=7, attempts=2, request_id=None)
    file_ledger.record(r)
    (back,) = file_ledger.records()
    assert back == r


def test_file_ledger_uses_wal_and_schema_version(tmp_path):
    path = tmp_path / "u.sqlite"
    Ledger(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == max(MIGRATIONS)
    conn.close()


def test_same_call_id_is_stored_once(led):
    r = rec()
    seen = []
    led.add_listener(seen.append)
    for _ in range(3):
        led.record(r)
    assert len(led) == 1
    assert seen == [r]  # listeners hear about a call once
    assert led.spent("team-a") == pytest.approx(0.001)


def test_failed_call_is_one_error_record_and_retried_call_one_record(led):
    led.record(rec(status="error", error_code="Throttling.RateQuota", attempts=3, input_tokens=0,
                   output_tokens=0, cost=0.0))
    led.record(rec(status="ok", attempts=2))  # succeeded on its second attempt
    report = led.report()
    (row,) = report.rows
    assert row["calls"] == 2 and row["errors"] == 1
    records = led.records()
    assert [r.attempts for r in records] == [3, 2]
    assert row["input_tokens"] == 100  # nothing double counted


def test_interrupted_stream_keeps_partial_usage(led):
    led.record(rec(status="interrupted", input_tokens=30, output_tokens=12, cost=0.0002))
    (row,) = led.report().rows
    assert row["interrupted"] == 1 and row["errors"] == 0
    assert row["output_tokens"] == 12 and row["costs"] == {"USD": pytest.approx(0.0002)}


def test_eight_threads_writing_500_records_each_all_land(file_ledger):
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        start.wait()
        for i in range(500):
            file_ledger.record(rec(profile=f"p{n}", request_id=f"{n}-{i}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(file_ledger) == 4000
    rows = {r["key"]: r["calls"] for r in file_ledger.report(by="profile").rows}
    assert rows == {f"p{n}": 500 for n in range(8)}
    # what another process sees, through its own connection
    other = sqlite3.connect(file_ledger.path)
    assert other.execute("SELECT COUNT(DISTINCT call_id) FROM calls").fetchone()[0] == 4000
    other.close()


def test_two_ledgers_on_one_file_share_records(tmp_path):
    path = tmp_path / "shared.sqlite"
    with Ledger(path) as a, Ledger(path) as b:
        a.record(rec())
        b.record(rec(profile="team-b"))
        assert len(a) == len(b) == 2


# ---------------------------------------------------------------- migrations


def make_v1_database(path) -> None:
    """A ledger file as the first release wrote it (schema v1: no call_id column)."""
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=1) == 1
    later = ("call_id", "batch_id", "kind", "cached_tokens", "cache_creation_tokens")  # added by v2, v3 and v4
    v1_fields = [f.name for f in dataclasses.fields(CallRecord) if f.name not in later]
    cols = ", ".join(v1_fields)
    for i in range(3):
        r = rec(request_id=f"old-{i}", time=1_700_000_000.0 + i)
        values = [getattr(r, f) for f in v1_fields]
        conn.execute(f"INSERT INTO calls ({cols}) VALUES ({', '.join('?' * len(values))})", values)
    conn.close()


def test_v1_database_is_upgraded_in_place_keeping_records(tmp_path):
    path = tmp_path / "old.sqlite"
    make_v1_database(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "call_id" not in [c[1] for c in conn.execute("PRAGMA table_info(calls)")]
    conn.close()

    with Ledger(path) as led:
        old = led.records()
        assert [r.request_id for r in old] == ["old-0", "old-1", "old-2"]
        assert len({r.call_id for r in old}) == 3 and all(r.call_id for r in old)
        new = rec()
        led.record(new)
        led.record(new)  # idempotent after the upgrade too
        assert len(led) == 4
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    with Ledger(path) as again:  # reopening an up-to-date file changes nothing
        assert len(again) == 4


def test_empty_database_gets_every_migration(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.sqlite", isolation_level=None)
    assert migrate(conn) == SCHEMA_VERSION == max(MIGRATIONS)
    assert migrate(conn) == SCHEMA_VERSION
    conn.close()


def test_newer_schema_is_refused_clearly(tmp_path):
    path = tmp_path / "future.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ConfigError, match="newer than this qwen-nb"):
        Ledger(path)


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="Cannot open the usage ledger"):
        Ledger(path)


def test_default_path_env_and_platformdirs(tmp_path, monkeypatch):
    monkeypatch.setenv("QWEN_NB_LEDGER", str(tmp_path / "env.sqlite"))
    with Ledger() as led:
        assert led.path == str(tmp_path / "env.sqlite")
    monkeypatch.delenv("QWEN_NB_LEDGER")
    path = ledger_mod.default_path()
    assert path.name == "usage.sqlite" and "qwen-nb" in str(path)


# ---------------------------------------------------------------- reports


def fill(led: Ledger) -> None:
    day1 = dt.datetime(2026, 3, 1, 12).timestamp()
    day2 = dt.datetime(2026, 3, 2, 12).timestamp()
    led.record(rec(time=day1, profile="team-a", workspace="ws-a", cost=0.5, currency="USD"))
    led.record(rec(time=day1, profile="team-a", workspace="ws-a", model="qwen-max", cost=1.5, currency="USD"))
    led.record(rec(time=day2, profile="team-b", workspace="ws-b", cost=None, currency="USD"))
    led.record(rec(time=day2, profile="beijing-lab", workspace="ws-bj", region="cn-beijing", cost=2.0,
                   currency="CNY"))
    led.record(rec(time=day2, profile="beijing-lab", workspace="ws-bj", region="cn-beijing", status="error",
                   error_code="AccessDenied", input_tokens=0, output_tokens=0, cost=None, currency="CNY"))
    led.record(rec(time=day2, profile="default", workspace=None, cost=0.25, currency="USD"))


def test_report_by_workspace_keeps_currencies_apart(led):
    fill(led)
    report = led.report()
    assert isinstance(report, UsageReport) and report.by == "workspace"
    rows = {r["key"]: r for r in report.rows}
    assert set(rows) == {"ws-a", "ws-b", "ws-bj", "(default ap-southeast-1)"}
    assert rows["ws-a"]["costs"] == {"USD": pytest.approx(2.0)} and rows["ws-a"]["calls"] == 2
    assert rows["ws-bj"]["costs"] == {"CNY": pytest.approx(2.0)} and rows["ws-bj"]["errors"] == 1
    # a call with tokens and no price is unknown; an error that used no tokens costs nothing
    assert rows["ws-b"]["costs"] == {} and rows["ws-b"]["unknown_price_calls"] == 1
    assert rows["ws-bj"]["unknown_price_calls"] == 0
    totals = report.totals
    assert totals["costs"] == {"USD": pytest.approx(2.25), "CNY": pytest.approx(2.0)}
    assert totals["calls"] == 6 and totals["unknown_price_calls"] == 1
    assert report.currencies == ["CNY", "USD"]


def test_report_by_model_profile_and_day(led):
    fill(led)
    by_model = {r["key"]: r["calls"] for r in led.report(by="model").rows}
    assert by_model == {"qwen-plus": 5, "qwen-max": 1}
    by_profile = {r["key"]: r["calls"] for r in led.report(by="profile").rows}
    assert by_profile == {"team-a": 2, "team-b": 1, "beijing-lab": 2, "default": 1}
    by_day = led.report(by="day")
    assert [r["key"] for r in by_day.rows] == ["2026-03-01", "2026-03-02"]
    assert by_day.rows[0]["costs"] == {"USD": pytest.approx(2.0)}
    assert by_day.rows[1]["costs"] == {"USD": pytest.approx(0.25), "CNY": pytest.approx(2.0)}


def test_rows_and_totals_are_usage_rows_with_one_field_list(led):
    fill(led)
    report = led.report(by="profile")
    assert all(isinstance(r, UsageRow) for r in report.rows)
    team_a = next(r for r in report.rows if r.key == "team-a")
    assert team_a.calls == team_a["calls"] == 2 and team_a.costs == team_a["costs"]
    with pytest.raises(KeyError):
        team_a["cost"]
    totals = report.totals
    assert isinstance(totals, UsageRow) and totals.key == "total" and totals.calls == 6
    header = next(csv.reader(io.StringIO(report.to_csv())))
    names = [f.name for f in dataclasses.fields(UsageRow)]
    assert header == ["profile", *names[1:names.index("costs")], "cost_CNY", "cost_USD",
                      *names[names.index("costs") + 1:]]


@pytest.mark.parametrize(
    "since", ["2026-03-02", dt.date(2026, 3, 2), dt.datetime(2026, 3, 2), dt.datetime(2026, 3, 2).timestamp()]
)
def test_report_since(led, since):
    fill(led)
    assert led.report(since=since).totals["calls"] == 4


def test_report_since_relative_forms(led):
    fill(led)
    led.record(rec(profile="now"))
    assert led.report(since="today").totals["calls"] == 1
    assert led.report(since="1d").totals["calls"] == 1
    assert led.report(since=dt.timedelta(hours=1)).totals["calls"] == 1


@pytest.mark.parametrize("kw", [{"by": "colour"}, {"since": "last tuesday"}, {"since": True}])
def test_report_bad_arguments_are_input_errors(led, kw):
    with pytest.raises(InputError):
        led.report(**kw)


def test_report_html_has_table_bars_and_escapes(led):
    fill(led)
    led.record(rec(workspace="<script>x</script>", cost=0.1))
    page = led.report()._repr_html_()
    assert "<table>" in page and "cost USD" in page and "cost CNY" in page
    assert "<script>x" not in page and "&lt;script&gt;" in page
    assert "background:" in page  # the bar chart is plain HTML/CSS
    assert "unknown price" in page
    assert "matplotlib" not in sys.modules


def test_report_text_and_csv(led, tmp_path):
    fill(led)
    report = led.report()
    text = report.to_text()
    assert "ws-a" in text and "total" in text and "cost CNY" in text and "1 call" in text
    data = report.to_csv()
    rows = list(csv.DictReader(io.StringIO(data)))
    assert {r["workspace"] for r in rows} == {"ws-a", "ws-b", "ws-bj", "(default ap-southeast-1)"}
    ws_a = next(r for r in rows if r["workspace"] == "ws-a")
    assert float(ws_a["cost_USD"]) == pytest.approx(2.0) and ws_a["cost_CNY"] == ""
    out = tmp_path / "u.csv"
    assert report.to_csv(out) is None
    assert out.read_text() == data


def test_empty_report(led):
    report = led.report()
    assert report.rows == [] and report.totals["calls"] == 0
    assert "No calls recorded" in report.to_text()
    assert "No calls recorded" in report._repr_html_()


def test_to_pandas_without_pandas_is_a_clear_error(led, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    with pytest.raises(OptionalDependencyError, match="pip install pandas") as info:
        led.report().to_pandas()
    assert isinstance(info.value, ImportError)


def test_to_pandas_when_installed(led):
    pytest.importorskip("pandas")
    fill(led)
    frame = led.report().to_pandas()
    assert frame.loc["ws-a", "calls"] == 2
    assert frame.loc["ws-bj", "cost_CNY"] == pytest.approx(2.0)


def test_report_by_model_counts_every_call(led):
    fill(led)
    assert led.report(by="model").totals["calls"] == 6


def test_record_rejects_bad_records(led):
    with pytest.raises(InputError):
        led.record(rec(status="fine"))
    with pytest.raises(InputError):
        led.record(rec(input_tokens=-1))
    with pytest.raises(InputError):
        led.record(rec(cost=0.1, currency=None))
    with pytest.raises(InputError):
        led.record("not a record")  # type: ignore[arg-type]
    assert len(led) == 0


# ---------------------------------------------------------------- budgets


def test_budget_warns_once_at_80_and_once_at_100(led):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(12):  # 12 x 0.1 USD against a 1.0 USD budget
            led.record(rec(cost=0.1), budget=1.0)
    msgs = [str(w.message) for w in caught if issubclass(w.category, BudgetWarning)]
    assert len(msgs) == 2
    assert "'team-a'" in msgs[0] and "80 %" in msgs[0] and "USD" in msgs[0] and "1.0000 USD" in msgs[0]
    assert "reached its budget" in msgs[1] and "1.0000 USD" in msgs[1]
    assert led.spent("team-a") == pytest.approx(1.2)


def test_budget_jump_past_100_warns_once(led):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        led.record(rec(cost=0.1), budget=1.0)
        led.record(rec(cost=5.0), budget=1.0)
        led.record(rec(cost=5.0), budget=1.0)
    msgs = [str(w.message) for w in caught if issubclass(w.category, BudgetWarning)]
    assert len(msgs) == 1 and "reached its budget" in msgs[0]


def test_budget_is_per_profile_and_currency(led):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        led.record(rec(profile="a", cost=0.9), budget=1.0)
        led.record(rec(profile="b", cost=0.5), budget=1.0)
        led.record(rec(profile="b", region="cn-beijing", cost=0.6, currency="CNY"), budget=1.0)
    msgs = [str(w.message) for w in caught if issubclass(w.category, BudgetWarning)]
    assert len(msgs) == 1 and "'a'" in msgs[0]
    assert led.spent("b", "USD") == pytest.approx(0.5)
    assert led.spent("b", "CNY") == pytest.approx(0.6)
    assert led.spent("nobody") == 0.0


def test_spent_counts_history_from_before_this_ledger(tmp_path):
    path = tmp_path / "u.sqlite"
    with Ledger(path) as first:
        first.record(rec(cost=0.85))
    with Ledger(path) as second, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert second.spent("team-a") == pytest.approx(0.85)
        second.record(rec(cost=0.01), budget=1.0)
    assert any(issubclass(w.category, BudgetWarning) for w in caught)


# ---------------------------------------------------------------- listeners


def test_listeners_hear_each_record_and_cannot_break_recording(led):
    heard = []

    def bad(_r):
        raise RuntimeError("broken view")

    led.add_listener(bad)
    remove = led.add_listener(heard.append)
    r1 = rec()
    led.record(r1)
    assert heard == [r1] and len(led) == 1
    remove()
    led.record(rec())
    assert heard == [r1] and len(led) == 2
    led.remove_listener(bad)
    led.remove_listener(bad)  # removing twice is harmless


# ---------------------------------------------------------------- `qwen-nb usage`


def test_cli_prints_table_and_csv(tmp_path, capsys):
    path = tmp_path / "u.sqlite"
    with Ledger(path) as led:
        fill(led)
    assert cli_main(["--ledger", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ws-a" in out and "total" in out and "cost USD" in out
    assert cli_main(["--ledger", str(path), "--by", "model", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["model"] for r in rows} == {"qwen-plus", "qwen-max"}
    assert cli_main(["--ledger", str(path), "--since", "2026-03-02", "--by", "day"]) == 0
    out = capsys.readouterr().out
    assert "2026-03-02" in out and "2026-03-01" not in out


def test_cli_via_the_qwen_nb_dispatcher(tmp_path, capsys):
    from qwen_nb.cli import main

    path = tmp_path / "u.sqlite"
    with Ledger(path) as led:
        fill(led)
    assert main(["usage", "--ledger", str(path), "--by", "profile"]) == 0
    assert "beijing-lab" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--by", "colour"], ["--bogus"], ["--since"]])
def test_cli_bad_options_print_usage_not_traceback(argv, capsys):
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "usage: qwen-nb usage" in err and "Traceback" not in err


def test_cli_bad_since_prints_usage(tmp_path, capsys):
    path = tmp_path / "u.sqlite"
    Ledger(path).close()
    assert cli_main(["--ledger", str(path), "--since", "someday"]) == 2
    err = capsys.readouterr().err
    assert "usage: qwen-nb usage" in err and "someday" in err and "Traceback" not in err


def test_cli_missing_ledger(tmp_path, capsys, monkeypatch):
    assert cli_main(["--ledger", str(tmp_path / "nope.sqlite")]) == 1
    assert "no ledger" in capsys.readouterr().err
    monkeypatch.setenv("QWEN_NB_LEDGER", str(tmp_path / "none-yet.sqlite"))
    assert cli_main([]) == 0
    assert "No calls recorded yet" in capsys.readouterr().out
    assert not (tmp_path / "none-yet.sqlite").exists()


def test_cli_help(capsys):
    assert cli_main(["--help"]) == 0
    assert "--by" in capsys.readouterr().out
