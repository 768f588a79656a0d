"""incidentflow: the incident-response process as a guarded state machine.

>>> from incidentflow import IncidentFlow
>>> flow = IncidentFlow.in_memory()
>>> inc = flow.declare("Search is slow", severity="P3", commander="carol", actor="carol")
>>> flow.can(inc.id, "contain").allowed
False
"""

import sys as _sys
import typing as _typing

from ._lazy import WhenLoaded as _WhenLoaded
from ._lazy import lazy_attributes as _lazy_attributes
from ._version import __version__
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

if _typing.TYPE_CHECKING:
    from ._async import AsyncDispatcher, AsyncIncidentFlow
    from ._authz import Access, Authorizer, Permission, hash_token
    from ._deadlines import Deadline
    from ._decide import replay
    from ._events import Event, EventData
    from ._flow import Clock, IncidentFlow, Verdict
    from ._flow_commands import CommandOptions
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
    from .delivery import DeliveryReport, Dispatcher, DispatcherProcess, RetryPolicy, Route
    from .stores._base import IncidentSummary


# A library does not log into its host's handlers unless the host asks for it. loguru
# loads on first use (a flow, a store, a notifier), so ``incidentflow --help`` and
# ``import incidentflow`` stay light: disable the logger now if loguru is loaded, else
# the moment it loads.
if "loguru" in _sys.modules:
    _sys.modules["loguru"].logger.disable("incidentflow")
else:
    _sys.meta_path.insert(0, _WhenLoaded("loguru", lambda loguru: loguru.logger.disable(__name__)))


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

# Everything but the errors and the version loads on first use (PEP 562): ``import
# incidentflow`` and ``incidentflow --help`` import no store, converter or logger.
_LAZY: dict[str, str] = {
    "AsyncDispatcher": "._async",
    "AsyncIncidentFlow": "._async",
    "Access": "._authz",
    "Authorizer": "._authz",
    "Permission": "._authz",
    "hash_token": "._authz",
    "Deadline": "._deadlines",
    "replay": "._decide",
    "Event": "._events",
    "EventData": "._events",
    "Clock": "._flow",
    "IncidentFlow": "._flow",
    "Verdict": "._flow",
    "CommandOptions": "._flow_commands",
    "ActionItem": "._model",
    "Confirmation": "._model",
    "ContainmentAction": "._model",
    "Correction": "._model",
    "Deploy": "._model",
    "Detection": "._model",
    "Evidence": "._model",
    "Fix": "._model",
    "Handoff": "._model",
    "Incident": "._model",
    "KbEntry": "._model",
    "Link": "._model",
    "Note": "._model",
    "Postmortem": "._model",
    "Records": "._model",
    "Reference": "._model",
    "RootCause": "._model",
    "Severity": "._model",
    "State": "._model",
    "StatusUpdate": "._model",
    "SupersededFix": "._model",
    "TriageAnswer": "._model",
    "Why": "._model",
    "BlameCheck": "._policy",
    "CommandRequest": "._policy",
    "Guard": "._policy",
    "Policy": "._policy",
    "find_blame": "._policy",
    "Process": "._process",
    "ProcessOverride": "._process",
    "Outcome": "._reasons",
    "Reason": "._reasons",
    "SimilarIncident": "._similar",
    "Config": ".config",
    "EmailNotifierSpec": ".config",
    "LogNotifierSpec": ".config",
    "NotifierSpec": ".config",
    "SlackNotifierSpec": ".config",
    "WebhookNotifierSpec": ".config",
    "default_config_toml": ".config",
    "load_config": ".config",
    "routes_from_toml": ".config",
    "DeliveryReport": ".delivery",
    "Dispatcher": ".delivery",
    "RetryPolicy": ".delivery",
    "Route": ".delivery",
    "DispatcherProcess": ".delivery._process",
    "IncidentSummary": ".stores._base",
}
__getattr__, __dir__ = _lazy_attributes(__name__, globals(), _LAZY)
