"""The price catalog: what a call costs, per model and region, with where each price came from.

Prices are per million tokens, in the currency the region bills in. An entry
has one or more tiers chosen by the number of input tokens of the request
(Model Studio prices some models by input length), an optional thinking-mode
output price, its ``source`` (the public pricing page) and the date it was
``checked``.

A price nobody could verify is left out: ``estimate()`` then returns ``None``
("unknown"), never zero.

The bundled catalog (``qwen_nb/data/prices.toml``) is extended or overridden,
entry by entry, by a user file: ``$QWEN_NB_PRICES`` (one or more paths
separated by the OS path separator) or else ``prices.toml`` in the per-user
config dir (``platformdirs.user_config_dir("qwen-nb")``), and by
``load_extra(path)`` at run time. File format::

    [[price]]
    model = "qwen-plus"
    region = "ap-southeast-1"          # or regions = ["us-east-1", "eu-central-1"]
    currency = "USD"
    source = "https://..."
    checked = "2026-11-25"
    # either one flat price ...
    input = 0.4                        # per million input tokens
    output = 1.2                       # per million output tokens
    output_thinking = 4.0              # optional: output price when thinking was on
    # ... or tiers by input tokens per request (ascending; last may omit up_to)
    # tiers = [{ up_to = 131072, input = 0.4, output = 1.2 }, { input = 1.2, output = 3.6 }]
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwen_nb import facts
from qwen_nb.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

ENV_PRICES = "QWEN_NB_PRICES"
#: the token counts ``estimate`` takes, in its argument order
_TOKEN_COUNTS = ("input_tokens", "output_tokens", "reasoning_tokens", "cached_tokens", "cache_creation_tokens")
PER = 1_000_000


@dataclass(frozen=True)
class Tier:
    """One price band: applies to requests with at most ``up_to`` input tokens (``None``: no bound)."""

    up_to: int | None
    input: float
    output: float
    #: output price when thinking was on; ``None``: not known to differ
    output_thinking: float | None = None


@dataclass(frozen=True)
class Price:
    """The price of one model in one region, and where it was found."""

    model: str
    region: str
    currency: str
    tiers: tuple[Tier, ...]
    source: str = ""
    checked: str = ""
    note: str = ""

    def tier(self, input_tokens: int) -> Tier | None:
        """The tier a request with ``input_tokens`` falls in, or ``None`` if beyond every known tier."""
        for t in self.tiers:
            if t.up_to is None or input_tokens <= t.up_to:
                return t
        return None


def _thinking_is_switchable(model: str) -> bool:
    from qwen_nb.catalog import model_info

    info = model_info(model)
    return info is not None and info.thinking == "hybrid"


class PriceCatalog:
    """A set of ``Price`` entries keyed by (model, region); later entries override earlier ones."""

    def __init__(self, prices: Iterable[Price] = ()) -> None:
        self._prices: dict[tuple[str, str], Price] = {}
        self._lock = threading.Lock()
        self.add(*prices)

    def add(self, *prices: Price) -> None:
        """Add or replace entries."""
        with self._lock:
            for p in prices:
                self._prices[(p.model, p.region)] = p

    def load(self, path: str | Path) -> list[Price]:
        """Add the entries of a TOML file (see the module docstring); returns what was loaded."""
        prices = parse_file(path)
        self.add(*prices)
        return prices

    def entries(self) -> list[Price]:
        """Every entry, sorted by model then region."""
        with self._lock:
            return sorted(self._prices.values(), key=lambda p: (p.model, p.region))

    def get(self, model: str, region: str) -> Price | None:
        """The entry for ``model`` in ``region``; dated snapshots fall back to their base model."""
        hit = self._prices.get((model, region))  # one dict read is atomic: no lock needed to read
        if hit is not None:
            return hit
        from qwen_nb.catalog import model_info

        info = model_info(model)
        if info is not None and info.id != model:
            with self._lock:
                return self._prices.get((info.id, region))
        return None

    def estimate(
        self, model: str, region: str, input_tokens: int, output_tokens: int, reasoning_tokens: int = 0,
        cached_tokens: int = 0, cache_creation_tokens: int = 0, cache_type: str = "",
    ) -> tuple[float | None, str]:
        """Estimated cost of one call and its currency; the cost is ``None`` when the price is unknown.

        ``reasoning_tokens`` are part of ``output_tokens``; when there are any, the whole output is
        priced at the tier's thinking-mode output price. For models whose thinking can be switched
        on and off, a missing thinking price makes the cost unknown rather than guessed.
        ``cached_tokens`` and ``cache_creation_tokens`` are part of ``input_tokens`` and priced at the
        context cache's rates (``input_cost``).
        """
        counts = (input_tokens, output_tokens, reasoning_tokens, cached_tokens, cache_creation_tokens)
        for name, value in zip(_TOKEN_COUNTS, counts, strict=True):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InputError(
                    f"{name} must be a non-negative integer, got {value!r}.", fix="Pass token counts as ints >= 0."
                )
        price = self.get(model, region)
        if price is None:
            return None, region_currency(region)
        tier = price.tier(input_tokens)
        if tier is None:
            return None, price.currency
        out_price = tier.output
        if reasoning_tokens > 0:
            if tier.output_thinking is not None:
                out_price = tier.output_thinking
            elif _thinking_is_switchable(model):
                return None, price.currency
        inp = input_cost(tier.input, input_tokens, cached_tokens, cache_creation_tokens, cache_type)
        return (inp + output_tokens * out_price) / PER, price.currency


def input_cost(price: float, input_tokens: int, cached_tokens: int = 0, cache_creation_tokens: int = 0,
               cache_type: str = "") -> float:
    """What the input of a call costs at ``price`` per token, with the context cache's rates applied.

    Tokens read from an explicit cache (``cache_type="ephemeral"``) cost 10 % of the price, from the
    implicit cache 20 %; tokens written to an explicit cache 125 %; the rest 100 %.
    """
    cached = min(cached_tokens, input_tokens)
    created = min(cache_creation_tokens, input_tokens - cached)
    hit = facts.CACHE_EXPLICIT_HIT if cache_type == "ephemeral" else facts.CACHE_IMPLICIT_HIT
    plain = input_tokens - cached - created
    return price * (plain + cached * hit + created * facts.CACHE_EXPLICIT_CREATE)


def region_currency(region: str) -> str:
    """The currency ``region`` bills in (USD when the region is not in the catalog)."""
    from qwen_nb._regions import REGIONS

    r = REGIONS.get(region)
    return r.currency if r is not None else "USD"


# ---------------------------------------------------------------- parsing


def _num(entry: dict[str, Any], key: str, where: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InputError(
            f"{where}: '{key}' must be a non-negative number (price per million tokens), got {value!r}.",
            fix=f"Write e.g. {key} = 0.4",
        )
    return float(value)


def _opt(entry: dict[str, Any], key: str, where: str) -> float | None:
    return None if entry.get(key) is None else _num(entry, key, where)


def _tiers(entry: dict[str, Any], where: str) -> tuple[Tier, ...]:
    raw = entry.get("tiers")
    if raw is None:
        return (Tier(None, _num(entry, "input", where), _num(entry, "output", where),
                     _opt(entry, "output_thinking", where)),)
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{where}: 'tiers' must be a non-empty list of tables.", fix="See qwen_nb.prices docs.")
    tiers: list[Tier] = []
    for i, t in enumerate(raw):
        w = f"{where} tier {i + 1}"
        if not isinstance(t, dict):
            raise InputError(f"{w}: each tier must be a table like {{ up_to = 32768, input = 1.2, output = 6 }}.")
        up_to = t.get("up_to")
        if up_to is not None and (isinstance(up_to, bool) or not isinstance(up_to, int) or up_to <= 0):
            raise InputError(f"{w}: 'up_to' must be a positive integer (input tokens), got {up_to!r}.")
        if tiers and (tiers[-1].up_to is None or (up_to is not None and up_to <= tiers[-1].up_to)):
            raise InputError(f"{w}: tiers must be in ascending 'up_to' order; only the last may omit it.")
        tiers.append(Tier(up_to, _num(t, "input", w), _num(t, "output", w), _opt(t, "output_thinking", w)))
    return tuple(tiers)


def parse_entries(data: dict[str, Any], origin: str = "prices") -> list[Price]:
    """``Price`` entries from parsed TOML data (``{"price": [...]}``)."""
    raw = data.get("price", [])
    if not isinstance(raw, list):
        raise InputError(f"{origin}: 'price' must be an array of tables.", fix="Start each entry with [[price]].")
    prices: list[Price] = []
    for i, entry in enumerate(raw):
        where = f"{origin} entry {i + 1}"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected a table.", fix="Start each entry with [[price]].")
        model = entry.get("model")
        if not isinstance(model, str) or not model.strip():
            raise InputError(f"{where}: 'model' is missing.", fix='Add e.g. model = "qwen-plus".')
        where = f"{origin} entry {i + 1} ({model})"
        regions = entry.get("regions", entry.get("region"))
        if isinstance(regions, str):
            regions = [regions]
        if not isinstance(regions, list) or not regions or not all(isinstance(r, str) and r for r in regions):
            raise InputError(f"{where}: 'region' is missing.", fix='Add e.g. region = "ap-southeast-1".')
        tiers = _tiers(entry, where)
        for region in regions:
            currency = entry.get("currency") or region_currency(region)
            if not isinstance(currency, str) or not currency.isalpha():
                raise InputError(f"{where}: 'currency' must be a code such as USD or CNY, got {currency!r}.")
            prices.append(
                Price(
                    model=model.strip(),
                    region=region,
                    currency=currency.upper(),
                    tiers=tiers,
                    source=str(entry.get("source", "")),
                    checked=str(entry.get("checked", "")),
                    note=str(entry.get("note", "")),
                )
            )
    return prices


def parse_file(path: str | Path) -> list[Price]:
    """``Price`` entries of one TOML file; a clear ``InputError`` if it is missing or malformed."""
    p = Path(path).expanduser()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"Price file {str(p)!r} does not exist.", fix=f"Check the path (or ${ENV_PRICES}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"Price file {str(p)!r} is not valid TOML: {exc}.", fix="Fix the syntax.") from None
    return parse_entries(data, origin=str(p))


# ---------------------------------------------------------------- the default catalog

_default: PriceCatalog | None = None
_default_lock = threading.Lock()


def bundled_path() -> Path:
    """Path of the catalog shipped with qwen-nb."""
    return Path(__file__).parent / "data" / "prices.toml"


def user_paths() -> list[Path]:
    """The user price files that apply: ``$QWEN_NB_PRICES`` if set, else the per-user config file if present."""
    from qwen_nb._settings import Settings

    env = Settings().get(ENV_PRICES)
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    from platformdirs import user_config_dir

    p = Path(user_config_dir("qwen-nb")) / "prices.toml"
    return [p] if p.is_file() else []


def catalog() -> PriceCatalog:
    """The process-wide catalog: bundled prices, then the user's files on top."""
    global _default
    if _default is not None:  # loaded: no lock needed to read it (every call asks)
        return _default
    with _default_lock:
        if _default is None:
            cat = PriceCatalog(parse_file(bundled_path()))
            for p in user_paths():
                cat.load(p)
            _default = cat
        return _default


def load_extra(path: str | Path) -> list[Price]:
    """Add (or override) prices from a TOML file in the process-wide catalog."""
    return catalog().load(path)


def reset() -> None:
    """Forget the process-wide catalog; the next use reloads the bundled and user files."""
    global _default
    with _default_lock:
        _default = None


def get_price(model: str, region: str) -> Price | None:
    """The process-wide entry for ``model`` in ``region`` (``None`` if unknown)."""
    return catalog().get(model, region)


def estimate(
    model: str, region: str, input_tokens: int, output_tokens: int, reasoning_tokens: int = 0,
    cached_tokens: int = 0, cache_creation_tokens: int = 0, cache_type: str = "",
) -> tuple[float | None, str]:
    """Estimated cost of one call with the process-wide catalog: ``(cost or None, currency)``."""
    return catalog().estimate(model, region, input_tokens, output_tokens, reasoning_tokens, cached_tokens,
                              cache_creation_tokens, cache_type)
