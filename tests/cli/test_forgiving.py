"""A forgiving command line: short ids, a current incident, options anywhere, times as typed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import pytest
from cli_terminal import Library, Terminal, declared, ok

from incidentflow import Config, ConfigError, load_config
from incidentflow._deadlines import Deadline
from incidentflow.cli import EXIT_USAGE, cli
from incidentflow.cli._clock import parse_time
from incidentflow.cli._output import deadline_status, duration, relative, when

ROOT = Path(__file__).resolve().parent.parent.parent

PAYMENTS = "Payments API 503s in eu-west"


class TestShortIds:
    """An id by any unique prefix or slug; an ambiguous one lists the matches."""

    def test_slug_prefix_finds_the_incident(self, term: Terminal) -> None:
        """``show payments`` shows the one incident whose slug begins with ``payments``."""
        wanted = declared(term, PAYMENTS)
        declared(term, "Login page is slow", "P3")
        shown = ok(term("--json", "show", "payments")).json()
        assert shown["incident"]["id"] == wanted

    def test_id_prefix_and_slug_word(self, term: Terminal, library: Library) -> None:
        """A beginning of the id, or a word inside the slug, names the incident too."""
        wanted = declared(term, PAYMENTS)
        ok(term("note", wanted[:-5], "first"))
        ok(term("note", "eu-west", "second"))
        assert [e.type for e in library.history(wanted)][-2:] == ["note_added", "note_added"]

    def test_ambiguous_prefix_lists_the_matches(self, term: Terminal) -> None:
        """Two incidents beginning with the word: nothing runs, both are listed, exit 2."""
        first = declared(term, PAYMENTS)
        second = declared(term, "Payments queue stuck", "P2")
        outcome = term("note", "payments", "which one?")
        assert outcome.code == EXIT_USAGE
        assert "matches 2 incidents" in outcome.err
        assert first in outcome.err
        assert second in outcome.err
        assert "Traceback" not in outcome.err

    def test_ambiguous_prefix_as_json(self, term: Terminal) -> None:
        """With ``--json`` the ambiguity is a JSON error naming the matches."""
        declared(term, PAYMENTS)
        declared(term, "Payments queue stuck", "P2")
        outcome = term("show", "payments", "--json")
        assert outcome.code == EXIT_USAGE
        assert outcome.json()["error"] == "AmbiguousIncident"

    def test_unknown_word_is_not_found(self, term: Terminal) -> None:
        """A word no incident answers to is an unknown incident, exit 2."""
        declared(term, PAYMENTS)
        outcome = term("show", "nothing-like-it")
        assert outcome.code == EXIT_USAGE
        assert "no incident with id 'nothing-like-it'" in outcome.err


class TestCurrentIncident:
    """``use ID`` sets the folder's current incident; ``-i`` overrides it."""

    def test_commands_take_the_current_incident(self, term: Terminal, library: Library) -> None:
        """After ``use``, a command about one incident may leave its ID out."""
        wanted = declared(term, PAYMENTS)
        assert wanted in ok(term("use", "payments")).out
        ok(term("note", "rolled back 4.2.1"))
        ok(term("triage", "answer", "symptom", "POST /pay returns 503"))
        incident = library.get(wanted)
        assert incident.notes[-1].text == "rolled back 4.2.1"
        assert ok(term("use")).out.strip() == wanted

    def test_incident_option_overrides_use(self, term: Terminal, library: Library) -> None:
        """``-i ID`` (before or after the subcommand) wins over the current incident."""
        current = declared(term, PAYMENTS)
        other = declared(term, "Login page is slow", "P3")
        ok(term("use", current))
        ok(term("-i", "login", "note", "before"))
        ok(term("note", "after", "--incident", "login"))
        assert [n.text for n in library.get(other).notes] == ["before", "after"]
        assert list(library.get(current).notes) == []

    def test_label_words_are_not_taken_for_an_id(self, term: Terminal, library: Library) -> None:
        """``label service=pay`` with a current incident labels it: KEY=VALUE is never an id."""
        wanted = declared(term, PAYMENTS)
        ok(term("use", wanted))
        ok(term("label", "service=pay"))
        assert library.get(wanted).labels == {"service": "pay"}

    def test_clear_forgets_it(self, term: Terminal) -> None:
        """``use --clear`` forgets the current incident; an ID is then needed again."""
        ok(term("use", declared(term, PAYMENTS)))
        ok(term("use", "--clear"))
        assert term("note", "lost").code == EXIT_USAGE


