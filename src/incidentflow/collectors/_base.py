"""Running one triage command safely: no shell, a timeout, an output cap, redaction."""

from __future__ import annotations

import abc
import codecs
import contextlib
import math
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO

import attrs

from .. import _validate as v
from ..exceptions import ValidationError
from ._processes import descendants, kill_escaped, kill_group, pipe_holders
from ._redact import redact

#: How long a command may run, in seconds, unless told otherwise.
DEFAULT_TIMEOUT = 10.0
#: How many bytes of output are kept, unless told otherwise.
DEFAULT_MAX_BYTES = 64_000
#: How long to wait for the output pipes to close once the process group is killed.
_KILL_GRACE = 2.0
_READ_CHUNK = 65_536
#: Bytes read past the output cap, so a secret the cap cuts through is still recognised.
_SECRET_MARGIN = 4_096
#: The longest argument accepted from a user (a unit or container name).
ARGUMENT_MAX = v.NAME_MAX

# ANSI escape sequences (colours, cursor moves) and other control characters:
# the stored evidence is plain text, and the flow refuses control characters.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


@attrs.frozen
class CollectedEvidence:
    """What one collector gathered: the redacted output and how the command went.

    Nothing here raises for a command that failed, timed out or does not
    exist: each outcome is described in ``content``, ready to be stored as
    evidence, and flagged in the fields below.

    Attributes:
        source: Short name of where the evidence comes from, e.g. ``"git log -n 20"``.
        content: The command's output with secrets redacted; standard error
            follows standard output under a ``--- stderr ---`` line, and notes
            in square brackets say what was cut, timed out or missing.
        argv: The command that ran, exactly as given (not redacted: do not
            store it; :attr:`header` shows a redacted copy).
        exit_code: The exit status, or ``None`` when the command did not start
            or was killed at the timeout.
        timed_out: The command was still running at the timeout and was killed,
            with its whole process group.
        truncated: The output was longer than the cap; only its first part is kept.
        missing_tool: The program was not found or could not be executed.
        duration: Seconds from start to finish (or to the kill).
        redactions: How many secrets were replaced, in the output and the command line.
        omitted_bytes: How many bytes of output were cut by the cap.

    """

    source: str
    content: str
    argv: tuple[str, ...]
    exit_code: int | None
    timed_out: bool
    truncated: bool
    missing_tool: bool
    duration: float
    redactions: int = 0
    omitted_bytes: int = 0

    @property
    def ok(self) -> bool:
        """The command ran to the end and exited with status 0."""
        return self.exit_code == 0 and not self.timed_out

    @property
    def header(self) -> str:
        """One line: the command (redacted), its exit code, duration and what was cut.

        Example: ``$ git log -n 20 | exit 0 | 0.03 s | 1 secret redacted``.
        """
        parts = [f"$ {_command_line(self.argv)}"]
        if self.missing_tool:
            parts.append("tool not found")
        elif self.timed_out:
            parts.append("timed out, killed")
        elif self.exit_code is None:
            parts.append("did not start")
        elif self.exit_code < 0:
            parts.append(f"killed by signal {-self.exit_code}")
        else:
            parts.append(f"exit {self.exit_code}")
        parts.append(f"{self.duration:.2f} s")
        if self.truncated:
            parts.append(f"output cut: {self.omitted_bytes:,} bytes omitted")
        if self.redactions:
            plural = "s" if self.redactions != 1 else ""
            parts.append(f"{self.redactions} secret{plural} redacted")
        return " | ".join(parts)

    @property
    def evidence_text(self) -> str:
        """The text to store as evidence: :attr:`header`, a blank line, then :attr:`content`.

        It is cut to the evidence size limit (1,000,000 characters) if need
        be, so the flow always accepts it.
        """
        text = f"{self.header}\n\n{self.content}"
        if len(text) > v.EVIDENCE_MAX:
            note = "\n[cut to fit the evidence size limit]"
            text = text[: v.EVIDENCE_MAX - len(note)] + note
        return text


