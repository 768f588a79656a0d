"""The parsers read each format's documented payloads and refuse malformed ones by field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from incidentflow import ValidationError
from incidentflow.alerts import SOURCES, Alert, parse
from incidentflow.alerts._alert import label_key, readable_title

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    """The JSON body of a fixture file."""
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


class TestAlertmanager:
    def test_firing_group(self) -> None:
        """Each alert of a version 4 webhook becomes an Alert with its fingerprint and group."""
        first, second = parse(fixture("alertmanager"), "alertmanager")
        assert (first.fingerprint, second.fingerprint) == ("1a30ba71cca2921f", "7c0e5d1f93b2a4e8")
        assert first.group_key == second.group_key
        assert first.group_key is not None
        assert "CheckoutErrorRate" in first.group_key
        assert first.status == "firing"
        assert first.source == "alertmanager"
        assert first.severity == "critical"
        assert first.labels["instance"] == "checkout-7f9c:8080"
        assert first.annotations["runbook_url"] == "https://runbooks.example.org/checkout"

    def test_times_with_nanoseconds_and_offsets(self) -> None:
        """startsAt with nanoseconds and an offset is read in UTC; Go's zero endsAt is None."""
        first = parse(fixture("alertmanager"), "alertmanager")[0]
        assert first.starts_at == datetime(2026, 11, 27, 12, 52, 26, 739266, tzinfo=UTC)
        assert first.ends_at is None

    def test_title_from_summary_else_alert_name(self) -> None:
        """The summary annotation is the title; without one, the alert name in words."""
        first, second = parse(fixture("alertmanager"), "alertmanager")
        assert first.title == "Checkout error rate above 5%"
        assert second.title == "Checkout error rate"

    def test_resolved(self) -> None:
        """A resolved alert has its status and end time."""
        (alert,) = parse(fixture("alertmanager_resolved"), "alertmanager")
        assert alert.status == "resolved"
        assert alert.ends_at == datetime(2026, 11, 27, 13, 20, 26, 739266, tzinfo=UTC)

    def test_json_text_and_bytes(self) -> None:
        """The body can be given as JSON text or bytes, as a web framework hands it over."""
        text = (FIXTURES / "alertmanager.json").read_text(encoding="utf-8")
        assert parse(text, "alertmanager") == parse(text.encode(), "alertmanager")


class TestGrafana:
    def test_alerts(self) -> None:
        """Grafana's alerts read like Alertmanager's, with its value string kept."""
        firing, resolved = parse(fixture("grafana"), "grafana")
        assert firing.title == "Memory above 90% in zone us-1"
        assert firing.starts_at == datetime(2026, 11, 27, 12, 51, 3, 157076, tzinfo=UTC)
        assert "var='B'" in firing.annotations["valueString"]
        assert firing.group_key == '{}:{alertname="High memory usage"}'
        assert resolved.status == "resolved"
        assert resolved.title == "High CPU usage"
        assert resolved.url == "https://grafana.example.org/alerting/grafana/d4e5f6/view"


class TestPagerDuty:
    def test_trigger(self) -> None:
        """A trigger's dedup_key is the fingerprint; its payload gives title, labels and hint."""
        (alert,) = parse(fixture("pagerduty_trigger"), "pagerduty")
        assert alert.fingerprint == "disk-prod-datapipe03"
        assert alert.status == "firing"
        assert alert.title == "DISK at 99% on machine prod-datapipe03.example.com"
        assert alert.severity == "critical"
        assert alert.labels == {
            "source": "prod-datapipe03.example.com",
            "component": "mysql",
            "group": "prod-datapipe",
            "class": "disk",
        }
        assert alert.annotations["load avg"] == "0.75"
        assert alert.starts_at == datetime(2026, 11, 27, 13, 42, 58, 315000, tzinfo=UTC)
        assert alert.url == "https://monitoring.example.org"

    @pytest.mark.parametrize(
        ("name", "status"),
        [("pagerduty_acknowledge", "acknowledged"), ("pagerduty_resolve", "resolved")],
    )
    def test_acknowledge_and_resolve(self, name: str, status: str) -> None:
        """Acknowledge and resolve events need only the dedup_key."""
        (alert,) = parse(fixture(name), "pagerduty")
        assert (alert.fingerprint, alert.status) == ("disk-prod-datapipe03", status)


class TestDatadog:
    def test_triggered(self) -> None:
        """The documented template: aggregation key, title without prefixes, tags as labels."""
        (alert,) = parse(fixture("datadog_triggered"), "datadog")
        assert alert.fingerprint == "9bd4ac313a4d1e8fae2482df7b77628"
        assert alert.status == "firing"
        assert alert.title == "Search latency p99 above 2s"
        assert alert.severity == "p2"
        assert alert.labels["team"] == "discovery"
        assert alert.labels["monitor"] == "true"
        assert alert.starts_at == datetime(2026, 11, 27, 13, 50, tzinfo=UTC)
        assert alert.annotations["alert_id"] == "123456"

    def test_recovered(self) -> None:
        """Recovered resolves."""
        (alert,) = parse(fixture("datadog_recovered"), "datadog")
        assert alert.status == "resolved"


