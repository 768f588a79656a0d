"""Shared fixtures: a frozen clock, an in-memory flow, and drivers to any state.

The suite runs in parallel (``-n auto`` in pyproject.toml); what tests share must
not collide between pytest-xdist workers. Files go under ``tmp_path`` (one folder
per worker), servers listen on port 0, environment variables are set through
``monkeypatch``, and PostgreSQL gives each worker a database of its own (the
``pg`` plugin below). ``pytest -n 0`` runs everything in one process;
``PYTEST_XDIST_AUTO_NUM_WORKERS=3`` sets how many workers ``-n auto`` starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from loguru import logger

# --import-mode=importlib leaves sys.path alone; the test modules import helpers.py by name.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import START, drive_to
from incidentflow import Incident, IncidentFlow, State
from incidentflow.testing import FrozenClock

# One PostgreSQL database per xdist worker, and its skip reason reported once per run.
pytest_plugins = ("pg",)

# No test asserts a wall clock, Hypothesis's included: on a loaded machine a slow example
# or a slow draw is not a failure. Tests still set their own example counts.
settings.register_profile(
    "incidentflow", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("incidentflow")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: up to twice as many workers as CPUs (at most four more).

    Many tests wait rather than compute (on child processes, sockets, PostgreSQL,
    delivery retries), so a CPU would idle with one worker; on this suite's own
    2-CPU machine four workers finished in 67 s where two took 78 s.
    """
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(2 * (cpus or 1), (cpus or 1) + 4)


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
