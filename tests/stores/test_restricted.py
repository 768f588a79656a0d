"""Restricted incidents on every store: never listed, searched, counted or announced to others."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import START, STORE_KINDS, store_flow
from incidentflow import IncidentFlow, IncidentNotFound
from incidentflow._transfer import export_lines
from incidentflow.delivery import Route
from incidentflow.notifiers import RecordingNotifier
from incidentflow.testing import FrozenClock


class _Named(RecordingNotifier):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


@pytest.fixture(params=STORE_KINDS)
def flow(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IncidentFlow]:
    routes = [Route("everyone"), Route("security", restricted=True)]
    notifiers = [_Named("everyone"), _Named("security")]
    with store_flow(
        request.param, tmp_path, FrozenClock(START), notifiers=notifiers, routes=routes
    ) as made:
        yield made


def _secret(flow: IncidentFlow) -> tuple[str, str]:
    public = flow.declare("Checkout gateway timeout", severity="P2", commander="al", actor="al")
    secret = flow.declare("Payroll gateway breach", severity="P1", commander="sec", actor="sec")
    flow.restrict(secret.id, to=["sec", "group:security"], actor="sec")
    return public.id, secret.id


class TestRestrictedIncidents:
    def test_listings_omit_it_for_others(self, flow: IncidentFlow) -> None:
        """list and summaries never show it to someone outside; its members and the host see it."""
        public, secret = _secret(flow)
        assert [i.id for i in flow.list(viewer="bob")] == [public]
        assert [s.id for s in flow.summaries(viewer="bob")] == [public]
        assert [i.id for i in flow.list(viewer="bob", severity="P1")] == []
        assert {i.id for i in flow.list(viewer="sec")} == {public, secret}
        assert {i.id for i in flow.list()} == {public, secret}

    def test_search_omits_it_for_others(self, flow: IncidentFlow) -> None:
        """similar() never offers a restricted incident to someone outside."""
        public, secret = _secret(flow)
        found = {s.incident_id for s in flow.similar(text="gateway", viewer="bob")}
        assert secret not in found
        assert public in found
        assert secret in {s.incident_id for s in flow.similar(text="gateway", viewer="sec")}
        with pytest.raises(IncidentNotFound):
            flow.similar(secret, viewer="bob")

    def test_metrics_do_not_count_it_for_others(self, flow: IncidentFlow) -> None:
        """metrics and milestones leave it out for someone outside."""
        _, secret = _secret(flow)
        assert [s.count for s in flow.metrics(viewer="bob")] == [1]
        assert [s.count for s in flow.metrics(viewer="sec")] == [2]
        assert secret not in {m.incident_id for m in flow.milestones(viewer="bob")}

    def test_export_of_what_a_viewer_lists_omits_it(self, flow: IncidentFlow) -> None:
        """An export of the viewer's listing carries no line of the restricted incident."""
        _, secret = _secret(flow)
        lines = list(export_lines(flow, [i.id for i in flow.list(viewer="bob")]))
        assert lines
        assert not any(secret in line for line in lines)

    def test_direct_access_answers_not_found(self, flow: IncidentFlow) -> None:
        """get, history and commands answer IncidentNotFound, as for no incident at all."""
        _, secret = _secret(flow)
        for attempt in (
            lambda: flow.get(secret, viewer="bob"),
            lambda: flow.history(secret, viewer="bob"),
            lambda: flow.add_note(secret, text="peek", actor="bob"),
            lambda: flow.execute("start_triage", secret, actor="bob"),
        ):
            with pytest.raises(IncidentNotFound):
                attempt()
        assert flow.get(secret, viewer="sec").restricted_to == ("group:security", "sec")

    def test_notifications_go_only_to_restricted_routes(self, flow: IncidentFlow) -> None:
        """Once restricted, its events reach the route marked restricted and no other."""
        everyone, security = flow.notifiers
        assert isinstance(everyone, RecordingNotifier)
        assert isinstance(security, RecordingNotifier)
        _, secret = _secret(flow)
        everyone.clear()
        security.clear()
        flow.add_note(secret, text="rotating keys", actor="sec")
        assert everyone.types() == []
        assert security.types() == ["note_added"]

    def test_unrestrict_shows_it_again_and_survives_a_reopen(
        self, flow: IncidentFlow, tmp_path: Path
    ) -> None:
        """The restriction is part of the stored snapshot; lifting it lists it for all again."""
        _, secret = _secret(flow)
        assert flow.verify(secret)
        flow.unrestrict(secret, actor="sec")
        assert secret in {i.id for i in flow.list(viewer="bob")}
        assert flow.verify(secret)
