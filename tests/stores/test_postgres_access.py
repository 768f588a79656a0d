"""PostgresStore's index of restricted incidents: its plans and its migration.

These tests need a server: INCIDENTFLOW_TEST_POSTGRES_DSN names it (see conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from store_workers import open_kind, postgres_connection, postgres_dsn

from incidentflow._events import Restricted
from incidentflow.stores import IncidentQuery
from incidentflow.testing.contract import declare_commit, next_commit, write

_BOB = frozenset({"bob", "group:sre"})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    store = open_kind("postgres", tmp_path)
    yield store
    store.close()


def explained(sql: str, params: Any) -> str:
    """PostgreSQL's plan for ``sql`` with sequential scans priced out of reach."""
    import psycopg

    with postgres_connection() as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        statement = psycopg.ClientCursor(conn).mogrify(sql, params)
        rows = conn.execute(f"EXPLAIN {statement}").fetchall()
    return "\n".join(str(row[0]) for row in rows)


class TestPlans:
    def test_visibility_reads_its_index(self, store: Any) -> None:
        """A viewer's listing finds its restricted incidents through access_by_principal."""
        plan = explained(*store._sql.list(IncidentQuery(visible_to=_BOB, limit=20)))
        assert "access_by_principal" in plan
        assert "Seq Scan on incident_access" not in plan

    def test_viewer_search_reads_the_index_too(self, store: Any) -> None:
        """similar() for a viewer filters inside the ranking query, by the same index."""
        from incidentflow.stores.postgres._access import principals
        from incidentflow.stores.postgres._values import _RANK_WEIGHTS, _SEARCH, _SEARCH_VISIBLE

        schema = store._sql.schema
        sql = _SEARCH.format(s=schema, visible=_SEARCH_VISIBLE.format(s=schema))
        params = {
            "config": "english",
            "terms": ["queue"],
            "weights": _RANK_WEIGHTS,
            "exclude": None,
            "types": None,
            "limit": 5,
            "visible": principals(_BOB),
        }
        assert "access_by_principal" in explained(sql, params)


class TestMigration:
    def test_version_3_schema_gets_its_access_rows(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A schema-3 database's restricted incidents are hidden from others once it is opened."""
        postgres_dsn()
        from incidentflow.stores.postgres import _schema

        monkeypatch.setattr(_schema, "_MIGRATIONS", _schema._MIGRATIONS[:3])
        monkeypatch.setattr(_schema, "SCHEMA_VERSION", 3)
        old = open_kind("postgres", tmp_path)
        hidden = write(old, declare_commit())
        hidden = write(old, next_commit(hidden, Restricted(("group:security", "sec"))))
        shown = write(old, declare_commit("INC-2026-11-28-other"))
        old.close()
        monkeypatch.undo()

        store = open_kind("postgres", tmp_path)
        try:
            assert store.schema_version() == _schema.SCHEMA_VERSION
            bob = IncidentQuery(visible_to=frozenset({"bob"}))
            assert [i.id for i in store.list(bob)] == [shown.id]
            assert [s.id for s in store.summaries(bob)] == [shown.id]
            member = IncidentQuery(visible_to=frozenset({"group:security"}))
            assert {i.id for i in store.list(member)} == {hidden.id, shown.id}
        finally:
            store.close()
