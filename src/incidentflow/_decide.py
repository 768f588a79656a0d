"""The pure core: decide what a command means, and fold events into snapshots.

``decide`` takes an incident snapshot, a command name, the command's proposed
payload, the policy and the time, and returns the events to append, or raises.
``evolve`` applies one event to a snapshot. Neither touches any I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from . import _events as ev
from ._lifecycle import lifecycle
from ._model import (
    ActionItem,
    Confirmation,
    ContainmentAction,
    Deploy,
    Detection,
    Evidence,
    Fix,
    Incident,
    KbEntry,
    Note,
    Postmortem,
    Records,
    RootCause,
    State,
    TriageAnswer,
    Why,
)
from ._policy import BlameCheck, CommandRequest, Policy, find_blame
from .exceptions import ConfigError, InvalidTransition, TransitionRejected, ValidationError

__all__ = ["decide", "evolve", "fold", "guard_reasons", "incident_id_for"]

MAX_WHYS = 5


def incident_id_for(declared_at: datetime, slug: str) -> str:
    """The id of an incident: ``INC-<YYYY-MM-DD>-<slug>``."""
    return f"INC-{declared_at:%Y-%m-%d}-{slug}"


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


# -- guards -------------------------------------------------------------------
# Each returns every unmet requirement as a sentence; an empty list means go.
# ``payload`` is None when asked through ``can`` without arguments.

Reasons = list[str]


def _guard_contain(inc: Incident, payload: Any, policy: Policy, now: datetime) -> Reasons:
    reasons = []
    if not inc.evidence:
        reasons.append("no evidence recorded: add at least one item with add_evidence")
    answered = inc.triage
    missing = [q for q in policy.required_triage_answers if q not in answered]
    if missing:
        reasons.append(
            "triage checklist not answered: " + ", ".join(missing) + " (use answer_triage)"
        )
    if not inc.containment:
        reasons.append(
            "no containment action recorded: record what stopped the bleeding with "
            "record_containment"
        )
    return reasons


def _guard_mark_fixed(inc: Incident, payload: Any, policy: Policy, now: datetime) -> Reasons:
    reasons = []
    if not inc.whys:
        reasons.append("no 5-Whys chain: add at least one why with add_why")
    if inc.root_cause is None:
        reasons.append("no root cause stated: state the process gap with set_root_cause")
    if inc.fix is None:
        reasons.append("no fix recorded: describe it and its test with record_fix")
    elif not inc.fix.staging_verified:
        reasons.append("the fix was not verified on staging: record_fix with staging_verified=True")
    if not inc.deploys:
        reasons.append("no deploy of the fix recorded: use record_deploy")
    return reasons


def _guard_resolve(inc: Incident, payload: Any, policy: Policy, now: datetime) -> Reasons:
    reasons = []
    deploy = inc.last_deploy
    assert deploy is not None  # fixed implies a deploy
    confirmation = inc.confirmation
    if confirmation is None or confirmation.at < deploy.deployed_at:
        reasons.append(
            f"no user confirmation recorded after the deploy at {_when(deploy.deployed_at)}: "
            "ask a user and record it with confirm_by_user"
        )
    elif not confirmation.positive:
        reasons.append(f"the last user confirmation, by {confirmation.user}, was negative")
    elif policy.confirmer_must_differ and confirmation.user == inc.commander:
        reasons.append(
            f"the confirmation came from the incident commander {inc.commander}; "
            "a user other than the commander must confirm"
        )
    watch_end = deploy.deployed_at + policy.watch_window
    if now < watch_end:
        reasons.append(
            f"the post-deploy watch window runs until {_when(watch_end)} "
            f"({_minutes(watch_end - now)} left)"
        )
    return reasons


def _minutes(delta: Any) -> str:
    minutes = max(1, int(-(-delta.total_seconds() // 60)))
    return f"{minutes} min"


def _postmortem_texts(pm: Postmortem) -> list[str]:
    return [pm.summary, pm.root_cause, *pm.went_well, *pm.went_poorly]


def participants(inc: Incident) -> set[str]:
    """Every person who took part in the incident, for the blame check."""
    return set(inc.people)


def _blame(inc: Incident, pm: Postmortem) -> list[str]:
    return find_blame("\n".join(_postmortem_texts(pm)), participants(inc))


def _merge_draft(pm: Postmortem | None, draft: ev.PostmortemDrafted | None) -> Postmortem:
    pm = pm or Postmortem()
    if draft is None:
        return pm
    return attrs.evolve(
        pm,
        summary=draft.summary if draft.summary is not None else pm.summary,
        root_cause=draft.root_cause if draft.root_cause is not None else pm.root_cause,
        went_well=draft.went_well if draft.went_well is not None else pm.went_well,
        went_poorly=draft.went_poorly if draft.went_poorly is not None else pm.went_poorly,
    )


def _guard_complete_postmortem(
    inc: Incident, payload: Any, policy: Policy, now: datetime
) -> Reasons:
    pm = _merge_draft(inc.postmortem, payload)
    reasons = []
    if not pm.summary:
        reasons.append("the post-mortem has no summary")
    if not pm.root_cause:
        reasons.append("the post-mortem has no root cause")
    if not pm.went_well:
        reasons.append('the post-mortem lists nothing under "what went well"')
    if not pm.went_poorly:
        reasons.append('the post-mortem lists nothing under "what went poorly"')
    if not inc.action_items:
        reasons.append("no action items: add at least one with an owner and a due date")
    if policy.blame_check is BlameCheck.REJECT:
        reasons.extend(_blame(inc, pm))
    return reasons


def _guard_update_kb(inc: Incident, payload: Any, policy: Policy, now: datetime) -> Reasons:
    reasons = []
    if inc.state is State.RESOLVED and inc.postmortem_required:
        reasons.append(
            f"a {inc.severity.value} incident needs a completed post-mortem first: "
            "use complete_postmortem"
        )
    if not inc.action_items:
        reasons.append("no action items: add at least one with an owner and a due date")
    return reasons


def _guard_add_why(inc: Incident, payload: Any, policy: Policy, now: datetime) -> Reasons:
    if len(inc.whys) >= MAX_WHYS:
        return [f"the 5-Whys chain already has {MAX_WHYS} whys; state the root cause instead"]
    return []


def _guard_record_deploy(inc: Incident, payload: Any, policy: Policy, now: datetime) -> Reasons:
    if inc.fix is None:
        return ["no fix recorded to deploy: use record_fix first"]
    return []


def _guard_complete_action_item(
    inc: Incident, payload: Any, policy: Policy, now: datetime
) -> Reasons:
    if payload is None:
        return []
    numbers = {a.number: a for a in inc.action_items}
    item = numbers.get(payload.number)
    if item is None:
        known = ", ".join(str(n) for n in numbers) or "none yet"
        return [f"there is no action item {payload.number} (action items: {known})"]
    if item.done:
        return [f"action item {payload.number} is already done"]
    return []


Guard = Callable[[Incident, Any, Policy, datetime], Reasons]

_GUARDS: dict[str, Guard] = {
    "contain": _guard_contain,
    "mark_fixed": _guard_mark_fixed,
    "resolve": _guard_resolve,
    "complete_postmortem": _guard_complete_postmortem,
    "update_kb": _guard_update_kb,
    "add_why": _guard_add_why,
    "record_deploy": _guard_record_deploy,
    "complete_action_item": _guard_complete_action_item,
}


def _custom_reasons(
    policy: Policy, inc: Incident | None, command: str, actor: str, now: datetime, payload: Any
) -> Reasons:
    custom = policy.guards.get(command)
    if not custom:
        return []
    args = attrs.asdict(payload, recurse=False) if payload is not None else {}
    request = CommandRequest(command=command, actor=actor, now=now, args=args)
    reasons: Reasons = []
    for guard in custom:
        try:
            result = guard(inc, request)
        except Exception as exc:
            name = getattr(guard, "__qualname__", repr(guard))
            raise ConfigError(
                f"guards.{command}",
                f"custom guard {name} raised {exc!r}; a guard returns its reasons instead",
            ) from exc
        if result is None:
            continue
        if isinstance(result, str):
            reasons.append(result)
        else:
            reasons.extend(str(r) for r in result)
    return reasons


def check_state(inc: Incident, command: str) -> None:
    """Raise InvalidTransition unless ``command`` is allowed in ``inc``'s state."""
    allowed = lifecycle().allowed_states(command)
    if inc.state not in allowed:
        raise InvalidTransition(inc.id, command, inc.state.value, (s.value for s in allowed))


