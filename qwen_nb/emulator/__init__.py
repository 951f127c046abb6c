"""A local Model Studio emulator: both protocols, every region, workspaces, pacing and faults.

``from qwen_nb.emulator import Emulator`` is cheap: the web server is imported
only when an emulator starts.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Emulator": "qwen_nb.emulator.server",
    "EmulatorConfig": "qwen_nb.emulator.config",
    "Workspace": "qwen_nb.emulator.config",
    "Pacing": "qwen_nb.emulator.config",
    "load_config": "qwen_nb.emulator.config",
    "default_config": "qwen_nb.emulator.config",
    "default_profiles": "qwen_nb.emulator.config",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'qwen_nb.emulator' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
