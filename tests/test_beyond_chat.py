"""Beyond chat through the real SDKs against the emulator: embeddings, rerank, images, speech, transcripts,
the Responses API and the context cache; one refusal (not granted) and one bad input per kind, with guidance."""

from __future__ import annotations

import numpy as np
import pytest

from qwen_nb import facts
from qwen_nb.errors import InputError, ModelNotGrantedError
from qwen_nb.media import EmbeddingResult, ImageResult, RerankResult, ResponseResult, SpeechResult

KEY_DEFAULT = "sk-bfacf042881a3eab43a2d2c8631a7401"


def _rows(session, kind):
    return [r for r in session.ledger.records() if r.kind == kind]


# ---------------------------------------------------------------------------------------------- embeddings


@pytest.mark.parametrize("api", ["openai", "dashscope"])
def test_embed_batches_in_order_and_related_texts_score_closer(session, api):
    texts = [f"note {i} about cats and mats" for i in range(23)] + ["the cat sat on the mat", "stock markets fell"]
    r = session.embed(texts, api=api, dimensions=256)
    assert isinstance(r, EmbeddingResult) and r.batches == 3  # 10 rows per request (the service's limit)
    assert r.array.shape == (25, 256) and r.array.dtype == np.float32
    again = session.embed(texts[3], api=api, dimensions=256)
    assert np.allclose(again.array[0], r.array[3], atol=1e-6)  # same text, same vector, order kept
    query = session.embed("a cat on a mat", api=api, dimensions=256)
    scores = r.similarity(query)
    assert scores[23] > scores[24] + 0.2  # shared words score closer than unrelated text
    assert r.usage.input_tokens > 0 and r.currency == "USD" and r.cost is not None and r.cost > 0
    row = _rows(session, "embedding")[0]
    assert row.api == api and row.input_tokens == r.usage.input_tokens and row.cost == pytest.approx(r.cost)
    assert KEY_DEFAULT not in repr(r) + r._repr_html_()


def test_embed_concurrency_gives_the_same_vectors(session):
    texts = [f"text number {i}" for i in range(40)]
    one = session.embed(texts, dimensions=64)
    many = session.embed(texts, dimensions=64, concurrency=4)
    assert np.array_equal(one.array, many.array) and many.batches == 4
    assert len(_rows(session, "embedding")) == 2  # one ledger row per call, whatever the batches


def test_embed_refusals(session):
    with pytest.raises(ModelNotGrantedError) as err:
        session.embed("hello", profile="team-a")
    assert "grant" in (err.value.fix or "").lower() and err.value.status == 403
    assert [r.status for r in _rows(session, "embedding")] == ["error"]
    sent = len(session.ledger.records())
    for bad, word in (({"dimensions": 100}, "dimensions"), ({"model": "qwen-plus"}, "not an embedding"),
                      ({"batch_size": 11}, "batch_size")):
        with pytest.raises(InputError, match=word):
            session.embed("x", **bad)
    with pytest.raises(InputError, match=r"texts\[1\]"):
        session.embed(["ok", ""])
    assert len(session.ledger.records()) == sent  # refused before the network


# ---------------------------------------------------------------------------------------------- rerank


def test_rerank_ranks_by_relevance(session):
    docs = ["Quantum computing is a field of computer science", "Rerank models sort documents by relevance",
            "A text rerank model sorts candidate texts"]
    r = session.rerank("what does a text rerank model do", docs, top_n=2)
    assert isinstance(r, RerankResult) and len(r) == 2
    assert {x.index for x in r} <= {1, 2} and r[0].score >= r[1].score
    assert r.api == "dashscope" and "<table>" in r._repr_html_() and "rank" in r._repr_html_()
    assert _rows(session, "rerank")[0].cost is not None


def test_rerank_refusals(session):
    with pytest.raises(ModelNotGrantedError):
        session.rerank("q", ["a", "b"], profile="team-b")
    with pytest.raises(InputError, match="top_n"):
        session.rerank("q", ["a", "b"], top_n=3)
    with pytest.raises(InputError, match="native|dashscope"):
        session.rerank("q", ["a"], api="openai")


# ---------------------------------------------------------------------------------------------- images


@pytest.mark.parametrize(("model", "mode"), [("wan2.6-t2i", "sync"), ("wan2.5-t2i-preview", "async")])
def test_image_saved_at_once(session, tmp_path, model, mode):
    r = session.image("a red fox in the snow", model=model, n=2, folder=tmp_path / "pics", progress=False)
    assert isinstance(r, ImageResult) and r.mode == mode and len(r) == 2
    for p in r.paths:
        assert p.parent == tmp_path / "pics" and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = session.image("a red fox in the snow", model=model, n=1, folder=tmp_path / "pics", progress=False)
    assert again.paths[0] == r.paths[0]  # deterministic: same prompt, same picture, same name
    assert "data:image/png;base64," in r._repr_html_()
    assert _rows(session, "image")[-1].status == "ok"


