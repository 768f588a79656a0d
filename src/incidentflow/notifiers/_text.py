"""What the human-facing notifiers (Slack, email) say about an event, as plain text.

Callers escape for their medium (Slack mrkdwn, HTML); nothing here is escaped.
"""

from __future__ import annotations

import re
from datetime import datetime

import attrs

from .. import _events as ev
from .._model import Incident, Severity
from ._base import Notification

__all__ = ["headline", "incident_link", "one_line", "summary", "utc_text"]

_WHITESPACE = re.compile(r"\s+")


def one_line(text: object, limit: int = 200) -> str:
    """``text`` on one line (newlines and runs of spaces become one space), cut at ``limit``."""
    flat = _WHITESPACE.sub(" ", str(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def utc_text(moment: datetime) -> str:
    """``2026-11-27 14:00 UTC``."""
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def headline(notification: Notification) -> str:
    """``[P1] INC-2026-11-27-checkout-returns-500 resolved: Checkout returns 500``."""
    incident = notification.incident
    what = notification.event.type.replace("_", " ")
    return f"[{incident.severity.value}] {incident.id} {what}: {one_line(incident.title)}"


def summary(notification: Notification) -> str:
    """One sentence saying what happened, e.g. ``bob added evidence from journalctl``."""
    event = notification.event
    actor = one_line(event.actor, 80)
    d = event.data
    match d:
        case ev.Declared():
            return (
                f"{actor} declared the incident ({d.severity.label}) "
                f"with {one_line(d.commander, 80)} as commander"
            )
        case ev.TriageStarted():
            return f"{actor} acknowledged the incident and started triage"
        case ev.EvidenceAdded():
            return f"{actor} added evidence from {one_line(d.source, 80)}"
        case ev.TriageAnswered():
            return f"{actor} answered {one_line(d.question, 80)}: {one_line(d.answer)}"
        case ev.ContainmentRecorded():
            return f"{actor} took a containment action: {one_line(d.description)}"
        case ev.Contained():
            return f"{actor} declared the incident contained"
        case ev.RcaStarted():
            return f"{actor} started the root-cause analysis"
        case ev.WhyAdded():
            return f"{actor} added a why: {one_line(d.answer)}"
        case ev.RootCauseSet():
            return f"{actor} stated the root cause: {one_line(d.statement)}"
        case ev.FixRecorded():
            return f"{actor} recorded the fix: {one_line(d.description)}"
        case ev.DeployRecorded():
            return f"{actor} recorded the deploy of {one_line(d.ref, 80)}"
        case ev.MarkedFixed():
            return f"{actor} marked the incident fixed"
        case ev.UserConfirmed():
            verdict = "it works for them" if d.positive else "it still fails for them"
            return f"{one_line(d.user, 80)} confirmed {verdict}" + (
                f": {one_line(d.comment)}" if d.comment else ""
            )
        case ev.Resolved():
            return f"{actor} resolved the incident"
        case ev.Reopened():
            return f"{actor} reopened the incident ({d.to_state.value}): {one_line(d.reason)}"
        case ev.Dismissed():
            duplicate = (
                f" as a duplicate of {one_line(d.duplicate_of, 80)}" if d.duplicate_of else ""
            )
            return f"{actor} dismissed the incident{duplicate}: {one_line(d.reason)}"
        case ev.Reclassified():
            return (
                f"{actor} changed the severity from {_severity(d.previous)} to {d.severity.value}: "
                f"{one_line(d.reason)}"
            )
        case ev.CommanderAssigned():
            return f"{actor} handed command to {one_line(d.commander, 80)}"
        case ev.DetectionRecorded():
            return f"{actor} recorded how it was detected: {one_line(d.method, 80)}"
        case ev.NoteAdded():
            return f"{actor} added a note: {one_line(d.text)}"
        case ev.ActionItemAdded():
            return (
                f"{actor} added action item {d.number} for {one_line(d.owner, 80)}, "
                f"due {d.due.isoformat()}: {one_line(d.description)}"
            )
        case ev.ActionItemCompleted():
            return f"{actor} completed action item {d.number}"
        case ev.PostmortemDrafted():
            return f"{actor} updated the post-mortem draft"
        case ev.PostmortemCompleted():
            return f"{actor} completed the post-mortem"
        case ev.KbUpdated():
            return f"{actor} wrote the knowledge-base entry {one_line(d.slug, 80)}"
    # An event type this module does not know yet: its fields, briefly.
    fields = ", ".join(
        f"{field.name} {one_line(getattr(d, field.name), 80)}" for field in attrs.fields(type(d))
    )
    return f"{actor}: {event.type.replace('_', ' ')}" + (f" ({fields})" if fields else "")


def incident_link(template: str | None, incident: Incident) -> str | None:
    """The incident's URL made from a checked ``template``, or None without one."""
    if template is None:
        return None
    return template.format(id=incident.id, slug=incident.slug)


def _severity(severity: Severity | None) -> str:
    return severity.value if severity is not None else "?"
