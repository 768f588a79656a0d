"""PostgresStore passes the store contract, plus what only PostgreSQL does.

These tests need a server: INCIDENTFLOW_TEST_POSTGRES_DSN names it (see
conftest.py). Each test works in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
import store_workers
from store_workers import open_kind, postgres_connection, postgres_dsn, postgres_schema

import pg
from incidentflow import (
    ConcurrencyConflict,
    ConfigError,
    IdempotencyConflict,
    IncidentFlow,
    StoreError,
)
from incidentflow._events import Dismissed, EvidenceAdded, NoteAdded
from incidentflow._model import Severity
from incidentflow.stores import IncidentQuery, Store
from incidentflow.testing import EventStoreContract, OutboxContract, QueryIndexContract
from incidentflow.testing.contract import (
    CHECKOUT,
    START,
    declare_commit,
    next_commit,
    with_notes,
    write,
)

SECRET = "s3cret-Pa55word"


def postgres_module() -> Any:
    postgres_dsn()  # skip (or fail in CI) before importing a driver that may be missing
    from incidentflow.stores import postgres

    return postgres


def postgres_schema_module() -> Any:
    """The module holding the schema version and the migrations (tests pin them)."""
    postgres_dsn()
    from incidentflow.stores.postgres import _schema

    return _schema


class TestPostgresStore(EventStoreContract, OutboxContract, QueryIndexContract):
    """The contract, in a PostgreSQL schema of its own."""

    def make_store(self, tmp_path: Path) -> Store:
        return open_kind("postgres", tmp_path)


@pytest.fixture
def schema(tmp_path: Path) -> str:
    """The test's schema; opening a store through open_kind marks it for dropping."""
    return postgres_schema(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    store = open_kind("postgres", tmp_path)
    yield store
    store.close()


def another(tmp_path: Path, **options: Any) -> Any:
    """A second store on the test's schema, as another host would open it."""
    return postgres_module().PostgresStore(
        postgres_dsn(), schema=postgres_schema(tmp_path), **options
    )


def with_password(dsn: str, **params: Any) -> str:
    """The test DSN with a password (peer and trust logins ignore it) and other changes."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn, password=SECRET, **params)


def claim_plan(store: Any) -> str:
    """PostgreSQL's plan for the store's claim statement, as JSON text (nothing is run)."""
    import psycopg

    params = (START, 10, "planner", START, START)
    with postgres_connection() as conn:
        statement = psycopg.ClientCursor(conn).mogrify(store._sql.claim, params)
        row = conn.execute("EXPLAIN (FORMAT JSON) " + statement).fetchone()
    assert row is not None
    return json.dumps(row[0])


def _scans(plan: str, table: str) -> list[dict[str, Any]]:
    """The sequential scans of ``table`` in a JSON plan."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") == table:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(plan))
    return found


