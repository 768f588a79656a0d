"""Who does what and who is told: ``role assign|release`` and ``update``."""

from __future__ import annotations

from datetime import timedelta

import click

from ._app import App, pass_app
from ._output import when, zone
from ._params import Group, incident_argument, span

__all__ = ["COMMANDS"]


@click.group(cls=Group, short_help="Assign, hand over and release roles.")
def role() -> None:
    """Incident roles from the policy: commander, communications_lead, operations_lead, scribe."""


@role.command("assign")
@incident_argument
@click.argument("role_name", metavar="ROLE")
@click.argument("person")
@click.option("--note", help="The handoff note: the state of play, open questions.")
@pass_app
def role_assign(app: App, incident_id: str, role_name: str, person: str, note: str | None) -> None:
    """Give ROLE to PERSON, or hand it over from whoever holds it."""
    incident = app.flow.assign_role(incident_id, role_name, person, note=note, actor=app.actor)
    last = incident.handoffs[-1] if incident.handoffs else None
    if last is not None and last.role == role_name and last.from_person:
        app.done(incident, f"{role_name} handed from {last.from_person} to {person}")
    else:
        app.done(incident, f"{role_name} is now {person}")


@role.command("release")
@incident_argument
@click.argument("role_name", metavar="ROLE")
@click.option("--note", help="Why it is released, or what was left open.")
@pass_app
def role_release(app: App, incident_id: str, role_name: str, note: str | None) -> None:
    """Release ROLE: it is vacant again (never the commander's)."""
    incident = app.flow.release_role(incident_id, role_name, note=note, actor=app.actor)
    app.done(incident, f"{role_name} released")


@click.command(short_help="Post a status update; --next sets when the next is due.")
@incident_argument
@click.argument("audience", type=click.Choice(["internal", "external"]))
@click.argument("text")
@click.option(
    "--next",
    "next_in",
    metavar="SPAN",
    callback=span,
    help="When the next update is due: 90s, 30m, 1h, 1h30m (default: the policy's cadence).",
)
@pass_app
def update(app: App, incident_id: str, audience: str, text: str, next_in: timedelta | None) -> None:
    """Post a status update to the internal or external AUDIENCE."""
    incident = app.flow.post_update(
        incident_id, audience, text, next_update_in=next_in, actor=app.actor
    )
    due = incident.next_update_due
    app.done(
        incident,
        f"{audience} update posted"
        + (f"; next due {when(due)} {zone()}" if due is not None else ""),
    )


COMMANDS: tuple[click.Command, ...] = (role, update)
