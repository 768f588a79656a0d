"""Shared fixtures: a frozen clock, an in-memory flow, and drivers to any state.

The suite runs in parallel (``-n auto`` in pyproject.toml); what tests share must
not collide between pytest-xdist workers. Files go under ``tmp_path`` (one folder
per worker), servers listen on port 0, environment variables are set through
``monkeypatch``, and PostgreSQL gives each worker a database of its own (the
``pg`` plugin below). ``pytest -n 0`` runs everything in one process.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

# --import-mode=importlib leaves sys.path alone; the test modules import helpers.py by name.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import START, drive_to
from incidentflow import Incident, IncidentFlow, State
from incidentflow.testing import FrozenClock

# One PostgreSQL database per xdist worker, and its skip reason reported once per run.
pytest_plugins = ("pg",)


@pytest.fixture(autouse=True)
def _library_logging_stays_disabled() -> Iterator[None]:
    """Whatever a test enables, the library's logger is disabled again afterwards."""
    yield
    logger.disable("incidentflow")


@pytest.fixture
def clock() -> FrozenClock:
    """A clock frozen at 2026-11-27 14:00 UTC until a test moves it."""
    return FrozenClock(START)


@pytest.fixture
def flow(clock: FrozenClock) -> IncidentFlow:
    """An in-memory flow on the frozen clock, writing no files."""
    return IncidentFlow.in_memory(clock=clock)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """The incidents folder and the knowledge folder, under tmp_path (not created yet)."""
    return tmp_path / "incidents", tmp_path / "knowledge" / "gotchas"


@pytest.fixture
def file_flow(clock: FrozenClock, folders: tuple[Path, Path]) -> IncidentFlow:
    """An in-memory flow on the frozen clock that writes the files people read."""
    incidents_dir, knowledge_dir = folders
    return IncidentFlow.in_memory(
        clock=clock, incidents_dir=incidents_dir, knowledge_dir=knowledge_dir
    )


@pytest.fixture
def drive(flow: IncidentFlow, clock: FrozenClock) -> Callable[..., Incident]:
    """``drive(state, severity="P1", **options)``: a new incident on ``flow`` in ``state``."""

    def drive(state: State | str, severity: str = "P1", **options: Any) -> Incident:
        return drive_to(flow, clock, state, severity, **options)

    return drive
