"""Record -> replay: calls through the recording proxy (emulator as the upstream) come back byte for byte offline.

One client script makes every kind of call a notebook makes (the openai SDK, the dashscope SDK
over requests and aiohttp, curl, qwen-nb's own session; streams on both protocols; service
errors) and writes the raw answers it got. It runs once under ``qwen-nb record`` with the
emulator as the upstream, once against a replay server with no key: both outputs must be equal,
byte for byte, and the cassette must hold no key and no workspace id.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from qwen_nb import facts
from qwen_nb.emulator import Emulator
from qwen_nb.errors import QwenNbError
from qwen_nb.recorder import (
    MISS_CODE,
    MISS_STATUS,
    PLACEHOLDER_KEY,
    Cassette,
    RecordingProxy,
    ReplayServer,
    cassette_dir,
    profile_routes,
    record_env,
    replay_env,
)
from qwen_nb.recorder.cassette import Interaction, decode_body, encode_body, request_key

ROOT = Path(__file__).resolve().parents[1]
CURL = shutil.which("curl")

CLIENT = r'''
import asyncio, base64, json, os, subprocess, sys

out = {}

def raw(name, data):
    out[name] = base64.b64encode(data).decode()

from openai import OpenAI, APIStatusError
oa = OpenAI(api_key=os.environ["DASHSCOPE_API_KEY"], max_retries=0)  # base URL: OPENAI_BASE_URL
msgs = [{"role": "user", "content": "Say hello in five words."}]
r = oa.chat.completions.with_raw_response.create(model="qwen-plus", messages=msgs, temperature=0)
raw("openai", r.http_response.content)
with oa.chat.completions.with_streaming_response.create(
        model="qwen-plus", messages=msgs, stream=True, stream_options={"include_usage": True}) as s:
    raw("openai_stream", b"".join(s.iter_bytes()))
# the same request again: answered in recorded order
r = oa.chat.completions.with_raw_response.create(model="qwen-plus", messages=msgs, temperature=0)
raw("openai_again", r.http_response.content)
try:
    oa.chat.completions.create(model="qwen-no-such-model", messages=msgs)
except APIStatusError as e:
    out["openai_error"] = [e.status_code, base64.b64encode(e.response.content).decode()]

import dashscope
from dashscope import Generation, AioGeneration
key = os.environ["DASHSCOPE_API_KEY"]
g = Generation.call(model="qwen-plus", messages=msgs, result_format="message", api_key=key)
out["dashscope"] = [g.status_code, g.request_id, json.dumps(g.output, ensure_ascii=False), json.dumps(g.usage)]
chunks = Generation.call(model="qwen-plus", messages=msgs, result_format="message", api_key=key, stream=True,
                         incremental_output=True)
out["dashscope_stream"] = [[c.status_code, c.request_id, json.dumps(c.output, ensure_ascii=False)] for c in chunks]
bad = Generation.call(model="qwen-no-such-model", messages=msgs, result_format="message", api_key=key)
out["dashscope_error"] = [bad.status_code, bad.code, bad.message, bad.request_id]
a = asyncio.run(AioGeneration.call(model="qwen-turbo", messages=msgs, result_format="message", api_key=key))
out["dashscope_aiohttp"] = [a.status_code, a.request_id, json.dumps(a.output, ensure_ascii=False)]

if os.environ.get("CURL"):
    base = os.environ["DASHSCOPE_BASE_URL"]
    auth = ["-H", "Authorization: Bearer " + key, "-H", "Content-Type: application/json"]
    body = json.dumps({"model": "qwen-plus", "input": {"messages": msgs}, "parameters": {"result_format": "message"}})
    raw("curl_native_stream", subprocess.run(
        [os.environ["CURL"], "-sS", "-N", base + "/api/v1/services/aigc/text-generation/generation", *auth,
         "-H", "X-DashScope-SSE: enable", "-d", body], capture_output=True, check=True).stdout)
    raw("curl_openai", subprocess.run(
        [os.environ["CURL"], "-sS", base + "/compatible-mode/v1/chat/completions", *auth,
         "-d", json.dumps({"model": "qwen-plus", "messages": msgs})], capture_output=True, check=True).stdout)

import qwen_nb
s = qwen_nb.connect()
out["qwen_nb"] = s.chat("What is a cassette?", model="qwen-plus").text
out["qwen_nb_stream"] = [d.content for d in s.stream_chat("Count to three.", model="qwen-plus", api="dashscope")]
out["team_a"] = s.chat("Hi from team a", profile="team-a", api="dashscope").text
s.close()
json.dump(out, open(sys.argv[1], "w"), indent=1, sort_keys=True)
'''


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith(("DASHSCOPE_", "QWEN_NB_", "OPENAI_")) or facts.KEY_VAR.match(k))}
    env.update(QWEN_NB_CONFIG=os.devnull, QWEN_NB_LEDGER=":memory:", PYTHONPATH=str(ROOT), NO_PROXY="127.0.0.1",
               no_proxy="127.0.0.1")
    if CURL:
        env["CURL"] = CURL
    return env


@pytest.fixture(scope="module")
def emulator():
    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def round_trip(emulator, tmp_path_factory):
    """Run the client recorded (``qwen-nb record``, emulator upstream), then replayed (no key)."""
    work = tmp_path_factory.mktemp("rr")
    (work / "client.py").write_text(CLIENT, encoding="utf-8")
    team = emulator.profiles()["team-a"]
    env = _clean_env()
    env.update(DASHSCOPE_API_KEY=emulator.key(), QWEN_NB_TEAM_A_API_KEY=team.key,
               QWEN_NB_TEAM_A_WORKSPACE=team.workspace)
    rec = subprocess.run(
        [sys.executable, "-m", "qwen_nb.cli", "record", "--upstream", emulator.url + "/ap-southeast-1", "--",
         sys.executable, "client.py", "recorded.json"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert rec.returncode == 0, rec.stderr
    folder = work / "client.cassettes"
    cassette = Cassette.load(folder)
    with ReplayServer(folder) as server:
        env = _clean_env()
        values, drop = replay_env(server.url, cassette.routes, env)
        env.update(values)
        for name in drop:
            env.pop(name, None)
        rep = subprocess.run([sys.executable, "client.py", "replayed.json"], cwd=work, env=env, capture_output=True,
                             text=True, timeout=300)
        assert rep.returncode == 0, rep.stderr
        served = server.served
    return {"work": work, "folder": folder, "cassette": cassette, "stderr": rec.stderr, "served": served,
            "recorded": json.loads((work / "recorded.json").read_text()),
            "replayed": json.loads((work / "replayed.json").read_text()),
            "keys": [emulator.key(), team.key], "workspaces": [team.workspace]}


def test_replayed_answers_are_byte_identical_to_recorded_ones(round_trip):
    rec, rep = round_trip["recorded"], round_trip["replayed"]
    expected = {"openai", "openai_stream", "openai_again", "openai_error", "dashscope", "dashscope_stream",
                "dashscope_error", "dashscope_aiohttp", "qwen_nb", "qwen_nb_stream", "team_a"}
    if CURL:
        expected |= {"curl_native_stream", "curl_openai"}
    assert set(rec) == expected
    for name in sorted(expected):
        assert rep[name] == rec[name], name
    # the recordings are real answers of every kind, not empty or failed ones
    import base64

    assert b"data: [DONE]" in base64.b64decode(rec["openai_stream"])
    assert rec["openai_error"][0] == 404 and b"model_not_found" in base64.b64decode(rec["openai_error"][1])
    assert rec["dashscope"][0] == 200 and len(rec["dashscope_stream"]) > 2
    assert rec["dashscope_error"][0] in (400, 404)
    if CURL:
        assert b"event:result" in base64.b64decode(rec["curl_native_stream"])
    assert "".join(rec["qwen_nb_stream"]) and rec["qwen_nb"] and rec["team_a"]
    assert round_trip["served"] == len(round_trip["cassette"].interactions)


def test_cassette_is_reviewable_json_without_keys_or_workspace_ids(round_trip):
    folder = round_trip["folder"]
    files = sorted(folder.iterdir())
    assert files[-1].name == "cassette.json" and len(files) == len(round_trip["cassette"].interactions) + 1
    text = "\n".join(p.read_text(encoding="utf-8") for p in files)
    for secret in round_trip["keys"] + round_trip["workspaces"]:
        assert secret not in text
    assert not facts.KEY_SEARCH.search(text)
    assert "authorization" not in text.lower() and "x-dashscope-workspace" not in text.lower()
    for p in files:  # pretty-printed, a final newline, SSE as a list of events
        data = json.loads(p.read_text(encoding="utf-8"))
        assert p.read_text(encoding="utf-8") == json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    streams = [i for i in round_trip["cassette"].interactions if "events" in i.response_body]
    assert len(streams) >= 3  # openai, native (SDK and curl), qwen-nb's native stream
    meta = json.loads((folder / "cassette.json").read_text())
    assert meta["routes"]["team-a"] == {"profile": True, "env": "QWEN_NB_TEAM_A", "region": "ap-southeast-1",
                                        "workspace": True}
    # the workspace id the session sent was in the upstream traffic: it is redacted, not just absent
    assert "record: proxy at" in round_trip["stderr"]


def test_check_notebooks_scans_cassettes(round_trip, tmp_path, capsys):
    from qwen_nb.notebooks import cli_main, scan_cassette

    folder = tmp_path / "nb.cassettes"
    shutil.copytree(round_trip["folder"], folder)
    assert scan_cassette(folder, use_env=False) == []
    assert cli_main(["--no-env", "--strict", str(tmp_path)]) == 0
    leaked = "sk-" + "a1b2c3d4" * 4
    first = sorted(folder.glob("0*.json"))[0]
    first.write_text(first.read_text().replace('"path"', f'"note": "{leaked}",\n    "path"', 1))
    found = scan_cassette(folder, use_env=False)
    assert len(found) == 1 and found[0].path == str(first) and found[0].where.startswith("line ")
    capsys.readouterr()
    assert cli_main(["--no-env", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "sk-…" in out and leaked not in out and "cassette file" in out
    assert cli_main(["--no-env", "--fix", str(folder)]) == 1
    assert leaked not in first.read_text() and scan_cassette(folder, use_env=False) == []


def test_an_unrecorded_request_fails_naming_the_cassette_and_the_request(round_trip):
    import dashscope
    from openai import APIStatusError, OpenAI

    folder = round_trip["folder"]
    with ReplayServer(folder) as server:
        root = f"{server.url}/default"
        oa = OpenAI(api_key=PLACEHOLDER_KEY, base_url=root + facts.COMPATIBLE_PATH, max_retries=0)
        with pytest.raises(APIStatusError) as info:
            oa.chat.completions.create(model="qwen-plus", messages=[{"role": "user", "content": "Never recorded"}])
        err = info.value
        assert err.status_code == MISS_STATUS and err.code == MISS_CODE
        assert str(folder) in err.message and "POST /compatible-mode/v1/chat/completions" in err.message
        assert "'Never recorded'" in err.message and "model 'qwen-plus'" in err.message
        # the native envelope (dashscope SDK reads code and message), streaming too
        resp = dashscope.Generation.call(model="qwen-plus", messages=[{"role": "user", "content": "Not this"}],
                                         result_format="message", api_key=PLACEHOLDER_KEY,
                                         base_address=root + facts.NATIVE_PATH)
        assert resp.status_code == MISS_STATUS and resp.code == MISS_CODE and str(folder) in resp.message
        chunks = list(dashscope.Generation.call(model="qwen-plus", messages=[{"role": "user", "content": "Nor this"}],
                                                result_format="message", api_key=PLACEHOLDER_KEY, stream=True,
                                                base_address=root + facts.NATIVE_PATH))
        assert chunks[-1].status_code == MISS_STATUS and "'Nor this'" in chunks[-1].message
        # qwen-nb's guidance shows it: the service's message, not a made-up answer, never retried
        from qwen_nb._profiles import load_profiles
        from qwen_nb.ledger import Ledger
        from qwen_nb.session import Session

        s = Session(load_profiles(env={"DASHSCOPE_API_KEY": PLACEHOLDER_KEY, "DASHSCOPE_BASE_URL": root}),
                    ledger=Ledger(":memory:"))
        try:
            with pytest.raises(QwenNbError) as guided:
                s.chat("Unrecorded question", model="qwen-plus")
        finally:
            s.close()
        assert str(folder) in str(guided.value) and "'Unrecorded question'" in str(guided.value)
        assert guided.value.status == MISS_STATUS and not guided.value.retryable


def test_repeated_requests_replay_in_order_then_fail(round_trip):
    folder = round_trip["folder"]
    cassette = Cassette.load(folder)
    openai_calls = [i for i in cassette.interactions if i.path.endswith("/chat/completions")
                    and (i.request_body.get("json") or {}).get("temperature") == 0]
    assert len(openai_calls) == 2
    body = decode_body(openai_calls[0].request_body)
    headers = {"content-type": "application/json"}
    args = ("default", "POST", "/compatible-mode/v1/chat/completions", "", headers, body)
    first, second, third = cassette.next_for(*args), cassette.next_for(*args), cassette.next_for(*args)
    assert first is openai_calls[0] and second is openai_calls[1]
    assert isinstance(third, str) and "2 time(s); this is call 3" in third


def test_bodies_are_stored_so_they_come_back_byte_for_byte():
    samples = [
        (b'{"a":1,"b":"\xc3\xa9"}', "application/json"),
        (b'{"a": 1, "b": "\\u00e9"}', "application/json"),
        (b'{"a" :1}', "application/json"),
        (b"id:1\nevent:result\n:HTTP_STATUS/200\ndata:{}\n\nid:2\ndata:{}\n\n", "text/event-stream"),
        (b"data: x\n\ndata: [DONE]", "text/event-stream"),
        (b"\xff\xfe binary", "application/octet-stream"),
        (b"", None),
    ]
    for raw, ctype in samples:
        stored = json.loads(json.dumps(encode_body(raw, ctype)))  # through a file
        assert decode_body(stored) == raw, raw
    assert "events" in encode_body(samples[3][0], "text/event-stream")
    assert "json" in encode_body(samples[0][0], "application/json")


def test_matching_ignores_what_varies_and_redaction_covers_headers_bodies_and_queries():
    a = json.dumps({"model": "m", "stream": True, "stream_options": {"include_usage": True}, "messages": []})
    b = json.dumps({"messages": [], "stream_options": {"include_usage": True}, "stream": True, "model": "m",
                    "request_id": "abc"})
    ha = {"content-type": "application/json", "authorization": "Bearer sk-" + "1" * 32, "x-request-id": "1"}
    hb = {"content-type": "application/json; charset=utf-8", "authorization": "Bearer sk-" + "2" * 32}
    assert request_key("r", "post", "/p", "b=2&a=1", ha, a.encode()) == request_key("r", "POST", "/p", "a=1&b=2", hb,
                                                                                   b.encode())
    assert request_key("r", "POST", "/p", "", {"x-dashscope-sse": "enable"}, b"{}") != request_key(
        "r", "POST", "/p", "", {}, b"{}")
    key, ws = "sk-" + "abcdef12" * 4, "llm-abcdef123456"
    i = Interaction.capture(
        "default", "POST", "/api/v1/x", f"api_key={key}&w={ws}",
        {"Authorization": f"Bearer {key}", "X-DashScope-WorkSpace": ws, "Content-Type": "application/json",
         "X-DashScope-SSE": "enable"},
        json.dumps({"note": f"{key} at {ws}.ap-southeast-1.maas.aliyuncs.com"}).encode(), 200,
        [("Content-Type", "application/json"), ("X-Echo", f"{ws} {key}"), ("Date", "now")],
        json.dumps({"text": f"workspace {ws}"}).encode())
    text = json.dumps(i.to_json(), ensure_ascii=False)
    assert key not in text and ws not in text and "llm-redacted" in text
    assert "date" not in i.response_headers and "authorization" not in i.request_headers
    assert re.search(r"sk-…", text)


def test_profile_routes_and_environment():
    env = {"DASHSCOPE_API_KEY": "sk-" + "a" * 20, "QWEN_NB_TEAM_B_API_KEY": "sk-" + "b" * 20,
           "QWEN_NB_TEAM_B_WORKSPACE": "llm-abcd1234", "QWEN_NB_TEAM_B_REGION": "cn-beijing"}
    upstreams, routes = profile_routes(env=env)
    assert upstreams == {"default": "https://dashscope-intl.aliyuncs.com",
                         "team-b": "https://llm-abcd1234.cn-beijing.maas.aliyuncs.com"}
    rec = record_env("http://127.0.0.1:9", routes)
    assert rec["QWEN_NB_TEAM_B_BASE_URL"] == "http://127.0.0.1:9/team-b"
    assert rec["OPENAI_BASE_URL"] == "http://127.0.0.1:9/default/compatible-mode/v1"
    assert rec["DASHSCOPE_HTTP_BASE_URL"] == "http://127.0.0.1:9/default/api/v1"
    values, drop = replay_env("http://127.0.0.1:9", routes, {**env, "QWEN_NB_OTHER_API_KEY": "x"})
    assert values["QWEN_NB_TEAM_B_API_KEY"] == PLACEHOLDER_KEY and values["QWEN_NB_TEAM_B_REGION"] == "cn-beijing"
    assert {"QWEN_NB_OTHER_API_KEY", "QWEN_NB_TEAM_B_WORKSPACE", "QWEN_NB_EMULATOR"} <= set(drop)
    # no key at all: raw SDK calls still have a route (the default region's host), no profile is made up
    upstreams, routes = profile_routes(env={})
    assert routes["default"]["profile"] is False and "DASHSCOPE_API_KEY" not in replay_env("u", routes)[0]
    assert cassette_dir("a/b/nb.ipynb") == Path("a/b/nb.cassettes")


def test_record_proxy_streams_without_buffering(emulator, tmp_path):
    """The first event of a paced stream reaches the client long before the stream ends."""
    import time

    emulator.set_faults(ttft=0.0, tokens_per_second=20, reply_tokens=40)
    try:
        with RecordingProxy(tmp_path / "s.cassettes", {"default": emulator.url + "/ap-southeast-1"}) as proxy:
            url = f"{proxy.url}/default/compatible-mode/v1/chat/completions"
            body = {"model": "qwen-plus", "stream": True, "messages": [{"role": "user", "content": "Tell a story"}]}
            t0 = time.monotonic()
            with httpx.stream("POST", url, json=body, headers={"Authorization": f"Bearer {emulator.key()}"},
                              timeout=30) as r:
                it = r.iter_raw()
                next(it)
                first = time.monotonic() - t0
                rest = b"".join(it)
                total = time.monotonic() - t0
        assert b"[DONE]" in rest and first < total / 2
    finally:
        emulator.reset()


def test_cli_usage_errors(tmp_path):
    from qwen_nb.cli import main

    assert main(["record", "--", "true"]) == 2  # no notebook named: where would the cassette go?
    assert main(["record"]) == 2
    assert main(["emulator", "--replay", str(tmp_path / "missing.cassettes")]) == 2


CELL = """import os, httpx
r = httpx.post(os.environ["OPENAI_BASE_URL"] + "/chat/completions", timeout=30,
               headers={"Authorization": "Bearer " + os.environ["DASHSCOPE_API_KEY"]},
               json={"model": "qwen-plus", "messages": [{"role": "user", "content": "Hello notebook"}]})
