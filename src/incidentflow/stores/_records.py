"""The records a store keeps and answers with: commits, outbox items, summaries, queries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import attrs

from .._events import Event
from .._model import FieldValue, Incident, Reference, Severity, State

__all__ = [
    "Commit",
    "IdempotencyRecord",
    "IncidentQuery",
    "IncidentSummary",
    "OutboxItem",
    "has_open_action_items",
    "same_value",
]


@attrs.frozen
class OutboxItem:
    """A notification waiting to be delivered to one notifier.

    Written in the same transaction as the event it announces, so a committed
    event is never lost and never announced before it is committed.

    Attributes:
        id: ``<incident id>:<seq>:<notifier>`` (``<incident id>:<seq>`` without a notifier).
        event: The committed event to announce.
        notifier: The name of the notifier it goes to (``""``: every notifier).
        attempts: Failed delivery attempts so far.
        next_attempt_at: Not to be tried before this time (``None``: at once).
        last_error: What the last failed attempt said (never a secret).
        dead: True once it gave up; it waits in the dead letters to be re-driven.

    """

    id: str
    event: Event
    notifier: str = ""
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str = ""
    dead: bool = False

    @classmethod
    def for_event(cls, event: Event, notifier: str = "") -> OutboxItem:
        """The outbox item announcing ``event`` to ``notifier``."""
        suffix = f":{notifier}" if notifier else ""
        return cls(id=f"{event.incident_id}:{event.seq}{suffix}", event=event, notifier=notifier)

    @property
    def notification_id(self) -> str:
        """The id receivers see and drop duplicates by: ``<incident id>:<seq>``."""
        return f"{self.event.incident_id}:{self.event.seq}"


@attrs.frozen
class IdempotencyRecord:
    """What a command with an idempotency key produced the first time.

    Attributes:
        key: The caller's idempotency key.
        fingerprint: The command name and payload it was first used with.
        incident_id: The incident the command ran on.
        version: The incident's version right after the command.

    """

    key: str
    fingerprint: str
    incident_id: str
    version: int


@attrs.frozen
class Commit:
    """Everything one command writes, atomically.

    Attributes:
        incident_id: The incident written to.
        expected_version: The version the command was decided on (0 for a new incident).
        events: The new events, seq ``expected_version + 1`` onwards.
        snapshot: The snapshot after the events.
        outbox: Notifications to deliver once committed.
        idempotency: The idempotency record to keep, if the command had a key.
        index_changed: False when the events change nothing the query index keeps
            beside the snapshot (type, labels, custom fields, references, action
            items, open or not): a store may then leave those index rows alone.

    """

    incident_id: str
    expected_version: int
    events: tuple[Event, ...]
    snapshot: Incident
    outbox: tuple[OutboxItem, ...] = ()
    idempotency: IdempotencyRecord | None = None
    index_changed: bool = True


@attrs.frozen
class IncidentSummary:
    """One line of a listing: what a table of incidents shows, without the snapshot.

    Attributes:
        id: The incident's id.
        title: What is broken, in a line.
        severity: Its current severity.
        state: Where it stands in the lifecycle.
        commander: The incident commander.
        declared_at: When it was declared (aware UTC).
        updated_at: When its last event was recorded.
        version: The number of events in its history.
        type: Its incident type (``availability``, ``security``, ...).

    """

    id: str
    title: str
    severity: Severity
    state: State
    commander: str
    declared_at: datetime
    updated_at: datetime
    version: int
    type: str = "availability"

    @classmethod
    def of(cls, incident: Incident) -> IncidentSummary:
        """The summary of a snapshot."""
        return cls(
            incident.id,
            incident.title,
            incident.severity,
            incident.state,
            incident.commander,
            incident.declared_at,
            incident.updated_at,
            incident.version,
            incident.type,
        )


@attrs.frozen(kw_only=True)
class IncidentQuery:
    """Filters, order and paging for :meth:`Store.list`. Unset filters match all.

    Attributes:
        states: Only incidents in one of these states.
        severities: Only incidents of one of these severities.
        open_only: Only incidents that are not yet resolved or dismissed.
        commander: Only incidents led by this commander.
        declared_after: Only incidents declared at or after this time.
        declared_before: Only incidents declared before this time.
        text: Only incidents whose title contains this text (case-insensitive).
        types: Only incidents of one of these types.
        labels: Only incidents carrying every one of these labels.
        fields: Only incidents whose custom fields hold every one of these
            values (of the same type: ``1`` does not match ``True`` or ``1.0``).
        reference: Only incidents holding this external reference.
        open_action_items: Only incidents with at least one open action item
            (in any state, closed incidents included).
        visible_to: Only incidents these names (an actor, ``group:<name>``) may
            see: unrestricted ones and those restricted to one of them
            (``None``: every incident).
        newest_first: Order by declaration time, newest first (default) or oldest first.
        limit: At most this many incidents.
        offset: Skip this many matching incidents first.

    """

    states: frozenset[State] | None = None
    severities: frozenset[Severity] | None = None
    open_only: bool = False
    commander: str | None = None
    declared_after: datetime | None = None
    declared_before: datetime | None = None
    text: str | None = None
    types: frozenset[str] | None = None
    labels: Mapping[str, str] | None = None
    fields: Mapping[str, FieldValue] | None = None
    reference: Reference | None = None
    open_action_items: bool = False
    visible_to: frozenset[str] | None = None
    newest_first: bool = True
    limit: int | None = None
    offset: int = 0

    def matches(self, incident: Incident) -> bool:
        """True when ``incident`` passes every filter."""
        return (
            (self.states is None or incident.state in self.states)
            and (self.severities is None or incident.severity in self.severities)
            and (not self.open_only or incident.is_open)
            and (self.commander is None or incident.commander == self.commander)
            and (self.declared_after is None or incident.declared_at >= self.declared_after)
            and (self.declared_before is None or incident.declared_at < self.declared_before)
            and (self.text is None or self.text.casefold() in incident.title.casefold())
            and (self.types is None or incident.type in self.types)
            and (self.labels is None or _holds(incident.labels, self.labels))
            and (self.fields is None or _holds(incident.custom_fields, self.fields))
            and (self.reference is None or self.reference in incident.references)
            and (not self.open_action_items or has_open_action_items(incident))
            and (
                self.visible_to is None
                or not incident.restricted_to
                or not self.visible_to.isdisjoint(incident.restricted_to)
            )
        )

    def apply(self, incidents: Iterable[Incident]) -> list[Incident]:
        """Filter, order and page ``incidents`` in Python (for simple stores)."""
        found = sorted(
            (i for i in incidents if self.matches(i)),
            key=lambda i: (i.declared_at, i.id),
            reverse=self.newest_first,
        )
        end = None if self.limit is None else self.offset + self.limit
        return found[self.offset : end]


def has_open_action_items(incident: Incident) -> bool:
    """True when at least one of the incident's action items is still open."""
    return any(item.open for item in incident.action_items)


def same_value(held: object, wanted: object) -> bool:
    """Equal and of the same type: a field holding ``1`` does not match ``True``."""
    return type(held) is type(wanted) and held == wanted


def _holds(held: Mapping[str, object], wanted: Mapping[str, object]) -> bool:
    missing = object()
    return all(same_value(held.get(key, missing), value) for key, value in wanted.items())
