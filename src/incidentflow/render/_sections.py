"""The incident file's parts beyond the template's prose.

Header lines, correction marks, superseded fixes, roles with their handoffs,
links to other incidents, status updates and the action items table.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from .._deadlines import reopened_at
from .._model import (
    ActionItem,
    Confirmation,
    Correction,
    Deploy,
    FieldValue,
    Fix,
    Incident,
    Records,
    State,
    SupersededFix,
)
from ._escape import cell, inline, table, utc

__all__ = [
    "STATUS",
    "action_rows",
    "action_table",
    "amended_line",
    "correction_marks",
    "header",
    "links",
    "marked",
    "roles",
    "updates",
]

#: The role every incident has; it stays in the header as the Incident Commander.
_COMMANDER = "commander"

#: What the Status line says in each state.
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


def header(inc: Incident) -> list[str]:
    """The ``**Label:** value`` lines under the title; optional ones only when known."""
    out = [
        f"**ID:** {inc.id}  ",
        f"**Date:** {utc(inc.declared_at)}  ",
        f"**Severity:** {inc.severity.label}  ",
        f"**Type:** {inline(inc.type)}  ",
        f"**Status:** {STATUS[inc.state]}  ",
        f"**Incident Commander:** {inline(inc.commander)}  ",
    ]
    if inc.labels:
        labels = ", ".join(inline(f"{k}={v}") for k, v in sorted(inc.labels.items()))
        out.append(f"**Labels:** {labels}  ")
    if inc.references:
        refs = ", ".join(f"{inline(r.kind)}: {inline(r.value)}" for r in inc.references)
        out.append(f"**References:** {refs}  ")
    if inc.custom_fields:
        fields = "; ".join(
            f"{inline(k)}: {inline(_field_text(v))}" for k, v in sorted(inc.custom_fields.items())
        )
        out.append(f"**Custom fields:** {fields}  ")
    if inc.acknowledged_at is not None:
        out.append(f"**Acknowledged:** {utc(inc.acknowledged_at)}  ")
    if inc.detection is not None:
        d = inc.detection
        parts = [f"by {d.method.replace('_', ' ')}"]
        if d.detected_at is not None:
            parts.append(f"at {utc(d.detected_at)}")
        if d.first_occurred_at is not None:
            parts.append(f"(first occurred {utc(d.first_occurred_at)})")
        out.append(f"**Detected:** {' '.join(parts)}  ")
    due = inc.next_update_due
    reopened = reopened_at(inc)
    # No update is due once resolved; one promised before a reopen lapsed (the clock restarted).
    if due is not None and inc.is_open and (reopened is None or due > reopened):
        out.append(f"**Next update due:** {utc(due)}  ")
    if inc.reopen_count:
        out.append(f"**Reopened:** {inc.reopen_count} time(s)  ")
    if inc.state is State.DISMISSED and inc.dismissal_reason is not None:
        dup = f" (duplicate of {inline(inc.duplicate_of)})" if inc.duplicate_of else ""
        out.append(f"**Dismissed:** {inline(inc.dismissal_reason)}{dup}  ")
    return out


def _field_text(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class _Correctable(Protocol):
    """A recorded item that can be amended and retracted."""

    @property
    def amended(self) -> Correction | None: ...
    @property
    def retracted(self) -> Correction | None: ...


def _by(correction: Correction) -> str:
    """``<time> by <actor>: <reason>``."""
    c = correction
    return f"{utc(c.at)} by {inline(c.actor)}: {inline(c.reason)}"


def _correction(word: str, correction: Correction) -> str:
    return f"({word} {_by(correction)})"


def correction_marks(amended: Correction | None, retracted: Correction | None) -> str:
    """The correction marks of an item, e.g. ``(amended ... by bob: typo)``; may be empty."""
    marks = [_correction("amended", amended)] if amended is not None else []
    if retracted is not None:
        marks.append(_correction("retracted", retracted))
    return " ".join(marks)


def marked(text: str, item: _Correctable) -> str:
    """Escaped ``text`` with its marks; struck through when the item was retracted."""
    if item.retracted is not None:
        text = f"~~{text}~~"
    marks = correction_marks(item.amended, item.retracted)
    return f"{text} {marks}" if marks else text


def amended_line(correction: Correction) -> str:
    """``**Amended:** <time> by <actor>: <reason>``, for a whole section."""
    return f"**Amended:** {_by(correction)}"


def action_rows(inc: Incident) -> list[tuple[datetime, str, str]]:
    """The Actions table's rows: containment, fixes (superseded ones struck), deploys, users."""
    rows = [
        (a.at, "Containment: " + marked(inline(a.description), a), inline(a.actor))
        for a in inc.containment
    ]
    for old in inc.superseded:
        rows += _fix_rows(old.fix, old.deploys, old.confirmation, old)
    rows += _fix_rows(inc.fix, inc.deploys, inc.confirmation, None)
    return rows