def query(sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run SQL on a connection of its own; the rows it returns, if any."""
    with postgres_connection() as conn:
        cursor = conn.execute(sql, params or None)
        return [] if cursor.description is None else list(cursor.fetchall())


class TestSetup:
    def test_tables_in_a_schema_of_their_own(self, store: Any, schema: str) -> None:
        """The tables live in the store's schema, at the current schema version."""
        tables = query("SELECT tablename FROM pg_tables WHERE schemaname = %s", schema)
        assert sorted(t for (t,) in tables) == [
            "events",
            "idempotency_keys",
            "incident_access",
            "incident_fields",
            "incident_labels",
            "incident_references",
            "incidents",
            "milestones",
            "outbox",
            "schema_version",
            "search",
            "snapshot_lists",
            "snapshots",
        ]
        assert store.schema_version() == postgres_module().SCHEMA_VERSION
        versions = query(f'SELECT version FROM "{schema}".schema_version ORDER BY version')
        assert versions == [(v,) for v in range(1, postgres_module().SCHEMA_VERSION + 1)]

    def test_event_data_and_snapshots_are_jsonb(self, store: Any, schema: str) -> None:
        """Event payloads and snapshots are JSONB, queryable with PostgreSQL's operators."""
        snapshot = write(store, declare_commit())
        write(store, next_commit(snapshot, EvidenceAdded("journalctl", "HTTP 500 on /pay")))
        types = query(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND data_type = 'jsonb' ORDER BY table_name",
            schema,
        )
        assert types == [("events", "data", "jsonb"), ("snapshots", "body", "jsonb")]
        content = query(f"SELECT data->>'content' FROM \"{schema}\".events WHERE seq = 2")
        assert content == [("HTTP 500 on /pay",)]
        title = query(f"SELECT body->>'title' FROM \"{schema}\".snapshots")
        assert title == [("Checkout returns 500",)]

    def test_opened_by_url(self, tmp_path: Path, schema: str) -> None:
        """open_store() and IncidentFlow.open() take postgresql:// and postgres:// URLs."""
        from incidentflow.stores import open_store

        dsn = postgres_dsn()
        if "://" not in dsn:
            pytest.skip("the test DSN is a key=value string, not a URL")
        store_workers._postgres_schemas.add(schema)
        joiner = "&" if "?" in dsn else "?"
        url = f"{dsn}{joiner}schema={schema}&min_size=0&max_size=3"
        store = open_store(url)
        assert type(store).__name__ == "PostgresStore"
        assert (store.schema, store.min_size, store.max_size) == (schema, 0, 3)
        write(store, declare_commit())
        store.close()
        flow = IncidentFlow.open(
            "postgres" + url.removeprefix("postgresql"), incidents_dir=None, knowledge_dir=None
        )
        assert flow.get(CHECKOUT).version == 1
        flow.close()

    def test_forward_migration(
        self, store: Any, tmp_path: Path, schema: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A schema at an older version is migrated forward on open, keeping its data."""
        snapshot = with_notes(store, 2)
        store.close()
        module = postgres_schema_module()
        newer = (*module._MIGRATIONS, ("ALTER TABLE {s}.incidents ADD COLUMN team text",))
        monkeypatch.setattr(module, "_MIGRATIONS", newer)
        monkeypatch.setattr(module, "SCHEMA_VERSION", len(newer))
        migrated = another(tmp_path)
        assert migrated.schema_version() == len(newer)
        assert migrated.load(CHECKOUT) == snapshot
        columns = query(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'incidents'",
            schema,
        )
        assert ("team",) in columns
        migrated.close()

    def test_schema_newer_than_the_code(self, store: Any, tmp_path: Path, schema: str) -> None:
        """A schema from a newer release is refused with both versions, and left alone."""
        snapshot = with_notes(store, 1)
        store.close()
        query(f'INSERT INTO "{schema}".schema_version (version) VALUES (99) RETURNING version')
        with pytest.raises(StoreError, match="schema has version 99") as caught:
            another(tmp_path)
        assert "upgrade incidentflow" in str(caught.value)
        assert schema in str(caught.value)
        query(f'DELETE FROM "{schema}".schema_version WHERE version = 99 RETURNING version')
        reopened = another(tmp_path)
        assert reopened.load(CHECKOUT) == snapshot
        reopened.close()

    def test_foreign_schema_is_refused_untouched(self, tmp_path: Path, schema: str) -> None:
        """A schema holding another program's tables is refused; nothing is created in it."""
        store_workers._postgres_schemas.add(schema)
        query(f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}".users (id int) ')
        with pytest.raises(StoreError, match="not an incidentflow schema") as caught:
            another(tmp_path)
        assert "users" in str(caught.value)
        tables = query("SELECT tablename FROM pg_tables WHERE schemaname = %s", schema)
        assert tables == [("users",)]

    def test_foreign_schema_version_table_is_refused(self, tmp_path: Path, schema: str) -> None:
        """Another tool's schema_version table (Flyway had one) is not mistaken for ours."""
        store_workers._postgres_schemas.add(schema)
        query(f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}".schema_version (v text)')
        with pytest.raises(StoreError, match="not an incidentflow schema"):
            another(tmp_path)

    def test_bad_options(self) -> None:
        """Malformed schema names, pool sizes and URLs are configuration errors."""
        module = postgres_module()
        dsn = postgres_dsn()
        for options, key in [
            ({"schema": "Bad-Name"}, "schema"),
            ({"schema": 'x"; DROP TABLE y; --'}, "schema"),
            ({"max_size": 0}, "max_size"),
            ({"min_size": 5, "max_size": 2}, "max_size"),
            ({"min_size": -1}, "min_size"),
            ({"timeout": 0}, "timeout"),
        ]:
            with pytest.raises(ConfigError) as caught:
                module.PostgresStore(dsn, **options)
            assert caught.value.key == key
        with pytest.raises(ConfigError, match="postgresql://"):
            module.PostgresStore("mysql://localhost/db")
        with pytest.raises(ConfigError, match="max_size"):
            module.PostgresStore("postgresql:///db?max_size=many")

    def test_closed_store_refuses_work(self, store: Any) -> None:
        """A closed store raises StoreError saying so; closing again is harmless."""
        store.close()
        with pytest.raises(StoreError, match="closed"):
            store.load(CHECKOUT)
        store.close()


class TestPayloads:
    AWKWARD = "nul\x00here, mark\U0010ffffthere, both\U0010ffff0\x001 end"

    def test_nul_and_the_escape_mark_round_trip(self, store: Any, tmp_path: Path) -> None:
        """NUL (which PostgreSQL text refuses) and U+10FFFF come back unchanged everywhere."""
        text = self.AWKWARD
        declared = declare_commit(title=f"Title {text}", commander=f"Zoë {text}")
        store.append(declared)
        noted = next_commit(
            declared.snapshot,
            NoteAdded(text),
            EvidenceAdded(f"src {text}", text),
            actor=f"actor {text}",
            key=f"key {text}",
        )
        assert noted.idempotency is not None
        noted = attrs.evolve(
            noted, idempotency=attrs.evolve(noted.idempotency, fingerprint=f"fp {text}")
        )
        store.append(noted)
        cold = another(tmp_path, cache_size=0)
        try:
            for reader in (store, cold):
                assert reader.load(CHECKOUT) == noted.snapshot
                assert tuple(reader.history(CHECKOUT)) == declared.events + noted.events
                assert reader.idempotency(f"key {text}") == noted.idempotency
                found = reader.list(IncidentQuery(commander=f"Zoë {text}"))
                assert list(found) == [noted.snapshot]
        finally:
            cold.close()

    def test_title_search_is_exact_around_nul(self, store: Any) -> None:
        """Searching titles with NUL or the escape mark matches exactly what Python would."""
        write(store, declare_commit(title="a\x00b \U0010ffff end"))
        for text, found in [
            ("\x00b", 1),
            ("A\x00B", 1),
            ("0", 0),
            ("1", 0),
            ("\U0010ffff", 1),
            ("\U0010ffff0", 0),
            ("", 1),
        ]:
            assert len(store.list(IncidentQuery(text=text))) == found, repr(text)

    def test_one_megabyte_of_evidence_in_jsonb(self, store: Any, tmp_path: Path) -> None:
        """A 1,000,000-character evidence item is stored whole as JSONB and read back cold."""
        content = ("journalctl: ünïcödé ✓ line\n" * 40_000)[:1_000_000]
        snapshot = write(store, declare_commit())
        after = write(store, next_commit(snapshot, EvidenceAdded("journalctl", content)))
        schema = postgres_schema(tmp_path)
        (length,) = query(
            f"SELECT char_length(data->>'content') FROM \"{schema}\".events WHERE seq = 2"
        )
        assert length == (1_000_000,)
        cold = another(tmp_path, cache_size=0)
        assert cold.load(CHECKOUT) == after
        assert cold.history(CHECKOUT, after=1)[0].data == EvidenceAdded("journalctl", content)
        cold.close()


class TestSnapshots:
    def test_checkpoint_is_not_rewritten_on_every_command(self, store: Any, schema: str) -> None:
        """The full snapshot is stored now and then; the row with the indexed columns always."""
        with_notes(store, 100)
        ((stored, current),) = query(
            f'SELECT s.version, i.version FROM "{schema}".snapshots s '
            f'JOIN "{schema}".incidents i ON i.id = s.incident_id'
        )
        assert current == 101
        assert stored < current

    def test_cold_store_folds_the_tail(self, store: Any, tmp_path: Path) -> None:
        """A store with no cache builds snapshots from the checkpoint and later events."""
        snapshot = with_notes(store, 100)
        other = with_notes(store, 37, "INC-2026-11-27-other")
        cold = another(tmp_path, cache_size=0)
        assert cold.load(CHECKOUT) == snapshot
        assert set(cold.list(IncidentQuery())) == {snapshot, other}
        cold.close()

    def test_stale_cache_catches_up(self, store: Any, tmp_path: Path) -> None:
        """A store whose cached snapshot is behind reads only the newer events."""
        first = with_notes(store, 3)
        other = another(tmp_path)
        assert other.load(CHECKOUT) == first
        for n in range(40):
            store.append(next_commit(store.load(CHECKOUT), NoteAdded(f"more {n}")))
        assert other.list(IncidentQuery()) == [store.load(CHECKOUT)]
        assert other.load(CHECKOUT) == store.load(CHECKOUT)
        other.append(next_commit(other.load(CHECKOUT)))
        assert store.load(CHECKOUT).version == 45
        other.close()

    def test_uncached_writer_keeps_list_and_checkpoints_right(
        self, store: Any, tmp_path: Path, schema: str
    ) -> None:
        """A store that never loaded the incident writes its new state and a checkpoint."""
        writer = another(tmp_path, cache_size=0)
        snapshot = with_notes(store, 20)
        dismissed = write(writer, next_commit(snapshot, Dismissed("false alarm")))
        assert writer.list(IncidentQuery(open_only=True)) == []
        assert store.list(IncidentQuery(severities=frozenset({Severity.P1}))) == [dismissed]
        stored = query(f'SELECT version FROM "{schema}".snapshots')
        assert stored == [(dismissed.version,)]  # a change of state writes the checkpoint
        writer.close()


class TestConcurrency:
    def test_key_committed_by_a_racing_command(self, store: Any) -> None:
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
        assert store.history(other.incident_id)[-1].seq == 1

    def test_commit_with_a_gap_is_refused(self, store: Any) -> None:
        """Events that do not continue the history are refused before anything is written."""
        declared = declare_commit()
        store.append(declared)
        skipping = next_commit(next_commit(declared.snapshot).snapshot)
        with pytest.raises(StoreError, match="does not follow"):
            store.append(attrs.evolve(skipping, expected_version=1))
        assert store.load(CHECKOUT).version == 1

    def test_flow_on_two_hosts_conflicts_and_retries(self, tmp_path: Path) -> None:
        """Two flows on two pools: the stale one raises and succeeds once reloaded."""
        first = IncidentFlow(open_kind("postgres", tmp_path))
        second = IncidentFlow(another(tmp_path))
        inc = first.declare("Checkout returns 500", severity="P1", commander="a", actor="a")
        second.add_note(inc.id, "from the second host", actor="b")
        with pytest.raises(ConcurrencyConflict):
            first.add_note(inc.id, "decided on version 1", actor="a", expected_version=1)
        first.add_note(inc.id, "decided again", actor="a")
        assert [e.seq for e in second.history(inc.id)] == [1, 2, 3]
        assert second.verify(inc.id)
        first.close()
        second.close()

    def test_write_waits_for_a_row_lock_then_conflicts(self, store: Any, schema: str) -> None:
        """A commit racing an open transaction on the same incident waits, then conflicts."""
        first = write(store, declare_commit())
        blocker = postgres_connection(autocommit=False)
        blocker.execute(
            f'UPDATE "{schema}".incidents SET version = version + 1 WHERE id = %s', (CHECKOUT,)
        )
        writer = threading.Thread(target=write, args=(store, next_commit(first)))
        writer.start()
        deadline = time.monotonic() + 30
        while not _waiting_for_a_lock(schema) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _waiting_for_a_lock(schema), "the commit did not wait for the row lock"
        blocker.rollback()  # the waiting commit goes on and succeeds
        writer.join(timeout=30)
        assert store.load(CHECKOUT).version == 2
        blocker.execute(
            f'UPDATE "{schema}".incidents SET version = version + 1 WHERE id = %s', (CHECKOUT,)
        )
        committer = threading.Timer(0.3, blocker.commit)
        committer.start()
        try:
            with pytest.raises(ConcurrencyConflict) as caught:
                store.append(next_commit(store.load(CHECKOUT)))  # loaded before the commit
            assert caught.value.actual == 3
        finally:
            committer.join(timeout=30)  # never close the connection under its commit
            blocker.close()

    def test_processes_migrate_once(self, tmp_path: Path, schema: str) -> None:
        """Eight processes opening a new schema at the same moment: all succeed, one migrates."""
        postgres_dsn()
        store_workers._postgres_schemas.add(schema)
        context = multiprocessing.get_context("spawn")
        start = context.Event()
        workers = [
            context.Process(target=store_workers.open_at_once, args=(tmp_path, start, w))
            for w in range(8)
        ]
        for worker in workers:
            worker.start()
        time.sleep(0.5)
        start.set()
        for worker in workers:
            worker.join(timeout=60)
            assert worker.exitcode == 0
        versions = query(f'SELECT version FROM "{schema}".schema_version ORDER BY version')
        assert versions == [(v,) for v in range(1, postgres_module().SCHEMA_VERSION + 1)]
        store = open_kind("postgres", tmp_path)
        assert len(store.list(IncidentQuery())) == 8
        store.close()

    @pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with pool threads
    def test_forked_child_gets_connections_of_its_own(self, store: Any) -> None:
        """A store used across fork(): the child opens its own pool; the parent's still works."""
        snapshot = write(store, declare_commit())
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports by its exit code
            code = 1
            try:
                store.append(next_commit(snapshot, NoteAdded("from the child")))
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.load(CHECKOUT).notes[-1].text == "from the child"
        write(store, next_commit(store.load(CHECKOUT), NoteAdded("from the parent")))
        assert [e.seq for e in store.history(CHECKOUT)] == [1, 2, 3]


class TestOutbox:
    """The outbox as delivery workers on several hosts share it."""

    T = START + timedelta(hours=1)
    LEASE = timedelta(minutes=1)

    @pytest.fixture
    def heads(self, store: Any) -> list[str]:
        """Six incidents with two undelivered items each; the ids of the six heads."""
        found = []
        for n in range(6):
            incident_id = f"INC-2026-11-27-stream-{n}"
            snapshot = write(store, declare_commit(incident_id, outbox=True))
            write(store, next_commit(snapshot, NoteAdded("second"), outbox=True))
            found.append(f"{incident_id}:1")
        return found

    def claim(self, store: Any, worker: str, limit: int = 10, **later: float) -> list[str]:
        now = self.T + timedelta(**later)
        return [i.id for i in store.claim(now=now, limit=limit, lease=self.LEASE, worker=worker)]

    def test_claim_takes_the_heads_oldest_first(self, store: Any, heads: list[str]) -> None:
        """Only each stream's oldest item is claimable; claimed ones are not handed out again."""
        claimed = store.claim(now=self.T, limit=10, lease=self.LEASE, worker="host-a")
        assert [i.id for i in claimed] == heads
        assert claimed[0].event == store.history("INC-2026-11-27-stream-0")[0]
        assert self.claim(store, "host-b") == []
        assert len(store.pending()) == 12  # claimed items are still pending

    def test_claims_by_two_hosts_are_disjoint(
        self, store: Any, tmp_path: Path, heads: list[str]
    ) -> None:
        """Two stores claiming get different heads; together, all of them."""
        other = another(tmp_path)
        first = self.claim(store, "host-a", limit=4)
        second = self.claim(other, "host-b", limit=4)
        assert first == heads[:4]
        assert second == heads[4:]
        other.close()

    def test_claim_skips_locked_rows_without_waiting(
        self, store: Any, schema: str, heads: list[str]
    ) -> None:
        """A claim never waits for another worker's transaction: it takes the other heads."""
        with postgres_connection(autocommit=False) as holder:
            holder.execute(
                f'SELECT id FROM "{schema}".outbox WHERE id = %s FOR UPDATE', (heads[0],)
            )
            # SKIP LOCKED: the claim returns while the lock is held; waiting would hang here.
            claimed = self.claim(store, "host-a")
            holder.rollback()
        assert claimed == heads[1:]
        assert self.claim(store, "host-b") == heads[:1]

    def test_delivered_head_lets_the_stream_go_on(self, store: Any, heads: list[str]) -> None:
        """Once a head is delivered, the next item of its stream is the head."""
        self.claim(store, "host-a")
        store.mark_delivered([heads[2], "INC-unknown:1"])
        assert self.claim(store, "host-b") == ["INC-2026-11-27-stream-2:2"]

    def test_lease_ends(self, store: Any, heads: list[str]) -> None:
        """An item whose worker never reported back is claimable again once its lease ends."""
        assert self.claim(store, "host-a", limit=2) == heads[:2]
        assert self.claim(store, "host-b", seconds=59) == heads[2:]
        assert self.claim(store, "host-c", seconds=61) == heads[:2]

    def test_failures_retry_then_dead_letter_then_redrive(
        self, store: Any, heads: list[str]
    ) -> None:
        """A failed item waits for its retry; a dead one lets its stream go on until re-driven."""
        self.claim(store, "host-a", limit=1)
        retry = self.T + timedelta(minutes=5)
        store.mark_failed(heads[0], error="HTTP 503 \x00", next_attempt_at=retry, dead=False)
        assert self.claim(store, "host-b", limit=1, minutes=4) == [heads[1]]
        stream = "INC-2026-11-27-stream-0"
        (again,) = store.claim(
            now=retry, limit=1, lease=self.LEASE, worker="host-a", incident_id=stream
        )
        assert (again.id, again.attempts, again.last_error) == (heads[0], 1, "HTTP 503 \x00")
        assert again.next_attempt_at == retry
        store.mark_failed(heads[0], error="HTTP 400", next_attempt_at=retry, dead=True)
        assert [i.id for i in store.dead_letters()] == [heads[0]]
        assert heads[0] not in [i.id for i in store.pending()]
        assert f"{stream}:2" in self.claim(store, "host-b", minutes=10)
        assert store.redrive([heads[0], heads[0], "INC-unknown:1"]) == 1
        assert store.dead_letters() == []
        (back,) = [i for i in store.pending() if i.id == heads[0]]
        assert (back.attempts, back.next_attempt_at, back.dead) == (0, None, False)

    def test_workers_on_four_hosts_deliver_everything_once_in_order(
        self, tmp_path: Path, heads: list[str]
    ) -> None:
        """Four workers on four stores, claiming at once, deliver each item once, in order."""
        store = open_kind("postgres", tmp_path)
        for n in range(6):
            snapshot = store.load(f"INC-2026-11-27-stream-{n}")
            for m in range(15):
                snapshot = write(store, next_commit(snapshot, NoteAdded(f"m{m}"), outbox=True))
        delivered: list[tuple[str, int]] = []
        lock = threading.Lock()

        def deliver(worker: int) -> None:
            mine = another(tmp_path)
            idle = 0
            while idle < 3:
                claimed = mine.claim(
                    now=self.T, limit=2, lease=timedelta(hours=1), worker=f"w{worker}"
                )
                idle = 0 if claimed else idle + 1
                with lock:
                    delivered.extend((i.event.incident_id, i.event.seq) for i in claimed)
                    mine.mark_delivered(i.id for i in claimed)
            mine.close()

        threads = [threading.Thread(target=deliver, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(delivered) == len(set(delivered)) == 6 * 17
        for n in range(6):
            seqs = [seq for i, seq in delivered if i == f"INC-2026-11-27-stream-{n}"]
            assert seqs == list(range(1, 18))
        assert store.pending() == []
        store.close()

    def test_delivering_while_commands_add_items_strands_nothing(self, tmp_path: Path) -> None:
        """Workers delivering while other hosts commit: every item once, in order, none stuck."""
        writer_store = open_kind("postgres", tmp_path)
        incidents = [f"INC-2026-11-27-busy-{n}" for n in range(3)]
        snapshots = {i: write(writer_store, declare_commit(i, outbox=True)) for i in incidents}
        delivered: list[tuple[str, int]] = []
        lock = threading.Lock()
        writing = threading.Event()
        writing.set()

        def write_notes() -> None:
            for n in range(40):
                for incident_id in incidents:
                    commit = next_commit(snapshots[incident_id], NoteAdded(f"n{n}"), outbox=True)
                    snapshots[incident_id] = write(writer_store, commit)
            writing.clear()

        deadline = time.monotonic() + 60  # a stream left without a head would never end

        def deliver(worker: int) -> None:
            mine = another(tmp_path)
            while time.monotonic() < deadline:
                claimed = mine.claim(
                    now=self.T, limit=2, lease=timedelta(hours=1), worker=f"w{worker}"
                )
                with lock:
                    delivered.extend((i.event.incident_id, i.event.seq) for i in claimed)
                mine.mark_delivered(i.id for i in claimed)
                if not claimed and not writing.is_set() and not mine.pending():
                    break
            mine.close()

        threads = [threading.Thread(target=write_notes)]
        threads += [threading.Thread(target=deliver, args=(w,)) for w in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(delivered) == len(set(delivered)) == 3 * 41
        for incident_id in incidents:
            assert [seq for i, seq in delivered if i == incident_id] == list(range(1, 42))
        writer_store.close()

    def test_each_stream_has_one_head_its_oldest_live_item(
        self, store: Any, schema: str, heads: list[str]
    ) -> None:
        """After deliveries, deaths and re-drives, each stream's head is its oldest live item."""
        snapshot = store.load("INC-2026-11-27-stream-0")
        write(store, next_commit(snapshot, NoteAdded("third"), NoteAdded("fourth"), outbox=True))
        self.claim(store, "host-a")
        store.mark_failed(heads[0], error="x", next_attempt_at=self.T, dead=True)
        store.mark_delivered(["INC-2026-11-27-stream-0:2", heads[1]])
        store.mark_failed(heads[2], error="x", next_attempt_at=self.T, dead=True)
        store.mark_failed("INC-2026-11-27-stream-2:2", error="x", next_attempt_at=self.T, dead=True)
        store.redrive([heads[0], "INC-2026-11-27-stream-2:2"])
        wrong = query(
            f'SELECT incident_id, seq, head FROM "{schema}".outbox o WHERE NOT dead AND head <> '
            f'NOT EXISTS (SELECT 1 FROM "{schema}".outbox p WHERE p.incident_id = o.incident_id '
            "AND p.notifier = o.notifier AND NOT p.dead AND p.seq < o.seq)"
        )
        assert wrong == []
        assert query(f'SELECT count(*) FROM "{schema}".outbox WHERE head AND dead') == [(0,)]
        assert "INC-2026-11-27-stream-0:1" in self.claim(store, "host-b", hours=1)

    def test_claim_stays_fast_with_100000_rows(self, store: Any, schema: str) -> None:
        """100,000 waiting rows in 1,000 streams: claiming reads the heads' index, not the rows."""
        rows = [
            (f"INC-2026-11-27-bulk-{n:04d}", seq) for n in range(1_000) for seq in range(1, 101)
        ]
        with postgres_connection() as conn, conn.transaction():
            columns = "incident_id, seq, type, at, actor, data, schema_version"
            with conn.cursor().copy(f'COPY "{schema}".events ({columns}) FROM STDIN') as copy:
                for incident_id, seq in rows:
                    copy.write_row(
                        (incident_id, seq, "note_added", START, "bob", '{"text":"x"}', 1)
                    )
            columns = "id, incident_id, seq, notifier, head"
            with conn.cursor().copy(f'COPY "{schema}".outbox ({columns}) FROM STDIN') as copy:
                for incident_id, seq in rows:
                    copy.write_row(
                        (f"{incident_id}:{seq}:pager", incident_id, seq, "pager", seq == 1)
                    )
        query(f'ANALYZE "{schema}".outbox')
        plan = claim_plan(store)
        assert "outbox_due_heads" in plan, plan  # the heads' partial index, not the rows
        assert not _scans(plan, "outbox"), plan
        claimed = []
        for n in range(30):
            claimed += self.claim(store, f"w{n}", limit=10)
        assert len(set(claimed)) == 300
        assert all(i.endswith(":1:pager") for i in claimed)
        self.claim(store, "all", limit=1_000)
        assert self.claim(store, "late") == []
        store.mark_delivered([claimed[0]])
        assert self.claim(store, "w") == [claimed[0].replace(":1:", ":2:")]

    def test_claim_finds_heads_behind_a_deep_backlog(self, store: Any) -> None:
        """A stream with thousands of waiting items does not slow down claiming the others."""
        stuck = write(store, declare_commit("INC-2026-11-27-stuck", outbox=True))
        for n in range(50):
            data = [NoteAdded(f"{n}-{k}") for k in range(40)]
            stuck = write(store, next_commit(stuck, *data, outbox=True))
        store.mark_failed(
            "INC-2026-11-27-stuck:1",
            error="down",
            next_attempt_at=self.T + timedelta(days=1),
            dead=False,
        )
        write(store, declare_commit("INC-2026-11-27-fresh", outbox=True))
        with postgres_connection() as conn:
            conn.execute(f'ANALYZE "{store.schema}".outbox')
        assert not _scans(claim_plan(store), "outbox")
        assert self.claim(store, "host-a") == ["INC-2026-11-27-fresh:1"]


class TestErrors:
    def test_malformed_dsn(self) -> None:
        """A DSN libpq cannot parse is a ConfigError that does not repeat the password."""
        module = postgres_module()
        for dsn in (
            f"host=localhost password={SECRET} dbname",
            f"postgresql://alice:{SECRET}@localhost/db?no_such_option=1",
            "",
        ):
            with pytest.raises(ConfigError) as caught:
                module.PostgresStore(dsn)
            assert SECRET not in str(caught.value)
            assert caught.value.__cause__ is None or SECRET not in str(caught.value.__cause__)

    def test_unreachable_port(self) -> None:
        """Nothing listening: StoreError naming the host and port, not the password."""
        module = postgres_module()
        with pytest.raises(StoreError) as caught:
            module.PostgresStore(f"postgresql://alice:{SECRET}@127.0.0.1:9/incidents")
        message = str(caught.value)
        assert "127.0.0.1:9/incidents" in message
        assert "is the server running" in message
        assert SECRET not in message
        assert SECRET not in repr(caught.value.__cause__)

    def test_wrong_database(self) -> None:
        """A database that does not exist: StoreError naming it, with a hint."""
        module = postgres_module()
        dsn = with_password(postgres_dsn(), dbname="incidentflow_no_such_database")
        with pytest.raises(StoreError) as caught:
            module.PostgresStore(dsn)
        message = str(caught.value)
        assert "incidentflow_no_such_database" in message
        assert "create the database" in message
        assert SECRET not in message

    def test_wrong_user(self) -> None:
        """A role that does not exist: StoreError naming it, with a hint."""
        module = postgres_module()
        dsn = with_password(postgres_dsn(), user="incidentflow_no_such_role")
        with pytest.raises(StoreError) as caught:
            module.PostgresStore(dsn)
        assert "incidentflow_no_such_role" in str(caught.value)
        assert SECRET not in str(caught.value)

    def test_password_never_shown(self, tmp_path: Path, schema: str) -> None:
        """A working store's repr, description and error messages never show the password."""
        module = postgres_module()
        store_workers._postgres_schemas.add(schema)
        store = module.PostgresStore(with_password(postgres_dsn()), schema=schema)
        write(store, declare_commit())
        assert SECRET not in repr(store)
        assert SECRET not in store.where
        query(f'DROP TABLE "{schema}".events')
        with pytest.raises(StoreError) as caught:
            store.history(CHECKOUT)
        assert SECRET not in str(caught.value)
        assert schema in str(caught.value)
        store.close()

    def test_driver_errors_become_store_errors(self, store: Any, schema: str) -> None:
        """A failure inside PostgreSQL is a StoreError with the driver's error as its cause."""
        import psycopg

        snapshot = write(store, declare_commit())
        query(
            f"ALTER TABLE \"{schema}\".events ADD CONSTRAINT no_notes CHECK (type <> 'note_added')"
        )
        with pytest.raises(StoreError, match="no_notes") as caught:
            store.append(next_commit(snapshot, outbox=True, key="k"))
        assert isinstance(caught.value.__cause__, psycopg.Error)
        assert f"cannot append to {CHECKOUT}" in str(caught.value)
        assert store.load(CHECKOUT) == snapshot
        assert store.pending() == []
        assert store.idempotency("k") is None

    def test_reads_survive_a_dropped_connection(self, tmp_path: Path) -> None:
        """A connection the server closed (restart, failover) is replaced on the next read."""
        from psycopg.conninfo import make_conninfo

        name = f"incidentflow-kill-test-{uuid.uuid4().hex[:12]}"  # never another run's
        dsn = make_conninfo(postgres_dsn(), application_name=name)
        module = postgres_module()
        store_workers._postgres_schemas.add(postgres_schema(tmp_path))
        store = module.PostgresStore(dsn, schema=postgres_schema(tmp_path))
        snapshot = write(store, declare_commit())
        killed = query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            name,
        )
        assert killed
        assert store.load(CHECKOUT) == snapshot
        store.close()


class TestHowTestsFindPostgres:
    """The PostgreSQL tests skip on a developer's machine without a server, and fail in CI."""

    @pytest.fixture(autouse=True)
    def _fresh(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(pg, "_answers", {})

    def test_skip_without_the_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Unset and not in CI: skipped, with how to enable the tests."""
        monkeypatch.delenv(pg.POSTGRES_VARIABLE, raising=False)
        monkeypatch.delenv("CI", raising=False)
        with pytest.raises(pytest.skip.Exception) as caught:
            pg.postgres_dsn()
        assert f"set {pg.POSTGRES_VARIABLE}" in str(caught.value)

    def test_fail_without_the_variable_in_ci(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Unset under CI=true: a failure saying PostgreSQL is required in CI."""
        monkeypatch.delenv(pg.POSTGRES_VARIABLE, raising=False)
        monkeypatch.setenv("CI", "true")
        with pytest.raises(pytest.fail.Exception, match="PostgreSQL is required in CI"):
            pg.postgres_dsn()

    def test_fail_when_unreachable_in_ci(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Set but unreachable under CI=true: a failure, naming the problem."""
        pytest.importorskip("psycopg")
        monkeypatch.setenv(pg.POSTGRES_VARIABLE, "postgresql://nobody@127.0.0.1:9/x")
        monkeypatch.setenv("CI", "true")
        with pytest.raises(pytest.fail.Exception, match="cannot be reached"):
            pg.postgres_dsn()
        monkeypatch.delenv("CI")
        with pytest.raises(pytest.skip.Exception, match="cannot be reached"):
            pg.postgres_dsn()


def _waiting_for_a_lock(schema: str) -> bool:
    """True when a session of this test's store waits for a lock (pg_stat_activity)."""
    rows = query(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND application_name = 'incidentflow' AND query LIKE %s",
        f"%{schema}%",
    )
    return bool(rows[0][0])
