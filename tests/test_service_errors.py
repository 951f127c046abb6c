"""Every documented answer of the service (``qwen_nb.facts.ERRORS``), from the emulator through the real SDKs.

For each row the emulator is set up the way the service comes to give that answer (a
workspace flag, a misuse, an injected fault, or ``fail_with`` for the rest); the call is made
with the ``openai`` SDK (compatible API) and the ``dashscope`` SDK (native API), streaming and
not. The HTTP status and code are the row's, and a ``Session`` turns the answer into the row's
class, retryability and fix. Streams fail both ways the service fails them: refused before
the first event, and midway (native ``event:error``, compatible ``data: {"error": ...}``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import dashscope
import httpx
import openai
import pytest
from dashscope.v2 import errors as ds_errors

from qwen_nb import errors, facts
from qwen_nb.catalog import models as catalog_models
from qwen_nb.emulator import Emulator
from qwen_nb.emulator.config import Flags, parse_config
from qwen_nb.ledger import Ledger
from qwen_nb.retry import RetryPolicy
from qwen_nb.session import Session

SG = "ap-southeast-1"
ROWS = list(facts.ERRORS.values())
PROTOCOLS = ("compatible", "native")
API_OF = {"compatible": "openai", "native": "dashscope"}
UNKNOWN_WS = "llm-doesnotexist0"


# ------------------------------------------------------------------------------ how each row comes about


@dataclass
class Case:
    """How to make the service answer one row."""

    #: flags of the calling workspace (``emu.set_workspace``)
    flags: dict[str, Any] = field(default_factory=dict)
    #: the workspace whose key calls
    profile: str = "default"
    model: str = "qwen-plus"
    prompt: str = "Say hello"
    #: request parameters the SDKs send as given (a Session checks them before sending)
    extra: dict[str, Any] = field(default_factory=dict)
    #: calls answered before the refused one (limits)
    warmup: int = 0
    #: ``emu.set_faults(...)``
    faults: dict[str, Any] = field(default_factory=dict)
    #: a key of no workspace
    key: str | None = None
    #: call the host of this workspace id
    workspace: str | None = None
    #: name another workspace in ``X-DashScope-WorkSpace`` (on the shared host)
    header: str | None = None
    #: how the row comes about naturally (False: ``fail_with``)
    natural: bool = True

    @property
    def session_ok(self) -> bool:
        """A Session can send it (it checks parameters and model names before sending)."""
        return not self.extra and bool(self.model)


NATURAL: dict[str, Case] = {
    "invalid_parameter": Case(extra={"temperature": 3.0}),
    "data_inspection": Case(flags={"blocked_words_input": ["forbidden"]}, prompt="Say the Forbidden word"),
    "data_inspection_output": Case(flags={"blocked_words_output": ["Qwen"]}, prompt="Who are you?"),
    "arrearage": Case(flags={"overdue": True}),
    "invalid_key": Case(key="sk-" + "0" * 32),
    "workspace_unknown": Case(workspace=UNKNOWN_WS),
    "model_denied": Case(profile="team-a", model="qwen-max"),
    "unpurchased": Case(flags={"unpurchased": ["qwen-max"]}, model="qwen-max"),
    "workspace_denied": Case(profile="team-a", header="team-b"),
    "free_tier_only": Case(flags={"free_tier_only": True}),
    "rate_limit": Case(flags={"rate_limit": 1}, warmup=1),
    "burst_rate": Case(flags={"burst_limit": 1}, warmup=1),
    "token_limit": Case(flags={"tokens_per_minute": 1}, warmup=1),
    "not_subscribed": Case(flags={"subscribed": False}),
    "budget": Case(flags={"budget_exhausted": True}),
    "prepaid_overdue": Case(flags={"bill_overdue": "prepaid"}),
    "postpaid_overdue": Case(flags={"bill_overdue": "postpaid"}),
    "internal": Case(faults={"fail_next": 1, "fail_status": 500}),
    "bad_gateway": Case(faults={"fail_next": 1, "fail_status": 502}),
    "unavailable": Case(faults={"fail_next": 1, "fail_status": 503}),
    "timeout": Case(faults={"fail_next": 1, "fail_status": 504}),
}
#: rows only one API gives for a misuse (the other gets its own row, tested apart)
NATURAL_IN = {
    ("native", "model_not_exist"): Case(model="qwen-pluss"),
    ("native", "bad_request"): Case(model=""),
    ("compatible", "model_not_found"): Case(model="qwen-pluss"),
}


def case_for(key: str, protocol: str, *, session: bool = False) -> Case:
    case = NATURAL_IN.get((protocol, key)) or NATURAL.get(key)
    if case is None or (session and not case.session_ok):
        return Case(flags={"fail_with": key}, natural=False)
    return case


#: a word of the fix each row's error must give (the action to take)
FIX_WORDS = {
    "invalid_parameter": "parameters", "model_not_exist": "spelling", "bad_request": "JSON body",
    "data_inspection": "rephrase", "data_inspection_output": "rephrase", "arrearage": "overdue bill",
    "invalid_key": "per region", "workspace_unknown": "workspace id", "model_denied": "grant",
    "access_denied": "grant", "async_only": "asynchronous", "unpurchased": "activate",
    "workspace_denied": "key belongs to", "app_denied": "application", "free_tier_only": "free tier only",
    "model_not_found": "spelling", "workspace_not_found": "workspace id", "not_found": "base URL",
    "method": "POST", "rate_limit": "concurrency", "burst_rate": "gradually", "token_limit": "tokens-per-minute",
    "free_quota": "another model", "not_subscribed": "subscribed", "budget": "Budget Management",
    "prepaid_overdue": "overdue bill", "postpaid_overdue": "overdue bill", "internal": "retry later",
    "request_timeout": "retry later", "bad_gateway": "retry later", "unavailable": "retry later",
    "serving": "retry later", "timeout": "retry later",
    "body_too_large": "smaller request",
}


def expected_class(fact: facts.ErrorFact) -> type:
    cls = getattr(errors, fact.error)
    if fact.guide == "not_granted" and cls is errors.AccessDeniedError:
        return errors.ModelNotGrantedError  # the guidance names the grant to add
    return cls


def code_of(fact: facts.ErrorFact, protocol: str) -> str:
    return fact.compat if protocol == "compatible" else fact.native


def message_of(fact: facts.ErrorFact, protocol: str) -> str:
    return (fact.compat_message or fact.message) if protocol == "compatible" else fact.message


# ------------------------------------------------------------------------------ calling through the SDKs


@dataclass
class Outcome:
    """What an SDK saw: the HTTP status (None: inside a stream that had started), code, message."""

    status: int | None
    code: str | None
    message: str
    #: stream events (chunks) received before the error
    received: int = 0


def prepare(emu: Emulator, case: Case) -> None:
    emu.reset()
    if case.flags:
        emu.set_workspace(case.profile, **case.flags)
    if case.faults:
        emu.set_faults(**case.faults)


def _host(emu: Emulator, case: Case) -> str:
    ws = f"/ws/{case.workspace}" if case.workspace else ""
    return f"{emu.url}/{SG}{ws}"


def sdk_call(emu: Emulator, case: Case, protocol: str, stream: bool) -> Outcome:
    """Make the case's call (after its warm-up calls) with the protocol's SDK; what it raised."""
    key = case.key or emu.key(case.profile)
    header = emu.config.workspace(case.header).id if case.header else None
    messages = [{"role": "user", "content": case.prompt}]
    got = 0
    if protocol == "compatible":
        client = openai.OpenAI(base_url=_host(emu, case) + facts.COMPATIBLE_PATH, api_key=key, max_retries=0,
                               default_headers={"X-DashScope-WorkSpace": header} if header else None)
        try:
            for _ in range(case.warmup + 1):
                got = 0
                r = client.chat.completions.create(model=case.model, messages=messages, stream=stream, **case.extra)
                if stream:
                    for _chunk in r:
                        got += 1
        except openai.APIStatusError as exc:
            return Outcome(exc.status_code, exc.body.get("code"), exc.body.get("message"), got)
        except openai.APIError as exc:  # an error event inside a stream that had started
            assert isinstance(exc.body, dict)
            return Outcome(None, exc.body.get("code"), exc.body.get("message"), got)
        finally:
            client.close()
        return Outcome(200, None, "", got)
    ds = dashscope.Client(api_key=key, base_url=_host(emu, case) + facts.NATIVE_PATH, workspace=header or "",
                          max_retries=0)
    try:
        for _ in range(case.warmup + 1):
            got = 0
            r = ds.chat.completions.create(model=case.model, messages=messages, stream=stream, **case.extra)
            if stream:
                for _chunk in r:
                    got += 1
    except ds_errors.DashScopeError as exc:
        # the SDK gives 200 for an error inside a stream that had started
        return Outcome(None if exc.status_code == 200 else exc.status_code, exc.code, exc.message, got)
    finally:
        ds.close()
    return Outcome(200, None, "", got)


@pytest.fixture
def fresh(emu):
    """A Session over the emulator without retries (each call is one request)."""
    s = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"), retry=RetryPolicy(max_retries=0))
    yield s
    s.close()


def session_error(emu: Emulator, s: Session, case: Case, api: str, stream: bool) -> errors.QwenNbError:
    """The error a Session raises for the case's call (after its warm-up calls)."""
    profile = case.profile
    if case.key:
        profile = s.add_profile("stranger", key=case.key, region=SG).name
    if case.workspace:
        profile = s.add_profile("lost", key=emu.key(case.profile), region=SG, workspace=case.workspace).name
    if case.header:  # a profile naming another workspace, sent to the shared host with the workspace header
        profile = s.add_profile("crossed", key=emu.key(case.profile), region=SG,
                                workspace=emu.config.workspace(case.header).id, base_url=f"{emu.url}/{SG}").name
    for _ in range(case.warmup):
        s.chat(case.prompt, model=case.model, profile=profile, api=api)
    with pytest.raises(errors.QwenNbError) as exc:
        if stream:
            list(s.stream_chat(case.prompt, model=case.model, profile=profile, api=api))
        else:
            s.chat(case.prompt, model=case.model, profile=profile, api=api)
    return exc.value


