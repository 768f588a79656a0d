"""MTTx metrics: per-incident durations, aggregates, percentiles and Prometheus text."""

from __future__ import annotations

import gc
import math
import re
import statistics
import subprocess
import sys
import weakref
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import START, STEP, advance_to, declare
from incidentflow import (
    Detection,
    Incident,
    IncidentFlow,
    Postmortem,
    Severity,
    State,
    ValidationError,
)
from incidentflow import metrics as m
from incidentflow.testing import FrozenClock
from test_public_api import isort_key, public_names

MIN = timedelta(minutes=1)
T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def incident(
    n: int = 0,
    *,
    severity: Severity = Severity.P1,
    state: State = State.DECLARED,
    declared_at: datetime = T0,
    **milestones: Any,
) -> Incident:
    """A snapshot built directly, with the given milestone times."""
    return Incident(
        id=f"INC-{declared_at:%Y-%m-%d}-test-{n}",
        slug=f"test-{n}",
        title=f"Test {n}",
        severity=severity,
        state=state,
        commander="alice",
        declared_at=declared_at,
        declared_by="alice",
        version=1,
        updated_at=declared_at,
        postmortem_required=severity in (Severity.P1, Severity.P2),
        **milestones,
    )


def resolved_after(minutes: float, n: int = 0, **kwargs: Any) -> Incident:
    """A resolved incident whose time to resolve is ``minutes``."""
    at = kwargs.pop("declared_at", T0)
    return incident(
        n, state=State.RESOLVED, declared_at=at, resolved_at=at + minutes * MIN, **kwargs
    )


FULL = incident(
    state=State.POSTMORTEM,
    detection=Detection(T0 - 20 * MIN, T0 - 5 * MIN, "alert", "bob"),
    acknowledged_at=T0 + 4 * MIN,
    contained_at=T0 + 25 * MIN,
    fixed_at=T0 + 70 * MIN,
    resolved_at=T0 + 90 * MIN,
    postmortem=Postmortem(summary="s", completed_at=T0 + 2 * 24 * 60 * MIN),
)


