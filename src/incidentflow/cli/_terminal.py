"""The incident's Markdown as a terminal shows it: headings, wrapped text, fitted tables.

``show`` prints this unless ``--markdown`` asks for the file as it is.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Iterator, Sequence

__all__ = ["for_terminal", "unescape", "width", "wrap_rows", "wrapped"]

# A Markdown escape of the renderer: a backslash before punctuation.
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~<>])")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC_LINE = re.compile(r"^_(.+)_$")
_BULLET = re.compile(r"^(\s*(?:[-*]|\d+\.)\s+)")
_CELL = re.compile(r"(?<!\\)\|")


def width() -> int:
    """The terminal's width (``COLUMNS`` or 100 when the output is not a terminal), at least 40."""
    return max(40, shutil.get_terminal_size((100, 24)).columns)


def unescape(text: str) -> str:
    """``text`` without the renderer's Markdown escapes and bold markers."""
    return _ESCAPE.sub(r"\1", _BOLD.sub(r"\1", text))


def for_terminal(markdown: str, columns: int | None = None) -> str:
    """``markdown`` for reading in a terminal of ``columns`` (default: :func:`width`)."""
    columns = columns or width()
    return "\n".join(_lines(markdown.splitlines(), columns)).rstrip() + "\n"


def _lines(source: Sequence[str], columns: int) -> Iterator[str]:
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
            yield from _table(source[index:end], columns)
            index = end
            continue
        index += 1
        if heading := re.match(r"^(#{1,6})\s+(.*)$", line):
            title = unescape(heading.group(2))
            level = len(heading.group(1))
            yield title
            yield ("=" if level == 1 else "-" if level == 2 else "·") * min(len(title), columns)
            continue
        text = unescape(line)
        if italic := _ITALIC_LINE.match(text):
            text = italic.group(1)
        bullet = _BULLET.match(text)
        yield from wrapped(text, columns, " " * len(bullet.group(1)) if bullet else "")


def wrapped(text: str, columns: int, indent: str) -> list[str]:
    """``text`` wrapped to ``columns``, its following lines indented by ``indent``."""
    if not text.strip():
        return [""]
    return textwrap.wrap(
        text, columns, subsequent_indent=indent, break_long_words=True, break_on_hyphens=False
    ) or [""]


def _table(rows: Sequence[str], columns: int) -> Iterator[str]:
    cells = [
        [unescape(c.strip()) for c in _CELL.split(row.strip().strip("|"))]
        for row in rows
        if not re.fullmatch(r"\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?", row.strip())
    ]
    yield from wrap_rows(cells, columns)


def wrap_rows(rows: Sequence[Sequence[str]], columns: int) -> Iterator[str]:
    """``rows`` (the first is the header) as aligned columns fitted to ``columns``.

    Every column but the last is as wide as its widest cell (at most a third of
    the width); the last one wraps in the room that is left.
    """
    if not rows:
        return
    count = max(len(r) for r in rows)
    rows = [list(r) + [""] * (count - len(r)) for r in rows]
    limit = max(8, columns // 3)
    widths = [min(limit, max(len(r[i]) for r in rows)) for i in range(count - 1)]
    room = max(20, columns - sum(widths) - 2 * (count - 1))
    for row in rows:
        parts = [textwrap.wrap(cell, w) or [""] for cell, w in zip(row, widths, strict=False)]
        parts.append(textwrap.wrap(row[-1], room, break_on_hyphens=False) or [""])
        for depth in range(max(len(p) for p in parts)):
            words = [p[depth] if depth < len(p) else "" for p in parts]
            cells = [w.ljust(widths[i]) for i, w in enumerate(words[:-1])]
            yield "  ".join([*cells, words[-1]]).rstrip()
