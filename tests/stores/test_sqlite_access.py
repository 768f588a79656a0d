"""SQLiteStore's index of restricted incidents: its plans, its writes and its migration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from incidentflow import IncidentFlow
from incidentflow._events import Restricted
from incidentflow.stores import IncidentQuery, SQLiteStore
from incidentflow.stores.sqlite import _schema as sqlite_module
from incidentflow.testing import FrozenClock
from incidentflow.testing.contract import START, declare_commit, next_commit, write

_BOB = frozenset({"bob", "group:sre"})


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "incidents.db"


def statements_of(store: SQLiteStore, work: Callable[[], object]) -> list[str]:
    """The SQL statements ``store`` runs while ``work`` runs."""
    seen: list[str] = []
    store._conn.set_trace_callback(seen.append)
    try:
        work()
    finally:
        store._conn.set_trace_callback(None)
    return seen


class TestPlans:
    def test_visibility_reads_its_index(self, path: Path) -> None:
        """A viewer's listing finds its restricted incidents through access_by_principal."""
        store = SQLiteStore(path)
        try:
            steps = store.explain_list(IncidentQuery(visible_to=_BOB, limit=20))
        finally:
            store.close()
        assert "access_by_principal" in " ".join(steps)
        assert not any(s.startswith("SCAN incident_access") for s in steps)

    def test_viewer_search_reads_the_index_too(self, path: Path) -> None:
        """similar() for a viewer filters inside the FTS query, by the same index."""
        from incidentflow.stores.sqlite._rows import _SEARCH, _search_sql

        store = SQLiteStore(path)
        try:
            sql, names = _search_sql(_SEARCH, _BOB, "AND")
            rows = store._read(
                lambda conn: conn.execute(
                    f"EXPLAIN QUERY PLAN {sql}", ('"queue"', None, 5, None, *names)
                ).fetchall()
            )
        finally:
            store.close()
        assert "access_by_principal" in " ".join(str(row[-1]) for row in rows)


class TestWrites:
    def test_only_a_change_of_restriction_writes_access_rows(self, path: Path) -> None:
        """Notes leave incident_access alone; restrict and unrestrict rewrite it."""
        clock = FrozenClock(START)
        with IncidentFlow(SQLiteStore(path), clock=clock) as flow:
            store = flow.store
            assert isinstance(store, SQLiteStore)
            incident = flow.declare("Queue lag", severity="P2", commander="al", actor="al")
            restricting = statements_of(
                store, lambda: flow.restrict(incident.id, to=["group:sre"], actor="al")
            )
            assert any("incident_access" in s for s in restricting)
            noting = statements_of(
                store, lambda: flow.add_note(incident.id, text="watching", actor="al")
            )
            assert not any("incident_access" in s or "is_restricted" in s for s in noting)
            flow.unrestrict(incident.id, actor="al")
            assert store.list(IncidentQuery(visible_to=frozenset({"bob"}))) != []


class TestMigration:
    def test_version_6_database_gets_its_access_rows(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A schema-6 file's restricted incidents are hidden from others once it is opened."""
        monkeypatch.setattr(sqlite_module, "_MIGRATIONS", sqlite_module._MIGRATIONS[:6])
        monkeypatch.setattr(sqlite_module, "SCHEMA_VERSION", 6)
        old = SQLiteStore(path)
        hidden = write(old, declare_commit())
        hidden = write(old, next_commit(hidden, Restricted(("group:security", "sec"))))
        shown = write(old, declare_commit("INC-2026-11-28-other"))
        old.close()
        monkeypatch.undo()

        store = SQLiteStore(path)
        try:
            assert store.schema_version() == sqlite_module.SCHEMA_VERSION
            bob = IncidentQuery(visible_to=frozenset({"bob"}))
            assert [i.id for i in store.list(bob)] == [shown.id]
            assert [s.id for s in store.summaries(bob)] == [shown.id]
            member = IncidentQuery(visible_to=frozenset({"group:security"}))
            assert {i.id for i in store.list(member)} == {hidden.id, shown.id}
        finally:
            store.close()
