"""Command and the runner under every collector: no shell, timeout, cap, stderr, exit codes."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import pytest

from incidentflow.collectors import CollectedEvidence, Command
from incidentflow.exceptions import ValidationError


def python(code: str, *args: str) -> Command:
    """A Command running ``code`` in this interpreter."""
    return Command([sys.executable, "-c", code, *args])


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent counts as gone)."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        return state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid: int, within: float = 5.0) -> bool:
    """Whether ``pid`` is gone within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not is_running(pid):
            return True
        time.sleep(0.02)
    return not is_running(pid)


class TestOutput:
    """What a command prints becomes the evidence's content."""

    def test_stdout_is_the_content(self) -> None:
        """Standard output is kept as it is, with exit code 0."""
        evidence = python("print('hello'); print('world')").collect()
        assert isinstance(evidence, CollectedEvidence)
        assert evidence.content == "hello\nworld"
        assert evidence.exit_code == 0
        assert evidence.ok
        assert not evidence.timed_out
        assert not evidence.truncated
        assert not evidence.missing_tool
        assert evidence.argv[0] == sys.executable
        assert 0 <= evidence.duration < 10

    def test_stderr_is_captured_and_labelled(self) -> None:
        """Standard error follows standard output under a '--- stderr ---' line."""
        code = "import sys; print('out'); print('err line', file=sys.stderr)"
        evidence = python(code).collect()
        assert evidence.content == "out\n--- stderr ---\nerr line"

    def test_stderr_alone(self) -> None:
        """A command that only writes to stderr gives the label and the text."""
        evidence = python("import sys; sys.stderr.write('only errors\\n')").collect()
        assert evidence.content == "--- stderr ---\nonly errors"

    def test_no_output(self) -> None:
        """A silent command says so rather than storing an empty text."""
        assert python("pass").collect().content == "(no output)"

    def test_non_zero_exit_code(self) -> None:
        """A failing command is evidence with its exit code, not an exception."""
        evidence = python("import sys; print('boom', file=sys.stderr); sys.exit(3)").collect()
        assert evidence.exit_code == 3
        assert not evidence.ok
        assert "--- stderr ---\nboom" in evidence.content
        assert " | exit 3 | " in evidence.header

    def test_killed_by_a_signal(self) -> None:
        """A command killed by a signal reports the signal in its header."""
        evidence = python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)").collect()
        assert evidence.exit_code == -9
        assert "killed by signal 9" in evidence.header

    def test_stdin_is_closed(self) -> None:
        """A command reading standard input gets end-of-file at once instead of hanging."""
        evidence = python("import sys; print(repr(sys.stdin.read()))").collect(timeout=5)
        assert evidence.content == "''"
        assert not evidence.timed_out

    def test_no_shell(self) -> None:
        """Shell syntax in arguments is passed through literally, never interpreted."""
        tricky = "$(echo owned); `id` && echo hi > /tmp/x | cat *"
        evidence = python("import sys; print(sys.argv[1])", tricky).collect()
        assert evidence.content == tricky

    def test_colour_codes_and_control_characters_are_removed(self) -> None:
        """ANSI colours are dropped, other control characters replaced, CRLF becomes LF."""
        code = r"import sys; sys.stdout.write('\x1b[31mred\x1b[0m\x07bell\r\nnext\x00')"
        evidence = python(code).collect()
        assert evidence.content == "red\ufffdbell\nnext\ufffd"

    def test_invalid_utf8_is_replaced(self) -> None:
        """Bytes that are not UTF-8 become replacement characters, not an error."""
        evidence = python(r"import sys; sys.stdout.buffer.write(b'ok \xff\xfe end')").collect()
        assert evidence.content == "ok \ufffd\ufffd end"

    def test_cwd_and_env(self, tmp_path: Path) -> None:
        """cwd sets the directory the command runs in; env is its whole environment."""
        code = "import os; print(os.getcwd()); print(os.environ.get('ONLY_THIS'))"
        env = {"ONLY_THIS": "yes", "PATH": os.environ.get("PATH", "")}
        evidence = python(code).collect(cwd=tmp_path, env=env)
        assert evidence.content.splitlines() == [str(tmp_path.resolve()), "yes"]


