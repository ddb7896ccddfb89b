"""Lazy re-exports (PEP 562) for the packages whose names load on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, modules: Mapping[str, str], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__``: ``modules`` maps each name to the (relative)
    module that defines it, imported when the name is first read.

        __getattr__, __dir__ = lazy_exports(__name__, {"Client": ".client"}, __all__)
    """
    shown = sorted({*public, *modules})

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)

    def __dir__() -> list[str]:
        return sorted({*vars(importlib.import_module(package)), *shown})

    return __getattr__, __dir__
