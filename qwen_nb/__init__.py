"""qwen-nb: Alibaba Cloud Model Studio (Qwen / DashScope) in Jupyter.

``import qwen_nb`` is cheap: the SDKs, ipywidgets and the emulator are imported
only when first used. The names below are resolved lazily (PEP 562). Implementation
modules are private (``qwen_nb._profiles`` ...) or named apart from the public
functions, so importing one never hides a public name.
"""

from __future__ import annotations

import sys

from qwen_nb.lazy import lazy_exports

# ``typing`` costs more to import than the rest of this module: only type checkers read these
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    # the default session and the module-level API
    "connect": "qwen_nb._default",
    "chat": "qwen_nb._default",
    "stream_chat": "qwen_nb._default",
    "achat": "qwen_nb._default",
    "astream_chat": "qwen_nb._default",
    "chat_many": "qwen_nb._default",
    "achat_many": "qwen_nb._default",
    "list_models": "qwen_nb._default",
    "profiles": "qwen_nb._default",
    "add_profile": "qwen_nb._default",
    "default_session": "qwen_nb._default",
    "set_default_session": "qwen_nb._default",
    "usage": "qwen_nb._default",
    "explain_config": "qwen_nb._default",
    "grant": "qwen_nb._default",
    "granted_models": "qwen_nb._default",
    "revoke": "qwen_nb._default",
    "GrantResult": "qwen_nb.session",
    "Session": "qwen_nb.session",
    "ChatStream": "qwen_nb._streams",
    "AsyncChatStream": "qwen_nb._streams",
    "CancelToken": "qwen_nb._pipeline",
    "ChatManyInterrupted": "qwen_nb._many",
    # the Batch API
    "batch": "qwen_nb._batch",
    "batch_jobs": "qwen_nb._batch",
    "BatchJob": "qwen_nb._batch",
    "BatchResults": "qwen_nb._batch",
    # data
    "regions": "qwen_nb._regions",
    "Region": "qwen_nb._regions",
    "RegionTable": "qwen_nb._regions",
    "models": "qwen_nb.catalog",
    "ModelInfo": "qwen_nb.catalog",
    "Profile": "qwen_nb._profiles",
    "ProfileTable": "qwen_nb._profiles",
    "load_profiles": "qwen_nb._profiles",
    "mask_key": "qwen_nb._secrets",
    "ChatResult": "qwen_nb.results",
    "ChatDelta": "qwen_nb.results",
    "Usage": "qwen_nb.results",
    # errors
    "QwenNbError": "qwen_nb.errors",
    "InputError": "qwen_nb.errors",
    "ConfigError": "qwen_nb.errors",
    "ServiceError": "qwen_nb.errors",
    "InvalidKeyError": "qwen_nb.errors",
    "AccessDeniedError": "qwen_nb.errors",
    "ModelNotGrantedError": "qwen_nb.errors",
    "ModelNotFoundError": "qwen_nb.errors",
    "InvalidParameterError": "qwen_nb.errors",
    "RateLimitError": "qwen_nb.errors",
    "QuotaExceededError": "qwen_nb.errors",
    "ServerError": "qwen_nb.errors",
    "NetworkError": "qwen_nb.errors",
    "StreamInterruptedError": "qwen_nb.errors",
    "CancelledCallError": "qwen_nb.errors",
    # cost
    "Ledger": "qwen_nb.ledger",
    # tools
    "compare": "qwen_nb._compare",
    "probe": "qwen_nb._probe",
    "snippet": "qwen_nb.snippets",
    "tutorial_setup": "qwen_nb.tutorial",
    "Emulator": "qwen_nb.emulator",
    # beyond chat: embeddings, rerank, images, speech, the Responses API
    "embed": "qwen_nb._default",
    "rerank": "qwen_nb._default",
    "image": "qwen_nb._default",
    "speak": "qwen_nb._default",
    "transcribe": "qwen_nb._default",
    "respond": "qwen_nb._default",
    "EmbeddingResult": "qwen_nb.media",
    "RerankResult": "qwen_nb.media",
    "ImageResult": "qwen_nb.media",
    "SpeechResult": "qwen_nb.media",
    "TranscriptResult": "qwen_nb.media",
    "ResponseResult": "qwen_nb.media",
    "ResponseStep": "qwen_nb.media",
    "ResponseEvent": "qwen_nb.media",
    "ResponseStream": "qwen_nb._kinds",
    # widgets
    "Playground": "qwen_nb.widgets",
    "RegionPicker": "qwen_nb.widgets",
    "ProfilePicker": "qwen_nb.widgets",
    "ModelPicker": "qwen_nb.widgets",
    "UsagePanel": "qwen_nb.widgets",
    "ApiToggle": "qwen_nb.widgets",
    "ParamsBox": "qwen_nb.widgets",
    "KeyEntry": "qwen_nb.widgets",
}

__all__ = sorted(_LAZY) + ["errors", "facts", "__version__", "load_ipython_extension"]

_lazy_getattr, _ = lazy_exports(__name__, _LAZY)


def __getattr__(name: str) -> Any:
    if name in ("errors", "facts"):
        __import__(f"qwen_nb.{name}")
        return sys.modules[f"qwen_nb.{name}"]
    return _lazy_getattr(name)


def __dir__() -> list[str]:
    return __all__


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext qwen_nb``: register the ``%%qwen`` magics."""
    from qwen_nb.magics import load_ipython_extension as load

    load(ipython)
