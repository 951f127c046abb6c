"""``Profile`` (a region + a workspace key) and loading profiles from the environment.

Precedence: explicit arguments > environment variables > ``.env`` file > defaults.

Convention:

* the default profile comes from the SDKs' own variables, so an existing setup
  works unchanged: ``DASHSCOPE_API_KEY``, ``DASHSCOPE_REGION``, ``DASHSCOPE_WORKSPACE``;
* any number of named profiles, one per sub-workspace:
  ``QWEN_NB_<NAME>_API_KEY`` (required), ``QWEN_NB_<NAME>_REGION``,
  ``QWEN_NB_<NAME>_WORKSPACE``, ``QWEN_NB_<NAME>_MODELS`` (comma-separated grants,
  if known) and ``QWEN_NB_<NAME>_BUDGET`` (in the region's currency).
  ``<NAME>`` becomes the profile name in lower case with ``_`` turned to ``-``.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from qwen_nb.errors import InputError
from qwen_nb.regions import DEFAULT_REGION, get_region

KEY_PATTERN = re.compile(r"^sk-[A-Za-z0-9][A-Za-z0-9_-]{7,}$")
#: finds keys inside longer text (used by the notebook scanner and log scrubbing)
KEY_SEARCH = re.compile(r"\bsk-[A-Za-z0-9][A-Za-z0-9_-]{15,}")
_NAMED = re.compile(r"^QWEN_NB_([A-Z0-9_]+?)_API_KEY$")


def mask_key(key: str | None) -> str:
    """``sk-…1a2b``: enough to tell keys apart, never enough to use one."""
    if not key:
        return "(no key)"
    key = key.strip()
    if len(key) <= 8:
        return "sk-…" if key.startswith("sk-") else "…"
    prefix = "sk-" if key.startswith("sk-") else ""
    return f"{prefix}…{key[-4:]}"


def clean_key(key: str, *, source: str = "key") -> str:
    """Strip paste debris (spaces, newlines, quotes) with a warning; reject non-keys."""
    if not isinstance(key, str):
        raise InputError(f"The {source} must be a string, got {type(key).__name__}.")
    stripped = key.strip().strip("'\"").strip()
    if stripped and stripped != key:
        warnings.warn(
            f"The {source} {mask_key(stripped)} had surrounding whitespace, quotes or a newline "
            "(a common paste error); it was stripped.",
            stacklevel=3,
        )
    if not stripped:
        raise InputError(
            f"The {source} is empty.", fix="Paste the API key from the Model Studio console (API-KEY page)."
        )
    if not KEY_PATTERN.match(stripped):
        raise InputError(
            f"The {source} {mask_key(stripped)} does not look like a Model Studio API key.",
            fix="Model Studio keys start with 'sk-' followed by letters and digits; "
            "copy it again from the console's API-KEY page of the right workspace and region.",
        )
    return stripped


@dataclass(frozen=True)
class Profile:
    """A name, a region and a workspace's API key (never shown: see ``masked_key``)."""

    name: str
    region: str = DEFAULT_REGION
    key: str = field(default="", repr=False)
    workspace: str | None = None
    #: models this workspace was granted, if known (None: unknown / all)
    models: tuple[str, ...] | None = None
    #: spending budget in the region's currency, if any
    budget: float | None = None
    #: where it came from: "explicit", "environment", ".env", "emulator"
    source: str = "explicit"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError("A profile needs a non-empty name.")
        object.__setattr__(self, "region", get_region(self.region).id)
        if self.key:
            object.__setattr__(self, "key", clean_key(self.key, source=f"key of profile {self.name!r}"))

    @property
    def masked_key(self) -> str:
        """The key as it may be shown: ``sk-…1a2b``."""
        return mask_key(self.key)

    def __repr__(self) -> str:
        ws = f", workspace={self.workspace!r}" if self.workspace else ""
        return f"Profile(name={self.name!r}, region={self.region!r}, key={self.masked_key!r}{ws})"

    def summary(self) -> dict:
        """A dict safe to show or save: the key masked."""
        return {
            "name": self.name,
            "region": self.region,
            "key": self.masked_key,
            "workspace": self.workspace,
            "models": ", ".join(self.models) if self.models else "all / unknown",
            "budget": self.budget,
            "source": self.source,
        }


def _split_models(value: str | None) -> tuple[str, ...] | None:
    if not value or value.strip() in ("", "*", "all"):
        return None
    return tuple(m.strip() for m in value.split(",") if m.strip())


def _budget(value: str | None, name: str) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise InputError(f"Budget of profile {name!r} is {value!r}, not a number.") from None


def _read_dotenv(path: str | os.PathLike | None) -> dict[str, str]:
    from dotenv import dotenv_values

    if path is None:
        from dotenv import find_dotenv

        found = find_dotenv(usecwd=True)
        if not found:
            return {}
        path = found
    if not Path(path).is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def load_profiles(
    env: Mapping[str, str] | None = None,
    dotenv_path: str | os.PathLike | None = None,
    *,
    use_dotenv: bool = True,
) -> dict[str, Profile]:
    """Profiles from the environment and a ``.env`` file (environment wins).

    ``env`` defaults to ``os.environ``; ``dotenv_path`` defaults to the nearest ``.env``.
    """
    merged: dict[str, str] = {}
    sources: dict[str, str] = {}
    if use_dotenv:
        for k, v in _read_dotenv(dotenv_path).items():
            merged[k], sources[k] = v, ".env"
    for k, v in (os.environ if env is None else env).items():
        merged[k], sources[k] = v, "environment"

    out: dict[str, Profile] = {}
    if merged.get("DASHSCOPE_API_KEY", "").strip():
        out["default"] = Profile(
            "default",
            region=merged.get("DASHSCOPE_REGION") or DEFAULT_REGION,
            key=merged["DASHSCOPE_API_KEY"],
            workspace=merged.get("DASHSCOPE_WORKSPACE") or None,
            models=_split_models(merged.get("QWEN_NB_DEFAULT_MODELS")),
            budget=_budget(merged.get("QWEN_NB_DEFAULT_BUDGET"), "default"),
            source=sources["DASHSCOPE_API_KEY"],
        )
    for var in sorted(merged):
        m = _NAMED.match(var)
        if not m or not merged[var].strip():
            continue
        raw = m.group(1)
        name = raw.lower().replace("_", "-")
        out[name] = Profile(
            name,
            region=merged.get(f"QWEN_NB_{raw}_REGION") or DEFAULT_REGION,
            key=merged[var],
            workspace=merged.get(f"QWEN_NB_{raw}_WORKSPACE") or None,
            models=_split_models(merged.get(f"QWEN_NB_{raw}_MODELS")),
            budget=_budget(merged.get(f"QWEN_NB_{raw}_BUDGET"), name),
            source=sources[var],
        )
    return out
