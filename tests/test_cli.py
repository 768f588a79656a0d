"""The ``incidentflow`` command line: exit codes, output, and its effect on the store.

Most tests call :func:`incidentflow.cli.main` in-process on a SQLite store in
the test's own folder and check the result through the library, on the same
store. A few run real processes to prove the entry points. The whole P1
incident through a shell is ``test_docs_cli.py``'s (it runs the tutorial).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers import START, drive_to
from incidentflow import (
    Event,
    Incident,
    IncidentFlow,
    State,
    __version__,
    default_config_toml,
    load_config,
)
from incidentflow._transfer import export_lines
from incidentflow.cli import EXIT_FAILED, EXIT_OK, EXIT_REJECTED, EXIT_USAGE, cli, main
from incidentflow.testing import FrozenClock

#: The console script installed next to this interpreter.
SCRIPT = Path(sys.executable).parent / "incidentflow"
TITLE = "Checkout returns 500"


# -- running the command line ---------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one run of the command line left: its exit code and both streams."""

    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.strip().splitlines()

    def json(self) -> Any:
        return json.loads(self.out)


class Terminal:
    """Runs ``main([...])`` in-process on the test's store and captures what it prints."""

    def __init__(self, capsys: pytest.CaptureFixture[str], store_url: str) -> None:
        self.capsys = capsys
        self.store_url = store_url

    def __call__(self, *args: str, bare: bool = False) -> Outcome:
        """Run ``incidentflow --store URL ARGS...`` (``bare``: without ``--store``)."""
        argv = list(args) if bare else ["--store", self.store_url, *args]
        self.capsys.readouterr()
        code = main(argv)
        captured = self.capsys.readouterr()
        return Outcome(code, captured.out, captured.err)


def ok(outcome: Outcome) -> Outcome:
    """``outcome``, checked to have succeeded."""
    assert outcome.code == EXIT_OK, outcome.err
    assert "Traceback" not in outcome.err
    return outcome


def one_line_error(outcome: Outcome, code: int) -> str:
    """The single line ``outcome`` printed on standard error, checked to exit with ``code``."""
    assert outcome.code == code, (outcome.code, outcome.out, outcome.err)
    assert "Traceback" not in outcome.err
    assert len(outcome.err_lines) == 1, outcome.err
    return outcome.err_lines[0]


