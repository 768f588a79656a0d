"""The API's JSON form of a snapshot is its stored form, whatever it shares with the last."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import advance_to, declare, every_event_type
from incidentflow import IncidentFlow, Policy
from incidentflow._decide import evolve
from incidentflow._serialization import incident_to_dict
from incidentflow.exceptions import IncidentFlowError
from incidentflow.testing import FrozenClock
from incidentflow.web import _snapshots
from incidentflow.web._json import jsonable
from incidentflow.web._snapshots import encode, snapshot_json


def _snapshots_of(clock: FrozenClock) -> list[object]:
    """Every snapshot of one incident whose history holds every event type, oldest first."""
    flow = IncidentFlow.in_memory(clock=clock, policy=Policy(custom_fields={"customer": "text"}))
    history = flow.history(every_event_type(flow, clock).id)
    snapshots, inc = [], None
    for event in history:
        inc = evolve(inc, event)
        snapshots.append(inc)
    return snapshots


def test_every_snapshot_answers_its_stored_form(clock: FrozenClock) -> None:
    """Each step's answer equals incident_to_dict, amended and retracted items included."""
    snapshots = _snapshots_of(clock)
    # Oldest first, newest first, then interleaved: every kept text is met out of order.
    middle = len(snapshots) // 2
    mixed = [s for pair in zip(snapshots[:middle], snapshots[middle:], strict=False) for s in pair]
    for snapshot in [*snapshots, *reversed(snapshots), *mixed]:
        assert jsonable(snapshot) == incident_to_dict(snapshot)  # type: ignore[arg-type]
        stored = incident_to_dict(snapshot)  # type: ignore[arg-type]
        assert snapshot_json(snapshot) == encode(stored)  # type: ignore[arg-type]
    assert json.loads(snapshot_json(snapshots[-1])) == incident_to_dict(snapshots[-1])  # type: ignore[arg-type]


def test_the_forms_kept_never_outlive_their_bound(
    clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for only a few items, the kept forms start afresh and answers stay right."""
    monkeypatch.setattr(_snapshots, "KEPT_ITEMS", 3)
    monkeypatch.setattr(_snapshots, "KEPT_ANSWERS", 2)
    encoder = _snapshots._encoder()
    monkeypatch.setattr(encoder, "kept", {})  # whatever earlier tests left
    monkeypatch.setattr(encoder, "texts", {})
    monkeypatch.setattr(encoder, "lists", {})
    monkeypatch.setattr(encoder, "last", {})
    flow = IncidentFlow.in_memory(clock=clock)
    others = [
        flow.declare(f"Other {n}", severity="P3", commander="al", actor="al") for n in range(5)
    ]
    for snapshot in [*_snapshots_of(clock), *others]:
        stored = incident_to_dict(snapshot)  # type: ignore[arg-type]
        assert jsonable(snapshot) == stored
        assert snapshot_json(snapshot) == encode(stored)  # type: ignore[arg-type]
        assert len(encoder.kept) <= 3
        assert len(encoder.texts) <= 3
        assert len(encoder.lists) <= 3
        assert len(encoder.last) <= 2


def test_a_reused_identity_never_answers_another_values_text(
    clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fresh copies encoded, dropped and collected, again and again: each text is its own."""
    import gc

    from incidentflow._serialization import incident_from_dict

    monkeypatch.setattr(_snapshots, "KEPT_ITEMS", 16)
    stored = [incident_to_dict(s) for s in _snapshots_of(clock)]  # type: ignore[arg-type]
    for round_ in range(60):
        expected = stored[(round_ * 7) % len(stored)]
        copy = incident_from_dict(json.loads(json.dumps(expected)))  # new objects every time
        assert snapshot_json(copy) == encode(expected)
        del copy
        gc.collect()  # their identities are free to be reused by the next copy


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 1),
            st.sampled_from(["add_note", "add_evidence", "start_triage", "set_labels", "get"]),
            st.text(min_size=1, max_size=8),
        ),
        max_size=30,
    )
)
def test_answers_stay_exact_whatever_the_order(steps: list[tuple[int, str, str]]) -> None:
    """Two flows, one incident id, commands and reads in any order: every text is exact."""
    clock = FrozenClock(datetime(2026, 11, 27, 14, 0, tzinfo=UTC))
    flows = [IncidentFlow.in_memory(clock=clock) for _ in range(2)]
    ids = [f.declare("Same title", severity="P2", commander="al", actor="al").id for f in flows]
    assert ids[0] == ids[1]  # the same id, two different histories
    for which, command, text in steps:
        flow = flows[which]
        arguments: dict[str, object] = {
            "add_note": {"text": text},
            "add_evidence": {"source": "logs", "content": text},
            "start_triage": {},
            "set_labels": {"labels": {"k": text}},
            "get": {},
        }[command]
        try:
            if command == "get":
                snapshot = flow.get(ids[which])
            else:
                snapshot = flow.execute(command, ids[which], actor="al", **arguments).incident
        except IncidentFlowError:
            snapshot = flow.get(ids[which])
        assert snapshot_json(snapshot) == encode(incident_to_dict(snapshot))


def _in_rca(clock: FrozenClock) -> tuple[IncidentFlow, str]:
    flow = IncidentFlow.in_memory(clock=clock)
    return flow, advance_to(flow, clock, declare(flow).id, "rca").id


def test_an_older_version_after_a_newer_one(clock: FrozenClock) -> None:
    """A list's text is extended only from a shorter version of it, never cut back."""
    flow, incident_id = _in_rca(clock)
    old = flow.add_note(incident_id, "one", actor="al")
    new = flow.add_note(incident_id, "two", actor="al")
    assert snapshot_json(new) == encode(incident_to_dict(new))
    assert snapshot_json(old) == encode(incident_to_dict(old))


def test_an_amended_item_then_an_append(clock: FrozenClock) -> None:
    """A list whose middle item was replaced is not extended from its old text."""
    flow, incident_id = _in_rca(clock)
    flow.add_why(incident_id, "first", actor="al")
    two = flow.add_why(incident_id, "second", actor="al")
    assert snapshot_json(two) == encode(incident_to_dict(two))
    flow.amend(incident_id, "why:2", "second, corrected", reason="typo", actor="al")
    three = flow.add_why(incident_id, "third", actor="al")  # its first why is the same object
    assert snapshot_json(three) == encode(incident_to_dict(three))
