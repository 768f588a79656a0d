"""The blame check: phrases in a post-mortem that blame a person rather than the process."""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable

__all__ = ["BlameCheck", "find_blame"]


class BlameCheck(enum.Enum):
    """What to do when a post-mortem seems to blame a person."""

    OFF = "off"
    WARN = "warn"
    REJECT = "reject"


_FAILURE_VERBS = (
    "forgot|forget|broke|break|failed|fail|missed|miss|messed|screwed|neglected|ignored|"
    "caused|deleted|dropped|botched|overlooked|skipped"
)
_GENERIC_BLAME = re.compile(
    r"\bhuman error\b|\boperator error\b|\b(\w+)['’]s fault\b|\bfault of (\w+)\b",
    re.IGNORECASE,
)
# Shorter names ("a", "jo") would match ordinary words next to a failure verb.
_MIN_NAME_LENGTH = 3


@functools.lru_cache(maxsize=1024)
def _blaming(person: str) -> re.Pattern[str]:
    """``person`` near a failure verb: "Bob forgot", "alice quickly broke"."""
    return re.compile(
        rf"\b{re.escape(person)}\b(?:\W+\w+){{0,2}}?\W+(?:{_FAILURE_VERBS})\b",
        re.IGNORECASE,
    )


def find_blame(text: str, participants: Iterable[str]) -> list[str]:
    """Phrases in ``text`` that blame a person rather than the process.

    >>> find_blame("Bob forgot to run the migration", ["bob"])
    ['"Bob forgot" names a person next to a failure; describe the process gap instead']
    >>> find_blame("The deploy script skipped the migration", ["bob"])
    []
    """
    found: list[str] = []
    # Case-insensitive regular expressions are slow to run; on ASCII text a plain
    # search of the lowered text tells for sure when one cannot match.
    lowered = text.lower() if text.isascii() else None
    if lowered is None or "error" in lowered or "fault" in lowered:
        for match in _GENERIC_BLAME.finditer(text):
            found.append(f'"{match.group(0)}" assigns blame; describe the process gap instead')
    for person in sorted({p for p in participants if len(p) >= _MIN_NAME_LENGTH}):
        if lowered is not None and person.isascii() and person.lower() not in lowered:
            continue  # the name is nowhere in the text
        for match in _blaming(person).finditer(text):
            found.append(
                f'"{match.group(0)}" names a person next to a failure; '
                "describe the process gap instead"
            )
    return found
