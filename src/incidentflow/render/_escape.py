"""Escaping user text for Markdown, and the small formatting pieces every file shares.

All user text passes through :func:`inline`, :func:`block` or :func:`cell`, so
no input can forge a heading, a list item, a table row or raw HTML.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

__all__ = ["block", "cell", "fence", "inline", "table", "utc"]

_INLINE_SPECIALS = re.compile(r"([\\`*_\[\]|~])")
_BLOCK_START = re.compile(r"^(\s*)([#>+\-=*]|\d+[.)])")


def inline(text: str) -> str:
    """User text on one line, with Markdown and HTML specials neutralised.

    A leading block marker is escaped too, so the text is safe at the start of
    a list item or a table cell.
    """
    text = " ".join(text.split())
    text = _INLINE_SPECIALS.sub(r"\\\1", text)
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return _BLOCK_START.sub(lambda m: m.group(1) + _escape_marker(m.group(2)), text)


def cell(text: str) -> str:
    """User text for one table cell."""
    return inline(text) or " "


def block(text: str) -> str:
    """Multi-line user text as a paragraph; no line can start a heading, list or quote."""
    lines = []
    for raw in text.splitlines():
        line = _INLINE_SPECIALS.sub(r"\\\1", raw.strip()).replace("<", "&lt;").replace(">", "&gt;")
        line = _BLOCK_START.sub(lambda m: m.group(1) + _escape_marker(m.group(2)), line)
        lines.append(line)
    return "  \n".join(line for line in lines if line) or "_(empty)_"


def _escape_marker(marker: str) -> str:
    if marker[0].isdigit():
        return marker[:-1] + "\\" + marker[-1]
    return "\\" + marker


def fence(text: str) -> str:
    """``text`` verbatim in a fence longer than any backtick run in it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}text\n{text}\n{ticks}"


def utc(at: datetime) -> str:
    """``2026-11-27 14:00 UTC``."""
    return f"{at:%Y-%m-%d %H:%M} UTC"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table's lines; the cells must be escaped already."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines
