"""``[alerts]``: how ingested alerts become incidents (severity rules, the dedupe key).

::

    [alerts]
    group_by = "fingerprint"          # or "group": one incident per Alertmanager group

    [[alerts.severity]]               # first match wins; default: by the alert's severity
    match = { service = "checkout", env = ["prod", "live"] }
    severity = "P1"
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from .._toml import SEVERITY_NAMES, loads_toml, read_toml, toml_shown
from ..alerts import GROUP_BY, AlertRules, SeverityRule
from ..exceptions import ConfigError
from ._common import line, meta, one_of, rekey, severity_name, validated, where
from ._structure import structure

__all__ = [
    "ALERTS_ACCEPT",
    "AlertsTable",
    "SeverityRuleTable",
    "alert_rules_from_toml",
    "alerts_table",
]

#: What ``alerts`` accepts, as errors and the reference page say it.
ALERTS_ACCEPT = "a table with group_by, commander and [[alerts.severity]] tables"


def _matchers(key: str, value: dict[str, Any]) -> None:
    for label, accepted in value.items():
        values = [accepted] if isinstance(accepted, str) else accepted
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(item, str) and item for item in values)
        ):
            raise ConfigError(
                f"{key}.{label}",
                f"expected a label value or a non-empty list of values, got {toml_shown(accepted)}",
            )


@attrs.frozen(kw_only=True)
class SeverityRuleTable:
    """One ``[[alerts.severity]]`` table: label matchers and the severity they give."""

    severity: str = attrs.field(
        validator=validated(severity_name),
        metadata=meta("The severity of incidents declared for matching alerts.", SEVERITY_NAMES),
    )
    match: dict[str, Any] = attrs.field(
        factory=dict,
        validator=validated(_matchers),
        metadata=meta(
            "Labels the alert must have: each a value, or a list of accepted values "
            "(the label severity falls back to the source's severity). Empty: every alert.",
            'a table of label = value or [values], e.g. { service = "checkout" }',
        ),
    )


@attrs.frozen(kw_only=True)
class AlertsTable:
    """The ``[alerts]`` table, as written."""

    group_by: str | None = attrs.field(
        default=None,
        validator=validated(one_of(GROUP_BY)),
        metadata=meta(
            "What deduplicates alerts: each alert's fingerprint, or its group key "
            "(Alertmanager's groupKey). Default: fingerprint.",
            "fingerprint or group",
        ),
    )
    commander: str | None = attrs.field(
        default=None,
        validator=validated(line("a name")),
        metadata=meta(
            "Who commands the incidents alerts declare. Default: the ingesting actor.", "a name"
        ),
    )
    severity: list[SeverityRuleTable] = attrs.field(
        factory=list,
        metadata=meta(
            "Severity rules, tried in order; the first match wins. Without a match: "
            "critical is P1, error or high P2, warning P3, anything else P4.",
            "[[alerts.severity]] tables with match and severity",
        ),
    )

    def rules(self, source: str | None, prefix: Sequence[str] = ()) -> AlertRules:
        """The :class:`~incidentflow.alerts.AlertRules` this table describes."""
        try:
            return AlertRules(
                severity=[SeverityRule(rule.match, rule.severity) for rule in self.severity],
                group_by=self.group_by or "fingerprint",
                commander=self.commander,
            )
        except ConfigError as exc:
            raise rekey(exc, where(source, ".".join(prefix), "alerts", exc.key)) from None


@attrs.frozen(kw_only=True)
class _AlertsOnly:
    """The ``[alerts]`` of a file that may hold anything else too."""

    alerts: AlertsTable = attrs.field(factory=AlertsTable, metadata=meta("", ALERTS_ACCEPT))


def alert_rules_from_toml(source: str | os.PathLike[str], *, text: str | None = None) -> AlertRules:
    """Alert rules from the ``[alerts]`` table of a TOML file (or of ``text``).

    Other keys are left alone, so this reads an ``incidentflow.toml``; a file
    without ``[alerts]`` gives the defaults. A wrong key raises ConfigError
    keyed ``"<source>: alerts.severity[N].<key>"``.

    >>> rules = alert_rules_from_toml("inline", text='''
    ... [alerts]
    ... group_by = "group"
    ... [[alerts.severity]]
    ... match = { team = "payments", env = ["prod", "live"] }
    ... severity = "P1"
    ... ''')
    >>> rules.group_by, rules.severity[0].severity.value, rules.severity[0].match["env"]
    ('group', 'P1', ('prod', 'live'))
    """
    name = str(source)
    data = read_toml(Path(source)) if text is None else loads_toml(text, name)
    if "alerts" not in data:
        return AlertRules()
    table = structure({"alerts": data["alerts"]}, _AlertsOnly, name).alerts
    return table.rules(name)


def alerts_table(rules: AlertRules) -> dict[str, Any]:
    """``rules`` as an ``[alerts]`` table (empty for the defaults)."""
    table: dict[str, Any] = {}
    if rules.group_by != "fingerprint":
        table["group_by"] = rules.group_by
    if rules.commander is not None:
        table["commander"] = rules.commander
    if rules.severity:
        table["severity"] = [
            {
                "match": {
                    label: values[0] if len(values) == 1 else list(values)
                    for label, values in rule.match.items()
                },
                "severity": rule.severity.value,
            }
            for rule in rules.severity
        ]
    return table
