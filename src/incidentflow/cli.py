"""The ``incidentflow`` command: run an incident from a terminal.

Every subcommand works on the same store as the library: ``--store URL``, else
the ``INCIDENTFLOW_URL`` environment variable, else the configuration file's
``store``, else the embedded SQLite default. Output is a readable table or
text; ``--json`` prints JSON for machines instead.

Exit codes:

- 0: done.
- 1: rejected by the process: a guard unmet (every reason is printed), a
  command outside its states, a stale version, a duplicate, or ``verify``
  finding a history that does not replay to its snapshot.
- 2: usage or input error: an unknown option, a bad value, an unknown
  incident, a configuration error. One line, never a traceback.
- 3: the store or the environment failed (a database error, an unwritable file).

The command line needs click (``pip install 'incidentflow[cli]'``); it is
imported here only, never by ``import incidentflow``.
"""

from __future__ import annotations

import contextlib
import enum
import getpass
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

try:
    import click
except ModuleNotFoundError:  # pragma: no cover - exercised by hand: depends on the install
    sys.stderr.write(
        "incidentflow: the command line needs click; install it with "
        "pip install 'incidentflow[cli]'\n"
    )
    raise SystemExit(2) from None

import attrs

from . import __version__
from ._events import DeadlineBreached
from ._model import Incident, Severity, State
from .exceptions import (
    ConcurrencyConflict,
    ConfigError,
    DuplicateIncident,
    IdempotencyConflict,
    IncidentFlowError,
    IncidentNotFound,
    InvalidTransition,
    TransitionRejected,
    ValidationError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._config import Config
    from ._events import Event
    from ._flow import IncidentFlow
    from .stores import IncidentSummary

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_USAGE",
    "cli",
    "main",
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

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")

#: The command that moves an incident on from each state, for ``show``'s "next step".
_NEXT_STEP = {
    State.DECLARED: ("start_triage", "incidentflow triage start {id}"),
    State.TRIAGING: ("contain", "incidentflow contain {id} --done"),
    State.CONTAINED: ("start_rca", "incidentflow rca start {id}"),
    State.RCA: ("mark_fixed", "incidentflow fix {id} --done"),
    State.FIXED: ("resolve", "incidentflow resolve {id}"),
    State.POSTMORTEM: ("update_kb", "incidentflow kb {id} --symptom ... --early-signs ..."),
}

# Incidents to list or summarise before a progress bar is worth drawing.
_PROGRESS_FROM = 2000


class _Exit(Exception):
    """A command's outcome other than success, carried to :func:`main`."""

    def __init__(self, code: int) -> None:
        self.code = code


@attrs.define
class App:
    """What every subcommand shares: the global options and the lazily opened flow."""

    store: str | None = None
    config_path: str | None = None
    as_json: bool = False
    actor_option: str | None = None
    write_files: bool = True
    _config: Config | None = None
    _flow: IncidentFlow | None = None

    @property
    def config(self) -> Config:
        """The configuration: ``--config``, ``INCIDENTFLOW_CONFIG``, or the nearest file."""
        if self._config is None:
            from ._config import load_config

            self._config = load_config(self.config_path)
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
        if self._flow is None:
            overrides: dict[str, Any] = {}
            if self.store is not None:
                overrides["store"] = self.store
            if not self.write_files:
                overrides["incidents_dir"] = None
                overrides["knowledge_dir"] = None
            if not notify:
                overrides["notifiers"] = []
            self._flow = self.config.open_flow(**overrides)
        return self._flow

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
        try:
            return getpass.getuser(), "your login name"
        except (OSError, KeyError):
            raise click.UsageError(
                "cannot tell who you are; pass --actor NAME or set INCIDENTFLOW_ACTOR"
            ) from None

    def store_and_source(self) -> tuple[str, str]:
        """The store URL in effect (password masked), and where it came from."""
        from ._config import _mask_password

        if self.store is not None:
            return _mask_password(self.store), "--store"
        if environment := os.environ.get("INCIDENTFLOW_URL"):
            return _mask_password(environment), "INCIDENTFLOW_URL"
        if self.config.store is not None:
            return _mask_password(self.config.store), "the configuration file"
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
            click.echo(json.dumps(data, default=_jsonable, indent=2, ensure_ascii=False))
        else:
            click.echo(text if isinstance(text, str) else text())

    def done(self, incident: Incident, what: str) -> None:
        """Report a command's new snapshot."""
        self.emit(
            _incident_json(incident),
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


pass_app = click.make_pass_decorator(App)


@contextlib.contextmanager
def _library_warnings() -> Iterator[None]:
    """Show the library's warnings (files not written, deliveries failed) on standard error.

    The library logs them with loguru and, as a library should, keeps that
    quiet by default; the command line is the application here, so it shows
    them, one line each, while it runs.
    """
    from loguru import logger

    with contextlib.suppress(ValueError):
        logger.remove(0)  # loguru's default handler would add tracebacks
    sink = logger.add(
        sys.stderr,
        level="WARNING",
        format=_warning_line,
        filter="incidentflow",
        backtrace=False,
        diagnose=False,
    )
    logger.enable("incidentflow")
    try:
        yield
    finally:
        logger.disable("incidentflow")
        logger.remove(sink)


def _warning_line(record: Any) -> str:
    exception = record["exception"]
    reason = "" if exception is None or exception.value is None else f": {exception.value}"
    # The returned text is a format string: braces in the reason must stay literal.
    return "incidentflow: warning: {message}" + reason.replace("{", "{{").replace("}", "}}") + "\n"


# -- parameter types ----------------------------------------------------------


_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """An ISO 8601 time with its UTC offset (``2026-11-27T09:30Z``), in UTC.

    A bare date (``2026-11-27``) means its first moment, UTC.
    """
    if value is None:
        return None
    if _DATE_ONLY.fullmatch(value):
        value = f"{value}T00:00Z"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a time; write ISO 8601 with an offset, e.g. 2026-11-27T09:30Z"
        ) from None
    if moment.tzinfo is None:
        raise click.BadParameter(
            f"{value!r} has no UTC offset; add one, e.g. {value}Z or {value}+01:00"
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise click.BadParameter(f"{value!r} is out of range in UTC; give a nearer time") from None


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    """A calendar date, ``YYYY-MM-DD``."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date; write YYYY-MM-DD, e.g. 2026-12-04"
        ) from None


_SEVERITY_NAMES = [s.value for s in Severity]
SEVERITY_METAVAR = "|".join(_SEVERITY_NAMES)


def _severity(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Severities as the library spells them (P1 to P4), whatever case was typed."""
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(_severity(ctx, param, item) for item in value)
    name = str(value).strip().upper()
    if name not in _SEVERITY_NAMES:
        raise click.BadParameter(
            f"{value!r} is not a severity; use one of {', '.join(_SEVERITY_NAMES)}"
        )
    return name


STATE = click.Choice([s.value for s in State], case_sensitive=False)


def _incident_argument(function: _F) -> _F:
    return click.argument("incident_id", metavar="ID")(function)


# -- the group ----------------------------------------------------------------


class _Group(click.Group):
    """Lists subcommands in the order they are defined: the order of the process."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    metavar="URL",
    help="Store URL (sqlite:///PATH, file://DIR, postgresql://..., memory://). "
    "Default: INCIDENTFLOW_URL, then the config's store, then SQLite under .agent/incidents/.",
)
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Configuration file. Default: INCIDENTFLOW_CONFIG, then the nearest "
    "incidentflow.toml or pyproject.toml with [tool.incidentflow].",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables and text.")
@click.option(
    "--actor",
    metavar="NAME",
    help="Who runs the command. Default: INCIDENTFLOW_ACTOR, the config's actor, your login.",
)
@click.option("--no-files", is_flag=True, help="Do not rewrite the incident's Markdown files.")
@click.version_option(__version__, "--version", prog_name="incidentflow")
@click.pass_context
def cli(
    ctx: click.Context,
    store: str | None,
    config_path: str | None,
    as_json: bool,
    actor: str | None,
    no_files: bool,
) -> None:
    """Run the incident-response process from a terminal.

    \b
    declare → triage → contain → rca → fix → resolve → postmortem → kb
    Exit codes: 0 done, 1 rejected (every reason printed), 2 usage or input
    error, 3 the store or the environment failed.
    """  # noqa: D301 - "\b" is click's marker for a paragraph kept as written
    app = ctx.ensure_object(App)
    app.store, app.config_path, app.as_json = store, config_path, as_json
    app.actor_option, app.write_files = actor, not no_files
    ctx.call_on_close(app.close)


# -- setting up ---------------------------------------------------------------


@cli.command(short_help="Write a commented incidentflow.toml.")
@click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("incidentflow.toml"),
    show_default=True,
    help="Where to write the file.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@pass_app
def init(app: App, path: Path, force: bool) -> None:
    """Write a commented incidentflow.toml with the default policy."""
    from ._config import default_config_toml

    if path.name == "pyproject.toml":
        raise click.UsageError(
            "init writes a whole file; to configure in pyproject.toml, copy what "
            "'incidentflow init --path incidentflow.toml' writes under [tool.incidentflow]"
        )
    if path.exists() and not force:
        raise click.UsageError(f"{path} exists; pass --force to overwrite it")
    try:
        path.write_text(default_config_toml(), encoding="utf-8")
    except OSError as exc:
        raise _environment_failure(f"cannot write {path}: {exc.strerror}") from None
    app.emit({"written": str(path)}, f"wrote {path}; edit it, then run: incidentflow declare ...")


@cli.group(cls=_Group)
def config() -> None:
    """Inspect the configuration in effect."""


@config.command("show")
@pass_app
def config_show(app: App) -> None:
    """Print the configuration in effect (secrets masked) and where each part came from."""
    cfg = app.config
    source = str(cfg.source) if cfg.source is not None else None
    store, store_source = app.store_and_source()
    actor, actor_source = app.actor_and_source
    text = cfg.to_toml(masked=True)
    app.emit(
        {
            "source": source,
            "store": {"url": store, "from": store_source},
            "actor": {"name": actor, "from": actor_source},
            "config": _toml_loads(text),
        },
        lambda: "\n".join(
            [
                f"# configuration file: {source or 'none found; the defaults apply'}",
                f"# store in effect: {store} (from {store_source})",
                f"# actor in effect: {actor} (from {actor_source})",
                text.rstrip(),
            ]
        ),
    )


# -- declaring and reading ----------------------------------------------------


@cli.command(short_help="Declare an incident.")
@click.argument("title")
@click.option(
    "-s",
    "--severity",
    metavar=SEVERITY_METAVAR,
    callback=_severity,
    required=True,
    help="P1 (critical) to P4 (low).",
)
@click.option("-c", "--commander", metavar="NAME", required=True, help="The incident commander.")
@click.option("--slug", help="The slug for the id and files (default: from the title).")
@click.option("--idempotency-key", metavar="KEY", help="Declare at most once for this key.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the new incident's id.")
@pass_app
def declare(
    app: App,
    title: str,
    severity: str,
    commander: str,
    slug: str | None,
    idempotency_key: str | None,
    quiet: bool,
) -> None:
    """Declare an incident (ID=$(incidentflow declare ... -q) keeps its id)."""
    incident = app.flow.declare(
        title,
        severity=severity,
        commander=commander,
        actor=app.actor,
        slug=slug,
        idempotency_key=idempotency_key,
    )
    if quiet and not app.as_json:
        click.echo(incident.id)
        return
    app.done(incident, "declared")
    if not app.as_json:
        click.echo(f"next: incidentflow triage start {incident.id}")


@cli.command("list", short_help="List incidents, newest first.")
@click.option("--open", "open_only", is_flag=True, help="Only incidents not yet closed.")
@click.option("--state", "states", type=STATE, multiple=True, help="In this state (repeatable).")
@click.option(
    "--severity",
    "severities",
    metavar=SEVERITY_METAVAR,
    callback=_severity,
    multiple=True,
    help="Of this severity (repeatable).",
)
@click.option("--commander", metavar="NAME", help="Commanded by NAME.")
@click.option("--text", metavar="TEXT", help="Title contains TEXT.")
@click.option("--since", metavar="TIME", callback=_moment, help="Declared at or after this time.")
@click.option("--until", metavar="TIME", callback=_moment, help="Declared before this time.")
@click.option("--oldest-first", is_flag=True, help="Oldest first (default: newest first).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@pass_app
def list_incidents(
    app: App,
    open_only: bool,
    states: tuple[str, ...],
    severities: tuple[str, ...],
    commander: str | None,
    text: str | None,
    since: datetime | None,
    until: datetime | None,
    oldest_first: bool,
    limit: int | None,
) -> None:
    """List incidents, newest first."""
    incidents = app.reader.summaries(
        state=states or None,
        severity=severities or None,
        open_only=open_only,
        commander=commander,
        text=text,
        declared_after=since,
        declared_before=until,
        newest_first=not oldest_first,
        limit=limit,
    )
    app.emit(
        [_summary_json(i) for i in incidents],
        lambda: _table(
            ("ID", "SEV", "STATE", "COMMANDER", "DECLARED", "TITLE"),
            (
                (i.id, i.severity.value, i.state.value, i.commander, _when(i.declared_at), i.title)
                for i in incidents
            ),
            empty="no incidents match",
        ),
    )


@cli.command(short_help="Show an incident and what its next step needs.")
@_incident_argument
@pass_app
def show(app: App, incident_id: str) -> None:
    """Show an incident as its Markdown file, then what its next step needs."""
    from .render.markdown import render_incident

    flow = app.reader
    incident = flow.get(incident_id)
    step = _NEXT_STEP.get(incident.state)
    if incident.state is State.RESOLVED:
        command = "complete_postmortem" if incident.postmortem_required else "update_kb"
        hint = (
            "incidentflow postmortem complete {id}"
            if incident.postmortem_required
            else "incidentflow kb {id} --symptom ... --early-signs ..."
        )
        step = (command, hint)
    verdict = None if step is None else flow.can(incident.id, step[0], actor=app.actor)

    def text() -> str:
        lines = [render_incident(incident, flow.history(incident.id)).rstrip(), ""]
        if step is None or verdict is None:
            lines.append(f"The incident is {incident.state.value}: nothing follows.")
        elif verdict.allowed:
            lines.append(f"Next: {step[1].format(id=incident.id)}")
        else:
            lines.append(f"Before {step[0]}:")
            lines.extend(f"  - {reason}" for reason in verdict.reasons)
        return "\n".join(lines)

    next_step = None
    if step is not None and verdict is not None:
        next_step = {
            "command": step[0],
            "allowed": verdict.allowed,
            "reasons": list(verdict.reasons),
        }
    app.emit({"incident": _incident_json(incident), "next": next_step}, text)


@cli.command(short_help="Show an incident's history, event by event.")
@_incident_argument
@pass_app
def timeline(app: App, incident_id: str) -> None:
    """Show every event of an incident's history, oldest first."""
    from .serialization import event_to_dict

    history = app.reader.history(incident_id)
    app.emit(
        [event_to_dict(e) for e in history],
        lambda: _table(
            ("SEQ", "TIME (UTC)", "ACTOR", "EVENT", "DETAILS"),
            ((str(e.seq), _when(e.at), e.actor, e.type, _details(e)) for e in history),
        ),
    )


@cli.command(short_help="Past incidents and KB gotchas like this one.")
@_incident_argument
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=100),
    default=5,
    show_default=True,
    help="How many to show.",
)
@pass_app
def similar(app: App, incident_id: str, limit: int) -> None:
    """Past incidents and KB gotchas like this one (by symptom, title, root cause)."""
    found = app.reader.similar(incident_id, limit=limit)
    app.emit([_plain(match) for match in found], lambda: _similar_text(found))


