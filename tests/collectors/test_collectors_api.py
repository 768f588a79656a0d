"""The public surface of incidentflow.collectors: sorted __all__, docstrings, lazy import."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import types

import incidentflow.collectors as collectors


def isort_key(name: str) -> tuple[int, list[object]]:
    """The order ruff's RUF022 gives __all__: CONSTANTS, then Classes, then the rest."""
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    natural: list[object] = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
    return kind, natural


class TestPublicSurface:
    def test_all_is_sorted(self) -> None:
        """__all__ is sorted the way ruff sorts it, without duplicates."""
        assert list(collectors.__all__) == sorted(set(collectors.__all__), key=isort_key)

    def test_all_matches_the_public_names(self) -> None:
        """__all__ lists exactly the public names the package defines or re-exports."""
        public = {
            name
            for name, value in vars(collectors).items()
            if not name.startswith("_")
            and not isinstance(value, types.ModuleType)
            and name != "annotations"
        }
        assert set(collectors.__all__) == public

    def test_every_public_name_has_a_docstring(self) -> None:
        """Every exported class, function, method and property is documented."""
        undocumented = []
        for name in collectors.__all__:
            obj = getattr(collectors, name)
            if not inspect.getdoc(obj):
                undocumented.append(name)
            if inspect.isclass(obj):
                for member, value in vars(obj).items():
                    if member.startswith("_") or not (
                        inspect.isfunction(value) or isinstance(value, property)
                    ):
                        continue
                    if not (value.__doc__ or "").strip():
                        undocumented.append(f"{name}.{member}")
        assert undocumented == []

    def test_import_incidentflow_does_not_import_collectors(self) -> None:
        """`import incidentflow` leaves the collectors (and subprocess work) out."""
        script = (
            "import sys, incidentflow\n"
            "print(sorted(m for m in sys.modules if m.startswith('incidentflow.collectors')))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
        )
        assert result.stdout.strip() == "[]"
