"""The Batch API: q.batch() and BatchJob through the real openai SDK's files and batches calls against the emulator."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import openai
import pytest

import qwen_nb as q
from qwen_nb import facts
from qwen_nb.emulator.batches import _draw
from qwen_nb.errors import CancelledCallError, InputError, QwenNbError, ServerError
from qwen_nb.ledger import Ledger, batch_job_records
from qwen_nb.prices import estimate
from qwen_nb.results import ChatResult
from qwen_nb.session import Session

ROOT = Path(__file__).resolve().parent.parent
FAST = 10_000_000.0  # emulated seconds per real second: an hour's job in a third of a millisecond


@pytest.fixture
def fast(emu):
    emu.set_faults(batch_speed=FAST)
    return emu


def batch_posts(emu) -> list[str]:
    return [f"{r.method} {r.path.rsplit('/v1', 1)[-1]}" for r in emu.requests
            if "/files" in r.path or "/batches" in r.path]


# ------------------------------------------------------------------------------ the SDK against the emulator


def test_openai_sdk_files_and_batches_have_the_service_shapes(fast):
    client = openai.OpenAI(api_key=fast.key(), base_url=fast.base_url("ap-southeast-1"), max_retries=0)
    lines = "".join(json.dumps({"custom_id": str(i), "method": "POST", "url": facts.BATCH_CHAT_URL,
                                "body": {"model": "qwen-plus", "messages": [{"role": "user", "content": f"hi {i}"}]}})
                    + "\n" for i in range(5))
    up = client.files.create(file=("in.jsonl", lines.encode()), purpose="batch")
    assert up.purpose == "batch" and up.bytes == len(lines.encode()) and up.id.startswith("file-")
    job = client.batches.create(input_file_id=up.id, endpoint=facts.BATCH_CHAT_URL, completion_window="24h")
    assert job.status in facts.BATCH_STATUSES and job.request_counts.total == 5
    for _ in range(200):
        job = client.batches.retrieve(job.id)
        if job.status in facts.BATCH_FINAL:
            break
    assert job.status == "completed" and job.request_counts.completed == 5 and job.error_file_id is None
    out = client.files.content(job.output_file_id).read().decode().splitlines()
    got = sorted(json.loads(line)["custom_id"] for line in out)
    assert got == [str(i) for i in range(5)]
    first = json.loads(out[0])
    assert first["response"]["status_code"] == 200 and first["response"]["body"]["object"] == "chat.completion"
    assert job.id in [b.id for b in client.batches.list()]
    # the service's validation errors
    with pytest.raises(openai.BadRequestError, match="completion_window"):
        client.batches.create(input_file_id=up.id, endpoint=facts.BATCH_CHAT_URL, completion_window="12h")
    with pytest.raises(openai.BadRequestError, match="endpoint"):
        client.batches.create(input_file_id=up.id, endpoint="/v1/images", completion_window="24h")  # type: ignore
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.files.create(file=("x.jsonl", b"{}\n"), purpose="fine-tune")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")
    # a file whose lines do not match the job's endpoint: the job fails with the line named
    bad = client.batches.create(input_file_id=up.id, endpoint=facts.BATCH_TEST_URL, completion_window="24h")
    for _ in range(200):
        bad = client.batches.retrieve(bad.id)
        if bad.status in facts.BATCH_FINAL:
            break
    assert bad.status == "failed" and bad.errors.data[0].line == 1
    # another workspace's key does not see the job
    other = openai.OpenAI(api_key=fast.key("team-a"), base_url=fast.base_url("ap-southeast-1"), max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.batches.retrieve(job.id)


def test_batch_test_model_limits_and_the_test_url(fast):
    client = openai.OpenAI(api_key=fast.key(), base_url=fast.base_url("ap-southeast-1"), max_retries=0)

    def line(i: int, url: str = facts.BATCH_TEST_URL) -> str:
        return json.dumps({"custom_id": str(i), "method": "POST", "url": url,
                           "body": {"model": facts.BATCH_TEST_MODEL, "messages": [{"role": "user", "content": "x"}]}})

    too_many = client.files.create(file=("t.jsonl", "\n".join(line(i) for i in range(101)).encode()), purpose="batch")
    job = client.batches.create(input_file_id=too_many.id, endpoint=facts.BATCH_TEST_URL, completion_window="24h")
    for _ in range(200):
        job = client.batches.retrieve(job.id)
        if job.status in facts.BATCH_FINAL:
            break
    assert job.status == "failed" and "100" in job.errors.data[0].message


# ------------------------------------------------------------------------------ q.batch()


def test_a_thousand_lines_come_back_in_input_order(fast, session):
    prompts = [f"Tell me one fact about the number {i}." for i in range(1000)]
    job = q.batch(prompts, model="qwen-plus", session=session, max_tokens=40)
    assert batch_posts(fast)[:2] == ["POST /files", "POST /batches"]
    results = job.results(progress=False)
    assert len(results) == 1000 and all(isinstance(r, ChatResult) for r in results)
    # the emulator answers each prompt deterministically, and writes its output file in an order of its own
    for i in random.Random(1).sample(range(1000), 12):
        assert results[i].text == session.chat(prompts[i], model="qwen-plus", max_tokens=40).text
    assert [r.text for r in results][:3] == [r.text for r in list(results)[:3]]


def test_failed_lines_are_in_the_error_file_and_map_to_their_rows(fast, session):
    fast.set_faults(batch_fail_rate=0.2)
    job = q.batch([f"question {i}" for i in range(120)], model="qwen-flash", session=session)
    results = job.results(progress=False)
    expected = {i for i in range(120) if _draw(job.id, str(i)) < 0.2}
    assert expected and set(results.errors) == expected
    for i in expected:
        err = results[i]
        assert isinstance(err, ServerError) and err.status == 500 and f"Row {i}" in err.message
    assert job.counts["failed"] == len(expected)
    # the service's error file itself, read with the SDK, names the same rows
    client = openai.OpenAI(api_key=fast.key(), base_url=fast.base_url("ap-southeast-1"), max_retries=0)
    lines = client.files.content(job._records[0].error_file_id).read().decode().splitlines()
    assert {int(json.loads(x)["custom_id"]) for x in lines} == expected


def test_cost_goes_into_the_ledger_once_at_half_price(fast, session):
    job = q.batch([f"price check {i}" for i in range(30)], model="qwen-plus", session=session)
    results = job.results(progress=False)
    rows = [r for r in session.ledger.records() if r.batch_id == job.id]
    assert len(rows) == 30 and all(r.status == "ok" for r in rows)
    full = sum(estimate("qwen-plus", "ap-southeast-1", r.input_tokens, r.output_tokens)[0] for r in rows)
    assert sum(r.cost for r in rows) == pytest.approx(full * facts.BATCH_PRICE_FACTOR)
    assert sum(r.cost for r in results) == pytest.approx(full / 2)
    # reading the results again, or attaching again, records nothing more
    job.results(progress=False)
    q.BatchJob.attach(job.id, session=session).results(progress=False)
    assert len([r for r in session.ledger.records() if r.batch_id == job.id]) == 30
    report = session.ledger.report(by="model")
    assert report.totals.batch_calls == 30 and "batch" in report.to_text()


def test_every_row_is_checked_before_anything_is_sent(fast, session):
    with pytest.raises(InputError, match="Row 2"):
        q.batch(["fine", "fine too", "   "], model="qwen-plus", session=session)
    with pytest.raises(InputError, match="temperature"):
        q.batch(["a"], model="qwen-plus", session=session, temperature=5)
    with pytest.raises(InputError, match="not served by the Batch API"):
        q.batch(["a"], model="qwen3-max", session=session)
    with pytest.raises(InputError, match="completion_window"):
        q.batch(["a"], model="qwen-plus", session=session, completion_window="2h")
    with pytest.raises(InputError, match="Row 1 is .* bytes"):
        q.batch(["a", "b" * (facts.BATCH_LIMITS.line_bytes + 10)], model="qwen-plus", session=session)
    with pytest.raises(InputError, match="template"):
        q.batch([{"text": "x"}], model="qwen-plus", session=session, template="Classify: {label}")
    us = Session({"us": q.Profile("us", key=fast.key(), region="us-east-1")}, regions=fast.regions(),
                 ledger=Ledger(":memory:"))
    with pytest.raises(InputError, match="not offered"):
        q.batch(["a"], model="qwen-plus", session=us)
    assert batch_posts(fast) == []


def test_thinking_is_set_on_every_line_of_a_hybrid_model(fast, session):
    job = q.batch(["one", "two"], model="qwen-plus", session=session)
    job.results(progress=False)
    client = openai.OpenAI(api_key=fast.key(), base_url=fast.base_url("ap-southeast-1"), max_retries=0)
    lines = client.files.content(job._records[0].input_file_id).read().decode().splitlines()
    assert [json.loads(x)["body"]["enable_thinking"] for x in lines] == [False, False]


def test_beijing_serves_a_model_that_only_thinks(fast, session):
    (r,) = q.batch(["Is 7 prime?"], model="qwq-plus", profile="beijing", session=session).results(progress=False)
    assert isinstance(r, ChatResult) and r.reasoning and r.text and r.region == "cn-beijing"


def test_inputs_past_the_file_limit_become_jobs_that_act_as_one(fast, session, monkeypatch):
    monkeypatch.setattr(facts, "BATCH_LIMITS", facts.BatchLimits(lines=40, file_bytes=10**6, line_bytes=10**5))
    prompts = [f"split {i}" for i in range(100)]
    job = q.batch(prompts, model="qwen-plus", session=session)
    assert len(job.ids) == 3 and job.id.startswith("grp_") and job.rows == 100
    results = job.results(progress=False)
    assert len(results) == 100 and job.status == "completed" and job.counts["total"] == 100
    for i in (0, 39, 40, 99):
        assert results[i].text == session.chat(prompts[i], model="qwen-plus").text
    again = q.BatchJob.attach(job.ids[1], session=session)  # any part's id finds the whole group
    assert again.ids == job.ids


def test_cancel_keeps_the_lines_done_and_names_the_others(emu, session):
    emu.set_faults(batch_speed=3600.0, batch_hours=4.0)  # a 4-hour job takes 4 s: cancel it half-way through
    job = q.batch([f"long {i}" for i in range(50)], model="qwen-plus", session=session)
    job.wait(timeout=2, progress=False, poll=0.2)
    assert job.status == "in_progress"
    job.cancel()
    job.wait(progress=False, poll=0.05)
    assert job.status == "cancelled"
    results = job.results(progress=False)
    done = [r for r in results if isinstance(r, ChatResult)]
    assert 0 < len(done) < 50
    assert all(isinstance(r, CancelledCallError) for r in results[len(done):])


def test_dry_run_goes_to_the_test_model_for_free(fast, session):
    with pytest.warns(UserWarning, match="first 100 of 130"):
        job = q.batch(["check me"] * 130, model="qwen-plus", session=session, dry_run=True)
    assert job.model == facts.BATCH_TEST_MODEL and job.rows == 100
    results = job.results(progress=False)
    assert {r.text for r in results} == {facts.BATCH_TEST_ANSWER}
    assert all(r.cost is None for r in results)
    assert [r for r in session.ledger.records() if r.batch_id] == []


def test_a_dataframe_comes_back_with_answer_tokens_and_cost(fast, session):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"text": ["great product", "awful service", "fine"], "id": [7, 8, 9]})
    out = q.batch(df, template="Classify the sentiment: {text}", model="qwen-plus", session=session).results(
        progress=False)
    assert list(out["id"]) == [7, 8, 9] and list(out["text"]) == list(df["text"])
    assert {"answer", "input_tokens", "output_tokens", "cost", "error"} <= set(out.columns)
    assert out["answer"].notna().all() and (out["cost"] > 0).all()
    assert out["answer"][1] == session.chat("Classify the sentiment: awful service", model="qwen-plus").text


def test_batch_jobs_lists_what_the_ledger_holds(fast, session):
    job = q.batch(["listed"], model="qwen-plus", session=session)
    table = q.batch_jobs(session=session)
    assert [r.id for r in table] == [job.id] and table[0].status in facts.BATCH_STATUSES
    assert job.id in str(table) and job.id in table._repr_html_()


def test_the_cli_submits_fetches_and_lists(fast, session, tmp_path, capsys):
    from qwen_nb._default import set_default_session
    from qwen_nb.cli import main

    src = tmp_path / "in.csv"
    src.write_text("text\nhello\nworld\n", encoding="utf-8")
    old = set_default_session(session)
    try:
        assert main(["batch", "submit", str(src), "--model", "qwen-plus", "--template", "Say {text}"]) == 0
        job_id = capsys.readouterr().out.split()[0]
        assert main(["batch", "status", job_id]) == 0
        assert main(["batch", "wait", job_id]) == 0
        out = tmp_path / "out.jsonl"
        assert main(["batch", "fetch", job_id, "-o", str(out)]) == 0
        rows = [json.loads(x) for x in out.read_text().splitlines()]
        assert [r["row"] for r in rows] == [0, 1] and rows[1]["answer"] == session.chat("Say world").text
        assert main(["batch", "list"]) == 0 and job_id in capsys.readouterr().out
        assert main(["batch", "submit", str(src), "--model", "qwen3-max", "--template", "{text}"]) == 2
        assert "not served" in capsys.readouterr().err
    finally:
        set_default_session(old)


# ------------------------------------------------------------------------------ surviving the kernel

SUBMIT = textwrap.dedent(
    """
    import sys, qwen_nb as q
    q.connect()
    job = q.batch([f"survive {i}" for i in range(200)], model="qwen-plus")
    print(job.id, flush=True)
    job.wait(progress=False)  # killed in here
    """
)
RESUME = textwrap.dedent(
    """
    import json, sys, qwen_nb as q
    q.connect()
    job = q.BatchJob.attach(sys.argv[1])
    res = job.results(progress=False)
    print(json.dumps({"n": len(res), "texts": [res[i].text for i in (0, 123, 199)], "status": job.status}))
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_job_is_resumed_by_id_in_a_new_process_after_the_first_was_killed(emu, tmp_path):
    emu.set_faults(batch_speed=3600.0 / 3, batch_hours=1.0)  # the job runs about 3 s
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k and k != "DASHSCOPE_REGION"}
    env.update(QWEN_NB_EMULATOR=emu.url, QWEN_NB_LEDGER=str(tmp_path / "usage.sqlite"),
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    first = subprocess.Popen([sys.executable, "-c", SUBMIT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                             text=True, cwd=tmp_path)
    try:
        assert first.stdout is not None
        job_id = ""
        for line in first.stdout:  # after the emulator notice: the job id, printed once the job is recorded
            if line.startswith("batch_"):
                job_id = line.strip()
                break
        assert job_id, first.stderr.read() if first.stderr else ""
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
        for stream in (first.stdout, first.stderr):
            if stream is not None:
                stream.close()
    conn = sqlite3.connect(tmp_path / "usage.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM batch_jobs WHERE id = ?", (job_id,)).fetchone()[0] == 1
    conn.close()
    for _ in range(2):  # resumed twice: the usage is recorded once
        second = subprocess.run([sys.executable, "-c", RESUME, job_id], capture_output=True, env=env, text=True,
                                cwd=tmp_path, timeout=120)
        assert second.returncode == 0, second.stderr
        out = json.loads(second.stdout.strip().splitlines()[-1])
        assert out["n"] == 200 and out["status"] == "completed"
    with Ledger(tmp_path / "usage.sqlite") as led:
        rows = [r for r in led.records() if r.batch_id == job_id]
        assert len(rows) == 200 and len({r.call_id for r in rows}) == 200
        assert batch_job_records(led, job_id=job_id)[0].recorded is not None
        s = Session(emu.profiles(), regions=emu.regions(), ledger=led)
        assert out["texts"] == [s.chat(f"survive {i}", model="qwen-plus").text for i in (0, 123, 199)]


def test_an_unknown_job_is_named_with_where_it_was_looked_for(fast, session):
    with pytest.raises(QwenNbError, match="Batch 'batch_does_not_exist' was not found") as info:
        q.BatchJob.attach("batch_does_not_exist", session=session)
    assert info.value.status == 404 and "q.batch_jobs()" in str(info.value)
    assert fast.key() not in str(info.value) and info.value.__cause__ is None


def test_a_job_past_its_window_expires_with_the_lines_done(emu, session):
    emu.set_faults(batch_speed=FAST, batch_hours=48.0)  # a 48-hour job in a 24-hour window
    job = q.batch([f"slow {i}" for i in range(40)], model="qwen-plus", session=session)
    results = job.results(progress=False)
    assert job.status == "expired"
    done = sum(isinstance(r, ChatResult) for r in results)
    assert 0 < done < 40 and "expired before its line was run" in results[39].message
