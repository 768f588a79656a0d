"""Correcting the record without erasing it: ``amend`` and ``retract``."""

from __future__ import annotations

import click

from ._app import App, pass_app
from ._params import incident_argument

__all__ = ["COMMANDS"]

_ITEMS = (
    "why:N, evidence:N, containment:N, action_item:N, triage:QUESTION, "
    "root_cause:statement|process_gap, fix:description|test, "
    "postmortem:summary|root_cause|went_well|went_poorly"
)


@click.command(short_help="Correct something recorded, with a reason.")
@incident_argument
@click.argument("item")
@click.argument("values", metavar="VALUE...", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why it is corrected.")
@pass_app
def amend(app: App, incident_id: str, item: str, values: tuple[str, ...], reason: str) -> None:
    """Correct ITEM to VALUE; the history keeps the original.

    \b
    ITEM is one of: why:N, evidence:N, containment:N, action_item:N,
    triage:QUESTION, root_cause:statement|process_gap, fix:description|test,
    postmortem:summary|root_cause|went_well|went_poorly.
    postmortem:went_well and went_poorly take several VALUEs, one per line of the list.
    """  # noqa: D301 - "\b" is click's marker for a paragraph kept as written
    incident = app.flow.amend(incident_id, item, values, reason=reason, actor=app.actor)
    app.done(incident, f"{item} amended")
    # The policy's blame check warns by default: a warning nobody sees is no check.
    if item.strip().startswith("postmortem:") and incident.postmortem is not None:
        for warning in incident.postmortem.blame_warnings:
            click.echo(f"incidentflow: warning: {warning}", err=True)


@click.command(short_help="Withdraw something recorded in error, with a reason.")
@incident_argument
@click.argument("item")
@click.option("--reason", required=True, help="Why it is withdrawn.")
@pass_app
def retract(app: App, incident_id: str, item: str, reason: str) -> None:
    """Withdraw ITEM (why:N, evidence:N, containment:N, action_item:N, triage:QUESTION).

    The history keeps it; the guards stop counting it, so a retracted why
    frees its place among the five.
    """
    incident = app.flow.retract(incident_id, item, reason=reason, actor=app.actor)
    app.done(incident, f"{item} retracted")


COMMANDS: tuple[click.Command, ...] = (amend, retract)
