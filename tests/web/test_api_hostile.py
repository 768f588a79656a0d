"""The JSON API against hostile or careless input: never a 500, never more than a read shows.

``can`` asks as the caller (or the anonymous viewer) and knows the commands the
command route knows; ``If-None-Match`` compares as RFC 9110 says; malformed
numbers, durations and bodies answer 422 naming what to send instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from pages_conftest import site
from served import Service, running

from helpers import drive_to
from incidentflow import Access, IncidentFlow, Policy, State
from incidentflow.commands import DEFINITIONS
from incidentflow.exceptions import ValidationError
from incidentflow.testing import FrozenClock

#: Alice may do anything; nobody else, the anonymous viewer included, may even read.
ACCESS = Access.from_mapping(
    {"roles": [{"name": "commanders", "permission": "admin", "members": ["alice"]}]}
)
#: An incident only alice may see.
SECRET = {
    "title": "Secret zebra breach",
    "severity": "P1",
    "commander": "alice",
    "restricted_to": ["alice"],
    "references": {"jira": "SEC-42"},
}
#: An incident everyone may see.
OPEN = {"title": "Checkout returns 500", "severity": "P2", "commander": "alice"}
MISSING = "INC-2026-11-27-nothing-here"


def declared(service: Service, body: dict[str, Any]) -> str:
    """Alice declares ``body`` over HTTP; the incident's id."""
    answer = service.post("/incidents", json=body)
    assert answer.status_code == 201, answer.text
    incident_id: str = answer.json()["id"]
    return incident_id


def status(answer: httpx.Response) -> tuple[int, str | None]:
    """The status and the error type of an answer (None for no refusal)."""
    return answer.status_code, answer.json().get("error")


@pytest.fixture
def guarded(clock: FrozenClock) -> Iterator[Service]:
    """A service without tokens whose authorizer lets only alice read or run anything."""
    from incidentflow.web import app

    flow = IncidentFlow.in_memory(clock=clock, policy=Policy(authorizer=ACCESS))
    with running(app(flow)) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield Service(flow, clock, url, client)
    flow.close()


class TestCanAsksAsTheCaller:
    def test_a_hidden_incident_answers_404_like_a_missing_one(self, service: Service) -> None:
        """Without an actor, ``can`` on a restricted incident says no more than a missing id."""
        hidden = declared(service, SECRET)
        anonymous = service.client
        asked = [
            anonymous.get(f"/api/incidents/{hidden}/can/contain"),
            anonymous.post(
                f"/api/incidents/{hidden}/can/remove_reference",
                json={"kind": "jira", "value": "SEC-42"},
            ),
        ]
        missing = anonymous.get(f"/api/incidents/{MISSING}/can/contain")
        assert status(missing) == (404, "IncidentNotFound")
        for answer in asked:
            assert status(answer) == status(missing)
            assert answer.json()["message"] == missing.json()["message"].replace(MISSING, hidden)
        assert status(anonymous.get(f"/api/incidents/{hidden}")) == status(missing)
        # Alice, inside the restriction, still gets her answer.
        hers = service.get(f"/incidents/{hidden}/can/contain", headers={"X-Actor": "alice"})
        assert (hers.status_code, hers.json()["allowed"]) == (200, False)

    def test_under_an_authorizer_can_answers_as_get_does(self, guarded: Service) -> None:
        """An anonymous caller the authorizer refuses every read is refused ``can`` alike.

        Relies on ``IncidentFlow.can`` reading the incident as its actor: were
        it not to, the read's 403 would come back as a 200 ``access.denied``.
        """
        visible = declared(guarded, OPEN)
        hidden = declared(guarded, SECRET)
        anonymous = guarded.client
        for incident_id in (visible, hidden, MISSING):
            read = anonymous.get(f"/api/incidents/{incident_id}")
            assert read.status_code in (403, 404)
            asked = anonymous.get(f"/api/incidents/{incident_id}/can/start_triage")
            posted = anonymous.post(
                f"/api/incidents/{incident_id}/can/add_note", json={"text": "x"}
            )
            assert status(asked) == status(read), incident_id
            assert status(posted) == status(read), incident_id
        assert status(anonymous.get(f"/api/incidents/{visible}")) == (403, "Unauthorized")


