"""Which incident an alert belongs to: sources and key kinds apart, re-triggers, late resolves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incidentflow import IncidentFlow
from incidentflow.alerts import AlertRules, parse
from incidentflow.alerts._alert import evidence_text
from incidentflow.testing import FrozenClock

START = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def new_flow() -> tuple[IncidentFlow, FrozenClock]:
    clock = FrozenClock(START)
    return IncidentFlow.in_memory(clock=clock), clock


def alertmanager(
    fingerprint: str,
    status: str = "firing",
    start: str = "2026-11-27T13:52:00Z",
    group: str = "g",
    name: str = "DiskFull",
) -> dict[str, Any]:
    alert = {
        "status": status,
        "labels": {"alertname": name},
        "annotations": {},
        "startsAt": start,
        "fingerprint": fingerprint,
    }
    return {"version": "4", "groupKey": group, "status": status, "receiver": "r", "alerts": [alert]}


def pagerduty(dedup_key: str, action: str = "trigger") -> dict[str, Any]:
    event: dict[str, Any] = {"routing_key": "k", "event_action": action, "dedup_key": dedup_key}
    if action == "trigger":
        event["payload"] = {
            "summary": "Disk full on db-7",
            "source": "db-7",
            "severity": "critical",
        }
    return event


def datadog(key: str, transition: str = "Triggered") -> dict[str, Any]:
    """A Datadog alert sent without ``date``: no start time."""
    return {
        "aggregation_key": key,
        "title": f"[{transition}] Disk full on search-7",
        "transition": transition,
        "alert_id": "99",
    }


def generic(fingerprint: str, status: str = "firing") -> dict[str, Any]:
    alert = {"fingerprint": fingerprint, "status": status, "title": "Backup failed"}
    return {"alerts": [{**alert, "started_at": "2026-11-27T13:00:00Z"}]}


def outcome(flow: IncidentFlow, payload: dict[str, Any], source: str, **kw: Any) -> tuple[Any, ...]:
    (only,) = flow.ingest(payload, source=source, **kw).outcomes
    return only.action, only.incident_id, only.replayed


def statuses(flow: IncidentFlow, incident_id: str) -> list[str]:
    return [e.content.split("]")[0].lstrip("[") for e in flow.get(incident_id).evidence]


class TestSourcesAndKeyKindsApart:
    def test_same_key_from_another_source_never_matches(self) -> None:
        """A Datadog or PagerDuty alert whose key is an Alertmanager fingerprint gets its own."""
        flow, _ = new_flow()
        _, checkout, _ = outcome(
            flow, alertmanager("abc123", name="CheckoutErrorRate"), "alertmanager"
        )
        action, disk, _ = outcome(flow, datadog("abc123"), "datadog")
        assert action == "declared"
        assert disk != checkout
        assert outcome(flow, pagerduty("abc123", "resolve"), "pagerduty")[0] == "ignored"
        assert len(flow.get(checkout or "").evidence) == 1

    def test_fingerprint_never_matches_a_group_key(self) -> None:
        """With group_by="group", a fingerprint equal to another alert's group key is apart."""
        flow, _ = new_flow()
        rules = AlertRules(group_by="group")
        _, db, _ = outcome(flow, alertmanager("fp1", group="team-db"), "alertmanager", rules=rules)
        action, other, _ = outcome(flow, generic("team-db"), "generic", rules=rules)
        assert action == "declared"
        assert other != db

    def test_find_by_the_namespaced_key(self) -> None:
        """``flow.find("alert", "source:kind:key")`` finds the incident the alert declared."""
        flow, _ = new_flow()
        _, incident_id, _ = outcome(flow, pagerduty("disk-db7"), "pagerduty")
        assert flow.find("alert", "pagerduty:fp:disk-db7").id == incident_id  # type: ignore[union-attr]
        [alert] = parse(pagerduty("disk-db7"), "pagerduty")
        assert alert.reference() == "pagerduty:fp:disk-db7"

    @settings(max_examples=40, deadline=None)
    @given(
        st.lists(
            st.tuples(st.sampled_from(["pagerduty", "datadog"]), st.booleans()),
            min_size=1,
            max_size=12,
        )
    )
    def test_two_sources_interleaved_never_share_an_incident(
        self, events: list[tuple[str, bool]]
    ) -> None:
        """Any interleaving of triggers and resolves from two sources keeps each on its own."""
        flow, clock = new_flow()
        for source, firing in events:
            clock.advance(timedelta(minutes=1))
            if source == "pagerduty":
                flow.ingest(pagerduty("shared", "trigger" if firing else "resolve"), source=source)
            else:
                flow.ingest(
                    datadog("shared", "Triggered" if firing else "Recovered"), source=source
                )
        for incident in flow.list():
            assert len({e.source for e in incident.evidence}) == 1, incident.id


class TestLegacyReferences:
    """Incidents declared before references were namespaced hold the bare key."""

    def legacy(self, flow: IncidentFlow, source: str = "alertmanager") -> str:
        [alert] = parse(alertmanager("abc123"), "alertmanager")
        incident = flow.declare(
            "Disk full", severity="P2", commander="al", references={"alert": "abc123"}, actor="al"
        )
        if source:
            flow.add_evidence(
                incident.id, source=source, content=evidence_text(alert, "abc123"), actor="alerts"
            )
        return incident.id

    def test_still_matched_by_the_source_that_declared_it(self) -> None:
        """The declaring source still attaches and resolves there; another source does not."""
        flow, _ = new_flow()
        old = self.legacy(flow)
        later = alertmanager("abc123", start="2026-11-27T13:55:00Z")
        assert outcome(flow, later, "alertmanager")[:2] == ("attached", old)
        assert outcome(flow, datadog("abc123"), "datadog")[0] == "declared"
        assert outcome(flow, pagerduty("abc123", "resolve"), "pagerduty")[0] == "ignored"
        assert statuses(flow, old) == ["firing", "firing"]

    def test_without_alert_evidence_it_is_not_matched(self) -> None:
        """A bare reference set by hand names no source: ingest declares a new incident."""
        flow, _ = new_flow()
        old = self.legacy(flow, source="")
        action, incident_id, _ = outcome(flow, alertmanager("abc123"), "alertmanager")
        assert action == "declared"
        assert incident_id != old


