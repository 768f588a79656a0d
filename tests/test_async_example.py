"""examples/fastapi_app.py: a FastAPI host driving incidents through AsyncIncidentFlow."""

from __future__ import annotations

import importlib.util
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from incidentflow import AsyncIncidentFlow
from incidentflow.testing import RecordingNotifier

pytest.importorskip("fastapi", reason="the FastAPI example needs the dev extra (fastapi)")
with warnings.catch_warnings():
    # Starlette >= 1.10 asks for httpx2 and warns (an error here) when it finds httpx.
    warnings.filterwarnings("ignore", message=".*install `httpx2`")
    from fastapi.testclient import TestClient

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi_app.py"
ALICE = {"X-Actor": "alice"}


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_app_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def recorder() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def client(tmp_path: Path, recorder: RecordingNotifier) -> Iterator[TestClient]:
    """The example app on a SQLite store under tmp_path, its lifespan running."""
    url = f"sqlite:///{tmp_path / 'incidents.db'}"

    def open_flow() -> Any:
        return AsyncIncidentFlow.open(
            url, incidents_dir=tmp_path / "incidents", notifiers=[recorder]
        )

    app = load_example().create_app(open_flow)
    with TestClient(app) as test_client:
        yield test_client


def declare(client: TestClient, **headers: str) -> Any:
    body = {"title": "Checkout returns 500", "severity": "P1", "commander": "alice"}
    return client.post("/incidents", json=body, headers=ALICE | headers)


class TestFastAPIExample:
    def test_declare_and_drive_to_contained(self, client: TestClient, tmp_path: Path) -> None:
        """Declared over HTTP, triaged, given evidence and answers, then contained."""
        created = declare(client)
        assert created.status_code == 201
        incident_id = created.json()["incident"]["id"]
        steps: list[tuple[str, dict[str, Any]]] = [
            ("start_triage", {}),
            ("add_evidence", {"source": "logs", "content": "POST /orders -> 500"}),
            ("answer_triage", {"question": "symptom", "answer": "every checkout fails"}),
            ("answer_triage", {"question": "started_at", "answer": "14:02 UTC"}),
            ("answer_triage", {"question": "scope", "answer": "all customers"}),
            ("record_containment", {"description": "rolled back to release 40"}),
            ("contain", {}),
        ]
        for command, args in steps:
            answer = client.post(f"/incidents/{incident_id}/{command}", json=args, headers=ALICE)
            assert answer.status_code == 200, answer.json()
        shown = client.get(f"/incidents/{incident_id}").json()
        assert (shown["state"], shown["version"]) == ("contained", 8)
        assert (tmp_path / "incidents" / f"{incident_id}.md").exists()
        listed = client.get("/incidents", params={"open_only": True}).json()
        assert [i["id"] for i in listed] == [incident_id]

    def test_a_retried_declare_is_a_replay(self, client: TestClient) -> None:
        """The same Idempotency-Key answers 200 with ``replayed`` and the same incident."""
        first = declare(client, **{"Idempotency-Key": "page-42"})
        again = declare(client, **{"Idempotency-Key": "page-42"})
        assert (first.status_code, again.status_code) == (201, 200)
        assert (first.json()["replayed"], again.json()["replayed"]) == (False, True)
        assert again.json()["incident"] == first.json()["incident"]
        assert len(client.get("/incidents").json()) == 1

    def test_refusals_come_back_with_their_reasons(self, client: TestClient) -> None:
        """A refused step is 409 with every reason code; a stale If-Match is 409 too."""
        incident_id = declare(client).json()["incident"]["id"]
        client.post(f"/incidents/{incident_id}/start_triage", headers=ALICE)
        verdict = client.get(f"/incidents/{incident_id}/can/contain").json()
        assert verdict["allowed"] is False
        refused = client.post(f"/incidents/{incident_id}/contain", headers=ALICE)
        assert refused.status_code == 409
        codes = {r["code"] for r in refused.json()["reasons"]}
        assert {"evidence.missing", "containment.missing"} <= codes
        assert codes == {r["code"] for r in verdict["reasons"]}
        stale = client.post(
            f"/incidents/{incident_id}/add_note",
            json={"text": "hi"},
            headers=ALICE | {"If-Match": "1"},
        )
        assert (stale.status_code, stale.json()["error"]) == (409, "ConcurrencyConflict")

    def test_bad_input_is_named(self, client: TestClient) -> None:
        """Unknown incidents are 404; a bad value is 422 naming the field."""
        assert client.get("/incidents/INC-2026-01-01-nothing").status_code == 404
        bad = client.post(
            "/incidents",
            json={"title": "x", "severity": "P9", "commander": "alice"},
            headers=ALICE,
        )
        assert bad.status_code == 422
        assert "severity" in bad.json()["message"]
        incident_id = declare(client).json()["incident"]["id"]
        smuggled = client.post(
            f"/incidents/{incident_id}/add_note", json={"text": "x", "actor": "eve"}, headers=ALICE
        )
        assert smuggled.status_code == 422

    def test_the_dispatcher_task_delivers_notifications(
        self, client: TestClient, recorder: RecordingNotifier
    ) -> None:
        """The lifespan's dispatcher task delivers what the requests committed."""
        declare(client)
        for _ in range(500):
            if recorder.types():
                break
            time.sleep(0.01)
        assert recorder.types() == ["declared"]
