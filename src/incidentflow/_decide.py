"""The pure core: decide what a command means, and fold events into snapshots.

``decide`` takes an incident snapshot, a command's definition, its proposed
payload, the policy and the time, and returns the events to append, or raises.
``evolve`` applies one event to a snapshot. Neither touches any I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

from . import _events as ev
from ._builders import copier
from ._lifecycle import Step, lifecycle
from ._model import Incident, Records, Severity, State
from ._policy import CommandRequest, Policy
from ._reasons import Reason
from ._sequences import FrozenMap
from .commands import APPLY, Command, Context, definition
from .commands._shared import replace
from .exceptions import ConfigError, InvalidTransition, TransitionRejected

__all__ = [
    "check_state",
    "context_reasons",
    "decide",
    "evolve",
    "fold",
    "incident_id_for",
    "reasons",
    "replay",
    "role_reasons",
    "steps",
]


_NO_OTHERS: Mapping[str, State] = MappingProxyType({})
_tuple_new = tuple.__new__
_evolve_declared = copier(ev.Declared)


def incident_id_for(declared_at: datetime, slug: str) -> str:
    """The id of an incident: ``INC-<YYYY-MM-DD>-<slug>``."""
    if declared_at.year >= 1000:  # strftime is slow, and pads shorter years by platform
        return f"INC-{declared_at.date().isoformat()}-{slug}"
    return f"INC-{declared_at:%Y-%m-%d}-{slug}"


def steps(inc: Incident, command: Command[Any]) -> tuple[Step, ...]:
    """The machine's transitions for ``command`` from ``inc``'s state; raise if there are none."""
    found = lifecycle().steps(command.name, inc.state)
    if not found:
        allowed = lifecycle().allowed_states(command.name)
        raise InvalidTransition(inc.id, command.name, inc.state.value, (s.value for s in allowed))
    return found


def check_state(inc: Incident, command: str) -> None:
    """Raise InvalidTransition unless ``command`` is allowed in ``inc``'s state."""
    steps(inc, definition(command))


def reasons(
    inc: Incident,
    command: Command[Any],
    payload: ev.EventData | None,
    policy: Policy,
    now: datetime,
    actor: str,
    others: Mapping[str, State] = _NO_OTHERS,
) -> list[Reason]:
    """Every unmet guard of the transition the payload takes (the state must allow it).

    Without a payload (``flow.can`` with no arguments) every transition from
    the state is considered and the guards of all of them are evaluated.
    ``others`` holds the states of linked incidents the guards read.
    """
    return context_reasons(command, Context(inc, payload, policy, now, actor, others))


def context_reasons(command: Command[Any], context: Context[Any]) -> list[Reason]:
    """Every unmet guard of the command's transition in ``context`` (the state must allow it)."""
    inc, payload = context.incident, context.payload
    found: list[Reason] = []
    for step in steps(inc, command):
        if step.when and not step.selected_by(payload):
            continue
        for guard in step.guards:
            if guard.check(context) is None:
                continue  # the common case, without building reasons
            for reason in guard.reasons(context):
                if reason not in found:
                    found.append(reason)
    if context.policy.requires_roles:
        found.extend(role_reasons(inc, command.name, context.policy))
    if context.policy.guards:
        found.extend(
            custom_reasons(context.policy, inc, command.name, context.actor, context.now, payload)
        )
    return found


def role_reasons(inc: Incident, command: str, policy: Policy) -> list[Reason]:
    """The roles the policy requires before ``command`` that nobody holds on ``inc``."""
    if inc.state.is_terminal:
        return []  # roles cannot be assigned once closed: follow-ups never wait for one
    needed = policy.process_of(inc).required_roles.get(command, ())
    missing = [role for role in needed if role != "commander" and role not in inc.roles]
    if not missing:
        return []
    return [
        Reason(
            "roles.missing",
            f"a {inc.severity.value} {inc.type} incident needs a {' and a '.join(missing)} "
            f"before {command}: assign with assign_role",
            {"missing": missing},
        )
    ]


def _declaration(payload: ev.Declared, policy: Policy) -> ev.Declared:
    """The declaration completed from the policy: its type, checked labels and fields."""
    kind = policy.check_type(payload.type) if payload.type else policy.default_type
    for key, value in payload.labels.items():
        policy.check_label(key, value)
    fields = payload.custom_fields
    if fields:  # none: the payload's own empty FrozenMap, converted again for nothing
        fields = {name: policy.check_field(name, value) for name, value in fields.items()}
    return _evolve_declared(
        payload,
        type=kind,
        custom_fields=fields,
        postmortem_required=policy.needs_postmortem(payload.severity, kind),
    )


def custom_reasons(
    policy: Policy,
    inc: Incident | None,
    command: str,
    actor: str,
    now: datetime,
    payload: ev.EventData | None,
) -> list[Reason]:
    """What the policy's custom guards for ``command`` say against it."""
    custom = policy.guards.get(command)
    if not custom:
        return []
    args = attrs.asdict(payload, recurse=False) if payload is not None else {}
    request = CommandRequest(command=command, actor=actor, now=now, args=args)
    found: list[Reason] = []
    for guard in custom:
        name = getattr(guard, "__qualname__", repr(guard))
        try:
            result = guard(inc, request)
            said = _said(result, name)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"guards.{command}",
                f"custom guard {name} raised {exc!r}; a guard returns its reasons instead",
            ) from exc
        found.extend(said)
    return found


