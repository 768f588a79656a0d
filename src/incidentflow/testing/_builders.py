"""Commits built as IncidentFlow builds them, and the data the store contract writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from .._decide import evolve
from .._events import (
    Declared,
    Event,
    EventData,
    NoteAdded,
)
from .._flow import IncidentFlow
from .._model import Incident, Severity
from ..notifiers._base import Notification, Notifier
from ..stores._base import (
    Commit,
    IdempotencyRecord,
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
