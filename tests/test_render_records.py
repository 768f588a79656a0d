"""The incident file shows every record issue 10 added: type, labels, fields, references,
roles with their handoffs, status updates, corrections and superseded fixes."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from helpers import COMMANDER, RESPONDER, USER, markdown_headings, markdown_tables
from incidentflow import Incident, IncidentFlow, Policy
from incidentflow.render import render_incident, timeline
from incidentflow.testing import FrozenClock

#: The headings the incident file may have; user text appears only after their prefixes.
LIBRARY_HEADINGS = [
    re.compile(r"# Incident: .+"),
    re.compile(r"## (Evidence|Actions|Root Cause Analysis|Action Items|Roles|Updates|Notes)"),
    re.compile(r"### (Triage|Handoffs)"),
    re.compile(r"### \d{4}-\d\d-\d\d \d\d:\d\d UTC: .+"),
    re.compile(r"# Post-Mortem: .+"),
    re.compile(r"## (Summary|Timeline|Root Cause|What Went Well|What Went Poorly)"),
]

#: Text that tries to forge a heading, a table row, HTML and strike-through.
INJECTION = "# Forged\n| a | b |\n<script>x</script> ~~struck~~ `tick`"
#: The same attack for one-line fields.
INJECTION_ONE_LINE = "# Forged | a | b | <script>x</script> ~~struck~~ `tick`"

#: A policy that declares the custom fields the tests set.
POLICY = Policy(custom_fields={"customer_tier": "text", "affected_users": "int", "paid": "bool"})


def every_record(flow: IncidentFlow, clock: FrozenClock, *, text: str | None = None) -> Incident:
    """Drive a P1 to a completed, amended post-mortem, touching every new kind of record.

    ``text`` replaces the label value, the handoff note and the update text
    (``INJECTION`` tests the escaping).
    """
    line = None if text is None else " ".join(text.split())
    inc = flow.declare(
        "Checkout returns 500",
        severity="P1",
        commander=COMMANDER,
        actor=COMMANDER,
        labels={"service": "checkout", "team": line or "payments"},
        fields={"customer_tier": "gold", "affected_users": 1200},
        references={"ticket": "OPS-1234"},
    )
    step = timedelta(minutes=1)
    run = [
        lambda: flow.start_triage(inc.id, actor=COMMANDER),
        lambda: flow.change_type(inc.id, "security", reason="a token leaked", actor=COMMANDER),
        lambda: flow.set_fields(inc.id, {"paid": True}, actor=COMMANDER),
        lambda: flow.add_reference(inc.id, "channel", "#inc-checkout", actor=COMMANDER),
        lambda: flow.assign_role(inc.id, "communications_lead", "dana", actor=COMMANDER),
        lambda: flow.assign_role(
            inc.id, "communications_lead", "erin", note=line or "dana is off shift", actor="dana"
        ),
        lambda: flow.assign_role(inc.id, "scribe", "frank", actor=COMMANDER),
        lambda: flow.release_role(inc.id, "scribe", note="not needed", actor=COMMANDER),
        lambda: flow.post_update(
            inc.id,
            "external",
            text or "Checkout fails for some cards; we are on it.",
            next_update_in=timedelta(minutes=30),
            actor="erin",
        ),
        lambda: flow.post_update(inc.id, "internal", "Rolled back release 41.", actor="erin"),
        lambda: flow.add_evidence(inc.id, source="wrong-host", content="noise", actor=RESPONDER),
        lambda: flow.retract(inc.id, "evidence:1", reason="logs of another host", actor=RESPONDER),
        lambda: flow.add_evidence(inc.id, source="app.log", content="pool", actor=RESPONDER),
        lambda: flow.answer_triage(inc.id, "symptom", "500s", actor=RESPONDER),
        lambda: flow.amend(
            inc.id, "triage:symptom", "HTTP 500 on /pay", reason="more precise", actor=RESPONDER
        ),
        lambda: flow.answer_triage(inc.id, "started_at", "13:40 UTC", actor=RESPONDER),
        lambda: flow.answer_triage(inc.id, "scope", "all card payments", actor=RESPONDER),
        lambda: flow.record_containment(inc.id, "rolled back release 41", actor=RESPONDER),
        lambda: flow.contain(inc.id, actor=COMMANDER),
        lambda: flow.start_rca(inc.id, actor=COMMANDER),
        lambda: flow.add_why(inc.id, "the pool was exhausted", actor=RESPONDER),
        lambda: flow.add_why(inc.id, "teh pool leakd", actor=RESPONDER),
        lambda: flow.retract(inc.id, "why:2", reason="a typo", actor=RESPONDER),
        lambda: flow.add_why(inc.id, "each request leaked a connection", actor=RESPONDER),
        lambda: flow.set_root_cause(
            inc.id, "connection leak", process_gap="no load test", actor=RESPONDER
        ),
        lambda: flow.record_fix(
            inc.id,
            "close connections",
            test="test_pool_returns",
            staging_verified=True,
            actor=RESPONDER,
        ),
        lambda: flow.record_deploy(inc.id, ref="v41.1", actor=RESPONDER),
        lambda: flow.mark_fixed(inc.id, actor=COMMANDER),
        lambda: flow.reopen(inc.id, reason="errors are back", actor=COMMANDER),
    ]
    for command in run:
        clock.advance(step)
        command()
    inc = flow.get(inc.id)
    if inc.state.value != "rca":
        flow.start_rca(inc.id, actor=COMMANDER)
    for command in [
        lambda: flow.record_fix(
            inc.id,
            "close connections in finally",
            test="test_pool_returns",
            staging_verified=True,
            actor=RESPONDER,
        ),
        lambda: flow.amend(
            inc.id, "fix:test", "test_pool_returns_on_error", reason="renamed", actor=RESPONDER
        ),
        lambda: flow.record_deploy(inc.id, ref="v41.2", actor=RESPONDER),
        lambda: flow.mark_fixed(inc.id, actor=COMMANDER),
    ]:
        clock.advance(step)
        command()
    clock.advance(flow.policy.watch_window)
    flow.confirm_by_user(inc.id, user=USER, comment="works", actor=COMMANDER)
    flow.resolve(inc.id, actor=COMMANDER)
    due = clock().date() + timedelta(days=14)
    for description in ("add a load test", "page on pool usage", "audit other pools"):
        flow.add_action_item(inc.id, description, owner="dana", due=due, actor=COMMANDER)
    flow.complete_action_item(inc.id, 1, actor="dana")
    flow.decline_action_item(inc.id, 2, reason="the new alert covers it", actor=COMMANDER)
    flow.link_action_item(inc.id, 3, "OPS-99", actor=COMMANDER)
    flow.reassign_action_item(inc.id, 3, owner="gus", reason="owns the pools", actor=COMMANDER)
    flow.complete_postmortem(
        inc.id,
        summary="Checkout failed for 40 minutes.",
        root_cause="a connection leak",
        went_well=["the rollback was quick"],
        went_poorly=["the alert was late"],
        actor=COMMANDER,
    )
    clock.advance(step)
    return flow.amend(
        inc.id, "postmortem:summary", "Checkout failed for 42 minutes.", reason="timing checked",
        actor=COMMANDER,
    )  # fmt: skip


@pytest.fixture
def records_flow(clock: FrozenClock, tmp_path: Path) -> IncidentFlow:
    """An in-memory flow with the custom fields declared, writing the incident file."""
    return IncidentFlow.in_memory(clock=clock, policy=POLICY, incidents_dir=tmp_path)


def written(flow: IncidentFlow, incident_id: str) -> str:
    """The incident file as written."""
    path = flow.incident_path(incident_id)
    assert path is not None
    return path.read_text(encoding="utf-8")


def section(markdown: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    body = markdown.split(f"\n{heading}\n", 1)[1]
    return re.split(rf"\n#{{1,{len(level)}}} ", body, maxsplit=1)[0]


def field_line(markdown: str, label: str) -> str:
    """The value of a ``**Label:** value`` line."""
    (line,) = [ln for ln in markdown.splitlines() if ln.startswith(f"**{label}:**")]
    return line[len(f"**{label}:**") :].strip()


#: The headers of the tables the tests read.
ACTIONS = ["Time (UTC)", "Action", "By"]
HANDOFFS = ["Time (UTC)", "Role", "From", "To", "By", "Note"]
UPDATES = ["Time (UTC)", "Audience", "Update", "By", "Next update due"]
ACTION_ITEMS = ["#", "Action", "Owner", "Due Date", "Status", "Ref"]


def table_with(markdown: str, header: list[str]) -> list[list[str]]:
    """The rows of the one table with ``header`` (without header and delimiter)."""
    (table,) = [t for t in markdown_tables(markdown) if t[0] == header]
    return table[2:]


class TestHeader:
    def test_a_bare_incident_shows_only_its_type(self, flow: IncidentFlow) -> None:
        """Without labels, fields or references the header gains only the Type line."""
        inc = flow.declare("Checkout returns 500", severity="P2", commander="a", actor="a")
        text = render_incident(inc)
        assert field_line(text, "Type") == "availability"
        for label in ("Labels", "References", "Custom fields", "Next update due"):
            assert f"**{label}:**" not in text
        assert "## Roles" not in text
        assert "## Updates" not in text

    def test_type_labels_references_and_fields(
        self, records_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The header shows the type, the labels as key=value, the references and the fields."""
        inc = every_record(records_flow, clock)
        text = written(records_flow, inc.id)
        assert field_line(text, "Type") == "security"
        assert field_line(text, "Labels") == r"service=checkout, team=payments"
        assert field_line(text, "References") == r"ticket: OPS-1234, channel: \#inc-checkout"
        assert field_line(text, "Custom fields") == (
            r"affected\_users: 1200; customer\_tier: gold; paid: yes"
        )


