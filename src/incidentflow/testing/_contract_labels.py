"""The query index contract for what incidents are tagged with.

Types, labels, custom fields, external references and open action items: the
filters of ``list`` and ``summaries``, ``find_reference``, and the rule that
one open incident at most holds a reference, which ``append`` enforces.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import pytest

from .._events import (
    ActionItemAdded,
    ActionItemCompleted,
    ActionItemDeclined,
    Dismissed,
    EventData,
    FieldsSet,
    LabelsSet,
    ReferenceAdded,
    ReferenceRemoved,
    Reopened,
    Resolved,
    TypeChanged,
)
from .._flow import IncidentFlow
from .._metrics import milestones
from .._model import Incident, Reference, State
from ..exceptions import ReferenceTaken, ValidationError
from ..stores._base import Commit, IncidentQuery, IncidentSummary, Store
from ._builders import START, declare_commit, next_commit, write
from ._clock import FrozenClock
from ._suite import ContractFixtures

_DB = "INC-2026-11-20-db"
_TILES = "INC-2026-11-21-tiles"
_LOGIN = "INC-2026-11-22-login"
_CHECKOUT = "INC-2026-11-23-checkout"
_LEAK = "INC-2026-11-24-leak"

_ALERT = Reference("alert", "fp-1c9e")


def _tagged(store: Store, incident_id: str, days: int, *data: EventData) -> Incident:
    snapshot = write(store, declare_commit(incident_id, at=START - timedelta(days=days)))
    return write(store, next_commit(snapshot, *data)) if data else snapshot


class LabelsContract(ContractFixtures):
    """The tests of types, labels, fields, references and follow-ups every query index passes."""

    @pytest.fixture
    def tagged(self, store: Store) -> dict[str, Incident]:
        """Five incidents with labels, fields, references, types and action items."""
        due = date(2026, 12, 1)
        found = [
            _tagged(
                store,
                _DB,
                7,
                LabelsSet({"service": "db", "team": "storage"}),
                FieldsSet({"customers": 120, "region": "eu"}),
                ReferenceAdded("ticket", "OPS-1"),
                ActionItemAdded("add a replica", "bob", due),
            ),
            _tagged(
                store,
                _TILES,
                6,
                LabelsSet({"service": "maps", "team": "storage"}),
                FieldsSet({"customers": 120.0, "paying": True}),
            ),
            _tagged(
                store,
                _LOGIN,
                5,
                LabelsSet({"service": "auth"}),
                FieldsSet({"customers": 1}),
                ReferenceAdded("ticket", "OPS-2"),
                ActionItemAdded("cache sessions", "al", due),
                ActionItemCompleted(1),
                Dismissed("false alarm"),
            ),
            _tagged(
                store,
                _CHECKOUT,
                4,
                LabelsSet({"service": "checkout", "team": "payments"}),
                FieldsSet({"customers": "120", "region": "eu"}),
                ReferenceAdded(_ALERT.kind, _ALERT.value),
                ReferenceAdded("ticket", "OPS-1"),
                ActionItemAdded("alert on 5xx", "carol", due),
                ActionItemAdded("load test", "dan", due),
                ActionItemDeclined(1, "duplicate"),
                Resolved(),
            ),
            _tagged(
                store,
                _LEAK,
                3,
                TypeChanged("security", "tokens in the logs"),
                LabelsSet({"service": "checkout", "team": "security"}),
                FieldsSet({"paying": True}),
                ActionItemAdded("rotate tokens", "eve", due),
                ActionItemDeclined(1, "done by the vendor"),
            ),
        ]
        return {snapshot.id: snapshot for snapshot in found}

    def assert_found(
        self, store: Store, tagged: dict[str, Incident], query: IncidentQuery, ids: Sequence[str]
    ) -> None:
        """list, summaries and milestones give ``ids``, newest first, as matches() does."""
        found = store.list(query)
        assert [i.id for i in found] == list(ids)
        assert list(found) == query.apply(tagged.values())
        assert list(store.summaries(query)) == [IncidentSummary.of(i) for i in found]
        assert {m.incident_id: m for m in store.milestones(query)} == {
            i.id: milestones(i) for i in found
        }

    # -- filters -----------------------------------------------------------------------------

    def test_filter_by_type(self, store: Store, tagged: dict[str, Incident]) -> None:
        """types= keeps the incidents of those types; the default type is availability."""
        self.assert_found(store, tagged, IncidentQuery(types=frozenset({"security"})), [_LEAK])
        both = IncidentQuery(types=frozenset({"security", "availability"}))
        self.assert_found(store, tagged, both, [_LEAK, _CHECKOUT, _LOGIN, _TILES, _DB])
        self.assert_found(store, tagged, IncidentQuery(types=frozenset({"data"})), [])

    def test_filter_by_one_label(self, store: Store, tagged: dict[str, Incident]) -> None:
        """labels= with one pair keeps the incidents carrying it."""
        query = IncidentQuery(labels={"service": "checkout"})
        self.assert_found(store, tagged, query, [_LEAK, _CHECKOUT])

    def test_filter_by_every_label(self, store: Store, tagged: dict[str, Incident]) -> None:
        """Every pair must match: two labels narrow the answer."""
        query = IncidentQuery(labels={"service": "checkout", "team": "payments"})
        self.assert_found(store, tagged, query, [_CHECKOUT])
        query = IncidentQuery(labels={"team": "storage"})
        self.assert_found(store, tagged, query, [_TILES, _DB])
        query = IncidentQuery(labels={"team": "storage", "service": "checkout"})
        self.assert_found(store, tagged, query, [])

    def test_label_value_is_compared_whole(self, store: Store, tagged: dict[str, Incident]) -> None:
        """A label's value matches exactly: no prefix, no case folding."""
        for value in ("check", "Checkout", "checkout "):
            self.assert_found(store, tagged, IncidentQuery(labels={"service": value}), [])

    def test_filter_by_field_keeps_its_type(
        self, store: Store, tagged: dict[str, Incident]
    ) -> None:
        """A field matches its value of the same type: 120, 120.0 and "120" are three values."""
        self.assert_found(store, tagged, IncidentQuery(fields={"customers": 120}), [_DB])
        self.assert_found(store, tagged, IncidentQuery(fields={"customers": 120.0}), [_TILES])
        self.assert_found(store, tagged, IncidentQuery(fields={"customers": "120"}), [_CHECKOUT])
        self.assert_found(store, tagged, IncidentQuery(fields={"customers": True}), [])
        self.assert_found(store, tagged, IncidentQuery(fields={"paying": True}), [_LEAK, _TILES])

    def test_filter_by_several_fields(self, store: Store, tagged: dict[str, Incident]) -> None:
        """Every field must match."""
        query = IncidentQuery(fields={"customers": 120, "region": "eu"})
        self.assert_found(store, tagged, query, [_DB])

    def test_filter_by_reference(self, store: Store, tagged: dict[str, Incident]) -> None:
        """reference= keeps the incidents holding it, open or closed."""
        query = IncidentQuery(reference=Reference("ticket", "OPS-1"))
        self.assert_found(store, tagged, query, [_CHECKOUT, _DB])
        self.assert_found(store, tagged, IncidentQuery(reference=_ALERT), [_CHECKOUT])
        query = IncidentQuery(reference=Reference("alert", "OPS-1"))  # the kind counts
        self.assert_found(store, tagged, query, [])

    def test_filter_by_open_action_items(self, store: Store, tagged: dict[str, Incident]) -> None:
        """Only incidents with an item not done, declined or retracted; closed ones too."""
        query = IncidentQuery(open_action_items=True)
        self.assert_found(store, tagged, query, [_CHECKOUT, _DB])

    def test_filters_combine(self, store: Store, tagged: dict[str, Incident]) -> None:
        """The new filters combine with each other and the old ones."""
        query = IncidentQuery(
            labels={"service": "checkout"},
            open_action_items=True,
            states=frozenset({State.RESOLVED}),
        )
        self.assert_found(store, tagged, query, [_CHECKOUT])
        query = IncidentQuery(open_only=True, reference=Reference("ticket", "OPS-1"))
        self.assert_found(store, tagged, query, [_DB])

    def test_filters_follow_changes(self, store: Store, tagged: dict[str, Incident]) -> None:
        """Removing a label, a field, a reference; completing the last open item."""
        db = tagged[_DB]
        db = write(
            store,
            next_commit(
                db,
                LabelsSet({"team": "platform"}, removed=("service",)),
                FieldsSet({}, removed=("customers",)),
                ReferenceRemoved("ticket", "OPS-1"),
                ActionItemCompleted(1),
            ),
        )
        tagged = {**tagged, _DB: db}
        self.assert_found(store, tagged, IncidentQuery(labels={"service": "db"}), [])
        self.assert_found(store, tagged, IncidentQuery(labels={"team": "platform"}), [_DB])
        self.assert_found(store, tagged, IncidentQuery(fields={"customers": 120}), [])
        self.assert_found(store, tagged, IncidentQuery(fields={"region": "eu"}), [_CHECKOUT, _DB])
        query = IncidentQuery(reference=Reference("ticket", "OPS-1"))
        self.assert_found(store, tagged, query, [_CHECKOUT])
        self.assert_found(store, tagged, IncidentQuery(open_action_items=True), [_CHECKOUT])

    def test_summaries_carry_the_type(self, store: Store, tagged: dict[str, Incident]) -> None:
        """A summary names its incident's type."""
        types = {s.id: s.type for s in store.summaries(IncidentQuery())}
        assert types == {incident_id: i.type for incident_id, i in tagged.items()}
        assert types[_LEAK] == "security"

    def test_milestones_carry_the_type(self, store: Store, tagged: dict[str, Incident]) -> None:
        """Milestones name their incident's type, for metrics by type."""
        found = {m.incident_id: m.type for m in store.milestones(IncidentQuery())}
        assert found[_LEAK] == "security"
        assert found[_DB] == "availability"

    # -- find_reference ----------------------------------------------------------------------

    def test_find_reference(self, store: Store, tagged: dict[str, Incident]) -> None:
        """Every incident holding a reference, newest declared first; open ones if asked."""
        ticket = Reference("ticket", "OPS-1")
        assert [i.id for i in store.find_reference(ticket)] == [_CHECKOUT, _DB]
        assert [i.id for i in store.find_reference(ticket, open_only=True)] == [_DB]
        assert store.find_reference(Reference("ticket", "OPS-9")) == []
        assert list(store.find_reference(_ALERT)) == [tagged[_CHECKOUT]]

    # -- one open holder per reference -------------------------------------------------------

    def test_second_open_holder_is_refused(self, store: Store) -> None:
        """A commit taking a reference another open incident holds raises, writing nothing."""
        first = _tagged(store, _DB, 2, ReferenceAdded(_ALERT.kind, _ALERT.value))
        second = _tagged(store, _TILES, 1)
        with pytest.raises(ReferenceTaken) as caught:
            store.append(next_commit(second, ReferenceAdded(_ALERT.kind, _ALERT.value)))
        assert (caught.value.kind, caught.value.value, caught.value.holder) == (
            _ALERT.kind,
            _ALERT.value,
            first.id,
        )
        assert store.load(second.id) == second
        assert len(store.history(second.id)) == second.version
        assert [i.id for i in store.find_reference(_ALERT)] == [first.id]

    def test_declaring_with_a_held_reference_is_refused(self, store: Store) -> None:
        """A new incident declared holding an open incident's reference is not created."""
        _tagged(store, _DB, 2, ReferenceAdded(_ALERT.kind, _ALERT.value))
        declared = declare_commit(_TILES)
        commit = next_commit(declared.snapshot, ReferenceAdded(_ALERT.kind, _ALERT.value))
        both = Commit(_TILES, 0, declared.events + commit.events, commit.snapshot)
        with pytest.raises(ReferenceTaken):
            store.append(both)
        assert not store.exists(_TILES)

    def test_reference_is_free_once_its_holder_closes(self, store: Store) -> None:
        """After the holder is resolved or dismissed, another incident may take it."""
        first = _tagged(store, _DB, 3, ReferenceAdded(_ALERT.kind, _ALERT.value))
        write(store, next_commit(first, Resolved()))
        second = _tagged(store, _TILES, 2, ReferenceAdded(_ALERT.kind, _ALERT.value))
        write(store, next_commit(second, Dismissed("duplicate")))
        third = _tagged(store, _LOGIN, 1, ReferenceAdded(_ALERT.kind, _ALERT.value))
        assert [i.id for i in store.find_reference(_ALERT, open_only=True)] == [third.id]
        assert [i.id for i in store.find_reference(_ALERT)] == [_LOGIN, _TILES, _DB]

    def test_reopening_a_holder_whose_reference_was_taken(self, store: Store) -> None:
        """Reopening the old holder while another open incident holds it raises."""
        first = _tagged(store, _DB, 2, ReferenceAdded(_ALERT.kind, _ALERT.value))
        first = write(store, next_commit(first, Resolved()))
        second = _tagged(store, _TILES, 1, ReferenceAdded(_ALERT.kind, _ALERT.value))
        with pytest.raises(ReferenceTaken) as caught:
            store.append(next_commit(first, Reopened("flapping again", State.TRIAGING)))
        assert caught.value.holder == second.id
        assert store.load(first.id).state is State.RESOLVED
        # Once the other lets go, the reopen goes through and holds it again.
        write(store, next_commit(second, Dismissed("duplicate")))
        write(store, next_commit(first, Reopened("flapping again", State.TRIAGING)))
        assert [i.id for i in store.find_reference(_ALERT, open_only=True)] == [first.id]

    def test_holder_may_keep_and_change_its_references(self, store: Store) -> None:
        """The holder's own commits never clash with itself; a removed reference is free."""
        first = _tagged(store, _DB, 2, ReferenceAdded(_ALERT.kind, _ALERT.value))
        first = write(store, next_commit(first, LabelsSet({"service": "db"})))
        first = write(store, next_commit(first, ReferenceRemoved(_ALERT.kind, _ALERT.value)))
        second = _tagged(store, _TILES, 1, ReferenceAdded(_ALERT.kind, _ALERT.value))
        assert [i.id for i in store.find_reference(_ALERT, open_only=True)] == [second.id]

    def test_same_value_of_another_kind_is_another_reference(self, store: Store) -> None:
        """Uniqueness is per (kind, value)."""
        _tagged(store, _DB, 2, ReferenceAdded("alert", "X-1"))
        _tagged(store, _TILES, 1, ReferenceAdded("ticket", "X-1"))
        assert len(store.find_reference(Reference("ticket", "X-1"), open_only=True)) == 1

    def test_uniqueness_holds_across_instances(self, store: Store, tmp_path: Path) -> None:
        """A second store on the same data (another process) is refused too."""
        first = _tagged(store, _DB, 2, ReferenceAdded(_ALERT.kind, _ALERT.value))
        other = self.second(tmp_path)
        try:
            second = _tagged(other, _TILES, 1)
            with pytest.raises(ReferenceTaken) as caught:
                other.append(next_commit(second, ReferenceAdded(_ALERT.kind, _ALERT.value)))
            assert caught.value.holder == first.id
        finally:
            other.close()

    def test_racing_declarations_with_one_reference(self, store: Store, tmp_path: Path) -> None:
        """Two threads declare holding one reference at once: one incident, one ReferenceTaken."""
        other = self.make_store(tmp_path) if self.durable else store
        try:
            for round_ in range(5):
                barrier = threading.Barrier(2)
                outcomes: list[str] = []

                def declare(
                    target: Store,
                    n: int,
                    round_: int = round_,
                    barrier: threading.Barrier = barrier,
                    outcomes: list[str] = outcomes,
                ) -> None:
                    declared = declare_commit(f"INC-2026-11-27-r{round_}-w{n}")
                    taking = next_commit(declared.snapshot, ReferenceAdded("alert", f"r{round_}"))
                    both = Commit(
                        declared.incident_id, 0, declared.events + taking.events, taking.snapshot
                    )
                    barrier.wait()
                    try:
                        target.append(both)
                        outcomes.append("declared")
                    except ReferenceTaken:
                        outcomes.append("taken")

                threads = [
                    threading.Thread(target=declare, args=(target, n))
                    for n, target in enumerate((store, other))
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=60)
                assert sorted(outcomes) == ["declared", "taken"]
                [holder] = store.find_reference(Reference("alert", f"r{round_}"))
                made = [i for i in store.list(IncidentQuery()) if f"-r{round_}-" in i.id]
                assert made == [holder]  # the refused declaration wrote nothing
        finally:
            if other is not store:
                other.close()

    # -- through the flow --------------------------------------------------------------------

    def test_flow_find(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """find() gives the open holder, else the newest that held it, else None."""
        fp7 = {"alert": "fp-7"}
        old = flow.declare("Disk full", severity="P2", commander="al", actor="al", references=fp7)
        flow.dismiss(old.id, reason="false alarm", actor="al")
        assert flow.find("alert", "fp-7") == flow.get(old.id)
        clock.advance(minutes=5)
        new = flow.declare("Disk again", severity="P2", commander="al", actor="al", references=fp7)
        assert flow.find("alert", "fp-7") == new
        assert flow.find("alert", "fp-8") is None
        with pytest.raises(ReferenceTaken) as caught:
            flow.declare("Disk full 3", severity="P2", commander="al", actor="al", references=fp7)
        assert caught.value.holder == new.id

    def test_flow_find_checks_its_input(self, flow: IncidentFlow) -> None:
        """A kind that is not a key, or a value on two lines, is a ValidationError."""
        with pytest.raises(ValidationError) as caught:
            flow.find("Alert Kind", "x")
        assert caught.value.field == "reference.kind"
        with pytest.raises(ValidationError) as caught:
            flow.find("alert", "two\nlines")
        assert caught.value.field == "reference.value"

    def test_flow_list_filters(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """list() and summaries() take type=, labels=, reference= and open_action_items=."""
        web = flow.declare(
            "Checkout returns 500",
            severity="P2",
            commander="al",
            actor="al",
            labels={"service": "checkout"},
            references={"ticket": "OPS-3"},
        )
        clock.advance(minutes=1)
        leak = flow.declare(
            "Tokens in logs", severity="P1", commander="al", actor="al", type="security"
        )
        assert [i.id for i in flow.list(type="security")] == [leak.id]
        assert [s.id for s in flow.summaries(type=["security", "availability"])] == [
            leak.id,
            web.id,
        ]
        assert [i.id for i in flow.list(labels={"service": "checkout"})] == [web.id]
        assert [i.id for i in flow.list(reference=("ticket", "OPS-3"))] == [web.id]
        assert flow.list(open_action_items=True) == []
        with pytest.raises(ValidationError) as caught:
            flow.list(labels={"Service": "x"})
        assert caught.value.field == "labels"
        with pytest.raises(ValidationError) as caught:
            flow.list(reference="ticket")  # type: ignore[arg-type]
        assert caught.value.field == "reference"
        with pytest.raises(ValidationError) as caught:
            flow.summaries(fields={"customers": [1]})  # type: ignore[dict-item]
        assert caught.value.field == "fields.customers"

    def test_flow_similar_and_metrics_by_type(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """similar(type=) and metrics(type=, by="type") keep or group incidents by type."""
        outage = flow.declare("Checkout gateway timeout", severity="P2", commander="al", actor="al")
        clock.advance(minutes=1)
        leak = flow.declare(
            "Checkout gateway leaks tokens",
            severity="P1",
            commander="al",
            actor="al",
            type="security",
        )
        found = flow.similar(text="checkout gateway", type="security")
        assert [(f.incident_id, f.type) for f in found] == [(leak.id, "security")]
        both = flow.similar(text="checkout gateway", type=["security", "availability"])
        assert {f.incident_id: f.type for f in both} == {
            outage.id: "availability",
            leak.id: "security",
        }
        assert flow.similar(outage.id, type="data") == []
        by_type = flow.metrics(by="type")
        assert [(s.type, s.count) for s in by_type] == [("availability", 1), ("security", 1)]
        [only] = flow.metrics(type="security")
        assert only.count == 1
        assert [m.incident_id for m in flow.milestones(type="security")] == [leak.id]
