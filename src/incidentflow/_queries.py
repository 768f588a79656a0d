"""The checked filters of the facade's listings: states, severities, dates, paging."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from . import _validate as v
from ._model import Severity, State
from .exceptions import ValidationError
from .stores._base import IncidentQuery

__all__ = ["query", "severities"]


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
) -> IncidentQuery:
    """The checked query of :meth:`IncidentFlow.list` and :meth:`IncidentFlow.summaries`."""
    return IncidentQuery(
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


def _offset(value: object) -> int:
    return v.whole_number("offset", value, minimum=0)
