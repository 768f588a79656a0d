"""Events: one attrs class per thing that can happen to an incident.

An incident's history is a gapless sequence of :class:`Event` envelopes, seq 1..n.
Each envelope carries the typed payload (``data``) of one event type below.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import ClassVar

import attrs

from ._builders import is_draft
from ._model import Evidence, FieldValue, Reference, Severity, State, frozen_map

__all__ = [
    "SCHEMA_VERSION",
    "Absorbed",
    "ActionItemAdded",
    "ActionItemCompleted",
    "ActionItemDeclined",
    "ActionItemLinked",
    "ActionItemReassigned",
    "ActionItemRedated",
    "Amended",
    "CommanderAssigned",
    "Contained",
    "ContainmentRecorded",
    "DeadlineBreached",
    "Declared",
    "DeployRecorded",
    "DetectionRecorded",
    "Dismissed",
    "Event",
    "EventData",
    "EvidenceAdded",
    "FieldsSet",
    "FixRecorded",
    "KbUpdated",
    "LabelsSet",
    "Linked",
    "MarkedFixed",
    "Merged",
    "NoteAdded",
    "PostmortemCompleted",
    "PostmortemDrafted",
    "RcaStarted",
    "Reclassified",
    "ReferenceAdded",
    "ReferenceRemoved",
    "Reopened",
    "Resolved",
    "Retracted",
    "RoleAssigned",
    "RoleReleased",
    "RootCauseSet",
    "TriageAnswered",
    "TriageStarted",
    "TypeChanged",
    "Unlinked",
    "UpdatePosted",
    "UserConfirmed",
    "WhyAdded",
    "event_types",
]

#: Version of the event schema written by this release.
SCHEMA_VERSION = 1


@attrs.frozen
class EventData:
    """Base of every event payload. ``TYPE`` is the name stored in histories."""

    TYPE: ClassVar[str] = ""


@attrs.frozen
class Declared(EventData):
    """The incident was declared."""

    TYPE: ClassVar[str] = "declared"
    title: str
    slug: str
    severity: Severity
    commander: str
    #: Filled in by ``decide`` from the policy.
    postmortem_required: bool = False
    #: The incident type; ``decide`` fills in the policy's default when none is given.
    type: str = attrs.field(default="", kw_only=True)
    labels: Mapping[str, str] = attrs.field(factory=frozen_map, converter=frozen_map, kw_only=True)
    custom_fields: Mapping[str, FieldValue] = attrs.field(
        factory=frozen_map, converter=frozen_map, kw_only=True
    )
    references: tuple[Reference, ...] = attrs.field(default=(), kw_only=True)


@attrs.frozen
class TriageStarted(EventData):
    """A responder acknowledged the incident and started triage."""

    TYPE: ClassVar[str] = "triage_started"


@attrs.frozen
class EvidenceAdded(EventData):
    """Evidence was attached."""

    TYPE: ClassVar[str] = "evidence_added"
    source: str
    content: str


@attrs.frozen
class TriageAnswered(EventData):
    """A triage checklist question was answered."""

    TYPE: ClassVar[str] = "triage_answered"
    question: str
    answer: str


@attrs.frozen
class ContainmentRecorded(EventData):
    """A containment action was taken."""

    TYPE: ClassVar[str] = "containment_recorded"
    description: str
    taken_at: datetime


@attrs.frozen
class Contained(EventData):
    """The incident was declared contained."""

    TYPE: ClassVar[str] = "contained"


@attrs.frozen
class RcaStarted(EventData):
    """Root-cause analysis started."""

    TYPE: ClassVar[str] = "rca_started"


@attrs.frozen
class WhyAdded(EventData):
    """A why was added to the 5-Whys chain."""

    TYPE: ClassVar[str] = "why_added"
    answer: str


@attrs.frozen
class RootCauseSet(EventData):
    """The root cause was stated."""

    TYPE: ClassVar[str] = "root_cause_set"
    statement: str
    process_gap: str


@attrs.frozen
class FixRecorded(EventData):
    """The fix was described."""

    TYPE: ClassVar[str] = "fix_recorded"
    description: str
    test: str
    staging_verified: bool


@attrs.frozen
class DeployRecorded(EventData):
    """The fix was deployed."""

    TYPE: ClassVar[str] = "deploy_recorded"
    deployed_at: datetime
    ref: str


@attrs.frozen
class MarkedFixed(EventData):
    """The incident was marked fixed."""

    TYPE: ClassVar[str] = "marked_fixed"


@attrs.frozen
class UserConfirmed(EventData):
    """A user said whether it works for them now."""

    TYPE: ClassVar[str] = "user_confirmed"
    user: str
    positive: bool
    comment: str


@attrs.frozen
class Resolved(EventData):
    """The incident was resolved."""

    TYPE: ClassVar[str] = "resolved"


@attrs.frozen
class Reopened(EventData):
    """The incident was reopened."""

    TYPE: ClassVar[str] = "reopened"
    reason: str
    to_state: State


@attrs.frozen
class Dismissed(EventData):
    """The incident was dismissed as a false alarm or a duplicate."""

    TYPE: ClassVar[str] = "dismissed"
    reason: str
    duplicate_of: str | None = None


@attrs.frozen
class Reclassified(EventData):
    """The severity changed."""

    TYPE: ClassVar[str] = "reclassified"
    severity: Severity
    #: The severity before; filled in by ``decide`` (``None`` only before that).
    previous: Severity | None = attrs.field(default=None, kw_only=True)
    reason: str
    #: Filled in by ``decide`` from the policy.
    postmortem_required: bool = attrs.field(default=False, kw_only=True)


@attrs.frozen
class CommanderAssigned(EventData):
    """The incident commander changed."""

    TYPE: ClassVar[str] = "commander_assigned"
    commander: str


@attrs.frozen
class DetectionRecorded(EventData):
    """When the issue first occurred and how it was detected."""

    TYPE: ClassVar[str] = "detection_recorded"
    first_occurred_at: datetime | None
    detected_at: datetime | None
    method: str


@attrs.frozen
class NoteAdded(EventData):
    """A note was added."""

    TYPE: ClassVar[str] = "note_added"
    text: str


@attrs.frozen
class ActionItemAdded(EventData):
    """An action item was added."""

    TYPE: ClassVar[str] = "action_item_added"
    #: Numbered by ``decide`` from 1 (0 only before that).
    number: int = attrs.field(default=0, kw_only=True)
    description: str
    owner: str
    due: date
    #: An external reference: the issue URL or key that tracks it.
    ref: str = attrs.field(default="", kw_only=True)


@attrs.frozen
class ActionItemCompleted(EventData):
    """An action item was completed."""

    TYPE: ClassVar[str] = "action_item_completed"
    number: int


@attrs.frozen
class ActionItemReassigned(EventData):
    """An action item was handed to another owner."""

    TYPE: ClassVar[str] = "action_item_reassigned"
    number: int
    owner: str
    reason: str = ""


@attrs.frozen
class ActionItemRedated(EventData):
    """An action item got another due date."""

    TYPE: ClassVar[str] = "action_item_redated"
    number: int
    due: date
    reason: str = ""


@attrs.frozen
class ActionItemDeclined(EventData):
    """An action item will not be done, with the reason."""

    TYPE: ClassVar[str] = "action_item_declined"
    number: int
    reason: str


@attrs.frozen
class ActionItemLinked(EventData):
    """An action item was linked to the issue that tracks it."""

    TYPE: ClassVar[str] = "action_item_linked"
    number: int
    ref: str


@attrs.frozen
class Amended(EventData):
    """Something recorded was corrected; the history keeps what it said before.

    ``item`` names it (``why:2``, ``triage:scope``, ``postmortem:summary``, ...,
    see :data:`incidentflow.commands.CORRECTABLE`); ``value`` is the new text
    (several for a post-mortem list).
    """

    TYPE: ClassVar[str] = "amended"
    item: str
    value: tuple[str, ...]
    reason: str
    #: The post-mortem's blame warnings after the correction; filled in by ``decide``.
    blame_warnings: tuple[str, ...] = attrs.field(default=(), kw_only=True)


@attrs.frozen
class Retracted(EventData):
    """Something recorded was withdrawn as a mistake; it stays in the history, marked."""

    TYPE: ClassVar[str] = "retracted"
    item: str
    reason: str


@attrs.frozen
class TypeChanged(EventData):
    """The incident type changed, with a reason."""

    TYPE: ClassVar[str] = "type_changed"
    type: str
    reason: str
    #: The type before; filled in by ``decide``.
    previous: str = attrs.field(default="", kw_only=True)
    #: Filled in by ``decide`` from the policy.
    postmortem_required: bool = attrs.field(default=False, kw_only=True)


@attrs.frozen
class LabelsSet(EventData):
    """Labels were set (a new value replaces the old) or removed."""

    TYPE: ClassVar[str] = "labels_set"
    labels: Mapping[str, str] = attrs.field(factory=frozen_map, converter=frozen_map)
    removed: tuple[str, ...] = ()


@attrs.frozen
class FieldsSet(EventData):
    """Custom fields were set or removed."""

    TYPE: ClassVar[str] = "fields_set"
    values: Mapping[str, FieldValue] = attrs.field(factory=frozen_map, converter=frozen_map)
    removed: tuple[str, ...] = ()


@attrs.frozen
class ReferenceAdded(EventData):
    """An external reference was attached (an alert fingerprint, a ticket, a channel)."""

    TYPE: ClassVar[str] = "reference_added"
    kind: str
    value: str


@attrs.frozen
class ReferenceRemoved(EventData):
    """An external reference was detached."""

    TYPE: ClassVar[str] = "reference_removed"
    kind: str
    value: str


@attrs.frozen
class RoleAssigned(EventData):
    """A role was assigned, or handed over from whoever held it."""

    TYPE: ClassVar[str] = "role_assigned"
    role: str
    person: str
    note: str = ""
    #: Who held it before (``None``: vacant); filled in by ``decide``.
    previous: str | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class RoleReleased(EventData):
    """A role was released and is vacant again."""

    TYPE: ClassVar[str] = "role_released"
    role: str
    note: str = ""
    #: Who held it; filled in by ``decide``.
    previous: str = attrs.field(default="", kw_only=True)


@attrs.frozen
class UpdatePosted(EventData):
    """A status update was posted to stakeholders."""

    TYPE: ClassVar[str] = "update_posted"
    audience: str
    text: str
    #: When the next update is due (``None``: none promised and no cadence).
    next_update_at: datetime | None = None


@attrs.frozen
class PostmortemDrafted(EventData):
    """Post-mortem fields were filled in; ``None`` leaves a field as it was."""

    TYPE: ClassVar[str] = "postmortem_drafted"
    summary: str | None = None
    root_cause: str | None = None
    went_well: tuple[str, ...] | None = None
    went_poorly: tuple[str, ...] | None = None


@attrs.frozen
class PostmortemCompleted(EventData):
    """The post-mortem was completed."""

    TYPE: ClassVar[str] = "postmortem_completed"
    blame_warnings: tuple[str, ...] = ()


@attrs.frozen
class KbUpdated(EventData):
    """The knowledge-base gotcha entry was written."""

    TYPE: ClassVar[str] = "kb_updated"
    #: The incident's slug, filled in by ``decide``.
    slug: str = attrs.field(default="", kw_only=True)
    symptom: str
    root_cause: str
    fix: str
    early_signs: str


@attrs.frozen
class DeadlineBreached(EventData):
    """A response, post-mortem or action-item deadline passed unmet."""

    TYPE: ClassVar[str] = "deadline_breached"
    kind: str
    subject: str
    due_at: datetime

    @property
    def key(self) -> str:
        """Identifies the deadline, so each breach is recorded once."""
        return f"{self.kind}:{self.subject}:{self.due_at.isoformat()}"


@attrs.frozen
class Event:
    """One entry of an incident's append-only history.

    Attributes:
        incident_id: The incident this event belongs to.
        seq: Position in the history, 1 for the declaration, gapless.
        at: When it was recorded (aware, UTC), from the flow's clock.
        actor: Who ran the command.
        data: The typed payload; its class names the event type.
        idempotency_key: The key of the command that produced it, if any.
        schema_version: The event schema version it was written with.

    """

    incident_id: str
    seq: int
    at: datetime
    actor: str
    data: EventData
    idempotency_key: str | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def type(self) -> str:
        """The event type's stored name, e.g. ``"evidence_added"``."""
        return self.data.TYPE


