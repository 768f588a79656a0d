"""``flow.metrics()`` over a whole SQLite store seeks its quantiles in indexes (issue 11 §6).

The fast path must give exactly what summarising the milestones gives; these
tests check equality over Hypothesis-generated incidents, the query plans (each
seek reads its duration's covering index, nothing is sorted), the number of
statements (the same for 3 incidents as for 30), the write path and migration 8
keeping the stored durations, and the integer arithmetic of totals and means.
"""

from __future__ import annotations

import math
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from incidentflow._metrics import (
    METRICS,
    QUANTILES,
    _stats,
    milestone_times,
    percentile,
    quantile_rank,
)
from incidentflow._metrics_rows import duration_micros
from incidentflow.metrics import summarize
from incidentflow.stores import SQLiteStore
from incidentflow.stores.sqlite import _queries
from incidentflow.stores.sqlite import _schema as sqlite_module
from incidentflow.testing import FrozenClock

START = METRICS_START
STATES = [s.value for s in State]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "incidents.db"


def _durations(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            f"SELECT incident_id, {', '.join(METRICS)} FROM milestones ORDER BY incident_id"
        ).fetchall()


def _plan(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> str:
    return " ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


incidents = milestone_incidents(max_size=8)
jitters = jitter_lists()


class TestEquality:
    """The indexed answer equals the slow path, value for value."""

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(incidents, jitters)
    def test_equals_summarising_the_milestones(
        self, tmp_path_factory: pytest.TempPathFactory, found: Any, steps: list[int]
    ) -> None:
        """Random incidents, states and step lengths: the same summary as the slow path."""
        path = tmp_path_factory.mktemp("fast") / "incidents.db"
        clock = JitterClock(START, steps)
        with IncidentFlow(SQLiteStore(path), clock=clock) as flow:
            fill_incidents(flow, clock, found)
            index = flow.store
            parts = index.duration_parts(_queries._EVERYTHING)  # type: ignore[attr-defined]
            assert parts is not None, "the whole store is answered from the indexes"
            fast = flow.metrics()
            assert fast == summarize(flow.milestones())
            assert fast == summarize(flow.list())
            assert fast[0].count == len(found)

    def test_filters_and_groupings_take_the_general_path(
        self, store_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Only the whole store, ungrouped, seeks; any filter or grouping reads the rows."""
        clock = FrozenClock(START)
        with IncidentFlow(SQLiteStore(store_path), clock=clock) as flow:
            fill_incidents(flow, clock, [("kb_updated", "P1", 0), ("fixed", "P2", 10**9)])
            seeks: list[object] = []
            real = type(flow.store).duration_parts  # type: ignore[attr-defined]
            monkeypatch.setattr(
                type(flow.store),
                "duration_parts",
                lambda store, query: seeks.append(query) or real(store, query),
            )
            for options in ({"severity": "P1"}, {"type": "availability"}, {"viewer": "alice"},
                            {"declared_after": START}):  # fmt: skip
                assert flow.metrics(**options) == summarize(flow.milestones(**options))  # type: ignore[arg-type]
            assert flow.metrics(by="severity") == summarize(flow.milestones(), by="severity")
            assert len(seeks) == 4, "asked, and declined, for the filtered queries only"
            assert flow.metrics() == summarize(flow.milestones())
            assert len(seeks) == 5

    def test_no_incidents(self, store_path: Path) -> None:
        """An empty store: one summary of nothing, as summarize([]) gives."""
        with IncidentFlow(SQLiteStore(store_path)) as flow:
            assert flow.metrics() == summarize([])


class TestPlans:
    """Every statement reads an index; nothing is sorted; the count does not grow."""

    def test_seeks_read_covering_indexes(self, store_path: Path) -> None:
        clock = FrozenClock(START)
        with IncidentFlow(SQLiteStore(store_path), clock=clock) as flow:
            fill_incidents(flow, clock, [("kb_updated", "P1", 0)])
        with sqlite3.connect(store_path) as conn:
            for name, statements in _queries._SEEKS.items():
                for sql in statements:
                    plan = " ".join(
                        row[-1]
                        for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", (0,)[: sql.count("?")])
                    )
                    assert f"COVERING INDEX milestones_by_{name}" in plan, plan
                    assert "TEMP B-TREE" not in plan, plan
            plan = " ".join(
                row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {_queries._COUNTS}")
            )
            assert "COVERING INDEX incidents_by_severity_state" in plan, plan
            assert "TEMP B-TREE" not in plan, plan

    @pytest.mark.parametrize("many", [3, 30])
    def test_statements_do_not_grow_with_the_store(self, store_path: Path, many: int) -> None:
        """A fixed number of statements, whatever the number of incidents."""
        clock = FrozenClock(START)
        with IncidentFlow(SQLiteStore(store_path), clock=clock) as flow:
            fill_incidents(
                flow, clock, [("kb_updated", f"P{n % 4 + 1}", n * 10**8) for n in range(many)]
            )
            seen: list[str] = []
            flow.store._conn.set_trace_callback(seen.append)  # type: ignore[attr-defined]
            [summary] = flow.metrics()
            flow.store._conn.set_trace_callback(None)  # type: ignore[attr-defined]
        reached = [stats for stats in summary.stats().values() if stats.count]
        assert len(reached) == 5  # the helpers record no detection: 2 durations are empty
        # BEGIN, counts, totals, 4 seeks for each duration someone reached, ROLLBACK
        assert len(seen) == 4 + 4 * len(reached), seen


class TestStoredDurations:
    """The write path and migration 8 keep each duration beside the milestones."""

    def test_each_commit_keeps_them(self, store_path: Path) -> None:
        clock = FrozenClock(START)
        with IncidentFlow(SQLiteStore(store_path), clock=clock) as flow:
            fill_incidents(flow, clock, [(s, "P2", n * 10**9) for n, s in enumerate(STATES)])
            reached = [i for i in flow.list() if any(milestone_times(i))]
        assert 0 < len(reached) < len(STATES)
        assert _durations(store_path) == sorted((i.id, *duration_micros(i)) for i in reached)

    def test_a_cold_store_checks_the_stored_row(self, store_path: Path) -> None:
        """A commit the cache cannot compare compares the stored row, and rewrites it."""
        clock = FrozenClock(START)
        with IncidentFlow(SQLiteStore(store_path), clock=clock) as flow:
            incident = drive_to(flow, clock, State.TRIAGING, "P1")
        clock.advance(minutes=7)
        with IncidentFlow(SQLiteStore(store_path, cache_size=0), clock=clock) as cold:
            assert cold.store.cached(incident.id) is None  # type: ignore[attr-defined]
            after = advance_to(cold, clock, incident.id, State.RESOLVED)
        [row] = _durations(store_path)
        assert row == (incident.id, *duration_micros(after))

    def test_migration_8_fills_them(
        self, store_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A schema-7 file gets the same durations as commits at schema 8 write."""
        monkeypatch.setattr(sqlite_module, "_MIGRATIONS", sqlite_module._MIGRATIONS[:7])
        monkeypatch.setattr(sqlite_module, "SCHEMA_VERSION", 7)
        clock = FrozenClock(START)
        with IncidentFlow(SQLiteStore(store_path), clock=clock) as old:
            fill_incidents(old, clock, [(s, "P3", n * 10**9) for n, s in enumerate(STATES)])
            snapshots = {i.id: i for i in old.list()}
        monkeypatch.undo()
        with IncidentFlow(SQLiteStore(store_path), clock=clock) as flow:
            assert flow.store.schema_version() == sqlite_module.SCHEMA_VERSION  # type: ignore[attr-defined]
            assert flow.metrics() == summarize(snapshots.values())
        for incident_id, *durations in _durations(store_path):
            assert tuple(durations) == duration_micros(snapshots[incident_id])


class TestIntegers:
    """Totals and means are exact; the extremes and quantiles are what they were."""

    @given(st.lists(st.integers(-(10**15), 10**15), min_size=1, max_size=40))
    def test_against_the_float_statistics(self, micros: list[int]) -> None:
        stats = _stats(micros)
        seconds = [m / 10**6 for m in micros]
        assert stats.count == len(micros)
        assert stats.total == timedelta(microseconds=sum(micros))
        assert stats.mean == timedelta(microseconds=sum(micros)) / len(micros)
        assert stats.minimum == timedelta(seconds=min(seconds))
        assert stats.maximum == timedelta(seconds=max(seconds))
        assert stats.median == timedelta(seconds=percentile(seconds, 0.5))
        assert stats.p90 == timedelta(seconds=percentile(seconds, 0.9))

    def test_the_mean_rounds_half_to_even(self) -> None:
        assert _stats([1, 2]).mean == timedelta(microseconds=2)
        assert _stats([1, 4]).mean == timedelta(microseconds=2)
        assert _stats([-1, -2]).mean == timedelta(microseconds=-2)

    @given(st.integers(1, 10**6))
    def test_quantile_ranks(self, count: int) -> None:
        for q in QUANTILES:
            assert quantile_rank(count, q) == math.floor((count - 1) * q)
            assert 0 <= quantile_rank(count, q) < count