class TestCanKnowsTheCommandRoutesCommands:
    @pytest.mark.parametrize(
        "name",
        ["frobnicate", "declare", "__class__", *(n for n, c in DEFINITIONS.items() if c.system)],
    )
    def test_what_the_command_route_refuses_can_refuses_alike(
        self, service: Service, name: str
    ) -> None:
        """Unknown, ``declare`` and system commands answer the command route's 404 everywhere."""
        a = drive_to(service.flow, service.clock, State.DECLARED).id
        ran = service.post(f"/incidents/{a}/{name}", json={})
        assert status(ran) == (404, "UnknownCommand")
        for asked in (
            service.get(f"/incidents/{a}/can/{name}"),
            service.post(f"/incidents/{a}/can/{name}", json={}),
        ):
            assert (asked.status_code, asked.json()) == (404, ran.json())
        assert "start_triage" in ran.json()["message"]  # it says which commands there are


class TestIfNoneMatch:
    def test_weak_tags_lists_and_star_answer_304(self, service: Service) -> None:
        """RFC 9110 §13.1.2: weak comparison, any listed tag, and ``*`` match; others do not."""
        a = drive_to(service.flow, service.clock, State.DECLARED).id
        assert service.flow.get(a).version == 1
        for header in ('W/"1"', '"0", "1"', '"0",W/"1"', '"0" ,  W/"1"', "*"):
            unchanged = service.get(f"/incidents/{a}", headers={"If-None-Match": header})
            assert unchanged.status_code == 304, header
            assert unchanged.headers["etag"] == '"1"'
            assert not unchanged.content
        for header in ('"0", W/"2"', '"10"', '"1', "W/1"):
            changed = service.get(f"/incidents/{a}", headers={"If-None-Match": header})
            assert (changed.status_code, changed.json()["id"]) == (200, a), header