# ------------------------------------------------------------------------------ every row, both APIs


def test_every_row_has_a_fix_word():
    assert set(FIX_WORDS) == set(facts.ERRORS)


@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("fact", ROWS, ids=lambda f: f.key)
def test_each_row_through_the_sdks(emu, fact, protocol, stream):
    case = case_for(fact.key, protocol)
    prepare(emu, case)
    out = sdk_call(emu, case, protocol, stream)
    assert out.code == code_of(fact, protocol)
    if stream and fact.key == "data_inspection_output":
        # content moderation of the answer: it starts streaming, then fails inside the stream
        assert out.status is None and out.received >= 1
    else:
        assert out.status == fact.status and out.received == 0
    if fact.key not in ("invalid_parameter", "model_not_found") or not case.natural:
        # the service's wording, exactly (a bad parameter and an unknown compatible model are named in it)
        assert out.message == message_of(fact, protocol)


@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
@pytest.mark.parametrize("api", ["openai", "dashscope"])
@pytest.mark.parametrize("fact", ROWS, ids=lambda f: f.key)
def test_each_row_through_a_session(emu, fresh, fact, api, stream):
    protocol = "compatible" if api == "openai" else "native"
    case = case_for(fact.key, protocol, session=True)
    prepare(emu, case)
    err = session_error(emu, fresh, case, api, stream)
    assert type(err) is expected_class(fact), (type(err).__name__, err.code, err.message)
    assert err.retryable is fact.retryable
    assert FIX_WORDS[fact.key].lower() in (err.fix or "").lower(), err.fix
    if not (stream and fact.key == "data_inspection_output"):
        assert err.status == fact.status
    assert err.code and err.code.lower() == code_of(fact, protocol).lower()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("fact", ROWS, ids=lambda f: f.key)
