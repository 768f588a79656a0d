"""Who the pages act for: signed-in tokens when tokens exist, and never a post from another site.

Served by a real uvicorn on 127.0.0.1; the client is httpx, as a browser would
send the same headers (Origin, Sec-Fetch-Site, cookies).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from served import API_TOKEN, running

from incidentflow import Access, IncidentFlow, Policy
from incidentflow._authz import hash_token
from incidentflow.exceptions import ConfigError
from incidentflow.testing import FrozenClock
from incidentflow.web import app

ALICE = API_TOKEN
BOB = "bob-token-0123456789abcdef-bob"
BOT = "pager-bot-token-0123456789abcdef"
TOKENS = {"alice": ALICE, "bob": BOB}
COOKIE = "incidentflow_token"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def signed(clock: FrozenClock) -> Iterator[tuple[IncidentFlow, str]]:
    """Pages and API guarded by alice's and bob's tokens; a secret incident only alice sees."""
    flow = IncidentFlow.in_memory(clock=clock)
    with running(app(flow, tokens=TOKENS, poll_interval=0.5)) as url:
        yield flow, url
    flow.close()


def _secret(flow: IncidentFlow) -> str:
    incident = flow.declare(
        "Secret zebra breach",
        severity="P1",
        commander="alice",
        actor="alice",
        restricted_to=["alice"],
    )
    return incident.id


def _sign_in(client: httpx.Client, token: str, next_path: str = "/") -> httpx.Response:
    return client.post("/signin", data={"token": token, "next": next_path})


class TestSigningIn:
    def test_without_a_token_every_page_asks_to_sign_in(
        self, signed: tuple[IncidentFlow, str]
    ) -> None:
        """No page, state resource or form post answers a caller who has not signed in."""
        flow, url = signed
        secret = _secret(flow)
        with httpx.Client(base_url=url) as client:
            for path in ("/", f"/incidents/{secret}", "/search?q=zebra"):
                page = client.get(path)
                assert page.status_code == 401, path
                assert 'action="/signin"' in page.text
                assert "Secret zebra breach" not in page.text
            html = client.get("/metrics", headers={"Accept": "text/html"})
            assert html.status_code == 401
            for path in ("/board/state", f"/incidents/{secret}/state"):
                assert client.get(path).status_code == 401
            posted = client.post(f"/incidents/{secret}/commands/start_triage", data={})
            assert posted.status_code == 401
        assert [e.type for e in flow.history(secret)] == ["declared", "restricted"]

    def test_x_actor_is_ignored_once_tokens_exist(self, signed: tuple[IncidentFlow, str]) -> None:
        """Naming someone in X-Actor neither shows their restricted incident nor acts for them."""
        flow, url = signed
        secret = _secret(flow)
        with httpx.Client(base_url=url, headers={"X-Actor": "alice"}) as client:
            assert client.get(f"/incidents/{secret}").status_code == 401
            posted = client.post(f"/incidents/{secret}/commands/start_triage", data={})
            assert posted.status_code == 401
            declared = client.post(
                "/incidents", data={"title": "Forged", "severity": "P4", "commander": "alice"}
            )
            assert declared.status_code == 401
        assert [e.type for e in flow.history(secret)] == ["declared", "restricted"]
        assert [s.title for s in flow.summaries()] == ["Secret zebra breach"]

    def test_a_bearer_token_is_a_signed_in_caller(self, signed: tuple[IncidentFlow, str]) -> None:
        """A reverse proxy or a script may send the token itself, as the API takes it."""
        flow, url = signed
        secret = _secret(flow)
        with httpx.Client(base_url=url, headers=_bearer(ALICE)) as client:
            page = client.get(f"/incidents/{secret}")
            assert page.status_code == 200
            assert "Acting as <strong>alice</strong>" in page.text
            posted = client.post(f"/incidents/{secret}/commands/start_triage", data={})
            assert posted.status_code == 303
        assert flow.history(secret)[-1].actor == "alice"

    def test_the_sign_in_form_keeps_the_token_in_a_strict_cookie(
        self, signed: tuple[IncidentFlow, str]
    ) -> None:
        """A valid token signs in, goes back to the page asked for, and acts as its actor."""
        flow, url = signed
        secret = _secret(flow)
        with httpx.Client(base_url=url) as client:
            done = _sign_in(client, ALICE, f"/incidents/{secret}")
            assert done.status_code == 303
            assert done.headers["location"] == f"/incidents/{secret}"
            cookie = done.headers["set-cookie"].lower()
            assert cookie.startswith(f"{COOKIE}=")
            assert "httponly" in cookie
            assert "samesite=strict" in cookie
            assert "path=/" in cookie
            page = client.get(f"/incidents/{secret}")
            assert page.status_code == 200
            assert "Secret zebra breach" in page.text
            assert 'action="/signout"' in page.text
            note = client.post(f"/incidents/{secret}/commands/add_note", data={"text": "on it"})
            assert note.status_code == 303
            assert client.get("/board/state").status_code == 200
            out = client.post("/signout")
            assert out.status_code == 303
            assert client.get(f"/incidents/{secret}").status_code == 401
        assert flow.history(secret)[-1].actor == "alice"

    def test_a_wrong_token_signs_no_one_in(self, signed: tuple[IncidentFlow, str]) -> None:
        _, url = signed
        with httpx.Client(base_url=url) as client:
            for token in ("", "not-a-token-of-ours-0123456789", ALICE + "x", ALICE[:-1]):
                refused = _sign_in(client, token)
                assert refused.status_code == 401
                assert "not valid" in refused.text
                assert "set-cookie" not in refused.headers
            assert client.get("/").status_code == 401

    @pytest.mark.parametrize(
        "elsewhere",
        ["https://evil.example/", "//evil.example/x", "/\\evil.example", "http:/x", "javascript:x"],
    )
    def test_signing_in_never_sends_the_caller_to_another_site(
        self, signed: tuple[IncidentFlow, str], elsewhere: str
    ) -> None:
        _, url = signed
        with httpx.Client(base_url=url) as client:
            done = _sign_in(client, BOB, elsewhere)
            assert done.status_code == 303
            assert done.headers["location"] == "/"

    def test_a_signed_in_viewer_sees_no_incident_restricted_to_others(
        self, signed: tuple[IncidentFlow, str]
    ) -> None:
        flow, url = signed
        secret = _secret(flow)
        flow.declare("Public queue stalls", severity="P2", commander="bob", actor="bob")
        with httpx.Client(base_url=url) as client:
            _sign_in(client, BOB)
            board = client.get("/")
            assert board.status_code == 200
            assert "Public queue stalls" in board.text
            assert "zebra" not in board.text
            assert client.get(f"/incidents/{secret}").status_code == 404
            found = client.get("/search", params={"q": "zebra breach"})
            assert found.status_code == 200
            assert "0 similar incidents" in found.text
            assert "Secret zebra breach" not in found.text

    def test_pages_refuse_a_fixed_actor_beside_tokens(self, clock: FrozenClock) -> None:
        """Every visitor would act as it: the app is not built."""
        flow = IncidentFlow.in_memory(clock=clock)
        with pytest.raises(ConfigError, match="fixed actor"):
            app(flow, tokens=TOKENS, actor="alice")


class TestAccessTokens:
    """The API tokens of the policy's [access] roles admit the API and the pages."""

    @pytest.fixture
    def guarded(self, clock: FrozenClock) -> Iterator[tuple[IncidentFlow, str]]:
        access = Access.from_mapping(
            {
                "roles": [
                    {
                        "name": "bots",
                        "permission": "command",
                        "tokens": [{"actor": "pager-bot", "sha256": hash_token(BOT)}],
                    }
                ]
            }
        )
        flow = IncidentFlow.in_memory(clock=clock, policy=Policy(authorizer=access))
        with running(app(flow)) as url:
            yield flow, url
        flow.close()

    def test_the_api_takes_an_access_token(self, guarded: tuple[IncidentFlow, str]) -> None:
        flow, url = guarded
        body = {"title": "Disk full", "severity": "P3", "commander": "pager-bot"}
        with httpx.Client(base_url=url) as client:
            declared = client.post("/api/incidents", json=body, headers=_bearer(BOT))
            assert declared.status_code == 201, declared.text
            assert flow.history(declared.json()["id"])[0].actor == "pager-bot"

    def test_naming_the_tokens_actor_without_it_is_refused(
        self, guarded: tuple[IncidentFlow, str]
    ) -> None:
        """The role belongs to whoever holds the token, not to whoever types its name."""
        flow, url = guarded
        body = {"title": "Disk full", "severity": "P3", "commander": "pager-bot"}
        with httpx.Client(base_url=url) as client:
            forged = client.post("/api/incidents", json=body, headers={"X-Actor": "pager-bot"})
            assert forged.status_code == 401
            assert client.get("/", headers={"X-Actor": "pager-bot"}).status_code == 401
        assert list(flow.summaries()) == []

    def test_the_pages_sign_in_with_an_access_token(
        self, guarded: tuple[IncidentFlow, str]
    ) -> None:
        _, url = guarded
        with httpx.Client(base_url=url) as client:
            assert _sign_in(client, BOT).status_code == 303
            board = client.get("/")
            assert board.status_code == 200
            assert "Acting as <strong>pager-bot</strong>" in board.text