class TestRoles:
    def test_roles_section_lists_who_holds_each_role(
        self, records_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Roles lists the commander first, then each held role; a released role is gone."""
        inc = every_record(records_flow, clock)
        roles = section(written(records_flow, inc.id), "## Roles").split("### Handoffs")[0]
        held = re.findall(r"^- \*\*(.+?):\*\* (.+)$", roles, flags=re.MULTILINE)
        assert held == [("commander", COMMANDER), (r"communications\_lead", "erin")]

    def test_handoffs_are_listed_with_from_to_and_note(
        self, records_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Each assignment, handover and release is a row: role, from, to, by and note."""
        inc = every_record(records_flow, clock)
        handoffs = table_with(written(records_flow, inc.id), HANDOFFS)
        assert [row[1:] for row in handoffs] == [
            [r"communications\_lead", "—", "dana", COMMANDER, ""],
            [r"communications\_lead", "dana", "erin", "dana", "dana is off shift"],
            ["scribe", "—", "frank", COMMANDER, ""],
            ["scribe", "frank", "— (released)", COMMANDER, "not needed"],
        ]

    def test_a_commander_handoff_shows_the_roles_section(self, flow: IncidentFlow) -> None:
        """Handing command over records a handoff, so the Roles section appears."""
        inc = flow.declare("Checkout returns 500", severity="P2", commander="a", actor="a")
        inc = flow.assign_commander(inc.id, "erin", actor="a")
        text = render_incident(inc)
        assert "- **commander:** erin" in section(text, "## Roles")
        assert "| commander | a | erin | a |" in text


class TestUpdates:
    def test_updates_section_has_time_audience_text_and_next_due(
        self, records_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Each status update is a row with its audience, text, author and next due time."""
        inc = every_record(records_flow, clock)
        text = written(records_flow, inc.id)
        rows = table_with(text, UPDATES)
        first, second = inc.updates
        assert rows[0] == [
            f"{first.at:%Y-%m-%d %H:%M} UTC",
            "external",
            "Checkout fails for some cards; we are on it.",
            "erin",
            f"{first.at + timedelta(minutes=30):%Y-%m-%d %H:%M} UTC",
        ]
        assert rows[1][1:4] == ["internal", "Rolled back release 41.", "erin"]
        assert len(rows) == len(inc.updates) == 2
        assert second.text in text

    def test_next_update_due_is_in_the_header(self, flow: IncidentFlow) -> None:
        """A promised update shows as Next update due under the title."""
        inc = flow.declare("Checkout returns 500", severity="P2", commander="a", actor="a")
        inc = flow.post_update(inc.id, "internal", "looking", next_update_in=timedelta(hours=1),
                               actor="a")  # fmt: skip
        assert inc.next_update_due is not None
        assert field_line(render_incident(inc), "Next update due") == (
            f"{inc.next_update_due:%Y-%m-%d %H:%M} UTC"
        )


class TestCorrections:
    def test_an_amended_answer_shows_its_current_value_marked(
        self, records_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """An amended triage answer shows the new text and who amended it, when and why."""
        inc = every_record(records_flow, clock)
        (answer,) = [a for a in inc.triage_answers if a.question == "symptom"]
        assert answer.amended is not None
        triage = section(written(records_flow, inc.id), "### Triage")
        assert (
            f"- **Symptom:** HTTP 500 on /pay (amended {answer.amended.at:%Y-%m-%d %H:%M} UTC "
            f"by {RESPONDER}: more precise)"
        ) in triage
        assert "500s" not in triage

    def test_a_retracted_why_stays_struck_through(
        self, records_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The retracted why keeps its number, struck through with the reason."""
        inc = every_record(records_flow, clock)
        rca = section(written(records_flow, inc.id), "## Root Cause Analysis")
        assert re.search(r"^2\. Why\? ~~teh pool leakd~~ \(retracted .+ by bob: a typo\)$", rca,
                         flags=re.MULTILINE)  # fmt: skip
        assert re.search(r"^3\. Why\? each request leaked a connection$", rca, flags=re.MULTILINE)

    def test_retracted_evidence_is_kept_and_marked(
        self, records_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Retracted evidence keeps its heading and content, marked with the reason."""
        inc = every_record(records_flow, clock)
        evidence = section(written(records_flow, inc.id), "## Evidence")
        first = evidence.split("wrong-host", 1)[1].split("###", 1)[0]
        assert "(retracted" in first
        assert "logs of another host" in first
        assert "noise" in first

    def test_superseded_fix_and_deploy_are_struck_with_the_reason(
        self, records_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The fix and deploy a reopen set aside stay in Actions, struck and marked superseded."""
        inc = every_record(records_flow, clock)
        actions = [row[1] for row in table_with(written(records_flow, inc.id), ACTIONS)]
        superseded = [a for a in actions if "superseded" in a]
        assert len(superseded) == 2
        assert all(a.startswith("~~") and "errors are back" in a for a in superseded)
        assert any("v41.1" in a for a in superseded)
        current = [a for a in actions if "v41.2" in a or "finally" in a]
        assert len(current) == 2
        assert not any("~~" in a for a in current)

    def test_an_amended_fix_is_marked(self, records_flow: IncidentFlow, clock: FrozenClock) -> None:
        """The current fix shows its amended test and the amendment's reason."""
        inc = every_record(records_flow, clock)
        rows = table_with(written(records_flow, inc.id), ACTIONS)
        (fix,) = [row[1] for row in rows if "finally" in row[1]]
        assert r"test\_pool\_returns\_on\_error" in fix
        assert "(amended" in fix
        assert fix.endswith(": renamed)")

    def test_a_postmortem_amended_after_completion_says_so(
        self, records_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The post-mortem shows the amended summary and an Amended line with the reason."""
        inc = every_record(records_flow, clock)
        pm = written(records_flow, inc.id).split("# Post-Mortem:", 1)[1]
        assert f"**Amended:** {clock():%Y-%m-%d %H:%M} UTC by {COMMANDER}: timing checked" in pm
        assert "42 minutes" in section("\n" + pm, "## Summary")
        assert "40 minutes" not in pm


class TestActionItems:
    def test_status_and_ref_columns(self, records_flow: IncidentFlow, clock: FrozenClock) -> None:
        """Action Items shows done, declined (with its reason) and open items, and their refs."""
        inc = every_record(records_flow, clock)
        pm = written(records_flow, inc.id).split("# Post-Mortem:", 1)[1]
        done, declined, linked = table_with(pm, ACTION_ITEMS)
        assert done[4].startswith("done ")
        assert declined[1] == "~~page on pool usage~~"
        assert declined[4].startswith("declined ")
        assert declined[4].endswith("by alice: the new alert covers it")
        assert linked[2:] == ["gus", inc.action_items[2].due.isoformat(), "open", "OPS-99"]


class TestTimeline:
    def test_handoffs_and_updates_are_in_the_timeline(
        self, records_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The post-mortem timeline has the handoffs, releases, updates and the type change."""
        inc = every_record(records_flow, clock)
        events = [text for _, text in timeline(records_flow.history(inc.id))]
        for expected in [
            r"Type changed availability → security: a token leaked",
            r"communications\_lead assigned to dana",
            r"communications\_lead handed over: dana → erin: dana is off shift",
            "scribe released by frank: not needed",
            "Status update (external): Checkout fails for some cards; we are on it.",
            "Status update (internal): Rolled back release 41.",
        ]:
            assert expected in events
        pm = written(records_flow, inc.id).split("# Post-Mortem:", 1)[1]
        assert "Status update (internal)" in section("\n" + pm, "## Timeline")


class TestEscaping:
    def test_labels_notes_and_updates_cannot_forge_structure(
        self, records_flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Markup in a label, a handoff note and an update stays text: no heading, no cell."""
        inc = every_record(records_flow, clock, text=INJECTION)
        text = written(records_flow, inc.id)
        for heading in markdown_headings(text):
            assert any(p.fullmatch(heading) for p in LIBRARY_HEADINGS), heading
        assert "<script>" not in text
        assert "~~struck~~" not in text
        for table in markdown_tables(text):
            assert {len(row) for row in table} == {len(table[0])}
        assert field_line(text, "Labels").startswith(r"service=checkout, team=# Forged \| a \|")
        assert r"\~\~struck\~\~" in section(text, "## Updates")
        assert r"\~\~struck\~\~" in section(text, "## Roles")
