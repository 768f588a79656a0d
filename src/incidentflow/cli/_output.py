"""What the command line prints: aligned tables, times, durations, and JSON-ready values."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._events import Event
    from .._model import Incident
    from .._reasons import Reason

__all__ = [
    "cut",
    "deadline_status",
    "details",
    "duration",
    "incident_json",
    "jsonable",
    "moments",
    "one_line",
    "outbox_json",
    "plain",
    "printable",
    "reason_json",
    "relative",
    "report_text",
    "similar_text",
    "summary_json",
    "summary_metrics_json",
    "table",
    "toml_loads",
    "when",
    "zone",
]


def one_line(text: str) -> str:
    """``text`` with every run of whitespace, newlines included, as one space."""
    return " ".join(text.split())


def printable(text: str) -> str:
    r"""``text`` with lone surrogates written as ``\udcff``, so any stream can print it."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def cut(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    text = one_line(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def table(header: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str = "(none)") -> str:
    """Rows as aligned columns; the last column may be long and is cut to the terminal."""
    body = [[one_line(cell) for cell in row] for row in rows]
    if not body:
        return empty
    widths = [len(h) for h in header]
    for row in body[:500]:  # wide outliers past the first page do not stretch every line
        for i, cell in enumerate(row[:-1]):
            widths[i] = min(max(widths[i], len(cell)), 48)
    room = max(20, _terminal_width() - sum(widths[:-1]) - 2 * (len(header) - 1))
    lines = []
    for row in [list(header), *body]:
        cells = [cut(cell, widths[i]).ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        cells.append(cut(row[-1], room))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _terminal_width() -> int:
    """The terminal's width; when the output goes to a file or a pipe, no limit."""
    if not sys.stdout.isatty():
        return sys.maxsize
    import shutil

    return shutil.get_terminal_size((120, 24)).columns


def when(moment: datetime) -> str:
    """A moment as ``YYYY-MM-DD HH:MM`` in the display zone (``TZ``; see :func:`zone`).

    A moment the display zone cannot show (the end of year 9999, east of UTC)
    is shown as stored, with its offset: showing a time never fails.
    """
    from ._clock import display_zone

    return _wall_clock(moment, display_zone())


def moments() -> Callable[[datetime], str]:
    """:func:`when` with the display zone looked up once: for the rows of a long table."""
    from ._clock import display_zone

    shown = display_zone()
    return lambda moment: _wall_clock(moment, shown)


def _wall_clock(moment: datetime, zone: tzinfo) -> str:
    try:
        local = moment.astimezone(zone)
    except OverflowError:
        return moment.isoformat(sep=" ", timespec="minutes")
    # isoformat, not strftime: the C library writes the year 1 as "1", not "0001".
    return local.replace(tzinfo=None).isoformat(sep=" ", timespec="minutes")


def zone() -> str:
    """The display zone's short name, for headings: ``UTC``, ``CET``."""
    from ._clock import zone_name

    return zone_name()


def duration(span: timedelta | None, *, up: bool = False) -> str:
    """A span as a person reads it: ``3m05s``, ``2h10m``, ``4d03h10m``; ``-`` for none.

    Seconds are kept below an hour, minutes beyond. Whole seconds are counted
    down (a time taken), or up with ``up`` (a time left: never ``0m00s`` before
    it has passed). A negative span reads as its length.
    """
    if span is None:
        return "-"
    micros = abs(span) // timedelta(microseconds=1)
    seconds = -(-micros // 1_000_000) if up else micros // 1_000_000
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s"


def relative(moment: datetime, now: datetime) -> str:
    """``moment`` from ``now``: ``in 4m05s``, ``now``, or ``12m30s ago`` once it has passed."""
    if moment > now:
        return f"in {duration(moment - now, up=True)}"
    if moment == now:
        return "now"
    return f"{duration(now - moment)} ago"


def deadline_status(deadline: Any, now: datetime) -> str:
    """Met (late, if its breach was recorded), breached, passed and how long ago, or due in."""
    if deadline.met_at is not None:
        late = " late (breach recorded)" if deadline.breached else ""
        return f"met{late} {when(deadline.met_at)}"
    if deadline.breached:
        return f"breached (recorded), passed {relative(deadline.due_at, now)}"
    if deadline.is_overdue(now):
        return f"overdue, passed {relative(deadline.due_at, now)}"
    return relative(deadline.due_at, now)


def details(event: Event) -> str:
    """An event's data as ``name=value`` pairs, empty values left out."""
    parts = []
    for name, value in plain(event.data).items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, enum.Enum):
            value = value.value
        shown = value if isinstance(value, str) else json.dumps(value, default=jsonable)
        parts.append(f"{name}={cut(shown, 60)}")
    return " ".join(parts)


def similar_text(found: Sequence[Any]) -> str:
    """Similar past incidents, one a line."""
    if not found:
        return "no similar past incidents"
    lines = ["similar past incidents:"]
    for match in found:
        gotcha = f", gotcha {match.gotcha_slug}" if getattr(match, "gotcha_slug", None) else ""
        lines.append(
            f"  - {match.incident_id} ({match.severity.value}, {match.state.value}{gotcha}): "
            f"{cut(match.title, 80)}"
        )
    return "\n".join(lines)


def report_text(report: Mapping[str, Any]) -> str:
    """Counts as ``delivered 3, retrying 0, dead 0``."""
    return ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in report.items())


