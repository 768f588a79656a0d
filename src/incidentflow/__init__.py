"""incidentflow: the incident-response process as a guarded state machine.

>>> from incidentflow import IncidentFlow
>>> flow = IncidentFlow.in_memory()
>>> inc = flow.declare("Search is slow", severity="P3", commander="carol", actor="carol")
>>> flow.can(inc.id, "contain").allowed
False
"""

from loguru import logger as _logger

from ._deadlines import Deadline
from ._decide import replay
from ._delivery import DeliveryReport, Dispatcher, RetryPolicy, Route, routes_from_toml
from ._events import Event, EventData
from ._flow import Clock, IncidentFlow, Verdict
from ._model import (
    ActionItem,
    Confirmation,
    ContainmentAction,
    Deploy,
    Detection,
    Evidence,
    Fix,
    Incident,
    KbEntry,
    Note,
    Postmortem,
    Records,
    RootCause,
    Severity,
    State,
    TriageAnswer,
    Why,
)
from ._policy import BlameCheck, CommandRequest, Guard, Policy, find_blame
from .exceptions import (
    ConcurrencyConflict,
    ConfigError,
    DeliveryError,
    DuplicateIncident,
    IdempotencyConflict,
    IncidentFlowError,
    IncidentNotFound,
    InvalidTransition,
    StoreError,
    TransitionRejected,
    Unauthorized,
    ValidationError,
)

# A library does not log into its host's handlers unless the host asks for it.
_logger.disable("incidentflow")

__version__ = "0.1.0"

__all__ = [
    "ActionItem",
    "BlameCheck",
    "Clock",
    "CommandRequest",
    "ConcurrencyConflict",
    "ConfigError",
    "Confirmation",
    "ContainmentAction",
    "Deadline",
    "DeliveryError",
    "DeliveryReport",
    "Deploy",
    "Detection",
    "Dispatcher",
    "DuplicateIncident",
    "Event",
    "EventData",
    "Evidence",
    "Fix",
    "Guard",
    "IdempotencyConflict",
    "Incident",
    "IncidentFlow",
    "IncidentFlowError",
    "IncidentNotFound",
    "InvalidTransition",
    "KbEntry",
    "Note",
    "Policy",
    "Postmortem",
    "Records",
    "RetryPolicy",
    "RootCause",
    "Route",
    "Severity",
    "State",
    "StoreError",
    "TransitionRejected",
    "TriageAnswer",
    "Unauthorized",
    "ValidationError",
    "Verdict",
    "Why",
    "__version__",
    "find_blame",
    "replay",
    "routes_from_toml",
]
