"""``python -m incidentflow`` and the console script as real processes; interrupts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_terminal import (
    LIBRARY_MODULES,
    SCRIPT,
    TITLE,
    Terminal,
    one_line_error,
    process,
    sqlite_url,
)

import incidentflow.cli
from incidentflow import IncidentFlow, __version__
from incidentflow.cli import EXIT_BROKEN_PIPE, EXIT_FAILED, EXIT_OK, EXIT_REJECTED, EXIT_USAGE
from incidentflow.cli._root import SUBCOMMANDS

#: What ``--help`` itself needs of the command line: the group, its options, running it.
_ROOT_MODULES = {"__init__", "_app", "_main", "_params", "_root"}
#: Every other module of the command line: imported only when a command needs it.
LAZY_MODULES = tuple(
    f"incidentflow.cli.{path.stem}"
    for path in sorted(Path(incidentflow.cli.__file__).parent.glob("*.py"))
    if path.stem not in _ROOT_MODULES
)
#: What ``--help`` and ``--version`` must not import: the library, the commands, and the
#: standard library's modules that only some commands need (``import click`` loads none).
HEAVY_FOR_HELP = (
    *LIBRARY_MODULES,
    *LAZY_MODULES,
    "click.shell_completion",
    "ipaddress",
    "json",
    "pathlib",
    "random",
    "shlex",
    "sqlite3",
    "tempfile",
    "urllib.parse",
    "zoneinfo",
)

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

    @pytest.mark.parametrize("argv", [["--help"], ["-h"], [], ["--version"]])
    def test_help_loads_none_of_the_library(self, argv: list[str], tmp_path: Path) -> None:
        """``incidentflow --help`` and ``--version`` import no event model, converter or
        logger, no subcommand's module and none of the stdlib they need (issue 11 §6)."""
        code = (
            "import contextlib, io, sys\n"
            "from incidentflow.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    code = main({argv!r})\n"
            f"heavy = {HEAVY_FOR_HELP!r}\n"
            "print(code, sorted(m for m in heavy if m in sys.modules))\n"
        )
        run = process([sys.executable, "-c", code], tmp_path)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == f"{EXIT_USAGE if argv == [] else EXIT_OK} []"

    def test_a_subcommands_help_loads_only_its_module(self, tmp_path: Path) -> None:
        """``incidentflow triage start --help`` imports the triage commands and no others."""
        code = (
            "import contextlib, io, sys\n"
            "from incidentflow.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    code = main(['triage', 'start', '--help'])\n"
            "print(code, 'Examples:' in out.getvalue(),\n"
            "      sorted(m for m in sys.modules if m.startswith('incidentflow.cli._')))\n"
        )
        run = process([sys.executable, "-c", code], tmp_path)
        assert run.returncode == 0, run.stderr
        code_, examples, loaded = run.stdout.strip().split(" ", 2)
        assert (code_, examples) == ("0", "True")
        assert "'incidentflow.cli._triage'" in loaded
        others = {f"incidentflow.cli.{module}" for _, module, _ in SUBCOMMANDS} - {
            "incidentflow.cli._triage",
            "incidentflow.cli._current",  # finds the current incident of a command left without ID
        }
        assert [m for m in sorted(others) if f"'{m}'" in loaded] == []

    def test_loguru_loaded_after_the_package_keeps_the_library_quiet(self, tmp_path: Path) -> None:
        """loguru loads on first use, yet a host that imports it later still sees nothing."""
        code = (
            "import incidentflow, sys\n"
            "print('loguru' in sys.modules)\n"
            "from loguru import logger\n"
            "lines = []\n"
            "logger.remove()\n"
            "logger.add(lines.append, format='{message}')\n"
            "from incidentflow.notifiers import LogNotifier\n"
            "flow = incidentflow.IncidentFlow.in_memory(notifiers=[LogNotifier()])\n"
            "flow.declare('Disk full', severity='P3', commander='a', actor='a')\n"
            "print(len(lines))\n"
            "logger.enable('incidentflow')\n"
            "flow.declare('Disk full again', severity='P3', commander='a', actor='a')\n"
            "print(len(lines))\n"
        )
        run = process([sys.executable, "-c", code], tmp_path)
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == ["False", "0", "1"]

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

    def test_hostile_argv_in_a_real_process(self, tmp_path: Path) -> None:
        """A huge number or bytes that are not UTF-8 exit 2 with one line, no traceback."""
        store = sqlite_url(tmp_path / "incidents.db")
        script = [str(SCRIPT), "--store", store]
        module = [sys.executable, "-m", "incidentflow", "--store", store]
        huge = "99999999999999999999999"
        cases: list[tuple[list[str | bytes], str]] = [
            ([*script, "list", "--limit", huge], "--limit"),
            ([*module, "deliver", "--dead", "--limit", huge], "--limit"),
            ([*script, "show", b"\xff"], "not UTF-8"),
            ([*module, "note", b"INC-2026-01-01-x", b"caf\xe9"], "not UTF-8"),
            ([*script, "--json", "show", b"\xff\xfe"], "not UTF-8"),
        ]
        for argv, named in cases:
            run = process(argv, tmp_path)
            assert run.returncode == EXIT_USAGE, (argv, run.stderr)
            assert "Traceback" not in run.stderr, run.stderr
            assert "UnicodeEncodeError" not in run.stderr, run.stderr
            [line] = run.stderr.strip().splitlines()
            assert named in line
        assert not (tmp_path / "incidents.db").exists(), "a refused argv opened the store"

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


class TestInterrupts:
    """Ctrl-C and a bare command answer as shells expect."""

    def test_ctrl_c(self, term: Terminal, monkeypatch: pytest.MonkeyPatch) -> None:
        """An interrupt exits 130 with one line."""

        def interrupted(*args: object, **kwargs: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(IncidentFlow, "summaries", interrupted)
        assert one_line_error(term("list"), 130) == "interrupted"

    def test_only_a_broken_pipe_exits_141(
        self, term: Terminal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A reader gone away exits 141; any other exit 1 (a bad completion request) stays 1."""
        store = sqlite_url(tmp_path / "incidents.db")
        base = [sys.executable, "-m", "incidentflow", "--store", store]
        process([*base, "declare", TITLE, "-s", "P1", "-c", "alice", "-q"], tmp_path)
        export = subprocess.Popen([*base, "export"], cwd=tmp_path, stdout=subprocess.PIPE)
        assert export.stdout is not None
        export.stdout.close()  # the reader goes away before a line is written
        assert export.wait(timeout=120) == EXIT_BROKEN_PIPE
        monkeypatch.setenv("_INCIDENTFLOW_COMPLETE", "bogus")
        assert term(bare=True).code == 1

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