def test_fail_with_sends_any_row_before_or_inside_a_stream(emu, fact, protocol):
    prepare(emu, Case(flags={"fail_with": fact.key}))
    before = sdk_call(emu, Case(), protocol, stream=True)
    assert (before.status, before.code, before.received) == (fact.status, code_of(fact, protocol), 0)
    prepare(emu, Case(flags={"fail_with": fact.key, "error_after": 2}))
    inside = sdk_call(emu, Case(prompt="Explain tides"), protocol, stream=True)
    assert (inside.status, inside.code, inside.message) == (None, code_of(fact, protocol), message_of(fact, protocol))
    assert inside.received >= 1
    # a call that is not a stream gets the error as an answer
    assert sdk_call(emu, Case(), protocol, stream=False).status == fact.status


# ------------------------------------------------------------------------------ streams that fail midway


@pytest.mark.parametrize("api", ["openai", "dashscope"])
@pytest.mark.parametrize("key", ["internal", "bad_gateway", "unavailable", "serving", "timeout"])
def test_a_server_error_inside_a_stream_is_a_retryable_server_error(emu, fresh, api, key):
    emu.set_workspace("default", fail_with=key, error_after=3)
    stream = fresh.stream_chat("Explain tides", api=api)
    got = []
    with pytest.raises(errors.ServerError) as exc:
        for delta in stream:
            got.append(delta.content)
    assert exc.value.retryable and "".join(got)
    assert not isinstance(exc.value, errors.StreamInterruptedError)


