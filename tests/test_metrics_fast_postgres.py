"""``flow.metrics()`` on PostgreSQL reads the milestones table (schema 6, issue 11 §6).

As on SQLite (tests/test_metrics_fast.py): the whole store's metrics come from
each duration's count, sum and index walks and must equal summarising the
milestones, value for value; the grouped and filtered ones read the table's
rows; each commit that moves a milestone rewrites the row in its one statement
(warm or cold cache), and migration 6 fills the table from checkpoints, or
from the snapshots of incidents whose checkpoint lags.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import pg
from helpers import (
    METRICS_START,
    JitterClock,
    advance_to,
    drive_to,
    fill_incidents,
    jitter_lists,
    milestone_incidents,
)
from incidentflow import IncidentFlow, State
from incidentflow._metrics import METRICS, MILESTONE_TIMES, milestone_times
from incidentflow._metrics_rows import duration_micros
from incidentflow.metrics import summarize
from incidentflow.testing import FrozenClock

START = METRICS_START
STATES = [s.value for s in State]


@pytest.fixture
def schema() -> Iterator[str]:
    """A schema of its own on the test server, dropped afterwards."""
    import psycopg

    dsn, name = pg.postgres_dsn(), f"metrics_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _store(schema: str, **options: Any) -> Any:
    from incidentflow.stores.postgres import PostgresStore

    return PostgresStore(pg.postgres_dsn(), schema=schema, **options)


def _rows(schema: str) -> dict[str, tuple[Any, ...]]:
    """The milestones table: each incident's times (UTC) and durations."""
    import psycopg

    with psycopg.connect(pg.postgres_dsn(), autocommit=True) as conn:
        found = conn.execute(
            f"SELECT incident_id, {', '.join((*MILESTONE_TIMES, *METRICS))} "
            f'FROM "{schema}".milestones'
        ).fetchall()
    return {
        row[0]: tuple(None if at is None else at.astimezone(UTC) for at in row[1:8]) + row[8:]
        for row in found
    }


def _wanted(incidents: Any) -> dict[str, tuple[Any, ...]]:
    """What the table should hold for these snapshots (no row: no milestone reached)."""
    return {
        i.id: (*milestone_times(i), *duration_micros(i))
        for i in incidents
        if any(at is not None for at in milestone_times(i))
    }


incidents = milestone_incidents(max_size=6)
jitters = jitter_lists()


