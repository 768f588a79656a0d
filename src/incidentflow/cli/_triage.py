"""Triage and evidence: ``triage start|answer``, ``evidence add|collect``."""

from __future__ import annotations

import shlex
from typing import IO

import click

from ._app import App, pass_app
from ._output import incident_json, plain, similar_text
from ._params import Group, Seconds, count, incident_argument
from ._usage import usage

__all__ = ["COMMANDS"]


@click.group(cls=Group, short_help="Start triage and answer its checklist.")
def triage() -> None:
    """Start triage and answer its checklist."""


@triage.command("start")
@incident_argument
@pass_app
def triage_start(app: App, incident_id: str) -> None:
    """Acknowledge the incident (stops the response clock); show similar past ones."""
    incident = app.flow.start_triage(incident_id, actor=app.actor)
    found = app.flow.similar(incident.id)
    if app.as_json:
        app.emit({"incident": incident_json(incident), "similar": [plain(m) for m in found]}, "")
        return
    app.done(incident, "triage started")
    questions = ", ".join(app.flow.policy.required_triage_answers)
    click.echo(f"answer: {questions} ({usage('answer_triage', incident.id)})")
    if found:
        click.echo(similar_text(found))


@triage.command("answer")
@incident_argument
@click.argument("question")
@click.argument("answer")
@pass_app
def triage_answer(app: App, incident_id: str, question: str, answer: str) -> None:
    """Answer one triage question (symptom, started_at, scope, ...)."""
    incident = app.flow.answer_triage(incident_id, question, answer, actor=app.actor)
    app.done(incident, f"triage answer {question!r} recorded")


@click.group(cls=Group, short_help="Add evidence, or collect it with commands.")
def evidence() -> None:
    """Add evidence by hand or collect it by running commands."""


@evidence.command("add")
@incident_argument
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
    if content is not None and from_file is None:
        text = content
    elif content is None and from_file is not None:
        text = from_file.read()
    else:
        raise click.UsageError("give the evidence as CONTENT or with --file, not both or neither")
    incident = app.flow.add_evidence(incident_id, source=source, content=text, actor=app.actor)
    app.done(incident, f"evidence from {source} added")


@evidence.command("collect")
@incident_argument
@click.option("--git", "git_repo", metavar="REPO", help="git log of REPO (e.g. '.').")
@click.option(
    "--git-count",
    type=count(1, 1000),
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
    type=count(1, 100_000),
    default=200,
    show_default=True,
    help="Lines of each container's log.",
)
@click.option("--systemctl", "units", metavar="UNIT", multiple=True, help="systemctl status UNIT.")
@click.option("--journalctl", "journal_units", metavar="UNIT", multiple=True,
              help="journalctl -u UNIT ('-' for the whole journal).")  # fmt: skip
@click.option(
    "--lines",
    type=count(1, 100_000),
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
    type=Seconds(min=0.1, max=3600),
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
    from ..collectors import (
        Collector,
        Command,
        DockerLogs,
        DockerPs,
        GitLog,
        Journalctl,
        SystemctlStatus,
        collect_into,
    )

    chosen: list[Collector] = []
    if git_repo is not None:
        chosen.append(GitLog(n=git_count, repo=git_repo))
    if docker_ps:
        chosen.append(DockerPs())
    chosen.extend(DockerLogs(container=name, tail=tail) for name in containers)
    chosen.extend(SystemctlStatus(unit=unit) for unit in units)
    chosen.extend(
        Journalctl(unit=None if unit == "-" else unit, lines=lines) for unit in journal_units
    )
    for command in commands:
        try:
            chosen.append(Command(shlex.split(command)))
        except ValueError as exc:
            raise click.BadParameter(f"{command!r}: {exc}", param_hint="--run") from None
    if not chosen:
        raise click.UsageError(
            "choose what to collect: --git, --docker-ps, --docker-logs, --systemctl, "
            "--journalctl or --run"
        )
    collected = []
    for collector in app.progress(chosen, "collecting", minimum=2):
        [snapshot] = collect_into(
            app.flow, incident_id, [collector], actor=app.actor, timeout=timeout
        )
        collected.append((snapshot, snapshot.evidence[-1]))
    last = collected[-1][0]
    app.emit(
        {"incident": incident_json(last), "collected": [plain(item) for _, item in collected]},
        lambda: "\n".join(
            [f"{last.id}: {len(collected)} evidence item(s) collected (version {last.version})"]
            + [f"  - {item.source}: {item.content.splitlines()[0]}" for _, item in collected]
        ),
    )


COMMANDS: tuple[click.Command, ...] = (triage, evidence)