# -- triage -------------------------------------------------------------------


@cli.group(cls=_Group, short_help="Start triage and answer its checklist.")
def triage() -> None:
    """Start triage and answer its checklist."""


@triage.command("start")
@_incident_argument
@pass_app
def triage_start(app: App, incident_id: str) -> None:
    """Acknowledge the incident (stops the response clock); show similar past ones."""
    incident = app.flow.start_triage(incident_id, actor=app.actor)
    found = app.flow.similar(incident.id)
    if app.as_json:
        app.emit({"incident": _incident_json(incident), "similar": [_plain(m) for m in found]}, "")
        return
    app.done(incident, "triage started")
    questions = ", ".join(app.flow.policy.required_triage_answers)
    click.echo(f"answer: {questions} (incidentflow triage answer {incident.id} QUESTION ANSWER)")
    if found:
        click.echo(_similar_text(found))


@triage.command("answer")
@_incident_argument
@click.argument("question")
@click.argument("answer")
@pass_app
def triage_answer(app: App, incident_id: str, question: str, answer: str) -> None:
    """Answer one triage question (symptom, started_at, scope, ...)."""
    incident = app.flow.answer_triage(incident_id, question, answer, actor=app.actor)
    app.done(incident, f"triage answer {question!r} recorded")


@cli.group(cls=_Group, short_help="Add evidence, or collect it with commands.")
def evidence() -> None:
    """Add evidence by hand or collect it by running commands."""


