"""What platforms route on: the incident type, labels, custom fields and external references."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import _events as ev
from .. import _validate as v
from .._model import Incident, Records, Reference, State
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
    "ADD_REFERENCE",
    "CHANGE_TYPE",
    "PHASE",
    "REMOVE_REFERENCE",
    "SET_FIELDS",
    "SET_LABELS",
]


def _another_type(context: Context[ev.TypeChanged], payload: ev.TypeChanged) -> ev.TypeChanged:
    inc, policy = context.incident, context.policy
    new = policy.check_type(payload.type)
    if new == inc.type:
        raise ValidationError("type", f"{inc.id} is a {new} incident already")
    required = policy.needs_postmortem(inc.severity, new)
    if inc.state in (State.RESOLVED, State.POSTMORTEM):
        # Once resolved, a change can add a post-mortem, never drop one.
        required = required or inc.postmortem_required
    return evolve(payload, previous=inc.type, postmortem_required=required)


CHANGE_TYPE = Command(
    name="change_type",
    summary="Change the incident type (availability, security, ...), with a reason.",
    event=ev.TypeChanged,
    moves=(Move(NOT_TERMINAL),),
    arguments=(
        Argument("type", v.key, "The new type, one of the policy's incident_types."),
        Argument("reason", v.text, "Why it changes."),
    ),
    prepare=_another_type,
    fold=lambda inc, e, d: replace(inc, type=d.type, postmortem_required=d.postmortem_required),
)


def _changes(
    inc: Incident,
    given: Mapping[str, Any],
    removed: tuple[str, ...],
    held: Mapping[str, Any],
    what: str,
    absent_one: str,
) -> None:
    """Something is set or removed, no key both, and only keys ``held`` are removed."""
    if not given and not removed:
        raise ValidationError(what, f"give {what} to set, or keys to remove")
    both = sorted(set(given) & set(removed))
    if both:
        raise ValidationError("remove", f"{both[0]} is both set and removed; do one")
    absent = [key for key in removed if key not in held]
    if absent:
        raise ValidationError("remove", f"{inc.id} has no {absent_one.format(absent[0])}")


def _updated(
    held: Mapping[str, Any], given: Mapping[str, Any], removed: tuple[str, ...]
) -> dict[str, Any]:
    """``held`` with ``given`` written over it and ``removed`` taken out."""
    values = {**held, **given}
    for key in removed:
        values.pop(key, None)
    return values


def _allowed_labels(context: Context[ev.LabelsSet], payload: ev.LabelsSet) -> ev.LabelsSet:
    inc = context.incident
    _changes(inc, payload.labels, payload.removed, inc.labels, "labels", "label {}")
    for key, value in payload.labels.items():
        context.policy.check_label(key, value)
    return payload


SET_LABELS = Command(
    name="set_labels",
    summary="Set labels (service=checkout, team=payments) or remove them by key.",
    event=ev.LabelsSet,
    moves=(Move(EVERY_STATE),),
    arguments=(
        Argument(
            "labels",
            v.labels,
            "Labels to set, key → value; a new value replaces the old.",
            default={},
        ),
        Argument("remove", v.keys, "Label keys to remove.", default=(), field="removed"),
    ),
    prepare=_allowed_labels,
    fold=lambda inc, e, d: replace(inc, labels=_updated(inc.labels, d.labels, d.removed)),
)


def _declared_fields(context: Context[ev.FieldsSet], payload: ev.FieldsSet) -> ev.FieldsSet:
    inc = context.incident
    _changes(inc, payload.values, payload.removed, inc.custom_fields, "fields", "field {} set")
    checked = {
        name: context.policy.check_field(name, value) for name, value in payload.values.items()
    }
    return ev.FieldsSet(checked, payload.removed)


SET_FIELDS = Command(
    name="set_fields",
    summary="Set custom fields the policy declares (checked against their types), or remove them.",
    event=ev.FieldsSet,
    moves=(Move(EVERY_STATE),),
    arguments=(
        Argument(
            "fields", v.mapping, "Custom fields to set, name → value.", default={}, field="values"
        ),
        Argument("remove", v.keys, "Custom field names to remove.", default=(), field="removed"),
    ),
    prepare=_declared_fields,
    fold=lambda inc, e, d: replace(
        inc, custom_fields=_updated(inc.custom_fields, d.values, d.removed)
    ),
)


def _not_held(c: Context[ev.ReferenceAdded]) -> Unmet | None:
    if c.payload is None:
        return None
    ref = Reference(c.payload.kind, c.payload.value)
    if ref not in c.incident.references:
        return None
    return unmet(
        f"{c.incident.id} has the {ref.kind} reference {ref.value} already",
        kind=ref.kind,
        value=ref.value,
    )


ADD_REFERENCE = Command(
    name="add_reference",
    summary="Attach an external reference: unique per kind among open incidents.",
    event=ev.ReferenceAdded,
    moves=(Move(EVERY_STATE),),
    arguments=(
        Argument("kind", v.key, "What it is: alert, ticket, channel, ..."),
        Argument("value", v.reference_value, "The fingerprint, key or URL."),
    ),
    guards=(Guard("reference.present", "not attached already", _not_held),),
    fold=lambda inc, e, d: replace(
        inc, references=inc.references.appended(Reference(d.kind, d.value))
    ),
)


def _held(c: Context[ev.ReferenceRemoved]) -> Unmet | None:
    if c.payload is None:
        return None
    ref = Reference(c.payload.kind, c.payload.value)
    if ref in c.incident.references:
        return None
    return unmet(
        f"{c.incident.id} has no {ref.kind} reference {ref.value}", kind=ref.kind, value=ref.value
    )


REMOVE_REFERENCE = Command(
    name="remove_reference",
    summary="Detach an external reference.",
    event=ev.ReferenceRemoved,
    moves=(Move(EVERY_STATE),),
    arguments=(
        Argument("kind", v.key, "What it is: alert, ticket, channel, ..."),
        Argument("value", v.reference_value, "The fingerprint, key or URL."),
    ),
    guards=(Guard("reference.unknown", "the reference is attached", _held),),
    fold=lambda inc, e, d: replace(
        inc,
        references=Records(r for r in inc.references if r != Reference(d.kind, d.value)),
    ),
)

#: This phase's commands, in the order people meet them.
PHASE = (CHANGE_TYPE, SET_LABELS, SET_FIELDS, ADD_REFERENCE, REMOVE_REFERENCE)
