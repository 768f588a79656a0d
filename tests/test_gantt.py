"""The incident's phases as a Mermaid gantt chart: structure, reopens, sanitised names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from helpers import COMMANDER, START, USER, advance_to, declare, drive_to
from incidentflow import IncidentFlow, State, ValidationError
from incidentflow.render.gantt import incident_gantt
from incidentflow.testing import FrozenClock

Task = tuple[str, str, tuple[str, ...], datetime, datetime]

_TAGS = {"active", "done", "crit", "milestone"}
# Words the Mermaid gantt lexer reads as statements when a line starts with them.
_KEYWORD = re.compile(
    r"(gantt|dateFormat\s|inclusiveEndDates|topAxis|axisFormat\s|tickInterval\s|includes\s"
    r"|excludes\s|todayMarker\s|weekday\s|title\s|accDescription\s|section\s|click\s|href"
    r"|call\s|accTitle\s*:|accDescr\s*[:{]|\d{4}-\d\d-\d\d|%%)",
    re.IGNORECASE,
)


@attrs.frozen
class Gantt:
    """A parsed chart: its header statements and its tasks, in order."""

    title: str
    date_format: str
    axis_format: str
    sections: list[str]
    tasks: list[Task]

    def names(self, section: str | None = None) -> list[str]:
        """The task names, of one section or of all."""
        return [t[1] for t in self.tasks if section is None or t[0] == section]

    def task(self, name: str) -> Task:
        """The one task with that name."""
        [found] = [t for t in self.tasks if t[1] == name]
        return found


def parse_gantt(text: str) -> Gantt:
    """Read the chart the way Mermaid's gantt lexer does, failing on anything it would misread.

    A task line is a name without ``# : ; newline`` that no statement keyword
    starts, then ``:`` and data without ``# ;``: tags, a start and an end in the
    chart's date format.
    """
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    assert lines[0] == "gantt"
    header: dict[str, str] = {}
    sections: list[str] = []
    tasks: list[Task] = []
    for raw in lines[1:]:
        assert raw.startswith("    "), raw
        line = raw.strip()
        keyword = line.split(" ", 1)[0]
        if keyword in ("title", "dateFormat", "axisFormat", "todayMarker"):
            value = line.split(" ", 1)[1]
            assert re.fullmatch(r"[^#\n;]+", value), line
            assert keyword not in header
            header[keyword] = value
            continue
        if keyword == "section":
            name = line.split(" ", 1)[1]
            assert re.fullmatch(r"[^#:\n;]+", name), line
            assert name not in sections
            sections.append(name)
            continue
        match = re.fullmatch(r"([^#:\n;]+):([^#\n;]+)", line)
        assert match, f"not a task line: {line!r}"
        name, data = match[1].strip(), match[2]
        assert not _KEYWORD.match(name), f"task name read as a statement: {name!r}"
        assert "%%" not in name
        assert sections, "a task before any section"
        fields = [f.strip() for f in data.split(",")]
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", f) for f in fields[-2:]), data
        tags = tuple(f for f in fields if f in _TAGS)
        assert fields[: len(tags)] == list(tags), "tags come first"
        assert len(fields) == len(tags) + 2, f"not tags, start and end: {data!r}"
        start, end = (
            datetime.strptime(f, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            for f in fields[len(tags) :]
        )
        assert start <= end
        if "milestone" in tags:
            assert start == end
        tasks.append((sections[-1], name, tags, start, end))
    assert header["dateFormat"] == "YYYY-MM-DD HH:mm:ss"
    assert header["todayMarker"] == "off"
    return Gantt(header["title"], header["dateFormat"], header["axisFormat"], sections, tasks)


def at(minutes: float) -> datetime:
    """START plus some minutes."""
    return START + timedelta(minutes=minutes)


SECTIONS = ["Detection", "Response", "Triage", "Root cause analysis", "Verification", "Post-mortem"]


class TestParser:
    @pytest.mark.parametrize(
        "line",
        [
            "    Fix: 500s :done, 2026-11-27 14:00:00, 2026-11-27 14:01:00",
            "    Ticket #12 :done, 2026-11-27 14:00:00, 2026-11-27 14:01:00",
            "    a; b :done, 2026-11-27 14:00:00, 2026-11-27 14:01:00",
            "    click here :done, 2026-11-27 14:00:00, 2026-11-27 14:01:00",
        ],
    )
    def test_the_test_parser_rejects_what_mermaid_misreads(self, line: str) -> None:
        """The checker used below catches the task names that break a real chart."""
        chart = "gantt\n    dateFormat YYYY-MM-DD HH:mm:ss\n    todayMarker off\n"
        chart += f"    section S\n{line}\n"
        with pytest.raises(AssertionError):
            parse_gantt(chart)


class TestFullIncident:
    def test_every_phase_of_a_p1(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """A P1 from declaration to KB entry: a bar per phase, milestones where things happened."""
        inc = declare(flow)
        clock.advance(minutes=1)
        flow.record_detection(
            inc.id, method="alert", first_occurred_at=at(-20), detected_at=at(-8), actor="bob"
        )
        inc = advance_to(flow, clock, inc.id, State.KB_UPDATED)
        chart = parse_gantt(incident_gantt(inc, flow.history(inc.id)))

        assert chart.title == f"Checkout returns 500 ({inc.id})"
        assert chart.axis_format == "%H:%M"
        assert chart.sections == SECTIONS
        # Stages are a minute apart (the helpers' STEP); resolving waits the 15-minute window.
        assert chart.tasks == [
            ("Detection", "Until the first alert", ("done",), at(-20), at(-8)),
            ("Detection", "Until declared", ("done",), at(-8), at(0)),
            ("Response", "Acknowledge", ("done",), at(0), at(2)),
            ("Triage", "Triage", ("done",), at(2), at(3)),
            ("Triage", "Mitigation (rolled back to release 40)", ("milestone",), at(3), at(3)),
            ("Root cause analysis", "Root cause analysis", ("done",), at(3), at(5)),
            ("Root cause analysis", "Root cause identified", ("milestone",), at(5), at(5)),
            ("Root cause analysis", "Fix deployed (v42)", ("milestone",), at(5), at(5)),
            ("Verification", "Verify the fix", ("done",), at(5), at(21)),
            ("Verification", f"User {USER} confirmed the fix", ("milestone",), at(21), at(21)),
            ("Post-mortem", "Post-mortem", ("done",), at(21), at(22)),
            ("Post-mortem", "Knowledge base entry", ("done",), at(22), at(23)),
            ("Post-mortem", "Knowledge base updated", ("milestone",), at(23), at(23)),
        ]

    def test_a_multi_day_incident_shows_dates(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Across midnight the axis shows the date as well as the time."""
        inc = advance_to(flow, clock, declare(flow).id, State.RCA)
        clock.advance(days=2)
        inc = advance_to(flow, clock, inc.id, State.RESOLVED)
        chart = parse_gantt(incident_gantt(inc, flow.history(inc.id)))
        assert chart.axis_format == "%m-%d %H:%M"
        _, _, tags, start, end = chart.task("Root cause analysis")
        assert tags == ("done",)
        assert end - start == timedelta(days=2, minutes=2)
        assert end.date() == START.date() + timedelta(days=2)

    def test_p3_without_postmortem(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Resolved straight to the KB: the last bar is the KB entry; no post-mortem bar."""
        inc = drive_to(flow, clock, State.KB_UPDATED, "P3")
        chart = parse_gantt(incident_gantt(inc, flow.history(inc.id)))
        assert chart.names("Post-mortem") == ["Knowledge base entry", "Knowledge base updated"]
        assert "Detection" not in chart.sections


class TestOpenIncidents:
    def test_the_current_phase_is_active(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """An incident in rca: its last bar is active and ends at the last event by default."""
        inc = drive_to(flow, clock, State.RCA)
        clock.advance(minutes=30)
        chart = parse_gantt(incident_gantt(inc, flow.history(inc.id)))
        assert chart.tasks[-1] == (
            "Root cause analysis",
            "Root cause analysis",
            ("active",),
            inc.contained_at,
            inc.updated_at,
        )
        assert [t[2] for t in chart.tasks].count(("active",)) == 1

    def test_now_extends_the_active_bar(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """now= makes the phase under way reach the present."""
        inc = drive_to(flow, clock, State.TRIAGING)
        clock.advance(hours=3)
        chart = parse_gantt(incident_gantt(inc, flow.history(inc.id), now=flow.now()))
        assert chart.task("Triage")[2:] == (("active",), inc.acknowledged_at, flow.now())

    def test_just_declared(self, flow: IncidentFlow) -> None:
        """A fresh incident is a single active, zero-length Response bar."""
        inc = declare(flow)
        chart = parse_gantt(incident_gantt(inc, flow.history(inc.id)))
        assert chart.tasks == [("Response", "Acknowledge", ("active",), START, START)]

    def test_dismissed(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """A dismissal ends the phase it interrupted, with a milestone saying why."""
        inc = drive_to(flow, clock, State.TRIAGING)
        clock.advance(minutes=5)
        inc = flow.dismiss(inc.id, reason="duplicate: see INC-41", actor=COMMANDER)
        chart = parse_gantt(incident_gantt(inc, flow.history(inc.id)))
        assert chart.names("Triage") == ["Triage", "Dismissed (duplicate： see INC-41)"]
        assert all("active" not in t[2] for t in chart.tasks)


class TestReopens:
    def test_reopened_to_triage(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """The interrupted phase is crit, the reopen a crit milestone, later phases extra bars."""
        inc = drive_to(flow, clock, State.FIXED)
        reopened_at = clock.advance(minutes=10)
        flow.reopen(inc.id, reason="errors are back", to="triaging", actor=COMMANDER)
        inc = advance_to(flow, clock, inc.id, State.RESOLVED)
        chart = parse_gantt(incident_gantt(inc, flow.history(inc.id)))

        assert chart.names("Triage") == [
            "Triage",
            "Mitigation (rolled back to release 40)",
            "Reopened (errors are back)",
            "Triage (after reopen 1)",
        ]
        assert chart.task("Reopened (errors are back)")[2] == ("crit", "milestone")
        verify = [t for t in chart.tasks if t[1].startswith("Verify the fix")]
        assert [(t[1], t[2]) for t in verify] == [
            ("Verify the fix", ("crit",)),
            ("Verify the fix (after reopen 1)", ("done",)),
        ]
        assert verify[0][4] == reopened_at
        assert chart.task("Triage (after reopen 1)")[3] == reopened_at
        assert "Root cause analysis (after reopen 1)" in chart.names("Root cause analysis")
        assert chart.names("Post-mortem") == ["Post-mortem"]
        assert chart.task("Post-mortem")[2] == ("active",)

    def test_a_user_says_it_still_fails(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """A negative confirmation reopens to rca: a crit user milestone and a second RCA bar."""
        inc = drive_to(flow, clock, State.FIXED)
        clock.advance(minutes=5)
        flow.confirm_by_user(inc.id, user=USER, positive=False, actor=COMMANDER)
        inc = advance_to(flow, clock, inc.id, State.RESOLVED)
        chart = parse_gantt(incident_gantt(inc, flow.history(inc.id)))
        assert chart.task(f"User {USER} says it still fails")[2] == ("crit", "milestone")
        rca = chart.names("Root cause analysis")
        assert f"Reopened (user {USER} reported the problem persists)" in rca
        assert "Root cause analysis (after reopen 1)" in rca
        assert "Triage (after reopen 1)" not in chart.names()

    def test_reopened_after_resolution(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Reopened twice after resolving: the resolved time is crit, later bars numbered."""
        inc = drive_to(flow, clock, State.RESOLVED, "P3")
        for _ in range(2):
            clock.advance(hours=1)
            flow.reopen(inc.id, reason="it came back", actor=COMMANDER)
            inc = advance_to(flow, clock, inc.id, State.RESOLVED)
        chart = parse_gantt(incident_gantt(inc, flow.history(inc.id)))
        resolved = [t for t in chart.tasks if t[1].startswith("Resolved until reopened")]
        assert [(t[1], t[2]) for t in resolved] == [
            ("Resolved until reopened", ("crit",)),
            ("Resolved until reopened (after reopen 1)", ("crit",)),
        ]
        assert [n for n in chart.names() if n.startswith("Verify")] == [
            "Verify the fix",
            "Verify the fix (after reopen 1)",
            "Verify the fix (after reopen 2)",
        ]
        # A P3 needs no post-mortem: what is left after resolving is the KB entry.
        assert chart.task("Knowledge base entry")[2] == ("active",)


class TestSanitising:
    def test_user_text_cannot_break_the_chart(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """':' '#' ';' '%%' backticks and line breaks in user text become harmless look-alikes."""
        texts = {
            "title": "DB down; see #ops: 100% `errors` %%{init}%%",
            "containment": "failover: step 1; step 2\n# not a heading\nclick call href",
            "deploy_ref": "v42#hotfix:1",
        }
        inc = drive_to(flow, clock, State.FIXED, texts=texts)
        clock.advance(minutes=1)
        flow.reopen(inc.id, reason="dateFormat: broken; #2\nsection X", actor=COMMANDER)
        text = incident_gantt(inc, flow.history(inc.id))
        chart = parse_gantt(text)
        assert chart.title == f"DB down； see ＃ops： 100％ 'errors' ％％{{init}}％％ ({inc.id})"
        assert "Mitigation (failover： step 1； step 2 ＃ not a heading click call href)" in (
            chart.names("Triage")
        )
        assert "Fix deployed (v42＃hotfix：1)" in chart.names("Root cause analysis")
        assert "Reopened (dateFormat： broken； ＃2 section X)" in chart.names(
            "Root cause analysis"
        )
        assert "`" not in text

    def test_long_text_is_cut(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """A long description becomes one short task name ending with an ellipsis."""
        inc = drive_to(flow, clock, State.CONTAINED, texts={"containment": "word " * 100})
        chart = parse_gantt(incident_gantt(inc, flow.history(inc.id)))
        [mitigation] = [n for n in chart.names("Triage") if n.startswith("Mitigation")]
        assert mitigation.endswith("…)")
        assert len(mitigation) <= len("Mitigation ()") + 60


class TestDetection:
    def test_detected_only(self, flow: IncidentFlow) -> None:
        """A detection time alone before the declaration: the wait until declaring is a bar."""
        inc = declare(flow)
        inc = flow.record_detection(inc.id, method="user_report", detected_at=at(-3), actor="bob")
        chart = parse_gantt(incident_gantt(inc, flow.history(inc.id)))
        assert chart.names("Detection") == ["Until declared"]

    def test_detected_after_declaring(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Declared ahead of the first user report: the report is a milestone."""
        inc = declare(flow)
        clock.advance(minutes=5)
        inc = flow.record_detection(
            inc.id, method="user_report", first_occurred_at=at(-30), detected_at=at(2), actor="bob"
        )
        chart = parse_gantt(incident_gantt(inc, flow.history(inc.id)))
        assert chart.tasks[:2] == [
            ("Detection", "Until the first user report", ("done",), at(-30), at(2)),
            ("Detection", "First user report", ("milestone",), at(2), at(2)),
        ]

    def test_first_occurrence_only(self, flow: IncidentFlow) -> None:
        """Only when it began is known: a milestone."""
        inc = declare(flow)
        inc = flow.record_detection(inc.id, method="other", first_occurred_at=at(-9), actor="bob")
        chart = parse_gantt(incident_gantt(inc, flow.history(inc.id)))
        assert chart.tasks[0] == (
            "Detection",
            "Issue first occurred",
            ("milestone",),
            at(-9),
            at(-9),
        )


class TestErrors:
    def test_empty_history(self, flow: IncidentFlow) -> None:
        """The history is required: the chart is built from it."""
        inc = declare(flow)
        with pytest.raises(ValidationError) as info:
            incident_gantt(inc, [])
        assert info.value.field == "history"

    def test_another_incidents_history(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Events of another incident are refused, naming it."""
        first = declare(flow)
        other = declare(flow, texts={"title": "Search is slow"})
        with pytest.raises(ValidationError, match=other.id):
            incident_gantt(first, flow.history(other.id))

    def test_naive_now(self, flow: IncidentFlow) -> None:
        """now= must be aware."""
        inc = declare(flow)
        with pytest.raises(ValidationError) as info:
            incident_gantt(inc, flow.history(inc.id), now=datetime(2026, 11, 27, 15, 0))
        assert info.value.field == "now"
