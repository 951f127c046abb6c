"""ipywidgets views over the plain-Python API: pickers, key entry, parameters, a streaming playground.

The views hold no engine of their own: ``Playground`` is a view over ``PlaygroundController``
(``qwen_nb.widgets.controller``, plain Python, no ipywidgets), and the pickers read the
session's model lists and not-granted marks. Names are resolved lazily so that importing
this package (or its pure modules: ``controller``, ``conversation``) does not import
ipywidgets until a widget is used.
"""

from __future__ import annotations

from qwen_nb.lazy import lazy_exports

_LAZY = {
    "RegionPicker": "qwen_nb.widgets.pickers",
    "ProfilePicker": "qwen_nb.widgets.pickers",
    "ModelPicker": "qwen_nb.widgets.pickers",
    "ApiToggle": "qwen_nb.widgets.pickers",
    "ParamsBox": "qwen_nb.widgets.params",
    "KeyEntry": "qwen_nb.widgets.keys",
    "Playground": "qwen_nb.widgets.playground",
    "PlaygroundController": "qwen_nb.widgets.controller",
    "UsagePanel": "qwen_nb.widgets.usage_panel",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
