"""Argument checks for every command: raw arguments in, a typed proposal out.

Each builder validates what the caller passed and returns the event payload the
command proposes; ``_decide.decide`` then checks it against the incident.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import _events as ev
from . import _validate as v
from ._deadlines import DEADLINE_KINDS
from ._model import State
from .exceptions import ValidationError

__all__ = ["BUILDERS", "DETECTION_METHODS", "build"]

#: How an incident can come to light.
DETECTION_METHODS = ("alert", "user_report", "other")


def _question(value: object) -> str:
    return v.triage_key(v.name("question", value))


def _optional_time(field: str, value: object, now: datetime) -> datetime:
    return now if value is None else v.aware(field, value)


def _maybe(field: str, value: object) -> str | None:
    return None if value is None else v.text(field, value)


def _maybe_list(field: str, value: object) -> tuple[str, ...] | None:
    return None if value is None else v.texts(field, value)


def _reopen_target(value: object) -> State:
    if value in ("triaging", State.TRIAGING):
        return State.TRIAGING
    if value in ("rca", State.RCA):
        return State.RCA
    raise ValidationError("to", f"{value!r} is not accepted; reopen to 'triaging' or 'rca'")


def _incident_ref(field: str, value: object) -> str | None:
    if value is None:
        return None
    return v.name(field, value)


Builder = Callable[..., ev.EventData]

BUILDERS: dict[str, Builder] = {
    "start_triage": lambda now: ev.TriageStarted(),
    "contain": lambda now: ev.Contained(),
    "start_rca": lambda now: ev.RcaStarted(),
    "mark_fixed": lambda now: ev.MarkedFixed(),
    "resolve": lambda now: ev.Resolved(),
    "add_evidence": lambda now, source, content: ev.EvidenceAdded(
        source=v.name("source", source),
        content=v.text("content", content, max_len=v.EVIDENCE_MAX),
    ),
    "answer_triage": lambda now, question, answer: ev.TriageAnswered(
        question=_question(question), answer=v.text("answer", answer)
    ),
    "record_containment": lambda now, description, taken_at=None: ev.ContainmentRecorded(
        description=v.text("description", description),
        taken_at=_optional_time("taken_at", taken_at, now),
    ),
    "add_why": lambda now, answer: ev.WhyAdded(answer=v.text("answer", answer)),
    "set_root_cause": lambda now, statement, process_gap: ev.RootCauseSet(
        statement=v.text("statement", statement),
        process_gap=v.text("process_gap", process_gap),
    ),
    "record_fix": lambda now, description, test, staging_verified: ev.FixRecorded(
        description=v.text("description", description),
        test=v.text("test", test),
        staging_verified=v.boolean("staging_verified", staging_verified),
    ),
    "record_deploy": lambda now, deployed_at=None, ref="": ev.DeployRecorded(
        deployed_at=_optional_time("deployed_at", deployed_at, now),
        ref=v.optional_text("ref", ref, max_len=v.NAME_MAX),
    ),
    "confirm_by_user": lambda now, user, positive=True, comment="": ev.UserConfirmed(
        user=v.name("user", user),
        positive=v.boolean("positive", positive),
        comment=v.optional_text("comment", comment),
    ),
    "reopen": lambda now, reason, to="rca": ev.Reopened(
        reason=v.text("reason", reason), to_state=_reopen_target(to)
    ),
    "dismiss": lambda now, reason, duplicate_of=None: ev.Dismissed(
        reason=v.text("reason", reason), duplicate_of=_incident_ref("duplicate_of", duplicate_of)
    ),
    "reclassify": lambda now, severity, reason: ev.Reclassified(
        severity=v.severity(severity),
        previous=v.severity(severity),  # decide fills in the real previous severity
        reason=v.text("reason", reason),
        postmortem_required=False,  # decide fills it in from the policy
    ),
    "assign_commander": lambda now, commander: ev.CommanderAssigned(
        commander=v.name("commander", commander)
    ),
    "record_detection": lambda now, method, first_occurred_at=None, detected_at=None: (
        ev.DetectionRecorded(
            first_occurred_at=None
            if first_occurred_at is None
            else v.aware("first_occurred_at", first_occurred_at),
            detected_at=None if detected_at is None else v.aware("detected_at", detected_at),
            method=v.one_of("method", method, DETECTION_METHODS),
        )
    ),
    "add_note": lambda now, text: ev.NoteAdded(text=v.text("text", text)),
    "add_action_item": lambda now, description, owner, due: ev.ActionItemAdded(
        number=0,  # decide numbers it
        description=v.text("description", description),
        owner=v.name("owner", owner),
        due=v.day("due", due),
    ),
    "complete_action_item": lambda now, number: ev.ActionItemCompleted(
        number=v.positive_int("number", number)
    ),
    "draft_postmortem": lambda now, **fields: _draft(require_one=True, **fields),
    "complete_postmortem": lambda now, **fields: _draft(require_one=False, **fields),
    "record_breach": lambda now, kind, subject, due_at: ev.DeadlineBreached(
        kind=v.one_of("kind", kind, DEADLINE_KINDS),
        subject=v.optional_text("subject", subject, max_len=v.NAME_MAX),
        due_at=v.aware("due_at", due_at),
    ),
    "update_kb": lambda now, symptom, early_signs, root_cause=None, fix=None: ev.KbUpdated(
        slug="",  # decide uses the incident's slug
        symptom=v.text("symptom", symptom),
        root_cause=v.optional_text("root_cause", root_cause),
        fix=v.optional_text("fix", fix),
        early_signs=v.text("early_signs", early_signs),
    ),
}


def _draft(
    *,
    require_one: bool,
    summary: object = None,
    root_cause: object = None,
    went_well: object = None,
    went_poorly: object = None,
) -> ev.PostmortemDrafted:
    draft = ev.PostmortemDrafted(
        summary=_maybe("summary", summary),
        root_cause=_maybe("root_cause", root_cause),
        went_well=_maybe_list("went_well", went_well),
        went_poorly=_maybe_list("went_poorly", went_poorly),
    )
    if require_one and draft == ev.PostmortemDrafted():
        raise ValidationError(
            "postmortem", "give at least one of summary, root_cause, went_well, went_poorly"
        )
    return draft


def build(command: str, now: datetime, args: dict[str, Any]) -> ev.EventData:
    """Validate ``args`` for ``command`` and return its proposed payload."""
    try:
        builder = BUILDERS[command]
    except KeyError:
        from ._lifecycle import COMMANDS

        raise ValidationError(
            "command", f"{command!r} is not a command; use one of {', '.join(COMMANDS)}"
        ) from None
    try:
        return builder(now, **args)
    except TypeError:
        raise _argument_error(command, builder, args) from None


def _argument_error(command: str, builder: Builder, args: dict[str, Any]) -> ValidationError:
    """Name the missing or unknown argument, in the library's own terms."""
    import inspect

    params = inspect.signature(builder).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    accepted = [name for name, p in params.items() if name != "now" and p.kind is not p.VAR_KEYWORD]
    unknown = [name for name in args if name == "now" or (name not in params and not takes_any)]
    if unknown:
        return ValidationError(
            unknown[0], f"{command} takes no such argument; it takes {', '.join(accepted)}"
        )
    missing = [
        name
        for name, p in params.items()
        if name != "now"
        and p.default is p.empty
        and p.kind is not p.VAR_KEYWORD
        and name not in args
    ]
    if missing:
        return ValidationError(missing[0], f"{command} needs {', '.join(missing)}")
    return ValidationError("arguments", f"{command} does not take {', '.join(args)}")
