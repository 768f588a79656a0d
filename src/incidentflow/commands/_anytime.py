"""Commands for any open state: severity, commander, detection, notes, deadline breaches."""

from __future__ import annotations

from collections.abc import Sequence

from .. import _events as ev
from .. import _validate as v
from .._builders import builder
from .._model import Detection, Incident, Note, State
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
from ._shared import evolve, replace, when

__all__ = [
    "ADD_NOTE",
    "ASSIGN_COMMANDER",
    "DEADLINE_KINDS",
    "DETECTION_METHODS",
    "PHASE",
    "RECLASSIFY",
    "RECORD_BREACH",
    "RECORD_DETECTION",
]

# Built on every fold of their events: the records attrs would make, without its setattr calls.
_new_note = builder(Note)

#: How an incident can come to light.
DETECTION_METHODS = ("alert", "user_report", "other")
#: The kinds of deadline: start triage, complete the post-mortem, finish an action item,
#: post the next status update.
DEADLINE_KINDS = ("response", "postmortem", "action_item", "update")


def _new_severity(context: Context[ev.Reclassified], payload: ev.Reclassified) -> ev.Reclassified:
    inc, policy = context.incident, context.policy
    if payload.severity is inc.severity:
        raise ValidationError("severity", f"{inc.id} is already {payload.severity.value}")
    required = policy.needs_postmortem(payload.severity, inc.type)
    if inc.state in (State.RESOLVED, State.POSTMORTEM):
        # Once resolved, raising the severity can add a post-mortem, never drop one.
        required = required or inc.postmortem_required
    return evolve(payload, previous=inc.severity, postmortem_required=required)


RECLASSIFY = Command(
    name="reclassify",
    summary="Change the severity, with a reason.",
    event=ev.Reclassified,
    moves=(Move(NOT_TERMINAL),),
    arguments=(
        Argument("severity", lambda f, x: v.severity(x, f), "The new severity, P1 to P4."),
        Argument("reason", v.text, "Why it changes."),
    ),
    prepare=_new_severity,
    fold=lambda inc, e, d: replace(
        inc, severity=d.severity, postmortem_required=d.postmortem_required
    ),
)


def _another_commander(
    context: Context[ev.CommanderAssigned], payload: ev.CommanderAssigned
) -> ev.CommanderAssigned:
    if payload.commander == context.incident.commander:
        raise ValidationError(
            "commander", f"{payload.commander} already commands {context.incident.id}"
        )
    return payload


def _as_role(
    context: Context[ev.CommanderAssigned], payload: ev.CommanderAssigned
) -> Sequence[ev.EventData]:
    """The handover, recorded as assign_role records it (with its handoff)."""
    inc = context.incident
    return (ev.RoleAssigned("commander", payload.commander, previous=inc.commander),)


ASSIGN_COMMANDER = Command(
    name="assign_commander",
    summary="Hand the incident to another commander (assign_role with the commander role).",
    event=ev.CommanderAssigned,
    moves=(Move(NOT_TERMINAL),),
    arguments=(Argument("commander", v.name, "The new incident commander."),),
    prepare=_another_commander,
    emit=_as_role,
    # Histories written before roles record commander_assigned: it still replays as then.
    fold=lambda inc, e, d: replace(
        inc, commander=d.commander, roles={**inc.roles, "commander": d.commander}
    ),
)


def _detection_in_time(
    context: Context[ev.DetectionRecorded], payload: ev.DetectionRecorded
) -> ev.DetectionRecorded:
    first, detected, now = payload.first_occurred_at, payload.detected_at, context.now
    for field, given in (("first_occurred_at", first), ("detected_at", detected)):
        if given is not None and given > now:
            raise ValidationError(field, f"{when(given)} is in the future (now is {when(now)})")
    if first is not None and detected is not None and first > detected:
        raise ValidationError(
            "first_occurred_at", "must not be after detected_at; swap or correct them"
        )
    return payload


def _detected(inc: Incident, e: ev.Event, d: ev.DetectionRecorded) -> Incident:
    detection = Detection(d.first_occurred_at, d.detected_at, d.method, e.actor)
    return replace(inc, detection=detection)


RECORD_DETECTION = Command(
    name="record_detection",
    summary="Record when the issue first occurred and how it was detected.",
    event=ev.DetectionRecorded,
    moves=(Move(NOT_TERMINAL),),
    arguments=(
        Argument(
            "method",
            lambda f, x: v.one_of(f, x, DETECTION_METHODS),
            "How it came to light: alert, user_report or other.",
        ),
        Argument("first_occurred_at", v.aware, "When it first occurred (aware).", default=None),
        Argument("detected_at", v.aware, "When it was detected (aware).", default=None),
    ),
    prepare=_detection_in_time,
    fold=_detected,
)


ADD_NOTE = Command(
    name="add_note",
    summary="Add a free-form note; allowed in every state.",
    event=ev.NoteAdded,
    moves=(Move(EVERY_STATE),),
    arguments=(Argument("text", v.text, "The note."),),
    fold=lambda inc, e, d: replace(inc, notes=inc.notes.appended(_new_note(d.text, e.at, e.actor))),
)


def _not_yet_recorded(c: Context[ev.DeadlineBreached]) -> Unmet | None:
    if c.payload is None or c.payload.key not in c.incident.breaches:
        return None
    return unmet(f"the breach {c.payload.key} is already recorded", key=c.payload.key)


def _fell_due(
    context: Context[ev.DeadlineBreached], payload: ev.DeadlineBreached
) -> ev.DeadlineBreached:
    """A breach is recorded after its deadline, never before: a later ``due_at`` is refused."""
    if payload.due_at > context.now:
        raise ValidationError(
            "due_at",
            f"{when(payload.due_at)} has not come yet (now is {when(context.now)}); "
            "a deadline is breached only once it has passed",
        )
    return payload


RECORD_BREACH = Command(
    name="record_breach",
    summary="Record a deadline passed unmet (run by check_deadlines; after closure too).",
    event=ev.DeadlineBreached,
    moves=(Move(EVERY_STATE),),
    arguments=(
        Argument(
            "kind",
            lambda f, x: v.one_of(f, x, DEADLINE_KINDS),
            "response, postmortem, action_item or update.",
        ),
        Argument(
            "subject",
            lambda f, x: v.optional_text(f, x, max_len=v.NAME_MAX, multiline=False),
            "Which one: the action item's number, else empty.",
        ),
        Argument("due_at", v.aware, "When it fell due (aware)."),
    ),
    guards=(Guard("breach.recorded", "not recorded yet", _not_yet_recorded),),
    prepare=_fell_due,
    fold=lambda inc, e, d: replace(inc, breaches=inc.breaches.appended(d.key)),
    system=True,
)

#: This phase's commands, in the order people meet them.
PHASE = (RECLASSIFY, ASSIGN_COMMANDER, RECORD_DETECTION, ADD_NOTE, RECORD_BREACH)
