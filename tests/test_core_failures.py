"""Every error class from the emulator, retries, cut streams, budgets, and keys kept out of every message."""

from __future__ import annotations

import logging

import pytest

from qwen_nb.emulator.config import demo_keys
from qwen_nb.emulator.hosts import emulator_regions
from qwen_nb.errors import (
    BudgetExceededError,
    ConfigError,
    InputError,
    InvalidKeyError,
    InvalidParameterError,
    ModelNotFoundError,
    ModelNotGrantedError,
    NetworkError,
    QwenNbError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)
from qwen_nb.ledger import Ledger
from qwen_nb.retry import RetryPolicy
from qwen_nb.session import Session

APIS = ("openai", "dashscope")
FAST = RetryPolicy(max_retries=2, base=0.001)


@pytest.fixture
def fast(emu):
    """A session that retries at once (no backoff wait), so retry tests stay fast."""
    s = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"), retry=FAST)
    yield s
    s.close()


def model_calls(emu):
    return [r for r in emu.requests if "/models" not in r.path]


def assert_no_key(*texts):
    for text in texts:
        for key in demo_keys():
            assert key not in text


@pytest.mark.parametrize("api", APIS)
def test_key_of_another_region(session, emu, api):
    session.add_profile("wrong", key=emu.key("team-a"), region="cn-beijing")
    with pytest.raises(InvalidKeyError) as e:
        session.chat("hi", profile="wrong", api=api)
    err = e.value
    assert "wrong" in err.message and "cn-beijing" in err.message
    assert emu.base_url("cn-beijing", api) in err.message
    assert "per region" in err.fix and "'default' (ap-southeast-1)" in err.fix
    assert err.status == 401 and err.request_id and err.raw
    assert len(model_calls(emu)) == 1  # 401 is never retried
    rec = session.ledger.records()[-1]
    assert (rec.status, rec.attempts) == ("error", 1) and rec.error_code.lower().replace("_", "") == "invalidapikey"
    assert_no_key(str(err), repr(err), err._repr_markdown_())


@pytest.mark.parametrize("api", APIS)
def test_model_not_granted(session, api):
    with pytest.raises(ModelNotGrantedError) as e:
        session.chat("hi", profile="team-a", model="qwen-max", api=api)
    err = e.value
    assert "team-a" in err.message and "qwen-max" in err.message and "ap-southeast-1" in err.message
    assert "model permissions" in err.fix and "POST" in err.fix and "/api/v1/models/permissions" in err.fix
    assert "'default' (default workspace)" in err.fix and "'team-b' (granted)" in err.fix
    assert "qwen-plus, qwen-flash, qwen-vl-plus" in err.fix
    assert err.status == 403


@pytest.mark.parametrize("api", APIS)
def test_unknown_model_did_you_mean(session, api):
    with pytest.raises(ModelNotFoundError) as e:
        session.chat("hi", model="qwen-plsu", api=api)
    assert "Did you mean 'qwen-plus'?" in e.value.message
    assert e.value.status == (404 if api == "openai" else 400)  # native: 400 InvalidParameter "Model not exist."


@pytest.mark.parametrize("api", APIS)
def test_rate_limit_retried_then_raised(fast, emu, api):
    emu.set_faults(rate_limit=1, rate_window=60)
    fast.chat("hi", api=api)
    with pytest.raises(RateLimitError) as e:
        fast.chat("hi", api=api)
    assert e.value.retryable and "3 attempt" in e.value.message
    assert len(model_calls(emu)) == 1 + 3
    rec = fast.ledger.records()[-1]
    assert (rec.status, rec.attempts) == ("error", 3)


@pytest.mark.parametrize("api", APIS)
def test_server_errors_are_retried_into_one_record(fast, emu, api):
    emu.set_faults(fail_next=2)
    r = fast.chat("Who are you?", api=api)
    assert r.text.startswith("I am Qwen") and r.attempts == 3
    assert [x.status for x in model_calls(emu)] == [500, 500, 200]
    recs = fast.ledger.records()
    assert [(x.status, x.attempts) for x in recs] == [("ok", 3)]