@pytest.mark.parametrize("api", ["openai", "dashscope"])
def test_output_moderation_inside_a_stream_is_content_blocked(emu, fresh, api):
    emu.set_workspace("default", blocked_words_output=["Qwen"])
    got = []
    with pytest.raises(errors.ContentBlockedError) as exc:
        for delta in fresh.stream_chat("Who are you?", api=api):
            got.append(delta.content)
    assert "".join(got) == "I am"  # the answer stops before the word
    assert exc.value.code.lower() in ("datainspectionfailed", "data_inspection_failed") and not exc.value.retryable
    with pytest.raises(errors.ContentBlockedError):
        fresh.chat("Who are you?", api=api)
    assert fresh.chat("Explain tides", api=api).text  # answers without the word are not touched


def test_a_prompt_holding_an_output_word_stops_its_answer_midway(emu):
    emu.set_workspace("default", blocked_words_output=["volcano"])
    out = sdk_call(emu, Case(prompt="Tell me about the volcano"), "native", stream=True)
    assert out.status is None and out.code == "DataInspectionFailed" and out.received >= 1


def _raw_stream(emu: Emulator, protocol: str) -> httpx.Response:
    auth = {"Authorization": f"Bearer {emu.key()}"}
    if protocol == "native":
        return httpx.post(emu.base_url(SG, "dashscope") + facts.NATIVE_TEXT_GENERATION,
                          headers={**auth, "X-DashScope-SSE": "enable"},
                          json={"model": "qwen-plus", "input": {"messages": [{"role": "user", "content": "Hi"}]},
                                "parameters": {"incremental_output": True, "result_format": "message"}})
    return httpx.post(emu.base_url(SG, "openai") + "/chat/completions", headers=auth,
                      json={"model": "qwen-plus", "messages": [{"role": "user", "content": "Hi"}], "stream": True})


def test_the_error_events_on_the_wire(emu):
    emu.set_workspace("default", fail_with="unavailable", error_after=2)
    native = _raw_stream(emu, "native")
    assert native.status_code == 200
    frames = native.text.strip().split("\n\n")
    assert len(frames) == 3 and all(f.startswith(f"id:{i + 1}\nevent:result\n") for i, f in enumerate(frames[:2]))
    head, data = frames[-1].rsplit("\n", 1)
    assert head == "id:3\nevent:error\n:HTTP_STATUS/503"
    assert json.loads(data[len("data:"):]) == {"code": "ModelUnavailable", "message": "Model is unavailable, try "
                                               "again later.", "request_id": native.headers["x-request-id"]}
    compat = _raw_stream(emu, "compatible")
    events = compat.text.strip().split("\n\n")
    assert compat.status_code == 200 and len(events) == 3 and "[DONE]" not in compat.text
    last = json.loads(events[-1][len("data: "):])
    assert last["error"] == {"code": "model_unavailable", "message": "Model is unavailable, try again later.",
                             "type": "model_unavailable", "param": None}


