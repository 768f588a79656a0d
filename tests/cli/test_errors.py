"""Exit codes 1, 2 and 3: refusals, bad input, broken configuration and stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_terminal import TITLE, Library, Terminal, declared, ok, one_line_error, sqlite_url
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from incidentflow import State
from incidentflow._validate import LIMIT_MAX
from incidentflow.cli import EXIT_FAILED, EXIT_OK, EXIT_REJECTED, EXIT_USAGE

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
            assert reason.message.split(":")[0] in line
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
    pytest.param(["contain", "{id}", "Rolled back", "--at", "soon"], "--at", id="not-a-time"),
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


# -- hostile argv -------------------------------------------------------------------------------

#: Past every integer a store can bind (2**63 - 1), as an adversary types it.
HUGE = "99999999999999999999999"

OUT_OF_RANGE = [
    pytest.param(["list", "--limit", HUGE], "--limit", id="list-limit-huge"),
    pytest.param(["list", "--limit", "-1"], "--limit", id="list-limit-negative"),
    pytest.param(["list", "--limit", "1e3"], "--limit", id="list-limit-not-whole"),
    pytest.param(["similar", "{id}", "--limit", HUGE], "--limit", id="similar-limit"),
    pytest.param(["deliver", "--limit", HUGE], "--limit", id="deliver-limit"),
    pytest.param(["deliver", "--dead", "--limit", HUGE], "--limit", id="dead-letters-limit"),
    pytest.param(["deliver", "--in-flight", HUGE], "--in-flight", id="deliver-in-flight"),
    pytest.param(["dispatch", "--in-flight", "0"], "--in-flight", id="dispatch-in-flight"),
    pytest.param(["dispatch", "--interval", "nan"], "--interval", id="dispatch-interval-nan"),
    pytest.param(["dispatch", "--interval", "inf"], "--interval", id="dispatch-interval-inf"),
    pytest.param(["action", "done", "{id}", HUGE], "NUMBER", id="action-number"),
    pytest.param(
        ["evidence", "collect", "{id}", "--run", "true", "--timeout", "nan"],
        "--timeout",
        id="collect-timeout-nan",
    ),
    pytest.param(
        ["evidence", "collect", "{id}", "--git", ".", "--git-count", HUGE],
        "--git-count",
        id="collect-git-count",
    ),
    pytest.param(
        ["evidence", "collect", "{id}", "--docker-logs", "web", "--tail", HUGE],
        "--tail",
        id="collect-tail",
    ),
    pytest.param(
        ["evidence", "collect", "{id}", "--journalctl", "-", "--lines", HUGE],
        "--lines",
        id="collect-lines",
    ),
]


class TestNumbersOutOfRange:
    """A number out of an option's range is a usage error naming the option: never a crash."""

    @pytest.mark.parametrize(("argv", "named"), OUT_OF_RANGE)
    def test_refused(self, term: Terminal, library: Library, argv: list[str], named: str) -> None:
        """The command exits 2 with one line naming the option; nothing runs or changes."""
        incident_id = declared(term)
        before = library.get(incident_id)
        error = one_line_error(term(*[a.replace("{id}", incident_id) for a in argv]), EXIT_USAGE)
        assert named in error
        assert library.get(incident_id) == before

    @settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(limit=st.integers(min_value=-(10**30), max_value=10**30))
    def test_any_limit(self, term: Terminal, limit: int) -> None:
        """Any whole number given to ``list --limit`` lists (exit 0) or is a usage error (2)."""
        result = term("list", "--limit", str(limit))
        assert "Traceback" not in result.err
        if 1 <= limit <= LIMIT_MAX:
            ok(result)
        else:
            assert "--limit" in one_line_error(result, EXIT_USAGE)


NOT_UTF8 = [
    pytest.param(["show", "\udcff"], 2, id="id"),
    pytest.param(["note", "{id}", "caf\udce9 au lait"], 3, id="text"),
    pytest.param(["--actor", "\udcff", "note", "{id}", "x"], 2, id="actor"),
    pytest.param(["declare", "a\ud800b", "-s", "P1", "-c", "alice"], 2, id="lone-surrogate"),
    pytest.param(["list", "--text", "disk \udcff full"], 3, id="option-value"),
]


class TestArgvNotUtf8:
    """Bytes that are not UTF-8 on the command line are refused before anything runs."""

    @pytest.mark.parametrize(("argv", "position"), NOT_UTF8)
    def test_refused(
        self, term: Terminal, library: Library, argv: list[str], position: int
    ) -> None:
        """Exit 2, one line naming the argument by position and showing its bytes."""
        incident_id = declared(term)
        before = library.get(incident_id)
        result = term(*[a.replace("{id}", incident_id) for a in argv], bare=True)
        error = one_line_error(result, EXIT_USAGE)
        assert f"argument {position} " in error
        assert "not UTF-8" in error
        assert "\\x" in error or "\\u" in error  # the bad bytes shown, not printed raw
        assert library.ids() == [incident_id]
        assert library.get(incident_id) == before

    def test_json(self, term: Terminal) -> None:
        """With ``--json`` the refusal is the usual error object too."""
        result = term("--json", "show", "\udcff")
        assert result.code == EXIT_USAGE
        data = result.json()
        assert data["error"] == "UsageError"
        assert "not UTF-8" in data["message"]
        assert data["reasons"] == []
