"""The compiled decoders give exactly what the converter gives, and refuse what it refuses."""

from __future__ import annotations

import functools
import pickle
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import every_event_type
from incidentflow import Incident, IncidentFlow, Policy, Records, StoreError
from incidentflow._decide import evolve
from incidentflow._decoding import decoder
from incidentflow._events import event_types
from incidentflow._serialization import (
    converter,
    event_to_dict,
    incident_from_dict,
    incident_to_dict,
    structurer,
)
from incidentflow.stores import MemoryStore
from incidentflow.stores._snapshots import decode_snapshot
from incidentflow.testing import FrozenClock
from test_serialization import records

EVENT_TYPES = event_types()


def the_same(ours: Any, theirs: Any, path: str = "$") -> None:
    """Equal, of the same types all the way down, datetimes in the same zone."""
    assert type(ours) is type(theirs), path
    if attrs.has(type(ours)):
        for field in attrs.fields(type(ours)):
            name = field.name
            the_same(getattr(ours, name), getattr(theirs, name), f"{path}.{name}")
    elif isinstance(ours, Records | tuple | list):
        assert len(ours) == len(theirs), path
        for n, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            the_same(a, b, f"{path}[{n}]")
    elif isinstance(ours, Mapping):
        assert list(ours) == list(theirs), path
        for key in ours:
            the_same(ours[key], theirs[key], f"{path}[{key!r}]")
    else:
        assert ours == theirs, path
        if isinstance(ours, datetime):
            assert ours.utcoffset() == theirs.utcoffset(), path


def decoded(value: dict[str, Any]) -> Incident:
    return decoder(Incident, converter().get_structure_hook)(value)


def by_converter(value: dict[str, Any]) -> Incident:
    result: Incident = converter().structure(value, Incident)
    return result


@functools.cache
def every_snapshot() -> tuple[Incident, ...]:
    """Each snapshot of a history holding every event type, folded one event at a time."""
    clock = FrozenClock(datetime(2026, 11, 27, 14, 0, tzinfo=UTC))
    policy = Policy(custom_fields={"customer": "text"})
    flow = IncidentFlow(MemoryStore(), clock=clock, policy=policy)
    final = every_event_type(flow, clock)
    snapshots: list[Incident] = []
    incident = None
    for event in flow.history(final.id):
        incident = evolve(incident, event)
        snapshots.append(incident)
    assert snapshots[-1] == final
    return tuple(snapshots)


class TestSameAsTheConverter:
    def test_every_snapshot_of_every_event_type(self) -> None:
        """Every step of a history with every event type decodes as the converter decodes it."""
        for snapshot in every_snapshot():
            stored = incident_to_dict(snapshot)
            the_same(decoded(stored), by_converter(stored))
            the_same(incident_from_dict(stored), snapshot)

    @settings(max_examples=80, deadline=None)
    @given(incident=records(Incident))
    def test_any_snapshot(self, incident: Incident) -> None:
        """Any snapshot, unicode, zones and every nested record included, decodes the same."""
        stored = incident_to_dict(incident)
        the_same(decoded(stored), by_converter(stored))
        assert decoded(stored) == incident

    @pytest.mark.parametrize("type_name", sorted(EVENT_TYPES))
    @settings(max_examples=25, deadline=None)
    @given(data=st.data())
    def test_every_event_payload(self, type_name: str, data: st.DataObject) -> None:
        """Each event type's payload decodes as the converter decodes it."""
        cls = EVENT_TYPES[type_name]
        stored = converter().unstructure(data.draw(records(cls)), cls)
        by_converter = converter().structure(stored, cls)
        # The compiled decoder itself, not structurer(): that would hide a refusal behind
        # its fallback to the converter.
        the_same(decoder(cls, converter().get_structure_hook)(stored), by_converter)
        the_same(structurer(cls)(stored), by_converter)

    def test_what_the_converter_coerces_is_coerced_alike(self) -> None:
        """Values the converter converts (text for a number, a number for text) convert alike."""
        stored = incident_to_dict(every_snapshot()[-1])
        stored.update(version=str(stored["version"]), title=42, reopen_count=1.0)
        stored["people"] = [1, "bo"]
        the_same(decoded(stored), by_converter(stored))

    def test_snapshots_written_before_roles_name_the_commander(self) -> None:
        """A snapshot stored without roles holds the commander as the only one."""
        stored = incident_to_dict(every_snapshot()[3])
        del stored["roles"]
        assert incident_from_dict(stored).roles == {"commander": stored["commander"]}

    def test_decoded_snapshots_pickle_and_hash_alike(self) -> None:
        """A decoded snapshot pickles, and hashes as the converter's does."""
        stored = incident_to_dict(every_snapshot()[-1])
        ours, theirs = decoded(stored), by_converter(stored)
        assert hash(ours) == hash(theirs)
        the_same(pickle.loads(pickle.dumps(ours)), theirs)

    def test_absent_fields_take_their_defaults(self) -> None:
        """Keys left out of a stored snapshot take the field's default, as __init__ gives it."""
        stored = incident_to_dict(every_snapshot()[0])
        for name in ("evidence", "labels", "type", "links", "restricted_to", "reopen_count"):
            del stored[name]
        the_same(decoded(stored), by_converter(stored))


