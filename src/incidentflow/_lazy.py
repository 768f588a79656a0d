"""Loading on first use: lazy package attributes (PEP 562), and hooks run when a module loads."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["WhenLoaded", "lazy_attributes"]


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


class WhenLoaded:
    """A one-shot import hook (on ``sys.meta_path``): runs ``then(module)`` once ``name`` has run.

    The module is found as usual, by the finders after this one; the hook
    removes itself the first time it is asked. Two hooks for one module both
    run, the later-inserted one first.
    """

    def __init__(self, name: str, then: Callable[[Any], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        """Find ``name`` as usual, and run ``then`` once its module has run."""
        if name != self.name:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        import importlib.util  # here: until a hooked module loads, nothing needs it

        spec = importlib.util.find_spec(name)
        loader = None if spec is None else spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run, then = loader.exec_module, self.then

        def exec_module(module: Any) -> None:
            run(module)
            then(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
