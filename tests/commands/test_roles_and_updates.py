"""Roles with recorded handoffs, roles the policy requires, and status updates on a cadence."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from helpers import (
    COMMANDER,
    RESPONDER,
    STEP,
    STORE_KINDS,
    advance_to,
    codes,
    declare,
    drive_to,
    refusal,
    store_flow,
    unchanged,
)
from incidentflow import (
    Handoff,
    IncidentFlow,
    InvalidTransition,
    Policy,
    ProcessOverride,
    Severity,
    State,
    StatusUpdate,
    ValidationError,
    replay,
)
from incidentflow.testing import FrozenClock

COMMS = "communications_lead"
P1_NEEDS_COMMS = Policy(
    severities={Severity.P1: ProcessOverride(required_roles={"contain": (COMMS,)})}
)


class TestRoles:
    def test_the_commander_holds_the_commander_role(self, flow: IncidentFlow) -> None:
        """A new incident's roles hold its commander, with no handoff yet."""
        inc = declare(flow)
        assert dict(inc.roles) == {"commander": COMMANDER}
        assert not inc.handoffs

    def test_assign_records_a_handoff_from_nobody(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Assigning a vacant role records who took it, when, by whom and the note."""
        inc = declare(flow)
        clock.advance(STEP)
        after = flow.assign_role(
            inc.id, COMMS, "erin", note="owns the status page", actor=COMMANDER
        )
        assert after.roles[COMMS] == "erin"
        assert list(after.handoffs) == [
            Handoff(COMMS, None, "erin", clock(), COMMANDER, "owns the status page")
        ]
        event = flow.history(inc.id)[-1]
        assert event.type == "role_assigned"
        assert event.data.previous is None  # type: ignore[attr-defined]

    def test_hand_over_records_from_and_to(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Assigning a held role hands it over: the handoff names both people and the note."""
        inc = declare(flow)
        flow.assign_role(inc.id, "scribe", "erin", actor=COMMANDER)
        clock.advance(STEP)
        after = flow.assign_role(inc.id, "scribe", "frank", note="erin off shift", actor="erin")
        assert after.roles["scribe"] == "frank"
        assert after.handoffs[-1] == Handoff(
            "scribe", "erin", "frank", clock(), "erin", "erin off shift"
        )
        assert flow.history(inc.id)[-1].data.previous == "erin"  # type: ignore[attr-defined]
        assert replay(flow.history(inc.id)) == after

    def test_release_leaves_the_role_vacant(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Releasing a role removes it from roles and records a handoff to nobody."""
        inc = declare(flow)
        flow.assign_role(inc.id, "operations_lead", "erin", actor=COMMANDER)
        after = flow.release_role(
            inc.id, "operations_lead", note="no more ops work", actor=COMMANDER
        )
        assert "operations_lead" not in after.roles
        assert after.handoffs[-1] == Handoff(
            "operations_lead", "erin", None, clock(), COMMANDER, "no more ops work"
        )
        assert flow.history(inc.id)[-1].data.previous == "erin"  # type: ignore[attr-defined]

    def test_releasing_a_vacant_role_is_refused(self, flow: IncidentFlow) -> None:
        """Releasing a role nobody holds is refused with role.vacant."""
        inc = declare(flow)
        rejection = refusal(
            flow, inc.id, lambda: flow.release_role(inc.id, "scribe", actor=COMMANDER)
        )
        assert codes(rejection) == {"role.vacant"}

    def test_releasing_the_commander_is_refused(self, flow: IncidentFlow) -> None:
        """An incident always has a commander: releasing it says to hand it over instead."""
        inc = declare(flow)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.release_role(inc.id, "commander", actor=COMMANDER)
        assert info.value.field == "role"
        assert "assign_role" in str(info.value)

    def test_an_unknown_role_is_refused_listing_the_roles(self, flow: IncidentFlow) -> None:
        """A role the policy does not have is a ValidationError on role naming the roles."""
        inc = declare(flow)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.assign_role(inc.id, "deputy", "erin", actor=COMMANDER)
        assert info.value.field == "role"
        for role in ("commander", COMMS, "operations_lead", "scribe"):
            assert role in str(info.value)

    def test_releasing_an_unknown_role_is_refused_listing_the_roles(
        self, flow: IncidentFlow
    ) -> None:
        """Releasing a role the policy does not have names the roles, not a vacancy."""
        inc = declare(flow)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.release_role(inc.id, "deputy", actor=COMMANDER)
        assert info.value.field == "role"

    def test_assigning_the_holder_again_is_refused(self, flow: IncidentFlow) -> None:
        """Giving a role to whoever holds it is a ValidationError on person."""
        inc = declare(flow)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.assign_role(inc.id, "commander", COMMANDER, actor=COMMANDER)
        assert info.value.field == "person"

    def test_commander_via_assign_role(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Assigning the commander role changes ``commander`` too, with a handoff."""
        inc = declare(flow)
        after = flow.assign_role(inc.id, "commander", "bob", note="shift change", actor=COMMANDER)
        assert after.commander == "bob"
        assert after.roles["commander"] == "bob"
        assert after.handoffs[-1] == Handoff(
            "commander", COMMANDER, "bob", clock(), COMMANDER, "shift change"
        )

    def test_commander_via_assign_commander(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """The old command keeps working and updates the commander role and the handoffs."""
        inc = declare(flow)
        after = flow.assign_commander(inc.id, "bob", actor=COMMANDER)
        assert after.commander == "bob"
        assert after.roles["commander"] == "bob"
        assert after.handoffs[-1].from_person == COMMANDER
        assert after.handoffs[-1].to_person == "bob"
        assert replay(flow.history(inc.id)) == after

    def test_a_new_commander_cannot_confirm(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """The user who confirms may not be the commander a role handoff made."""
        inc = drive_to(flow, clock, State.FIXED)
        flow.assign_role(inc.id, "commander", "carol", actor=COMMANDER)
        clock.advance(flow.policy.watch_window)
        flow.confirm_by_user(inc.id, user="carol", actor="carol")
        rejection = refusal(flow, inc.id, lambda: flow.resolve(inc.id, actor="carol"))
        assert codes(rejection) == {"confirmation.by_commander"}

    def test_roles_are_refused_once_closed(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """A closed incident takes no role changes; the refusal names the states that do."""
        inc = drive_to(flow, clock, State.KB_UPDATED)
        with unchanged(flow, inc.id), pytest.raises(InvalidTransition):
            flow.assign_role(inc.id, COMMS, "erin", actor=COMMANDER)


class TestRequiredRoles:
    def test_a_p1_needs_a_communications_lead_before_contain(self, clock: FrozenClock) -> None:
        """The policy's required role refuses contain with roles.missing until it is assigned."""
        flow = IncidentFlow.in_memory(clock=clock, policy=P1_NEEDS_COMMS)
        inc = drive_to(flow, clock, State.TRIAGING)
        advance = flow.add_evidence  # the checklist is complete but for the role
        advance(inc.id, source="logs", content="500s", actor=RESPONDER)
        for question in flow.policy.required_triage_answers:
            flow.answer_triage(inc.id, question, "known", actor=RESPONDER)
        flow.record_containment(inc.id, "rolled back", actor=RESPONDER)
        rejection = refusal(flow, inc.id, lambda: flow.contain(inc.id, actor=COMMANDER))
        assert codes(rejection) == {"roles.missing"}
        assert COMMS in str(rejection)
        assert rejection.reasons[0].data["missing"] == [COMMS]
        assert not flow.can(inc.id, "contain")
        flow.assign_role(inc.id, COMMS, "erin", actor=COMMANDER)
        assert flow.contain(inc.id, actor=COMMANDER).state is State.CONTAINED

    def test_other_severities_do_not_need_it(self, clock: FrozenClock) -> None:
        """A P2 contains without the role the P1 override requires."""
        flow = IncidentFlow.in_memory(clock=clock, policy=P1_NEEDS_COMMS)
        assert drive_to(flow, clock, State.CONTAINED, "P2").state is State.CONTAINED

    def test_releasing_the_role_brings_the_refusal_back(self, clock: FrozenClock) -> None:
        """A released required role is missing again."""
        flow = IncidentFlow.in_memory(clock=clock, policy=P1_NEEDS_COMMS)
        inc = drive_to(flow, clock, State.TRIAGING)
        flow.assign_role(inc.id, COMMS, "erin", actor=COMMANDER)
        flow.release_role(inc.id, COMMS, actor=COMMANDER)
        verdict = flow.can(inc.id, "contain")
        assert "roles.missing" in {r.code for r in verdict.reasons}


class TestStatusUpdates:
    def test_an_update_is_recorded_with_the_next_due(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """An update keeps audience, text, time and author; ``next_update_in`` sets the due."""
        inc = declare(flow)
        after = flow.post_update(
            inc.id,
            "external",
            "We are investigating failed checkouts.",
            next_update_in=timedelta(minutes=30),
            actor=COMMANDER,
        )
        due = clock() + timedelta(minutes=30)
        assert list(after.updates) == [
            StatusUpdate(
                "external", "We are investigating failed checkouts.", clock(), COMMANDER, due
            )
        ]
        assert after.next_update_due == due
        assert replay(flow.history(inc.id)) == after

    def test_without_a_cadence_nothing_is_due(self, flow: IncidentFlow) -> None:
        """With no cadence and no ``next_update_in``, no next update is promised."""
        inc = declare(flow)
        after = flow.post_update(inc.id, "internal", "Rolled back.", actor=COMMANDER)
        assert after.next_update_due is None
        assert after.updates[-1].next_update_at is None

    def test_the_severity_cadence_sets_the_next_due(self, clock: FrozenClock) -> None:
        """A P1 cadence of 30 minutes makes the next update due 30 minutes after each one."""
        policy = Policy(
            severities={Severity.P1: ProcessOverride(update_cadence=timedelta(minutes=30))}
        )
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        p1 = declare(flow)
        p2 = declare(flow, severity="P2", texts={"title": "Cart slow"})
        after = flow.post_update(p1.id, "internal", "Investigating.", actor=COMMANDER)
        assert after.next_update_due == clock() + timedelta(minutes=30)
        clock.advance(timedelta(minutes=20))
        after = flow.post_update(p1.id, "internal", "Rolled back.", actor=COMMANDER)
        assert after.next_update_due == clock() + timedelta(minutes=30)
        assert flow.post_update(p2.id, "internal", "x", actor=COMMANDER).next_update_due is None

    def test_an_explicit_next_update_wins_over_the_cadence(self, clock: FrozenClock) -> None:
        """``next_update_in`` overrides the policy's cadence for that update."""
        flow = IncidentFlow.in_memory(clock=clock, policy=Policy(update_cadence=timedelta(hours=1)))
        inc = declare(flow)
        after = flow.post_update(
            inc.id, "external", "x", next_update_in=timedelta(minutes=10), actor=COMMANDER
        )
        assert after.next_update_due == clock() + timedelta(minutes=10)

    def test_no_cadence_once_resolved(self, clock: FrozenClock) -> None:
        """Once resolved, an update without ``next_update_in`` promises no next one."""
        flow = IncidentFlow.in_memory(clock=clock, policy=Policy(update_cadence=timedelta(hours=1)))
        inc = drive_to(flow, clock, State.RESOLVED)
        after = flow.post_update(inc.id, "external", "Resolved.", actor=COMMANDER)
        assert after.next_update_due is None

    @pytest.mark.parametrize("audience", ["everyone", "", None, 3, "internal\u202e"])
    def test_the_audience_is_checked(self, flow: IncidentFlow, audience: object) -> None:
        """Only internal and external are audiences; the message lists them."""
        inc = declare(flow)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.post_update(inc.id, audience, "x", actor=COMMANDER)  # type: ignore[arg-type]
        assert info.value.field == "audience"
        assert "internal" in str(info.value)
        assert "external" in str(info.value)

    @pytest.mark.parametrize(
        "next_in", [timedelta(0), timedelta(minutes=-5), "30m", 30, timedelta(days=365 * 200)]
    )
    def test_next_update_in_is_a_positive_timedelta(
        self, flow: IncidentFlow, next_in: object
    ) -> None:
        """A zero, negative, huge or non-timedelta ``next_update_in`` is refused naming it."""
        inc = declare(flow)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.post_update(inc.id, "internal", "x", next_update_in=next_in, actor=COMMANDER)  # type: ignore[arg-type]
        assert info.value.field == "next_update_in"

    def test_the_text_is_required(self, flow: IncidentFlow) -> None:
        """An empty update is refused on text."""
        inc = declare(flow)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.post_update(inc.id, "internal", "  ", actor=COMMANDER)
        assert info.value.field == "text"


@pytest.mark.parametrize("kind", STORE_KINDS)
class TestOnEveryStore:
    def test_roles_and_updates_are_stored(
        self, kind: str, tmp_path: Path, clock: FrozenClock
    ) -> None:
        """Roles, handoffs and updates reload from the store and replay to the snapshot."""
        with store_flow(kind, tmp_path, clock) as flow:
            inc = declare(flow)
            flow.assign_role(inc.id, COMMS, "erin", note="status page", actor=COMMANDER)
            flow.assign_role(inc.id, "commander", "bob", note="handover", actor=COMMANDER)
            flow.post_update(
                inc.id,
                "external",
                "Investigating.",
                actor="erin",
                next_update_in=timedelta(minutes=30),
            )
            clock.advance(timedelta(minutes=25))
            flow.post_update(inc.id, "internal", "Rolled back.", actor="erin")
            flow.release_role(inc.id, COMMS, actor="bob")
            after = advance_to(flow, clock, inc.id, State.TRIAGING)
            assert flow.get(inc.id) == after
            assert after.commander == "bob"
            assert dict(after.roles) == {"commander": "bob"}
            assert len(after.handoffs) == 3
            assert [u.audience for u in after.updates] == ["external", "internal"]
            assert replay(flow.history(inc.id)) == after
            assert flow.verify(inc.id)
