"""Slugs for new incidents: the title's, then numbered, found in O(log n) lookups."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from . import _validate as v

__all__ = ["slug_candidates"]

#: How many numbered slugs to try from the first free number, if racing writers take them.
_SLUG_ATTEMPTS = 50
#: Numbering never goes past this (a trillion incidents of one title in a day).
_NUMBER_MAX = 2**40


def slug_candidates(slug: str, *, numbered: bool, taken: Callable[[str], bool]) -> Iterator[str]:
    """``slug``, then (if ``numbered``) ``slug-N`` from the first free number on.

    Numbers are handed out in order, so the taken ones run from 2 up to some
    count: the first free one is found by doubling, then halving, in O(log n)
    existence checks however many incidents share the title that day. A number
    taken out of order (an explicit slug) or by a racing writer is skipped.
    """
    yield slug
    if not numbered:
        return
    lo, hi = 1, 2  # every number up to lo is taken (1 stands for the bare slug)
    while taken(_numbered(slug, hi)) and hi < _NUMBER_MAX:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if taken(_numbered(slug, mid)) else (lo, mid)
    for n in range(hi, hi + _SLUG_ATTEMPTS):
        yield _numbered(slug, n)


def _numbered(slug: str, n: int) -> str:
    suffix = f"-{n}"
    return slug[: v.SLUG_MAX - len(suffix)].rstrip("-") + suffix
