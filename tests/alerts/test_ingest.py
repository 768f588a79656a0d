"""flow.ingest: attach or declare per alert, never twice, never resolving on its own."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import STORE_KINDS, advance_to, store_flow
from incidentflow import ConfigError, IncidentFlow, Policy, State, ValidationError
from incidentflow.alerts import AlertRules, SeverityRule
from incidentflow.config._alerts import alert_rules_from_toml
from incidentflow.stores import SQLiteStore
from incidentflow.testing import FrozenClock

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHEAP = ("memory", "sqlite")


def fixture(name: str) -> dict[str, Any]:
    """The JSON body of a fixture file."""
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def generic(*alerts: dict[str, Any]) -> dict[str, Any]:
    """A generic payload of firing alerts, each with defaults for what it does not say."""
    base = {"status": "firing", "severity": "warning", "started_at": "2026-11-27T13:00:00Z"}
    return {"alerts": [{**base, "title": f"Alert {a['fingerprint']}", **a} for a in alerts]}


def versions(flow: IncidentFlow) -> dict[str, int]:
    """Every incident's version: what a no-op must leave alone."""
    return {i.id: i.version for i in flow.list()}


class TestDeclare:
    @pytest.mark.parametrize("kind", STORE_KINDS)
    def test_alertmanager_group_declares_one_incident_per_fingerprint(
        self, kind: str, tmp_path: Path, clock: FrozenClock
    ) -> None:
        """Two firing alerts of one group declare two incidents, each with what it needs."""
        with store_flow(kind, tmp_path, clock) as flow:
            report = flow.ingest(fixture("alertmanager"), source="alertmanager")
            assert [o.action for o in report] == ["declared", "declared"]
            assert [o.replayed for o in report] == [False, False]
            first = flow.get(report.outcomes[0].incident_id or "")
            assert first.title == "Checkout error rate above 5%"
            assert first.id.endswith("-checkout-error-rate-above-5")
            assert first.severity.value == "P1"
            assert first.commander == "alerts"
            assert {(r.kind, r.value) for r in first.references} == {
                ("alert", "alertmanager:fp:1a30ba71cca2921f")
            }
            assert first.labels["service"] == "checkout"
            assert first.labels["instance"] == "checkout-7f9c:8080"
            assert first.labels["name"] == "http_errors"  # __name__, made a valid key
            assert first.detection is not None
            assert first.detection.method == "alert"
            assert first.detection.first_occurred_at == report.outcomes[0].alert.starts_at
            assert [e.source for e in first.evidence] == ["alertmanager"]
            assert "7.3% of POST /orders" in first.evidence[0].content
            second = flow.get(report.outcomes[1].incident_id or "")
            assert second.title == "Checkout error rate"

    @pytest.mark.parametrize("kind", CHEAP)
    def test_each_format_declares(self, kind: str, tmp_path: Path, clock: FrozenClock) -> None:
        """Grafana, PagerDuty, Datadog and the generic JSON each declare with a mapped severity."""
        with store_flow(kind, tmp_path, clock) as flow:
            grafana = flow.ingest(fixture("grafana"), source="grafana")
            assert [o.action for o in grafana] == ["declared", "ignored"]
            pagerduty = flow.ingest(fixture("pagerduty_trigger"), source="pagerduty")
            datadog = flow.ingest(fixture("datadog_triggered"), source="datadog")
            plain = flow.ingest(fixture("generic"), source="generic")
            severities = [
                flow.get(r.outcomes[0].incident_id or "").severity.value
                for r in (grafana, pagerduty, datadog, plain)
            ]
            assert severities == ["P4", "P1", "P2", "P3"]
            datadog_incident = flow.get(datadog.outcomes[0].incident_id or "")
            assert datadog_incident.title == "Search latency p99 above 2s"
            assert flow.get(plain.outcomes[0].incident_id or "").labels["host_name"] == "db-7"