class TestIncidentTimes:
    def test_every_duration_of_a_full_incident(self) -> None:
        """Each duration runs between the milestones it names, to the second."""
        times = m.incident_times(FULL)
        assert times == m.IncidentTimes(
            incident_id=FULL.id,
            severity=Severity.P1,
            time_to_detect=15 * MIN,
            time_to_declare=5 * MIN,
            time_to_acknowledge=4 * MIN,
            time_to_contain=25 * MIN,
            time_to_fix=70 * MIN,
            time_to_resolve=90 * MIN,
            time_to_postmortem=2 * 24 * 60 * MIN - 90 * MIN,
        )

    def test_missing_milestones_give_none(self) -> None:
        """A just-declared incident has no duration at all."""
        times = m.incident_times(incident())
        assert times.seconds() == dict.fromkeys(m.METRICS)

    def test_partial_detection(self) -> None:
        """Without first_occurred_at only time_to_declare is known; without detected_at, none."""
        only_detected = incident(detection=Detection(None, T0 - 3 * MIN, "user_report", "bob"))
        assert m.incident_times(only_detected).time_to_detect is None
        assert m.incident_times(only_detected).time_to_declare == 3 * MIN
        only_first = incident(detection=Detection(T0 - 3 * MIN, None, "other", "bob"))
        assert m.incident_times(only_first).time_to_detect is None
        assert m.incident_times(only_first).time_to_declare is None

    def test_declared_before_detection_is_negative(self) -> None:
        """Durations are not clamped: declaring ahead of the alert gives a negative lag."""
        early = incident(detection=Detection(None, T0 + 2 * MIN, "alert", "bob"))
        assert m.incident_times(early).time_to_declare == -2 * MIN

    def test_postmortem_needs_both_resolution_and_completion(self) -> None:
        """A drafted post-mortem, or one without a resolution, has no time to post-mortem."""
        drafted = resolved_after(30, postmortem=Postmortem(summary="draft"))
        assert m.incident_times(drafted).time_to_postmortem is None
        assert m.incident_times(drafted).time_to_resolve == 30 * MIN

    def test_seconds(self) -> None:
        """seconds() gives every duration in seconds, in METRICS order."""
        seconds = m.incident_times(FULL).seconds()
        assert list(seconds) == list(m.METRICS)
        assert seconds["time_to_acknowledge"] == 240.0
        assert seconds["time_to_detect"] == 900.0

    def test_an_incident_driven_through_the_flow(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """A real incident's durations follow the clock: STEP per stage, plus the watch window."""
        inc = declare(flow)
        clock.advance(minutes=1)
        flow.record_detection(
            inc.id,
            method="alert",
            first_occurred_at=START - 12 * MIN,
            detected_at=START - 2 * MIN,
            actor="bob",
        )
        inc = advance_to(flow, clock, inc.id, State.POSTMORTEM)
        times = m.incident_times(inc)
        window = flow.policy.watch_window
        assert times.time_to_detect == 10 * MIN
        assert times.time_to_declare == 2 * MIN
        assert times.time_to_acknowledge == MIN + STEP
        assert times.time_to_contain == MIN + 2 * STEP
        assert times.time_to_fix == MIN + 4 * STEP  # contained, rca, fixed
        assert times.time_to_resolve == MIN + 5 * STEP + window
        assert times.time_to_postmortem == STEP

    def test_a_reopen_measures_to_the_fix_that_held(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """After a reopen the snapshot holds the later fix, so time to fix runs to it."""
        inc = advance_to(flow, clock, declare(flow).id, State.FIXED)
        first_fix = inc.fixed_at
        clock.advance(hours=1)
        inc = flow.reopen(inc.id, reason="errors are back", actor="alice")
        assert m.incident_times(inc).time_to_fix is None
        inc = advance_to(flow, clock, inc.id, State.FIXED)
        assert first_fix is not None
        assert inc.fixed_at is not None
        assert m.incident_times(inc).time_to_fix == inc.fixed_at - inc.declared_at
        assert inc.fixed_at > first_fix


class TestPercentile:
    @pytest.mark.parametrize(
        ("values", "q", "expected"),
        [
            ([7], 0.0, 7),
            ([7], 0.5, 7),
            ([7], 0.9, 7),
            ([1, 2], 0.5, 1.5),
            ([1, 2], 0.9, 1.9),
            ([3, 1, 2], 0.5, 2),
            ([1, 2, 3, 4], 0.5, 2.5),
            ([4, 3, 2, 1], 0.9, 3.7),
            (list(range(1, 11)), 0.9, 9.1),
            (list(range(1, 11)), 0.5, 5.5),
            ([10, 20, 30, 40, 50], 0.9, 46),
            ([10, 20, 30, 40, 50], 0.0, 10),
            ([10, 20, 30, 40, 50], 1.0, 50),
        ],
    )
    def test_known_values(self, values: list[float], q: float, expected: float) -> None:
        """Linear interpolation between the two nearest ranks (NumPy's default method)."""
        assert m.percentile(values, q) == pytest.approx(expected)

    def test_median_is_the_statistics_median(self) -> None:
        """For even and odd counts the 0.5 quantile is statistics.median."""
        for values in ([5, 1, 9, 3], [5, 1, 9], [2.5, 2.5, 10, -1, 0, 7]):
            assert m.percentile(values, 0.5) == statistics.median(values)

    def test_accepts_any_iterable(self) -> None:
        """A generator works: values are read once."""
        assert m.percentile((x for x in (3, 1, 2)), 1.0) == 3

    @pytest.mark.parametrize("q", [-0.1, 1.5, math.nan])
    def test_rejects_a_bad_quantile(self, q: float) -> None:
        """q outside [0, 1] is refused, naming q."""
        with pytest.raises(ValidationError) as info:
            m.percentile([1, 2], q)
        assert info.value.field == "q"

    def test_rejects_no_values(self) -> None:
        """There is no percentile of nothing."""
        with pytest.raises(ValidationError, match="at least one"):
            m.percentile([], 0.5)


class TestSummarize:
    def test_one_summary_of_everything(self) -> None:
        """by=None: one summary with exact count, mean, median, p90, min, max and total."""
        incidents = [resolved_after(minutes, n) for n, minutes in enumerate([10, 20, 30, 100])]
        [summary] = m.summarize(incidents)
        assert (summary.severity, summary.period, summary.period_start) == (None, None, None)
        assert summary.count == 4
        assert summary.time_to_resolve == m.Stats(
            count=4,
            total=160 * MIN,
            minimum=10 * MIN,
            mean=40 * MIN,
            median=25 * MIN,
            p90=79 * MIN,  # 30 + 0.7 * (100 - 30)
            maximum=100 * MIN,
        )
        assert summary.mttr == 40 * MIN

    def test_mtta_is_the_mean_time_to_acknowledge(self) -> None:
        """MTTA averages only the acknowledged incidents."""
        incidents = [
            incident(0, acknowledged_at=T0 + 2 * MIN),
            incident(1, acknowledged_at=T0 + 6 * MIN),
            incident(2),
        ]
        [summary] = m.summarize(incidents)
        assert summary.count == 3
        assert summary.time_to_acknowledge.count == 2
        assert summary.mtta == 4 * MIN
        assert summary.mttr is None

    def test_a_duration_nobody_has_is_empty(self) -> None:
        """Stats of a duration no incident reached: count 0, total 0, the rest None."""
        [summary] = m.summarize([incident()])
        assert summary.time_to_fix == m.Stats(0, timedelta(0), None, None, None, None, None)

    def test_no_incidents(self) -> None:
        """Ungrouped, nothing still gives one empty summary; grouped, no summaries."""
        [summary] = m.summarize([])
        assert summary.count == 0
        assert summary.counts == {}
        assert summary.mttr is None
        assert m.summarize([], by="severity") == []
        assert m.summarize([], by="period") == []

    def test_counts_per_severity_and_state(self) -> None:
        """counts holds each (severity, state) pair that occurs, P1 first, in lifecycle order."""
        incidents = [
            incident(0, severity=Severity.P2, state=State.RESOLVED),
            incident(1, severity=Severity.P1, state=State.TRIAGING),
            incident(2, severity=Severity.P1, state=State.DECLARED),
            incident(3, severity=Severity.P1, state=State.TRIAGING),
        ]
        [summary] = m.summarize(incidents)
        assert list(summary.counts.items()) == [
            ((Severity.P1, State.DECLARED), 1),
            ((Severity.P1, State.TRIAGING), 2),
            ((Severity.P2, State.RESOLVED), 1),
        ]
        with pytest.raises(TypeError):
            summary.counts[(Severity.P4, State.DECLARED)] = 1  # type: ignore[index]

    def test_stats_mapping(self) -> None:
        """stats() names every duration in METRICS order."""
        [summary] = m.summarize([FULL])
        stats = summary.stats()
        assert list(stats) == list(m.METRICS)
        assert stats["time_to_contain"].median == 25 * MIN

    def test_grouped_by_severity(self) -> None:
        """One summary per severity present, P1 to P4, each over its own incidents."""
        incidents = [
            resolved_after(60, 0, severity=Severity.P3),
            resolved_after(10, 1, severity=Severity.P1),
            resolved_after(30, 2, severity=Severity.P1),
            resolved_after(200, 3, severity=Severity.P3),
            resolved_after(90, 4, severity=Severity.P3),
        ]
        summaries = m.summarize(incidents, by="severity")
        assert [s.severity for s in summaries] == [Severity.P1, Severity.P3]
        p1, p3 = summaries
        assert (p1.count, p1.mttr, p1.time_to_resolve.median) == (2, 20 * MIN, 20 * MIN)
        assert (p3.count, p3.time_to_resolve.median, p3.time_to_resolve.p90) == (
            3,
            90 * MIN,
            178 * MIN,  # 90 + 0.8 * (200 - 90)
        )
        assert all(s.period is None for s in summaries)

    def test_grouped_by_iso_week_across_the_new_year(self) -> None:
        """Weeks are ISO weeks: 2026-12-31 and 2027-01-03 are both in 2026-W53."""
        days = [
            datetime(2026, 12, 27, 23, 59, tzinfo=UTC),  # Sunday of W52
            datetime(2026, 12, 28, 0, 0, tzinfo=UTC),  # Monday of W53
            datetime(2026, 12, 31, 12, 0, tzinfo=UTC),
            datetime(2027, 1, 3, 23, 59, tzinfo=UTC),
            datetime(2027, 1, 4, 0, 0, tzinfo=UTC),  # Monday of 2027-W01
        ]
        incidents = [incident(n, declared_at=at) for n, at in enumerate(days)]
        summaries = m.summarize(reversed(incidents), by="period", period="week")
        assert [(s.period, s.period_start, s.count) for s in summaries] == [
            ("2026-W52", date(2026, 12, 21), 1),
            ("2026-W53", date(2026, 12, 28), 3),
            ("2027-W01", date(2027, 1, 4), 1),
        ]
        assert all(s.severity is None for s in summaries)

    def test_week_is_the_default_period(self) -> None:
        """by="period" without period= groups by ISO week."""
        [summary] = m.summarize([incident()], by="period")
        assert summary.period == "2026-W48"

    def test_grouped_by_month_and_day(self) -> None:
        """Months are labelled YYYY-MM and days YYYY-MM-DD, oldest first."""
        days = [
            datetime(2026, 2, 1, tzinfo=UTC),
            datetime(2026, 1, 31, 23, 0, tzinfo=UTC),
            datetime(2026, 1, 1, tzinfo=UTC),
        ]
        incidents = [incident(n, declared_at=at) for n, at in enumerate(days)]
        months = m.summarize(incidents, by="period", period="month")
        assert [(s.period, s.period_start, s.count) for s in months] == [
            ("2026-01", date(2026, 1, 1), 2),
            ("2026-02", date(2026, 2, 1), 1),
        ]
        by_day = m.summarize(incidents, by="period", period="day")
        assert [s.period for s in by_day] == ["2026-01-01", "2026-01-31", "2026-02-01"]

    def test_periods_are_taken_in_utc(self) -> None:
        """An incident declared at 01:00 on March 1st in UTC+02:00 belongs to February."""
        local = datetime(2026, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
        [summary] = m.summarize([incident(declared_at=local)], by="period", period="month")
        assert summary.period == "2026-02"

    def test_naive_declaration_is_refused(self) -> None:
        """A naive declared_at cannot be placed in a UTC period."""
        naive = incident(declared_at=datetime(2026, 3, 1, 1, 0))
        with pytest.raises(ValidationError, match="naive"):
            m.summarize([naive], by="period")

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [({"by": "commander"}, "by"), ({"by": "period", "period": "year"}, "period")],
    )
    def test_bad_grouping_is_refused(self, kwargs: dict[str, Any], field: str) -> None:
        """An unknown grouping or period raises ValidationError naming it."""
        with pytest.raises(ValidationError) as info:
            m.summarize([], **kwargs)
        assert info.value.field == field

    @pytest.mark.parametrize("by", [None, "severity", "period"])
    def test_streams_without_keeping_the_snapshots(self, by: Any) -> None:
        """A one-shot generator is read once and no snapshot outlives its turn."""
        refs: list[weakref.ref[Incident]] = []

        def snapshots() -> Iterator[Incident]:
            for n in range(50):
                inc = resolved_after(n, n, declared_at=T0 + n * timedelta(days=3))
                refs.append(weakref.ref(inc))
                yield inc

        summaries = m.summarize(snapshots(), by=by)
        gc.collect()
        assert len(refs) == 50
        assert all(ref() is None for ref in refs)
        assert sum(s.count for s in summaries) == 50

    def test_summaries_compare_and_hash(self) -> None:
        """Summaries are frozen values: equal when built from the same incidents."""
        assert m.summarize([FULL]) == m.summarize([FULL])
        assert len({*m.summarize([FULL]), *m.summarize([FULL])}) == 1
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            m.summarize([FULL])[0].count = 3  # type: ignore[misc]


durations = st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=40)


class TestProperties:
    @given(durations)
    def test_summary_bounds(self, seconds: list[int]) -> None:
        """Whatever the durations: min ≤ median ≤ p90 ≤ max, and count is the input's length."""
        incidents = [
            incident(n, state=State.RESOLVED, resolved_at=T0 + timedelta(seconds=s))
            for n, s in enumerate(seconds)
        ]
        [summary] = m.summarize(iter(incidents))
        stats = summary.time_to_resolve
        assert summary.count == stats.count == len(seconds)
        assert stats.minimum is not None
        assert stats.maximum is not None
        assert stats.median is not None
        assert stats.p90 is not None
        assert stats.mean is not None
        assert stats.minimum == timedelta(seconds=min(seconds))
        assert stats.maximum == timedelta(seconds=max(seconds))
        assert stats.minimum <= stats.median <= stats.p90 <= stats.maximum
        assert stats.minimum <= stats.mean <= stats.maximum
        assert abs(stats.median.total_seconds() - statistics.median(seconds)) < 1e-6

    @given(st.lists(st.floats(-1e9, 1e9), min_size=1, max_size=30), st.floats(0, 1))
    def test_percentile_is_within_the_values_and_monotone(
        self, values: list[float], q: float
    ) -> None:
        """A percentile lies between min and max and never falls as q grows."""
        p = m.percentile(values, q)
        assert min(values) - 1e-6 <= p <= max(values) + 1e-6
        assert m.percentile(values, min(1.0, q + 0.1)) >= p - 1e-6


# -- Prometheus ------------------------------------------------------------------------

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_COMMENT = re.compile(r"# (HELP|TYPE) (\S+) (.*)\Z")


def parse_labels(text: str) -> dict[str, str]:
    """``a="x",b="y\\"z"`` as a dict, undoing the exposition format's escapes."""
    labels: dict[str, str] = {}
    i = 0
    while i < len(text):
        eq = text.index("=", i)
        name = text[i:eq]
        assert _LABEL_NAME.match(name), name
        assert text[eq + 1] == '"'
        j, value = eq + 2, []
        while text[j] != '"':
            if text[j] == "\\":
                escaped = text[j + 1]
                assert escaped in '\\"n', f"bad escape \\{escaped}"
                value.append("\n" if escaped == "n" else escaped)
                j += 2
            else:
                assert text[j] != "\n"
                value.append(text[j])
                j += 1
        assert name not in labels, f"label {name} twice"
        labels[name] = "".join(value)
        i = j + 1
        if i < len(text):
            assert text[i] == ",", text[i:]
            i += 1
    return labels


def parse_exposition(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Check the text exposition format line by line; return the samples.

    HELP and TYPE come once per family, before its samples, and a family's samples
    are contiguous.
    """
    assert text.endswith("\n")
    helps: dict[str, str] = {}
    types: dict[str, str] = {}
    samples: list[tuple[str, dict[str, str], float]] = []
    finished: set[str] = set()
    current: str | None = None
    for line in text[:-1].split("\n"):
        assert line, "blank line"
        if line.startswith("#"):
            match = _COMMENT.match(line)
            assert match, line
            kind, name, rest = match.groups()
            assert _METRIC_NAME.match(name)
            if kind == "HELP":
                assert name not in helps
                assert name not in finished
                helps[name] = rest
            else:
                assert name in helps, "TYPE after HELP"
                assert name not in types, "TYPE once"
                assert rest in ("counter", "gauge", "summary", "histogram", "untyped")
                types[name] = rest
            if current is not None and current != name:
                finished.add(current)
            current = name
            continue
        match = re.fullmatch(r"([^{ ]+)(?:\{(.*)\})? (\S+)", line)
        assert match, line
        name, labels, value = match.groups()
        assert _METRIC_NAME.match(name), name
        family = re.sub(r"_(sum|count)\Z", "", name) if name not in types else name
        assert family == current, f"{name} outside its family's block"
        assert family in types, f"{name} has no TYPE before it"
        if types[family] == "summary" and name == family:
            assert "quantile" in parse_labels(labels or "")
        samples.append((name, parse_labels(labels or ""), float(value)))
    return samples


def sample(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The value of the one sample with that name and exactly those labels."""
    found = [v for n, ls, v in samples if n == name and ls == labels]
    assert len(found) == 1, (name, labels, found)
    return found[0]


class TestPrometheus:
    def test_parses_back_with_exact_values(self) -> None:
        """Every line is valid; the values are the summaries' figures in seconds."""
        incidents = [
            resolved_after(10, 0, severity=Severity.P1, acknowledged_at=T0 + 2 * MIN),
            resolved_after(30, 1, severity=Severity.P1, acknowledged_at=T0 + 4 * MIN),
            incident(2, severity=Severity.P2, state=State.TRIAGING, acknowledged_at=T0 + MIN),
        ]
        text = m.to_prometheus(m.summarize(incidents, by="severity"))
        samples = parse_exposition(text)
        name = "incidentflow_time_to_resolve_seconds"
        assert sample(samples, name, severity="P1", quantile="0.5") == 1200
        assert sample(samples, name, severity="P1", quantile="0.9") == 1680
        assert sample(samples, f"{name}_sum", severity="P1") == 2400
        assert sample(samples, f"{name}_count", severity="P1") == 2
        assert math.isnan(sample(samples, name, severity="P2", quantile="0.5"))
        assert sample(samples, f"{name}_count", severity="P2") == 0
        assert sample(samples, "incidentflow_mtta_seconds", severity="P1") == 180
        assert sample(samples, "incidentflow_mttr_seconds", severity="P1") == 1200
        assert math.isnan(sample(samples, "incidentflow_mttr_seconds", severity="P2"))
        incidents_gauge = "incidentflow_incidents"
        assert sample(samples, incidents_gauge, severity="P1", state="resolved") == 2
        assert sample(samples, incidents_gauge, severity="P2", state="triaging") == 1

    def test_families_and_types(self) -> None:
        """Each duration is a summary in seconds; MTTA, MTTR and the incident counts are gauges."""
        text = m.to_prometheus(m.summarize([FULL]))
        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
        assert types == {
            "incidentflow_incidents": "gauge",
            **{f"incidentflow_{name}_seconds": "summary" for name in m.METRICS},
            "incidentflow_mtta_seconds": "gauge",
            "incidentflow_mttr_seconds": "gauge",
        }

    def test_ungrouped_samples_have_no_group_label(self) -> None:
        """by=None: quantile is the only label of a duration's samples."""
        samples = parse_exposition(m.to_prometheus(m.summarize([FULL])))
        assert sample(samples, "incidentflow_time_to_acknowledge_seconds", quantile="0.5") == 240
        assert sample(samples, "incidentflow_time_to_acknowledge_seconds_count") == 1
        assert sample(samples, "incidentflow_mtta_seconds") == 240
        assert sample(samples, "incidentflow_incidents", severity="P1", state="postmortem") == 1

    def test_the_whole_and_its_severities_together_repeat_no_series(self) -> None:
        """The overall summary and the by-severity ones count the same incidents: one series."""
        incidents = [resolved_after(10, 0), resolved_after(20, 1, severity=Severity.P2)]
        text = m.to_prometheus(m.summarize(incidents) + m.summarize(incidents, by="severity"))
        series = [line.rsplit(" ", 1)[0] for line in text.splitlines() if line[:1] != "#"]
        assert len(series) == len(set(series))
        samples = parse_exposition(text)
        assert sample(samples, "incidentflow_incidents", severity="P2", state="resolved") == 1

    def test_period_and_severity_groupings_together(self) -> None:
        """Summaries of two groupings share one exposition, told apart by their labels."""
        incidents = [resolved_after(10, 0), resolved_after(20, 1, severity=Severity.P2)]
        summaries = m.summarize(incidents, by="severity") + m.summarize(incidents, by="period")
        samples = parse_exposition(m.to_prometheus(summaries))
        name = "incidentflow_time_to_resolve_seconds_count"
        assert sample(samples, name, severity="P1") == 1
        assert sample(samples, name, period="2026-W48") == 2
        assert (
            sample(
                samples,
                "incidentflow_incidents",
                period="2026-W48",
                severity="P2",
                state="resolved",
            )
            == 1
        )

    def test_constant_label_values_are_escaped(self) -> None:
        """Quotes, backslashes and line breaks in label values are escaped and parse back."""
        nasty = 'checkout "eu"\\prod\nline two'
        text = m.to_prometheus(m.summarize([FULL]), labels={"service": nasty, "team": "sre"})
        assert '\\"eu\\"\\\\prod\\nline two' in text
        samples = parse_exposition(text)
        assert samples
        assert all(labels["service"] == nasty for _, labels, _ in samples)
        assert sample(samples, "incidentflow_mttr_seconds", service=nasty, team="sre") == 5400

    @pytest.mark.parametrize("name", ["1st", "has-dash", "__reserved", "", "quantile", "state"])
    def test_bad_label_names_are_refused(self, name: str) -> None:
        """Invalid or reserved label names raise ValidationError naming labels."""
        with pytest.raises(ValidationError) as info:
            m.to_prometheus(m.summarize([FULL]), labels={name: "x"})
        assert info.value.field == "labels"

    def test_duplicate_groups_are_refused(self) -> None:
        """Two summaries of the same group would make duplicate series."""
        twice = m.summarize([FULL]) + m.summarize([FULL])
        with pytest.raises(ValidationError, match="share the labels"):
            m.to_prometheus(twice)

    def test_no_summaries(self) -> None:
        """No summaries still give well-formed HELP and TYPE lines."""
        assert parse_exposition(m.to_prometheus([])) == []

    def test_fractional_seconds(self) -> None:
        """Sub-second durations keep their fraction."""
        inc = incident(acknowledged_at=T0 + timedelta(seconds=1.25))
        samples = parse_exposition(m.to_prometheus(m.summarize([inc])))
        assert sample(samples, "incidentflow_mtta_seconds") == 1.25


class TestPublicSurface:
    def test_all_is_sorted_and_complete(self) -> None:
        """__all__ is sorted like the package's and lists exactly the public names."""
        assert list(m.__all__) == sorted(set(m.__all__), key=isort_key)
        assert set(m.__all__) == public_names(m)

    def test_every_public_name_has_a_docstring(self) -> None:
        """Each class and function of __all__ is documented."""
        for name in m.__all__:
            value = getattr(m, name)
            if callable(value):
                assert (value.__doc__ or "").strip(), name

    def test_import_incidentflow_does_not_import_metrics(self) -> None:
        """incidentflow.metrics is loaded only when asked for."""
        script = "import sys, incidentflow; print('incidentflow.metrics' in sys.modules)"
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
        )
        assert result.stdout.strip() == "False"


class TestByType:
    def test_one_summary_per_type_by_name(self) -> None:
        """by="type" gives one summary per incident type that occurs, in name order."""
        incidents = [
            attrs.evolve(resolved_after(10, 0), type="security"),
            resolved_after(20, 1),
            attrs.evolve(resolved_after(30, 2), type="security"),
        ]
        summaries = m.summarize(incidents, by="type")
        assert [(s.type, s.count) for s in summaries] == [("availability", 1), ("security", 2)]
        assert summaries[1].mttr == 20 * MIN
        assert all(s.severity is None and s.period is None for s in summaries)

    def test_milestones_carry_the_type(self) -> None:
        """Milestones taken from a snapshot keep its type, and summarize groups them alike."""
        snapshot = attrs.evolve(resolved_after(10), type="data")
        found = m.milestones(snapshot)
        assert found.type == "data"
        [summary] = m.summarize([found], by="type")
        assert summary.type == "data"

    def test_prometheus_labels_the_type(self) -> None:
        """A type group's samples carry a type label; type is reserved for constant labels."""
        incidents = [attrs.evolve(resolved_after(10), type="security")]
        samples = parse_exposition(m.to_prometheus(m.summarize(incidents, by="type")))
        name = "incidentflow_time_to_resolve_seconds"
        assert sample(samples, f"{name}_count", type="security") == 1
        with pytest.raises(ValidationError):
            m.to_prometheus(m.summarize(incidents), labels={"type": "x"})

    def test_unknown_grouping_names_type(self) -> None:
        """A bad grouping's message lists type among the groupings."""
        with pytest.raises(ValidationError, match="'type'"):
            m.summarize([], by="team")  # type: ignore[arg-type]
