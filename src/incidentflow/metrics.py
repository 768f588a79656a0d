"""MTTx metrics: how long incidents took, per incident and in aggregate.

Every figure comes from incident snapshots alone (no history is read), so the
metrics of a whole store are one pass over ``flow.list()``:

>>> from datetime import datetime, timedelta, timezone
>>> from incidentflow import IncidentFlow
>>> from incidentflow.testing import FrozenClock
>>> clock = FrozenClock(datetime(2026, 11, 27, 14, 0, tzinfo=timezone.utc))
>>> flow = IncidentFlow.in_memory(clock=clock)
>>> inc = flow.declare("Search is slow", severity="P3", commander="carol", actor="carol")
>>> _ = clock.advance(minutes=4)
>>> inc = flow.start_triage(inc.id, actor="carol")
>>> incident_times(inc).time_to_acknowledge
datetime.timedelta(seconds=240)
>>> [summary] = summarize(flow.list())
>>> summary.mtta, summary.mttr
(datetime.timedelta(seconds=240), None)

The durations, each ``None`` while a milestone is missing:

- ``time_to_detect``: the issue first occurred → it was detected (alert or report);
- ``time_to_declare``: detected → the incident was declared;
- ``time_to_acknowledge``: declared → acknowledged (triage started);
- ``time_to_contain``: declared → contained;
- ``time_to_fix``: declared → marked fixed;
- ``time_to_resolve``: declared → resolved;
- ``time_to_postmortem``: resolved → post-mortem completed.

:func:`incident_times` measures one incident, :func:`summarize` aggregates
many (count, mean, median, p90 per severity or per period, MTTA, MTTR) and
:func:`to_prometheus` renders summaries in the Prometheus text format.

A snapshot keeps the latest time of each milestone, so after a reopen the
durations run to the milestone reached again (the fix that held, the final
resolution), never to the one the reopen undid.
"""

from ._metrics import (
    METRICS,
    PERIODS,
    IncidentTimes,
    Milestones,
    Stats,
    Summary,
    incident_times,
    milestones,
    percentile,
    summarize,
)
from ._prometheus import to_prometheus

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
    "to_prometheus",
]