class Library:
    """The test's store seen through the library, to check what the command line did."""

    def __init__(self, url: str) -> None:
        self.url = url

    @contextmanager
    def flow(self, clock: FrozenClock | None = None) -> Iterator[IncidentFlow]:
        options: dict[str, Any] = {} if clock is None else {"clock": clock}
        flow = IncidentFlow.open(self.url, incidents_dir=None, knowledge_dir=None, **options)
        try:
            yield flow
        finally:
            flow.close()

    def get(self, incident_id: str) -> Incident:
        with self.flow() as flow:
            return flow.get(incident_id)

    def history(self, incident_id: str) -> list[Event]:
        with self.flow() as flow:
            return list(flow.history(incident_id))

    def ids(self) -> list[str]:
        with self.flow() as flow:
            return sorted(i.id for i in flow.list())

    def drive(self, state: State | str, severity: str = "P1", **options: Any) -> Incident:
        """A new incident driven to ``state`` by the library, its history starting 3 hours ago."""
        clock = FrozenClock(datetime.now(UTC) - timedelta(hours=3))
        with self.flow(clock) as flow:
            return drive_to(flow, clock, state, severity, **options)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def process(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in ``cwd`` without the host's INCIDENTFLOW_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTFLOW_")}
    return subprocess.run(
        list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def declared(
    term: Terminal, title: str = TITLE, severity: str = "P1", commander: str = "alice"
) -> str:
    """Declare an incident through the command line; its id."""
    return ok(term("declare", title, "-s", severity, "-c", commander, "-q")).out.strip()


def ready_to_contain(term: Terminal) -> str:
    """A P1 in triage with evidence and every triage answer: only containment is missing."""
    incident_id = declared(term)
    ok(term("triage", "start", incident_id))
    ok(term("evidence", "add", incident_id, "5xx rate 38% since 09:02", "--source", "grafana"))
    ok(term("triage", "answer", incident_id, "symptom", "POST /checkout returns 500"))
    ok(term("triage", "answer", incident_id, "started_at", "09:02 UTC, after deploy 41"))
    ok(term("triage", "answer", incident_id, "scope", "all card payments"))
    return incident_id


def iso(moment: datetime) -> str:
    return moment.isoformat()


# -- fixtures ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own empty folder, whatever INCIDENTFLOW_* the host has set."""
    for name in list(os.environ):
        if name.startswith("INCIDENTFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    assert load_config().source is None, "a configuration file above the test folder leaks in"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "incidents.db")


@pytest.fixture
def term(capsys: pytest.CaptureFixture[str], store_url: str) -> Terminal:
    return Terminal(capsys, store_url)


@pytest.fixture
def library(store_url: str) -> Library:
    return Library(store_url)


# -- entry points ----------------------------------------------------------------


class TestEntryPoints:
    """``python -m incidentflow`` and the console script, as real processes."""

    def test_module_prints_the_version(self, tmp_path: Path) -> None:
        """``python -m incidentflow --version`` prints the package version and exits 0."""
        run = process([sys.executable, "-m", "incidentflow", "--version"], tmp_path)
        assert run.returncode == 0, run.stderr
        assert __version__ in run.stdout

    def test_console_script_help(self, tmp_path: Path) -> None:
        """``incidentflow --help`` exits 0, lists the commands and keeps the lifecycle line."""
        run = process([str(SCRIPT), "--help"], tmp_path)
        assert run.returncode == 0, run.stderr
        for command in ("declare", "triage", "contain", "export", "import", "verify"):
            assert command in run.stdout
        lines = [line.strip() for line in run.stdout.splitlines()]
        assert "declare → triage → contain → rca → fix → resolve → postmortem → kb" in lines
        assert "\\b" not in run.stdout, "click's no-rewrap marker is printed literally"

    def test_import_incidentflow_does_not_import_click(self, tmp_path: Path) -> None:
        """``import incidentflow`` stays light: click loads only with the command line."""
        code = "import incidentflow, sys; print('click' in sys.modules)"
        run = process([sys.executable, "-c", code], tmp_path)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "False"

    def test_exit_codes_of_a_real_process(self, tmp_path: Path) -> None:
        """Each exit code reaches the shell, with one line of error and no traceback."""
        store = sqlite_url(tmp_path / "incidents.db")
        (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
        script = [str(SCRIPT), "--store", store]
        module = [sys.executable, "-m", "incidentflow", "--store", store]

        run = process([*script, "declare", TITLE, "-s", "P1", "-c", "alice", "-q"], tmp_path)
        assert run.returncode == EXIT_OK, run.stderr
        incident_id = run.stdout.strip()
        assert incident_id.startswith("INC-")

        cases = [
            ([*script, "contain", incident_id, "--done"], EXIT_REJECTED),
            ([*module, "show", "INC-2026-01-01-no-such-thing"], EXIT_USAGE),
            ([*script, "contain", incident_id, "x", "--at", "2026-11-27T09:00"], EXIT_USAGE),
            ([*module, "frobnicate"], EXIT_USAGE),
            (
                [str(SCRIPT), "--store", sqlite_url(tmp_path / "a-file" / "x.db"), "list"],
                EXIT_FAILED,
            ),
        ]
        for argv, expected in cases:
            run = process(argv, tmp_path)
            assert run.returncode == expected, (argv, run.stderr)
            assert "Traceback" not in run.stderr, run.stderr
            assert len(run.stderr.strip().splitlines()) == 1, run.stderr

    def test_rejection_in_a_real_process(self, tmp_path: Path) -> None:
        """A guard rejection exits 1 with its reasons on standard error, without a traceback."""
        store = sqlite_url(tmp_path / "incidents.db")
        base = [sys.executable, "-m", "incidentflow", "--store", store]
        run = process([*base, "declare", TITLE, "-s", "P1", "-c", "alice", "-q"], tmp_path)
        incident_id = run.stdout.strip()
        assert process([*base, "triage", "start", incident_id], tmp_path).returncode == 0
        run = process([*base, "contain", incident_id, "--done"], tmp_path)
        assert run.returncode == EXIT_REJECTED
        assert "Traceback" not in run.stderr
        assert run.stderr.startswith(f"incidentflow: rejected: {incident_id} cannot contain yet:")


# -- exit code 1: rejected by the process -------------------------------------------


class TestRejections:
    """A refused step exits 1 and says why; the incident stays as it was."""

    def test_guard_rejection_prints_every_reason_one_a_line(
        self, term: Terminal, library: Library
    ) -> None:
        """Containing too early exits 1 and prints each unmet guard on its own line."""
        incident_id = declared(term)
        ok(term("triage", "start", incident_id))
        with library.flow() as flow:
            reasons = flow.can(incident_id, "contain").reasons
        assert len(reasons) == 3
        before = library.get(incident_id)

        result = term("contain", incident_id, "--done")

        assert result.code == EXIT_REJECTED
        assert "Traceback" not in result.err
        lines = result.err_lines
        assert lines[0] == f"incidentflow: rejected: {incident_id} cannot contain yet:"
        listed = lines[1:]
        assert len(listed) == len(reasons)
        for reason, line in zip(reasons, listed, strict=True):
            assert line.startswith("  - ")
            assert reason.split(":")[0] in line
        assert "incidentflow evidence add" in result.err
        assert library.get(incident_id) == before

    def test_command_outside_its_state(self, term: Terminal, library: Library) -> None:
        """``rca start`` on a declared incident exits 1 naming the state it needs."""
        incident_id = declared(term)
        error = one_line_error(term("rca", "start", incident_id), EXIT_REJECTED)
        assert error.startswith("incidentflow: rejected:")
        assert "declared" in error
        assert "contained" in error
        assert library.get(incident_id).version == 1

    def test_explicit_slug_taken(self, term: Terminal, library: Library) -> None:
        """Declaring twice with the same ``--slug`` exits 1 the second time."""
        ok(term("declare", TITLE, "-s", "P2", "-c", "alice", "--slug", "checkout"))
        result = term("declare", "Other", "-s", "P2", "-c", "alice", "--slug", "checkout")
        error = one_line_error(result, EXIT_REJECTED)
        assert "already exists" in error
        assert len(library.ids()) == 1

    def test_action_item_that_does_not_exist(self, term: Terminal) -> None:
        """``action done`` of an unknown item number exits 1 saying which items there are."""
        incident_id = declared(term)
        result = term("action", "done", incident_id, "9")
        assert result.code == EXIT_REJECTED
        assert "there is no action item 9" in result.err


# -- exit code 2: usage and input errors ------------------------------------------------

BAD_VALUES = [
    pytest.param(
        ["contain", "{id}", "Rolled back", "--at", "2026-11-27T09:00"], "--at", id="naive"
    ),
    pytest.param(["contain", "{id}", "Rolled back", "--at", "yesterday"], "--at", id="not-a-time"),
    pytest.param(
        ["contain", "{id}", "Rolled back", "--at", "9999-12-31T23:59:59-23:59"],
        "--at",
        id="time-beyond-utc-range",
    ),
    pytest.param(
        ["list", "--since", "0001-01-01T00:00+01:00"], "--since", id="time-before-utc-range"
    ),
    pytest.param(
        ["action", "add", "{id}", "Add a load test", "--owner", "dana", "--due", "2026-13-01"],
        "--due",
        id="bad-date",
    ),
    pytest.param(["declare", "X", "-s", "P9", "-c", "alice"], "--severity", id="severity"),
    pytest.param(["declare", "", "-s", "P1", "-c", "alice"], "title", id="empty-title"),
    pytest.param(["declare", "x" * 300, "-s", "P1", "-c", "alice"], "title", id="long-title"),
    pytest.param(
        ["declare", "X", "-s", "P1", "-c", "alice", "--slug", "../../etc"], "slug", id="path-slug"
    ),
    pytest.param(["check-deadlines", "--now", "2026-11-27T09:00"], "--now", id="naive-now"),
    pytest.param(["list", "--limit", "0"], "--limit", id="limit"),
    pytest.param(
        ["evidence", "add", "{id}", "--source", "s", "--file", "no-such-file.txt"],
        "--file",
        id="missing-file",
    ),
    pytest.param(
        ["evidence", "collect", "{id}", "--run", "echo 'unterminated"], "--run", id="bad-run"
    ),
    pytest.param(["triage", "answer", "{id}", "symptom", ""], "answer", id="empty-answer"),
    pytest.param(["fix", "{id}", "Restore the default"], "--test", id="fix-without-test"),
    pytest.param(["contain", "{id}"], "ACTION", id="contain-without-action"),
    pytest.param(["evidence", "add", "{id}", "--source", "s"], "CONTENT", id="no-evidence"),
]


class TestInputErrors:
    """A wrong command line exits 2 with one clear line, and changes nothing."""

    @pytest.mark.parametrize(("argv", "named"), BAD_VALUES)
    def test_bad_value(self, term: Terminal, library: Library, argv: list[str], named: str) -> None:
        """A bad option value exits 2 with one line naming the option, no traceback."""
        incident_id = declared(term)
        before = library.get(incident_id)
        result = term(*[a.replace("{id}", incident_id) for a in argv])
        error = one_line_error(result, EXIT_USAGE)
        assert named in error
        assert library.ids() == [incident_id]
        assert library.get(incident_id) == before

    def test_unknown_incident(self, term: Terminal) -> None:
        """An unknown id exits 2 with one line pointing at ``incidentflow list``."""
        for argv in (["show", "INC-2026-01-01-nope"], ["note", "INC-2026-01-01-nope", "hi"]):
            error = one_line_error(term(*argv), EXIT_USAGE)
            assert "INC-2026-01-01-nope" in error
            assert "incidentflow list" in error

    def test_unknown_command(self, term: Terminal) -> None:
        """An unknown command exits 2 and points at --help."""
        error = one_line_error(term("frobnicate"), EXIT_USAGE)
        assert "frobnicate" in error
        assert "--help" in error

    def test_unknown_option(self, term: Terminal) -> None:
        """An unknown option exits 2 naming it."""
        error = one_line_error(term("list", "--bogus"), EXIT_USAGE)
        assert "--bogus" in error

    def test_store_url_with_unknown_scheme(self, term: Terminal) -> None:
        """``--store bogus://x`` exits 2 listing the schemes known."""
        error = one_line_error(term("--store", "bogus://x", "list", bare=True), EXIT_USAGE)
        assert "bogus" in error
        assert "sqlite://" in error


class TestConfigurationErrors:
    """A wrong configuration exits 2 naming the file and the key."""

    def test_unknown_key(self, term: Terminal, tmp_path: Path) -> None:
        """An unknown key in incidentflow.toml is named with the file."""
        (tmp_path / "incidentflow.toml").write_text("watch_window = 5\n", encoding="utf-8")
        error = one_line_error(term("list"), EXIT_USAGE)
        assert str(tmp_path / "incidentflow.toml") in error
        assert "watch_window" in error

    def test_wrong_type(self, term: Terminal, tmp_path: Path) -> None:
        """A value of the wrong type is named with its dotted key and what it accepts."""
        path = tmp_path / "incidentflow.toml"
        path.write_text('[policy]\nwatch_window_minutes = "15"\n', encoding="utf-8")
        error = one_line_error(term("list"), EXIT_USAGE)
        assert str(path) in error
        assert "policy.watch_window_minutes" in error
        assert "minutes" in error

    def test_not_toml(self, term: Terminal, tmp_path: Path) -> None:
        """A file that is not TOML is named with the position of the mistake."""
        path = tmp_path / "incidentflow.toml"
        path.write_text("[policy\n", encoding="utf-8")
        error = one_line_error(term("list"), EXIT_USAGE)
        assert str(path) in error
        assert "line 1" in error

    def test_missing_config_option_file(self, term: Terminal) -> None:
        """``--config`` naming a missing file exits 2 naming it."""
        error = one_line_error(term("--config", "nowhere.toml", "list"), EXIT_USAGE)
        assert "nowhere.toml" in error

    def test_missing_config_environment_file(
        self, term: Terminal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """INCIDENTFLOW_CONFIG naming a missing file exits 2 naming the variable."""
        monkeypatch.setenv("INCIDENTFLOW_CONFIG", "nowhere.toml")
        error = one_line_error(term("list"), EXIT_USAGE)
        assert "INCIDENTFLOW_CONFIG" in error


# -- exit code 3: the store or the environment failed --------------------------------------


class TestStoreFailures:
    """A store that cannot be used exits 3 with one line."""

    def test_sqlite_path_under_a_file(self, term: Terminal, tmp_path: Path) -> None:
        """A SQLite path whose folder is a regular file exits 3 naming the path."""
        (tmp_path / "a-file").write_text("x", encoding="utf-8")
        url = sqlite_url(tmp_path / "a-file" / "incidents.db")
        error = one_line_error(term("--store", url, "list", bare=True), EXIT_FAILED)
        assert str(tmp_path / "a-file") in error

    def test_corrupt_database(self, term: Terminal, tmp_path: Path) -> None:
        """A file that is not a SQLite database exits 3 saying it is damaged."""
        path = tmp_path / "broken.db"
        path.write_bytes(b"this is not a database at all " * 200)
        error = one_line_error(term("--store", sqlite_url(path), "list", bare=True), EXIT_FAILED)
        assert str(path) in error
        assert "database" in error

    def test_jsonl_folder_is_a_file(self, term: Terminal, tmp_path: Path) -> None:
        """A ``file://`` store on a regular file exits 3."""
        (tmp_path / "a-file").write_text("x", encoding="utf-8")
        url = f"file://{tmp_path / 'a-file'}"
        one_line_error(term("--store", url, "list", bare=True), EXIT_FAILED)

    def test_declare_into_a_corrupt_database(self, term: Terminal, tmp_path: Path) -> None:
        """A command that writes to a damaged store exits 3 too."""
        path = tmp_path / "broken.db"
        path.write_bytes(b"\x00\x01garbage" * 500)
        result = term(
            "--store", sqlite_url(path), "declare", TITLE, "-s", "P1", "-c", "a", bare=True
        )
        one_line_error(result, EXIT_FAILED)

    def test_export_to_a_missing_folder(self, term: Terminal, tmp_path: Path) -> None:
        """``export -o`` into a folder that does not exist exits 3 and leaves no file."""
        declared(term)
        target = tmp_path / "missing" / "out.jsonl"
        error = one_line_error(term("export", "-o", str(target)), EXIT_FAILED)
        assert str(target) in error
        assert not target.parent.exists()


class TestVerify:
    """``verify`` replays each history and compares it with the stored snapshot."""

    def test_consistent_store(self, term: Terminal, library: Library) -> None:
        """A store the library wrote verifies: exit 0."""
        library.drive("kb_updated", "P1")
        declared(term, "Search is slow", "P3")
        result = ok(term("verify"))
        assert "2 incident(s) checked, 0 mismatched" in result.out

    def test_tampered_snapshot(self, term: Terminal, library: Library, tmp_path: Path) -> None:
        """A snapshot edited behind the library's back makes verify exit 1 naming it."""
        tampered = declared(term)
        intact = declared(term, "Search is slow", "P3")
        with sqlite3.connect(tmp_path / "incidents.db") as db:
            changed = db.execute(
                "UPDATE snapshots SET body = replace(body, ?, ?) WHERE incident_id = ?",
                (TITLE, "Tampered title", tampered),
            ).rowcount
        db.close()
        assert changed == 1

        result = term("verify")
        assert result.code == EXIT_REJECTED
        assert tampered in result.out
        assert intact not in result.out
        assert "1 mismatched" in result.out

        as_json = term("--json", "verify")
        assert as_json.code == EXIT_REJECTED
        assert as_json.json() == {"checked": 2, "mismatched": [tampered]}
        assert ok(term("verify", intact)).out.startswith("1 incident(s) checked, 0 mismatched")


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

    def test_show(self, term: Terminal) -> None:
        """``show`` prints the incident and its next step with every reason."""
        incident_id = declared(term)
        data = ok(term("--json", "show", incident_id)).json()
        assert data["incident"]["id"] == incident_id
        assert data["next"] == {"command": "start_triage", "allowed": True, "reasons": []}
        ok(term("triage", "start", incident_id))
        data = ok(term("--json", "show", incident_id)).json()
        assert data["next"]["command"] == "contain"
        assert data["next"]["allowed"] is False
        assert len(data["next"]["reasons"]) == 3

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
    def test_error_object(self, term: Terminal, argv: list[str], code: int, error: str) -> None:
        """An error prints ``{"error", "message", "reasons"}`` on standard output."""
        incident_id = declared(term)
        ok(term("triage", "start", incident_id))
        result = term("--json", *[a.replace("{id}", incident_id) for a in argv])
        assert result.code == code
        data = result.json()
        assert set(data) == {"error", "message", "reasons"}
        assert data["error"] == error
        assert data["message"]
        if error == "TransitionRejected":
            assert len(data["reasons"]) == 3
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
        assert "declared" in lines[1]
        assert "note_added" in lines[2]
        assert "bob" in lines[2]
        assert "text=paged payments" in lines[2]

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


# -- operations ------------------------------------------------------------------------------------


class TestDeadlines:
    """``deadlines`` and ``check-deadlines``."""

    def test_breaches_are_recorded_once(self, term: Terminal, library: Library) -> None:
        """``check-deadlines`` records each newly missed deadline once, however often it runs."""
        incident = library.drive("declared", "P1")  # declared 3 hours ago, never acknowledged
        later = datetime.now(UTC) + timedelta(minutes=1)

        first = ok(term("check-deadlines", "--now", iso(later)))
        assert incident.id in first.out
        breaches = [e for e in library.history(incident.id) if e.type == "deadline_breached"]
        assert len(breaches) >= 1

        second = ok(term("--json", "check-deadlines", "--now", iso(later + timedelta(hours=1))))
        assert second.json() == []
        again = [e for e in library.history(incident.id) if e.type == "deadline_breached"]
        assert again == breaches
        assert ok(term("check-deadlines")).out.strip() == "no new breaches"

        table = ok(term("deadlines", incident.id)).out
        assert "breached (recorded)" in table
        recorded = [d for d in ok(term("--json", "deadlines", incident.id)).json() if d["breached"]]
        assert len(recorded) == len(breaches)

    def test_far_future_due_date(self, term: Terminal) -> None:
        """An action item due on 9999-12-31 is refused or kept; deadline checks keep working."""
        incident_id = declared(term)
        added = term(
            "action", "add", incident_id, "Someday", "--owner", "dana", "--due", "9999-12-31"
        )
        assert added.code in {EXIT_OK, EXIT_USAGE}, added.err
        ok(term("deadlines", incident_id))
        ok(term("check-deadlines"))

    def test_deadline_table(self, term: Terminal) -> None:
        """A fresh P1's response deadline is listed as due in a few minutes."""
        incident_id = declared(term)
        table = ok(term("deadlines", incident_id)).out
        assert table.splitlines()[0].split()[:3] == ["KIND", "SUBJECT", "DUE"]
        assert " in " in table


class TestDeliver:
    """``deliver`` runs the outbox once."""

    def test_no_notifiers(self, term: Terminal) -> None:
        """Without notifiers nothing is delivered, and the command says so."""
        declared(term)
        assert ok(term("deliver")).out.strip() == "delivered 0, retrying 0, dead 0"
        assert ok(term("deliver", "--dead")).out.strip() == "no dead letters"
        assert ok(term("deliver", "--redrive")).out.startswith("0 dead letter(s)")
        assert ok(term("--json", "deliver", "--dead")).json() == []


class TestMetrics:
    """``metrics``: the MTTx table, grouped, and the Prometheus exposition."""

    def test_table(self, term: Terminal, library: Library) -> None:
        """The table has one row per duration, with MTTA and MTTR in the heading."""
        library.drive("resolved", "P1")
        out = ok(term("metrics")).out
        assert out.startswith("all: 1 incident(s), MTTA ")
        assert "time to resolve" in out
        assert out.splitlines()[1].split() == ["DURATION", "N", "MEAN", "MEDIAN", "P90", "MAX"]

    def test_by_severity(self, term: Terminal, library: Library) -> None:
        """``--by severity`` gives one block per severity."""
        library.drive("resolved", "P1")
        library.drive("kb_updated", "P3", texts={"title": "Search is slow"})
        out = ok(term("metrics", "--by", "severity")).out
        assert re.search(r"^P1: 1 incident\(s\)", out, re.MULTILINE)
        assert re.search(r"^P3: 1 incident\(s\)", out, re.MULTILINE)
        only = ok(term("metrics", "--severity", "P3")).out
        assert only.startswith("all: 1 incident(s)")

    def test_prometheus(self, term: Terminal, library: Library) -> None:
        """``--prometheus`` prints the text exposition."""
        library.drive("resolved", "P1")
        out = ok(term("metrics", "--prometheus")).out
        assert "# TYPE" in out
        assert "# HELP" in out


# -- export and import ----------------------------------------------------------------------


class TestExportImport:
    """Moving incidents between stores with ``export`` and ``import``."""

    @pytest.fixture
    def seeded(self, library: Library) -> list[str]:
        """Four incidents in different states on the SQLite store."""
        return [
            library.drive("kb_updated", "P1").id,
            library.drive("fixed", "P2", texts={"title": "Login is slow"}).id,
            library.drive("dismissed", "P3", texts={"title": "Synthetic check flaps"}).id,
            library.drive("declared", "P4", texts={"title": "Typo on the status page"}).id,
        ]

    def test_round_trip(
        self, term: Terminal, library: Library, seeded: list[str], tmp_path: Path
    ) -> None:
        """SQLite → export → import into JSONL gives identical histories and snapshots."""
        exported = term("export", "-o", "incidents.jsonl")
        ok(exported)
        assert "exported 4 incident(s)" in exported.out
        target = Library(f"file://{tmp_path / 'jsonl'}")

        result = ok(term("--store", target.url, "import", "incidents.jsonl", bare=True))
        assert result.out.startswith("imported 4, caught up 0, already present 0, conflicting 0")
        assert target.ids() == sorted(seeded)
        for incident_id in seeded:
            assert target.history(incident_id) == library.history(incident_id)
            assert target.get(incident_id) == library.get(incident_id)
        ok(term("--store", target.url, "verify", bare=True))

        again = ok(term("--store", target.url, "--json", "import", "incidents.jsonl", bare=True))
        assert again.json() == {
            "imported": [],
            "present": seeded,
            "conflicts": [],
            "extended": [],
            "unwritten": [],
        }
        text = ok(term("--store", target.url, "import", "incidents.jsonl", bare=True)).out
        assert "already present 4" in text

    def test_export_to_standard_output(self, term: Terminal, seeded: list[str]) -> None:
        """Without ``-o`` the export goes to standard output: a header, then events."""
        lines = ok(term("export", seeded[1])).out.splitlines()
        header = json.loads(lines[0])
        assert (header["format"], header["version"]) == ("incidentflow-export", 1)
        events = [json.loads(line) for line in lines[1:]]
        assert {e["incident_id"] for e in events} == {seeded[1]}
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    def test_export_unknown_incident(self, term: Terminal, tmp_path: Path) -> None:
        """Exporting an unknown id exits 2 and writes no file."""
        error = one_line_error(term("export", "INC-2026-01-01-nope", "-o", "x.jsonl"), EXIT_USAGE)
        assert "incidentflow list" in error
        assert not (tmp_path / "x.jsonl").exists()

    def test_conflicting_history(
        self, term: Terminal, library: Library, seeded: list[str], tmp_path: Path
    ) -> None:
        """An export whose history differs from the stored one is a conflict: exit 1."""
        ok(term("export", "-o", "incidents.jsonl"))
        target = Library(f"file://{tmp_path / 'jsonl'}")
        ok(term("--store", target.url, "import", "incidents.jsonl", bare=True))
        stored = target.history(seeded[1])

        lines = (tmp_path / "incidents.jsonl").read_text(encoding="utf-8").splitlines()
        edited = []
        for line in lines:
            value = json.loads(line)
            if value.get("incident_id") == seeded[1] and value.get("type") == "declared":
                value["data"]["title"] = "Login is slow (edited)"
                line = json.dumps(value)
            edited.append(line)
        (tmp_path / "edited.jsonl").write_text("\n".join(edited) + "\n", encoding="utf-8")

        result = term("--store", target.url, "import", "edited.jsonl", bare=True)
        assert result.code == EXIT_REJECTED
        assert "conflicting 1" in result.out
        assert f"{seeded[1]}: another history is stored under this id; left as it is" in result.out
        assert target.history(seeded[1]) == stored


def _export_of(*incidents: tuple[State | str, str, str]) -> list[list[dict[str, Any]]]:
    """The exported events of incidents driven by the library: one list per incident."""
    clock = FrozenClock(START)
    with IncidentFlow.in_memory(clock=clock) as flow:
        ids = [
            drive_to(flow, clock, state, severity, texts={"title": title}).id
            for state, severity, title in incidents
        ]
        histories = []
        for incident_id in ids:
            lines = list(export_lines(flow, [incident_id]))[1:]
            histories.append([json.loads(line) for line in lines])
    return histories


HEADER = {"format": "incidentflow-export", "version": 1, "exported_at": "2026-11-28T00:00:00Z"}


def _renumbered(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**event, "seq": seq} for seq, event in enumerate(events, start=1)]


def _without(events: list[dict[str, Any]], *types: str) -> list[dict[str, Any]]:
    return _renumbered([e for e in events if e["type"] not in types])


def _of_type(events: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(e for e in events if e["type"] == kind)


def _with_data(event: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {**event, "data": {**event["data"], **data}}


def _forgeries() -> list[Any]:
    """Broken exports: (lines after a valid history, the lines at fault), by case."""
    valid, full = _export_of(("declared", "P3", "Search is slow"), ("kb_updated", "P1", TITLE))
    declared_event = full[0]
    first = 2 + len(valid)  # the first line after the header and the valid history

    def case(name: str, tail: list[Any], *, at: Sequence[int], head: Any = HEADER) -> Any:
        lines = [head, *valid, *tail] if head is not None else [*valid, *tail]
        return pytest.param(lines, set(at), id=name)

    gap = [declared_event, full[2]]
    no_pm = _without(full, "postmortem_completed")
    flag_forged = _without(full, "postmortem_completed", "postmortem_drafted")
    flag_forged[0] = _with_data(flag_forged[0], postmortem_required=False)
    return [
        case("not-json", ["{not json"], at=[first]),
        case("missing-header", [], at=[1], head=None),
        case("wrong-version", [], at=[1], head={**HEADER, "version": 2}),
        case("version-as-text", [], at=[1], head={**HEADER, "version": "1"}),
        case("version-as-boolean", [], at=[1], head={**HEADER, "version": True}),
        case("gap-in-seq", gap, at=[first + 1]),
        case("seq-as-boolean", [{**declared_event, "seq": True}], at=[first]),
        case("not-starting-with-declared", [{**full[1], "seq": 1}], at=[first]),
        case(
            "id-not-matching-declaration",
            [{**declared_event, "incident_id": "INC-2026-11-27-something-else"}],
            at=[first],
        ),
        case(
            "path-like-id",
            [{**declared_event, "incident_id": "INC-2026-01-01-../../x"}],
            at=[first],
        ),
        case("id-not-text", [{**declared_event, "incident_id": 5}], at=[first]),
        case(
            "contained-after-declared",
            [declared_event, {**_of_type(full, "contained"), "seq": 2}],
            at=[first + 1],
        ),
        case("p1-closed-without-postmortem", no_pm, at=[first + len(no_pm) - 1]),
        case(
            "p1-closed-with-forged-postmortem-flag",
            flag_forged,
            at=[first, first + len(flag_forged) - 1],
        ),
        case("empty-title", [_with_data(declared_event, title="")], at=[first]),
        case("multi-line-title", [_with_data(declared_event, title="a\nb")], at=[first]),
        case("deeply-nested", ["[" * 100_000 + "]" * 100_000], at=[first]),
        case("not-utf8", [b"\xff\xfe not text"], at=[first]),
    ]


FORGERIES = _forgeries()


def _write_lines(path: Path, lines: list[Any]) -> None:
    with path.open("wb") as out:
        for line in lines:
            if isinstance(line, bytes):
                out.write(line)
            elif isinstance(line, str):
                out.write(line.encode("utf-8"))
            else:
                out.write(json.dumps(line).encode("utf-8"))
            out.write(b"\n")


class TestImportRefusesForgedFiles:
    """A broken or forged export exits 2 naming the line, and imports nothing at all."""

    @pytest.mark.parametrize(("lines", "at"), FORGERIES)
    def test_refused(self, term: Terminal, tmp_path: Path, lines: list[Any], at: set[int]) -> None:
        """The import exits 2 with one line naming the file; the store stays empty."""
        _write_lines(tmp_path / "forged.jsonl", lines)
        target = Library(f"file://{tmp_path / 'target'}")

        result = term("--store", target.url, "import", "forged.jsonl", bare=True)

        error = one_line_error(result, EXIT_USAGE)
        assert "forged.jsonl" in error
        assert target.ids() == []

    @pytest.mark.parametrize(("lines", "at"), FORGERIES)
    def test_names_the_line(
        self, term: Terminal, tmp_path: Path, lines: list[Any], at: set[int]
    ) -> None:
        """The error names the line at fault as ``FILE:LINE``."""
        _write_lines(tmp_path / "forged.jsonl", lines)
        result = term(
            "--store", f"file://{tmp_path / 'target'}", "import", "forged.jsonl", bare=True
        )
        assert result.code == EXIT_USAGE, (result.out, result.err)
        named = {int(n) for n in re.findall(r"forged\.jsonl:(\d+)", result.err)}
        assert named, f"no line number in: {result.err}"
        assert named <= at, f"expected line {sorted(at)}: {result.err}"

    def test_empty_file(self, term: Terminal, tmp_path: Path) -> None:
        """An empty file exits 2 saying it is empty."""
        (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
        error = one_line_error(term("import", "empty.jsonl"), EXIT_USAGE)
        assert "empty" in error

    def test_missing_file(self, term: Terminal) -> None:
        """A file that does not exist exits 2 naming it."""
        error = one_line_error(term("import", "nowhere.jsonl"), EXIT_USAGE)
        assert "nowhere.jsonl" in error


# -- configuration --------------------------------------------------------------------------


class TestInitAndConfig:
    """``init``, ``config show`` and where the configuration is found."""

    def test_init_writes_the_default_file(self, term: Terminal, tmp_path: Path) -> None:
        """``init`` writes the commented default incidentflow.toml, once."""
        result = ok(term("init", bare=True))
        assert "wrote incidentflow.toml" in result.out
        path = tmp_path / "incidentflow.toml"
        assert path.read_text(encoding="utf-8") == default_config_toml()

        path.write_text("# mine\n", encoding="utf-8")
        error = one_line_error(term("init", bare=True), EXIT_USAGE)
        assert "--force" in error
        assert path.read_text(encoding="utf-8") == "# mine\n"

        ok(term("init", "--force", bare=True))
        assert path.read_text(encoding="utf-8") == default_config_toml()

    def test_init_path(self, term: Terminal, tmp_path: Path) -> None:
        """``init --path`` writes the file elsewhere, and that file loads."""
        (tmp_path / "ops").mkdir()
        ok(term("init", "--path", "ops/team.toml", bare=True))
        assert load_config(tmp_path / "ops" / "team.toml").source == tmp_path / "ops" / "team.toml"

    def test_config_show_masks_secrets(
        self, term: Terminal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``config show`` names the file and never prints a secret."""
        monkeypatch.setenv("PAGER_SIGNING_SECRET", "s3cret-signing-value")
        path = tmp_path / "incidentflow.toml"
        path.write_text(
            "actor = 'alice'\n"
            "[notifiers.pager]\n"
            "type = 'webhook'\n"
            "url = 'https://hooks.example.com/services/T0001/B0002/XoXoTokenInThePath'\n"
            "secret_env = 'PAGER_SIGNING_SECRET'\n",
            encoding="utf-8",
        )
        text = ok(term("config", "show", bare=True)).out
        assert text.startswith(f"# configuration file: {path}")
        assert "PAGER_SIGNING_SECRET" in text
        assert 'actor = "alice"' in text
        data = ok(term("--json", "config", "show", bare=True)).json()
        assert data["source"] == str(path)
        assert data["config"]["notifiers"]["pager"]["secret_env"] == "PAGER_SIGNING_SECRET"
        for shown in (text, json.dumps(data)):
            assert "s3cret-signing-value" not in shown
            assert "XoXoTokenInThePath" not in shown

    def test_config_show_without_a_file(self, term: Terminal) -> None:
        """Without a file, ``config show`` says the defaults are in effect."""
        text = ok(term("config", "show", bare=True)).out
        assert text.startswith("# configuration file: none found; the defaults apply")
        assert (
            "# store in effect: sqlite:///.agent/incidents/incidentflow.db (from the default)"
            in text
        )
        assert ok(term("--json", "config", "show", bare=True)).json()["source"] is None

    def test_config_option(self, term: Terminal, tmp_path: Path) -> None:
        """``--config PATH`` is read: its store and actor are used."""
        team = tmp_path / "team"
        team.mkdir()
        (team / "team.toml").write_text(
            "store = 'sqlite:///team.db'\nactor = 'team-actor'\n", encoding="utf-8"
        )
        incident_id = ok(
            term(
                "--config",
                "team/team.toml",
                "declare",
                TITLE,
                "-s",
                "P2",
                "-c",
                "a",
                "-q",
                bare=True,
            )
        ).out.strip()
        stored = Library(sqlite_url(team / "team.db"))
        assert stored.ids() == [incident_id]
        assert stored.history(incident_id)[0].actor == "team-actor"

    def test_config_environment_variable(
        self, term: Terminal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """INCIDENTFLOW_CONFIG names the file to read."""
        (tmp_path / "elsewhere.toml").write_text(
            "store = 'sqlite:///from-env.db'\nactor = 'env-config-actor'\n", encoding="utf-8"
        )
        monkeypatch.setenv("INCIDENTFLOW_CONFIG", str(tmp_path / "elsewhere.toml"))
        incident_id = ok(term("declare", TITLE, "-s", "P2", "-c", "a", "-q", bare=True)).out.strip()
        stored = Library(sqlite_url(tmp_path / "from-env.db"))
        assert stored.history(incident_id)[0].actor == "env-config-actor"
        text = ok(term("config", "show", bare=True)).out
        assert text.startswith(f"# configuration file: {tmp_path / 'elsewhere.toml'}")

    def test_store_environment_variable(
        self, term: Terminal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """INCIDENTFLOW_URL chooses the store when ``--store`` is not given."""
        monkeypatch.setenv("INCIDENTFLOW_URL", sqlite_url(tmp_path / "from-url.db"))
        result = ok(term("declare", TITLE, "-s", "P2", "-c", "a", "-q", bare=True))
        assert Library(sqlite_url(tmp_path / "from-url.db")).ids() == [result.out.strip()]

    def test_pyproject_found_from_a_subfolder(
        self, term: Terminal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``[tool.incidentflow]`` in pyproject.toml is found from a folder below it."""
        project = tmp_path / "project"
        deep = project / "src" / "pkg"
        deep.mkdir(parents=True)
        (project / "pyproject.toml").write_text(
            "[project]\nname = 'shop'\n\n[tool.incidentflow]\nactor = 'py-actor'\n",
            encoding="utf-8",
        )
        monkeypatch.chdir(deep)
        text = ok(term("config", "show", bare=True)).out
        assert text.startswith(f"# configuration file: {project / 'pyproject.toml'}")
        incident_id = ok(term("declare", TITLE, "-s", "P2", "-c", "a", "-q", bare=True)).out.strip()
        stored = Library(sqlite_url(project / ".agent" / "incidents" / "incidentflow.db"))
        assert stored.history(incident_id)[0].actor == "py-actor"


class TestActor:
    """Who runs a command: ``--actor``, then INCIDENTFLOW_ACTOR, then the config, then the login."""

    def test_precedence(
        self, term: Terminal, library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each source is used only when the ones before it are silent."""
        incident_id = declared(term)

        def last_actor(*options: str) -> str:
            ok(term(*options, "note", incident_id, "who am I"))
            return library.history(incident_id)[-1].actor

        assert last_actor() == getpass.getuser()
        (tmp_path / "incidentflow.toml").write_text("actor = 'from-config'\n", encoding="utf-8")
        assert last_actor() == "from-config"
        monkeypatch.setenv("INCIDENTFLOW_ACTOR", "from-env")
        assert last_actor() == "from-env"
        assert last_actor("--actor", "from-flag") == "from-flag"

    def test_actor_is_validated(self, term: Terminal, library: Library) -> None:
        """An actor the library refuses exits 2 and records nothing."""
        incident_id = declared(term)
        result = term("--actor", "bad\nname", "note", incident_id, "x")
        one_line_error(result, EXIT_USAGE)
        assert library.get(incident_id).version == 1


class TestFiles:
    """The incident's Markdown file, and ``--no-files``."""

    def test_files_are_written_by_default(self, term: Terminal, tmp_path: Path) -> None:
        """Without ``--no-files`` the incident's file appears under .agent/incidents/."""
        incident_id = ok(term("declare", TITLE, "-s", "P1", "-c", "a", "-q", bare=True)).out
        path = tmp_path / ".agent" / "incidents" / f"{incident_id.strip()}.md"
        assert path.is_file()
        assert TITLE in path.read_text(encoding="utf-8")

    def test_no_files(self, term: Terminal, tmp_path: Path) -> None:
        """``--no-files`` writes no Markdown, on declare nor on later commands."""
        incident_id = ok(
            term("--no-files", "declare", TITLE, "-s", "P1", "-c", "a", "-q", bare=True)
        ).out.strip()
        ok(term("--no-files", "note", incident_id, "quiet", bare=True))
        assert (tmp_path / ".agent" / "incidents" / "incidentflow.db").is_file()
        assert list(tmp_path.rglob("*.md")) == []


# -- arbitrary input ------------------------------------------------------------------------

#: Typed where an argument is expected, these ask for help: exit 0, nothing recorded.
HELP = {"-h", "--help"}
ARBITRARY = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


class TestArbitraryText:
    """Whatever text a user types, the command line answers with 0, 1 or 2, never a traceback."""

    @ARBITRARY
    @given(text=st.text(), separated=st.booleans())
    def test_title(self, term: Terminal, library: Library, text: str, separated: bool) -> None:
        """Any title declares an incident or is refused without storing anything."""
        assume(separated or text not in HELP)
        before = library.ids()
        argv = ["declare", "-s", "P3", "-c", "alice", *(["--"] if separated else []), text]
        result = term(*argv)
        assert result.code in {EXIT_OK, EXIT_REJECTED, EXIT_USAGE}, result.err
        assert "Traceback" not in result.err
        after = library.ids()
        if result.code == EXIT_OK:
            assert len(after) == len(before) + 1
        else:
            assert after == before
            assert len(result.err_lines) == 1, result.err

    @ARBITRARY
    @given(text=st.text(), separated=st.booleans())
    def test_evidence_content(
        self, term: Terminal, library: Library, text: str, separated: bool
    ) -> None:
        """Any evidence is added, or refused leaving the incident's version unchanged."""
        assume(separated or text not in HELP)
        incident_id = self._incident(term, library)
        version = library.get(incident_id).version
        argv = [
            "evidence",
            "add",
            incident_id,
            "--source",
            "paste",
            *(["--"] if separated else []),
            text,
        ]
        result = term(*argv)
        assert result.code in {EXIT_OK, EXIT_REJECTED, EXIT_USAGE}, result.err
        assert "Traceback" not in result.err
        expected = version + 1 if result.code == EXIT_OK else version
        assert library.get(incident_id).version == expected

    @ARBITRARY
    @given(text=st.text(), question=st.sampled_from(["symptom", "scope"]))
    def test_triage_answer(
        self, term: Terminal, library: Library, text: str, question: str
    ) -> None:
        """Any triage answer is recorded, or refused leaving the incident unchanged."""
        incident_id = self._incident(term, library)
        before = library.get(incident_id)
        result = term("triage", "answer", incident_id, question, "--", text)
        assert result.code in {EXIT_OK, EXIT_REJECTED, EXIT_USAGE}, result.err
        assert "Traceback" not in result.err
        after = library.get(incident_id)
        if result.code == EXIT_OK:
            assert after.version == before.version + 1
        else:
            assert after == before

    @staticmethod
    def _incident(term: Terminal, library: Library) -> str:
        """The one triaging incident the examples share (declared on first use)."""
        ids = [i for i in library.ids() if "arbitrary" in i]
        if ids:
            return ids[0]
        incident_id = declared(term, "Arbitrary input target", "P3")
        ok(term("triage", "start", incident_id))
        return incident_id


# -- what the review asked for -----------------------------------------------------------


class TestExportOutput:
    """``export -o`` never damages the store nor overwrites a file unasked."""

    def test_refuses_the_store_itself(self, term: Terminal, tmp_path: Path) -> None:
        """Writing the export over the SQLite file (or its WAL) is a usage error."""
        declared(term)
        for target in ("incidents.db", "incidents.db-wal"):
            error = one_line_error(term("export", "-o", str(tmp_path / target)), EXIT_USAGE)
            assert "part of the store" in error
        assert ok(term("list")).out.count("INC-") == 1

    def test_needs_force_to_overwrite(self, term: Terminal, tmp_path: Path) -> None:
        """An existing file is kept unless --force; nothing temporary is left behind."""
        declared(term)
        target = tmp_path / "out.jsonl"
        target.write_text("keep me", encoding="utf-8")
        assert "--force" in one_line_error(term("export", "-o", str(target)), EXIT_USAGE)
        assert target.read_text(encoding="utf-8") == "keep me"
        ok(term("export", "-o", str(target), "--force"))
        assert target.read_text(encoding="utf-8").startswith('{"format": "incidentflow-export"')
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []

    def test_duplicate_ids_are_exported_once(self, term: Terminal) -> None:
        """``export A A`` writes A's history once, so the file can be imported."""
        incident_id = declared(term)
        lines = ok(term("export", incident_id, incident_id)).out.splitlines()
        assert len(lines) == 2  # the header and the one declaration


class TestReadingNeedsNoSecrets:
    """Commands that only read build no notifier, so they need none of its secrets."""

    def test_list_without_the_webhook_secret(self, term: Terminal, tmp_path: Path) -> None:
        """With a webhook whose secret variable is unset, reading works and writing says why not."""
        (tmp_path / "incidentflow.toml").write_text(
            '[notifiers.pager]\ntype = "webhook"\nurl = "https://hooks.example.com/x"\n'
            'secret_env = "PAGER_SIGNING_SECRET"\n',
            encoding="utf-8",
        )
        for command in (("list",), ("metrics",), ("export",), ("verify",)):
            ok(term(*command))
        error = one_line_error(term("declare", TITLE, "-s", "P1", "-c", "a"), EXIT_USAGE)
        assert "PAGER_SIGNING_SECRET" in error


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


class TestConflictsAndDates:
    """Options that contradict each other are refused; bare dates mean midnight UTC."""

    @pytest.mark.parametrize(
        "argv",
        [
            ["deliver", "--dead", "--redrive"],
            ["--json", "metrics", "--prometheus"],
            ["metrics", "--since", "2026-02-01", "--until", "2026-01-01"],
            ["init", "--path", "pyproject.toml"],
        ],
    )
    def test_refused(self, term: Terminal, argv: list[str]) -> None:
        """Each is a usage error with one line, and nothing runs."""
        outcome = term(*argv)
        assert outcome.code == EXIT_USAGE
        assert "Traceback" not in outcome.err
        assert not Path("pyproject.toml").exists()

    def test_bare_date(self, term: Terminal) -> None:
        """``--since 2026-01-01`` is the first moment of that day, UTC."""
        declared(term)
        assert ok(term("--json", "list", "--since", "2000-01-01")).json()
        assert ok(term("--json", "list", "--until", "2000-01-01")).json() == []


class TestWarnings:
    """What the library only logs, the command line shows on standard error."""

    def test_unwritable_incident_folder(self, term: Terminal, tmp_path: Path) -> None:
        """The command succeeds and one warning line names the incident."""
        (tmp_path / "afile").write_text("", encoding="utf-8")
        (tmp_path / "incidentflow.toml").write_text(
            'incidents_dir = "afile/sub"\n', encoding="utf-8"
        )
        outcome = term("declare", TITLE, "-s", "P3", "-c", "alice", "-q")
        assert outcome.code == EXIT_OK
        [line] = outcome.err_lines
        assert line.startswith("incidentflow: warning: could not write the files of INC-")
        assert "Traceback" not in outcome.err

    def test_blame_warning_is_shown(self, term: Terminal, library: Library) -> None:
        """A post-mortem that blames someone succeeds with a warning on standard error."""
        incident = library.drive(State.RESOLVED, "P2")
        ok(term("action", "add", incident.id, "Alert on restarts", "--owner", "bob",
                "--due", "2099-01-01"))  # fmt: skip
        outcome = term(
            "postmortem", "complete", incident.id,
            "--summary", f"{incident.commander} forgot to restart the service",
            "--went-well", "fast rollback", "--went-poorly", "late alert",
        )  # fmt: skip
        assert outcome.code == EXIT_OK
        assert library.get(incident.id).state is State.POSTMORTEM
        assert any(line.startswith("incidentflow: warning: ") for line in outcome.err_lines)


class TestInterrupts:
    """Ctrl-C and a bare command answer as shells expect."""

    def test_ctrl_c(self, term: Terminal, monkeypatch: pytest.MonkeyPatch) -> None:
        """An interrupt exits 130 with one line."""

        def interrupted(*args: object, **kwargs: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(IncidentFlow, "summaries", interrupted)
        assert one_line_error(term("list"), 130) == "interrupted"

    def test_no_command_prints_the_help(self, term: Terminal) -> None:
        """``incidentflow`` alone prints the usage, readable, and exits 2."""
        outcome = term(bare=True)
        assert outcome.code == EXIT_USAGE
        assert outcome.out.startswith("Usage: incidentflow")
        assert "\n  declare " in outcome.out

    def test_plain_words_are_not_annotated(self, term: Terminal) -> None:
        """Only library command names get the command line's name beside them."""
        error = one_line_error(term("--actor", "a\nb", "declare", TITLE, "-s", "P1", "-c", "a"), 2)
        assert "[incidentflow" not in error


class TestDispatch:
    """``incidentflow dispatch`` delivers from a process of its own until told to stop."""

    def test_delivers_what_commands_left_then_stops_on_sigterm(
        self, term: Terminal, tmp_path: Path, library: Library
    ) -> None:
        """Commands with inline delivery off leave the outbox full; the dispatcher empties it."""
        import signal
        import time

        (tmp_path / "incidentflow.toml").write_text(
            '[delivery]\ninline = false\n\n[notifiers.log]\ntype = "log"\n', encoding="utf-8"
        )
        ids = [declared(term, f"Incident {n}", "P3") for n in range(3)]
        with library.flow() as flow:
            assert sorted(i.event.incident_id for i in flow.store.pending()) == sorted(ids)
        env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTFLOW_")}
        dispatcher = subprocess.Popen(
            [str(SCRIPT), "--store", term.store_url, "dispatch", "--interval", "0.05"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with library.flow() as flow:
                    if not flow.store.pending():
                        break
                time.sleep(0.05)
        finally:
            dispatcher.send_signal(signal.SIGTERM)
            out, err = dispatcher.communicate(timeout=30)
        assert dispatcher.returncode == EXIT_OK, err
        assert out.strip() == "stopped; 3 notification(s) delivered"
        assert "Traceback" not in err
        with library.flow() as flow:
            assert list(flow.store.pending()) == []
