"""Reliability: several processes at once, kill -9 at random moments, and bad files.

The multi-process tests use multiprocessing's forkserver context (spawn where
there is no forkserver), with incidentflow preloaded so each worker starts fast.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import multiprocessing
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from multiprocessing.context import BaseContext
from pathlib import Path

import pytest
import store_workers
from store_workers import KINDS, open_kind

from incidentflow import IncidentFlow, StoreError
from incidentflow._decide import replay
from incidentflow._events import Event, EvidenceAdded, NoteAdded
from incidentflow.stores import IncidentQuery, JsonlStore, SQLiteStore, Store
from incidentflow.stores.jsonl import _events as jsonl_events
from incidentflow.testing import FrozenClock
from incidentflow.testing.contract import (
    CHECKOUT,
    START,
    announced,
    declare_commit,
    next_commit,
    with_notes,
    write,
)

WORKERS = 4
COMMANDS = 100
KILLS = 8


@pytest.fixture(scope="module")
def context() -> BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["incidentflow", "incidentflow.stores", "store_workers"])
        return ctx
    return multiprocessing.get_context("spawn")


def declare(kind: str, location: Path) -> str:
    store = open_kind(kind, location)
    flow = IncidentFlow(store, clock=FrozenClock(START))
    incident_id = flow.declare(
        "Checkout returns 500", severity="P1", commander="alice", actor="alice"
    ).id
    store.close()
    return incident_id


# -- several processes at once ---------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_four_processes_lose_no_command(kind: str, tmp_path: Path, context: BaseContext) -> None:
    """4 processes × 100 notes on one incident, retrying conflicts: every note exactly once."""
    incident_id = declare(kind, tmp_path)
    workers = [
        context.Process(  # type: ignore[attr-defined]
            target=store_workers.add_notes, args=(kind, tmp_path, incident_id, w, COMMANDS)
        )
        for w in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0, f"worker exited with {worker.exitcode}"

    store = open_kind(kind, tmp_path)
    history = store.history(incident_id)
    assert [e.seq for e in history] == list(range(1, WORKERS * COMMANDS + 2))
    notes = [e.data.text for e in history if isinstance(e.data, NoteAdded)]
    expected = [f"worker {w} note {n}" for w in range(WORKERS) for n in range(COMMANDS)]
    assert sorted(notes) == sorted(expected)
    logged = [
        line
        for w in range(WORKERS)
        for line in (tmp_path / f"worker-{w}.log").read_text(encoding="utf-8").splitlines()
    ]
    assert sorted(logged) == sorted(expected)
    for w in range(WORKERS):  # each worker's notes appear in the order it committed them
        own = [t for t in notes if t.startswith(f"worker {w} ")]
        assert own == [f"worker {w} note {n}" for n in range(COMMANDS)]
    assert replay(history) == store.load(incident_id)
    assert IncidentFlow(store).verify(incident_id)
    store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_processes_create_the_store_together(
    kind: str, tmp_path: Path, context: BaseContext
) -> None:
    """Four processes opening a store that does not exist yet all succeed."""
    if kind == "postgres":
        store_workers.postgres_dsn()  # skips (or fails in CI) here, not in the workers
    workers = [
        context.Process(  # type: ignore[attr-defined]
            target=store_workers.declare_one, args=(kind, tmp_path, w)
        )
        for w in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    store = open_kind(kind, tmp_path)
    titles = sorted(i.title for i in store.list(IncidentQuery()))
    assert titles == [f"Incident from worker {w}" for w in range(WORKERS)]
    store.close()


# -- kill -9 --------------------------------------------------------------------------


def committed_versions(log: Path) -> list[int]:
    if not log.exists():
        return []
    return [int(line) for line in log.read_text(encoding="utf-8").split()]


@pytest.mark.parametrize("kind", KINDS)
def test_kill_9_loses_nothing_committed(kind: str, tmp_path: Path, context: BaseContext) -> None:
    """30 writers killed at random moments: every committed event survives, nothing partial."""
    incident_id = declare(kind, tmp_path)
    rng = random.Random(f"kill-{kind}")
    log = tmp_path / "committed.log"
    for round_ in range(KILLS):
        before = len(committed_versions(log))
        writer = context.Process(  # type: ignore[attr-defined]
            target=store_workers.write_until_killed, args=(kind, tmp_path, incident_id, round_)
        )
        writer.start()
        deadline = time.monotonic() + 30
        while len(committed_versions(log)) <= before and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.025))
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(timeout=30)
        assert writer.exitcode == -signal.SIGKILL, f"round {round_}: the writer was not killed"

        store = open_kind(kind, tmp_path)
        try:
            history = settled_history(store, incident_id)
            versions = committed_versions(log)
            assert len(versions) > before, f"round {round_}: nothing was committed"
            assert [e.seq for e in history] == list(range(1, len(history) + 1))
            assert len(history) >= max(versions), f"round {round_}: a committed event is lost"
            assert_batches_whole(history)
            snapshot = store.load(incident_id)
            assert snapshot.version == len(history)
            assert replay(history) == snapshot
            assert IncidentFlow(store).verify(incident_id)
            for item in store.pending():  # announced events are exactly the committed ones
                assert item.event == history[item.event.seq - 1]
        finally:
            store.close()


def settled_history(store: Store, incident_id: str) -> Sequence[Event]:
    """The history once no killed writer's commit is still landing.

    PostgreSQL finishes a COMMIT that a client sent just before it was killed,
    a moment later, on its own: read until the history and the snapshot agree.
    """
    deadline = time.monotonic() + 5
    while True:
        history = store.history(incident_id)
        version = store.load(incident_id).version
        if version == len(history) == len(store.history(incident_id)):
            return history
        if time.monotonic() > deadline:
            return history  # the assertions below report what is wrong
        time.sleep(0.05)


def assert_batches_whole(history: object) -> None:
    """Every three-event commit is in the history with all three events, together."""
    texts = [
        e.data.text
        for e in history  # type: ignore[attr-defined]
        if isinstance(e.data, NoteAdded) and e.data.text.startswith("batch ")
    ]
    parts: dict[str, list[str]] = {}
    for text in texts:
        match = re.fullmatch(r"batch (\S+) part (\d)/3", text)
        assert match is not None
        parts.setdefault(match[1], []).append(match[2])
    for batch, found in parts.items():
        assert found == ["1", "2", "3"], f"batch {batch} is partial: {found}"


# -- delivery across processes ----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_processes_claiming_at_once_never_share_an_item(
    kind: str, tmp_path: Path, context: BaseContext
) -> None:
    """4 processes claiming the same outbox at once: each stream's head goes to exactly one."""
    store = open_kind(kind, tmp_path)
    incidents = [f"INC-2026-11-27-race-{n}" for n in range(40)]
    for incident_id in incidents:
        announced(store, 2, incident_id, notifiers=("pager",))
    store.close()
    start = context.Event()  # type: ignore[attr-defined]
    workers = [
        context.Process(  # type: ignore[attr-defined]
            target=store_workers.claim_everything, args=(kind, tmp_path, start, w)
        )
        for w in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    claimed = [
        line
        for w in range(WORKERS)
        for line in (tmp_path / f"claimed-{w}.log").read_text().splitlines()
    ]
    assert sorted(claimed) == sorted(f"{i}:1:pager" for i in incidents)


#: How many items a delivery loop with max_in_flight=1 claims, and settles, at once.
BATCH = 4


def received(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_dispatcher_killed_mid_delivery(kind: str, tmp_path: Path, context: BaseContext) -> None:
    """kill -9 of a delivering process: the next one delivers the rest, in order per stream.

    At least once: what the killed process had sent but not yet marked
    delivered may reach the receiver twice, and nothing else does. It delivers
    one item at a time but settles each claimed batch (at most one head per
    stream, ``BATCH`` items) together, so each stream repeats at most one
    notification, and only one of the killed process's last ``BATCH``.
    """
    log = tmp_path / "receiver.log"
    store = open_kind(kind, tmp_path)
    flow = IncidentFlow(store, notifiers=[store_workers.FileReceiver(log)], deliver_inline=False)
    expected: dict[str, list[int]] = {}
    for n in range(4):
        inc = flow.declare(f"Incident {n}", severity="P2", commander="alice", actor="alice")
        for note in range(9):
            flow.add_note(inc.id, f"note {note}", actor="bob")
        expected[inc.id] = list(range(1, 11))
    assert len(store.pending(limit=1000)) == 40
    store.close()

    first = context.Process(  # type: ignore[attr-defined]
        target=store_workers.deliver_everything,
        args=(kind, tmp_path, log, "first", 1.0, 0.05),
    )
    first.start()
    rng = random.Random(f"dispatcher-{kind}")
    threshold = rng.randrange(8, 20)
    deadline = time.monotonic() + 60
    while len(received(log)) < threshold and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 0.05))
    os.kill(first.pid, signal.SIGKILL)
    first.join(timeout=30)
    assert first.exitcode == -signal.SIGKILL
    before = len(received(log))
    assert 0 < before < 40, "the first process was not killed mid-delivery"

    second = context.Process(  # type: ignore[attr-defined]
        target=store_workers.deliver_everything,
        args=(kind, tmp_path, log, "second", 1.0, 0.0),
    )
    second.start()
    second.join(timeout=150)
    assert second.exitcode == 0

    ids = received(log)
    for incident_id, seqs in expected.items():
        got = [int(i.rsplit(":", 1)[1]) for i in ids if i.rsplit(":", 1)[0] == incident_id]
        assert sorted(set(got)) == seqs, f"{incident_id}: not every notification arrived"
        assert got[0] == 1
        for previous, current in itertools.pairwise(got):
            assert current in (previous, previous + 1), f"{incident_id}: out of order: {got}"
        assert len(got) - len(seqs) <= 1, f"{incident_id}: repeated more than once: {got}"
    repeated = {i for i in ids if ids.count(i) > 1}
    assert repeated <= set(ids[:before][-BATCH:]), f"repeats not sent just before the kill: {ids}"
    assert len(ids) == 40 + len(repeated)
    store = open_kind(kind, tmp_path)
    assert store.pending() == []
    assert store.dead_letters() == []
    store.close()