class TestPostsFromAnotherSite:
    """A form on another site cannot post to the pages in a responder's name."""

    @pytest.fixture
    def open_pages(self, clock: FrozenClock) -> Iterator[tuple[IncidentFlow, str, str]]:
        """Pages without tokens acting as alice (a trusted network), and one incident."""
        flow = IncidentFlow.in_memory(clock=clock)
        incident = flow.declare("Queue stalls", severity="P2", commander="alice", actor="alice")
        with running(app(flow, actor="alice")) as url:
            yield flow, url, incident.id
        flow.close()

    @pytest.mark.parametrize(
        "headers",
        [
            {"Origin": "https://evil.example"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site", "Origin": "https://sub.example"},
            {"Sec-Fetch-Site": "cross-site", "Origin": "__SELF__"},
        ],
    )
    def test_a_cross_site_post_is_refused_and_records_nothing(
        self, open_pages: tuple[IncidentFlow, str, str], headers: dict[str, str]
    ) -> None:
        flow, url, incident_id = open_pages
        sent = {name: url if value == "__SELF__" else value for name, value in headers.items()}
        with httpx.Client(base_url=url, headers=sent) as client:
            note = client.post(f"/incidents/{incident_id}/commands/add_note", data={"text": "x"})
            assert note.status_code == 403
            assert "another site" in note.text
            declared = client.post(
                "/incidents", data={"title": "Fake P1", "severity": "P1", "commander": "alice"}
            )
            assert declared.status_code == 403
        assert flow.get(incident_id).version == 1
        assert len(flow.summaries()) == 1

    @pytest.mark.parametrize(
        "headers",
        [{}, {"Sec-Fetch-Site": "same-origin"}, {"Origin": "__SELF__"}, {"Sec-Fetch-Site": "none"}],
    )
    def test_a_post_from_the_pages_themselves_runs(
        self, open_pages: tuple[IncidentFlow, str, str], headers: dict[str, str]
    ) -> None:
        flow, url, incident_id = open_pages
        sent = {name: url if value == "__SELF__" else value for name, value in headers.items()}
        with httpx.Client(base_url=url, headers=sent) as client:
            note = client.post(f"/incidents/{incident_id}/commands/add_note", data={"text": "x"})
            assert note.status_code == 303, note.text
        assert flow.get(incident_id).version == 2

    def test_only_url_encoded_forms_are_read(
        self, open_pages: tuple[IncidentFlow, str, str]
    ) -> None:
        """A text/plain body (what a cross-site form can also send) is not taken for a form."""
        flow, url, incident_id = open_pages
        with httpx.Client(base_url=url) as client:
            sent = client.post(
                f"/incidents/{incident_id}/commands/add_note",
                content=b"text=x",
                headers={"Content-Type": "text/plain"},
            )
            assert sent.status_code == 422
            assert "application/x-www-form-urlencoded" in sent.text
        assert flow.get(incident_id).version == 1