@evidence.command("add")
@_incident_argument
@click.argument("content", required=False)
@click.option("--source", required=True, help="Where it came from (a tool, a dashboard, a person).")
@click.option(
    "--file",
    "from_file",
    type=click.File("r", encoding="utf-8", errors="replace"),
    help="Read the content from a file ('-' for standard input).",
)
@pass_app
def evidence_add(
    app: App, incident_id: str, content: str | None, source: str, from_file: IO[str] | None
) -> None:
    """Attach a piece of evidence: CONTENT, or --file."""
    if (content is None) == (from_file is None):
        raise click.UsageError("give the evidence as CONTENT or with --file, not both or neither")
    text = content if content is not None else from_file.read()  # type: ignore[union-attr]
    incident = app.flow.add_evidence(incident_id, source=source, content=text, actor=app.actor)
    app.done(incident, f"evidence from {source} added")


@evidence.command("collect")
@_incident_argument
@click.option("--git", "git_repo", metavar="REPO", help="git log of REPO (e.g. '.').")
@click.option(
    "--git-count",
    type=click.IntRange(1, 1000),
    default=20,
    show_default=True,
    help="Commits of git log to keep.",
)
@click.option("--docker-ps", is_flag=True, help="docker ps.")
@click.option(
    "--docker-logs", "containers", metavar="CONTAINER", multiple=True, help="docker logs --tail."
)
@click.option(
    "--tail",
    type=click.IntRange(1, 100_000),
    default=200,
    show_default=True,
    help="Lines of each container's log.",
)
@click.option("--systemctl", "units", metavar="UNIT", multiple=True, help="systemctl status UNIT.")
@click.option("--journalctl", "journal_units", metavar="UNIT", multiple=True,
              help="journalctl -u UNIT ('-' for the whole journal).")  # fmt: skip
@click.option(
    "--lines",
    type=click.IntRange(1, 100_000),
    default=200,
    show_default=True,
    help="Lines of each journal.",
)
@click.option(
    "--run",
    "commands",
    metavar="COMMAND",
    multiple=True,
    help="Any command, split like a shell would but run without one.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=3600),
    default=30,
    show_default=True,
    help="Seconds each command may run.",
)
@pass_app
def evidence_collect(
    app: App,
    incident_id: str,
    git_repo: str | None,
    git_count: int,
    docker_ps: bool,
    containers: tuple[str, ...],
    tail: int,
    units: tuple[str, ...],
    journal_units: tuple[str, ...],
    lines: int,
    commands: tuple[str, ...],
    timeout: float,
) -> None:
    """Run triage commands and add their redacted output as evidence."""
    from . import collectors as c

    chosen: list[c.Collector] = []
    if git_repo is not None:
        chosen.append(c.GitLog(n=git_count, repo=git_repo))
    if docker_ps:
        chosen.append(c.DockerPs())
    chosen.extend(c.DockerLogs(container=name, tail=tail) for name in containers)
    chosen.extend(c.SystemctlStatus(unit=unit) for unit in units)
    chosen.extend(
        c.Journalctl(unit=None if unit == "-" else unit, lines=lines) for unit in journal_units
    )
    for command in commands:
        try:
            chosen.append(c.Command(shlex.split(command)))
        except ValueError as exc:
            raise click.BadParameter(f"{command!r}: {exc}", param_hint="--run") from None
    if not chosen:
        raise click.UsageError(
            "choose what to collect: --git, --docker-ps, --docker-logs, --systemctl, "
            "--journalctl or --run"
        )
    collected = []
    for collector in app.progress(chosen, "collecting", minimum=2):
        [snapshot] = c.collect_into(app.flow, incident_id, [collector], actor=app.actor,
                                    timeout=timeout)  # fmt: skip
        item = snapshot.evidence[-1]
        collected.append((snapshot, item))
    last = collected[-1][0]
    app.emit(
        {"incident": _incident_json(last), "collected": [_plain(item) for _, item in collected]},
        lambda: "\n".join(
            [f"{last.id}: {len(collected)} evidence item(s) collected (version {last.version})"]
            + [f"  - {item.source}: {item.content.splitlines()[0]}" for _, item in collected]
        ),
    )


