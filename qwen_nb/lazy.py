"""Lazily resolved package names, so importing a package stays cheap (PEP 562)."""

from __future__ import annotations

import sys

# ``typing`` costs more to import than the rest of ``import qwen_nb``: only type checkers read these
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def lazy_exports(package: str, table: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose names in ``table`` (name -> module) load on first use."""

    def __getattr__(name: str) -> Any:
        if name in table:
            __import__(table[name])
            value = getattr(sys.modules[table[name]], name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(table)

    return __getattr__, __dir__