def test_server_errors_exhausted(fast, emu):
    emu.set_faults(fail_next=5, fail_status=503)
    with pytest.raises(ServerError) as e:
        fast.chat("hi", api="dashscope")
    assert e.value.status == 503 and "3 attempt" in e.value.message
    assert len(model_calls(emu)) == 3
    rec = fast.ledger.records()[-1]
    assert (rec.status, rec.attempts) == ("error", 3) and rec.error_code


def test_no_retries_on_bad_parameters(fast, emu):
    with pytest.raises(InvalidParameterError) as e:
        fast.chat("no magic word here", response_format={"type": "json_object"})
    assert "json" in e.value.message.lower()
    assert len(model_calls(emu)) == 1


@pytest.mark.parametrize("api", APIS)
def test_stream_cut_midway(fast, emu, api):
    emu.set_faults(cut_after=6)
    stream = fast.stream_chat("Tell me about the sea.", api=api)
    got = []
    with pytest.raises(StreamInterruptedError) as e:
        for d in stream:
            got.append(d.content)
    err = e.value
    assert err.partial and err.partial == "".join(got)
    assert "cut" in err.message and "partial" in err.fix
    assert f"cut after {len(err.partial)} characters" in err.message and "Retrying is safe" in err.fix
    assert "could not be reached" not in err.message and "HTTP None" not in str(err)
    rec = fast.ledger.records()[-1]
    assert rec.status == "interrupted" and rec.output_tokens > 0
    assert len(model_calls(emu)) == 1  # not retried once text was shown


def test_stream_cut_midway_inside_chat(fast, emu):
    emu.set_faults(cut_after=4)
    with pytest.raises(StreamInterruptedError) as e:
        fast.chat("Hello", model="qwen3-32b", profile="team-b")
    assert e.value.partial or e.value.partial_reasoning


def test_stream_cut_before_any_text_is_retried(fast, emu):
    emu.set_faults(cut_after=0, cut_streams=1)
    stream = fast.stream_chat("Who are you?", api="dashscope")
    text = "".join(d.content for d in stream)
    assert text.startswith("I am Qwen") and stream.result.attempts == 2


def test_unreachable_service(emu):
    dead = emulator_regions("http://127.0.0.1:9")  # discard port: connection refused
    s = Session(emu.profiles(), regions=dead, ledger=Ledger(":memory:"), retry=RetryPolicy(1, base=0.001))
    with pytest.raises(NetworkError) as e:
        s.chat("hi")
    assert "127.0.0.1:9" in e.value.message and e.value.retryable
    assert s.ledger.records()[-1].attempts == 2
    s.close()


def test_hard_budget_refuses_before_any_call(emu):
    s = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"), hard_budget=True)
    s.add_profile("capped", key=emu.key("default"), budget=0)
    with pytest.raises(BudgetExceededError) as e:
        s.chat("hi", profile="capped")
    assert "capped" in e.value.message and "budget" in e.value.fix
    assert model_calls(emu) == []
    s.close()


def test_soft_budget_warns_through_the_ledger(emu):
    s = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"))
    s.add_profile("capped", key=emu.key("default"), budget=1e-9)
    with pytest.warns(UserWarning):
        r = s.chat("Who are you?", profile="capped")
    assert r.text
    s.close()


class BrokenLedger(Ledger):
    def record(self, rec, *, budget=None, wait=True):
        raise OSError("disk full")

    def record_later(self, make, *, budget=None):
        raise OSError("disk full")


def test_a_ledger_failure_never_loses_the_result(emu, caplog):
    s = Session(emu.profiles(), regions=emu.regions(), ledger=BrokenLedger(":memory:"))
    with caplog.at_level(logging.WARNING, logger="qwen_nb"):
        r = s.chat("Who are you?")
        list(s.stream_chat("Who are you?"))
    assert r.text.startswith("I am Qwen")
    assert "could not be recorded" in caplog.text
    s.close()


