"""The files people read: the incident file, its post-mortem, the KB gotcha, and where they go."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpers import (
    COMMANDER,
    DEFAULT_TEXTS,
    RESPONDER,
    START,
    advance_to,
    declare,
    drive_to,
    markdown_headings,
    markdown_outside_fences,
    markdown_tables,
)
from incidentflow import IncidentFlow, State, ValidationError
from incidentflow.testing import FrozenClock

Folders = tuple[Path, Path]

#: The headings the library writes; user text may appear only after their prefixes.
LIBRARY_HEADINGS = [
    re.compile(r"# Incident: .+"),
    re.compile(r"## (Evidence|Actions|Root Cause Analysis|Action Items|Notes)"),
    re.compile(r"### Triage"),
    re.compile(r"### \d{4}-\d\d-\d\d \d\d:\d\d UTC: .+"),
    re.compile(r"# Post-Mortem: .+"),
    re.compile(r"## (Summary|Timeline|Root Cause|What Went Well|What Went Poorly)"),
    re.compile(r"# Gotcha: .+"),
    re.compile(r"## (Symptom|Fix|How to Spot It Early)"),
]


def heading_kinds(markdown: str) -> list[int]:
    """Which library heading each heading is; fails on a heading the library never writes."""
    kinds = []
    for heading in markdown_headings(markdown):
        matches = [i for i, pattern in enumerate(LIBRARY_HEADINGS) if pattern.fullmatch(heading)]
        assert matches, f"forged heading: {heading!r}"
        kinds.append(matches[0])
    return kinds


def files_under(root: Path) -> list[Path]:
    """Every file below ``root``."""
    return sorted(p for p in root.rglob("*") if p.is_file())


def incident_text(flow: IncidentFlow, incident_id: str) -> str:
    """The incident's Markdown file as written."""
    path = flow.incident_path(incident_id)
    assert path is not None
    return path.read_text(encoding="utf-8")


def timeline_rows(markdown: str) -> list[list[str]]:
    """The post-mortem timeline's rows (without header and delimiter)."""
    (table,) = [t for t in markdown_tables(markdown) if t[0] == ["Time (UTC)", "Event"]]
    return table[2:]


def field_line(markdown: str, label: str) -> str:
    """The value of a ``**Label:** value`` line."""
    (line,) = [ln for ln in markdown.splitlines() if ln.startswith(f"**{label}:**")]
    return line[len(f"**{label}:**") :].strip()


