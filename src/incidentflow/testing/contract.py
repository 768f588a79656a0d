"""The contract every store keeps, as a pytest suite to subclass (dogpile.cache style).

A backend's test module is a few lines::

    from incidentflow.testing import StoreContract

    class TestRedisStore(StoreContract):
        durable = True

        def make_store(self, tmp_path):
            return RedisStore(f"redis://localhost/{tmp_path.name}")

``make_store`` may be called more than once with the same ``tmp_path``: for a
durable store each call must open the same data (a store "reopened", or a
second process). Set ``durable = False`` for a store that forgets everything
when closed; the tests that reopen a store are then skipped, with the reason.
A store whose server is missing should skip in ``make_store`` with
``pytest.skip(reason)``, never pass silently.

The delivery tests (claims, retries, dead letters) need the outbox protocol
of :class:`~incidentflow.stores.Store`: ``claim``, ``mark_failed``,
``dead_letters`` and ``redrive`` besides ``pending`` and ``mark_delivered``.

This module imports pytest; ``incidentflow.testing`` imports it only when
``StoreContract`` is first used.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import ClassVar

import pytest

from .._decide import evolve, replay
from .._delivery import DeliveryReport, RetryPolicy
from .._events import (
    SCHEMA_VERSION,
    CommanderAssigned,
    Declared,
    Dismissed,
    Event,
    EventData,
    EvidenceAdded,
    KbUpdated,
    NoteAdded,
    Reclassified,
    RootCauseSet,
    TriageAnswered,
    TriageStarted,
)
from .._flow import IncidentFlow
from .._metrics import milestones
from .._model import Incident, Severity, State
from .._similar import SearchText
from ..exceptions import ConcurrencyConflict, DuplicateIncident, IncidentNotFound
from ..notifiers._base import Notification, Notifier
from ..notifiers.basic import RecordingNotifier
from ..stores._base import (
    Commit,
    IdempotencyRecord,
    IncidentQuery,
    IncidentSummary,
    OutboxItem,
    Store,
)
from ._clock import FrozenClock

__all__ = [
    "AWKWARD_TEXT",
    "CHECKOUT",
    "LEASE",
    "START",
    "FlakyNotifier",
    "StoreContract",
    "announced",
    "declare_commit",
    "item_id",
    "next_commit",
    "run_whole_incident",
    "with_notes",
    "write",
]

#: The time the contract's incidents are declared around.
START = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)

#: The id of the incident most contract tests write to.
CHECKOUT = "INC-2026-11-27-checkout-returns-500"

#: How long the delivery tests' claims last unless they say otherwise.
LEASE = timedelta(minutes=1)

#: Text that trips up encoders: astral emoji, CJK, right-to-left, combining marks,
#: the Unicode line and paragraph separators, quotes, backslashes and control characters.
AWKWARD_TEXT = (
    "Zahlung schlägt fehl 💥🔥 — 決済が失敗 — فشل الدفع — é (e\u0301) "
    "\u2028line\u2029para \"quoted\" 'single' \\back\\slash\\ tab\there\r\nnext \x00\x1f end"
)


# -- building commits as IncidentFlow does ------------------------------------------------


def declare_commit(
    incident_id: str = CHECKOUT,
    *,
    title: str = "Checkout returns 500",
    severity: Severity = Severity.P1,
    commander: str = "alice",
    at: datetime = START,
    outbox: bool = False,
    notifiers: Sequence[str] = (),
    key: str | None = None,
) -> Commit:
    """The commit declaring an incident.

    ``outbox=True`` adds one item per event for every notifier (notifier ``""``);
    ``notifiers`` adds one per event for each notifier named, as IncidentFlow does.
    """
    slug = incident_id.split("-", 4)[-1].lower()
    event = Event(incident_id, 1, at, commander, Declared(title, slug, severity, commander, False))
    return _commit(None, (event,), outbox, key, notifiers)


def next_commit(
    snapshot: Incident,
    *data: EventData,
    at: datetime | None = None,
    actor: str = "bob",
    outbox: bool = False,
    notifiers: Sequence[str] = (),
    key: str | None = None,
) -> Commit:
    """The commit appending events with ``data`` to ``snapshot`` (outbox as in declare_commit)."""
    when = at or snapshot.updated_at + timedelta(minutes=1)
    events = tuple(
        Event(snapshot.id, snapshot.version + n, when, actor, payload, key)
        for n, payload in enumerate(data or (NoteAdded("a note"),), start=1)
    )
    return _commit(snapshot, events, outbox, key, notifiers)


def _commit(
    snapshot: Incident | None,
    events: tuple[Event, ...],
    outbox: bool,
    key: str | None,
    notifiers: Sequence[str] = (),
) -> Commit:
    after = snapshot
    for event in events:
        after = evolve(after, event)
    assert after is not None
    items = tuple(OutboxItem.for_event(e) for e in events) if outbox else ()
    items += tuple(OutboxItem.for_event(e, name) for e in events for name in notifiers)
    record = (
        IdempotencyRecord(key, f"fingerprint of {key}", after.id, after.version)
        if key is not None
        else None
    )
    base = 0 if snapshot is None else snapshot.version
    return Commit(after.id, base, events, after, items, record)


def write(store: Store, commit: Commit) -> Incident:
    """Append ``commit`` and return its snapshot."""
    store.append(commit)
    return commit.snapshot


def with_notes(store: Store, count: int, incident_id: str = CHECKOUT) -> Incident:
    """Declare an incident and add ``count`` notes, one commit each."""
    snapshot = write(store, declare_commit(incident_id))
    for n in range(count):
        snapshot = write(store, next_commit(snapshot, NoteAdded(f"note {n + 1}")))
    return snapshot


def announced(
    store: Store,
    events: int,
    incident_id: str = CHECKOUT,
    notifiers: Sequence[str] = ("pager",),
) -> Incident:
    """Declare an incident and add notes up to ``events`` events, each announced to ``notifiers``.

    Every event gets one outbox item per notifier: one stream per (incident, notifier).
    """
    snapshot = write(store, declare_commit(incident_id, notifiers=notifiers))
    for n in range(events - 1):
        snapshot = write(
            store, next_commit(snapshot, NoteAdded(f"note {n + 1}"), notifiers=notifiers)
        )
    return snapshot


def item_id(seq: int, notifier: str = "pager", incident_id: str = CHECKOUT) -> str:
    """The outbox item id of event ``seq`` of ``incident_id`` for ``notifier``."""
    return f"{incident_id}:{seq}:{notifier}"


class FlakyNotifier(Notifier):
    """A notifier that fails while ``failing`` is True and records what it delivered."""

    name = "pager"

    def __init__(self, *, failing: bool = True) -> None:
        self.failing = failing
        self.delivered: list[Notification] = []

    def notify(self, notification: Notification) -> None:
        """Fail, or record the notification."""
        if self.failing:
            raise RuntimeError("pager is down")
        self.delivered.append(notification)

    def types(self) -> list[str]:
        """The event types delivered, in order."""
        return [n.event.type for n in self.delivered]


def run_whole_incident(flow: IncidentFlow, clock: FrozenClock) -> Incident:
    """Take a P1 from declaration to kb_updated through every kind of command."""
    inc = flow.declare("Checkout returns 500", severity="P1", commander="alice", actor="alice")
    i = inc.id
    flow.record_detection(i, method="alert", actor="alice")
    flow.start_triage(i, actor="alice")
    flow.add_evidence(i, source="journalctl", content="HTTP 500 on /checkout", actor="bob")
    for question in ("symptom", "started_at", "scope"):
        flow.answer_triage(i, question, f"answer for {question}", actor="bob")
    flow.add_note(i, "paging the payments team", actor="bob")
    flow.record_containment(i, "rolled back release 42", actor="alice")
    flow.contain(i, actor="alice")
    flow.start_rca(i, actor="alice")
    flow.add_why(i, "the gateway rejected the new header", actor="bob")
    flow.set_root_cause(i, "no contract test", process_gap="review misses API changes", actor="bob")
    flow.record_fix(
        i, "send the old header", test="test_gateway_header", staging_verified=True, actor="bob"
    )
    flow.record_deploy(i, actor="bob", ref="release-43")
    flow.mark_fixed(i, actor="alice")
    clock.advance(minutes=16)
    flow.confirm_by_user(i, user="carol", actor="alice", comment="works again")
    flow.resolve(i, actor="alice")
    flow.reclassify(i, "P2", reason="fewer users hit than thought", actor="alice")
    flow.assign_commander(i, "dave", actor="alice")
    due = date(2026, 12, 31)
    flow.add_action_item(i, "add a contract test", owner="bob", due=due, actor="dave")
    flow.draft_postmortem(i, actor="dave", summary="checkout failed for 20 minutes")
    flow.complete_postmortem(
        i,
        actor="dave",
        root_cause="no contract test",
        went_well=["fast rollback"],
        went_poorly=["late alert"],
    )
    flow.complete_action_item(i, 1, actor="bob")
    return flow.update_kb(
        i, symptom="HTTP 500 on checkout", early_signs="gateway 4xx", actor="dave"
    )


# The past incidents of the similar-incident tests: id, days before START, severity,
# title, symptom, root cause (statement, process gap), KB gotcha (slug, symptom,
# root cause, fix, early signs), and a dismissal reason.
_GATEWAY = "INC-2026-10-01-checkout-gateway"
_DEPLOY = "INC-2026-10-09-checkout-deploy"
_DISK = "INC-2026-10-14-disk-full"
_LOGIN = "INC-2026-10-20-login-slow"
_DNS = "INC-2026-10-27-dns-staging"
_CERT = "INC-2026-11-03-cert-expired"
_QUEUE = "INC-2026-11-10-queue-lag"
_SYNTAX = "INC-2026-11-17-syntax"
_PAST: tuple[
    tuple[
        str,
        int,
        Severity,
        str,
        str,
        tuple[str, str] | None,
        tuple[str, str, str, str, str] | None,
        str,
    ],
    ...,
] = (
    (
        _GATEWAY,
        57,
        Severity.P1,
        "Checkout returns 500: payment gateway timeout",
        "every checkout request answers HTTP 500 after 30 seconds",
        ("the payment gateway client waited 30 s with no retry", "no budget for third-party calls"),
        (
            "payment-gateway-timeout",
            "checkout 500 with gateway timeouts in the logs",
            "client timeout longer than the load balancer's",
            "a 5 s timeout with one retry",
            "gateway p99 latency above 2 s",
        ),
        "",
    ),
    (
        _DEPLOY,
        49,
        Severity.P1,
        "Checkout 500 errors after deploy of release 41",
        "orders fail with 500 since the deploy",
        ("release 41 opened a connection per request", "no load test before a release"),
        None,
        "",
    ),
    (
        _DISK,
        44,
        Severity.P2,
        "Disk full on db host",
        "postgres refuses writes: no space left on device",
        ("WAL archive never pruned", "no alert on disk usage"),
        (
            "disk-full-wal-archive",
            "writes fail with no space left",
            "WAL archive never pruned",
            "prune the archive nightly",
            "disk usage above 80 percent",
        ),
        "",
    ),
    (
        _LOGIN,
        38,
        Severity.P3,
        "Login slow for EU users",
        "login takes 10 seconds in Frankfurt",
        ("session cache evicted after the certificate rotation", "runbook skips cache warm-up"),
        None,
        "",
    ),
    (_DNS, 31, Severity.P3, "DNS resolution failing in staging", "", None, None, "false alarm"),
    (
        _CERT,
        24,
        Severity.P2,
        "TLS certificate expired on api host",
        "browsers show certificate errors",
        None,
        None,
        "",
    ),
    (
        _QUEUE,
        17,
        Severity.P3,
        "Queue consumer lag 40k messages",
        "notifications arrive an hour late",
        None,
        None,
        "",
    ),
    (
        _SYNTAX,
        10,
        Severity.P4,
        "Search \"NEAR\" AND (title:*) - OR NOT ^col: {x} [y] | & ! <-> \\ 'quoted'",
        "",
        None,
        None,
        "",
    ),
)

#: Queries written in FTS5 or tsquery syntax; every store reads them as plain words.
_SYNTAX_QUERIES = (
    '"checkout" NEAR/2 gateway*',
    "NOT checkout",
    "checkout AND -deploy OR :",
    "title:checkout",
    "{title symptom}: checkout",
    "checkout & !deploy | (500 <-> gateway):*",
    "'checkout' \\ \"500\"",
    "^checkout + - ( ) [ ]",
)


class StoreContract:
    """The tests every :class:`~incidentflow.stores.Store` passes; subclass and add make_store."""

    #: True when a store made again on the same ``tmp_path`` sees what the first one wrote.
    durable: ClassVar[bool] = True

    def make_store(self, tmp_path: Path) -> Store:
        """A store keeping its data under ``tmp_path``. Override in the backend's tests."""
        raise NotImplementedError(f"{type(self).__name__} must define make_store(tmp_path)")

    # -- fixtures ---------------------------------------------------------------------

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        """A fresh store, closed after the test."""
        store = self.make_store(tmp_path)
        try:
            yield store
        finally:
            store.close()

    @pytest.fixture
    def clock(self) -> FrozenClock:
        """A clock standing at START."""
        return FrozenClock(START)

    @pytest.fixture
    def flow(self, store: Store, clock: FrozenClock) -> IncidentFlow:
        """A flow on the store under test."""
        return IncidentFlow(store, clock=clock)

    @pytest.fixture
    def fleet(self, store: Store) -> dict[str, Incident]:
        """Seven incidents of every severity, in open and closed states, for list()."""
        # id, title, severity, commander, days before START, then: triage / dismiss / nothing
        plans = [
            ("INC-2026-11-20-db", "Database outage", Severity.P1, "alice", 7, "triage"),
            ("INC-2026-11-21-tiles", "Straße map tiles missing", Severity.P3, "bob", 6, ""),
            ("INC-2026-11-22-login", "Login slow", Severity.P2, "alice", 5, "dismiss"),
            ("INC-2026-11-23-checkout", "Checkout returns 500", Severity.P1, "carol", 4, ""),
            ("INC-2026-11-24-typo", "Typo on pricing page", Severity.P4, "bob", 3, "dismiss"),
            ("INC-2026-11-25-search", "Search is SLOW", Severity.P2, "alice", 2, "triage"),
            ("INC-2026-11-25-cache", "Cache stampede", Severity.P2, "carol", 2, ""),
        ]
        found = {}
        for incident_id, title, severity, commander, days, then in plans:
            at = START - timedelta(days=days)
            snapshot = write(
                store,
                declare_commit(
                    incident_id, title=title, severity=severity, commander=commander, at=at
                ),
            )
            if then == "triage":
                snapshot = write(store, next_commit(snapshot, TriageStarted()))
            elif then == "dismiss":
                snapshot = write(store, next_commit(snapshot, Dismissed("false alarm")))
            found[incident_id] = snapshot
        return found

    def reopen(self, store: Store, tmp_path: Path) -> Store:
        """Close ``store`` and make it again on the same location (durable stores only)."""
        if not self.durable:
            pytest.skip(f"{type(self).__name__}: the store is not durable")
        store.close()
        return self.make_store(tmp_path)

    def second(self, tmp_path: Path) -> Store:
        """Another store on the same location, as another process would open it."""
        if not self.durable:
            pytest.skip(f"{type(self).__name__}: the store is not shared between instances")
        return self.make_store(tmp_path)

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

    # -- list --------------------------------------------------------------------------------

    def assert_list(
        self, store: Store, fleet: dict[str, Incident], query: IncidentQuery, ids: Sequence[str]
    ) -> None:
        """list(query) gives the incidents ``ids`` in that order, as IncidentQuery.apply does."""
        found = store.list(query)
        assert [i.id for i in found] == list(ids)
        assert list(found) == query.apply(fleet.values())
        # The cheap readings agree with the snapshots: summaries in order, milestones as a set.
        assert list(store.summaries(query)) == [IncidentSummary.of(i) for i in found]
        assert {m.incident_id: m for m in store.milestones(query)} == {
            i.id: milestones(i) for i in found
        }

    def test_list_all_newest_first(self, store: Store, fleet: dict[str, Incident]) -> None:
        """By default every incident is listed, newest declaration first, ties by id."""
        ids = [
            "INC-2026-11-25-search",
            "INC-2026-11-25-cache",
            "INC-2026-11-24-typo",
            "INC-2026-11-23-checkout",
            "INC-2026-11-22-login",
            "INC-2026-11-21-tiles",
            "INC-2026-11-20-db",
        ]
        self.assert_list(store, fleet, IncidentQuery(), ids)

    def test_list_oldest_first(self, store: Store, fleet: dict[str, Incident]) -> None:
        """newest_first=False reverses the order."""
        query = IncidentQuery(newest_first=False, limit=3)
        self.assert_list(
            store,
            fleet,
            query,
            ["INC-2026-11-20-db", "INC-2026-11-21-tiles", "INC-2026-11-22-login"],
        )

    def test_list_by_state(self, store: Store, fleet: dict[str, Incident]) -> None:
        """states= keeps incidents in any of the given states."""
        query = IncidentQuery(states=frozenset({State.TRIAGING}))
        self.assert_list(store, fleet, query, ["INC-2026-11-25-search", "INC-2026-11-20-db"])
        both = IncidentQuery(states=frozenset({State.TRIAGING, State.DISMISSED}))
        assert len(store.list(both)) == 4
        assert list(store.list(both)) == both.apply(fleet.values())

    def test_list_by_severity(self, store: Store, fleet: dict[str, Incident]) -> None:
        """severities= keeps incidents of any of the given severities."""
        query = IncidentQuery(severities=frozenset({Severity.P1}))
        self.assert_list(store, fleet, query, ["INC-2026-11-23-checkout", "INC-2026-11-20-db"])
        several = IncidentQuery(severities=frozenset({Severity.P3, Severity.P4}))
        self.assert_list(store, fleet, several, ["INC-2026-11-24-typo", "INC-2026-11-21-tiles"])

    def test_list_open_only(self, store: Store, fleet: dict[str, Incident]) -> None:
        """open_only=True drops dismissed (closed) incidents."""
        ids = [
            "INC-2026-11-25-search",
            "INC-2026-11-25-cache",
            "INC-2026-11-23-checkout",
            "INC-2026-11-21-tiles",
            "INC-2026-11-20-db",
        ]
        self.assert_list(store, fleet, IncidentQuery(open_only=True), ids)

    def test_list_open_p1(self, store: Store, fleet: dict[str, Incident]) -> None:
        """The dashboard query: open P1 incidents."""
        query = IncidentQuery(open_only=True, severities=frozenset({Severity.P1}))
        self.assert_list(store, fleet, query, ["INC-2026-11-23-checkout", "INC-2026-11-20-db"])

    def test_list_by_commander(self, store: Store, fleet: dict[str, Incident]) -> None:
        """commander= keeps the incidents that commander leads."""
        query = IncidentQuery(commander="carol")
        self.assert_list(store, fleet, query, ["INC-2026-11-25-cache", "INC-2026-11-23-checkout"])

    def test_list_declared_between(self, store: Store, fleet: dict[str, Incident]) -> None:
        """declared_after is inclusive, declared_before exclusive."""
        query = IncidentQuery(
            declared_after=START - timedelta(days=5), declared_before=START - timedelta(days=3)
        )
        self.assert_list(store, fleet, query, ["INC-2026-11-23-checkout", "INC-2026-11-22-login"])

    def test_list_declared_after_other_timezone(
        self, store: Store, fleet: dict[str, Incident]
    ) -> None:
        """Bounds in another time zone compare by instant."""
        bound = (START - timedelta(days=2)).astimezone(timezone(timedelta(hours=2)))
        query = IncidentQuery(declared_after=bound)
        self.assert_list(store, fleet, query, ["INC-2026-11-25-search", "INC-2026-11-25-cache"])

    def test_list_text_in_title(self, store: Store, fleet: dict[str, Incident]) -> None:
        """text= matches part of the title, ignoring case (casefolded: "STRASSE" finds "Straße")."""
        slow = ["INC-2026-11-25-search", "INC-2026-11-22-login"]
        self.assert_list(store, fleet, IncidentQuery(text="slow"), slow)
        self.assert_list(store, fleet, IncidentQuery(text="STRASSE"), ["INC-2026-11-21-tiles"])
        self.assert_list(store, fleet, IncidentQuery(text="%"), [])
        self.assert_list(store, fleet, IncidentQuery(text="_"), [])

    def test_list_paging(self, store: Store, fleet: dict[str, Incident]) -> None:
        """Pages of ``limit`` from ``offset`` cover the ordered results without gaps or overlaps."""
        pages = [
            [i.id for i in store.list(IncidentQuery(limit=3, offset=offset))]
            for offset in (0, 3, 6)
        ]
        assert [len(page) for page in pages] == [3, 3, 1]
        assert [i for page in pages for i in page] == [i.id for i in store.list(IncidentQuery())]

    def test_list_offset_beyond_the_end(self, store: Store, fleet: dict[str, Incident]) -> None:
        """An offset past the last match gives an empty page."""
        assert list(store.list(IncidentQuery(offset=50))) == []

    def test_list_combined_filters(self, store: Store, fleet: dict[str, Incident]) -> None:
        """Filters combine with AND."""
        query = IncidentQuery(
            open_only=True,
            commander="alice",
            severities=frozenset({Severity.P1, Severity.P2}),
            declared_after=START - timedelta(days=6),
        )
        self.assert_list(store, fleet, query, ["INC-2026-11-25-search"])

    def test_list_follows_changes(self, store: Store, fleet: dict[str, Incident]) -> None:
        """A reclassified, reassigned, dismissed incident moves between filters."""
        checkout = fleet["INC-2026-11-23-checkout"]
        changed = write(
            store,
            next_commit(
                checkout,
                Reclassified(Severity.P3, Severity.P1, "fewer users", False),
                CommanderAssigned("dave"),
                Dismissed("duplicate", "INC-2026-11-20-db"),
            ),
        )
        fleet[checkout.id] = changed
        query = IncidentQuery(open_only=True, severities=frozenset({Severity.P1}))
        self.assert_list(store, fleet, query, ["INC-2026-11-20-db"])
        self.assert_list(store, fleet, IncidentQuery(commander="dave"), [checkout.id])
        assert store.list(IncidentQuery(commander="dave"))[0] == changed

    def test_list_empty_store(self, store: Store) -> None:
        """An empty store lists nothing."""
        assert list(store.list(IncidentQuery())) == []
        assert list(store.list(IncidentQuery(open_only=True, text="x"))) == []

    def test_list_through_flow(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """flow.list() filters with the store."""
        p1 = flow.declare("Checkout returns 500", severity="P1", commander="alice", actor="a")
        clock.advance(minutes=1)
        flow.declare("Search is slow", severity="P3", commander="bob", actor="b")
        assert [i.id for i in flow.list(severity="P1", open_only=True)] == [p1.id]
        assert len(flow.list()) == 2

    def test_milestones_follow_every_commit(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Milestones and summaries reflect the latest event, checkpointed or not."""
        inc = flow.declare("Checkout returns 500", severity="P2", commander="alice", actor="a")
        clock.advance(minutes=3)
        flow.start_triage(inc.id, actor="a")
        clock.advance(minutes=1)
        # Neither a note nor a detection changes the state: no new checkpoint is due.
        flow.add_note(inc.id, "paged the DBA", actor="a")
        detected = flow.record_detection(
            inc.id,
            method="alert",
            actor="a",
            first_occurred_at=inc.declared_at - timedelta(minutes=20),
            detected_at=inc.declared_at - timedelta(minutes=2),
        )
        flow.reclassify(inc.id, "P1", reason="all regions", actor="a")
        latest = flow.get(inc.id)
        [found] = flow.milestones()
        assert found == milestones(latest)
        assert found.detected_at == detected.detection.detected_at  # type: ignore[union-attr]
        assert found.severity is Severity.P1
        assert flow.summaries() == [IncidentSummary.of(latest)]
        [summary] = flow.metrics()
        assert summary.time_to_acknowledge.mean == timedelta(minutes=3)
        assert summary.time_to_detect.mean == timedelta(minutes=18)

    # -- similar incidents -------------------------------------------------------------------

    @pytest.fixture
    def past(self, store: Store) -> dict[str, Incident]:
        """Eight past incidents with symptoms, root causes and KB gotchas, for search()."""
        found = {}
        for incident_id, days, severity, title, symptom, cause, gotcha, dismissal in _PAST:
            at = START - timedelta(days=days)
            snapshot = write(
                store, declare_commit(incident_id, title=title, severity=severity, at=at)
            )
            steps: list[EventData] = [TriageStarted()]
            if symptom:
                steps += [TriageAnswered("symptom", symptom), TriageAnswered("scope", "everyone")]
            if cause is not None:
                steps.append(RootCauseSet(*cause))
            if gotcha is not None:
                steps.append(KbUpdated(*gotcha))
            if dismissal:
                steps.append(Dismissed(dismissal))
            for step in steps:  # one commit each: the index follows every change
                snapshot = write(store, next_commit(snapshot, step, at=at))
            found[incident_id] = snapshot
        return found

    def ids(self, found: Sequence[object]) -> list[str]:
        """The incident ids of a search's answer, in order."""
        return [getattr(item, "incident_id", None) or "" for item in found]

    def test_search_ranks_the_checkout_incidents_first(
        self, store: Store, past: dict[str, Incident]
    ) -> None:
        """A new "checkout returns 500 after deploy" finds the two past checkout incidents first."""
        new = write(store, declare_commit(title="Checkout returns 500 after deploy"))
        found = store.search(SearchText.of(new).query, exclude=new.id, limit=2)
        assert set(self.ids(found)) == {_GATEWAY, _DEPLOY}

    def test_search_orders_by_relevance(self, store: Store, past: dict[str, Incident]) -> None:
        """The incident sharing more words comes first, and the scores never rise down the list."""
        found = store.search("TLS certificate expired")
        assert self.ids(found)[:2] == [_CERT, _LOGIN]
        scores = [item.score for item in found]
        assert scores == sorted(scores, reverse=True)
        assert all(score > 0 for score in scores)

    def test_search_leaves_out_the_excluded_incident(
        self, store: Store, past: dict[str, Incident]
    ) -> None:
        """exclude= leaves the incident being compared out; without it, it comes first."""
        title = past[_QUEUE].title
        assert self.ids(store.search(title))[0] == _QUEUE
        assert _QUEUE not in self.ids(store.search(title, exclude=_QUEUE))

    def test_search_finds_dismissed_and_closed_incidents(
        self, store: Store, past: dict[str, Incident]
    ) -> None:
        """Past incidents are found whatever their state: dismissed and kb_updated ones too."""
        [dismissed] = store.search("DNS resolution staging")
        assert (dismissed.incident_id, dismissed.state) == (_DNS, State.DISMISSED)
        [closed] = store.search("nightly prune")
        assert (closed.incident_id, closed.state) == (_DISK, State.KB_UPDATED)

    def test_search_answer_carries_the_gotcha(
        self, store: Store, past: dict[str, Incident]
    ) -> None:
        """An answer names the fields that matched, the symptom, root cause and gotcha slug."""
        [best] = store.search("p99 latency")
        gateway = past[_GATEWAY]
        assert best.incident_id == _GATEWAY
        assert best.matched == ("gotcha",)
        assert best.gotcha_slug == "payment-gateway-timeout"
        assert best.title == gateway.title
        assert (best.severity, best.state) == (Severity.P1, State.KB_UPDATED)
        assert best.declared_at == gateway.declared_at
        assert best.symptom == "every checkout request answers HTTP 500 after 30 seconds"
        assert best.root_cause == (
            "the payment gateway client waited 30 s with no retry\nno budget for third-party calls"
        )
        [login] = store.search("Frankfurt rotation")
        assert login.matched == ("symptom", "root_cause")
        assert login.gotcha_slug is None

    def test_search_honours_limit(self, store: Store, past: dict[str, Incident]) -> None:
        """limit= caps the answer, which starts as a longer answer does."""
        query = "checkout 500 deploy disk login queue certificate"
        longer = self.ids(store.search(query, limit=8))
        assert set(longer) == {_GATEWAY, _DEPLOY, _DISK, _LOGIN, _CERT, _QUEUE}
        assert self.ids(store.search(query, limit=3)) == longer[:3]
        assert self.ids(store.search(query, limit=1)) == longer[:1]

    def test_search_without_a_match_is_empty(self, store: Store, past: dict[str, Incident]) -> None:
        """Words no incident holds, stop words alone, or no words at all find nothing."""
        for query in ("kubernetes etcd quorum", "the and of", "!!! ... ---", ""):
            assert list(store.search(query)) == []

    def test_search_on_an_empty_store(self, store: Store) -> None:
        """An empty store finds nothing."""
        assert list(store.search("checkout returns 500")) == []

    @pytest.mark.parametrize("query", _SYNTAX_QUERIES)
    def test_search_reads_query_syntax_as_words(
        self, store: Store, past: dict[str, Incident], query: str
    ) -> None:
        """FTS5 and tsquery operators in a query neither fail nor act: they are words."""
        found = self.ids(store.search(query, limit=8))
        assert _GATEWAY in found
        assert _DEPLOY in found

    def test_search_primitive_quotes_its_terms(
        self, store: Store, past: dict[str, Incident]
    ) -> None:
        """Even terms full of syntax reach the backend's ranking as words, never as operators."""
        terms = ("checkout", 'x" OR "y', "title:disk", "NEAR(a b)", "a'b", "!&|<->", "*", ")")
        assert _GATEWAY in self.ids(store._search(terms, exclude=None, limit=8))

    def test_search_finds_titles_full_of_syntax(
        self, store: Store, past: dict[str, Incident]
    ) -> None:
        """An incident whose title is full of query syntax is found by its own words."""
        found = store.search(past[_SYNTAX].title)
        assert self.ids(found)[0] == _SYNTAX
        assert found[0].title == past[_SYNTAX].title

    def test_search_follows_changes(self, store: Store) -> None:
        """The symptom, root cause and gotcha are searchable as they change; evidence is not."""
        snapshot = write(store, declare_commit(title="Checkout returns 500"))
        snapshot = write(
            store,
            next_commit(snapshot, TriageStarted(), EvidenceAdded("journalctl", "zebra stampede")),
        )
        snapshot = write(store, next_commit(snapshot, TriageAnswered("scope", "walrus users")))
        assert list(store.search("zebra walrus")) == []
        snapshot = write(store, next_commit(snapshot, TriageAnswered("symptom", "carts vanish")))
        assert [item.matched for item in store.search("carts vanish")] == [("symptom",)]
        snapshot = write(store, next_commit(snapshot, TriageAnswered("symptom", "double charge")))
        assert list(store.search("carts vanish")) == []
        assert self.ids(store.search("double charge")) == [CHECKOUT]
        cause = RootCauseSet("idempotency key dropped by the proxy", "no contract test")
        snapshot = write(store, next_commit(snapshot, cause))
        [found] = store.search("idempotency proxy")
        assert (found.matched, found.root_cause) == (
            ("root_cause",),
            "idempotency key dropped by the proxy\nno contract test",
        )
        gotcha = KbUpdated("double-charge", "billed twice", "proxy", "keep keys", "dup alerts")
        write(store, next_commit(snapshot, gotcha))
        [found] = store.search("billed twice")
        assert (found.matched, found.gotcha_slug) == (("gotcha",), "double-charge")
        assert found.state is State.KB_UPDATED

    def test_search_unicode(self, store: Store) -> None:
        """Awkward Unicode is searchable by its words and comes back unchanged."""
        declared = write(store, declare_commit(title=AWKWARD_TEXT[:200]))
        [found] = store.search("Zahlung schlägt fehl")
        assert found.incident_id == declared.id
        assert found.title == AWKWARD_TEXT[:200]

    def test_search_after_reopening(
        self, store: Store, past: dict[str, Incident], tmp_path: Path
    ) -> None:
        """A store made again on the same location searches what was written before."""
        before = self.ids(store.search("checkout 500 deploy"))
        reopened = self.reopen(store, tmp_path)
        try:
            assert self.ids(reopened.search("checkout 500 deploy")) == before
        finally:
            reopened.close()

    def test_search_sees_another_store_writing(self, store: Store, tmp_path: Path) -> None:
        """What another store object (another process) writes is searchable at once."""
        other = self.second(tmp_path)
        try:
            first = write(other, declare_commit(title="Checkout returns 500"))
            assert self.ids(store.search("checkout")) == [CHECKOUT]
            write(other, next_commit(first, TriageStarted(), TriageAnswered("symptom", "carts")))
            assert [item.matched for item in store.search("carts")] == [("symptom",)]
        finally:
            other.close()

    def test_similar_through_flow(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """flow.similar() finds past incidents by the new one's text, never the new one itself."""
        old = flow.declare("Payment gateway timeout", severity="P2", commander="bob", actor="b")
        flow.start_triage(old.id, actor="bob")
        flow.answer_triage(old.id, "symptom", "checkout hangs, then 500", actor="bob")
        clock.advance(days=1)
        flow.declare("Disk full on db host", severity="P3", commander="bob", actor="bob")
        new = flow.declare("Checkout returns 500", severity="P1", commander="al", actor="al")
        found = flow.similar(new.id)
        assert [(item.incident_id, item.matched) for item in found] == [(old.id, ("symptom",))]
        assert self.ids(flow.similar(text="disk")) == ["INC-2026-11-28-disk-full-on-db-host"]

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
