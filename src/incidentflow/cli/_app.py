"""What every subcommand shares: the global options, the opened flow, and the output."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .._lazy import WhenLoaded

if TYPE_CHECKING:
    from .._flow import IncidentFlow
    from .._model import Incident
    from ..config import Config

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_USAGE",
    "AmbiguousIncident",
    "App",
    "EnvironmentFailure",
    "environment_failure",
    "library_warnings",
    "pass_app",
]

#: The command did what it was asked.
EXIT_OK = 0
#: The process refused the step (every reason is printed).
EXIT_REJECTED = 1
#: The command line or an input value is wrong.
EXIT_USAGE = 2
#: The store or the environment failed.
EXIT_FAILED = 3
#: Interrupted (Ctrl-C), as shells report SIGINT.
EXIT_INTERRUPTED = 130
#: The reader of standard output went away (``| head``), as shells report SIGPIPE.
EXIT_BROKEN_PIPE = 141

_T = TypeVar("_T")

# Incidents to list or summarise before a progress bar is worth drawing.
_PROGRESS_FROM = 2000


class AmbiguousIncident(click.ClickException):
    """More than one incident answers to a prefix or slug: the matches are listed, exit 2."""

    exit_code = EXIT_USAGE


class EnvironmentFailure(click.ClickException):
    """The environment failed (a file cannot be written): one line, JSON with ``--json``, exit 3."""

    exit_code = EXIT_FAILED


def environment_failure(message: str) -> EnvironmentFailure:
    """The error to raise when the environment failed: ``message`` is reported, and exit 3."""
    return EnvironmentFailure(message)


class App:
    """What every subcommand shares: the global options and the lazily opened flow.

    A plain class, not attrs: ``incidentflow --help`` loads nothing it does not print.
    """

    def __init__(self) -> None:
        self.store: str | None = None
        self._config_path: str | None = None
        self.as_json = False
        self.actor_option: str | None = None
        self.write_files = True
        #: ``-i/--incident``: the incident a command without an ID is about.
        self.incident_option: str | None = None
        self._config: Config | None = None
        self._flow: IncidentFlow | None = None
        self._notifying = False

    @property
    def config_path(self) -> str | None:
        """``--config``: the configuration file, wherever on the line it was given."""
        return self._config_path

    @config_path.setter
    def config_path(self, path: str | None) -> None:
        if path != self._config_path and self._config is not None:
            # Read before the subcommand's own options (its ID may be left out): read it again.
            from ._clock import configure_zone

            configure_zone(None)
            self._config = None
            self.close()
        self._config_path = path

    @property
    def config(self) -> Config:
        """The configuration: ``--config``, ``INCIDENTFLOW_CONFIG``, or the nearest file."""
        if self._config is None:
            from ..config import load_config

            self._config = load_config(self.config_path)
            from ._clock import configure_zone

            configure_zone(self._config.display_timezone)
        return self._config

    @property
    def flow(self) -> IncidentFlow:
        """The flow on the chosen store, with the configured notifiers, opened on first use."""
        return self._open(notify=True)

    @property
    def reader(self) -> IncidentFlow:
        """The same store for commands that only read: no notifier is built.

        So reading needs none of the notifiers' secrets from the environment.
        """
        return self._open(notify=False)

    def _open(self, *, notify: bool) -> IncidentFlow:
        if self._flow is not None and notify and not self._notifying:
            # Opened to read (an ID to resolve); the command writes: same store, with notifiers.
            store = self._flow.store
            self._flow = _open_flow(self.config, {**self._overrides(), "store": store})
            self._notifying = True
        if self._flow is None:
            overrides = self._overrides()
            if not notify:
                overrides["notifiers"] = []
            self._flow = _open_flow(self.config, overrides)
            self._notifying = notify
        return self._flow

    def _overrides(self) -> dict[str, Any]:
        overrides: dict[str, Any] = {}
        if self.store is not None:
            overrides["store"] = self.store
        if not self.write_files:
            overrides["incidents_dir"] = None
            overrides["knowledge_dir"] = None
        return overrides

    @property
    def actor(self) -> str:
        """Who runs the command: ``--actor``, ``INCIDENTFLOW_ACTOR``, the config, the login."""
        return self.actor_and_source[0]

    @property
    def actor_and_source(self) -> tuple[str, str]:
        """The actor, and where it came from."""
        if self.actor_option is not None:
            return self.actor_option, "--actor"  # as given: the library refuses an empty one
        if environment := os.environ.get("INCIDENTFLOW_ACTOR"):
            return environment, "INCIDENTFLOW_ACTOR"
        if self.config.actor:
            return self.config.actor, "the configuration file"
        import getpass

        try:
            return getpass.getuser(), "your login name"
        except (OSError, KeyError):
            raise click.UsageError(
                "cannot tell who you are; pass --actor NAME or set INCIDENTFLOW_ACTOR"
            ) from None

    def store_and_source(self) -> tuple[str, str]:
        """The store URL in effect (password masked), and where it came from."""
        from .._urls import mask_password

        if self.store is not None:
            return mask_password(self.store), "--store"
        if environment := os.environ.get("INCIDENTFLOW_URL"):
            return mask_password(environment), "INCIDENTFLOW_URL"
        if self.config.store is not None:
            return mask_password(self.config.store), "the configuration file"
        default = self.config.store_url(masked=True)
        return default or "sqlite:///.agent/incidents/incidentflow.db", "the default"

    def close(self) -> None:
        """Close the store, if it was opened."""
        if self._flow is not None:
            self._flow.close()
            self._flow = None

    # -- output --------------------------------------------------------------

    def emit(self, data: object, text: str | Callable[[], str]) -> None:
        """Print ``data`` as JSON with ``--json``, else ``text``."""
        if self.as_json:
            import json

            from ._output import jsonable

            click.echo(json.dumps(data, default=jsonable, indent=2, ensure_ascii=False))
        else:
            click.echo(text if isinstance(text, str) else text())

    def done(self, incident: Incident, what: str) -> None:
        """Report a command's new snapshot."""
        from ._output import incident_json

        self.emit(
            incident_json(incident),
            lambda: (
                f"{incident.id}: {what} ({incident.severity.value}, "
                f"{incident.state.value}, version {incident.version})"
            ),
        )

    def progress(
        self, items: Iterable[_T], label: str, *, minimum: int = _PROGRESS_FROM
    ) -> Iterator[_T]:
        """Iterate ``items`` with a progress bar on standard error, when it is a terminal.

        Short lists go without one; so does anything when standard error is
        not a terminal (a pipe, a log file, a test).
        """
        known = len(items) if isinstance(items, Sized) else None
        if not sys.stderr.isatty() or (known is not None and known < minimum):
            yield from items
            return
        with click.progressbar(items, label=label, file=sys.stderr) as bar:
            yield from bar


