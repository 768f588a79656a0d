"""The files people read: the incident file with its post-mortem, and the KB gotcha.

All user text passes through :func:`inline`, :func:`block` or :func:`cell`, so
no input can forge a heading, a list item, a table row or raw HTML.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from .. import _events as ev
from .._model import Incident, Severity, State
from .gantt import incident_gantt

__all__ = ["block", "cell", "inline", "render_gotcha", "render_incident", "timeline"]

_INLINE_SPECIALS = re.compile(r"([\\`*_\[\]|~])")
_BLOCK_START = re.compile(r"^(\s*)([#>+\-=*]|\d+[.)])")

STATUS = {
    State.DECLARED: "Declared",
    State.TRIAGING: "Investigating",
    State.CONTAINED: "Mitigated",
    State.RCA: "Root cause analysis",
    State.FIXED: "Fix deployed, monitoring",
    State.RESOLVED: "Resolved",
    State.POSTMORTEM: "Post-mortem complete",
    State.KB_UPDATED: "Closed",
    State.DISMISSED: "Dismissed",
}


def inline(text: str) -> str:
    """User text on one line, with Markdown and HTML specials neutralised.

    A leading block marker is escaped too, so the text is safe at the start of
    a list item or a table cell.
    """
    text = " ".join(text.split())
    text = _INLINE_SPECIALS.sub(r"\\\1", text)
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return _BLOCK_START.sub(lambda m: m.group(1) + _escape_marker(m.group(2)), text)


def cell(text: str) -> str:
    """User text for one table cell."""
    return inline(text) or " "


def block(text: str) -> str:
    """Multi-line user text as a paragraph; no line can start a heading, list or quote."""
    lines = []
    for raw in text.splitlines():
        line = _INLINE_SPECIALS.sub(r"\\\1", raw.strip()).replace("<", "&lt;").replace(">", "&gt;")
        line = _BLOCK_START.sub(lambda m: m.group(1) + _escape_marker(m.group(2)), line)
        lines.append(line)
    return "  \n".join(line for line in lines if line) or "_(empty)_"


def _escape_marker(marker: str) -> str:
    if marker[0].isdigit():
        return marker[:-1] + "\\" + marker[-1]
    return "\\" + marker


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _severity(severity: Severity | None) -> str:
    return severity.value if severity is not None else "?"


def _time(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _short(at: datetime, with_date: bool) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if with_date else f"{at:%H:%M}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def render_incident(incident: Incident, history: Sequence[ev.Event] = ()) -> str:
    """The incident file, and its post-mortem once one is drafted.

    ``history`` is needed only for the post-mortem's timeline.
    """
    inc = incident
    out = [
        f"# Incident: {inline(inc.title)}",
        "",
        f"**ID:** {inc.id}  ",
        f"**Date:** {_time(inc.declared_at)}  ",
        f"**Severity:** {inc.severity.label}  ",
        f"**Status:** {STATUS[inc.state]}  ",
        f"**Incident Commander:** {inline(inc.commander)}  ",
    ]
    if inc.acknowledged_at is not None:
        out.append(f"**Acknowledged:** {_time(inc.acknowledged_at)}  ")
    if inc.detection is not None:
        d = inc.detection
        parts = [f"by {d.method.replace('_', ' ')}"]
        if d.detected_at is not None:
            parts.append(f"at {_time(d.detected_at)}")
        if d.first_occurred_at is not None:
            parts.append(f"(first occurred {_time(d.first_occurred_at)})")
        out.append(f"**Detected:** {' '.join(parts)}  ")
    if inc.reopen_count:
        out.append(f"**Reopened:** {inc.reopen_count} time(s)  ")
    if inc.state is State.DISMISSED and inc.dismissal_reason is not None:
        dup = f" (duplicate of {inline(inc.duplicate_of)})" if inc.duplicate_of else ""
        out.append(f"**Dismissed:** {inline(inc.dismissal_reason)}{dup}  ")

    out += ["", "## Evidence", ""]
    if inc.triage_answers:
        out += ["### Triage", ""]
        out += [
            f"- **{inline(a.question.replace('_', ' ').capitalize())}:** {inline(a.answer)}"
            for a in inc.triage_answers
        ]
        out.append("")
    if not inc.evidence and not inc.triage_answers:
        out += ["_No evidence yet._", ""]
    for item in inc.evidence:
        out += [f"### {_time(item.at)}: {inline(item.source)} ({inline(item.actor)})", ""]
        out += [_fence(item.content), ""]

    out += ["## Actions", ""]
    actions = [
        (a.at, f"Containment: {inline(a.description)}", inline(a.actor)) for a in inc.containment
    ]
    if inc.fix is not None:
        verified = "verified on staging" if inc.fix.staging_verified else "not verified on staging"
        actions.append(
            (
                inc.fix.at,
                f"Fix: {inline(inc.fix.description)} (test: {inline(inc.fix.test)}; {verified})",
                inline(inc.fix.actor),
            )
        )
    for deploy in inc.deploys:
        ref = f" {inline(deploy.ref)}" if deploy.ref else ""
        actions.append((deploy.deployed_at, f"Deployed{ref}", inline(deploy.actor)))
    if inc.confirmation is not None:
        c = inc.confirmation
        said = "confirmed it works" if c.positive else "reported it still fails"
        comment = f": {inline(c.comment)}" if c.comment else ""
        actions.append((c.at, f"User {inline(c.user)} {said}{comment}", inline(c.actor)))
    if actions:
        out += _table(
            ["Time (UTC)", "Action", "By"],
            ([_time(at), text, who] for at, text, who in sorted(actions, key=lambda a: a[0])),
        )
    else:
        out.append("_No actions yet._")
    out.append("")

    out += ["## Root Cause Analysis", ""]
    if inc.whys:
        out += [f"{n}. Why? {inline(w.answer)}" for n, w in enumerate(inc.whys, start=1)]
        out.append("")
    if inc.root_cause is not None:
        out += [
            f"**Root cause:** {inline(inc.root_cause.statement)}  ",
            f"**Process gap:** {inline(inc.root_cause.process_gap)}",
            "",
        ]
    if not inc.whys and inc.root_cause is None:
        out += ["_Not started._", ""]

    if inc.postmortem is None and inc.action_items:
        out += ["## Action Items", "", *_action_table(inc), ""]
    if inc.notes:
        out += ["## Notes", ""]
        out += [f"- {_time(n.at)} ({inline(n.actor)}): {inline(n.text)}" for n in inc.notes]
        out.append("")
    if inc.postmortem is not None:
        out += ["---", "", *_postmortem(inc, history)]
    return "\n".join(out).rstrip() + "\n"


def _action_table(inc: Incident) -> list[str]:
    return _table(
        ["#", "Action", "Owner", "Due Date", "Status"],
        (
            [
                str(a.number),
                cell(a.description),
                cell(a.owner),
                a.due.isoformat(),
                f"done {a.done_at:%Y-%m-%d}" if a.done_at is not None else "open",
            ]
            for a in inc.action_items
        ),
    )


def _postmortem(inc: Incident, history: Sequence[ev.Event]) -> list[str]:
    pm = inc.postmortem
    assert pm is not None
    status = "" if pm.completed else " (draft)"
    out = [f"# Post-Mortem: {inline(inc.title)}{status}", "", "## Summary", ""]
    out += [block(pm.summary) if pm.summary else "_To be written._", ""]
    out += ["## Timeline", ""]
    rows = timeline(history)
    with_date = len({at.date() for at, _ in rows}) > 1
    out += _table(["Time (UTC)", "Event"], ([_short(at, with_date), text] for at, text in rows))
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
    out += _action_table(inc) if inc.action_items else ["_None yet._"]
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
    rows.sort(key=lambda row: row[0])
    return rows


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
            f"**Written:** {_time(entry.at)} by {inline(entry.actor)}",
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
