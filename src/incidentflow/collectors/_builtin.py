"""The process's triage commands: git log, docker ps/logs, systemctl status, journalctl."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import attrs

from .. import _validate as v
from ..exceptions import ValidationError
from ._base import _ONE_LINE, Collector, check_argument, check_argv, check_count, source_name

#: The most lines or commits a built-in collector asks for.
LINES_MAX = 100_000


def _lines(field: str) -> Callable[[object, attrs.Attribute[int], int], None]:
    def check(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
        check_count(field, value, LINES_MAX)

    return check


def _repo(value: object) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise ValidationError("repo", f"expected a path, got {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str) or not path or "\x00" in path:
        raise ValidationError("repo", "expected a non-empty path without NUL characters")
    return path


def _container(value: object) -> str:
    return check_argument("container", value)


def _unit(value: object) -> str:
    return check_argument("unit", value)


def _optional_unit(value: object) -> str | None:
    return None if value is None else check_argument("unit", value)


@attrs.frozen
class GitLog(Collector):
    """The last commits of a repository: what changed just before the incident.

    Runs ``git -C REPO log -n N`` with one line per commit: short hash, commit
    commit date (ISO 8601), author, subject and the branches and tags pointing at it.

    Attributes:
        n: How many commits, most recent first (1 to 100,000).
        repo: The repository's directory (any directory inside it).

    Example:
        >>> GitLog(n=5).source
        'git log -n 5'

    """

    n: int = attrs.field(default=20, validator=_lines("n"))
    repo: str = attrs.field(default=".", converter=_repo)

    @property
    def argv(self) -> tuple[str, ...]:
        """``git -C REPO log -n N --date=iso-strict --format=...``."""
        return (
            "git",
            "-C",
            self.repo,
            "log",
            "-n",
            str(self.n),
            "--date=iso-strict",
            "--format=%h %cd %an: %s%d",
        )

    @property
    def source(self) -> str:
        """``"git log -n N"``, plus the repository when it is not the current directory."""
        where = "" if self.repo == "." else f" ({self.repo})"
        return _fit(f"git log -n {self.n}{where}")


@attrs.frozen
class DockerPs(Collector):
    """The containers and their status: which are up, restarting or exited.

    Attributes:
        all: Include stopped containers (``docker ps --all``).

    Example:
        >>> DockerPs().argv
        ('docker', 'ps', '--no-trunc')

    """

    all: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    @property
    def argv(self) -> tuple[str, ...]:
        """``docker ps --no-trunc`` (with ``--all`` when asked)."""
        return ("docker", "ps", "--no-trunc", *(("--all",) if self.all else ()))

    @property
    def source(self) -> str:
        """``"docker ps"`` or ``"docker ps --all"``."""
        return "docker ps --all" if self.all else "docker ps"


@attrs.frozen
class DockerLogs(Collector):
    """The last lines a container wrote, with timestamps.

    Attributes:
        container: The container's name or id; it may not start with ``-``.
        tail: How many of the last lines (1 to 100,000).

    Example:
        >>> DockerLogs("checkout-api", tail=50).argv
        ('docker', 'logs', '--timestamps', '--tail', '50', 'checkout-api')

    """

    container: str = attrs.field(converter=_container)
    tail: int = attrs.field(default=200, validator=_lines("tail"))

    @property
    def argv(self) -> tuple[str, ...]:
        """``docker logs --timestamps --tail N CONTAINER``."""
        return ("docker", "logs", "--timestamps", "--tail", str(self.tail), self.container)

    @property
    def source(self) -> str:
        """``"docker logs --tail N CONTAINER"``."""
        return _fit(f"docker logs --tail {self.tail} {self.container}")


@attrs.frozen
class SystemctlStatus(Collector):
    """A systemd unit's state, main process and last log lines.

    ``systemctl status`` exits with 3 for a unit that is not running; that is
    evidence, not a failure, and is reported as the exit code.

    Attributes:
        unit: The unit, e.g. ``"nginx"`` or ``"nginx.service"``; it may not start with ``-``.

    Example:
        >>> SystemctlStatus("nginx").argv
        ('systemctl', 'status', '--no-pager', '--full', '--', 'nginx')

    """

    unit: str = attrs.field(converter=_unit)

    @property
    def argv(self) -> tuple[str, ...]:
        """``systemctl status --no-pager --full -- UNIT``."""
        return ("systemctl", "status", "--no-pager", "--full", "--", self.unit)

    @property
    def source(self) -> str:
        """``"systemctl status UNIT"``."""
        return _fit(f"systemctl status {self.unit}")


@attrs.frozen
class Journalctl(Collector):
    """The last lines of the system journal, for one unit or for all.

    Attributes:
        unit: Only this unit's lines (``--unit``); all units when ``None``.
        lines: How many of the last lines (1 to 100,000).

    Example:
        >>> Journalctl("nginx", lines=100).argv
        ('journalctl', '--no-pager', '--output=short-iso', '--lines=100', '--unit=nginx')

    """

    unit: str | None = attrs.field(default=None, converter=_optional_unit)
    lines: int = attrs.field(default=200, validator=_lines("lines"))

    @property
    def argv(self) -> tuple[str, ...]:
        """``journalctl --no-pager --output=short-iso --lines=N [--unit=UNIT]``."""
        unit = () if self.unit is None else (f"--unit={self.unit}",)
        return ("journalctl", "--no-pager", "--output=short-iso", f"--lines={self.lines}", *unit)

    @property
    def source(self) -> str:
        """``"journalctl -n N"`` or ``"journalctl -u UNIT -n N"``."""
        unit = "" if self.unit is None else f" -u {self.unit}"
        return _fit(f"journalctl{unit} -n {self.lines}")


@attrs.frozen(init=False)
class Command(Collector):
    """Any command, given as a list of arguments and run without a shell.

    Attributes:
        argv: The program and its arguments. A single string is refused:
            ``Command("ls -l")`` would need a shell to split it; write
            ``Command(["ls", "-l"])``.
        source: Short name of the evidence; by default the command line,
            redacted and cut to 200 characters.

    Example:
        >>> Command(["df", "-h"]).source
        'df -h'
        >>> Command(["kubectl", "get", "pods"], source="pods").source
        'pods'

    """

    argv: tuple[str, ...]
    source: str

    def __init__(self, argv: Sequence[str], source: str | None = None) -> None:
        checked = check_argv(argv)
        name = source_name(checked) if source is None else v.name("source", source)
        self.__attrs_init__(argv=checked, source=name)


def _fit(source: str) -> str:
    """A source name on one line, cut to the accepted length."""
    source = _ONE_LINE.sub(" ", source)
    return source if len(source) <= v.NAME_MAX else source[: v.NAME_MAX - 3] + "..."
