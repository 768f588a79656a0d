"""The files people read: the incident file with its post-mortem, and the KB gotcha.

All user text passes through :func:`inline`, :func:`block` or :func:`cell`, so
no input can forge a heading, a list item, a table row or raw HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .. import _events as ev
from .._model import Incident, Severity
from ._escape import block, cell, fence, inline, table, utc
from ._sections import (
    action_rows,
    action_table,
    amended_line,
    correction_marks,
    header,
    links,
    marked,
    roles,
    updates,
)
from .gantt import incident_gantt

__all__ = ["block", "cell", "inline", "render_gotcha", "render_incident", "timeline"]


def _severity(severity: Severity | None) -> str:
    return severity.value if severity is not None else "?"


def _short(at: datetime, with_date: bool) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if with_date else f"{at:%H:%M}"


def render_incident(incident: Incident, history: Sequence[ev.Event] = ()) -> str:
    """The incident file, and its post-mortem once one is drafted.

    ``history`` is needed only for the post-mortem's timeline. Corrections show
    in place: an amended item carries "(amended <time> by <actor>: <reason>)",
    a retracted one stays struck through with "(retracted ...)", and what a
    reopen set aside stays struck through, marked superseded.
    """
    inc = incident
    out = [f"# Incident: {inline(inc.title)}", "", *header(inc)]
    out += ["", "## Evidence", ""]
    if inc.triage_answers:
        out += ["### Triage", ""]
        out += [
            f"- **{inline(a.question.replace('_', ' ').capitalize())}:** "
            + marked(inline(a.answer), a)
            for a in inc.triage_answers
        ]
        out.append("")
    if not inc.evidence and not inc.triage_answers:
        out += ["_No evidence yet._", ""]
    for item in inc.evidence:
        out += [f"### {utc(item.at)}: {inline(item.source)} ({inline(item.actor)})", ""]
        marks = correction_marks(item.amended, item.retracted)
        if marks:
            out += [marks, ""]
        out += [fence(item.content), ""]

    out += ["## Actions", ""]
    actions = action_rows(inc)
    if actions:
        out += table(
            ["Time (UTC)", "Action", "By"],
            ([utc(at), text, who] for at, text, who in sorted(actions, key=lambda a: a[0])),
        )
    else:
        out.append("_No actions yet._")
    out.append("")

    out += ["## Root Cause Analysis", ""]
    if inc.whys:
        out += [f"{n}. Why? {marked(inline(w.answer), w)}" for n, w in enumerate(inc.whys, start=1)]
        out.append("")
    if inc.root_cause is not None:
        rc = inc.root_cause
        out += [f"**Root cause:** {inline(rc.statement)}  "]
        out += [f"**Process gap:** {inline(rc.process_gap)}" + ("  " if rc.amended else "")]
        if rc.amended is not None:
            out.append(amended_line(rc.amended))
        out.append("")
    if not inc.whys and inc.root_cause is None:
        out += ["_Not started._", ""]

    if inc.postmortem is None and inc.action_items:
        out += ["## Action Items", "", *action_table(inc.action_items), ""]
    out += roles(inc)
    out += links(inc)
    out += updates(inc)
    if inc.notes:
        out += ["## Notes", ""]
        out += [f"- {utc(n.at)} ({inline(n.actor)}): {inline(n.text)}" for n in inc.notes]
        out.append("")
    if inc.postmortem is not None:
        out += ["---", "", *_postmortem(inc, history)]
    return "\n".join(out).rstrip() + "\n"


def _postmortem(inc: Incident, history: Sequence[ev.Event]) -> list[str]:
    pm = inc.postmortem
    assert pm is not None
    status = "" if pm.completed else " (draft)"
    out = [f"# Post-Mortem: {inline(inc.title)}{status}", ""]
    if pm.amended is not None:
        out += [amended_line(pm.amended), ""]
    out += ["## Summary", ""]
    out += [block(pm.summary) if pm.summary else "_To be written._", ""]
    out += ["## Timeline", ""]
    rows = timeline(history)
    with_date = len({at.date() for at, _ in rows}) > 1
    out += table(["Time (UTC)", "Event"], ([_short(at, with_date), text] for at, text in rows))
    if history:
        # Task names are sanitised and never hold backticks, so the fence is safe.
        out += ["", "```mermaid", *incident_gantt(inc, history).splitlines(), "```"]
    out += ["", "## Root Cause", ""]
    out += [block(pm.root_cause) if pm.root_cause else "_To be written._", ""]
    for heading, items in (("What Went Well", pm.went_well), ("What Went Poorly", pm.went_poorly)):
        out += [f"## {heading}", ""]
        out += [f"- {inline(i)}" for i in items] or ["_To be written._"]
        out.append("")
    out += ["## Action Items", ""]
    out += action_table(inc.action_items) if inc.action_items else ["_None yet._"]
    if pm.blame_warnings:
        out += ["", "> **Blame check:** " + "; ".join(inline(w) for w in pm.blame_warnings)]
    return out


def timeline(history: Sequence[ev.Event]) -> list[tuple[datetime, str]]:
    """The milestones of an incident, oldest first, as (time, Markdown text) rows."""
    rows: list[tuple[datetime, str]] = []
    for e in history:
        d = e.data
        who = inline(e.actor)
        match d:
            case ev.Declared():
                rows.append((e.at, f"Incident declared ({d.severity.value}) by {who}"))
            case ev.DetectionRecorded():
                if d.first_occurred_at is not None:
                    rows.append((d.first_occurred_at, "Issue first occurred"))
                if d.detected_at is not None:
                    how = {"alert": "First alert", "user_report": "First user report"}
                    rows.append((d.detected_at, how.get(d.method, "Issue detected")))
            case ev.TriageStarted():
                rows.append((e.at, f"Triage started by {who}"))
            case ev.ContainmentRecorded():
                rows.append((d.taken_at, f"Mitigation applied: {inline(d.description)}"))
            case ev.Contained():
                rows.append((e.at, "Incident contained"))
            case ev.RootCauseSet():
                rows.append((e.at, f"Root cause identified: {inline(d.statement)}"))
            case ev.DeployRecorded():
                ref = f" ({inline(d.ref)})" if d.ref else ""
                rows.append((d.deployed_at, f"Fix deployed{ref}"))
            case ev.UserConfirmed():
                said = "confirmed the fix" if d.positive else "reported the problem persists"
                rows.append((e.at, f"User {inline(d.user)} {said}"))
            case ev.Resolved():
                rows.append((e.at, "Incident resolved"))
            case ev.Reopened():
                rows.append((e.at, f"Reopened to {d.to_state.value}: {inline(d.reason)}"))
            case ev.Reclassified():
                rows.append(
                    (
                        e.at,
                        f"Reclassified {_severity(d.previous)} → {d.severity.value}: "
                        + inline(d.reason),
                    )
                )
            case ev.Dismissed():
                rows.append((e.at, f"Dismissed: {inline(d.reason)}"))
            case ev.PostmortemCompleted():
                rows.append((e.at, "Post-mortem completed"))
            case ev.TypeChanged():
                previous = inline(d.previous) if d.previous else "?"
                rows.append(
                    (e.at, f"Type changed {previous} → {inline(d.type)}: {inline(d.reason)}")
                )
            case _:
                rows += _coordination_row(e)
    rows.sort(key=lambda row: row[0])
    return rows


def _coordination_row(e: ev.Event) -> list[tuple[datetime, str]]:
    """The timeline row of a role handoff or a status update, if ``e`` is one."""
    d = e.data
    match d:
        case ev.RoleAssigned():
            note = f": {inline(d.note)}" if d.note else ""
            if d.previous is None:
                return [(e.at, f"{inline(d.role)} assigned to {inline(d.person)}{note}")]
            handoff = f"{inline(d.previous)} → {inline(d.person)}"
            return [(e.at, f"{inline(d.role)} handed over: {handoff}{note}")]
        case ev.CommanderAssigned():
            return [(e.at, f"Command handed to {inline(d.commander)}")]
        case ev.RoleReleased():
            held = f" by {inline(d.previous)}" if d.previous else ""
            note = f": {inline(d.note)}" if d.note else ""
            return [(e.at, f"{inline(d.role)} released{held}{note}")]
        case ev.UpdatePosted():
            return [(e.at, f"Status update ({inline(d.audience)}): {inline(d.text)}")]
    return []


def render_gotcha(incident: Incident, incident_link: str | None = None) -> str:
    """The knowledge-base gotcha entry written by ``update_kb``."""
    entry = incident.kb_entry
    if entry is None:
        raise ValueError(f"{incident.id} has no knowledge-base entry yet")
    link = f"[{incident.id}]({incident_link})" if incident_link else incident.id
    return "\n".join(
        [
            f"# Gotcha: {inline(incident.title)}",
            "",
            f"**Incident:** {link}  ",
            f"**Severity:** {incident.severity.label}  ",
            f"**Written:** {utc(entry.at)} by {inline(entry.actor)}",
            "",
            "## Symptom",
            "",
            block(entry.symptom),
            "",
            "## Root Cause",
            "",
            block(entry.root_cause),
            "",
            "## Fix",
            "",
            block(entry.fix),
            "",
            "## How to Spot It Early",
            "",
            block(entry.early_signs),
            "",
        ]
    )
