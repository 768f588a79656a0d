"""The public surface: sorted ``__all__`` lists matching what is public; a light import."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import types

import pytest

import incidentflow

PUBLIC_MODULES = [
    "incidentflow",
    "incidentflow.collectors",
    "incidentflow.commands",
    "incidentflow.config",
    "incidentflow.delivery",
    "incidentflow.events",
    "incidentflow.exceptions",
    "incidentflow.metrics",
    "incidentflow.notifiers",
    "incidentflow.render",
    "incidentflow.serialization",
    "incidentflow.stores",
    "incidentflow.testing",
]


def public_names(module: types.ModuleType) -> set[str]:
    """Names a user can import from ``module``.

    Not private, not submodules, and not classes or functions borrowed from other
    packages for annotations (``Iterable``, ``datetime``).
    """
    names = set()
    # Names a module provides lazily (module __getattr__) count once loaded.
    for name in getattr(module, "__all__", ()):
        getattr(module, name)
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, types.ModuleType) or name == "annotations":
            continue
        if (
            inspect.isclass(value) or inspect.isfunction(value)
        ) and not value.__module__.startswith("incidentflow"):
            continue
        names.add(name)
    return names


def isort_key(name: str) -> tuple[int, list[object]]:
    """The order ruff's RUF022 gives __all__: CONSTANTS, then Classes, then the rest, naturally."""
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    natural: list[object] = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
    return kind, natural


class TestAll:
    @pytest.mark.parametrize("module_name", PUBLIC_MODULES)
    def test_all_is_sorted(self, module_name: str) -> None:
        """__all__ is sorted (constants, classes, then functions), without duplicates."""
        module = importlib.import_module(module_name)
        assert list(module.__all__) == sorted(set(module.__all__), key=isort_key)

    @pytest.mark.parametrize("module_name", PUBLIC_MODULES)
    def test_all_matches_the_public_names(self, module_name: str) -> None:
        """__all__ lists exactly the public names the module defines or re-exports."""
        module = importlib.import_module(module_name)
        listed = set(module.__all__) - {"__version__"}
        assert listed == public_names(module)

    @pytest.mark.parametrize("module_name", PUBLIC_MODULES)
    def test_every_listed_name_exists(self, module_name: str) -> None:
        """Every name in __all__ can be imported."""
        module = importlib.import_module(module_name)
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert missing == []

    def test_version(self) -> None:
        """The package has a version string and exports it."""
        assert isinstance(incidentflow.__version__, str)
        assert "__version__" in incidentflow.__all__

    def test_every_error_is_an_incidentflow_error(self) -> None:
        """Every exception the package exports derives from IncidentFlowError."""
        errors = [
            getattr(incidentflow, name)
            for name in incidentflow.__all__
            if isinstance(getattr(incidentflow, name), type)
            and issubclass(getattr(incidentflow, name), BaseException)
        ]
        assert len(errors) >= 10
        assert all(issubclass(e, incidentflow.IncidentFlowError) for e in errors)


class TestImport:
    def test_import_is_light(self) -> None:
        """`import incidentflow` imports neither psycopg nor httpx."""
        script = (
            "import sys, incidentflow\n"
            "heavy = {'psycopg', 'psycopg2', 'psycopg_pool', 'httpx'}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
        )
        assert result.stdout.strip() == "[]"
