"""Lazy package exports: a package names what it offers without importing (torch-heavy) submodules."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: name ``n`` in ``exports`` is imported from
    ``<package>.<exports[n]>`` on first access; any other name raises ``AttributeError``.

    Use as ``__getattr__ = lazy_exports(__name__, {"build_model": "zoo", ...})``.
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
