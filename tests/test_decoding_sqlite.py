"""SQLite listings load many snapshots in a few statements, equal to loading each alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from incidentflow import Incident, IncidentFlow
from incidentflow.stores import IncidentQuery, SQLiteStore
from incidentflow.stores.sqlite import _queries

COUNT = 40


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A store of COUNT open incidents, some with events after their checkpoint."""
    path = tmp_path / "incidents.db"
    flow = IncidentFlow(SQLiteStore(path), incidents_dir=None, knowledge_dir=None)
    for n in range(COUNT):
        inc = flow.declare(f"Checkout returns 500 ({n})", severity="P1", commander="al", actor="al")
        flow.start_triage(inc.id, actor="al")
        for k in range(n):  # past 16 events a checkpoint is rewritten; the rest is its tail
            flow.add_evidence(inc.id, source="logs", content=f"line {k}", actor="bo")
    flow.close()
    return path


def statements(store: SQLiteStore, query: IncidentQuery) -> tuple[list[str], list[Incident]]:
    seen: list[str] = []
    store._conn.set_trace_callback(seen.append)
    try:
        found = list(store.list(query))
    finally:
        store._conn.set_trace_callback(None)
    return seen, found


def one_by_one(path: Path) -> dict[str, Incident]:
    store = SQLiteStore(path)
    try:
        return {s.id: store.load(s.id) for s in store.summaries(IncidentQuery())}
    finally:
        store.close()


class TestListLoadsInBatches:
    def test_a_cold_listing_reads_a_few_statements_not_three_per_incident(self, path: Path) -> None:
        """With nothing cached, list() reads checkpoints and tails in one statement each."""
        store = SQLiteStore(path)
        try:
            seen, found = statements(store, IncidentQuery())
        finally:
            store.close()
        assert len(found) == COUNT
        reads = [sql for sql in seen if sql.lstrip().upper().startswith("SELECT")]
        # The listing, the checkpoints, the tails (no list is long enough for chunks).
        assert len(reads) == 3, reads

    def test_the_snapshots_equal_those_loaded_one_by_one(self, path: Path) -> None:
        """Each snapshot listed equals the one load() gives, in the listing's order."""
        expected = one_by_one(path)
        store = SQLiteStore(path)
        try:
            found = store.list(IncidentQuery())
        finally:
            store.close()
        newest_first = sorted(expected.values(), key=lambda i: (i.declared_at, i.id), reverse=True)
        assert [i.id for i in found] == [i.id for i in newest_first]
        assert {i.id: i for i in found} == expected

    def test_batches_split_a_long_listing(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """More incidents than a batch holds are read in several statements, still equal."""
        monkeypatch.setattr(_queries, "_BATCH", 7)
        expected = one_by_one(path)
        store = SQLiteStore(path)
        try:
            seen, found = statements(store, IncidentQuery())
        finally:
            store.close()
        assert {i.id: i for i in found} == expected
        reads = [sql for sql in seen if sql.lstrip().upper().startswith("SELECT")]
        batches = -(-COUNT // 7)
        # The listing, then a checkpoint read per batch and a tail read per batch (at most).
        assert 1 + batches <= len(reads) <= 1 + 2 * batches

    def test_an_older_cached_snapshot_is_caught_up(self, path: Path) -> None:
        """A snapshot cached before another process wrote is caught up from its own version."""
        reader = SQLiteStore(path)
        writer = IncidentFlow(SQLiteStore(path), incidents_dir=None, knowledge_dir=None)
        try:
            before = {i.id: i for i in reader.list(IncidentQuery())}
            for incident_id in list(before)[:5]:
                writer.add_note(incident_id, "still on it", actor="cy")
            seen, found = statements(reader, IncidentQuery())
        finally:
            writer.close()
            reader.close()
        assert {i.id: i for i in found} == one_by_one(path)
        assert not any("FROM snapshots" in sql for sql in seen)  # caught up from the cache