def test_image_refusals(session, tmp_path):
    with pytest.raises(ModelNotGrantedError):
        session.image("a fox", profile="team-a", folder=tmp_path)
    with pytest.raises(InputError, match="size"):
        session.image("a fox", size="big", folder=tmp_path)
    with pytest.raises(InputError, match="task API"):
        session.image("a fox", model="qwen-image-plus", sync=True, folder=tmp_path)


def test_the_task_api_needs_the_async_header(emu):
    import dashscope

    client = dashscope.Client(api_key=KEY_DEFAULT, base_url=emu.regions()["ap-southeast-1"].base_url("dashscope"),
                              max_retries=0)
    job = client.images.jobs.create(model="wan2.5-t2i-preview", prompt="a lighthouse", size="1024*1024", n=1)
    assert job.status == "PENDING"
    assert client.images.jobs.fetch(job.task_id).status == "RUNNING"
    done = client.images.jobs.fetch(job.task_id)
    assert done.status == "SUCCEEDED" and len(done.image_urls) == 1
    import httpx

    body = {"model": "wan2.5-t2i-preview", "input": {"prompt": "x"}}
    url = emu.regions()["ap-southeast-1"].base_url("dashscope") + facts.KIND_PATHS[("image", "dashscope")]
    r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {KEY_DEFAULT}"})
    assert r.status_code == 403 and r.json()["code"] == "AccessDenied"  # no X-DashScope-Async: async only


# ---------------------------------------------------------------------------------------------- speech


@pytest.mark.parametrize("api", ["openai", "dashscope"])
def test_speak_then_transcribe(session, tmp_path, api):
    s = session.speak("Hello from the notebook", voice="ethan", folder=tmp_path)
    assert isinstance(s, SpeechResult) and s.voice == "Ethan" and s.audio[:4] == b"RIFF"
    assert s.path is not None and s.path.read_bytes() == s.audio and 0 < (s.duration or 0) <= 2
    assert "<audio controls" in s._repr_html_()
    t = session.transcribe(s.path, api=api)
    assert t.text == "Hello from the notebook" and t.api == api
    assert [r.kind for r in session.ledger.records()] == ["tts", "asr"]


def test_speech_refusals(session, tmp_path):
    with pytest.raises(ModelNotGrantedError):
        session.speak("hi", profile="team-a", folder=tmp_path)
    with pytest.raises(InputError, match="voice"):
        session.speak("hi", voice="Nobody", folder=tmp_path)
    with pytest.raises(InputError, match="No audio file"):
        session.transcribe(tmp_path / "missing.wav")
    with pytest.raises(ModelNotGrantedError):
        session.transcribe(b"RIFF0000WAVE", profile="team-b")


# ---------------------------------------------------------------------------------------------- responses


def test_respond_with_tool_steps_and_a_second_turn(session):
    r = session.respond("What is new in Qwen3?", tools=["web_search", "code_interpreter"])
    assert isinstance(r, ResponseResult) and r.id.startswith("resp_")
    assert [s.type for s in r.steps] == ["web_search_call", "code_interpreter_call"]
    assert r.steps[0].detail == "What is new in Qwen3?" and r.steps[1].output == "5"
    assert "web search" in r._repr_markdown_() and r.text
    nxt = session.respond("And the models?", previous_response_id=r.id)
    assert nxt.previous_response_id == r.id and r.id in nxt.text
    assert [row.kind for row in session.ledger.records()] == ["responses", "responses"]


def test_respond_answers_the_last_question_of_a_message_list(session):
    """History sent as input messages: the emulator's step and answer are about the last user message."""
    history = [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "I am Qwen."},
               {"role": "user", "content": "What is new in Qwen3?"}]
    r = session.respond(history, tools=["web_search"])
    assert "What is new in Qwen3?" in r.text and "Who are you" not in r.text
    assert r.usage.input_tokens > session.respond("What is new in Qwen3?").usage.input_tokens  # all of it counts


def test_respond_streams_steps_then_text(session):
    stream = session.respond("stream it", tools=["web_search"], stream=True)
    events = list(stream)
    assert [e.type for e in events][0] == "step" and events[-1].type == "done"
    text = "".join(e.text for e in events if e.type == "text")
    assert text == stream.result.text and stream.result.steps[0].type == "web_search_call"


