"""The durable write path: what a commit writes, how cold loads stay bounded, how events decode."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import every_event_type
from incidentflow import ConcurrencyConflict, IncidentFlow, Policy, StoreError
from incidentflow._events import Event, NoteAdded
from incidentflow._serialization import event_from_dict, event_to_dict
from incidentflow.stores import JsonlStore, MemoryStore, SQLiteStore
from incidentflow.stores._snapshots import (
    CHECKPOINT_MIN_TAIL,
    checkpoint_due,
    decode_event,
    decode_event_dict,
    dumps,
    encode_payload,
)
from incidentflow.stores.sqlite._rows import _event_row
from incidentflow.testing import FrozenClock
from incidentflow.testing.contract import CHECKOUT, declare_commit, next_commit, with_notes


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "incidents.db")
    yield store
    store.close()


@pytest.fixture
def history() -> list[Event]:
    clock = FrozenClock()
    policy = Policy(custom_fields={"customer": "text"})
    flow = IncidentFlow(MemoryStore(), clock=clock, policy=policy)
    return list(flow.history(every_event_type(flow, clock).id))


class TestCheckpoints:
    def test_tail_stays_short(self) -> None:
        """One event at a time, a cold load folds under 16 events up to 4,096, then under n/128."""
        from incidentflow._model import State

        last = 1
        for version in range(2, 20_000):
            # A snapshot of the right version is all checkpoint_due reads; the state never moves.
            after = _AtVersion(version)
            if checkpoint_due(version - 1, State.TRIAGING, after):  # type: ignore[arg-type]
                last = version
            assert version - last < max(CHECKPOINT_MIN_TAIL, version // 128), version

    def test_checkpoints_are_rare_enough(self) -> None:
        """Past 4,096 events the snapshot is written at most 128 times per doubling."""
        from incidentflow._model import State

        written = [
            version
            for version in range(2, 65_537)
            if checkpoint_due(version - 1, State.TRIAGING, _AtVersion(version))  # type: ignore[arg-type]
        ]
        assert sum(v < 4_096 for v in written) == 4_096 // CHECKPOINT_MIN_TAIL - 1
        for low in (4_096, 8_192, 16_384, 32_768):
            assert sum(low <= v < 2 * low for v in written) <= 128, low

    def test_cold_store_reads_a_bounded_tail(self, store: SQLiteStore, tmp_path: Path) -> None:
        """A store without a cache reads the checkpoint and under 16 events of a long history."""
        snapshot = with_notes(store, 600)
        cold = SQLiteStore(tmp_path / "incidents.db", cache_size=0)
        assert cold.load(CHECKOUT) == snapshot
        (stored,) = cold._conn.execute("SELECT version FROM snapshots").fetchone()
        assert snapshot.version - stored < CHECKPOINT_MIN_TAIL
        cold.close()


class _AtVersion:
    """Stands in for a snapshot where only the version and state are read."""

    def __init__(self, version: int) -> None:
        from incidentflow._model import State

        self.version = version
        self.state = State.TRIAGING


class TestEventDecoding:
    def test_rows_decode_as_the_converter_does(self, history: list[Event]) -> None:
        """Every event type decodes from a SQLite row to what the converter's slow path gives."""
        for event in history:
            row = _event_row(event)
            assert decode_event(row, "here") == event_from_dict(event_to_dict(event)) == event

    def test_dicts_decode_as_the_converter_does(self, history: list[Event]) -> None:
        """Every event type decodes from a JSON Lines dict to what the converter gives."""
        for event in history:
            stored = json.loads(json.dumps(event_to_dict(event)))
            assert decode_event_dict(stored, "here") == event_from_dict(stored) == event

    def test_payload_is_the_converter_json(self, history: list[Event]) -> None:
        """The stored payload is the same compact JSON as before, byte for byte."""
        for event in history:
            expected = json.dumps(
                event_to_dict(event)["data"], ensure_ascii=False, separators=(",", ":")
            )
            assert encode_payload(event) == expected
        assert dumps({"a": ["é", 1]}) == '{"a":["é",1]}'

    @pytest.mark.parametrize(
        ("column", "value"),
        [(2, "no_such_event"), (3, "2026-11-27T14:00:00"), (3, "yesterday"), (5, "{")],
    )
    def test_bad_rows_are_store_errors(self, history: list[Event], column: int, value: str) -> None:
        """An unknown type, a naive or unreadable time, or broken JSON names the event."""
        row = list(_event_row(history[3]))
        row[column] = value
        with pytest.raises(StoreError, match=f"here: event 4 of {history[3].incident_id}"):
            decode_event(row, "here")

    def test_bad_dicts_are_store_errors(self, history: list[Event]) -> None:
        """A dict missing a field or with a wrong payload names the event."""
        stored = event_to_dict(history[3])
        del stored["actor"]
        with pytest.raises(StoreError, match="event 4"):
            decode_event_dict(stored, "here")
        stored = {**event_to_dict(history[3]), "data": {"nothing": 1}}
        with pytest.raises(StoreError, match="event 4"):
            decode_event_dict(stored, "here")