def _fix_rows(
    fix: Fix | None,
    deploys: Iterable[Deploy],
    confirmation: Confirmation | None,
    superseded: SupersededFix | None,
) -> list[tuple[datetime, str, str]]:
    def shown(text: str) -> str:
        if superseded is None:
            return text
        return (
            f"~~{text}~~ (superseded by the reopen at {utc(superseded.at)}: "
            f"{inline(superseded.reason)})"
        )

    rows = []
    if fix is not None:
        verified = "verified on staging" if fix.staging_verified else "not verified on staging"
        text = f"Fix: {inline(fix.description)} (test: {inline(fix.test)}; {verified})"
        marks = correction_marks(fix.amended, None)
        rows.append((fix.at, shown(text) + (f" {marks}" if marks else ""), inline(fix.actor)))
    for deploy in deploys:
        ref = f" {inline(deploy.ref)}" if deploy.ref else ""
        rows.append((deploy.deployed_at, shown(f"Deployed{ref}"), inline(deploy.actor)))
    if confirmation is not None:
        c = confirmation
        said = "confirmed it works" if c.positive else "reported it still fails"
        comment = f": {inline(c.comment)}" if c.comment else ""
        rows.append((c.at, shown(f"User {inline(c.user)} {said}{comment}"), inline(c.actor)))
    return rows


def roles(inc: Incident) -> list[str]:
    """The Roles section: who holds each role, then every handoff; none for a lone commander."""
    if set(inc.roles) <= {_COMMANDER} and not inc.handoffs:
        return []
    held = sorted(inc.roles.items(), key=lambda r: (r[0] != _COMMANDER, r[0]))
    out = ["## Roles", ""]
    out += [f"- **{inline(role)}:** {inline(person)}" for role, person in held]
    if inc.handoffs:
        out += ["", "### Handoffs", ""]
        out += table(
            ["Time (UTC)", "Role", "From", "To", "By", "Note"],
            (
                [
                    utc(h.at),
                    cell(h.role),
                    cell(h.from_person) if h.from_person else "—",
                    cell(h.to_person) if h.to_person else "— (released)",
                    cell(h.actor),
                    cell(h.note),
                ]
                for h in inc.handoffs
            ),
        )
    return [*out, ""]


#: How the Links section reads each kind of link.
_LINK_WORDS = {
    "duplicate_of": "Duplicate of",
    "duplicated_by": "Duplicated by",
    "caused_by": "Caused by",
    "causes": "Causes",
    "related_to": "Related to",
    "parent_of": "Parent of",
    "child_of": "Child of",
}


def links(inc: Incident) -> list[str]:
    """The Links section: each link to another incident, its kind and since when."""
    if not inc.links:
        return []
    out = ["## Links", ""]
    out += table(
        ["Link", "Incident", "Since (UTC)", "By"],
        (
            [_LINK_WORDS.get(x.kind, cell(x.kind)), cell(x.other), utc(x.at), cell(x.actor)]
            for x in inc.links
        ),
    )
    return [*out, ""]


def updates(inc: Incident) -> list[str]:
    """The Updates section: every status update posted, oldest first."""
    if not inc.updates:
        return []
    out = ["## Updates", ""]
    out += table(
        ["Time (UTC)", "Audience", "Update", "By", "Next update due"],
        (
            [
                utc(u.at),
                cell(u.audience),
                cell(u.text),
                cell(u.actor),
                utc(u.next_update_at) if u.next_update_at is not None else "—",
            ]
            for u in inc.updates
        ),
    )
    return [*out, ""]


def action_table(items: Records[ActionItem]) -> list[str]:
    """The action items as a table: number, action, owner, due date, status and reference."""
    return table(
        ["#", "Action", "Owner", "Due Date", "Status", "Ref"],
        (
            [
                str(a.number),
                _action_text(a),
                cell(a.owner),
                a.due.isoformat(),
                _action_status(a),
                cell(a.ref),
            ]
            for a in items
        ),
    )


def _action_text(item: ActionItem) -> str:
    text = inline(item.description) or " "
    if item.retracted is not None or item.declined is not None:
        text = f"~~{text}~~"
    marks = correction_marks(item.amended, None)
    return f"{text} {marks}" if marks else text


def _action_status(item: ActionItem) -> str:
    if item.retracted is not None:
        return f"retracted {_by(item.retracted)}"
    if item.declined is not None:
        return f"declined {_by(item.declined)}"
    if item.done_at is not None:
        return f"done {item.done_at:%Y-%m-%d}"
    return "open"
