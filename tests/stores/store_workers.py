"""Code that runs in worker processes during the reliability tests.

It lives in its own module, importable by name, because multiprocessing's
spawn and forkserver children import the function they run.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from incidentflow import ConcurrencyConflict, IncidentFlow
from incidentflow._events import NoteAdded
from incidentflow.delivery import Deliverer
from incidentflow.notifiers import Notification, Notifier
from incidentflow.stores import JsonlStore, SQLiteStore, Store
from incidentflow.testing.contract import next_commit

# tests/pg.py, when this module runs in a process of its own.
_TESTS = str(Path(__file__).resolve().parent.parent)
if _TESTS not in sys.path:
    sys.path.append(_TESTS)

from pg import POSTGRES_VARIABLE, postgres_dsn  # noqa: E402, F401 - the variable is for callers

#: Every kind of backend the reliability tests run on.
KINDS = ("sqlite", "jsonl", "postgres")

# The schemas this process opened, dropped after each test by drop_postgres_schemas().
_postgres_schemas: set[str] = set()


def open_kind(kind: str, location: Path) -> Store:
    """The store of ``kind`` at ``location``."""
    if kind == "sqlite":
        return SQLiteStore(location / "incidents.db")
    if kind == "jsonl":
        return JsonlStore(location / "incidents")
    if kind == "postgres":
        from incidentflow.stores.postgres import PostgresStore

        dsn = postgres_dsn()
        schema = postgres_schema(location)
        _postgres_schemas.add(schema)
        return PostgresStore(dsn, schema=schema)
    raise ValueError(kind)


def postgres_schema(location: Path) -> str:
    """The throwaway schema of the test whose files are at ``location``.

    Derived from the machine and the folder, so worker processes opening the
    same location find the same schema, and two test runs never share one.
    """
    seed = f"{socket.gethostname()}:{location.resolve()}"
    return "test_" + hashlib.sha256(seed.encode()).hexdigest()[:24]


def drop_postgres_schemas() -> None:
    """Drop the schemas this process's tests opened (nothing to do if none)."""
    if not _postgres_schemas:
        return
    import psycopg

    schemas = sorted(_postgres_schemas)
    _postgres_schemas.clear()
    with psycopg.connect(postgres_dsn(), autocommit=True) as conn:
        conn.execute("SET lock_timeout = '20s'")
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def postgres_connection(**kwargs: Any) -> Any:
    """A plain psycopg connection to the test server (autocommit unless told otherwise)."""
    import psycopg

    kwargs.setdefault("autocommit", True)
    return psycopg.connect(postgres_dsn(), **kwargs)


def add_notes(kind: str, location: Path, incident_id: str, worker: int, count: int) -> None:
    """Add ``count`` notes, retrying each on ConcurrencyConflict; log each committed one."""
    store = open_kind(kind, location)
    flow = IncidentFlow(store)
    with (location / f"worker-{worker}.log").open("a", encoding="utf-8") as log:
        for n in range(count):
            text = f"worker {worker} note {n}"
            while True:
                try:
                    flow.add_note(incident_id, text, actor=f"worker-{worker}")
                    break
                except ConcurrencyConflict:
                    continue
            log.write(text + "\n")
            log.flush()
    store.close()


