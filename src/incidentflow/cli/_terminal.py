"""The incident's Markdown as a terminal shows it: headings, wrapped text, fitted tables.

``show`` prints this unless ``--markdown`` asks for the file as it is. The file
keeps UTC; the terminal shows the renderer's times in the display zone, as the
other commands do.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, tzinfo

__all__ = ["for_terminal", "in_zone", "unescape", "width", "wrap_rows", "wrapped"]

# A Markdown escape of the renderer (a backslash before punctuation), or one of the two
# HTML entities it writes for < and > (render/_escape.py): nothing else is an entity there.
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~<>])|&(lt|gt);")
_ENTITIES = {"lt": "<", "gt": ">"}
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC_LINE = re.compile(r"^_(.+)_$")
_BULLET = re.compile(r"^(\s*(?:[-*]|\d+\.)\s+)")
_CELL = re.compile(r"(?<!\\)\|")
# A time as the renderer and the library's messages write it: to the minute, or with seconds.
_UTC_TIME = re.compile(r"\b(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?) UTC\b")
# The post-mortem timeline's times: the date is left out when every row falls on one day.
_BARE_TIME = re.compile(r"(?:(\d{4}-\d{2}-\d{2}) )?(\d{2}:\d{2})")
# That one day is the day the incident was declared (its first row), on the Date line.
_DATE_LINE = re.compile(r"^\*\*Date:\*\* (\d{4}-\d{2}-\d{2}) ")
#: A column narrower than this is not made narrower to fit the terminal.
_NARROWEST = 4


def width() -> int:
    """The terminal's width (``COLUMNS`` or 100 when the output is not a terminal), at least 40."""
    return max(40, shutil.get_terminal_size((100, 24)).columns)


def unescape(text: str) -> str:
    """``text`` without the renderer's Markdown escapes, ``&lt;``/``&gt;`` and bold markers."""
    return _ESCAPE.sub(_unescaped, _BOLD.sub(r"\1", text))


def _unescaped(found: re.Match[str]) -> str:
    return found[1] if found[1] is not None else _ENTITIES[found[2]]


def in_zone(text: str, zone: tzinfo | None) -> str:
    """``text`` with each ``2026-11-27 14:05 UTC`` in it shown in ``zone`` (``... 15:05 CET``).

    Seconds, when written, are kept. ``None`` leaves the text as it is.

    >>> from zoneinfo import ZoneInfo
    >>> berlin = ZoneInfo("Europe/Berlin")
    >>> in_zone("due 2026-11-27 14:05 UTC, sent 2026-11-27 14:05:30.25 UTC", berlin)
    'due 2026-11-27 15:05 CET, sent 2026-11-27 15:05:30.25 CET'
    """
    if zone is None:
        return text
    return _UTC_TIME.sub(lambda found: _local(found[1], found[2], zone) or found[0], text)


def _local(day: str, clock: str, zone: tzinfo) -> str | None:
    """The UTC ``day`` and ``clock`` in ``zone``, to the same precision; None if out of range."""
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=UTC).astimezone(zone)
    except (ValueError, OverflowError):  # year 9999 east of UTC: keep the time in UTC
        return None
    if len(clock) == len("14:05"):
        shown = f"{moment:%Y-%m-%d %H:%M}"
    elif len(clock) == len("14:05:30"):
        shown = f"{moment:%Y-%m-%d %H:%M:%S}"
    else:
        shown = f"{moment:%Y-%m-%d %H:%M:%S.%f}".rstrip("0")
    return f"{shown} {moment.tzname() or moment.strftime('%z')}"


def for_terminal(markdown: str, columns: int | None = None, *, zone: tzinfo | None = None) -> str:
    """``markdown`` for reading in a terminal of ``columns`` (default: :func:`width`).

    With ``zone``, the renderer's UTC times are shown in that zone, each with its name.
    """
    columns = columns or width()
    page = _Page(markdown.splitlines(), columns, zone)
    return "\n".join(page.lines()).rstrip() + "\n"


