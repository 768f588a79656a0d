"""Reading: ``list``, ``show``, ``timeline``, ``similar`` and ``diagram``."""

from __future__ import annotations

import click
import pytest
from cli_terminal import TITLE, Library, Terminal, declared, ok

from incidentflow._lifecycle import COMMANDS, SYSTEM_COMMANDS, next_command
from incidentflow.cli import cli
from incidentflow.cli._usage import USAGE, usage

# -- reading ------------------------------------------------------------------------------------


class TestReading:
    """``list``, ``show``, ``timeline``, ``similar`` and ``diagram``."""

    def test_list_filters(self, term: Terminal, library: Library) -> None:
        """``list`` filters by state, severity, text and openness, and limits."""
        closed = library.drive("kb_updated", "P3", texts={"title": "Search is slow"}).id
        p1 = declared(term)
        p2 = declared(term, "Login page is slow", "P2")

        def ids(*options: str) -> list[str]:
            return [row["id"] for row in ok(term("--json", "list", *options)).json()]

        assert ids() == [p2, p1, closed]
        assert ids("--oldest-first") == [closed, p1, p2]
        assert ids("--open") == [p2, p1]
        assert ids("--state", "kb_updated") == [closed]
        assert ids("--severity", "P1", "--severity", "p2") == [p2, p1]
        assert ids("--text", "slow") == [p2, closed]
        assert ids("--limit", "1") == [p2]
        table = ok(term("list")).out
        assert table.splitlines()[0].split() == [
            "ID",
            "SEV",
            "STATE",
            "COMMANDER",
            "DECLARED",
            "TITLE",
        ]
        assert p1 in table
        assert ok(term("list", "--state", "rca")).out.strip() == "no incidents match"

    def test_show_says_what_the_next_step_needs(self, term: Terminal) -> None:
        """``show`` prints the Markdown, then the next command or what it still needs."""
        incident_id = declared(term)
        shown = ok(term("show", incident_id)).out
        assert TITLE in shown
        assert f"Next: incidentflow triage start {incident_id}" in shown
        ok(term("triage", "start", incident_id))
        shown = ok(term("show", incident_id)).out
        assert "Before contain:" in shown
        assert "no evidence recorded" in shown

    def test_timeline(self, term: Terminal) -> None:
        """``timeline`` lists every event, oldest first, with its actor."""
        incident_id = declared(term)
        ok(term("--actor", "bob", "note", incident_id, "paged payments"))
        lines = ok(term("timeline", incident_id)).out.splitlines()
        assert lines[0].split()[:3] == ["SEQ", "TIME", "(UTC)"]
        rows = [line for line in lines[1:] if line[:1].isdigit()]  # long details wrap below
        assert "declared" in rows[0]
        assert "note_added" in rows[1]
        assert "bob" in rows[1]
        assert "text=paged payments" in rows[1]

    def test_similar(self, term: Terminal, library: Library) -> None:
        """``similar`` lists the past incident that matches, not the unrelated ones."""
        past = library.drive(
            "kb_updated", "P2", texts={"title": "Payment gateway timeout on checkout"}
        ).id
        unrelated = declared(term, "Search results are stale", "P3")
        other = declared(term, "Disk full on build agents", "P4")
        new = declared(term, "Checkout payment gateway timeout again", "P1")
        out = ok(term("similar", new)).out
        assert out.startswith("similar past incidents:")
        assert past in out
        assert unrelated not in out
        assert other not in out
        assert ok(term("similar", other)).out.strip() == "no similar past incidents"

    def test_diagram(self, term: Terminal) -> None:
        """``diagram`` prints the lifecycle; ``diagram ID`` the incident's gantt."""
        assert "stateDiagram-v2" in ok(term("diagram")).out
        incident_id = declared(term)
        ok(term("triage", "start", incident_id))
        assert "gantt" in ok(term("diagram", incident_id)).out
        assert "gantt" in ok(term("--json", "diagram", incident_id)).json()["mermaid"]


class TestNextStep:
    """``show``'s next step is the core's next command, in the command line's words."""

    @pytest.mark.parametrize(
        ("state", "severity"),
        [
            ("declared", "P1"),
            ("triaging", "P1"),
            ("contained", "P2"),
            ("rca", "P2"),
            ("fixed", "P2"),
            ("resolved", "P1"),
            ("resolved", "P3"),
            ("postmortem", "P1"),
            ("kb_updated", "P3"),
            ("dismissed", "P4"),
        ],
    )
    def test_follows_the_core(
        self, term: Terminal, library: Library, state: str, severity: str
    ) -> None:
        """The command named is ``next_command``'s; the text gives its usage or its reasons."""
        incident = library.drive(state, severity)
        expected = next_command(incident.state, postmortem_required=incident.postmortem_required)
        step = ok(term("--json", "show", incident.id)).json()["next"]
        text = ok(term("show", incident.id)).out
        if expected is None:
            assert step is None
            assert f"The incident is {state}: nothing follows." in text
        elif step["allowed"]:
            assert step["command"] == expected
            assert f"Next: {usage(expected, incident.id)}" in text
        else:
            assert step["command"] == expected
            assert f"Before {expected}:" in text
            assert len(step["reasons"]) >= 1


class TestUsage:
    """Every library command has the command line's usage, and it names a real subcommand."""

    def test_every_command_has_a_usage(self) -> None:
        """A command added to the library needs its CLI entry (and this table's line)."""
        assert set(COMMANDS) - SYSTEM_COMMANDS <= set(USAGE)

    @pytest.mark.parametrize("command", sorted(USAGE))
    def test_usage_names_a_subcommand(self, command: str) -> None:
        """The words after ``incidentflow`` lead through the groups to a command."""
        words = usage(command).split()
        assert words[0] == "incidentflow"
        found: click.Command = cli
        for word in words[1:]:
            if not isinstance(found, click.Group):
                break
            sub = found.get_command(click.Context(found), word)
            assert sub is not None, f"{command}: no subcommand {word!r} in {usage(command)!r}"
            found = sub
        assert not isinstance(found, click.Group), usage(command)