def test_a_native_stream_refused_before_its_first_event_gets_an_sse_error_body(emu):
    emu.set_workspace("default", free_tier_only=True)
    r = _raw_stream(emu, "native")
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/event-stream")
    head, data = r.text.strip().rsplit("\n", 1)
    assert head == "id:1\nevent:error\n:HTTP_STATUS/403"
    assert json.loads(data[len("data:"):]) == {"code": "AllocationQuota.FreeTierOnly",
                                               "message": facts.ERRORS["free_tier_only"].message,
                                               "request_id": r.headers["x-request-id"]}
    # the compatible API answers a refused stream with a JSON body
    c = _raw_stream(emu, "compatible")
    assert c.status_code == 403 and c.json()["error"]["code"] == "AllocationQuota.FreeTierOnly"
    # the dashscope 1.x API reads the SSE body too
    first = next(iter(dashscope.Generation.call(api_key=emu.key(), base_address=emu.base_url(SG, "dashscope"),
                                                model="qwen-plus", messages=[{"role": "user", "content": "Hi"}],
                                                stream=True, incremental_output=True, result_format="message")))
    assert first.status_code == 403 and first.code == "AllocationQuota.FreeTierOnly" and first.request_id


# ------------------------------------------------------------------------------ flags: counts, scopes, config


def test_fail_times_and_fail_models(emu):
    emu.set_workspace("default", fail_with="serving", fail_times=1, fail_models=["qwen-max"])
    assert sdk_call(emu, Case(), "compatible", False).status == 200  # another model
    assert sdk_call(emu, Case(model="qwen-max"), "compatible", False).status == 503
    assert sdk_call(emu, Case(model="qwen-max"), "compatible", False).status == 200  # once only
    emu.set_workspace("default", fail_times=2)  # a new count
    assert [sdk_call(emu, Case(model="qwen-max"), "native", False).status for _ in range(3)] == [503, 503, 200]


def test_a_keys_flags_win_over_its_workspaces(emu):
    key = emu.key("team-a")
    emu.set_workspace("team-a", budget_exhausted=True)
    emu.set_key(key, budget_exhausted=False, tokens_per_minute=1)
    assert emu.flags("team-a").budget_exhausted and not emu.flags("team-a", key).budget_exhausted
    assert sdk_call(emu, Case(profile="team-a"), "compatible", False).status == 200
    out = sdk_call(emu, Case(profile="team-a"), "compatible", False)
    assert (out.status, out.code) == (429, "insufficient_quota")
    emu.reset()
    assert emu.flags("team-a", key) == Flags()


def test_limits_count_per_model(emu):
    emu.set_workspace("default", rate_limit=1)
    assert sdk_call(emu, Case(), "native", False).status == 200
    assert sdk_call(emu, Case(model="qwen-max"), "native", False).status == 200
    assert sdk_call(emu, Case(), "native", False).code == "Throttling.RateQuota"


def test_an_injected_429_is_the_rate_limit_row(emu):
    emu.set_faults(fail_next=2, fail_status=429)
    out = sdk_call(emu, Case(), "native", False)
    assert (out.status, out.code, out.message) == (429, "Throttling.RateQuota", facts.ERRORS["rate_limit"].message)
    out = sdk_call(emu, Case(), "compatible", False)
    assert (out.code, out.message) == ("limit_requests", facts.ERRORS["rate_limit"].compat_message)