class _Page:
    """One rendered document read line by line: fences, tables, headings and paragraphs."""

    def __init__(self, source: Sequence[str], columns: int, zone: tzinfo | None) -> None:
        self.source = source
        self.columns = columns
        self.zone = zone
        dated = (_DATE_LINE.match(line) for line in source)
        self.day = next((found[1] for found in dated if found), None)

    def shown(self, text: str) -> str:
        """Markdown text as it reads: unescaped, its times in the display zone."""
        return in_zone(unescape(text), self.zone)

    def lines(self) -> Iterator[str]:
        """The document's lines as the terminal shows them, none wider than the columns."""
        source, columns = self.source, self.columns
        index = 0
        while index < len(source):
            line = source[index].rstrip()
            if line.startswith("```"):
                end = index + 1
                while end < len(source) and not source[end].startswith("```"):
                    yield from wrapped("    " + source[end], columns, "    ")
                    end += 1
                index = end + 1
                continue
            if line.startswith("|"):
                end = index
                while end < len(source) and source[end].startswith("|"):
                    end += 1
                yield from wrap_rows(self.table(source[index:end]), columns)
                index = end
                continue
            index += 1
            if heading := re.match(r"^(#{1,6})\s+(.*)$", line):
                title = wrapped(self.shown(heading.group(2)), columns, "")
                level = len(heading.group(1))
                yield from title
                yield ("=" if level == 1 else "-" if level == 2 else "·") * max(map(len, title))
                continue
            text = self.shown(line)
            if italic := _ITALIC_LINE.match(text):
                text = italic.group(1)
            bullet = _BULLET.match(text)
            yield from wrapped(text, columns, " " * len(bullet.group(1)) if bullet else "")

    def table(self, rows: Sequence[str]) -> list[list[str]]:
        """A Markdown table's cells as they read; its UTC columns in the display zone."""
        cells = [
            [self.shown(c.strip()) for c in _CELL.split(row.strip().strip("|"))]
            for row in rows
            if not re.fullmatch(r"\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?", row.strip())
        ]
        if self.zone is None or not cells:
            return cells
        header, *body = cells
        for column, name in enumerate(header):
            if not name.endswith(" (UTC)"):
                continue
            for row in body:
                if column < len(row):
                    row[column] = self.bare_time(row[column])
            if not any(column < len(row) and _BARE_TIME.fullmatch(row[column]) for row in body):
                header[column] = name.removesuffix(" (UTC)")  # each time now names its zone
        return cells

    def bare_time(self, cell: str) -> str:
        """A time the renderer wrote without ``UTC`` (the post-mortem timeline's), in the zone."""
        found = _BARE_TIME.fullmatch(cell)
        day = (found[1] or self.day) if found else None
        if found is None or day is None or self.zone is None:
            return cell
        return _local(day, found[2], self.zone) or cell


def wrapped(text: str, columns: int, indent: str) -> list[str]:
    """``text`` wrapped to ``columns``, its following lines indented by ``indent``."""
    if not text.strip():
        return [""]
    return textwrap.wrap(
        text, columns, subsequent_indent=indent, break_long_words=True, break_on_hyphens=False
    ) or [""]


def wrap_rows(rows: Sequence[Sequence[str]], columns: int) -> Iterator[str]:
    """``rows`` (the first is the header) as aligned columns fitted to ``columns``.

    Every column but the last is as wide as its widest cell (at most a third of
    the width); the last one wraps in the room that is left. When that room is
    too small, the widest of the others give way, and their cells wrap too.
    """
    if not rows:
        return
    count = max(len(r) for r in rows)
    rows = [list(r) + [""] * (count - len(r)) for r in rows]
    limit = max(8, columns // 3)
    widths = [min(limit, max(len(r[i]) for r in rows)) for i in range(count - 1)]
    gaps = 2 * (count - 1)
    least = min(20, columns // 4, max(len(r[-1]) for r in rows))
    while widths and sum(widths) + gaps + least > columns and max(widths) > _NARROWEST:
        widths[widths.index(max(widths))] -= 1
    room = max(1, columns - sum(widths) - gaps)
    for row in rows:
        parts = [textwrap.wrap(cell, w) or [""] for cell, w in zip(row, widths, strict=False)]
        parts.append(textwrap.wrap(row[-1], room, break_on_hyphens=False) or [""])
        for depth in range(max(len(p) for p in parts)):
            words = [p[depth] if depth < len(p) else "" for p in parts]
            cells = [w.ljust(widths[i]) for i, w in enumerate(words[:-1])]
            yield "  ".join([*cells, words[-1]]).rstrip()
