"""The fast reads of a SQL store give exactly what the slow path gives (issue 11 §6)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

import pg
from helpers import drive_to
from incidentflow import IncidentFlow, State
from incidentflow.metrics import summarize
from incidentflow.stores import IncidentSummary, SQLiteStore, Store
from incidentflow.testing import FrozenClock

START = datetime(2026, 1, 30, 22, 0, tzinfo=UTC)


def _store(kind: str, tmp_path: Path) -> Iterator[Store]:
    if kind == "sqlite":
        yield SQLiteStore(tmp_path / "incidents.db")
        return
    import psycopg

    from incidentflow.stores.postgres import PostgresStore

    dsn, schema = pg.postgres_dsn(), f"reads_{uuid.uuid4().hex[:12]}"
    try:
        yield PostgresStore(dsn, schema=schema)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _filled(stores: Iterator[Store]) -> Iterator[IncidentFlow]:
    """A flow on the store given, with incidents in many states, severities and days."""
    clock = FrozenClock(START)
    with IncidentFlow(next(stores), clock=clock) as flow:
        for n, state in enumerate(
            ["kb_updated", "dismissed", "rca", "declared", "resolved", "kb_updated", "fixed"]
        ):
            clock.set(START + timedelta(days=3 * n, hours=5 * n))
            drive_to(flow, clock, state, f"P{n % 4 + 1}")
        restricted = drive_to(flow, clock, State.CONTAINED, "P2")
        flow.restrict(restricted.id, ["alice"], actor="alice")
        yield flow
    stores.close()


@pytest.fixture(params=["sqlite", "postgres"])
def flow(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IncidentFlow]:
    """A SQL store with incidents in many states, severities and days, one restricted."""
    yield from _filled(_store(request.param, tmp_path))


@pytest.fixture
def sqlite_flow(tmp_path: Path) -> Iterator[IncidentFlow]:
    """The same incidents on SQLite alone, for tests that change its file by hand."""
    yield from _filled(_store("sqlite", tmp_path))


GROUPINGS = [(None, "week"), ("severity", "week"), ("type", "week")] + [
    ("period", period) for period in ("day", "week", "month")
]


class TestMetrics:
    """``flow.metrics`` aggregates rows SQL computed, and equals summarising the milestones."""

    @pytest.mark.parametrize(("by", "period"), GROUPINGS)
    def test_equals_summarising_the_milestones(
        self, flow: IncidentFlow, by: str | None, period: str
    ) -> None:
        """Every grouping gives the same summaries, value for value, as the slow path."""
        fast = flow.metrics(by=by, period=period)  # type: ignore[arg-type]
        slow = summarize(flow.milestones(), by=by, period=period)  # type: ignore[arg-type]
        assert fast == slow
        assert sum(s.count for s in fast) == 8

    def test_filters_and_viewer(self, flow: IncidentFlow) -> None:
        """Severity, dates and a viewer select the same incidents on both paths."""
        options = {"severity": ["P1", "P2"], "declared_after": START + timedelta(days=1)}
        for viewer in (None, "bob", "alice"):
            fast = flow.metrics(by="severity", viewer=viewer, **options)  # type: ignore[arg-type]
            slow = summarize(flow.milestones(viewer=viewer, **options), by="severity")  # type: ignore[arg-type]
            assert fast == slow
        assert flow.metrics(declared_before=START - timedelta(days=1)) == summarize([])

    def test_no_milestones_built(self, flow: IncidentFlow, monkeypatch: pytest.MonkeyPatch) -> None:
        """The SQLite store answers from its duration rows: milestones() is never read."""

        def refuse(*args: object) -> None:
            raise AssertionError("metrics read the milestones")

        monkeypatch.setattr(type(flow.store), "milestones", refuse)
        assert flow.metrics(by="period", period="day")

    def test_days_before_the_epoch(self, sqlite_flow: IncidentFlow, tmp_path: Path) -> None:
        """A time before 1970 falls on the day it is in, as the slow path's date() puts it."""
        flow = sqlite_flow
        first = flow.summaries(newest_first=False, limit=2)
        with sqlite3.connect(tmp_path / "incidents.db") as conn:
            for summary, micros in zip(first, (-3_600_000_000, -86_400_000_000), strict=True):
                conn.execute(
                    "UPDATE incidents SET declared_at = ? WHERE id = ?", (micros, summary.id)
                )
        for period in ("day", "week", "month"):
            fast = flow.metrics(by="period", period=period)  # type: ignore[arg-type]
            assert fast == summarize(flow.milestones(), by="period", period=period)  # type: ignore[arg-type]
            assert fast[0].period_start is not None
            assert fast[0].period_start.year == 1969

    def test_refusals_unchanged(self, flow: IncidentFlow) -> None:
        """A wrong grouping is refused as before, before anything is read."""
        from incidentflow import ValidationError

        with pytest.raises(ValidationError, match="not a grouping"):
            flow.metrics(by="colour")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="not a period"):
            flow.metrics(by="period", period="year")  # type: ignore[arg-type]


class TestSummaries:
    """``flow.summaries`` builds each summary from its row without ``__init__``, the same value."""

    def test_equal_to_the_snapshots(self, flow: IncidentFlow) -> None:
        """Each summary equals the one made from the incident's snapshot, in the same order."""
        found = flow.summaries()
        assert found == [IncidentSummary.of(flow.get(s.id)) for s in found]
        assert [s.id for s in found] == [i.id for i in flow.list()]

    def test_a_real_frozen_summary(self, flow: IncidentFlow) -> None:
        """What is built hashes, compares, evolves and refuses changes as an attrs instance does."""
        summary = flow.summaries(limit=1)[0]
        rebuilt = IncidentSummary(**attrs.asdict(summary, recurse=False))
        assert summary == rebuilt
        assert hash(summary) == hash(rebuilt)
        assert repr(summary) == repr(rebuilt)
        assert attrs.evolve(summary, title="x").title == "x"
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            summary.title = "changed"  # type: ignore[misc]
