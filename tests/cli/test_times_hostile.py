"""Times at the edges: changes of the clocks, the ends of the calendar, bad zones and dates."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cli_terminal import Library, Terminal, declared, ok
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incidentflow.cli import EXIT_OK, EXIT_USAGE, _clock
from incidentflow.cli._clock import parse_time
from incidentflow.cli._output import when
from incidentflow.testing import FrozenClock

#: Changes of the clocks (UTC), each zone's in 2026 and 2027: spring forward, then fall back.
TRANSITIONS = {
    "Europe/Berlin": [
        datetime(2026, 3, 29, 1, tzinfo=UTC),
        datetime(2026, 10, 25, 1, tzinfo=UTC),
        datetime(2027, 3, 28, 1, tzinfo=UTC),
        datetime(2027, 10, 31, 1, tzinfo=UTC),
    ],
    "America/New_York": [
        datetime(2026, 3, 8, 7, tzinfo=UTC),
        datetime(2026, 11, 1, 6, tzinfo=UTC),
        datetime(2027, 3, 14, 7, tzinfo=UTC),
        datetime(2027, 11, 7, 6, tzinfo=UTC),
    ],
}
ZONES = sorted(TRANSITIONS)
#: Five minutes after each zone's spring-forward and fall-back change of 2026.
JUST_AFTER = [
    pytest.param(name, moment + timedelta(minutes=5), id=f"{name}-{moment:%b}")
    for name in ZONES
    for moment in TRANSITIONS[name][:2]
]
#: Any hour, the hours the clocks skip or repeat (01:xx, 02:xx) more often than the rest.
CLOCK_HOURS = st.one_of(st.sampled_from([1, 2]), st.integers(0, 23))
NEAR_A_CHANGE = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def near_a_change(name: str) -> st.SearchStrategy[datetime]:
    """Instants within four hours of one of ``name``'s changes of the clocks."""
    return st.builds(
        lambda change, seconds, micros: change + timedelta(seconds=seconds, microseconds=micros),
        st.sampled_from(TRANSITIONS[name]),
        st.integers(-4 * 3600, 4 * 3600),
        st.integers(0, 999_999),
    )


@pytest.fixture(autouse=True)
def _fresh_zone_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """No configured zone and no bad ``TZ`` warned about yet, whatever ran before."""
    monkeypatch.setattr(_clock, "_configured", None)
    monkeypatch.setattr(_clock, "_warned", set())