class TestNoServerErrors:
    def test_a_deeply_nested_body_is_refused_naming_it(self, service: Service) -> None:
        """Nesting past 32 levels (or the stack) answers 422 on ``body``, also in ``can``."""
        a = drive_to(service.flow, service.clock, State.TRIAGING).id

        def nested(depth: int) -> bytes:
            return b'{"text":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"

        for depth in (100_000, 33):
            for path in (f"/incidents/{a}/add_note", f"/incidents/{a}/can/add_note"):
                refused = service.post(path, content=nested(depth))
                assert (refused.status_code, refused.json()["field"]) == (422, "body"), path
                assert "nested at most 32 levels" in refused.json()["message"]
        # 32 levels are read: the argument itself is refused, not the body.
        within = service.post(f"/incidents/{a}/add_note", content=nested(32))
        assert (within.status_code, within.json()["field"]) == (422, "text")
        assert not service.flow.get(a).notes

    @pytest.mark.parametrize("value", ["P99999999999D", "PT" + "9" * 400 + "S", "P36501D"])
    def test_a_duration_too_long_is_refused_naming_it(self, service: Service, value: str) -> None:
        """An ISO duration past 100 years (even past what timedelta holds) answers 422."""
        a = drive_to(service.flow, service.clock, State.TRIAGING).id
        body = {"audience": "internal", "text": "digging", "next_update_in": value}
        for path in (f"/incidents/{a}/post_update", f"/incidents/{a}/can/post_update"):
            refused = service.post(path, json=body)
            assert (refused.status_code, refused.json()["field"]) == (422, "next_update_in")
            assert "at most P36500D" in refused.json()["message"]
        assert not service.flow.get(a).updates

    @pytest.mark.parametrize(
        "header",
        [b'"\xb2"', b'"\xb9"', b'"' + b"9" * 5000 + b'"', b'"' + b"9" * 30 + b'"', b'"0"'],
        ids=["superscript-two", "superscript-one", "5000-digits", "30-digits", "zero"],
    )
    def test_if_match_takes_only_ascii_digits(self, service: Service, header: bytes) -> None:
        """If-Match that is no version in digits 0-9 answers 422 naming it; nothing runs."""
        a = drive_to(service.flow, service.clock, State.TRIAGING).id
        refused = service.post(
            f"/incidents/{a}/add_note", json={"text": "x"}, headers={"If-Match": header}
        )
        assert (refused.status_code, refused.json()["field"]) == (422, "If-Match")
        assert 'such as "3"' in refused.json()["message"]
        assert len(refused.json()["message"]) < 300
        assert not service.flow.get(a).notes

    @pytest.mark.parametrize("name", ["incident_id", "command", "self"])
    def test_a_body_naming_a_route_parameter_is_refused(self, service: Service, name: str) -> None:
        """A body key the flow takes as its own parameter answers 422 naming it."""
        a = drive_to(service.flow, service.clock, State.TRIAGING).id
        declare = {"title": "Other", "severity": "P3", "commander": "alice"}
        for path, body in (
            (f"/incidents/{a}/add_note", {"text": "x"}),
            (f"/incidents/{a}/can/add_note", {"text": "x"}),
            ("/incidents", declare),
        ):
            refused = service.post(path, json={**body, name: "INC-2026-11-27-other"})
            assert (refused.status_code, refused.json()["field"]) == (422, name), path
        assert not service.flow.get(a).notes
        assert len(service.flow.list()) == 1

    @pytest.mark.parametrize(
        "number", ["²", "١", "9" * 5000, "1²"], ids=["superscript", "arabic-indic", "5000", "mixed"]
    )
    def test_a_form_number_takes_only_ascii_digits(
        self, tmp_path: Path, clock: FrozenClock, number: str
    ) -> None:
        """A page form's whole number in other digits answers 422 naming it, and runs nothing."""
        with site(tmp_path, clock) as pages, httpx.Client(base_url=pages.url) as http:
            a = drive_to(pages.flow, pages.clock, State.TRIAGING).id
            pages.flow.execute(
                "add_action_item", a, description="add a gate", owner="bob",
                due=date(2026, 12, 11), actor="alice",
            )  # fmt: skip
            refused = http.post(
                f"/incidents/{a}/commands/complete_action_item", data={"number": number}
            )
            assert refused.status_code == 422
            assert "number: not accepted" in refused.text
            assert "digits 0-9" in refused.text
            [item] = pages.flow.get(a).action_items
            assert item.done_at is None

    @pytest.mark.parametrize("length", ["²", "¹3"])
    def test_a_content_length_in_other_digits_is_left_to_the_bound(self, length: str) -> None:
        """A server that passes such a Content-Length on gets the body read within the bound."""
        assert asyncio.run(_read(length, b'{"text": "x"}')) == b'{"text": "x"}'
        with pytest.raises(ValidationError, match="send at most 100"):
            asyncio.run(_read(length, b"x" * 101))

    def test_a_content_length_of_many_digits_is_refused_briefly(self) -> None:
        """A declared length of 5,000 digits answers 422 on ``body`` without echoing it."""
        with pytest.raises(ValidationError, match="5,000 digits; send at most 100 bytes") as info:
            asyncio.run(_read("9" * 5000, b""))
        assert info.value.field == "body"
        assert len(str(info.value)) < 200


async def _read(content_length: str, body: bytes) -> bytes:
    """``read_body`` of a request declaring ``content_length`` (any text) and sending ``body``."""
    from starlette.requests import Request

    from incidentflow.web._bodies import read_body

    header = content_length.encode("latin-1")  # as a server decodes header bytes
    scope = {"type": "http", "method": "POST", "headers": [(b"content-length", header)]}
    sent = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return sent.pop(0) if sent else {"type": "http.disconnect"}

    return await read_body(Request(scope, receive), 100)