# -- bad input ------------------------------------------------------------------------


def digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes() if path.exists() else b"<missing>")
    return h.hexdigest()


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` read-only (chmod, or chattr +i for root); skip if neither works."""
    folder.chmod(0o555)
    immutable = False
    probe = folder / ".probe"
    try:
        probe.touch()
    except OSError:
        pass
    else:
        probe.unlink()
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
        immutable = done.returncode == 0
        if not immutable:
            folder.chmod(0o755)
            pytest.skip("cannot make a folder read-only here (root without chattr)")
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


class TestSQLiteBadInput:
    def test_file_that_is_not_a_database(self, tmp_path: Path) -> None:
        """Random bytes: StoreError naming the file; the file is left as it was."""
        path = tmp_path / "incidents.db"
        path.write_bytes(os.urandom(8192))
        before = digest(path)
        with pytest.raises(StoreError) as caught:
            SQLiteStore(path)
        assert str(path) in str(caught.value)
        assert "not a database" in str(caught.value)
        assert digest(path) == before

    def test_foreign_sqlite_file(self, tmp_path: Path) -> None:
        """Another program's SQLite file is refused untouched (not even switched to WAL)."""
        path = tmp_path / "app.db"
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
            conn.execute("INSERT INTO users VALUES (1, 'alice')")
            conn.commit()
        before = digest(path)
        with pytest.raises(StoreError, match="not an incidentflow database") as caught:
            SQLiteStore(path)
        assert str(path) in str(caught.value)
        assert digest(path) == before
        assert not Path(f"{path}-wal").exists()

    def test_schema_newer_than_the_code(self, tmp_path: Path) -> None:
        """A database from a newer release is refused with both versions, untouched."""
        path = tmp_path / "incidents.db"
        store = SQLiteStore(path)
        snapshot = with_notes(store, 2)
        store.close()
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("INSERT INTO schema_version VALUES (99, '2030-01-01T00:00:00+00:00')")
            conn.commit()
        before = digest(path)
        with pytest.raises(StoreError, match="schema version 99") as caught:
            SQLiteStore(path)
        assert str(path) in str(caught.value)
        assert "upgrade incidentflow" in str(caught.value)
        assert digest(path) == before
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("DELETE FROM schema_version WHERE version = 99")
            conn.commit()
        reopened = SQLiteStore(path)
        assert reopened.load(CHECKOUT) == snapshot
        reopened.close()

    def test_damaged_pages(self, tmp_path: Path) -> None:
        """A database whose pages were overwritten gives StoreError naming it, not garbage."""
        path = tmp_path / "incidents.db"
        store = SQLiteStore(path)
        with_notes(store, 50)
        store.close()
        data = bytearray(path.read_bytes())
        page = 4096
        for offset in range(page, len(data), page):
            data[offset : offset + page] = os.urandom(page)
        path.write_bytes(bytes(data))

        def read_everything() -> None:
            damaged = SQLiteStore(path)
            try:
                damaged.history(CHECKOUT)
                damaged.load(CHECKOUT)
            finally:
                damaged.close()

        with pytest.raises(StoreError) as caught:
            read_everything()
        assert str(path) in str(caught.value)

    def test_read_only_folder(self, tmp_path: Path) -> None:
        """A database that cannot be created or opened for writing gives StoreError."""
        folder = tmp_path / "ro"
        folder.mkdir()
        with read_only(folder), pytest.raises(StoreError) as caught:
            SQLiteStore(folder / "incidents.db")
        assert str(folder / "incidents.db") in str(caught.value)

    def test_existing_database_in_a_read_only_folder(self, tmp_path: Path) -> None:
        """An existing database in a folder that turned read-only: StoreError, data intact."""
        folder = tmp_path / "ro"
        path = folder / "incidents.db"
        store = SQLiteStore(path)
        snapshot = with_notes(store, 3)
        store.close()
        before = digest(path)

        def write_one() -> None:
            store = SQLiteStore(path)
            try:
                store.append(next_commit(snapshot))
            finally:
                store.close()

        with read_only(folder):
            with pytest.raises(StoreError) as caught:
                write_one()
            assert str(path) in str(caught.value)
            assert digest(path) == before
        reopened = SQLiteStore(path)
        assert reopened.load(CHECKOUT) == snapshot
        reopened.close()

    def test_full_disk(self, tmp_path: Path) -> None:
        """A write that finds the disk full gives StoreError naming the file; nothing changes."""
        path = tmp_path / "incidents.db"
        store = SQLiteStore(path)
        snapshot = with_notes(store, 3)
        history = store.history(CHECKOUT)
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # as if the disk were full
        big = next_commit(snapshot, EvidenceAdded("journalctl", "x" * 1_000_000), outbox=True)
        with pytest.raises(StoreError, match="full") as caught:
            store.append(big)
        assert str(path) in str(caught.value)
        assert store.load(CHECKOUT) == snapshot
        assert store.history(CHECKOUT) == history
        assert store.pending() == []
        store._conn.execute("PRAGMA max_page_count = 1073741823")
        store.append(big)
        store.close()
        reopened = SQLiteStore(path)
        assert reopened.load(CHECKOUT) == big.snapshot
        reopened.close()


class TestJsonlBadInput:
    def test_line_that_is_not_json(self, tmp_path: Path) -> None:
        """A damaged line in the middle gives StoreError naming the file and the line."""
        folder = tmp_path / "incidents"
        store = JsonlStore(folder)
        with_notes(store, 3)
        path = folder / f"{CHECKOUT}.jsonl"
        lines = path.read_bytes().splitlines(keepends=True)
        lines[1] = b"this is not json\n"
        path.write_bytes(b"".join(lines))
        for read in (
            lambda s: s.load(CHECKOUT),
            lambda s: s.history(CHECKOUT),
            lambda s: s.append(declare_commit()),
        ):
            with pytest.raises(StoreError) as caught:
                read(JsonlStore(folder))
            assert f"{path}: line 2 is not JSON" in str(caught.value)
        assert path.read_bytes() == b"".join(lines)

    def test_last_whole_line_that_is_not_json(self, tmp_path: Path) -> None:
        """A whole last line (with its newline) that is not JSON is damage, not a torn write."""
        folder = tmp_path / "incidents"
        with_notes(JsonlStore(folder), 1)
        path = folder / f"{CHECKOUT}.jsonl"
        with path.open("ab") as f:
            f.write(b"{oops}\n")
        with pytest.raises(StoreError, match="line 3 is not JSON"):
            JsonlStore(folder).load(CHECKOUT)

    def test_foreign_jsonl_file(self, tmp_path: Path) -> None:
        """A .jsonl file that is not an incidentflow history is refused, naming it."""
        folder = tmp_path / "incidents"
        JsonlStore(folder)
        path = folder / "INC-2026-11-27-foreign.jsonl"
        path.write_text('{"level": "info", "msg": "hello"}\n', encoding="utf-8")
        with pytest.raises(StoreError, match="line 1 is not an incidentflow event") as caught:
            JsonlStore(folder).load("INC-2026-11-27-foreign")
        assert str(path) in str(caught.value)

    def test_event_of_another_incident(self, tmp_path: Path) -> None:
        """A history holding another incident's events is refused, naming the line."""
        folder = tmp_path / "incidents"
        store = JsonlStore(folder)
        with_notes(store, 1)
        other = folder / "INC-2026-11-27-copy.jsonl"
        other.write_bytes((folder / f"{CHECKOUT}.jsonl").read_bytes())
        with pytest.raises(StoreError, match="does not continue the history"):
            store.load("INC-2026-11-27-copy")

    def test_format_newer_than_the_code(self, tmp_path: Path) -> None:
        """A folder written by a newer release is refused, naming its format file."""
        folder = tmp_path / "incidents"
        JsonlStore(folder)
        marker = folder / ".incidentflow" / "format.json"
        marker.write_text('{"format": 99}', encoding="utf-8")
        with pytest.raises(StoreError, match="format 99") as caught:
            JsonlStore(folder)
        assert str(marker) in str(caught.value)
        marker.write_text("garbage", encoding="utf-8")
        with pytest.raises(StoreError, match="not an incidentflow format marker"):
            JsonlStore(folder)

    def test_read_only_folder(self, tmp_path: Path) -> None:
        """A folder the store cannot write to gives StoreError naming it."""
        folder = tmp_path / "incidents"
        store = JsonlStore(folder)
        snapshot = with_notes(store, 1)
        path = folder / f"{CHECKOUT}.jsonl"
        before = digest(path)
        with read_only(folder), pytest.raises(StoreError) as caught:
            JsonlStore(folder)
        assert str(folder) in str(caught.value)
        assert digest(path) == before
        assert JsonlStore(folder).load(CHECKOUT) == snapshot

    def test_full_disk(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A write that half-succeeds then finds the disk full leaves the history as it was."""
        folder = tmp_path / "incidents"
        store = JsonlStore(folder)
        snapshot = with_notes(store, 2)
        path = folder / f"{CHECKOUT}.jsonl"
        before = path.read_bytes()
        calls = []

        def half_then_full(fd: int, data: memoryview) -> int:
            calls.append(len(data))
            if len(calls) == 1:
                return os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(jsonl_events, "_os_write", half_then_full)
        commit = next_commit(snapshot, NoteAdded("a"), NoteAdded("b"), outbox=True, key="k")
        with pytest.raises(StoreError, match="No space left on device") as caught:
            store.append(commit)
        assert str(path) in str(caught.value)
        assert "free some disk space" in str(caught.value)
        assert path.read_bytes() == before
        assert store.pending() == []
        assert store.idempotency("k") is None
        monkeypatch.undo()
        fresh = JsonlStore(folder)
        assert fresh.load(CHECKOUT) == snapshot
        write(fresh, commit)
        assert JsonlStore(folder).load(CHECKOUT) == commit.snapshot

    def test_sync_failure(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """If the data cannot be made durable, the commit is undone and StoreError raised."""
        folder = tmp_path / "incidents"
        store = JsonlStore(folder)
        snapshot = with_notes(store, 1)
        path = folder / f"{CHECKOUT}.jsonl"
        before = path.read_bytes()

        def failing_sync(fd: int) -> None:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(jsonl_events, "_sync", failing_sync)
        with pytest.raises(StoreError, match="Input/output error"):
            store.append(next_commit(snapshot))
        monkeypatch.undo()
        assert path.read_bytes() == before
        assert JsonlStore(folder).load(CHECKOUT) == snapshot


def test_worker_module_runs_standalone(tmp_path: Path) -> None:
    """The worker module imports cleanly in a fresh interpreter (what spawn does)."""
    here = Path(__file__).resolve().parent
    done = subprocess.run(
        [sys.executable, "-c", "import store_workers; print(store_workers.KINDS)"],
        cwd=here,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
