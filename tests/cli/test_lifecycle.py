"""The lifecycle from the terminal, command by command."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cli_terminal import (
    TITLE,
    Library,
    Terminal,
    declared,
    iso,
    ok,
    one_line_error,
    ready_to_contain,
)
from click.testing import CliRunner

from helpers import START
from incidentflow import State
from incidentflow.cli import EXIT_REJECTED, EXIT_USAGE, cli

# -- the lifecycle, command by command -------------------------------------------------


class TestDeclareAndTriage:
    """Declaring and triaging from the terminal."""

    def test_declare_quiet_prints_only_the_id(self, term: Terminal, library: Library) -> None:
        """``declare -q`` prints the new id alone, for ``ID=$(...)``."""
        result = ok(term("declare", TITLE, "-s", "p2", "-c", "alice", "-q"))
        incident_id = result.out.strip()
        assert result.out == incident_id + "\n"
        incident = library.get(incident_id)
        assert incident.state is State.DECLARED
        assert incident.severity.value == "P2"
        assert incident.commander == "alice"
        assert incident.title == TITLE

    def test_declare_prints_the_next_step(self, term: Terminal) -> None:
        """Without ``-q``, declare reports the snapshot and the command to run next."""
        result = ok(term("declare", TITLE, "-s", "P1", "-c", "alice", "--slug", "checkout"))
        match = re.search(r"INC-\d{4}-\d{2}-\d{2}-checkout", result.out)
        assert match is not None, result.out
        incident_id = match.group()
        assert f"{incident_id}: declared (P1, declared, version 1)" in result.out
        assert f"next: incidentflow triage start {incident_id}" in result.out

    def test_triage_start_and_answer(self, term: Terminal, library: Library) -> None:
        """``triage start`` acknowledges; ``triage answer`` records the answer."""
        incident_id = declared(term)
        result = ok(term("triage", "start", incident_id))
        assert "triage started" in result.out
        assert "symptom" in result.out
        ok(term("triage", "answer", incident_id, "symptom", "POST /checkout returns 500"))
        incident = library.get(incident_id)
        assert incident.state is State.TRIAGING
        assert incident.acknowledged_at is not None
        assert [(a.question, a.answer) for a in incident.triage_answers] == [
            ("symptom", "POST /checkout returns 500")
        ]


class TestEvidence:
    """Evidence by hand, from a file, from standard input, or collected."""

    def test_add_content(self, term: Terminal, library: Library) -> None:
        """``evidence add ID CONTENT --source S`` attaches it."""
        incident_id = declared(term)
        ok(term("evidence", "add", incident_id, "5xx rate 38%", "--source", "grafana"))
        [item] = library.get(incident_id).evidence
        assert (item.source, item.content) == ("grafana", "5xx rate 38%")

    def test_add_from_file(self, term: Terminal, library: Library, tmp_path: Path) -> None:
        """``--file PATH`` reads the content from the file."""
        incident_id = declared(term)
        log = tmp_path / "checkout.log"
        log.write_text("09:02 POST /checkout 500\n09:03 POST /checkout 500\n", encoding="utf-8")
        ok(term("evidence", "add", incident_id, "--source", "journal", "--file", str(log)))
        [item] = library.get(incident_id).evidence
        assert item.source == "journal"
        assert "09:02 POST /checkout 500\n09:03 POST /checkout 500" in item.content

    def test_add_from_standard_input(self, store_url: str, library: Library) -> None:
        """``--file -`` reads the content from standard input."""
        runner = CliRunner()
        declaring = runner.invoke(
            cli, ["--store", store_url, "declare", TITLE, "-s", "P1", "-c", "alice", "-q"]
        )
        assert declaring.exit_code == 0, declaring.output
        incident_id = declaring.output.strip()
        result = runner.invoke(
            cli,
            [
                "--store",
                store_url,
                "evidence",
                "add",
                incident_id,
                "--source",
                "pager",
                "--file",
                "-",
            ],
            input="piped line one\npiped line two\n",
        )
        assert result.exit_code == 0, result.output
        [item] = library.get(incident_id).evidence
        assert item.source == "pager"
        assert "piped line one\npiped line two" in item.content

    def test_content_and_file_together(self, term: Terminal, tmp_path: Path) -> None:
        """Giving both CONTENT and ``--file`` is a usage error."""
        incident_id = declared(term)
        (tmp_path / "x.txt").write_text("x", encoding="utf-8")
        result = term("evidence", "add", incident_id, "text", "--source", "s", "--file", "x.txt")
        one_line_error(result, EXIT_USAGE)


class TestEvidenceCollect:
    """``evidence collect`` runs commands and stores their redacted output."""

    def test_run_redacts_secrets(self, term: Terminal, library: Library) -> None:
        """Secrets a command prints are redacted before they are stored or shown."""
        incident_id = declared(term)
        program = (
            "print('db password=hunter2'); "
            "print('Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0dG9rZW4.sig0123')"
        )
        command = shlex.join([sys.executable, "-c", program])
        result = ok(term("evidence", "collect", incident_id, "--run", command))
        [item] = library.get(incident_id).evidence
        for secret in ("hunter2", "eyJhbGciOiJIUzI1NiJ9", "c2VjcmV0dG9rZW4"):
            assert secret not in item.content
            assert secret not in item.source
            assert secret not in result.out
        assert "REDACTED" in item.content
        history = json.dumps([e.type for e in library.history(incident_id)])
        assert "evidence_added" in history

    def test_run_missing_tool(self, term: Terminal, library: Library) -> None:
        """A tool that is not installed is recorded as missing, and the command exits 0."""
        incident_id = declared(term)
        ok(term("evidence", "collect", incident_id, "--run", "no-such-tool-9f3a --version"))
        [item] = library.get(incident_id).evidence
        assert "no-such-tool-9f3a" in item.content
        assert "not found" in item.content

    def test_git_log(
        self, term: Terminal, library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``--git REPO`` stores the repository's recent commits."""
        repo = tmp_path / "repo"
        repo.mkdir()
        git = ["git", "-c", "user.name=Dana", "-c", "user.email=dana@example.com"]
        (repo / "config.toml").write_text("currency = 'EUR'\n", encoding="utf-8")
        for argv in (
            ["git", "init", "-q"],
            ["git", "add", "config.toml"],
            [*git, "commit", "-q", "-m", "Remove the currency default"],
        ):
            subprocess.run(argv, cwd=repo, check=True, capture_output=True)
        incident_id = declared(term)
        monkeypatch.chdir(repo)
        data = ok(term("--json", "evidence", "collect", incident_id, "--git", ".")).json()
        assert len(data["collected"]) == 1
        assert data["incident"]["evidence"][-1]["source"] == data["collected"][0]["source"]
        [item] = library.get(incident_id).evidence
        assert "Remove the currency default" in item.content
        assert "Dana" in item.content

    def test_several_collectors(self, term: Terminal, library: Library) -> None:
        """Each ``--run`` adds its own evidence item, in order."""
        incident_id = declared(term)
        first = shlex.join([sys.executable, "-c", "print('first output')"])
        second = shlex.join([sys.executable, "-c", "print('second output')"])
        result = ok(term("evidence", "collect", incident_id, "--run", first, "--run", second))
        assert "2 evidence item(s) collected" in result.out
        first_item, second_item = library.get(incident_id).evidence
        assert "first output" in first_item.content
        assert "second output" in second_item.content

    def test_nothing_chosen(self, term: Terminal, library: Library) -> None:
        """Without a collector the command exits 2 naming the choices."""
        incident_id = declared(term)
        error = one_line_error(term("evidence", "collect", incident_id), EXIT_USAGE)
        assert "--git" in error
        assert "--run" in error
        assert library.get(incident_id).version == 1


