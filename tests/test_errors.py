"""Error translation (pure): the right class, and a message that names who, where, what and the fix."""

from __future__ import annotations

import pytest

from qwen_nb._cards import error_card_html
from qwen_nb._guidance import ErrorContext, ServiceFailure, guided_error, stream_cut_error
from qwen_nb._profiles import Profile
from qwen_nb._secrets import scrub
from qwen_nb.errors import (
    AccessDeniedError,
    AccountOverdueError,
    ContentBlockedError,
    ErrorSummary,
    InvalidKeyError,
    InvalidParameterError,
    ModelNotFoundError,
    ModelNotGrantedError,
    NetworkError,
    QwenNbError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
    TokenLimitError,
    summarize,
)

KEY_A = "sk-0123456789abcdef0123456789abcdef"
KEY_B = "sk-fedcba9876543210fedcba9876543210"
KEY_C = "sk-aaaabbbbccccddddeeeeffff00001111"


def ctx(model="qwen-max", profile=None, **kw):
    team = profile or Profile("team-a", region="ap-southeast-1", key=KEY_A, workspace="llm-aaa1",
                              models=("qwen-plus",))
    others = (
        Profile("default", region="ap-southeast-1", key=KEY_B),
        Profile("beijing-lab", region="cn-beijing", key=KEY_C, workspace="llm-bbb1", models=("qwen-max",)),
    )
    return ErrorContext(profile=team, region=team.region, region_label="Singapore (international)",
                        base_url="https://dashscope-intl.aliyuncs.com/compatible-mode/v1", model=model,
                        api="openai", others=others, **kw)


def status(code, st, message="", **kw):
    return ServiceFailure("status", status=st, code=code, message=message, request_id="rid-1",
                          body={"code": code}, **kw)


def test_invalid_key_mentions_region_base_url_and_other_region_profile():
    err = guided_error(status("InvalidApiKey", 401, "Invalid API-key provided."), ctx())
    assert isinstance(err, InvalidKeyError)
    text = str(err)
    assert "team-a" in text and "sk-…cdef" in text
    assert "ap-southeast-1" in text and "https://dashscope-intl.aliyuncs.com/compatible-mode/v1" in text
    assert "per region" in err.fix
    assert "'beijing-lab' (cn-beijing)" in err.fix
    assert err.request_id == "rid-1" and err.raw == {"code": "InvalidApiKey"} and err.status == 401


def test_model_not_granted_says_how_to_grant_and_who_can_call_it():
    err = guided_error(status("access_denied", 403, "Access denied."), ctx(model="qwen-max"))
    assert isinstance(err, ModelNotGrantedError) and isinstance(err, AccessDeniedError)
    assert "qwen-max" in err.message and "team-a" in err.message
    assert "model permissions" in err.fix and "/api/v1/models/permissions" in err.fix
    assert "llm-aaa1.ap-southeast-1.maas.aliyuncs.com" in err.fix
    assert "'default' (default workspace)" in err.fix
    assert "'beijing-lab' (granted, cn-beijing)" in err.fix


def test_unpurchased_is_not_a_grant_problem():
    said = "Access to model denied. Please make sure you are eligible for using the model."
    err = guided_error(status("AccessDenied.Unpurchased", 403, said), ctx())
    assert type(err) is AccessDeniedError and "activate" in err.fix.lower()
    assert "not entitled to 'qwen-max'" in err.message and "workspace does not help" in err.fix


def test_workspace_access_denied_points_at_the_workspace_id():
    err = guided_error(status("Workspace.AccessDenied", 403, "Workspace access denied."), ctx())
    assert type(err) is AccessDeniedError
    assert "llm-aaa1" in err.message and "QWEN_NB_<NAME>_WORKSPACE" in err.fix


def test_unknown_model_did_you_mean():
    err = guided_error(status("model_not_found", 404, "The model does not exist."),
                       ctx(model="qwen-plsu", known_models=["qwen-plus", "qwen-max"]))
    assert isinstance(err, ModelNotFoundError)
    assert "Did you mean 'qwen-plus'?" in err.message


def test_rate_limit_keeps_retry_after():
    err = guided_error(status("Throttling.RateQuota", 429, "slow down", retry_after=3.0), ctx(attempts=4))
    assert isinstance(err, RateLimitError) and err.retryable
    assert err.retry_after == 3.0 and "3 s" in err.message and "4 attempt" in err.message


