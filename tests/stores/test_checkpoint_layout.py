"""Checkpoints whose long lists are parsed only when needed, and the Records that hold them."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule
from store_workers import open_kind, postgres_connection, postgres_schema

from helpers import every_event_type
from incidentflow import IncidentFlow, Policy, StoreError
from incidentflow._decide import replay
from incidentflow._model import Incident
from incidentflow._sequences import Records
from incidentflow._serialization import incident_to_dict
from incidentflow.stores import MemoryStore
from incidentflow.stores._chunks import max_chunks
from incidentflow.stores._snapshots import (
    STORED_MIN,
    decode_snapshot,
    dumps,
    encode_checkpoint,
)
from incidentflow.testing import FrozenClock


def _long_incident(flow: IncidentFlow, clock: FrozenClock, extra: int = 70) -> Incident:
    """Every event type, then ``extra`` notes by as many people (two long lists)."""
    incident = every_event_type(flow, clock)
    for n in range(extra):
        flow.add_note(incident.id, f"note {n} — «quoted» \\ \n 🔥", actor=f"user{n}")
    return flow.get(incident.id)


def _flow(store: Any, clock: FrozenClock) -> IncidentFlow:
    policy = Policy(custom_fields={"customer": "text"})
    return IncidentFlow(store, clock=clock, policy=policy, incidents_dir=None)


@pytest.fixture
def long_incident() -> Incident:
    clock = FrozenClock()
    return _long_incident(_flow(MemoryStore(), clock), clock)


def _unread(records: Records[Any]) -> bool:
    """True while a Records read from a store has not parsed its stored items."""
    stored = records._stored
    return stored is not None and stored.read is not None


class TestLayout:
    def test_round_trip_equals_the_snapshot(self, long_incident: Incident) -> None:
        """Encoded and decoded again, a snapshot with long lists is the same snapshot."""
        text = encode_checkpoint(long_incident)
        assert text.startswith('{"$lists":')
        decoded = decode_snapshot(text, long_incident.id, "here")
        assert decoded == long_incident
        assert incident_to_dict(decoded) == incident_to_dict(long_incident)

    def test_it_is_json_holding_every_field(self, long_incident: Incident) -> None:
        """Any JSON reader finds every field: the head's, and each long list under its name."""
        value = json.loads(encode_checkpoint(long_incident))
        whole = {**value["head"], **{k: v for k, v in value.items() if k not in ("$lists", "head")}}
        assert whole == json.loads(dumps(incident_to_dict(long_incident)))

    def test_short_snapshots_stay_plain(self) -> None:
        """Without a list of STORED_MIN items the checkpoint is incident_to_dict's JSON."""
        clock = FrozenClock()
        flow = _flow(MemoryStore(), clock)
        incident = flow.declare("Search is slow", severity="P3", commander="al", actor="al")
        assert encode_checkpoint(incident) == dumps(incident_to_dict(incident))

    def test_long_lists_are_parsed_on_first_use(self, long_incident: Incident) -> None:
        """Decoding parses the head alone; appending and len() parse nothing; reading does."""
        decoded = decode_snapshot(encode_checkpoint(long_incident), long_incident.id, "here")
        assert _unread(decoded.notes)
        assert _unread(decoded.people)
        grown = decoded.notes.appended(long_incident.notes[0])
        assert len(grown) == len(long_incident.notes) + 1
        assert _unread(grown)
        assert _unread(decoded.notes)
        assert list(grown)[:-1] == list(long_incident.notes)
        assert not _unread(decoded.notes)  # they share one list: one parse serves both
        assert list(decoded.notes) == list(long_incident.notes)

    def test_an_unread_list_is_written_back_by_copying_its_text(
        self, long_incident: Incident
    ) -> None:
        """A checkpoint of a decoded, appended-to snapshot is what encoding it afresh gives."""
        decoded = decode_snapshot(encode_checkpoint(long_incident), long_incident.id, "here")
        note = long_incident.notes[-1]
        grown = Incident.__new__(Incident)
        for name in Incident.__slots__:
            if name != "__weakref__" and hasattr(decoded, name):
                object.__setattr__(grown, name, getattr(decoded, name))
        object.__setattr__(grown, "notes", decoded.notes.appended(note))
        text = encode_checkpoint(grown)
        assert _unread(grown.notes)  # the stored text was copied, not the items parsed
        fresh = Incident.__new__(Incident)
        for name in Incident.__slots__:
            if name != "__weakref__" and hasattr(grown, name):
                object.__setattr__(fresh, name, getattr(grown, name))
        object.__setattr__(fresh, "notes", Records(list(grown.notes)))
        assert text == encode_checkpoint(fresh)


