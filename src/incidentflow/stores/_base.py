"""The storage contract: what every backend implements, and the records it keeps."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from .._events import Event
from .._model import Incident, Severity, State
from .._similar import SearchDocument, SimilarIncident, query_terms, rank

if TYPE_CHECKING:
    from .._metrics import Milestones

__all__ = [
    "Commit",
    "IdempotencyRecord",
    "IncidentQuery",
    "IncidentSummary",
    "OutboxItem",
    "Store",
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

    """

    incident_id: str
    expected_version: int
    events: tuple[Event, ...]
    snapshot: Incident
    outbox: tuple[OutboxItem, ...] = ()
    idempotency: IdempotencyRecord | None = None


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

    """

    id: str
    title: str
    severity: Severity
    state: State
    commander: str
    declared_at: datetime
    updated_at: datetime
    version: int

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


class Store(abc.ABC):
    """Where incidents live: an append-only event history per incident plus a snapshot.

    A backend implements these primitives; validation, deciding, rendering and
    notifying happen once, above them, in :class:`~incidentflow.IncidentFlow`.
    """

    @abc.abstractmethod
    def append(self, commit: Commit) -> None:
        """Write a commit atomically: events, snapshot, outbox and idempotency record.

        Raises:
            DuplicateIncident: ``expected_version`` is 0 and the incident exists.
            ConcurrencyConflict: the incident is not at ``expected_version``.
            StoreError: the backend failed; nothing was written.

        """

    @abc.abstractmethod
    def load(self, incident_id: str) -> Incident:
        """The current snapshot. Raises IncidentNotFound."""

    @abc.abstractmethod
    def history(self, incident_id: str, after: int = 0) -> Sequence[Event]:
        """The events with seq greater than ``after``, in order. Raises IncidentNotFound."""

    @abc.abstractmethod
    def list(self, query: IncidentQuery) -> Sequence[Incident]:
        """Snapshots matching ``query``, ordered and paged."""

    def summaries(self, query: IncidentQuery) -> Sequence[IncidentSummary]:
        """What :meth:`list` returns, as summaries; backends with columns override it."""
        return [IncidentSummary.of(incident) for incident in self.list(query)]

    @abc.abstractmethod
    def idempotency(self, key: str) -> IdempotencyRecord | None:
        """The record kept for an idempotency key, if any."""

    @abc.abstractmethod
    def pending(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Outbox items not yet delivered and not dead, oldest first."""

    @abc.abstractmethod
    def mark_delivered(self, ids: Iterable[str]) -> None:
        """Remove delivered items from the outbox."""

    def claim(
        self,
        *,
        now: datetime,
        limit: int,
        lease: timedelta,
        worker: str,
        incident_id: str | None = None,
    ) -> Sequence[OutboxItem]:
        """Claim up to ``limit`` items that are due, for ``lease``, for one worker.

        With ``incident_id``, only that incident's streams are looked at (inline
        delivery after a command uses this).

        Only the head of each stream is claimable: the oldest undelivered,
        not-dead item of one incident for one notifier, so each notifier hears
        about an incident's events in order. An item is due when its
        ``next_attempt_at`` has passed and no other worker holds an unexpired
        claim on it. Claimed items are not handed out again until the lease
        ends, so workers on several hosts share the work without doubling it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support delivery yet")

    def settle_and_claim(
        self,
        delivered: Iterable[str],
        *,
        now: datetime,
        limit: int,
        lease: timedelta,
        worker: str,
    ) -> Sequence[OutboxItem]:
        """Mark ``delivered`` items delivered, then :meth:`claim` up to ``limit`` more.

        A dispatcher's round: backends that can do both in one transaction or
        round trip override this; the default makes the two calls.
        """
        settled = list(delivered)
        if settled:
            self.mark_delivered(settled)
        if limit < 1:
            return []
        return self.claim(now=now, limit=limit, lease=lease, worker=worker)

    def mark_failed(
        self, item_id: str, *, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        """Record a failed attempt: count it, release the claim, and retry later or give up."""
        raise NotImplementedError(f"{type(self).__name__} does not support delivery yet")

    def dead_letters(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Items that gave up, oldest first."""
        raise NotImplementedError(f"{type(self).__name__} does not support delivery yet")

    def redrive(self, ids: Iterable[str]) -> int:
        """Put dead items back in line with a fresh attempt count; returns how many."""
        raise NotImplementedError(f"{type(self).__name__} does not support delivery yet")

    def milestones(self, query: IncidentQuery) -> Iterator[Milestones]:
        """The milestones of the incidents matching ``query``, for metrics.

        The default takes them from :meth:`list`'s snapshots; a backend that can
        read them without building snapshots overrides it.
        """
        from .._metrics import milestones

        return (milestones(incident) for incident in self.list(query))

    def exists(self, incident_id: str) -> bool:
        """True when an incident with this id exists."""
        from ..exceptions import IncidentNotFound

        try:
            self.load(incident_id)
        except IncidentNotFound:
            return False
        return True

    def search(
        self, text: str, *, exclude: str | None = None, limit: int = 5
    ) -> Sequence[SimilarIncident]:
        """Incidents whose title, symptom, root cause or KB gotcha share words with ``text``.

        Best first, at most ``limit``; ``exclude`` leaves one incident out (the
        one being compared). Incidents in every state are searched, closed and
        dismissed ones included. The query is ``text``'s words, lower-cased,
        without English stop words and one-letter words, at most 64; text
        without any gives an empty answer. Backends rank in ``_search``: the
        default ranks every snapshot in memory (BM25F), SQLite and PostgreSQL
        use their full-text indexes.
        """
        terms = query_terms(text)
        if not terms or limit < 1:
            return ()
        return self._search(terms, exclude=exclude, limit=limit)

    def _search(
        self, terms: tuple[str, ...], *, exclude: str | None, limit: int
    ) -> Sequence[SimilarIncident]:
        """Rank every incident against ``terms``: the simple ranking in memory.

        BM25F over the snapshots :meth:`list` returns (see
        :func:`~incidentflow._similar.rank`). Stores with a full-text index
        override it.
        """
        documents = (SearchDocument.of(incident) for incident in self.list(IncidentQuery()))
        return rank(documents, terms, exclude=exclude, limit=limit)

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections and file handles."""
