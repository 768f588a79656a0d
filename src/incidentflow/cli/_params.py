"""How the command line reads values: times, dates, severities, bounded numbers."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import click

from .._model import Severity, State
from .._validate import INT_MAX, LIMIT_MAX

__all__ = [
    "INT_MAX",
    "SEVERITY_METAVAR",
    "STATE",
    "Group",
    "Seconds",
    "count",
    "day",
    "incident_argument",
    "moment",
    "pairs",
    "severity",
    "span",
]

_F = TypeVar("_F", bound=Callable[..., Any])


def count(low: int = 1, high: int = LIMIT_MAX) -> click.IntRange:
    """A whole number from ``low`` to ``high``: anything else is a usage error naming both.

    The default bounds are the library's page size (``limit=``), so a huge number is
    refused here, naming the option, rather than by the library naming its argument.
    """
    return click.IntRange(low, high)


class Seconds(click.FloatRange):
    """Seconds from ``min`` to ``max``; ``nan`` is refused (it compares false to both ends)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The number of seconds, checked to be a number within the range."""
        seconds = super().convert(value, param, ctx)
        if math.isnan(seconds):
            self.fail(f"{value!r} is not a number of seconds; give one from {self.min} to "
                      f"{self.max}", param, ctx)  # fmt: skip
        return seconds


_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """An ISO 8601 time with its UTC offset (``2026-11-27T09:30Z``), in UTC.

    A bare date (``2026-11-27``) means its first moment, UTC.
    """
    if value is None:
        return None
    if _DATE_ONLY.fullmatch(value):
        value = f"{value}T00:00Z"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a time; write ISO 8601 with an offset, e.g. 2026-11-27T09:30Z"
        ) from None
    if parsed.tzinfo is None:
        raise click.BadParameter(
            f"{value!r} has no UTC offset; add one, e.g. {value}Z or {value}+01:00"
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise click.BadParameter(f"{value!r} is out of range in UTC; give a nearer time") from None


def day(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    """A calendar date, ``YYYY-MM-DD``."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date; write YYYY-MM-DD, e.g. 2026-12-04"
        ) from None


_SEVERITY_NAMES = [s.value for s in Severity]
SEVERITY_METAVAR = "|".join(_SEVERITY_NAMES)


def severity(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Severities as the library spells them (P1 to P4), whatever case was typed."""
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(severity(ctx, param, item) for item in value)
    name = str(value).strip().upper()
    if name not in _SEVERITY_NAMES:
        raise click.BadParameter(
            f"{value!r} is not a severity; use one of {', '.join(_SEVERITY_NAMES)}"
        )
    return name


_SPAN = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_SPAN_UNITS = (86400, 3600, 60, 1)
#: The longest span the command line takes: a year, far beyond any update cadence.
_SPAN_MAX = timedelta(days=366)


def span(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    """A length of time as people write it: ``90s``, ``30m``, ``1h``, ``1h30m``, ``2d``."""
    if value is None:
        return None
    found = _SPAN.fullmatch(value.strip().lower())
    if not value.strip() or found is None:
        raise click.BadParameter(
            f"{value!r} is not a length of time; write e.g. 90s, 30m, 1h or 1h30m"
        )
    # Digits beyond a year's worth are refused below; cap them before int() sees a huge string.
    if any(len(part) > 9 for part in found.groups() if part):
        raise click.BadParameter(f"{value!r} is too long; give at most {_SPAN_MAX.days} days")
    seconds = sum(int(n) * unit for n, unit in zip(found.groups(), _SPAN_UNITS, strict=True) if n)
    result = timedelta(seconds=seconds)
    if not timedelta(0) < result <= _SPAN_MAX:
        raise click.BadParameter(
            f"{value!r} is out of range; give more than 0s and at most {_SPAN_MAX.days} days"
        )
    return result


def pairs(ctx: click.Context, param: click.Parameter, value: Any) -> dict[str, str]:
    """``KEY=VALUE`` words (``service=checkout``) as a dict; a key given twice is refused.

    The value may itself hold ``=``: only the first one separates.
    """
    found: dict[str, str] = {}
    for word in (value,) if isinstance(value, str) else value or ():
        key, sep, text = str(word).partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(
                f"{word!r} is not KEY=VALUE; write e.g. service=checkout", param=param
            )
        key = key.strip()
        if key in found and found[key] != text:
            raise click.BadParameter(
                f"{key!r} is given twice ({found[key]!r} and {text!r}); give it once",
                param=param,
            )
        found[key] = text
    return found


STATE = click.Choice([s.value for s in State], case_sensitive=False)


def incident_argument(function: _F) -> _F:
    """The ``ID`` argument of a command about one incident."""
    return click.argument("incident_id", metavar="ID")(function)


class Group(click.Group):
    """Lists subcommands in the order they are added: the order of the process."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The subcommands' names, in the order they were added."""
        return list(self.commands)
