"""The JSON API over a real uvicorn: every command, retries, If-Match, errors, reads."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from served import API_TOKEN, Service

from helpers import drive_to
from incidentflow import State
from incidentflow.commands import DEFINITIONS

# Every command a person runs, in an order one incident (A) and its neighbours accept.
_CYCLE: list[tuple[str, dict[str, Any]]] = [
    ("record_detection", {"method": "alert", "first_occurred_at": "2026-11-27T13:40Z"}),
    ("start_triage", {}),
    ("add_evidence", {"source": "journalctl", "content": "500s from the cart service"}),
    ("answer_triage", {"question": "symptom", "answer": "checkout returns 500"}),
    ("answer_triage", {"question": "started_at", "answer": "13:40 UTC"}),
    ("answer_triage", {"question": "scope", "answer": "every customer"}),
    ("record_containment", {"description": "rolled back", "taken_at": "2026-11-27T14:00Z"}),
    ("add_note", {"text": "rollback done"}),
    ("post_update", {"audience": "internal", "text": "contained soon", "next_update_in": 30}),
    ("assign_role", {"role": "scribe", "person": "carol"}),
    ("release_role", {"role": "scribe"}),
    ("set_labels", {"labels": {"service": "checkout"}}),
    ("add_reference", {"kind": "ticket", "value": "OPS-1"}),
    ("remove_reference", {"kind": "ticket", "value": "OPS-1"}),
    ("amend", {"item": "evidence:1", "value": "500s from cart", "reason": "typo"}),
    ("add_evidence", {"source": "grafana", "content": "a wrong graph"}),
    ("retract", {"item": "evidence:2", "reason": "wrong incident"}),
    ("reclassify", {"severity": "P2", "reason": "fewer users than thought"}),
    ("change_type", {"type": "performance", "reason": "it was slowness"}),
    ("assign_commander", {"commander": "bob"}),
    ("contain", {}),
    ("start_rca", {}),
    ("add_why", {"answer": "a config push skipped staging"}),
    ("set_root_cause", {"statement": "no staging gate", "process_gap": "no gate"}),
    ("record_fix", {"description": "gate", "test": "test_gate", "staging_verified": True}),
    ("record_deploy", {"ref": "v1.2.3", "deployed_at": "2026-11-27T14:00:00+00:00"}),
    ("mark_fixed", {}),
]
_CLOSE: list[tuple[str, dict[str, Any]]] = [
    ("confirm_by_user", {"user": "ursula", "comment": "works again"}),
    ("resolve", {}),
    ("add_action_item", {"description": "add a gate", "owner": "bob", "due": "2026-12-11"}),
    ("add_action_item", {"description": "write docs", "owner": "bob", "due": "2026-12-11"}),
    ("reassign_action_item", {"number": 1, "owner": "carol", "reason": "bob is away"}),
    ("redate_action_item", {"number": 1, "due": "2026-12-18"}),
    ("link_action_item", {"number": 1, "ref": "OPS-2"}),
    ("decline_action_item", {"number": 2, "reason": "covered by 1"}),
    ("complete_action_item", {"number": 1}),
    ("draft_postmortem", {"summary": "Checkout failed for 20 minutes."}),
    (
        "complete_postmortem",
        {"root_cause": "no staging gate", "went_well": ["rollback"], "went_poorly": ["alerts"]},
    ),
    ("update_kb", {"symptom": "500s on checkout", "early_signs": "config push alerts"}),
]


class TestCommands:
    def test_every_command_runs_over_http(self, service: Service) -> None:
        """Every command a person runs is a POST of its JSON arguments, answering the snapshot."""
        ran = set()

        def run(incident_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
            answer = service.post(f"/incidents/{incident_id}/{name}", json=args)
            assert answer.status_code == 200, (name, answer.json())
            assert answer.headers["etag"] == f'"{answer.json()["version"]}"'
            ran.add(name)
            return dict(answer.json())

        declared = service.post(
            "/incidents", json={"title": "Checkout returns 500", "severity": "P1",
                                "commander": "alice", "labels": {"env": "prod"}},
        )  # fmt: skip
        assert declared.status_code == 201
        ran.add("declare")
        a = declared.json()["id"]
        assert declared.headers["location"].endswith(f"/api/incidents/{a}")
        for name, args in _CYCLE:
            run(a, name, args)
        service.clock.advance(service.flow.policy.watch_window)
        for name, args in _CLOSE:
            last = run(a, name, args)
        assert last["state"] == "kb_updated"

        b = _made(service, State.FIXED, "Second")
        assert run(b, "reopen", {"reason": "it came back", "to": "rca"})["state"] == "rca"
        c = _made(service, State.DECLARED, "Third")
        run(c, "link", {"kind": "related_to", "other": b})
        run(c, "unlink", {"kind": "related_to", "other": b})
        run(c, "merge", {"into": b, "reason": "same outage"})
        d = _made(service, State.DECLARED, "Fourth")
        assert run(d, "dismiss", {"reason": "false alarm"})["state"] == "dismissed"
        e = _made(service, State.DECLARED, "Fifth")
        # The default policy declares no custom fields: the command itself answers, naming them.
        refused = service.post(f"/incidents/{e}/set_fields", json={"remove": []})
        assert (refused.status_code, refused.json()["field"]) == (422, "fields")
        ran.add("set_fields")
        run(e, "restrict", {"to": ["alice"]})
        run(e, "unrestrict", {})

        people = {name for name, command in DEFINITIONS.items() if not command.system}
        assert people - ran == set()

    def test_times_arrive_as_iso_text(self, service: Service) -> None:
        """Times are ISO 8601 with an offset; durations minutes or ISO 8601 (PT45M)."""
        a = drive_to(service.flow, service.clock, State.TRIAGING).id
        answer = service.post(
            f"/incidents/{a}/post_update",
            json={"audience": "internal", "text": "digging", "next_update_in": "PT45M"},
        )
        due = service.clock() + timedelta(minutes=45)
        assert answer.json()["next_update_due"] == due.isoformat()
        naive = service.post(
            f"/incidents/{a}/record_containment",
            json={"description": "rolled back", "taken_at": "2026-11-27T14:00"},
        )
        assert naive.status_code == 422
        assert naive.json()["field"] == "taken_at"
        assert "UTC offset" in naive.json()["message"]


class TestRetries:
    def test_an_idempotent_retry_answers_the_first_result(self, service: Service) -> None:
        """The same Idempotency-Key and body answer the first result, saying it is a replay."""
        body = {"title": "DB down", "severity": "P1", "commander": "alice"}
        first = service.post("/incidents", json=body, headers={"Idempotency-Key": "page-7"})
        again = service.post("/incidents", json=body, headers={"Idempotency-Key": "page-7"})
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert again.json() == first.json()
        assert len(service.flow.list()) == 1

    def test_a_key_reused_for_another_payload_is_refused(self, service: Service) -> None:
        """Another body under a used key answers 422 IdempotencyConflict and records nothing."""
        a = drive_to(service.flow, service.clock, State.TRIAGING).id
        key = {"Idempotency-Key": "note-1"}
        service.post(f"/incidents/{a}/add_note", json={"text": "one"}, headers=key)
        other = service.post(f"/incidents/{a}/add_note", json={"text": "two"}, headers=key)
        assert other.status_code == 422
        assert other.json()["error"] == "IdempotencyConflict"
        assert [n.text for n in service.flow.get(a).notes] == ["one"]


class TestIfMatch:
    def test_a_stale_version_answers_412(self, service: Service) -> None:
        """If-Match naming an older version answers 412 with the current ETag; nothing runs."""
        a = drive_to(service.flow, service.clock, State.DECLARED).id
        current = service.get(f"/incidents/{a}")
        etag = current.headers["etag"]
        service.post(f"/incidents/{a}/add_note", json={"text": "meanwhile"})
        stale = service.post(f"/incidents/{a}/start_triage", headers={"If-Match": etag})
        assert stale.status_code == 412
        assert stale.json()["error"] == "ConcurrencyConflict"
        assert stale.headers["etag"] == f'"{service.flow.get(a).version}"'
        assert service.flow.get(a).state is State.DECLARED

    def test_the_current_version_runs(self, service: Service) -> None:
        """If-Match naming the current version runs the command."""
        a = drive_to(service.flow, service.clock, State.DECLARED).id
        etag = service.get(f"/incidents/{a}").headers["etag"]
        fresh = service.post(f"/incidents/{a}/start_triage", headers={"If-Match": etag})
        assert fresh.status_code == 200
        assert fresh.json()["state"] == "triaging"


class TestErrors:
    def test_a_refused_step_answers_409_with_its_reason_codes(self, service: Service) -> None:
        """An unmet guard answers 409 TransitionRejected listing every reason's code."""
        a = drive_to(service.flow, service.clock, State.TRIAGING).id
        refused = service.post(f"/incidents/{a}/contain")
        assert refused.status_code == 409
        body = refused.json()
        assert body["error"] == "TransitionRejected"
        codes = {reason["code"] for reason in body["reasons"]}
        assert codes == {"evidence.missing", "triage.unanswered", "containment.missing"}

    def test_statuses_by_error_type(self, service: Service) -> None:
        """Bad input 422 naming the field, wrong state 409, unknown incident 404."""
        a = drive_to(service.flow, service.clock, State.DECLARED).id
        bad = service.post("/incidents", json={"title": "", "severity": "P1", "commander": "al"})
        assert (bad.status_code, bad.json()["field"]) == (422, "title")
        wrong = service.post(f"/incidents/{a}/start_rca")
        assert (wrong.status_code, wrong.json()["error"]) == (409, "InvalidTransition")
        assert wrong.json()["allowed_states"] == ["contained"]
        missing = service.get("/incidents/INC-2026-11-27-nothing")
        assert (missing.status_code, missing.json()["error"]) == (404, "IncidentNotFound")
        unknown = service.post(f"/incidents/{a}/explode")
        assert (unknown.status_code, unknown.json()["error"]) == (404, "UnknownCommand")

    def test_a_body_over_the_limit_is_refused_before_it_is_read_whole(
        self, service: Service
    ) -> None:
        """Over 1 MiB answers 422 on body, whether declared up front or sent in chunks."""
        from incidentflow.web._api import MAX_BODY

        a = drive_to(service.flow, service.clock, State.TRIAGING).id
        note = json.dumps({"text": "x" * MAX_BODY}).encode()
        declared = service.post(f"/incidents/{a}/add_note", content=note)
        assert (declared.status_code, declared.json()["field"]) == (422, "body")

        def chunks() -> Any:
            for start in range(0, len(note), 64 * 1024):
                yield note[start : start + 64 * 1024]

        chunked = service.post(f"/incidents/{a}/add_note", content=chunks())
        assert (chunked.status_code, chunked.json()["field"]) == (422, "body")
        assert "at most" in chunked.json()["message"]
        assert not service.flow.get(a).notes

    def test_reads_and_commands_keep_their_own_methods(self, service: Service) -> None:
        """A read's path with POST names no command (404); a command's path with GET is 405."""
        a = drive_to(service.flow, service.clock, State.DECLARED).id
        posted = service.post(f"/incidents/{a}/history")
        assert (posted.status_code, posted.json()["error"]) == (404, "UnknownCommand")
        assert service.get(f"/incidents/{a}/history").status_code == 200
        assert service.get(f"/incidents/{a}/add_note").status_code == 405

    def test_a_taken_reference_answers_409(self, service: Service) -> None:
        """A reference another open incident holds answers 409 ReferenceTaken with the holder."""
        body = {"severity": "P2", "commander": "al", "references": {"alert": "fp-1"}}
        first = service.post("/incidents", json={"title": "One", **body})
        second = service.post("/incidents", json={"title": "Two", **body})
        assert second.status_code == 409
        assert second.json()["holder"] == first.json()["id"]

    def test_malformed_bodies_are_refused(self, service: Service) -> None:
        """A body that is no JSON object, or sets the actor, answers 422 naming what to change."""
        a = drive_to(service.flow, service.clock, State.TRIAGING).id
        not_json = service.post(f"/incidents/{a}/add_note", content=b"{oops")
        assert (not_json.status_code, not_json.json()["field"]) == (422, "body")
        spoofed = service.post(f"/incidents/{a}/add_note", json={"text": "x", "actor": "root"})
        assert (spoofed.status_code, spoofed.json()["field"]) == (422, "actor")
        anonymous = service.client.post(f"/api/incidents/{a}/add_note", json={"text": "x"})
        assert (anonymous.status_code, anonymous.json()["field"]) == (422, "X-Actor")


