"""The pages over plain HTTP: user text escaped everywhere, forms, ETags and errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import markupsafe
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pages_conftest import ACTOR, Site, site

from incidentflow import State
from incidentflow.exceptions import ValidationError
from incidentflow.testing import FrozenClock

#: Text that would run script if a page reflected it unescaped.
PAYLOADS = (
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '"><svg onload=alert(1)>',
    "</textarea><script>alert(2)</script>",
)
#: The triage questions the default policy requires before containment.
TRIAGE = ("symptom", "started_at", "scope")


@pytest.fixture
def served(tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    """The pages of a fresh SQLite flow, on a real uvicorn."""
    with site(tmp_path, clock) as running_site:
        yield running_site


@pytest.fixture
def client(served: Site) -> Iterator[httpx.Client]:
    """An httpx client for the served pages."""
    with httpx.Client(base_url=served.url, timeout=30) as http:
        yield http


def assert_escaped(response: httpx.Response, payload: str) -> None:
    """``payload`` shows only escaped: never as markup."""
    assert payload not in response.text
    assert str(markupsafe.escape(payload)) in response.text


class TestEscaping:
    @pytest.mark.parametrize("payload", PAYLOADS)
    def test_no_page_reflects_user_text_unescaped(
        self, served: Site, client: httpx.Client, payload: str
    ) -> None:
        """Titles, names, evidence, notes, answers and searches come back escaped on every page."""
        declared = client.post(
            "/incidents",
            data={"title": f"Checkout {payload}", "severity": "P1", "commander": payload},
        )
        assert declared.status_code == 303
        incident_url = declared.headers["location"]
        commands = [
            ("start_triage", {}),
            ("add_evidence", {"source": payload, "content": payload}),
            *(("answer_triage", {"question": q, "answer": payload}) for q in TRIAGE),
            ("add_note", {"text": payload}),
            ("record_containment", {"description": payload}),
            ("contain", {}),
        ]
        for command, fields in commands:
            done = client.post(f"{incident_url}/commands/{command}", data=fields)
            assert done.status_code == 303, done.text

        for path in (incident_url, "/", f"/search?q={payload}"):
            assert_escaped(client.get(path), payload)
        assert_escaped(client.get("/search", params={"q": f"Checkout {payload}"}), payload)
        metrics = client.get("/metrics", headers={"Accept": "text/html"})
        assert metrics.status_code == 200
        assert payload not in metrics.text

    @pytest.mark.parametrize("payload", PAYLOADS)
    def test_refusals_and_actors_come_back_escaped(
        self, served: Site, client: httpx.Client, payload: str
    ) -> None:
        """A refused input and the X-Actor header are shown escaped."""
        incident = served.flow.declare("Queue stalls", severity="P2", commander="bob", actor="bob")
        refused = client.post(
            f"/incidents/{incident.id}/commands/add_action_item",
            data={"description": "load test", "owner": "dana", "due": payload},
        )
        assert refused.status_code == 422
        assert_escaped(refused, payload)
        assert_escaped(client.get("/", headers={"X-Actor": payload}), payload)
        assert payload not in client.get(f"/incidents/{payload}").text

    def test_pages_forbid_inline_script(self, client: httpx.Client) -> None:
        """Every page sends a policy that runs scripts from this server only."""
        policy = client.get("/").headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy


class TestRestricted:
    def test_an_incident_restricted_to_others_is_on_no_page(
        self, served: Site, client: httpx.Client
    ) -> None:
        """The board, search and incident page hide it from others (404) and show it to bob."""
        hidden = served.flow.declare(
            "Payroll export leaks", severity="P1", commander="bob", actor="bob"
        )
        served.flow.restrict(hidden.id, to=["bob"], actor="bob")
        for viewer, shown in ((ACTOR, False), ("bob", True)):
            headers = {"X-Actor": viewer}
            board = client.get("/", headers=headers)
            found = client.get("/search", params={"q": "payroll export"}, headers=headers)
            page = client.get(f"/incidents/{hidden.id}", headers=headers)
            state = client.get(f"/incidents/{hidden.id}/state", headers=headers)
            assert ("Payroll export leaks" in board.text) is shown
            assert ("Payroll export leaks" in found.text) is shown
            assert (page.status_code, state.status_code) == ((200, 200) if shown else (404, 404))
            assert "Payroll" not in page.text or shown


class TestForms:
    def test_a_refused_step_answers_409_with_its_reason_codes(
        self, served: Site, client: httpx.Client
    ) -> None:
        """Containing too early re-renders the page with every unmet reason and its code."""
        incident = served.flow.declare("Queue stalls", severity="P2", commander="bob", actor="bob")
        served.flow.start_triage(incident.id, actor="bob")
        refused = client.post(f"/incidents/{incident.id}/commands/contain")
        assert refused.status_code == 409
        for code in ("evidence.missing", "triage.unanswered", "containment.missing"):
            assert f'<code class="code">{code}</code>' in refused.text
        assert served.flow.get(incident.id).state is State.TRIAGING

    def test_a_form_post_is_recorded_as_the_x_actor(
        self, served: Site, client: httpx.Client
    ) -> None:
        """The X-Actor header names who a form post is recorded as, over the configured name."""
        incident = served.flow.declare("Queue stalls", severity="P2", commander="bob", actor="bob")
        client.post(
            f"/incidents/{incident.id}/commands/add_note",
            data={"text": "looking"},
            headers={"X-Actor": "carol"},
        )
        client.post(f"/incidents/{incident.id}/commands/add_note", data={"text": "me too"})
        actors = [e.actor for e in served.flow.history(incident.id)][-2:]
        assert actors == ["carol", ACTOR]

    def test_a_resent_form_records_once(self, served: Site, client: httpx.Client) -> None:
        """The same form submitted twice (its idempotency key) records one note."""
        incident = served.flow.declare("Queue stalls", severity="P2", commander="bob", actor="bob")
        form = {"text": "paging the owners", "idempotency_key": "form-1"}
        for _ in range(2):
            sent = client.post(f"/incidents/{incident.id}/commands/add_note", data=form)
            assert sent.status_code == 303
        assert len(served.flow.get(incident.id).notes) == 1

    def test_times_and_dates_are_read_from_their_inputs(
        self, served: Site, client: httpx.Client
    ) -> None:
        """A datetime-local input is read as UTC and a date input as a due date."""
        incident = served.flow.declare("Queue stalls", severity="P2", commander="bob", actor="bob")
        client.post(f"/incidents/{incident.id}/commands/start_triage")
        served.clock.advance(minutes=10)
        contained = client.post(
            f"/incidents/{incident.id}/commands/record_containment",
            data={"description": "drained the queue", "taken_at": "2026-11-27T14:05"},
        )
        assert contained.status_code == 303, contained.text
        client.post(
            f"/incidents/{incident.id}/commands/add_action_item",
            data={"description": "alert on lag", "owner": "dana", "due": "2026-12-11"},
        )
        found = served.flow.get(incident.id)
        assert found.containment[0].at.isoformat() == "2026-11-27T14:05:00+00:00"
        assert found.action_items[0].due.isoformat() == "2026-12-11"

    def test_without_an_actor_a_post_is_refused(self, tmp_path: Path, clock: FrozenClock) -> None:
        """Pages without a configured actor refuse a post that sends no X-Actor, saying how."""
        with site(tmp_path, clock, actor=None) as bare, httpx.Client(base_url=bare.url) as http:
            refused = http.post(
                "/incidents", data={"title": "Queue stalls", "severity": "P2", "commander": "b"}
            )
            assert refused.status_code == 422
            assert "X-Actor" in refused.text
            assert bare.flow.list() == []

    def test_a_bad_option_is_refused(self, served: Site) -> None:
        """A poll interval that is no number of seconds raises ValidationError naming it."""
        from incidentflow.web._pages import page_routes

        with pytest.raises(ValidationError, match="poll_interval"):
            page_routes(served.flow, poll_interval=0)


class TestLiveState:
    def test_the_state_answers_304_until_the_incident_changes(
        self, served: Site, client: httpx.Client
    ) -> None:
        """The incident's state resource carries its version as an ETag."""
        incident = served.flow.declare("Queue stalls", severity="P2", commander="bob", actor="bob")
        first = client.get(f"/incidents/{incident.id}/state")
        assert first.json()["version"] == 1
        etag = first.headers["etag"]
        state = f"/incidents/{incident.id}/state"
        assert client.get(state, headers={"If-None-Match": etag}).status_code == 304
        served.flow.start_triage(incident.id, actor="bob")
        changed = client.get(state, headers={"If-None-Match": etag})
        assert (changed.status_code, changed.json()["state"]) == (200, "triaging")

    def test_the_board_state_changes_with_any_open_incident(
        self, served: Site, client: httpx.Client
    ) -> None:
        """The board's ETag changes when an open incident is declared or changes."""
        etag = client.get("/board/state").headers["etag"]
        assert client.get("/board/state", headers={"If-None-Match": etag}).status_code == 304
        served.flow.declare("Queue stalls", severity="P2", commander="bob", actor="bob")
        assert client.get("/board/state", headers={"If-None-Match": etag}).status_code == 200

    def test_an_unknown_incident_is_404(self, client: httpx.Client) -> None:
        """The page and the state of an incident that does not exist answer 404."""
        assert client.get("/incidents/INC-2026-11-27-nope").status_code == 404
        assert client.get("/incidents/INC-2026-11-27-nope/state").status_code == 404


class TestStatic:
    def test_styles_and_script_ship_in_the_package(self, client: httpx.Client) -> None:
        """The page links its stylesheet and script from this server, which serves them."""
        page = client.get("/").text
        assert "http" not in "".join(
            line for line in page.splitlines() if "<script" in line or "stylesheet" in line
        )
        for name in ("incidentflow.css", "incidentflow.js"):
            assert client.get(f"/static/{name}").status_code == 200
