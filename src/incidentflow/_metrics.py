"""The metrics' implementation; the public names are re-exported by :mod:`incidentflow.metrics`.

The Prometheus rendering of the summaries lives in :mod:`incidentflow._prometheus`.
"""

from __future__ import annotations

import math
import operator
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Literal

import attrs

from . import _validate as v
from ._model import Incident, Severity, State
from .exceptions import ValidationError

__all__ = [
    "METRICS",
    "PERIODS",
    "IncidentTimes",
    "Milestones",
    "Stats",
    "Summary",
    "incident_times",
    "milestones",
    "percentile",
    "summarize",
]

#: The duration names, in the order the milestones are reached.
METRICS: tuple[str, ...] = (
    "time_to_detect",
    "time_to_declare",
    "time_to_acknowledge",
    "time_to_contain",
    "time_to_fix",
    "time_to_resolve",
    "time_to_postmortem",
)

#: The periods :func:`summarize` groups by, on the UTC date of ``declared_at``.
PERIODS: tuple[str, ...] = ("day", "week", "month")


@attrs.frozen(slots=True)
class Milestones:
    """When one incident reached each milestone: all the metrics need of it.

    Stores can produce these without building whole snapshots (SQLite reads
    them in one query), which is what makes metrics over a big store cheap;
    :func:`milestones` takes them from a snapshot.

    Attributes:
        incident_id: The incident.
        severity: Its current severity.
        state: Its current state.
        declared_at: When it was declared (aware UTC).
        first_occurred_at: When the issue first occurred, if recorded.
        detected_at: When it was detected, if recorded.
        acknowledged_at: When triage started.
        contained_at: When it was declared contained.
        fixed_at: When it was marked fixed.
        resolved_at: When it was resolved.
        postmortem_completed_at: When its post-mortem was completed.
        type: Its incident type (``availability``, ``security``, ...).

    """

    incident_id: str
    severity: Severity
    state: State
    declared_at: datetime
    first_occurred_at: datetime | None = None
    detected_at: datetime | None = None
    acknowledged_at: datetime | None = None
    contained_at: datetime | None = None
    fixed_at: datetime | None = None
    resolved_at: datetime | None = None
    postmortem_completed_at: datetime | None = None
    type: str = attrs.field(default="availability", kw_only=True)


#: The seven milestone times of :class:`Milestones`, in the order of its fields.
MILESTONE_TIMES: tuple[str, ...] = tuple(
    f.name for f in attrs.fields(Milestones)[4:] if f.name != "type"
)
_milestone_times_of = operator.attrgetter(*MILESTONE_TIMES)

#: Each duration of :data:`METRICS` as (later, earlier) milestones: what a store subtracts
#: to compute them itself (a missing milestone, NULL, gives no duration, as in :func:`_spans`).
DURATION_SPANS: tuple[tuple[str, str], ...] = (
    ("detected_at", "first_occurred_at"),
    ("declared_at", "detected_at"),
    ("acknowledged_at", "declared_at"),
    ("contained_at", "declared_at"),
    ("fixed_at", "declared_at"),
    ("resolved_at", "declared_at"),
    ("postmortem_completed_at", "resolved_at"),
)


def milestone_times(incident: Incident) -> tuple[datetime | None, ...]:
    """An incident's :data:`MILESTONE_TIMES`, in that order (what a milestones row holds)."""
    detection, postmortem = incident.detection, incident.postmortem
    return (
        None if detection is None else detection.first_occurred_at,
        None if detection is None else detection.detected_at,
        incident.acknowledged_at,
        incident.contained_at,
        incident.fixed_at,
        incident.resolved_at,
        None if postmortem is None else postmortem.completed_at,
    )


def milestones(incident: Incident) -> Milestones:
    """The milestones of one snapshot."""
    return Milestones(
        incident_id=incident.id,
        severity=incident.severity,
        state=incident.state,
        declared_at=incident.declared_at,
        type=incident.type,
        **dict(zip(MILESTONE_TIMES, milestone_times(incident), strict=True)),
    )


