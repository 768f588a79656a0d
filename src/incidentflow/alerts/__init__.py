"""Alerts in: webhook payload parsers and the records ``flow.ingest`` works with.

Five formats are read, each as its public documentation describes it: the
Prometheus Alertmanager webhook (version 4), Grafana alerting's webhook,
PagerDuty Events API v2, a Datadog webhook (with the payload template in the
alerts how-to) and a generic JSON. Every parser gives a list of :class:`Alert`
or raises :class:`~incidentflow.ValidationError` naming the field. The parsers
are pure; :meth:`IncidentFlow.ingest <incidentflow.IncidentFlow.ingest>` does the writing.

>>> from incidentflow.alerts import parse
>>> [a.title for a in parse({"alerts": [{"fingerprint": "f1", "status": "firing",
...     "title": "Checkout error rate above 5%"}]}, "generic")]
['Checkout error rate above 5%']
"""

from ._alert import STATUSES, Alert, AlertStatus
from ._parsers import (
    SOURCES,
    parse,
    parse_alertmanager,
    parse_datadog,
    parse_generic,
    parse_grafana,
    parse_pagerduty,
)
from ._report import ACTIONS, AlertAction, AlertOutcome, IngestReport
from ._rules import DEFAULT_SEVERITIES, GROUP_BY, AlertRules, GroupBy, SeverityRule

__all__ = [
    "ACTIONS",
    "DEFAULT_SEVERITIES",
    "GROUP_BY",
    "SOURCES",
    "STATUSES",
    "Alert",
    "AlertAction",
    "AlertOutcome",
    "AlertRules",
    "AlertStatus",
    "GroupBy",
    "IngestReport",
    "SeverityRule",
    "parse",
    "parse_alertmanager",
    "parse_datadog",
    "parse_generic",
    "parse_grafana",
    "parse_pagerduty",
]