def guard_reasons(
    inc: Incident,
    command: str,
    payload: Any,
    policy: Policy,
    now: datetime,
    actor: str,
) -> Reasons:
    """Every unmet requirement of ``command`` (the state is assumed allowed)."""
    guard = _GUARDS.get(command)
    reasons = guard(inc, payload, policy, now) if guard is not None else []
    reasons.extend(_custom_reasons(policy, inc, command, actor, now, payload))
    return reasons


# -- decide -------------------------------------------------------------------


def _not_before_declared(inc: Incident, field: str, at: datetime, now: datetime) -> None:
    if at < inc.declared_at:
        raise ValidationError(
            field,
            f"{_when(at)} is before {inc.id} was declared at {_when(inc.declared_at)}; "
            "give a later time",
        )
    if at > now:
        raise ValidationError(field, f"{_when(at)} is in the future (now is {_when(now)})")


def _complete(inc: Incident, payload: Any, policy: Policy, now: datetime) -> list[ev.EventData]:
    events: list[ev.EventData] = []
    if payload is not None and any(
        getattr(payload, f) is not None
        for f in ("summary", "root_cause", "went_well", "went_poorly")
    ):
        events.append(payload)
    pm = _merge_draft(inc.postmortem, payload)
    warnings = tuple(_blame(inc, pm)) if policy.blame_check is BlameCheck.WARN else ()
    events.append(ev.PostmortemCompleted(blame_warnings=warnings))
    return events


