"""collect_into: collectors' redacted output lands on the incident as evidence."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from incidentflow import IncidentFlow, State
from incidentflow.collectors import Command, GitLog, collect_into
from incidentflow.exceptions import IncidentNotFound, InvalidTransition, ValidationError

TOKEN = "ghp_" + "R4nd0mT0k3n" * 4


def declare(flow: IncidentFlow) -> str:
    inc = flow.declare("Checkout returns 500", severity="P1", commander="alice", actor="alice")
    flow.start_triage(inc.id, actor="alice")
    return inc.id


class TestCollectInto:
    """Each collector's output becomes one evidence item, redacted, with a header."""

    def test_evidence_lands_on_the_incident_redacted(
        self, flow: IncidentFlow, git_repo: Path
    ) -> None:
        """Three collectors give three evidence items in order; no secret is stored."""
        incident_id = declare(flow)
        # The message is decoded at run time, so only the output holds the token.
        message = f"deploying with GITHUB_TOKEN={TOKEN}".encode().hex()
        leaky = Command(
            [sys.executable, "-c", f"print(bytes.fromhex({message!r}).decode())"],
            source="deploy script",
        )
        snapshots = collect_into(
            flow,
            incident_id,
            [GitLog(n=5, repo=str(git_repo)), leaky, Command(["definitely-not-a-tool-xyz"])],
            actor="bob",
        )
        assert [s.version for s in snapshots] == [3, 4, 5]
        evidence = flow.get(incident_id).evidence
        assert [e.source for e in evidence] == [
            f"git log -n 5 ({git_repo})",
            "deploy script",
            "definitely-not-a-tool-xyz",
        ]
        assert all(e.actor == "bob" for e in evidence)
        git, deploy, missing = (e.content for e in evidence)

        assert git.splitlines()[0].startswith("$ git -C ")
        assert " | exit 0 | " in git.splitlines()[0]
        assert git.splitlines()[1] == ""
        assert len(git.splitlines()) == 2 + 5
        assert "hunter2" not in git

        assert TOKEN not in deploy
        assert "GITHUB_TOKEN=[REDACTED:github_token]" in deploy
        assert deploy.splitlines()[0].endswith(" | 1 secret redacted")

        assert "tool not found: definitely-not-a-tool-xyz" in missing
        assert TOKEN not in "".join(str(e) for e in flow.history(incident_id))

    def test_evidence_satisfies_the_contain_guard(self, flow: IncidentFlow) -> None:
        """Collected evidence counts for the triage guard like any other evidence."""
        incident_id = declare(flow)
        assert "evidence.missing" in [r.code for r in flow.can(incident_id, "contain").reasons]
        collect_into(flow, incident_id, [Command([sys.executable, "-c", "print(1)"])], actor="bob")
        assert "evidence.missing" not in [r.code for r in flow.can(incident_id, "contain").reasons]

    def test_collect_options_are_passed_on(self, flow: IncidentFlow, tmp_path: Path) -> None:
        """timeout, max_bytes, cwd and env reach every collector."""
        incident_id = declare(flow)
        code = "import os, sys; print(os.getcwd()); sys.stdout.write('z' * 5000)"
        collect_into(
            flow,
            incident_id,
            [Command([sys.executable, "-c", code])],
            actor="bob",
            max_bytes=100,
            cwd=tmp_path,
            timeout=5,
        )
        content = flow.get(incident_id).evidence[0].content
        assert str(tmp_path.resolve()) in content
        assert "output cut" in content.splitlines()[0]

    def test_control_characters_in_a_program_name_are_stored_safely(
        self, flow: IncidentFlow
    ) -> None:
        """A program name with control characters still gives storable evidence."""
        incident_id = declare(flow)
        collect_into(flow, incident_id, [Command(["bad\x1b[2Jtool\x07"])], actor="bob")
        evidence = flow.get(incident_id).evidence[0]
        assert "\x1b" not in evidence.content
        assert "\x07" not in evidence.content
        assert "tool not found: bad" in evidence.content

    def test_the_largest_output_still_fits(self, flow: IncidentFlow) -> None:
        """At the largest cap, header and notes are cut to the evidence size limit."""
        incident_id = declare(flow)
        big = Command([sys.executable, "-c", "import sys; sys.stdout.write('x' * 1_000_000)"])
        collect_into(flow, incident_id, [big], actor="bob", max_bytes=1_000_000)
        content = flow.get(incident_id).evidence[0].content
        assert len(content) == 1_000_000
        assert content.endswith("\n[cut to fit the evidence size limit]")

    def test_a_single_collector(self, flow: IncidentFlow) -> None:
        """A lone collector is accepted as well as a list."""
        incident_id = declare(flow)
        snapshots = collect_into(
            flow, incident_id, Command([sys.executable, "-c", "print(1)"]), actor="bob"
        )
        assert len(snapshots) == 1

    def test_no_collectors(self, flow: IncidentFlow) -> None:
        """An empty list adds nothing."""
        incident_id = declare(flow)
        assert collect_into(flow, incident_id, [], actor="bob") == []
        assert not flow.get(incident_id).evidence


class TestCollectIntoRefusals:
    """Errors are raised before any command runs."""

    @staticmethod
    def marker(tmp_path: Path) -> Command:
        """A command that leaves a file behind if it ever runs."""
        return Command([sys.executable, "-c", f"open({str(tmp_path / 'ran')!r}, 'w')"])

    def test_unknown_incident(self, flow: IncidentFlow, tmp_path: Path) -> None:
        """An unknown incident raises IncidentNotFound and runs nothing."""
        with pytest.raises(IncidentNotFound):
            collect_into(flow, "INC-2026-01-01-nope", [self.marker(tmp_path)], actor="bob")
        assert not (tmp_path / "ran").exists()

    def test_closed_incident(self, flow: IncidentFlow, tmp_path: Path) -> None:
        """A dismissed incident takes no evidence: InvalidTransition, nothing runs."""
        incident_id = declare(flow)
        flow.dismiss(incident_id, reason="false alarm", actor="alice")
        assert flow.get(incident_id).state is State.DISMISSED
        with pytest.raises(InvalidTransition) as caught:
            collect_into(flow, incident_id, [self.marker(tmp_path)], actor="bob")
        assert caught.value.command == "add_evidence"
        assert not (tmp_path / "ran").exists()

    @pytest.mark.parametrize("actor", [None, "", "two\nlines"])
    def test_bad_actor(self, flow: IncidentFlow, tmp_path: Path, actor: object) -> None:
        """The actor is required and checked first."""
        incident_id = declare(flow)
        with pytest.raises(ValidationError) as caught:
            collect_into(flow, incident_id, [self.marker(tmp_path)], actor=actor)  # type: ignore[arg-type]
        assert caught.value.field == "actor"
        assert not (tmp_path / "ran").exists()

    def test_not_a_collector(self, flow: IncidentFlow, tmp_path: Path) -> None:
        """Anything but a Collector in the list is refused, naming its position."""
        incident_id = declare(flow)
        with pytest.raises(ValidationError) as caught:
            collect_into(flow, incident_id, [self.marker(tmp_path), ["ls"]], actor="bob")  # type: ignore[list-item]
        assert caught.value.field == "collectors[1]"
        assert not (tmp_path / "ran").exists()
