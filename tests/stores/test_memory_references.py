"""The memory store answers an open reference's holder from its map, as a scan would."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from incidentflow import IncidentFlow, IncidentFlowError, Reference
from incidentflow.stores import IncidentQuery, MemoryStore

_VALUES = ["OPS-1", "OPS-2", "OPS-3"]
_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["declare", "add", "remove", "dismiss"]),
        st.integers(0, 3),
        st.sampled_from(_VALUES),
    ),
    max_size=25,
)


@given(_STEPS)
@settings(max_examples=150, deadline=None)
def test_find_reference_agrees_with_a_scan(steps: list[tuple[str, int, str]]) -> None:
    store = MemoryStore()
    flow = IncidentFlow(store)
    ids: list[str] = []
    for step, n, value in steps:
        try:
            if step == "declare":
                refs = {"jira": value}
                ids.append(
                    flow.declare(f"Incident {len(ids)}", severity="P3", commander="a",
                                 actor="a", references=refs).id
                )  # fmt: skip
            elif ids:
                incident_id = ids[n % len(ids)]
                if step == "add":
                    flow.add_reference(incident_id, kind="jira", value=value, actor="a")
                elif step == "remove":
                    flow.remove_reference(incident_id, kind="jira", value=value, actor="a")
                else:
                    flow.dismiss(incident_id, reason="noise", actor="a")
        except IncidentFlowError:
            pass  # refused steps (a reference held elsewhere, a closed incident) change nothing
        for value_ in _VALUES:
            ref = Reference("jira", value_)
            scanned = store.list(IncidentQuery(reference=ref, open_only=True))
            assert list(store.find_reference(ref, open_only=True)) == list(scanned)
