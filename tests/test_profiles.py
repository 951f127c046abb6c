"""Profiles: loading precedence, naming convention, key masking and cleaning."""

from __future__ import annotations

import warnings

import pytest

from qwen_nb._profiles import Profile, clean_key, load_profiles, mask_key
from qwen_nb.errors import InputError

KEY = "sk-0123456789abcdef0123456789abcdef"
KEY2 = "sk-fedcba9876543210fedcba9876543210"


def test_mask_key_shows_only_last_four():
    assert mask_key(KEY) == "sk-…cdef"
    assert mask_key(None) == "(no key)"
    assert KEY not in mask_key(KEY)


def test_profile_repr_and_summary_never_hold_the_key():
    p = Profile("team-a", "singapore", key=KEY, workspace="llm-abc1")
    for text in (repr(p), str(p), str(p.summary()), f"{p!r}"):
        assert KEY not in text
        assert KEY[3:-4] not in text
    assert p.region == "ap-southeast-1"
    assert p.masked_key == "sk-…cdef"


def test_whitespace_around_key_is_stripped_with_a_warning():
    with pytest.warns(UserWarning, match="paste error") as rec:
        assert clean_key(f"  {KEY}\n") == KEY
    assert all(KEY not in str(w.message) for w in rec)


@pytest.mark.parametrize("bad", ["", "   ", "hello", "sk-", "sk-short", "Bearer sk-0123456789abcdef"])
def test_keys_that_do_not_look_like_model_studio_keys_are_refused(bad):
    with pytest.raises(InputError) as e:
        clean_key(bad)
    assert "How to fix" in str(e.value) or "empty" in str(e.value)


def test_unknown_region_is_refused_with_a_suggestion():
    with pytest.raises(InputError, match="Did you mean 'cn-beijing'"):
        Profile("x", "cn-bejing", key=KEY)


def test_load_profiles_default_and_named():
    env = {
        "DASHSCOPE_API_KEY": KEY,
        "DASHSCOPE_REGION": "cn-beijing",
        "QWEN_NB_TEAM_A_API_KEY": KEY2,
        "QWEN_NB_TEAM_A_WORKSPACE": "llm-teama",
        "QWEN_NB_TEAM_A_MODELS": "qwen-plus, qwen-flash",
        "QWEN_NB_TEAM_A_BUDGET": "12.5",
    }
    got = load_profiles(env, use_dotenv=False)
    assert set(got) == {"default", "team-a"}
    assert got["default"].region == "cn-beijing"
    a = got["team-a"]
    assert (a.region, a.workspace, a.budget) == ("ap-southeast-1", "llm-teama", 12.5)
    assert a.models == ("qwen-plus", "qwen-flash")


def test_environment_wins_over_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"DASHSCOPE_API_KEY={KEY}\nDASHSCOPE_REGION=cn-beijing\nQWEN_NB_LAB_API_KEY={KEY2}\n")
    got = load_profiles({"DASHSCOPE_REGION": "ap-southeast-1"}, dotenv)
    assert got["default"].region == "ap-southeast-1"
    assert got["default"].source == ".env"
    assert got["lab"].key == KEY2


def test_bad_budget_is_a_clear_error():
    with pytest.raises(InputError, match="not a number"):
        load_profiles({"QWEN_NB_X_API_KEY": KEY, "QWEN_NB_X_BUDGET": "ten"}, use_dotenv=False)


def test_no_key_no_profiles():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_profiles({}, use_dotenv=False) == {}
