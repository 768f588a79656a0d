"""The incident snapshot and everything recorded on it: frozen attrs records."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, TypeVar

import attrs

from ._sequences import FrozenMap, Records

T = TypeVar("T")

__all__ = [
    "ActionItem",
    "Confirmation",
    "ContainmentAction",
    "Correction",
    "Deploy",
    "Detection",
    "Evidence",
    "FieldValue",
    "Fix",
    "Handoff",
    "Incident",
    "KbEntry",
    "Link",
    "Note",
    "Postmortem",
    "Records",
    "Reference",
    "RootCause",
    "Severity",
    "State",
    "StatusUpdate",
    "SupersededFix",
    "TriageAnswer",
    "Why",
    "frozen_map",
]


class Severity(enum.Enum):
    """How bad an incident is, from P1 (critical) to P4 (low)."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    # Members are singletons compared by identity: hash them in C, not by name in Python.
    __hash__ = object.__hash__

    @property
    def label(self) -> str:
        """The severity's name in the process, e.g. ``"P1 — Critical"``."""
        return f"{self.value} — {_SEVERITY_NAMES[self]}"


_SEVERITY_NAMES = {
    Severity.P1: "Critical",
    Severity.P2: "High",
    Severity.P3: "Medium",
    Severity.P4: "Low",
}


class State(enum.Enum):
    """Where an incident stands in the lifecycle."""

    DECLARED = "declared"
    TRIAGING = "triaging"
    CONTAINED = "contained"
    RCA = "rca"
    FIXED = "fixed"
    RESOLVED = "resolved"
    POSTMORTEM = "postmortem"
    KB_UPDATED = "kb_updated"
    DISMISSED = "dismissed"

    # Members are singletons compared by identity: hash them in C, not by name in Python.
    __hash__ = object.__hash__

    @property
    def is_terminal(self) -> bool:
        """True for kb_updated and dismissed: closed, no state changes any more."""
        return self._value_ in _TERMINAL_VALUES

    @property
    def is_open(self) -> bool:
        """True while the incident still needs work before it is resolved."""
        # By value: an Enum member's hash runs in Python, a str's in C (asked on every commit).
        return self._value_ in _OPEN_VALUES


_OPEN_VALUES = frozenset({"declared", "triaging", "contained", "rca", "fixed"})
_TERMINAL_VALUES = frozenset({"kb_updated", "dismissed"})


#: A custom field's value: JSON-ready (a date is kept as its ISO text).
FieldValue = str | int | float | bool


@attrs.frozen
class Correction:
    """An amendment or a retraction of something recorded: when, by whom and why.

    The history keeps what was first recorded; the snapshot shows the current
    value and carries the latest correction, so files can mark it.
    """

    at: datetime
    actor: str
    reason: str


@attrs.frozen
class Evidence:
    """Something observed during triage: a log excerpt, a graph, a command's output.

    ``amended`` and ``retracted`` are the latest corrections of it, if any.
    """

    source: str
    content: str
    at: datetime
    actor: str
    amended: Correction | None = attrs.field(default=None, kw_only=True)
    retracted: Correction | None = attrs.field(default=None, kw_only=True)

    @property
    def live(self) -> bool:
        """True unless it was retracted: guards count only live items."""
        return self.retracted is None


@attrs.frozen
class TriageAnswer:
    """The answer to one question of the triage checklist."""

    question: str
    answer: str
    at: datetime
    actor: str
    amended: Correction | None = attrs.field(default=None, kw_only=True)
    retracted: Correction | None = attrs.field(default=None, kw_only=True)

    @property
    def live(self) -> bool:
        """True unless it was retracted."""
        return self.retracted is None


@attrs.frozen
class ContainmentAction:
    """A step taken to stop the bleeding, with the time it was taken."""

    description: str
    at: datetime
    actor: str
    amended: Correction | None = attrs.field(default=None, kw_only=True)
    retracted: Correction | None = attrs.field(default=None, kw_only=True)

    @property
    def live(self) -> bool:
        """True unless it was retracted."""
        return self.retracted is None