class TestRetriggersWithoutStart:
    """PagerDuty and Datadog without ``date`` send no start time."""

    SENDERS: ClassVar[list[tuple[str, Any]]] = [
        ("pagerduty", lambda f: pagerduty("disk", "trigger" if f else "resolve")),
        ("datadog", lambda f: datadog("disk", "Triggered" if f else "Recovered")),
    ]

    @pytest.mark.parametrize(("source", "event"), SENDERS)
    def test_trigger_after_resolve_is_recorded(self, source: str, event: Any) -> None:
        """trigger, resolve, trigger: the third is on the incident; resends record nothing."""
        flow, clock = new_flow()
        _, incident_id, _ = outcome(flow, event(True), source)
        assert outcome(flow, event(False), source) == ("noted_resolved", incident_id, False)
        assert outcome(flow, event(False), source)[2]  # the resolve again
        clock.advance(timedelta(minutes=10))
        assert outcome(flow, event(True), source) == ("attached", incident_id, False)
        assert outcome(flow, event(True), source)[2]  # the trigger again
        assert statuses(flow, incident_id or "") == ["firing", "resolved", "firing"]

    @pytest.mark.parametrize(("source", "event"), SENDERS)
    def test_trigger_after_close_declares_anew(self, source: str, event: Any) -> None:
        """Once its incident is closed, the same trigger declares a new incident, once."""
        flow, clock = new_flow()
        seen = []
        for _ in range(3):
            action, incident_id, replayed = outcome(flow, event(True), source)
            assert (action, replayed) == ("declared", False)
            assert outcome(flow, event(True), source) == ("declared", incident_id, True)
            seen.append(incident_id)
            flow.dismiss(incident_id or "", reason="false alarm", actor="alice")
            clock.advance(timedelta(days=3))
        assert len(set(seen)) == 3
        assert all(statuses(flow, i or "") == ["firing"] for i in seen)

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.sampled_from(["trigger", "resolve", "dismiss"]), min_size=1, max_size=12))
    def test_each_trigger_is_the_latest_word(self, steps: list[str]) -> None:
        """After any trigger the open incident's last evidence fires; each resend is a no-op."""
        flow, clock = new_flow()
        for step in steps:
            clock.advance(timedelta(minutes=1))
            holder = flow.find("alert", "pagerduty:fp:disk")
            if step == "dismiss":
                if holder is not None and holder.is_open:
                    flow.dismiss(holder.id, reason="false alarm", actor="alice")
                continue
            flow.ingest(pagerduty("disk", step), source="pagerduty")
            before = {i.id: i.version for i in flow.list()}
            again = flow.ingest(pagerduty("disk", step), source="pagerduty")
            assert all(o.replayed or o.action == "ignored" for o in again)
            assert {i.id: i.version for i in flow.list()} == before
            if step == "trigger":
                holder = flow.find("alert", "pagerduty:fp:disk")
                assert holder is not None
                assert statuses(flow, holder.id)[-1] == "firing"


class TestLateResolve:
    def test_resolve_of_an_earlier_firing_is_not_noted_on_the_newer_incident(self) -> None:
        """A resolved alert that started before the holder's first firing is ignored."""
        flow, clock = new_flow()
        _, first, _ = outcome(
            flow, alertmanager("fpX", start="2026-11-27T13:00:00Z"), "alertmanager"
        )
        flow.dismiss(first or "", reason="false alarm", actor="alice")
        clock.advance(timedelta(hours=1))
        _, newer, _ = outcome(
            flow, alertmanager("fpX", start="2026-11-27T14:30:00Z"), "alertmanager"
        )
        late = alertmanager("fpX", status="resolved", start="2026-11-27T13:00:00Z")
        assert outcome(flow, late, "alertmanager") == ("ignored", None, False)
        assert statuses(flow, newer or "") == ["firing"]
        own = alertmanager("fpX", status="resolved", start="2026-11-27T14:30:00Z")
        assert outcome(flow, own, "alertmanager") == ("noted_resolved", newer, False)


class TestStormFiles:
    """A payload of many alerts writes each incident's files once, after its last alert."""

    def test_one_write_per_incident_per_payload(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import incidentflow.render.files as files

        written: list[tuple[str, int]] = []
        original = files.write_files

        def counting(incident: Any, *args: Any, **kwargs: Any) -> Any:
            written.append((incident.id, incident.version))
            return original(incident, *args, **kwargs)

        monkeypatch.setattr(files, "write_files", counting)
        flow = IncidentFlow.in_memory(incidents_dir=tmp_path / "incidents")
        alerts = [
            {
                "fingerprint": "fp-storm",
                "status": "firing",
                "title": "Disk full on db-7",
                "started_at": f"2026-11-27T13:{minute:02d}:00Z",
            }
            for minute in range(40)
        ]
        report = flow.ingest({"alerts": alerts}, source="generic")
        [incident_id] = {o.incident_id for o in report}
        final = flow.get(incident_id)
        assert final.version > 40  # every alert was recorded
        assert written == [(incident_id, final.version)]
        text = flow.incident_path(incident_id).read_text()  # type: ignore[union-attr]
        assert f"version {final.version} " in text
