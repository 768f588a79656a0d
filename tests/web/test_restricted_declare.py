"""Declaring an incident restricted from the start: one commit, never heard on ordinary routes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pages_conftest import ACTOR, site
from served import Service

from helpers import START, store_flow
from incidentflow import IncidentFlow, IncidentNotFound, Policy, Unauthorized, ValidationError
from incidentflow._authz import Access
from incidentflow.delivery import Route
from incidentflow.notifiers import RecordingNotifier
from incidentflow.testing import FrozenClock


class _Named(RecordingNotifier):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


@pytest.fixture(params=["memory", "sqlite"])
def flow(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IncidentFlow]:
    """A flow with an ordinary route and one marked for restricted incidents."""
    routes = [Route("everyone"), Route("security", restricted=True)]
    notifiers = [_Named("everyone"), _Named("security")]
    with store_flow(
        request.param, tmp_path, FrozenClock(START), notifiers=notifiers, routes=routes
    ) as made:
        yield made


def _recorders(flow: IncidentFlow) -> tuple[RecordingNotifier, RecordingNotifier]:
    everyone, security = flow.notifiers
    assert isinstance(everyone, RecordingNotifier)
    assert isinstance(security, RecordingNotifier)
    return everyone, security


class TestDeclareRestricted:
    def test_declaration_and_restriction_are_one_commit(self, flow: IncidentFlow) -> None:
        """The history holds Declared then Restricted, recorded together, the actor kept in."""
        inc = flow.declare(
            "Payroll breach", severity="P1", commander="sec", actor="sec", restricted_to=["ann"]
        )
        history = flow.history(inc.id)
        assert [e.type for e in history] == ["declared", "restricted"]
        assert len({e.at for e in history}) == 1
        assert inc.restricted_to == ("ann", "sec")
        assert flow.get(inc.id) == inc
        assert flow.verify(inc.id)

    def test_an_ordinary_route_hears_nothing(self, flow: IncidentFlow) -> None:
        """An unmarked route never hears of it; the route marked restricted hears both events."""
        everyone, security = _recorders(flow)
        flow.declare(
            "Payroll breach", severity="P1", commander="sec", actor="sec", restricted_to="sec"
        )
        assert everyone.types() == []
        assert security.types() == ["declared", "restricted"]

    def test_others_never_see_it(self, flow: IncidentFlow) -> None:
        """Someone outside the restriction finds no incident, in a listing or directly."""
        inc = flow.declare(
            "Payroll breach", severity="P1", commander="sec", actor="sec", restricted_to=["sec"]
        )
        assert flow.list(viewer="bob") == []
        with pytest.raises(IncidentNotFound):
            flow.get(inc.id, viewer="bob")

    def test_a_replay_with_the_same_key_records_nothing(self, flow: IncidentFlow) -> None:
        """The same key and restriction answer the first result; another restriction conflicts."""
        args = {"title": "Payroll breach", "severity": "P1", "commander": "sec", "actor": "sec"}
        first = flow.execute("declare", **args, restricted_to=["sec"], idempotency_key="k1")
        again = flow.execute("declare", **args, restricted_to=["sec"], idempotency_key="k1")
        assert again.replayed
        assert again.incident == first.incident
        assert len(flow.history(first.incident.id)) == 2

    def test_an_empty_restriction_is_refused(self, flow: IncidentFlow) -> None:
        """An empty list names the field and asks for at least one name; nothing is recorded."""
        with pytest.raises(ValidationError, match="at least one") as caught:
            flow.declare("X", severity="P4", commander="al", actor="al", restricted_to=[])
        assert caught.value.field == "restricted_to"
        assert flow.list() == []

    def test_it_needs_the_admin_permission(self) -> None:
        """Under an authorizer, restricting at declaration needs admin, as restrict does."""
        access = Access.from_mapping(
            {
                "roles": [
                    {"name": "sre", "permission": "command", "members": ["al"]},
                    {"name": "sec", "permission": "admin", "members": ["sec"]},
                ]
            }
        )
        flow = IncidentFlow.in_memory(clock=FrozenClock(START), policy=Policy(authorizer=access))
        with pytest.raises(Unauthorized):
            flow.declare("X", severity="P4", commander="al", actor="al", restricted_to=["al"])
        assert flow.list() == []
        assert flow.declare("X", severity="P4", commander="al", actor="al").restricted_to == ()
        made = flow.declare("Y", severity="P4", commander="sec", actor="sec", restricted_to="sec")
        assert made.restricted_to == ("sec",)


class TestDeclareRestrictedOverHttp:
    def test_the_json_body_takes_restricted_to(self, serve: Callable[..., Service]) -> None:
        """POST /api/incidents with restricted_to answers 201; others then get 404."""
        service = serve()
        body = {"title": "Payroll breach", "severity": "P1", "commander": "sec"}
        made = service.client.post(
            "/api/incidents",
            json={**body, "restricted_to": ["group:security"]},
            headers={"X-Actor": "sec"},
        )
        assert made.status_code == 201, made.text
        assert made.json()["restricted_to"] == ["group:security", "sec"]
        location = made.headers["Location"]
        assert service.client.get(location, headers={"X-Actor": "bob"}).status_code == 404
        assert service.client.get(location, headers={"X-Actor": "sec"}).status_code == 200

    def test_the_board_form_takes_restricted_to(self, tmp_path: Path, clock: FrozenClock) -> None:
        """The board's declare form offers the optional field, one name a line."""
        with site(tmp_path, clock) as served, httpx.Client(base_url=served.url) as http:
            board = http.get("/")
            assert 'name="restricted_to"' in board.text
            posted = http.post(
                "/incidents",
                data={
                    "title": "Payroll breach",
                    "severity": "P1",
                    "commander": "sec",
                    "restricted_to": "sec\ngroup:security\n",
                },
            )
            assert posted.status_code == 303, posted.text
            (inc,) = served.flow.list()
            assert inc.restricted_to == (ACTOR, "group:security", "sec")
            assert served.flow.list(viewer="bob") == []

    def test_the_openapi_document_names_it(self, serve: Callable[..., Service]) -> None:
        """The declare operation's body lists restricted_to as a list of names."""
        document = serve().client.get("/api/openapi.json").json()
        body = document["paths"]["/incidents"]["post"]["requestBody"]["content"]
        schema = body["application/json"]["schema"]["properties"]["restricted_to"]
        assert schema["type"] == "array"