@attrs.frozen
class Why:
    """One link of the 5-Whys chain."""

    answer: str
    at: datetime
    actor: str
    amended: Correction | None = attrs.field(default=None, kw_only=True)
    retracted: Correction | None = attrs.field(default=None, kw_only=True)

    @property
    def live(self) -> bool:
        """True unless it was retracted: a retracted why frees its place in the five."""
        return self.retracted is None


@attrs.frozen
class RootCause:
    """The root cause the 5-Whys chain reached, stated as the process gap."""

    statement: str
    process_gap: str
    at: datetime
    actor: str
    amended: Correction | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class Fix:
    """The change that fixes the root cause."""

    description: str
    test: str
    staging_verified: bool
    at: datetime
    actor: str
    amended: Correction | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class Deploy:
    """A deploy of the fix to production."""

    deployed_at: datetime
    ref: str
    actor: str


@attrs.frozen
class Confirmation:
    """A user's answer to "is it working for you now?"."""

    user: str
    positive: bool
    comment: str
    at: datetime
    actor: str


@attrs.frozen
class SupersededFix:
    """A fix, its deploys and its confirmation that a reopen set aside.

    Kept in the snapshot (and the incident file) marked superseded: a reopen
    erases nothing, but the next ``resolve`` needs a new deploy and a new
    confirmation.
    """

    fix: Fix | None
    deploys: tuple[Deploy, ...]
    confirmation: Confirmation | None
    at: datetime
    reason: str


@attrs.frozen
class Detection:
    """When the issue first occurred and how it came to light."""

    first_occurred_at: datetime | None
    detected_at: datetime | None
    method: str
    actor: str


@attrs.frozen
class Note:
    """A free-form note, allowed in every state."""

    text: str
    at: datetime
    actor: str


@attrs.frozen
class ActionItem:
    """A follow-up with an owner and a due date, numbered from 1.

    It lives on after the incident closes: it can be completed, reassigned,
    re-dated or declined in every state.

    Attributes:
        ref: An external reference: the issue URL or key that tracks it.
        declined: Why it will not be done, if it was declined.
        retracted: Set when it was recorded in error.
        amended: The latest correction of its description.

    """

    number: int
    description: str
    owner: str
    due: date
    done_at: datetime | None = None
    ref: str = attrs.field(default="", kw_only=True)
    declined: Correction | None = attrs.field(default=None, kw_only=True)
    retracted: Correction | None = attrs.field(default=None, kw_only=True)
    amended: Correction | None = attrs.field(default=None, kw_only=True)

    @property
    def done(self) -> bool:
        """True once the item was completed."""
        return self.done_at is not None

    @property
    def live(self) -> bool:
        """True unless it was retracted: what counts toward the minimum of action items.

        A declined item still counts: declining is a decision recorded with its reason.
        """
        return self.retracted is None

    @property
    def open(self) -> bool:
        """True while it still waits to be done: not done, declined or retracted."""
        return self.done_at is None and self.declined is None and self.retracted is None

    @property
    def status(self) -> str:
        """``"open"``, ``"done"``, ``"declined"`` or ``"retracted"``."""
        if self.retracted is not None:
            return "retracted"
        if self.declined is not None:
            return "declined"
        return "done" if self.done_at is not None else "open"


@attrs.frozen
class Postmortem:
    """The post-mortem, drafted step by step and then completed.

    ``amended`` is the latest correction made after completion, if any.
    """

    summary: str = ""
    root_cause: str = ""
    went_well: tuple[str, ...] = ()
    went_poorly: tuple[str, ...] = ()
    completed_at: datetime | None = None
    blame_warnings: tuple[str, ...] = ()
    amended: Correction | None = attrs.field(default=None, kw_only=True)

    @property
    def completed(self) -> bool:
        """True once ``complete_postmortem`` succeeded."""
        return self.completed_at is not None


