"""How alerts become incidents: severity rules (label matchers → P1–P4) and the dedupe key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Literal

import attrs

from .._model import Severity
from ..exceptions import ConfigError
from ._alert import Alert

__all__ = ["DEFAULT_SEVERITIES", "GROUP_BY", "AlertRules", "GroupBy", "SeverityRule"]

GroupBy = Literal["fingerprint", "group"]
#: What deduplicates alerts: each alert's fingerprint, or the group it was sent in.
GROUP_BY: tuple[GroupBy, ...] = ("fingerprint", "group")

#: The severity an alert gets when no rule matches, by its source's severity hint.
DEFAULT_SEVERITIES: Mapping[str, Severity] = MappingProxyType(
    {
        "critical": Severity.P1,
        "error": Severity.P2,
        "high": Severity.P2,
        "warning": Severity.P3,
        # Datadog sends monitor priorities; P5 is below the process's lowest.
        "p1": Severity.P1,
        "p2": Severity.P2,
        "p3": Severity.P3,
        "p4": Severity.P4,
    }
)


def _matchers(value: Mapping[str, str | Iterable[str]]) -> Mapping[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise ConfigError("match", f"expected a table of label = value, got {type(value).__name__}")
    found: dict[str, tuple[str, ...]] = {}
    for label, accepted in value.items():
        if isinstance(accepted, str):
            values: tuple[object, ...] = (accepted,)
        elif isinstance(accepted, (list, tuple)):
            values = tuple(accepted)
        else:
            values = ()
        if not isinstance(label, str) or not label or not values:
            raise ConfigError(
                f"match.{label}", "expected a label name and a value or a non-empty list of values"
            )
        if not all(isinstance(item, str) for item in values):
            raise ConfigError(f"match.{label}", "expected text values")
        found[label] = tuple(str(item) for item in values)
    return MappingProxyType(found)


def _severity(value: Severity | str) -> Severity:
    if isinstance(value, Severity):
        return value
    try:
        return Severity(str(value).strip().upper())
    except ValueError:
        raise ConfigError(
            "severity", f"{value!r} is not a severity; use one of P1, P2, P3, P4"
        ) from None


@attrs.frozen
class SeverityRule:
    """Alerts whose labels match every matcher get ``severity``.

    ``match`` maps a label to the value it must have, or to a list of values
    of which it must have one. The label ``severity`` falls back to the
    source's severity hint (PagerDuty's ``payload.severity``, Datadog's
    priority) when the alert has no such label. An empty ``match`` matches
    every alert.

    >>> rule = SeverityRule({"service": "checkout", "env": ["prod", "live"]}, "P1")
    >>> rule.severity.value, sorted(rule.match)
    ('P1', ['env', 'service'])
    """

    match: Mapping[str, tuple[str, ...]] = attrs.field(converter=_matchers, hash=False)
    severity: Severity = attrs.field(converter=_severity)

    def matches(self, alert: Alert) -> bool:
        """Whether ``alert`` has every label this rule names, with an accepted value."""
        for label, accepted in self.match.items():
            value = alert.labels.get(label)
            if value is None and label == "severity":
                value = alert.severity
            if value not in accepted:
                return False
        return True


def _rules(value: Iterable[SeverityRule]) -> tuple[SeverityRule, ...]:
    rules = tuple(value)
    for number, rule in enumerate(rules, start=1):
        if not isinstance(rule, SeverityRule):
            raise ConfigError(
                f"severity[{number}]", f"expected a SeverityRule, got {type(rule).__name__}"
            )
    return rules


def _group_by(value: str) -> GroupBy:
    for accepted in GROUP_BY:
        if value == accepted:
            return accepted
    raise ConfigError("group_by", f"expected fingerprint or group, got {value!r}")


def _commander(value: str | None) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip() or "\n" in value):
        raise ConfigError("commander", f"expected a name on one line, got {value!r}")
    return value


@attrs.frozen(kw_only=True)
class AlertRules:
    """How :meth:`~incidentflow.IncidentFlow.ingest` turns alerts into incidents.

    Attributes:
        severity: Rules tried in order; the first that matches sets the
            severity. Without a match, the source's hint decides:
            :data:`DEFAULT_SEVERITIES` (``critical`` → P1, ``error``/``high`` →
            P2, ``warning`` → P3), anything else P4.
        group_by: ``"fingerprint"`` (one incident per alert) or ``"group"`` (one
            per Alertmanager/Grafana group key; alerts without one fall back to
            their fingerprint).
        commander: Who commands the incidents alerts declare (default: the
            ``actor`` that ingests, ``"alerts"`` unless told).

    >>> rules = AlertRules(severity=[SeverityRule({"team": "payments"}, "P1")], group_by="group")
    >>> rules.group_by, rules.severity[0].severity.value
    ('group', 'P1')

    """

    severity: tuple[SeverityRule, ...] = attrs.field(default=(), converter=_rules)
    group_by: GroupBy = attrs.field(default="fingerprint", converter=_group_by)
    commander: str | None = attrs.field(default=None, converter=_commander)

    def severity_of(self, alert: Alert) -> Severity:
        """The severity for ``alert``: the first matching rule's, else the default."""
        for rule in self.severity:
            if rule.matches(alert):
                return rule.severity
        hint = alert.severity or alert.labels.get("severity", "")
        return DEFAULT_SEVERITIES.get(hint.strip().lower(), Severity.P4)
