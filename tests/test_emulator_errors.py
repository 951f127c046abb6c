"""Errors in each protocol's shape, faults, validation, recording and configuration."""

from __future__ import annotations

import json
import subprocess
import sys

import dashscope
import httpx
import openai
import pytest
import requests

from qwen_nb.emulator import Emulator
from qwen_nb.emulator.config import default_profiles, load_config, parse_config
from qwen_nb.errors import InputError, error_class

SG, BJ = "ap-southeast-1", "cn-beijing"
HELLO = [{"role": "user", "content": "Say hello"}]


def oa(emu, profile="default", region=SG, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=emu.base_url(region, "openai"), api_key=emu.key(profile),
                         max_retries=kw.pop("max_retries", 0), **kw)


def compat_post(emu, body, key=None, region=SG, content=None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or emu.key()}"}
    url = emu.base_url(region, "openai") + "/chat/completions"
    if content is not None:
        return httpx.post(url, content=content, headers={**headers, "Content-Type": "application/json"})
    return httpx.post(url, json=body, headers=headers)


def native_post(emu, body, key=None, region=SG, headers=None) -> httpx.Response:
    url = emu.base_url(region, "dashscope") + "/services/aigc/text-generation/generation"
    return httpx.post(url, json=body, headers={"Authorization": f"Bearer {key or emu.key()}", **(headers or {})})


def assert_compat_error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status
    body = resp.json()
    assert set(body["error"]) == {"code", "message", "type", "param"}
    assert body["error"]["code"] == code
    assert body["request_id"] == resp.headers["x-request-id"]
    return body["error"]


def sse_error(resp: httpx.Response) -> dict:
    """The ``data`` of a native ``event:error`` body (a stream refused before its first event)."""
    assert resp.headers["content-type"].startswith("text/event-stream")
    lines = resp.text.split("\n")
    assert lines[:3] == ["id:1", "event:error", f":HTTP_STATUS/{resp.status_code}"]
    return json.loads(lines[3][len("data:"):])


def assert_native_error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status
    body = sse_error(resp) if resp.headers["content-type"].startswith("text/event-stream") else resp.json()
    assert set(body) == {"code", "message", "request_id"}
    assert body["code"] == code
    assert body["request_id"] == resp.headers["x-request-id"]
    return body


# -- authentication, grants, models ------------------------------------------------------


def test_sub_workspace_model_not_granted_is_403_in_both_protocols(emu):
    with pytest.raises(openai.PermissionDeniedError) as exc:
        oa(emu, "team-a").chat.completions.create(model="qwen-max", messages=HELLO)
    assert exc.value.status_code == 403 and exc.value.code == "Model.AccessDenied"
    assert exc.value.body == {"message": "Model access denied.", "type": "Model.AccessDenied", "param": None,
                              "code": "Model.AccessDenied"}
    body = exc.value.response.json()
    assert body["request_id"] == exc.value.response.headers["x-request-id"] and body["id"]
    r = dashscope.Generation.call(api_key=emu.key("team-a"), base_address=emu.base_url(SG, "dashscope"),
                                  model="qwen-max", messages=HELLO, result_format="message")
    assert r.status_code == 403 and r.code == "Model.AccessDenied" and r.message == "Model access denied."
    assert r.request_id
    assert error_class(403, r.code).__name__ == "ModelNotGrantedError"
    # granted model works, and the default workspace calls everything
    assert oa(emu, "team-a").chat.completions.create(model="qwen-plus", messages=HELLO).choices
    assert oa(emu).chat.completions.create(model="qwen-max", messages=HELLO).choices


def test_key_of_another_region_or_garbage_is_401(emu):
    with pytest.raises(openai.AuthenticationError) as exc:
        oa(emu, "default", region=BJ).chat.completions.create(model="qwen-plus", messages=HELLO)
    assert exc.value.code == "invalid_api_key"
    assert exc.value.body["message"] == "Incorrect API key provided."  # the service's compatible wording
    r = dashscope.Generation.call(api_key=emu.key("beijing"), base_address=emu.base_url(SG, "dashscope"),
                                  model="qwen-plus", messages=HELLO)
    assert r.status_code == 401 and r.code == "InvalidApiKey" and r.message == "Invalid API-key provided."
    garbage = compat_post(emu, {"model": "qwen-plus", "messages": HELLO}, key="sk-" + "0" * 32)
    assert_compat_error(garbage, 401, "invalid_api_key")
    missing = httpx.post(emu.base_url(SG, "dashscope") + "/services/aigc/text-generation/generation",
                         json={"model": "qwen-plus", "input": {"messages": HELLO}})
    assert_native_error(missing, 401, "InvalidApiKey")
    # a known key on a region that has no workspaces at all
    hk = compat_post(emu, {"model": "qwen-plus", "messages": HELLO}, region="cn-hongkong")
    assert_compat_error(hk, 401, "invalid_api_key")


