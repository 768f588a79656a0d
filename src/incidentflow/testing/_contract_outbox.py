"""The outbox contract: items with their commit, streams, claims, retries, dead letters."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from .._events import (
    NoteAdded,
)
from .._flow import IncidentFlow
from ..delivery import DeliveryReport, RetryPolicy
from ..exceptions import ConcurrencyConflict, DuplicateIncident
from ..notifiers.basic import RecordingNotifier
from ..stores._base import (
    OutboxItem,
    Store,
)
from ._builders import (
    CHECKOUT,
    LEASE,
    START,
    FlakyNotifier,
    announced,
    declare_commit,
    item_id,
    next_commit,
    write,
)
from ._clock import FrozenClock
from ._suite import ContractFixtures


class OutboxContract(ContractFixtures):
    """The tests every :class:`~incidentflow.stores.Outbox` passes."""

    # -- outbox ---------------------------------------------------------------------------

    def test_outbox_items_pending_after_commit(self, store: Store) -> None:
        """Outbox items are pending once their commit is in, carrying the whole event."""
        commit = declare_commit(outbox=True)
        store.append(commit)
        assert store.pending() == [OutboxItem(f"{CHECKOUT}:1", commit.events[0])]

    def test_pending_oldest_first_with_limit(self, store: Store) -> None:
        """pending() lists items in commit order and honours its limit."""
        snapshot = write(store, declare_commit(outbox=True))
        for n in range(3):
            snapshot = write(store, next_commit(snapshot, NoteAdded(f"n{n}"), outbox=True))
        ids = [item.id for item in store.pending()]
        assert ids == [f"{CHECKOUT}:{seq}" for seq in range(1, 5)]
        assert [item.id for item in store.pending(limit=2)] == ids[:2]

    def test_outbox_items_of_a_multi_event_commit(self, store: Store) -> None:
        """Every event of a commit gets its own outbox item, in order."""
        snapshot = write(store, declare_commit())
        store.append(next_commit(snapshot, NoteAdded("a"), NoteAdded("b"), outbox=True))
        assert [i.event.data for i in store.pending()] == [NoteAdded("a"), NoteAdded("b")]

    def test_mark_delivered(self, store: Store) -> None:
        """Delivered items leave the outbox; the others stay; unknown ids are ignored."""
        snapshot = write(store, declare_commit(outbox=True))
        write(store, next_commit(snapshot, outbox=True))
        store.mark_delivered([f"{CHECKOUT}:1", "INC-unknown:7"])
        assert [item.id for item in store.pending()] == [f"{CHECKOUT}:2"]
        store.mark_delivered([f"{CHECKOUT}:2"])
        store.mark_delivered([f"{CHECKOUT}:2"])
        assert store.pending() == []

    def test_outbox_through_flow(self, store: Store, clock: FrozenClock) -> None:
        """A flow with a notifier announces each event once and leaves nothing pending."""
        recorder = RecordingNotifier()
        flow = IncidentFlow(store, clock=clock, notifiers=[recorder])
        inc = flow.declare("Checkout returns 500", severity="P1", commander="alice", actor="a")
        flow.start_triage(inc.id, actor="alice")
        assert recorder.types() == ["declared", "triage_started"]
        assert store.pending() == []

    # -- delivery: claims, retries, dead letters ------------------------------------------

    def claim(
        self,
        store: Store,
        at: datetime = START,
        *,
        worker: str = "worker-1",
        limit: int = 100,
        lease: timedelta = LEASE,
        incident_id: str | None = None,
    ) -> list[str]:
        """The ids ``store.claim`` hands ``worker`` at ``at``."""
        if incident_id is None:  # the call every store has answered since claims began
            found = store.claim(now=at, limit=limit, lease=lease, worker=worker)
        else:
            found = store.claim(
                now=at, limit=limit, lease=lease, worker=worker, incident_id=incident_id
            )
        return [item.id for item in found]

    def test_claim_takes_only_the_head_of_each_stream(self, store: Store) -> None:
        """Only each (incident, notifier) stream's oldest item is claimable, whole."""
        announced(store, 3)
        announced(store, 2, "INC-2026-11-27-search")
        claimed = store.claim(now=START, limit=100, lease=LEASE, worker="worker-1")
        assert sorted(item.id for item in claimed) == [
            item_id(1),
            item_id(1, incident_id="INC-2026-11-27-search"),
        ]
        pending = {item.id: item for item in store.pending()}
        assert len(pending) == 5
        assert all(item == pending[item.id] for item in claimed)
        assert {item.notifier for item in claimed} == {"pager"}

    def test_claim_follows_each_stream_in_seq_order(self, store: Store) -> None:
        """Delivering a stream's head makes its next item, and only that one, claimable."""
        announced(store, 4)
        for seq in range(1, 5):
            assert self.claim(store) == [item_id(seq)]
            store.mark_delivered([item_id(seq)])
        assert self.claim(store) == []
        assert store.pending() == []

    def test_two_notifiers_are_two_streams(self, store: Store) -> None:
        """One notifier's waiting head does not hold up another notifier of the same incident."""
        announced(store, 2, notifiers=("pager", "slack"))
        assert sorted(self.claim(store)) == [item_id(1), item_id(1, "slack")]
        retry_at = START + timedelta(minutes=10)
        store.mark_failed(item_id(1), error="HTTP 503", next_attempt_at=retry_at, dead=False)
        store.mark_delivered([item_id(1, "slack")])
        assert self.claim(store) == [item_id(2, "slack")]
        store.mark_delivered([item_id(2, "slack")])
        assert self.claim(store, retry_at) == [item_id(1)]

    def test_item_waits_for_its_next_attempt(self, store: Store) -> None:
        """An item is not claimed before next_attempt_at, nor is the rest of its stream."""
        announced(store, 2)
        self.claim(store)
        retry_at = START + timedelta(minutes=5)
        store.mark_failed(item_id(1), error="timeout", next_attempt_at=retry_at, dead=False)
        assert self.claim(store, retry_at - timedelta(seconds=1)) == []
        assert self.claim(store, retry_at) == [item_id(1)]

    def test_unexpired_claim_is_not_handed_out_again(self, store: Store) -> None:
        """Another worker gets a claimed item only once the lease has ended."""
        announced(store, 1)
        assert self.claim(store, worker="worker-1") == [item_id(1)]
        assert self.claim(store, START + timedelta(seconds=30), worker="worker-2") == []
        assert self.claim(store, START + timedelta(seconds=30), worker="worker-1") == []
        after_lease = START + LEASE + timedelta(seconds=1)
        assert self.claim(store, after_lease, worker="worker-2") == [item_id(1)]

    def test_claim_for_one_incident(self, store: Store) -> None:
        """claim(incident_id=...) looks only at that incident's streams, with the same rules."""
        search = "INC-2026-11-27-search"
        announced(store, 2, notifiers=("pager", "slack"))
        announced(store, 2, search)
        assert self.claim(store, incident_id=search) == [item_id(1, incident_id=search)]
        assert sorted(self.claim(store, incident_id=CHECKOUT, limit=5)) == [
            item_id(1),
            item_id(1, "slack"),
        ]
        assert self.claim(store, incident_id=CHECKOUT) == []
        assert self.claim(store, incident_id="INC-2026-11-27-unknown") == []
        assert self.claim(store) == []
        store.mark_delivered([item_id(1)])
        assert self.claim(store, incident_id=search) == []
        assert self.claim(store, incident_id=CHECKOUT) == [item_id(2)]

    def test_claims_hold_across_store_objects(self, store: Store, tmp_path: Path) -> None:
        """A claim made through one store object (process) holds for another."""
        other = self.second(tmp_path)
        try:
            announced(store, 2)
            assert self.claim(store, worker="worker-1") == [item_id(1)]
            assert self.claim(other, worker="worker-2") == []
            other.mark_delivered([item_id(1)])
            assert self.claim(other, worker="worker-2") == [item_id(2)]
            assert self.claim(store, worker="worker-1") == []
        finally:
            other.close()

    def test_mark_failed_counts_the_attempt_and_releases_the_claim(self, store: Store) -> None:
        """A failure counts an attempt, keeps the error and next time, and frees the item."""
        announced(store, 1)
        self.claim(store, lease=timedelta(hours=1))
        retry_at = START + timedelta(minutes=1)
        store.mark_failed(item_id(1), error="HTTP 500", next_attempt_at=retry_at, dead=False)
        (waiting,) = store.pending()
        assert (waiting.attempts, waiting.last_error, waiting.next_attempt_at, waiting.dead) == (
            1,
            "HTTP 500",
            retry_at,
            False,
        )
        # Released: claimable at retry_at although the first claim's hour has not passed.
        assert self.claim(store, retry_at, worker="worker-2") == [item_id(1)]
        later = retry_at + timedelta(minutes=2)
        store.mark_failed(item_id(1), error="HTTP 502", next_attempt_at=later, dead=False)
        store.mark_failed(
            "INC-2026-11-27-unknown:1:pager", error="x", next_attempt_at=later, dead=True
        )
        (waiting,) = store.pending()
        assert (waiting.attempts, waiting.last_error, waiting.next_attempt_at) == (
            2,
            "HTTP 502",
            later,
        )
        assert store.dead_letters() == []

    def test_dead_item_is_skipped_and_the_stream_goes_on(self, store: Store) -> None:
        """A dead letter leaves pending() and claim(); its stream's next item is claimable."""
        announced(store, 3)
        assert self.claim(store, lease=timedelta(hours=1)) == [item_id(1)]
        store.mark_failed(item_id(1), error="HTTP 400", next_attempt_at=START, dead=True)
        assert self.claim(store) == [item_id(2)]
        assert [item.id for item in store.pending()] == [item_id(2), item_id(3)]
        (dead,) = store.dead_letters()
        assert (dead.id, dead.dead, dead.attempts, dead.last_error) == (
            item_id(1),
            True,
            1,
            "HTTP 400",
        )
        assert dead.event.seq == 1

    def test_dead_letters_oldest_first_with_limit(self, store: Store) -> None:
        """dead_letters() lists the items that gave up in commit order and honours its limit."""
        incidents = [f"INC-2026-11-27-dead-{n}" for n in range(3)]
        for incident_id in incidents:
            announced(store, 1, incident_id)
        for incident_id in reversed(incidents):
            store.mark_failed(
                item_id(1, incident_id=incident_id), error="gone", next_attempt_at=START, dead=True
            )
        expected = [item_id(1, incident_id=i) for i in incidents]
        assert [item.id for item in store.dead_letters()] == expected
        assert [item.id for item in store.dead_letters(limit=2)] == expected[:2]
        assert store.pending() == []
        assert self.claim(store) == []

    def test_redrive_puts_dead_items_back_at_the_head(self, store: Store) -> None:
        """A re-driven item is live again with 0 attempts and no wait, before its younger items."""
        announced(store, 2)
        self.claim(store)
        store.mark_failed(item_id(1), error="HTTP 400", next_attempt_at=START, dead=True)
        assert store.redrive([item_id(1), item_id(2), "INC-2026-11-27-unknown:1:pager"]) == 1
        assert store.dead_letters() == []
        first = store.pending()[0]
        assert (first.id, first.attempts, first.next_attempt_at, first.dead) == (
            item_id(1),
            0,
            None,
            False,
        )
        assert self.claim(store, worker="worker-2") == [item_id(1)]
        assert store.redrive([item_id(1)]) == 0

    def test_mark_delivered_releases_the_claim(self, store: Store) -> None:
        """A delivered item leaves the outbox at once and its successor is claimable."""
        announced(store, 2)
        assert self.claim(store, lease=timedelta(hours=1)) == [item_id(1)]
        store.mark_delivered([item_id(1)])
        assert [item.id for item in store.pending()] == [item_id(2)]
        assert self.claim(store) == [item_id(2)]
        store.mark_delivered([item_id(2)])
        assert store.pending() == []
        assert store.dead_letters() == []

    def test_settle_and_claim_marks_then_claims_the_next_heads(self, store: Store) -> None:
        """A dispatcher's round: delivered items leave, then their streams' next are claimed."""
        announced(store, 3)
        announced(store, 1, "INC-2026-11-27-search")
        first = store.settle_and_claim([], now=START, limit=10, lease=LEASE, worker="worker-1")
        assert sorted(i.id for i in first) == [
            item_id(1),
            item_id(1, incident_id="INC-2026-11-27-search"),
        ]
        delivered = [i.id for i in first]
        second = store.settle_and_claim(
            delivered, now=START, limit=10, lease=LEASE, worker="worker-1"
        )
        assert [i.id for i in second] == [item_id(2)]
        assert [i.id for i in store.pending()] == [item_id(2), item_id(3)]
        assert store.settle_and_claim([], now=START, limit=10, lease=LEASE, worker="w2") == []
        # With no room left, the round only marks.
        assert (
            store.settle_and_claim([item_id(2)], now=START, limit=0, lease=LEASE, worker="worker-1")
            == []
        )
        assert [i.id for i in store.pending()] == [item_id(3)]
        assert self.claim(store, worker="worker-2") == [item_id(3)]

    def test_claim_honours_limit(self, store: Store) -> None:
        """claim() hands out at most ``limit`` items; the next claims take the others."""
        incidents = [f"INC-2026-11-27-limit-{n}" for n in range(5)]
        for incident_id in incidents:
            announced(store, 1, incident_id)
        batches = [self.claim(store, limit=2) for _ in range(4)]
        assert [len(batch) for batch in batches] == [2, 2, 1, 0]
        assert sorted(i for batch in batches for i in batch) == sorted(
            item_id(1, incident_id=i) for i in incidents
        )
        assert len(self.claim(store, START + LEASE, limit=1)) == 1

    def test_items_without_a_notifier_still_work(self, store: Store) -> None:
        """Items made by OutboxItem.for_event(event) (notifier "") form their own stream."""
        snapshot = write(store, declare_commit(outbox=True))
        write(store, next_commit(snapshot, outbox=True))
        (claimed,) = store.claim(now=START, limit=10, lease=LEASE, worker="worker-1")
        assert (claimed.id, claimed.notifier) == (f"{CHECKOUT}:1", "")
        store.mark_delivered([claimed.id])
        assert self.claim(store) == [f"{CHECKOUT}:2"]

    def test_refused_commits_leave_nothing_to_deliver(self, store: Store) -> None:
        """Items of a stale or duplicate commit are never pending, claimable or dead."""
        first = write(store, declare_commit(notifiers=("pager",)))
        write(store, next_commit(first, notifiers=("pager",)))
        stale = next_commit(first, NoteAdded("lost"), notifiers=("pager", "slack"))
        with pytest.raises(ConcurrencyConflict):
            store.append(stale)
        with pytest.raises(DuplicateIncident):
            store.append(declare_commit(title="Again", notifiers=("pager", "slack")))
        assert [item.id for item in store.pending()] == [item_id(1), item_id(2)]
        assert self.claim(store) == [item_id(1)]
        store.mark_delivered([item_id(1)])
        assert self.claim(store) == [item_id(2)]
        store.mark_delivered([item_id(2)])
        assert self.claim(store, START + LEASE) == []
        assert store.dead_letters() == []

    def test_delivery_state_survives_reopening(self, store: Store, tmp_path: Path) -> None:
        """Attempts, errors, next times, dead letters and claims are all still there reopened."""
        announced(store, 2)
        announced(store, 1, "INC-2026-11-27-dead")
        announced(store, 1, "INC-2026-11-27-claimed")
        assert len(self.claim(store, lease=timedelta(hours=1))) == 3
        retry_at = START + timedelta(minutes=2)
        store.mark_failed(item_id(1), error="HTTP 500", next_attempt_at=retry_at, dead=False)
        dead_id = item_id(1, incident_id="INC-2026-11-27-dead")
        store.mark_failed(dead_id, error="HTTP 410", next_attempt_at=retry_at, dead=True)
        before = (list(store.pending()), list(store.dead_letters()))
        reopened = self.reopen(store, tmp_path)
        try:
            assert (list(reopened.pending()), list(reopened.dead_letters())) == before
            (waiting, *_) = reopened.pending()
            assert (waiting.id, waiting.attempts, waiting.last_error) == (item_id(1), 1, "HTTP 500")
            assert waiting.next_attempt_at == retry_at
            assert self.claim(reopened, START + timedelta(minutes=1), worker="worker-2") == []
            assert self.claim(reopened, retry_at, worker="worker-2") == [item_id(1)]
            assert reopened.redrive([dead_id]) == 1
        finally:
            reopened.close()

    def test_threads_claiming_at_once_never_share_an_item(
        self, store: Store, tmp_path: Path
    ) -> None:
        """Four workers (own store objects when durable) claiming at once split the heads."""
        incidents = [f"INC-2026-11-27-race-{n}" for n in range(12)]
        for incident_id in incidents:
            announced(store, 2, incident_id)
        stores = [self.make_store(tmp_path) if self.durable else store for _ in range(4)]
        claimed: list[list[str]] = [[] for _ in stores]
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                while batch := self.claim(
                    stores[n], worker=f"worker-{n}", limit=2, lease=timedelta(hours=1)
                ):
                    claimed[n].extend(batch)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.durable:
            for other in stores:
                other.close()
        assert errors == []
        every = [i for batch in claimed for i in batch]
        assert sorted(every) == sorted(item_id(1, incident_id=i) for i in incidents)

    def test_delivery_through_flow(self, store: Store, clock: FrozenClock) -> None:
        """Inline delivery, retries as the clock passes, dead letters, redrive, deliver_pending."""
        recorder, pager = RecordingNotifier(), FlakyNotifier()
        retry = RetryPolicy(max_attempts=2, first_delay=timedelta(minutes=1), jitter=0)
        flow = IncidentFlow(store, clock=clock, notifiers=[recorder, pager], retry=retry)
        inc = flow.declare("Checkout returns 500", severity="P1", commander="alice", actor="a")
        pager_item = f"{inc.id}:1:pager"
        assert recorder.types() == ["declared"]
        (waiting,) = store.pending()
        assert (waiting.id, waiting.attempts) == (pager_item, 1)
        assert waiting.next_attempt_at == START + timedelta(minutes=1)
        assert "pager is down" in waiting.last_error
        flow.start_triage(inc.id, actor="alice")
        assert recorder.types() == ["declared", "triage_started"]
        assert [item.id for item in store.pending()] == [pager_item, f"{inc.id}:2:pager"]
        clock.advance(minutes=1)
        # The second failure kills the head; the stream goes on and its next item fails once.
        assert flow.deliver_pending() == DeliveryReport(delivered=0, retrying=1, dead=1)
        assert [item.id for item in flow.dead_letters()] == [pager_item]
        pager.failing = False
        clock.advance(minutes=1)
        assert flow.deliver_pending() == DeliveryReport(delivered=1)
        assert pager.types() == ["triage_started"]
        assert flow.redrive() == 1
        assert flow.dead_letters() == []
        assert flow.deliver_pending() == DeliveryReport(delivered=1)
        assert pager.types() == ["triage_started", "declared"]
        assert [n.id for n in pager.delivered] == [f"{inc.id}:2", f"{inc.id}:1"]
        assert store.pending() == []
        assert recorder.types() == ["declared", "triage_started"]
