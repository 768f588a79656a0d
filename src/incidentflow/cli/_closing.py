"""Confirming and closing the response: ``confirm``, ``resolve``, ``reopen``, ``dismiss``."""

from __future__ import annotations

import click

from ._app import App, pass_app
from ._current import complete_incident, resolve_argument
from ._params import incident_argument

__all__ = ["COMMANDS"]


@click.command(short_help="Record a real user's answer.")
@incident_argument
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


@click.command(short_help="Resolve, after confirmation and watch window.")
@incident_argument
@pass_app
def resolve(app: App, incident_id: str) -> None:
    """Resolve: needs a user's confirmation and the watch window passed."""
    app.done(app.flow.resolve(incident_id, actor=app.actor), "resolved")


@click.command()
@incident_argument
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


@click.command(short_help="Dismiss a false alarm or a duplicate.")
@incident_argument
@click.option("--reason", required=True, help="Why: a false alarm, a duplicate, ...")
@click.option(
    "--duplicate-of",
    metavar="ID",
    callback=resolve_argument,
    shell_complete=complete_incident,
    help="The incident this one duplicates.",
)
@pass_app
def dismiss(app: App, incident_id: str, reason: str, duplicate_of: str | None) -> None:
    """Dismiss a false alarm or a duplicate (before containment)."""
    incident = app.flow.dismiss(incident_id, reason=reason, duplicate_of=duplicate_of,
                                actor=app.actor)  # fmt: skip
    app.done(incident, "dismissed")


COMMANDS: tuple[click.Command, ...] = (confirm, resolve, reopen, dismiss)