class TestTimeout:
    """A command that runs too long is killed with everything it started, and said so."""

    def test_a_sleeping_command_is_killed_quickly(self) -> None:
        """sleep(30) with timeout=0.5 returns within a few seconds and the child is gone."""
        code = "import os, time; print(os.getpid(), flush=True); time.sleep(30)"
        evidence = python(code).collect(timeout=0.5)
        assert evidence.timed_out  # killed at the timeout, not waited for
        assert evidence.exit_code is None
        assert not evidence.ok
        pid = int(evidence.content.splitlines()[0])
        assert wait_gone(pid)
        assert "[timed out after 0.5 s" in evidence.content
        assert "timed out, killed" in evidence.header

    def test_the_whole_process_group_is_killed(self) -> None:
        """A grandchild the command started dies with it."""
        code = (
            "import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(30)\n"
        )
        evidence = python(code).collect(timeout=1)
        assert evidence.timed_out  # killed at the timeout, not waited for
        grandchild = int(evidence.content.splitlines()[0])
        assert wait_gone(grandchild)

    def test_a_background_child_holding_the_output_is_killed(self) -> None:
        """A command that exits but leaves a child holding stdout open ends at the timeout."""
        code = (
            "import subprocess, sys\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
            "print(child.pid, flush=True)\n"
        )
        evidence = python(code).collect(timeout=1)
        assert evidence.timed_out  # ended at the timeout, not when the child let go
        assert wait_gone(int(evidence.content.splitlines()[0]))

    def test_output_printed_before_the_timeout_is_kept(self) -> None:
        """What the command printed before it was killed stays in the evidence."""
        code = "import time; print('progress 1', flush=True); time.sleep(30)"
        evidence = python(code).collect(timeout=0.5)
        assert evidence.content.startswith("progress 1\n[timed out")


class TestOutputCap:
    """Only the first max_bytes of output are kept, and the evidence says how much was cut."""

    def test_a_megabyte_is_cut_to_the_cap(self) -> None:
        """1 MB on stdout keeps the first 64,000 bytes and a note with the rest's size."""
        code = "import sys; sys.stdout.write('x' * 1_000_000)"
        evidence = python(code).collect()
        assert evidence.truncated
        assert evidence.omitted_bytes == 1_000_000 - 64_000
        first, note = evidence.content.split("\n")
        assert first == "x" * 64_000
        assert note == (
            "[output cut: kept the first 64,000 of 1,000,000 bytes; 936,000 bytes omitted]"
        )
        assert "output cut: 936,000 bytes omitted" in evidence.header
        assert evidence.exit_code == 0

    def test_stderr_keeps_room_when_stdout_floods(self) -> None:
        """A flood on stdout cannot push the error message on stderr out of the evidence."""
        code = "import sys; sys.stdout.write('o' * 100_000); sys.stderr.write('the real error')"
        evidence = python(code).collect(max_bytes=1_000)
        assert evidence.content.endswith(
            "--- stderr ---\nthe real error\n[output cut: kept the first 1,000 of 100,014 bytes;"
            " 99,014 bytes omitted]"
        )
        assert evidence.content.startswith("o" * 986 + "\n")

    def test_both_streams_flooding_share_the_cap(self) -> None:
        """Two floods get half the cap each."""
        code = "import sys; sys.stdout.write('o' * 5000); sys.stderr.write('e' * 5000)"
        evidence = python(code).collect(max_bytes=1_000)
        lines = evidence.content.splitlines()
        assert lines[:3] == ["o" * 500, "--- stderr ---", "e" * 500]
        assert evidence.omitted_bytes == 9_000

    def test_a_character_cut_in_half_is_dropped(self) -> None:
        """The cap never leaves half a UTF-8 character at the end of the kept part."""
        evidence = python("print('é' * 100)").collect(max_bytes=5)
        assert evidence.content.splitlines()[0] == "éé"

    def test_output_under_the_cap_is_not_cut(self) -> None:
        """Output exactly at the cap is kept whole, with no note."""
        evidence = python("import sys; sys.stdout.write('y' * 100)").collect(max_bytes=100)
        assert evidence.content == "y" * 100
        assert not evidence.truncated
        assert evidence.omitted_bytes == 0


class TestMissingTool:
    """A program that cannot be run gives evidence that says so, never an exception."""

    def test_unknown_program(self) -> None:
        """A program that does not exist anywhere is reported as a missing tool."""
        evidence = Command(["definitely-not-a-tool-xyz", "--version"]).collect()
        assert evidence.missing_tool
        assert evidence.exit_code is None
        assert not evidence.ok
        assert evidence.content == (
            "tool not found: definitely-not-a-tool-xyz "
            "(install it or collect this evidence by hand)"
        )
        assert "tool not found" in evidence.header

    def test_nothing_on_the_path(self, empty_path: dict[str, str]) -> None:
        """With an empty PATH even git is missing, and the evidence says so."""
        evidence = Command(["git", "--version"]).collect(env=empty_path)
        assert evidence.missing_tool
        assert evidence.content.startswith("tool not found: git ")

    def test_not_executable(self, tmp_path: Path) -> None:
        """A file without execute permission is reported, not raised."""
        script = tmp_path / "not-executable"
        script.write_text("#!/bin/sh\necho hi\n", encoding="utf-8")
        script.chmod(0o644)
        evidence = Command([str(script)]).collect()
        assert evidence.missing_tool
        assert evidence.content.startswith(f"tool not executable: {script} ")


