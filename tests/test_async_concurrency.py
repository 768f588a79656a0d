"""AsyncIncidentFlow under concurrency: racing coroutines, cancellation, the dispatcher task."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from helpers import START
from incidentflow import (
    AsyncIncidentFlow,
    ConcurrencyConflict,
    ConfigError,
    Incident,
    IncidentFlow,
    StoreError,
)
from incidentflow.stores import Commit, SQLiteStore
from incidentflow.stores.memory import MemoryStore
from incidentflow.testing import FrozenClock, RecordingNotifier

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """The library is asyncio-only (stdlib): run the async tests on asyncio."""
    return "asyncio"


class Gate:
    """Holds the next armed append until released; can make it fail instead of writing."""

    def __init__(self) -> None:
        self.armed = False
        self.fail = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.done = threading.Event()

    def hold(self, write: Any, commit: Commit) -> None:
        if not self.armed:
            write(commit)
            return
        self.armed = False
        self.entered.set()
        try:
            self.release.wait(10)
            if self.fail:
                raise StoreError("the disk is full")
            write(commit)
        finally:
            self.done.set()


def held_store(kind: str, tmp_path: Path, gate: Gate) -> Any:
    """A memory or SQLite store whose armed append waits on ``gate``."""

    class HeldMemory(MemoryStore):
        def append(self, commit: Commit) -> None:
            gate.hold(super().append, commit)

    class HeldSQLite(SQLiteStore):
        def append(self, commit: Commit) -> None:
            gate.hold(super().append, commit)

    return HeldMemory() if kind == "memory" else HeldSQLite(tmp_path / "incidents.db")


async def waited(event: threading.Event) -> None:
    """Wait for a thread's event without blocking the loop."""
    assert await asyncio.to_thread(event.wait, 10)


@pytest.fixture(params=["memory", "sqlite"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def gated(kind: str, tmp_path: Path) -> AsyncIterator[tuple[AsyncIncidentFlow, Gate]]:
    """An async flow on a store whose next armed append waits for the test."""
    gate = Gate()
    flow = IncidentFlow(held_store(kind, tmp_path, gate), clock=FrozenClock(START))
    async with AsyncIncidentFlow(flow) as aflow:
        yield aflow, gate
        gate.release.set()


async def declared(flow: AsyncIncidentFlow) -> Incident:
    return await flow.declare("Checkout returns 500", severity="P2", commander="al", actor="al")


def evidence_count(flow: AsyncIncidentFlow, incident_id: str) -> int:
    return sum(e.type == "evidence_added" for e in flow.sync.history(incident_id))


class TestConcurrency:
    async def test_racing_writers_on_one_version_commit_once(
        self, kind: str, tmp_path: Path
    ) -> None:
        """Twenty coroutines deciding on one version: one commits, the others conflict."""
        store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "i.db")
        async with AsyncIncidentFlow(IncidentFlow(store), threads=8) as flow:
            inc = await declared(flow)
            results = await asyncio.gather(
                *(
                    flow.add_evidence(
                        inc.id, source="logs", content=f"line {n}", actor="bo", expected_version=1
                    )
                    for n in range(20)
                ),
                return_exceptions=True,
            )
            assert sum(isinstance(r, Incident) for r in results) == 1
            assert all(isinstance(r, (Incident, ConcurrencyConflict)) for r in results)
            assert evidence_count(flow, inc.id) == 1
            assert await flow.verify(inc.id)

    async def test_unversioned_writers_serialise_or_conflict(
        self, kind: str, tmp_path: Path
    ) -> None:
        """Without expected_version each write commits or conflicts; none is lost or doubled."""
        store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "i.db")
        async with AsyncIncidentFlow(IncidentFlow(store), threads=8) as flow:
            inc = await declared(flow)
            results = await asyncio.gather(
                *(flow.add_note(inc.id, f"note {n}", actor="bo") for n in range(30)),
                return_exceptions=True,
            )
            committed = [r for r in results if isinstance(r, Incident)]
            assert all(isinstance(r, (Incident, ConcurrencyConflict)) for r in results)
            assert len({r.version for r in committed}) == len(committed) >= 1
            history = await flow.history(inc.id)
            assert len(history) == 1 + len(committed)
            assert await flow.verify(inc.id)

    async def test_racing_keyed_declares_make_one_incident(self, kind: str, tmp_path: Path) -> None:
        """The same keyed declare from ten coroutines: one incident, nine replays."""
        store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "i.db")
        async with AsyncIncidentFlow(IncidentFlow(store), threads=8) as flow:
            args = {"title": "DB down", "severity": "P1", "commander": "al", "actor": "al"}
            outcomes = await asyncio.gather(
                *(flow.execute("declare", idempotency_key="alert-7", **args) for _ in range(10))
            )
            assert len({o.incident.id for o in outcomes}) == 1
            assert sum(not o.replayed for o in outcomes) == 1
            assert len(await flow.list()) == 1


