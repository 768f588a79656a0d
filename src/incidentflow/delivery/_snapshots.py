"""The incident as of one event: what a notification carries, however late it goes out.

A notification announces one event, and its ``incident`` is the snapshot right
after that event (its ``version`` is the event's ``seq``), not the incident as it
stands when the item is finally delivered: an item that waited in the outbox
must not carry what was recorded after it, such as labels set once the incident
was restricted.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from .._decide import fold
from .._events import Event
from .._model import Incident
from ..stores import EventStore

__all__ = ["Timeline"]

#: How many incidents a timeline keeps snapshots of, how many of each (one per stream
#: that is behind the others, say), and how many events read past each it keeps.
_INCIDENTS_MAX = 256
_PER_INCIDENT = 4
_TAIL_MAX = 128

#: A snapshot built, and the events after it that were read with it.
_Held = tuple[Incident, Sequence[Event]]


class Timeline:
    """Builds an incident's snapshot as of any of its events, from the store's history.

    Each notifier hears one incident's events in seq order, so a delivery is
    usually one event past a snapshot built here: it folds that event onto it,
    and reads the history only when it has not read that far yet. Snapshots and
    events never change once written, so nothing held goes stale. Safe to share
    between threads.
    """

    def __init__(self, events: EventStore) -> None:
        self._events = events
        self._held: dict[str, list[_Held]] = {}
        self._lock = threading.Lock()

    def as_of(self, event: Event, *candidates: Incident | None) -> Incident:
        """The snapshot of ``event``'s incident right after ``event``.

        ``candidates`` are snapshots of the incident already at hand (the one
        a command just committed, the current one): one whose version is the
        event's seq is the answer, an older one a place to fold from.
        """
        incident_id, seq = event.incident_id, event.seq
        found: _Held | None = None
        with self._lock:
            for held in self._held.get(incident_id, ()):
                if held[0].version <= seq and (found is None or held[0].version > found[0].version):
                    found = held
        from_held = found
        for candidate in candidates:
            if candidate is None or candidate.id != incident_id or candidate.version > seq:
                continue
            if candidate.version == seq:
                return candidate
            if found is None or candidate.version > found[0].version:
                found = (candidate, ())
        base, tail = found if found is not None else (None, ())
        missing = seq - (0 if base is None else base.version)  # events to fold onto base
        if len(tail) < missing:
            tail = self._events.history(incident_id, after=seq - missing)
        snapshot = fold(tail[:missing], base)
        if snapshot is None or snapshot.version != seq:
            raise LookupError(f"the history of {incident_id} does not reach event {seq}")
        # The held snapshot it was folded from has moved on; one at hand leaves them all.
        held_now = (snapshot, tail[missing : missing + _TAIL_MAX])
        self._hold(held_now, replacing=from_held if found is from_held else None)
        return snapshot

    def _hold(self, held: _Held, replacing: _Held | None) -> None:
        incident_id = held[0].id
        with self._lock:
            kept = self._held.get(incident_id)
            if kept is None:
                if len(self._held) >= _INCIDENTS_MAX:
                    self._held.clear()
                kept = self._held[incident_id] = []
            # Compared by identity: equality would compare whole incidents.
            kept[:] = [h for h in kept if h is not replacing]
            kept.append(held)
            if len(kept) > _PER_INCIDENT:
                kept.sort(key=lambda h: h[0].version)
                del kept[0]