class TestIncidentFile:
    def test_sections_follow_the_template_in_order(
        self, file_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The incident file has the template's sections, then the post-mortem's, in order."""
        inc = drive_to(file_flow, clock, "kb_updated")
        headings = [
            h for h in markdown_headings(incident_text(file_flow, inc.id)) if h[:3] != "###"
        ]
        assert headings == [
            "# Incident: Checkout returns 500",
            "## Evidence",
            "## Actions",
            "## Root Cause Analysis",
            "# Post-Mortem: Checkout returns 500",
            "## Summary",
            "## Timeline",
            "## Root Cause",
            "## What Went Well",
            "## What Went Poorly",
            "## Action Items",
        ]

    def test_header_lines(self, file_flow: IncidentFlow, clock: FrozenClock) -> None:
        """Date, Severity, Type, Status and Incident Commander open the file."""
        inc = drive_to(file_flow, clock, "triaging", "P2")
        text = incident_text(file_flow, inc.id)
        assert text.startswith("# Incident: Checkout returns 500\n")
        assert field_line(text, "Date") == "2026-11-27 14:00 UTC"
        assert re.fullmatch(r"P2\b.*", field_line(text, "Severity"))
        assert field_line(text, "Type") == "availability"
        assert field_line(text, "Status") == "Investigating"
        assert field_line(text, "Incident Commander") == COMMANDER

    @pytest.mark.parametrize(
        ("state", "status"),
        [
            ("declared", "Declared"),
            ("triaging", "Investigating"),
            ("resolved", "Resolved"),
            ("kb_updated", "Closed"),
            ("dismissed", "Dismissed"),
        ],
    )
    def test_status_follows_the_state(
        self, file_flow: IncidentFlow, clock: FrozenClock, state: str, status: str
    ) -> None:
        """The Status line is rewritten as the incident moves."""
        inc = drive_to(file_flow, clock, state)
        assert field_line(incident_text(file_flow, inc.id), "Status") == status

    def test_file_is_rewritten_after_every_change(
        self, file_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Each command rewrites the file, so it always shows the latest state."""
        inc = declare(file_flow)
        assert field_line(incident_text(file_flow, inc.id), "Status") == "Declared"
        file_flow.start_triage(inc.id, actor=COMMANDER)
        assert field_line(incident_text(file_flow, inc.id), "Status") == "Investigating"
        file_flow.assign_commander(inc.id, "erin", actor=COMMANDER)
        assert field_line(incident_text(file_flow, inc.id), "Incident Commander") == "erin"

    def test_evidence_lists_triage_answers_then_items(
        self, file_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Evidence shows the triage answers, then each item with its time and source."""
        inc = drive_to(file_flow, clock, "contained")
        text = incident_text(file_flow, inc.id)
        evidence = text.split("## Evidence", 1)[1].split("## Actions", 1)[0]
        assert evidence.index("### Triage") < evidence.index(DEFAULT_TEXTS["evidence_source"])
        assert DEFAULT_TEXTS["symptom"] in evidence
        assert DEFAULT_TEXTS["scope"] in evidence
        item_at = inc.evidence[0].at
        assert f"### {item_at:%Y-%m-%d %H:%M} UTC: {DEFAULT_TEXTS['evidence_source']}" in evidence
        assert DEFAULT_TEXTS["evidence_content"] in evidence

    def test_actions_list_containment_and_fix_with_times(
        self, file_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Actions lists each containment and fix action with its timestamp."""
        inc = drive_to(file_flow, clock, "fixed")
        text = incident_text(file_flow, inc.id)
        (table,) = [t for t in markdown_tables(text) if t[0] == ["Time (UTC)", "Action", "By"]]
        rows = table[2:]
        containment = [r for r in rows if DEFAULT_TEXTS["containment"] in r[1]]
        assert containment[0][0] == f"{inc.containment[0].at:%Y-%m-%d %H:%M} UTC"
        assert any(DEFAULT_TEXTS["fix"] in r[1] for r in rows)
        assert any(DEFAULT_TEXTS["deploy_ref"] in r[1] for r in rows)
        assert [r[0] for r in rows] == sorted(r[0] for r in rows)

    def test_root_cause_analysis_shows_the_whys_and_the_root_cause(
        self, file_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The RCA section numbers the whys and states the root cause and process gap."""
        inc = drive_to(file_flow, clock, "rca")
        file_flow.add_why(inc.id, "the pool was exhausted", actor=RESPONDER)
        file_flow.add_why(inc.id, "each request opened a connection", actor=RESPONDER)
        file_flow.set_root_cause(inc.id, "connection leak", process_gap="no load test", actor="b")
        rca = incident_text(file_flow, inc.id).split("## Root Cause Analysis", 1)[1]
        assert re.search(r"^1\. .*the pool was exhausted$", rca, re.MULTILINE)
        assert re.search(r"^2\. .*each request opened a connection$", rca, re.MULTILINE)
        assert "connection leak" in rca
        assert "no load test" in rca

    def test_no_postmortem_before_one_is_written(
        self, file_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Until a post-mortem is drafted the file has no post-mortem section."""
        inc = drive_to(file_flow, clock, "resolved")
        assert "# Post-Mortem" not in incident_text(file_flow, inc.id)
        file_flow.draft_postmortem(inc.id, summary="checkout down", actor=COMMANDER)
        text = incident_text(file_flow, inc.id)
        assert "# Post-Mortem: Checkout returns 500 (draft)" in text
        assert "checkout down" in text.split("## Summary", 1)[1]


class TestPostmortem:
    def test_sections_hold_what_was_written(
        self, file_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Summary, Root Cause, What Went Well and What Went Poorly hold their texts."""
        inc = drive_to(file_flow, clock, "postmortem")
        pm = incident_text(file_flow, inc.id).split("# Post-Mortem:", 1)[1]
        parts = [part.split("\n", 1) for part in pm.split("\n## ")[1:]]
        sections = {title.strip(): body for title, body in parts}
        assert DEFAULT_TEXTS["summary"] in sections["Summary"]
        assert DEFAULT_TEXTS["pm_root_cause"] in sections["Root Cause"]
        assert f"- {DEFAULT_TEXTS['went_well']}" in sections["What Went Well"]
        assert f"- {DEFAULT_TEXTS['went_poorly']}" in sections["What Went Poorly"]

    def test_action_items_table(self, file_flow: IncidentFlow, clock: FrozenClock) -> None:
        """Action Items is a table with Action, Owner and Due Date."""
        inc = drive_to(file_flow, clock, "postmortem")
        pm = incident_text(file_flow, inc.id).split("# Post-Mortem:", 1)[1]
        (table,) = [t for t in markdown_tables(pm) if "Action" in t[0]]
        header = table[0]
        columns = [header.index(name) for name in ("Action", "Owner", "Due Date")]
        assert columns == sorted(columns)
        (row,) = table[2:]
        item = inc.action_items[0]
        assert [row[c] for c in columns] == [item.description, item.owner, item.due.isoformat()]

    def test_timeline_has_the_milestones_in_time_order(
        self, file_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The timeline shows first occurrence, alert, declaration, mitigation, root cause,
        deploy and resolution, oldest first."""
        inc = declare(file_flow)
        file_flow.record_detection(
            inc.id,
            method="alert",
            first_occurred_at=START - timedelta(minutes=25),
            detected_at=START - timedelta(minutes=10),
            actor=RESPONDER,
        )
        inc = advance_to(file_flow, clock, inc.id, "postmortem")
        rows = timeline_rows(incident_text(file_flow, inc.id))
        events = [event for _, event in rows]
        milestones = [
            "Issue first occurred",
            "First alert",
            "Incident declared",
            "Mitigation applied",
            "Root cause identified",
            "Fix deployed",
            "Incident resolved",
        ]
        positions = []
        for milestone in milestones:
            (position,) = [i for i, event in enumerate(events) if event.startswith(milestone)]
            positions.append(position)
        assert positions == sorted(positions)
        times = [time for time, _ in rows]
        assert times == sorted(times)
        assert times[0] == "13:35"
        assert rows[positions[2]][0] == "14:00"

    def test_user_report_is_a_milestone(self, file_flow: IncidentFlow, clock: FrozenClock) -> None:
        """A detection by user report shows as the first user report."""
        inc = declare(file_flow)
        file_flow.record_detection(
            inc.id, method="user_report", detected_at=START - timedelta(minutes=5), actor="b"
        )
        inc = advance_to(file_flow, clock, inc.id, "postmortem")
        events = [event for _, event in timeline_rows(incident_text(file_flow, inc.id))]
        assert events[0] == "First user report"

    def test_same_day_incident_shows_times_only(
        self, file_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """An incident that starts and ends on one day shows HH:MM in its timeline."""
        inc = drive_to(file_flow, clock, "postmortem")
        times = [time for time, _ in timeline_rows(incident_text(file_flow, inc.id))]
        assert times
        assert all(re.fullmatch(r"\d\d:\d\d", t) for t in times)

    def test_multi_day_incident_shows_dates(self, tmp_path: Path) -> None:
        """An incident that crosses midnight shows the date on every timeline row."""
        clock = FrozenClock(datetime(2026, 11, 27, 23, 50, tzinfo=UTC))
        flow = IncidentFlow.in_memory(clock=clock, incidents_dir=tmp_path)
        inc = drive_to(flow, clock, "postmortem")
        assert inc.declared_at.date() != inc.resolved_at.date()  # type: ignore[union-attr]
        times = [time for time, _ in timeline_rows(incident_text(flow, inc.id))]
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", t) for t in times)
        assert {t[:10] for t in times} == {"2026-11-27", "2026-11-28"}

    def test_blame_warnings_are_shown(self, file_flow: IncidentFlow, clock: FrozenClock) -> None:
        """Blame warnings recorded in warn mode appear in the post-mortem."""
        texts = {"went_poorly": f"{RESPONDER} forgot to check the pool size"}
        inc = drive_to(file_flow, clock, "postmortem", texts=texts)
        text = incident_text(file_flow, inc.id)
        assert "Blame check" in text
        assert f"{RESPONDER} forgot" in text.split("Blame check", 1)[1]


INJECTION = (
    "# Injected\n"
    "| a | b |\n"
    "|---|---|\n"
    "<script>alert(1)</script>\n"
    "```\n"
    "## Injected too\n"
    "===\n"
    "- item\n"
    "> quote `tick`"
)
#: The same attack for fields that accept a single line only.
INJECTION_ONE_LINE = "# Injected | a | b | <script>alert(1)</script> `tick` ```"

#: Every text the drivers write, plus notes and a reclassification reason.
INJECTABLE = [*sorted(DEFAULT_TEXTS), "note", "reclassify_reason", "evidence_backticks"]


def _drive_with(
    flow: IncidentFlow, clock: FrozenClock, field: str, text: str
) -> tuple[str, str | None]:
    """Drive an incident to kb_updated with ``text`` in ``field``; return the files' text."""
    if field in DEFAULT_TEXTS:
        inc = drive_to(flow, clock, "kb_updated", texts={field: text})
    elif field == "evidence_backticks":
        inc = drive_to(flow, clock, "triaging")
        flow.add_evidence(inc.id, source="logs", content="````\n# Injected\n~~~\n```", actor="b")
        inc = advance_to(flow, clock, inc.id, "kb_updated")
    else:
        inc = drive_to(flow, clock, "postmortem")
        if field == "note":
            flow.add_note(inc.id, text, actor=RESPONDER)
        else:
            flow.reclassify(inc.id, "P2", reason=text, actor=COMMANDER)
        inc = advance_to(flow, clock, inc.id, "kb_updated")
    gotcha = None
    if flow.knowledge_dir is not None:
        gotcha = (flow.knowledge_dir / f"{inc.slug}.md").read_text(encoding="utf-8")
    return incident_text(flow, inc.id), gotcha


class TestEscaping:
    @pytest.mark.parametrize("field", INJECTABLE)
    def test_user_text_cannot_forge_structure(
        self, file_flow: IncidentFlow, clock: FrozenClock, field: str, tmp_path: Path
    ) -> None:
        """No text in any field adds a heading, a table cell or raw HTML to the files."""
        baseline_clock = FrozenClock(START)
        baseline_flow = IncidentFlow.in_memory(
            clock=baseline_clock,
            incidents_dir=tmp_path / "baseline" / "incidents",
            knowledge_dir=tmp_path / "baseline" / "knowledge",
        )
        base_incident, base_gotcha = _drive_with(
            baseline_flow, baseline_clock, field, "plain words"
        )
        try:
            incident_md, gotcha_md = _drive_with(file_flow, clock, field, INJECTION)
        except ValidationError as exc:
            refusal = str(exc)
            incident_md, gotcha_md = _drive_with(file_flow, clock, field, INJECTION_ONE_LINE)
            assert "line breaks" in refusal
        assert gotcha_md is not None
        assert base_gotcha is not None
        for markdown, baseline in ((incident_md, base_incident), (gotcha_md, base_gotcha)):
            assert heading_kinds(markdown) == heading_kinds(baseline)
            assert "<script" not in markdown_outside_fences(markdown)
            for table in markdown_tables(markdown):
                assert all(len(row) == len(table[0]) for row in table), table
            assert len(markdown_tables(markdown)) == len(markdown_tables(baseline))

    def test_multi_line_title_is_refused(self, flow: IncidentFlow) -> None:
        """A title cannot carry a line break, so it cannot start a heading of its own."""
        with pytest.raises(ValidationError) as info:
            flow.declare("Outage\n# Injected", severity="P1", commander="a", actor="a")
        assert info.value.field == "title"

    def test_evidence_content_is_shown_verbatim_in_a_fence(
        self, file_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Evidence content, backticks included, is kept verbatim inside a longer fence."""
        inc = drive_to(file_flow, clock, "triaging")
        content = "line with ``` fence\n````\n# not a heading"
        file_flow.add_evidence(inc.id, source="logs", content=content, actor=RESPONDER)
        text = incident_text(file_flow, inc.id)
        assert content in text
        assert "# not a heading" not in " ".join(markdown_headings(text))


class TestFiles:
    def test_incident_and_gotcha_paths(
        self, file_flow: IncidentFlow, clock: FrozenClock, folders: Folders
    ) -> None:
        """The incident file is INC-<date>-<slug>.md; the gotcha is <slug>.md in the KB folder."""
        incidents_dir, knowledge_dir = folders
        inc = drive_to(file_flow, clock, "kb_updated")
        incident_file = incidents_dir / "INC-2026-11-27-checkout-returns-500.md"
        gotcha_file = knowledge_dir / "checkout-returns-500.md"
        assert file_flow.incident_path(inc.id) == incident_file
        assert incident_file.is_file()
        assert gotcha_file.is_file()

    def test_gotcha_links_to_the_incident_relatively(
        self, file_flow: IncidentFlow, clock: FrozenClock, folders: Folders
    ) -> None:
        """The gotcha links to the incident file by a relative path that resolves."""
        incidents_dir, knowledge_dir = folders
        inc = drive_to(file_flow, clock, "kb_updated")
        gotcha = (knowledge_dir / f"{inc.slug}.md").read_text(encoding="utf-8")
        (link,) = re.findall(r"\[" + re.escape(inc.id) + r"\]\(([^)]+)\)", gotcha)
        assert not Path(link).is_absolute()
        assert (knowledge_dir / link).resolve() == (incidents_dir / f"{inc.id}.md").resolve()

    def test_gotcha_holds_symptom_root_cause_fix_and_early_signs(
        self, file_flow: IncidentFlow, clock: FrozenClock, folders: Folders
    ) -> None:
        """The gotcha has the symptom, root cause, fix and how to spot it early."""
        _, knowledge_dir = folders
        inc = drive_to(file_flow, clock, "kb_updated")
        gotcha = (knowledge_dir / f"{inc.slug}.md").read_text(encoding="utf-8")
        assert markdown_headings(gotcha) == [
            "# Gotcha: Checkout returns 500",
            "## Symptom",
            "## Root Cause",
            "## Fix",
            "## How to Spot It Early",
        ]
        for key in ("kb_symptom", "root_cause", "fix", "kb_early_signs"):
            assert DEFAULT_TEXTS[key] in gotcha

    def test_nothing_is_written_outside_the_folders(
        self, file_flow: IncidentFlow, clock: FrozenClock, folders: Folders, tmp_path: Path
    ) -> None:
        """A whole lifecycle writes exactly the incident file and the gotcha, nothing else."""
        incidents_dir, knowledge_dir = folders
        inc = drive_to(file_flow, clock, "kb_updated")
        assert files_under(tmp_path) == sorted(
            [incidents_dir / f"{inc.id}.md", knowledge_dir / f"{inc.slug}.md"]
        )

    def test_no_temporary_files_are_left(
        self, file_flow: IncidentFlow, clock: FrozenClock, tmp_path: Path
    ) -> None:
        """Every rewrite goes through a temporary file that is renamed away."""
        drive_to(file_flow, clock, "kb_updated")
        drive_to(file_flow, clock, "dismissed")
        leftovers = [p for p in files_under(tmp_path) if p.name.startswith(".") or ".tmp" in p.name]
        assert leftovers == []

    def test_a_failed_write_keeps_the_old_file(
        self,
        file_flow: IncidentFlow,
        clock: FrozenClock,
        folders: Folders,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """If the rename fails, the previous file stays whole and no temporary file remains."""
        incidents_dir, _ = folders
        inc = drive_to(file_flow, clock, "triaging")
        before = incident_text(file_flow, inc.id)

        def failing_replace(src: object, dst: object) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", failing_replace)
        after = file_flow.add_note(inc.id, "written to the store anyway", actor=RESPONDER)
        monkeypatch.undo()
        assert after.notes[-1].text == "written to the store anyway"
        assert incident_text(file_flow, inc.id) == before
        assert files_under(incidents_dir) == [incidents_dir / f"{inc.id}.md"]

    def test_in_memory_without_folders_writes_nothing(
        self, clock: FrozenClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """IncidentFlow.in_memory() without folders writes no file anywhere."""
        monkeypatch.chdir(tmp_path)
        flow = IncidentFlow.in_memory(clock=clock)
        inc = drive_to(flow, clock, "kb_updated")
        assert flow.incident_path(inc.id) is None
        assert flow.render(inc.id) == []
        assert files_under(tmp_path) == []

    def test_incidents_folder_alone(self, clock: FrozenClock, tmp_path: Path) -> None:
        """With only incidents_dir, the incident file is written and no gotcha."""
        flow = IncidentFlow.in_memory(clock=clock, incidents_dir=tmp_path / "inc")
        inc = drive_to(flow, clock, "kb_updated")
        assert files_under(tmp_path) == [tmp_path / "inc" / f"{inc.id}.md"]

    def test_knowledge_folder_alone(self, clock: FrozenClock, tmp_path: Path) -> None:
        """With only knowledge_dir, the gotcha is written once the KB is updated."""
        flow = IncidentFlow.in_memory(clock=clock, knowledge_dir=tmp_path / "kb")
        inc = drive_to(flow, clock, "postmortem")
        assert files_under(tmp_path) == []
        advance_to(flow, clock, inc.id, State.KB_UPDATED)
        (gotcha,) = files_under(tmp_path)
        assert gotcha == tmp_path / "kb" / f"{inc.slug}.md"
        assert inc.id in gotcha.read_text(encoding="utf-8")

    def test_render_returns_the_paths_written(
        self, file_flow: IncidentFlow, clock: FrozenClock, folders: Folders
    ) -> None:
        """flow.render() rewrites the files on demand and says which."""
        incidents_dir, knowledge_dir = folders
        inc = drive_to(file_flow, clock, "kb_updated")
        (incidents_dir / f"{inc.id}.md").unlink()
        paths = file_flow.render(inc.id)
        assert sorted(paths) == sorted(
            [incidents_dir / f"{inc.id}.md", knowledge_dir / f"{inc.slug}.md"]
        )
        assert (incidents_dir / f"{inc.id}.md").is_file()

    def test_slug_collisions_get_their_own_files(
        self, file_flow: IncidentFlow, folders: Folders
    ) -> None:
        """Two incidents with one title the same day get two files."""
        incidents_dir, _ = folders
        first = declare(file_flow)
        second = declare(file_flow)
        assert files_under(incidents_dir) == sorted(
            [incidents_dir / f"{first.id}.md", incidents_dir / f"{second.id}.md"]
        )