class TestDamage:
    def test_a_damaged_list_names_itself_when_read(self, long_incident: Incident) -> None:
        """A list whose text is not its items raises StoreError naming the list, when read."""
        text = encode_checkpoint(long_incident)
        damaged = text.replace('"text":"note 0', '"txet":"note 0', 1)
        decoded = decode_snapshot(damaged, long_incident.id, "db.sqlite")
        with pytest.raises(StoreError, match=r"db.sqlite: the snapshot of .*: the stored notes"):
            list(decoded.notes)

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ('{"$lists":[["', '{"$lists":[[1,"'),  # a place that is not [name, length, count]
            (',"head":{', ',"haed":{'),  # the head is not where it belongs
            ("]]", "]]]"),  # the layout does not parse
        ],
    )
    def test_a_damaged_layout_is_a_store_error(
        self, long_incident: Incident, old: str, new: str
    ) -> None:
        """A layout that does not add up raises StoreError naming the store and the incident."""
        text = encode_checkpoint(long_incident).replace(old, new, 1)
        with pytest.raises(StoreError, match=f"db.sqlite: the snapshot of {long_incident.id}"):
            decode_snapshot(text, long_incident.id, "db.sqlite")

    def test_a_list_of_the_wrong_length_is_a_store_error(self, long_incident: Incident) -> None:
        """A length that does not end on the list's bracket is refused when decoding."""
        text = encode_checkpoint(long_incident)
        layout, _ = json.JSONDecoder().raw_decode(text, len('{"$lists":'))
        name, length, _ = layout[0]
        wrong = text.replace(f'["{name}",{length},', f'["{name}",{length - 1},', 1)
        with pytest.raises(StoreError, match=f"the list '{name}' is not where its place says"):
            decode_snapshot(wrong, long_incident.id, "here")

    def test_a_wrong_count_is_a_store_error_when_read(self, long_incident: Incident) -> None:
        """A count that is not the list's is refused when the items are read."""
        text = encode_checkpoint(long_incident)
        layout, _ = json.JSONDecoder().raw_decode(text, len('{"$lists":'))
        name, length, count = layout[0]
        wrong = text.replace(f'["{name}",{length},{count}]', f'["{name}",{length},{count + 1}]')
        decoded = decode_snapshot(wrong, long_incident.id, "here")
        with pytest.raises(StoreError, match=r"where [0-9]+ were written"):
            list(getattr(decoded, name))


class TestStores:
    @pytest.fixture(params=["sqlite", "jsonl", "postgres"])
    def opened(self, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
        return lambda: open_kind(request.param, tmp_path)

    def test_a_cold_command_on_a_long_incident_parses_no_long_list(self, opened: Any) -> None:
        """A command that appends, on a store just opened, leaves the stored lists unparsed."""
        clock = FrozenClock()
        with _flow(opened(), clock) as flow:
            incident = _long_incident(flow, clock, extra=STORED_MIN + 40)
        with _flow(opened(), clock) as flow:
            after = flow.add_note(incident.id, "pid 7 holds the lock", actor="al")
            assert _unread(after.notes)
            assert len(after.notes) == len(incident.notes) + 1
            assert list(after.notes)[:-1] == list(incident.notes)
            assert flow.verify(incident.id)

    def test_checkpoints_written_from_unread_lists_replay_alike(self, opened: Any) -> None:
        """Checkpoints written across many cold commands always equal the replayed history."""
        clock = FrozenClock()
        with _flow(opened(), clock) as flow:
            incident = _long_incident(flow, clock, extra=STORED_MIN + 20)
        for n in range(40):
            with _flow(opened(), clock) as flow:
                flow.add_note(incident.id, f"cold note {n}", actor="bob")
        with _flow(opened(), clock) as flow:
            stored = flow.get(incident.id)
            replayed = replay(list(flow.history(incident.id)))
            assert stored == replayed
            assert [n.text for n in stored.notes][-2:] == ["cold note 38", "cold note 39"]

    def test_postgres_keeps_the_head_queryable(self, tmp_path: Path) -> None:
        """PostgreSQL's jsonb head keeps every other field a field, and names the chunks."""
        clock = FrozenClock()
        store = open_kind("postgres", tmp_path)
        with _flow(store, clock) as flow:
            incident = _long_incident(flow, clock, extra=STORED_MIN + 20)
        with postgres_connection() as conn:
            title, layout, has_notes = conn.execute(
                f"SELECT body ->> 'title', body -> '$chunks', body ? 'notes' "
                f'FROM "{postgres_schema(tmp_path)}".snapshots'
            ).fetchone()
        assert title == incident.title
        assert not has_notes
        assert "notes" in [entry[0] for entry in layout]


# -- Records, unread and read, against a plain list -----------------------------------


def _read_counting(calls: list[int]) -> Any:
    def read(text: str) -> list[Any]:
        calls.append(1)
        return list(json.loads(text))

    return read


def _encode(items: list[Any]) -> str:
    return dumps(items)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(), min_size=1, max_size=20), st.lists(st.integers(), max_size=20))
