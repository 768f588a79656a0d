"""Metrics from what a SQL store aggregated itself: :func:`summarize`'s results, value for value.

A store computes the durations (microseconds, integers) in SQL; the
functions here turn its rows, or its per-duration parts, into the same
:class:`~incidentflow._metrics.Summary` objects :func:`~incidentflow._metrics.summarize`
builds from snapshots.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any, Literal

from ._metrics import (
    _PERIOD_START,
    METRICS,
    Summary,
    _count_order,
    _period_label,
    _spans,
    _summary,
    check_grouping,
    stats_of,
)
from ._model import Incident, Severity, State

__all__ = ["duration_micros", "summarize_durations", "summary_of_parts"]

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MICROSECOND = timedelta(microseconds=1)

#: One duration's parts: count, exact total, minimum, maximum and the quantiles' neighbours.
Parts = tuple[int, int, int, int, Sequence[tuple[int, int]]]


def summarize_durations(
    counts: Iterable[Sequence[Any]],
    durations: Iterable[Sequence[Any]],
    *,
    by: Literal["severity", "type", "period"] | None = None,
    period: Literal["day", "week", "month"] = "week",
) -> list[Summary]:
    """:func:`~incidentflow._metrics.summarize`, from what a store aggregated and computed itself.

    ``counts`` holds ``(group, severity, state, n)`` rows and ``durations``
    one ``(group, *durations)`` row per incident, each duration of
    :data:`METRICS` in microseconds (an integer) or ``None`` (see
    :data:`~incidentflow._metrics.DURATION_SPANS`). The group is ``None``,
    the severity's or the type's name, or with ``by="period"`` the day of
    ``declared_at`` (days since 1970-01-01, UTC). The same summaries, value
    for value. Nothing is built per incident: each duration's values are
    gathered by column.
    """
    check_grouping(by, period)
    key_of: Callable[[Any], Any] = _identity
    if by == "period":
        start_of, keys = _PERIOD_START[period], dict[int, int]()

        def key_of(day: Any) -> Any:
            key = keys.get(day)
            if key is None:
                key = keys[day] = start_of(date.fromordinal(_EPOCH_ORDINAL + day))
            return key

    tallies: dict[Any, dict[tuple[Severity, State], int]] = {}
    for group, severity, state, n in counts:
        tally = tallies.setdefault(key_of(group), {})
        pair = (Severity(severity), State(state))
        tally[pair] = tally.get(pair, 0) + n
    rows: dict[Any, list[Sequence[Any]]] = {}
    if by is None:
        rows[None] = durations if isinstance(durations, list) else list(durations)
    else:
        for row in durations:
            rows.setdefault(key_of(row[0]), []).append(row)
    if by is None:
        return [_summary(tallies.get(None, {}), _columns(rows[None]), None, None, None, None)]

    def summary_of(key: Any, severity: Severity | None, label: str | None,
                   first_day: date | None, kind: str | None) -> Summary:  # fmt: skip
        return _summary(tallies[key], _columns(rows.get(key, ())), severity, label, first_day, kind)

    if by == "severity":
        return [summary_of(s.value, s, None, None, None) for s in Severity if s.value in tallies]
    if by == "type":
        return [summary_of(kind, None, None, None, kind) for kind in sorted(tallies)]
    summaries = []
    for key in sorted(tallies):
        first_day = date.fromordinal(key)
        summaries.append(summary_of(key, None, _period_label(period, first_day), first_day, None))
    return summaries


def summary_of_parts(counts: Iterable[Sequence[Any]], parts: Sequence[Parts]) -> list[Summary]:
    """The one summary of everything, from ``(severity, state, n)`` rows and each duration's parts.

    ``parts`` holds, for each duration of :data:`METRICS`, what
    :func:`~incidentflow._metrics.stats_of` takes: a store reads them from an
    index on the duration (a count, a sum and a few seeks) instead of
    fetching every value.
    """
    tally: dict[tuple[Severity, State], int] = {}
    for severity, state, n in counts:
        pair = (Severity(severity), State(state))
        tally[pair] = tally.get(pair, 0) + n
    ordered = MappingProxyType(dict(sorted(tally.items(), key=_count_order)))
    stats = (stats_of(*found) for found in parts)
    return [Summary(None, None, None, sum(tally.values()), ordered, *stats)]


def duration_micros(incident: Incident) -> tuple[int | None, ...]:
    """The durations of :data:`METRICS` of one snapshot, in microseconds: a duration row's tail."""
    return tuple(None if span is None else span // _MICROSECOND for span in _spans(incident))


def _identity(value: Any) -> Any:
    return value


def _columns(rows: Sequence[Sequence[Any]]) -> list[list[int]]:
    """Each duration's values (``None`` left out), from ``(group, *durations)`` rows."""
    if not rows:
        return [[] for _ in METRICS]
    columns = list(zip(*rows, strict=True))[1:]
    return [[x for x in column if x is not None] for column in columns]
