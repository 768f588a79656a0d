"""Times as people type and read them: the local zone for display, and forgiving input.

Times are stored in UTC; the command line shows them in the zone named by
``TZ`` (else the configuration's ``display_timezone``, else the system's),
and reads ``now``, ``now-10m``, ``+3d``, ``yesterday 23:15``, ``tomorrow``,
``23:15Z`` and ISO 8601.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo

__all__ = ["configure_zone", "display_zone", "now", "parse_time", "zone_name"]

_configured: str | None = None


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
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def display_zone() -> tzinfo:
    """The zone times are shown and typed in: ``TZ``, the configuration's, or the system's."""
    for name in (os.environ.get("TZ"), _configured):
        if name and (zone := _zone(name)) is not None:
            return zone
    return datetime.now().astimezone().tzinfo or UTC


def zone_name(moment: datetime | None = None) -> str:
    """The display zone's short name (``UTC``, ``CET``) at ``moment`` (default: now)."""
    moment = moment or now()
    return moment.astimezone(display_zone()).tzname() or "local"


def now() -> datetime:
    """The time now, aware UTC (tests replace it)."""
    return datetime.now(UTC)


_SPAN = re.compile(r"([+-])\s*(\d{1,6})\s*(s|m|min|h|d|w)", re.IGNORECASE)
_UNIT = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_DAYS = {"today": 0, "yesterday": -1, "tomorrow": 1}
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(z|[+-]\d{2}:?\d{2})?", re.IGNORECASE)
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")

EXAMPLES = "now, now-10m, +3d, yesterday 23:15, tomorrow, 23:15Z or 2026-11-27T09:30Z"


def parse_time(text: str, *, at: datetime | None = None) -> datetime:
    """The aware UTC time ``text`` names; ``ValueError`` saying what to write otherwise.

    Relative and clock times are read in the display zone; a clock time with
    ``Z`` or an offset in that zone (``23:15Z``). A bare date is its first
    moment in the display zone; an ISO time needs its offset.
    """
    base = (at or now()).astimezone(display_zone())
    word = " ".join(text.strip().lower().split())
    if not word:
        raise ValueError(f"{text!r} is not a time; write e.g. {EXAMPLES}")
    day_word = re.match(r"(now|today|yesterday|tomorrow)", word)
    if day_word is not None or word[0] in "+-":
        name = day_word.group(1) if day_word else "now"
        remainder = word[day_word.end() :] if day_word else word
        moment = base if name == "now" else _start_of(base + timedelta(days=_DAYS[name]))
        remainder = remainder.strip()
        if (clock := _CLOCK.fullmatch(remainder)) is not None and name != "now":
            return _at_clock(moment.date(), clock, text)
        while remainder:
            span = _SPAN.match(remainder)
            if span is None:
                raise ValueError(f"{text!r} is not a time; write e.g. {EXAMPLES}")
            sign = -1 if span.group(1) == "-" else 1
            moment += sign * int(span.group(2)) * timedelta(seconds=_UNIT[span.group(3).lower()])
            remainder = remainder[span.end() :].strip()
        return moment.astimezone(UTC)
    if (clock := _CLOCK.fullmatch(word)) is not None:
        return _at_clock(base.date(), clock, text)
    return _iso(text.strip())


def _start_of(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _at_clock(day: date, clock: re.Match[str], text: str) -> datetime:
    hour, minute, second = int(clock.group(1)), int(clock.group(2)), int(clock.group(3) or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{text!r} is not a time of day; write HH:MM from 00:00 to 23:59")
    offset = clock.group(4)
    if offset:
        zone: tzinfo = UTC if offset.lower() == "z" else _offset(offset)
        return datetime.combine(day, time(hour, minute, second), zone).astimezone(UTC)
    return datetime.combine(day, time(hour, minute, second), display_zone()).astimezone(UTC)


def _offset(text: str) -> tzinfo:
    return datetime.strptime(text.replace(":", ""), "%z").tzinfo or UTC


def _iso(text: str) -> datetime:
    if _DATE_ONLY.fullmatch(text):
        day = date.fromisoformat(text)
        return datetime.combine(day, time(), display_zone()).astimezone(UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time; write e.g. {EXAMPLES}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; add one, e.g. {text}Z or {text}+01:00")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range in UTC; give a nearer time") from None
