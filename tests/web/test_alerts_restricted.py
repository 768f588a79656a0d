"""Over HTTP, an incident restricted to others is never named to them.

An alert it holds still reaches it through the webhook, the other alerts of
the batch go on, and the answer to the sender has no id; a taken reference,
a link and a replayed declaration answer as if the incident did not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from served import ALERT_SECRET, ALERT_TOKEN, Service

TOKEN = {"Authorization": f"Bearer {ALERT_TOKEN}"}


def _alert(fingerprint: str, status: str = "firing", start: str = "2026-11-27T13:00:00Z") -> Any:
    return {
        "fingerprint": fingerprint,
        "status": status,
        "title": f"Disk full ({fingerprint})",
        "severity": "critical",
        "started_at": start,
    }


def _signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(ALERT_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Incidentflow-Signature": f"sha256={digest}", "Content-Type": "application/json"}


def _restricted_by_alert(service: Service) -> str:
    """An incident alert fp-1 declares, which alice then restricts to herself: its id."""
    first = service.client.post(
        "/api/alerts/generic", json={"alerts": [_alert("fp-1")]}, headers=TOKEN
    )
    assert first.status_code == 200, first.text
    [incident_id] = first.json()["incident_ids"]
    restricted = service.post(f"/incidents/{incident_id}/restrict", json={"to": ["alice"]})
    assert restricted.status_code == 200, restricted.text
    return str(incident_id)


def _secret(service: Service, **extra: Any) -> str:
    """An incident alice declares restricted to herself: its id."""
    body = {"title": "Secret zebra breach", "severity": "P1", "commander": "alice", **extra}
    answer = service.post("/incidents", json={**body, "restricted_to": ["alice"]})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


class TestAlertsToAHiddenIncident:
    def test_the_batch_goes_through_and_names_no_hidden_incident(self, service: Service) -> None:
        """fp-1 again with fp-2: 200, fp-1 attached with no id, fp-2 declared, evidence kept."""
        secret = _restricted_by_alert(service)
        before = len(service.flow.get(secret).evidence)
        batch = {"alerts": [_alert("fp-1", start="2026-11-27T13:30:00Z"), _alert("fp-2")]}
        answer = service.client.post("/api/alerts/generic", json=batch, headers=TOKEN)
        assert answer.status_code == 200, answer.text
        assert secret not in answer.text
        first, second = answer.json()["outcomes"]
        assert (first["action"], first["incident_id"], first["fingerprint"]) == (
            "attached",
            None,
            "fp-1",
        )
        assert (second["action"], second["fingerprint"]) == ("declared", "fp-2")
        assert answer.json()["incident_ids"] == [second["incident_id"]]
        evidence = service.flow.get(secret).evidence
        assert len(evidence) == before + 1
        assert evidence[-1].actor == "alertmanager"

    def test_a_signed_resolved_alert_is_noted_without_the_id(self, service: Service) -> None:
        """Admitted by HMAC signature, the resolved alert is noted on it; the answer has no id."""
        secret = _restricted_by_alert(service)
        body = json.dumps({"alerts": [_alert("fp-1", "resolved")]}).encode()
        answer = service.client.post("/api/alerts/generic", content=body, headers=_signed(body))
        assert answer.status_code == 200, answer.text
        assert secret not in answer.text
        assert [(o["action"], o["incident_id"]) for o in answer.json()["outcomes"]] == [
            ("noted_resolved", None)
        ]
        assert "[resolved]" in service.flow.get(secret).evidence[-1].content


class TestRefusalsNameNoHiddenIncident:
    def test_a_taken_reference_answers_409_without_a_holder(self, service: Service) -> None:
        """bob declaring with the hidden incident's reference: 409, no ``holder``, no id."""
        secret = _secret(service, references={"jira": "SEC-42"})
        probe = {"title": "Probe", "severity": "P3", "commander": "bob"}
        answer = service.post("/incidents", "bob", json={**probe, "references": {"jira": "SEC-42"}})
        assert (answer.status_code, answer.json()["error"]) == (409, "ReferenceTaken")
        assert "holder" not in answer.json()
        assert secret not in answer.text
        inside = service.post("/incidents", json={**probe, "references": {"jira": "SEC-42"}})
        assert (inside.status_code, inside.json()["holder"]) == (409, secret)

    def test_a_hidden_link_target_answers_as_a_missing_one(self, service: Service) -> None:
        """Linking to a hidden id and to an id nobody declared: the same 422 and body."""
        secret = _secret(service)
        here = service.post(
            "/incidents", "bob", json={"title": "Public", "severity": "P3", "commander": "bob"}
        )
        ghost = secret.replace("zebra", "yak-x")

        def link(other: str) -> tuple[int, str]:
            answer = service.post(
                f"/incidents/{here.json()['id']}/link",
                "bob",
                json={"kind": "related_to", "other": other},
            )
            return answer.status_code, answer.text.replace(other, "<other>")

        assert link(secret) == link(ghost)
        assert link(ghost)[0] == 422

    def test_a_replayed_declaration_shows_nothing(self, service: Service) -> None:
        """bob replaying alice's Idempotency-Key: 422 IdempotencyConflict, never the snapshot."""
        body = {"title": "Secret zebra breach", "severity": "P1", "commander": "alice"}
        key = {"Idempotency-Key": "pager-4711"}
        first = service.post("/incidents", json={**body, "restricted_to": ["alice"]}, headers=key)
        assert first.status_code == 201, first.text
        replay = service.post(
            "/incidents", "bob", json={**body, "restricted_to": ["alice"]}, headers=key
        )
        assert (replay.status_code, replay.json()["error"]) == (422, "IdempotencyConflict")
        assert first.json()["id"] not in replay.text
