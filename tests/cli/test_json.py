"""``--json``: one JSON document of the documented shape, errors too."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
import pytest
from cli_terminal import TITLE, Library, Terminal, declared, ok, sqlite_url

from incidentflow import IncidentFlow
from incidentflow.cli import EXIT_FAILED, EXIT_REJECTED, EXIT_USAGE

# -- --json ------------------------------------------------------------------------------------


class TestJsonOutput:
    """``--json`` prints one JSON document with the documented shape."""

    def test_declare(self, term: Terminal, library: Library) -> None:
        """``declare`` prints the whole new snapshot."""
        data = ok(term("--json", "declare", TITLE, "-s", "P1", "-c", "alice")).json()
        assert data["state"] == "declared"
        assert data["severity"] == "P1"
        assert data["version"] == 1
        assert data["title"] == TITLE
        assert library.ids() == [data["id"]]

    def test_declare_quiet_still_prints_json(self, term: Terminal) -> None:
        """With ``--json``, ``-q`` does not replace the snapshot with the bare id."""
        data = ok(term("--json", "declare", TITLE, "-s", "P1", "-c", "alice", "-q")).json()
        assert data["id"].startswith("INC-")

    def test_show(self, term: Terminal, library: Library) -> None:
        """``show`` prints the incident and its next step with every reason, code first."""
        incident_id = declared(term)
        data = ok(term("--json", "show", incident_id)).json()
        assert data["incident"]["id"] == incident_id
        assert data["next"] == {"command": "start_triage", "allowed": True, "reasons": []}
        ok(term("triage", "start", incident_id))
        data = ok(term("--json", "show", incident_id)).json()
        assert data["next"]["command"] == "contain"
        assert data["next"]["allowed"] is False
        with library.flow() as flow:
            expected = [r.to_dict() for r in flow.can(incident_id, "contain").reasons]
        assert len(expected) == 3
        assert data["next"]["reasons"] == expected
        for reason in data["next"]["reasons"]:
            assert set(reason) == {"code", "message", "data"}
            assert reason["code"].count(".") >= 1

    def test_show_closed(self, term: Terminal, library: Library) -> None:
        """A closed incident has no next step: ``next`` is null."""
        incident = library.drive("kb_updated", "P3")
        data = ok(term("--json", "show", incident.id)).json()
        assert data["incident"]["state"] == "kb_updated"
        assert data["next"] is None

    def test_list(self, term: Terminal) -> None:
        """``list`` prints one summary object per incident, newest first."""
        first = declared(term, "Search is slow", "P3")
        second = declared(term)
        data = ok(term("--json", "list")).json()
        assert [row["id"] for row in data] == [second, first]
        assert set(data[0]) == {
            "id",
            "title",
            "severity",
            "state",
            "commander",
            "declared_at",
            "version",
        }
        assert datetime.fromisoformat(data[0]["declared_at"]).tzinfo is not None

    def test_timeline(self, term: Terminal) -> None:
        """``timeline`` prints every event with its seq, type, time, actor and data."""
        incident_id = declared(term)
        ok(term("note", incident_id, "paged the payments team"))
        data = ok(term("--json", "timeline", incident_id)).json()
        assert [(e["seq"], e["type"]) for e in data] == [(1, "declared"), (2, "note_added")]
        assert data[1]["data"]["text"] == "paged the payments team"
        assert {"incident_id", "at", "actor"} <= set(data[0])

    def test_metrics(self, term: Terminal, library: Library) -> None:
        """``metrics`` prints a summary per group with counts, MTTA and MTTR in seconds."""
        library.drive("resolved", "P1")
        library.drive("kb_updated", "P3", texts={"title": "Search is slow"})
        [summary] = ok(term("--json", "metrics")).json()
        assert summary["count"] == 2
        assert isinstance(summary["mtta"], float)
        assert isinstance(summary["mttr"], float)
        assert summary["time_to_resolve"]["count"] == 2
        counts = {(c["severity"], c["state"]): c["count"] for c in summary["counts"]}
        assert counts == {("P1", "resolved"): 1, ("P3", "kb_updated"): 1}
        by_severity = ok(term("--json", "metrics", "--by", "severity")).json()
        assert sorted(s["severity"] for s in by_severity) == ["P1", "P3"]

    def test_deadlines(self, term: Terminal) -> None:
        """``deadlines`` prints each deadline with its due time and whether it was breached."""
        incident_id = declared(term)
        data = ok(term("--json", "deadlines", incident_id)).json()
        assert data
        for deadline in data:
            assert {"kind", "subject", "due_at", "met_at", "breached"} <= set(deadline)
            assert datetime.fromisoformat(deadline["due_at"]).tzinfo is not None
            assert deadline["breached"] is False

    def test_deliver(self, term: Terminal) -> None:
        """``deliver`` prints the delivery report as counts."""
        declared(term)
        assert ok(term("--json", "deliver")).json() == {"delivered": 0, "retrying": 0, "dead": 0}

    def test_similar(self, term: Terminal) -> None:
        """``similar`` prints the matches with id, title, severity, state and score."""
        old = declared(term, "Payment gateway timeout", "P2")
        new = declared(term, "Checkout payment gateway timeout", "P1")
        data = ok(term("--json", "similar", new)).json()
        assert [m["incident_id"] for m in data] == [old]
        assert data[0]["severity"] == "P2"
        assert data[0]["state"] == "declared"
        assert isinstance(data[0]["score"], float)

    def test_triage_start_lists_similar(self, term: Terminal) -> None:
        """``triage start`` answers the snapshot and, beside it, the similar past incidents."""
        old = declared(term, "Payment gateway timeout", "P2")
        new = declared(term, "Checkout payment gateway timeout", "P1")
        data = ok(term("--json", "triage", "start", new)).json()
        assert set(data) == {"incident", "similar"}
        assert data["incident"]["state"] == "triaging"
        assert [m["incident_id"] for m in data["similar"]] == [old]

    @pytest.mark.parametrize(
        ("argv", "code", "error"),
        [
            pytest.param(
                ["contain", "{id}", "--done"], EXIT_REJECTED, "TransitionRejected", id="rejected"
            ),
            pytest.param(
                ["rca", "start", "{id}"],
                EXIT_REJECTED,
                "InvalidTransition",
                id="invalid-transition",
            ),
            pytest.param(
                ["show", "INC-2026-01-01-nope"],
                EXIT_USAGE,
                "IncidentNotFound",
                id="unknown-incident",
            ),
            pytest.param(
                ["declare", "", "-s", "P1", "-c", "a"],
                EXIT_USAGE,
                "ValidationError",
                id="empty-title",
            ),
        ],
    )
    def test_error_object(
        self, term: Terminal, library: Library, argv: list[str], code: int, error: str
    ) -> None:
        """An error prints ``{"error", "message", "reasons"}``; each reason has its code."""
        incident_id = declared(term)
        ok(term("triage", "start", incident_id))
        result = term("--json", *[a.replace("{id}", incident_id) for a in argv])
        assert result.code == code
        data = result.json()
        assert set(data) == {"error", "message", "reasons"}
        assert data["error"] == error
        assert data["message"]
        if error == "TransitionRejected":
            with library.flow() as flow:
                expected = flow.can(incident_id, "contain").reasons
            assert [r["code"] for r in data["reasons"]] == [r.code for r in expected]
            assert [r["message"] for r in data["reasons"]] == [r.message for r in expected]
            assert all(isinstance(r["data"], dict) for r in data["reasons"])
        else:
            assert data["reasons"] == []

    def test_store_failure_object(self, term: Terminal, tmp_path: Path) -> None:
        """A store failure with ``--json`` prints the error object and exits 3."""
        (tmp_path / "a-file").write_text("x", encoding="utf-8")
        url = sqlite_url(tmp_path / "a-file" / "x.db")
        result = term("--json", "--store", url, "list", bare=True)
        assert result.code == EXIT_FAILED
        assert result.json()["error"] == "StoreError"

    @pytest.mark.parametrize(
        ("argv", "named"),
        [
            pytest.param(["declare", "X", "-s", "P9", "-c", "alice"], "severity", id="severity"),
            pytest.param(["contain", "{id}", "x", "--at", "2026-11-27T09:00"], "--at", id="at"),
            pytest.param(["frobnicate"], "frobnicate", id="unknown-command"),
        ],
    )
    def test_usage_error_object(self, term: Terminal, argv: list[str], named: str) -> None:
        """A usage error with ``--json`` prints the error object too (docs: "errors too")."""
        incident_id = declared(term)
        result = term("--json", *[a.replace("{id}", incident_id) for a in argv])
        assert result.code == EXIT_USAGE
        assert result.out.strip(), "nothing on standard output"
        data = result.json()
        assert set(data) == {"error", "message", "reasons"}
        assert named in data["message"]

    def test_text_that_reads_json_is_not_the_option(self, term: Terminal) -> None:
        """A note whose text is ``--json`` does not switch error output to JSON."""
        result = term("note", "INC-2026-01-01-nope", "--", "--json")
        assert result.code == EXIT_USAGE
        assert result.out == ""


class TestEveryFailureAsJson:
    """Failures outside the library's errors print one JSON error object with ``--json`` too."""

    @pytest.mark.parametrize(
        "argv",
        [
            pytest.param(["export", "-o", "a-file/out.jsonl"], id="export"),
            pytest.param(["init", "--path", "a-file/incidentflow.toml"], id="init"),
        ],
    )
    def test_environment_failure(self, term: Terminal, argv: list[str]) -> None:
        """A file that cannot be written: exit 3, one line, and the object naming the file."""
        declared(term)
        Path("a-file").write_text("a folder's name taken by a file\n", encoding="utf-8")
        result = term("--json", *argv)
        assert result.code == EXIT_FAILED, result.err
        data = result.json()
        assert data["error"] == "EnvironmentFailure"
        assert argv[-1] in data["message"]
        assert data["reasons"] == []
        assert len(result.err_lines) == 1

    def test_a_group_without_its_command(self, term: Terminal) -> None:
        """``--json action``: the object on standard output, the group's help on standard error."""
        result = term("--json", "action")
        assert result.code == EXIT_USAGE
        assert result.json()["error"] == "UsageError"
        assert "incidentflow action --help" in result.json()["message"]
        assert "Usage: incidentflow action" in result.err

    @pytest.mark.parametrize(
        ("raised", "error", "code"),
        [
            pytest.param(KeyboardInterrupt, "KeyboardInterrupt", 130, id="ctrl-c"),
            pytest.param(click.Abort, "Abort", EXIT_USAGE, id="abort"),
            pytest.param(PermissionError, "PermissionError", EXIT_FAILED, id="os-error"),
        ],
    )
    def test_interrupted_or_failed(
        self,
        term: Terminal,
        monkeypatch: pytest.MonkeyPatch,
        raised: type[BaseException],
        error: str,
        code: int,
    ) -> None:
        """Ctrl-C, an abort or an operating-system error: the exit code, and the object."""
        incident_id = declared(term)

        def fails(*args: object, **kwargs: object) -> None:
            raise raised

        monkeypatch.setattr(IncidentFlow, "get", fails)
        result = term("show", incident_id, "--json")
        assert result.code == code
        assert result.json()["error"] == error