def test_unread_records_behave_as_read_ones(stored: list[int], more: list[int]) -> None:
    """An unread Records grows, encodes and reads as one built from its items; read once."""
    calls: list[int] = []
    records: Records[int] = Records.unread(dumps(stored), len(stored), _read_counting(calls))
    for item in more:
        records = records.appended(item)
    assert len(records) == len(stored) + len(more)
    assert records.json_text(_encode) == dumps(stored + more)
    assert calls == []
    assert list(records) == stored + more
    assert records == Records(stored + more)
    assert calls == [1]


class RecordsMachine(RuleBasedStateMachine):
    """Versions grown from one another in any order, some unread, all as their lists say."""

    versions = Bundle("versions")

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[int, list[int]] = {}
        self.made: dict[int, Records[int]] = {}
        self.calls: list[int] = []
        self.noted: dict[object, list[int]] = {}

    @initialize(target=versions, items=st.lists(st.integers(), max_size=12), unread=st.booleans())
    def start(self, items: list[int], unread: bool) -> int:
        made = (
            Records.unread(dumps(items), len(items), _read_counting(self.calls))
            if unread
            else Records(items)
        )
        return self._keep(made, items)

    def _keep(self, made: Records[int], items: list[int]) -> int:
        key = len(self.made)
        self.made[key] = made
        self.model[key] = list(items)
        return key

    @rule(target=versions, version=versions, item=st.integers())
    def append(self, version: int, item: int) -> int:
        return self._keep(self.made[version].appended(item), [*self.model[version], item])

    @rule(version=versions)
    def encode(self, version: int) -> None:
        assert self.made[version].json_text(_encode) == dumps(self.model[version])

    @rule(version=versions)
    def read(self, version: int) -> None:
        assert list(self.made[version]) == self.model[version]

    @rule(version=versions, data=st.data())
    def index(self, version: int, data: st.DataObject) -> None:
        items = self.model[version]
        if items:
            at = data.draw(st.integers(-len(items), len(items) - 1))
            assert self.made[version][at] == items[at]
            assert items[at] in self.made[version]

    @rule(version=versions)
    def note(self, version: int) -> None:
        made = self.made[version]
        made.mark(("note", version))
        if len(made):
            assert made.mark() == (("note", version), len(made))
            self.noted[("note", version)] = list(self.model[version])

    @rule(version=versions, data=st.data())
    def after(self, version: int, data: st.DataObject) -> None:
        items = self.model[version]
        count = data.draw(st.integers(0, len(items)))
        assert self.made[version].after(count) == items[count:]

    @invariant()
    def notes_cover_what_was_noted(self) -> None:
        """A note read back covers items that are this version's first ones, as noted."""
        for key, made in self.made.items():
            found = made.mark()
            if found is not None:
                mark, count = found
                assert count <= len(made)
                assert self.noted[mark][:count] == self.model[key][:count]

    @invariant()
    def lengths_hold(self) -> None:
        for key, made in self.made.items():
            assert len(made) == len(self.model[key])

    def teardown(self) -> None:
        for key, made in self.made.items():
            assert list(made) == self.model[key]
            assert made.json_text(_encode) == dumps(self.model[key])


TestRecordsMachine = RecordsMachine.TestCase
TestRecordsMachine.settings = settings(max_examples=80, stateful_step_count=30, deadline=None)


# -- Chunks: SQLite and PostgreSQL write a long list's new items only -------------------


def _chunks(store: Any, kind: str, incident_id: str) -> list[tuple[str, int, int, int]]:
    """(name, chunk, version, count) of each stored chunk of ``incident_id``, in order."""
    sql = (
        "SELECT name, chunk, version, count FROM {table} WHERE incident_id = {mark} "
        "ORDER BY name, chunk"
    )
    if kind == "sqlite":
        rows = store._conn.execute(sql.format(table="snapshot_lists", mark="?"), (incident_id,))
        return [tuple(row) for row in rows]
    with postgres_connection() as conn:
        table = f"{store._sql.schema}.snapshot_lists"
        rows = conn.execute(sql.format(table=table, mark="%s"), (incident_id,))
        return [tuple(row) for row in rows]


