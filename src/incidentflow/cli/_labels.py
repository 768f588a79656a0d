"""What platforms route on: ``type``, ``label``, ``field``, ``ref add|remove`` and ``find``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from ._app import EXIT_OK, EXIT_REJECTED, App, pass_app
from ._output import incident_json
from ._params import INT_MAX, Group, incident_argument, pairs

if TYPE_CHECKING:
    from .._model import FieldValue

__all__ = ["COMMANDS", "field_values"]

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def field_values(declared: Mapping[str, str], given: Mapping[str, str]) -> dict[str, FieldValue]:
    """Custom fields typed on the command line, converted for the types the policy declares.

    ``declared`` is the policy's ``custom_fields`` (name -> ``text``, ``int``,
    ``float``, ``bool`` or ``date``). A name the policy does not declare, a date
    and a text stay text: the library checks them and names what it accepts.
    """
    values: dict[str, FieldValue] = {}
    for name, text in given.items():
        kind = declared.get(name)
        values[name] = _converted(name, kind, text) if kind else text
    return values


def _converted(name: str, kind: str, text: str) -> FieldValue:
    word = text.strip()
    if kind == "int":
        # Over 4,300 digits int() itself refuses; far fewer already overflow a store.
        if len(word) <= 20 and word.lstrip("+-").isdigit() and abs(int(word)) <= INT_MAX:
            return int(word)
        raise _bad(name, text, "a whole number, e.g. 42")
    if kind == "float":
        try:
            number = float(word)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
        raise _bad(name, text, "a finite number, e.g. 2.5")
    if kind == "bool":
        if word.lower() in _TRUE:
            return True
        if word.lower() in _FALSE:
            return False
        raise _bad(name, text, "true or false (yes/no, on/off, 1/0)")
    return text  # text and date: the library checks them


def _bad(name: str, text: str, expected: str) -> click.BadParameter:
    return click.BadParameter(
        f"{name}={text!r}: the policy declares {name} as {expected}", param_hint="field"
    )


@click.command("type", short_help="Change the incident type, with a reason.")
@incident_argument
@click.argument("incident_type", metavar="TYPE")
@click.option("--reason", required=True, help="Why the type changes.")
@pass_app
def change_type(app: App, incident_id: str, incident_type: str, reason: str) -> None:
    """Change the incident TYPE (one of the policy's incident_types)."""
    incident = app.flow.change_type(incident_id, incident_type, reason=reason, actor=app.actor)
    app.done(incident, f"type is now {incident.type}")


@click.command(short_help="Set labels (KEY=VALUE) or remove them.")
@incident_argument
@click.argument("labels", metavar="KEY=VALUE...", nargs=-1, callback=pairs)
@click.option("--remove", metavar="KEY", multiple=True, help="Remove this label (repeatable).")
@pass_app
def label(app: App, incident_id: str, labels: dict[str, str], remove: tuple[str, ...]) -> None:
    """Set labels such as service=checkout, team=payments; --remove KEY drops one."""
    if not labels and not remove:
        raise click.UsageError("give a label as KEY=VALUE (e.g. service=checkout), or --remove KEY")
    incident = app.flow.set_labels(incident_id, labels, remove=remove, actor=app.actor)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(incident.labels.items())) or "none"
    app.done(incident, f"labels: {shown}")


@click.command(short_help="Set custom fields (NAME=VALUE) or remove them.")
@incident_argument
@click.argument("fields", metavar="NAME=VALUE...", nargs=-1, callback=pairs)
@click.option("--remove", metavar="NAME", multiple=True, help="Remove this field (repeatable).")
@pass_app
def field(app: App, incident_id: str, fields: dict[str, str], remove: tuple[str, ...]) -> None:
    """Set custom fields the policy declares; values are read as the field's type."""
    if not fields and not remove:
        raise click.UsageError("give a field as NAME=VALUE (e.g. customers=120), or --remove NAME")
    flow = app.flow
    values = field_values(flow.policy.custom_fields, fields)
    incident = flow.set_fields(incident_id, values, remove=remove, actor=app.actor)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(incident.custom_fields.items())) or "none"
    app.done(incident, f"fields: {shown}")


@click.group(cls=Group, short_help="Attach or detach external references.")
def ref() -> None:
    """External references: an alert fingerprint, a ticket, a chat channel."""


@ref.command("add")
@incident_argument
@click.argument("kind")
@click.argument("value")
@pass_app
def ref_add(app: App, incident_id: str, kind: str, value: str) -> None:
    """Attach the reference KIND VALUE (no other open incident may hold it)."""
    incident = app.flow.add_reference(incident_id, kind, value, actor=app.actor)
    app.done(incident, f"reference {kind}={value} added")


@ref.command("remove")
@incident_argument
@click.argument("kind")
@click.argument("value")
@pass_app
def ref_remove(app: App, incident_id: str, kind: str, value: str) -> None:
    """Detach the reference KIND VALUE."""
    incident = app.flow.remove_reference(incident_id, kind, value, actor=app.actor)
    app.done(incident, f"reference {kind}={value} removed")


@click.command(short_help="Find the incident holding an external reference.")
@click.argument("kind")
@click.argument("value")
@pass_app
def find(app: App, kind: str, value: str) -> int:
    """Find the incident holding the reference KIND VALUE: the open one, else the newest.

    Exits 1 when no incident holds it.
    """
    incident = app.reader.find(kind, value)
    if incident is None:
        message = f"no incident holds the reference {kind}={value}"
        if app.as_json:
            app.emit({"error": "NotFound", "message": message, "reasons": []}, "")
        click.echo(f"incidentflow: {message}; 'incidentflow list' shows them all", err=True)
        return EXIT_REJECTED
    app.emit(
        incident_json(incident),
        f"{incident.id}  {incident.severity.value}  {incident.state.value}  {incident.title}",
    )
    return EXIT_OK


COMMANDS: tuple[click.Command, ...] = (change_type, label, field, ref, find)
