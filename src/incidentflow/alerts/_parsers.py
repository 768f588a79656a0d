"""The parsers: a webhook payload in, a list of :class:`Alert` out, or a ValidationError.

Each reads one format as its public documentation describes it; the fixtures in
``tests/alerts/fixtures/`` are written from those pages (their README names them).
Parsers are pure: no clock, no I/O. The whole payload is read before any alert
is returned, so a malformed one never reaches the store.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence

from .._validate import _shown
from ..exceptions import ValidationError
from . import _read as r
from ._alert import Alert, AlertStatus, one_line, readable_title

__all__ = [
    "SOURCES",
    "parse",
    "parse_alertmanager",
    "parse_datadog",
    "parse_generic",
    "parse_grafana",
    "parse_pagerduty",
]

_TITLE_MAX = 200
_FIRING_OR_RESOLVED: tuple[AlertStatus, ...] = ("firing", "resolved")
_PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
_PAGERDUTY_ACTIONS: Mapping[str, AlertStatus] = {
    "trigger": "firing",
    "acknowledge": "acknowledged",
    "resolve": "resolved",
}
_DATADOG_FIRING = ("triggered", "re-triggered", "warn", "no data", "renotify", "re-notify")
_BRACKETS = re.compile(r"^(?:\s*\[[^\]]*\])+\s*")


def _status(value: str, where: str, accepted: Sequence[AlertStatus]) -> AlertStatus:
    for status in accepted:
        if value == status:
            return status
    raise ValidationError(where, f"{value!r} is not a status; use one of {', '.join(accepted)}")


def _hashed(*parts: str) -> str:
    """A stable fingerprint for a source that sent none."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _labels_fingerprint(labels: Mapping[str, str]) -> str:
    return _hashed(*(f"{k}={v}" for k, v in sorted(labels.items())))


def _title(*candidates: str, fallback: str) -> str:
    for candidate in candidates:
        line = one_line(candidate, _TITLE_MAX)
        if line:
            return line
    return one_line(fallback, _TITLE_MAX)


# -- Prometheus Alertmanager and Grafana -------------------------------------------------


def _prometheus_alert(
    item: Mapping[str, object], path: str, source: str, group_key: str | None
) -> Alert:
    """One entry of ``alerts[]``: Alertmanager's shape, which Grafana's extends."""
    status = _status(r.text(item, "status", path), f"{path}.status", _FIRING_OR_RESOLVED)
    labels = r.string_map(item, "labels", path)
    annotations = r.string_map(item, "annotations", path)
    if source == "grafana":
        value_string = r.optional_text(item, "valueString", path)
        if value_string:
            annotations["valueString"] = value_string
    fingerprint = r.optional_text(item, "fingerprint", path) or _labels_fingerprint(labels)
    name = labels.get("alertname", "")
    url = (
        r.optional_text(item, "generatorURL", path)
        or r.optional_text(item, "panelURL", path)
        or r.optional_text(item, "dashboardURL", path)
    )
    summary = annotations.get("summary", "")
    return Alert(
        source=source,
        fingerprint=fingerprint,
        group_key=group_key or None,
        status=status,
        title=_title(summary, readable_title(name), fallback=f"Alert {fingerprint}"),
        summary=annotations.get("description", "") or summary,
        labels=labels,
        annotations=annotations,
        starts_at=r.time(item, "startsAt", path, required=True),
        ends_at=r.time(item, "endsAt", path, required=False),
        url=url or None,
        severity=labels.get("severity", "").strip().lower() or None,
    )


def parse_alertmanager(payload: object) -> list[Alert]:
    """Alerts from a Prometheus Alertmanager webhook (version 4).

    >>> alerts = parse_alertmanager({"version": "4", "groupKey": "{}:{alertname='Db'}",
    ...     "status": "firing", "receiver": "incidentflow", "alerts": [{"status": "firing",
    ...     "labels": {"alertname": "DiskFull", "severity": "critical"}, "annotations": {},
    ...     "startsAt": "2026-11-27T14:02:00Z", "fingerprint": "1c9e"}]})
    >>> alerts[0].title, alerts[0].severity, alerts[0].fingerprint
    ('Disk full', 'critical', '1c9e')
    """
    data = r.document(payload)
    version = data.get("version")
    if version != "4":
        raise ValidationError(
            "version",
            f"{_shown(version)} is not an Alertmanager webhook version this reads; "
            'it reads version "4"',
        )
    _status(r.text(data, "status", ""), "status", _FIRING_OR_RESOLVED)
    group_key = r.optional_text(data, "groupKey", "")
    alerts = r.items(data, "alerts", "")
    return [
        _prometheus_alert(item, f"alerts[{n}]", "alertmanager", group_key)
        for n, item in enumerate(alerts)
    ]