@pytest.mark.parametrize(
    "code, st, cls, retryable",
    [
        # tokens per minute: the service means "try again" (its documented error table)
        ("insufficient_quota", 429, TokenLimitError, True),
        ("DataInspectionFailed", 400, ContentBlockedError, False),
        ("Arrearage", 400, AccountOverdueError, False),
        ("InvalidParameter", 400, InvalidParameterError, False),
        ("InternalError", 500, ServerError, True),
        ("ServiceUnavailable", 503, ServerError, True),
    ],
)
def test_classes(code, st, cls, retryable):
    err = guided_error(status(code, st, "x"), ctx())
    assert type(err) is cls
    assert bool(getattr(err, "retryable", False)) is retryable
    assert err.fix and "team-a" in str(err)


def test_network_and_timeout():
    err = guided_error(ServiceFailure("network", message="Connection refused"), ctx())
    assert isinstance(err, NetworkError) and err.retryable and "could not be reached" in err.message
    err = guided_error(ServiceFailure("timeout", message="read timeout"), ctx())
    assert isinstance(err, NetworkError) and "timed out" in err.message


def test_no_key_in_messages_even_if_the_service_echoes_one():
    err = guided_error(status("InvalidApiKey", 401, f"bad key {KEY_A}"), ctx())
    for text in (str(err), repr(err), err._repr_markdown_()):
        assert KEY_A not in text and KEY_B not in text and KEY_C not in text
    assert scrub(f"x {KEY_A} y") == "x sk-…cdef y"


@pytest.mark.parametrize(
    ("status_", "code", "rid", "text", "markdown"),
    [
        (403, "access_denied", "r-1", "(HTTP 403 access_denied; request id r-1)",
         "<small>HTTP 403 `access_denied` · request id `r-1`</small>"),
        (None, "StreamInterrupted", "r-2", "(StreamInterrupted; request id r-2)",
         "<small>`StreamInterrupted` · request id `r-2`</small>"),
        (500, None, None, "(HTTP 500)", "<small>HTTP 500</small>"),
        (None, None, "r-3", "(request id r-3)", "<small>request id `r-3`</small>"),
        (None, None, None, None, None),
    ],
)
def test_only_known_details_are_shown(status_, code, rid, text, markdown):
    err = QwenNbError("Something broke.", status=status_, code=code, request_id=rid)
    shown = str(err) + err._repr_markdown_()
    assert "None" not in shown
    if text is None:
        assert str(err) == "Something broke." and "<small>" not in err._repr_markdown_()
    else:
        assert str(err).endswith("\n" + text) and err._repr_markdown_().endswith(markdown)


def test_a_cut_stream_says_so_keeps_the_partial_text_and_says_retrying_is_safe():
    err = stream_cut_error("RemoteProtocolError: peer closed connection", ctx(model="qwen-plus"),
                           partial="Grey waves", partial_reasoning="", request_id="rid-9")
    assert isinstance(err, StreamInterruptedError) and not err.retryable
    assert err.partial == "Grey waves" and err.code == "StreamInterrupted" and err.status is None
    assert "cut after 10 characters" in err.message and "peer closed connection" in err.message
    assert "could not be reached" not in err.message and "'team-a'" in err.message
    assert ".partial" in err.fix and "Retrying is safe" in err.fix
    assert str(err).endswith("(StreamInterrupted; request id rid-9)")
    thinking = stream_cut_error("", ctx(), partial="", partial_reasoning="Let me think")
    assert "0 characters of the answer (and 12 characters of thinking)" in thinking.message
    assert ".partial_reasoning" in thinking.fix


# --------------------------------------------------------------------------- short errors: summary, card, traceback


def test_summary_is_a_headline_bullets_chips_and_the_details():
    err = guided_error(status("access_denied", 403, "Access denied."), ctx(model="qwen-max"))
    s = err.summary()
    assert isinstance(s, ErrorSummary) and "\n" not in s.headline and len(s.headline) <= 180
    assert "'team-a'" in s.headline and "'qwen-max'" in s.headline
    assert 2 <= len(s.fixes) <= 3 and s.fixes[0].startswith("Profiles of yours that can call it: 'default'")
    assert any("model permissions" in f for f in s.fixes)
    assert s.chips == (("HTTP", "403"), ("code", "access_denied"), ("request id", "rid-1"))
    assert str(err) in s.details and '"code": "access_denied"' in s.details  # the long text and the raw answer
    # no raw URL or JSON in what is shown first; the gateway URL stays in the details
    for line in (s.headline, *s.fixes):
        assert "https://" not in line and "POST" not in line and '{"' not in line
    assert "/api/v1/models/permissions" in s.details


