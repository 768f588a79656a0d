"""Declared and triaging: declare, acknowledge, gather evidence, answer the checklist, contain."""

from __future__ import annotations

from .. import _events as ev
from .. import _validate as v
from .._builders import builder
from .._model import ContainmentAction, Evidence, Incident, Records, Reference, State, TriageAnswer
from ..exceptions import ValidationError
from ._define import NOW, Argument, Command, Context, Guard, Move, Unmet, unmet
from ._shared import in_incident_time, incident_id, replace

__all__ = [
    "ADD_EVIDENCE",
    "ANSWER_TRIAGE",
    "CONTAIN",
    "DECLARE",
    "DISMISS",
    "PHASE",
    "RECORD_CONTAINMENT",
    "START_TRIAGE",
    "references",
]

# Built on every fold of their events: the records attrs would make, without its setattr calls.
_new_containment_action = builder(ContainmentAction)
_new_triage_answer = builder(TriageAnswer)
_new_evidence = builder(Evidence)


def _title(field: str, value: object) -> str:
    return v.text(field, value, max_len=v.TITLE_MAX, multiline=False)


def references(field: str, value: object) -> tuple[Reference, ...]:
    """External references: a mapping of kind to value, (kind, value) pairs or References."""
    if isinstance(value, (list, tuple)) and all(isinstance(r, Reference) for r in value):
        pairs: list[tuple[object, object]] = [(r.kind, r.value) for r in value]
    else:
        pairs = v._entries(field, value)
    return tuple(
        dict.fromkeys(
            Reference(v.key(field, kind), v.reference_value(f"{field}.{kind}", ref))
            for kind, ref in pairs
        )
    )


def _declared(inc: Incident, e: ev.Event, d: ev.Declared) -> Incident:
    return inc  # the first snapshot is made from the declaration itself (see evolve)


DECLARE = Command(
    name="declare",
    summary="Declare a new incident; its id is INC-YYYY-MM-DD-slug.",
    event=ev.Declared,
    moves=(),
    arguments=(
        Argument("title", _title, "What is broken, in a line (1–200 characters)."),
        Argument("severity", lambda f, x: v.severity(x, f), "P1 (critical) to P4 (low)."),
        Argument("commander", v.name, "The incident commander."),
        Argument(
            "slug",
            lambda f, x: v.slug(x),
            "Names the id and files: lowercase letters, digits and dashes, at most 48. "
            "Without it, one is made from the title and numbered when taken that day.",
            default=None,
        ),
        Argument(
            "type",
            v.key,
            "The incident type, one of the policy's incident_types (default: its first, "
            "availability).",
            default=None,
        ),
        Argument("labels", v.labels, "Labels, key → value: service=checkout, ...", default=None),
        Argument(
            "fields",
            v.mapping,
            "Custom fields the policy declares, name → value.",
            default=None,
            field="custom_fields",
        ),
        Argument(
            "references",
            references,
            "External references, kind → value: {'alert': fingerprint, 'ticket': 'OPS-1'}.",
            default=None,
        ),
    ),
    fold=_declared,
)


START_TRIAGE = Command(
    name="start_triage",
    summary="Acknowledge the incident and start triage (stops the response-time clock).",
    event=ev.TriageStarted,
    moves=(Move((State.DECLARED,), State.TRIAGING),),
    fold=lambda inc, e, d: replace(inc, acknowledged_at=e.at),
)


ADD_EVIDENCE = Command(
    name="add_evidence",
    summary="Attach evidence: where it came from and what it shows.",
    event=ev.EvidenceAdded,
    moves=(Move((State.DECLARED, State.TRIAGING, State.CONTAINED, State.RCA, State.FIXED)),),
    arguments=(
        Argument("source", v.name, "Where it came from: a command, a dashboard, a person."),
        Argument(
            "content",
            lambda f, x: v.text(f, x, max_len=v.EVIDENCE_MAX),
            "What it shows: a log excerpt, a graph's reading (up to 1,000,000 characters).",
        ),
    ),
    fold=lambda inc, e, d: replace(
        inc, evidence=inc.evidence.appended(_new_evidence(d.source, d.content, e.at, e.actor))
    ),
)


def _answer_fold(inc: Incident, e: ev.Event, d: ev.TriageAnswered) -> Incident:
    answers = [a for a in inc.triage_answers if a.question != d.question]
    answers.append(_new_triage_answer(d.question, d.answer, e.at, e.actor))
    return replace(inc, triage_answers=Records(answers))