def write_until_killed(kind: str, location: Path, incident_id: str, seed: int) -> None:
    """Commit forever (notes, large evidence, three-event commits), logging each version.

    A line is written to the log only after its commit returned; the test kills
    this process with SIGKILL at a random moment.
    """
    rng = random.Random(seed)
    store = open_kind(kind, location)
    flow = IncidentFlow(store)
    log_fd = os.open(location / "committed.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    batch = 0
    while True:
        choice = rng.random()
        try:
            if choice < 0.4:
                done = flow.add_note(incident_id, f"note {rng.random()}", actor="writer")
            elif choice < 0.7:
                size = rng.randrange(1_000, 200_000)
                done = flow.add_evidence(
                    incident_id, source="journalctl", content="x" * size, actor="writer"
                )
            else:
                batch += 1
                snapshot = store.load(incident_id)
                parts = [NoteAdded(f"batch {seed}-{batch} part {p}/3") for p in (1, 2, 3)]
                commit = next_commit(snapshot, *parts, actor="writer")
                store.append(commit)
                done = commit.snapshot
        except ConcurrencyConflict:
            continue
        os.write(log_fd, f"{done.version}\n".encode())


def declare_one(kind: str, location: Path, worker: int) -> None:
    """Open a store that may not exist yet and declare one incident in it."""
    store = open_kind(kind, location)
    IncidentFlow(store).declare(
        f"Incident from worker {worker}", severity="P3", commander="carol", actor="carol"
    )
    store.close()


def open_at_once(location: Path, start: Any, worker: int) -> None:
    """Wait for ``start``, then open a store on a schema that may not exist yet, and declare."""
    start.wait(30)
    store = open_kind("postgres", location)
    IncidentFlow(store).declare(
        f"Incident {worker}", severity="P3", commander="carol", actor="carol"
    )
    store.close()


# -- delivery ------------------------------------------------------------------------------


class FileReceiver(Notifier):
    """A receiver that appends each notification's id to a file (fsync'd), then takes a while."""

    name = "receiver"

    def __init__(self, log: Path, delay: float = 0.0) -> None:
        self.log = log
        self.delay = delay

    def notify(self, notification: Notification) -> None:
        """Log the notification id durably, then sleep ``delay`` seconds."""
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{notification.id}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        time.sleep(self.delay)


def deliver_everything(
    kind: str, location: Path, log: Path, worker: str, lease: float, delay: float
) -> None:
    """A delivery loop (one item at a time) until the outbox is empty.

    Uses Deliverer directly: IncidentFlow does not let its caller set the claim lease.
    """
    store = open_kind(kind, location)
    flow = IncidentFlow(store, notifiers=[FileReceiver(log, delay)])
    deliverer = Deliverer(store, flow.router, flow.retry, flow.now, lease=timedelta(seconds=lease))
    deadline = time.monotonic() + 120
    while store.pending(limit=1) and time.monotonic() < deadline:
        deliverer.run(worker, limit=1000, max_in_flight=1)
        time.sleep(0.02)  # items another worker still holds come free when its lease ends
    store.close()


def claim_everything(kind: str, location: Path, start: Any, worker: int) -> None:
    """Wait for ``start``, then claim (never deliver) until nothing is left; log the ids."""
    store = open_kind(kind, location)
    claimed: list[str] = []
    start.wait(30)
    while batch := store.claim(
        now=datetime.now(UTC), limit=3, lease=timedelta(hours=1), worker=f"worker-{worker}"
    ):
        claimed.extend(item.id for item in batch)
    (location / f"claimed-{worker}.log").write_text("".join(f"{i}\n" for i in claimed))
    store.close()


# -- racing keyed commands --------------------------------------------------------------


def declare_keyed(kind: str, location: Path, start: Any, results: Any, worker: int) -> None:
    """Wait for ``start``, then declare with idempotency key K; put what happened in ``results``."""
    from incidentflow.testing import FrozenClock
    from incidentflow.testing.contract import START

    store = open_kind(kind, location)
    flow = IncidentFlow(store, clock=FrozenClock(START))
    start.wait(30)
    try:
        incident = flow.declare(
            "Checkout returns 500",
            severity="P1",
            commander="alice",
            actor="alice",
            idempotency_key="K",
        )
        results.put((worker, "ok", incident))
    except Exception as exc:  # reported to the parent, which names it in its assertion
        results.put((worker, "error", f"{type(exc).__name__}: {exc}"))
    finally:
        store.close()


def append_keyed(kind: str, location: Path, start: Any, results: Any, worker: int) -> None:
    """Wait for ``start``, then append a declaring commit with key K; report the outcome."""
    from incidentflow.testing.contract import declare_commit

    store = open_kind(kind, location)
    start.wait(30)
    try:
        store.append(declare_commit(key="K"))
        results.put((worker, "ok", ""))
    except Exception as exc:  # the parent checks which errors are clean refusals
        results.put((worker, type(exc).__name__, str(exc)))
    finally:
        store.close()
