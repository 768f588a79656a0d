"""What the human-facing notifiers (Slack, email) say about an event, as plain text.

Callers escape for their medium (Slack mrkdwn, HTML); nothing here is escaped.
"""

from __future__ import annotations

import re
from datetime import datetime

import attrs

from .. import _events as ev
from .._model import FieldValue, Incident, Severity
from ._base import Notification

__all__ = [
    "details",
    "headline",
    "incident_link",
    "one_line",
    "sentence",
    "summary",
    "update_text",
    "utc_text",
]

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
    said = sentence(event)
    if said is not None:
        return said
    # An event type this module does not know yet (a newer writer): its fields, briefly.
    d = event.data
    fields = ", ".join(
        f"{field.name} {one_line(getattr(d, field.name), 80)}" for field in attrs.fields(type(d))
    )
    actor = one_line(event.actor, 80)
    return f"{actor}: {event.type.replace('_', ' ')}" + (f" ({fields})" if fields else "")


def sentence(event: ev.Event) -> str | None:
    """The sentence for ``event``, or None for an event type it has none for."""
    return (
        _lifecycle_sentence(event)
        or _record_sentence(event)
        or _coordination_sentence(event)
        or _relation_sentence(event)
    )


def _relation_sentence(event: ev.Event) -> str | None:
    """Links between incidents, and merges."""
    actor = one_line(event.actor, 80)
    d = event.data
    match d:
        case ev.Linked():
            kind = one_line(d.kind, 40).replace("_", " ")
            return f"{actor} linked the incident: {kind} {one_line(d.other, 80)}"
        case ev.Unlinked():
            kind = one_line(d.kind, 40).replace("_", " ")
            return f"{actor} removed the link: {kind} {one_line(d.other, 80)}"
        case ev.Merged():
            return f"{actor} merged the incident into {one_line(d.into, 80)}{_because(d.reason)}"
        case ev.Absorbed():
            moved = f"{len(d.evidence)} evidence item(s), {len(d.references)} reference(s)"
            return f"{actor} merged {one_line(d.source, 80)} into this incident ({moved})"
        case ev.Restricted():
            return f"{actor} restricted the incident to {len(d.to)} actor(s) and group(s)"
        case ev.Unrestricted():
            return f"{actor} lifted the incident's restriction"
    return None


def _lifecycle_sentence(event: ev.Event) -> str | None:
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
        case ev.DeadlineBreached():
            return (
                f"the {one_line(d.kind, 40)} deadline for {one_line(d.subject, 80)} passed "
                f"unmet (due {utc_text(d.due_at)})"
            )
    return None


def _record_sentence(event: ev.Event) -> str | None:
    """Corrections, follow-ups, type, labels, fields and references."""
    actor = one_line(event.actor, 80)
    d = event.data
    match d:
        case ev.Amended():
            value = one_line("; ".join(d.value))
            return f"{actor} amended {one_line(d.item, 80)} to {value}{_because(d.reason)}"
        case ev.Retracted():
            return f"{actor} retracted {one_line(d.item, 80)}{_because(d.reason)}"
        case ev.ActionItemReassigned():
            return (
                f"{actor} reassigned action item {d.number} to {one_line(d.owner, 80)}"
                + _because(d.reason)
            )
        case ev.ActionItemRedated():
            return f"{actor} moved action item {d.number} to {d.due.isoformat()}" + _because(
                d.reason
            )
        case ev.ActionItemDeclined():
            return f"{actor} declined action item {d.number}{_because(d.reason)}"
        case ev.ActionItemLinked():
            return f"{actor} linked action item {d.number} to {one_line(d.ref, 120)}"
        case ev.TypeChanged():
            previous = one_line(d.previous, 40) if d.previous else "?"
            return f"{actor} changed the type from {previous} to {one_line(d.type, 40)}" + _because(
                d.reason
            )
        case ev.LabelsSet():
            pairs = [f"{key}={value}" for key, value in sorted(d.labels.items())]
            return f"{actor} {_set_and_removed('labels', pairs, d.removed)}"
        case ev.FieldsSet():
            pairs = [f"{key}={_field(value)}" for key, value in sorted(d.values.items())]
            return f"{actor} {_set_and_removed('fields', pairs, d.removed)}"
        case ev.ReferenceAdded():
            return f"{actor} added the reference {one_line(d.kind, 40)}: {one_line(d.value, 120)}"
        case ev.ReferenceRemoved():
            return f"{actor} removed the reference {one_line(d.kind, 40)}: {one_line(d.value, 120)}"
    return None


def _coordination_sentence(event: ev.Event) -> str | None:
    """Roles, handoffs and status updates."""
    actor = one_line(event.actor, 80)
    d = event.data
    match d:
        case ev.RoleAssigned():
            role, person = one_line(d.role, 40), one_line(d.person, 80)
            if d.previous is None:
                said = f"{actor} assigned {role} to {person}"
            else:
                said = f"{actor} handed over {role}: {one_line(d.previous, 80)} → {person}"
            return said + (f" ({one_line(d.note)})" if d.note else "")
        case ev.RoleReleased():
            held = f" (held by {one_line(d.previous, 80)})" if d.previous else ""
            return f"{actor} released {one_line(d.role, 40)}{held}{_because(d.note)}"
        case ev.UpdatePosted():
            said = f"{actor} posted an {one_line(d.audience, 20)} status update: {one_line(d.text)}"
            if d.next_update_at is not None:
                said += f" (next update due {utc_text(d.next_update_at)})"
            return said
    return None


def details(notification: Notification) -> list[tuple[str, str]]:
    """Facts about the event worth a line of their own, as (label, value) pairs.

    A status update's audience and when the next one is due; a handoff's role,
    from whom, to whom and its note. Empty for other events.
    """
    d = notification.event.data
    match d:
        case ev.UpdatePosted():
            due = utc_text(d.next_update_at) if d.next_update_at is not None else "none promised"
            return [("Audience", one_line(d.audience, 20)), ("Next update due", due)]
        case ev.RoleAssigned():
            facts = [
                ("Role", one_line(d.role, 40)),
                ("From", one_line(d.previous, 80) if d.previous else "(vacant)"),
                ("To", one_line(d.person, 80)),
            ]
            return facts + ([("Note", one_line(d.note))] if d.note else [])
        case ev.RoleReleased():
            facts = [("Role", one_line(d.role, 40)), ("From", one_line(d.previous, 80) or "?")]
            return facts + ([("Note", one_line(d.note))] if d.note else [])
    return []


def update_text(notification: Notification) -> str | None:
    """A status update's whole text, its lines kept (not cut), or None for other events."""
    d = notification.event.data
    if isinstance(d, ev.UpdatePosted):
        return "\n".join(line.rstrip() for line in d.text.strip().splitlines())
    return None


def incident_link(template: str | None, incident: Incident) -> str | None:
    """The incident's URL made from a checked ``template``, or None without one."""
    if template is None:
        return None
    return template.format(id=incident.id, slug=incident.slug)


def _severity(severity: Severity | None) -> str:
    return severity.value if severity is not None else "?"


def _because(reason: str) -> str:
    return f": {one_line(reason)}" if reason else ""


def _field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return one_line(value, 80)


def _set_and_removed(what: str, pairs: list[str], removed: tuple[str, ...]) -> str:
    parts = [f"set {what} {one_line(', '.join(pairs))}"] if pairs else []
    if removed:
        parts.append(f"removed {what} {one_line(', '.join(sorted(removed)))}")
    return " and ".join(parts) or f"set no {what}"