@pytest.fixture(params=["sqlite", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class TestChunks:
    def test_a_checkpoint_writes_only_the_new_items(self, kind: str, tmp_path: Path) -> None:
        """Each checkpoint past the first adds one chunk of the 16 items added since."""
        clock = FrozenClock()
        store = open_kind(kind, tmp_path)
        with _flow(store, clock) as flow:
            incident = flow.declare(
                "Checkout returns 500", severity="P3", commander="al", actor="al"
            )
            for n in range(160):
                flow.add_note(incident.id, f"note {n}", actor="al")
            chunks = [row for row in _chunks(store, kind, incident.id) if row[0] == "notes"]
        assert [row[1] for row in chunks] == list(range(len(chunks)))
        # The last checkpoint is at version 160: the declaration and 159 notes.
        assert sum(row[3] for row in chunks) == 159
        assert chunks[-1][2] == 160
        assert len(chunks) >= 4
        assert all(row[3] == 16 for row in chunks[1:])
        assert [row[2] for row in chunks] == sorted(row[2] for row in chunks)

    def test_chunks_are_rewritten_as_one_when_too_many(self, kind: str, tmp_path: Path) -> None:
        """A list never holds more than max_chunks() chunks; the excess is written as one."""
        clock = FrozenClock()
        store = open_kind(kind, tmp_path)
        with _flow(store, clock) as flow:
            incident = flow.declare(
                "Checkout returns 500", severity="P3", commander="al", actor="al"
            )
            for n in range(400):
                flow.add_note(incident.id, f"note {n}", actor="al")
            chunks = [row for row in _chunks(store, kind, incident.id) if row[0] == "notes"]
            assert 1 <= len(chunks) <= max_chunks(400)
            assert sum(row[3] for row in chunks) <= 400
        with _flow(open_kind(kind, tmp_path), clock) as cold:
            assert [n.text for n in cold.get(incident.id).notes] == [
                f"note {n}" for n in range(400)
            ]

    def test_writers_in_two_stores_keep_the_chunks_right(self, kind: str, tmp_path: Path) -> None:
        """Two stores on one database, taking turns: each trusts chunks only as it left them."""
        clock = FrozenClock()
        first, second = (
            _flow(open_kind(kind, tmp_path), clock),
            _flow(open_kind(kind, tmp_path), clock),
        )
        incident = first.declare("Checkout returns 500", severity="P3", commander="al", actor="al")
        for n in range(120):
            (first if (n // 7) % 2 else second).add_note(incident.id, f"note {n}", actor="al")
        for flow in (first, second):
            stored = flow.get(incident.id)
            assert stored == replay(list(flow.history(incident.id)))
            assert flow.verify(incident.id)
        with _flow(open_kind(kind, tmp_path), clock) as cold:
            assert [n.text for n in cold.get(incident.id).notes] == [
                f"note {n}" for n in range(120)
            ]
        first.close()
        second.close()

    def test_damaged_chunks_are_a_store_error(self, tmp_path: Path) -> None:
        """A chunk missing from the rows the head counts on is refused, naming the list."""
        clock = FrozenClock()
        store = open_kind("sqlite", tmp_path)
        with _flow(store, clock) as flow:
            incident = flow.declare(
                "Checkout returns 500", severity="P3", commander="al", actor="al"
            )
            for n in range(100):
                flow.add_note(incident.id, f"note {n}", actor="al")
            store._conn.execute("DELETE FROM snapshot_lists WHERE chunk = 1")
        with (
            _flow(open_kind("sqlite", tmp_path), clock) as cold,
            pytest.raises(StoreError, match="the stored chunks of notes do not add up"),
        ):
            cold.get(incident.id)

    def test_postgres_packs_chunks_and_a_damaged_one_names_itself(self, tmp_path: Path) -> None:
        """PostgreSQL keeps chunks compressed; one that does not expand is refused when read."""
        clock = FrozenClock()
        store = open_kind("postgres", tmp_path)
        with _flow(store, clock) as flow:
            incident = flow.declare(
                "Checkout returns 500", severity="P3", commander="al", actor="al"
            )
            for n in range(100):
                flow.add_note(incident.id, f"note {n}", actor="al")
        table = f"{store._sql.schema}.snapshot_lists"
        with postgres_connection() as conn:
            (packed,) = conn.execute(f"SELECT items FROM {table} WHERE chunk = 0").fetchone()
            assert json.loads(zlib.decompress(packed))[0]["text"] == "note 0"
            conn.execute(f"UPDATE {table} SET items = '\\x00ff'::bytea WHERE chunk = 0")
        with _flow(open_kind("postgres", tmp_path), clock) as cold:
            damaged = cold.get(incident.id)  # the head loads; the notes are read on use
            with pytest.raises(StoreError, match="the stored notes cannot be read"):
                list(damaged.notes)