# -- containment, root cause, fix ---------------------------------------------


@cli.command(short_help="Record containment; --done declares it contained.")
@_incident_argument
@click.argument("action", required=False)
@click.option(
    "--at",
    "taken_at",
    metavar="TIME",
    callback=_moment,
    help="When the action was taken (default: now).",
)
@click.option("--done", is_flag=True, help="Then declare the incident contained.")
@pass_app
def contain(app: App, incident_id: str, action: str | None, taken_at: datetime | None,
            done: bool) -> None:  # fmt: skip
    """Record a containment ACTION; with --done, declare the incident contained."""
    if action is None and not done:
        raise click.UsageError(
            "give the containment ACTION taken, or --done to declare it contained"
        )
    if taken_at is not None and action is None:
        raise click.UsageError("--at dates an ACTION; give one")
    recorded = None
    if action is not None:
        recorded = app.flow.record_containment(incident_id, action, actor=app.actor,
                                               taken_at=taken_at)  # fmt: skip
        if not done:
            app.done(recorded, "containment action recorded")
            return
    with _kept_if_refused(recorded, "the containment action"):
        incident = app.flow.contain(incident_id, actor=app.actor)
    app.done(incident, "contained")
    if not app.as_json:
        click.echo(f"next: incidentflow rca start {incident.id}")


@contextlib.contextmanager
def _kept_if_refused(recorded: Incident | None, what: str) -> Iterator[None]:
    """Say that the first of two steps was kept when the second one is refused.

    So nobody runs the whole line again and records the same thing twice.
    Nothing to say when there was no first step (``recorded`` is None).
    """
    try:
        yield
    except (TransitionRejected, InvalidTransition):
        if recorded is None:
            raise
        click.echo(
            f"incidentflow: note: {what} was recorded (version {recorded.version}); "
            "only --done was refused; after fixing what is listed below, run it with --done alone",
            err=True,
        )
        raise


@cli.group(cls=_Group, short_help="Root-cause analysis: start, why, root-cause.")
def rca() -> None:
    """Root-cause analysis: start it, ask why, state the root cause."""


@rca.command("start")
@_incident_argument
@pass_app
def rca_start(app: App, incident_id: str) -> None:
    """Start root-cause analysis (the incident must be contained)."""
    app.done(app.flow.start_rca(incident_id, actor=app.actor), "root-cause analysis started")


@rca.command("why")
@_incident_argument
@click.argument("answer")
@pass_app
def rca_why(app: App, incident_id: str, answer: str) -> None:
    """Add the next answer of the 5-Whys chain."""
    incident = app.flow.add_why(incident_id, answer, actor=app.actor)
    app.done(incident, f"why #{len(incident.whys)} added")


@rca.command("root-cause")
@_incident_argument
@click.argument("statement")
@click.option("--gap", "process_gap", required=True, help="The process gap that let it through.")
@pass_app
def rca_root_cause(app: App, incident_id: str, statement: str, process_gap: str) -> None:
    """State the root cause and the process gap."""
    incident = app.flow.set_root_cause(incident_id, statement, process_gap=process_gap,
                                       actor=app.actor)  # fmt: skip
    app.done(incident, "root cause set")


@cli.command(short_help="Record the fix; --done marks the incident fixed.")
@_incident_argument
@click.argument("description", required=False)
@click.option("--test", help="The test that would have caught it.")
@click.option(
    "--staging-verified/--not-staging-verified",
    default=None,
    help="Whether the fix was verified on staging.",
)
@click.option("--done", is_flag=True, help="Then mark the incident fixed.")
@pass_app
def fix(
    app: App,
    incident_id: str,
    description: str | None,
    test: str | None,
    staging_verified: bool | None,
    done: bool,
) -> None:
    """Record the fix (DESCRIPTION, --test, staging); with --done, mark it fixed."""
    if description is None and not done:
        raise click.UsageError("give the fix's DESCRIPTION, or --done to mark the incident fixed")
    recorded = None
    if description is not None:
        if test is None or staging_verified is None:
            raise click.UsageError(
                "a fix needs --test (the test that would have caught it) and "
                "--staging-verified or --not-staging-verified"
            )
        recorded = app.flow.record_fix(incident_id, description, test=test,
                                       staging_verified=staging_verified,
                                       actor=app.actor)  # fmt: skip
        if not done:
            app.done(recorded, "fix recorded")
            return
    with _kept_if_refused(recorded, "the fix"):
        incident = app.flow.mark_fixed(incident_id, actor=app.actor)
    app.done(incident, "fixed")
    if not app.as_json:
        click.echo(f"next: incidentflow confirm {incident.id} --user NAME")


@cli.command()
@_incident_argument
@click.option("--ref", default="", help="The release, commit or tag deployed.")
@click.option(
    "--at",
    "deployed_at",
    metavar="TIME",
    callback=_moment,
    help="When it was deployed (default: now).",
)
@pass_app
def deploy(app: App, incident_id: str, ref: str, deployed_at: datetime | None) -> None:
    """Record the fix's deploy."""
    incident = app.flow.record_deploy(incident_id, actor=app.actor, ref=ref,
                                      deployed_at=deployed_at)  # fmt: skip
    app.done(incident, "deploy recorded")


# -- confirmation and closing -------------------------------------------------


@cli.command(short_help="Record a real user's answer.")
@_incident_argument
@click.option("--user", required=True, help="The user who checked (not the commander).")
@click.option("--negative", is_flag=True, help="The problem persists: reopens to rca.")
@click.option("--comment", default="", help="What the user said.")
@pass_app
def confirm(app: App, incident_id: str, user: str, negative: bool, comment: str) -> None:
    """Record a real user's answer: fixed, or (with --negative) not."""
    incident = app.flow.confirm_by_user(
        incident_id, user=user, positive=not negative, comment=comment, actor=app.actor
    )
    app.done(incident, "user reported the problem persists" if negative else "user confirmed")


@cli.command(short_help="Resolve, after confirmation and watch window.")
@_incident_argument
@pass_app
def resolve(app: App, incident_id: str) -> None:
    """Resolve: needs a user's confirmation and the watch window passed."""
    app.done(app.flow.resolve(incident_id, actor=app.actor), "resolved")


@cli.command()
@_incident_argument
@click.option("--reason", required=True, help="Why it is reopened.")
@click.option(
    "--to",
    "to_state",
    type=click.Choice(["rca", "triaging"]),
    default="rca",
    show_default=True,
    help="Where the incident goes back to.",
)
@pass_app
def reopen(app: App, incident_id: str, reason: str, to_state: str) -> None:
    """Reopen a fixed or resolved incident."""
    incident = app.flow.reopen(incident_id, reason=reason, to=to_state, actor=app.actor)
    app.done(incident, "reopened")