def _known_question(
    context: Context[ev.TriageAnswered], payload: ev.TriageAnswered
) -> ev.TriageAnswered:
    known = context.policy.known_triage_questions
    if payload.question in known:
        return payload
    raise ValidationError(
        "question",
        f"{payload.question!r} is not a triage question of the policy; answer one of "
        f"{', '.join(known)} (the policy's triage_questions can add more)",
    )


ANSWER_TRIAGE = Command(
    name="answer_triage",
    summary="Answer one question of the triage checklist; a later answer replaces it.",
    event=ev.TriageAnswered,
    moves=(Move((State.DECLARED, State.TRIAGING, State.CONTAINED, State.RCA)),),
    arguments=(
        Argument(
            "question",
            lambda f, x: v.triage_key(v.name(f, x)),
            "The question, e.g. symptom, started_at, scope (spaces become underscores).",
        ),
        Argument("answer", v.text, "The answer."),
    ),
    prepare=_known_question,
    fold=_answer_fold,
)


RECORD_CONTAINMENT = Command(
    name="record_containment",
    summary="Record a containment action: what stopped the bleeding, and when.",
    event=ev.ContainmentRecorded,
    moves=(Move((State.TRIAGING, State.CONTAINED, State.RCA)),),
    arguments=(
        Argument("description", v.text, "What was done, e.g. rolled back, failed over."),
        Argument("taken_at", v.aware, "When it was done (aware); default now.", default=NOW),
    ),
    prepare=in_incident_time("taken_at"),
    fold=lambda inc, e, d: replace(
        inc,
        containment=inc.containment.appended(
            _new_containment_action(d.description, d.taken_at, e.actor)
        ),
    ),
)


def _evidence(c: Context[ev.Contained]) -> Unmet | None:
    evidence = c.incident.evidence
    if any(item.retracted is None for item in evidence):
        return None
    if evidence:
        return unmet(
            "no live evidence (retracted items do not count): add at least one item "
            "with add_evidence"
        )
    return unmet("no evidence recorded: add at least one item with add_evidence")


def _triage_answered(c: Context[ev.Contained]) -> Unmet | None:
    answered = c.incident.triage
    required = c.policy.process_of(c.incident).required_triage_answers
    missing = [q for q in required if q not in answered]
    if not missing:
        return None
    # An answer retracted stays on record, so say why it does not count.
    retracted = any(a.question in missing for a in c.incident.triage_answers)
    how = "retracted answers do not count; use answer_triage" if retracted else "use answer_triage"
    return unmet(f"triage checklist not answered: {', '.join(missing)} ({how})", missing=missing)


def _containment(c: Context[ev.Contained]) -> Unmet | None:
    containment = c.incident.containment
    if any(action.retracted is None for action in containment):
        return None
    if containment:
        return unmet(
            "no live containment action (retracted ones do not count): record what "
            "stopped the bleeding with record_containment"
        )
    return unmet(
        "no containment action recorded: record what stopped the bleeding with record_containment"
    )


CONTAIN = Command(
    name="contain",
    summary="Declare the incident contained: evidence, triage answers and containment needed.",
    event=ev.Contained,
    moves=(Move((State.TRIAGING,), State.CONTAINED),),
    guards=(
        Guard("evidence.missing", "≥1 evidence item", _evidence),
        Guard("triage.unanswered", "triage checklist answered", _triage_answered),
        Guard("containment.missing", "≥1 containment action", _containment),
    ),
    fold=lambda inc, e, d: replace(inc, contained_at=e.at),
)


def _dismissed(inc: Incident, e: ev.Event, d: ev.Dismissed) -> Incident:
    return replace(inc, closed_at=e.at, dismissal_reason=d.reason, duplicate_of=d.duplicate_of)


DISMISS = Command(
    name="dismiss",
    summary="Dismiss a false alarm or a duplicate of another incident (before containment).",
    event=ev.Dismissed,
    moves=(Move((State.DECLARED, State.TRIAGING), State.DISMISSED),),
    arguments=(
        Argument("reason", v.text, "Why: a false alarm, a duplicate, ..."),
        Argument(
            "duplicate_of",
            incident_id,
            "The incident this one duplicates (its id): another incident that exists.",
            default=None,
            incident_ref=True,
        ),
    ),
    fold=_dismissed,
)

#: This phase's commands, in the order people meet them.
PHASE = (DECLARE, START_TRIAGE, ADD_EVIDENCE, ANSWER_TRIAGE, RECORD_CONTAINMENT, CONTAIN, DISMISS)
