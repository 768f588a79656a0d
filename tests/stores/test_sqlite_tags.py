"""SQLiteStore's index rows for types, labels, fields and references: plans, cost, races."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from incidentflow import IncidentFlow, ReferenceTaken
from incidentflow._events import LabelsSet, ReferenceAdded
from incidentflow._model import Reference
from incidentflow.stores import IncidentQuery, SQLiteStore
from incidentflow.stores.sqlite import _schema as sqlite_module
from incidentflow.testing import FrozenClock
from incidentflow.testing.contract import START, declare_commit, next_commit, write

_ALERT = Reference("alert", "fp-1c9e")


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
    def test_filter_reads_its_index(self, path: Path, query: IncidentQuery, index: str) -> None:
        """Each filter is answered from its index, never by scanning a table whole."""
        store = SQLiteStore(path)
        try:
            steps = store.explain_list(query)
        finally:
            store.close()
        assert index in " ".join(steps)
        # A SCAN reads a partial index of matching rows at most, never a table whole.
        assert all("USING" in step for step in steps if step.startswith("SCAN"))

    def test_find_reference_reads_its_index(self, path: Path) -> None:
        """find_reference(open_only=True) searches the partial unique index of open holders."""
        from incidentflow.stores.sqlite._tags import find_reference_sql

        store = SQLiteStore(path)
        try:
            rows = store._read(
                lambda conn: conn.execute(
                    f"EXPLAIN QUERY PLAN {find_reference_sql(True)}", ("alert", "x")
                ).fetchall()
            )
        finally:
            store.close()
        plan = " ".join(str(row[-1]) for row in rows)
        assert "references_open" in plan


class TestCost:
    def test_a_plain_command_on_a_labelled_incident_costs_the_same(self, path: Path) -> None:
        """A note on an incident with 50 labels and references runs the statements of a bare one."""
        clock = FrozenClock(START)
        with IncidentFlow(SQLiteStore(path), clock=clock) as flow:
            bare = flow.declare("Bare", severity="P3", commander="al", actor="al")
            labelled = flow.declare(
                "Labelled",
                severity="P3",
                commander="al",
                actor="al",
                labels={f"key{n}": f"value {n}" for n in range(50)},
                references={"alert": "fp-1", "ticket": "OPS-1"},
            )
            store = flow.store
            assert isinstance(store, SQLiteStore)
            on_bare = statements_of(store, lambda: flow.add_note(bare.id, "n", actor="al"))
            on_labelled = statements_of(store, lambda: flow.add_note(labelled.id, "n", actor="al"))
        assert len(on_labelled) == len(on_bare)
        assert not [sql for sql in on_labelled if "incident_labels" in sql]

    def test_only_changed_tables_are_written(self, path: Path) -> None:
        """Setting a label writes label rows, not the field or reference rows."""
        clock = FrozenClock(START)
        with IncidentFlow(SQLiteStore(path), clock=clock) as flow:
            inc = flow.declare("Labelled", severity="P3", commander="al", actor="al")
            store = flow.store
            assert isinstance(store, SQLiteStore)
            seen = statements_of(
                store, lambda: flow.set_labels(inc.id, {"service": "checkout"}, actor="al")
            )
        assert [sql for sql in seen if "incident_labels" in sql]
        assert not [sql for sql in seen if "incident_fields" in sql or "incident_refer" in sql]


class TestMigration:
    def test_version_5_database_is_indexed(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A schema-5 file gets its type, label, field and reference rows on opening."""
        monkeypatch.setattr(sqlite_module, "_MIGRATIONS", sqlite_module._MIGRATIONS[:5])
        monkeypatch.setattr(sqlite_module, "SCHEMA_VERSION", 5)
        old = SQLiteStore(path)
        snapshot = write(old, declare_commit())
        snapshot = write(
            old,
            next_commit(
                snapshot, LabelsSet({"service": "checkout"}), ReferenceAdded("alert", "fp-1c9e")
            ),
        )
        old.close()
        monkeypatch.undo()

        store = SQLiteStore(path)
        try:
            assert store.schema_version() == sqlite_module.SCHEMA_VERSION
            assert store.list(IncidentQuery(labels={"service": "checkout"})) == [snapshot]
            assert store.find_reference(_ALERT, open_only=True) == [snapshot]
            [summary] = store.summaries(IncidentQuery())
            assert summary.type == "availability"
            other = write(store, declare_commit("INC-2026-11-28-other"))
            with pytest.raises(ReferenceTaken):
                store.append(next_commit(other, ReferenceAdded("alert", "fp-1c9e")))
        finally:
            store.close()


    def test_checkpoints_of_an_older_fold_are_rebuilt(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A checkpoint an older release folded (a reopen kept nothing) is rebuilt on opening."""
        import json
        import sqlite3

        from helpers import drive_to
        from incidentflow import State
        from incidentflow._serialization import incident_to_dict

        monkeypatch.setattr(sqlite_module, "_MIGRATIONS", sqlite_module._MIGRATIONS[:5])
        monkeypatch.setattr(sqlite_module, "SCHEMA_VERSION", 5)
        clock = FrozenClock(START)
        with IncidentFlow(SQLiteStore(path), clock=clock) as flow:
            inc = drive_to(flow, clock, State.FIXED)
            inc = flow.reopen(inc.id, reason="errors are back", actor="al")
        assert len(inc.superseded) == 1
        body = incident_to_dict(inc)
        body["superseded"] = []  # what the release before corrections wrote
        with sqlite3.connect(path) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO snapshots (incident_id, version, body) VALUES (?, ?, ?)",
                (inc.id, inc.version, json.dumps(body)),
            )
        monkeypatch.undo()

        with IncidentFlow(SQLiteStore(path), clock=clock) as flow:
            assert flow.verify(inc.id)
            assert len(flow.get(inc.id).superseded) == 1


class TestRaces:
    def test_two_stores_declaring_with_one_reference(self, path: Path) -> None:
        """Two stores on one file append the same reference at once: one wins, one is refused."""
        SQLiteStore(path).close()  # the schema, made once
        for round_ in range(10):
            barrier = threading.Barrier(2)
            outcomes: list[str] = []

            def declare(
                n: int,
                round_: int = round_,
                barrier: threading.Barrier = barrier,
                outcomes: list[str] = outcomes,
            ) -> None:
                store = SQLiteStore(path)
                try:
                    commit = declare_commit(f"INC-2026-11-27-r{round_}-w{n}")
                    taking = next_commit(commit.snapshot, ReferenceAdded("alert", f"fp-{round_}"))
                    both = type(commit)(
                        commit.incident_id, 0, commit.events + taking.events, taking.snapshot
                    )
                    barrier.wait()
                    try:
                        store.append(both)
                        outcomes.append("declared")
                    except ReferenceTaken:
                        outcomes.append("taken")
                finally:
                    store.close()

            threads = [threading.Thread(target=declare, args=(n,)) for n in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert sorted(outcomes) == ["declared", "taken"]
            store = SQLiteStore(path)
            try:
                ref = Reference("alert", f"fp-{round_}")
                assert len(store.find_reference(ref)) == 1
                made = [i for i in store.list(IncidentQuery()) if f"-r{round_}-" in i.id]
                assert len(made) == 1  # the refused declaration wrote nothing
            finally:
                store.close()