def test_unknown_model_is_404_compatible_and_400_native(emu):
    with pytest.raises(openai.NotFoundError) as exc:
        oa(emu).chat.completions.create(model="qwen-pluss", messages=HELLO)
    assert exc.value.code == "model_not_found" and "qwen-pluss" in exc.value.message
    r = dashscope.Generation.call(api_key=emu.key(), base_address=emu.base_url(SG, "dashscope"),
                                  model="qwen-pluss", messages=HELLO)
    assert r.status_code == 400 and r.code == "InvalidParameter" and r.message == "Model not exist."
    assert error_class(400, r.code, r.message).__name__ == "ModelNotFoundError"
    # dated snapshots of known models are fine
    assert oa(emu).chat.completions.create(model="qwen-plus-2025-07-28", messages=HELLO).choices


def test_model_not_offered_in_region_is_404(tmp_path):
    cfg = tmp_path / "hk.toml"
    cfg.write_text('[[workspace]]\nname = "hk"\nid = "llm-hk"\nregion = "cn-hongkong"\ndefault = true\n'
                   'keys = ["sk-1111111111111111aaaaaaaaaaaaaaaa"]\nmodels = "all"\n')
    with Emulator(cfg) as emu:
        r = compat_post(emu, {"model": "qwen-plus", "messages": HELLO}, region="cn-hongkong")
        err = assert_compat_error(r, 404, "model_not_found")
        assert "cn-hongkong" in err["message"]


def test_dashscope_v2_client_raises_its_error_classes(emu):
    from dashscope.v2 import errors as v2

    def client(profile, region=SG):
        return dashscope.Client(api_key=emu.key(profile), base_url=emu.base_url(region, "dashscope"), max_retries=0)

    with pytest.raises(v2.PermissionDeniedError) as exc:
        client("team-a").chat.completions.create(model="qwen-max", messages=HELLO)
    assert exc.value.code == "Model.AccessDenied" and exc.value.status_code == 403 and exc.value.request_id
    with pytest.raises(v2.AuthenticationError):
        client("default", BJ).chat.completions.create(model="qwen-plus", messages=HELLO)
    with pytest.raises(v2.BadRequestError) as exc:  # the native API: 400 InvalidParameter "Model not exist."
        client("default").chat.completions.create(model="nope-model", messages=HELLO)
    assert exc.value.code == "InvalidParameter" and exc.value.message == "Model not exist."
    with pytest.raises(v2.BadRequestError):
        client("default").chat.completions.create(model="qwen3-8b", messages=HELLO)
    emu.set_faults(fail_next=1)
    with pytest.raises(v2.InternalServerError):
        client("default").chat.completions.create(model="qwen-plus", messages=HELLO)
    emu.set_faults(rate_limit=1)
    client("default").chat.completions.create(model="qwen-plus", messages=HELLO)
    with pytest.raises(v2.RateLimitError) as exc:
        client("default").chat.completions.create(model="qwen-plus", messages=HELLO)
    assert exc.value.code == "Throttling.RateQuota"


# -- validation ------------------------------------------------------------------------------

