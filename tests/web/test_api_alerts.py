"""The alert endpoints over a real uvicorn: each format, admitted by token or HMAC signature."""

from __future__ import annotations

import hashlib
import hmac
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest
from served import ALERT_SECRET, ALERT_TOKEN, Service

FIXTURES = Path(__file__).resolve().parent.parent / "alerts" / "fixtures"
#: A firing payload of each format, as the monitoring tool sends it.
FIRING = {
    "alertmanager": "alertmanager.json",
    "datadog": "datadog_triggered.json",
    "generic": "generic.json",
    "grafana": "grafana.json",
    "pagerduty": "pagerduty_trigger.json",
}


def _signed(body: bytes, secret: str = ALERT_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Incidentflow-Signature": f"sha256={digest}", "Content-Type": "application/json"}


class TestAlertEndpoints:
    def test_every_source_has_a_fixture(self) -> None:
        """Each alert format the library parses has an endpoint tested below."""
        from incidentflow.alerts import SOURCES

        assert set(FIRING) == set(SOURCES)

    @pytest.mark.parametrize("source", sorted(FIRING))
    def test_a_bearer_token_admits_an_alert(self, service: Service, source: str) -> None:
        """A valid alert token ingests the payload, declaring an incident; a resend replays."""
        body = (FIXTURES / FIRING[source]).read_bytes()
        auth = {"Authorization": f"Bearer {ALERT_TOKEN}", "Content-Type": "application/json"}
        first = service.client.post(f"/api/alerts/{source}", content=body, headers=auth)
        assert first.status_code == 200, first.json()
        assert first.json()["counts"]["declared"] >= 1
        [incident_id, *_] = first.json()["incident_ids"]
        assert service.flow.history(incident_id)[0].actor == "alertmanager"
        again = service.client.post(f"/api/alerts/{source}", content=body, headers=auth)
        assert all(o["replayed"] for o in again.json()["outcomes"] if o["action"] != "ignored")
        assert len(service.flow.list()) == len(first.json()["incident_ids"])

    @pytest.mark.parametrize("source", sorted(FIRING))
    def test_a_signature_admits_an_alert(self, service: Service, source: str) -> None:
        """An HMAC-SHA256 signature of the raw body with a configured secret ingests it."""
        body = (FIXTURES / FIRING[source]).read_bytes()
        answer = service.client.post(f"/api/alerts/{source}", content=body, headers=_signed(body))
        assert answer.status_code == 200, answer.json()
        [incident_id, *_] = answer.json()["incident_ids"]
        assert service.flow.history(incident_id)[0].actor == "grafana"

    @pytest.mark.parametrize("source", sorted(FIRING))
    def test_without_valid_credentials_nothing_is_read(self, service: Service, source: str) -> None:
        """No token, a wrong token, a wrong or tampered signature: 401, and nothing is declared."""
        body = (FIXTURES / FIRING[source]).read_bytes()
        attempts = [
            {},
            {"Authorization": "Bearer " + "0" * len(ALERT_TOKEN)},
            {"Authorization": f"Basic {ALERT_TOKEN}"},
            _signed(body, secret="another-secret-0123456789"),
            _signed(body + b" "),
            {"X-Incidentflow-Signature": "sha256=zz"},
        ]
        for headers in attempts:
            answer = service.client.post(f"/api/alerts/{source}", content=body, headers=headers)
            assert answer.status_code == 401, headers
            assert answer.headers["www-authenticate"].startswith("Bearer")
        assert service.flow.list() == []

    def test_alerts_are_refused_when_nothing_admits_them(self, serve: object) -> None:
        """A service configured with no alert token or secret refuses every alert."""
        bare = serve()  # type: ignore[operator]
        body = (FIXTURES / FIRING["generic"]).read_bytes()
        answer = bare.client.post("/api/alerts/generic", content=body)
        assert answer.status_code == 401

    def test_an_oversized_alert_answers_413_however_it_is_sent(self, service: Service) -> None:
        """Over 5 MiB, declared up front or streamed in chunks, with a valid token: 413."""
        from incidentflow.web._alerts import MAX_ALERT_BODY

        auth = {"Authorization": f"Bearer {ALERT_TOKEN}", "Content-Type": "application/json"}
        body = b'{"alerts": [' + b" " * MAX_ALERT_BODY + b"]}"
        declared = service.client.post("/api/alerts/generic", content=body, headers=auth)
        assert (declared.status_code, declared.json()["error"]) == (413, "TooLarge")

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(body), 256 * 1024):
                yield body[start : start + 256 * 1024]

        streamed = service.client.post("/api/alerts/generic", content=chunks(), headers=auth)
        assert (streamed.status_code, streamed.json()["error"]) == (413, "TooLarge")
        assert service.flow.list() == []

    def test_a_malformed_payload_answers_422(self, service: Service) -> None:
        """A payload the parser refuses answers 422 naming the field, and writes nothing."""
        body = b'{"alerts": [{"status": "firing"}]}'
        auth = {"Authorization": f"Bearer {ALERT_TOKEN}"}
        answer = service.client.post("/api/alerts/generic", content=body, headers=auth)
        assert answer.status_code == 422
        assert answer.json()["field"].startswith("alerts[0]")
        assert service.flow.list() == []


class TestConstantTime:
    def test_tokens_and_signatures_are_compared_with_compare_digest(self) -> None:
        """Tokens are kept as sha256 digests and compared with hmac.compare_digest, every one."""
        from incidentflow.web import _auth

        source = inspect.getsource(_auth)
        assert source.count("hmac.compare_digest(") == 2
        tokens = _auth.Tokens({"ci": "a-long-token-0123456789"})
        assert b"a-long-token" not in repr(vars(tokens)).encode()
        assert tokens.actor("a-long-token-0123456789") == "ci"
        assert tokens.actor("a-long-token-012345678") is None

    def test_a_short_or_unset_secret_is_a_config_error(self) -> None:
        """A token under 16 characters, or an env:VAR that is unset, is refused by name."""
        from incidentflow import ConfigError
        from incidentflow.web._auth import Tokens

        with pytest.raises(ConfigError, match="16 characters") as short:
            Tokens({"ci": "short"})
        assert short.value.key == "tokens.ci"
        with pytest.raises(ConfigError, match="INCIDENTFLOW_NO_SUCH_VAR"):
            Tokens({"ci": "env:INCIDENTFLOW_NO_SUCH_VAR"}, environ={})
        assert Tokens({"ci": "env:TOKEN"}, environ={"TOKEN": "t" * 20}).actor("t" * 20) == "ci"
