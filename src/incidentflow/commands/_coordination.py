"""People and stakeholders: roles with explicit handoffs, and status updates on a cadence."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .. import _events as ev
from .. import _validate as v
from .._model import Handoff, Incident, StatusUpdate
from ..exceptions import ValidationError
from ._define import NOT_TERMINAL, Argument, Command, Context, Guard, Move, Unmet, unmet
from ._shared import evolve, replace

__all__ = ["ASSIGN_ROLE", "AUDIENCES", "PHASE", "POST_UPDATE", "RELEASE_ROLE", "handed_over"]

#: Who a status update is for.
AUDIENCES = ("internal", "external")
#: The role every incident always has someone in.
COMMANDER = "commander"


def handed_over(inc: Incident, e: ev.Event, role: str, person: str | None, note: str) -> Incident:
    """``inc`` with ``role`` now held by ``person`` (``None``: vacant), the handoff recorded."""
    roles = dict(inc.roles)
    previous = roles.get(role)
    if role == COMMANDER and previous is None:
        previous = inc.commander
    if person is None:
        roles.pop(role, None)
    else:
        roles[role] = person
    handoff = Handoff(role, previous, person, e.at, e.actor, note)
    changes: dict[str, Any] = {"roles": roles, "handoffs": inc.handoffs.appended(handoff)}
    if role == COMMANDER and person is not None:
        changes["commander"] = person
    return replace(inc, **changes)


def _holder(inc: Incident, role: str) -> str | None:
    return inc.commander if role == COMMANDER else inc.roles.get(role)


def _new_holder(context: Context[ev.RoleAssigned], payload: ev.RoleAssigned) -> ev.RoleAssigned:
    inc = context.incident
    role = context.policy.check_role(payload.role)
    previous = _holder(inc, role)
    if previous == payload.person:
        raise ValidationError("person", f"{payload.person} holds {role} on {inc.id} already")
    return evolve(payload, role=role, previous=previous)


ASSIGN_ROLE = Command(
    name="assign_role",
    summary="Assign a role, or hand it over from whoever holds it (recorded with a note).",
    event=ev.RoleAssigned,
    moves=(Move(NOT_TERMINAL),),
    arguments=(
        Argument("role", v.key, "The role: commander, communications_lead, operations_lead, ..."),
        Argument("person", v.name, "Who takes it."),
        Argument(
            "note", v.optional_text, "The handoff: state of play, open questions.", default=""
        ),
    ),
    prepare=_new_holder,
    fold=lambda inc, e, d: handed_over(inc, e, d.role, d.person, d.note),
)


def _held(c: Context[ev.RoleReleased]) -> Unmet | None:
    if c.payload is None or c.payload.role == COMMANDER:
        return None
    if c.payload.role not in c.policy.roles:
        return None  # not a role at all: refused with the list of roles (see _releasable)
    if c.payload.role in c.incident.roles:
        return None
    return unmet(f"nobody holds {c.payload.role} on {c.incident.id}", role=c.payload.role)


def _releasable(context: Context[ev.RoleReleased], payload: ev.RoleReleased) -> ev.RoleReleased:
    role = context.policy.check_role(payload.role)
    if role == COMMANDER:
        raise ValidationError(
            "role", "an incident always has a commander; hand the role over with assign_role"
        )
    return evolve(payload, previous=context.incident.roles[role])


RELEASE_ROLE = Command(
    name="release_role",
    summary="Release a role (not the commander's): it is vacant again.",
    event=ev.RoleReleased,
    moves=(Move(NOT_TERMINAL),),
    arguments=(
        Argument("role", v.key, "The role to release."),
        Argument("note", v.optional_text, "Why, or who picks up its work.", default=""),
    ),
    guards=(Guard("role.vacant", "someone holds the role", _held),),
    prepare=_releasable,
    fold=lambda inc, e, d: handed_over(inc, e, d.role, None, d.note),
)


def _next_in(field: str, value: object) -> timedelta:
    return v.duration(field, value)


def _next_due(context: Context[ev.UpdatePosted], payload: ev.UpdatePosted) -> ev.UpdatePosted:
    given: object = payload.next_update_at
    if isinstance(given, datetime):
        return payload  # decided before (a history replayed on import)
    if isinstance(given, timedelta):
        due: datetime | None = context.now + given
    else:
        cadence = context.policy.process_of(context.incident).update_cadence
        due = context.now + cadence if cadence is not None and context.incident.is_open else None
    return evolve(payload, next_update_at=due)


POST_UPDATE = Command(
    name="post_update",
    summary="Post a status update to stakeholders and say when the next one is due.",
    event=ev.UpdatePosted,
    moves=(Move(NOT_TERMINAL),),
    arguments=(
        Argument(
            "audience",
            lambda f, x: v.one_of(f, x, AUDIENCES),
            "Who it is for: internal (responders, the company) or external (customers).",
        ),
        Argument("text", v.text, "The update: what is known, what is being done."),
        Argument(
            "next_update_in",
            _next_in,
            "When the next update is due, from now (a timedelta); default: the cadence "
            "the policy sets for the incident's severity, if any.",
            default=None,
            field="next_update_at",
        ),
    ),
    prepare=_next_due,
    fold=lambda inc, e, d: replace(
        inc,
        updates=inc.updates.appended(
            StatusUpdate(d.audience, d.text, e.at, e.actor, d.next_update_at)
        ),
        next_update_due=d.next_update_at,
    ),
)


#: This phase's commands, in the order people meet them.
PHASE = (ASSIGN_ROLE, RELEASE_ROLE, POST_UPDATE)