def _open_flow(config: Config, overrides: dict[str, Any]) -> IncidentFlow:
    """``IncidentFlow(**config.flow_arguments(**overrides))``, the store closed if that fails."""
    from .._flow import IncidentFlow

    return config.open_with(IncidentFlow, **overrides)


pass_app = click.make_pass_decorator(App)


#: Options that only print (help, the version): the library does not run, loguru need not load.
_PRINT_ONLY = frozenset({"-h", "--help", "--version"})


@contextlib.contextmanager
def library_warnings(args: Sequence[str] = ()) -> Iterator[None]:
    """Show the library's warnings (files not written, deliveries failed) on standard error.

    The library logs them with loguru and, as a library should, keeps that
    quiet by default; the command line is the application here, so it shows
    them, one line each, while it runs. Only the library's own modules log,
    and each imports loguru, so the sink is set up when loguru loads: a line
    that never opens the library (``--help``, the version, a ``list`` read
    straight from SQLite) does not load loguru at all.
    """
    if _prints_only(args):
        yield
        return
    sink: list[int] = []

    def show(logger: Any) -> None:
        with contextlib.suppress(ValueError):
            logger.remove(0)  # loguru's default handler would add tracebacks
        sink.append(
            logger.add(
                sys.stderr,
                level="WARNING",
                format=_warning_line,
                filter="incidentflow",
                backtrace=False,
                diagnose=False,
            )
        )
        logger.enable("incidentflow")

    hook = None
    if "loguru" in sys.modules:
        show(sys.modules["loguru"].logger)
    else:
        hook = WhenLoaded("loguru", lambda module: show(module.logger))
        sys.meta_path.insert(0, hook)
    try:
        yield
    finally:
        if hook is not None and hook in sys.meta_path:
            sys.meta_path.remove(hook)
        if sink:
            logger = sys.modules["loguru"].logger
            logger.disable("incidentflow")
            logger.remove(sink[0])


def _prints_only(args: Sequence[str]) -> bool:
    """Whether ``args`` only ask for help or the version: nothing at all, or ``-h`` and the like."""
    words = list(args)
    if "--" in words:
        words = words[: words.index("--")]
    return not words or not _PRINT_ONLY.isdisjoint(words)


def _warning_line(record: Any) -> str:
    exception = record["exception"]
    reason = "" if exception is None or exception.value is None else f": {exception.value}"
    # The returned text is a format string: braces in the reason must stay literal.
    return "incidentflow: warning: {message}" + reason.replace("{", "{{").replace("}", "}}") + "\n"
