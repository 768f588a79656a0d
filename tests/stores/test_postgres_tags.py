"""PostgresStore's index rows for types, labels, fields and references: plans, races, migration.

These tests need a server: INCIDENTFLOW_TEST_POSTGRES_DSN names it (see conftest.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from store_workers import open_kind, postgres_connection, postgres_dsn, postgres_schema

from incidentflow import ReferenceTaken
from incidentflow._events import LabelsSet, ReferenceAdded
from incidentflow._model import Reference
from incidentflow.stores import IncidentQuery
from incidentflow.testing.contract import declare_commit, next_commit, write

_ALERT = Reference("alert", "fp-1c9e")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    store = open_kind("postgres", tmp_path)
    yield store
    store.close()


def another(tmp_path: Path) -> Any:
    """A second store on the test's schema, as another host would open it."""
    from incidentflow.stores import postgres

    return postgres.PostgresStore(postgres_dsn(), schema=postgres_schema(tmp_path))


def plan_of(store: Any, query: IncidentQuery) -> str:
    """PostgreSQL's plan for list(query) with sequential scans priced out of reach."""
    import psycopg

    sql, params = store._sql.list(query)
    with postgres_connection() as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        statement = psycopg.ClientCursor(conn).mogrify(sql, params)
        rows = conn.execute(f"EXPLAIN {statement}").fetchall()
    return "\n".join(str(row[0]) for row in rows)


class TestPlans:
    @pytest.mark.parametrize(
        ("query", "index"),
        [
            (IncidentQuery(labels={"service": "checkout"}), "labels_by_pair"),
            (IncidentQuery(fields={"customers": 120}), "fields_by_value"),
            (IncidentQuery(reference=_ALERT), "references_by_value"),
            (IncidentQuery(types=frozenset({"security"})), "incidents_by_type"),
            (IncidentQuery(open_action_items=True), "incidents_with_open_action_items"),
        ],
    )
    def test_filter_reads_its_index(self, store: Any, query: IncidentQuery, index: str) -> None:
        """Each filter can be answered from its index: no sequential scan is needed."""
        plan = plan_of(store, query)
        assert index in plan
        assert "Seq Scan" not in plan


class TestRaces:
    def test_two_hosts_declaring_with_one_reference(self, store: Any, tmp_path: Path) -> None:
        """Two stores append one reference at the same moment: one incident, one refusal."""
        stores = [store, another(tmp_path)]
        try:
            for round_ in range(10):
                barrier = threading.Barrier(2)
                outcomes: list[str] = []

                def declare(
                    n: int,
                    round_: int = round_,
                    barrier: threading.Barrier = barrier,
                    outcomes: list[str] = outcomes,
                ) -> None:
                    commit = declare_commit(f"INC-2026-11-27-r{round_}-w{n}")
                    taking = next_commit(commit.snapshot, ReferenceAdded("alert", f"fp-{round_}"))
                    both = type(commit)(
                        commit.incident_id, 0, commit.events + taking.events, taking.snapshot
                    )
                    barrier.wait()
                    try:
                        stores[n].append(both)
                        outcomes.append("declared")
                    except ReferenceTaken:
                        outcomes.append("taken")

                threads = [threading.Thread(target=declare, args=(n,)) for n in range(2)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=60)
                assert sorted(outcomes) == ["declared", "taken"]
                [holder] = store.find_reference(Reference("alert", f"fp-{round_}"))
                made = [i for i in store.list(IncidentQuery()) if f"-r{round_}-" in i.id]
                assert made == [holder]  # the refused declaration wrote nothing
        finally:
            stores[1].close()


class TestMigration:
    def test_version_2_schema_is_indexed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A schema-2 database gets its type, label, field and reference rows on opening."""
        postgres_dsn()
        from incidentflow.stores.postgres import _schema

        monkeypatch.setattr(_schema, "_MIGRATIONS", _schema._MIGRATIONS[:2])
        monkeypatch.setattr(_schema, "SCHEMA_VERSION", 2)
        old = open_kind("postgres", tmp_path)
        snapshot = write(old, declare_commit())
        snapshot = write(
            old,
            next_commit(
                snapshot,
                LabelsSet({"service": "checkout"}),
                ReferenceAdded(_ALERT.kind, _ALERT.value),
            ),
        )
        old.close()
        monkeypatch.undo()

        store = open_kind("postgres", tmp_path)
        try:
            assert store.schema_version() == _schema.SCHEMA_VERSION
            assert store.list(IncidentQuery(labels={"service": "checkout"})) == [snapshot]
            assert store.find_reference(_ALERT, open_only=True) == [snapshot]
            other = write(store, declare_commit("INC-2026-11-28-other"))
            with pytest.raises(ReferenceTaken):
                store.append(next_commit(other, ReferenceAdded(_ALERT.kind, _ALERT.value)))
        finally:
            store.close()

    def test_checkpoints_of_an_older_fold_are_rebuilt(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A checkpoint an older release folded (a reopen kept nothing) is rebuilt on opening."""
        import json

        import psycopg

        from helpers import drive_to
        from incidentflow import IncidentFlow, State
        from incidentflow._serialization import incident_to_dict
        from incidentflow.stores.postgres import _schema
        from incidentflow.testing import FrozenClock
        from incidentflow.testing.contract import START

        dsn = postgres_dsn()
        monkeypatch.setattr(_schema, "_MIGRATIONS", _schema._MIGRATIONS[:2])
        monkeypatch.setattr(_schema, "SCHEMA_VERSION", 2)
        clock = FrozenClock(START)
        with IncidentFlow(open_kind("postgres", tmp_path), clock=clock) as flow:
            inc = drive_to(flow, clock, State.FIXED)
            inc = flow.reopen(inc.id, reason="errors are back", actor="al")
        body = incident_to_dict(inc)
        body["superseded"] = []  # what the release before corrections wrote
        schema = postgres_schema(tmp_path)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                f'INSERT INTO "{schema}".snapshots (incident_id, version, body) '
                "VALUES (%s, %s, %s::jsonb) ON CONFLICT (incident_id) DO UPDATE "
                "SET version = excluded.version, body = excluded.body",
                (inc.id, inc.version, json.dumps(body)),
            )
        monkeypatch.undo()

        with IncidentFlow(open_kind("postgres", tmp_path), clock=clock) as flow:
            assert flow.verify(inc.id)
            assert len(flow.get(inc.id).superseded) == 1
