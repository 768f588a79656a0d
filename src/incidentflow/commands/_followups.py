"""Action items: follow-ups that live on after the incident closes.

They are added while the incident is worked on, and completed, reassigned,
re-dated, declined (with a reason) or linked to the issue that tracks them in
every state, closed ones included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _events as ev
from .. import _validate as v
from .._builders import builder, copier
from .._model import ActionItem, Correction, Incident, Records
from ..exceptions import ValidationError
from ._define import (
    EVERY_STATE,
    NOT_TERMINAL,
    Argument,
    Command,
    Context,
    Guard,
    Move,
    Unmet,
    unmet,
)
from ._shared import evolve, replace

__all__ = [
    "ADD_ACTION_ITEM",
    "COMPLETE_ACTION_ITEM",
    "DECLINE_ACTION_ITEM",
    "LINK_ACTION_ITEM",
    "PHASE",
    "REASSIGN_ACTION_ITEM",
    "REDATE_ACTION_ITEM",
]

# Built on every fold of their events: the records attrs would make, without its setattr calls.
_new_action_item = builder(ActionItem)
_numbered = copier(ev.ActionItemAdded, "number")


def _ref(field: str, value: object) -> str:
    return v.optional_text(field, value, max_len=500, multiline=False)


def _due_after_declared(
    context: Context[ev.ActionItemAdded], payload: ev.ActionItemAdded
) -> ev.ActionItemAdded:
    inc = context.incident
    if payload.due < inc.declared_at.date():
        raise ValidationError(
            "due", f"{payload.due} is before {inc.id} was declared; give a later due date"
        )
    return _numbered(payload, len(inc.action_items) + 1)


ADD_ACTION_ITEM = Command(
    name="add_action_item",
    summary="Add a follow-up with an owner and a due date; items are numbered from 1.",
    event=ev.ActionItemAdded,
    moves=(Move(NOT_TERMINAL),),
    arguments=(
        Argument("description", v.text, "What is to be done."),
        Argument("owner", v.name, "Who owns it."),
        Argument("due", v.day, "The day it is due (a date)."),
        Argument("ref", _ref, "The issue URL or key that tracks it, if any.", default=""),
    ),
    prepare=_due_after_declared,
    fold=lambda inc, e, d: replace(
        inc,
        action_items=inc.action_items.appended(
            _new_action_item(d.number, d.description, d.owner, d.due, ref=d.ref)
        ),
    ),
)


def _item(inc: Incident, number: int) -> ActionItem | None:
    return inc.action_items[number - 1] if 0 < number <= len(inc.action_items) else None


def _known_item(c: Context[Any]) -> Unmet | None:
    if c.payload is None:
        return None
    number = c.payload.number
    if _item(c.incident, number) is not None:
        return None
    known = ", ".join(str(a.number) for a in c.incident.action_items) or "none yet"
    return unmet(f"there is no action item {number} (action items: {known})", number=number)


def _not_done(c: Context[Any]) -> Unmet | None:
    if c.payload is None:
        return None
    item = _item(c.incident, c.payload.number)
    if item is None or not item.done:
        return None
    return unmet(f"action item {item.number} is already done", number=item.number)


def _not_closed(c: Context[Any]) -> Unmet | None:
    if c.payload is None:
        return None
    item = _item(c.incident, c.payload.number)
    if item is None or (item.declined is None and item.retracted is None):
        return None
    return unmet(f"action item {item.number} is {item.status}", number=item.number)


_KNOWN: Guard[Any] = Guard("action_item.unknown", "the action item exists", _known_item)
_NOT_DONE: Guard[Any] = Guard("action_item.done", "the action item is not done", _not_done)
_NOT_CLOSED: Guard[Any] = Guard(
    "action_item.closed", "the action item is not declined or retracted", _not_closed
)
_OPEN = (_KNOWN, _NOT_DONE, _NOT_CLOSED)


def _changed(
    change: Callable[[ActionItem, ev.Event, Any], ActionItem],
) -> Callable[[Incident, ev.Event, Any], Incident]:
    """A fold that changes the one action item its event names."""

    def fold(inc: Incident, e: ev.Event, d: Any) -> Incident:
        items = list(inc.action_items)
        items[d.number - 1] = change(items[d.number - 1], e, d)
        return replace(inc, action_items=Records(items))

    return fold


COMPLETE_ACTION_ITEM = Command(
    name="complete_action_item",
    summary="Mark an action item done (in every state, after closure too).",
    event=ev.ActionItemCompleted,
    moves=(Move(EVERY_STATE),),
    arguments=(Argument("number", v.positive_int, "The action item's number."),),
    guards=_OPEN,
    fold=_changed(lambda item, e, d: evolve(item, done_at=e.at)),
)


def _another_owner(
    context: Context[ev.ActionItemReassigned], payload: ev.ActionItemReassigned
) -> ev.ActionItemReassigned:
    item = _item(context.incident, payload.number)
    if item is not None and item.owner == payload.owner:
        raise ValidationError("owner", f"{payload.owner} owns action item {item.number} already")
    return payload


REASSIGN_ACTION_ITEM = Command(
    name="reassign_action_item",
    summary="Hand an open action item to another owner.",
    event=ev.ActionItemReassigned,
    moves=(Move(EVERY_STATE),),
    arguments=(
        Argument("number", v.positive_int, "The action item's number."),
        Argument("owner", v.name, "Its new owner."),
        Argument("reason", v.optional_text, "Why it changes hands.", default=""),
    ),
    guards=_OPEN,
    prepare=_another_owner,
    fold=_changed(lambda item, e, d: evolve(item, owner=d.owner)),
)


def _due_in_time(
    context: Context[ev.ActionItemRedated], payload: ev.ActionItemRedated
) -> ev.ActionItemRedated:
    inc = context.incident
    if payload.due < inc.declared_at.date():
        raise ValidationError(
            "due", f"{payload.due} is before {inc.id} was declared; give a later due date"
        )
    item = _item(inc, payload.number)
    if item is not None and item.due == payload.due:
        raise ValidationError("due", f"action item {item.number} is due on {item.due} already")
    return payload


REDATE_ACTION_ITEM = Command(
    name="redate_action_item",
    summary="Give an open action item another due date, with a reason.",
    event=ev.ActionItemRedated,
    moves=(Move(EVERY_STATE),),
    arguments=(
        Argument("number", v.positive_int, "The action item's number."),
        Argument("due", v.day, "The new due date."),
        Argument("reason", v.optional_text, "Why the date moves.", default=""),
    ),
    guards=_OPEN,
    prepare=_due_in_time,
    fold=_changed(lambda item, e, d: evolve(item, due=d.due)),
)


DECLINE_ACTION_ITEM = Command(
    name="decline_action_item",
    summary="Decline an open action item: it will not be done, for the reason given.",
    event=ev.ActionItemDeclined,
    moves=(Move(EVERY_STATE),),
    arguments=(
        Argument("number", v.positive_int, "The action item's number."),
        Argument("reason", v.text, "Why it will not be done (accepted risk, superseded, ...)."),
    ),
    guards=_OPEN,
    fold=_changed(lambda item, e, d: evolve(item, declined=Correction(e.at, e.actor, d.reason))),
)


LINK_ACTION_ITEM = Command(
    name="link_action_item",
    summary="Link an action item to the issue that tracks it (a URL or a key).",
    event=ev.ActionItemLinked,
    moves=(Move(EVERY_STATE),),
    arguments=(
        Argument("number", v.positive_int, "The action item's number."),
        Argument(
            "ref", lambda f, x: v.reference_value(f, x), "The issue URL or key, e.g. OPS-1234."
        ),
    ),
    guards=(_KNOWN,),
    fold=_changed(lambda item, e, d: evolve(item, ref=d.ref)),
)

#: This phase's commands, in the order people meet them.
PHASE = (
    ADD_ACTION_ITEM,
    COMPLETE_ACTION_ITEM,
    REASSIGN_ACTION_ITEM,
    REDATE_ACTION_ITEM,
    DECLINE_ACTION_ITEM,
    LINK_ACTION_ITEM,
)
