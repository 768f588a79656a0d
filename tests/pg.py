"""The PostgreSQL server the tests may use: one helper for every test module that needs it.

``postgres_dsn()`` names the server in ``INCIDENTFLOW_TEST_POSTGRES_DSN``. Without
a usable one the calling test skips, saying how to enable the tests, or fails
when ``CI=true`` (CI must run them). The answer is worked out once per process.

Under pytest-xdist each worker gets a database of its own, named after the
given one and the worker id (``incidentflow_test_gw0``), made on first use, so
parallel workers never drop each other's tables. Worker processes a test
spawns inherit ``PYTEST_XDIST_WORKER`` and find the same database.

The hook below folds every "PostgreSQL tests skipped" report into one line of
``-ra`` (pytest otherwise gives each test's location its own line). It is a
pytest plugin: ``pytest_plugins = ("pg",)`` in ``tests/conftest.py`` applies
it to the whole suite.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Generator
from typing import Any

import pytest

#: The environment variable holding the DSN of the PostgreSQL server the tests may use.
POSTGRES_VARIABLE = "INCIDENTFLOW_TEST_POSTGRES_DSN"

HOW_TO_ENABLE_POSTGRES = (
    f"set {POSTGRES_VARIABLE} to the DSN of a PostgreSQL database where the tests may create "
    f'schemas: export {POSTGRES_VARIABLE}="$(bash .ci/postgres.sh)" starts the local server '
    "and makes one (or e.g. postgresql:///incidentflow_test); pip install -e '.[dev]' for psycopg"
)

#: How every skip for want of PostgreSQL begins; the report hook looks for it.
SKIP_PREFIX = "PostgreSQL tests skipped"

# The answer of postgres_dsn() in this process, per (DSN, CI, worker): the DSN or the problem.
_answers: dict[tuple[str, str, str], tuple[str | None, str | None]] = {}


def postgres_dsn() -> str:
    """The test server's DSN (this xdist worker's database). Skip, or fail when CI=true.

    Under CI the PostgreSQL tests must run, so a missing variable, driver or
    server is a failure there, never a silent skip.
    """
    given = os.environ.get(POSTGRES_VARIABLE, "").strip()
    ci = os.environ.get("CI", "").strip().lower()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "").strip()
    key = (given, ci, worker)
    if key not in _answers:
        _answers[key] = _usable(given, worker)
    dsn, problem = _answers[key]
    if dsn is not None:
        return dsn
    if ci in ("1", "true", "yes"):
        pytest.fail(f"PostgreSQL is required in CI (CI={ci}): {problem}; {HOW_TO_ENABLE_POSTGRES}")
    pytest.skip(f"{SKIP_PREFIX}: {problem}; to run them, {HOW_TO_ENABLE_POSTGRES}")
    raise AssertionError("unreachable: pytest.skip raises")


def _usable(given: str, worker: str) -> tuple[str | None, str | None]:
    if not given:
        return None, f"{POSTGRES_VARIABLE} is not set"
    try:
        import psycopg
        import psycopg_pool  # noqa: F401 - the store needs it too
    except ImportError as exc:
        return None, f"the PostgreSQL driver is not installed ({exc})"
    try:
        dsn = _worker_database(given, worker) if worker else given
        with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"the server at {POSTGRES_VARIABLE} cannot be reached ({first})"
    return dsn, None


def _worker_database(given: str, worker: str) -> str:
    """The DSN of this xdist worker's own database, made beside the given one if missing."""
    import psycopg
    import psycopg.errors
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    base = str(conninfo_to_dict(given).get("dbname") or "incidentflow_test")
    name = f"{base}_{re.sub(r'[^a-z0-9_]', '_', worker.lower())}"[:63]
    with psycopg.connect(given, connect_timeout=5, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            # Another process of this worker may make it first.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'CREATE DATABASE "{name}"')
    if "://" in given:  # keep a URL a URL: tests append ?schema=... to it
        head, question, query = given.partition("?")
        scheme, _, rest = head.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}/{name}{question}{query}"
    return make_conninfo(given, dbname=name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Report every skip for want of PostgreSQL at one place, so ``-ra`` shows one line."""
    outcome = yield
    report = outcome.get_result()
    longrepr = report.longrepr
    if (
        report.skipped
        and isinstance(longrepr, tuple)
        and len(longrepr) == 3
        and str(longrepr[2]).startswith(("Skipped: " + SKIP_PREFIX, SKIP_PREFIX))
    ):
        report.longrepr = (__file__, 1, longrepr[2])