@attrs.frozen
class KbEntry:
    """The knowledge-base gotcha written for the root cause."""

    slug: str
    symptom: str
    root_cause: str
    fix: str
    early_signs: str
    at: datetime
    actor: str


@attrs.frozen(order=True)
class Reference:
    """An external reference: an alert fingerprint, a ticket, a chat channel.

    ``kind`` says what it is (``alert``, ``ticket``, ``channel``, ...); a
    reference is unique per kind among open incidents (``flow.find``).
    """

    kind: str
    value: str


@attrs.frozen
class Handoff:
    """A role assigned, handed over or released.

    Attributes:
        role: The role, e.g. ``"communications_lead"``.
        from_person: Who held it before (``None``: it was vacant).
        to_person: Who holds it now (``None``: it was released).
        at: When (aware UTC).
        actor: Who recorded it.
        note: What the handoff said (state of play, open questions).

    """

    role: str
    from_person: str | None
    to_person: str | None
    at: datetime
    actor: str
    note: str = ""


@attrs.frozen
class StatusUpdate:
    """A status update posted to stakeholders.

    Attributes:
        audience: ``"internal"`` or ``"external"``.
        text: The update.
        at: When it was posted.
        actor: Who posted it.
        next_update_at: When the next update is due (``None``: none promised).

    """

    audience: str
    text: str
    at: datetime
    actor: str
    next_update_at: datetime | None = None


@attrs.frozen
class Link:
    """A link from this incident to another one; the other incident holds the inverse.

    Attributes:
        kind: ``duplicate_of``, ``duplicated_by``, ``caused_by``, ``causes``,
            ``related_to``, ``parent_of`` or ``child_of``.
        other: The other incident's id.
        at: When it was linked (aware UTC).
        actor: Who linked it.

    """

    kind: str
    other: str
    at: datetime
    actor: str


