"""What the durable stores share: when to rewrite a stored snapshot, and a snapshot cache.

An incident's snapshot grows with its history (every note and evidence item is
in it), so rewriting the whole snapshot on every command would make a command
on a long incident slower than one on a short incident. The durable stores
therefore keep a *checkpoint*: the full snapshot as of some version, rewritten
only now and then, and fold the events after it when a snapshot is loaded cold.
Inside one process the last snapshot of each incident is cached, keyed by its
version, so a command normally reads nothing but the incident's current version.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from .._decide import evolve
from .._events import Event
from .._model import Incident, State
from ..exceptions import ConcurrencyConflict, IdempotencyConflict, StoreError
from ._base import Commit, IdempotencyRecord

__all__ = [
    "SnapshotCache",
    "check_commit",
    "checkpoint_due",
    "fold_onto",
    "from_micros",
    "micros",
]

#: Events that may pile up after a checkpoint before it is rewritten, at least.
CHECKPOINT_MIN_TAIL = 16

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_P = TypeVar("_P")


def _checkpoint_step(version: int) -> int:
    # The largest power of two not above the version: checkpoints at 16, 32, 64, ...
    # events, each time the history doubles. Rewriting the snapshot, spread over the
    # commands in between, then costs about as much as encoding two events, however
    # long the history; and a cold load folds at most half the history.
    return max(CHECKPOINT_MIN_TAIL, 1 << max(0, version.bit_length() - 1))


def checkpoint_due(before_version: int, before_state: State | None, after: Incident) -> bool:
    """True when a commit from version ``before_version`` to ``after`` rewrites the checkpoint.

    A new incident (``before_version`` 0), a change of state (so closed
    incidents are listed without folding anything) and every
    ``_checkpoint_step`` events do.
    """
    if before_version == 0 or before_state is not after.state:
        return True
    step = _checkpoint_step(after.version)
    return after.version // step != before_version // step


def check_commit(incident_id: str, expected_version: int, events: Sequence[Event]) -> None:
    """Raise StoreError unless ``events`` continue the history from ``expected_version``."""
    if not events:
        raise StoreError(f"{incident_id}: a commit needs at least one event")
    for offset, event in enumerate(events, start=1):
        if event.incident_id != incident_id or event.seq != expected_version + offset:
            raise StoreError(
                f"{incident_id}: commit event {event.incident_id}#{event.seq} does not follow "
                f"version {expected_version}; events must be numbered "
                f"{expected_version + 1}..{expected_version + len(events)}"
            )


def fold_onto(incident: Incident | None, events: Sequence[Event], where: str) -> Incident:
    """Apply ``events`` to ``incident``, checking their numbering; StoreError names ``where``."""
    for event in events:
        expected = 1 if incident is None else incident.version + 1
        if event.seq != expected:
            raise StoreError(
                f"{where}: event {event.seq} of {event.incident_id} follows version "
                f"{expected - 1}; the history has a gap or a duplicate"
            )
        incident = evolve(incident, event)
    if incident is None:
        raise StoreError(f"{where}: no events to build a snapshot from")
    return incident


def micros(moment: datetime) -> int:
    """An aware datetime as whole microseconds since the Unix epoch (sortable, exact)."""
    since = moment - _EPOCH
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def from_micros(value: int) -> datetime:
    """The aware UTC datetime :func:`micros` gave ``value`` for."""
    return _EPOCH + timedelta(microseconds=value)


class SnapshotCache(Generic[_P]):
    """The most recently used snapshots of one process, at most ``size`` incidents. Thread-safe.

    Each snapshot is kept with a backend-specific ``position`` (where in the
    backend's storage that snapshot ends), from which a later load catches up.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._snapshots: OrderedDict[str, tuple[Incident, _P]] = OrderedDict()

    def get(self, incident_id: str) -> tuple[Incident, _P] | None:
        """The cached snapshot and its position, if any."""
        with self._lock:
            found = self._snapshots.get(incident_id)
            if found is not None:
                self._snapshots.move_to_end(incident_id)
            return found

    def put(self, incident: Incident, position: _P) -> None:
        """Remember ``incident`` and where it ends."""
        if self._size <= 0:
            return
        with self._lock:
            self._snapshots[incident.id] = (incident, position)
            self._snapshots.move_to_end(incident.id)
            while len(self._snapshots) > self._size:
                self._snapshots.popitem(last=False)

    def discard(self, incident_id: str) -> None:
        """Forget one incident."""
        with self._lock:
            self._snapshots.pop(incident_id, None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._snapshots.clear()


def check_key_unused(kept: IdempotencyRecord | None, commit: Commit) -> None:
    """Refuse a commit whose idempotency key another commit already kept.

    The same payload means a retry raced the first run: ConcurrencyConflict, so
    the caller's retry returns the first result. Another payload is an
    IdempotencyConflict.
    """
    if kept is None or commit.idempotency is None:
        return
    if kept.fingerprint != commit.idempotency.fingerprint:
        raise IdempotencyConflict(kept.key)
    raise ConcurrencyConflict(
        commit.incident_id, commit.expected_version, commit.expected_version + 1
    )