def decide(
    inc: Incident | None,
    command: str,
    payload: ev.EventData,
    policy: Policy,
    now: datetime,
    actor: str,
) -> list[ev.EventData]:
    """The events that ``command`` with ``payload`` produces, or an error.

    Raises:
        InvalidTransition: the command is not allowed in the incident's state.
        TransitionRejected: guards are unmet; ``.reasons`` lists them all.
        ValidationError: the payload does not fit this incident.

    """
    if inc is None:
        assert isinstance(payload, ev.Declared)
        reasons = _custom_reasons(policy, None, command, actor, now, payload)
        if reasons:
            raise TransitionRejected(f"INC-{now:%Y-%m-%d}-{payload.slug}", command, reasons)
        return [
            attrs.evolve(payload, postmortem_required=policy.needs_postmortem(payload.severity))
        ]

    check_state(inc, command)
    reasons = guard_reasons(inc, command, payload, policy, now, actor)
    if reasons:
        raise TransitionRejected(inc.id, command, reasons)

    match payload:
        case ev.ContainmentRecorded(taken_at=at):
            _not_before_declared(inc, "taken_at", at, now)
        case ev.DeployRecorded(deployed_at=at):
            _not_before_declared(inc, "deployed_at", at, now)
        case ev.DetectionRecorded(first_occurred_at=first, detected_at=detected):
            for field, given in (("first_occurred_at", first), ("detected_at", detected)):
                if given is not None and given > now:
                    raise ValidationError(
                        field, f"{_when(given)} is in the future (now is {_when(now)})"
                    )
            if first is not None and detected is not None and first > detected:
                raise ValidationError(
                    "first_occurred_at", "must not be after detected_at; swap or correct them"
                )
        case ev.ActionItemAdded(due=due):
            if due < inc.declared_at.date():
                raise ValidationError(
                    "due", f"{due} is before {inc.id} was declared; give a later due date"
                )
            return [attrs.evolve(payload, number=len(inc.action_items) + 1)]
        case ev.Reclassified(severity=severity):
            if severity is inc.severity:
                raise ValidationError("severity", f"{inc.id} is already {severity.value}")
            required = policy.needs_postmortem(severity)
            if inc.state in (State.RESOLVED, State.POSTMORTEM):
                # Once resolved, raising the severity can add a post-mortem, never drop one.
                required = required or inc.postmortem_required
            return [attrs.evolve(payload, previous=inc.severity, postmortem_required=required)]
        case ev.CommanderAssigned(commander=commander):
            if commander == inc.commander:
                raise ValidationError("commander", f"{commander} already commands {inc.id}")
        case ev.Reopened(to_state=to_state):
            if to_state not in lifecycle().destinations(command, inc.state):
                raise ValidationError("to", "reopen to triaging or rca")
        case ev.UserConfirmed(positive=False, user=user):
            return [
                payload,
                ev.Reopened(
                    reason=f"user {user} reported the problem persists", to_state=State.RCA
                ),
            ]
        case ev.PostmortemCompleted() | ev.PostmortemDrafted() if command == "complete_postmortem":
            return _complete(inc, payload, policy, now)
        case ev.DeadlineBreached(key=key):
            if key in inc.breaches:
                raise TransitionRejected(inc.id, command, [f"the breach {key} is already recorded"])
        case ev.KbUpdated():
            # resolved and postmortem are reached only through mark_fixed's guards
            assert inc.root_cause is not None
            assert inc.fix is not None
            return [
                attrs.evolve(
                    payload,
                    slug=payload.slug or inc.slug,
                    root_cause=payload.root_cause or inc.root_cause.statement,
                    fix=payload.fix or inc.fix.description,
                )
            ]
    return [payload]


