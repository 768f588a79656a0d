"""The API's JSON form of a snapshot is its stored form, whatever it shares with the last."""

from __future__ import annotations

import json

import pytest

from helpers import every_event_type
from incidentflow import IncidentFlow, Policy
from incidentflow._decide import evolve
from incidentflow._serialization import incident_to_dict
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
    encoder = _snapshots._encoder()
    monkeypatch.setattr(encoder, "kept", {})  # whatever earlier tests left
    monkeypatch.setattr(encoder, "texts", {})
    for snapshot in _snapshots_of(clock):
        stored = incident_to_dict(snapshot)  # type: ignore[arg-type]
        assert jsonable(snapshot) == stored
        assert snapshot_json(snapshot) == encode(stored)  # type: ignore[arg-type]
        assert len(encoder.kept) <= 3
        assert len(encoder.texts) <= 3


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