class TestCached:
    def test_cached_is_what_this_store_last_saw(self, store: SQLiteStore) -> None:
        """Nothing before a load or commit; the committed snapshot after; nothing once closed."""
        assert store.cached(CHECKOUT) is None
        snapshot = with_notes(store, 3)
        assert store.cached(CHECKOUT) == snapshot
        store.close()
        assert store.cached(CHECKOUT) is None

    def test_memory_and_jsonl(self, tmp_path: Path) -> None:
        """MemoryStore answers its snapshot (None before any); JsonlStore what it committed."""
        memory = MemoryStore()
        assert memory.cached(CHECKOUT) is None
        memory.append(declare_commit())
        assert memory.cached(CHECKOUT) is memory.load(CHECKOUT)
        jsonl = JsonlStore(tmp_path / "j")
        first = declare_commit()
        jsonl.append(first)
        assert jsonl.cached(CHECKOUT) == first.snapshot

    def test_stale_cached_snapshot_is_refused(self, store: SQLiteStore, tmp_path: Path) -> None:
        """A commit decided on a stale cached snapshot raises ConcurrencyConflict."""
        other = SQLiteStore(tmp_path / "incidents.db")
        with_notes(store, 2)
        seen = other.load(CHECKOUT)
        store.append(next_commit(store.load(CHECKOUT), NoteAdded("moved on")))
        stale = other.cached(CHECKOUT)
        assert stale == seen
        with pytest.raises(ConcurrencyConflict):
            other.append(next_commit(stale, NoteAdded("late")))
        assert other.load(CHECKOUT) == store.load(CHECKOUT)
        other.close()

    def test_commit_on_the_cached_version_reads_nothing(self, store: SQLiteStore) -> None:
        """A commit on the cached snapshot is BEGIN, the versioned UPDATE, the INSERT, COMMIT."""
        with_notes(store, 3)
        statements: list[str] = []
        store._conn.set_trace_callback(statements.append)
        store.append(next_commit(store.cached(CHECKOUT), NoteAdded("one more")))  # type: ignore[arg-type]
        store._conn.set_trace_callback(None)
        verbs = [s.split()[0].upper() for s in statements]
        assert verbs == ["BEGIN", "UPDATE", "INSERT", "COMMIT"], statements


class TestStaleFlows:
    """Two flows on one database: a command decided on a stale snapshot is decided again."""

    def test_a_stale_flow_decides_on_the_stored_snapshot(self, tmp_path: Path) -> None:
        """The other flow's commit is kept, and the command lands after it, as if loaded fresh."""
        path = tmp_path / "incidents.db"
        first = IncidentFlow(SQLiteStore(path), clock=FrozenClock())
        second = IncidentFlow(SQLiteStore(path), clock=FrozenClock())
        incident = first.declare("Checkout returns 500", severity="P1", commander="al", actor="al")
        second.start_triage(incident.id, actor="al")  # first's cached snapshot is now stale
        after = first.add_evidence(incident.id, source="logs", content="500s", actor="bo")
        assert after.version == 3
        assert [event.type for event in first.history(incident.id)][-2:] == [
            "triage_started",
            "evidence_added",
        ]

    def test_a_stale_flow_is_refused_as_the_stored_snapshot_says(self, tmp_path: Path) -> None:
        """A command the stale snapshot allows but the stored one does not is refused."""
        from incidentflow import InvalidTransition

        path = tmp_path / "incidents.db"
        first = IncidentFlow(SQLiteStore(path), clock=FrozenClock())
        second = IncidentFlow(SQLiteStore(path), clock=FrozenClock())
        incident = first.declare("Checkout returns 500", severity="P3", commander="al", actor="al")
        second.dismiss(incident.id, reason="false alarm", actor="al")
        with pytest.raises(InvalidTransition):
            first.start_triage(incident.id, actor="al")
        assert first.get(incident.id).version == 2
