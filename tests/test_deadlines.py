"""SLA clocks: the deadlines an incident runs against, and breaches recorded once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from helpers import COMMANDER, START, advance_to, declare, drive_to
from incidentflow import (
    ConcurrencyConflict,
    Event,
    Incident,
    IncidentFlow,
    Policy,
    State,
    ValidationError,
)
from incidentflow.delivery import Route
from incidentflow.events import DeadlineBreached
from incidentflow.notifiers import RecordingNotifier
from incidentflow.stores import Commit, MemoryStore
from incidentflow.testing import FrozenClock

RESPONSE_TARGETS = {
    "P1": timedelta(minutes=5),
    "P2": timedelta(minutes=30),
    "P3": timedelta(hours=2),
    "P4": timedelta(days=14),
}


def kinds(flow: IncidentFlow, incident_id: str) -> list[str]:
    """The kinds of the incident's deadlines, in due order."""
    return [d.kind for d in flow.deadlines(incident_id)]


def breaches(flow: IncidentFlow, incident_id: str) -> list[DeadlineBreached]:
    """The breaches recorded in the incident's history, in order."""
    return [e.data for e in flow.history(incident_id) if isinstance(e.data, DeadlineBreached)]


class TestDeadlines:
    @pytest.mark.parametrize(("severity", "target"), RESPONSE_TARGETS.items())
    def test_response_deadline_per_severity(
        self, flow: IncidentFlow, severity: str, target: timedelta
    ) -> None:
        """The response is due the severity's target after the declaration."""
        inc = declare(flow, severity=severity)
        [response] = flow.deadlines(inc.id)
        assert (response.kind, response.subject) == ("response", "")
        assert response.due_at == START + target
        assert response.met_at is None
        assert not response.breached

    def test_response_met_when_triage_starts(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Starting triage meets the response deadline, at that time."""
        inc = declare(flow)
        clock.advance(minutes=3)
        flow.start_triage(inc.id, actor=COMMANDER)
        [response] = flow.deadlines(inc.id)
        assert response.met_at == START + timedelta(minutes=3)

    def test_response_target_comes_from_the_policy(self, clock: FrozenClock) -> None:
        """A policy with other targets gives other due times."""
        policy = Policy(response_targets={"P1": timedelta(minutes=1)})
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = declare(flow)
        assert flow.deadlines(inc.id)[0].due_at == START + timedelta(minutes=1)

    def test_postmortem_due_a_day_after_resolution(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """A resolved P1/P2 incident owes its post-mortem 24 h after resolution."""
        inc = drive_to(flow, clock, State.RESOLVED, "P2")
        assert inc.resolved_at is not None
        postmortem = next(d for d in flow.deadlines(inc.id) if d.kind == "postmortem")
        assert postmortem.due_at == inc.resolved_at + timedelta(hours=24)
        assert postmortem.met_at is None

    def test_postmortem_met_when_completed(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Completing the post-mortem meets its deadline."""
        inc = drive_to(flow, clock, State.POSTMORTEM)
        assert inc.postmortem is not None
        postmortem = next(d for d in flow.deadlines(inc.id) if d.kind == "postmortem")
        assert postmortem.met_at == inc.postmortem.completed_at == clock()

    def test_no_postmortem_deadline_when_none_is_required(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """A resolved P3 incident owes no post-mortem, so has no such deadline."""
        inc = drive_to(flow, clock, State.RESOLVED, "P3")
        assert not inc.postmortem_required
        assert kinds(flow, inc.id) == ["response"]

    def test_no_postmortem_deadline_before_resolution(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The post-mortem clock starts at resolution."""
        inc = drive_to(flow, clock, State.FIXED)
        assert kinds(flow, inc.id) == ["response"]

    def test_action_item_due_at_the_end_of_its_day(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """An action item is due at midnight UTC ending its due date, and met when completed."""
        inc = drive_to(flow, clock, State.RESOLVED)
        flow.add_action_item(
            inc.id, "add a load test", owner="dana", due=date(2026, 12, 4), actor=COMMANDER
        )
        flow.add_action_item(
            inc.id, "alert on pool usage", owner="erin", due=date(2026, 12, 1), actor=COMMANDER
        )
        items = [d for d in flow.deadlines(inc.id) if d.kind == "action_item"]
        assert [(d.subject, d.due_at) for d in items] == [
            ("2", datetime(2026, 12, 2, tzinfo=UTC)),
            ("1", datetime(2026, 12, 5, tzinfo=UTC)),
        ]
        clock.advance(hours=2)
        flow.complete_action_item(inc.id, 2, actor="erin")
        met = {d.subject: d.met_at for d in flow.deadlines(inc.id) if d.kind == "action_item"}
        assert met == {"1": None, "2": clock()}

    def test_listed_in_due_order(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Deadlines come in the order they fall due."""
        inc = drive_to(flow, clock, State.RESOLVED)
        flow.add_action_item(
            inc.id, "add a load test", owner="dana", due=date(2026, 11, 27), actor=COMMANDER
        )
        assert kinds(flow, inc.id) == ["response", "action_item", "postmortem"]
        due = [d.due_at for d in flow.deadlines(inc.id)]
        assert due == sorted(due)

    def test_dismissed_incident_owes_no_response(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """A dismissed incident has no response deadline."""
        inc = drive_to(flow, clock, State.DISMISSED)
        assert kinds(flow, inc.id) == []


class TestDeadlineStatus:
    def test_met_open_and_overdue(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """A met deadline says met; an unmet one says open until due, then overdue."""
        inc = declare(flow, severity="P1")
        [response] = flow.deadlines(inc.id)
        assert response.status(clock()) == "open"
        assert response.status(clock() + timedelta(minutes=6)) == "overdue"
        flow.start_triage(inc.id, actor=COMMANDER)
        [response] = flow.deadlines(inc.id)
        assert response.met
        assert response.status(clock() + timedelta(days=9)) == "met"


class TestUpdateCadence:
    def test_no_update_deadline_without_a_cadence(self, flow: IncidentFlow) -> None:
        """The seed's process has no update cadence: no update deadline."""
        inc = declare(flow, severity="P1")
        assert "update" not in kinds(flow, inc.id)

    def test_cadence_sets_the_first_update_due(self, clock: FrozenClock) -> None:
        """With a cadence, the first update is due that long after the declaration."""
        policy = Policy(update_cadence=timedelta(minutes=30))
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = declare(flow, severity="P1")
        [update] = [d for d in flow.deadlines(inc.id) if d.kind == "update"]
        assert update.due_at == START + timedelta(minutes=30)

    def test_an_update_moves_the_deadline_and_a_late_one_is_a_breach(
        self, clock: FrozenClock
    ) -> None:
        """Posting sets the next due time; missing it records one breach."""
        policy = Policy(update_cadence=timedelta(minutes=30))
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = declare(flow, severity="P1")
        flow.start_triage(inc.id, actor=COMMANDER)
        clock.advance(minutes=20)
        after = flow.post_update(inc.id, "internal", "rolled back", actor=COMMANDER)
        assert after.next_update_due == START + timedelta(minutes=50)
        promised = flow.post_update(
            inc.id,
            "external",
            "we are on it",
            next_update_in=timedelta(minutes=10),
            actor=COMMANDER,
        )
        assert promised.next_update_due == START + timedelta(minutes=30)
        clock.advance(minutes=11)
        [event] = flow.check_deadlines()
        assert (event.data.kind, event.data.due_at) == ("update", START + timedelta(minutes=30))
        assert flow.check_deadlines() == []

    def test_no_update_is_due_once_resolved(self, clock: FrozenClock) -> None:
        """The cadence runs while the incident is open, not after it is resolved."""
        policy = Policy(update_cadence=timedelta(minutes=30))
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = drive_to(flow, clock, State.RESOLVED, "P1")
        assert "update" not in kinds(flow, inc.id)


class TestCheckDeadlines:
    def test_records_a_breach_for_an_overdue_unmet_deadline(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Past its response target without triage, an incident gets one deadline_breached event."""
        late = declare(flow, severity="P1", texts={"title": "Checkout down"})
        met = declare(flow, severity="P1", texts={"title": "Login down"})
        flow.start_triage(met.id, actor=COMMANDER)
        not_due = declare(flow, severity="P2", texts={"title": "Search slow"})
        clock.advance(minutes=6)
        recorded = flow.check_deadlines()
        assert [(e.incident_id, e.type) for e in recorded] == [(late.id, "deadline_breached")]
        [event] = recorded
        assert event.data == DeadlineBreached("response", "", START + timedelta(minutes=5))
        assert (event.at, event.actor) == (clock(), "incidentflow")
        assert list(flow.history(late.id))[-1] == event
        assert breaches(flow, met.id) == breaches(flow, not_due.id) == []

    def test_breach_marks_the_deadline(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Once recorded, the deadline shows as breached and still unmet."""
        inc = declare(flow)
        clock.advance(minutes=6)
        flow.check_deadlines()
        [response] = flow.deadlines(inc.id)
        assert response.breached
        assert response.met_at is None
        assert flow.get(inc.id).state is State.DECLARED  # a breach changes no state

    def test_running_again_records_nothing_new(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """A second check, now or later, does not record the same breach again."""
        inc = declare(flow)
        clock.advance(minutes=6)
        assert len(flow.check_deadlines()) == 1
        assert flow.check_deadlines() == []
        clock.advance(days=3)
        assert flow.check_deadlines() == []
        assert len(breaches(flow, inc.id)) == 1

    def test_one_breach_per_overdue_deadline(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Overdue post-mortem and action items are each recorded, the met response is not."""
        inc = drive_to(flow, clock, State.RESOLVED, "P2")
        for n, due in enumerate([date(2026, 11, 28), date(2026, 11, 29), date(2027, 1, 1)]):
            flow.add_action_item(inc.id, f"item {n}", owner="dana", due=due, actor=COMMANDER)
        flow.complete_action_item(inc.id, 2, actor="dana")
        clock.set(datetime(2026, 12, 1, tzinfo=UTC))
        recorded = flow.check_deadlines()
        assert sorted((e.data.kind, e.data.subject) for e in recorded) == [
            ("action_item", "1"),
            ("postmortem", ""),
        ]

    def test_not_yet_due_at_the_due_time(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """A deadline is breached only after its due time, not at it."""
        inc = declare(flow)
        due = flow.deadlines(inc.id)[0].due_at
        clock.set(due)
        assert flow.check_deadlines() == []
        clock.advance(seconds=1)
        assert len(flow.check_deadlines()) == 1

    def test_evaluates_at_the_given_earlier_time(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """``check_deadlines(now=...)`` judges at that time, earlier than the clock."""
        inc = declare(flow, severity="P3")
        clock.advance(hours=5)
        assert flow.check_deadlines(now=START + timedelta(hours=1)) == []
        [event] = flow.check_deadlines(now=START + timedelta(hours=3))
        assert event.incident_id == inc.id
        assert event.at == clock()

    def test_a_now_ahead_of_the_clock_is_refused(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """A breach is recorded at the flow's time: a later ``now`` would date it before its due."""
        inc = declare(flow)
        due = flow.deadlines(inc.id)[0].due_at
        with pytest.raises(ValidationError, match="later than the flow's clock"):
            flow.check_deadlines(now=due + timedelta(days=365))
        assert breaches(flow, inc.id) == []
        assert flow.deadlines(inc.id)[0].breached is False

    def test_naive_now_is_refused(self, flow: IncidentFlow) -> None:
        """A naive ``now`` is a ValidationError naming the argument."""
        declare(flow)
        with pytest.raises(ValidationError, match="now"):
            flow.check_deadlines(now=datetime(2026, 11, 28, 12, 0))

    def test_aware_now_in_another_zone(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """An aware ``now`` in another time zone is the same instant."""
        declare(flow)
        clock.advance(hours=1)
        plus_two = datetime(2026, 11, 27, 16, 5, tzinfo=timezone(timedelta(hours=2)))
        assert flow.check_deadlines(now=plus_two) == []
        assert len(flow.check_deadlines(now=plus_two + timedelta(minutes=2))) == 1

    def test_dismissed_incidents_get_no_breaches(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """A dismissed incident is never charged with a breach."""
        inc = drive_to(flow, clock, State.DISMISSED, "P1")
        clock.advance(days=60)
        assert flow.check_deadlines() == []
        assert breaches(flow, inc.id) == []

    def test_closed_incidents_are_charged_only_for_open_action_items(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """After closure an open action item still falls overdue; nothing else does."""
        inc = drive_to(flow, clock, State.KB_UPDATED, "P1")
        open_items = [str(a.number) for a in inc.action_items if a.open]
        assert open_items
        clock.advance(days=60)
        events = flow.check_deadlines()
        assert {e.data.kind for e in events} == {"action_item"}
        assert sorted(e.data.subject for e in events) == sorted(open_items)
        assert flow.get(inc.id).state is State.KB_UPDATED
        assert flow.check_deadlines() == []  # recorded once

    def test_completing_after_closure_meets_the_deadline(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """An action item completed after closure is met, and is never charged."""
        inc = drive_to(flow, clock, State.KB_UPDATED, "P1")
        for item in inc.action_items:
            if item.open:
                flow.complete_action_item(inc.id, item.number, actor=COMMANDER)
        clock.advance(days=60)
        assert flow.check_deadlines() == []
        statuses = {d.status(clock()) for d in flow.deadlines(inc.id)}
        assert statuses == {"met"}

    def test_a_declined_item_owes_nothing(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Declining an action item meets its deadline: no breach, status met."""
        inc = drive_to(flow, clock, State.KB_UPDATED, "P1")
        for item in inc.action_items:
            if item.open:
                flow.decline_action_item(inc.id, item.number, reason="accepted", actor=COMMANDER)
        clock.advance(days=60)
        assert flow.check_deadlines() == []

    def test_deadlines_move_with_a_reclassification(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Raising the severity before triage brings the response deadline forward."""
        inc = declare(flow, severity="P3")
        flow.reclassify(inc.id, "P1", reason="every region now", actor=COMMANDER)
        clock.advance(minutes=6)
        [event] = flow.check_deadlines()
        assert event.data.due_at == START + timedelta(minutes=5)

    def test_a_reopened_and_re_resolved_incident_owes_a_new_postmortem_date(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The post-mortem falls due again from the new resolution after a reopen."""
        inc = drive_to(flow, clock, State.RESOLVED)
        clock.advance(days=2)
        assert [e.data.kind for e in flow.check_deadlines()] == ["postmortem"]
        flow.reopen(inc.id, reason="500s are back", to="rca", actor=COMMANDER)
        inc = advance_to(flow, clock, inc.id, State.RESOLVED)
        assert flow.check_deadlines() == []
        clock.advance(days=2)
        assert [e.data.kind for e in flow.check_deadlines()] == ["postmortem"]
        assert len(breaches(flow, inc.id)) == 2


class RacyStore(MemoryStore):
    """A MemoryStore that reads slowly, so racing writers really collide; counts the collisions."""

    def __init__(self) -> None:
        super().__init__()
        self.conflicts = 0

    def load(self, incident_id: str) -> Incident:
        snapshot = super().load(incident_id)
        time.sleep(0.001)  # widen the window between deciding and appending
        return snapshot

    def cached(self, incident_id: str) -> Incident | None:
        snapshot = super().cached(incident_id)
        time.sleep(0.001)  # the same window for a command decided on the cached snapshot
        return snapshot

    def append(self, commit: Commit) -> None:
        try:
            super().append(commit)
        except ConcurrencyConflict:
            self.conflicts += 1
            raise


class TestConcurrentChecks:
    def test_racing_checkers_record_each_breach_once(self, clock: FrozenClock) -> None:
        """Eight threads on two flows over one store, checking at once, record each breach once."""
        store = RacyStore()
        flows = [IncidentFlow(store, clock=clock), IncidentFlow(store, clock=clock)]
        incidents = []
        for n in range(6):
            inc = flows[0].declare(
                f"Outage {n}", severity="P1", commander=COMMANDER, actor=COMMANDER
            )
            for due in (date(2026, 11, 27), date(2026, 11, 28)):
                flows[0].add_action_item(
                    inc.id, "add an alert", owner="dana", due=due, actor=COMMANDER
                )
            incidents.append(inc.id)
        clock.advance(days=3)
        start = threading.Barrier(8)
        returned: list[list[Event]] = [[] for _ in range(8)]
        errors: list[BaseException] = []

        def check(n: int) -> None:
            try:
                start.wait(5)
                returned[n] = list(flows[n % 2].check_deadlines())
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=check, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert errors == []
        assert store.conflicts > 0  # the checkers did collide
        recorded = [(e.incident_id, e.data.key) for events in returned for e in events]
        assert len(recorded) == 6 * 3  # a response and two action items each
        assert set(Counter(recorded).values()) == {1}
        for incident_id in incidents:
            assert sorted((b.kind, b.subject) for b in breaches(flows[1], incident_id)) == [
                ("action_item", "1"),
                ("action_item", "2"),
                ("response", ""),
            ]
        assert flows[0].check_deadlines() == flows[1].check_deadlines() == []


class TestBreachNotifications:
    def test_breaches_are_routed_like_any_event(self, clock: FrozenClock) -> None:
        """A route on ``deadline_breached`` sends breaches, and only them, to the pager."""
        pager, log = RecordingNotifier(), RecordingNotifier()
        pager.name, log.name = "pager", "log"
        flow = IncidentFlow.in_memory(
            clock=clock,
            notifiers=[pager, log],
            routes=[Route("pager", events={"deadline_breached"}), Route("log")],
        )
        inc = declare(flow)
        clock.advance(minutes=6)
        [event] = flow.check_deadlines()
        assert [n.id for n in pager.notifications] == [f"{inc.id}:{event.seq}"]
        assert pager.notifications[0].event == event
        assert log.types() == ["declared", "deadline_breached"]

    def test_breach_can_page_only_for_p1(self, clock: FrozenClock) -> None:
        """Routes combine: breaches of P1 incidents page, others do not."""
        pager = RecordingNotifier()
        pager.name = "pager"
        flow = IncidentFlow.in_memory(
            clock=clock,
            notifiers=[pager],
            routes=[Route("pager", severities={"P1"}, events={"deadline_breached"})],
        )
        p1 = declare(flow, severity="P1", texts={"title": "Checkout down"})
        declare(flow, severity="P2", texts={"title": "Search slow"})
        clock.advance(hours=1)
        assert len(flow.check_deadlines()) == 2
        assert [n.event.incident_id for n in pager.notifications] == [p1.id]


class TestMovedDeadlines:
    """A reclassification or a change of type moves a deadline; it is still one deadline."""

    def test_a_moved_response_deadline_is_breached_once(self, clock: FrozenClock) -> None:
        """Escalating after the response breach moves its due time; no second breach."""
        flow = IncidentFlow.in_memory(clock=clock)
        inc = declare(flow, severity="P3")
        clock.advance(hours=3)
        [first] = flow.check_deadlines()
        assert first.data.kind == "response"
        flow.reclassify(inc.id, "P1", reason="every region", actor=COMMANDER)
        assert flow.check_deadlines() == []
        [response] = [d for d in flow.deadlines(inc.id) if d.kind == "response"]
        assert response.breached

    def test_a_moved_update_deadline_is_breached_once(self, clock: FrozenClock) -> None:
        """A shorter cadence after a change of type does not breach the same update again."""
        from incidentflow import ProcessOverride

        policy = Policy(
            update_cadence=timedelta(minutes=30),
            types={"security": ProcessOverride(update_cadence=timedelta(minutes=10))},
        )
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = declare(flow, severity="P3")
        flow.start_triage(inc.id, actor=COMMANDER)
        clock.advance(minutes=31)
        assert [e.data.kind for e in flow.check_deadlines()] == ["update"]
        flow.change_type(inc.id, "security", reason="a leaked token", actor=COMMANDER)
        assert flow.check_deadlines() == []

    def test_an_escalation_brings_a_cadence_after_an_unpromised_update(
        self, clock: FrozenClock
    ) -> None:
        """An update posted with no cadence promises nothing; a P1 cadence then starts from it."""
        from incidentflow import ProcessOverride, Severity

        policy = Policy(
            severities={Severity.P1: ProcessOverride(update_cadence=timedelta(minutes=15))}
        )
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = declare(flow, severity="P3")
        flow.start_triage(inc.id, actor=COMMANDER)
        posted = flow.post_update(inc.id, "internal", "looking", actor=COMMANDER)
        assert posted.next_update_due is None
        flow.reclassify(inc.id, "P1", reason="every region", actor=COMMANDER)
        [update] = [d for d in flow.deadlines(inc.id) if d.kind == "update"]
        assert update.due_at == clock() + timedelta(minutes=15)
        clock.advance(hours=2)
        assert [e.data.kind for e in flow.check_deadlines()] == ["update"]


class TestTheEndOfTheCalendar:
    def test_a_deadline_past_the_year_9999_never_comes(self) -> None:
        """A clock near the calendar's end and century-long targets: no OverflowError anywhere."""
        clock = FrozenClock(datetime(9950, 1, 1, tzinfo=UTC))
        century = timedelta(days=36_500)
        policy = Policy(
            response_targets={"P1": century},
            update_cadence=century,
            postmortem_due=century,
            watch_window=century,
        )
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = flow.declare("Late", severity="P1", commander="a", actor="a")
        last = datetime.max.replace(tzinfo=UTC)
        assert {d.kind: d.due_at for d in flow.deadlines(inc.id)} == {
            "response": last,
            "update": last,
        }
        assert flow.check_deadlines() == []
        assert flow.can(inc.id, "start_triage").allowed
        inc = drive_to(flow, clock, State.FIXED, "P1")
        flow.confirm_by_user(inc.id, user="dana", actor="dana")
        reasons = [r.code for r in flow.can(inc.id, "resolve").reasons]
        assert reasons == ["watch_window.running"]  # a window that never ends, not a crash