class TestDedupe:
    @pytest.mark.parametrize("kind", CHEAP)
    def test_within_a_batch(self, kind: str, tmp_path: Path, clock: FrozenClock) -> None:
        """Alerts with one fingerprint in one payload make one incident; the rest attach."""
        with store_flow(kind, tmp_path, clock) as flow:
            payload = generic(
                {"fingerprint": "fp-1"},
                {"fingerprint": "fp-1", "started_at": "2026-11-27T13:05:00Z"},
                {"fingerprint": "fp-1"},  # the first one again
            )
            report = flow.ingest(payload, source="generic")
            assert [(o.action, o.replayed) for o in report] == [
                ("declared", False),
                ("attached", False),
                ("declared", True),
            ]
            (incident,) = flow.list()
            assert len(incident.evidence) == 2

    @pytest.mark.parametrize("kind", CHEAP)
    def test_across_batches(self, kind: str, tmp_path: Path, clock: FrozenClock) -> None:
        """The same payload sent again records nothing and says every alert was a replay."""
        with store_flow(kind, tmp_path, clock) as flow:
            flow.ingest(fixture("alertmanager"), source="alertmanager")
            before = versions(flow)
            clock.advance(timedelta(minutes=5))
            again = flow.ingest(fixture("alertmanager"), source="alertmanager")
            assert [(o.action, o.replayed) for o in again] == [("declared", True)] * 2
            assert versions(flow) == before

    def test_after_reopening_sqlite(self, tmp_path: Path, clock: FrozenClock) -> None:
        """Re-sent alerts change nothing after the flow is closed and opened again."""
        path = tmp_path / "incidents.db"
        with IncidentFlow(SQLiteStore(path), clock=clock) as flow:
            flow.ingest(fixture("alertmanager"), source="alertmanager")
            before = versions(flow)
        with IncidentFlow(SQLiteStore(path), clock=clock) as flow:
            again = flow.ingest(fixture("alertmanager"), source="alertmanager")
            later = flow.ingest(
                generic({"fingerprint": "1a30ba71cca2921f", "started_at": "2026-11-27T13:30:00Z"}),
                source="generic",
            )
            assert all(o.replayed for o in again)
            assert later.outcomes[0].action == "declared"  # another source, same fingerprint
            assert versions(flow) == {**before, later.outcomes[0].incident_id: 3}

    @pytest.mark.parametrize("kind", CHEAP)
    def test_resent_with_other_text_keeps_the_first(
        self, kind: str, tmp_path: Path, clock: FrozenClock
    ) -> None:
        """An alert re-sent with a changed description (a templated value) is not a new one."""
        with store_flow(kind, tmp_path, clock) as flow:
            flow.ingest(generic({"fingerprint": "fp-1", "description": "7.3%"}), source="generic")
            before = versions(flow)
            again = flow.ingest(
                generic({"fingerprint": "fp-1", "description": "8.1%"}), source="generic"
            )
            assert again.outcomes[0].replayed
            assert versions(flow) == before

    @pytest.mark.parametrize("kind", CHEAP)
    def test_by_group_key(self, kind: str, tmp_path: Path, clock: FrozenClock) -> None:
        """With group_by = "group", one Alertmanager group makes one incident."""
        with store_flow(kind, tmp_path, clock) as flow:
            rules = AlertRules(group_by="group")
            report = flow.ingest(fixture("alertmanager"), source="alertmanager", rules=rules)
            assert [o.action for o in report] == ["declared", "attached"]
            (incident,) = flow.list()
            assert len(incident.evidence) == 2
            assert [r.value for r in incident.references] == [
                f"alertmanager:group:{report.outcomes[0].alert.group_key}"
            ]

    @pytest.mark.parametrize("kind", CHEAP)
    def test_after_close_a_new_firing_declares_again(
        self, kind: str, tmp_path: Path, clock: FrozenClock
    ) -> None:
        """Once its incident is closed, the fingerprint firing anew declares a new incident."""
        with store_flow(kind, tmp_path, clock) as flow:
            first = flow.ingest(generic({"fingerprint": "fp-1"}), source="generic")
            first_id = first.outcomes[0].incident_id or ""
            flow.dismiss(first_id, reason="false alarm", actor="alice")
            again = flow.ingest(generic({"fingerprint": "fp-1"}), source="generic")
            assert again.outcomes[0].replayed  # the same alert: still nothing new
            later = flow.ingest(
                generic({"fingerprint": "fp-1", "started_at": "2026-11-27T13:40:00Z"}),
                source="generic",
            )
            assert later.outcomes[0].action == "declared"
            assert later.outcomes[0].incident_id != first_id
            assert flow.find("alert", "generic:fp:fp-1").id == later.outcomes[0].incident_id  # type: ignore[union-attr]

    def test_race_with_another_ingester_attaches(
        self, flow: IncidentFlow, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """When another ingester declares first (ReferenceTaken), the alert goes to its incident."""
        theirs = flow.declare(
            "Checkout down",
            severity="P1",
            commander="al",
            references={"alert": "generic:fp:fp-1"},
            actor="al",
        )
        monkeypatch.setattr(flow, "_holder", lambda reference: None)  # looked before they wrote
        report = flow.ingest(generic({"fingerprint": "fp-1"}), source="generic")
        assert (report.outcomes[0].action, report.outcomes[0].incident_id) == (
            "attached",
            theirs.id,
        )
        assert len(flow.list()) == 1
        assert len(flow.get(theirs.id).evidence) == 1


class TestResolved:
    @pytest.mark.parametrize("kind", CHEAP)
    def test_resolved_alert_never_resolves(
        self, kind: str, tmp_path: Path, clock: FrozenClock
    ) -> None:
        """A resolved alert is evidence on its open incident, which stays where it was."""
        with store_flow(kind, tmp_path, clock) as flow:
            declared = flow.ingest(fixture("alertmanager"), source="alertmanager")
            incident_id = declared.outcomes[0].incident_id or ""
            report = flow.ingest(fixture("alertmanager_resolved"), source="alertmanager")
            assert [(o.action, o.incident_id) for o in report] == [("noted_resolved", incident_id)]
            incident = flow.get(incident_id)
            assert incident.state is State.DECLARED
            assert "[resolved]" in incident.evidence[-1].content
            again = flow.ingest(fixture("alertmanager_resolved"), source="alertmanager")
            assert again.outcomes[0].replayed

    def test_resolved_alert_nobody_holds_is_ignored(self, flow: IncidentFlow) -> None:
        """A resolved alert no open incident holds writes nothing."""
        report = flow.ingest(fixture("alertmanager_resolved"), source="alertmanager")
        assert [(o.action, o.incident_id) for o in report] == [("ignored", None)]
        assert flow.list() == []

    def test_pagerduty_lifecycle(self, flow: IncidentFlow) -> None:
        """Trigger declares, acknowledge and resolve are recorded on it; it stays open."""
        trigger = flow.ingest(fixture("pagerduty_trigger"), source="pagerduty")
        ack = flow.ingest(fixture("pagerduty_acknowledge"), source="pagerduty")
        resolve = flow.ingest(fixture("pagerduty_resolve"), source="pagerduty")
        incident_id = trigger.outcomes[0].incident_id
        assert [r.outcomes[0].action for r in (trigger, ack, resolve)] == [
            "declared",
            "attached",
            "noted_resolved",
        ]
        assert {ack.outcomes[0].incident_id, resolve.outcomes[0].incident_id} == {incident_id}
        assert flow.get(incident_id or "").is_open

    def test_resolved_after_fixed_leaves_the_confirmation_rule(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Even on a fixed incident, a resolved alert is evidence; resolve still needs a user."""
        declared = flow.ingest(fixture("alertmanager"), source="alertmanager")
        incident_id = declared.outcomes[0].incident_id or ""
        advance_to(flow, clock, incident_id, "fixed")
        flow.ingest(fixture("alertmanager_resolved"), source="alertmanager")
        assert flow.get(incident_id).state is State.FIXED


class TestRules:
    def test_severity_rules_from_toml(self, flow: IncidentFlow) -> None:
        """[[alerts.severity]] rules match labels in order; the first match wins."""
        rules = alert_rules_from_toml(
            "team.toml",
            text="""
            [[alerts.severity]]
            match = { service = "db", severity = ["warning", "info"] }
            severity = "P2"
            [[alerts.severity]]
            match = { service = "db" }
            severity = "P1"
            """,
        )
        report = flow.ingest(
            generic(
                {"fingerprint": "a", "labels": {"service": "db"}},
                {"fingerprint": "b", "labels": {"service": "db"}, "severity": "critical"},
                {"fingerprint": "c", "labels": {"service": "web"}, "severity": "high"},
                {"fingerprint": "d", "labels": {"service": "web"}, "severity": "page"},
            ),
            source="generic",
            rules=rules,
        )
        severities = [flow.get(o.incident_id or "").severity.value for o in report]
        assert severities == ["P2", "P1", "P2", "P4"]

    def test_flow_default_rules(self, flow: IncidentFlow) -> None:
        """flow.alert_rules is used when ingest is given none; its commander commands."""
        flow.alert_rules = AlertRules(severity=[SeverityRule({}, "P2")], commander="oncall")
        report = flow.ingest(generic({"fingerprint": "a"}), source="generic", actor="am-bot")
        incident = flow.get(report.outcomes[0].incident_id or "")
        assert (incident.severity.value, incident.commander, incident.declared_by) == (
            "P2",
            "oncall",
            "am-bot",
        )

    def test_labels_the_policy_refuses_are_reported(self, clock: FrozenClock) -> None:
        """Labels the policy refuses are left out, and the report says which and why."""
        flow = IncidentFlow.in_memory(clock=clock, policy=Policy(labels={"service": ["db"]}))
        report = flow.ingest(fixture("generic"), source="generic")
        (outcome,) = report
        assert flow.get(outcome.incident_id or "").labels == {"service": "db"}
        assert "Host Name" in outcome.detail
        assert "labels left out" in outcome.detail

    def test_rules_must_be_rules(self, flow: IncidentFlow) -> None:
        """Anything but AlertRules as rules is a ConfigError."""
        with pytest.raises(ConfigError) as info:
            flow.ingest(fixture("generic"), source="generic", rules={"group_by": "group"})  # type: ignore[arg-type]
        assert info.value.key == "rules"


class TestAllOrNothing:
    @pytest.mark.parametrize("kind", CHEAP)
    def test_malformed_batch_writes_nothing(
        self, kind: str, tmp_path: Path, clock: FrozenClock
    ) -> None:
        """One bad alert refuses the whole payload before any incident is declared."""
        payload = copy.deepcopy(fixture("alertmanager"))
        payload["alerts"][1]["startsAt"] = "not a time"
        with store_flow(kind, tmp_path, clock) as flow:
            with pytest.raises(ValidationError) as info:
                flow.ingest(payload, source="alertmanager")
            assert info.value.field == "alerts[1].startsAt"
            assert flow.list() == []

    def test_bad_actor_writes_nothing(self, flow: IncidentFlow) -> None:
        """A bad actor is refused before anything is written."""
        with pytest.raises(ValidationError):
            flow.ingest(fixture("generic"), source="generic", actor="two\nlines")
        assert flow.list() == []


class TestReport:
    def test_counts_and_incidents(self, flow: IncidentFlow) -> None:
        """The report counts each action and lists the incidents it touched once each."""
        payload = generic(
            {"fingerprint": "a"}, {"fingerprint": "a", "started_at": "2026-11-27T13:01:00Z"}
        )
        payload["alerts"].append({**payload["alerts"][0], "fingerprint": "z", "status": "resolved"})
        report = flow.ingest(payload, source="generic")
        assert report.counts() == {
            "declared": 1,
            "attached": 1,
            "noted_resolved": 0,
            "ignored": 1,
            "replayed": 0,
        }
        assert len(report) == 3
        assert len(report.incident_ids) == 1
        assert report.declared[0].incident_id == report.incident_ids[0]
