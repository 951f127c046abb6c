"""A local Model Studio emulator: both protocols, every region, workspaces, pacing, faults and the service's errors.

``from qwen_nb.emulator import Emulator`` is cheap: the web server is imported
only when an emulator starts.
"""

from __future__ import annotations

from qwen_nb.lazy import lazy_exports

_LAZY = {
    "Emulator": "qwen_nb.emulator.server",
    "EmulatorConfig": "qwen_nb.emulator.config",
    "Workspace": "qwen_nb.emulator.config",
    "Flags": "qwen_nb.emulator.config",
    "Pacing": "qwen_nb.emulator.config",
    "load_config": "qwen_nb.emulator.config",
    "default_config": "qwen_nb.emulator.config",
    "default_profiles": "qwen_nb.emulator.config",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