class TestRefusedInput:
    """Bad arguments raise ValidationError naming the field, before anything runs."""

    @pytest.mark.parametrize("argv", ["ls -l", "git log", b"ls"])
    def test_a_single_string_is_refused(self, argv: object) -> None:
        """A command line as one string would need a shell: it is refused."""
        with pytest.raises(ValidationError, match="single string") as caught:
            Command(argv)  # type: ignore[arg-type]
        assert caught.value.field == "argv"

    def test_the_refusal_shows_the_list_to_write(self) -> None:
        """The message suggests the argument list."""
        with pytest.raises(ValidationError, match=r"\['ls', '-l'\]"):
            Command("ls -l")  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("argv", "field"),
        [
            ([], "argv"),
            ([""], "argv[0]"),
            (["ls", 3], "argv[1]"),
            (["ls", "a\x00b"], "argv[1]"),
            (None, "argv"),
            (42, "argv"),
        ],
    )
    def test_bad_argv(self, argv: object, field: str) -> None:
        """Empty lists, non-strings and NUL characters are refused."""
        with pytest.raises(ValidationError) as caught:
            Command(argv)  # type: ignore[arg-type]
        assert caught.value.field == field

    @pytest.mark.parametrize("timeout", [0, -1, math.nan, math.inf, True, "5", None])
    def test_bad_timeout(self, timeout: object) -> None:
        """The timeout is a positive, finite number of seconds."""
        with pytest.raises(ValidationError) as caught:
            python("pass").collect(timeout=timeout)  # type: ignore[arg-type]
        assert caught.value.field == "timeout"

    @pytest.mark.parametrize("max_bytes", [0, -5, 1.5, True, 2_000_000])
    def test_bad_max_bytes(self, max_bytes: object) -> None:
        """The cap is a whole number of bytes, at most the evidence size limit."""
        with pytest.raises(ValidationError) as caught:
            python("pass").collect(max_bytes=max_bytes)  # type: ignore[arg-type]
        assert caught.value.field == "max_bytes"

    def test_missing_cwd(self, tmp_path: Path) -> None:
        """A working directory that does not exist is refused."""
        with pytest.raises(ValidationError, match="not an existing directory") as caught:
            python("pass").collect(cwd=tmp_path / "nope")
        assert caught.value.field == "cwd"

    @pytest.mark.parametrize("env", [["PATH"], {"PATH": 1}, {1: "x"}])
    def test_bad_env(self, env: object) -> None:
        """The environment is a mapping of strings to strings."""
        with pytest.raises(ValidationError) as caught:
            python("pass").collect(env=env)  # type: ignore[arg-type]
        assert caught.value.field == "env"

    @pytest.mark.parametrize("source", ["", "two\nlines", "x" * 201, 5])
    def test_bad_source(self, source: object) -> None:
        """An explicit source is a one-line name of at most 200 characters."""
        with pytest.raises(ValidationError) as caught:
            Command(["ls"], source=source)  # type: ignore[arg-type]
        assert caught.value.field == "source"


class TestSourceAndHeader:
    """The short name and the one-line header say what ran, without secrets."""

    def test_default_source_is_the_command_line(self) -> None:
        """Without a source, the shell-quoted command line names the evidence."""
        assert Command(["df", "-h", "/var/lib/my data"]).source == "df -h '/var/lib/my data'"

    def test_explicit_source(self) -> None:
        """An explicit source is used as given."""
        assert Command(["kubectl", "get", "pods"], source="pods").source == "pods"

    def test_long_or_multiline_commands_make_a_one_line_source(self) -> None:
        """Line breaks become spaces and a long command line is cut to 200 characters."""
        command = Command(["python", "-c", "import os\nprint(1)\n" + "#" * 500])
        assert "\n" not in command.source
        assert len(command.source) == 200
        assert command.source.endswith("...")

    def test_secrets_in_the_command_line_are_redacted(self) -> None:
        """A token passed as an argument appears neither in the source nor in the header."""
        token = "ghp_" + "A1b2C3d4" * 5
        code = "print('fine')"
        evidence = Command(
            [sys.executable, "-c", code, f"--header=Authorization: Bearer {token}"]
        ).collect()
        assert token not in evidence.source
        assert token not in evidence.header
        assert token not in evidence.evidence_text
        assert evidence.redactions == 1
        assert "1 secret redacted" in evidence.header
        assert evidence.argv[-1].endswith(token)  # the real argv, for the caller only

    def test_header_format(self) -> None:
        """The header is: $ command | outcome | duration [| what was cut | redactions].

        The password is both in the command line and in the output: two redactions.
        """
        evidence = python("print('password=hunter2')").collect()
        parts = evidence.header.split(" | ")
        assert parts[0].startswith(f"$ {sys.executable} -c ")
        assert "password=[REDACTED:password]" in parts[0]
        assert "hunter2" not in evidence.header
        assert parts[1] == "exit 0"
        assert parts[2].endswith(" s")
        assert parts[3] == "2 secrets redacted"
        assert evidence.evidence_text == f"{evidence.header}\n\n{evidence.content}"

    def test_the_collector_is_a_frozen_value(self) -> None:
        """Commands compare by value and cannot be changed."""
        assert Command(["ls"]) == Command(("ls",))
        assert hash(Command(["ls"])) == hash(Command(["ls"]))
        with pytest.raises(AttributeError):
            Command(["ls"]).argv = ("rm",)  # type: ignore[misc]
