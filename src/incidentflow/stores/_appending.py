"""What every backend's append shares: the checks of a commit and the idempotency rule.

A backend inherits :class:`CheckedAppend` and implements ``_write_commit``, the
primitive that writes a commit already known to be well-formed. Inside its
write transaction it applies the idempotency rule with :func:`check_key_unused`
(or a UNIQUE constraint whose violation it hands to that function), so the
record of a key is written with the events or not at all.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from .._events import Event
from ..exceptions import ConcurrencyConflict, IdempotencyConflict, StoreError
from ._protocols import EventStore
from ._records import Commit, IdempotencyRecord

__all__ = ["CheckedAppend", "check_commit", "check_key_unused"]


class CheckedAppend(EventStore):
    """:meth:`append` checks the commit once, then calls the backend's ``_write_commit``."""

    def append(self, commit: Commit) -> None:
        """Write a commit atomically (see :meth:`EventStore.append`)."""
        check_commit(commit.incident_id, commit.expected_version, commit.events)
        if commit.idempotency is not None and commit.idempotency.incident_id != commit.incident_id:
            raise StoreError(
                f"{commit.incident_id}: the commit's idempotency record names "
                f"{commit.idempotency.incident_id}; it must name the incident written to"
            )
        self._write_commit(commit)

    @abc.abstractmethod
    def _write_commit(self, commit: Commit) -> None:
        """Write a checked commit in one transaction, or raise and write nothing.

        Raises DuplicateIncident, ConcurrencyConflict or (through
        :func:`check_key_unused`) the idempotency errors; StoreError on failure.
        """


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


def check_key_unused(kept: IdempotencyRecord | None, commit: Commit) -> None:
    """Refuse a commit whose idempotency key another commit already kept.

    A key is unique: the commit writes nothing. The same fingerprint means a
    retry raced the first run: ConcurrencyConflict, so the caller's retry
    finds the key and returns the first result. Another fingerprint is an
    IdempotencyConflict.
    """
    if kept is None or commit.idempotency is None:
        return
    if kept.fingerprint != commit.idempotency.fingerprint:
        raise IdempotencyConflict(kept.key)
    raise ConcurrencyConflict(
        commit.incident_id, commit.expected_version, commit.expected_version + 1
    )