class TestMalformed:
    @pytest.mark.parametrize(
        ("change", "named"),
        [
            ({"declared_at": "2026-11-27T14:00:00"}, "$.declared_at"),
            ({"severity": "P9"}, "$.severity"),
            ({"state": None}, "$.state"),
            ({"evidence": [{"source": "logs"}]}, "$.evidence"),
            ({"action_items": [{"number": 1, "description": "d", "owner": "o", "due": "soon"}]},
             "$.action_items"),
            ({"labels": ["service"]}, "$.labels"),
        ],
        ids=["naive-time", "severity", "state", "evidence-item", "due-date", "labels"],
    )  # fmt: skip
    def test_the_error_names_what_is_malformed(self, change: dict[str, Any], named: str) -> None:
        """A malformed snapshot is a StoreError naming the field to repair."""
        stored = {**incident_to_dict(every_snapshot()[-1]), **change}
        with pytest.raises(
            StoreError, match=r"malformed stored snapshot: .*" + named.replace("$", r"\$")
        ):
            incident_from_dict(stored)

    def test_a_missing_field_is_named(self) -> None:
        """A required field left out is named."""
        stored = incident_to_dict(every_snapshot()[0])
        del stored["declared_by"]
        with pytest.raises(StoreError, match=r"required field missing @ \$\.declared_by"):
            incident_from_dict(stored)

    @pytest.mark.parametrize("body", ["[]", "5", '"text"', "{}", "not json"])
    def test_a_checkpoint_that_is_no_snapshot_names_the_store(self, body: str) -> None:
        """A checkpoint that is no snapshot is a StoreError naming where it was read."""
        with pytest.raises(StoreError, match=r"^shelf: the snapshot of INC-1"):
            decode_snapshot(body, "INC-1", "shelf")

    def test_a_checkpoint_of_another_incident_is_refused(self) -> None:
        """A checkpoint holding another incident's snapshot is refused."""
        snapshot = every_snapshot()[0]
        with pytest.raises(StoreError, match="is of"):
            decode_snapshot(incident_to_dict(snapshot), "INC-other", "shelf")

    def test_a_payload_the_decoder_refuses_goes_to_the_converter(self) -> None:
        """A payload the compiled decoder cannot read is refused by the converter, as before."""
        flow = IncidentFlow.in_memory()
        inc = flow.declare("Checkout returns 500", severity="P1", commander="al", actor="al")
        declared = event_to_dict(flow.history(inc.id)[0])
        cls = EVENT_TYPES[declared["type"]]
        payload = {key: value for key, value in declared["data"].items() if key != "title"}
        with pytest.raises(cattrs.ClassValidationError):
            converter().structure(payload, cls)
        with pytest.raises(cattrs.ClassValidationError):
            structurer(cls)(payload)


@attrs.frozen
class _Node:
    name: str
    child: _Node | None = None


class TestBeyondTheModel:
    def test_a_record_holding_its_own_type_decodes(self) -> None:
        """A recursive record compiles, and decodes as the converter decodes it."""
        stored = {"name": "a", "child": {"name": "b", "child": {"name": "c"}}}
        decode = decoder(_Node, converter().get_structure_hook)
        the_same(decode(stored), converter().structure(stored, _Node))


def test_a_malformed_stored_event_names_its_field() -> None:
    """A payload missing a field is a StoreError naming the event and the field's path."""
    from incidentflow.stores._snapshots import decode_event_dict

    stored = {
        "incident_id": "INC-2026-11-27-x",
        "seq": 3,
        "type": "evidence_added",
        "at": "2026-11-27T14:00:00+00:00",
        "actor": "al",
        "data": {"source": "logs"},
    }
    with pytest.raises(StoreError, match=r"event 3 of INC-2026-11-27-x .*\$\.content"):
        decode_event_dict(stored, "incidents.db")