class TestOptionsAnywhere:
    """The global options are accepted after the subcommand too."""

    def test_json_after_the_subcommand(self, term: Terminal) -> None:
        """``list --json`` prints JSON, as ``--json list`` does."""
        wanted = declared(term)
        assert [row["id"] for row in ok(term("list", "--json")).json()] == [wanted]

    def test_store_after_the_subcommand(self, term: Terminal) -> None:
        """``--store`` after the subcommand's arguments chooses the store."""
        wanted = declared(term)
        outcome = ok(term("show", wanted, "--json", "--store", term.store_url, bare=True))
        assert outcome.json()["incident"]["id"] == wanted

    def test_json_error_after_the_subcommand(self, term: Terminal) -> None:
        """An error of a command given ``--json`` at its end is JSON too."""
        outcome = term("show", "INC-2026-01-01-none", "--json")
        assert outcome.code == EXIT_USAGE
        assert outcome.json()["error"] == "IncidentNotFound"


AT = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


class TestTimeInput:
    """Times as people type them, read in the display zone, stored in UTC."""

    @pytest.mark.parametrize(
        ("typed", "expected"),
        [
            ("now", AT),
            ("now-10m", datetime(2026, 12, 1, 10, 20, tzinfo=UTC)),
            ("+3d", datetime(2026, 12, 4, 10, 30, tzinfo=UTC)),
            ("yesterday 23:15", datetime(2026, 11, 30, 22, 15, tzinfo=UTC)),
            ("tomorrow", datetime(2026, 12, 1, 23, 0, tzinfo=UTC)),
            ("23:15Z", datetime(2026, 12, 1, 23, 15, tzinfo=UTC)),
            ("09:00", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
            ("2026-11-27T09:30Z", datetime(2026, 11, 27, 9, 30, tzinfo=UTC)),
            ("2026-11-27", datetime(2026, 11, 26, 23, 0, tzinfo=UTC)),
        ],
    )
    def test_forms(self, typed: str, expected: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
        """Each documented form names the moment a person in Berlin means by it."""
        monkeypatch.setenv("TZ", "Europe/Berlin")
        assert parse_time(typed, at=AT) == expected

    @pytest.mark.parametrize("typed", ["soon", "now-10x", "25:00", "2026-11-27T09:30"])
    def test_refusals_say_what_to_write(self, typed: str) -> None:
        """A time that cannot be read is refused with the forms that can."""
        with pytest.raises(ValueError, match=r"now-10m|HH:MM|offset"):
            parse_time(typed, at=AT)

    def test_due_tomorrow(self, term: Terminal, library: Library) -> None:
        """``action add --due tomorrow`` records tomorrow's date."""
        from incidentflow.cli import _clock

        wanted = library.drive("resolved", "P1").id
        ok(term("action", "add", wanted, "Alert on 5xx", "--owner", "bob", "--due", "tomorrow"))
        tomorrow = _clock.now().date().toordinal() + 1
        assert library.get(wanted).action_items[-1].due.toordinal() == tomorrow

    def test_since_accepts_relative_times(self, term: Terminal) -> None:
        """``list --since now-1h`` lists what was declared within the hour."""
        wanted = declared(term)
        assert [r["id"] for r in ok(term("--json", "list", "--since", "now-1h")).json()] == [wanted]
        assert ok(term("--json", "list", "--since", "+1d")).json() == []


class TestTimeDisplay:
    """Times are shown in the local zone, ``TZ`` first."""

    def test_when_uses_tz(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A UTC moment is shown in the zone ``TZ`` names."""
        monkeypatch.setenv("TZ", "Asia/Tokyo")
        assert when(AT) == "2026-12-01 19:30"

    def test_timeline_heading_names_the_zone(
        self, term: Terminal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The timeline's time column says which zone it is in."""
        wanted = declared(term)
        monkeypatch.setenv("TZ", "Asia/Tokyo")
        assert "TIME (JST)" in ok(term("timeline", wanted)).out.splitlines()[0]


class TestCompletion:
    """click's completion offers open incidents' ids."""

    def test_completes_open_ids(
        self, term: Terminal, library: Library, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Completing ``show pay`` offers the open incidents beginning with it, not closed ones."""
        from click.shell_completion import ShellComplete

        wanted = declared(term, PAYMENTS)
        declared(term, "Login page is slow", "P3")
        library.drive("kb_updated", "P3", texts={"title": "Payments page old"})
        monkeypatch.setenv("INCIDENTFLOW_URL", term.store_url)
        complete = ShellComplete(cli, {}, "incidentflow", "_INCIDENTFLOW_COMPLETE")
        assert [c.value for c in complete.get_completions(["show"], "pay")] == [wanted]

    def test_completes_subcommands_and_options(self) -> None:
        """Subcommands and a subcommand's options complete too."""
        from click.shell_completion import ShellComplete

        complete = ShellComplete(cli, {}, "incidentflow", "_INCIDENTFLOW_COMPLETE")
        assert "declare" in [c.value for c in complete.get_completions([], "de")]
        assert "--severity" in [c.value for c in complete.get_completions(["declare"], "--sev")]


class TestInstallLines:
    """The docs' install lines work from a clone: no distribution named incidentflow is needed."""

    def test_no_line_installs_from_an_index(self) -> None:
        """No doc, README or message tells anyone to ``pip install 'incidentflow[...]'``."""
        texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        texts += [ROOT / "docs" / "reference" / "cli.md", ROOT / "src/incidentflow/cli/__init__.py"]
        bad = re.compile(r"pip install ['\"]?incidentflow\[cli\]")
        assert [str(p) for p in texts if bad.search(p.read_text(encoding="utf-8"))] == []

    def test_missing_psycopg_hint_names_a_working_install(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without psycopg, the PostgreSQL store's error names what pip can install."""
        import sys

        from incidentflow.stores._url import open_store

        monkeypatch.setitem(sys.modules, "incidentflow.stores.postgres", None)
        with pytest.raises(ConfigError) as raised:
            open_store("postgresql://u@localhost/db")
        assert "incidentflow[postgres]'" not in str(raised.value)
        assert "psycopg" in str(raised.value)


def _leaves(group: click.Group, path: str = "") -> list[str]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _leaves(command, f"{path}{name} ")
        else:
            found.append(f"{path}{name}")
    return found


def _helps(group: click.Group, path: str = "") -> list[str]:
    """Every ``--help`` there is: the root's (``""``), each group's and each command's."""
    found = [path]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _helps(command, f"{path}{name} ")
        else:
            found.append(f"{path}{name}")
    return [p.strip() for p in found]


def _examples(term: Terminal, path: str) -> list[str]:
    """The example lines ``incidentflow PATH --help`` prints."""
    out = ok(term(*path.split(), "--help", bare=True)).out
    lines = out.split("Examples:")[1].splitlines()
    return [line.strip() for line in lines if line.strip().startswith("incidentflow ")]


# A word the reader fills in: TITLE, KEY=VALUE, internal|external (OPS-12 and P1 are values).
_PLACEHOLDER = re.compile(r"[A-Z][A-Z_]+")
# Commands that run until they are stopped.
_LONG_RUNNING = frozenset({"serve", "dispatch"})


def _fill_in(words: list[str]) -> bool:
    """Whether the example holds a word for the reader to fill in: it is a pattern."""
    return any(
        word == "..."
        or "|" in word
        or any(_PLACEHOLDER.fullmatch(p) for p in re.split("[=:]", word))
        for word in words
    )


class TestHelpExamples:
    """Every ``--help`` shows examples, and they run as written."""

    @pytest.mark.parametrize("path", _leaves(cli))
    def test_help_has_examples(self, path: str, term: Terminal) -> None:
        """``incidentflow PATH --help`` ends with an Examples paragraph naming the command."""
        out = term(*path.split(), "--help", bare=True).out
        assert "Examples:" in out
        assert f"incidentflow {path}" in out.split("Examples:")[1]

    @pytest.mark.parametrize(
        "path", [p for p in _helps(cli) if p not in _leaves(cli)], ids=lambda p: p or "root"
    )
    def test_groups_and_the_root_have_examples(self, path: str, term: Terminal) -> None:
        """``incidentflow --help`` and each group's ``--help`` show examples too."""
        assert [line for line in _examples(term, path) if line.startswith(f"incidentflow {path}")]

    def test_examples_run_as_written(
        self, term: Terminal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each example with nothing to fill in runs in a new folder: no usage error, no failure.

        The root's examples run first, in a folder of their own (they begin with
        ``init`` and declare the incident); the others in the order of the help
        pages, in a folder holding the incident they call ``payments``. Exit 1
        is the process refusing a step the incident is not ready for: an
        answer, not a broken example.
        """
        import shlex

        broken = []
        for folder, path in [("first", ""), *(("next", p) for p in _helps(cli) if p)]:
            if not (tmp_path / folder).exists():
                (tmp_path / folder).mkdir()
                monkeypatch.chdir(tmp_path / folder)
                if folder == "next":
                    ok(term("declare", "Payments API 503s", "-s", "P1", "-c", "alice", bare=True))
            for example in _examples(term, path):
                words = shlex.split(example)[1:]
                if _fill_in(words) or words[0] in _LONG_RUNNING:
                    continue
                written_to = None
                if ">" in words:  # the shell's redirection
                    words, written_to = words[: words.index(">")], words[-1]
                result = term(*words, bare=True)
                if result.code not in (0, 1) or "Traceback" in result.err:
                    broken.append(
                        f"{path or 'incidentflow'}: {example} -> {result.code} {result.err}"
                    )
                elif written_to is not None:
                    Path(written_to).write_text(result.out, encoding="utf-8")
        assert broken == []


class TestTerminalOutput:
    """``show`` and ``timeline`` are made for a terminal; ``--markdown`` keeps the file."""

    def test_show_has_no_markdown_escapes(
        self, term: Terminal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """User text reads as typed, headings are underlined, every line fits the width."""
        monkeypatch.setenv("COLUMNS", "60")
        wanted = declared(term, PAYMENTS)
        ok(term("note", wanted, "load ~40% on http_code 503 " + "and more words " * 8))
        out = ok(term("show", wanted)).out
        assert "~40% on http_code" in out
        assert "\\~" not in out
        assert "\\_" not in out
        assert "Incident: Payments API 503s in eu-west\n=====" in out
        # The next step's command stays on one line, to be copied whole.
        assert max(len(line) for line in out.splitlines() if not line.startswith("Next:")) <= 60

    def test_markdown_keeps_the_file(self, term: Terminal) -> None:
        """``show --markdown`` prints the Markdown, escapes included."""
        wanted = declared(term, PAYMENTS)
        ok(term("note", wanted, "http_code"))
        out = ok(term("show", wanted, "--markdown")).out
        assert out.startswith("# Incident: Payments API")
        assert "http\\_code" in out

    def test_timeline_wraps_to_the_width(
        self, term: Terminal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No timeline line runs past the terminal's width."""
        monkeypatch.setenv("COLUMNS", "80")
        wanted = declared(term, PAYMENTS)
        ok(term("note", wanted, "word " * 60))
        lines = ok(term("timeline", wanted)).out.splitlines()
        assert lines[0].split()[:2] == ["SEQ", "TIME"]
        assert max(len(line) for line in lines) <= 80


class TestIncidentNamedTwice:
    """``-i ID`` together with an ID argument is a usage error naming both."""

    @pytest.mark.parametrize(
        "line",
        [
            ("note", "-i", "login", "payments", "which one?"),
            ("-i", "login", "note", "payments", "which one?"),
            ("note", "payments", "which one?", "--incident", "login"),
        ],
    )
    def test_both_are_named(self, line: tuple[str, ...], term: Terminal, library: Library) -> None:
        """Nothing is recorded, exit 2, and the message names the option's and the ID's words."""
        payments = declared(term, PAYMENTS)
        login = declared(term, "Login page is slow", "P3")
        outcome = term(*line)
        assert outcome.code == EXIT_USAGE
        assert "'login'" in outcome.err
        assert "'payments'" in outcome.err
        assert "named twice" in outcome.err
        assert "unexpected extra argument" not in outcome.err
        assert [e.type for e in library.history(payments)] == ["declared"]
        assert [e.type for e in library.history(login)] == ["declared"]

    def test_as_json(self, term: Terminal) -> None:
        """With ``--json`` the error is a JSON UsageError."""
        declared(term, PAYMENTS)
        outcome = term("show", "-i", "payments", "payments", "--json")
        assert outcome.code == EXIT_USAGE
        assert outcome.json()["error"] == "UsageError"
        assert "named twice" in outcome.json()["message"]

    def test_a_whole_id_before_labels(self, term: Terminal) -> None:
        """``label -i X INC-... k=v``: a whole id among a list argument's words is refused."""
        wanted = declared(term, PAYMENTS)
        outcome = term("label", "-i", "payments", wanted, "service=pay")
        assert outcome.code == EXIT_USAGE
        assert wanted in outcome.err

    def test_option_alone_still_works(self, term: Terminal, library: Library) -> None:
        """``note -i ID TEXT`` and ``evidence add -i ID CONTENT`` take the words as their own."""
        wanted = declared(term, PAYMENTS)
        ok(term("note", "-i", "payments", "payments are back"))
        ok(term("label", "-i", "payments", "service=pay"))
        incident = library.get(wanted)
        assert incident.notes[-1].text == "payments are back"
        assert incident.labels == {"service": "pay"}


class TestDisplayTimezone:
    """``display_timezone`` in incidentflow.toml: the zone times are shown in without ``TZ``."""

    @pytest.fixture(autouse=True)
    def _no_tz(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from incidentflow.cli import _clock

        monkeypatch.delenv("TZ")
        monkeypatch.setattr(_clock, "_configured", None)  # restored after the test

    def test_times_are_shown_in_it(self, term: Terminal, library: Library) -> None:
        """``timeline`` heads its time column with the configured zone and shows times in it."""
        wanted = declared(term, PAYMENTS)
        Path("incidentflow.toml").write_text('display_timezone = "Asia/Tokyo"\n', encoding="utf-8")
        lines = ok(term("timeline", wanted)).out.splitlines()
        assert "TIME (JST)" in lines[0]
        declared_at = library.get(wanted).declared_at
        assert when(declared_at) in lines[1]
        assert declared_at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M") in lines[1]

    def test_tz_wins(self, term: Terminal, monkeypatch: pytest.MonkeyPatch) -> None:
        """``TZ`` set in the environment wins over the file."""
        wanted = declared(term, PAYMENTS)
        Path("incidentflow.toml").write_text('display_timezone = "Asia/Tokyo"\n', encoding="utf-8")
        monkeypatch.setenv("TZ", "UTC")
        assert "TIME (UTC)" in ok(term("timeline", wanted)).out.splitlines()[0]

    @pytest.mark.parametrize(
        ("written", "says"),
        [
            ('"europe/paris"', 'write "Europe/Paris"'),
            ('"Mars/Olympus_Mons"', '"Europe/Paris"'),
            ('"../etc/passwd"', "IANA"),
            ("1", "got 1"),
        ],
    )
    def test_a_wrong_zone_says_what_to_write(self, written: str, says: str, term: Terminal) -> None:
        """A zone zoneinfo does not know is a ConfigError naming the key, exit 2."""
        Path("incidentflow.toml").write_text(f"display_timezone = {written}\n", encoding="utf-8")
        outcome = term("list")
        assert outcome.code == EXIT_USAGE
        assert "incidentflow.toml: display_timezone" in outcome.err
        assert says in outcome.err
        with pytest.raises(ConfigError) as raised:
            load_config()
        assert raised.value.key.endswith("display_timezone")

    def test_on_the_config_object(self, tmp_path: Path) -> None:
        """``Config`` checks it too, and ``to_toml`` writes it back."""
        with pytest.raises(ConfigError) as raised:
            Config(display_timezone="Nowhere/Town")
        assert raised.value.key == "display_timezone"
        written = Config(display_timezone="Europe/Paris").to_toml()
        (tmp_path / "incidentflow.toml").write_text(written, encoding="utf-8")
        assert load_config(tmp_path / "incidentflow.toml").display_timezone == "Europe/Paris"


class TestDurations:
    """Spans keep seconds below an hour and minutes beyond; a passed time says so."""

    @pytest.mark.parametrize(
        ("span", "shown"),
        [
            (None, "-"),
            (timedelta(0), "0m00s"),
            (timedelta(seconds=59.9), "0m59s"),
            (timedelta(minutes=3, seconds=5), "3m05s"),
            (timedelta(minutes=59, seconds=59), "59m59s"),
            (timedelta(hours=1), "1h00m"),
            (timedelta(hours=2, minutes=10, seconds=59), "2h10m"),
            (timedelta(days=1, hours=3, minutes=10), "1d03h10m"),
            (timedelta(seconds=-75), "1m15s"),
        ],
    )
    def test_duration(self, span: timedelta | None, shown: str) -> None:
        """Each span reads as a person writes it; a negative one as its length."""
        assert duration(span) == shown

    def test_time_left_counts_up(self) -> None:
        """A time left is never ``0m00s`` before it passes."""
        assert duration(timedelta(milliseconds=300), up=True) == "0m01s"
        assert relative(AT + timedelta(milliseconds=300), AT) == "in 0m01s"

    def test_relative(self) -> None:
        """A coming time is ``in ...``, a passed one ``... ago``."""
        assert relative(AT + timedelta(minutes=4, seconds=5), AT) == "in 4m05s"
        assert relative(AT, AT) == "now"
        assert relative(AT - timedelta(minutes=12, seconds=30), AT) == "12m30s ago"

    def test_deadline_status(self) -> None:
        """An open deadline says how long is left, a passed one how long ago it passed."""
        due = AT + timedelta(minutes=5)
        assert deadline_status(Deadline("response", "", due), AT) == "in 5m00s"
        later = due + timedelta(minutes=2, seconds=3)
        assert deadline_status(Deadline("response", "", due), later) == "overdue, passed 2m03s ago"
        breached = Deadline("response", "", due, breached=True)
        assert deadline_status(breached, later) == "breached (recorded), passed 2m03s ago"
        assert "-" not in deadline_status(Deadline("response", "", due), later)
