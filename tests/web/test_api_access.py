"""Who may do what over HTTP: 401 without a token, 403 without the right, 404 when hidden."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from served import running

from incidentflow import Access, IncidentFlow, Policy
from incidentflow.testing import FrozenClock

ALICE = "alice-token-0123456789abcdef"  # command, and admin over her restrictions
VICTOR = "victor-token-0123456789abcdef"  # read only
MALLORY = "mallory-token-0123456789abcdef"  # read only, outside every restriction

ACCESS = Access.from_mapping(
    {
        "roles": [
            {"name": "commanders", "permission": "admin", "members": ["alice"]},
            {"name": "readers", "permission": "read", "members": ["victor", "mallory"]},
        ]
    }
)


@pytest.fixture
def site(clock: FrozenClock) -> Iterator[httpx.Client]:
    """A service whose policy has an authorizer, with a token per person."""
    from incidentflow.web import app

    flow = IncidentFlow.in_memory(clock=clock, policy=Policy(authorizer=ACCESS))
    tokens = {"alice": ALICE, "victor": VICTOR, "mallory": MALLORY}
    with running(app(flow, tokens=tokens)) as url, httpx.Client(base_url=url) as client:
        yield client
    flow.close()


def as_(token: str) -> dict[str, str]:
    """The header presenting ``token``."""
    return {"Authorization": f"Bearer {token}"}


def declare(site: httpx.Client) -> str:
    """Alice declares an incident; its id."""
    answer = site.post(
        "/api/incidents",
        json={"title": "Token leak", "severity": "P1", "commander": "alice"},
        headers=as_(ALICE),
    )
    assert answer.status_code == 201, answer.text
    incident_id: str = answer.json()["id"]
    return incident_id


class TestTokens:
    def test_no_token_is_401(self, site: httpx.Client) -> None:
        """Without a token, or with a wrong one, nothing is read or run."""
        assert site.get("/api/incidents").status_code == 401
        assert site.get("/api/incidents", headers=as_("wrong-token-0123456789")).status_code == 401
        answer = site.post("/api/incidents", json={"title": "x", "severity": "P4",
                                                   "commander": "x"})  # fmt: skip
        assert answer.status_code == 401

    def test_a_reader_may_not_run_a_command(self, site: httpx.Client) -> None:
        """403 names the permission; nothing is recorded."""
        incident_id = declare(site)
        answer = site.post(f"/api/incidents/{incident_id}/start_triage", json={},
                           headers=as_(VICTOR))  # fmt: skip
        assert answer.status_code == 403
        assert "command" in answer.json()["message"]
        history = site.get(f"/api/incidents/{incident_id}/history", headers=as_(ALICE))
        assert [e["type"] for e in history.json()] == ["declared"]


class TestRestricted:
    def test_hidden_from_everyone_else_as_404(self, site: httpx.Client) -> None:
        """A restricted incident answers 404 to others and is missing from their listings."""
        incident_id = declare(site)
        answer = site.post(f"/api/incidents/{incident_id}/restrict",
                           json={"to": ["victor"]}, headers=as_(ALICE))  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert site.get(f"/api/incidents/{incident_id}", headers=as_(VICTOR)).status_code == 200
        assert site.get(f"/api/incidents/{incident_id}", headers=as_(MALLORY)).status_code == 404
        listed = site.get("/api/summaries", headers=as_(MALLORY)).json()
        assert incident_id not in {row["id"] for row in listed}
        exported = site.get("/api/export", headers=as_(MALLORY)).text
        assert incident_id not in exported
        assert incident_id in site.get("/api/export", headers=as_(ALICE)).text