def frozen_map(value: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    """A read-only copy of ``value``, so no caller can change a snapshot's mapping."""
    # Exact types first: isinstance() against a Mapping ABC walks it in Python.
    kind = type(value)
    if kind is FrozenMap:
        return value  # type: ignore[return-value]  # mypy does not narrow on type() is
    if kind is not dict and value is not None and isinstance(value, FrozenMap):
        return value
    return FrozenMap(value or {})


@attrs.frozen
class Incident:
    """The state of one incident: the fold of its event history.

    Snapshots are immutable; every command returns a new one.

    Attributes:
        id: ``INC-<YYYY-MM-DD>-<slug>``, from the declaration date (UTC).
        slug: ``[a-z0-9-]``, at most 48 characters; names the files.
        title: What is broken, in a line.
        severity: The current severity.
        state: Where the incident stands in the lifecycle.
        commander: The incident commander.
        declared_at: When it was declared (aware UTC).
        declared_by: Who declared it.
        version: The number of events in its history.
        updated_at: When the last event was recorded.
        postmortem_required: A completed post-mortem is needed before the KB entry.
        acknowledged_at: When triage started (the response-time clock stopped).
        contained_at: When it was declared contained.
        fixed_at: When it was marked fixed (cleared by a reopen).
        resolved_at: When it was resolved (cleared by a reopen).
        closed_at: When it reached kb_updated or was dismissed.
        detection: When it first occurred and how it was detected.
        evidence: Evidence items, oldest first.
        triage_answers: The latest answer to each triage question.
        containment: Containment actions, oldest first.
        whys: The 5-Whys chain.
        root_cause: The root cause and its process gap.
        fix: The current fix (cleared by a reopen).
        deploys: Deploys of the current fix (cleared by a reopen).
        confirmation: The latest user confirmation (cleared by a reopen).
        notes: Free-form notes.
        action_items: Follow-ups, numbered from 1.
        postmortem: The post-mortem, once drafted.
        kb_entry: The knowledge-base gotcha, once written.
        breaches: The deadlines recorded as breached (see ``flow.deadlines``).
        people: Everyone who took part: every actor, commander, confirming user
            and action-item owner, in order of appearance (for the blame check).
        reopen_count: How many times it was reopened.
        dismissal_reason: Why it was dismissed, if it was.
        duplicate_of: The incident it duplicates, if dismissed as a duplicate.
        type: The incident type (``availability``, ``security``, ...), which
            with the severity picks the process the policy sets.
        labels: ``key=value`` labels (``service=checkout``), for routing and filters.
        custom_fields: The custom fields the policy declares, by name.
        references: External references (alert fingerprints, tickets, channels).
        roles: Who holds each role, the commander included, by role name.
        handoffs: Every assignment, handover and release of a role, oldest first.
        updates: The status updates posted, oldest first.
        next_update_due: When the next status update is due, if one was promised
            or the policy sets a cadence.
        superseded: The fixes, deploys and confirmations that reopens set aside.
        restricted_to: The actors and groups (``group:sre``) who alone may see it;
            empty: everyone with the read permission.
        links: Its links to other incidents (duplicate of, caused by, related
            to, parent of, child of, and their inverses), oldest first.

    """

    id: str
    slug: str
    title: str
    severity: Severity
    state: State
    commander: str
    declared_at: datetime
    declared_by: str
    version: int
    updated_at: datetime
    postmortem_required: bool
    acknowledged_at: datetime | None = None
    contained_at: datetime | None = None
    fixed_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    detection: Detection | None = None
    evidence: Records[Evidence] = attrs.field(factory=Records)
    triage_answers: Records[TriageAnswer] = attrs.field(factory=Records)
    containment: Records[ContainmentAction] = attrs.field(factory=Records)
    whys: Records[Why] = attrs.field(factory=Records)
    root_cause: RootCause | None = None
    fix: Fix | None = None
    deploys: Records[Deploy] = attrs.field(factory=Records)
    confirmation: Confirmation | None = None
    notes: Records[Note] = attrs.field(factory=Records)
    action_items: Records[ActionItem] = attrs.field(factory=Records)
    postmortem: Postmortem | None = None
    kb_entry: KbEntry | None = None
    breaches: Records[str] = attrs.field(factory=Records)
    people: Records[str] = attrs.field(factory=Records)
    reopen_count: int = 0
    dismissal_reason: str | None = None
    duplicate_of: str | None = None
    type: str = "availability"
    labels: Mapping[str, str] = attrs.field(factory=frozen_map, converter=frozen_map, hash=False)
    custom_fields: Mapping[str, FieldValue] = attrs.field(
        factory=frozen_map, converter=frozen_map, hash=False
    )
    references: Records[Reference] = attrs.field(factory=Records)
    roles: Mapping[str, str] = attrs.field(factory=frozen_map, converter=frozen_map, hash=False)
    handoffs: Records[Handoff] = attrs.field(factory=Records)
    updates: Records[StatusUpdate] = attrs.field(factory=Records)
    next_update_due: datetime | None = None
    superseded: Records[SupersededFix] = attrs.field(factory=Records)
    links: Records[Link] = attrs.field(factory=Records, kw_only=True)
    restricted_to: tuple[str, ...] = attrs.field(default=(), kw_only=True)

    @property
    def triage(self) -> dict[str, str]:
        """The triage checklist as a question → latest live answer mapping."""
        return {a.question: a.answer for a in self.triage_answers if a.retracted is None}

    def reference(self, kind: str) -> str | None:
        """The first value of the external reference of ``kind``, if any."""
        return next((r.value for r in self.references if r.kind == kind), None)

    @property
    def last_deploy(self) -> Deploy | None:
        """The latest deploy of the fix by deploy time (one may be logged late), if any."""
        return max(self.deploys, key=lambda d: d.deployed_at, default=None)

    @property
    def is_open(self) -> bool:
        """True while the incident still needs work before it is resolved."""
        return self.state.is_open