class TestElapsedSpans:
    """``now-10m``, ``-90m``, ``now-1h``: exact elapsed time, even across a change of the clocks."""

    @pytest.mark.parametrize(("name", "at"), JUST_AFTER)
    @pytest.mark.parametrize(
        ("typed", "span"),
        [
            ("now-10m", timedelta(minutes=-10)),
            ("now-10min", timedelta(minutes=-10)),
            ("-90m", timedelta(minutes=-90)),
            ("now-1h", timedelta(hours=-1)),
            ("now-2h+30s", timedelta(hours=-2, seconds=30)),
        ],
    )
    def test_just_after_a_change(
        self,
        typed: str,
        span: timedelta,
        name: str,
        at: datetime,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Five minutes after the clocks change, ``now-10m`` is ten minutes ago, not 50 ahead."""
        change, zone = at - timedelta(minutes=5), ZoneInfo(name)
        around = (change - timedelta(seconds=1), change)
        assert len({m.astimezone(zone).utcoffset() for m in around}) == 2, "no change there"
        monkeypatch.setenv("TZ", name)
        assert parse_time(typed, at=at) == at + span

    @NEAR_A_CHANGE
    @pytest.mark.parametrize("name", ZONES)
    @given(data=st.data(), minutes=st.integers(0, 48 * 60))
    def test_now_minus_n_minutes_is_n_minutes_before(
        self, name: str, data: st.DataObject, minutes: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Near any change of the clocks, ``now-Nm`` is N minutes before now, ``+Nm`` after."""
        monkeypatch.setenv("TZ", name)
        at = data.draw(near_a_change(name))
        assert parse_time(f"now-{minutes}m", at=at) == at - timedelta(minutes=minutes)
        assert parse_time(f"-{minutes}min", at=at) == at - timedelta(minutes=minutes)
        assert parse_time(f"+{minutes}m", at=at) == at + timedelta(minutes=minutes)
        assert parse_time(f"now-{minutes}s", at=at) == at - timedelta(seconds=minutes)

    @NEAR_A_CHANGE
    @pytest.mark.parametrize("name", ZONES)
    @given(data=st.data(), hours=st.integers(0, 72))
    def test_now_minus_n_hours_is_n_hours_before(
        self, name: str, data: st.DataObject, hours: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Near any change of the clocks, ``now-Nh`` is N hours before now."""
        monkeypatch.setenv("TZ", name)
        at = data.draw(near_a_change(name))
        assert parse_time(f"now-{hours}h", at=at) == at - timedelta(hours=hours)

    def test_since_now_minus_10m_in_the_hour_after_a_change(
        self, term: Terminal, library: Library, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``list --since now-10m`` just after the clocks go forward lists what came 7m ago."""
        monkeypatch.setenv("TZ", "Europe/Berlin")
        at = datetime(2026, 3, 29, 1, 5, tzinfo=UTC)  # 03:05 CEST, five minutes after 02:00 CET
        clock = FrozenClock(at - timedelta(minutes=7))
        with library.flow(clock) as flow:
            wanted = flow.declare("Payments down", severity="P2", commander="a", actor="a").id
        monkeypatch.setattr(_clock, "now", lambda: at)
        listed = ok(term("--json", "list", "--since", "now-10m")).json()
        assert [row["id"] for row in listed] == [wanted]


class TestWallClockForms:
    """``yesterday 23:15``, ``tomorrow``, ``+1d``: the calendar and clock of the display zone."""

    def test_days_keep_the_wall_clock_while_spans_are_elapsed(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The day before the clocks go forward: ``+1d`` is noon again (23h), ``+24h`` is 13:00."""
        monkeypatch.setenv("TZ", "Europe/Berlin")
        at = datetime(2026, 3, 28, 11, tzinfo=UTC)  # noon CET
        berlin = ZoneInfo("Europe/Berlin")
        assert parse_time("+1d", at=at).astimezone(berlin).time() == time(12)
        assert parse_time("+24h", at=at).astimezone(berlin).time() == time(13)
        assert parse_time("tomorrow", at=at) == datetime(2026, 3, 28, 23, tzinfo=UTC)
        assert parse_time("tomorrow 23:15", at=at) == datetime(2026, 3, 29, 21, 15, tzinfo=UTC)
        assert parse_time("now-10m", at=at) == at - timedelta(minutes=10)

    @NEAR_A_CHANGE
    @pytest.mark.parametrize("name", ZONES)
    @given(data=st.data(), hour=CLOCK_HOURS, minute=st.integers(0, 59))
    def test_a_clock_time_today(
        self,
        name: str,
        data: st.DataObject,
        hour: int,
        minute: int,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """``HH:MM`` shows as HH:MM that day; refused where the clocks skip or repeat it."""
        monkeypatch.setenv("TZ", name)
        zone = ZoneInfo(name)
        at = data.draw(near_a_change(name))
        typed = f"{hour:02d}:{minute:02d}"
        wall = datetime.combine(at.astimezone(zone).date(), time(hour, minute))
        first, second = (wall.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1))
        if first != second:  # skipped or repeated: no one moment is meant
            with pytest.raises(ValueError, match="the clocks"):
                parse_time(typed, at=at)
            return
        found = parse_time(typed, at=at).astimezone(zone)
        assert found.date() == wall.date()
        assert (found.hour, found.minute) == (hour, minute)

    def test_a_skipped_clock_time_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """02:30 on the day Berlin's clocks skip it is refused, naming an offset that reads."""
        monkeypatch.setenv("TZ", "Europe/Berlin")
        at = datetime(2026, 3, 29, 9, tzinfo=UTC)
        with pytest.raises(ValueError, match=r"does not exist .*Europe/Berlin.*02:30\+01:00"):
            parse_time("02:30", at=at)
        assert parse_time("02:30+01:00", at=at) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)

    def test_a_repeated_clock_time_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """02:30 on the day Berlin's clocks go back happens twice: both offsets are named."""
        monkeypatch.setenv("TZ", "Europe/Berlin")
        at = datetime(2026, 10, 25, 9, tzinfo=UTC)
        with pytest.raises(ValueError, match=r"happens twice.*02:30\+02:00.*02:30\+01:00"):
            parse_time("02:30", at=at)


class TestFarAway:
    """Times beyond the calendar's ends are usage errors naming the option, never tracebacks."""

    @pytest.mark.parametrize(
        ("argv", "option"),
        [
            (["contain", "{id}", "pulled the flag", "--at", "+999999w"], "--at"),
            (["action", "add", "{id}", "Alert", "--owner", "bob", "--due", "+999999w"], "--due"),
            (["list", "--since", "now-999999w"], "--since"),
            (["metrics", "--since", "-999999w"], "--since"),
            (["check-deadlines", "--now", "+999999w"], "--now"),
        ],
    )
    def test_refused_as_usage_errors(
        self, term: Terminal, library: Library, argv: list[str], option: str
    ) -> None:
        """Exit 2, one line naming the option, and one JSON error object with ``--json``."""
        incident_id = library.drive("triaging", "P3").id
        outcome = term("--json", *[word.replace("{id}", incident_id) for word in argv])
        assert outcome.code == EXIT_USAGE, outcome.err
        assert "Traceback" not in outcome.err
        [line] = outcome.err_lines
        assert option in line
        assert "out of range" in line
        error = outcome.json()
        assert error["error"] == "UsageError"
        assert option in error["message"]


class TestShowingAnyTime:
    """A stored time is always shown: the ends of the calendar do not break a listing."""

    @pytest.mark.parametrize(
        ("moment", "zone", "shown"),
        [
            (datetime.max.replace(tzinfo=UTC), "Asia/Tokyo", "9999-12-31 23:59+00:00"),
            (datetime.min.replace(tzinfo=UTC), "America/New_York", "0001-01-01 00:00+00:00"),
            (datetime.min.replace(tzinfo=UTC), "Asia/Tokyo", "0001-01-01 09:18"),
        ],
    )
    def test_when_at_the_ends_of_the_calendar(
        self, moment: datetime, zone: str, shown: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past the zone's calendar, the time is shown as stored, with its offset."""
        monkeypatch.setenv("TZ", zone)
        assert when(moment) == shown

    @pytest.mark.parametrize("zone", ["Europe/Berlin", "Pacific/Kiritimati"])
    def test_deadlines_with_a_due_date_of_9999_12_31(
        self, term: Terminal, library: Library, zone: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The library takes the due date; ``deadlines`` east of UTC still lists it."""
        incident_id = library.drive("triaging", "P3").id
        ok(term("action", "add", incident_id, "Alert", "--owner", "bob", "--due", "9999-12-31"))
        monkeypatch.setenv("TZ", zone)
        lines = ok(term("deadlines", incident_id)).out.splitlines()
        assert any("9999-12-31 23:59+00:00" in line for line in lines), lines


class TestUnknownZone:
    """A ``TZ`` naming no zone is said once; times are shown in UTC, headed so."""

    @pytest.mark.parametrize("given", ["Nowhere/Bogus", "Europe/Berlin\n"])
    def test_warned_once_and_shown_in_utc(
        self, term: Terminal, given: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """One warning naming ``TZ``, however many times are shown; the heading says UTC."""
        incident_id = declared(term)
        ok(term("note", incident_id, "first"))
        monkeypatch.setenv("TZ", given)
        outcome = term("timeline", incident_id)
        assert outcome.code == EXIT_OK
        assert outcome.out.splitlines()[0].split()[:3] == ["SEQ", "TIME", "(UTC)"]
        [warning] = outcome.err_lines
        assert warning.startswith("incidentflow: warning: TZ=")
        assert repr(given) in warning
        assert "not a known time zone" in warning

    def test_the_configured_zone_stands_in(
        self, term: Terminal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With ``display_timezone`` configured, a bad ``TZ`` gives way to it, and says so."""
        incident_id = declared(term)
        Path("incidentflow.toml").write_text('display_timezone = "Asia/Tokyo"\n', encoding="utf-8")
        monkeypatch.setenv("TZ", "Nowhere/Bogus")
        outcome = term("timeline", incident_id)
        assert "TIME (JST)" in outcome.out.splitlines()[0]
        assert "Asia/Tokyo" in outcome.err


class TestDateMessages:
    """A date that is not one, or a form the parser knows, gets a message that says so."""

    @pytest.mark.parametrize(
        ("argv", "why"),
        [
            (["list", "--since", "2026-02-29"], "February 2026 has 28 days"),
            (["list", "--since", "2026-13-01"], "there is no month 13"),
            (
                ["action", "add", "{id}", "Alert", "--owner", "b", "--due", "2026-02-29"],
                "February 2026 has 28 days",
            ),
        ],
    )
    def test_a_day_not_in_the_calendar(
        self, term: Terminal, library: Library, argv: list[str], why: str
    ) -> None:
        """The value, why it is no date, and the forms to write instead."""
        incident_id = library.drive("triaging", "P3").id
        outcome = term(*[word.replace("{id}", incident_id) for word in argv])
        assert outcome.code == EXIT_USAGE
        [line] = outcome.err_lines
        assert f"'{argv[-1]}' is not a date: {why}" in line
        assert "2026-12-04" in line or "now-10m" in line

    @pytest.mark.parametrize("typed", ["2026-W48-5", "20261127"])
    def test_iso_week_and_compact_dates_are_days(
        self, typed: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An ISO week date or a compact date is a bare date: its first moment in the zone."""
        monkeypatch.setenv("TZ", "Europe/Berlin")
        assert parse_time(typed) == datetime(2026, 11, 26, 23, tzinfo=UTC)