class TestEquality:
    """The indexed answer equals the slow path, value for value."""

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(incidents, jitters)
    def test_equals_summarising_the_milestones(self, found: Any, steps: list[int]) -> None:
        """Random incidents, states and step lengths: the same summaries as the slow path."""
        from incidentflow.stores.postgres import _queries

        pg.postgres_dsn()
        name = f"metrics_{uuid.uuid4().hex[:12]}"
        clock = JitterClock(START, steps)
        try:
            with IncidentFlow(_store(name), clock=clock) as flow:
                fill_incidents(flow, clock, found)
                parts = flow.store.duration_parts(_queries._EVERYTHING)  # type: ignore[attr-defined]
                assert parts is not None, "the whole store is answered from the indexes"
                snapshots = flow.list()
                fast = flow.metrics()
                assert fast == summarize(snapshots)
                assert fast == summarize(flow.milestones())
                assert fast[0].count == len(found)
                for by in ("severity", "type", "period"):
                    assert flow.metrics(by=by) == summarize(snapshots, by=by)
            assert _rows(name) == _wanted(snapshots)
        finally:
            import psycopg

            with psycopg.connect(pg.postgres_dsn(), autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

    def test_filters_take_the_general_path(self, schema: str) -> None:
        """Any filter or grouping reads the table's rows, and equals the slow path."""
        clock = FrozenClock(START)
        with IncidentFlow(_store(schema), clock=clock) as flow:
            fill_incidents(flow, clock, [("kb_updated", "P1", 0), ("fixed", "P2", 10**9)])
            fill_incidents(flow, clock, [("declared", "P3", 2 * 10**9)])
            every = flow.list()
            for options in ({"severity": "P1"}, {"type": "availability"}, {"viewer": "alice"},
                            {"declared_after": START}):  # fmt: skip
                assert flow.metrics(**options) == summarize(flow.milestones(**options))
            assert flow.metrics(by="severity") == summarize(every, by="severity")
            assert sorted(flow.milestones(), key=lambda m: m.incident_id) == sorted(
                summarize_input(every), key=lambda m: m.incident_id
            )

    def test_no_incidents(self, schema: str) -> None:
        with IncidentFlow(_store(schema)) as flow:
            assert flow.metrics() == summarize([])


def summarize_input(incidents: Any) -> list[Any]:
    from incidentflow._metrics import milestones

    return [milestones(i) for i in incidents]


class TestStatements:
    """Metrics take a fixed number of statements; a command stays one statement."""

    @pytest.mark.parametrize("many", [3, 12])
    def test_metrics_statements_do_not_grow(
        self, schema: str, many: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import psycopg

        clock = FrozenClock(START)
        with IncidentFlow(_store(schema), clock=clock) as flow:
            fill_incidents(
                flow, clock, [("kb_updated", f"P{n % 4 + 1}", n * 10**8) for n in range(many)]
            )
            seen: list[str] = []
            real = psycopg.Cursor.execute

            def execute(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
                seen.append(str(query))
                return real(cursor, query, *args, **kwargs)

            monkeypatch.setattr(psycopg.Cursor, "execute", execute)
            [summary] = flow.metrics()
            monkeypatch.undo()
        assert summary.count == many
        # SET TRANSACTION, counts, totals, one statement of every walk
        assert len(seen) == 4, seen

    def test_a_command_moving_a_milestone_is_one_statement(
        self, schema: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import psycopg

        clock = FrozenClock(START)
        with IncidentFlow(_store(schema), clock=clock) as flow:
            incident = drive_to(flow, clock, State.TRIAGING, "P1")
            seen: list[str] = []
            real = psycopg.Cursor.execute

            def execute(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
                seen.append(str(query))
                return real(cursor, query, *args, **kwargs)

            monkeypatch.setattr(psycopg.Cursor, "execute", execute)
            clock.advance(minutes=3)
            flow.record_detection(
                incident.id, method="alert", first_occurred_at=START, detected_at=START, actor="bob"
            )
            monkeypatch.undo()
            after = flow.get(incident.id)
        assert after.detection is not None
        assert len(seen) == 1, seen
        assert "milestones" in seen[0]
        assert _rows(schema) == _wanted([after])


class TestStoredRows:
    """The write path and migration 6 keep each incident's row."""

    def test_each_commit_keeps_them(self, schema: str) -> None:
        clock = FrozenClock(START)
        with IncidentFlow(_store(schema), clock=clock) as flow:
            fill_incidents(flow, clock, [(s, "P2", n * 10**9) for n, s in enumerate(STATES)])
            every = flow.list()
        wanted = _wanted(every)
        assert 0 < len(wanted) < len(STATES)
        assert _rows(schema) == wanted

    def test_a_cold_store_checks_the_stored_row(self, schema: str) -> None:
        """A commit the cache cannot compare writes the row unless it holds those values."""
        clock = FrozenClock(START)
        with IncidentFlow(_store(schema), clock=clock) as flow:
            incident = drive_to(flow, clock, State.TRIAGING, "P1")
        clock.advance(minutes=7)
        with IncidentFlow(_store(schema, cache_size=0), clock=clock) as cold:
            assert cold.store.cached(incident.id) is None
            after = advance_to(cold, clock, incident.id, State.RESOLVED)
            assert cold.metrics() == summarize([after])
        assert _rows(schema) == _wanted([after])

    def test_migration_6_fills_them(self, schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """A schema-5 store gets the rows commits at schema 6 write, lagging checkpoints too."""
        from incidentflow.stores.postgres import _schema

        monkeypatch.setattr(_schema, "_MIGRATIONS", _schema._MIGRATIONS[:5])
        monkeypatch.setattr(_schema, "SCHEMA_VERSION", 5)
        clock = FrozenClock(START)
        with IncidentFlow(_store(schema), clock=clock) as old:
            fill_incidents(old, clock, [(s, "P3", n * 10**9) for n, s in enumerate(STATES)])
            for n, incident in enumerate(old.list()):
                if n % 2 and incident.is_open:  # a checkpoint behind a moved milestone
                    at = incident.declared_at - timedelta(minutes=n)
                    old.record_detection(
                        incident.id, method="alert", first_occurred_at=at, detected_at=at,
                        actor="bob",
                    )  # fmt: skip
            snapshots = old.list()
            old_metrics = old.metrics()
        monkeypatch.undo()
        lagging = _lagging(schema)
        assert lagging, "some checkpoints lag their history: the migration loads those"
        with IncidentFlow(_store(schema), clock=clock) as flow:
            assert flow.store.schema_version() == _schema.SCHEMA_VERSION  # type: ignore[attr-defined]
            assert flow.metrics() == summarize(snapshots) == old_metrics
        assert _rows(schema) == _wanted(snapshots)


def _lagging(schema: str) -> list[str]:
    import psycopg

    with psycopg.connect(pg.postgres_dsn(), autocommit=True) as conn:
        rows = conn.execute(
            f'SELECT i.id FROM "{schema}".incidents i JOIN "{schema}".snapshots s '
            "ON s.incident_id = i.id WHERE s.version <> i.version"
        ).fetchall()
    return [row[0] for row in rows]
