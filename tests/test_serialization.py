"""Every event type and every snapshot round-trips through JSON unchanged."""

from __future__ import annotations

import collections.abc
import enum
import json
import types
import typing
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import drive_to
from incidentflow import Event, EventData, Incident, IncidentFlow, Records, State, StoreError
from incidentflow._events import event_types
from incidentflow._serialization import (
    event_from_json,
    event_to_json,
    incident_from_json,
    incident_to_json,
)
from incidentflow.testing import FrozenClock

ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
aware_datetimes = st.datetimes(timezones=st.sampled_from(ZONES))
texts = st.text(max_size=30)


def strategy_for(tp: Any) -> st.SearchStrategy[Any]:
    """A strategy for a resolved field type of the model or the events."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([strategy_for(arg) for arg in typing.get_args(tp)])
    if origin is tuple:
        item, _ellipsis = typing.get_args(tp)
        return st.lists(strategy_for(item), max_size=3).map(tuple)
    if origin is Records:
        (item,) = typing.get_args(tp)
        return st.lists(strategy_for(item), max_size=3).map(Records)
    if origin is collections.abc.Mapping:
        key, value = typing.get_args(tp)
        return st.dictionaries(strategy_for(key), strategy_for(value), max_size=3)
    if tp is type(None):
        return st.none()
    if tp is str:
        return texts
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(min_value=0, max_value=2**31)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if tp is datetime:
        return aware_datetimes
    if tp is date:
        return st.dates()
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if isinstance(tp, type) and attrs.has(tp):
        return records(tp)
    raise TypeError(f"no strategy for {tp!r}")


def records(cls: type) -> st.SearchStrategy[Any]:
    """Instances of an attrs class, every field generated from its type."""
    attrs.resolve_types(cls)
    fields = {f.name: strategy_for(f.type) for f in attrs.fields(cls) if f.init}
    return st.builds(cls, **fields)


EVENT_TYPES = event_types()


def events(data: st.SearchStrategy[EventData]) -> st.SearchStrategy[Event]:
    """Event envelopes around ``data``."""
    return st.builds(
        Event,
        incident_id=texts,
        seq=st.integers(min_value=1, max_value=10**6),
        at=aware_datetimes,
        actor=texts,
        data=data,
        idempotency_key=st.none() | texts,
        schema_version=st.integers(min_value=1, max_value=3),
    )


class TestEventRoundTrip:
    def test_every_event_type_is_covered(self) -> None:
        """The event registry holds one class per stored type name, all EventData."""
        assert len(EVENT_TYPES) >= 24
        assert all(issubclass(cls, EventData) for cls in EVENT_TYPES.values())
        assert all(name == cls.TYPE for name, cls in EVENT_TYPES.items())

    @pytest.mark.parametrize("type_name", sorted(EVENT_TYPES))
    @settings(max_examples=40, deadline=None)
    @given(data=st.data())
    def test_event_round_trips_through_json(self, type_name: str, data: st.DataObject) -> None:
        """An event of every type comes back from its JSON line equal, unicode included."""
        event = data.draw(events(records(EVENT_TYPES[type_name])))
        line = event_to_json(event)
        assert "\n" not in line
        assert json.loads(line)["type"] == type_name
        assert event_from_json(line) == event

    @settings(max_examples=40, deadline=None)
    @given(event=events(st.one_of([records(cls) for cls in EVENT_TYPES.values()])))
    def test_json_is_stable(self, event: Event) -> None:
        """Serialising the round-tripped event gives the same JSON again."""
        line = event_to_json(event)
        assert event_to_json(event_from_json(line)) == line


class TestSnapshotRoundTrip:
    @settings(max_examples=60, deadline=None)
    @given(incident=records(Incident))
    def test_snapshot_round_trips_through_json(self, incident: Incident) -> None:
        """A snapshot, with every nested record and unicode text, comes back equal."""
        assert incident_from_json(incident_to_json(incident)) == incident

    @pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
    def test_real_histories_round_trip(self, state: State) -> None:
        """The snapshots and events of a real lifecycle round-trip, and replay still works."""
        clock = FrozenClock(datetime(2026, 11, 27, 14, 0, tzinfo=UTC))
        flow = IncidentFlow.in_memory(clock=clock)
        inc = drive_to(flow, clock, state, texts={"summary": "résumé 🔥 結帳"})
        assert incident_from_json(incident_to_json(inc)) == inc
        for event in flow.history(inc.id):
            assert event_from_json(event_to_json(event)) == event


class TestMalformed:
    @pytest.mark.parametrize(
        "line",
        [
            "not json",
            "{}",
            '{"type": "no_such_event", "incident_id": "x", "seq": 1}',
            '{"incident_id":"x","seq":1,"type":"note_added","at":"2026-11-27T14:00:00",'
            '"actor":"a","data":{"text":"t"}}',
        ],
        ids=["not-json", "empty", "unknown-type", "naive-time"],
    )
    def test_malformed_event_is_a_store_error(self, line: str) -> None:
        """Stored events that cannot be read raise StoreError, never a bare exception."""
        with pytest.raises(StoreError):
            event_from_json(line)

    @pytest.mark.parametrize("text", ["[]", "{}", "nope"])
    def test_malformed_snapshot_is_a_store_error(self, text: str) -> None:
        """Stored snapshots that cannot be read raise StoreError."""
        with pytest.raises(StoreError):
            incident_from_json(text)
