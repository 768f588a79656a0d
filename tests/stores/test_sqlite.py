"""SQLiteStore passes the store contract, plus what only SQLite does."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

from incidentflow import ConcurrencyConflict, IdempotencyConflict, IncidentFlow, StoreError
from incidentflow._events import NoteAdded
from incidentflow._metrics import milestones
from incidentflow._model import Severity
from incidentflow.stores import IncidentQuery, SQLiteStore, Store
from incidentflow.stores.sqlite import _rows as sqlite_rows
from incidentflow.stores.sqlite import _schema as sqlite_module
from incidentflow.testing import (
    EventStoreContract,
    FrozenClock,
    OutboxContract,
    QueryIndexContract,
)
from incidentflow.testing.contract import (
    CHECKOUT,
    LEASE,
    START,
    announced,
    declare_commit,
    item_id,
    next_commit,
    with_notes,
)


class TestSQLiteStore(EventStoreContract, OutboxContract, QueryIndexContract):
    """The contract, in one SQLite file."""

    def make_store(self, tmp_path: Path) -> Store:
        return SQLiteStore(tmp_path / "incidents.db")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "incidents.db"


@pytest.fixture
def store(path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(path)
    yield store
    store.close()


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


class TestSetup:
    def test_wal_and_full_sync_by_default(self, store: SQLiteStore, path: Path) -> None:
        """The database runs in WAL mode with synchronous=FULL unless told otherwise."""
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        store.close()
        normal = SQLiteStore(path, synchronous="NORMAL")
        assert normal._conn.execute("PRAGMA synchronous").fetchone()[0] == 1
        normal.close()

    def test_creates_missing_folders(self, tmp_path: Path) -> None:
        """The database's folders are created, as for the default .agent/incidents/."""
        store = SQLiteStore(tmp_path / "a" / "b" / "incidents.db")
        store.append(declare_commit())
        assert (tmp_path / "a" / "b" / "incidents.db").exists()
        store.close()

    def test_schema_version_recorded(self, store: SQLiteStore, path: Path) -> None:
        """The schema version is recorded in the file, with the application id."""
        assert store.schema_version() == sqlite_module.SCHEMA_VERSION
        with raw(path) as conn:
            assert conn.execute("PRAGMA application_id").fetchone()[0] == (
                sqlite_module.APPLICATION_ID
            )
            versions = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
        assert versions == list(range(1, sqlite_module.SCHEMA_VERSION + 1))

    def test_forward_migration(
        self, store: SQLiteStore, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A database at an older schema is migrated forward on open, keeping its data."""
        snapshot = with_notes(store, 2)
        store.close()
        newer = (*sqlite_module._MIGRATIONS, ("ALTER TABLE incidents ADD COLUMN team TEXT",))
        monkeypatch.setattr(sqlite_module, "_MIGRATIONS", newer)
        monkeypatch.setattr(sqlite_module, "SCHEMA_VERSION", len(newer))
        migrated = SQLiteStore(path)
        assert migrated.schema_version() == len(newer)
        assert migrated.load(CHECKOUT) == snapshot
        columns = [r[1] for r in migrated._conn.execute("PRAGMA table_info(incidents)")]
        assert "team" in columns
        migrated.close()

    def test_closed_store_refuses_work(self, store: SQLiteStore) -> None:
        """A closed store raises StoreError saying so."""
        store.close()
        with pytest.raises(StoreError, match="closed"):
            store.load(CHECKOUT)

    def test_bad_settings(self, path: Path) -> None:
        """Unknown synchronous modes and negative timeouts are configuration errors."""
        from incidentflow import ConfigError

        with pytest.raises(ConfigError, match="synchronous"):
            SQLiteStore(path, synchronous="OFF")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="busy_timeout"):
            SQLiteStore(path, busy_timeout=-1)


class TestSnapshots:
    def test_checkpoint_is_not_rewritten_on_every_command(self, store: SQLiteStore) -> None:
        """The full snapshot is stored now and then; the row with the indexed columns always."""
        with_notes(store, 100)
        stored = store._conn.execute("SELECT version FROM snapshots").fetchone()[0]
        current = store._conn.execute("SELECT version FROM incidents").fetchone()[0]
        assert current == 101
        assert stored < current

    def test_cold_store_folds_the_tail(self, store: SQLiteStore, path: Path) -> None:
        """A store with no cache builds the snapshot from the checkpoint and later events."""
        snapshot = with_notes(store, 100)
        cold = SQLiteStore(path, cache_size=0)
        assert cold.load(CHECKOUT) == snapshot
        assert cold.list(IncidentQuery())[0] == snapshot
        cold.close()

    def test_stale_cache_catches_up(self, store: SQLiteStore, path: Path) -> None:
        """A store whose cached snapshot is behind reads only the newer events."""
        first = with_notes(store, 3)
        other = SQLiteStore(path)
        assert other.load(CHECKOUT) == first
        for n in range(40):
            store.append(next_commit(store.load(CHECKOUT), NoteAdded(f"more {n}")))
        assert other.load(CHECKOUT) == store.load(CHECKOUT)
        other.append(next_commit(other.load(CHECKOUT)))
        assert store.load(CHECKOUT).version == 45
        other.close()

    def test_uncached_writer_still_refreshes_indexed_columns(self, path: Path) -> None:
        """A store that never loaded the incident writes its new state for list()."""
        from incidentflow._events import Dismissed

        writer = SQLiteStore(path, cache_size=0)
        declared = declare_commit()
        writer.append(declared)
        writer.append(next_commit(declared.snapshot, Dismissed("false alarm")))
        assert writer.list(IncidentQuery(open_only=True)) == []
        assert len(writer.list(IncidentQuery(severities=frozenset({Severity.P1})))) == 1
        writer.close()


class TestQueries:
    def test_open_p1_uses_the_index(self, store: SQLiteStore) -> None:
        """list(open_only=True, severity=P1) searches an index, never scans the table."""
        plan = " ".join(
            store.explain_list(IncidentQuery(open_only=True, severities=frozenset({Severity.P1})))
        )
        assert "USING INDEX incidents_by_open_severity" in plan
        assert "SCAN incidents" not in plan
        assert "TEMP B-TREE" not in plan

    def test_state_filter_uses_an_index(self, store: SQLiteStore) -> None:
        """A state filter searches an index too."""
        from incidentflow import State

        plan = " ".join(store.explain_list(IncidentQuery(states=frozenset({State.RCA}))))
        assert "USING INDEX" in plan


class TestConcurrency:
    def test_waits_for_another_writer(self, path: Path) -> None:
        """A write waits for another connection's write transaction, then succeeds."""
        store = SQLiteStore(path, busy_timeout=0.05)
        blocker = raw(path)
        blocker.execute("BEGIN IMMEDIATE")
        releasing = threading.Event()

        def commit() -> None:
            releasing.set()  # before COMMIT: an append that did not wait finds it unset
            blocker.execute("COMMIT")

        release = threading.Timer(0.3, commit)
        release.start()
        store.append(declare_commit())
        assert releasing.is_set()  # the append went through only after the other ended
        release.join()
        blocker.close()
        assert store.exists(CHECKOUT)
        store.close()

    def test_gives_up_on_a_lock_held_too_long(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A database locked for longer than the retry budget gives StoreError naming it."""
        monkeypatch.setattr(sqlite_module, "_RETRY_SECONDS", 0.2)
        store = SQLiteStore(path, busy_timeout=0.02)
        blocker = raw(path)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match="locked") as caught:
                store.append(declare_commit())
            assert str(path) in str(caught.value)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert not store.exists(CHECKOUT)
        store.close()

    def test_key_committed_by_a_racing_command(self, store: SQLiteStore) -> None:
        """A key another commit stored first refuses the second commit, writing nothing."""
        declared = declare_commit()
        store.append(declared)
        other = declare_commit("INC-2026-11-27-other")
        store.append(other)
        store.append(next_commit(declared.snapshot, key="same-key"))
        racing = next_commit(other.snapshot, key="same-key")
        with pytest.raises(ConcurrencyConflict):
            store.append(racing)
        assert racing.idempotency is not None
        record = attrs.evolve(racing.idempotency, fingerprint="another payload")
        with pytest.raises(IdempotencyConflict):
            store.append(attrs.evolve(racing, idempotency=record))
        assert store.load(other.incident_id).version == 1

    def test_commit_with_a_gap_is_refused(self, store: SQLiteStore) -> None:
        """Events that do not continue the history are refused before anything is written."""
        declared = declare_commit()
        store.append(declared)
        skipping = next_commit(next_commit(declared.snapshot).snapshot)
        broken = attrs.evolve(skipping, expected_version=1)
        with pytest.raises(StoreError, match="does not follow"):
            store.append(broken)
        assert store.load(CHECKOUT).version == 1

    def test_flow_on_two_stores_conflicts_and_retries(self, path: Path) -> None:
        """Two flows on two connections: the stale one raises and succeeds once reloaded."""
        first = IncidentFlow(SQLiteStore(path))
        second = IncidentFlow(SQLiteStore(path))
        inc = first.declare("Checkout returns 500", severity="P1", commander="a", actor="a")
        second.add_note(inc.id, "from the second process", actor="b")
        with pytest.raises(ConcurrencyConflict):
            first.add_note(inc.id, "decided on version 1", actor="a", expected_version=1)
        first.add_note(inc.id, "decided again", actor="a")
        assert [e.seq for e in second.history(inc.id)] == [1, 2, 3]
        assert second.verify(inc.id)
        first.close()
        second.close()


def bulk_outbox(path: Path, incidents: int, per_incident: int) -> list[str]:
    """Write ``incidents`` × ``per_incident`` undelivered rows (one stream each) straight in SQL."""
    template = sqlite_rows._event_row(
        next_commit(declare_commit().snapshot, NoteAdded("bulk")).events[0]
    )
    ids = [f"INC-2026-11-27-bulk-{n:05d}" for n in range(incidents)]
    with contextlib.closing(raw(path)) as conn:
        conn.execute("BEGIN")
        for incident_id in ids:
            seqs = range(1, per_incident + 1)
            conn.executemany(
                sqlite_rows._INSERT_EVENT,
                [(incident_id, seq, *template[2:]) for seq in seqs],
            )
            conn.executemany(
                sqlite_rows._INSERT_OUTBOX,
                [
                    (f"{incident_id}:{seq}:pager", incident_id, seq, "pager", 0, None, "", 0, 0)
                    for seq in seqs
                ],
            )
        conn.execute("COMMIT")
    return ids


class TestOutbox:
    def test_version_1_database_is_migrated_with_its_outbox(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A schema-1 database opens at schema 2; its waiting rows go on as notifier '' items."""
        monkeypatch.setattr(sqlite_module, "_MIGRATIONS", sqlite_module._MIGRATIONS[:1])
        monkeypatch.setattr(sqlite_module, "SCHEMA_VERSION", 1)
        old = SQLiteStore(path)
        snapshot = with_notes(old, 3)
        assert old.schema_version() == 1
        old.close()
        with contextlib.closing(raw(path)) as conn:  # what version 1 wrote for announced events
            conn.executemany(
                "INSERT INTO outbox (id, incident_id, seq) VALUES (?, ?, ?)",
                [(f"{CHECKOUT}:{seq}", CHECKOUT, seq) for seq in (2, 3, 4)],
            )
        monkeypatch.undo()

        store = SQLiteStore(path)
        assert store.schema_version() == sqlite_module.SCHEMA_VERSION
        assert store.load(CHECKOUT) == snapshot
        waiting = store.pending()
        assert [(i.id, i.notifier, i.attempts, i.dead) for i in waiting] == [
            (f"{CHECKOUT}:{seq}", "", 0, False) for seq in (2, 3, 4)
        ]
        assert [i.event for i in waiting] == list(store.history(CHECKOUT, after=1))
        claimed = store.claim(now=START, limit=10, lease=LEASE, worker="w")
        assert [i.id for i in claimed] == [f"{CHECKOUT}:2"]
        store.mark_failed(f"{CHECKOUT}:2", error="gone", next_attempt_at=START, dead=True)
        assert [i.id for i in store.claim(now=START, limit=10, lease=LEASE, worker="w")] == [
            f"{CHECKOUT}:3"
        ]
        columns = {r[1] for r in store._conn.execute("PRAGMA table_info(outbox)")}
        assert columns >= {
            "notifier",
            "attempts",
            "next_attempt_at",
            "last_error",
            "dead",
            "claimed_by",
            "claimed_until",
        }
        store.close()

    def test_claim_searches_the_due_heads_index(self, store: SQLiteStore) -> None:
        """claim() reads the partial index of stream heads, never the whole outbox."""
        plan = " ".join(store.explain_claim())
        assert "USING INDEX outbox_due_heads" in plan
        assert "SCAN" not in plan
        assert "TEMP B-TREE" not in plan
        plan = " ".join(store.explain_claim(CHECKOUT))
        assert "USING INDEX outbox_incident_heads" in plan
        assert "SCAN" not in plan
        assert "TEMP B-TREE" not in plan

    def test_claim_work_does_not_grow_with_the_backlog(self, tmp_path: Path) -> None:
        """A claim on 30,000 waiting rows does the work of one on 100: no scan.

        The work is counted in SQLite virtual-machine steps (its progress
        handler), not timed: the count is the same on a loaded machine.
        Timings are in benchmarks/storage.py.
        """
        small = _claim_work(tmp_path / "small.db", streams=20, per_stream=5)
        large = _claim_work(tmp_path / "large.db", streams=1_000, per_stream=30)
        for step, work in large.items():
            assert work <= 2 * small[step] + 200, (step, small, large)

    def test_head_flags_match_the_streams(self, store: SQLiteStore) -> None:
        """After deliveries, deaths and re-drives, each stream has exactly one head: its oldest."""
        announced(store, 4, notifiers=("pager", "slack"))
        store.mark_failed(item_id(1), error="x", next_attempt_at=START, dead=True)
        store.mark_delivered([item_id(2)])
        store.mark_failed(item_id(1, "slack"), error="x", next_attempt_at=START, dead=True)
        store.redrive([item_id(1)])
        rows = store._conn.execute(
            "SELECT notifier, seq FROM outbox WHERE head = 1 ORDER BY notifier"
        ).fetchall()
        assert rows == [("pager", 1), ("slack", 2)]

    def test_a_command_names_its_notifiers_on_its_event_row(self, store: SQLiteStore) -> None:
        """A commit writes no outbox row; delivery's next write gives its items their rows."""
        announced(store, 2, notifiers=("pager", "slack"))
        notify = store._conn.execute("SELECT seq, notify FROM events ORDER BY seq").fetchall()
        assert notify == [(1, '["pager","slack"]'), (2, '["pager","slack"]')]
        assert store._conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
        expected = [item_id(1), item_id(1, "slack"), item_id(2), item_id(2, "slack")]
        assert [i.id for i in store.pending()] == expected  # listed all the same
        assert [i.id for i in store.pending(limit=3)] == expected[:3]
        assert sorted(i.id for i in store.claim(now=START, limit=9, lease=LEASE, worker="w")) == [
            item_id(1),
            item_id(1, "slack"),
        ]
        rows = store._conn.execute("SELECT id FROM outbox ORDER BY position").fetchall()
        assert [r[0] for r in rows] == expected
        assert [i.id for i in store.pending()] == expected
        with_notes(store, 1, "INC-2026-11-27-quiet")  # no notifiers: nothing to announce
        silent = store._conn.execute("SELECT count(*) FROM events WHERE notify IS NULL")
        assert silent.fetchone() == (2,)

    def test_items_written_as_rows_queue_behind_announced_ones(self, store: SQLiteStore) -> None:
        """A commit whose items carry delivery state is written as rows, after older items."""
        snapshot = announced(store, 1)
        carried = next_commit(snapshot, NoteAdded("carried"), notifiers=("pager",))
        (item,) = carried.outbox
        store.append(attrs.evolve(carried, outbox=(attrs.evolve(item, attempts=2),)))
        assert [(i.id, i.attempts) for i in store.pending()] == [(item_id(1), 0), (item_id(2), 2)]
        assert [i.id for i in store.claim(now=START, limit=9, lease=LEASE, worker="w")] == [
            item_id(1)
        ]

    def test_version_3_database_keeps_its_waiting_rows(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Rows written before schema 4 go on first; later commands' items follow them."""
        monkeypatch.setattr(sqlite_module, "_MIGRATIONS", sqlite_module._MIGRATIONS[:3])
        monkeypatch.setattr(sqlite_module, "SCHEMA_VERSION", 3)
        old = SQLiteStore(path)
        snapshot = with_notes(old, 2)
        old.close()
        with contextlib.closing(raw(path)) as conn:  # what schema 3 wrote for announced events
            conn.executemany(
                sqlite_rows._INSERT_OUTBOX,
                [(item_id(seq), CHECKOUT, seq, "pager", 0, None, "", 0, 0) for seq in (1, 2, 3)],
            )
        monkeypatch.undo()

        store = SQLiteStore(path)
        assert store.schema_version() == sqlite_module.SCHEMA_VERSION
        store.append(next_commit(snapshot, NoteAdded("after the upgrade"), notifiers=("pager",)))
        expected = [item_id(seq) for seq in (1, 2, 3, 4)]
        assert [i.id for i in store.pending()] == expected
        delivered = []
        while batch := store.claim(now=START, limit=9, lease=LEASE, worker="w"):
            delivered.extend(i.id for i in batch)
            store.mark_delivered([i.id for i in batch])
        assert delivered == expected
        store.close()


class TestMilestones:
    """The milestones table that metrics read instead of snapshots."""

    def drive(self, flow: IncidentFlow, clock: FrozenClock) -> str:
        """An incident with a detection, triage and containment, minutes apart."""
        inc = flow.declare("Checkout returns 500", severity="P2", commander="alice", actor="a")
        flow.record_detection(
            inc.id,
            method="alert",
            actor="a",
            first_occurred_at=inc.declared_at - timedelta(minutes=30),
            detected_at=inc.declared_at - timedelta(minutes=4),
        )
        clock.advance(minutes=2)
        flow.start_triage(inc.id, actor="a")
        flow.add_evidence(inc.id, source="grafana", content="5xx at 40 %", actor="a")
        for question in ("symptom", "started_at", "scope"):
            flow.answer_triage(inc.id, question, "seen", actor="a")
        flow.record_containment(inc.id, "rolled back", actor="a")
        clock.advance(minutes=9)
        flow.contain(inc.id, actor="a")
        return inc.id

    def test_version_4_database_is_backfilled(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A schema-4 file gets a milestones row for each incident that reached one."""
        monkeypatch.setattr(sqlite_module, "_MIGRATIONS", sqlite_module._MIGRATIONS[:4])
        monkeypatch.setattr(sqlite_module, "SCHEMA_VERSION", 4)
        clock = FrozenClock(START)
        with IncidentFlow(SQLiteStore(path), clock=clock) as old:
            moved = self.drive(old, clock)
            untouched = old.declare("Search is slow", severity="P4", commander="b", actor="b")
            snapshots = [old.get(moved), old.get(untouched.id)]
        monkeypatch.undo()

        with IncidentFlow(SQLiteStore(path), clock=clock) as flow:
            assert flow.store.schema_version() == sqlite_module.SCHEMA_VERSION  # type: ignore[attr-defined]
            found = {m.incident_id: m for m in flow.milestones()}
            assert found == {s.id: milestones(s) for s in snapshots}
            assert found[moved].contained_at == START + timedelta(minutes=11)
            [summary] = flow.metrics(severity="P2")
            assert summary.time_to_contain.mean == timedelta(minutes=11)
            assert summary.time_to_detect.mean == timedelta(minutes=26)
            rows = flow.store._conn.execute("SELECT incident_id FROM milestones").fetchall()  # type: ignore[attr-defined]
            assert rows == [(moved,)]  # an incident that reached none has no row

    def test_a_writer_without_the_snapshot_cached_keeps_them(self, path: Path) -> None:
        """A commit decided by another process (nothing cached here) still moves the row."""
        clock = FrozenClock(START)
        with (
            IncidentFlow(SQLiteStore(path), clock=clock) as first,
            IncidentFlow(SQLiteStore(path, cache_size=0), clock=clock) as second,
        ):
            inc = first.declare("Checkout returns 500", severity="P1", commander="al", actor="a")
            clock.advance(minutes=3)
            second.start_triage(inc.id, actor="b")  # the second store caches nothing
            second.add_note(inc.id, "paged the DBA", actor="b")
            [found] = first.milestones()
            assert found == milestones(first.get(inc.id))
            assert found.acknowledged_at == START + timedelta(minutes=3)


class TestMilestoneColumns:
    """Each milestone time is stored in, and read back from, the column named after it."""

    def test_every_time_lands_in_its_own_column(self, path: Path) -> None:
        """A whole lifecycle's times, all different, come back in the fields they came from."""
        from helpers import advance_to, declare
        from incidentflow.stores._snapshots import micros

        clock = FrozenClock(START)
        with IncidentFlow(SQLiteStore(path), clock=clock) as flow:
            inc = declare(flow, severity="P1")
            flow.record_detection(
                inc.id,
                method="alert",
                actor="a",
                first_occurred_at=inc.declared_at - timedelta(minutes=30),
                detected_at=inc.declared_at - timedelta(minutes=4),
            )
            snapshot = advance_to(flow, clock, inc.id, "kb_updated", via_postmortem=True)
            assert snapshot.detection is not None
            assert snapshot.postmortem is not None
            times = {
                "first_occurred_at": snapshot.detection.first_occurred_at,
                "detected_at": snapshot.detection.detected_at,
                "acknowledged_at": snapshot.acknowledged_at,
                "contained_at": snapshot.contained_at,
                "fixed_at": snapshot.fixed_at,
                "resolved_at": snapshot.resolved_at,
                "postmortem_completed_at": snapshot.postmortem.completed_at,
            }
            assert None not in times.values()
            assert len(set(times.values())) == len(times)  # a swap would show

            conn = raw(path)
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM milestones WHERE incident_id = ?", (inc.id,))
            stored = dict(row.fetchone())
            conn.close()
            assert {name: stored[name] for name in times} == {
                name: micros(at) for name, at in times.items() if at is not None
            }

            [found] = flow.milestones()
            assert found == milestones(snapshot)
            assert {name: getattr(found, name) for name in times} == times

    def test_columns_are_fields_of_milestones(self) -> None:
        """Every column is a field of Milestones, which the rows are built from by name."""
        from incidentflow._metrics import Milestones

        fields = set(attrs.fields_dict(Milestones))
        assert set(sqlite_rows._MILESTONES) <= fields
        assert fields - set(sqlite_rows._MILESTONES) == {
            "incident_id",
            "severity",
            "state",
            "declared_at",
            "type",
        }


def _vm_steps(store: SQLiteStore, work: Callable[[], object]) -> int:
    """How many hundreds of SQLite VM instructions ``work`` runs on the store's connection."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0  # 0: go on

    store._conn.set_progress_handler(count, 100)
    try:
        work()
    finally:
        store._conn.set_progress_handler(None, 100)
    return steps[0]


def _claim_work(path: Path, *, streams: int, per_stream: int) -> dict[str, int]:
    """The VM steps of a dispatcher's round on an outbox of ``streams`` x ``per_stream`` rows."""
    store = SQLiteStore(path, synchronous="NORMAL")
    try:
        bulk_outbox(path, streams, per_stream)
        store.claim(now=START, limit=1, lease=LEASE, worker="warm-up")
        claimed: list[str] = []
        work = {
            "claim": _vm_steps(
                store,
                lambda: claimed.extend(
                    i.id for i in store.claim(now=START, limit=10, lease=LEASE, worker="w")
                ),
            )
        }
        assert len(claimed) == 10
        store.claim(now=START, limit=streams, lease=LEASE, worker="all")
        work["nothing due"] = _vm_steps(
            store, lambda: store.claim(now=START, limit=10, lease=LEASE, worker="late")
        )
        work["delivered"] = _vm_steps(store, lambda: store.mark_delivered([claimed[0]]))
        return work
    finally:
        store.close()
