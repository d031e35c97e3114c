"""Lazy attributes of a package: its submodules, and names re-exported from them, imported on first
use, so ``import cardio_st`` and ``cardio-st --help`` stay free of torch. Leaves out eager packages
(modules, losses), whose names are the classes that need torch anyway.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["attach"]


def attach(
    package: str, submodules: Iterable[str], exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``.

    Args:
        package: The package's ``__name__``.
        submodules: Names of its submodules or subpackages reachable as attributes.
        exports: Re-exported name -> the module (relative to ``package``) that defines it.

    Example:
        >>> getattr_, dir_, all_ = attach("cardio_st", ["errors"], {"CardioSTError": "errors"})
        >>> getattr_("CardioSTError").__name__
        'CardioSTError'
    """
    submodules = set(submodules)
    names = sorted(exports)

    def __getattr__(name: str) -> Any:
        module = importlib.import_module(package)
        if name in exports:
            value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*names, *submodules})

    return __getattr__, __dir__, names
