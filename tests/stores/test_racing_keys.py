"""Eight callers race one keyed command: the store keeps one result, the flow returns it.

The store's side: the idempotency record is written in the same transaction as
the events, and a second commit with the same key writes nothing and is refused
with IdempotencyConflict, DuplicateIncident or ConcurrencyConflict. The flow's
side: a keyed ``declare`` that loses the race looks the key up again and returns
the first result, so all eight callers get the same incident.

JSON Lines, SQLite and PostgreSQL race in eight processes; the memory store,
which lives in one process, races eight threads.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

import pytest
import store_workers
from store_workers import KINDS, open_kind

from incidentflow import IncidentFlow
from incidentflow.stores import MemoryStore
from incidentflow.testing import FrozenClock
from incidentflow.testing.contract import CHECKOUT, START, declare_commit

RACERS = 8

#: The refusals that leave nothing written and tell the loser to look again.
CLEAN_REFUSALS = {"IdempotencyConflict", "DuplicateIncident", "ConcurrencyConflict"}


@pytest.fixture(scope="module")
def context() -> BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["incidentflow", "incidentflow.stores", "store_workers"])
        return ctx
    return multiprocessing.get_context("spawn")


def race(context: BaseContext, target: Any, kind: str, location: Path) -> list[tuple[Any, ...]]:
    """Run ``target`` in RACERS processes released at one moment; their reports."""
    open_kind(kind, location).close()  # the store exists before the race: only commits race
    start = context.Event()  # type: ignore[attr-defined]
    results = context.Queue()  # type: ignore[attr-defined]
    workers = [
        context.Process(  # type: ignore[attr-defined]
            target=target, args=(kind, location, start, results, n)
        )
        for n in range(RACERS)
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.5)  # let every process get to the start line; correctness does not depend on it
    start.set()
    reports = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return sorted(reports, key=lambda report: report[0])


@pytest.mark.parametrize("kind", KINDS)
def test_racing_commits_with_one_key_write_one(
    kind: str, tmp_path: Path, context: BaseContext
) -> None:
    """Eight processes append a commit with key K: one is written whole, the others nothing."""
    reports = race(context, store_workers.append_keyed, kind, tmp_path)
    outcomes = [report[1] for report in reports]
    assert outcomes.count("ok") == 1, reports
    assert set(outcomes) - {"ok"} <= CLEAN_REFUSALS, reports
    store = open_kind(kind, tmp_path)
    try:
        assert [event.seq for event in store.history(CHECKOUT)] == [1]
        record = store.idempotency("K")
        assert record is not None
        assert (record.incident_id, record.version) == (CHECKOUT, 1)
    finally:
        store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_racing_keyed_declares_all_get_the_first_result(
    kind: str, tmp_path: Path, context: BaseContext
) -> None:
    """Eight processes declare with key K at once: every one gets the same incident back."""
    reports = race(context, store_workers.declare_keyed, kind, tmp_path)
    assert [report[1] for report in reports] == ["ok"] * RACERS, reports
    incidents = {report[2] for report in reports}
    assert len(incidents) == 1, reports
    store = open_kind(kind, tmp_path)
    try:
        assert [event.seq for event in store.history(CHECKOUT)] == [1]
        assert store.load(CHECKOUT) == incidents.pop()
    finally:
        store.close()


class TestMemoryStoreThreads:
    """The memory store lives in one process: eight threads race instead."""

    def run(self, work: Any) -> list[tuple[str, Any]]:
        start = threading.Barrier(RACERS)
        results: queue.Queue[tuple[str, Any]] = queue.Queue()

        def racer() -> None:
            start.wait(30)
            try:
                results.put(("ok", work()))
            except Exception as exc:  # the test checks which errors are clean refusals
                results.put((type(exc).__name__, exc))

        threads = [threading.Thread(target=racer) for _ in range(RACERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return [results.get_nowait() for _ in threads]

    def test_racing_commits_with_one_key_write_one(self) -> None:
        """Eight threads append a commit with key K: one is written, the others refused."""
        store = MemoryStore()
        outcomes = [
            outcome for outcome, _ in self.run(lambda: store.append(declare_commit(key="K")))
        ]
        assert outcomes.count("ok") == 1
        assert set(outcomes) - {"ok"} <= CLEAN_REFUSALS
        assert [event.seq for event in store.history(CHECKOUT)] == [1]

    def test_racing_keyed_declares_all_get_the_first_result(self) -> None:
        """Eight threads declare with key K at once: every one gets the same incident back."""
        flow = IncidentFlow(MemoryStore(), clock=FrozenClock(START))
        reports = self.run(
            lambda: flow.declare(
                "Checkout returns 500",
                severity="P1",
                commander="alice",
                actor="alice",
                idempotency_key="K",
            )
        )
        assert [outcome for outcome, _ in reports] == ["ok"] * RACERS, reports
        assert len({incident for _, incident in reports}) == 1