def _said(result: object, guard: str) -> list[Reason]:
    """The reasons a custom guard's answer gives: None or True pass, False refuses."""
    if result is None or result is True:
        return []
    if result is False:
        return [Reason("policy.guard", f"the custom guard {guard} refused", {"guard": guard})]
    items = [result] if isinstance(result, (str, Reason)) else result
    if not isinstance(items, Iterable):
        raise ConfigError(
            "guards",
            f"custom guard {guard} returned {type(result).__name__}; return "
            "None, a bool, a reason (str or Reason) or a list of them",
        )
    return [
        r if isinstance(r, Reason) else Reason("policy.guard", str(r), {"guard": guard})
        for r in items
    ]


def decide(
    inc: Incident | None,
    command: Command[Any],
    payload: ev.EventData,
    policy: Policy,
    now: datetime,
    actor: str,
    others: Mapping[str, State] = _NO_OTHERS,
) -> list[ev.EventData]:
    """The events that ``command`` with ``payload`` produces, or an error.

    ``others`` holds the states of the linked incidents whose states the
    command's guards read (see ``Command.sees_links``); pure data, like the rest.

    Raises:
        InvalidTransition: the command is not allowed in the incident's state.
        TransitionRejected: guards are unmet; ``.reasons`` lists them all.
        ValidationError: the payload does not fit this incident.

    """
    if inc is None:
        assert isinstance(payload, ev.Declared)
        payload = _declaration(payload, policy)
        found = custom_reasons(policy, None, command.name, actor, now, payload)
        if found:
            raise TransitionRejected(incident_id_for(now, payload.slug), command.name, found)
        return [payload]

    checked = policy.guards or policy.requires_roles
    if command.plain and not checked:
        steps(inc, command)  # the state must allow it; there is nothing else to check
        return [payload]
    # A named tuple built as a tuple: its generated __new__ is a Python call.
    context: Context[Any] = _tuple_new(Context, (inc, payload, policy, now, actor, others))
    if command.guards or checked:
        found = context_reasons(command, context)
        if found:
            raise TransitionRejected(inc.id, command.name, found)
    else:
        steps(inc, command)
    if command.prepare is not None:
        payload = command.prepare(context, payload)
    if command.emits_more:
        return list(command.emit(context, payload))
    return [payload]


# -- evolve -------------------------------------------------------------------


# Every field at its default, the empty ones shared (Records never lend an empty list):
# a declaration copies it and sets its own fields, instead of building 44 of them.
_BLANK = Incident(
    id="",
    slug="",
    title="",
    severity=Severity.P4,
    state=State.DECLARED,
    commander="",
    declared_at=datetime.min,
    declared_by="",
    version=0,
    updated_at=datetime.min,
    postmortem_required=False,
)
_declare_blank = copier(
    Incident,
    *("id", "slug", "title", "severity", "commander", "declared_at", "declared_by", "version"),
    *("updated_at", "postmortem_required", "people", "type", "labels", "custom_fields"),
    *("references", "roles"),
)


def _declared(e: ev.Event) -> Incident:
    d = e.data
    assert isinstance(d, ev.Declared)
    return _declare_blank(
        _BLANK,
        e.incident_id,
        d.slug,
        d.title,
        d.severity,
        d.commander,
        e.at,
        e.actor,
        e.seq,
        e.at,
        d.postmortem_required,
        _first_people(e.actor, d.commander),
        d.type or "availability",
        d.labels,
        d.custom_fields,
        Records(d.references),
        FrozenMap({"commander": d.commander}),  # the converter's own result, without its check
    )


def _first_people(actor: str, commander: str) -> Records[str]:
    """Who a declaration's event joins: who declared it, then its commander."""
    return Records((actor,) if not commander or commander == actor else (actor, commander))


def evolve(inc: Incident | None, event: ev.Event) -> Incident:
    """The snapshot after ``event``. ``inc`` is ``None`` only for the declaration."""
    if inc is None:
        return _declared(event)
    data = event.data
    fold, dest = APPLY[type(data)]
    new = fold(inc, event, data)
    if new is inc:
        new = replace(inc)
    # ``new`` is a fresh copy no one else has seen yet: stamp it in place.
    if dest is not None:
        _set_state(new, dest)
    _set_version(new, event.seq)
    _set_updated_at(new, event.at)
    # Who joined: the actor, and anyone the event's data names (_joined, inlined here:
    # it runs on every event).
    people = inc.people
    if event.actor not in people:
        people = people.appended(event.actor)
    named = _NAMED_BY_TYPE.get(type(data))
    if named is None:
        named = _named_fields(type(data))
    if named:
        people = _joined_named(people, data, named)
    if new.people is not people:  # usually the fold kept them and nobody joined
        _set_people(new, people)
    return new


# The slots' own setters: a stamp skips the frozen class's __setattr__ and the name lookup.
_set_state = Incident.__dict__["state"].__set__
_set_version = Incident.__dict__["version"].__set__
_set_updated_at = Incident.__dict__["updated_at"].__set__
_set_people = Incident.__dict__["people"].__set__


_NAMED_FIELDS = ("commander", "user", "owner", "person")
_NAMED_BY_TYPE: dict[type[ev.EventData], tuple[str, ...]] = {}


def _named_fields(data_type: type[ev.EventData]) -> tuple[str, ...]:
    """The fields of an event type that name a person."""
    found = _NAMED_BY_TYPE.get(data_type)
    if found is None:
        names = attrs.fields_dict(data_type)
        found = _NAMED_BY_TYPE[data_type] = tuple(f for f in _NAMED_FIELDS if f in names)
    return found


def _joined_named(people: Records[str], data: ev.EventData, named: tuple[str, ...]) -> Records[str]:
    """``people`` with each person the fields ``named`` of ``data`` name."""
    for field in named:
        name = getattr(data, field)
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