def test_runtime_flags_over_the_control_endpoint(emu):
    r = httpx.post(emu.url + "/_emulator/workspaces/default", json={"overdue": True, "unpurchased": ["qwen-max"]})
    assert r.status_code == 200 and r.json()["overdue"] is True and r.json()["unpurchased"] == ["qwen-max"]
    assert sdk_call(emu, Case(), "native", False).code == "Arrearage"
    assert httpx.get(emu.url + "/_emulator/workspaces/default").json()["overdue"] is True
    spaces = {w["name"]: w for w in httpx.get(emu.url + "/_emulator/workspaces").json()}
    assert spaces["default"]["flags"]["overdue"] is True and spaces["team-a"]["flags"]["overdue"] is False
    r = httpx.post(emu.url + "/_emulator/keys", json={"key": emu.key("team-b"), "subscribed": False})
    assert r.status_code == 200 and r.json()["subscribed"] is False
    assert sdk_call(emu, Case(profile="team-b"), "compatible", False).code == "CommodityNotPurchased"
    for bad in ({"fail_with": "no-such-row"}, {"burst": 3}, {"error_after": 2}):
        assert httpx.post(emu.url + "/_emulator/workspaces/default", json=bad).status_code == 400
    assert httpx.post(emu.url + "/_emulator/workspaces/nobody", json={}).status_code == 400
    assert httpx.post(emu.url + "/_emulator/keys", json={"key": "sk-nope", "overdue": True}).status_code == 400
    httpx.post(emu.url + "/_emulator/reset")
    assert sdk_call(emu, Case(), "native", False).status == 200


def test_flags_in_the_toml_config(tmp_path):
    toml = tmp_path / "flags.toml"
    toml.write_text("""
[[workspace]]
name = "main"
id = "llm-main0000"
region = "ap-southeast-1"
default = true
keys = ["sk-11111111111111111111111111111111",
        {key = "sk-22222222222222222222222222222222", bill_overdue = "postpaid"}]
free_tier_only = ["qwen-max"]
blocked_words_input = ["forbidden"]
tokens_per_minute = 0

[[workspace]]
name = "lab"
id = "llm-lab00000"
region = "ap-southeast-1"
keys = ["sk-33333333333333333333333333333333"]
models = ["qwen-plus"]
fail_with = "unavailable"
error_after = 1
""")
    with Emulator(toml) as emu:
        main = emu.config.workspace("main")
        assert main.flags.free_tier_only == ("qwen-max",) and main.flags.tokens_per_minute is None
        assert "sk-2222" not in repr(main)
        assert sdk_call(emu, Case(profile="main"), "compatible", False).status == 200
        assert sdk_call(emu, Case(profile="main", model="qwen-max"), "native", False).code == (
            "AllocationQuota.FreeTierOnly")
        assert sdk_call(emu, Case(profile="main", prompt="the Forbidden word"), "native", False).code == (
            "DataInspectionFailed")
        postpaid = sdk_call(emu, Case(key="sk-22222222222222222222222222222222"), "native", False)
        assert (postpaid.status, postpaid.code) == (429, "PostpaidBillOverdue")
        out = sdk_call(emu, Case(profile="lab"), "native", True)
        assert (out.status, out.code, out.received) == (None, "ModelUnavailable", 1)
        assert sdk_call(emu, Case(profile="lab"), "compatible", False).status == 503


@pytest.mark.parametrize(("table", "words"), [
    ({"overdue": "yes"}, "overdue"),
    ({"bill_overdue": "monthly"}, "bill_overdue"),
    ({"fail_with": "gremlins"}, "fail_with"),
    ({"error_after": 2}, "error_after"),
    ({"tokens_per_minute": -5}, "tokens_per_minute"),
    ({"unpurchased": "qwen-max"}, "unpurchased"),
    ({"free_tier_only": []}, "free_tier_only"),
    ({"quota": 3}, "quota"),
])
def test_bad_flags_in_the_config_are_named(table, words):
    ws = {"name": "x", "id": "llm-x", "region": SG, "keys": ["sk-11111111111111111111111111111111"], **table}
    with pytest.raises(errors.InputError, match=words):
        parse_config({"workspace": [ws]})


# ------------------------------------------------------------------------------ lists


