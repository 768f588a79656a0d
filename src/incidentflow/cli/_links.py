"""Relations between incidents (link, unlink, merge) and who sees one (restrict)."""

from __future__ import annotations

import click

from ._app import App, pass_app
from ._current import complete_incident, resolve_argument
from ._params import incident_argument

__all__ = ["COMMANDS", "LINK_KIND_NAMES"]

#: The kinds of link (``commands.LINK_KINDS``), kept here so that building the commands loads
#: no command definitions; a test checks they agree.
LINK_KIND_NAMES = (
    "caused_by",
    "causes",
    "child_of",
    "duplicate_of",
    "duplicated_by",
    "parent_of",
    "related_to",
)
_KIND = click.Choice(LINK_KIND_NAMES)
#: The other incident, read as every ID is: an id, a unique prefix or slug.
_OTHER = click.argument(
    "other", metavar="OTHER", callback=resolve_argument, shell_complete=complete_incident
)


@click.command(short_help="Link to another incident (the other records the inverse).")
@incident_argument
@click.argument("kind", metavar="KIND", type=_KIND)
@_OTHER
@pass_app
def link(app: App, incident_id: str, kind: str, other: str) -> None:
    """Link ID to the incident OTHER as KIND; OTHER records the inverse.

    KIND is duplicate_of, caused_by, related_to, parent_of or child_of
    (parent_of ↔ child_of). A parent cannot be resolved while a child is open.
    """
    incident = app.flow.link(incident_id, kind, other, actor=app.actor)
    app.done(incident, f"{kind} {other}")


@click.command(short_help="Remove a link to another incident.")
@incident_argument
@click.argument("kind", metavar="KIND", type=_KIND)
@_OTHER
@pass_app
def unlink(app: App, incident_id: str, kind: str, other: str) -> None:
    """Remove the KIND link from ID to OTHER, and its inverse on OTHER."""
    incident = app.flow.unlink(incident_id, kind, other, actor=app.actor)
    app.done(incident, f"no longer {kind} {other}")


@click.command(short_help="Merge a duplicate into another incident.")
@incident_argument
@click.option(
    "--into",
    "target",
    metavar="OTHER",
    required=True,
    callback=resolve_argument,
    shell_complete=complete_incident,
    help="The incident it duplicates.",
)
@click.option("--reason", required=True, help="Why they are one incident.")
@pass_app
def merge(app: App, incident_id: str, target: str, reason: str) -> None:
    """Merge the duplicate ID into OTHER; ID is dismissed.

    Its evidence, labels and references move to OTHER, so later alerts for its
    fingerprints attach there. Run it again to finish a merge that stopped halfway.
    """
    incident = app.flow.merge(incident_id, into=target, reason=reason, actor=app.actor)
    app.done(incident, f"merged into {target}")


@click.command(short_help="Restrict an incident to named actors or groups.")
@incident_argument
@click.argument("who", metavar="WHO...", nargs=-1, required=True)
@pass_app
def restrict(app: App, incident_id: str, who: tuple[str, ...]) -> None:
    """Restrict ID to the actors and groups WHO (group:NAME); you are added.

    For everyone else it is gone: listings, searches and metrics omit it, and
    its notifications go only to routes marked restricted.
    """
    incident = app.flow.restrict(incident_id, list(who), actor=app.actor)
    app.done(incident, f"restricted to {', '.join(incident.restricted_to)}")


@click.command(short_help="Lift an incident's restriction.")
@incident_argument
@pass_app
def unrestrict(app: App, incident_id: str) -> None:
    """Lift ID's restriction: everyone with the read permission sees it again."""
    incident = app.flow.unrestrict(incident_id, actor=app.actor)
    app.done(incident, "no longer restricted")


COMMANDS: tuple[click.Command, ...] = (link, unlink, merge, restrict, unrestrict)