@cli.command(short_help="Dismiss a false alarm or a duplicate.")
@_incident_argument
@click.option("--reason", required=True, help="Why: a false alarm, a duplicate, ...")
@click.option("--duplicate-of", metavar="ID", help="The incident this one duplicates.")
@pass_app
def dismiss(app: App, incident_id: str, reason: str, duplicate_of: str | None) -> None:
    """Dismiss a false alarm or a duplicate (before containment)."""
    incident = app.flow.dismiss(incident_id, reason=reason, duplicate_of=duplicate_of,
                                actor=app.actor)  # fmt: skip
    app.done(incident, "dismissed")


def _postmortem_options(function: _F) -> _F:
    for option in reversed(
        (
            click.option("--summary", help="What happened, in a paragraph."),
            click.option(
                "--root-cause", help="The root cause (default: the incident's, if none yet)."
            ),
            click.option("--went-well", multiple=True, help="What went well (repeatable)."),
            click.option("--went-poorly", multiple=True, help="What went poorly (repeatable)."),
        )
    ):
        function = option(function)
    return function


def _postmortem_root_cause(app: App, incident_id: str, given: str | None) -> str | None:
    """``given``, else the incident's root cause when the post-mortem has none yet."""
    if given is not None:
        return given
    incident = app.flow.get(incident_id)
    if incident.root_cause is None:
        return None
    if incident.postmortem is not None and incident.postmortem.root_cause:
        return None
    return incident.root_cause.statement


@cli.group(cls=_Group, short_help="Draft and complete the post-mortem.")
def postmortem() -> None:
    """Write the post-mortem, field by field, then complete it."""


def _postmortem_command(name: str, method: str, done: str, doc: str) -> None:
    """Register ``postmortem NAME``, which calls ``flow.METHOD`` with the fields given."""

    def command(
        app: App,
        incident_id: str,
        summary: str | None,
        root_cause: str | None,
        went_well: tuple[str, ...],
        went_poorly: tuple[str, ...],
    ) -> None:
        if method == "draft_postmortem" and not (summary or root_cause or went_well or went_poorly):
            raise click.UsageError(
                "give at least one of --summary, --root-cause, --went-well, --went-poorly"
            )
        incident = getattr(app.flow, method)(
            incident_id,
            actor=app.actor,
            summary=summary,
            root_cause=_postmortem_root_cause(app, incident_id, root_cause),
            went_well=went_well or None,
            went_poorly=went_poorly or None,
        )
        app.done(incident, done)
        # The policy's blame check warns by default: a warning nobody sees is no check.
        for warning in incident.postmortem.blame_warnings if incident.postmortem else ():
            click.echo(f"incidentflow: warning: {warning}", err=True)

    command.__doc__ = doc
    postmortem.command(name)(_incident_argument(_postmortem_options(pass_app(command))))


_postmortem_command(
    "draft",
    "draft_postmortem",
    "post-mortem drafted",
    "Fill in post-mortem fields; those not given keep their value.",
)
_postmortem_command(
    "complete",
    "complete_postmortem",
    "post-mortem completed",
    "Complete the post-mortem, filling in any fields given first.",
)


@cli.group(cls=_Group, short_help="Add action items and mark them done.")
def action() -> None:
    """Follow-up action items, each with an owner and a due date."""


@action.command("add")
@_incident_argument
@click.argument("description")
@click.option("--owner", required=True, help="Who will do it.")
@click.option("--due", metavar="DATE", callback=_day, required=True, help="By when (YYYY-MM-DD).")
@pass_app
def action_add(app: App, incident_id: str, description: str, owner: str, due: date) -> None:
    """Add an action item."""
    incident = app.flow.add_action_item(incident_id, description, owner=owner, due=due,
                                        actor=app.actor)  # fmt: skip
    app.done(incident, f"action item #{len(incident.action_items)} added")


@action.command("done")
@_incident_argument
@click.argument("number", type=click.IntRange(min=1))
@pass_app
def action_done(app: App, incident_id: str, number: int) -> None:
    """Mark action item NUMBER done."""
    incident = app.flow.complete_action_item(incident_id, number, actor=app.actor)
    app.done(incident, f"action item #{number} done")


@cli.command(short_help="Write the KB gotcha and close the incident.")
@_incident_argument
@click.option("--symptom", required=True, help="What responders will see next time.")
@click.option("--early-signs", required=True, help="How to spot it early.")
@click.option("--root-cause", help="Default: the incident's root cause.")
@click.option("--fix", "fix_text", help="Default: the incident's fix.")
@pass_app
def kb(
    app: App,
    incident_id: str,
    symptom: str,
    early_signs: str,
    root_cause: str | None,
    fix_text: str | None,
) -> None:
    """Write the knowledge-base gotcha and close the incident."""
    incident = app.flow.update_kb(
        incident_id, symptom=symptom, early_signs=early_signs, root_cause=root_cause,
        fix=fix_text, actor=app.actor,
    )  # fmt: skip
    app.done(incident, "knowledge base updated; incident closed")


# -- anytime records ----------------------------------------------------------


@cli.command(short_help="Add a note (allowed in every state).")
@_incident_argument
@click.argument("text")
@pass_app
def note(app: App, incident_id: str, text: str) -> None:
    """Add a free-form note (allowed in every state)."""
    app.done(app.flow.add_note(incident_id, text, actor=app.actor), "note added")


@cli.command()
@_incident_argument
@click.argument("severity", metavar=SEVERITY_METAVAR, callback=_severity)
@click.option("--reason", required=True, help="Why the severity changes.")
@pass_app
def reclassify(app: App, incident_id: str, severity: str, reason: str) -> None:
    """Change the severity."""
    incident = app.flow.reclassify(incident_id, severity, reason=reason, actor=app.actor)
    app.done(incident, f"reclassified to {incident.severity.value}")


@cli.command(short_help="Hand the incident to another commander.")
@_incident_argument
@click.argument("commander")
@pass_app
def assign(app: App, incident_id: str, commander: str) -> None:
    """Hand the incident to another COMMANDER."""
    incident = app.flow.assign_commander(incident_id, commander, actor=app.actor)
    app.done(incident, f"commander is now {incident.commander}")


@cli.command(short_help="Record when it began and how it was seen.")
@_incident_argument
@click.option(
    "--method",
    type=click.Choice(["alert", "user_report", "other"]),
    required=True,
    help="How it came to light.",
)
@click.option(
    "--first-occurred-at", metavar="TIME", callback=_moment, help="When the issue first occurred."
)
@click.option("--detected-at", metavar="TIME", callback=_moment, help="When it was detected.")
@pass_app
def detect(
    app: App,
    incident_id: str,
    method: str,
    first_occurred_at: datetime | None,
    detected_at: datetime | None,
) -> None:
    """Record when the issue first occurred and how it was detected."""
    incident = app.flow.record_detection(
        incident_id, method=method, first_occurred_at=first_occurred_at,
        detected_at=detected_at, actor=app.actor,
    )  # fmt: skip
    app.done(incident, "detection recorded")


# -- operations ---------------------------------------------------------------


