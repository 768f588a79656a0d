"""Times as people type and read them: the local zone for display, and forgiving input.

Times are stored in UTC; the command line shows them in the zone named by
``TZ`` (else the configuration's ``display_timezone``, else the system's),
and reads ``now``, ``now-10m``, ``+3d``, ``yesterday 23:15``, ``tomorrow``,
``23:15Z`` and ISO 8601.

Spans of seconds, minutes and hours are elapsed time: ``now-10m`` is ten
minutes ago even across a change of the clocks. Days and weeks move the
calendar and keep the time of day in the display zone, as ``yesterday`` does.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from datetime import UTC, date, datetime, time, timedelta, tzinfo

__all__ = [
    "DATE_EXAMPLES",
    "EXAMPLES",
    "configure_zone",
    "display_zone",
    "now",
    "parse_date",
    "parse_time",
    "zone_name",
]

_configured: str | None = None
#: The ``TZ`` values already said to name no zone: one warning a process, not one a time shown.
_warned: set[str] = set()


def configure_zone(name: str | None) -> None:
    """Use ``name`` (the configuration's ``display_timezone``) when ``TZ`` is not set."""
    global _configured  # one setting for the process, like TZ itself
    _configured = name or None


def _zone(name: str) -> tzinfo | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = name.lstrip(":")
    if name.upper() in ("UTC", "Z", "UTC0", "GMT"):
        return UTC
    try:
        if name.startswith("/"):  # TZ=:/etc/localtime names a zone file, as the C library reads it
            if not stat.S_ISREG(os.stat(name).st_mode):
                return None  # a FIFO or a device: nothing a zone is read from (a FIFO would block)
            with open(name, "rb") as file:
                return ZoneInfo.from_file(file, key=name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


# A POSIX rule such as ``CET-1CEST,M3.5.0,M10.5.0/3`` or ``JST-9``: the C library reads it.
_NAME = r"(?:[A-Za-z]{3,}|<[A-Za-z0-9+-]{3,}>)"
_SHIFT = r"[+-]?\d{1,2}(?::\d{2}){0,2}"
_POSIX_RULE = re.compile(rf"{_NAME}{_SHIFT}(?:{_NAME}(?:{_SHIFT})?(?:,[^,\s]+,[^,\s]+)?)?")


def display_zone() -> tzinfo:
    """The zone times are shown and typed in: ``TZ``, the configuration's, or the system's.

    A ``TZ`` that names no zone is said once on standard error; times are
    then shown in the configuration's zone, else in UTC, never in the C
    library's guess at what the bad name meant.
    """
    given = os.environ.get("TZ")
    configured = _zone(_configured) if _configured else None
    if given:
        if (zone := _zone(given)) is not None:
            return zone
        if _POSIX_RULE.fullmatch(given):
            return datetime.now().astimezone().tzinfo or UTC
        _warn_unknown(given, configured)
        return configured or UTC
    return configured or _system_zone()


def _warn_unknown(given: str, instead: tzinfo | None) -> None:
    if given in _warned:
        return
    _warned.add(given)
    import click

    shown = f"display_timezone {_configured}" if instead is not None else "UTC"
    click.echo(
        f"incidentflow: warning: TZ={given!r} is not a known time zone; showing times in "
        f"{shown} (set TZ to a zone such as Europe/Berlin, or unset it)",
        err=True,
    )


@functools.cache
def _system_zone() -> tzinfo:
    """The system's zone with its rules (``/etc/localtime``), else today's offset."""
    return _zone("/etc/localtime") or datetime.now().astimezone().tzinfo or UTC


def _zone_label(zone: tzinfo, moment: datetime) -> str:
    """``Europe/Berlin`` for a named zone, else its abbreviation at ``moment``."""
    key = getattr(zone, "key", None)
    return key if isinstance(key, str) and not key.startswith("/") else (zone.tzname(moment) or "")


def zone_name(moment: datetime | None = None) -> str:
    """The display zone's short name (``UTC``, ``CET``) at ``moment`` (default: now)."""
    moment = moment or now()
    try:
        return moment.astimezone(display_zone()).tzname() or "local"
    except OverflowError:  # a moment at the end of time: the zone's name now says as much
        return now().astimezone(display_zone()).tzname() or "local"


def now() -> datetime:
    """The time now, aware UTC (tests replace it)."""
    return datetime.now(UTC)


# ``min`` before ``m``: the first alternative that matches wins.
_SPAN = re.compile(r"([+-])\s*(\d{1,6})\s*(min|s|m|h|d|w)", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600}
_CALENDAR_DAYS = {"d": 1, "w": 7}
_DAYS = {"today": 0, "yesterday": -1, "tomorrow": 1}
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(z|[+-]\d{2}:?\d{2})?", re.IGNORECASE)
_DATE_ONLY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")

EXAMPLES = "now, now-10m, +3d, yesterday 23:15, tomorrow, 23:15Z or 2026-11-27T09:30Z"
DATE_EXAMPLES = "YYYY-MM-DD (e.g. 2026-12-04), today, tomorrow or +3d"


class _OutOfRange(ValueError):
    """A time before the year 1 or after 9999, where Python's dates end."""


def parse_time(text: str, *, at: datetime | None = None) -> datetime:
    """The aware UTC time ``text`` names; ``ValueError`` saying what to write otherwise.

    Relative and clock times are read in the display zone; a clock time with
    ``Z`` or an offset in that zone (``23:15Z``). A bare date is its first
    moment in the display zone; an ISO time needs its offset. A clock time the
    display zone skips or repeats when its clocks change is refused, naming
    the offsets that tell it apart.

    >>> parse_time("now-90m", at=datetime(2026, 3, 29, 1, 5, tzinfo=UTC)).isoformat()
    '2026-03-28T23:35:00+00:00'
    """
    try:
        return _parse(text, (at or now()).astimezone(UTC), display_zone())
    except OverflowError:
        raise _OutOfRange(
            f"{text!r} is out of range: times run from the year 1 to 9999; give a nearer time"
        ) from None


def parse_date(text: str, *, at: datetime | None = None) -> date:
    """The calendar date ``text`` names: ``YYYY-MM-DD``, ``today``, ``+3d``, in the display zone.

    ``ValueError`` says what was wrong (``2026-02-29``: February 2026 has 28 days)
    and what to write.
    """
    try:
        return date.fromisoformat(text)
    except ValueError:
        if (found := _DATE_ONLY.fullmatch(text.strip())) is not None:
            raise ValueError(_not_a_day(found, DATE_EXAMPLES)) from None
    try:
        return parse_time(text, at=at).astimezone(display_zone()).date()
    except (_OutOfRange, OverflowError):
        raise ValueError(
            f"{text!r} is out of range: dates run from the year 1 to 9999; give a nearer date"
        ) from None
    except ValueError:
        raise ValueError(f"{text!r} is not a date; write {DATE_EXAMPLES}") from None


def _parse(text: str, current: datetime, zone: tzinfo) -> datetime:
    word = " ".join(text.strip().lower().split())
    if not word:
        raise ValueError(f"{text!r} is not a time; write e.g. {EXAMPLES}")
    day_word = re.match(r"(now|today|yesterday|tomorrow)", word)
    if day_word is not None or word[0] in "+-":
        name = day_word.group(1) if day_word else "now"
        remainder = (word[day_word.end() :] if day_word else word).strip()
        if name == "now":
            return _add_spans(current, remainder, text, zone)
        day = current.astimezone(zone).date() + timedelta(days=_DAYS[name])
        if (clock := _CLOCK.fullmatch(remainder)) is not None:
            return _at_clock(day, clock, text, zone)
        return _add_spans(_first_moment(day, zone), remainder, text, zone)
    if (clock := _CLOCK.fullmatch(word)) is not None:
        return _at_clock(current.astimezone(zone).date(), clock, text, zone)
    return _iso(text.strip(), zone)


def _add_spans(moment: datetime, remainder: str, text: str, zone: tzinfo) -> datetime:
    """``moment`` (UTC) moved by each ``-10m``, ``+3d`` of ``remainder`` in turn."""
    while remainder:
        span = _SPAN.match(remainder)
        if span is None:
            raise ValueError(f"{text!r} is not a time; write e.g. {EXAMPLES}")
        count = int(span.group(2)) * (-1 if span.group(1) == "-" else 1)
        unit = span.group(3).lower()
        if unit in _CALENDAR_DAYS:
            moment = _shift_days(moment, count * _CALENDAR_DAYS[unit], zone)
        else:
            moment += timedelta(seconds=count * _SECONDS[unit])  # in UTC: elapsed time
        remainder = remainder[span.end() :].strip()
    return moment


def _shift_days(moment: datetime, days: int, zone: tzinfo) -> datetime:
    """``moment`` ``days`` calendar days on, at the same time of day in ``zone``."""
    local = moment.astimezone(zone)
    wall = local.replace(tzinfo=None) + timedelta(days=days)
    return wall.replace(tzinfo=zone, fold=local.fold).astimezone(UTC)


def _first_moment(day: date, zone: tzinfo) -> datetime:
    """The first moment of ``day`` in ``zone``: midnight, or when the clocks skip it, just after."""
    return datetime.combine(day, time(), zone).astimezone(UTC)


def _at_clock(day: date, clock: re.Match[str], text: str, zone: tzinfo) -> datetime:
    hour, minute, second = int(clock.group(1)), int(clock.group(2)), int(clock.group(3) or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{text!r} is not a time of day; write HH:MM from 00:00 to 23:59")
    offset = clock.group(4)
    if offset:
        fixed = UTC if offset.lower() == "z" else _offset(offset, text)
        return datetime.combine(day, time(hour, minute, second), fixed).astimezone(UTC)
    return _wall_time(datetime.combine(day, time(hour, minute, second)), zone, text)


def _wall_time(wall: datetime, zone: tzinfo, text: str) -> datetime:
    """The UTC moment of the naive ``wall`` in ``zone``; refused if its clocks skip or repeat it."""
    first = wall.replace(tzinfo=zone)
    second = wall.replace(tzinfo=zone, fold=1)
    if first.astimezone(UTC) == second.astimezone(UTC):
        return first.astimezone(UTC)
    place = f"{_zone_label(zone, first)} on {wall.date().isoformat()}"
    clock = wall.strftime("%H:%M:%S" if wall.second else "%H:%M")
    before, after = _offset_text(first), _offset_text(second)
    if first.astimezone(UTC) > second.astimezone(UTC):  # a gap: the offset before it reads later
        raise ValueError(
            f"{text!r} does not exist in {place}: the clocks skip it; give a time outside the "
            f"change, or with an offset, e.g. {clock}{before}"
        )
    raise ValueError(
        f"{text!r} happens twice in {place}: the clocks go back over it; add the offset, "
        f"{clock}{before} for the first or {clock}{after} for the second"
    )


def _offset_text(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    minutes = abs(offset) // timedelta(minutes=1)
    return f"{'-' if offset < timedelta(0) else '+'}{minutes // 60:02d}:{minutes % 60:02d}"


def _offset(offset: str, text: str) -> tzinfo:
    try:
        return datetime.strptime(offset.replace(":", ""), "%z").tzinfo or UTC
    except ValueError:
        raise ValueError(
            f"{text!r} has an offset that is not one; write e.g. 23:15Z or 23:15+01:00"
        ) from None


def _iso(text: str, zone: tzinfo) -> datetime:
    try:
        day = date.fromisoformat(text)  # 2026-11-27, 20261127 or the week date 2026-W48-5
    except ValueError:
        if (found := _DATE_ONLY.fullmatch(text)) is not None:
            raise ValueError(_not_a_day(found, f"e.g. {EXAMPLES}")) from None
    else:
        return _first_moment(day, zone)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        why = "" if str(exc).startswith("Invalid isoformat") else f" ({exc})"
        raise ValueError(f"{text!r} is not a time{why}; write e.g. {EXAMPLES}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; add one, e.g. {_with_offsets(text)}")
    return parsed.astimezone(UTC)


def _with_offsets(text: str) -> str:
    """``text`` with ``Z`` and with ``+01:00``, where that still reads as a time."""
    try:
        datetime.fromisoformat(f"{text}Z")
    except ValueError:
        return "2026-11-27T09:30Z or 2026-11-27T09:30+01:00"
    return f"{text}Z or {text}+01:00"


def _not_a_day(found: re.Match[str], forms: str) -> str:
    """Why the ``YYYY-MM-DD`` ``found`` names no day of the calendar, and what to write."""
    import calendar

    year, month = int(found.group(1)), int(found.group(2))
    if year == 0:
        why = "there is no year 0"
    elif not 1 <= month <= 12:
        why = f"there is no month {month:02d}"
    else:
        why = f"{calendar.month_name[month]} {year} has {calendar.monthrange(year, month)[1]} days"
    return f"{found.group(0)!r} is not a date: {why}; write {forms}"
