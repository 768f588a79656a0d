"""Make store_workers importable by name, so multiprocessing children can find it.

PostgreSQL: the tests use the server named by INCIDENTFLOW_TEST_POSTGRES_DSN
(see tests/pg.py: one database per xdist worker), each test in a throwaway
schema of its own, dropped after the test. Without a usable server they skip,
saying how to enable them, in one line of ``-ra``; with CI=true they fail.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# --import-mode=importlib leaves sys.path alone; spawned workers import store_workers by name.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import store_workers  # noqa: E402 - importable only once the folder is on sys.path

from pg import pytest_runtest_makereport  # noqa: E402, F401 - one -ra line for every skip


@pytest.fixture(autouse=True)
def _drop_postgres_schemas() -> Iterator[None]:
    """The PostgreSQL schemas a test opened are dropped after it."""
    yield
    store_workers.drop_postgres_schemas()
