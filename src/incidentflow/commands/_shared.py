"""Helpers the command definitions share: the snapshot copy, time checks, references."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .._builders import compile_copier, copier
from .._model import Incident
from ..exceptions import ValidationError
from ._define import Context

__all__ = [
    "evolve",
    "in_incident_time",
    "incident_id",
    "not_before_declared",
    "remembered",
    "replace",
    "time_left",
    "when",
]

A = TypeVar("A")
R = TypeVar("R")


def remembered(compute: Callable[[A], R]) -> Callable[[A], R]:
    """``compute``, remembering its last answer for the very same argument object.

    Several guards of one decision ask for the same derived value (the merged
    post-mortem, the confirmation after the last deploy); the decision's
    context or snapshot is the same object for all of them, so it is computed
    once. Only identity is compared, and the argument is held, so its id
    cannot be reused while remembered.
    """
    last: list[tuple[object, R]] = [(object(), cast(R, None))]  # no argument is that object

    def remembering(argument: A) -> R:
        seen, answer = last[0]  # one read: threads may share it
        if seen is argument:
            return answer
        computed = compute(argument)
        last[0] = (argument, computed)
        return computed

    return remembering


def when(at: datetime) -> str:
    """A time as the messages show it, in UTC, to the minute unless seconds tell two apart.

    >>> from datetime import UTC
    >>> when(datetime(2026, 11, 27, 14, 5, tzinfo=UTC))
    '2026-11-27 14:05 UTC'
    >>> when(datetime(2026, 11, 27, 14, 5, 30, 250000, tzinfo=UTC))
    '2026-11-27 14:05:30.25 UTC'
    """
    at = at.astimezone(UTC)
    if not at.second and not at.microsecond:
        return f"{at:%Y-%m-%d %H:%M} UTC"
    if not at.microsecond:
        return f"{at:%Y-%m-%d %H:%M:%S} UTC"
    return f"{at:%Y-%m-%d %H:%M:%S.%f}".rstrip("0") + " UTC"


_LAST = datetime.max.replace(tzinfo=UTC)


def later(moment: datetime, span: timedelta) -> datetime:
    """``moment + span``, or the last moment there is when that runs past the year 9999.

    A clock near the end of the calendar with a long target has a deadline that
    never comes, not an OverflowError.
    """
    try:
        return moment + span
    except OverflowError:
        return _LAST


def time_left(delta: timedelta) -> str:
    """What is left of a wait, exactly, to the second: ``14m05s``, ``1h02m10s``, ``40s``.

    >>> time_left(timedelta(minutes=14, seconds=5)), time_left(timedelta(seconds=0.2))
    ('14m05s', '1s')
    """
    seconds = max(1, int(-(-delta.total_seconds() // 1)))  # a part of a second is a second
    hours, rest = divmod(seconds, 3600)
    mins, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{mins:02d}m{secs:02d}s"
    return f"{mins}m{secs:02d}s" if mins else f"{secs}s"


def not_before_declared(context: Context[Any], field: str, at: datetime) -> None:
    """Refuse a time before the declaration or in the future."""
    inc, now = context.incident, context.now
    if at < inc.declared_at:
        raise ValidationError(
            field,
            f"{when(at)} is before {inc.id} was declared at {when(inc.declared_at)}; "
            "give a later time",
        )
    if at > now:
        raise ValidationError(field, f"{when(at)} is in the future (now is {when(now)})")


def in_incident_time(field: str) -> Callable[[Context[Any], Any], Any]:
    """A ``prepare`` refusing a payload whose time ``field`` is before the declaration or ahead."""

    def prepare(context: Context[Any], payload: Any) -> Any:
        not_before_declared(context, field, getattr(payload, field))
        return payload

    return prepare


_INCIDENT_ID = re.compile(r"INC-\d{4}-\d{2}-\d{2}-[a-z0-9]+(?:-[a-z0-9]+)*\Z")


def incident_id(field: str, value: object) -> str:
    """An incident id, ``INC-<YYYY-MM-DD>-<slug>``."""
    if not isinstance(value, str):
        raise ValidationError(field, f"expected an incident id (str), got {type(value).__name__}")
    if len(value) > 64 or not _INCIDENT_ID.match(value):
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ValidationError(
            field, f"{shown!r} is not an incident id; give one like INC-2026-11-27-checkout-500"
        )
    return value


def _compile_replace() -> Callable[..., Incident]:
    # attrs.evolve introspects the class and calls __init__ on every call; a fold
    # runs once per event, so the copy is generated once (see incidentflow._builders).
    return compile_copier(Incident)


def _evolve(inst: Any, /, **changes: Any) -> Any:
    return copier(type(inst))(inst, **changes)


if TYPE_CHECKING:
    # mypy checks every field name and type a fold passes, as it does for attrs.evolve.
    from attrs import evolve
    from attrs import evolve as replace
else:
    replace = _compile_replace()
    #: ``attrs.evolve`` for the records of a snapshot and the payloads: the same copy, faster.
    evolve = _evolve
