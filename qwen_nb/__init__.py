"""qwen-nb: Alibaba Cloud Model Studio (Qwen / DashScope) in Jupyter.

``import qwen_nb`` is cheap: the SDKs, ipywidgets and the emulator are imported
only when first used. The names below are resolved lazily (PEP 562).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from qwen_nb.lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    # plain-Python API (session.py)
    "connect": "qwen_nb.session",
    "Session": "qwen_nb.session",
    "chat": "qwen_nb.session",
    "stream_chat": "qwen_nb.session",
    "achat": "qwen_nb.session",
    "astream_chat": "qwen_nb.session",
    "chat_many": "qwen_nb.session",
    "list_models": "qwen_nb.session",
    "profiles": "qwen_nb.session",
    "add_profile": "qwen_nb.session",
    "default_session": "qwen_nb.session",
    "set_default_session": "qwen_nb.session",
    # data
    "regions": "qwen_nb.regions",
    "Region": "qwen_nb.regions",
    "models": "qwen_nb.catalog",
    "ModelInfo": "qwen_nb.catalog",
    "Profile": "qwen_nb.profiles",
    "mask_key": "qwen_nb.profiles",
    "ChatResult": "qwen_nb.results",
    "ChatDelta": "qwen_nb.results",
    "Usage": "qwen_nb.results",
    # cost
    "usage": "qwen_nb.ledger",
    "Ledger": "qwen_nb.ledger",
    # tools
    "compare": "qwen_nb.compare",
    "probe": "qwen_nb.probe",
    "snippet": "qwen_nb.snippets",
    "Emulator": "qwen_nb.emulator",
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

__all__ = sorted(_LAZY) + ["errors", "__version__", "load_ipython_extension"]


class _Package(types.ModuleType):
    """The package module: importing a submodule never hides a public name of the same name.

    ``qwen_nb.profiles()``, ``qwen_nb.regions()``, ``qwen_nb.compare()`` and ``qwen_nb.probe()``
    stay functions after ``import qwen_nb.profiles`` (etc.); import such submodules with
    ``from qwen_nb.profiles import ...``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


_lazy_getattr, _ = lazy_exports(__name__, _LAZY)


def __getattr__(name: str) -> Any:
    if name == "errors":
        return importlib.import_module("qwen_nb.errors")
    return _lazy_getattr(name)


def __dir__() -> list[str]:
    return __all__


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext qwen_nb``: register the ``%%qwen`` magics."""
    from qwen_nb.magics import load_ipython_extension as load

    load(ipython)