class TestContainment:
    """``contain``: record actions, then declare the incident contained."""

    def test_dated_action_then_done(self, term: Terminal, library: Library) -> None:
        """``contain ID ACTION --at TIME --done`` records the action at that time, in UTC."""
        incident_id = ready_to_contain(term)
        taken = datetime.now(UTC)  # after the declaration: an earlier time is refused
        local = taken.astimezone(timezone(timedelta(hours=2)))
        result = ok(term("contain", incident_id, "Rolled back to 41", "--at", iso(local), "--done"))
        assert "contained" in result.out
        assert f"next: incidentflow rca start {incident_id}" in result.out
        incident = library.get(incident_id)
        assert incident.state is State.CONTAINED
        [action] = incident.containment
        assert action.description == "Rolled back to 41"
        assert action.at == taken
        assert action.at.utcoffset() == timedelta(0)

    def test_action_alone(self, term: Terminal, library: Library) -> None:
        """Without ``--done`` only the action is recorded; the state stays triaging."""
        incident_id = ready_to_contain(term)
        ok(term("contain", incident_id, "Rolled back to 41"))
        incident = library.get(incident_id)
        assert incident.state is State.TRIAGING
        assert len(incident.containment) == 1

    def test_at_without_action(self, term: Terminal) -> None:
        """``--at`` without an ACTION is a usage error."""
        incident_id = ready_to_contain(term)
        error = one_line_error(
            term("contain", incident_id, "--at", iso(START), "--done"), EXIT_USAGE
        )
        assert "--at" in error


