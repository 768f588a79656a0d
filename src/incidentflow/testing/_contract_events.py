"""The event store contract: appends, loads, histories, concurrency, idempotency."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from .._decide import replay
from .._events import (
    SCHEMA_VERSION,
    EvidenceAdded,
    NoteAdded,
)
from .._flow import IncidentFlow
from .._model import Severity, State
from ..exceptions import ConcurrencyConflict, DuplicateIncident, IncidentNotFound
from ..stores._base import (
    IdempotencyRecord,
    IncidentQuery,
    IncidentSummary,
    Store,
)
from ._builders import (
    AWKWARD_TEXT,
    CHECKOUT,
    START,
    declare_commit,
    next_commit,
    run_whole_incident,
    with_notes,
    write,
)
from ._clock import FrozenClock
from ._suite import ContractFixtures


class EventStoreContract(ContractFixtures):
    """The tests every :class:`~incidentflow.stores.EventStore` passes."""

    # -- creating and loading --------------------------------------------------------

    def test_declared_incident_loads(self, store: Store) -> None:
        """A declared incident loads as the snapshot its commit carried, at version 1."""
        commit = declare_commit()
        store.append(commit)
        assert store.load(CHECKOUT) == commit.snapshot
        assert store.load(CHECKOUT).version == 1

    def test_exists(self, store: Store) -> None:
        """exists() is False before the declaration and True after."""
        assert not store.exists(CHECKOUT)
        store.append(declare_commit())
        assert store.exists(CHECKOUT)
        assert not store.exists("INC-2026-11-27-something-else")

    def test_load_unknown_raises_not_found(self, store: Store) -> None:
        """Loading an unknown id raises IncidentNotFound naming it."""
        with pytest.raises(IncidentNotFound) as caught:
            store.load("INC-2026-11-27-nothing")
        assert caught.value.incident_id == "INC-2026-11-27-nothing"

    def test_history_unknown_raises_not_found(self, store: Store) -> None:
        """The history of an unknown id raises IncidentNotFound."""
        store.append(declare_commit())
        with pytest.raises(IncidentNotFound):
            store.history("INC-2026-11-27-nothing")

    def test_load_returns_latest_snapshot(self, store: Store) -> None:
        """After each commit, load() returns that commit's snapshot."""
        snapshot = write(store, declare_commit())
        for n in range(5):
            snapshot = write(store, next_commit(snapshot, NoteAdded(f"note {n}")))
            assert store.load(CHECKOUT) == snapshot
        assert snapshot.version == 6

    def test_incidents_are_independent(self, store: Store) -> None:
        """Commits to one incident do not touch another's history or snapshot."""
        first = with_notes(store, 3, "INC-2026-11-27-first")
        second = with_notes(store, 1, "INC-2026-11-27-second")
        assert store.load(first.id) == first
        assert store.load(second.id) == second
        assert [e.seq for e in store.history(first.id)] == [1, 2, 3, 4]
        assert {e.incident_id for e in store.history(second.id)} == {second.id}

    def test_duplicate_incident(self, store: Store) -> None:
        """Declaring an id that exists (expected_version 0) raises DuplicateIncident."""
        store.append(declare_commit())
        with pytest.raises(DuplicateIncident) as caught:
            store.append(declare_commit(title="Another title"))
        assert caught.value.incident_id == CHECKOUT

    def test_duplicate_incident_writes_nothing(self, store: Store) -> None:
        """A refused duplicate leaves the history, snapshot, outbox and keys as they were."""
        snapshot = write(store, next_commit(write(store, declare_commit()), NoteAdded("kept")))
        with pytest.raises(DuplicateIncident):
            store.append(declare_commit(title="Another", outbox=True, key="dup-key"))
        assert store.load(CHECKOUT) == snapshot
        assert [e.seq for e in store.history(CHECKOUT)] == [1, 2]
        assert store.pending() == []
        assert store.idempotency("dup-key") is None

    # -- history -----------------------------------------------------------------------

    def test_history_in_order_and_gapless(self, store: Store) -> None:
        """The history holds every event, seq 1..n, in order."""
        with_notes(store, 6)
        history = store.history(CHECKOUT)
        assert [e.seq for e in history] == list(range(1, 8))
        assert [e.type for e in history] == ["declared"] + ["note_added"] * 6

    def test_history_after(self, store: Store) -> None:
        """history(after=n) returns only the events with seq greater than n."""
        with_notes(store, 5)
        assert [e.seq for e in store.history(CHECKOUT, after=4)] == [5, 6]
        assert [e.seq for e in store.history(CHECKOUT, after=0)] == list(range(1, 7))

    def test_history_after_the_last_event_is_empty(self, store: Store) -> None:
        """history(after=version) of an existing incident is empty, not an error."""
        snapshot = with_notes(store, 2)
        assert list(store.history(CHECKOUT, after=snapshot.version)) == []

    def test_commit_with_several_events(self, store: Store) -> None:
        """All events of one commit are appended together."""
        snapshot = write(store, declare_commit())
        after = write(store, next_commit(snapshot, NoteAdded("one"), NoteAdded("two")))
        assert after.version == 3
        assert store.load(CHECKOUT) == after
        assert [e.data for e in store.history(CHECKOUT, after=1)] == [
            NoteAdded("one"),
            NoteAdded("two"),
        ]

    def test_event_envelope_round_trips(self, store: Store) -> None:
        """Time (to the microsecond), actor, payload and idempotency key come back equal."""
        snapshot = write(store, declare_commit())
        at = START + timedelta(minutes=3, microseconds=123_456)
        commit = next_commit(
            snapshot, EvidenceAdded("journalctl", "ERR 500"), at=at, actor="bob", key="k-1"
        )
        store.append(commit)
        (event,) = store.history(CHECKOUT, after=1)
        assert event == commit.events[0]
        assert event.at == at
        assert event.idempotency_key == "k-1"

    def test_schema_version_recorded(self, store: Store) -> None:
        """Each stored event keeps the event schema version it was written with."""
        with_notes(store, 1)
        assert {e.schema_version for e in store.history(CHECKOUT)} == {SCHEMA_VERSION}

    def test_every_event_type_round_trips(self, store: Store, clock: FrozenClock) -> None:
        """A whole incident gives the same history on this store as in memory."""
        from ..stores.memory import MemoryStore

        on_store = run_whole_incident(IncidentFlow(store, clock=clock), clock)
        reference_clock = FrozenClock(START)
        reference = IncidentFlow(MemoryStore(), clock=reference_clock)
        expected = run_whole_incident(reference, reference_clock)
        assert store.history(on_store.id) == reference.history(expected.id)
        assert store.load(on_store.id) == expected

    # -- optimistic concurrency ------------------------------------------------------------

    def test_stale_expected_version_raises_conflict(self, store: Store) -> None:
        """Appending on an old version raises ConcurrencyConflict with both versions."""
        first = write(store, declare_commit())
        write(store, next_commit(first))
        with pytest.raises(ConcurrencyConflict) as caught:
            store.append(next_commit(first, NoteAdded("decided on version 1")))
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        assert caught.value.incident_id == CHECKOUT

    def test_conflict_writes_nothing(self, store: Store) -> None:
        """A refused stale commit leaves history, snapshot, outbox and keys untouched."""
        first = write(store, declare_commit())
        latest = write(store, next_commit(first))
        stale = next_commit(first, NoteAdded("lost"), NoteAdded("lost too"), outbox=True, key="k")
        with pytest.raises(ConcurrencyConflict):
            store.append(stale)
        assert store.load(CHECKOUT) == latest
        assert [e.data for e in store.history(CHECKOUT)][1:] == [NoteAdded("a note")]
        assert store.pending() == []
        assert store.idempotency("k") is None

    def test_expected_version_ahead_raises_conflict(self, store: Store) -> None:
        """Appending on a version the incident has not reached raises ConcurrencyConflict."""
        snapshot = write(store, declare_commit())
        ahead = next_commit(next_commit(snapshot).snapshot)
        with pytest.raises(ConcurrencyConflict):
            store.append(ahead)
        assert store.load(CHECKOUT) == snapshot

    def test_expected_version_on_unknown_incident_raises_conflict(self, store: Store) -> None:
        """Appending to an incident that does not exist (version > 0) writes nothing."""
        phantom = declare_commit().snapshot
        with pytest.raises(ConcurrencyConflict) as caught:
            store.append(next_commit(phantom))
        assert caught.value.actual == 0
        assert not store.exists(CHECKOUT)

    def test_threads_retrying_conflicts_lose_nothing(self, store: Store) -> None:
        """Four threads adding notes, retrying on conflicts, leave every note exactly once."""
        store.append(declare_commit())
        errors: list[BaseException] = []

        def add_notes(worker: int) -> None:
            flow = IncidentFlow(store, clock=FrozenClock(START))
            try:
                for n in range(15):
                    while True:
                        try:
                            flow.add_note(CHECKOUT, f"worker {worker} note {n}", actor="bob")
                            break
                        except ConcurrencyConflict:
                            continue
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=add_notes, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        history = store.history(CHECKOUT)
        assert [e.seq for e in history] == list(range(1, 62))
        texts = sorted(e.data.text for e in history[1:] if isinstance(e.data, NoteAdded))
        expected = sorted(f"worker {w} note {n}" for w in range(4) for n in range(15))
        assert texts == expected
        assert replay(history) == store.load(CHECKOUT)

    # -- idempotency -------------------------------------------------------------------------

    def test_idempotency_record_kept(self, store: Store) -> None:
        """A commit's idempotency record is returned for its key."""
        snapshot = write(store, declare_commit())
        commit = next_commit(snapshot, key="retry-42")
        store.append(commit)
        assert store.idempotency("retry-42") == commit.idempotency
        assert store.idempotency("retry-42") == IdempotencyRecord(
            "retry-42", "fingerprint of retry-42", CHECKOUT, 2
        )

    def test_idempotency_unknown_key(self, store: Store) -> None:
        """An unknown key has no record."""
        store.append(declare_commit(key="declared-with-a-key"))
        assert store.idempotency("never-used") is None
        assert store.idempotency("declared-with-a-key") is not None

    def test_idempotent_command_through_flow(self, flow: IncidentFlow) -> None:
        """Running a command twice with one key records it once and returns the first result."""
        inc = flow.declare("Checkout returns 500", severity="P1", commander="alice", actor="a")
        first = flow.add_note(inc.id, "only once", actor="bob", idempotency_key="note-1")
        again = flow.add_note(inc.id, "only once", actor="bob", idempotency_key="note-1")
        assert again == first
        assert [e.type for e in flow.history(inc.id)] == ["declared", "note_added"]

    # -- replay --------------------------------------------------------------------------

    def test_whole_incident_through_flow(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """A P1 run from declaration to kb_updated is stored, and replay gives the snapshot."""
        final = run_whole_incident(flow, clock)
        assert final.state is State.KB_UPDATED
        assert flow.get(final.id) == final
        assert replay(flow.history(final.id)) == final
        assert flow.verify(final.id)

    def test_replay_equals_snapshot_after_many_events(self, store: Store) -> None:
        """After hundreds of commits, replaying the history gives the stored snapshot."""
        snapshot = with_notes(store, 300)
        assert store.load(CHECKOUT) == snapshot
        assert replay(store.history(CHECKOUT)) == snapshot
        assert [e.seq for e in store.history(CHECKOUT, after=290)] == list(range(291, 302))

    # -- payloads --------------------------------------------------------------------------

    def test_unicode_round_trips(self, store: Store) -> None:
        """Awkward Unicode in titles, names and payloads comes back unchanged."""
        declared = declare_commit(title=AWKWARD_TEXT[:200], commander="Zoë 田中")
        store.append(declared)
        payloads = (NoteAdded(AWKWARD_TEXT), EvidenceAdded("ログ", AWKWARD_TEXT))
        noted = next_commit(declared.snapshot, *payloads, actor="José ☕")
        store.append(noted)
        assert store.load(CHECKOUT) == noted.snapshot
        assert tuple(store.history(CHECKOUT)) == declared.events + noted.events
        assert list(store.list(IncidentQuery(commander="Zoë 田中"))) == [noted.snapshot]
        summaries = store.summaries(IncidentQuery(commander="Zoë 田中"))
        assert list(summaries) == [IncidentSummary.of(noted.snapshot)]

    def test_one_megabyte_evidence_round_trips(self, store: Store) -> None:
        """A 1,000,000-character evidence item (multi-byte text) is stored whole."""
        content = ("journalctl: ünïcödé ✓ line\n" * 40_000)[:1_000_000]
        snapshot = write(store, declare_commit())
        after = write(store, next_commit(snapshot, EvidenceAdded("journalctl", content)))
        loaded = store.load(CHECKOUT)
        assert loaded == after
        assert loaded.evidence[0].content == content
        assert store.history(CHECKOUT, after=1)[0].data == EvidenceAdded("journalctl", content)

    # -- durable stores ---------------------------------------------------------------------

    def test_reopened_store_sees_everything(self, store: Store, tmp_path: Path) -> None:
        """A store made again on the same location sees every incident, key and outbox item."""
        snapshot = write(store, declare_commit(outbox=True))
        snapshot = write(store, next_commit(snapshot, NoteAdded("kept"), key="k-7"))
        other = write(store, declare_commit("INC-2026-11-27-other", severity=Severity.P4))
        history = store.history(CHECKOUT)
        reopened = self.reopen(store, tmp_path)
        try:
            assert reopened.load(CHECKOUT) == snapshot
            assert reopened.history(CHECKOUT) == history
            assert reopened.idempotency("k-7") == IdempotencyRecord(
                "k-7", "fingerprint of k-7", CHECKOUT, 2
            )
            assert [item.id for item in reopened.pending()] == [f"{CHECKOUT}:1"]
            assert list(reopened.list(IncidentQuery())) == [other, snapshot]
            reopened.append(next_commit(snapshot, NoteAdded("after reopening")))
            assert reopened.load(CHECKOUT).version == 3
        finally:
            reopened.close()

    def test_two_stores_on_one_location(self, store: Store, tmp_path: Path) -> None:
        """Two store objects on one location (two processes) see each other's commits."""
        other = self.second(tmp_path)
        try:
            first = write(store, declare_commit())
            assert other.load(CHECKOUT) == first
            latest = write(other, next_commit(first, NoteAdded("from the other process")))
            assert store.load(CHECKOUT) == latest
            with pytest.raises(ConcurrencyConflict):
                store.append(next_commit(first, NoteAdded("stale")))
            with pytest.raises(DuplicateIncident):
                other.append(declare_commit())
            assert [e.seq for e in store.history(CHECKOUT)] == [1, 2]
            assert replay(other.history(CHECKOUT)) == latest
        finally:
            other.close()

    def test_close_twice_is_harmless(self, tmp_path: Path) -> None:
        """close() may be called more than once."""
        store = self.make_store(tmp_path)
        store.close()
        store.close()