def test_bad_input_makes_no_request(session, emu):
    with pytest.raises(InputError) as e:
        session.chat("hi", profile="team-c")
    assert "team-a" in e.value.fix and "beijing-lab" in e.value.fix and "Did you mean 'team-" in e.value.message
    for bad in (dict(temperature=3), dict(top_p=0), dict(max_tokens=0), dict(api="grpc"), dict(model="qwen plus"),
                dict(images="/no/such.png", model="qwen-vl-plus")):
        with pytest.raises(InputError):
            session.chat("hi", **bad)
    with pytest.raises(InputError):
        session.chat([{"role": "robot", "content": "hi"}])
    with pytest.raises(InputError):
        session.add_profile("x", key="not-a-key")
    with pytest.raises(InputError):
        session.add_profile("x", key=emu.key("default"), region="mars")
    assert emu.requests == []


def test_key_whitespace_is_stripped_with_a_warning(session, emu):
    with pytest.warns(UserWarning, match="whitespace"):
        p = session.add_profile("pasted", key="  " + emu.key("default") + "\n")
    assert p.key == emu.key("default")
    assert session.chat("hi", profile="pasted").text


def test_no_profile_at_all(emu):
    s = Session({}, regions=emu.regions(), ledger=Ledger(":memory:"))
    with pytest.raises(ConfigError) as e:
        s.chat("hi")
    assert "DASHSCOPE_API_KEY" in e.value.fix


def test_no_key_in_any_error_repr_or_log(fast, emu, caplog):
    fast.add_profile("wrong", key=emu.key("team-a"), region="cn-beijing")
    errors: list[QwenNbError] = []
    with caplog.at_level(logging.DEBUG):
        for kw in (dict(profile="wrong"), dict(profile="team-a", model="qwen-max"), dict(model="nope-model"),
                   dict(profile="wrong", api="dashscope"), dict(profile="team-a", model="qwen-max", api="dashscope")):
            with pytest.raises(QwenNbError) as e:
                fast.chat("hi", **kw)
            errors.append(e.value)
        emu.set_faults(fail_next=5)
        with pytest.raises(ServerError) as e:
            fast.chat("hi")
        errors.append(e.value)
    texts = [str(x) for x in errors] + [repr(x) for x in errors] + [x._repr_markdown_() for x in errors]
    texts += [repr(p) for p in fast.profiles()] + [repr(fast), caplog.text]
    texts += [str(r.getMessage()) for r in caplog.records]
    assert_no_key(*texts)
    assert "retry" in caplog.text  # the retries were logged (masked)


def test_dashscope_1x_error_responses_translate(session, emu):
    """dashscope 1.x ``Generation.call`` returns errors; they map to the same guided errors."""
    from dashscope import Generation

    from qwen_nb._guidance import ErrorContext, guided_error
    from qwen_nb.backends.dashscope_native import failure_from_response

    base = emu.base_url("ap-southeast-1", "dashscope")
    ok = Generation.call(model="qwen-plus", messages=[{"role": "user", "content": "hi"}], result_format="message",
                         api_key=emu.key("default"), base_address=base)
    assert failure_from_response(ok) is None
    bad = Generation.call(model="qwen-plus", messages=[{"role": "user", "content": "hi"}], result_format="message",
                          api_key=emu.key("beijing-lab"), base_address=base)
    failure = failure_from_response(bad)
    prof = session.get_profile("beijing-lab")
    err = guided_error(failure, ErrorContext(profile=prof, region="ap-southeast-1", base_url=base, model="qwen-plus",
                                             api="dashscope", others=tuple(session.profiles())))
    assert isinstance(err, InvalidKeyError) and err.request_id and "beijing-lab" in err.message
    assert_no_key(str(err))
    denied = Generation.call(model="qwen-max", messages=[{"role": "user", "content": "hi"}], result_format="message",
                             api_key=emu.key("team-a"), base_address=base)
    assert isinstance(guided_error(failure_from_response(denied), ErrorContext(model="qwen-max")),
                      ModelNotGrantedError)
