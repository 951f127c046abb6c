"""Known models: family, modalities, thinking support, context size, regions.

Pure data. The service's own model list (``GET /compatible-mode/v1/models``)
is the authority for what a key can see; this catalog fills in what that list
does not say (thinking behaviour, modalities) and lets bad model names be
caught with a did-you-mean before any call. Prices live in ``prices.py``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

ALL_REGIONS = ("ap-southeast-1", "cn-beijing", "cn-hongkong", "us-east-1", "eu-central-1", "ap-northeast-1")
INTL_AND_BEIJING = ("ap-southeast-1", "cn-beijing")


@dataclass(frozen=True)
class ModelInfo:
    """What qwen-nb knows about one model."""

    id: str
    family: str
    #: input modalities, e.g. ("text",) or ("text", "image")
    modalities: tuple[str, ...] = ("text",)
    #: "never" (no thinking), "hybrid" (switchable with enable_thinking), "always" (thinking only)
    thinking: str = "never"
    #: whether thinking is on when the caller does not say
    thinking_default: bool = False
    #: open-source models refuse non-streaming calls while thinking is on
    open_source: bool = False
    context: int = 131_072
    max_output: int = 8_192
    regions: tuple[str, ...] = INTL_AND_BEIJING
    description: str = ""

    @property
    def vision(self) -> bool:
        """True if the model takes images (called on the native multimodal endpoint)."""
        return "image" in self.modalities

    @property
    def stream_only_thinking(self) -> bool:
        """True if a non-streaming call with thinking on is refused by the service."""
        return self.thinking == "always" or (self.open_source and self.thinking == "hybrid")


_MODELS = (
    ModelInfo("qwen3-max", "qwen3", context=262_144, max_output=65_536,
              description="Most capable commercial Qwen3 model"),
    ModelInfo("qwen-max", "qwen", context=32_768, description="Qwen2.5-Max, strongest of the Qwen2.5 line"),
    ModelInfo("qwen-plus", "qwen", thinking="hybrid", context=1_000_000, max_output=32_768,
              description="Balanced quality, speed and cost; hybrid thinking"),
    ModelInfo("qwen-flash", "qwen", thinking="hybrid", context=1_000_000, max_output=32_768,
              description="Fast and cheap; hybrid thinking"),
    ModelInfo("qwen-turbo", "qwen", thinking="hybrid", context=1_000_000, max_output=16_384,
              description="Fast and cheap (being succeeded by qwen-flash)"),
    ModelInfo("qwq-plus", "qwq", thinking="always", thinking_default=True, max_output=8_192,
              description="Reasoning model; streaming only"),
    ModelInfo("qwen3-coder-plus", "qwen3-coder", context=1_000_000, max_output=65_536,
              description="Code generation and agentic coding"),
    ModelInfo("qwen3-235b-a22b", "qwen3", thinking="hybrid", thinking_default=True, open_source=True,
              description="Open-source Qwen3 MoE; thinking on by default"),
    ModelInfo("qwen3-32b", "qwen3", thinking="hybrid", thinking_default=True, open_source=True,
              description="Open-source Qwen3 dense 32B; thinking on by default"),
    ModelInfo("qwen3-8b", "qwen3", thinking="hybrid", thinking_default=True, open_source=True,
              description="Open-source Qwen3 dense 8B; thinking on by default"),
    ModelInfo("qwen-vl-max", "qwen-vl", modalities=("text", "image"), description="Vision-language, strongest"),
    ModelInfo("qwen-vl-plus", "qwen-vl", modalities=("text", "image"), description="Vision-language, balanced"),
    ModelInfo("qwen3-vl-plus", "qwen3-vl", modalities=("text", "image"), thinking="hybrid",
              context=262_144, max_output=32_768, description="Qwen3 vision-language; hybrid thinking"),
)

MODELS: dict[str, ModelInfo] = {m.id: m for m in _MODELS}


def models(region: str | None = None) -> list[ModelInfo]:
    """Catalog models, optionally only those offered in ``region``."""
    return [m for m in MODELS.values() if region is None or region in m.regions]


def model_info(model: str) -> ModelInfo | None:
    """Catalog entry for ``model``; dated snapshots (``qwen-plus-2025-07-28``) map to their base."""
    if model in MODELS:
        return MODELS[model]
    for mid in sorted(MODELS, key=len, reverse=True):
        if model.startswith(mid + "-") and model[len(mid) + 1 : len(mid) + 2].isdigit():
            return MODELS[mid]
        if model.startswith(mid + "-latest"):
            return MODELS[mid]
    return None


def suggest(model: str, known: list[str] | None = None) -> str | None:
    """The closest known model name to ``model``, for a did-you-mean."""
    pool = list(known or []) + [m for m in MODELS if m not in (known or [])]
    close = difflib.get_close_matches(model.strip().lower(), pool, n=1, cutoff=0.6)
    return close[0] if close else None