class TestTokens:
    def test_tokens_name_the_actor_and_guard_every_route(self, serve: Any) -> None:
        """With tokens, a request without a valid one answers 401; a valid one names the actor."""
        guarded = serve(tokens={"ci-bot": API_TOKEN})
        body = {"title": "DB down", "severity": "P1", "commander": "alice"}
        assert guarded.client.post("/api/incidents", json=body).status_code == 401
        wrong = {"Authorization": "Bearer " + "x" * 32}
        assert guarded.client.get("/api/incidents", headers=wrong).status_code == 401
        assert guarded.client.get("/metrics", headers=wrong).status_code == 401
        auth = {"Authorization": f"Bearer {API_TOKEN}", "X-Actor": "mallory"}
        made = guarded.client.post("/api/incidents", json=body, headers=auth)
        assert made.status_code == 201
        assert service_actor(guarded, made.json()["id"]) == "ci-bot"


def _made(service: Service, state: State, name: str) -> str:
    return drive_to(service.flow, service.clock, state, texts={"title": f"{name} outage"}).id


def service_actor(service: Service, incident_id: str) -> str:
    return service.flow.history(incident_id)[0].actor


class TestReads:
    def test_list_summaries_history_and_can(self, service: Service) -> None:
        """The reads answer what the library does, with the query's filters."""
        a = drive_to(service.flow, service.clock, State.TRIAGING).id
        drive_to(service.flow, service.clock, State.DECLARED, "P3", texts={"title": "Other outage"})
        listed = service.get("/incidents", params={"severity": "P1"}).json()
        assert [i["id"] for i in listed] == [a]
        both = service.get("/summaries", params=[("severity", "P1"), ("severity", "P3")]).json()
        assert len(both) == 2
        assert [e["type"] for e in service.get(f"/incidents/{a}/history").json()][:2] == [
            "declared",
            "triage_started",
        ]
        can = service.get(f"/incidents/{a}/can/contain").json()
        assert can["allowed"] is False
        assert "evidence.missing" in {r["code"] for r in can["reasons"]}
        unknown = service.get("/incidents", params={"colour": "red"})
        assert (unknown.status_code, unknown.json()["field"]) == (422, "colour")

    def test_get_answers_304_to_its_own_etag(self, service: Service) -> None:
        """A client polling with If-None-Match gets 304 until the incident changes."""
        a = drive_to(service.flow, service.clock, State.DECLARED).id
        etag = service.get(f"/incidents/{a}").headers["etag"]
        assert service.get(f"/incidents/{a}", headers={"If-None-Match": etag}).status_code == 304

    def test_similar_metrics_and_prometheus(self, service: Service) -> None:
        """Similar incidents, metrics as JSON, and the Prometheus text at /metrics."""
        drive_to(service.flow, service.clock, State.CONTAINED, texts={"title": "Gateway outage"})
        found = service.get("/similar", params={"text": "checkout"}).json()
        assert isinstance(found, list)
        [summary] = service.get("/metrics").json()
        assert summary["count"] == 1
        assert summary["mtta"] is not None
        text = service.client.get("/metrics")
        assert text.headers["content-type"].startswith("text/plain")
        assert "incidentflow_incidents{" in text.text

    def test_export_streams_json_lines(self, service: Service) -> None:
        """The export streams the header then every event, one JSON object a line."""
        a = drive_to(service.flow, service.clock, State.TRIAGING).id
        with service.client.stream("GET", "/api/export") as answer:
            lines = [json.loads(line) for line in answer.iter_lines() if line]
        assert lines[0]["format"] == "incidentflow-export"
        assert [line["seq"] for line in lines[1:]] == [1, 2]
        assert {line["incident_id"] for line in lines[1:]} == {a}
        missing = service.get("/export", params={"id": "INC-2026-11-27-nothing"})
        assert missing.status_code == 404


class TestOpenApi:
    def test_the_document_names_every_command(self, service: Service) -> None:
        """/api/openapi.json is OpenAPI 3.1 JSON with a path for every command and alert source."""
        from incidentflow.alerts import SOURCES

        document = service.get("/openapi.json").json()
        assert document["openapi"].startswith("3.1")
        operations = {
            op["operationId"]
            for path in document["paths"].values()
            for op in path.values()
            if "operationId" in op
        }
        people = {name for name, c in DEFINITIONS.items() if not c.system}
        assert people <= operations
        assert {f"ingest_{source}" for source in SOURCES} <= operations
        body = document["paths"]["/incidents/{incident_id}/add_evidence"]["post"]["requestBody"]
        schema = body["content"]["application/json"]["schema"]
        assert schema["required"] == ["source", "content"]
        deployed = document["paths"]["/incidents/{incident_id}/record_deploy"]["post"]
        props = deployed["requestBody"]["content"]["application/json"]["schema"]["properties"]
        assert props["deployed_at"]["format"] == "date-time"