# -- evolve -------------------------------------------------------------------


def _declared(inc: Incident | None, e: ev.Event) -> Incident:
    d = e.data
    assert isinstance(d, ev.Declared)
    return Incident(
        id=e.incident_id,
        slug=d.slug,
        title=d.title,
        severity=d.severity,
        state=State.DECLARED,
        commander=d.commander,
        declared_at=e.at,
        declared_by=e.actor,
        version=0,
        updated_at=e.at,
        postmortem_required=d.postmortem_required,
    )


def _moved(state: State, **stamp: str) -> Callable[[Incident, ev.Event], dict[str, Any]]:
    def apply(inc: Incident, e: ev.Event) -> dict[str, Any]:
        changes: dict[str, Any] = {"state": state}
        for field in stamp.values():
            changes[field] = e.at
        return changes

    return apply


def _reopened(inc: Incident, e: ev.Event) -> dict[str, Any]:
    d = e.data
    assert isinstance(d, ev.Reopened)
    return {
        "state": d.to_state,
        "reopen_count": inc.reopen_count + 1,
        "confirmation": None,
        "fix": None,
        "deploys": Records(),
        "fixed_at": None,
        "resolved_at": None,
        "closed_at": None,
    }


def _postmortem_drafted(inc: Incident, e: ev.Event) -> dict[str, Any]:
    assert isinstance(e.data, ev.PostmortemDrafted)
    return {"postmortem": _merge_draft(inc.postmortem, e.data)}


def _postmortem_completed(inc: Incident, e: ev.Event) -> dict[str, Any]:
    d = e.data
    assert isinstance(d, ev.PostmortemCompleted)
    pm = inc.postmortem or Postmortem()
    return {
        "state": State.POSTMORTEM,
        "postmortem": attrs.evolve(pm, completed_at=e.at, blame_warnings=d.blame_warnings),
    }


def _action_item_completed(inc: Incident, e: ev.Event) -> dict[str, Any]:
    d = e.data
    assert isinstance(d, ev.ActionItemCompleted)
    return {
        "action_items": Records(
            attrs.evolve(a, done_at=e.at) if a.number == d.number else a for a in inc.action_items
        )
    }


def _d(e: ev.Event) -> Any:
    return e.data


_EVOLVERS: dict[type[ev.EventData], Callable[[Incident, ev.Event], dict[str, Any]]] = {
    ev.TriageStarted: _moved(State.TRIAGING, at="acknowledged_at"),
    ev.Contained: _moved(State.CONTAINED, at="contained_at"),
    ev.RcaStarted: _moved(State.RCA),
    ev.MarkedFixed: _moved(State.FIXED, at="fixed_at"),
    ev.Resolved: _moved(State.RESOLVED, at="resolved_at"),
    ev.Dismissed: lambda inc, e: {
        "state": State.DISMISSED,
        "closed_at": e.at,
        "dismissal_reason": _d(e).reason,
        "duplicate_of": _d(e).duplicate_of,
    },
    ev.Reopened: _reopened,
    ev.EvidenceAdded: lambda inc, e: {
        "evidence": inc.evidence.appended(Evidence(_d(e).source, _d(e).content, e.at, e.actor))
    },
    ev.TriageAnswered: lambda inc, e: {
        "triage_answers": Records(
            (
                *(a for a in inc.triage_answers if a.question != _d(e).question),
                TriageAnswer(_d(e).question, _d(e).answer, e.at, e.actor),
            )
        )
    },
    ev.ContainmentRecorded: lambda inc, e: {
        "containment": inc.containment.appended(
            ContainmentAction(_d(e).description, _d(e).taken_at, e.actor)
        )
    },
    ev.WhyAdded: lambda inc, e: {"whys": inc.whys.appended(Why(_d(e).answer, e.at, e.actor))},
    ev.RootCauseSet: lambda inc, e: {
        "root_cause": RootCause(_d(e).statement, _d(e).process_gap, e.at, e.actor)
    },
    ev.FixRecorded: lambda inc, e: {
        "fix": Fix(_d(e).description, _d(e).test, _d(e).staging_verified, e.at, e.actor)
    },
    ev.DeployRecorded: lambda inc, e: {
        "deploys": inc.deploys.appended(Deploy(_d(e).deployed_at, _d(e).ref, e.actor))
    },
    ev.UserConfirmed: lambda inc, e: {
        "confirmation": Confirmation(_d(e).user, _d(e).positive, _d(e).comment, e.at, e.actor)
    },
    ev.Reclassified: lambda inc, e: {
        "severity": _d(e).severity,
        "postmortem_required": _d(e).postmortem_required,
    },
    ev.CommanderAssigned: lambda inc, e: {"commander": _d(e).commander},
    ev.DetectionRecorded: lambda inc, e: {
        "detection": Detection(_d(e).first_occurred_at, _d(e).detected_at, _d(e).method, e.actor)
    },
    ev.NoteAdded: lambda inc, e: {"notes": inc.notes.appended(Note(_d(e).text, e.at, e.actor))},
    ev.ActionItemAdded: lambda inc, e: {
        "action_items": inc.action_items.appended(
            ActionItem(_d(e).number, _d(e).description, _d(e).owner, _d(e).due)
        )
    },
    ev.ActionItemCompleted: _action_item_completed,
    ev.DeadlineBreached: lambda inc, e: {"breaches": inc.breaches.appended(_d(e).key)},
    ev.PostmortemDrafted: _postmortem_drafted,
    ev.PostmortemCompleted: _postmortem_completed,
    ev.KbUpdated: lambda inc, e: {
        "state": State.KB_UPDATED,
        "closed_at": e.at,
        "kb_entry": KbEntry(
            _d(e).slug, _d(e).symptom, _d(e).root_cause, _d(e).fix, _d(e).early_signs, e.at, e.actor
        ),
    },
}


