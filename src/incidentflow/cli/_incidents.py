"""Declaring and reading incidents: ``declare``, ``list``, ``show``, ``timeline``, ``similar``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

from ._app import App, pass_app
from ._clock import configure_zone
from ._output import (
    details,
    incident_json,
    moments,
    plain,
    reason_json,
    similar_text,
    summary_json,
    table,
    when,
    zone,
)
from ._params import SEVERITY_METAVAR, STATE, count, incident_argument, moment, pairs, severity
from ._usage import in_cli_terms, usage

__all__ = ["COMMANDS"]


@click.command(short_help="Declare an incident.")
@click.argument("title")
@click.option(
    "-s",
    "--severity",
    metavar=SEVERITY_METAVAR,
    callback=severity,
    required=True,
    help="P1 (critical) to P4 (low).",
)
@click.option("-c", "--commander", metavar="NAME", required=True, help="The incident commander.")
@click.option("--slug", help="The slug for the id and files (default: from the title).")
@click.option(
    "--type", "incident_type", metavar="TYPE", help="The incident type (default: the policy's)."
)
@click.option("--label", "labels", metavar="KEY=VALUE", multiple=True, callback=pairs,
              help="A label, e.g. service=checkout (repeatable).")  # fmt: skip
@click.option("--field", "fields", metavar="NAME=VALUE", multiple=True, callback=pairs,
              help="A custom field the policy declares (repeatable).")  # fmt: skip
@click.option("--ref", "references", metavar="KIND=VALUE", multiple=True, callback=pairs,
              help="An external reference, e.g. ticket=OPS-12 (repeatable).")  # fmt: skip
@click.option("--idempotency-key", metavar="KEY", help="Declare at most once for this key.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the new incident's id.")
@pass_app
def declare(
    app: App,
    title: str,
    severity: str,
    commander: str,
    slug: str | None,
    incident_type: str | None,
    labels: dict[str, str],
    fields: dict[str, str],
    references: dict[str, str],
    idempotency_key: str | None,
    quiet: bool,
) -> None:
    """Declare an incident (ID=$(incidentflow declare ... -q) keeps its id)."""
    from ._labels import field_values

    flow = app.flow
    incident = flow.declare(
        title,
        severity=severity,
        commander=commander,
        actor=app.actor,
        slug=slug,
        type=incident_type,
        labels=labels or None,
        fields=field_values(flow.policy.custom_fields, fields) or None,
        references=references or None,
        idempotency_key=idempotency_key,
    )
    if quiet and not app.as_json:
        click.echo(incident.id)
        return
    app.done(incident, "declared")
    if not app.as_json:
        click.echo(f"next: {usage('start_triage', incident.id)}")


@click.command("list", short_help="List incidents, newest first.")
@click.option("--open", "open_only", is_flag=True, help="Only incidents not yet closed.")
@click.option("--state", "states", type=STATE, multiple=True, help="In this state (repeatable).")
@click.option(
    "--severity",
    "severities",
    metavar=SEVERITY_METAVAR,
    callback=severity,
    multiple=True,
    help="Of this severity (repeatable).",
)
@click.option("--commander", metavar="NAME", help="Commanded by NAME.")
@click.option("--text", metavar="TEXT", help="Title contains TEXT.")
@click.option("--type", "types", metavar="TYPE", multiple=True, help="Of this type (repeatable).")
@click.option("--label", "labels", metavar="KEY=VALUE", multiple=True, callback=pairs,
              help="With this label (repeatable: all must match).")  # fmt: skip
@click.option("--field", "fields", metavar="NAME=VALUE", multiple=True, callback=pairs,
              help="With this custom field value (repeatable: all must match).")  # fmt: skip
@click.option("--ref", "reference", metavar="KIND=VALUE", callback=pairs,
              help="Holding this external reference.")  # fmt: skip
@click.option(
    "--open-action-items", is_flag=True, help="Only incidents with an action item still open."
)
@click.option("--since", metavar="TIME", callback=moment, help="Declared at or after this time.")
@click.option("--until", metavar="TIME", callback=moment, help="Declared before this time.")
@click.option("--oldest-first", is_flag=True, help="Oldest first (default: newest first).")
@click.option("--limit", type=count(), help="At most this many.")
@pass_app
def list_incidents(
    app: App,
    open_only: bool,
    states: tuple[str, ...],
    severities: tuple[str, ...],
    commander: str | None,
    text: str | None,
    types: tuple[str, ...],
    labels: dict[str, str],
    fields: dict[str, str],
    reference: dict[str, str],
    open_action_items: bool,
    since: datetime | None,
    until: datetime | None,
    oldest_first: bool,
    limit: int | None,
) -> None:
    """List incidents, newest first."""
    if not (types or labels or fields or reference or open_action_items):
        # The filters of the incidents table alone: answered without opening the flow.
        from ._light import light_listing

        light = light_listing(
            app.store,
            app.config_path,
            open_only=open_only,
            states=states,
            severities=severities,
            commander=commander,
            text=text,
            since=since,
            until=until,
            newest_first=not oldest_first,
            limit=limit,
        )
        if light is not None:
            rows, display_timezone = light
            configure_zone(display_timezone)  # as loading the configuration does
            _print_listing(app, rows)
            return
    from ._labels import field_values

    reader = app.reader
    declared_fields = reader.policy.custom_fields
    if unknown := [name for name in fields if name not in declared_fields]:
        known = ", ".join(declared_fields) or "none"
        raise click.BadParameter(
            f"{unknown[0]!r} is not a custom field; the policy declares {known}",
            param_hint="--field",
        )
    incidents = reader.summaries(
        state=states or None,
        severity=severities or None,
        open_only=open_only,
        commander=commander,
        text=text,
        type=types or None,
        labels=labels or None,
        fields=field_values(declared_fields, fields) or None,
        reference=next(iter(reference.items()), None),
        open_action_items=open_action_items,
        declared_after=since,
        declared_before=until,
        newest_first=not oldest_first,
        limit=limit,
    )
    _print_listing(
        app,
        [
            (i.id, i.title, i.severity.value, i.state.value, i.commander, i.declared_at, i.version)
            for i in incidents
        ],
    )


def _print_listing(app: App, rows: Sequence[Sequence[Any]]) -> None:
    """The table (or JSON) of ``list``, from rows of :class:`~._light.Listing`'s fields."""
    app.emit(
        [summary_json(*row) for row in rows],
        lambda: table(
            ("ID", "SEV", "STATE", "COMMANDER", "DECLARED", "TITLE"),
            _listing_cells(rows),
            empty="no incidents match",
        ),
    )


