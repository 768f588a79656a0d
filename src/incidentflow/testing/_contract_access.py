"""The query index contract for restricted incidents: what a viewer's queries leave out.

A query index leaves out what :attr:`IncidentQuery.visible_to` may not see
before it orders and pages (see :class:`~incidentflow.stores.QueryIndex`): the
facade does not filter again, so these tests are what keeps a restricted
incident from leaking through a backend.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from .._flow import IncidentFlow
from .._metrics import Milestones
from ..stores._base import IncidentQuery, Store
from ._clock import FrozenClock
from ._suite import ContractFixtures

_BOB = frozenset({"bob"})
_SECURITY = frozenset({"bob", "group:security"})


def _declare_mixed(flow: IncidentFlow, clock: FrozenClock) -> list[tuple[str, bool]]:
    """Ten incidents, newest last, every other one restricted to ``group:security``.

    Returns each (id, restricted), oldest first.
    """
    made = []
    for n in range(10):
        clock.advance(timedelta(minutes=5))
        incident = flow.declare(
            f"Queue lag on worker pool {n}", severity="P2", commander="al", actor="al"
        )
        restricted = n % 2 == 0
        if restricted:
            flow.restrict(incident.id, to=["group:security"], actor="sec")
        made.append((incident.id, restricted))
    return made


class AccessContract(ContractFixtures):
    """Restricted incidents: left out of a viewer's listings, summaries, milestones and search."""

    def test_viewer_pages_are_exact(
        self, store: Store, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Every page a viewer asks for is full: the filter comes before limit and offset."""
        made = _declare_mixed(flow, clock)
        seen = [incident_id for incident_id, restricted in reversed(made) if not restricted]
        pages = [
            [i.id for i in store.list(IncidentQuery(visible_to=_BOB, limit=2, offset=offset))]
            for offset in (0, 2, 4)
        ]
        assert pages == [seen[0:2], seen[2:4], seen[4:5]]
        summaries = store.summaries(IncidentQuery(visible_to=_BOB, limit=3, offset=1))
        assert [s.id for s in summaries] == seen[1:4]
        oldest = store.list(IncidentQuery(visible_to=_BOB, newest_first=False, limit=1))
        assert [i.id for i in oldest] == [seen[-1]]

    def test_members_and_the_host_see_everything(
        self, store: Store, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """A name the incident is restricted to sees it, and no visible_to at all sees all."""
        made = _declare_mixed(flow, clock)
        every = [incident_id for incident_id, _ in reversed(made)]
        assert [i.id for i in store.list(IncidentQuery(visible_to=_SECURITY))] == every
        assert [i.id for i in store.list(IncidentQuery())] == every
        assert [s.id for s in store.summaries(IncidentQuery(visible_to=_SECURITY))] == every
        restricted = {incident_id for incident_id, hidden in made if hidden}
        assert {i.id for i in store.list(IncidentQuery(visible_to=frozenset({"sec"})))} >= (
            restricted
        )

    def test_milestones_and_search_leave_it_out(
        self, store: Store, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Metrics never count, and search never ranks, an incident the viewer may not see."""
        made = _declare_mixed(flow, clock)
        seen = {incident_id for incident_id, restricted in made if not restricted}
        found: list[Milestones] = list(store.milestones(IncidentQuery(visible_to=_BOB)))
        assert {m.incident_id for m in found} == seen
        hits = store.search("queue lag worker pool", limit=3, visible_to=_BOB)
        assert len(hits) == 3
        assert {hit.incident_id for hit in hits} <= seen
        every = store.search("queue lag worker pool", limit=100, visible_to=_SECURITY)
        assert len(every) == len(made)

    def test_filters_combine_with_visibility(
        self, store: Store, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """visible_to narrows every other filter: severity, text, open_only."""
        made = _declare_mixed(flow, clock)
        hidden, shown = made[0][0], made[1][0]
        flow.reclassify(hidden, severity="P1", reason="payments stopped", actor="sec")
        flow.reclassify(shown, severity="P1", reason="payments stopped", actor="al")
        p1 = IncidentQuery(severities=frozenset({flow.get(hidden).severity}), visible_to=_BOB)
        assert [i.id for i in store.list(p1)] == [shown]
        titled = IncidentQuery(text="pool 0", visible_to=_BOB, open_only=True)
        assert list(store.list(titled)) == []

    def test_lifting_and_changing_a_restriction_is_seen(
        self, store: Store, flow: IncidentFlow, clock: FrozenClock, tmp_path: Path
    ) -> None:
        """Unrestricting shows the incident again; restricting it anew to others hides it again."""
        [(incident_id, _)] = _declare_mixed(flow, clock)[:1]
        query = IncidentQuery(visible_to=_BOB)
        assert incident_id not in {i.id for i in store.list(query)}
        flow.unrestrict(incident_id, actor="sec")
        assert incident_id in {i.id for i in store.list(query)}
        flow.add_note(incident_id, text="watching the queue", actor="al")
        assert incident_id in {s.id for s in store.summaries(query)}
        flow.restrict(incident_id, to=["group:payments"], actor="pay")
        assert incident_id not in {i.id for i in store.list(query)}
        assert incident_id in {
            i.id for i in store.list(IncidentQuery(visible_to=frozenset({"group:payments"})))
        }
        if self.durable:
            again = self.reopen(store, tmp_path)
            try:
                assert incident_id not in {i.id for i in again.list(query)}
                assert incident_id not in {m.incident_id for m in again.milestones(query)}
            finally:
                again.close()