def parse_grafana(payload: object) -> list[Alert]:
    """Alerts from a Grafana alerting (unified alerting) webhook contact point.

    Its ``alerts[]`` are Alertmanager's, with ``silenceURL``, ``dashboardURL``,
    ``panelURL``, ``values`` and ``valueString``; the payload adds ``orgId``,
    ``title``, ``state`` and ``message``. ``groupKey`` is the group key.
    """
    data = r.document(payload)
    _status(r.text(data, "status", ""), "status", _FIRING_OR_RESOLVED)
    group_key = r.optional_text(data, "groupKey", "")
    org = data.get("orgId")
    if org is not None and (isinstance(org, bool) or not isinstance(org, int)):
        raise ValidationError("orgId", f"expected a whole number, got {org!r}")
    alerts = r.items(data, "alerts", "")
    return [
        _prometheus_alert(item, f"alerts[{n}]", "grafana", group_key)
        for n, item in enumerate(alerts)
    ]


# -- PagerDuty Events API v2 ---------------------------------------------------------------


def parse_pagerduty(payload: object) -> list[Alert]:
    """The alert of a PagerDuty Events API v2 event (``trigger``, ``acknowledge``, ``resolve``).

    ``dedup_key`` is the fingerprint (a trigger without one gets a fingerprint
    made from its summary and source, as PagerDuty would make a new alert);
    ``payload.component``, ``group``, ``class`` and ``source`` become labels,
    ``custom_details`` annotations, ``payload.severity`` the severity hint.
    """
    data = r.document(payload)
    r.text(data, "routing_key", "")
    action = r.text(data, "event_action", "")
    status = _PAGERDUTY_ACTIONS.get(action)
    if status is None:
        raise ValidationError(
            "event_action",
            f"{action!r} is not an event action; use trigger, acknowledge or resolve",
        )
    dedup_key = r.optional_text(data, "dedup_key", "")
    details = data.get("payload")
    if status != "firing":
        if not dedup_key:
            raise ValidationError(
                "dedup_key", f"is missing; a {action} event names the alert by it"
            )
        body = r.obj(details, "payload") if details is not None else {}
        summary = r.optional_text(body, "summary", "payload")
        return [
            Alert(
                source="pagerduty",
                fingerprint=dedup_key,
                status=status,
                title=_title(summary, fallback=f"PagerDuty alert {dedup_key}"),
                summary=summary,
            )
        ]
    if details is None:
        raise ValidationError(
            "payload", "is missing; a trigger event needs summary, source and severity"
        )
    body = r.obj(details, "payload")
    summary = r.text(body, "summary", "payload")
    origin = r.text(body, "source", "payload")
    severity = r.text(body, "severity", "payload")
    if severity not in _PAGERDUTY_SEVERITIES:
        raise ValidationError(
            "payload.severity",
            f"{severity!r} is not a severity; use one of {', '.join(_PAGERDUTY_SEVERITIES)}",
        )
    labels = {"source": origin}
    for name in ("component", "group", "class"):
        value = r.optional_text(body, name, "payload")
        if value:
            labels[name] = value
    return [
        Alert(
            source="pagerduty",
            fingerprint=dedup_key or _hashed(summary, origin),
            status="firing",
            title=_title(summary, fallback=origin),
            summary=summary,
            labels=labels,
            annotations=r.values_map(body, "custom_details", "payload"),
            starts_at=r.time(body, "timestamp", "payload", required=False),
            url=r.optional_text(data, "client_url", "") or _first_link(data),
            severity=severity,
        )
    ]


def _first_link(data: Mapping[str, object]) -> str | None:
    links = data.get("links")
    if not isinstance(links, list) or not links:
        return None
    first = r.obj(links[0], "links[0]")
    return r.optional_text(first, "href", "links[0]") or None


# -- Datadog ------------------------------------------------------------------------------


