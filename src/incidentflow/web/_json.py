"""JSON in and out of the HTTP API: values to JSON, command arguments from JSON.

A command's arguments are read from its definition: times arrive as ISO 8601
text and become aware datetimes, dates as ``YYYY-MM-DD``, durations as a number
of minutes or an ISO 8601 duration (``PT30M``, ``P1DT2H``). What kind of value
an argument takes is asked of its own check, once, when the routes are built.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import attrs

from .. import _validate as v
from .._model import Incident
from ..commands import Argument, Command
from ..exceptions import IncidentFlowError, ValidationError
from ._snapshots import snapshot_dict

__all__ = ["arguments_from_json", "jsonable", "kind_of", "parse_duration", "parse_moment"]

Kind = Literal["datetime", "date", "duration", "boolean", "integer", "object", "string", "any"]

_PROBES: tuple[tuple[Kind, tuple[object, ...]], ...] = (
    ("datetime", (datetime(2026, 1, 1, tzinfo=UTC),)),
    ("date", (date(2026, 1, 1),)),
    ("duration", (timedelta(minutes=30),)),
    ("boolean", (True,)),
    ("integer", (1,)),
    ("object", ({"service": "checkout"},)),
    ("string", ("checkout", "P1")),
)
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_DURATION = re.compile(
    r"P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)
_KINDS: dict[tuple[str, str], Kind] = {}
#: The longest duration an argument takes: 100 years, in minutes (the library's own bound).
_LONGEST_MINUTES = 36_500 * 24 * 60
#: The minutes in one of each unit an ISO 8601 duration names.
_MINUTES = {"days": 24 * 60, "hours": 60, "minutes": 1, "seconds": 1 / 60}


def _accepts(argument: Argument, sample: object) -> bool:
    try:
        argument.check(argument.name, sample)
    except (IncidentFlowError, TypeError, ValueError, AttributeError):
        return False
    return True


def kind_of(command: Command[Any], argument: Argument) -> Kind:
    """The JSON kind ``argument`` takes, found by asking its check (cached)."""
    key = (command.name, argument.name)
    cached = _KINDS.get(key)
    if cached is not None:
        return cached
    found: Kind = next(
        (kind for kind, samples in _PROBES if any(_accepts(argument, s) for s in samples)),
        "any",
    )
    if found == "string" and _accepts(argument, ["checkout"]):
        found = "any"  # a text or a list of texts
    _KINDS[key] = found
    return found


def parse_moment(field: str, value: object) -> datetime:
    """An ISO 8601 time with its UTC offset (a bare date means its first moment, UTC)."""
    if not isinstance(value, str):
        raise ValidationError(field, f"expected an ISO 8601 time as text, got {_shown(value)}")
    text = f"{value}T00:00Z" if _DATE_ONLY.fullmatch(value) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            field, f"{value!r} is not a time; write ISO 8601 with an offset, e.g. 2026-11-27T09:30Z"
        ) from None
    if parsed.tzinfo is None:
        raise ValidationError(field, f"{value!r} has no UTC offset; add one, e.g. {value}Z")
    return parsed


def parse_day(field: str, value: object) -> date:
    """A calendar date written ``YYYY-MM-DD``."""
    if not isinstance(value, str) or not _DATE_ONLY.fullmatch(value):
        raise ValidationError(field, f"expected a date written YYYY-MM-DD, got {_shown(value)}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(field, f"{value!r} is no calendar date; give one") from None


def parse_duration(field: str, value: object) -> timedelta:
    """A number of minutes (``30``) or an ISO 8601 duration (``PT30M``, ``P1DT2H``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValidationError(
            field, f"expected minutes (a number) or an ISO 8601 duration, got {_shown(value)}"
        )
    if not isinstance(value, str):
        if not (0 < value <= _LONGEST_MINUTES):
            raise ValidationError(field, f"expected a positive number of minutes, got {value}")
        return timedelta(minutes=value)
    found = _DURATION.fullmatch(value.upper())
    if found is None or value.upper() in {"P", "PT"} or value.upper().endswith("T"):
        raise ValidationError(
            field, f"{v._shown(value)} is not an ISO 8601 duration; write e.g. PT30M, PT2H or P1D"
        )
    parts = {name: float(amount) for name, amount in found.groupdict().items() if amount}
    # Bounded before timedelta sees it, which overflows past 999,999,999 days.
    minutes = sum(amount * _MINUTES[name] for name, amount in parts.items())
    if minutes > _LONGEST_MINUTES:
        raise ValidationError(
            field, f"{v._shown(value)} is over 100 years; write a shorter one, at most P36500D"
        )
    return timedelta(**parts)


_PARSERS = {"datetime": parse_moment, "date": parse_day, "duration": parse_duration}


def arguments_from_json(command: Command[Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``command`` takes, from a JSON object (times parsed)."""
    args = dict(body)
    for argument in command.arguments:
        given = args.get(argument.name)
        parser = _PARSERS.get(kind_of(command, argument))
        if given is not None and parser is not None:
            args[argument.name] = parser(argument.name, given)
    return args


def jsonable(value: object) -> Any:
    """``value`` as plain JSON data: snapshots, records, times, enums, durations (seconds)."""
    if isinstance(value, Incident):
        return snapshot_dict(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if attrs.has(type(value)):
        return {
            f.name: jsonable(getattr(value, f.name))
            for f in attrs.fields(type(value))  # type: ignore[arg-type]
            if f.repr is not False and not f.name.startswith("_")
        }
    if isinstance(value, Mapping):
        return {_key(k): jsonable(item) for k, item in value.items()}
    if isinstance(value, Iterable):
        return [jsonable(item) for item in value]
    return str(value)


def _key(key: object) -> str:
    if isinstance(key, tuple):
        return "/".join(str(jsonable(part)) for part in key)
    return str(jsonable(key))


def _shown(value: object) -> str:
    return json.dumps(value) if isinstance(value, (str, int, float, bool)) else type(value).__name__
