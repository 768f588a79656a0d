"""Hostile sequences against the process rules: handoffs, reopens and clocks that step back.

Each class pins one rule with examples; :class:`TestHostileWalks` drives random
sequences (handoffs, confirmations by anyone, reopens, status updates, deadline
checks, and a clock that jumps back as well as forward) and checks the rules
from each history alone after every step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from helpers import COMMANDER, RESPONDER, START, USER, advance_to, codes, drive_to, refusal
from incidentflow import (
    Event,
    IncidentFlow,
    IncidentFlowError,
    Policy,
    State,
    metrics,
    replay,
)
from incidentflow.testing import FrozenClock

WATCH = timedelta(minutes=15)
CADENCE = timedelta(minutes=30)


def _resolvable(flow: IncidentFlow, clock: FrozenClock, incident_id: str) -> None:
    """Let the watch window pass after the deploy of a fixed incident."""
    assert flow.get(incident_id).state is State.FIXED
    clock.advance(WATCH)


class TestConfirmerWhoCommanded:
    """Nobody who commanded the incident up to the confirmation may be the confirming user."""

    def test_handing_the_role_over_does_not_clear_the_commanders_word(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The commander confirms, hands the role over: resolve is still refused, naming them."""
        inc = drive_to(flow, clock, State.FIXED)
        _resolvable(flow, clock, inc.id)
        flow.confirm_by_user(inc.id, user=COMMANDER, comment="works for me", actor=COMMANDER)
        flow.assign_commander(inc.id, "bob", actor=COMMANDER)
        rejection = refusal(flow, inc.id, lambda: flow.resolve(inc.id, actor="bob"))
        assert codes(rejection) == {"confirmation.by_commander"}
        (reason,) = rejection.reasons
        assert reason.data == {"user": COMMANDER}
        assert f"came from {COMMANDER}, the incident commander until" in reason.message
        # A user who never commanded it confirms: the incident resolves.
        flow.confirm_by_user(inc.id, user=USER, actor=USER)
        assert flow.resolve(inc.id, actor="bob").state is State.RESOLVED

    def test_a_commander_who_handed_over_long_before_still_counts(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Commander at the declaration, handed over in triage, confirming at the end: refused."""
        inc = drive_to(flow, clock, State.TRIAGING)
        flow.assign_role(inc.id, "commander", "erin", note="I am off shift", actor=COMMANDER)
        advance_to(flow, clock, inc.id, State.FIXED)
        _resolvable(flow, clock, inc.id)
        flow.confirm_by_user(inc.id, user=COMMANDER, actor=COMMANDER)
        rejection = refusal(flow, inc.id, lambda: flow.resolve(inc.id, actor="erin"))
        assert codes(rejection) == {"confirmation.by_commander"}
        assert not flow.can(inc.id, "resolve")

    def test_only_commanders_up_to_the_confirmation_and_the_current_one_count(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Who took the role after the confirmation and gave it up again does not count."""
        inc = drive_to(flow, clock, State.FIXED)
        _resolvable(flow, clock, inc.id)
        flow.assign_commander(inc.id, "bob", actor=COMMANDER)
        flow.confirm_by_user(inc.id, user=COMMANDER, actor=COMMANDER)  # alice, no longer commander
        assert codes(refusal(flow, inc.id, lambda: flow.resolve(inc.id, actor="bob"))) == {
            "confirmation.by_commander"
        }
        clock.advance(minutes=1)
        flow.confirm_by_user(inc.id, user="dana", actor="dana")
        clock.advance(minutes=1)
        flow.assign_commander(inc.id, "erin", actor="bob")  # after dana confirmed
        flow.assign_commander(inc.id, "bob", actor="erin")
        assert flow.resolve(inc.id, actor="bob").state is State.RESOLVED


class TestUpdateClockAfterReopen:
    """A reopen restarts the status-update clock; the resolved interval owes no update."""

    @staticmethod
    def _reopened(
        clock: FrozenClock, policy: Policy, promise: timedelta
    ) -> tuple[IncidentFlow, str]:
        """A P3 that promised an update ``promise`` ahead, resolved, and reopened 3 h later."""
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = drive_to(flow, clock, State.FIXED, "P3")
        flow.post_update(
            inc.id, "internal", "fix deployed", next_update_in=promise, actor=COMMANDER
        )
        _resolvable(flow, clock, inc.id)
        flow.confirm_by_user(inc.id, user=USER, actor=USER)
        flow.resolve(inc.id, actor=COMMANDER)
        flow.check_deadlines()
        clock.advance(hours=3)
        flow.reopen(inc.id, reason="errors are back", actor=COMMANDER)
        return flow, inc.id

    @staticmethod
    def _update(flow: IncidentFlow, incident_id: str) -> list[Any]:
        return [d for d in flow.deadlines(incident_id) if d.kind == "update"]

    def test_the_cadence_counts_from_the_reopen(self, clock: FrozenClock) -> None:
        """The next update is due a cadence after the reopen; nothing is breached at once."""
        flow, incident_id = self._reopened(clock, Policy(update_cadence=CADENCE), CADENCE)
        reopened = clock()
        (update,) = self._update(flow, incident_id)
        assert update.due_at == reopened + CADENCE
        assert update.status(reopened) == "open"
        assert not update.breached
        assert flow.check_deadlines() == []
        clock.advance(CADENCE + timedelta(minutes=1))
        (breach,) = flow.check_deadlines()
        assert breach.data.kind == "update"
        assert breach.data.due_at == reopened + CADENCE

    def test_the_incident_file_drops_a_lapsed_promise(self, clock: FrozenClock) -> None:
        """The Markdown shows no "next update due" from before the reopen, as deadlines do not."""
        from incidentflow.render import render_incident

        flow, incident_id = self._reopened(clock, Policy(), timedelta(minutes=30))
        text = render_incident(flow.get(incident_id), flow.history(incident_id))
        assert "**Next update due:**" not in text
        flow.post_update(incident_id, "internal", "looking again", next_update_in=timedelta(
            minutes=20), actor=COMMANDER)  # fmt: skip
        text = render_incident(flow.get(incident_id), flow.history(incident_id))
        assert f"**Next update due:** {(clock() + timedelta(minutes=20)):%Y-%m-%d %H:%M}" in text

    def test_without_a_cadence_a_lapsed_promise_is_void(self, clock: FrozenClock) -> None:
        """A promise that fell due while resolved is void: no update deadline, no breach."""
        flow, incident_id = self._reopened(clock, Policy(), CADENCE)
        assert self._update(flow, incident_id) == []
        assert flow.check_deadlines() == []

    def test_a_promise_still_ahead_stands_if_it_comes_first(self, clock: FrozenClock) -> None:
        """Promised 4 h ahead, reopened 3 h later: due at the earlier of it and the cadence."""
        policy = Policy(update_cadence=timedelta(hours=2))
        flow, incident_id = self._reopened(clock, policy, timedelta(hours=4))
        promised = flow.get(incident_id).updates[-1].next_update_at
        assert promised is not None
        assert promised > clock()
        assert [d.due_at for d in self._update(flow, incident_id)] == [promised]
        flow, incident_id = self._reopened(FrozenClock(START), policy, timedelta(hours=9))
        reopened = flow.now()
        assert [d.due_at for d in self._update(flow, incident_id)] == [
            reopened + policy.update_cadence
        ]

    def test_an_update_missed_after_the_reopen_is_breached_anew(self, clock: FrozenClock) -> None:
        """The same update number, breached before the resolution, is breached again after."""
        flow = IncidentFlow.in_memory(clock=clock, policy=Policy(update_cadence=CADENCE))
        inc = drive_to(flow, clock, State.FIXED, "P3")
        clock.advance(CADENCE)
        (first,) = [e for e in flow.check_deadlines() if e.data.kind == "update"]
        _resolvable(flow, clock, inc.id)
        flow.confirm_by_user(inc.id, user=USER, actor=USER)
        flow.resolve(inc.id, actor=COMMANDER)
        clock.advance(hours=1)
        flow.reopen(inc.id, reason="errors are back", actor=COMMANDER)
        reopened = clock()
        clock.advance(CADENCE + timedelta(seconds=1))
        (again,) = [e for e in flow.check_deadlines() if e.data.kind == "update"]
        assert again.data.subject == first.data.subject
        assert again.data.due_at == reopened + CADENCE


class TestClockStepsBack:
    """An event is never stamped before the one it follows, whatever the clock says."""

    def test_triage_is_never_acknowledged_before_the_declaration(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The clock steps back an hour: triage is acknowledged at the declaration, MTTA 0."""
        inc = flow.declare("Checkout down", severity="P1", commander=COMMANDER, actor=COMMANDER)
        clock.set(START - timedelta(hours=1))
        inc = flow.start_triage(inc.id, actor=COMMANDER)
        assert inc.acknowledged_at == inc.declared_at == START
        assert metrics.incident_times(inc).time_to_acknowledge == timedelta(0)
        (response,) = [d for d in flow.deadlines(inc.id) if d.kind == "response"]
        assert response.met_at == START
        assert replay(flow.history(inc.id)) == flow.get(inc.id)

    @pytest.mark.parametrize(
        "options",
        [{}, {"idempotency_key": "note-1"}, {"expected_version": 3}],
        ids=["fused", "keyed", "versioned"],
    )
    def test_every_path_stamps_at_the_last_event_at_least(
        self, flow: IncidentFlow, clock: FrozenClock, options: dict[str, Any]
    ) -> None:
        """The fused and the general pipeline stamp the same: the last event's time."""
        inc = drive_to(flow, clock, State.TRIAGING)
        flow.add_evidence(inc.id, source="logs", content="500s", actor=RESPONDER)
        last = flow.history(inc.id)[-1].at
        clock.set(last - timedelta(minutes=7))
        after = flow.add_note(inc.id, "rolled back", actor=RESPONDER, **options)
        times = [e.at for e in flow.history(inc.id)]
        assert times == sorted(times)
        assert times[-1] == last == after.updated_at

    def test_a_host_behind_the_others_writes_in_commit_order(self, clock: FrozenClock) -> None:
        """Two hosts on one store, the second five minutes behind: its events follow in time."""
        with IncidentFlow.in_memory(clock=clock) as flow:
            inc = drive_to(flow, clock, State.TRIAGING)
            behind = IncidentFlow(flow.store, clock=FrozenClock(clock() - timedelta(minutes=5)))
            behind.add_evidence(inc.id, source="logs", content="500s", actor=RESPONDER)
            clock.advance(minutes=1)
            flow.add_note(inc.id, "rolled back", actor=COMMANDER)
            times = [e.at for e in flow.history(inc.id)]
            assert times == sorted(times)
            assert flow.verify(inc.id)

    def test_can_answers_at_the_time_the_command_is_stamped_at(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The watch window passed by the incident's own history: ``can`` and the command agree."""
        inc = drive_to(flow, clock, State.FIXED)
        deployed = flow.get(inc.id).last_deploy
        assert deployed is not None
        clock.set(deployed.deployed_at + WATCH + timedelta(minutes=5))
        flow.confirm_by_user(inc.id, user=USER, actor=USER)  # a host whose clock is right
        clock.set(deployed.deployed_at + timedelta(minutes=5))  # this one is behind
        assert flow.can(inc.id, "resolve")
        assert flow.resolve(inc.id, actor=COMMANDER).resolved_at == (
            deployed.deployed_at + WATCH + timedelta(minutes=5)
        )


class TestRetractedItemsInMessages:
    """A guard whose items were all retracted says so, as the action-item guard does."""

    def test_contain_names_retracted_evidence_answers_and_actions(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Evidence, a triage answer and a containment action recorded, then retracted."""
        inc = drive_to(flow, clock, State.TRIAGING)
        flow.add_evidence(inc.id, source="logs", content="500s", actor=RESPONDER)
        for question in flow.policy.required_triage_answers:
            flow.answer_triage(inc.id, question, "known", actor=RESPONDER)
        flow.record_containment(inc.id, "rolled back", actor=RESPONDER)
        flow.retract(inc.id, "evidence:1", reason="wrong host", actor=RESPONDER)
        flow.retract(inc.id, "triage:scope", reason="guessed", actor=RESPONDER)
        flow.retract(inc.id, "containment:1", reason="not done", actor=RESPONDER)
        messages = {r.code: r.message for r in flow.can(inc.id, "contain").reasons}
        assert messages == {
            "evidence.missing": "no live evidence (retracted items do not count): add at "
            "least one item with add_evidence",
            "triage.unanswered": "triage checklist not answered: scope (retracted answers do "
            "not count; use answer_triage)",
            "containment.missing": "no live containment action (retracted ones do not count): "
            "record what stopped the bleeding with record_containment",
        }

    def test_mark_fixed_names_retracted_whys(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """A why recorded and retracted: the chain is not missing, it has nothing live."""
        inc = drive_to(flow, clock, State.RCA)
        flow.add_why(inc.id, "the pool was too small", actor=RESPONDER)
        flow.retract(inc.id, "why:1", reason="wrong incident", actor=RESPONDER)
        reasons = {r.code: r.message for r in flow.can(inc.id, "mark_fixed").reasons}
        assert reasons["whys.missing"] == (
            "no live 5-Whys chain (retracted whys do not count): add at least one why with add_why"
        )


# -- random walks ---------------------------------------------------------------------

NAMES = ("alice", "bob", "carol", "dana")
#: The clock jumps back by up to two hours, or on by up to five, in whole minutes.
CLOCK_STEPS = st.integers(-120, 300).map(lambda minutes: timedelta(minutes=minutes))


def _commanders_before_each_resolve(history: Sequence[Event]) -> list[tuple[int, str, set[str]]]:
    """For each ``resolved``: its seq, the confirming user and who commanded up to it.

    "Up to it": from the declaration to the confirmation, and the commander at the resolve.
    """
    found: list[tuple[int, str, set[str]]] = []
    commander, held = "", set[str]()
    confirmed: tuple[str, frozenset[str]] | None = None
    for event in history:
        data: Any = event.data
        if event.type == "declared":
            commander = data.commander
            held = {commander}
        elif event.type == "role_assigned" and data.role == "commander":
            commander = data.person
            held.add(commander)
        elif event.type == "commander_assigned":
            commander = data.commander
            held.add(commander)
        elif event.type == "user_confirmed":
            confirmed = (data.user, frozenset(held))
        elif event.type == "reopened":
            confirmed = None
        elif event.type == "resolved":
            assert confirmed is not None, f"seq {event.seq}: resolved without a confirmation"
            user, before = confirmed
            found.append((event.seq, user, {*before, commander}))
    return found


class HostileProcess(RuleBasedStateMachine):
    """One incident at a time, pushed along the lifecycle by anyone, on a clock that lurches."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FrozenClock(START)
        self.flow = IncidentFlow.in_memory(
            clock=self.clock, policy=Policy(update_cadence=CADENCE, watch_window=WATCH)
        )
        self.ids: list[str] = []

    def _try(self, call: Any, *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(IncidentFlowError):  # refused: the invariants check the rest
            call(*args, **kwargs)

    def _declare(self, commander: str, severity: str) -> None:
        inc = self.flow.declare(
            f"Checkout down {len(self.ids)}",
            severity=severity,
            commander=commander,
            actor=commander,
        )
        self.ids.append(inc.id)

    @initialize(commander=st.sampled_from(NAMES), severity=st.sampled_from(["P1", "P2", "P3"]))
    def declare(self, commander: str, severity: str) -> None:
        self._declare(commander, severity)

    @rule(commander=st.sampled_from(NAMES), severity=st.sampled_from(["P1", "P2", "P3"]))
    def declare_another(self, commander: str, severity: str) -> None:
        if len(self.ids) < 3:
            self._declare(commander, severity)

    @rule(step=CLOCK_STEPS)
    def clock_lurches(self, step: timedelta) -> None:
        self.clock.set(self.clock() + step)

    @rule(pick=st.integers(0, 2), steps=st.integers(1, 20), data=st.data())
    def drive(self, pick: int, steps: int, data: st.DataObject) -> None:
        """Along the main path, by anyone: at fixed anyone confirms, the commander may hand
        over and the watch window passes; a resolved incident comes back a while later."""
        incident_id = self.ids[pick % len(self.ids)]
        for _ in range(steps):
            inc = self.flow.get(incident_id)
            actor = data.draw(st.sampled_from(NAMES), label="actor")
            if inc.state is State.FIXED:
                confirmation = inc.confirmation
                if confirmation is None or not confirmation.positive:
                    user = data.draw(st.sampled_from(NAMES), label="user")
                    self._try(self.flow.confirm_by_user, incident_id, user=user, actor=user)
                    continue
                if data.draw(st.booleans(), label="hand over first"):
                    person = data.draw(st.sampled_from(NAMES), label="new commander")
                    self._try(self.flow.assign_commander, incident_id, person, actor=actor)
                self.clock.advance(WATCH)
                self._try(self.flow.resolve, incident_id, actor=actor)
                continue
            if inc.state is State.RESOLVED:
                self.clock.advance(minutes=data.draw(st.integers(0, 240), label="back after"))
                self._try(self.flow.reopen, incident_id, reason="back again", actor=actor)
                if data.draw(st.booleans(), label="check deadlines"):
                    self.flow.check_deadlines()
                continue
            step = _next_step(self.flow, inc)
            if step is None:
                return
            command, args = step
            self._try(self.flow.execute, command, incident_id, actor=actor, **args)

    @rule(pick=st.integers(0, 2), person=st.sampled_from(NAMES), actor=st.sampled_from(NAMES))
    def hand_over(self, pick: int, person: str, actor: str) -> None:
        incident_id = self.ids[pick % len(self.ids)]
        self._try(self.flow.assign_role, incident_id, "commander", person, actor=actor)

    @rule(pick=st.integers(0, 2), user=st.sampled_from(NAMES), positive=st.booleans())
    def confirm(self, pick: int, user: str, positive: bool) -> None:
        incident_id = self.ids[pick % len(self.ids)]
        self._try(self.flow.confirm_by_user, incident_id, user=user, positive=positive, actor=user)

    @rule(pick=st.integers(0, 2), actor=st.sampled_from(NAMES))
    def resolve(self, pick: int, actor: str) -> None:
        self._try(self.flow.resolve, self.ids[pick % len(self.ids)], actor=actor)

    @rule(pick=st.integers(0, 2), to=st.sampled_from(["rca", "triaging"]))
    def reopen(self, pick: int, to: str) -> None:
        incident_id = self.ids[pick % len(self.ids)]
        self._try(self.flow.reopen, incident_id, reason="back again", to=to, actor="alice")

    @rule(pick=st.integers(0, 2), minutes=st.one_of(st.none(), st.integers(1, 240)))
    def post_update(self, pick: int, minutes: int | None) -> None:
        incident_id = self.ids[pick % len(self.ids)]
        promise = None if minutes is None else timedelta(minutes=minutes)
        self._try(
            self.flow.post_update,
            incident_id,
            "internal",
            "status",
            next_update_in=promise,
            actor="bob",
        )

    @rule()
    def check_deadlines(self) -> None:
        self.flow.check_deadlines()

    # -- invariants, from each history alone ------------------------------------------

    def _histories(self) -> list[tuple[Any, Sequence[Event]]]:
        return [(self.flow.get(i), self.flow.history(i)) for i in self.ids]

    @invariant()
    def replay_gives_the_snapshot(self) -> None:
        for inc, history in self._histories():
            assert replay(history) == inc, inc.id

    @invariant()
    def event_times_never_decrease(self) -> None:
        for inc, history in self._histories():
            times = [e.at for e in history]
            assert times == sorted(times), (
                f"{inc.id}: an event is stamped before the one it follows"
            )

    @invariant()
    def durations_are_never_negative(self) -> None:
        for inc, _ in self._histories():
            times = metrics.incident_times(inc)
            for name in (
                "time_to_acknowledge",
                "time_to_contain",
                "time_to_fix",
                "time_to_resolve",
            ):
                value = getattr(times, name)
                assert value is None or value >= timedelta(0), f"{inc.id}: {name} is {value}"

    @invariant()
    def resolved_only_on_the_word_of_someone_who_never_commanded(self) -> None:
        for inc, history in self._histories():
            for seq, user, commanders in _commanders_before_each_resolve(history):
                assert user not in commanders, f"{inc.id} seq {seq}: {user} had commanded it"

    @invariant()
    def no_update_breach_from_before_a_reopen(self) -> None:
        for inc, history in self._histories():
            reopened: datetime | None = None
            for event in history:
                data: Any = event.data
                if event.type == "reopened":
                    reopened = event.at
                if event.type == "deadline_breached" and data.kind == "update" and reopened:
                    assert data.due_at > reopened, (
                        f"{inc.id} seq {event.seq}: update due {data.due_at} breached after a "
                        f"reopen at {reopened}"
                    )


def _next_step(flow: IncidentFlow, inc: Any) -> tuple[str, dict[str, Any]] | None:
    """The next command along the main path, with valid arguments; None once resolved."""
    state = inc.state
    if state is State.DECLARED:
        return "start_triage", {}
    if state is State.TRIAGING:
        if not any(e.live for e in inc.evidence):
            return "add_evidence", {"source": "logs", "content": "500s"}
        missing = [q for q in flow.policy.required_triage_answers if q not in inc.triage]
        if missing:
            return "answer_triage", {"question": missing[0], "answer": "known"}
        if not any(a.live for a in inc.containment):
            return "record_containment", {"description": "rolled back"}
        return "contain", {}
    if state is State.CONTAINED:
        return "start_rca", {}
    if state is State.RCA:
        if not any(w.live for w in inc.whys):
            return "add_why", {"answer": "the pool was too small"}
        if inc.root_cause is None:
            return "set_root_cause", {"statement": "pool size", "process_gap": "no load test"}
        if inc.fix is None:
            return "record_fix", {"description": "pool 50", "test": "t", "staging_verified": True}
        if not inc.deploys:
            return "record_deploy", {"ref": "v2"}
        return "mark_fixed", {}
    return None


TestHostileWalks = HostileProcess.TestCase
TestHostileWalks.settings = settings(
    max_examples=150,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
