"""Every event type an incident's history can hold, and the envelope that carries it.

Match on these in notifiers and projections::

    from incidentflow import events

    if isinstance(notification.event.data, events.Resolved):
        ...
"""

from ._events import (
    SCHEMA_VERSION,
    ActionItemAdded,
    ActionItemCompleted,
    CommanderAssigned,
    Contained,
    ContainmentRecorded,
    DeadlineBreached,
    Declared,
    DeployRecorded,
    DetectionRecorded,
    Dismissed,
    Event,
    EventData,
    EvidenceAdded,
    FixRecorded,
    KbUpdated,
    MarkedFixed,
    NoteAdded,
    PostmortemCompleted,
    PostmortemDrafted,
    RcaStarted,
    Reclassified,
    Reopened,
    Resolved,
    RootCauseSet,
    TriageAnswered,
    TriageStarted,
    UserConfirmed,
    WhyAdded,
    event_types,
)

__all__ = [
    "SCHEMA_VERSION",
    "ActionItemAdded",
    "ActionItemCompleted",
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
    "FixRecorded",
    "KbUpdated",
    "MarkedFixed",
    "NoteAdded",
    "PostmortemCompleted",
    "PostmortemDrafted",
    "RcaStarted",
    "Reclassified",
    "Reopened",
    "Resolved",
    "RootCauseSet",
    "TriageAnswered",
    "TriageStarted",
    "UserConfirmed",
    "WhyAdded",
    "event_types",
]
