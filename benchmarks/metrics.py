"""Metrics over 100,000 incidents (issue 5, "Speed": ≤ 2 s and ≤ 300 MB peak).

Run with ``python benchmarks/metrics.py`` (``--count N`` for another size). It
builds synthetic snapshots directly with attrs (every severity and state,
detections on most, post-mortems on the P1/P2 that got there, declared over a
year) and prints:

1. the time of ``summarize`` by nothing, by severity and by ISO week, of
   ``to_prometheus``, and of all three summaries plus one exposition (what a
   metrics command does; the target applies to this), each the best of 3, over
   a list of the snapshots built beforehand and without tracemalloc, which
   slows Python down;
2. tracemalloc's peak for the same work on top of the list, and for
   ``summarize`` over a generator that builds each snapshot as it is read (as
   pages of ``IncidentFlow.list`` would feed it): memory grows with the values
   kept (8 bytes per duration), not with the snapshots;
3. the process's peak resident set size, the list of snapshots included.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from incidentflow import Detection, Incident, Postmortem, Severity, State
from incidentflow.metrics import summarize, to_prometheus

TARGET_SECONDS = 2.0
TARGET_MB = 300.0
START = datetime(2026, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)

# Where incidents stand, most of them closed as in a store that has run a year.
_STATES = (
    [State.KB_UPDATED] * 70
    + [State.DISMISSED] * 8
    + [
        State.DECLARED,
        State.TRIAGING,
        State.TRIAGING,
        State.CONTAINED,
        State.RCA,
        State.RCA,
        State.FIXED,
        State.FIXED,
        State.RESOLVED,
        State.RESOLVED,
        State.RESOLVED,
        State.POSTMORTEM,
        State.POSTMORTEM,
        State.POSTMORTEM,
    ]
    + [State.KB_UPDATED] * 8
)
_ORDER = list(State)


def synthetic(n: int, seed: int = 5) -> Iterator[Incident]:
    """``n`` plausible snapshots, declared over a year, each one built as it is read."""
    rng = random.Random(seed)
    severities = list(Severity)
    for i in range(n):
        severity = severities[i % 4]
        state = _STATES[i % len(_STATES)]
        reached = _ORDER.index(state) if state is not State.DISMISSED else 1
        declared = START + timedelta(seconds=rng.randrange(365 * 86_400))

        def after(base: datetime, low: int, high: int) -> datetime:
            return base + rng.randrange(low, high) * _MINUTE

        acknowledged = after(declared, 1, 30) if reached >= 1 else None
        contained = after(acknowledged, 5, 120) if acknowledged and reached >= 2 else None
        fixed = after(contained, 30, 600) if contained and reached >= 4 else None
        resolved = after(fixed, 15, 240) if fixed and reached >= 5 else None
        postmortem = None
        needs_postmortem = severity in (Severity.P1, Severity.P2) or state is State.POSTMORTEM
        if resolved is not None and needs_postmortem:
            done = after(resolved, 60, 7 * 1440) if reached >= 6 else None
            postmortem = Postmortem(summary="s", root_cause="r", completed_at=done)
        detection = None
        if i % 5:
            detected = declared - rng.randrange(0, 30) * _MINUTE
            detection = Detection(
                detected - rng.randrange(0, 120) * _MINUTE, detected, "alert", "a"
            )
        closed = None
        if state in (State.KB_UPDATED, State.DISMISSED):
            closed = resolved or acknowledged or declared
        yield Incident(
            id=f"INC-{declared:%Y-%m-%d}-synthetic-{i}",
            slug=f"synthetic-{i}",
            title=f"Synthetic incident {i}",
            severity=severity,
            state=state,
            commander="alice",
            declared_at=declared,
            declared_by="alice",
            version=10,
            updated_at=closed or declared,
            postmortem_required=severity in (Severity.P1, Severity.P2),
            acknowledged_at=acknowledged,
            contained_at=contained,
            fixed_at=fixed,
            resolved_at=resolved,
            closed_at=closed,
            detection=detection,
            postmortem=postmortem,
        )


def timed(label: str, work: Callable[[], object]) -> float:
    """Best of 3 runs of ``work``, in seconds, printed."""
    runs = []
    for _ in range(3):
        gc.collect()
        started = time.perf_counter()
        work()
        runs.append(time.perf_counter() - started)
    best = min(runs)
    shown = f"{best:.3f} s" if best >= 0.01 else f"{best * 1e3:.2f} ms"
    print(f"   {label:<50} {shown}")
    return min(runs)


def peak_mb(work: Callable[[], object]) -> float:
    """tracemalloc's peak while ``work`` runs, in MB (10^6 bytes)."""
    gc.collect()
    tracemalloc.start()
    try:
        work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    n = parser.parse_args().count

    started = time.perf_counter()
    snapshots = list(synthetic(n))
    print(f"built {n:,} snapshots in {time.perf_counter() - started:.2f} s (not timed below)")

    def everything() -> str:
        """What a metrics command would do: three groupings, one exposition."""
        summaries = summarize(snapshots)
        summaries += summarize(snapshots, by="severity")
        summaries += summarize(snapshots, by="period", period="week")
        return to_prometheus(summaries)

    summaries = summarize(snapshots, by="severity")
    print(f"\n1. time over a list of {n:,} snapshots (best of 3, no tracemalloc)")
    timed("summarize(incidents)", lambda: summarize(snapshots))
    timed('summarize(incidents, by="severity")', lambda: summarize(snapshots, by="severity"))
    timed(
        'summarize(incidents, by="period", period="week")',
        lambda: summarize(snapshots, by="period", period="week"),
    )
    timed("to_prometheus(4 summaries by severity)", lambda: to_prometheus(summaries))
    total = timed("all three summarize + one to_prometheus", everything)
    text = everything()
    print(f"   (exposition: {text.count(chr(10)):,} lines, {len(text):,} characters)")

    print("\n2. tracemalloc peak")
    on_top = peak_mb(everything)
    print(f"   all three + to_prometheus, on top of the list: {on_top:.1f} MB")
    streamed = peak_mb(lambda: summarize(synthetic(n), by="period", period="week"))
    print(f"   summarize(generator, by week), snapshots included: {streamed:.1f} MB")

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(f"\n3. peak resident set size of this process (snapshots included): {rss:.0f} MB")

    fine = total <= TARGET_SECONDS and max(on_top, streamed) <= TARGET_MB
    verdict = "within" if fine else "OVER"
    print(f"\n{verdict} the targets (≤ {TARGET_SECONDS} s, ≤ {TARGET_MB:.0f} MB)")
    return 0 if fine else 1


if __name__ == "__main__":
    sys.exit(main())
