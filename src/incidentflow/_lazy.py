"""Lazy attributes for packages whose optional parts load on first use (PEP 562)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, namespace: dict[str, Any], lazy: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` loading ``lazy`` names from submodules.

    ``lazy`` maps a public name to the relative module that defines it. A name is
    imported the first time it is asked for, then kept in ``namespace``.
    """

    def module_getattr(name: str) -> Any:
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def module_dir() -> list[str]:
        return sorted({*namespace, *namespace.get("__all__", ()), *lazy})

    return module_getattr, module_dir