def _compile_replace() -> Callable[[Incident, dict[str, Any]], Incident]:
    # attrs.evolve introspects the class and reruns converters on every call;
    # folding runs once per event on values the evolvers already typed, so build
    # the field-by-field copy once, as attrs builds __init__.
    names = [a.name for a in attrs.fields(Incident)]
    lines = ["def replace(inc, changes):", "    get = changes.get", "    new = _new(Incident)"]
    lines += [f"    _set(new, {n!r}, get({n!r}, inc.{n}))" for n in names]
    lines.append("    return new")
    namespace: dict[str, Any] = {
        "Incident": Incident,
        "_new": object.__new__,
        "_set": object.__setattr__,
    }
    exec(compile("\n".join(lines), "<incidentflow replace>", "exec"), namespace)
    replace: Callable[[Incident, dict[str, Any]], Incident] = namespace["replace"]
    return replace


_replace = _compile_replace()


def evolve(inc: Incident | None, event: ev.Event) -> Incident:
    """The snapshot after ``event``. ``inc`` is ``None`` only for the declaration."""
    if inc is None:
        inc = _declared(None, event)
        return _replace(inc, {"version": event.seq, "people": _joined(inc.people, event)})
    changes = _EVOLVERS[type(event.data)](inc, event)
    changes["version"] = event.seq
    changes["updated_at"] = event.at
    people = _joined(inc.people, event)
    if people is not inc.people:
        changes["people"] = people
    return _replace(inc, changes)


_NAMED_FIELDS = ("commander", "user", "owner")


_NAMED_BY_TYPE: dict[type[ev.EventData], tuple[str, ...]] = {}


def _named_fields(data_type: type[ev.EventData]) -> tuple[str, ...]:
    """The fields of an event type that name a person."""
    found = _NAMED_BY_TYPE.get(data_type)
    if found is None:
        names = attrs.fields_dict(data_type)
        found = _NAMED_BY_TYPE[data_type] = tuple(f for f in _NAMED_FIELDS if f in names)
    return found


def _joined(people: Records[str], event: ev.Event) -> Records[str]:
    """``people`` with the event's actor and any person its data names."""
    if event.actor not in people:
        people = people.appended(event.actor)
    for field in _named_fields(type(event.data)):
        name = getattr(event.data, field)
        if name and name not in people:
            people = people.appended(name)
    return people


def fold(events: Iterable[ev.Event], inc: Incident | None = None) -> Incident | None:
    """Replay ``events`` onto ``inc`` (or from nothing)."""
    for event in events:
        inc = evolve(inc, event)
    return inc


def replay(events: Sequence[ev.Event]) -> Incident:
    """The snapshot that a whole history gives."""
    inc = fold(events)
    if inc is None:
        raise ValueError("an empty history has no snapshot")
    return inc
