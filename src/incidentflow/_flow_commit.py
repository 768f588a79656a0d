"""What a commit is made of: its events, the commit record, and what it changes.

The facade's ``_commit`` builds these on every command, so they are built
with :mod:`incidentflow._builders` (the same objects ``attrs`` would make,
without its per-field ``setattr`` calls).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from . import _events as ev
from ._authz import can_see
from ._builders import builder
from ._model import Incident, Reference, State
from ._reasons import Outcome, Reason
from .commands import Command
from .commands._links import linked
from .exceptions import IncidentNotFound, ReferenceTaken, ValidationError
from .stores._protocols import EventStore, QueryIndex
from .stores._records import Commit

__all__ = [
    "events_of",
    "index_changed",
    "new_commit",
    "new_outcome",
    "references_exist",
    "references_free",
    "seen_holder",
    "taken_reasons",
]

_new_event = builder(ev.Event)
#: Builds a :class:`~incidentflow.stores.Commit`, as ``Commit(...)`` does.
new_commit = builder(Commit)
#: Builds an :class:`~incidentflow.Outcome`, as ``Outcome(...)`` does.
new_outcome = builder(Outcome)


def events_of(
    incident_id: str,
    base: int,
    now: datetime,
    actor: str,
    data: Sequence[ev.EventData],
    key: str | None,
) -> tuple[ev.Event, ...]:
    """The envelopes of ``data``, numbered from ``base + 1``."""
    if len(data) == 1:  # the usual command records one event
        return (_new_event(incident_id, base + 1, now, actor, data[0], key),)
    return tuple(
        _new_event(incident_id, base + i, now, actor, payload, key)
        for i, payload in enumerate(data, start=1)
    )


#: The open states (``State.is_open``), asked by set membership on every commit.
_OPEN = frozenset(state for state in State if state.is_open)


def index_changed(before: Incident | None, after: Incident) -> bool:
    """True when the commit changes what the query index keeps beside the snapshot.

    Folds keep every field they do not change (the same object), so identity
    tells: type, labels, custom fields, references, action items, open or not.
    """
    return (
        before is None
        or (before.state is not after.state and (before.state in _OPEN) != (after.state in _OPEN))
        or before.type != after.type
        or before.labels is not after.labels
        or before.custom_fields is not after.custom_fields
        or before.references is not after.references
        or before.action_items is not after.action_items
        or before.restricted_to is not after.restricted_to
    )


def references_free(
    store: object,
    before: Incident | None,
    after: Incident,
    seen_by: frozenset[str] | None = frozenset(),
) -> None:
    """Raise ReferenceTaken if another open incident holds a reference ``after`` holds open.

    The store enforces the same rule when it appends, so a race is caught
    there; this check names the holder before anything is written, when
    ``seen_by`` (the principals of who runs the command) may see it. The
    default, no principals, sees no restricted incident. A store without a
    query index is left to enforce it alone.
    """
    if not after.references or not after.is_open or not isinstance(store, QueryIndex):
        return
    held = set() if before is None or not before.is_open else set(before.references)
    for ref in after.references:
        if ref in held:
            continue
        for holder in store.find_reference(ref, open_only=True):
            if holder.id != after.id:
                raise _taken(ref, holder, seen_by)


def taken_reasons(
    index: QueryIndex, incident_id: str, ref: Reference, seen_by: frozenset[str] | None
) -> list[Reason]:
    """``reference.taken`` when another open incident holds ``ref``, for :meth:`can`."""
    found = []
    for holder in index.find_reference(ref, open_only=True):
        if holder.id != incident_id:
            error = _taken(ref, holder, seen_by)
            data = {} if error.holder is None else {"holder": error.holder}
            found.append(Reason("reference.taken", error.message, data))
    return found


def seen_holder(
    error: ReferenceTaken, store: EventStore, seen_by: frozenset[str] | None
) -> ReferenceTaken:
    """``error`` (raised by the store) as ``seen_by`` may learn it: no hidden holder named."""
    if error.holder is None or seen_by is None:
        return error
    try:
        holder = store.load(error.holder)
    except IncidentNotFound:
        return ReferenceTaken(error.kind, error.value, None)
    return _taken(Reference(error.kind, error.value), holder, seen_by)


def _taken(ref: Reference, holder: Incident, seen_by: frozenset[str] | None) -> ReferenceTaken:
    """The refusal of ``ref``: naming ``holder`` only to those who may see it."""
    shown = holder.id if can_see(holder, seen_by) else None
    return ReferenceTaken(ref.kind, ref.value, shown)


def references_exist(
    store: EventStore,
    command: Command[Any],
    incident: Incident,
    values: dict[str, Any],
    seen_by: frozenset[str] | None,
) -> None:
    """Arguments naming another incident must name one that exists, and not this one.

    An incident ``seen_by`` may not see (restricted to others) is refused exactly
    as a missing one: the same error and message, so neither its existence nor
    its id is disclosed (``None``: the trusted host, which sees every incident).
    ``unlink`` of a link this incident holds needs no other side: the other may
    be missing from this store (an export of one of two linked incidents).
    """
    incident_id = incident.id
    if command.name == "unlink" and linked(incident, values["kind"], values["other"]):
        return
    for argument in command.references:
        referenced = values[argument.name]
        if referenced is None:
            continue
        if referenced == incident_id:
            raise ValidationError(
                argument.name, f"{incident_id} cannot name itself; name the other incident"
            )
        other = _found_for(store, referenced, seen_by)
        if other is None:
            raise ValidationError(
                argument.name, f"there is no incident {referenced}; give an existing id"
            )
        if set(other.restricted_to) != set(incident.restricted_to) and command.name in _JOINS:
            raise ValidationError(argument.name, _unlike(incident, other))


#: Commands that join two incidents (a link, a duplicate): only incidents restricted alike.
_JOINS = frozenset({"link", "merge", "dismiss"})


def _found_for(
    store: EventStore, incident_id: str, seen_by: frozenset[str] | None
) -> Incident | None:
    """The incident, if it exists and ``seen_by`` may see it (``None`` sees all)."""
    try:
        found = store.load(incident_id)
    except IncidentNotFound:
        return None
    return found if can_see(found, seen_by) else None


def _unlike(incident: Incident, other: Incident) -> str:
    """Why two incidents restricted differently are not joined: either would show the other."""

    def who(inc: Incident) -> str:
        shown = ", ".join(inc.restricted_to)
        return f"restricted to {shown}" if shown else "not restricted"

    return (
        f"{other.id} is {who(other)} and {incident.id} is {who(incident)}: a link or a "
        "duplicate would show one's id to those who see only the other; restrict both "
        "alike first, or record the relation in a note of the restricted one"
    )
