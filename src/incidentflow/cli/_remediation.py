"""Stopping the bleeding and fixing the cause: ``contain``, ``rca``, ``fix``, ``deploy``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import click

from ..exceptions import InvalidTransition, TransitionRejected
from ._app import App, pass_app
from ._params import Group, incident_argument, moment
from ._usage import usage

if TYPE_CHECKING:
    from .._model import Incident

__all__ = ["COMMANDS"]


@click.command(short_help="Record containment; --done declares it contained.")
@incident_argument
@click.argument("action", required=False)
@click.option(
    "--at",
    "taken_at",
    metavar="TIME",
    callback=moment,
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
        click.echo(f"next: {usage('start_rca', incident.id)}")


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


@click.group(cls=Group, short_help="Root-cause analysis: start, why, root-cause.")
def rca() -> None:
    """Root-cause analysis: start it, ask why, state the root cause."""


@rca.command("start")
@incident_argument
@pass_app
def rca_start(app: App, incident_id: str) -> None:
    """Start root-cause analysis (the incident must be contained)."""
    app.done(app.flow.start_rca(incident_id, actor=app.actor), "root-cause analysis started")


@rca.command("why")
@incident_argument
@click.argument("answer")
@pass_app
def rca_why(app: App, incident_id: str, answer: str) -> None:
    """Add the next answer of the 5-Whys chain."""
    incident = app.flow.add_why(incident_id, answer, actor=app.actor)
    app.done(incident, f"why #{len(incident.whys)} added")


@rca.command("root-cause")
@incident_argument
@click.argument("statement")
@click.option("--gap", "process_gap", required=True, help="The process gap that let it through.")
@pass_app
def rca_root_cause(app: App, incident_id: str, statement: str, process_gap: str) -> None:
    """State the root cause and the process gap."""
    incident = app.flow.set_root_cause(incident_id, statement, process_gap=process_gap,
                                       actor=app.actor)  # fmt: skip
    app.done(incident, "root cause set")


@click.command(short_help="Record the fix; --done marks the incident fixed.")
@incident_argument
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
        click.echo(f"next: {usage('confirm_by_user', incident.id)}")


@click.command()
@incident_argument
@click.option("--ref", default="", help="The release, commit or tag deployed.")
@click.option(
    "--at",
    "deployed_at",
    metavar="TIME",
    callback=moment,
    help="When it was deployed (default: now).",
)
@pass_app
def deploy(app: App, incident_id: str, ref: str, deployed_at: datetime | None) -> None:
    """Record the fix's deploy."""
    incident = app.flow.record_deploy(incident_id, actor=app.actor, ref=ref,
                                      deployed_at=deployed_at)  # fmt: skip
    app.done(incident, "deploy recorded")


COMMANDS: tuple[click.Command, ...] = (contain, rca, fix, deploy)