class TestRootCauseAndFix:
    """``rca``, ``fix`` and ``deploy`` from a contained incident to a fixed one."""

    def test_rca_fix_and_deploy(self, term: Terminal, library: Library) -> None:
        """Each step lands in the incident; ``fix --done`` marks it fixed."""
        incident_id = library.drive("contained", "P2").id
        ok(term("rca", "start", incident_id))
        ok(term("rca", "why", incident_id, "The payment client sent an empty currency"))
        ok(term("rca", "why", incident_id, "The config default was removed"))
        ok(
            term(
                "rca",
                "root-cause",
                incident_id,
                "A default removed without a test",
                "--gap",
                "Config changes are not tested",
            )
        )
        ok(
            term(
                "fix",
                incident_id,
                "Restore the default",
                "--test",
                "test_currency",
                "--staging-verified",
            )
        )
        deployed = (datetime.now(UTC) - timedelta(minutes=3)).replace(microsecond=0)
        ok(term("deploy", incident_id, "--ref", "2026.11.27-2", "--at", iso(deployed)))
        result = ok(term("fix", incident_id, "--done"))
        assert f"next: incidentflow confirm {incident_id} --user NAME" in result.out

        incident = library.get(incident_id)
        assert incident.state is State.FIXED
        assert [w.answer for w in incident.whys][-2:] == [
            "The payment client sent an empty currency",
            "The config default was removed",
        ]
        assert incident.root_cause is not None
        assert incident.root_cause.statement == "A default removed without a test"
        assert incident.root_cause.process_gap == "Config changes are not tested"
        assert incident.fix is not None
        assert (incident.fix.test, incident.fix.staging_verified) == ("test_currency", True)
        assert (incident.deploys[-1].ref, incident.deploys[-1].deployed_at) == (
            "2026.11.27-2",
            deployed,
        )

    def test_fix_without_test_is_a_usage_error(self, term: Terminal, library: Library) -> None:
        """A fix DESCRIPTION without ``--test`` exits 2 and records nothing."""
        incident = library.drive("rca", "P2")
        result = term("fix", incident.id, "Restore the default", "--staging-verified")
        error = one_line_error(result, EXIT_USAGE)
        assert "--test" in error
        assert library.get(incident.id) == incident