def event_types() -> dict[str, type[EventData]]:
    """Map each stored event type name to its payload class."""
    return {cls.TYPE: cls for cls in _all_subclasses(EventData)}


def _all_subclasses(cls: type[EventData]) -> list[type[EventData]]:
    found = []
    for sub in cls.__subclasses__():
        if is_draft(sub):
            continue  # a payload's writable twin, not an event type
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


@attrs.frozen
class Linked(EventData):
    """A link to another incident was recorded (the other records the inverse kind)."""

    TYPE: ClassVar[str] = "linked"
    kind: str
    other: str


@attrs.frozen
class Unlinked(EventData):
    """A link to another incident was removed (the other removes the inverse)."""

    TYPE: ClassVar[str] = "unlinked"
    kind: str
    other: str


@attrs.frozen
class Merged(EventData):
    """The incident was merged into another and closed as its duplicate."""

    TYPE: ClassVar[str] = "merged"
    into: str
    reason: str
    #: The external references it gave up to ``into``; filled in by ``decide``.
    references: tuple[Reference, ...] = attrs.field(default=(), kw_only=True)


@attrs.frozen
class Absorbed(EventData):
    """A duplicate merged into this incident: its evidence, labels and references moved here."""

    TYPE: ClassVar[str] = "absorbed"
    source: str
    evidence: tuple[Evidence, ...] = ()
    labels: Mapping[str, str] = attrs.field(factory=frozen_map, converter=frozen_map)
    references: tuple[Reference, ...] = ()


@attrs.frozen
class Restricted(EventData):
    """The incident was restricted to named actors and groups (``group:sre``)."""

    TYPE: ClassVar[str] = "restricted"
    to: tuple[str, ...]


@attrs.frozen
class Unrestricted(EventData):
    """The restriction was lifted: everyone with the read permission sees the incident."""

    TYPE: ClassVar[str] = "unrestricted"