@attrs.frozen
class IncidentTimes:
    """How long one incident took to reach each milestone.

    A duration is ``None`` while either of its milestones is missing: an
    incident still in triage has no ``time_to_contain``, one without a recorded
    detection has no ``time_to_detect``. Durations are not clamped:
    ``time_to_declare`` is negative when the incident was declared before the
    recorded detection time.

    Attributes:
        incident_id: The incident measured.
        severity: Its current severity.
        time_to_detect: Issue first occurred → detected.
        time_to_declare: Detected → declared.
        time_to_acknowledge: Declared → acknowledged (triage started).
        time_to_contain: Declared → contained.
        time_to_fix: Declared → marked fixed.
        time_to_resolve: Declared → resolved.
        time_to_postmortem: Resolved → post-mortem completed.

    """

    incident_id: str
    severity: Severity
    time_to_detect: timedelta | None
    time_to_declare: timedelta | None
    time_to_acknowledge: timedelta | None
    time_to_contain: timedelta | None
    time_to_fix: timedelta | None
    time_to_resolve: timedelta | None
    time_to_postmortem: timedelta | None

    def seconds(self) -> dict[str, float | None]:
        """Each duration of :data:`METRICS` in seconds, for JSON and tables."""
        return {
            name: None if (span := getattr(self, name)) is None else span.total_seconds()
            for name in METRICS
        }


@attrs.frozen
class Stats:
    """One duration aggregated over a group of incidents.

    Only incidents that reached both milestones count: ``count`` may be smaller
    than the group's number of incidents. The median and p90 are interpolated
    linearly between the two nearest values (see :func:`percentile`). Every
    duration but ``total`` is ``None`` when ``count`` is 0.

    Attributes:
        count: How many incidents have this duration.
        total: The sum of the durations, exact to the microsecond.
        minimum: The shortest.
        mean: The arithmetic mean: ``total / count``, rounded half to even
            to the microsecond.
        median: The 50th percentile.
        p90: The 90th percentile.
        maximum: The longest.

    """

    count: int
    total: timedelta
    minimum: timedelta | None
    mean: timedelta | None
    median: timedelta | None
    p90: timedelta | None
    maximum: timedelta | None


@attrs.frozen
class Summary:
    """The metrics of one group of incidents: a severity, a type, a period, or all of them.

    Each duration of :data:`METRICS` (``time_to_detect`` ... ``time_to_postmortem``,
    see :class:`IncidentTimes`) is an attribute holding its :class:`Stats`.

    Attributes:
        severity: The group's severity, when grouped by severity.
        period: The group's period, when grouped by period: ``"2026-11-27"``
            (day), ``"2026-W48"`` (ISO week) or ``"2026-11"`` (month), UTC.
        period_start: The first day of that period (a Monday for a week).
        count: How many incidents the group holds, in any state.
        counts: How many incidents of the group are in each
            ``(severity, state)``; pairs with none are left out.
        type: The group's incident type, when grouped by type.

    """

    severity: Severity | None
    period: str | None
    period_start: date | None
    count: int
    counts: Mapping[tuple[Severity, State], int] = attrs.field(hash=False)
    time_to_detect: Stats
    time_to_declare: Stats
    time_to_acknowledge: Stats
    time_to_contain: Stats
    time_to_fix: Stats
    time_to_resolve: Stats
    time_to_postmortem: Stats
    type: str | None = attrs.field(default=None, kw_only=True)

    @property
    def mtta(self) -> timedelta | None:
        """Mean time to acknowledge: the mean of ``time_to_acknowledge``."""
        return self.time_to_acknowledge.mean

    @property
    def mttr(self) -> timedelta | None:
        """Mean time to resolve: the mean of ``time_to_resolve``."""
        return self.time_to_resolve.mean

    def stats(self) -> dict[str, Stats]:
        """Each duration's :class:`Stats`, keyed and ordered as :data:`METRICS`."""
        return {name: getattr(self, name) for name in METRICS}


def incident_times(incident: Incident) -> IncidentTimes:
    """The durations of one incident, from its snapshot.

    Args:
        incident: The snapshot, e.g. from ``flow.get(id)``.

    Returns:
        Every duration of :data:`METRICS`, ``None`` where a milestone is missing.

    """
    return IncidentTimes(incident.id, incident.severity, *_spans(incident))