def test_summary_of_other_errors():
    found = guided_error(status("ModelNotFound", 404, "Model not exist."), ctx(model="qwen-plsu"))
    assert found.summary().fixes[0] == "Did you mean 'qwen-plus'?"
    key = guided_error(status("InvalidApiKey", 401, "Invalid API-key provided."), ctx())
    assert key.summary().headline.endswith("at dashscope-intl.aliyuncs.com.")  # the host, not the URL
    bare = QwenNbError("Something broke.")
    assert bare.summary() == ErrorSummary("Something broke.", (), (), "Something broke.")
    assert summarize(ValueError(f"bad {KEY_A}\nmore")) == ErrorSummary(
        "ValueError: bad sk-…cdef", (), (), "bad sk-…cdef\nmore")


def test_error_card_html_is_short_escaped_and_keyless():
    err = guided_error(status("access_denied", 403, f"Denied <b>{KEY_B}</b>"), ctx(model="qwen-max"))
    page = error_card_html(err, actions_html="<button>Use profile 'default'</button>")
    assert page == error_card_html(err, actions_html="<button>Use profile 'default'</button>")
    assert page.startswith('<div class="qnb qnb-error"><style>') and "--jp-error-color1" in page
    assert "ModelNotGrantedError" in page and "<b>How to fix:</b>" in page and page.count("<li>") == 3
    assert "HTTP 403" in page and "request id rid-1" in page and "<details" in page
    assert "<button>Use profile 'default'</button>" in page and "<b>sk-" not in page
    assert err._repr_html_() == error_card_html(err)
    for text in (page, err._repr_markdown_(), str(err), repr(err.summary())):
        for key in (KEY_A, KEY_B, KEY_C):
            assert key not in text
    other = error_card_html(RuntimeError(f"boom {KEY_C}"))
    assert "RuntimeError" in other and KEY_C not in other and "sk-…1111" in other


def _cell_with_error(shell, session, cell):
    from IPython.utils.capture import capture_output

    shell.user_ns["session"] = session
    with capture_output() as cap:
        shell.run_cell(cell)
    return cap.stdout + cap.stderr


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    before = ip.InteractiveTB.mode
    yield ip
    ip.InteractiveTB.set_mode(mode=before)


CELL = """
def ask(who):
    return session.chat("hi", profile=who, model="qwen-max")

ask("wrong")
"""


def test_uncaught_error_shows_guidance_first_and_only_the_users_frames(shell, session, emu):
    import re
    import sys

    session.add_profile("wrong", key=emu.key("team-a"), region="cn-beijing")
    out = re.sub(r"\x1b\[[0-9;]*m", "", _cell_with_error(shell, session, CELL))
    first = out.strip().splitlines()[0]
    assert first.startswith("InvalidKeyError: The API key of profile 'wrong'")
    assert "  • " in out and "HTTP 401" in out
    assert "ask(\"wrong\")" in out and "return session.chat" in out  # the user's frames, in order
    assert "qwen_nb" not in out and "_pipeline" not in out and "interactiveshell" not in out
    assert "%tb verbose" in out
    err = sys.last_value
    chain, seen = [], err
    while seen is not None:  # the exception chain holds no key either
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    full = _cell_with_error(shell, session, "%tb verbose")
    assert "_pipeline" in full or "session.py" in full  # the full traceback is one magic away
    for key in {emu.key(w) for w in ("default", "team-a", "team-b")}:
        assert key not in out and key not in full
        for e in chain:
            assert key not in str(e) and key not in repr(e) and key not in repr(vars(e))


def test_uncaught_input_error_in_plain_mode(shell, session):
    shell.InteractiveTB.set_mode(mode="Plain")
    out = _cell_with_error(shell, session, "session.chat('hi', temperature=5)")
    assert "InvalidParameter" not in out and "temperature" in out.splitlines()[0]


def test_the_emulators_wording_is_not_quoted_as_the_services():
    """On the emulator, the quoted answer is the emulator's; the short form leaves it out as for the service."""
    emu_profile = Profile("team-a", region="ap-southeast-1", key=KEY_A, workspace="llm-aaa1", source="emulator")
    on_emulator = guided_error(status("Model.AccessDenied", 403, "Model access denied."), ctx(profile=emu_profile))
    on_service = guided_error(status("Model.AccessDenied", 403, "Model access denied."), ctx())
    assert "The emulator said: Model access denied." in on_emulator.message
    assert "service said" not in on_emulator.message
    assert "The service said: Model access denied." in on_service.message
    assert on_emulator.summary().headline == on_service.summary().headline
    assert "said" not in on_emulator.summary().headline
