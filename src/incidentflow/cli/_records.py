"""Records allowed while the incident is open: ``note``, ``reclassify``, ``assign``, ``detect``."""

from __future__ import annotations

from datetime import datetime

import click

from ._app import App, pass_app
from ._params import SEVERITY_METAVAR, incident_argument, moment, severity

__all__ = ["COMMANDS"]


@click.command(short_help="Add a note (allowed in every state).")
@incident_argument
@click.argument("text")
@pass_app
def note(app: App, incident_id: str, text: str) -> None:
    """Add a free-form note (allowed in every state)."""
    app.done(app.flow.add_note(incident_id, text, actor=app.actor), "note added")


@click.command()
@incident_argument
@click.argument("severity", metavar=SEVERITY_METAVAR, callback=severity)
@click.option("--reason", required=True, help="Why the severity changes.")
@pass_app
def reclassify(app: App, incident_id: str, severity: str, reason: str) -> None:
    """Change the severity."""
    incident = app.flow.reclassify(incident_id, severity, reason=reason, actor=app.actor)
    app.done(incident, f"reclassified to {incident.severity.value}")


@click.command(short_help="Hand the incident to another commander.")
@incident_argument
@click.argument("commander")
@pass_app
def assign(app: App, incident_id: str, commander: str) -> None:
    """Hand the incident to another COMMANDER."""
    incident = app.flow.assign_commander(incident_id, commander, actor=app.actor)
    app.done(incident, f"commander is now {incident.commander}")


@click.command(short_help="Record when it began and how it was seen.")
@incident_argument
@click.option(
    "--method",
    type=click.Choice(["alert", "user_report", "other"]),
    required=True,
    help="How it came to light.",
)
@click.option(
    "--first-occurred-at", metavar="TIME", callback=moment, help="When the issue first occurred."
)
@click.option("--detected-at", metavar="TIME", callback=moment, help="When it was detected.")
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


COMMANDS: tuple[click.Command, ...] = (note, reclassify, assign, detect)
