"""The three protocols a storage backend implements, each in full, and their combination.

- :class:`EventStore`: each incident's append-only history and its snapshot.
- :class:`Outbox`: notifications written with the events, claimed and settled
  by delivery workers.
- :class:`QueryIndex`: listing, summaries, finding by reference, similar
  incidents and milestones.

They are abstract base classes: ``isinstance(store, Outbox)`` tells whether a
backend can deliver notifications, and a backend that leaves a method out
cannot be instantiated. :class:`Store` is all three; every backend shipped
with incidentflow is one. Shared behaviour a backend may choose lives in
mixins beside them (:mod:`incidentflow.stores._appending`,
:mod:`incidentflow.stores._scanning`).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .._events import Event
from .._model import Incident, Reference
from ._records import Commit, IdempotencyRecord, IncidentQuery, IncidentSummary, OutboxItem

if TYPE_CHECKING:
    from .._metrics import Milestones
    from .._similar import SimilarIncident

__all__ = ["EventStore", "Outbox", "QueryIndex", "Store"]


class EventStore(abc.ABC):
    """Each incident's append-only event history and its current snapshot."""

    @abc.abstractmethod
    def append(self, commit: Commit) -> None:
        """Write a commit atomically: events, snapshot, outbox items and idempotency record.

        Raises:
            DuplicateIncident: ``expected_version`` is 0 and the incident exists.
            ReferenceTaken: the snapshot is open and holds an external reference
                another open incident holds (checked atomically with the write).
            ConcurrencyConflict: the incident is not at ``expected_version``.
            IdempotencyConflict: another commit already kept the commit's
                idempotency key (nothing of this commit was written).
            StoreError: the commit is malformed or the backend failed; nothing was written.

        """

    def _append_event(self, event: Event, snapshot: Incident) -> None:
        """:meth:`append` of the commit of ``event`` alone: no outbox, no key, no index change.

        The flow's usual command commits this; a store may write it without
        building the commit (the memory store does). It raises what
        :meth:`append` raises for that commit.
        """
        version = event.seq - 1
        self.append(Commit(event.incident_id, version, (event,), snapshot, (), None, False))

    @abc.abstractmethod
    def load(self, incident_id: str) -> Incident:
        """The current snapshot. Raises IncidentNotFound."""

    def cached(self, incident_id: str) -> Incident | None:
        """The snapshot this store last saw of the incident, read from memory only.

        None when it holds none (the default, for stores without a cache). It
        may be stale: another process may have committed since. A caller may
        decide a command on it and commit with its version as
        ``expected_version``, saving the read of the current version; on
        ConcurrencyConflict (or any refusal) it must :meth:`load` the incident
        and decide again.
        """
        return None

    @abc.abstractmethod
    def history(self, incident_id: str, after: int = 0) -> Sequence[Event]:
        """The events with seq greater than ``after``, in order. Raises IncidentNotFound."""

    @abc.abstractmethod
    def exists(self, incident_id: str) -> bool:
        """True when an incident with this id exists."""

    @abc.abstractmethod
    def idempotency(self, key: str) -> IdempotencyRecord | None:
        """The record kept for an idempotency key, if its commit was written."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections and file handles. Closing twice is harmless."""


class Outbox(abc.ABC):
    """Notifications waiting for delivery, in streams of one incident and one notifier.

    Items arrive with the commit that announces them (:meth:`EventStore.append`).
    Each stream is delivered in seq order: only its head, the oldest item that
    is not dead, may be claimed.
    """

    @abc.abstractmethod
    def pending(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Outbox items not yet delivered and not dead, oldest first."""

    @abc.abstractmethod
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
        delivery after a command uses this). Only the head of each stream is
        claimable. An item is due when its ``next_attempt_at`` has passed and no
        other worker holds an unexpired claim on it; claimed items are not
        handed out again until the lease ends, so workers on several hosts
        share the work without doubling it.
        """

    @abc.abstractmethod
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

        A dispatcher's round; with ``limit`` below 1 it only marks.
        """

    @abc.abstractmethod
    def mark_delivered(self, ids: Iterable[str]) -> None:
        """Remove delivered items from the outbox; unknown ids are ignored."""

    @abc.abstractmethod
    def mark_failed(
        self, item_id: str, *, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        """Record a failed attempt: count it, release the claim, and retry later or give up."""

    @abc.abstractmethod
    def dead_letters(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Items that gave up, oldest first."""

    @abc.abstractmethod
    def redrive(self, ids: Iterable[str]) -> int:
        """Put dead items back in line with a fresh attempt count; returns how many."""


class QueryIndex(abc.ABC):
    """Questions about many incidents at once: listings, similar incidents, metrics.

    Restricted incidents are the index's to hide: :meth:`list`, :meth:`summaries`,
    :meth:`milestones` and :meth:`search` leave out every incident that
    :attr:`IncidentQuery.visible_to` (or ``visible_to=``) may not see, *before*
    they order, page or rank, so a viewer's page is as long as anyone's. The
    facade does not filter their answers again: a backend that showed more
    would leak, so the contract suite
    (:class:`incidentflow.testing.QueryIndexContract`) checks it on every
    backend, paging included. :meth:`find_reference` ignores visibility: the
    facade uses it to keep references unique, never to show incidents.
    """

    @abc.abstractmethod
    def list(self, query: IncidentQuery) -> Sequence[Incident]:
        """Snapshots matching ``query``, ordered and paged."""

    @abc.abstractmethod
    def summaries(self, query: IncidentQuery) -> Sequence[IncidentSummary]:
        """What :meth:`list` returns, as summaries (no snapshot needed)."""

    @abc.abstractmethod
    def search(
        self,
        text: str,
        *,
        exclude: str | None = None,
        limit: int = 5,
        types: frozenset[str] | None = None,
        visible_to: frozenset[str] | None = None,
    ) -> Sequence[SimilarIncident]:
        """Incidents whose title, symptom, root cause or KB gotcha share words with ``text``.

        Best first, at most ``limit``; ``exclude`` leaves one incident out (the
        one being compared), ``types`` keeps the incidents of those types,
        ``visible_to`` those these names may see (as :attr:`IncidentQuery.visible_to`),
        before the best ``limit`` are taken.
        Incidents in every state are searched, closed and dismissed ones
        included. The query is ``text``'s words, lower-cased, without English
        stop words and one-letter words, at most 64; text without any gives an
        empty answer.
        """

    @abc.abstractmethod
    def milestones(self, query: IncidentQuery) -> Iterator[Milestones]:
        """The milestones of the incidents matching ``query``, for metrics."""

    @abc.abstractmethod
    def find_reference(
        self, reference: Reference, *, open_only: bool = False
    ) -> Sequence[Incident]:
        """The incidents holding ``reference``, newest declared first (only open ones if asked).

        At most one open incident holds a reference: :meth:`EventStore.append`
        raises ReferenceTaken for a commit that would make a second.
        """


class Store(EventStore, Outbox, QueryIndex):
    """Where incidents live: event store, outbox and query index in one backend.

    A backend implements the primitives of each protocol; validation,
    deciding, rendering and notifying happen once, above them, in
    :class:`~incidentflow.IncidentFlow`.
    """