@cli.command(short_help="List an incident's deadlines.")
@_incident_argument
@pass_app
def deadlines(app: App, incident_id: str) -> None:
    """List an incident's deadlines: response, post-mortem, action items."""
    found = app.reader.deadlines(incident_id)
    now = app.reader.now()
    app.emit(
        [_plain(d) for d in found],
        lambda: _table(
            ("KIND", "SUBJECT", "DUE (UTC)", "STATUS"),
            ((d.kind, d.subject, _when(d.due_at), _deadline_status(d, now)) for d in found),
            empty="no deadlines",
        ),
    )


@cli.command("check-deadlines", short_help="Record every newly missed deadline.")
@click.option(
    "--now", "at", metavar="TIME", callback=_moment, help="Check as of this time (default: now)."
)
@pass_app
def check_deadlines(app: App, at: datetime | None) -> None:
    """Record a breach for every deadline newly missed; notify through the routing."""
    events = app.flow.check_deadlines(at, actor=app.actor)
    app.emit(
        [{"incident_id": e.incident_id, **_plain(e.data)} for e in events],
        lambda: _table(
            ("INCIDENT", "KIND", "SUBJECT", "DUE (UTC)"),
            (
                (e.incident_id, breach.kind, breach.subject, _when(breach.due_at))
                for e in events
                if isinstance(breach := e.data, DeadlineBreached)
            ),
            empty="no new breaches",
        ),
    )


@cli.command(short_help="Deliver pending notifications once.")
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Notifications to attempt at most.",
)
@click.option(
    "--in-flight",
    type=click.IntRange(1, 256),
    help="Deliveries at once (default: the config's max_in_flight, 8).",
)
@click.option("--dead", is_flag=True, help="List dead letters instead of delivering.")
@click.option("--redrive", is_flag=True, help="Put every dead letter back to be delivered.")
@pass_app
def deliver(app: App, limit: int, in_flight: int | None, dead: bool, redrive: bool) -> None:
    """Deliver pending notifications from the outbox once, then stop."""
    if dead and redrive:
        raise click.UsageError("--dead lists dead letters and --redrive re-drives them; pick one")
    flow = app.flow
    if dead:
        letters = flow.dead_letters(limit)
        app.emit(
            [_outbox_json(item) for item in letters],
            lambda: _table(
                ("ID", "EVENT", "NOTIFIER", "ATTEMPTS", "LAST ERROR"),
                ((i.id, i.event.type, i.notifier, str(i.attempts), i.last_error) for i in letters),
                empty="no dead letters",
            ),
        )
        return
    if redrive:
        count = flow.redrive()
        app.emit({"redriven": count}, f"{count} dead letter(s) put back to be delivered")
        return
    if in_flight is None:
        in_flight = app.config.max_in_flight
    report = flow.deliver_pending(limit=limit, max_in_flight=in_flight)
    app.emit(_plain(report), lambda: _report_text(_plain(report)))


@cli.command(short_help="Deliver notifications until stopped.")
@click.option(
    "--in-flight",
    type=click.IntRange(1, 256),
    help="Deliveries at once (default: the config's max_in_flight, 8).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05, max=3600),
    help="Seconds between looks at the outbox (default: the config's poll_seconds, 1).",
)
@pass_app
def dispatch(app: App, in_flight: int | None, interval: float | None) -> None:
    """Deliver notifications in this process until Ctrl-C or SIGTERM.

    Deliveries then run in a process of their own, so a storm of commands
    elsewhere never competes with them for an interpreter. Set ``inline =
    false`` under ``[delivery]`` so that commands leave their notifications to
    it. Several dispatchers, on one host or many sharing a PostgreSQL store,
    split the work.
    """
    import signal
    import threading

    flow = app.flow
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    dispatcher = flow.dispatcher(
        max_in_flight=in_flight or app.config.max_in_flight,
        interval=interval or app.config.poll_interval,
    )
    dispatcher.start()
    click.echo("incidentflow: delivering; Ctrl-C or SIGTERM stops", err=True)
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass  # a clean stop, like SIGTERM
    finally:
        dispatcher.stop()
        signal.signal(signal.SIGTERM, previous)
    app.emit(
        {"delivered": dispatcher.delivered},
        f"stopped; {dispatcher.delivered} notification(s) delivered",
    )


@cli.command(short_help="MTTA, MTTR and each duration's figures.")
@click.option("--by", type=click.Choice(["severity", "period"]), help="Group the figures.")
@click.option(
    "--period",
    type=click.Choice(["day", "week", "month"]),
    default="week",
    show_default=True,
    help="With --by period: the length of each period (UTC).",
)
@click.option(
    "--severity",
    "severities",
    metavar=SEVERITY_METAVAR,
    callback=_severity,
    multiple=True,
    help="Only these.",
)
@click.option("--since", metavar="TIME", callback=_moment, help="Declared at or after this time.")
@click.option("--until", metavar="TIME", callback=_moment, help="Declared before this time.")
@click.option("--prometheus", is_flag=True, help="Print the Prometheus text exposition.")
@pass_app
def metrics(
    app: App,
    by: str | None,
    period: str,
    severities: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    prometheus: bool,
) -> None:
    """Time to triage, contain, fix, resolve and post-mortem; MTTA and MTTR."""
    from .metrics import METRICS, summarize, to_prometheus

    if prometheus and app.as_json:
        raise click.UsageError("--prometheus prints the text exposition; it cannot be --json")
    if since is not None and until is not None and since >= until:
        raise click.BadParameter("must come before --until", param_hint="--since")

    found = app.reader.milestones(
        severity=severities or None,
        declared_after=since,
        declared_before=until,
    )
    summaries = summarize(
        app.progress(found, "measuring"),
        by=by,  # type: ignore[arg-type]
        period=period,  # type: ignore[arg-type]
    )
    if prometheus:
        click.echo(to_prometheus(summaries), nl=False)
        return

    def text() -> str:
        blocks = []
        for summary in summaries:
            group = summary.severity.value if summary.severity else summary.period or "all"
            mtta, mttr = _duration(summary.mtta), _duration(summary.mttr)
            heading = f"{group}: {summary.count} incident(s), MTTA {mtta}, MTTR {mttr}"
            rows = []
            for name in METRICS:
                stats = getattr(summary, name)
                rows.append(
                    (
                        name.replace("_", " "),
                        str(stats.count),
                        _duration(stats.mean),
                        _duration(stats.median),
                        _duration(stats.p90),
                        _duration(stats.maximum),
                    )
                )
            table = _table(("DURATION", "N", "MEAN", "MEDIAN", "P90", "MAX"), rows)
            blocks.append(f"{heading}\n{table}")
        return "\n\n".join(blocks)

    app.emit([_summary_metrics_json(s) for s in summaries], text)


@cli.command(short_help="The lifecycle or an incident as Mermaid.")
@click.argument("incident_id", metavar="[ID]", required=False)
@pass_app
def diagram(app: App, incident_id: str | None) -> None:
    """Print the lifecycle as Mermaid, or an incident's phases as a Mermaid gantt."""
    if incident_id is None:
        from ._lifecycle import mermaid_diagram

        text = mermaid_diagram()
    else:
        from .render.gantt import incident_gantt

        incident = app.reader.get(incident_id)
        text = incident_gantt(incident, app.reader.history(incident.id))
    app.emit({"mermaid": text}, text.rstrip())


