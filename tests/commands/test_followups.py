"""Action items live on after closure: complete, reassign, re-date, decline and link them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest

from helpers import (
    COMMANDER,
    STEP,
    STORE_KINDS,
    advance_to,
    codes,
    drive_to,
    refusal,
    store_flow,
    unchanged,
)
from incidentflow import (
    Correction,
    Incident,
    IncidentFlow,
    State,
    ValidationError,
    replay,
)
from incidentflow.testing import FrozenClock

Drive = Callable[..., Incident]
OWNER = "dana"
TICKET = "https://issues.example.com/OPS-1234"


def with_item(flow: IncidentFlow, clock: FrozenClock, state: State) -> Incident:
    """A P1 incident in ``state`` with one open action item (number 1)."""
    if state is State.KB_UPDATED:
        inc = drive_to(flow, clock, state)
    elif state is State.DISMISSED:
        inc = drive_to(flow, clock, State.TRIAGING)
        flow.add_action_item(inc.id, "tune the alert", owner=OWNER, due=due(flow), actor=COMMANDER)
        inc = advance_to(flow, clock, inc.id, State.DISMISSED)
    else:
        inc = drive_to(flow, clock, state)
        inc = flow.add_action_item(
            inc.id, "add a load test", owner=OWNER, due=due(flow), actor=COMMANDER
        )
    assert inc.state is state
    assert inc.action_items[0].open
    return inc


def due(flow: IncidentFlow, days: int = 14) -> date:
    """A due date ``days`` after the flow clock's day."""
    return flow.now().date() + timedelta(days=days)


EVERY_STATE = list(State)


class TestInEveryState:
    @pytest.mark.parametrize("state", EVERY_STATE, ids=lambda s: s.value)
    def test_complete(self, flow: IncidentFlow, clock: FrozenClock, state: State) -> None:
        """An action item is completed in every state, closed ones included."""
        inc = with_item(flow, clock, state)
        clock.advance(STEP)
        after = flow.complete_action_item(inc.id, 1, actor=OWNER)
        assert after.action_items[0].done_at == clock()
        assert after.action_items[0].status == "done"
        assert after.state is state
        assert replay(flow.history(inc.id)) == after

    @pytest.mark.parametrize("state", EVERY_STATE, ids=lambda s: s.value)
    def test_reassign(self, flow: IncidentFlow, clock: FrozenClock, state: State) -> None:
        """An open action item is handed to another owner in every state."""
        inc = with_item(flow, clock, state)
        after = flow.reassign_action_item(
            inc.id, 1, owner="erin", reason="dana moved teams", actor=COMMANDER
        )
        assert after.action_items[0].owner == "erin"
        assert after.action_items[0].open
        event = flow.history(inc.id)[-1]
        assert event.type == "action_item_reassigned"
        assert event.data.reason == "dana moved teams"  # type: ignore[attr-defined]

    @pytest.mark.parametrize("state", EVERY_STATE, ids=lambda s: s.value)
    def test_redate(self, flow: IncidentFlow, clock: FrozenClock, state: State) -> None:
        """An open action item gets a new due date in every state."""
        inc = with_item(flow, clock, state)
        later = due(flow, 30)
        after = flow.redate_action_item(inc.id, 1, due=later, reason="Q1 freeze", actor=OWNER)
        assert after.action_items[0].due == later
        assert replay(flow.history(inc.id)) == after

    @pytest.mark.parametrize("state", EVERY_STATE, ids=lambda s: s.value)
    def test_decline(self, flow: IncidentFlow, clock: FrozenClock, state: State) -> None:
        """An open action item is declined with its reason in every state."""
        inc = with_item(flow, clock, state)
        after = flow.decline_action_item(inc.id, 1, reason="accepted risk", actor=COMMANDER)
        item = after.action_items[0]
        assert item.declined == Correction(clock(), COMMANDER, "accepted risk")
        assert item.status == "declined"
        assert not item.open
        assert item.live

    @pytest.mark.parametrize("state", EVERY_STATE, ids=lambda s: s.value)
    def test_link(self, flow: IncidentFlow, clock: FrozenClock, state: State) -> None:
        """An action item is linked to the issue tracking it in every state."""
        inc = with_item(flow, clock, state)
        after = flow.link_action_item(inc.id, 1, TICKET, actor=OWNER)
        assert after.action_items[0].ref == TICKET


