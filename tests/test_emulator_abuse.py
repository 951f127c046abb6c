"""The emulator under load and abuse: huge bodies, long inputs, the log, Retry-After, stalled and vanishing clients."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
import time

import dashscope
import httpx
import openai
import pytest

from qwen_nb.emulator import Emulator
from qwen_nb.emulator import state as state_mod
from qwen_nb.emulator.replies import prompt_tokens
from qwen_nb.errors import RateLimitError
from qwen_nb.ledger import Ledger
from qwen_nb.session import Session

SG = "ap-southeast-1"
HELLO = [{"role": "user", "content": "Say hello"}]
ESSAY = "The history of bridges runs from fallen logs to steel cables strung between towers. " * 3000  # ~250 KB


def oa(emu, key=None, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=emu.base_url(SG, "openai"), api_key=key or emu.key(),
                         max_retries=kw.pop("max_retries", 0), **kw)


def ds_call(emu, **kw):
    return dashscope.Generation.call(api_key=emu.key(), base_address=emu.base_url(SG, "dashscope"), **kw)


@pytest.fixture(scope="module")
def guarded():
    """An emulator with small limits: 1 MB bodies, a 0.5 s client timeout, 8 connections."""
    with Emulator(max_body_bytes=1_000_000, client_timeout=0.5, max_connections=8) as emu:
        yield emu


@pytest.fixture
def small(guarded):
    guarded.reset()
    yield guarded
    guarded.reset()


# -- 1. big bodies and long inputs ---------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_in_each_protocols_shape(small):
    big = [{"role": "user", "content": "word " * 400_000}]  # 2 MB
    with pytest.raises(openai.BadRequestError) as exc:
        oa(small).chat.completions.create(model="qwen-plus", messages=big)
    err = exc.value.body
    assert exc.value.code == "invalid_parameter_error" and err["type"] == "invalid_request_error"
    assert "too large" in err["message"] and "1000000 bytes" in err["message"]
    assert exc.value.response.json()["request_id"] == exc.value.response.headers["x-request-id"]
    r = ds_call(small, model="qwen-plus", messages=big)
    assert r.status_code == 400 and r.code == "InvalidParameter" and "too large" in r.message and r.request_id
    # a chunked body (no Content-Length) is cut off once it passes the limit
    chunks = (b" " * 100_000 for _ in range(50))
    r = httpx.post(small.base_url(SG, "openai") + "/chat/completions", content=chunks,
                   headers={"Authorization": f"Bearer {small.key()}"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter_error"
    # the connection pool and the emulator are fine afterwards
    assert oa(small).chat.completions.create(model="qwen-plus", messages=HELLO).choices[0].message.content
    refused = [q for q in small.requests if q.status == 400]
    assert len(refused) == 3 and all(q.body is None and q.body_bytes > 1_000_000 for q in refused)


def test_an_input_past_the_models_context_is_refused_like_the_service(emu):
    long = [{"role": "user", "content": "word " * 40_000}]  # 40k tokens > qwen-max's 32,768
    with pytest.raises(openai.BadRequestError) as exc:
        oa(emu).chat.completions.create(model="qwen-max", messages=long)
    assert exc.value.code == "invalid_parameter_error"
    assert exc.value.body["message"].endswith("InvalidParameter: Range of input length should be [1, 32768]")
    r = ds_call(emu, model="qwen-max", messages=long, result_format="message")
    assert r.status_code == 400 and r.code == "InvalidParameter"
    assert r.message == "Range of input length should be [1, 32768]"
    assert oa(emu).chat.completions.create(model="qwen-plus", messages=long).usage.prompt_tokens > 40_000


def test_a_big_prompt_is_answered_off_the_event_loop_with_the_same_counts(emu):
    messages = [{"role": "user", "content": ESSAY}]
    expected = prompt_tokens([{"role": "user", "text": ESSAY, "images": []}])
    r = oa(emu).chat.completions.create(model="qwen-plus", messages=messages)
    assert r.usage.prompt_tokens == expected and "bridges" in r.choices[0].message.content.lower()
    chunks = list(oa(emu).chat.completions.create(model="qwen-plus", messages=messages, stream=True,
                                                  stream_options={"include_usage": True}))
    assert chunks[-1].usage.prompt_tokens == expected
    d = ds_call(emu, model="qwen-plus", messages=messages, result_format="message")
    assert d.status_code == 200 and d.usage.input_tokens == expected
    # the same request again answers the same (the reply is deterministic wherever it is built)
    again = oa(emu).chat.completions.create(model="qwen-plus", messages=messages)
    assert again.choices[0].message.content == r.choices[0].message.content
    rec = emu.requests[-1]
    assert rec.body is None and rec.body_bytes > 200_000  # too big to keep, but summarised
    assert rec.model == "qwen-plus" and rec.messages == 1 and rec.preview == ESSAY[:200]


def test_the_helper_process_stops_with_the_emulator():
    with Emulator() as emu:
        oa(emu).chat.completions.create(model="qwen-plus", messages=[{"role": "user", "content": ESSAY}])
        offload = emu._handler.offload
        proc = offload._proc
        assert proc is not None and proc.poll() is None
    assert proc.wait(10) is not None and offload._proc is None


# -- 2. the request log ----------------------------------------------------------------------------


def test_each_request_is_summarised_and_counted(emu):
    key = emu.key("team-a")
    oa(emu, key=emu.key("team-a")).chat.completions.create(
        model="qwen-plus", messages=[{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": "Explain tides " * 40}])
    list(oa(emu).chat.completions.create(model="qwen-turbo", messages=HELLO, stream=True))
    list(ds_call(emu, model="qwen-plus", messages=HELLO, stream=True, incremental_output=True))
    first, second, third = emu.requests[-3:]
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)
    assert first.endpoint == "/compatible-mode/v1/chat/completions" and first.region == SG
    assert first.workspace == emu.config.workspace("team-a").id and first.authenticated
    assert first.key == "sk-…" + key[-4:] and key not in repr(first)
    assert first.model == "qwen-plus" and first.stream is False and first.messages == 2
    assert first.preview == ("Explain tides " * 40)[:200] and len(first.preview) == 200
    assert first.body["model"] == "qwen-plus" and first.body_bytes > 500
    assert second.stream is True and second.model == "qwen-turbo"
    assert third.endpoint == "/api/v1/services/aigc/text-generation/generation" and third.stream is True
    c = emu.counters()
    assert c["total"] == 3 and c["chat"] == 3 and c["unauthenticated"] == 0
    assert c["by_model"] == {"qwen-plus": 2, "qwen-turbo": 1} and c["by_status"] == {"200": 3}
    assert httpx.get(emu.url + "/_emulator/counters").json() == c
    # the control endpoint pages by seq and limits by count
    got = httpx.get(emu.url + "/_emulator/requests", params={"since": 1}).json()
    assert [r["seq"] for r in got] == [2, 3] and got[0]["model"] == "qwen-turbo"
    assert [r["seq"] for r in httpx.get(emu.url + "/_emulator/requests", params={"limit": 1}).json()] == [3]
    assert httpx.get(emu.url + "/_emulator/requests", params={"limit": "-1"}).status_code == 400
    emu.reset()
    assert emu.requests == [] and emu.counters()["total"] == 0


def test_requests_without_a_valid_key_are_counted_but_their_bodies_never_kept(emu):
    secret = "my confidential prompt about the merger"
    with pytest.raises(openai.AuthenticationError):
        oa(emu, key="sk-not-a-real-key").chat.completions.create(
            model="qwen-plus", messages=[{"role": "user", "content": secret}])
    r = httpx.post(emu.base_url(SG, "openai") + "/chat/completions",  # no key at all
                   json={"model": "qwen-plus", "messages": [{"role": "user", "content": secret}]})
    assert r.status_code == 401
    recs = emu.requests
    assert len(recs) == 2 and all(r.status == 401 and not r.authenticated for r in recs)
    assert all(r.body is None and r.preview == "" and r.model is None and r.body_bytes > 0 for r in recs)
    assert secret not in httpx.get(emu.url + "/_emulator/requests").text
    assert "sk-not-a-real-key" not in repr(recs)
    c = emu.counters()
    assert c["total"] == 2 and c["unauthenticated"] == 2 and c["by_status"] == {"401": 2}


def test_odd_paths_are_logged_small_and_counted_together(emu):
    auth = {"Authorization": f"Bearer {emu.key()}"}
    for i in range(3):
        assert httpx.get(f"{emu.url}/{SG}/compatible-mode/v1/x{i}" + "y" * 5000, headers=auth).status_code == 404
    assert httpx.get(f"{emu.url}/mars-1/" + "z" * 5000).status_code == 404
    recs = emu.requests
    assert all(r.endpoint == "(other)" and len(r.path) <= 300 for r in recs)
    assert recs[-1].region is None and emu.counters()["by_endpoint"] == {"(other)": 4}


def test_the_log_is_bounded_and_old_entries_drop_their_bodies(monkeypatch):
    monkeypatch.setattr(state_mod, "MAX_RECORDED", 50)
    monkeypatch.setattr(state_mod, "KEEP_BODIES", 10)
    from qwen_nb.emulator.config import default_config

    st = state_mod.EmulatorState(default_config())
    for i in range(120):
        st.record(state_mod.RecordedRequest(
            method="POST", path="/x", body={"n": i}, headers={"a": "b"}, status=200 if i % 3 else 500,
            time=0.0, request_id=str(i), endpoint="/compatible-mode/v1/chat/completions", model=f"m{i % 2}",
            authenticated=True), chat=True)
    recs = st.requests
    assert len(recs) == 50 and recs[0].seq == 71 and recs[-1].seq == 120
    assert [r.body for r in recs if r.body is not None] == [{"n": i} for i in range(110, 120)]
    assert all(r.headers == {} for r in recs[:-10])
    c = st.counters()  # exact, whatever the log dropped
    assert c["total"] == c["chat"] == 120 and c["by_status"] == {"200": 80, "500": 40}
    assert c["by_model"] == {"m0": 60, "m1": 60}
    assert [r.seq for r in st.requests_since(115)] == [116, 117, 118, 119, 120]
    assert [r.seq for r in st.requests_since(0, 2)] == [119, 120]


# -- 3. Retry-After and random faults --------------------------------------------------------------


def test_429_sends_no_retry_after_unless_asked(emu):
    emu.set_faults(rate_limit=1)
    c = oa(emu)
    c.chat.completions.create(model="qwen-plus", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as exc:
        c.chat.completions.create(model="qwen-plus", messages=HELLO)
    assert "retry-after" not in exc.value.response.headers
    emu.set_faults(retry_after=0.2)
    with pytest.raises(openai.RateLimitError) as exc:
        c.chat.completions.create(model="qwen-plus", messages=HELLO)
    h = exc.value.response.headers
    assert h["retry-after"] == "1" and h["retry-after-ms"] == "200"
    r = ds_call(emu, model="qwen-plus", messages=HELLO)
    assert r.status_code == 429 and r.code == "Throttling.RateQuota"


def test_injected_throttling_carries_retry_after_into_the_session(emu):
    emu.set_faults(throttle_rate=1.0, retry_after=0.05)
    s = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"), max_retries=0)
    try:
        for api in ("openai", "dashscope"):
            with pytest.raises(RateLimitError) as exc:
                s.chat("hi", api=api)
            assert exc.value.retry_after == pytest.approx(0.05)
        # with retries on, the session waits as asked and gets through once throttling stops
        emu.set_faults(throttle_rate=0.0, fail_next=1, fail_status=429)
        s.retry = type(s.retry)(max_retries=2)
        r = s.chat("hi")
        assert r.attempts == 2
    finally:
        s.close()


def test_random_faults_hit_about_their_share_and_repeat_after_reset(emu):
    def run() -> list[int]:
        out = []
        for _ in range(60):
            r = httpx.post(emu.base_url(SG, "openai") + "/chat/completions", json={"model": "qwen-plus",
                           "messages": HELLO}, headers={"Authorization": f"Bearer {emu.key()}"})
            out.append(r.status_code)
        return out

    emu.set_faults(fail_rate=0.25, throttle_rate=0.1)
    first = run()
    assert 5 <= first.count(500) <= 30 and 1 <= first.count(429) <= 15 and first.count(200) >= 20
    emu.reset()
    emu.set_faults(fail_rate=0.25, throttle_rate=0.1)
    assert run() == first
    with pytest.raises(Exception, match="fraction"):
        emu.set_faults(fail_rate=1.5)


# -- 4. stalled clients and too many connections ---------------------------------------------------


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    finally:
        sock.close()


def test_stalled_clients_are_disconnected(small):
    port = small.port
    idle = socket.create_connection(("127.0.0.1", port))
    assert _closed_by_server(idle)
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"POST /ap-southeast-1/compatible-mode/v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    assert _closed_by_server(half)
    # a trickle of header bytes does not keep the connection alive
    trickle = socket.create_connection(("127.0.0.1", port))
    sent = 0
    with pytest.raises(OSError):
        for b in b"GET /ap-southeast-1/compatible-mode/v1/models HTTP/1.1\r\nX-Slow: " + b"a" * 400:
            trickle.send(bytes([b]))
            sent += 1
            time.sleep(0.01)
    assert sent < 400
    trickle.close()
    # a body that stops halfway: closed, and logged as a request whose client went away
    body = socket.create_connection(("127.0.0.1", port))
    body.sendall(f"POST /ap-southeast-1/compatible-mode/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 f"Authorization: Bearer {small.key()}\r\nContent-Length: 500\r\n\r\n{{\"model\":".encode())
    assert _closed_by_server(body)
    deadline = time.monotonic() + 10
    while not small.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    (rec,) = small.requests
    assert rec.status == 499 and rec.body is None and rec.body_bytes == 500
    # a client that keeps its connection busy is not affected
    c = oa(small)
    for _ in range(3):
        assert c.chat.completions.create(model="qwen-plus", messages=HELLO).choices


def test_bodies_waiting_for_the_emulator_are_not_taken_for_stalled_clients():
    """Big bodies queue for the helper process; meanwhile the server stops reading them: not a client stall."""
    from concurrent.futures import ThreadPoolExecutor

    body = json.dumps({"model": "qwen-plus", "messages": [{"role": "user", "content": ESSAY * 6}]}).encode()
    with Emulator(client_timeout=0.2) as emu:
        def one(_: int) -> int:
            return httpx.post(emu.base_url(SG, "openai") + "/chat/completions", content=body, timeout=120,
                              headers={"Authorization": f"Bearer {emu.key()}",
                                       "Content-Type": "application/json"}).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(one, range(8))) == [200] * 8


def test_guard_settings_are_checked():
    from qwen_nb.errors import InputError

    for bad in ({"client_timeout": 0}, {"max_connections": -1}, {"max_body_bytes": "big"}):
        with pytest.raises(InputError, match="positive"):
            Emulator(**bad)


def test_connections_beyond_the_limit_get_503_then_recover(small):
    hogs = [socket.create_connection(("127.0.0.1", small.port)) for _ in range(8)]
    try:
        deadline = time.monotonic() + 10
        while True:  # once the server has taken the hogs in (at once when idle; later on a busy machine)
            r = httpx.get(small.base_url(SG, "openai") + "/models", headers={"Authorization": f"Bearer {small.key()}"})
            if r.status_code == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert r.status_code == 503
    finally:
        for s in hogs:
            s.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = httpx.get(small.base_url(SG, "openai") + "/models", headers={"Authorization": f"Bearer {small.key()}"})
        if r.status_code == 200:
            break
        time.sleep(0.05)
    assert r.status_code == 200


# -- 5. clients that go away -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An emulator in its own process (``qwen-nb emulator``), its stderr captured in a file."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("emulator") / "stderr.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "qwen_nb.emulator.cli", "--port", str(port), "--tps", "40",
                                 "--reply-tokens", "200"], stdout=subprocess.DEVNULL, stderr=err, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/_emulator/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        key = next(w for w in httpx.get(url + "/_emulator/workspaces").json() if w["name"] == "default")["keys"][0]
        yield url, port, key, log
    finally:
        proc.terminate()
        proc.wait(10)


def test_clients_that_disconnect_leave_no_traceback(served):
    url, port, key, log = served
    base = url + f"/{SG}/compatible-mode/v1"
    # the openai SDK stops reading a stream and closes it
    client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
    stream = client.chat.completions.create(model="qwen-plus", stream=True, messages=HELLO)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    client.close()

    # asyncio tasks cancelled mid-stream
    async def cancelled() -> None:
        ac = openai.AsyncOpenAI(base_url=base, api_key=key, max_retries=0)

        async def one() -> None:
            async for _ in await ac.chat.completions.create(model="qwen-plus", stream=True, messages=HELLO):
                pass

        tasks = [asyncio.ensure_future(one()) for _ in range(10)]
        await asyncio.sleep(0.5)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ac.close()

    asyncio.run(cancelled())
    # a raw connection reset (RST) mid-stream, on the native protocol
    body = json.dumps({"model": "qwen-plus", "input": {"messages": HELLO}, "parameters": {"incremental_output": True}})
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"POST /{SG}/api/v1/services/aigc/text-generation/generation HTTP/1.1\r\nHost: x\r\n"
              f"Authorization: Bearer {key}\r\nX-DashScope-SSE: enable\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    time.sleep(0.2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    # and a client that leaves halfway through sending its body
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"POST /{SG}/compatible-mode/v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
              "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"model\": ".encode())
    time.sleep(0.2)
    s.close()
    time.sleep(1.0)  # let the server notice every disconnect (streams are paced at 40 tokens/s)
    assert httpx.get(url + "/_emulator/health").status_code == 200
    statuses = [r["status"] for r in httpx.get(url + "/_emulator/requests").json()]
    assert statuses.count(200) == 12 and statuses[-1] == 499
    text = log.read_text()
    assert "Traceback" not in text and "ERROR" not in text, text


def test_bad_emulator_settings_are_guided(tmp_path):
    """A port out of range, an infinite delay or a workspace with no key: a clear InputError, nothing started."""
    from qwen_nb.emulator.config import parse_config
    from qwen_nb.errors import InputError

    for kw in ({"port": -1}, {"port": 99999}, {"ttft": float("inf")}, {"latency": float("nan")}):
        with pytest.raises(InputError):
            Emulator(**kw)
    with pytest.raises(InputError, match="no key"):
        parse_config({"workspace": [{"name": "x", "id": "llm-xxxx1", "region": "ap-southeast-1", "keys": []}]})
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "qwen_nb.cli", "emulator", "--port", "99999"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "0 to 65535" in proc.stderr and "Traceback" not in proc.stderr


def test_the_banner_masks_keys_from_a_config_file(tmp_path):
    import subprocess
    import sys

    secret = "sk-" + "5f" * 16
    cfg = tmp_path / "class.toml"
    cfg.write_text(f'[[workspace]]\nname = "t"\nid = "llm-teach1"\nregion = "ap-southeast-1"\nkeys = ["{secret}"]\n')
    proc = subprocess.Popen([sys.executable, "-m", "qwen_nb.cli", "emulator", "--port", "0", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "QWEN_NB_EMULATOR" in line:
                break
    finally:
        proc.terminate()
        proc.wait(10)
    text = "".join(lines)
    assert "llm-teach1" in text and secret not in text and "sk-…5f5f" in text
