"""Retry policy and response normalising (pure)."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from qwen_nb.errors import InputError, InvalidKeyError, NetworkError, QuotaExceededError, RateLimitError, ServerError
from qwen_nb.normalize import StreamAccumulator, estimate_tokens, finish, from_native, from_openai, usage
from qwen_nb.results import Usage
from qwen_nb.retry import RetryPolicy, retry_after_from_headers


def test_retry_which_errors():
    p = RetryPolicy(max_retries=2)
    assert p.should_retry(RateLimitError("x"), 1)
    assert p.should_retry(ServerError("x"), 2)
    assert p.should_retry(NetworkError("x"), 1)
    assert not p.should_retry(ServerError("x"), 3)  # attempts exhausted
    assert not p.should_retry(QuotaExceededError("x"), 1)
    assert not p.should_retry(InvalidKeyError("x"), 1)
    assert not p.should_retry(ValueError("x"), 1)


def test_full_jitter_backoff_and_retry_after():
    p = RetryPolicy(base=0.5, cap=4.0)
    assert p.delay(1, rand=lambda: 1.0) == 0.5
    assert p.delay(3, rand=lambda: 1.0) == 2.0
    assert p.delay(10, rand=lambda: 1.0) == 4.0  # capped
    assert p.delay(3, rand=lambda: 0.0) == 0.0  # full jitter: anywhere down to 0
    assert p.delay(1, retry_after=7) == 7.0
    assert RetryPolicy(max_retry_after=5).delay(1, retry_after=100) == 5.0
    with pytest.raises(InputError):
        RetryPolicy(max_retries=-1)


def test_retry_after_header_forms():
    assert retry_after_from_headers({"retry-after": "2"}) == 2.0
    assert retry_after_from_headers({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_from_headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=lambda: 1445412470) == 10
    assert retry_after_from_headers({"retry-after": "soon"}) is None
    assert retry_after_from_headers({}) is None


def test_usage_both_shapes():
    compat = NS(prompt_tokens=3, completion_tokens=10, total_tokens=13,
                completion_tokens_details=NS(reasoning_tokens=4))
    assert usage(compat) == Usage(3, 10, 4, 13)
    native = {"input_tokens": 3, "output_tokens": 10, "output_tokens_details": {"reasoning_tokens": 4}}
    assert usage(native) == Usage(3, 10, 4, 13)
    assert usage(None) is None


def test_from_openai_and_native_agree():
    msg = NS(content="hello", reasoning_content="hmm", tool_calls=None)
    oa = NS(choices=[NS(message=msg, finish_reason="stop")], usage=NS(prompt_tokens=1, completion_tokens=2,
            total_tokens=3, completion_tokens_details=None), id="chatcmpl-x", model="qwen-plus",
            _request_id="rid")
    ds = NS(choices=[NS(message=msg, finish_reason="stop")], usage={"input_tokens": 1, "output_tokens": 2,
            "total_tokens": 3}, request_id="rid", model=None, headers={})
    a, b = from_openai(oa), from_native(ds)
    assert (a.text, a.reasoning, a.finish_reason, a.usage, a.request_id) == (
        b.text, b.reasoning, b.finish_reason, b.usage, b.request_id)


def test_stream_accumulator_merges_fragments_and_snapshots():
    acc = StreamAccumulator()
    call = lambda i, **f: NS(index=i, id=f.get("id"), function=NS(name=f.get("name"), arguments=f.get("args")))  # noqa: E731
    acc.feed(NS(choices=[NS(delta=NS(content=None, reasoning_content="think", tool_calls=None),
                            finish_reason=None)], usage=None))
    acc.feed(NS(choices=[NS(delta=NS(content=None, tool_calls=[call(0, id="c1", name="get", args='{"a"')]),
                            finish_reason=None)], usage=None))
    acc.feed(NS(choices=[NS(delta=NS(content=None, tool_calls=[call(0, args=": 1}")]),
                            finish_reason="tool_calls")], usage=None))
    acc.feed(NS(choices=[], usage=NS(prompt_tokens=5, completion_tokens=6, total_tokens=11)))
    done = acc.completion()
    assert done.reasoning == "think" and done.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in done.tool_calls] == [("c1", "get", '{"a": 1}')]
    assert done.usage == Usage(5, 6, 0, 11)
    snap = StreamAccumulator()  # native: no index, each chunk a snapshot
    snap.feed(NS(choices=[NS(delta=NS(content="", tool_calls=[call(None, id="c1", name="get", args="{")]),
                             finish_reason="null")]))
    snap.feed(NS(choices=[NS(delta=NS(content="", tool_calls=[call(None, id="c1", name="get", args="{}")]),
                             finish_reason="tool_calls")]))
    assert [(c.name, c.arguments) for c in snap.tool_calls()] == [("get", "{}")]


def test_small_helpers():
    assert finish("null") is None and finish("stop") == "stop"
    assert estimate_tokens("") == 0 and estimate_tokens("abcdefgh") == 2 and estimate_tokens("你好") == 2
