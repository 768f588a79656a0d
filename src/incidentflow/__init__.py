"""incidentflow: the incident-response process as a guarded state machine.

>>> from incidentflow import IncidentFlow
>>> flow = IncidentFlow.in_memory()
>>> inc = flow.declare("Search is slow", severity="P3", commander="carol", actor="carol")
>>> flow.can(inc.id, "contain").allowed
False
"""

import typing as _typing

from loguru import logger as _logger

from ._authz import Access, Authorizer, Permission, hash_token
from ._deadlines import Deadline
from ._decide import replay
from ._events import Event, EventData
from ._flow import Clock, IncidentFlow, Verdict
from ._flow_commands import CommandOptions
from ._lazy import lazy_attributes as _lazy_attributes
from ._model import (
    ActionItem,
    Confirmation,
    ContainmentAction,
    Correction,
    Deploy,
    Detection,
    Evidence,
    Fix,
    Handoff,
    Incident,
    KbEntry,
    Link,
    Note,
    Postmortem,
    Records,
    Reference,
    RootCause,
    Severity,
    State,
    StatusUpdate,
    SupersededFix,
    TriageAnswer,
    Why,
)
from ._policy import BlameCheck, CommandRequest, Guard, Policy, find_blame
from ._process import Process, ProcessOverride
from ._reasons import Outcome, Reason
from ._similar import SimilarIncident
from ._version import __version__
from .delivery import DeliveryReport, Dispatcher, RetryPolicy, Route
from .exceptions import (
    ConcurrencyConflict,
    ConfigError,
    DeliveryError,
    DuplicateIncident,
    IdempotencyConflict,
    IncidentFlowError,
    IncidentNotFound,
    InvalidTransition,
    ReferenceTaken,
    StoreError,
    TransitionRejected,
    Unauthorized,
    ValidationError,
)
from .stores._base import IncidentSummary

if _typing.TYPE_CHECKING:
    from ._async import AsyncDispatcher, AsyncIncidentFlow
    from .config import (
        Config,
        EmailNotifierSpec,
        LogNotifierSpec,
        NotifierSpec,
        SlackNotifierSpec,
        WebhookNotifierSpec,
        default_config_toml,
        load_config,
        routes_from_toml,
    )
    from .delivery import DispatcherProcess

# A library does not log into its host's handlers unless the host asks for it.
_logger.disable("incidentflow")


__all__ = [
    "Access",
    "ActionItem",
    "AsyncDispatcher",
    "AsyncIncidentFlow",
    "Authorizer",
    "BlameCheck",
    "Clock",
    "CommandOptions",
    "CommandRequest",
    "ConcurrencyConflict",
    "Config",
    "ConfigError",
    "Confirmation",
    "ContainmentAction",
    "Correction",
    "Deadline",
    "DeliveryError",
    "DeliveryReport",
    "Deploy",
    "Detection",
    "Dispatcher",
    "DispatcherProcess",
    "DuplicateIncident",
    "EmailNotifierSpec",
    "Event",
    "EventData",
    "Evidence",
    "Fix",
    "Guard",
    "Handoff",
    "IdempotencyConflict",
    "Incident",
    "IncidentFlow",
    "IncidentFlowError",
    "IncidentNotFound",
    "IncidentSummary",
    "InvalidTransition",
    "KbEntry",
    "Link",
    "LogNotifierSpec",
    "Note",
    "NotifierSpec",
    "Outcome",
    "Permission",
    "Policy",
    "Postmortem",
    "Process",
    "ProcessOverride",
    "Reason",
    "Records",
    "Reference",
    "ReferenceTaken",
    "RetryPolicy",
    "RootCause",
    "Route",
    "Severity",
    "SimilarIncident",
    "SlackNotifierSpec",
    "State",
    "StatusUpdate",
    "StoreError",
    "SupersededFix",
    "TransitionRejected",
    "TriageAnswer",
    "Unauthorized",
    "ValidationError",
    "Verdict",
    "WebhookNotifierSpec",
    "Why",
    "__version__",
    "default_config_toml",
    "find_blame",
    "hash_token",
    "load_config",
    "replay",
    "routes_from_toml",
]

# The configuration and DispatcherProcess load on first use: ``import incidentflow`` stays light.
__getattr__, __dir__ = _lazy_attributes(
    __name__,
    globals(),
    dict.fromkeys(
        [
            "Config",
            "EmailNotifierSpec",
            "Link",
            "LogNotifierSpec",
            "NotifierSpec",
            "SlackNotifierSpec",
            "WebhookNotifierSpec",
            "default_config_toml",
            "load_config",
            "routes_from_toml",
        ],
        ".config",
    )
    | {"DispatcherProcess": ".delivery._process"}
    | dict.fromkeys(["AsyncDispatcher", "AsyncIncidentFlow"], "._async"),
)