class TestGeneric:
    def test_alert(self) -> None:
        """The generic JSON's fields map one to one."""
        (alert,) = parse(fixture("generic"), "generic")
        assert alert == Alert(
            source="generic",
            fingerprint="backup-db-7",
            status="firing",
            title="Nightly backup of db-7 failed",
            summary="pg_dump exited with status 1: could not connect",
            labels={"service": "db", "Host Name": "db-7"},
            starts_at=datetime(2026, 11, 27, 3, 0, tzinfo=UTC),
            severity="warning",
        )


def _without(payload: dict[str, Any], *path: str | int) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    target: Any = changed
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return changed


def _with(payload: dict[str, Any], value: object, *path: str | int) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    target: Any = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return changed


_AM = fixture("alertmanager")
_PD = fixture("pagerduty_trigger")
_DD = fixture("datadog_triggered")
_GENERIC = fixture("generic")

MALFORMED: list[tuple[str, object, str, str]] = [
    ("alertmanager", _with(_AM, "3", "version"), "version", 'version "4"'),
    ("alertmanager", _without(_AM, "alerts"), "alerts", "missing"),
    ("alertmanager", _with(_AM, [], "alerts"), "alerts", "empty"),
    ("alertmanager", _with(_AM, "nope", "alerts", 1), "alerts[1]", "object"),
    ("alertmanager", _without(_AM, "alerts", 1, "startsAt"), "alerts[1].startsAt", "missing"),
    (
        "alertmanager",
        _with(_AM, "yesterday", "alerts", 1, "startsAt"),
        "alerts[1].startsAt",
        "RFC 3339",
    ),
    (
        "alertmanager",
        _with(_AM, "2026-11-27T13:00:00", "alerts", 0, "startsAt"),
        "alerts[0].startsAt",
        "offset",
    ),
    ("alertmanager", _with(_AM, "burning", "alerts", 0, "status"), "alerts[0].status", "firing"),
    ("alertmanager", _with(_AM, 5, "alerts", 0, "labels", "job"), "alerts[0].labels.job", "text"),
    ("alertmanager", _with(_AM, [], "alerts", 0, "annotations"), "alerts[0].annotations", "object"),
    ("grafana", _with(fixture("grafana"), "one", "orgId"), "orgId", "whole number"),
    ("pagerduty", _with(_PD, "page", "event_action"), "event_action", "trigger"),
    ("pagerduty", _with(_PD, "fatal", "payload", "severity"), "payload.severity", "critical"),
    ("pagerduty", _without(_PD, "payload", "summary"), "payload.summary", "required"),
    ("pagerduty", _without(_PD, "routing_key"), "routing_key", "required"),
    ("pagerduty", _without(fixture("pagerduty_resolve"), "dedup_key"), "dedup_key", "resolve"),
    ("datadog", _with(_DD, "Exploded", "transition"), "transition", "Triggered"),
    (
        "datadog",
        _without(_without(_DD, "aggregation_key"), "alert_id"),
        "aggregation_key",
        "ALERT_ID",
    ),
    (
        "generic",
        _without(_GENERIC, "alerts", 0, "fingerprint"),
        "alerts[0].fingerprint",
        "required",
    ),
    (
        "generic",
        _with(_GENERIC, "2026-13-01", "alerts", 0, "started_at"),
        "alerts[0].started_at",
        "RFC",
    ),
    ("generic", [1, 2], "payload", "object"),
    ("generic", "{not json", "payload", "JSON"),
    ("generic", b"\xff\xfe", "payload", "UTF-8"),
]


class TestMalformed:
    @pytest.mark.parametrize(("source", "payload", "field", "says"), MALFORMED)
    def test_refused_naming_the_field(
        self, source: str, payload: object, field: str, says: str
    ) -> None:
        """A malformed payload raises ValidationError naming the field and what to send."""
        with pytest.raises(ValidationError) as info:
            parse(payload, source)
        assert info.value.field == field
        assert says in info.value.message

    def test_unknown_source(self) -> None:
        """An unknown format names the ones there are."""
        with pytest.raises(ValidationError) as info:
            parse({}, "nagios")
        assert info.value.field == "source"
        assert all(name in info.value.message for name in SOURCES)


class TestWords:
    @pytest.mark.parametrize(
        ("name", "title"),
        [
            ("CheckoutErrorRate", "Checkout error rate"),
            ("KubePodCrashLooping", "Kube pod crash looping"),
            ("HTTPRequestsFailing", "HTTP requests failing"),
            ("node_filesystem_full", "Node filesystem full"),
        ],
    )
    def test_readable_title(self, name: str, title: str) -> None:
        """Alert names read as words, never as an id."""
        assert readable_title(name) == title

    @pytest.mark.parametrize(
        ("raw", "key"),
        [
            ("Host Name", "host_name"),
            ("__alert_rule_uid__", "alert_rule_uid"),
            ("kubernetes.io/zone", "kubernetes.io/zone"),
            ("::", None),
        ],
    )
    def test_label_key(self, raw: str, key: str | None) -> None:
        """Label keys are made valid keys: lower-case, other characters to underscores."""
        assert label_key(raw) == key
