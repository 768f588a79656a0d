"""MemoryStore: everything in process memory. For tests, scripts and prototypes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

import attrs

from .._events import Event
from .._model import Incident, Reference
from ..exceptions import (
    ConcurrencyConflict,
    DuplicateIncident,
    IncidentNotFound,
    ReferenceTaken,
)
from ._appending import CheckedAppend, check_key_unused
from ._protocols import Store
from ._records import Commit, IdempotencyRecord, IncidentQuery, OutboxItem
from ._scanning import ScanningQueryIndex

__all__ = ["MemoryStore"]


class MemoryStore(CheckedAppend, ScanningQueryIndex, Store):
    """Keeps histories, snapshots and the outbox in dictionaries. Thread-safe; not durable.

    Listings, summaries, milestones and similar incidents are computed from the
    snapshots in memory (:class:`~incidentflow.stores._scanning.ScanningQueryIndex`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, list[Event]] = {}
        self._snapshots: dict[str, Incident] = {}
        self._keys: dict[str, IdempotencyRecord] = {}
        self._outbox: dict[str, OutboxItem] = {}
        # Undelivered item ids per (incident, notifier) stream, oldest first.
        self._streams: dict[tuple[str, str], list[str]] = {}
        self._claims: dict[str, datetime] = {}
        # The open incident holding each external reference (unique among open ones).
        self._open_references: dict[Reference, str] = {}
        # A subclass that wraps append or _write_commit (to log, or to hold a write)
        # sees every write; so does an append set on the store (see _append_event).
        kind = type(self)
        self._direct = (
            kind.append is MemoryStore.append and kind._write_commit is MemoryStore._write_commit
        )

    def _try_hold(self) -> Callable[[], None] | None:
        """For a call that must not wait: None while another thread holds the store.

        The lock is not re-entrant, so it is only looked at; its holders keep
        it briefly (a claim over many waiting notifications, the longest, takes
        tens of milliseconds). Returns what ends the hold: nothing to give back.
        """
        return None if self._lock.locked() else _nothing

    def append(self, commit: Commit) -> None:
        """Write a commit atomically (see :meth:`EventStore.append`)."""
        events = commit.events
        if (
            len(events) == 1
            and commit.idempotency is None
            and events[0].seq == commit.expected_version + 1
            and events[0].incident_id == commit.incident_id
        ):
            self._write_commit(commit)  # CheckedAppend.append's checks hold: one layer less
        else:
            super().append(commit)

    def _append_event(self, event: Event, snapshot: Incident) -> None:
        """The usual command: one event of an incident at the version before it, nothing else."""
        incident_id = event.incident_id
        try:  # an append set on the store itself (fault injection) must see every write
            direct = self._direct and self.append.__func__ is _APPEND  # type: ignore[attr-defined]
        except AttributeError:  # a plain function set on the store
            direct = False
        if direct:
            with self._lock:
                current = self._snapshots.get(incident_id)
                if current is not None and current.version == event.seq - 1:
                    self._events[incident_id].append(event)
                    self._snapshots[incident_id] = snapshot
                    return
        super()._append_event(event, snapshot)  # through append: refused as it refuses

    def _write_commit(self, commit: Commit) -> None:
        """Write a checked commit under the store's lock: all of it or nothing."""
        with self._lock:
            current = self._snapshots.get(commit.incident_id)
            actual = 0 if current is None else current.version
            if commit.expected_version == 0 and current is not None:
                raise DuplicateIncident(commit.incident_id)
            if actual != commit.expected_version:
                raise ConcurrencyConflict(commit.incident_id, commit.expected_version, actual)
            if commit.idempotency is not None:
                check_key_unused(self._keys.get(commit.idempotency.key), commit)
            if commit.index_changed and _moves_references(current, commit.snapshot):
                self._hold_references(current, commit.snapshot)
            history = self._events.get(commit.incident_id)
            if history is None:
                self._events[commit.incident_id] = list(commit.events)
            else:
                history.extend(commit.events)
            self._snapshots[commit.incident_id] = commit.snapshot
            for item in commit.outbox:
                self._outbox[item.id] = item
                stream = (item.event.incident_id, item.notifier)
                waiting = self._streams.get(stream)
                if waiting is None:
                    self._streams[stream] = [item.id]
                else:
                    waiting.append(item.id)
            if commit.idempotency is not None:
                self._keys[commit.idempotency.key] = commit.idempotency

    def _hold_references(self, before: Incident | None, after: Incident) -> None:
        """Move ``after``'s references into the open set, or raise ReferenceTaken first."""
        held = self._open_references
        wanted = set(after.references) if after.is_open else set()
        for ref in sorted(wanted):
            holder = held.get(ref)
            if holder is not None and holder != after.id:
                raise ReferenceTaken(ref.kind, ref.value, holder)
        if before is not None and before.is_open:
            for ref in before.references:
                if ref not in wanted and held.get(ref) == after.id:
                    del held[ref]
        for ref in wanted:
            held[ref] = after.id

    def cached(self, incident_id: str) -> Incident | None:
        """The current snapshot, or None: memory is all this store has."""
        return self._snapshots.get(incident_id)

    def load(self, incident_id: str) -> Incident:
        """The current snapshot. Raises IncidentNotFound."""
        try:
            return self._snapshots[incident_id]
        except KeyError:
            raise IncidentNotFound(incident_id) from None

    def history(self, incident_id: str, after: int = 0) -> Sequence[Event]:
        """The events after seq ``after``. Raises IncidentNotFound."""
        try:
            events = self._events[incident_id]
        except KeyError:
            raise IncidentNotFound(incident_id) from None
        return tuple(events[after:])

    def list(self, query: IncidentQuery) -> Sequence[Incident]:
        """Snapshots matching ``query``."""
        return query.apply(list(self._snapshots.values()))

    def find_reference(
        self, reference: Reference, *, open_only: bool = False
    ) -> Sequence[Incident]:
        """The incidents holding ``reference``; its one open holder from the map the store keeps.

        Every alert of a storm looks its holder up: a scan of every snapshot made a
        payload of 4,000 alerts take 27 s.
        """
        if not open_only:
            return super().find_reference(reference, open_only=open_only)
        with self._lock:
            holder = self._open_references.get(reference)
            found = None if holder is None else self._snapshots.get(holder)
        if found is None or not found.is_open or reference not in found.references:
            return ()
        return (found,)

    def idempotency(self, key: str) -> IdempotencyRecord | None:
        """The record kept for ``key``, if any."""
        return self._keys.get(key)

    def pending(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Undelivered outbox items that are not dead, oldest first."""
        with self._lock:
            return [item for item in self._outbox.values() if not item.dead][:limit]

    def mark_delivered(self, ids: Iterable[str]) -> None:
        """Drop delivered items from the outbox."""
        with self._lock:
            for item_id in ids:
                item = self._outbox.pop(item_id, None)
                self._claims.pop(item_id, None)
                if item is not None:
                    stream = self._streams[_stream(item)]
                    stream.remove(item_id)
                    if not stream:
                        del self._streams[_stream(item)]

    def claim(
        self,
        *,
        now: datetime,
        limit: int,
        lease: timedelta,
        worker: str,
        incident_id: str | None = None,
    ) -> Sequence[OutboxItem]:
        """Claim the due heads of the outbox's streams (see :meth:`Outbox.claim`)."""
        claimed: list[OutboxItem] = []
        if limit < 1:
            return claimed
        with self._lock:
            for stream, item_ids in self._streams.items():
                if incident_id is not None and stream[0] != incident_id:
                    continue
                head = next((self._outbox[i] for i in item_ids if not self._outbox[i].dead), None)
                if head is None:
                    continue
                if head.next_attempt_at is not None and head.next_attempt_at > now:
                    continue
                held_until = self._claims.get(head.id)
                if held_until is not None and held_until > now:
                    continue
                self._claims[head.id] = now + lease
                claimed.append(head)
                if len(claimed) >= limit:
                    break
        return claimed

    def settle_and_claim(
        self,
        delivered: Iterable[str],
        *,
        now: datetime,
        limit: int,
        lease: timedelta,
        worker: str,
    ) -> Sequence[OutboxItem]:
        """Mark ``delivered`` delivered, then claim up to ``limit`` due heads."""
        self.mark_delivered(delivered)
        return self.claim(now=now, limit=limit, lease=lease, worker=worker)

    def mark_failed(
        self, item_id: str, *, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        """Count a failed attempt and release the claim."""
        with self._lock:
            self._claims.pop(item_id, None)
            item = self._outbox.get(item_id)
            if item is not None:
                self._outbox[item_id] = attrs.evolve(
                    item,
                    attempts=item.attempts + 1,
                    last_error=error,
                    next_attempt_at=next_attempt_at,
                    dead=dead,
                )

    def dead_letters(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Items that gave up, oldest first."""
        with self._lock:
            return [item for item in self._outbox.values() if item.dead][:limit]

    def redrive(self, ids: Iterable[str]) -> int:
        """Put dead items back in line with a fresh attempt count."""
        count = 0
        with self._lock:
            for item_id in ids:
                item = self._outbox.get(item_id)
                if item is not None and item.dead:
                    self._outbox[item_id] = attrs.evolve(
                        item, attempts=0, next_attempt_at=None, dead=False
                    )
                    count += 1
        return count

    def exists(self, incident_id: str) -> bool:
        """True when an incident with this id exists."""
        return incident_id in self._snapshots

    def close(self) -> None:
        """Nothing to release: the data stays until the store is dropped."""


def _stream(item: OutboxItem) -> tuple[str, str]:
    return (item.event.incident_id, item.notifier)


_APPEND = MemoryStore.append


def _moves_references(before: Incident | None, after: Incident) -> bool:
    """False when ``after`` holds what ``before`` held: the same references, open or not alike."""
    if before is None:
        return bool(after.references)
    return before.references is not after.references or before.state.is_open != after.state.is_open


def _nothing() -> None:
    return None