class TestRefusals:
    @pytest.mark.parametrize(
        "call",
        [
            lambda f, i: f.complete_action_item(i, 2, actor=OWNER),
            lambda f, i: f.reassign_action_item(i, 2, owner="erin", actor=OWNER),
            lambda f, i: f.redate_action_item(i, 2, due=due(f, 30), actor=OWNER),
            lambda f, i: f.decline_action_item(i, 2, reason="no", actor=OWNER),
            lambda f, i: f.link_action_item(i, 2, "OPS-1", actor=OWNER),
        ],
        ids=["complete", "reassign", "redate", "decline", "link"],
    )
    def test_an_unknown_item_is_refused(
        self, flow: IncidentFlow, clock: FrozenClock, call: Callable[..., object]
    ) -> None:
        """Naming an item that does not exist is refused, listing the items there are."""
        inc = with_item(flow, clock, State.KB_UPDATED)
        rejection = refusal(flow, inc.id, lambda: call(flow, inc.id))
        assert codes(rejection) == {"action_item.unknown"}
        assert "action items: 1" in str(rejection)

    @pytest.mark.parametrize(
        "call",
        [
            lambda f, i: f.complete_action_item(i, 1, actor=OWNER),
            lambda f, i: f.reassign_action_item(i, 1, owner="erin", actor=OWNER),
            lambda f, i: f.redate_action_item(i, 1, due=due(f, 30), actor=OWNER),
            lambda f, i: f.decline_action_item(i, 1, reason="no", actor=OWNER),
        ],
        ids=["complete", "reassign", "redate", "decline"],
    )
    @pytest.mark.parametrize(
        ("close", "code"),
        [
            (lambda f, i: f.complete_action_item(i, 1, actor=OWNER), "action_item.done"),
            (
                lambda f, i: f.decline_action_item(i, 1, reason="risk", actor=OWNER),
                "action_item.closed",
            ),
            (
                lambda f, i: f.retract(i, "action_item:1", reason="typo", actor=OWNER),
                "action_item.closed",
            ),
        ],
        ids=["done", "declined", "retracted"],
    )
    def test_a_closed_item_is_refused(
        self,
        flow: IncidentFlow,
        clock: FrozenClock,
        call: Callable[..., object],
        close: Callable[..., object],
        code: str,
    ) -> None:
        """A done, declined or retracted item cannot be completed, reassigned, redated, declined."""
        inc = with_item(flow, clock, State.RCA)
        close(flow, inc.id)
        rejection = refusal(flow, inc.id, lambda: call(flow, inc.id))
        assert codes(rejection) == {code}

    def test_a_done_item_can_still_be_linked(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Linking records where the work was tracked, done or not."""
        inc = with_item(flow, clock, State.KB_UPDATED)
        flow.complete_action_item(inc.id, 1, actor=OWNER)
        assert flow.link_action_item(inc.id, 1, "OPS-7", actor=OWNER).action_items[0].ref == "OPS-7"

    def test_reassigning_to_the_owner_is_refused(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Reassigning to whoever owns it already is a ValidationError on owner."""
        inc = with_item(flow, clock, State.RCA)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.reassign_action_item(inc.id, 1, owner=OWNER, actor=COMMANDER)
        assert info.value.field == "owner"
        assert OWNER in str(info.value)

    @pytest.mark.parametrize("days", [0, -400])
    def test_a_pointless_or_early_due_date_is_refused(
        self, flow: IncidentFlow, clock: FrozenClock, days: int
    ) -> None:
        """The same due date, or one before the declaration, is a ValidationError on due."""
        inc = with_item(flow, clock, State.RCA)
        new = inc.action_items[0].due + timedelta(days=days)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.redate_action_item(inc.id, 1, due=new, actor=COMMANDER)
        assert info.value.field == "due"

    def test_a_decline_needs_a_reason(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Declining without a reason is a ValidationError on reason."""
        inc = with_item(flow, clock, State.RCA)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.decline_action_item(inc.id, 1, reason="", actor=COMMANDER)
        assert info.value.field == "reason"

    @pytest.mark.parametrize("ref", ["", "two\nlines", "x" * 600])
    def test_a_bad_link_is_refused(self, flow: IncidentFlow, clock: FrozenClock, ref: str) -> None:
        """An empty, multi-line or overlong link is a ValidationError on ref."""
        inc = with_item(flow, clock, State.RCA)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.link_action_item(inc.id, 1, ref, actor=COMMANDER)
        assert info.value.field == "ref"


class TestCounting:
    def test_a_declined_item_counts_toward_the_minimum(
        self, flow: IncidentFlow, clock: FrozenClock, drive: Drive
    ) -> None:
        """Declining is a recorded decision: a declined item is live and lets a P3 close."""
        inc = drive("resolved", severity="P3")
        flow.add_action_item(
            inc.id, "rewrite the pool", owner=OWNER, due=due(flow), actor=COMMANDER
        )
        flow.decline_action_item(inc.id, 1, reason="replaced by the new service", actor=COMMANDER)
        after = flow.update_kb(inc.id, symptom="500s", early_signs="pool at 80%", actor=COMMANDER)
        assert after.state is State.KB_UPDATED
        assert after.action_items[0].live

    def test_a_retracted_item_does_not_count(
        self, flow: IncidentFlow, clock: FrozenClock, drive: Drive
    ) -> None:
        """A retracted item is not live: completing the post-mortem asks for another."""
        inc = drive("resolved")
        flow.add_action_item(inc.id, "a mistake", owner=OWNER, due=due(flow), actor=COMMANDER)
        after = flow.retract(inc.id, "action_item:1", reason="wrong incident", actor=COMMANDER)
        assert not after.action_items[0].live
        assert after.action_items[0].status == "retracted"
        rejection = refusal(
            flow,
            inc.id,
            lambda: flow.complete_postmortem(
                inc.id,
                summary="s",
                root_cause="r",
                went_well=["w"],
                went_poorly=["p"],
                actor=COMMANDER,
            ),
        )
        assert "action_items.missing" in codes(rejection)

    def test_the_last_live_item_of_a_closed_incident_cannot_be_retracted(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """After closing, retracting the only live item is refused with correction.needed."""
        inc = with_item(flow, clock, State.KB_UPDATED)
        rejection = refusal(
            flow, inc.id, lambda: flow.retract(inc.id, "action_item:1", reason="x", actor=OWNER)
        )
        assert codes(rejection) == {"correction.needed"}


class TestReference:
    def test_an_item_is_added_with_its_reference(self, flow: IncidentFlow, drive: Drive) -> None:
        """``add_action_item(ref=...)`` records the issue on the item and on its event."""
        inc = drive("resolved")
        after = flow.add_action_item(
            inc.id, "add a load test", owner=OWNER, due=due(flow), ref="OPS-1234", actor=COMMANDER
        )
        assert after.action_items[0].ref == "OPS-1234"
        assert flow.history(inc.id)[-1].data.ref == "OPS-1234"  # type: ignore[attr-defined]

    def test_without_a_reference_it_is_empty(self, flow: IncidentFlow, drive: Drive) -> None:
        """An item added without ``ref`` has none, and its status is open."""
        inc = drive("resolved")
        after = flow.add_action_item(inc.id, "x", owner=OWNER, due=due(flow), actor=COMMANDER)
        assert after.action_items[0].ref == ""
        assert after.action_items[0].status == "open"


@pytest.mark.parametrize("kind", STORE_KINDS)
class TestOnEveryStore:
    def test_follow_ups_after_closure_are_stored(
        self, kind: str, tmp_path: Path, clock: FrozenClock
    ) -> None:
        """Every follow-up command on a closed incident is stored and replays to the snapshot."""
        with store_flow(kind, tmp_path, clock) as flow:
            inc = drive_to(flow, clock, State.KB_UPDATED)
            flow.link_action_item(inc.id, 1, TICKET, actor=OWNER)
            flow.reassign_action_item(inc.id, 1, owner="erin", reason="handover", actor=OWNER)
            flow.redate_action_item(inc.id, 1, due=due(flow, 40), actor="erin")
            after = flow.complete_action_item(inc.id, 1, actor="erin")
            assert flow.get(inc.id) == after
            assert after.action_items[0].ref == TICKET
            assert after.action_items[0].owner == "erin"
            assert after.action_items[0].status == "done"
            assert replay(flow.history(inc.id)) == after
            assert flow.verify(inc.id)
