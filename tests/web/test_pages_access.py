"""The pages under an authorizer: each viewer is offered only the forms it may run."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from served import running

from incidentflow import Access, IncidentFlow, Policy
from incidentflow.testing import FrozenClock

ACCESS = Access.from_mapping(
    {
        "roles": [
            {"name": "admins", "permission": "admin", "members": ["alice"]},
            {"name": "responders", "permission": "respond", "members": ["rita"]},
            {"name": "readers", "permission": "read", "members": ["victor"]},
        ]
    }
)


@pytest.fixture
def pages(clock: FrozenClock) -> Iterator[tuple[IncidentFlow, httpx.Client]]:
    """The pages of a flow whose policy has an authorizer; X-Actor names the viewer."""
    from incidentflow.web import app

    flow = IncidentFlow.in_memory(clock=clock, policy=Policy(authorizer=ACCESS))
    with running(app(flow)) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield flow, client
    flow.close()


def _commands(page: str) -> set[str]:
    """The commands whose forms ``page`` offers."""
    return set(re.findall(r'<button type="submit" name="run" value="([a-z_]+)"', page))


def _as(actor: str) -> dict[str, str]:
    return {"X-Actor": actor}


class TestFormsForTheViewer:
    def test_a_reader_sees_no_command_form(self, pages: tuple[IncidentFlow, httpx.Client]) -> None:
        """A read-only viewer gets the incident and the board, but neither offers a form."""
        flow, client = pages
        inc = flow.declare("Queue stalls", severity="P2", commander="alice", actor="alice")
        page = client.get(f"/incidents/{inc.id}", headers=_as("victor"))
        assert page.status_code == 200, page.text
        assert "Queue stalls" in page.text
        assert _commands(page.text) == set()
        assert 'method="post"' not in page.text
        board = client.get("/", headers=_as("victor"))
        assert board.status_code == 200
        assert 'id="declare-form"' not in board.text

    def test_a_responder_sees_only_what_responders_record(
        self, pages: tuple[IncidentFlow, httpx.Client]
    ) -> None:
        """A responder is offered notes and evidence, never a lifecycle step or a restriction."""
        flow, client = pages
        inc = flow.declare("Queue stalls", severity="P2", commander="alice", actor="alice")
        offered = _commands(client.get(f"/incidents/{inc.id}", headers=_as("rita")).text)
        assert {"add_note", "add_evidence"} <= offered
        assert not offered & {"start_triage", "dismiss", "restrict"}

    def test_an_admin_sees_every_form_and_may_restrict_at_declaration(
        self, pages: tuple[IncidentFlow, httpx.Client]
    ) -> None:
        """An admin is offered lifecycle steps and restrict, and restricted_to on the board."""
        flow, client = pages
        inc = flow.declare("Queue stalls", severity="P2", commander="alice", actor="alice")
        offered = _commands(client.get(f"/incidents/{inc.id}", headers=_as("alice")).text)
        assert {"start_triage", "add_note", "restrict"} <= offered
        board = client.get("/", headers=_as("alice")).text
        assert 'name="restricted_to"' in board
        assert 'name="restricted_to"' not in client.get("/", headers=_as("rita")).text
