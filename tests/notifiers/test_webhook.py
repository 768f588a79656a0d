"""WebhookNotifier: the signed JSON POST, its schema, and how each failure is reported."""

from __future__ import annotations

import functools
import json
import re
import sys
import time
import typing
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from notifier_servers import SIGNING_SECRET, HttpReceiver

from helpers import COMMANDER, RESPONDER, USER, drive_to
from incidentflow import ConfigError, Event, Incident, IncidentFlow, Policy, __version__
from incidentflow._events import event_types
from incidentflow.notifiers import (
    WEBHOOK_SCHEMA,
    DeliveryError,
    Notification,
    WebhookNotifier,
    verify_signature,
)
from incidentflow.testing import FrozenClock

DOCS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "webhooks.md"


# -- a tiny JSON Schema validator: the keywords WEBHOOK_SCHEMA uses -------------------

_TYPES: Mapping[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
    "number": (int, float),
    "integer": int,
}


def schema_errors(instance: Any, schema: Mapping[str, Any], path: str = "$") -> list[str]:
    """Every way ``instance`` breaks ``schema``, as ``"<path>: <problem>"`` strings."""
    errors: list[str] = []
    known = {
        "$schema", "title", "description", "type", "required", "properties", "const", "enum",
        "pattern", "minimum", "format", "additionalProperties", "items",
    }  # fmt: skip
    assert set(schema) <= known, f"validator does not know {set(schema) - known}"
    if "type" in schema:
        expected = _TYPES[schema["type"]]
        is_bool = isinstance(instance, bool)
        if not isinstance(instance, expected) or (is_bool and schema["type"] != "boolean"):
            return [f"{path}: expected {schema['type']}, got {type(instance).__name__}"]
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{path}: expected {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: {instance!r} is not one of {schema['enum']}")
    if "pattern" in schema and not re.search(schema["pattern"], instance):
        errors.append(f"{path}: {instance!r} does not match {schema['pattern']}")
    if "minimum" in schema and instance < schema["minimum"]:
        errors.append(f"{path}: {instance} < {schema['minimum']}")
    if schema.get("format") == "date-time":
        try:
            parsed = datetime.fromisoformat(instance)
        except ValueError:
            errors.append(f"{path}: {instance!r} is not a date-time")
        else:
            if parsed.tzinfo is None:
                errors.append(f"{path}: {instance!r} has no UTC offset")
    if schema.get("format") == "uri":
        parts = urlsplit(instance)
        if not parts.scheme or not parts.netloc:
            errors.append(f"{path}: {instance!r} is not an absolute URI")
    for name in schema.get("required", ()):
        if name not in instance:
            errors.append(f"{path}: {name} is required")
    properties = schema.get("properties", {})
    others = schema.get("additionalProperties", True)
    for name, value in instance.items() if isinstance(instance, dict) else ():
        if name in properties:
            errors += schema_errors(value, properties[name], f"{path}.{name}")
        elif others is False:
            errors.append(f"{path}: unexpected {name}")
        elif isinstance(others, Mapping):
            errors += schema_errors(value, others, f"{path}.{name}")
    for n, item in enumerate(instance) if "items" in schema else ():
        errors += schema_errors(item, schema["items"], f"{path}[{n}]")
    return errors


def documented_fields(schema: Mapping[str, Any], prefix: str = "") -> set[str]:
    """The dotted names of every property the schema describes."""
    names = set()
    for name, sub in schema.get("properties", {}).items():
        names.add(prefix + name)
        names |= documented_fields(sub, f"{prefix}{name}.")
    return names


#: The incident fields issue 10 added.
OPEN_OBJECTS_AND_LISTS = ("type", "labels", "custom_fields", "references", "roles")

#: Objects whose keys are data (event fields, label keys, role names), not payload fields.
OPEN_OBJECTS = {"event.data", "incident.labels", "incident.custom_fields", "incident.roles"}


def payload_fields(value: Any, prefix: str = "") -> set[str]:
    """The dotted names in a payload, not descending into the OPEN_OBJECTS."""
    names = set()
    for name, sub in value.items():
        names.add(prefix + name)
        if isinstance(sub, dict) and prefix + name not in OPEN_OBJECTS:
            names |= payload_fields(sub, f"{prefix}{name}.")
    return names


class TestSchemaValidator:
    """The test's validator is strict enough to trust."""

    def test_a_real_payload_passes(self, notification: Notification) -> None:
        """The payload of a real notification has no schema errors."""
        with WebhookNotifier("http://127.0.0.1:9/") as hook:
            assert schema_errors(hook.payload(notification), WEBHOOK_SCHEMA) == []

    def test_it_catches_each_kind_of_mistake(self, notification: Notification) -> None:
        """A payload broken in ten ways gets a complaint for each."""
        with WebhookNotifier("http://127.0.0.1:9/") as hook:
            payload = hook.payload(notification)
        payload["schema"] = "incidentflow.notification/2"
        payload["id"] = "no-seq"
        payload["event"]["seq"] = 0
        payload["event"]["at"] = "2026-11-27T14:00:00"
        del payload["event"]["actor"]
        payload["incident"]["severity"] = "P5"
        payload["incident"]["version"] = "3"
        payload["incident"]["labels"] = {"service": 3}
        payload["incident"]["references"] = [{"kind": "ticket"}]
        del payload["incident"]["roles"]
        errors = schema_errors(payload, WEBHOOK_SCHEMA)
        assert len(errors) == 10, errors


@functools.cache
def an_incident(state: str) -> Incident:
    """An incident in ``state``, made once per state."""
    clock = FrozenClock(datetime(2026, 11, 27, 14, 0, tzinfo=UTC))
    return drive_to(IncidentFlow.in_memory(clock=clock), clock, state)


def every_event_type_flow(flow: IncidentFlow, clock: FrozenClock) -> None:
    """Run commands that between them produce every event type a command can produce."""
    inc = drive_to(flow, clock, "resolved", texts={"title": "Checkout <b>returns</b> 500 & “é”"})
    flow.record_detection(inc.id, method="alert", actor=RESPONDER)
    flow.add_note(inc.id, "status page updated", actor=RESPONDER)
    flow.assign_commander(inc.id, RESPONDER, actor=COMMANDER)
    flow.add_action_item(
        inc.id, "add a load test", owner="dana", due=clock().date(), actor=RESPONDER
    )
    flow.complete_action_item(inc.id, 1, actor=RESPONDER)
    flow.add_action_item(inc.id, "audit pools", owner="dana", due=clock().date(), actor=RESPONDER)
    flow.reassign_action_item(inc.id, 2, owner="erin", reason="owns pools", actor=RESPONDER)
    flow.redate_action_item(inc.id, 2, due=clock().date() + timedelta(days=7), actor=RESPONDER)
    flow.link_action_item(inc.id, 2, "OPS-99", actor=RESPONDER)
    flow.decline_action_item(inc.id, 2, reason="covered by the alert", actor=RESPONDER)
    flow.draft_postmortem(inc.id, summary="short", actor=RESPONDER)
    flow.reclassify(inc.id, "P2", reason="fewer users than thought", actor=RESPONDER)
    flow.reopen(inc.id, reason="errors are back", actor=RESPONDER)
    fixed = drive_to(flow, clock, "fixed", texts={"title": "Search is slow"})
    flow.confirm_by_user(fixed.id, user=USER, positive=False, comment="still slow", actor=COMMANDER)
    coordinated = drive_to(flow, clock, "triaging", texts={"title": "Payments are slow"})
    every_new_record_command(flow, coordinated.id)
    done = drive_to(flow, clock, "kb_updated", texts={"title": "Login fails"})
    assert done.state.value == "kb_updated"
    flow.dismiss(drive_to(flow, clock, "declared", texts={"title": "A false alarm"}).id,
                 reason="false alarm", actor=COMMANDER)  # fmt: skip
    parent = drive_to(flow, clock, "triaging", texts={"title": "Region down"})
    child = drive_to(flow, clock, "declared", texts={"title": "Region down in one zone"})
    flow.restrict(parent.id, ["group:security"], actor=COMMANDER)  # before its links
    flow.unrestrict(parent.id, actor=COMMANDER)
    flow.link(parent.id, "parent_of", child.id, actor=COMMANDER)
    flow.unlink(parent.id, "parent_of", child.id, actor=COMMANDER)
    flow.merge(child.id, into=parent.id, reason="one outage", actor=COMMANDER)


def every_new_record_command(flow: IncidentFlow, incident_id: str) -> Incident:
    """Run the commands issue 10 added on one triaging incident: type, labels, fields,
    references, roles, an update and corrections."""
    run = functools.partial
    for command in [
        run(flow.change_type, incident_id, "performance", reason="latency, not errors"),
        run(flow.set_labels, incident_id, {"service": "payments", "team": "core"}),
        run(flow.set_labels, incident_id, remove=["team"]),
        run(flow.set_fields, incident_id, {"customer_tier": "gold"}),
        run(flow.add_reference, incident_id, "ticket", "OPS-1"),
        run(flow.add_reference, incident_id, "channel", "#inc-payments"),
        run(flow.remove_reference, incident_id, "channel", "#inc-payments"),
        run(flow.assign_role, incident_id, "communications_lead", "dana"),
        run(flow.assign_role, incident_id, "communications_lead", "erin", note="shift change"),
        run(flow.assign_role, incident_id, "scribe", "frank"),
        run(flow.release_role, incident_id, "scribe", note="not needed"),
        run(flow.post_update, incident_id, "external", "Payments are slow.\nNext: failover.",
            next_update_in=timedelta(minutes=30)),
        run(flow.add_evidence, incident_id, source="app.log", content="pool"),
        run(flow.amend, incident_id, "evidence:1", "pool exhausted", reason="clearer"),
        run(flow.retract, incident_id, "evidence:1", reason="another host"),
    ]:  # fmt: skip
        command(actor=RESPONDER)
    return flow.get(incident_id)


#: The custom fields the notifier tests set.
FIELDS_POLICY = Policy(custom_fields={"customer_tier": "text"})


class TestPayload:
    """The body is the documented, versioned JSON for every event."""

    def test_payload_has_exactly_the_documented_fields(
        self, notifications: list[Notification]
    ) -> None:
        """Every field of the payload is in WEBHOOK_SCHEMA, and every schema field is sent."""
        with WebhookNotifier(
            "http://127.0.0.1:9/", incident_url="https://ops.example/{id}"
        ) as hook:
            for notification in notifications:
                payload = hook.payload(notification)
                assert payload_fields(payload) == documented_fields(WEBHOOK_SCHEMA)

    def test_a_whole_incident_arrives_valid_in_order(
        self, receiver: HttpReceiver, clock: FrozenClock
    ) -> None:
        """Driven through every command, each event reaches the receiver once, in order, valid."""
        hook = WebhookNotifier(receiver.url, secret=SIGNING_SECRET)
        with IncidentFlow.in_memory(clock=clock, notifiers=[hook], policy=FIELDS_POLICY) as flow:
            every_event_type_flow(flow, clock)
            events = [
            e
            for inc in flow.list()
            for e in flow.history(inc.id)
            if e.type != "restricted"  # routed only to restricted routes: none here
        ]
        requests = receiver.wait_for(len(events))
        assert len(requests) == len(events)
        payloads = [json.loads(r.body) for r in requests]
        for payload in payloads:
            assert schema_errors(payload, WEBHOOK_SCHEMA) == []
        for incident_id in {p["incident"]["id"] for p in payloads}:
            seqs = [p["event"]["seq"] for p in payloads if p["incident"]["id"] == incident_id]
            sent = [e.seq for e in events if e.incident_id == incident_id]
            assert seqs == sent  # in order, none twice, none but the restricted one missing
        assert {p["id"] for p in payloads} == {f"{e.incident_id}:{e.seq}" for e in events}
        assert all(r.signature_ok for r in requests)
        seen = {p["event"]["type"] for p in payloads}
        only_from_the_clock = {"deadline_breached"}
        # assign_commander records role_assigned now; commander_assigned is in old histories.
        only_in_old_histories = {"commander_assigned"}
        # While an incident is restricted its events go only to routes marked restricted.
        only_to_restricted_routes = {"restricted"}
        expected = set(event_types()) - only_from_the_clock - only_in_old_histories
        assert seen == expected - only_to_restricted_routes

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def test_every_registered_event_type_validates(self, data: st.DataObject) -> None:
        """Any event of any registered type, on any incident, makes a valid payload."""
        cls = data.draw(st.sampled_from(sorted(event_types().values(), key=lambda c: c.TYPE)))
        hints = typing.get_type_hints(cls)
        fields = {f.name: st.from_type(hints[f.name]) for f in attrs.fields(cls)}
        payload_data = data.draw(st.builds(cls, **fields))
        incident = an_incident(data.draw(st.sampled_from(["declared", "rca", "kb_updated"])))
        event = Event(incident.id, incident.version + 1, incident.updated_at, "dana", payload_data)
        transport = httpx.MockTransport(lambda request: httpx.Response(204))
        with WebhookNotifier("http://127.0.0.1:9/", transport=transport) as hook:
            payload = hook.payload(Notification(f"{incident.id}:{event.seq}", event, incident))
        assert schema_errors(payload, WEBHOOK_SCHEMA) == []
        assert payload["event"]["type"] == cls.TYPE
        json.dumps(payload)

    def test_incident_carries_type_labels_fields_references_and_roles(
        self, receiver: HttpReceiver, clock: FrozenClock
    ) -> None:
        """The incident part of each payload carries what receivers route on, as it was then."""
        hook = WebhookNotifier(receiver.url, secret=SIGNING_SECRET)
        with IncidentFlow.in_memory(clock=clock, notifiers=[hook], policy=FIELDS_POLICY) as flow:
            inc = flow.declare(
                "Payments are slow",
                severity="P2",
                commander=COMMANDER,
                actor=COMMANDER,
                labels={"service": "payments"},
                references={"alert": "fp-123"},
            )
            every_new_record_command(flow, flow.start_triage(inc.id, actor=COMMANDER).id)
            version = flow.get(inc.id).version
        payloads = [json.loads(r.body) for r in receiver.wait_for(version)]
        first, last = payloads[0]["incident"], payloads[-1]["incident"]
        assert {key: first[key] for key in OPEN_OBJECTS_AND_LISTS} == {
            "type": "availability",
            "labels": {"service": "payments"},
            "custom_fields": {},
            "references": [{"kind": "alert", "value": "fp-123"}],
            "roles": {"commander": COMMANDER},
        }
        assert {key: last[key] for key in OPEN_OBJECTS_AND_LISTS} == {
            "type": "performance",
            "labels": {"service": "payments"},
            "custom_fields": {"customer_tier": "gold"},
            "references": [
                {"kind": "alert", "value": "fp-123"},
                {"kind": "ticket", "value": "OPS-1"},
            ],
            "roles": {"commander": COMMANDER, "communications_lead": "erin"},
        }
        for payload in payloads:
            assert schema_errors(payload, WEBHOOK_SCHEMA) == []
            assert payload_fields(payload) == documented_fields(WEBHOOK_SCHEMA) - {"incident.url"}

    def test_incident_url_is_sent_when_configured(self, notification: Notification) -> None:
        """With incident_url, incident.url links to the incident; without, there is no url."""
        template = "https://ops.example/incidents/{id}?slug={slug}"
        with WebhookNotifier("http://127.0.0.1:9/", incident_url=template) as hook:
            linked = hook.payload(notification)["incident"]["url"]
        incident = notification.incident
        assert linked == f"https://ops.example/incidents/{incident.id}?slug={incident.slug}"
        with WebhookNotifier("http://127.0.0.1:9/") as hook:
            assert "url" not in hook.payload(notification)["incident"]

    def test_body_is_utf8_json_with_user_text_verbatim(
        self, receiver: HttpReceiver, clock: FrozenClock
    ) -> None:
        """Markup and non-ASCII text arrive unchanged: receivers escape for their medium."""
        title = "Checkout <b>returns</b> 500 & “é”"
        with WebhookNotifier(receiver.url) as hook:
            flow = IncidentFlow.in_memory(clock=clock, notifiers=[hook])
            flow.declare(title, severity="P2", commander="zoë", actor="zoë")
        (request,) = receiver.wait_for(1)
        assert title.encode() in request.body
        payload = json.loads(request.body.decode("utf-8"))
        assert payload["incident"]["title"] == title
        assert payload["incident"]["commander"] == "zoë"
        assert payload["event"]["data"]["title"] == title


class TestHeaders:
    """Each request says what it is, who sent it and, with a secret, proves it."""

    def test_headers(self, receiver: HttpReceiver, notification: Notification) -> None:
        """Content type, user agent, notification id, timestamp and a valid signature."""
        before = int(time.time())
        with WebhookNotifier(receiver.url, secret=SIGNING_SECRET) as hook:
            hook.notify(notification)
        (request,) = receiver.wait_for(1)
        headers = request.headers
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"] == f"incidentflow/{__version__}"
        assert headers["x-incidentflow-id"] == notification.id
        assert before <= int(headers["x-incidentflow-timestamp"]) <= int(time.time())
        assert headers["x-incidentflow-signature"].startswith("sha256=")
        assert request.signature_ok is True
        assert request.path == urlsplit(receiver.url).path + "?" + urlsplit(receiver.url).query

    def test_signature_covers_timestamp_and_body(
        self, receiver: HttpReceiver, notification: Notification
    ) -> None:
        """Changing the body or the timestamp invalidates the signature."""
        with WebhookNotifier(receiver.url, secret=SIGNING_SECRET) as hook:
            hook.notify(notification)
        (request,) = receiver.wait_for(1)
        stamp, signature = (
            request.headers["x-incidentflow-timestamp"],
            request.headers["x-incidentflow-signature"],
        )
        assert verify_signature(SIGNING_SECRET, request.body, stamp, signature)
        assert not verify_signature(SIGNING_SECRET, request.body + b" ", stamp, signature)
        assert not verify_signature(SIGNING_SECRET, request.body, int(stamp) - 1, signature)
        assert not verify_signature("another secret", request.body, stamp, signature)

    def test_no_secret_no_signature(
        self, receiver: HttpReceiver, notification: Notification
    ) -> None:
        """Without a secret the request carries no signature header."""
        with WebhookNotifier(receiver.url) as hook:
            hook.notify(notification)
        (request,) = receiver.wait_for(1)
        assert "x-incidentflow-signature" not in request.headers
        assert request.signature_ok is None

    def test_extra_headers_are_sent(
        self, receiver: HttpReceiver, notification: Notification
    ) -> None:
        """Headers given at construction go with every request."""
        headers = {"Authorization": "Bearer t0ken", "X-Team": "sre"}
        with WebhookNotifier(receiver.url, headers=headers) as hook:
            hook.notify(notification)
        (request,) = receiver.wait_for(1)
        assert request.headers["authorization"] == "Bearer t0ken"
        assert request.headers["x-team"] == "sre"

    def test_credentials_in_the_url_become_basic_auth(
        self, receiver: HttpReceiver, notification: Notification
    ) -> None:
        """user:password@ in the URL is sent as a Basic Authorization header."""
        url = receiver.url.replace("http://", "http://hook%20user:p%40ss@")
        with WebhookNotifier(url) as hook:
            hook.notify(notification)
        (request,) = receiver.wait_for(1)
        assert request.headers["authorization"] == "Basic aG9vayB1c2VyOnBAc3M="

    def test_an_explicit_authorization_header_wins(
        self, receiver: HttpReceiver, notification: Notification
    ) -> None:
        """With both, the Authorization header given in headers= is the one sent."""
        url = receiver.url.replace("http://", "http://user:pw@")
        with WebhookNotifier(url, headers={"authorization": "Bearer t0ken"}) as hook:
            hook.notify(notification)
        (request,) = receiver.wait_for(1)
        assert request.headers["authorization"] == "Bearer t0ken"


class TestVerifySignature:
    """verify_signature accepts exactly the fresh, untampered requests."""

    BODY = b'{"schema":"incidentflow.notification/1"}'
    NOW = 1_800_000_000

    def sign(self, secret: str = "s3cret", stamp: int = NOW, body: bytes = BODY) -> str:
        import hashlib
        import hmac

        mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        return "sha256=" + mac.hexdigest()

    def test_accepts_a_fresh_signature(self) -> None:
        """The receiver's own HMAC of "<timestamp>.<body>" verifies, with str or bytes secrets."""
        signature = self.sign()
        assert verify_signature("s3cret", self.BODY, str(self.NOW), signature, now=self.NOW)
        assert verify_signature(b"s3cret", self.BODY, self.NOW, signature, now=self.NOW + 299)

    @pytest.mark.parametrize(
        ("body", "stamp", "signature", "now"),
        [
            pytest.param(BODY + b"x", str(NOW), None, NOW, id="tampered-body"),
            pytest.param(BODY, str(NOW), "sha256=" + "0" * 64, NOW, id="wrong-signature"),
            pytest.param(BODY, str(NOW), "sha1=abc", NOW, id="other-scheme"),
            pytest.param(BODY, str(NOW), None, NOW + 301, id="replayed-late"),
            pytest.param(BODY, str(NOW), None, NOW - 301, id="from-the-future"),
            pytest.param(BODY, "yesterday", None, NOW, id="malformed-timestamp"),
            pytest.param(BODY, "", None, NOW, id="missing-timestamp"),
        ],
    )
    def test_rejects(self, body: bytes, stamp: str, signature: str | None, now: int) -> None:
        """Tampered, foreign, late, early or malformed: False, never an exception."""
        signature = signature or self.sign()
        assert verify_signature("s3cret", body, stamp, signature, now=now) is False

    def test_tolerance_is_adjustable(self) -> None:
        """A wider tolerance accepts an older request."""
        signature = self.sign()
        assert not verify_signature("s3cret", self.BODY, self.NOW, signature, now=self.NOW + 600)
        assert verify_signature(
            "s3cret", self.BODY, self.NOW, signature, now=self.NOW + 600, tolerance=900
        )

    def test_compares_in_constant_time(self) -> None:
        """The comparison is hmac.compare_digest (no early exit on the first wrong byte)."""
        import inspect

        from incidentflow.notifiers import webhook

        assert "hmac.compare_digest" in inspect.getsource(webhook.verify_signature)


class TestConfiguration:
    """Wrong settings fail at construction with ConfigError naming the key."""

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://ops.example/hook",
            "file:///etc/passwd",
            "ops.example/hook",
            "http://",
            "https:///path-only",
            "http://ops.example:99999/",
            "http://ops.example/a b",
            "",
        ],
    )
    def test_url_must_be_http_with_a_host(self, url: str) -> None:
        """Not http(s), no host or malformed: ConfigError('url')."""
        with pytest.raises(ConfigError) as caught:
            WebhookNotifier(url)
        assert caught.value.key == "url"

    def test_url_must_be_a_string(self) -> None:
        """A non-string URL is a ConfigError, not a TypeError deep inside httpx."""
        with pytest.raises(ConfigError, match="url"):
            WebhookNotifier(b"http://127.0.0.1/")  # type: ignore[arg-type]

    @pytest.mark.parametrize("timeout", [0, -1, "5", None, True, float("nan")])
    def test_timeout_must_be_positive(self, timeout: object) -> None:
        """Zero, negative or not a number: ConfigError('timeout')."""
        with pytest.raises(ConfigError) as caught:
            WebhookNotifier("http://127.0.0.1/", timeout=timeout)  # type: ignore[arg-type]
        assert caught.value.key == "timeout"

    @pytest.mark.parametrize("name", ["", "   ", None, 3])
    def test_name_must_be_a_non_empty_string(self, name: object) -> None:
        """Routing rules and logs name notifiers: ConfigError('name') for a blank one."""
        with pytest.raises(ConfigError) as caught:
            WebhookNotifier("http://127.0.0.1/", name=name)  # type: ignore[arg-type]
        assert caught.value.key == "name"

    def test_secret_must_not_be_empty(self) -> None:
        """An empty secret would sign with nothing: ConfigError('secret')."""
        with pytest.raises(ConfigError) as caught:
            WebhookNotifier("http://127.0.0.1/", secret="")
        assert caught.value.key == "secret"

    @pytest.mark.parametrize(
        "headers",
        [
            {"Content-Type": "text/plain"},
            {"x-incidentflow-signature": "forged"},
            {"X-Evil": "a\r\nInjected: yes"},
            {"Bad:Name": "v"},
        ],
    )
    def test_headers_cannot_override_or_inject(self, headers: dict[str, str]) -> None:
        """The notifier's own headers are not overridable; no line breaks."""
        with pytest.raises(ConfigError) as caught:
            WebhookNotifier("http://127.0.0.1/", headers=headers)
        assert caught.value.key == "headers"

    @pytest.mark.parametrize(
        "template",
        ["https://ops.example/incidents", "https://ops.example/{incident}", "ops/{id}", "{id"],
    )
    def test_incident_url_must_be_a_link_template(self, template: str) -> None:
        """incident_url must make an http(s) link from {id} or {slug}."""
        with pytest.raises(ConfigError) as caught:
            WebhookNotifier("http://127.0.0.1/", incident_url=template)
        assert caught.value.key == "incident_url"

    def test_missing_httpx_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without httpx, constructing the notifier says which extra to install."""
        monkeypatch.setitem(sys.modules, "httpx", None)
        with pytest.raises(ConfigError, match=r"-e '\.\[webhook\]'") as caught:
            WebhookNotifier("http://127.0.0.1/")
        assert caught.value.key == "httpx"


class TestFailures:
    """Anything but a 2xx raises DeliveryError, saying whether a retry can help."""

    @pytest.fixture
    def hook(self, receiver: HttpReceiver) -> Iterator[WebhookNotifier]:
        with WebhookNotifier(receiver.url, secret=SIGNING_SECRET, timeout=0.5) as hook:
            yield hook

    @pytest.mark.parametrize("status", [200, 201, 202, 204])
    def test_2xx_is_success(
        self, receiver: HttpReceiver, hook: WebhookNotifier, notification: Notification, status: int
    ) -> None:
        """Any 2xx answer is a delivery."""
        receiver.answer_with(status)
        assert hook.notify(notification) is None

    @pytest.mark.parametrize(
        ("status", "retryable"),
        [(500, True), (502, True), (503, True), (408, True), (429, True),
         (400, False), (401, False), (403, False), (404, False), (410, False), (422, False)],
    )  # fmt: skip
    def test_error_status(
        self,
        receiver: HttpReceiver,
        hook: WebhookNotifier,
        notification: Notification,
        status: int,
        retryable: bool,
    ) -> None:
        """5xx, 408 and 429 are worth retrying; other 4xx are not. The status and body are told."""
        receiver.answer_with(status, b"receiver says: no\n  thanks")
        with pytest.raises(DeliveryError) as caught:
            hook.notify(notification)
        error = caught.value
        assert (error.retryable, error.status, error.notifier) == (retryable, status, "webhook")
        assert error.notification_id == notification.id
        assert f"answered {status}" in str(error)
        assert "receiver says: no thanks" in str(error)

    def test_retry_after_is_reported(
        self, receiver: HttpReceiver, hook: WebhookNotifier, notification: Notification
    ) -> None:
        """A 429 with Retry-After tells the engine how long to wait."""
        receiver.answer_with(429, b"slow down", Retry_After="7")
        with pytest.raises(DeliveryError) as caught:
            hook.notify(notification)
        assert caught.value.retryable
        assert caught.value.retry_after == 7.0

    def test_redirects_are_not_followed(
        self, receiver: HttpReceiver, hook: WebhookNotifier, notification: Notification
    ) -> None:
        """A 3xx is a configuration problem: not retryable, and it says why."""
        receiver.answer_with(302, Location="http://127.0.0.1:9/elsewhere")
        with pytest.raises(DeliveryError, match="redirects are not followed") as caught:
            hook.notify(notification)
        assert not caught.value.retryable
        assert len(receiver.requests) == 1

    def test_a_long_error_body_is_cut(
        self, receiver: HttpReceiver, hook: WebhookNotifier, notification: Notification
    ) -> None:
        """Only a short excerpt of the answer is quoted."""
        receiver.answer_with(500, b"x" * 100_000)
        with pytest.raises(DeliveryError) as caught:
            hook.notify(notification)
        assert len(str(caught.value)) < 400

    def test_a_hanging_receiver_times_out(
        self, receiver: HttpReceiver, hook: WebhookNotifier, notification: Notification
    ) -> None:
        """No answer within the timeout: retryable, and the call returns soon after the timeout."""
        receiver.hang()
        started = time.monotonic()
        with pytest.raises(DeliveryError, match=r"no answer within 0\.5 s") as caught:
            hook.notify(notification)
        # It waited for the timeout, and did not hang on the receiver (a generous bound).
        assert 0.4 < time.monotonic() - started < 60
        assert caught.value.retryable
        assert caught.value.status is None

    def test_a_receiver_that_is_down(self, closed_port: int, notification: Notification) -> None:
        """Connection refused: retryable, naming the (redacted) receiver."""
        url = f"http://127.0.0.1:{closed_port}/hooks/abc/secret-part"
        with WebhookNotifier(url, timeout=2) as hook, pytest.raises(DeliveryError) as caught:
            hook.notify(notification)
        assert caught.value.retryable
        assert caught.value.status is None
        assert f"could not reach http://127.0.0.1:{closed_port}/hooks/***" in str(caught.value)

    def test_the_driver_exception_is_not_chained(
        self, closed_port: int, notification: Notification
    ) -> None:
        """No __cause__, and the context suppressed: driver tracebacks hold the URL."""
        url = f"http://127.0.0.1:{closed_port}/"
        with WebhookNotifier(url, timeout=2) as hook, pytest.raises(DeliveryError) as caught:
            hook.notify(notification)
        assert caught.value.__cause__ is None
        assert caught.value.__context__ is None or caught.value.__suppress_context__

    def test_the_notifier_recovers_when_the_receiver_does(
        self, receiver: HttpReceiver, hook: WebhookNotifier, notification: Notification
    ) -> None:
        """After failures, the same notifier delivers once the receiver answers 2xx again."""
        receiver.answer_with(503)
        with pytest.raises(DeliveryError):
            hook.notify(notification)
        receiver.answer_with(204)
        hook.notify(notification)
        assert len(receiver.requests) == 2


class TestTls:
    """https receivers: verified by default, trusted through a transport when self-signed."""

    @pytest.fixture
    def https_receiver(self, tls: Any) -> Iterator[HttpReceiver]:
        server = HttpReceiver()
        server.server.socket = tls.server_context().wrap_socket(
            server.server.socket, server_side=True
        )
        yield server
        server.stop()

    def test_a_trusted_certificate(
        self, https_receiver: HttpReceiver, tls: Any, notification: Notification
    ) -> None:
        """With a transport that trusts the certificate, delivery over https works."""
        import httpx

        url = f"https://127.0.0.1:{https_receiver.port}/hook"
        transport = httpx.HTTPTransport(verify=tls.client_context())
        with WebhookNotifier(url, secret=SIGNING_SECRET, transport=transport) as hook:
            hook.notify(notification)
        (request,) = https_receiver.wait_for(1)
        assert request.signature_ok

    def test_an_untrusted_certificate(
        self, https_receiver: HttpReceiver, notification: Notification
    ) -> None:
        """A self-signed certificate is refused by default: nothing sent, not retryable."""
        url = f"https://127.0.0.1:{https_receiver.port}/hook"
        with WebhookNotifier(url, timeout=2) as hook, pytest.raises(DeliveryError) as caught:
            hook.notify(notification)
        assert "the certificate of 127.0.0.1 is not trusted" in str(caught.value)
        assert caught.value.retryable is False
        assert https_receiver.requests == []


class TestConcurrency:
    """One notifier serves many delivery threads at once."""

    def test_fifty_concurrent_notifications_all_arrive(
        self, receiver: HttpReceiver, notification: Notification
    ) -> None:
        """50 notify calls from 16 threads through one notifier: 50 signed requests, 50 ids."""
        copies = [attrs.evolve(notification, id=f"{notification.id}-{i}") for i in range(50)]
        with (
            WebhookNotifier(receiver.url, secret=SIGNING_SECRET) as hook,
            ThreadPoolExecutor(max_workers=16) as pool,
        ):
            results = list(pool.map(hook.notify, copies))
        assert results == [None] * 50
        requests = receiver.wait_for(50)
        assert len(requests) == 50
        assert all(r.signature_ok for r in requests)
        assert {r.headers["x-incidentflow-id"] for r in requests} == {c.id for c in copies}
        assert {json.loads(r.body)["id"] for r in requests} == {c.id for c in copies}


class TestDocs:
    """The docs page's payload table lists exactly the schema's fields."""

    def test_payload_table_matches_the_schema(self) -> None:
        """Every row of the table is a schema field, and every schema field has a row."""
        text = DOCS_PAGE.read_text(encoding="utf-8")
        text = text.split("\n## The payload\n", 1)[1].split("\n## ", 1)[0]
        rows = set(re.findall(r"^\| `([a-z_.]+)` \|", text, flags=re.MULTILINE))
        assert rows == documented_fields(WEBHOOK_SCHEMA)
