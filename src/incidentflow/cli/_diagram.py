"""``diagram``: the lifecycle, or one incident's phases, as Mermaid."""

from __future__ import annotations

import click

from ._app import App, pass_app
from ._current import complete_incident, resolve_argument

__all__ = ["COMMANDS"]


@click.command(short_help="The lifecycle or an incident as Mermaid.")
@click.argument(
    "incident_id",
    metavar="[ID]",
    required=False,
    callback=resolve_argument,
    shell_complete=complete_incident,
)
@pass_app
def diagram(app: App, incident_id: str | None) -> None:
    """Print the lifecycle as Mermaid, or an incident's phases as a Mermaid gantt."""
    if incident_id is None:
        from .._lifecycle import mermaid_diagram

        text = mermaid_diagram()
    else:
        from ..render.gantt import incident_gantt

        incident = app.reader.get(incident_id)
        text = incident_gantt(incident, app.reader.history(incident.id))
    app.emit({"mermaid": text}, text.rstrip())


COMMANDS: tuple[click.Command, ...] = (diagram,)
