"""q.tutorial_setup(): which profile plays the default workspace and which a sub-workspace, for each key setup."""

from __future__ import annotations

import pytest

import qwen_nb as q
from qwen_nb import Profile, Session
from qwen_nb.facts import DOCS
from qwen_nb.tutorial import links, tutorial_setup

KEY_A = "sk-" + "a1" * 16
KEY_B = "sk-" + "b2" * 16


def _session(*profiles: Profile) -> Session:
    return Session({p.name: p for p in profiles}, ledger=q.Ledger(":memory:"))


HOME = Profile("default", region="ap-southeast-1", key=KEY_A, source="environment")
TEAM = Profile("team", region="ap-southeast-1", key=KEY_B, workspace="llm-team0001", models=("qwen-plus",),
               source="environment")


@pytest.mark.parametrize(("profiles", "setup", "home", "sub", "used"), [
    ((HOME,), "default-only", "default", None, "default"),
    ((HOME, TEAM), "default+sub", "default", "team", "team"),
    ((TEAM,), "sub-only", None, "team", "team"),
])
def test_each_key_setup_is_named_and_explained(capsys, profiles, setup, home, sub, used):
    s = _session(*profiles)
    tut = tutorial_setup(session=s)
    out = capsys.readouterr().out
    assert tut.setup == setup and tut.profile.name == used
    assert (tut.home.name if tut.home else None) == home and (tut.sub.name if tut.sub else None) == sub
    assert "Lessons call with profile" in out and KEY_A not in out and KEY_B not in out
    if setup == "default-only":
        assert "No sub-workspace key" in out and tut.account_profile() is None
    if setup == "sub-only":
        assert "No default-workspace key" in out
    s.close()


def test_urls_are_the_services_and_snippet_profiles_carry_no_key():
    s = _session(HOME, TEAM)
    tut = tutorial_setup(session=s, quiet=True)
    assert tut.service_url(TEAM, "openai") == "https://llm-team0001.ap-southeast-1.maas.aliyuncs.com/compatible-mode/v1"
    assert tut.base_url(HOME, "dashscope") == "https://dashscope-intl.aliyuncs.com/api/v1"
    snip = tut.for_snippet()
    assert snip.key == "" and snip.base_url is None and snip.workspace == "llm-team0001"
    code = str(q.snippet(language="curl", profile=snip))
    assert "https://llm-team0001.ap-southeast-1.maas.aliyuncs.com" in code and KEY_B not in code
    account = tut.account_profile()
    assert account is not None and account.workspace == TEAM.workspace and account.key == HOME.key
    s.close()


def test_links_come_from_the_one_list_of_pages():
    md = links("error_codes", "billing")._repr_markdown_()
    assert DOCS["error_codes"][1] in md and DOCS["billing"][1] in md
    with pytest.raises(q.InputError):
        links("nope")
