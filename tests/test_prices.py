"""The price catalog: bundled entries with sources, tiers, thinking prices, unknown prices, user overrides."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from qwen_nb import catalog as model_catalog
from qwen_nb import facts, prices
from qwen_nb._regions import REGIONS
from qwen_nb.errors import InputError
from qwen_nb.prices import Price, PriceCatalog, Tier, parse_file

TIERED = """
[[price]]
model = "qwen3-max"
region = "ap-southeast-1"
currency = "USD"
source = "https://example.test/pricing"
checked = "2026-01-01"
tiers = [
  { up_to = 32768, input = 1.0, output = 5.0 },
  { up_to = 131072, input = 2.0, output = 10.0 },
  { up_to = 258048, input = 3.0, output = 15.0 },
]

[[price]]
model = "qwen-plus"
regions = ["cn-beijing"]
currency = "CNY"
source = "https://example.test/pricing-cn"
checked = "2026-01-01"
tiers = [
  { up_to = 131072, input = 0.8, output = 2.0, output_thinking = 8.0 },
  { input = 2.4, output = 20.0, output_thinking = 24.0 },
]
"""


@pytest.fixture(autouse=True)
def _fresh_default_catalog(monkeypatch):
    """Each test sees the bundled catalog only (no user file from the machine)."""
    monkeypatch.delenv("QWEN_NB_PRICES", raising=False)
    monkeypatch.setattr(prices, "user_paths", lambda: [])
    prices.reset()
    yield
    prices.reset()


def write(tmp_path: Path, text: str, name: str = "prices.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_bundled_entries_all_carry_source_date_and_region_currency():
    entries = prices.catalog().entries()
    assert entries, "the bundled catalog should not be empty"
    for p in entries:
        assert p.source.startswith("https://www.alibabacloud.com/") or p.source.startswith("https://help.aliyun.com/")
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.checked), p
        assert p.region in REGIONS
        assert p.currency == REGIONS[p.region].currency
        beyond_chat = facts.kind_model(p.model)  # embeddings and rerank: priced per input token, no output
        assert model_catalog.model_info(p.model) is not None or beyond_chat is not None, (
            f"{p.model} is not in the model catalog")
        assert all(t.input > 0 and (t.output > 0 or beyond_chat is not None) for t in p.tiers)


def test_bundled_qwen_max_singapore_price():
    cost, currency = prices.estimate("qwen-max", "ap-southeast-1", 1_000_000, 1_000_000)
    assert currency == "USD"
    assert cost == pytest.approx(1.6 + 6.4)


def test_unknown_model_or_region_is_none_never_zero():
    assert prices.estimate("no-such-model", "ap-southeast-1", 10, 10) == (None, "USD")
    # a model with no sourced Beijing price: unknown, in the region's currency
    assert prices.estimate("qwen3-max", "cn-beijing", 10, 10) == (None, "CNY")
    cost, _ = prices.estimate("qwen-max", "us-east-1", 10, 10)
    assert cost is None


def test_zero_tokens_with_known_price_costs_zero():
    assert prices.estimate("qwen-max", "ap-southeast-1", 0, 0) == (0.0, "USD")


def test_dated_snapshot_uses_its_base_price():
    base = prices.estimate("qwen-max", "ap-southeast-1", 1234, 567)
    assert prices.estimate("qwen-max-2025-01-25", "ap-southeast-1", 1234, 567) == base
    assert prices.estimate("qwen-max-latest", "ap-southeast-1", 1234, 567) == base


def test_exact_snapshot_entry_wins_over_base():
    cat = PriceCatalog(prices.catalog().entries())
    cat.add(Price("qwen-max-2025-01-25", "ap-southeast-1", "USD", (Tier(None, 1.0, 1.0),)))
    assert cat.estimate("qwen-max-2025-01-25", "ap-southeast-1", 1_000_000, 0) == (1.0, "USD")
    assert cat.estimate("qwen-max", "ap-southeast-1", 1_000_000, 0) == (1.6, "USD")


def test_tiers_are_chosen_by_input_tokens_per_request(tmp_path):
    cat = PriceCatalog(parse_file(write(tmp_path, TIERED)))
    m = 1_000_000
    assert cat.estimate("qwen3-max", "ap-southeast-1", 32_768, 0)[0] == pytest.approx(32_768 * 1.0 / m)
    assert cat.estimate("qwen3-max", "ap-southeast-1", 32_769, 0)[0] == pytest.approx(32_769 * 2.0 / m)
    assert cat.estimate("qwen3-max", "ap-southeast-1", 200_000, 1000)[0] == pytest.approx(
        (200_000 * 3.0 + 1000 * 15.0) / m
    )
    # beyond the last bounded tier: unknown, not the last tier's price
    assert cat.estimate("qwen3-max", "ap-southeast-1", 300_000, 10) == (None, "USD")
    # an open last tier covers everything above
    assert cat.estimate("qwen-plus", "cn-beijing", 900_000, 0)[0] == pytest.approx(900_000 * 2.4 / m)


def test_thinking_output_price_applies_to_all_output_when_thinking(tmp_path):
    cat = PriceCatalog(parse_file(write(tmp_path, TIERED)))
    m = 1_000_000
    plain, cur = cat.estimate("qwen-plus", "cn-beijing", 1000, 500)
    thinking, _ = cat.estimate("qwen-plus", "cn-beijing", 1000, 500, reasoning_tokens=300)
    assert cur == "CNY"
    assert plain == pytest.approx((1000 * 0.8 + 500 * 2.0) / m)
    assert thinking == pytest.approx((1000 * 0.8 + 500 * 8.0) / m)


def test_missing_thinking_price_of_hybrid_model_is_unknown():
    # qwen-plus (hybrid thinking) has no sourced thinking-mode price in Singapore
    assert prices.estimate("qwen-plus", "ap-southeast-1", 100, 50)[0] is not None
    assert prices.estimate("qwen-plus", "ap-southeast-1", 100, 50, reasoning_tokens=20) == (None, "USD")
    # a model without thinking never produces reasoning tokens; if it did, its output price still applies
    assert prices.estimate("qwen-max", "ap-southeast-1", 100, 50, reasoning_tokens=20)[0] is not None


def test_bundled_lowest_tier_is_not_stretched_to_long_inputs():
    assert prices.estimate("qwen-plus", "ap-southeast-1", 131_072, 10)[0] is not None
    assert prices.estimate("qwen-plus", "ap-southeast-1", 131_073, 10)[0] is None


def test_load_extra_overrides_and_extends_default_catalog(tmp_path):
    assert prices.estimate("qwen3-max", "ap-southeast-1", 100, 100)[0] is None
    loaded = prices.load_extra(write(tmp_path, TIERED))
    assert {(p.model, p.region) for p in loaded} == {("qwen3-max", "ap-southeast-1"), ("qwen-plus", "cn-beijing")}
    assert prices.estimate("qwen3-max", "ap-southeast-1", 100, 100)[0] == pytest.approx((100 + 500) / 1e6)
    p = prices.get_price("qwen3-max-2025-09-23", "ap-southeast-1")
    assert p is not None and p.source == "https://example.test/pricing" and p.checked == "2026-01-01"
    override = '[[price]]\nmodel = "qwen-max"\nregion = "ap-southeast-1"\ninput = 1\noutput = 2\n'
    prices.load_extra(write(tmp_path, override, "o.toml"))
    assert prices.estimate("qwen-max", "ap-southeast-1", 1_000_000, 1_000_000) == (3.0, "USD")


def test_env_var_files_are_loaded_on_top_of_bundled(tmp_path, monkeypatch):
    monkeypatch.undo()  # restore the real user_paths
    a = write(tmp_path, TIERED, "a.toml")
    b = write(tmp_path, '[[price]]\nmodel = "qwen3-max"\nregion = "ap-southeast-1"\ninput = 9\noutput = 9\n', "b.toml")
    monkeypatch.setenv("QWEN_NB_PRICES", f"{a}{os.pathsep}{b}")
    prices.reset()
    assert prices.estimate("qwen3-max", "ap-southeast-1", 1_000_000, 0) == (9.0, "USD")  # b overrides a
    assert prices.estimate("qwen-plus", "cn-beijing", 100_000, 0) == (pytest.approx(0.08), "CNY")  # from a
    assert prices.estimate("qwen-max", "ap-southeast-1", 1_000_000, 0) == (1.6, "USD")  # bundled


def test_user_config_file_via_platformdirs(tmp_path, monkeypatch):
    monkeypatch.undo()
    monkeypatch.delenv("QWEN_NB_PRICES", raising=False)
    import platformdirs

    cfg = tmp_path / "cfg"
    cfg.mkdir()
    write(cfg, TIERED)
    monkeypatch.setattr(platformdirs, "user_config_dir", lambda app: str(cfg))
    assert prices.user_paths() == [cfg / "prices.toml"]


@pytest.mark.parametrize(
    "text, words",
    [
        ('[[price]]\nregion = "ap-southeast-1"\ninput = 1\noutput = 1\n', "model"),
        ('[[price]]\nmodel = "m"\ninput = 1\noutput = 1\n', "region"),
        ('[[price]]\nmodel = "m"\nregion = "ap-southeast-1"\ninput = -1\noutput = 1\n', "input"),
        ('[[price]]\nmodel = "m"\nregion = "ap-southeast-1"\ninput = 1\n', "output"),
        ('[[price]]\nmodel = "m"\nregion = "ap-southeast-1"\ninput = "cheap"\noutput = 1\n', "input"),
        ('[[price]]\nmodel = "m"\nregion = "r"\ntiers = [{ input = 1, output = 1 }, { input = 2, output = 2 }]\n',
         "ascending"),
        ('[[price]]\nmodel = "m"\nregion = "r"\ntiers = [{ up_to = 10, input = 1, output = 1 }, '
         '{ up_to = 5, input = 2, output = 2 }]\n', "ascending"),
        ("[[price]\nmodel = ", "not valid TOML"),
    ],
)
def test_bad_price_files_give_clear_input_errors(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        parse_file(path)
    assert words in str(info.value)
    assert str(path) in str(info.value)


def test_missing_price_file_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        prices.load_extra(tmp_path / "nope.toml")


@pytest.mark.parametrize("bad", [-1, 1.5, "10", None, True])
def test_bad_token_counts_are_rejected(bad):
    with pytest.raises(InputError):
        prices.estimate("qwen-max", "ap-southeast-1", bad, 0)