class TestConfirmationAndClosing:
    """``confirm``, ``resolve``, ``reopen`` and ``dismiss``."""

    def test_confirm_then_resolve(self, term: Terminal, library: Library) -> None:
        """A positive confirmation by a real user lets ``resolve`` close the response."""
        incident_id = library.drive("fixed", "P2").id
        ok(term("confirm", incident_id, "--user", "bob", "--comment", "Checkout works again"))
        ok(term("resolve", incident_id))
        incident = library.get(incident_id)
        assert incident.state is State.RESOLVED
        assert incident.confirmation is not None
        assert (incident.confirmation.user, incident.confirmation.positive) == ("bob", True)
        assert incident.confirmation.comment == "Checkout works again"

    def test_negative_confirmation_reopens_to_rca(self, term: Terminal, library: Library) -> None:
        """``confirm --negative`` records that the problem persists and goes back to rca."""
        incident_id = library.drive("fixed", "P2").id
        result = ok(term("confirm", incident_id, "--user", "bob", "--negative"))
        assert "persists" in result.out
        incident = library.get(incident_id)
        assert incident.state is State.RCA
        assert incident.reopen_count == 1
        confirmed, reopened = library.history(incident_id)[-2:]
        assert (confirmed.type, reopened.type) == ("user_confirmed", "reopened")
        assert (confirmed.data.user, confirmed.data.positive) == ("bob", False)

    def test_reopen(self, term: Terminal, library: Library) -> None:
        """``reopen`` takes a resolved incident back to rca, or triaging with ``--to``."""
        resolved = library.drive("resolved", "P2").id
        ok(term("reopen", resolved, "--reason", "errors came back at 11:00"))
        incident = library.get(resolved)
        assert incident.state is State.RCA
        assert incident.reopen_count == 1

        fixed = library.drive("fixed", "P2", texts={"title": "Search is slow"}).id
        ok(term("reopen", fixed, "--reason", "wrong diagnosis", "--to", "triaging"))
        assert library.get(fixed).state is State.TRIAGING

    def test_dismiss_duplicate(self, term: Terminal, library: Library) -> None:
        """``dismiss --duplicate-of`` closes the duplicate and points at the original."""
        original = declared(term)
        duplicate = declared(term, "Checkout is down", "P1", "bob")
        ok(term("dismiss", duplicate, "--reason", "same outage", "--duplicate-of", original))
        incident = library.get(duplicate)
        assert incident.state is State.DISMISSED
        assert incident.duplicate_of == original
        assert incident.dismissal_reason == "same outage"
        assert library.get(original).state is State.DECLARED


class TestPostmortemAndKnowledgeBase:
    """``postmortem``, ``action`` and ``kb`` close a P1."""

    def test_draft_complete_and_kb(self, term: Terminal, library: Library, tmp_path: Path) -> None:
        """The post-mortem's root cause defaults to the incident's; kb closes it."""
        incident = library.drive("resolved", "P1")
        assert incident.root_cause is not None
        ok(term("postmortem", "draft", incident.id, "--summary", "Checkout failed 14 minutes."))
        drafted = library.get(incident.id)
        assert drafted.postmortem is not None
        assert drafted.postmortem.summary == "Checkout failed 14 minutes."
        assert drafted.postmortem.root_cause == incident.root_cause.statement

        ok(
            term(
                "action",
                "add",
                incident.id,
                "Load the production config in CI",
                "--owner",
                "carol",
                "--due",
                "2026-12-11",
            )
        )
        ok(
            term(
                "postmortem",
                "complete",
                incident.id,
                "--went-well",
                "Rollback took 3 minutes",
                "--went-poorly",
                "The alert fired late",
                "--went-poorly",
                "No runbook",
            )
        )
        completed = library.get(incident.id)
        assert completed.state is State.POSTMORTEM
        assert completed.postmortem is not None
        assert completed.postmortem.completed_at is not None
        assert completed.postmortem.summary == "Checkout failed 14 minutes."
        assert completed.postmortem.went_poorly == ("The alert fired late", "No runbook")

        ok(
            term(
                "kb",
                incident.id,
                "--symptom",
                "Checkout 500 after a deploy",
                "--early-signs",
                "currency missing in the logs",
            )
        )
        closed = library.get(incident.id)
        assert closed.state is State.KB_UPDATED
        assert closed.kb_entry is not None
        assert closed.kb_entry.symptom == "Checkout 500 after a deploy"
        assert closed.kb_entry.root_cause == incident.root_cause.statement
        assert list((tmp_path / ".agent" / "knowledge" / "gotchas").glob("*.md"))

    def test_action_add_and_done(self, term: Terminal, library: Library) -> None:
        """``action add`` numbers the item with its owner and due date; ``action done`` ticks it."""
        incident_id = library.drive("resolved", "P1").id
        result = ok(
            term(
                "action",
                "add",
                incident_id,
                "Add a load test",
                "--owner",
                "dana",
                "--due",
                "2026-12-11",
            )
        )
        assert "action item #1 added" in result.out
        ok(term("action", "done", incident_id, "1"))
        [item] = library.get(incident_id).action_items
        assert (item.number, item.owner, item.due) == (1, "dana", date(2026, 12, 11))
        assert item.done_at is not None

    def test_kb_refused_before_the_postmortem(self, term: Terminal, library: Library) -> None:
        """A P1 without a completed post-mortem cannot be closed: exit 1."""
        incident = library.drive("resolved", "P1")
        result = term("kb", incident.id, "--symptom", "s", "--early-signs", "e")
        assert result.code == EXIT_REJECTED
        assert library.get(incident.id) == incident