def _listing_cells(rows: Sequence[Sequence[Any]]) -> list[tuple[str, ...]]:
    shown = moments()  # the display zone looked up once, not once per row
    return [(i, severity, state, by, shown(at), title)
            for i, title, severity, state, by, at, _ in rows]  # fmt: skip


@click.command(short_help="Show an incident and what its next step needs.")
@incident_argument
@click.option("--markdown", is_flag=True, help="Print the Markdown file as it is.")
@pass_app
def show(app: App, incident_id: str, markdown: bool) -> None:
    """Show an incident, formatted for the terminal, then what its next step needs."""
    from .._lifecycle import next_command
    from ..render.markdown import render_incident
    from ._clock import display_zone
    from ._terminal import for_terminal, in_zone, width, wrapped

    flow = app.reader
    incident = flow.get(incident_id)
    command = next_command(incident.state, postmortem_required=incident.postmortem_required)
    verdict = None if command is None else flow.can(incident.id, command, actor=app.actor)

    def text() -> str:
        # The Markdown is the file as committed, in UTC; the terminal shows the display zone.
        document = render_incident(incident, flow.history(incident.id))
        zone = None if markdown else display_zone()
        lines = [(document if markdown else for_terminal(document, zone=zone)).rstrip(), ""]
        if command is None or verdict is None:
            lines.append(f"The incident is {incident.state.value}: nothing follows.")
        elif verdict.allowed:
            lines.append(f"Next: {usage(command, incident.id)}")
        else:
            lines.append(f"Before {command}:")
            for reason in verdict.reasons:
                line = f"  - {in_zone(in_cli_terms(str(reason)), zone)}"
                lines.extend([line] if markdown else wrapped(line, width(), "    "))
        return "\n".join(lines)

    next_step = None
    if command is not None and verdict is not None:
        next_step = {
            "command": command,
            "allowed": verdict.allowed,
            "reasons": [reason_json(r) for r in verdict.reasons],
        }
    app.emit({"incident": incident_json(incident), "next": next_step}, text)


@click.command(short_help="Show an incident's history, event by event.")
@incident_argument
@pass_app
def timeline(app: App, incident_id: str) -> None:
    """Show every event of an incident's history, oldest first."""
    from ..serialization import event_to_dict
    from ._terminal import width, wrap_rows

    history = app.reader.history(incident_id)
    rows = [("SEQ", f"TIME ({zone()})", "ACTOR", "EVENT", "DETAILS")]
    rows += [(str(e.seq), when(e.at), e.actor, e.type, details(e)) for e in history]
    app.emit([event_to_dict(e) for e in history], lambda: "\n".join(wrap_rows(rows, width())))


@click.command(short_help="Past incidents and KB gotchas like this one.")
@incident_argument
@click.option(
    "--limit",
    type=count(1, 100),
    default=5,
    show_default=True,
    help="How many to show.",
)
@pass_app
def similar(app: App, incident_id: str, limit: int) -> None:
    """Past incidents and KB gotchas like this one (by symptom, title, root cause)."""
    found = app.reader.similar(incident_id, limit=limit)
    app.emit([plain(match) for match in found], lambda: similar_text(found))


COMMANDS: tuple[click.Command, ...] = (declare, list_incidents, show, timeline, similar)
