"""The checked filters of the facade's listings: states, severities, types, labels, paging."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from . import _validate as v
from ._model import FieldValue, Reference, Severity, State
from .exceptions import ValidationError
from .stores._base import IncidentQuery

__all__ = ["field_values", "query", "reference", "severities", "types"]


def query(
    *,
    state: State | str | Iterable[State | str] | None,
    severity: Severity | str | Iterable[Severity | str] | None,
    open_only: bool,
    commander: str | None,
    declared_after: datetime | None,
    declared_before: datetime | None,
    text: str | None,
    newest_first: bool,
    limit: int | None,
    offset: int,
    type: str | Iterable[str] | None = None,
    labels: Mapping[str, str] | None = None,
    fields: Mapping[str, FieldValue] | None = None,
    reference: Reference | tuple[str, str] | None = None,
    open_action_items: bool = False,
    visible_to: frozenset[str] | None = None,
) -> IncidentQuery:
    """The checked query of :meth:`IncidentFlow.list` and :meth:`IncidentFlow.summaries`.

    ``visible_to`` is what the facade's authorization found the viewer may see.
    """
    return IncidentQuery(
        visible_to=visible_to,
        types=types(type),
        labels=None if labels is None else v.labels("labels", labels),
        fields=None if fields is None else field_values(fields),
        reference=None if reference is None else _reference(reference),
        open_action_items=v.boolean("open_action_items", open_action_items),
        states=_states(state),
        severities=severities(severity),
        open_only=v.boolean("open_only", open_only),
        commander=None if commander is None else v.name("commander", commander),
        declared_after=None
        if declared_after is None
        else v.aware("declared_after", declared_after),
        declared_before=None
        if declared_before is None
        else v.aware("declared_before", declared_before),
        text=None if text is None else v.name("text", text),
        newest_first=v.boolean("newest_first", newest_first),
        limit=None if limit is None else v.positive_int("limit", limit, maximum=v.LIMIT_MAX),
        offset=_offset(offset),
    )


def _states(value: object) -> frozenset[State] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, (str, State)) else value
    if not isinstance(values, Iterable):
        raise ValidationError(
            "state", f"expected a state or a list of states, got {v._shown(value)}"
        )
    states = set()
    for item in values:
        try:
            states.add(State(item))
        except ValueError:
            accepted = ", ".join(s.value for s in State)
            raise ValidationError(
                "state", f"{v._shown(item)} is not a state; use one of {accepted}"
            ) from None
    return frozenset(states)


def severities(value: object) -> frozenset[Severity] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, (str, Severity)) else value
    if not isinstance(values, Iterable):
        raise ValidationError("severity", f"expected a severity or a list, got {v._shown(value)}")
    return frozenset(v.severity(item) for item in values)


def types(value: object) -> frozenset[str] | None:
    """The checked ``type=`` filter: one incident type or a list of them."""
    if value is None:
        return None
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, Iterable):
        raise ValidationError(
            "type", f"expected an incident type or a list of types, got {v._shown(value)}"
        )
    found = frozenset(v.key("type", item) for item in values)
    if not found:
        raise ValidationError("type", "is an empty list; give at least one type, or leave it out")
    return found


def field_values(value: object) -> dict[str, FieldValue]:
    """The checked ``fields=`` filter: field name to a str, int, float or bool it must hold."""
    found: dict[str, FieldValue] = {}
    for name, item in v.mapping("fields", value).items():
        if not isinstance(item, (str, int, float, bool)):
            raise ValidationError(
                f"fields.{name}",
                f"expected a str, int, float or bool to match, got {type(item).__name__}",
            )
        found[name] = item
    return found


def reference(value: object, field: str = "reference") -> Reference:
    """A checked external reference: a :class:`Reference` or a ``(kind, value)`` pair."""
    if isinstance(value, Reference):
        kind, text = value.kind, value.value
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        kind, text = value
    else:
        raise ValidationError(
            field, f"expected a (kind, value) pair such as ('alert', 'a1b2'), got {v._shown(value)}"
        )
    return Reference(v.key(f"{field}.kind", kind), v.reference_value(f"{field}.value", text))


_reference = reference


def _offset(value: object) -> int:
    return v.whole_number("offset", value, minimum=0)
