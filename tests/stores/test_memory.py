"""MemoryStore passes the store contract."""

from pathlib import Path

import pytest

from incidentflow import IncidentFlow, State
from incidentflow.exceptions import ConcurrencyConflict, StoreError
from incidentflow.stores import MemoryStore, Store
from incidentflow.stores._records import Commit
from incidentflow.testing import EventStoreContract, OutboxContract, QueryIndexContract


class TestMemoryStore(EventStoreContract, OutboxContract, QueryIndexContract):
    """The contract, in process memory (nothing survives closing the store)."""

    durable = False

    def make_store(self, tmp_path: Path) -> Store:
        return MemoryStore()


class TestMemoryShortcuts:
    """The memory store's shortcuts for the usual command keep what its protocol promises."""

    def test_cached_is_the_current_snapshot(self) -> None:
        """Memory is all this store has: its cached snapshot is the one load gives."""
        flow = IncidentFlow.in_memory()
        incident = flow.declare("Checkout returns 500", severity="P2", commander="al", actor="al")
        flow.start_triage(incident.id, actor="al")
        assert flow.store.cached(incident.id) is flow.store.load(incident.id)
        assert flow.store.cached(incident.id).state is State.TRIAGING  # type: ignore[union-attr]
        assert flow.store.cached("INC-2026-11-27-nothing") is None

    def test_a_subclass_wrapping_append_sees_every_write(self) -> None:
        """A store that wraps append (to log, or hold a write) is not bypassed by the shortcut."""
        written: list[int] = []

        class Logged(MemoryStore):
            def append(self, commit: Commit) -> None:
                written.append(len(commit.events))
                super().append(commit)

        flow = IncidentFlow(Logged())
        incident = flow.declare("Checkout returns 500", severity="P2", commander="al", actor="al")
        flow.start_triage(incident.id, actor="al")
        flow.add_evidence(incident.id, source="logs", content="HTTP 500", actor="al")
        assert written == [1, 1, 1]
        assert flow.get(incident.id).version == 3

    def test_a_stale_usual_command_is_refused_as_append_refuses_it(self) -> None:
        """The shortcut checks the version: an event decided on an old snapshot is a conflict."""
        store = MemoryStore()
        flow = IncidentFlow(store)
        incident = flow.declare("Checkout returns 500", severity="P2", commander="al", actor="al")
        moved = flow.start_triage(incident.id, actor="al")
        stale = flow.history(incident.id)[-1]  # seq 2, decided on version 1: already written
        with pytest.raises(ConcurrencyConflict):
            store._append_event(stale, moved)
        assert len(flow.history(incident.id)) == 2

    def test_a_subclass_wrapping_the_write_sees_every_write(self) -> None:
        """_write_commit is the backend's hook: a subclass overriding it is not bypassed."""
        written: list[int] = []

        class Journaled(MemoryStore):
            def _write_commit(self, commit: Commit) -> None:
                written.append(commit.events[0].seq)
                super()._write_commit(commit)

        flow = IncidentFlow(Journaled())
        incident = flow.declare("Checkout returns 500", severity="P2", commander="al", actor="al")
        flow.start_triage(incident.id, actor="al")
        flow.add_note(incident.id, "looking", actor="al")
        assert written == [1, 2, 3]

    def test_an_append_set_on_the_store_is_called(self) -> None:
        """Fault injection by replacing append on the instance reaches the usual command."""
        store = MemoryStore()
        flow = IncidentFlow(store)
        incident = flow.declare("Checkout returns 500", severity="P2", commander="al", actor="al")

        def full(commit: Commit) -> None:
            raise StoreError("the disk is full")

        store.append = full  # type: ignore[method-assign]
        with pytest.raises(StoreError, match="the disk is full"):
            flow.add_note(incident.id, "looking", actor="al")
        assert flow.get(incident.id).version == 1
