"""The incident type, labels, custom fields and external references: set, checked, kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import (
    COMMANDER,
    STORE_KINDS,
    advance_to,
    codes,
    declare,
    refusal,
    store_flow,
    unchanged,
)
from incidentflow import (
    IncidentFlow,
    Policy,
    ProcessOverride,
    Reference,
    ReferenceTaken,
    State,
    ValidationError,
    replay,
)
from incidentflow.testing import FrozenClock

SECURITY_NEEDS_POSTMORTEM = Policy(types={"security": ProcessOverride(postmortem_required=True)})
FIELDS = Policy(custom_fields={"customer": "text", "seats": "int", "ratio": "float"})


def policy_flow(clock: FrozenClock, policy: Policy) -> IncidentFlow:
    """An in-memory flow on ``clock`` under ``policy``."""
    return IncidentFlow.in_memory(clock=clock, policy=policy)


class TestDeclare:
    def test_everything_is_set_at_declare(self, flow: IncidentFlow) -> None:
        """Type, labels and references given at declare are on the snapshot and the event."""
        inc = declare(
            flow,
            type="security",
            labels={"service": "checkout", "team": "payments"},
            references={"alert": "fp-123", "ticket": "OPS-9"},
        )
        assert inc.type == "security"
        assert dict(inc.labels) == {"service": "checkout", "team": "payments"}
        assert set(inc.references) == {Reference("alert", "fp-123"), Reference("ticket", "OPS-9")}
        assert inc.reference("alert") == "fp-123"
        assert replay(flow.history(inc.id)) == inc

    def test_fields_are_checked_at_declare(self, clock: FrozenClock) -> None:
        """Custom fields given at declare are checked against their declared types."""
        flow = policy_flow(clock, FIELDS)
        inc = declare(flow, fields={"customer": "ACME", "seats": 40})
        assert dict(inc.custom_fields) == {"customer": "ACME", "seats": 40}
        with unchanged(flow), pytest.raises(ValidationError) as info:
            declare(flow, fields={"seats": "forty"})
        assert info.value.field == "fields.seats"

    def test_the_default_type_is_the_policys_first(self, flow: IncidentFlow) -> None:
        """Without ``type`` an incident is an availability incident."""
        assert declare(flow).type == "availability"

    def test_an_unknown_type_is_refused_listing_the_types(self, flow: IncidentFlow) -> None:
        """An unknown type is a ValidationError on type naming every type there is."""
        with unchanged(flow), pytest.raises(ValidationError) as info:
            declare(flow, type="outage")
        assert info.value.field == "type"
        for known in ("availability", "security", "data", "performance"):
            assert known in str(info.value)

    def test_the_type_sets_the_process(self, clock: FrozenClock) -> None:
        """A P3 security incident needs a post-mortem when the security type requires one."""
        flow = policy_flow(clock, SECURITY_NEEDS_POSTMORTEM)
        assert not declare(flow, severity="P3").postmortem_required
        assert declare(flow, severity="P3", type="security").postmortem_required


class TestChangeType:
    def test_change_type_recomputes_postmortem_required(self, clock: FrozenClock) -> None:
        """Changing a P3 to security makes the post-mortem required, recorded with the reason."""
        flow = policy_flow(clock, SECURITY_NEEDS_POSTMORTEM)
        inc = declare(flow, severity="P3")
        after = flow.change_type(inc.id, "security", reason="a leaked token", actor=COMMANDER)
        assert after.type == "security"
        assert after.postmortem_required
        event = flow.history(inc.id)[-1]
        assert event.type == "type_changed"
        assert event.data.previous == "availability"  # type: ignore[attr-defined]
        assert event.data.reason == "a leaked token"  # type: ignore[attr-defined]
        back = flow.change_type(inc.id, "availability", reason="no token leaked", actor=COMMANDER)
        assert not back.postmortem_required
        assert replay(flow.history(inc.id)) == back

    def test_once_resolved_a_change_never_drops_the_postmortem(self, clock: FrozenClock) -> None:
        """A resolved P3 security incident keeps its post-mortem when it becomes availability."""
        flow = policy_flow(clock, SECURITY_NEEDS_POSTMORTEM)
        inc = declare(flow, severity="P3", type="security")
        advance_to(flow, clock, inc.id, State.RESOLVED)
        after = flow.change_type(inc.id, "availability", reason="misfiled", actor=COMMANDER)
        assert after.postmortem_required

    def test_the_same_type_or_an_unknown_one_is_refused(self, flow: IncidentFlow) -> None:
        """Changing to the type it has, or to one the policy lacks, is refused on type."""
        inc = declare(flow)
        for bad in ("availability", "outage"):
            with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
                flow.change_type(inc.id, bad, reason="x", actor=COMMANDER)
            assert info.value.field == "type"

    def test_a_reason_is_required(self, flow: IncidentFlow) -> None:
        """A type change without a reason is refused on reason."""
        inc = declare(flow)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.change_type(inc.id, "security", reason="", actor=COMMANDER)
        assert info.value.field == "reason"


class TestLabels:
    def test_labels_are_set_replaced_and_removed(self, flow: IncidentFlow) -> None:
        """A new value replaces the old; removed keys disappear; each change is an event."""
        inc = declare(flow, labels={"service": "checkout"})
        inc = flow.set_labels(inc.id, {"team": "payments", "service": "cart"}, actor=COMMANDER)
        assert dict(inc.labels) == {"service": "cart", "team": "payments"}
        inc = flow.set_labels(inc.id, remove=["service"], actor=COMMANDER)
        assert dict(inc.labels) == {"team": "payments"}
        assert [e.type for e in flow.history(inc.id)][-2:] == ["labels_set", "labels_set"]
        assert replay(flow.history(inc.id)) == inc

    def test_labels_on_the_snapshot_are_read_only(self, flow: IncidentFlow) -> None:
        """No caller can change a snapshot's labels in place."""
        inc = declare(flow, labels={"service": "checkout"})
        with pytest.raises(TypeError):
            inc.labels["service"] = "cart"  # type: ignore[index]

    @pytest.mark.parametrize(
        ("labels", "remove", "field"),
        [
            ({}, [], "labels"),
            ({"team": "x"}, ["team"], "remove"),
            ({}, ["region"], "remove"),
            ({"": "x"}, [], "labels"),
            ({"service": ""}, [], "labels"),
        ],
    )
    def test_bad_changes_are_refused(
        self, flow: IncidentFlow, labels: dict[str, str], remove: list[str], field: str
    ) -> None:
        """Nothing to do, a key both set and removed, an absent key or an empty part is refused."""
        inc = declare(flow, labels={"service": "checkout"})
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.set_labels(inc.id, labels, remove=remove, actor=COMMANDER)
        assert info.value.field.startswith(field)

    def test_restricted_labels(self, clock: FrozenClock) -> None:
        """With ``labels={"service": ("checkout",)}`` only that key and value are accepted."""
        flow = policy_flow(clock, Policy(labels={"service": ("checkout",)}))
        inc = declare(flow, labels={"service": "checkout"})
        for bad, field in (
            ({"service": "search"}, "labels.service"),
            ({"team": "x"}, "labels.team"),
        ):
            with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
                flow.set_labels(inc.id, bad, actor=COMMANDER)
            assert info.value.field == field
            assert "checkout" in str(info.value) or "service" in str(info.value)
        with unchanged(flow), pytest.raises(ValidationError):
            declare(flow, labels={"service": "search"})

    def test_labels_can_change_after_closure(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Labels are routing data: they can still be fixed once the incident is closed."""
        inc = declare(flow)
        advance_to(flow, clock, inc.id, State.KB_UPDATED)
        assert flow.set_labels(inc.id, {"team": "payments"}, actor=COMMANDER).labels["team"]


class TestFields:
    def test_fields_are_set_typed_and_removed(self, clock: FrozenClock) -> None:
        """Declared fields take values of their type; removing one drops it."""
        flow = policy_flow(clock, FIELDS)
        inc = declare(flow)
        inc = flow.set_fields(inc.id, {"customer": "ACME", "seats": 12}, actor=COMMANDER)
        assert dict(inc.custom_fields) == {"customer": "ACME", "seats": 12}
        inc = flow.set_fields(inc.id, remove=["customer"], actor=COMMANDER)
        assert dict(inc.custom_fields) == {"seats": 12}
        assert replay(flow.history(inc.id)) == inc

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"seats": "12"}, "fields.seats"),
            ({"seats": True}, "fields.seats"),
            ({"seats": 1.5}, "fields.seats"),
            ({"customer": "two\nlines"}, "fields.customer"),
            ({"region": "eu"}, "fields.region"),
        ],
    )
    def test_wrong_values_are_refused(
        self, clock: FrozenClock, fields: dict[str, object], field: str
    ) -> None:
        """A value of the wrong type, or a field the policy does not declare, is refused."""
        flow = policy_flow(clock, FIELDS)
        inc = declare(flow)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.set_fields(inc.id, fields, actor=COMMANDER)
        assert info.value.field == field

    def test_an_int_field_is_bounded(self, clock: FrozenClock) -> None:
        """An int field refuses a whole number no store can hold, like every other number."""
        flow = policy_flow(clock, FIELDS)
        inc = declare(flow)
        with unchanged(flow, inc.id), pytest.raises(ValidationError):
            flow.set_fields(inc.id, {"seats": 10**30}, actor=COMMANDER)

    @pytest.mark.parametrize("value", [1e15, -2e16, float("inf"), float("nan")])
    def test_a_float_field_stays_a_float_in_every_store(
        self, clock: FrozenClock, value: float
    ) -> None:
        """Floats beyond 1e15 lose their point in JSON (1e+16): they are refused, not changed."""
        flow = policy_flow(clock, FIELDS)
        inc = declare(flow)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.set_fields(inc.id, {"ratio": value}, actor=COMMANDER)
        assert info.value.field == "fields.ratio"

    def test_negative_zero_is_zero(self, clock: FrozenClock) -> None:
        """-0.0 is kept as 0.0, so every store's filter finds it the same way."""
        flow = policy_flow(clock, FIELDS)
        inc = declare(flow)
        after = flow.set_fields(inc.id, {"ratio": -0.0}, actor=COMMANDER)
        assert str(after.custom_fields["ratio"]) == "0.0"

    def test_removing_an_unset_field_is_refused(self, clock: FrozenClock) -> None:
        """Removing a field that has no value is refused on remove."""
        flow = policy_flow(clock, FIELDS)
        inc = declare(flow)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.set_fields(inc.id, remove=["seats"], actor=COMMANDER)
        assert info.value.field == "remove"


class TestReferences:
    def test_add_and_remove(self, flow: IncidentFlow) -> None:
        """A reference is attached and detached, each an event."""
        inc = declare(flow)
        inc = flow.add_reference(inc.id, "channel", "#inc-checkout", actor=COMMANDER)
        assert inc.reference("channel") == "#inc-checkout"
        inc = flow.remove_reference(inc.id, "channel", "#inc-checkout", actor=COMMANDER)
        assert not inc.references
        assert replay(flow.history(inc.id)) == inc

    def test_attaching_twice_or_detaching_an_absent_one_is_refused(
        self, flow: IncidentFlow
    ) -> None:
        """The same reference twice, or detaching one not there, is refused with its code."""
        inc = declare(flow, references={"alert": "fp-1"})
        present = refusal(
            flow, inc.id, lambda: flow.add_reference(inc.id, "alert", "fp-1", actor=COMMANDER)
        )
        assert codes(present) == {"reference.present"}
        absent = refusal(
            flow, inc.id, lambda: flow.remove_reference(inc.id, "alert", "fp-2", actor=COMMANDER)
        )
        assert codes(absent) == {"reference.unknown"}


@pytest.mark.parametrize("kind", STORE_KINDS)
class TestOnEveryStore:
    def test_type_labels_fields_references_are_stored(
        self, kind: str, tmp_path: Path, clock: FrozenClock
    ) -> None:
        """What is set at declare and later reloads from the store and replays."""
        with store_flow(kind, tmp_path, clock, policy=FIELDS) as flow:
            inc = declare(
                flow,
                type="data",
                labels={"service": "checkout"},
                fields={"customer": "ACME"},
                references={"alert": "fp-1"},
            )
            flow.set_labels(inc.id, {"team": "payments"}, actor=COMMANDER)
            flow.set_fields(inc.id, {"seats": 3}, actor=COMMANDER)
            flow.add_reference(inc.id, "ticket", "OPS-1", actor=COMMANDER)
            after = flow.change_type(inc.id, "security", reason="a leak", actor=COMMANDER)
            assert flow.get(inc.id) == after
            assert dict(after.labels) == {"service": "checkout", "team": "payments"}
            assert dict(after.custom_fields) == {"customer": "ACME", "seats": 3}
            assert set(after.references) == {
                Reference("alert", "fp-1"),
                Reference("ticket", "OPS-1"),
            }
            assert replay(flow.history(inc.id)) == after

    def test_a_reference_is_unique_among_open_incidents(
        self, kind: str, tmp_path: Path, clock: FrozenClock
    ) -> None:
        """A second open incident cannot take a held reference; it can once the first resolves."""
        with store_flow(kind, tmp_path, clock) as flow:
            first = declare(flow, texts={"title": "Checkout down"}, references={"alert": "fp-1"})
            second = declare(flow, texts={"title": "Cart down"})
            with unchanged(flow), pytest.raises(ReferenceTaken) as info:
                declare(flow, texts={"title": "Search down"}, references={"alert": "fp-1"})
            assert info.value.holder == first.id
            with unchanged(flow, second.id), pytest.raises(ReferenceTaken) as info:
                flow.add_reference(second.id, "alert", "fp-1", actor=COMMANDER)
            assert (info.value.kind, info.value.value) == ("alert", "fp-1")
            flow.add_reference(second.id, "ticket", "fp-1", actor=COMMANDER)  # another kind
            advance_to(flow, clock, first.id, State.RESOLVED)
            after = flow.add_reference(second.id, "alert", "fp-1", actor=COMMANDER)
            assert after.reference("alert") == "fp-1"

    def test_reopening_onto_a_taken_reference_is_refused(
        self, kind: str, tmp_path: Path, clock: FrozenClock
    ) -> None:
        """A resolved incident whose reference another open incident took cannot reopen."""
        with store_flow(kind, tmp_path, clock) as flow:
            first = declare(flow, texts={"title": "Checkout down"}, references={"alert": "fp-1"})
            advance_to(flow, clock, first.id, State.RESOLVED)
            second = declare(flow, texts={"title": "Checkout down again"})
            flow.add_reference(second.id, "alert", "fp-1", actor=COMMANDER)
            with unchanged(flow, first.id), pytest.raises(ReferenceTaken) as info:
                flow.reopen(first.id, reason="it came back", actor=COMMANDER)
            assert info.value.holder == second.id
