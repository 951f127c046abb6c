"""Region and model catalogs: pure lookups."""

from __future__ import annotations

import pytest

from qwen_nb import catalog
from qwen_nb._profiles import Profile
from qwen_nb._regions import REGIONS, get_region, regions
from qwen_nb.emulator.hosts import emulator_regions
from qwen_nb.errors import InputError


def test_region_bases_follow_the_service_layout():
    sg = get_region("ap-southeast-1")
    assert sg.compatible_base() == "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
    assert sg.native_base() == "https://dashscope-intl.aliyuncs.com/api/v1"
    assert get_region("cn-beijing").native_base() == "https://dashscope.aliyuncs.com/api/v1"
    assert sg.native_base("llm-abc") == "https://llm-abc.ap-southeast-1.maas.aliyuncs.com/api/v1"
    # US (Virginia) has its own shared host; Frankfurt and Tokyo have workspace hosts only
    assert get_region("us-east-1").host == "https://dashscope-us.aliyuncs.com"
    assert get_region("eu-central-1").native_base("llm-abc") == "https://llm-abc.eu-central-1.maas.aliyuncs.com/api/v1"
    with pytest.raises(InputError, match="no shared host"):
        get_region("ap-northeast-1").native_base()


def test_a_profile_in_a_workspace_only_region_needs_its_workspace_id():
    with pytest.raises(InputError, match="QWEN_NB_DE_WORKSPACE"):
        Profile("de", region="eu-central-1", key="sk-0123456789abcdef0123")
    assert Profile("de", region="eu-central-1", key="sk-0123456789abcdef0123", workspace="llm-abcd").workspace


@pytest.mark.parametrize("alias,rid", [("Singapore", "ap-southeast-1"), ("beijing", "cn-beijing"),
                                        ("HK", "cn-hongkong"), ("Frankfurt", "eu-central-1")])
def test_aliases(alias, rid):
    assert get_region(alias).id == rid


@pytest.mark.parametrize("bad", ["", None, "mars-1"])
def test_unknown_region(bad):
    with pytest.raises(InputError, match="Use one of"):
        get_region(bad)


def test_emulator_regions_mirror_the_catalog():
    emu = emulator_regions("http://127.0.0.1:9999/")
    assert set(emu) == set(REGIONS) == {r.id for r in regions().values()}
    assert emu["cn-beijing"].compatible_base() == "http://127.0.0.1:9999/cn-beijing/compatible-mode/v1"
    assert emu["cn-beijing"].native_base("ws1") == "http://127.0.0.1:9999/cn-beijing/ws/ws1/api/v1"


def test_model_info_and_snapshots():
    assert catalog.model_info("qwen-plus").thinking == "hybrid"
    assert catalog.model_info("qwen-plus-2025-07-28").id == "qwen-plus"
    assert catalog.model_info("qwen-plus-latest").id == "qwen-plus"
    assert catalog.model_info("no-such-model") is None
    assert catalog.model_info("qwen3-32b").stream_only_thinking
    assert not catalog.model_info("qwen-plus").stream_only_thinking
    assert catalog.model_info("qwen-vl-max").vision


def test_suggest():
    assert catalog.suggest("qwen-pluss") == "qwen-plus"
    assert catalog.suggest("qwen3max") == "qwen3-max"
    assert catalog.suggest("zzzz") is None
