"""Finding the configuration file: incidentflow.toml, or [tool.incidentflow] in pyproject.toml."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from .._toml import read_toml, toml_shown
from ..exceptions import ConfigError
from ._common import where

__all__ = ["CONFIG_ENV", "CONFIG_FILE", "locate"]

#: The configuration file's name, looked for from the current folder upwards.
CONFIG_FILE: Final = "incidentflow.toml"
#: The environment variable naming the configuration file to read.
CONFIG_ENV: Final = "INCIDENTFLOW_CONFIG"
_PYPROJECT: Final = "pyproject.toml"
_PYPROJECT_TABLE: Final = ("tool", "incidentflow")


def _pyproject_table(path: Path, *, required: bool) -> Mapping[str, Any] | None:
    """``[tool.incidentflow]`` of a pyproject.toml; None (or ConfigError if required) if absent."""
    if not required:
        try:
            if b"incidentflow" not in path.read_bytes():
                return None
        except OSError:
            return None
    data = read_toml(path)
    tool = data.get("tool")
    table = tool.get("incidentflow") if isinstance(tool, dict) else None
    if table is None:
        if required:
            raise ConfigError(
                str(path),
                "has no [tool.incidentflow] table; add one, or give the path of an "
                "incidentflow.toml",
            )
        return None
    if not isinstance(table, dict):
        raise ConfigError(
            where(path, "tool.incidentflow"), f"expected a table, got {toml_shown(table)}"
        )
    return table


def locate(
    path: str | os.PathLike[str] | None, start: str | os.PathLike[str] | None
) -> tuple[Path, str, Sequence[str], Mapping[str, Any]] | None:
    """The file (absolute), its name for messages, the table prefix and the table, or None.

    A file named by the caller or INCIDENTFLOW_CONFIG is named in messages as given.
    """
    named: Path | None = None
    if path is not None:
        named = Path(path)
    elif os.environ.get(CONFIG_ENV):
        named = Path(os.environ[CONFIG_ENV])
        if not named.exists():
            raise ConfigError(
                CONFIG_ENV, f"names {str(named)!r}, which does not exist; fix or unset {CONFIG_ENV}"
            )
    if named is not None:
        named = named.expanduser()
        if named.name == _PYPROJECT:
            table = _pyproject_table(named, required=True)
            assert table is not None
            return named.absolute(), str(named), _PYPROJECT_TABLE, table
        return named.absolute(), str(named), (), read_toml(named)
    folder = Path(start if start is not None else Path.cwd()).expanduser().absolute()
    if folder.is_file():
        folder = folder.parent
    for directory in (folder, *folder.parents):
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            return candidate, str(candidate), (), read_toml(candidate)
        pyproject = directory / _PYPROJECT
        if pyproject.is_file():
            found = _pyproject_table(pyproject, required=False)
            if found is not None:
                return pyproject, str(pyproject), _PYPROJECT_TABLE, found
    return None