print(r.status_code, r.json()["choices"][0]["message"]["content"])"""


def test_pytest_replay_and_record_a_notebook(emulator, tmp_path):
    """--qwen-replay fails clearly without a cassette; --qwen-record writes it; --qwen-replay then passes."""
    import nbformat

    answer = httpx.post(emulator.base_url("ap-southeast-1", "openai") + "/chat/completions",
                        headers={"Authorization": f"Bearer {emulator.key()}"},
                        json={"model": "qwen-plus", "messages": [{"role": "user", "content": "Hello notebook"}]},
                        ).json()["choices"][0]["message"]["content"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL, execution_count=1, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=f"200 {answer}\n")])])
    nbformat.write(nb, tmp_path / "plain.ipynb")

    def pytest_(*args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "--nbval", *args, "plain.ipynb", "-p",
                               "no:cacheprovider", "-q"], cwd=tmp_path, env={**_clean_env(), **env},
                              capture_output=True, text=True, timeout=300)

    out = pytest_("--qwen-replay")
    assert out.returncode == 1
    assert "plain.ipynb has no cassette: plain.cassettes/" in out.stdout and "qwen-nb record" in out.stdout
    out = pytest_("--qwen-record", "--qwen-upstream", emulator.url + "/ap-southeast-1",
                  DASHSCOPE_API_KEY=emulator.key())
    assert out.returncode == 0, out.stdout
    cassette = Cassette.load(tmp_path / "plain.cassettes")
    assert len(cassette.interactions) == 1
    assert not any(emulator.key() in p.read_text() for p in cassette.files())
    out = pytest_("--qwen-replay")  # no key, no emulator: the cassette answers
    assert out.returncode == 0, out.stdout


def test_the_tutorial_notebook_is_a_jupytext_pair_with_a_clean_cassette():
    """notebooks/11_record_and_replay: its cassette loads, names its routes, holds no key (make test replays it)."""
    from qwen_nb.notebooks import scan_cassette, scan_notebook

    nb = ROOT / "notebooks" / "11_record_and_replay.ipynb"
    assert nb.with_suffix(".py").read_text(encoding="utf-8").count("formats: ipynb,py:percent") == 1
    cassette = Cassette.load(cassette_dir(nb))
    assert cassette.interactions and set(cassette.routes) == {"default"}
    assert any("events" in i.response_body for i in cassette.interactions)
    assert scan_cassette(cassette.path, use_env=False, allow_demo_keys=False) == []
    assert scan_notebook(nb, use_env=False, allow_demo_keys=False) == []
    from qwen_nb.emulator.config import demo_keys

    text = "".join(p.read_text(encoding="utf-8") for p in cassette.files())
    assert not any(k in text for k in demo_keys())