class Collector(abc.ABC):
    """One triage command whose output becomes a piece of evidence.

    A collector is a description of a command, not a running process: build
    it once, call :meth:`collect` whenever the evidence is needed. To add your
    own, subclass it and define :attr:`argv` (and :attr:`source`, if the
    command line is not a good short name).

    Example:
        >>> class NginxErrors(Collector):
        ...     argv = ("tail", "-n", "100", "/var/log/nginx/error.log")
        ...     source = "nginx error.log"
        >>> NginxErrors().source
        'nginx error.log'

    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def argv(self) -> tuple[str, ...]:
        """The program and its arguments, run without a shell."""

    @property
    def source(self) -> str:
        """Short name of the evidence's origin; by default the command line."""
        return source_name(self.argv)

    def collect(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CollectedEvidence:
        """Run the command and return its redacted output as evidence.

        The command runs without a shell, with standard input closed, in its
        own process group. Standard output and standard error are both kept.
        A command that fails, runs too long or does not exist still gives
        evidence that says so; only bad arguments raise.

        Args:
            timeout: Seconds the command may run; then it and every process it
                started that can be found are killed (its process group; on
                Linux also the processes that left the group while it ran, or
                that still write to its output) and the output so far is kept.
                When the command exits sooner, what it left running in its
                process group is killed then.
            max_bytes: How much output to keep; the first part is kept and a
                note says how much was cut.
            cwd: Directory to run in; the current one when ``None``.
            env: The command's whole environment (as for :mod:`subprocess`);
                the host's when ``None``.

        Returns:
            The evidence, with secrets already redacted.

        Raises:
            ValidationError: ``timeout``, ``max_bytes``, ``cwd`` or ``env`` is
                not acceptable.

        """
        return run(
            self.argv, source=self.source, timeout=timeout, max_bytes=max_bytes, cwd=cwd, env=env
        )


# -- argument checks ---------------------------------------------------------------


def check_argv(value: object, field: str = "argv") -> tuple[str, ...]:
    """A command as a non-empty list of strings; a single string is refused."""
    if isinstance(value, (str, bytes)):
        raise ValidationError(
            field,
            "is a single string; pass a list of arguments, e.g. "
            f"{shlex.split(value) if isinstance(value, str) else [value]!r} "
            "(commands run without a shell)",
        )
    if not isinstance(value, Sequence):
        raise ValidationError(field, f"expected a list of strings, got {type(value).__name__}")
    if not value:
        raise ValidationError(field, "is empty; name at least the program to run")
    argv = []
    for i, arg in enumerate(value):
        if not isinstance(arg, str):
            raise ValidationError(f"{field}[{i}]", f"expected a string, got {type(arg).__name__}")
        if "\x00" in arg:
            raise ValidationError(f"{field}[{i}]", "must not contain NUL characters")
        argv.append(arg)
    if not argv[0]:
        raise ValidationError(f"{field}[0]", "is empty; it must name the program to run")
    return tuple(argv)


def check_argument(field: str, value: object) -> str:
    """A user-supplied argument (unit or container name) that cannot become an option.

    Args:
        field: The argument's name, for the error message.
        value: The value to check.

    Returns:
        The value, unchanged.

    Raises:
        ValidationError: not a string; empty; starts with ``-``; holds
            whitespace or control characters; longer than :data:`ARGUMENT_MAX`.

    """
    if not isinstance(value, str):
        raise ValidationError(field, f"expected text (str), got {type(value).__name__}")
    if not value:
        raise ValidationError(field, "must not be empty")
    if value.startswith("-"):
        raise ValidationError(
            field, f"{value[:40]!r} starts with '-' and would be read as an option; pass a name"
        )
    if len(value) > ARGUMENT_MAX:
        raise ValidationError(
            field, f"is {len(value):,} characters long; at most {ARGUMENT_MAX} are accepted"
        )
    if any(c.isspace() for c in value) or _ONE_LINE.search(value):
        raise ValidationError(field, "must not contain whitespace or control characters")
    return value


def check_count(field: str, value: object, maximum: int) -> int:
    """A whole number from 1 to ``maximum``."""
    number = v.positive_int(field, value)
    if number > maximum:
        raise ValidationError(field, f"is {number:,}; at most {maximum:,} is accepted")
    return number


def _check_timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError("timeout", f"expected seconds as a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValidationError("timeout", f"expected a positive number of seconds, got {value!r}")
    return float(value)


def _check_cwd(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ValidationError("cwd", f"expected a path, got {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str) or not os.path.isdir(path):
        raise ValidationError("cwd", f"{value!s} is not an existing directory")
    return path


def _check_env(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(x, str) for k, x in value.items()
    ):
        raise ValidationError("env", "expected a mapping of strings to strings")
    return dict(value)


# -- display -----------------------------------------------------------------------


def _command_line(argv: Sequence[str]) -> str:
    """The argv as one shell-quoted line, redacted and without control characters."""
    line = _ONE_LINE.sub(" ", shlex.join(argv))
    return redact(line)[0]


def source_name(argv: Sequence[str]) -> str:
    """A short one-line name for a command: its redacted command line, cut to fit."""
    name = _command_line(argv).strip() or "command"
    if len(name) > v.NAME_MAX:
        name = name[: v.NAME_MAX - 3] + "..."
    return name


def _clean(text: str) -> str:
    """Plain text: no colour codes, no control characters, Unix line ends."""
    text = _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("\ufffd", text)


# -- running -----------------------------------------------------------------------


class _Capture:
    """Reads one pipe to its end in a thread, keeping the first ``limit`` bytes."""

    def __init__(self, pipe: IO[bytes], limit: int) -> None:
        self.kept = bytearray()
        self.total = 0
        self._pipe = pipe
        self._limit = limit
        self.inode = os.fstat(pipe.fileno()).st_ino
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while chunk := os.read(self._pipe.fileno(), _READ_CHUNK):
                room = self._limit - len(self.kept)
                if room > 0:
                    self.kept += chunk[:room]
                self.total += len(chunk)
        except (OSError, ValueError):  # the pipe was closed under us
            pass
        finally:
            self._pipe.close()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the pipe to close; True if it did."""
        self._thread.join(max(timeout, 0.0))
        return not self._thread.is_alive()


def _decode(data: bytes | bytearray) -> str:
    # An incremental decoder drops a character cut in half at the end of the kept part.
    return codecs.getincrementaldecoder("utf-8")("replace").decode(bytes(data), final=False)


def _split_budget(out: int, err: int, budget: int) -> tuple[int, int]:
    """How many bytes of stdout and stderr to keep: each gets half, or what the other leaves."""
    out_keep = min(out, max(budget // 2, budget - err))
    return out_keep, min(err, budget - out_keep)


def _kept_text(data: bytes | bytearray, total: int, keep: int) -> tuple[str, int]:
    """The first ``keep`` bytes of a stream as text, and how many secrets were masked in it.

    A secret the cap cuts through no longer looks like one, so when the stream
    was cut the text is redacted with the bytes read past the cap, then cut.
    """
    head = _clean(_decode(data[:keep]))
    if total <= keep:
        return head, 0
    text = _clean(_decode(data))
    if len(data) < total and text and not text[-1].isspace():
        # The margin was cut too: its last word, if wholly past the cap, may start a secret.
        last_word = len(text) - len(text.rsplit(maxsplit=1)[-1])
        if last_word >= len(head):
            text = text[:last_word]
    masked = redact(text)[0]
    kept = _decode(masked.encode("utf-8")[:keep])
    opened = kept.rfind("[REDACTED:")
    if opened != -1 and "]" not in kept[opened:]:
        kept = kept[:opened]  # a placeholder cut in half
    return kept, max(0, kept.count("[REDACTED:") - text.count("[REDACTED:", 0, len(kept)))


def run(
    argv: Sequence[str],
    *,
    source: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> CollectedEvidence:
    """Run ``argv`` as :meth:`Collector.collect` describes and return the evidence."""
    argv = check_argv(argv)
    name = source_name(argv) if source is None else v.name("source", source)
    limit = _check_timeout(timeout)
    cap = check_count("max_bytes", max_bytes, v.EVIDENCE_MAX)
    directory = _check_cwd(cwd)
    environment = _check_env(env)

    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=directory,
            env=environment,
            # Its own process group, so a timeout can kill everything it started.
            start_new_session=sys.platform != "win32",
            creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
        )
    except (FileNotFoundError, PermissionError) as exc:
        if directory is not None and exc.filename == directory:
            content = f"could not run {argv[0]}: cannot enter {directory}: {exc.strerror}"
            return _evidence(name, content, argv, None, started)
        problem = "not found" if isinstance(exc, FileNotFoundError) else "not executable"
        content = f"tool {problem}: {argv[0]} (install it or collect this evidence by hand)"
        return _evidence(name, content, argv, None, started, missing_tool=True)
    except OSError as exc:
        content = f"could not run {argv[0]}: {exc.strerror or exc} (collect this evidence by hand)"
        return _evidence(name, content, argv, None, started)

    assert proc.stdout is not None
    assert proc.stderr is not None
    out = _Capture(proc.stdout, cap + _SECRET_MARGIN)
    err = _Capture(proc.stderr, cap + _SECRET_MARGIN)
    deadline = started + limit
    timed_out = exited_first = False
    leftovers = escaped = 0
    try:
        proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
        exited_first = True
        # A child it left in the background may still hold the pipes open.
        if not (out.join(deadline - time.monotonic()) and err.join(deadline - time.monotonic())):
            raise subprocess.TimeoutExpired(argv, limit)
        # The command is done: what it left running in its group goes with it.
        leftovers = kill_group(proc)
    except subprocess.TimeoutExpired:
        timed_out = True
        # Descendants that called setsid left the group: find them while the leader lives.
        strays = [] if exited_first else descendants(proc.pid)
        kill_group(proc)
        if sys.platform != "win32" and not (out.join(0.05) and err.join(0.05)):
            # Whatever still writes to its output, having left the group, goes too.
            strays += pipe_holders({c.inode for c in (out, err) if not c.join(0)})
        escaped = kill_escaped(strays, proc.pid) if strays else 0
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_KILL_GRACE)
        grace = time.monotonic() + _KILL_GRACE
        out.join(grace - time.monotonic())
        err.join(grace - time.monotonic())
    duration = time.monotonic() - started
    held_open = not (out.join(0) and err.join(0))

    out_keep, err_keep = _split_budget(len(out.kept), len(err.kept), cap)
    out_text, masked_out = _kept_text(out.kept, out.total, out_keep)
    err_text, masked_err = _kept_text(err.kept, err.total, err_keep)
    omitted = out.total + err.total - out_keep - err_keep
    parts = []
    if out.total:
        parts.append(out_text)
    if err.total:
        parts.append("--- stderr ---\n" + err_text)
    if not parts:
        parts.append("(no output)")
    if omitted:
        parts.append(
            f"[output cut: kept the first {out_keep + err_keep:,} of "
            f"{out.total + err.total:,} bytes; {omitted:,} bytes omitted]"
        )
    if timed_out:
        parts.append(f"[{_timeout_note(limit, exited_first, escaped, held_open)}]")
    elif leftovers:
        parts.append(
            "[the command exited; the processes it left running in its process group were killed]"
        )
    content = "\n".join(p.rstrip("\n") for p in parts)
    return _evidence(
        name,
        content,
        argv,
        None if timed_out else proc.returncode,
        started,
        timed_out=timed_out,
        omitted=omitted,
        duration=duration,
        masked=masked_out + masked_err,
    )


def _timeout_note(limit: float, exited_first: bool, escaped: int, held_open: bool) -> str:
    """What the timeout killed, and what it could not."""
    if exited_first:
        note = (
            f"timed out after {limit:g} s: the command had exited, and its process group was killed"
        )
    else:
        note = f"timed out after {limit:g} s: the command and its process group were killed"
    if escaped:
        plural = "es" if escaped != 1 else ""
        note += f", with {escaped} process{plural} it started outside the group"
    if held_open:
        note += (
            "; a process it started outside its process group still holds the output open "
            "and was not killed"
        )
    return note + "; the output above is what it printed until then"


def _evidence(
    source: str,
    content: str,
    argv: tuple[str, ...],
    exit_code: int | None,
    started: float,
    *,
    missing_tool: bool = False,
    timed_out: bool = False,
    omitted: int = 0,
    duration: float | None = None,
    masked: int = 0,
) -> CollectedEvidence:
    # Messages quote argv[0], which may hold anything: clean them like output.
    content, in_output = redact(_clean(content).rstrip("\n"))
    in_command = redact(_ONE_LINE.sub(" ", shlex.join(argv)))[1]
    return CollectedEvidence(
        source=source,
        content=content,
        argv=argv,
        exit_code=exit_code,
        timed_out=timed_out,
        truncated=omitted > 0,
        missing_tool=missing_tool,
        duration=time.monotonic() - started if duration is None else duration,
        redactions=masked + in_output + in_command,
        omitted_bytes=omitted,
    )