def _spans(inc: Incident | Milestones) -> tuple[timedelta | None, ...]:
    """The durations of :data:`METRICS`, from a snapshot or from its milestones."""
    times = _milestone_times_of(inc) if isinstance(inc, Milestones) else milestone_times(inc)
    first, detected, acknowledged, contained, fixed, resolved, completed = times
    declared = inc.declared_at
    return (
        None if detected is None or first is None else detected - first,
        None if detected is None else declared - detected,
        None if acknowledged is None else acknowledged - declared,
        None if contained is None else contained - declared,
        None if fixed is None else fixed - declared,
        None if resolved is None else resolved - declared,
        None if resolved is None or completed is None else completed - resolved,
    )


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q`` quantile of ``values``, interpolated linearly.

    This is the "linear" method of NumPy and ``PERCENTILE.INC`` of spreadsheets
    (Hyndman and Fan's type 7): sorted values ``x[0..n-1]`` are placed at
    ``0, 1/(n-1), ..., 1`` and ``q`` is read off the line between its two
    neighbours. The median of an even count is the mean of the middle two.

    >>> percentile([1, 2, 3, 4], 0.5)
    2.5
    >>> percentile(range(1, 11), 0.9)
    9.1

    Args:
        values: The numbers, in any order; at least one.
        q: The quantile, from 0 (the minimum) to 1 (the maximum).

    Returns:
        The interpolated value.

    Raises:
        ValidationError: ``values`` is empty or ``q`` is outside [0, 1].

    """
    if not 0.0 <= q <= 1.0:
        raise ValidationError("q", f"{v._shown(q)} is not a quantile; give a number from 0 to 1")
    ordered = sorted(values)
    if not ordered:
        raise ValidationError("values", "no values to take a percentile of; give at least one")
    return _quantile(ordered, q)


def _quantile(ordered: Sequence[float], q: float) -> float:
    rank = (len(ordered) - 1) * q
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


#: The quantiles of :class:`Stats` besides the extremes: the median and the p90.
QUANTILES: tuple[float, ...] = (0.5, 0.9)

_PER_SECOND = 1_000_000
_MICROSECOND = timedelta(microseconds=1)


def quantile_rank(count: int, q: float) -> int:
    """The 0-based rank of the lower of the two values a ``q`` quantile lies between."""
    return math.floor((count - 1) * q)


def stats_of(
    count: int,
    total: int,
    minimum: int,
    maximum: int,
    neighbours: Sequence[tuple[int, int]],
) -> Stats:
    """The :class:`Stats` of ``count`` durations given in microseconds by their parts.

    ``total`` is their exact sum; ``neighbours`` holds, for each of :data:`QUANTILES`,
    the values at :func:`quantile_rank` and the rank after it (the same value twice
    at the last rank): what a store can seek in an index instead of sorting them all.
    The total and mean are exact (the mean rounded half to even to the microsecond);
    the extremes and quantiles go through float seconds, as :func:`percentile` does.
    """
    if not count:
        return Stats(0, timedelta(0), None, None, None, None, None)
    whole = timedelta(microseconds=total)
    median, p90 = (
        _interpolated(count, q, low, high)
        for q, (low, high) in zip(QUANTILES, neighbours, strict=True)
    )
    return Stats(count, whole, _seconds(minimum), whole / count, median, p90, _seconds(maximum))


def _seconds(micros: int) -> timedelta:
    # Through float seconds (``timedelta.total_seconds()``), as every figure was before.
    return timedelta(seconds=micros / _PER_SECOND)


def _interpolated(count: int, q: float, low: int, high: int) -> timedelta:
    """:func:`_quantile` of the two neighbours, in seconds: the same floats, the same result."""
    rank = (count - 1) * q
    below, above = low / _PER_SECOND, high / _PER_SECOND
    return timedelta(seconds=below + (above - below) * (rank - math.floor(rank)))


def _stats(values: Sequence[int]) -> Stats:
    """The :class:`Stats` of durations in microseconds."""
    count = len(values)
    if not count:
        return stats_of(0, 0, 0, 0, ())
    ordered = sorted(values)
    last = count - 1
    neighbours = [
        (ordered[rank], ordered[min(rank + 1, last)])
        for rank in (quantile_rank(count, q) for q in QUANTILES)
    ]
    return stats_of(count, sum(ordered), ordered[0], ordered[last], neighbours)


class _Group:
    """What one group accumulates: counts, and each duration's values in microseconds."""

    __slots__ = ("counts", "values")

    def __init__(self) -> None:
        self.counts: dict[tuple[Severity, State], int] = {}
        # array('q') keeps 8 bytes a value where a list of ints needs 32 or more.
        self.values: tuple[array[int], ...] = tuple(array("q") for _ in METRICS)

    def add(self, inc: Incident | Milestones) -> None:
        key = (inc.severity, inc.state)
        self.counts[key] = self.counts.get(key, 0) + 1
        for values, span in zip(self.values, _spans(inc), strict=True):
            if span is not None:
                values.append(span // _MICROSECOND)

    def summary(
        self,
        severity: Severity | None,
        period: str | None,
        start: date | None,
        kind: str | None = None,
    ) -> Summary:
        return _summary(self.counts, self.values, severity, period, start, kind)


def _summary(
    counts: Mapping[tuple[Severity, State], int],
    values: Iterable[Sequence[int]],
    severity: Severity | None,
    period: str | None,
    start: date | None,
    kind: str | None,
) -> Summary:
    ordered = MappingProxyType(dict(sorted(counts.items(), key=_count_order)))
    stats = (_stats(durations) for durations in values)
    total = sum(counts.values())
    return Summary(severity, period, start, total, ordered, *stats, type=kind)


_SEVERITY_ORDER = {s: n for n, s in enumerate(Severity)}
_STATE_ORDER = {s: n for n, s in enumerate(State)}


def _count_order(item: tuple[tuple[Severity, State], int]) -> tuple[int, int]:
    (severity, state), _ = item
    return _SEVERITY_ORDER[severity], _STATE_ORDER[state]


def summarize(
    incidents: Iterable[Incident | Milestones],
    *,
    by: Literal["severity", "type", "period"] | None = None,
    period: Literal["day", "week", "month"] = "week",
) -> list[Summary]:
    """Aggregate the durations of many incidents, in one pass.

    ``incidents`` is read once and nothing of an incident is kept but its
    durations (integer microseconds), so a generator over a whole store works: memory
    grows with the number of groups times the number of values, not with the
    snapshots. Incidents in every state count, dismissed ones included; filter
    the iterable to leave some out.

    Args:
        incidents: The snapshots (e.g. ``flow.list()``, or a generator) or their
            :class:`Milestones` (``flow.store.milestones(query)``).
        by: ``None`` for one summary of everything; ``"severity"`` for one per
            severity that occurs (P1 first); ``"type"`` for one per incident
            type that occurs (by name); ``"period"`` for one per period that
            occurs, oldest first.
        period: With ``by="period"``: ``"day"``, ``"week"`` (ISO weeks,
            Monday to Sunday) or ``"month"``, of ``declared_at`` in UTC.

    Returns:
        The summaries. With ``by=None`` there is always exactly one, with
        ``count`` 0 for no incidents; grouped, a group without incidents has
        no summary.

    Raises:
        ValidationError: ``by``, ``period`` or a snapshot's ``declared_at``
            (naive) is not acceptable.

    """
    check_grouping(by, period)

    if by is None:
        everything = _Group()
        for inc in incidents:
            everything.add(inc)
        return [everything.summary(None, None, None)]

    if by == "severity":
        per_severity: dict[Severity, _Group] = {}
        for inc in incidents:
            group = per_severity.get(inc.severity)
            if group is None:
                group = per_severity[inc.severity] = _Group()
            group.add(inc)
        return [
            per_severity[severity].summary(severity, None, None)
            for severity in Severity
            if severity in per_severity
        ]

    if by == "type":
        per_type: dict[str, _Group] = {}
        for inc in incidents:
            group = per_type.get(inc.type)
            if group is None:
                group = per_type[inc.type] = _Group()
            group.add(inc)
        return [per_type[kind].summary(None, None, None, kind) for kind in sorted(per_type)]

    # Groups are keyed by the ordinal of the period's first day: cheap, and sorts by time.
    start_of = _PERIOD_START[period]
    per_period: dict[int, _Group] = {}
    for inc in incidents:
        key = start_of(_utc_date(inc))
        group = per_period.get(key)
        if group is None:
            group = per_period[key] = _Group()
        group.add(inc)
    summaries = []
    for key in sorted(per_period):
        first_day = date.fromordinal(key)
        label = _period_label(period, first_day)
        summaries.append(per_period[key].summary(None, label, first_day))
    return summaries


def check_grouping(by: object, period: object) -> None:
    """Refuse a ``by`` or ``period`` that :func:`summarize` does not know."""
    if by not in (None, "severity", "type", "period"):
        raise ValidationError(
            "by", f"{v._shown(by)} is not a grouping; use 'severity', 'type', 'period' or None"
        )
    if period not in PERIODS:
        raise ValidationError(
            "period", f"{v._shown(period)} is not a period; use one of {list(PERIODS)}"
        )


def _utc_date(inc: Incident | Milestones) -> date:
    at = inc.declared_at
    if at.tzinfo is not UTC:
        if at.tzinfo is None or at.utcoffset() is None:
            name = inc.incident_id if isinstance(inc, Milestones) else inc.id
            raise ValidationError(
                "declared_at", f"{name} has a naive declared_at; snapshots hold aware UTC times"
            )
        at = at.astimezone(UTC)
    return at.date()


_PERIOD_START: dict[str, Callable[[date], int]] = {
    "day": date.toordinal,
    "week": lambda day: day.toordinal() - day.weekday(),
    "month": lambda day: day.toordinal() - day.day + 1,
}


def _period_label(period: str, first_day: date) -> str:
    if period == "day":
        return first_day.isoformat()
    if period == "week":
        year, week, _ = first_day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{first_day:%Y-%m}"