class TestAnytimeRecords:
    """``note``, ``reclassify``, ``assign`` and ``detect`` work in any open state."""

    def test_note_on_a_closed_incident(self, term: Terminal, library: Library) -> None:
        """A note can still be added after the incident is closed."""
        incident_id = library.drive("kb_updated", "P3").id
        ok(term("note", incident_id, "the vendor confirmed the bug"))
        incident = library.get(incident_id)
        assert incident.state is State.KB_UPDATED
        assert incident.notes[-1].text == "the vendor confirmed the bug"

    def test_reclassify(self, term: Terminal, library: Library) -> None:
        """``reclassify ID P2 --reason R`` changes the severity."""
        incident_id = declared(term, severity="P3")
        result = ok(term("reclassify", incident_id, "p2", "--reason", "payments affected"))
        assert "reclassified to P2" in result.out
        assert library.get(incident_id).severity.value == "P2"

    def test_assign(self, term: Terminal, library: Library) -> None:
        """``assign ID NAME`` hands the incident over."""
        incident_id = declared(term)
        ok(term("assign", incident_id, "bob"))
        assert library.get(incident_id).commander == "bob"

    def test_detect(self, term: Terminal, library: Library) -> None:
        """``detect`` records how and when the issue was detected, in UTC."""
        incident_id = declared(term)
        ok(
            term(
                "detect",
                incident_id,
                "--method",
                "alert",
                "--first-occurred-at",
                "2026-11-27T08:55+01:00",
                "--detected-at",
                "2026-11-27T08:01Z",
            )
        )
        detection = library.get(incident_id).detection
        assert detection is not None
        assert detection.method == "alert"
        assert detection.first_occurred_at == datetime(2026, 11, 27, 7, 55, tzinfo=UTC)
        assert detection.detected_at == datetime(2026, 11, 27, 8, 1, tzinfo=UTC)


class TestTwoStepCommands:
    """``contain ACTION --done`` and ``fix DESCRIPTION --done`` say what was kept."""

    def test_refused_done_keeps_the_action(self, term: Terminal, library: Library) -> None:
        """The action is recorded, the refusal says so, and nothing else moved."""
        incident_id = declared(term)
        ok(term("triage", "start", incident_id))
        outcome = term("contain", incident_id, "Rolled back", "--done")
        assert outcome.code == EXIT_REJECTED
        assert "the containment action was recorded (version 3)" in outcome.err
        incident = library.get(incident_id)
        assert [c.description for c in incident.containment] == ["Rolled back"]
        assert incident.state is State.TRIAGING
