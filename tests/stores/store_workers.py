"""Code that runs in worker processes during the reliability tests.

It lives in its own module, importable by name, because multiprocessing's
spawn and forkserver children import the function they run.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from incidentflow import ConcurrencyConflict, IncidentFlow
from incidentflow._events import NoteAdded
from incidentflow.stores import JsonlStore, SQLiteStore, Store
from incidentflow.testing.contract import next_commit

#: Every kind of backend the reliability tests run on.
KINDS = ("sqlite", "jsonl")


def open_kind(kind: str, location: Path) -> Store:
    """The store of ``kind`` at ``location``."""
    if kind == "sqlite":
        return SQLiteStore(location / "incidents.db")
    if kind == "jsonl":
        return JsonlStore(location / "incidents")
    raise ValueError(kind)


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