def parse_datadog(payload: object) -> list[Alert]:
    """The alert of a Datadog webhook sent with the payload template in the alerts how-to.

    The template maps Datadog's variables to keys: ``alert_id`` ($ALERT_ID),
    ``aggregation_key`` ($AGGREG_KEY, the fingerprint), ``title`` ($ALERT_TITLE),
    ``transition`` ($ALERT_TRANSITION), ``priority`` ($ALERT_PRIORITY),
    ``alert_type`` ($ALERT_TYPE), ``scope`` ($ALERT_SCOPE), ``tags`` ($TAGS),
    ``date`` ($DATE), ``body`` ($EVENT_MSG) and ``link`` ($LINK).
    """
    data = r.document(payload)
    transition = r.text(data, "transition", "")
    lowered = transition.lower()
    status: AlertStatus
    if "recovered" in lowered:
        status = "resolved"
    elif lowered in _DATADOG_FIRING:
        status = "firing"
    else:
        raise ValidationError(
            "transition",
            f"{transition!r} is not an $ALERT_TRANSITION this reads; Triggered, Re-Triggered, "
            "Warn, No Data and Renotify fire, Recovered resolves",
        )
    alert_id = _id_text(data, "alert_id")
    scope = r.optional_text(data, "scope", "")
    fingerprint = r.optional_text(data, "aggregation_key", "") or (
        f"{alert_id}:{scope}" if alert_id and scope else alert_id
    )
    if not fingerprint:
        raise ValidationError(
            "aggregation_key", "is missing, and so is alert_id; send $AGGREG_KEY or $ALERT_ID"
        )
    raw_title = r.text(data, "title", "")
    labels = _tags(r.optional_text(data, "scope", ""), "scope")
    labels |= _tags(r.optional_text(data, "tags", ""), "tags")
    annotations = {"alert_id": alert_id} if alert_id else {}
    hostname = r.optional_text(data, "hostname", "")
    if hostname:
        annotations["hostname"] = hostname
    priority = r.optional_text(data, "priority", "").lower()
    alert_type = r.optional_text(data, "alert_type", "").lower()
    return [
        Alert(
            source="datadog",
            fingerprint=fingerprint,
            status=status,
            title=_title(_BRACKETS.sub("", raw_title), fallback=raw_title),
            summary=r.optional_text(data, "body", ""),
            labels=labels,
            annotations=annotations,
            starts_at=r.epoch_or_time(data, "date", ""),
            url=r.optional_text(data, "link", "") or None,
            severity=priority or alert_type or None,
        )
    ]


def _id_text(data: Mapping[str, object], key: str) -> str:
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > 64:  # Datadog's ids are 64-bit; str() fails past 4,300 digits
            raise ValidationError(key, f"expected an id of at most 64 bits, got {_shown(value)}")
        return str(value)
    return r.optional_text(data, key, "")


def _tags(text: str, field: str) -> dict[str, str]:
    """Datadog tags (``env:prod,service:checkout``) as labels; a bare tag has the value true."""
    labels: dict[str, str] = {}
    for tag in text.split(","):
        name, colon, value = tag.strip().partition(":")
        if name:
            labels[name] = value.strip() if colon else "true"
    return labels


# -- the generic JSON ----------------------------------------------------------------------


def parse_generic(payload: object) -> list[Alert]:
    """Alerts from the generic JSON any script can send.

    ``{"alerts": [{"fingerprint": ..., "status": "firing" | "resolved",
    "title": ..., "severity": ..., "labels": {...}, "started_at": RFC 3339,
    "description": ...}]}``; ``ended_at``, ``url`` and ``group_key`` are
    optional too. ``fingerprint``, ``status`` and ``title`` are required.
    """
    data = r.document(payload)
    found = []
    for n, item in enumerate(r.items(data, "alerts", "")):
        path = f"alerts[{n}]"
        title = r.text(item, "title", path)
        found.append(
            Alert(
                source="generic",
                fingerprint=r.text(item, "fingerprint", path),
                group_key=r.optional_text(item, "group_key", path) or None,
                status=_status(r.text(item, "status", path), f"{path}.status", _FIRING_OR_RESOLVED),
                title=_title(title, fallback=title),
                summary=r.optional_text(item, "description", path),
                labels=r.string_map(item, "labels", path),
                starts_at=r.time(item, "started_at", path, required=False),
                ends_at=r.time(item, "ended_at", path, required=False),
                url=r.optional_text(item, "url", path) or None,
                severity=r.optional_text(item, "severity", path).lower() or None,
            )
        )
    return found


#: Each source's parser, by the name ``flow.ingest(payload, source=...)`` takes.
SOURCES: Mapping[str, Callable[[object], list[Alert]]] = {
    "alertmanager": parse_alertmanager,
    "datadog": parse_datadog,
    "generic": parse_generic,
    "grafana": parse_grafana,
    "pagerduty": parse_pagerduty,
}


def parse(payload: object, source: str) -> list[Alert]:
    """The alerts of ``payload`` (a mapping, or JSON text or bytes) in the format ``source``.

    Raises:
        ValidationError: ``source`` is not a known format (field ``source``), or
            the payload is malformed (the field names where: ``alerts[3].startsAt``).

    """
    parser = SOURCES.get(source) if isinstance(source, str) else None
    if parser is None:
        raise ValidationError(
            "source", f"{source!r} is not an alert format; use one of {', '.join(SOURCES)}"
        )
    return parser(payload)