@cli.command(short_help="Export histories as JSON Lines.")
@click.argument("incident_ids", metavar="[ID]...", nargs=-1)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=Path("-"),
    help="Write to this file (default: standard output).",
)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@pass_app
def export(app: App, incident_ids: tuple[str, ...], output: Path, force: bool) -> None:
    """Export histories as JSON Lines: a header, then every event in order."""
    from ._transfer import export_lines

    flow = app.reader
    if str(output) != "-":
        _check_output(app, output, force)
    ids = list(dict.fromkeys(incident_ids))  # each history once, or the export is unreadable
    for incident_id in ids:
        if not flow.store.exists(incident_id):  # unknown ids fail before anything is written
            raise IncidentNotFound(incident_id)
    ids = ids or [i.id for i in flow.summaries(newest_first=False)]
    lines = export_lines(flow, app.progress(ids, "exporting"))
    if str(output) == "-":
        for line in lines:
            click.echo(line)
        return
    written = _write_lines(output, lines)
    app.emit(
        {"output": str(output), "incidents": len(ids), "events": written},
        f"exported {len(ids)} incident(s), {written} event(s) to {output}",
    )


def _check_output(app: App, output: Path, force: bool) -> None:
    """Refuse to overwrite a file without --force, and the store's own files ever."""
    store = app.reader.store
    target = output.resolve()
    database = getattr(store, "path", None)  # SQLite: a file and its companions
    folder = getattr(store, "directory", None)  # JSONL: a folder of histories
    inside = folder is not None and Path(folder).resolve() in target.parents
    if database is not None:
        database = Path(database).resolve()
        companions = {database.with_name(database.name + suffix) for suffix in _SIDECARS}
        inside = inside or target in {database, *companions}
    if inside:
        raise click.BadParameter(
            f"{output} is part of the store; write the export elsewhere", param_hint="--output"
        )
    if output.exists() and not force:
        raise click.BadParameter(
            f"{output} exists; pass --force to overwrite it", param_hint="--output"
        )


#: Files SQLite keeps beside a database.
_SIDECARS = ("-wal", "-shm", "-journal")


@cli.command("import", short_help="Import histories from an export.")
@click.argument("source", type=click.File("rb"))
@pass_app
def import_(app: App, source: IO[bytes]) -> int:
    """Import histories exported by `incidentflow export` (no notifications are sent)."""
    from ._transfer import import_histories, read_export

    histories = read_export(source, getattr(source, "name", "input"), app.reader.policy)
    outcome = import_histories(app.reader, app.progress(histories, "importing"))
    app.emit(
        _plain(outcome),
        lambda: "\n".join(
            [
                f"imported {len(outcome.imported)}, caught up {len(outcome.extended)}, "
                f"already present {len(outcome.present)}, conflicting {len(outcome.conflicts)}"
            ]
            + [
                f"  - {i}: another history is stored under this id; left as it is"
                for i in outcome.conflicts
            ]
        ),
    )
    for incident_id in outcome.unwritten:
        click.echo(
            f"incidentflow: warning: the files of {incident_id} could not be written; "
            "the next command on it (or incidentflow show) writes them",
            err=True,
        )
    return EXIT_REJECTED if outcome.conflicts else EXIT_OK


@cli.command(short_help="Check histories replay to their snapshots.")
@click.argument("incident_ids", metavar="[ID]...", nargs=-1)
@pass_app
def verify(app: App, incident_ids: tuple[str, ...]) -> int:
    """Check that each history replays to its stored snapshot (all incidents by default)."""
    flow = app.reader
    ids = list(incident_ids) or [i.id for i in flow.summaries(newest_first=False)]
    bad = [i for i in app.progress(ids, "verifying") if not flow.verify(i)]
    app.emit(
        {"checked": len(ids), "mismatched": bad},
        lambda: "\n".join(
            [f"{len(ids)} incident(s) checked, {len(bad)} mismatched"]
            + [f"  - {i}: its history does not replay to its snapshot" for i in bad]
        ),
    )
    return EXIT_REJECTED if bad else EXIT_OK


# -- running it ---------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    app = App()
    try:
        with _library_warnings():
            result = cli.main(args=args, prog_name="incidentflow", standalone_mode=False, obj=app)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
        return EXIT_USAGE
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "incidentflow"
        message = f"{_one_line(exc.format_message())} (see '{where} --help')"
        return _report(f"{where}: error: {message}", "UsageError", message, app, args)
    except click.ClickException as exc:
        message = _one_line(exc.format_message())
        return _report(f"incidentflow: error: {message}", "UsageError", message, app, args)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort as exc:
        # click turns Ctrl-C into Abort; 130 is what shells expect of an interrupt.
        interrupted = isinstance(exc.__context__, KeyboardInterrupt)
        click.echo("interrupted" if interrupted else "aborted", err=True)
        return EXIT_INTERRUPTED if interrupted else EXIT_USAGE
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except SystemExit as exc:
        # click exits 1 when the reader of standard output went away (``| head``):
        # answer as a program killed by SIGPIPE would, which shells know.
        return exc.code if isinstance(exc.code, int) and exc.code != 1 else EXIT_BROKEN_PIPE
    except _Exit as exc:
        return exc.code
    except IncidentFlowError as exc:
        return _report_error(exc, app.as_json or _json_requested(args))
    except OSError as exc:
        click.echo(f"incidentflow: error: {_one_line(str(exc))}", err=True)
        return EXIT_FAILED
    return result if isinstance(result, int) else EXIT_OK


#: Global options that take a value, to find ``--json`` before the subcommand.
_VALUED_OPTIONS = frozenset({"--store", "--config", "--actor"})


def _json_requested(args: Sequence[str]) -> bool:
    """Whether ``--json`` is among the global options, when parsing failed before reading it."""
    tokens = iter(args)
    for token in tokens:
        if token == "--json":
            return True
        if token in _VALUED_OPTIONS:
            next(tokens, None)
        elif token == "--" or not token.startswith("-"):
            return False  # the subcommand (or its arguments) begins
    return False


def _report(line: str, kind: str, message: str, app: App, args: Sequence[str]) -> int:
    """Report a usage error: one line on standard error, and JSON with ``--json``."""
    if app.as_json or _json_requested(args):
        click.echo(json.dumps({"error": kind, "message": message, "reasons": []}))
    click.echo(line, err=True)
    return EXIT_USAGE


def _report_error(exc: IncidentFlowError, as_json: bool) -> int:
    code = _exit_code(exc)
    reasons = list(getattr(exc, "reasons", ()))
    message = str(exc)
    if isinstance(exc, IncidentNotFound):
        message = f"no incident with id {exc.incident_id!r}; run 'incidentflow list' to find its id"
    if as_json:
        click.echo(
            json.dumps(
                {"error": type(exc).__name__, "message": message, "reasons": reasons},
                ensure_ascii=False,
            )
        )
    if isinstance(exc, TransitionRejected) and reasons:
        click.echo(f"incidentflow: rejected: {exc.incident_id} cannot {exc.command} yet:", err=True)
        for reason in reasons:
            click.echo(f"  - {_in_cli_terms(reason)}", err=True)
    elif isinstance(exc, IncidentNotFound):
        click.echo(f"incidentflow: error: {message}", err=True)
    else:
        label = "rejected" if code == EXIT_REJECTED else "error"
        click.echo(f"incidentflow: {label}: {_in_cli_terms(_one_line(str(exc)))}", err=True)
    return code