def test_native_model_list_pages_through_the_regions_catalogue(emu):
    client = dashscope.Client(api_key=emu.key("team-a"), base_url=emu.base_url(SG, "dashscope"), max_retries=0)
    catalogue = [m.id for m in catalog_models(SG)]
    first = client.models.list(page_no=1, page_size=5)
    assert [m.model for m in first.models] == catalogue[:5] and first.total_count == len(catalogue)
    assert (first.page_no, first.page_size) == (1, 5)
    last = client.models.list(page_no=3, page_size=5)
    assert [m.model for m in last.models] == catalogue[10:15]
    one = client.models.get("qwen-plus")
    assert one.model == "qwen-plus" and one.open_source is False
    client.close()
    s = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"))
    assert s.list_models(api="dashscope") == catalogue
    bad = httpx.get(emu.base_url(SG, "dashscope") + "/models?page_size=0", headers={"Authorization":
                                                                                     f"Bearer {emu.key()}"})
    assert bad.status_code == 400 and bad.json()["code"] == "InvalidParameter"
    s.close()


def _permissions(emu, workspace="team-a", key=None, **params):
    return httpx.get(emu.base_url(SG, "dashscope", workspace) + "/models/permissions", params=params,
                     headers={"Authorization": f"Bearer {key or emu.key(workspace)}"})


def test_the_permissions_list_is_documented_shape_and_pages(emu):
    r = _permissions(emu, authorization_scope="AUTHORIZED", action="INFERENCE", page_no=1, page_size=200)
    body = r.json()
    assert set(body) == {"request_id", "code", "message", "success", "output"}
    assert (body["code"], body["message"], body["success"]) == (None, None, True)
    assert body["output"]["total"] == 3 and (body["output"]["page_no"], body["output"]["page_size"]) == (1, 200)
    assert [p["model"] for p in body["output"]["permissions"]] == ["qwen-plus", "qwen-flash", "qwen-vl-plus"]
    assert body["output"]["permissions"][0] == {"model": "qwen-plus", "name": "Qwen Plus", "permissions": {
        "inference": True, "fine_tune": False, "deploy": False}}
    # the default scope lists what may be granted, each with its grant; 20 a page by default
    every = _permissions(emu).json()["output"]
    catalogue = [m.id for m in catalog_models(SG)]
    assert every["page_size"] == 20 and every["total"] == len(catalogue)
    assert {p["model"]: p["permissions"]["inference"] for p in every["permissions"]}["qwen-max"] is False
    page2 = _permissions(emu, page_size=4, page_no=2).json()["output"]["permissions"]
    assert [p["model"] for p in page2] == catalogue[4:8]
    assert [p["model"] for p in _permissions(emu, model="qwen-max").json()["output"]["permissions"]] == ["qwen-max"]
    named = {p["model"] for p in _permissions(emu, name="MAX").json()["output"]["permissions"]}
    assert named == {m for m in catalogue if "max" in m} and "qwen3-max" in named
    for bad in ({"page_size": 201}, {"page_size": 0}, {"authorization_scope": "MINE"}, {"action": "DEPLOY"}):
        assert _permissions(emu, **bad).status_code == 400
    # the account's key may read it too; another workspace's key may not
    assert _permissions(emu, key=emu.key()).status_code == 200
    assert _permissions(emu, key=emu.key("team-b")).status_code == 401
    # only on a workspace host
    r = httpx.get(emu.base_url(SG, "dashscope") + "/models/permissions", headers={"Authorization":
                                                                                  f"Bearer {emu.key()}"})
    assert r.status_code == 404


