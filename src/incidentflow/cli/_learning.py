"""Learning from the incident: ``postmortem draft|complete``, ``action ...``, ``kb``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

import click

from ._app import App, pass_app
from ._params import INT_MAX, Group, count, day, incident_argument

__all__ = ["COMMANDS"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _postmortem_options(function: _F) -> _F:
    for option in reversed(
        (
            click.option("--summary", help="What happened, in a paragraph."),
            click.option(
                "--root-cause", help="The root cause (default: the incident's, if none yet)."
            ),
            click.option("--went-well", multiple=True, help="What went well (repeatable)."),
            click.option("--went-poorly", multiple=True, help="What went poorly (repeatable)."),
        )
    ):
        function = option(function)
    return function


def _postmortem_root_cause(app: App, incident_id: str, given: str | None) -> str | None:
    """``given``, else the incident's root cause when the post-mortem has none yet."""
    if given is not None:
        return given
    incident = app.flow.get(incident_id)
    if incident.root_cause is None:
        return None
    if incident.postmortem is not None and incident.postmortem.root_cause:
        return None
    return incident.root_cause.statement


@click.group(cls=Group, short_help="Draft and complete the post-mortem.")
def postmortem() -> None:
    """Write the post-mortem, field by field, then complete it."""


def _postmortem_command(name: str, method: str, done: str, doc: str) -> None:
    """Register ``postmortem NAME``, which calls ``flow.METHOD`` with the fields given."""

    def command(
        app: App,
        incident_id: str,
        summary: str | None,
        root_cause: str | None,
        went_well: tuple[str, ...],
        went_poorly: tuple[str, ...],
    ) -> None:
        if method == "draft_postmortem" and not (summary or root_cause or went_well or went_poorly):
            raise click.UsageError(
                "give at least one of --summary, --root-cause, --went-well, --went-poorly"
            )
        incident = getattr(app.flow, method)(
            incident_id,
            actor=app.actor,
            summary=summary,
            root_cause=_postmortem_root_cause(app, incident_id, root_cause),
            went_well=went_well or None,
            went_poorly=went_poorly or None,
        )
        app.done(incident, done)
        # The policy's blame check warns by default: a warning nobody sees is no check.
        for warning in incident.postmortem.blame_warnings if incident.postmortem else ():
            click.echo(f"incidentflow: warning: {warning}", err=True)

    command.__doc__ = doc
    postmortem.command(name)(incident_argument(_postmortem_options(pass_app(command))))


_postmortem_command(
    "draft",
    "draft_postmortem",
    "post-mortem drafted",
    "Fill in post-mortem fields; those not given keep their value.",
)
_postmortem_command(
    "complete",
    "complete_postmortem",
    "post-mortem completed",
    "Complete the post-mortem, filling in any fields given first.",
)


@click.group(cls=Group, short_help="Follow-up action items, in every state.")
def action() -> None:
    """Follow-up action items, each with an owner and a due date.

    They can be done, reassigned, re-dated, declined or linked in every state,
    after closure too.
    """


@action.command("add")
@incident_argument
@click.argument("description")
@click.option("--owner", required=True, help="Who will do it.")
@click.option("--due", metavar="DATE", callback=day, required=True, help="By when (YYYY-MM-DD).")
@click.option("--ref", metavar="REF", help="The issue that tracks it (a URL or a key).")
@pass_app
def action_add(
    app: App, incident_id: str, description: str, owner: str, due: date, ref: str | None
) -> None:
    """Add an action item."""
    incident = app.flow.add_action_item(incident_id, description, owner=owner, due=due,
                                        ref=ref, actor=app.actor)  # fmt: skip
    app.done(incident, f"action item #{len(incident.action_items)} added")


@action.command("done")
@incident_argument
@click.argument("number", type=count(1, INT_MAX))
@pass_app
def action_done(app: App, incident_id: str, number: int) -> None:
    """Mark action item NUMBER done."""
    incident = app.flow.complete_action_item(incident_id, number, actor=app.actor)
    app.done(incident, f"action item #{number} done")


@action.command("reassign")
@incident_argument
@click.argument("number", type=count(1, INT_MAX))
@click.argument("owner")
@click.option("--reason", help="Why it changes hands.")
@pass_app
def action_reassign(
    app: App, incident_id: str, number: int, owner: str, reason: str | None
) -> None:
    """Hand open action item NUMBER to OWNER."""
    incident = app.flow.reassign_action_item(incident_id, number, owner=owner, reason=reason,
                                             actor=app.actor)  # fmt: skip
    app.done(incident, f"action item #{number} now owned by {owner}")


@action.command("redate")
@incident_argument
@click.argument("number", type=count(1, INT_MAX))
@click.argument("due", metavar="DUE", callback=day)
@click.option("--reason", help="Why the date moves.")
@pass_app
def action_redate(app: App, incident_id: str, number: int, due: date, reason: str | None) -> None:
    """Give open action item NUMBER the due date DUE (YYYY-MM-DD)."""
    incident = app.flow.redate_action_item(incident_id, number, due=due, reason=reason,
                                           actor=app.actor)  # fmt: skip
    app.done(incident, f"action item #{number} now due {due.isoformat()}")


@action.command("decline")
@incident_argument
@click.argument("number", type=count(1, INT_MAX))
@click.option("--reason", required=True, help="Why it will not be done.")
@pass_app
def action_decline(app: App, incident_id: str, number: int, reason: str) -> None:
    """Decline open action item NUMBER: it will not be done."""
    incident = app.flow.decline_action_item(incident_id, number, reason=reason, actor=app.actor)
    app.done(incident, f"action item #{number} declined")


@action.command("link")
@incident_argument
@click.argument("number", type=count(1, INT_MAX))
@click.argument("ref", metavar="REF")
@pass_app
def action_link(app: App, incident_id: str, number: int, ref: str) -> None:
    """Link action item NUMBER to the issue that tracks it (a URL or a key)."""
    incident = app.flow.link_action_item(incident_id, number, ref, actor=app.actor)
    app.done(incident, f"action item #{number} linked to {ref}")


@click.command(short_help="Write the KB gotcha and close the incident.")
@incident_argument
@click.option("--symptom", required=True, help="What responders will see next time.")
@click.option("--early-signs", required=True, help="How to spot it early.")
@click.option("--root-cause", help="Default: the incident's root cause.")
@click.option("--fix", "fix_text", help="Default: the incident's fix.")
@pass_app
def kb(
    app: App,
    incident_id: str,
    symptom: str,
    early_signs: str,
    root_cause: str | None,
    fix_text: str | None,
) -> None:
    """Write the knowledge-base gotcha and close the incident."""
    incident = app.flow.update_kb(
        incident_id, symptom=symptom, early_signs=early_signs, root_cause=root_cause,
        fix=fix_text, actor=app.actor,
    )  # fmt: skip
    app.done(incident, "knowledge base updated; incident closed")


COMMANDS: tuple[click.Command, ...] = (postmortem, action, kb)