#: The command line's words for the library's commands, used in messages.
_CLI_TERMS = {
    "start_triage": "incidentflow triage start",
    "add_evidence": "incidentflow evidence add",
    "answer_triage": "incidentflow triage answer",
    "record_containment": "incidentflow contain ID ACTION",
    "start_rca": "incidentflow rca start",
    "add_why": "incidentflow rca why",
    "set_root_cause": "incidentflow rca root-cause",
    "record_fix": "incidentflow fix ID DESCRIPTION",
    "record_deploy": "incidentflow deploy",
    "mark_fixed": "incidentflow fix --done",
    "confirm_by_user": "incidentflow confirm",
    "draft_postmortem": "incidentflow postmortem draft",
    "complete_postmortem": "incidentflow postmortem complete",
    "add_action_item": "incidentflow action add",
    "complete_action_item": "incidentflow action done",
    "update_kb": "incidentflow kb",
    "record_detection": "incidentflow detect",
    "assign_commander": "incidentflow assign",
    "add_note": "incidentflow note",
}
_LIBRARY_COMMAND = re.compile(r"\b(" + "|".join(sorted(_CLI_TERMS, key=len, reverse=True)) + r")\b")


def _in_cli_terms(message: str) -> str:
    """A library message with its command names followed by the command line's.

    Only names with an underscore are matched, so plain words ("contain") stay
    as they are; square brackets keep the library's own parentheses readable.
    """
    seen: set[str] = set()

    def annotate(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in seen:
            return name
        seen.add(name)
        return f"{name} [{_CLI_TERMS[name]}]"

    return _LIBRARY_COMMAND.sub(annotate, message)


def _exit_code(exc: IncidentFlowError) -> int:
    rejected = (
        TransitionRejected,
        InvalidTransition,
        ConcurrencyConflict,
        DuplicateIncident,
        IdempotencyConflict,
    )
    if isinstance(exc, rejected):
        return EXIT_REJECTED
    if isinstance(exc, (ValidationError, ConfigError, IncidentNotFound)):
        return EXIT_USAGE
    return EXIT_FAILED


def _environment_failure(message: str) -> _Exit:
    click.echo(f"incidentflow: error: {message}", err=True)
    return _Exit(EXIT_FAILED)


# -- formatting ---------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cut(text: str, width: int) -> str:
    text = _one_line(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str = "(none)") -> str:
    """Rows as aligned columns; the last column may be long and is cut to the terminal."""
    body = [[_one_line(cell) for cell in row] for row in rows]
    if not body:
        return empty
    widths = [len(h) for h in header]
    for row in body[:500]:  # wide outliers past the first page do not stretch every line
        for i, cell in enumerate(row[:-1]):
            widths[i] = min(max(widths[i], len(cell)), 48)
    room = max(20, _terminal_width() - sum(widths[:-1]) - 2 * (len(header) - 1))
    lines = []
    for row in [list(header), *body]:
        cells = [_cut(cell, widths[i]).ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        cells.append(_cut(row[-1], room))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _terminal_width() -> int:
    """The terminal's width; when the output goes to a file or a pipe, no limit."""
    if not sys.stdout.isatty():
        return sys.maxsize
    import shutil

    return shutil.get_terminal_size((120, 24)).columns


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _duration(span: timedelta | None) -> str:
    if span is None:
        return "-"
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s"


def _deadline_status(deadline: Any, now: datetime) -> str:
    if deadline.breached:
        return "breached (recorded)"
    if deadline.is_overdue(now):
        return "overdue"
    return f"in {_duration(deadline.due_at - now)}"


def _details(event: Event) -> str:
    parts = []
    for name, value in _plain(event.data).items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, enum.Enum):
            value = value.value
        shown = value if isinstance(value, str) else json.dumps(value, default=_jsonable)
        parts.append(f"{name}={_cut(shown, 60)}")
    return " ".join(parts)


def _similar_text(found: Sequence[Any]) -> str:
    if not found:
        return "no similar past incidents"
    lines = ["similar past incidents:"]
    for match in found:
        gotcha = f", gotcha {match.gotcha_slug}" if getattr(match, "gotcha_slug", None) else ""
        lines.append(
            f"  - {match.incident_id} ({match.severity.value}, {match.state.value}{gotcha}): "
            f"{_cut(match.title, 80)}"
        )
    return "\n".join(lines)


def _report_text(report: Mapping[str, Any]) -> str:
    return ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in report.items())


def _write_lines(path: Path, lines: Iterable[str]) -> int:
    """Write lines to ``path`` via a new temporary file: a failure leaves nothing behind.

    Returns how many lines after the header were written (events).
    """
    import tempfile

    count = -1  # the header line is not an event
    try:
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise _environment_failure(f"cannot write {path}: {exc.strerror}") from None
    temporary = Path(name)
    try:
        with open(descriptor, "w", encoding="utf-8") as out:
            for line in lines:
                out.write(line + "\n")
                count += 1
        temporary.replace(path)
    except OSError as exc:
        raise _environment_failure(f"cannot write {path}: {exc.strerror}") from None
    finally:
        temporary.unlink(missing_ok=True)  # gone already when it was renamed
    return max(count, 0)


# -- JSON -----------------------------------------------------------------------


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if attrs.has(type(value)):
        return _plain(value)
    return str(value)  # paths and the like


def _plain(value: object) -> dict[str, Any]:
    """An attrs instance as a dict of JSON-ready values (one level; nested by _jsonable)."""
    if isinstance(value, Mapping):
        return dict(value)
    fields: Sequence[attrs.Attribute[Any]] = attrs.fields(type(value))  # type: ignore[arg-type]
    return {f.name: getattr(value, f.name) for f in fields if not f.name.startswith("_")}


def _incident_json(incident: Incident) -> dict[str, Any]:
    from .serialization import incident_to_dict

    return incident_to_dict(incident)


def _summary_json(incident: IncidentSummary) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": incident.title,
        "severity": incident.severity.value,
        "state": incident.state.value,
        "commander": incident.commander,
        "declared_at": incident.declared_at.isoformat(),
        "version": incident.version,
    }


def _outbox_json(item: Any) -> dict[str, Any]:
    data = _plain(item)
    data["event"] = {"incident_id": item.event.incident_id, "seq": item.event.seq,
                     "type": item.event.type}  # fmt: skip
    return data


def _summary_metrics_json(summary: Any) -> dict[str, Any]:
    data = _plain(summary)
    data["counts"] = [
        {"severity": severity.value, "state": state.value, "count": count}
        for (severity, state), count in summary.counts.items()
    ]
    data["mtta"] = summary.mtta
    data["mttr"] = summary.mttr
    return data


def _toml_loads(text: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(text)