# -- JSON -----------------------------------------------------------------------


def jsonable(value: object) -> object:
    """``json.dumps``'s ``default``: times as ISO 8601, spans in seconds, enums by value."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    import attrs  # loaded with the library's model, never for --help

    if attrs.has(type(value)):
        return plain(value)
    return str(value)  # paths and the like


def plain(value: object) -> dict[str, Any]:
    """An attrs instance as a dict of JSON-ready values (one level; nested by jsonable)."""
    if isinstance(value, Mapping):
        return dict(value)
    import attrs

    fields: Sequence[attrs.Attribute[Any]] = attrs.fields(type(value))  # type: ignore[arg-type]
    return {f.name: getattr(value, f.name) for f in fields if not f.name.startswith("_")}


def reason_json(reason: Reason) -> dict[str, Any]:
    """One refusal reason for machines: ``{"code", "message", "data"}``."""
    return reason.to_dict()


def incident_json(incident: Incident) -> dict[str, Any]:
    """The whole snapshot, as the library serialises it."""
    from ..serialization import incident_to_dict

    return incident_to_dict(incident)


def summary_json(
    incident_id: str,
    title: str,
    severity: str,
    state: str,
    commander: str,
    declared_at: datetime,
    version: int,
) -> dict[str, Any]:
    """One row of ``list --json``."""
    return {
        "id": incident_id,
        "title": title,
        "severity": severity,
        "state": state,
        "commander": commander,
        "declared_at": declared_at.isoformat(),
        "version": version,
    }


def outbox_json(item: Any) -> dict[str, Any]:
    """A dead letter, its event named by incident, seq and type."""
    data = plain(item)
    data["event"] = {"incident_id": item.event.incident_id, "seq": item.event.seq,
                     "type": item.event.type}  # fmt: skip
    return data


def summary_metrics_json(summary: Any) -> dict[str, Any]:
    """One group of ``metrics --json``, with its counts by severity and state."""
    data = plain(summary)
    data["counts"] = [
        {"severity": severity.value, "state": state.value, "count": count}
        for (severity, state), count in summary.counts.items()
    ]
    data["mtta"] = summary.mtta
    data["mttr"] = summary.mttr
    return data


def toml_loads(text: str) -> dict[str, Any]:
    """TOML text as a dict (for ``config show --json``)."""
    import tomllib

    return tomllib.loads(text)