COMPAT_BAD = [
    ({"model": "qwen-plus"}, "messages"),
    ({"model": "qwen-plus", "messages": "hello"}, "messages"),
    ({"model": "qwen-plus", "messages": []}, "messages"),
    ({"model": "qwen-plus", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ({"model": "qwen-plus", "messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
    ({"model": "qwen-plus", "messages": HELLO, "max_tokens": "ten"}, "max_tokens"),
    ({"model": "qwen-plus", "messages": HELLO, "temperature": "hot"}, "temperature"),
    ({"model": "qwen-plus", "messages": HELLO, "stream": "yes"}, "stream"),
    ({"model": "qwen-plus", "messages": HELLO, "tools": [{"type": "function"}]}, "tools[0]"),
    ({"model": "qwen-plus", "messages": HELLO, "response_format": {"type": "yaml"}}, "response_format"),
    ({"model": 7, "messages": HELLO}, "model"),
    ([1, 2], "JSON object"),
]


@pytest.mark.parametrize(("body", "field"), COMPAT_BAD)
def test_bad_compatible_bodies_get_400_naming_the_field(emu, body, field):
    err = assert_compat_error(compat_post(emu, body), 400, "invalid_parameter_error")
    assert field in err["message"]
    assert err["type"] == "invalid_request_error"


def test_a_missing_model_is_answered_as_the_service_does(emu):
    err = assert_compat_error(compat_post(emu, {"messages": HELLO}), 400, "invalid_request_error")
    assert err == {"code": "invalid_request_error", "message": "you must provide a model parameter.",
                   "type": "invalid_request_error", "param": "model"}
    body = assert_native_error(native_post(emu, {"input": {"messages": HELLO}}), 400, "BadRequest.EmptyModel")
    assert body["message"] == 'Required parameter "model" missing from request.'


NATIVE_BAD = [
    ({"input": {"messages": HELLO}}, "BadRequest.EmptyModel", "model"),
    ({"model": "qwen-plus"}, "BadRequest.EmptyInput", "input"),
    ({"model": "qwen-plus", "input": {}}, "InvalidParameter", "messages"),
    ({"model": "qwen-plus", "input": {"messages": [{"role": "user"}]}}, "InvalidParameter", "input.messages[0]"),
    ({"model": "qwen-plus", "input": {"messages": HELLO}, "parameters": {"result_format": "xml"}},
     "InvalidParameter", "result_format"),
    ({"model": "qwen-plus", "input": {"messages": HELLO}, "parameters": {"incremental_output": "no"}},
     "InvalidParameter", "incremental_output"),
    ({"model": "qwen-plus", "input": {"messages": HELLO}, "parameters": {"top_p": 3}}, "InvalidParameter", "top_p"),
]


@pytest.mark.parametrize(("body", "code", "field"), NATIVE_BAD)
def test_bad_native_bodies_get_400_naming_the_field(emu, body, code, field):
    body_ = assert_native_error(native_post(emu, body), 400, code)
    assert field in body_["message"]


def test_non_json_and_empty_bodies(emu):
    assert_compat_error(compat_post(emu, None, content=b"{not json"), 400, "invalid_parameter_error")
    assert_compat_error(compat_post(emu, None, content=b""), 400, "invalid_parameter_error")
    url = emu.base_url(SG, "dashscope") + "/services/aigc/text-generation/generation"
    r = httpx.post(url, content=b"\xff\xfe", headers={"Authorization": f"Bearer {emu.key()}"})
    assert_native_error(r, 400, "InvalidParameter")


def test_paths_methods_and_regions(emu):
    auth = {"Authorization": f"Bearer {emu.key()}"}
    r = httpx.get(emu.url + "/ap-southeast-1/compatible-mode/v1/nothing", headers=auth)
    assert_compat_error(r, 404, "not_found")
    r = httpx.get(emu.url + "/mars-1/api/v1/services/aigc/text-generation/generation", headers=auth)
    assert_native_error(r, 404, "NotFound")
    r = httpx.get(emu.base_url(SG, "openai") + "/chat/completions", headers=auth)
    assert_compat_error(r, 405, "method_not_allowed")
    r = httpx.post(emu.base_url(SG, "dashscope") + "/models/permissions", headers=auth, json={})
    assert_native_error(r, 404, "NotFound")  # only on the workspace gateway


def test_vision_model_on_the_text_endpoint_is_refused(emu):
    r = native_post(emu, {"model": "qwen-vl-plus", "input": {"messages": HELLO}})
    assert "url error" in assert_native_error(r, 400, "InvalidParameter")["message"]


def test_native_thinking_needs_incremental_output(emu):
    r = native_post(emu, {"model": "qwen-plus", "input": {"messages": HELLO},
                          "parameters": {"enable_thinking": True, "incremental_output": False}},
                    headers={"X-DashScope-SSE": "enable"})
    assert "incremental_output" in assert_native_error(r, 400, "InvalidParameter")["message"]


# -- faults ----------------------------------------------------------------------------------


def test_injected_500s_then_recovery_and_sdk_retry(emu):
    emu.set_faults(fail_next=2)
    with pytest.raises(openai.InternalServerError) as exc:
        oa(emu).chat.completions.create(model="qwen-plus", messages=HELLO)
    assert exc.value.code == "internal_error"
    # the second injected failure is retried away by the SDK
    r = oa(emu, max_retries=1).chat.completions.create(model="qwen-plus", messages=HELLO)
    assert r.choices[0].message.content
    assert [q.status for q in emu.requests][-3:] == [500, 500, 200]
    emu.set_faults(fail_next=1, fail_status=503)
    r = native_post(emu, {"model": "qwen-plus", "input": {"messages": HELLO}})
    assert_native_error(r, 503, "ModelUnavailable")  # the service's 503 code


def test_rate_limit_per_key(emu):
    emu.set_faults(rate_limit=2, rate_window=60)
    c = oa(emu)
    c.chat.completions.create(model="qwen-plus", messages=HELLO)
    c.chat.completions.create(model="qwen-plus", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as exc:
        c.chat.completions.create(model="qwen-plus", messages=HELLO)
    assert exc.value.code == "limit_requests"
    assert exc.value.body["message"] == "You have exceeded your current request limit."  # the compatible wording
    # another key has its own budget
    assert oa(emu, "team-a").chat.completions.create(model="qwen-plus", messages=HELLO).choices
    r = dashscope.Generation.call(api_key=emu.key(), base_address=emu.base_url(SG, "dashscope"),
                                  model="qwen-plus", messages=HELLO)
    assert r.status_code == 429 and r.code == "Throttling.RateQuota"
    emu.reset()
    assert c.chat.completions.create(model="qwen-plus", messages=HELLO).choices


def test_stream_cut_surfaces_in_the_sdks(emu):
    emu.set_faults(cut_after=4, cut_streams=3)
    got = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oa(emu).chat.completions.create(model="qwen-plus", stream=True,
                                                     messages=[{"role": "user", "content": "Explain tides"}]):
            got.append(chunk)
    assert 1 <= len(got) <= 4
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        list(dashscope.Generation.call(api_key=emu.key(), base_address=emu.base_url(SG, "dashscope"),
                                       model="qwen-plus", messages=HELLO, stream=True, incremental_output=True,
                                       result_format="message"))
    client = dashscope.Client(api_key=emu.key(), base_url=emu.base_url(SG, "dashscope"), max_retries=0)
    with pytest.raises(httpx.RemoteProtocolError):
        list(client.chat.completions.create(model="qwen-plus", messages=HELLO, stream=True))
    # cut_streams=3 is used up: the next stream completes
    chunks = list(oa(emu).chat.completions.create(model="qwen-plus", messages=HELLO, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_pacing_is_configurable_at_runtime(emu):
    import time

    emu.set_faults(ttft=0.15, latency=0.05)
    t = time.perf_counter()
    oa(emu).chat.completions.create(model="qwen-plus", messages=HELLO)
    assert time.perf_counter() - t >= 0.2
    assert emu.state.pacing.ttft == 0.15
    with pytest.raises(InputError):
        emu.set_faults(ttft=-1)
    with pytest.raises(InputError):
        emu.set_faults(warp_speed=9)


def test_control_endpoint_for_other_processes(emu):
    r = httpx.post(emu.url + "/_emulator/faults", json={"fail_next": 1})
    assert r.status_code == 200 and r.json()["fail_next"] == 1
    with pytest.raises(openai.InternalServerError):
        oa(emu).chat.completions.create(model="qwen-plus", messages=HELLO)
    assert httpx.post(emu.url + "/_emulator/faults", json={"bogus": 1}).status_code == 400
    assert httpx.post(emu.url + "/_emulator/reset").json()["fail_next"] == 0
    assert httpx.get(emu.url + "/_emulator/requests").json() == []


# -- recording, profiles, config --------------------------------------------------------------


def test_requests_are_recorded_with_masked_keys(emu):
    key = emu.key("team-a")
    oa(emu, "team-a").chat.completions.create(model="qwen-plus", messages=HELLO, temperature=0.3)
    rec = emu.requests[-1]
    assert rec.method == "POST" and rec.path.endswith("/compatible-mode/v1/chat/completions")
    assert rec.body["temperature"] == 0.3 and rec["body"]["model"] == "qwen-plus"
    assert rec.headers["authorization"] == "Bearer sk-…" + key[-4:]
    assert key not in repr(emu.requests) and key not in httpx.get(emu.url + "/_emulator/requests").text
    emu.reset()
    assert emu.requests == []


def test_profiles_and_default_profiles(emu):
    profiles = emu.profiles()
    assert {"default", "team-a", "team-b", "beijing-lab", "beijing"} <= set(profiles)
    assert profiles["default"].models is None and profiles["default"].region == SG
    assert profiles["team-a"].models == ("qwen-plus", "qwen-flash", "qwen-vl-plus")
    assert profiles["team-a"].workspace == emu.config.workspace("team-a").id
    assert profiles["beijing-lab"].region == BJ
    assert all(p.source == "emulator" for p in profiles.values())
    assert default_profiles(emu.url) == profiles
    assert emu.key() not in repr(profiles)


def test_permissions_api_changes_grants_at_runtime(emu):
    ws = emu.config.workspace("team-a")
    url = emu.base_url(SG, "dashscope", "team-a") + "/models/permissions"
    auth = {"Authorization": f"Bearer {emu.key()}"}  # the account's (default workspace's) key
    r = httpx.post(url, headers=auth, json={"models": [{"model": "qwen-max", "inference": True}],
                                            "access_all_entities": "KEEP"})
    assert r.status_code == 200 and "qwen-max" in emu.grants("team-a")
    assert r.json() == {"request_id": r.headers["x-request-id"], "code": None, "message": None, "success": True,
                        "output": None}
    assert oa(emu, "team-a").chat.completions.create(model="qwen-max", messages=HELLO).choices
    r = httpx.post(url, headers=auth, json={"models": [], "access_all_entities": "CLOSE"})
    assert r.status_code == 200 and emu.grants("team-a") == ()
    with pytest.raises(openai.PermissionDeniedError):
        oa(emu, "team-a").chat.completions.create(model="qwen-plus", messages=HELLO)
    r = httpx.post(url, headers=auth, json={"models": [], "access_all_entities": "KEEP"})
    assert_native_error(r, 400, "InvalidParameter")
    # another workspace's key cannot change team-a's grants, nor can team-a's own key (the emulator's choice)
    other = {"Authorization": f"Bearer {emu.key('team-b')}"}
    assert httpx.post(url, headers=other, json={"access_all_entities": "OPEN"}).status_code == 401
    own = httpx.post(url, headers={"Authorization": f"Bearer {emu.key('team-a')}"},
                     json={"access_all_entities": "OPEN"})
    assert "permission" in assert_native_error(own, 403, "AccessDenied")["message"]
    assert emu.grants("team-a") == ()
    emu.reset()
    assert emu.grants("team-a") == ws.models


def test_config_files_and_errors(tmp_path):
    good = tmp_path / "emu.toml"
    good.write_text('[emulator]\nttft = 0.1\ntokens_per_second = 40\n\n[[workspace]]\nname = "lab"\nid = "llm-lab"\n'
                    'region = "singapore"\nkeys = ["sk-22222222222222222222222222222222"]\nmodels = ["qwen-plus"]\n')
    cfg = load_config(good)
    assert cfg.pacing.ttft == 0.1 and cfg.pacing.tokens_per_second == 40
    assert cfg.workspace("lab").region == SG and cfg.workspace("llm-lab").models == ("qwen-plus",)
    bad = tmp_path / "bad.toml"
    bad.write_text("[[workspace]\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(InputError, match="keys"):
        parse_config({"workspace": [{"name": "x", "id": "llm-x", "region": SG}]})
    with pytest.raises(InputError, match="Unknown setting"):
        parse_config({"emulator": {"speed": 1}, "workspace": [{"name": "x", "id": "i", "region": SG, "keys": []}]})
    with pytest.raises(InputError, match="region"):
        parse_config({"workspace": [{"name": "x", "id": "i", "region": "mars", "keys": ["sk-1"]}]})


def test_config_module_stays_cheap():
    code = ("import sys, qwen_nb.emulator.config as c; c.default_profiles('http://127.0.0.1:1'); "
            "from qwen_nb.emulator import Emulator; Emulator(); "
            "bad = [m for m in ('starlette', 'uvicorn', 'openai', 'dashscope') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_start_and_stop_quickly_on_a_free_port():
    with Emulator() as a, Emulator() as b:
        assert a.port != b.port
        assert httpx.get(a.url + "/_emulator/health").json() == {"ok": True}
    assert not a.running and not b.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(a.url + "/_emulator/health")


def test_a_json_schema_that_is_not_an_object_is_a_400_not_a_500(emu):
    import httpx

    r = httpx.post(emu.base_url("ap-southeast-1", "openai") + "/chat/completions",
                   headers={"Authorization": f"Bearer {emu.key('default')}"},
                   json={"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}],
                         "response_format": {"type": "json_schema", "json_schema": 5}})
    assert r.status_code == 400 and "json_schema" in r.json()["error"]["message"]