def test_a_cancelled_response_stream_stops_and_is_recorded_once(session):
    from qwen_nb._pipeline import CancelToken

    token = CancelToken()
    stream = session.respond("stop me early", tools=["web_search"], stream=True, cancel=token)
    first = next(iter(stream))
    assert first.type == "step"
    token.cancel()
    assert list(stream) == []
    assert [r.status for r in session.ledger.records()] == ["interrupted"]


def test_respond_refusals(session):
    with pytest.raises(ModelNotGrantedError):
        session.respond("hi", profile="team-a")
    with pytest.raises(InputError, match="built-in tool"):
        session.respond("hi", tools=["calculator"])
    from qwen_nb.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="resp_nope"):
        session.respond("hi", previous_response_id="resp_nope")


# ---------------------------------------------------------------------------------------------- context cache


@pytest.mark.parametrize("api", ["openai", "dashscope"])
def test_explicit_cache_markers_and_cache_prices(session, api):
    doc = f"The quick brown fox ({api}) jumps over the lazy dog. " * 200
    msgs = [{"role": "system", "content": [{"type": "text", "text": doc, "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": f"Summarise ({api})."}]
    first, second = session.chat(msgs, api=api), session.chat(msgs, api=api)
    assert first.usage.cache_creation_tokens > 1000 and first.usage.cached_tokens == 0
    assert second.usage.cached_tokens == first.usage.cache_creation_tokens and second.usage.cache_type == "ephemeral"
    price = 0.4 / 1e6  # qwen-plus input, Singapore
    out = 1.2 / 1e6
    u1, u2 = first.usage, second.usage
    assert first.cost == pytest.approx((u1.input_tokens - u1.cache_creation_tokens) * price
                                       + u1.cache_creation_tokens * price * 1.25 + u1.output_tokens * out)
    assert second.cost == pytest.approx((u2.input_tokens - u2.cached_tokens) * price
                                        + u2.cached_tokens * price * 0.10 + u2.output_tokens * out)
    rows = session.ledger.records()
    assert rows[-1].cached_tokens == u2.cached_tokens and rows[-2].cache_creation_tokens == u1.cache_creation_tokens


def test_cache_rates_and_marker_checks():
    from qwen_nb.prices import input_cost
    from qwen_nb.requests import build_request

    assert input_cost(1.0, 100, cached_tokens=50) == pytest.approx(50 + 50 * 0.2)  # implicit hit: 20 %
    assert input_cost(1.0, 100, cached_tokens=50, cache_type="ephemeral") == pytest.approx(50 + 5)
    assert input_cost(1.0, 100, cache_creation_tokens=40) == pytest.approx(60 + 50)
    part = {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}
    assert build_request([{"role": "user", "content": [part]}], model="qwen-plus").messages[0]["content"][0] == part
    with pytest.raises(InputError, match="at most 4"):
        build_request([{"role": "user", "content": [part] * 5}], model="qwen-plus")
    with pytest.raises(InputError, match="cache_control"):
        build_request([{"role": "user", "content": [{**part, "cache_control": {"type": "x"}}]}], model="qwen-plus")


def test_ledger_reports_by_kind(session, tmp_path):
    session.embed(["a", "b"])
    session.speak("hi", folder=tmp_path)
    report = session.ledger.report(by="kind")
    assert {r.key for r in report.rows} == {"embedding", "tts"}


def test_ledger_v4_migrates_an_older_file(tmp_path):
    import sqlite3

    from qwen_nb.ledger import Ledger
    from qwen_nb.ledger._schema import MIGRATIONS, migrate

    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=2)
    conn.execute("INSERT INTO calls (time, profile, region, api, model, status, call_id) VALUES "
                 "(1, 'p', 'ap-southeast-1', 'openai', 'qwen-plus', 'ok', 'x')")
    conn.close()
    with Ledger(path) as led:
        rec = led.records()[0]
        assert rec.kind == "chat" and rec.cached_tokens == 0
    assert 4 in MIGRATIONS


def test_the_tutorial_is_a_pair_in_sync_with_no_keys_saved():
    jupytext = pytest.importorskip("jupytext")
    from pathlib import Path

    import nbformat

    from qwen_nb.notebooks import scan_notebook

    here = Path(__file__).resolve().parents[1] / "notebooks"
    saved = nbformat.read(here / "10_beyond_chat.ipynb", as_version=4)
    paired = jupytext.read(here / "10_beyond_chat.py")
    assert [c.source for c in saved.cells] == [c.source for c in paired.cells]
    assert saved.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert all(c.execution_count for c in saved.cells if c.cell_type == "code")
    assert scan_notebook(here / "10_beyond_chat.ipynb", allow_demo_keys=False) == []