class TestCancellation:
    async def test_cancelled_while_writing_commits_exactly_once(
        self, gated: tuple[AsyncIncidentFlow, Gate]
    ) -> None:
        """The command finishes in its thread; the caller sees CancelledError, then a replay."""
        flow, gate = gated
        inc = await declared(flow)
        gate.armed = True
        task = asyncio.ensure_future(
            flow.add_evidence(
                inc.id, source="logs", content="500s", actor="bo", idempotency_key="k"
            )
        )
        await waited(gate.entered)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.release.set()
        await waited(gate.done)
        assert evidence_count(flow, inc.id) == 1
        assert await flow.verify(inc.id)
        again = await flow.execute(
            "add_evidence", inc.id, source="logs", content="500s", actor="bo", idempotency_key="k"
        )
        assert again.replayed
        assert evidence_count(flow, inc.id) == 1

    async def test_cancelled_write_that_fails_records_nothing(
        self, gated: tuple[AsyncIncidentFlow, Gate]
    ) -> None:
        """A cancelled command whose append fails leaves no event; running it again records it."""
        flow, gate = gated
        inc = await declared(flow)
        gate.armed, gate.fail = True, True
        task = asyncio.ensure_future(
            flow.add_evidence(
                inc.id, source="logs", content="500s", actor="bo", idempotency_key="k"
            )
        )
        await waited(gate.entered)
        task.cancel()
        gate.release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await waited(gate.done)
        assert evidence_count(flow, inc.id) == 0
        assert await flow.verify(inc.id)
        again = await flow.execute(
            "add_evidence", inc.id, source="logs", content="500s", actor="bo", idempotency_key="k"
        )
        assert not again.replayed
        assert evidence_count(flow, inc.id) == 1

    async def test_cancelled_before_its_thread_started_never_runs(
        self, kind: str, tmp_path: Path
    ) -> None:
        """With every thread busy, a cancelled command waiting its turn is never run."""
        gate = Gate()
        sync = IncidentFlow(held_store(kind, tmp_path, gate), clock=FrozenClock(START))
        async with AsyncIncidentFlow(sync, threads=1) as flow:
            inc = await declared(flow)
            gate.armed = True
            first = asyncio.ensure_future(flow.add_note(inc.id, "first", actor="bo"))
            await waited(gate.entered)
            queued = asyncio.ensure_future(flow.add_note(inc.id, "queued", actor="bo"))
            await asyncio.sleep(0)
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            gate.release.set()
            assert (await first).version == 2
            assert [n.text for n in (await flow.get(inc.id)).notes] == ["first"]
            assert await flow.verify(inc.id)

    async def test_close_waits_for_a_cancelled_command(self, tmp_path: Path) -> None:
        """close() lets a cancelled command still writing finish before the store closes."""
        gate = Gate()
        flow = AsyncIncidentFlow(IncidentFlow(held_store("sqlite", tmp_path, gate)))
        inc = await declared(flow)
        gate.armed = True
        task = asyncio.ensure_future(flow.add_note(inc.id, "late", actor="bo"))
        await waited(gate.entered)
        task.cancel()
        closing = asyncio.ensure_future(flow.close())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not closing.done()  # the held command still owns a thread
        gate.release.set()
        await closing
        assert gate.done.is_set()
        with IncidentFlow(SQLiteStore(tmp_path / "incidents.db")) as reopened:
            assert [n.text for n in reopened.get(inc.id).notes] == ["late"]
            assert reopened.verify(inc.id)


class TestDispatcher:
    async def test_the_task_delivers_what_commands_commit(self, kind: str, tmp_path: Path) -> None:
        """While it runs, commands return at once and the task delivers their notifications."""
        recorder = RecordingNotifier()
        store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "i.db")
        async with AsyncIncidentFlow(IncidentFlow(store, notifiers=[recorder])) as flow:
            dispatcher = flow.start_dispatcher(interval=30)
            assert dispatcher.running
            assert flow.sync.delivery.dispatchers == (dispatcher,)
            inc = await declared(flow)
            await flow.start_triage(inc.id, actor="al")
            for _ in range(200):  # woken by the commits, long before its interval
                if dispatcher.delivered == 2:
                    break
                await asyncio.sleep(0.01)
            assert recorder.types() == ["declared", "triage_started"]
            assert dispatcher.delivered == 2
        assert not dispatcher.running
        assert flow.sync.delivery.dispatchers == ()

    async def test_a_backlog_is_delivered_when_it_starts(self) -> None:
        """Items committed before the dispatcher started go out on its first round."""
        recorder = RecordingNotifier()
        sync = IncidentFlow.in_memory(notifiers=[recorder], deliver_inline=False)
        async with AsyncIncidentFlow(sync) as flow:
            await declared(flow)
            assert recorder.types() == []
            async with flow.dispatcher(interval=30) as dispatcher:
                for _ in range(200):
                    if recorder.types():
                        break
                    await asyncio.sleep(0.01)
            assert recorder.types() == ["declared"]
            assert not dispatcher.running
            # Stopped: commands deliver inline again.
            flow.deliver_inline = True
            await flow.add_note((await flow.list())[0].id, "hi", actor="al")
            assert recorder.types() == ["declared", "note_added"]

    async def test_close_stops_the_task(self) -> None:
        """Closing the flow stops its dispatcher task and detaches it."""
        flow = await AsyncIncidentFlow.in_memory(notifiers=[RecordingNotifier()])
        dispatcher = flow.start_dispatcher()
        await flow.close()
        assert not dispatcher.running

    @pytest.mark.parametrize(
        ("option", "value"), [("interval", 0), ("max_in_flight", 0), ("limit", 0)]
    )
    async def test_bad_options_are_refused(self, option: str, value: int) -> None:
        """Each option is checked when the dispatcher is made, naming the option."""
        async with AsyncIncidentFlow.in_memory() as flow:
            with pytest.raises(ConfigError) as info:
                flow.dispatcher(**{option: value})
            assert info.value.key == option