def test_session_lists_and_changes_grants_through_the_permissions_api(emu, fresh):
    assert fresh.list_models("team-a") == ["qwen-plus", "qwen-flash", "qwen-vl-plus"]
    sent = [r for r in emu.requests if r.endpoint == "/api/v1/models/permissions"]
    assert len(sent) == 1 and sent[0].method == "GET"
    assert sent[0].path == f"/{SG}/ws/{emu.config.workspace('team-a').id}/api/v1/models/permissions"
    # a sub-workspace's own key may not change its grants (the emulator's choice; see the app)
    with pytest.raises(errors.AccessDeniedError) as exc:
        fresh.grant("qwen-max", profile="team-a")
    assert exc.value.status == 403
    # the account's key may
    fresh.add_profile("admin-a", key=emu.key(), region=SG, workspace=emu.config.workspace("team-a").id)
    result = fresh.grant("qwen-max", profile="admin-a")
    assert result.request_ids and "qwen-max" in emu.grants("team-a")
    assert "qwen-max" in fresh.granted_models("team-a", refresh=True)
    fresh.revoke(["qwen-max"], profile="admin-a")
    assert "qwen-max" not in emu.grants("team-a")


def test_a_permissions_update_leaves_unnamed_fields_alone(emu):
    url = emu.base_url(SG, "dashscope", "team-a") + "/models/permissions"
    auth = {"Authorization": f"Bearer {emu.key()}"}
    r = httpx.post(url, headers=auth, json={"models": [{"model": "qwen-plus", "finetune": True}]})
    assert r.status_code == 200 and "qwen-plus" in emu.grants("team-a")  # inference absent: unchanged
    r = httpx.post(url, headers=auth, json={"models": [{"model": "qwen-plus", "deploy": "yes"}]})
    assert r.status_code == 400 and r.json()["code"] == "InvalidParameter"


# ------------------------------------------------------------------------------ misuse


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_get_on_a_post_path_is_405(emu, protocol):
    api = API_OF[protocol]
    path = "/chat/completions" if protocol == "compatible" else facts.NATIVE_TEXT_GENERATION
    r = httpx.get(emu.base_url(SG, api) + path, headers={"Authorization": f"Bearer {emu.key()}"})
    fact = facts.ERRORS["method"]
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    body = r.json()
    code, message = (body["error"]["code"], body["error"]["message"]) if protocol == "compatible" else (
        body["code"], body["message"])
    assert (code, message) == (code_of(fact, protocol), fact.message)


def test_a_native_base_url_with_a_compatible_path_is_404(emu):
    r = httpx.post(emu.base_url(SG, "dashscope") + "/chat/completions", headers={"Authorization":
                                                                                 f"Bearer {emu.key()}"},
                   json={"model": "qwen-plus", "messages": [{"role": "user", "content": "Hi"}]})
    assert r.status_code == 404 and r.json() == {"code": "NotFound", "message": "Request path not found.",
                                                 "request_id": r.headers["x-request-id"]}
    with pytest.raises(openai.NotFoundError):
        openai.OpenAI(base_url=emu.base_url(SG, "dashscope"), api_key=emu.key(), max_retries=0).chat.completions.create(
            model="qwen-plus", messages=[{"role": "user", "content": "Hi"}])


def test_a_missing_input_and_empty_messages(emu):
    auth = {"Authorization": f"Bearer {emu.key()}"}
    native = emu.base_url(SG, "dashscope") + facts.NATIVE_TEXT_GENERATION
    r = httpx.post(native, headers=auth, json={"model": "qwen-plus"})
    assert r.status_code == 400 and r.json()["code"] == "BadRequest.EmptyInput"
    assert r.json()["message"] == "Required input parameter missing from request."
    r = httpx.post(native, headers=auth, json={"model": "qwen-plus", "input": {"messages": []}})
    assert r.status_code == 400 and r.json()["code"] == "InvalidParameter" and "messages" in r.json()["message"]
    r = httpx.post(emu.base_url(SG, "openai") + "/chat/completions", headers=auth,
                   json={"model": "qwen-plus", "messages": []})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter_error"


def test_a_key_naming_its_own_workspace_is_fine(emu):
    """The workspace header is only refused when it names a workspace the key does not belong to."""
    own = emu.config.workspace("team-a").id
    c = openai.OpenAI(base_url=emu.base_url(SG, "openai"), api_key=emu.key("team-a"), max_retries=0,
                      default_headers={"X-DashScope-WorkSpace": own})
    assert c.chat.completions.create(model="qwen-plus", messages=[{"role": "user", "content": "Hi"}]).choices
    c.close()
