"""A notification carries the incident as of its own event, and a restriction holds back late ones.

An item can wait in the outbox (a receiver that is down, backoff, a backlog)
while the incident moves on. When it goes out, its ``incident`` is the
snapshot right after its event, never anything recorded later; and once the
incident is restricted, items for routes not marked ``restricted`` are not
sent at all: they become dead letters saying why. Every test runs on the
memory store and on SQLite.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from helpers import COMMANDER, USER, drive_to
from incidentflow import IncidentFlow, Route
from incidentflow.delivery import DeliveryReport, RetryPolicy
from incidentflow.notifiers import DeliveryError, Notification, Notifier
from incidentflow.stores import MemoryStore, SQLiteStore
from incidentflow.testing import FrozenClock

EXACT = RetryPolicy(jitter=0)
#: What the security team records once the incident is restricted.
SECRET_LABELS = {"attacker": "apt-29", "breach": "customer-pii"}


class Receiver(Notifier):
    """Keeps what it hears; while ``down``, every delivery fails (retryable)."""

    def __init__(self, name: str, *, down: bool = False) -> None:
        self.name = name
        self.down = down
        self.heard: list[Notification] = []

    def notify(self, notification: Notification) -> None:
        if self.down:
            raise DeliveryError(self.name, notification.id, "answered 503", retryable=True)
        self.heard.append(notification)


FlowFactory = Callable[..., IncidentFlow]


@pytest.fixture(params=["memory", "sqlite"])
def make_flow(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock
) -> Iterator[FlowFactory]:
    """``make_flow(notifiers=..., **options)``: a flow on the parametrized store."""
    made: list[IncidentFlow] = []

    def make(**options: object) -> IncidentFlow:
        store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "i.db")
        flow = IncidentFlow(store, clock=clock, retry=EXACT, **options)  # type: ignore[arg-type]
        made.append(flow)
        return flow

    yield make
    for flow in made:
        flow.close()


def chat_and_security(*, chat_down: bool = True, security_down: bool = False) -> dict[str, object]:
    """Notifiers and routes: ``chat`` for everyone, ``security`` also for restricted incidents."""
    chat = Receiver("chat", down=chat_down)
    security = Receiver("security", down=security_down)
    return {
        "notifiers": [chat, security],
        "routes": [Route("chat"), Route("security", restricted=True)],
    }


def restrict_and_escalate(flow: IncidentFlow, incident_id: str) -> None:
    """Restrict the incident, then record what only the security team may hear about."""
    flow.restrict(incident_id, ["group:security"], actor=COMMANDER)
    flow.set_labels(incident_id, SECRET_LABELS, actor=COMMANDER)
    flow.reclassify(incident_id, "P1", reason="confirmed data breach", actor=COMMANDER)


class TestAsOfItsEvent:
    def test_a_late_notification_carries_the_incident_as_of_its_event(
        self, make_flow: FlowFactory
    ) -> None:
        """Delivered after later commands, each notification carries the incident its event made."""
        chat = Receiver("chat")
        flow = make_flow(notifiers=[chat], deliver_inline=False)
        inc = flow.declare("Checkout errors", severity="P3", commander=COMMANDER, actor=COMMANDER)
        flow.set_labels(inc.id, {"service": "checkout"}, actor=COMMANDER)
        flow.reclassify(inc.id, "P1", reason="all regions", actor=COMMANDER)
        assert flow.deliver_pending() == DeliveryReport(delivered=3)
        seen = [
            (n.event.seq, n.incident.version, n.incident.severity.value, dict(n.incident.labels))
            for n in chat.heard
        ]
        assert seen == [
            (1, 1, "P3", {}),
            (2, 2, "P3", {"service": "checkout"}),
            (3, 3, "P1", {"service": "checkout"}),
        ]

    def test_each_event_of_one_command_carries_its_own_snapshot(
        self, make_flow: FlowFactory, clock: FrozenClock
    ) -> None:
        """A negative confirmation commits two events: the first is announced before the reopen."""
        chat = Receiver("chat")
        flow = make_flow(notifiers=[chat], deliver_inline=False)
        inc = drive_to(flow, clock, "fixed")
        flow.confirm_by_user(inc.id, user=USER, positive=False, actor=COMMANDER)
        flow.deliver_pending(limit=1000)
        confirmed, reopened = chat.heard[-2:]
        assert (confirmed.event.type, reopened.event.type) == ("user_confirmed", "reopened")
        assert (confirmed.incident.version, confirmed.incident.state.value) == (
            confirmed.event.seq,
            "fixed",
        )
        assert (reopened.incident.version, reopened.incident.state.value) == (
            reopened.event.seq,
            "rca",
        )
        # Every one of them, announced late, is its own event's snapshot.
        assert all(n.incident.version == n.event.seq for n in chat.heard)

    def test_a_dispatcher_holding_the_newest_snapshot_sends_older_events_as_of_themselves(
        self, make_flow: FlowFactory, clock: FrozenClock
    ) -> None:
        """The dispatcher keeps the latest committed snapshot; older items do not take it."""
        chat = Receiver("chat", down=True)
        flow = make_flow(notifiers=[chat])
        with flow.dispatcher(interval=0.02):
            inc = flow.declare(
                "Checkout errors", severity="P3", commander=COMMANDER, actor=COMMANDER
            )
            flow.set_labels(inc.id, {"service": "checkout"}, actor=COMMANDER)
            flow.reclassify(inc.id, "P1", reason="all regions", actor=COMMANDER)
            chat.down = False
            clock.advance(seconds=10)
            give_up_at = time.monotonic() + 30  # a hang guard
            while len(chat.heard) < 3 and time.monotonic() < give_up_at:
                time.sleep(0.01)
        assert [(n.event.seq, n.incident.version) for n in chat.heard] == [(1, 1), (2, 2), (3, 3)]


class TestRestrictedSince:
    def test_a_waiting_item_for_an_unmarked_route_is_not_sent(
        self, make_flow: FlowFactory, clock: FrozenClock
    ) -> None:
        """Chat was down when the incident was declared; once restricted, chat never hears of it."""
        routing = chat_and_security()
        chat, security = routing["notifiers"]  # type: ignore[misc]
        flow = make_flow(**routing)
        inc = flow.declare("Checkout errors", severity="P3", commander=COMMANDER, actor=COMMANDER)
        restrict_and_escalate(flow, inc.id)
        chat.down = False
        clock.advance(seconds=10)
        assert flow.deliver_pending() == DeliveryReport(dead=1)
        assert chat.heard == []
        [dead] = flow.dead_letters()
        assert dead.id == f"{inc.id}:1:chat"
        assert f"{inc.id} is restricted" in dead.last_error
        assert flow.store.pending() == []
        # Redriven while still restricted, it is held back again.
        assert flow.redrive() == 1
        assert flow.deliver_pending() == DeliveryReport(dead=1)
        assert chat.heard == []
        # The security route heard everything, each as of its own event.
        assert [(n.event.type, n.incident.version) for n in security.heard] == [
            ("declared", 1),
            ("restricted", 2),
            ("labels_set", 3),
            ("reclassified", 4),
        ]

    def test_a_dispatcher_holds_it_back_too(
        self, make_flow: FlowFactory, clock: FrozenClock
    ) -> None:
        """The same through a running Dispatcher, whose cache holds the restricted snapshot."""
        routing = chat_and_security()
        chat = routing["notifiers"][0]  # type: ignore[index]
        flow = make_flow(**routing)
        with flow.dispatcher(interval=0.02):
            inc = flow.declare(
                "Checkout errors", severity="P3", commander=COMMANDER, actor=COMMANDER
            )
            restrict_and_escalate(flow, inc.id)
            chat.down = False
            clock.advance(seconds=10)
            give_up_at = time.monotonic() + 30  # a hang guard
            while flow.store.pending() and time.monotonic() < give_up_at:
                time.sleep(0.01)
        assert chat.heard == []
        assert [d.id for d in flow.dead_letters()] == [f"{inc.id}:1:chat"]

    def test_once_lifted_a_redriven_item_goes_out_as_of_its_event(
        self, make_flow: FlowFactory, clock: FrozenClock
    ) -> None:
        """After unrestrict, the dead letter is redriven and carries nothing recorded later."""
        routing = chat_and_security()
        chat = routing["notifiers"][0]  # type: ignore[index]
        flow = make_flow(**routing)
        inc = flow.declare("Checkout errors", severity="P3", commander=COMMANDER, actor=COMMANDER)
        restrict_and_escalate(flow, inc.id)
        chat.down = False
        clock.advance(seconds=10)
        flow.deliver_pending()
        flow.unrestrict(inc.id, actor=COMMANDER)
        assert flow.redrive() == 1
        flow.deliver_pending()
        declared = next(n for n in chat.heard if n.event.type == "declared")
        assert (declared.incident.version, declared.incident.severity.value) == (1, "P3")
        assert dict(declared.incident.labels) == {}

    def test_a_marked_route_still_gets_it_as_of_its_event(
        self, make_flow: FlowFactory, clock: FrozenClock
    ) -> None:
        """A restricted route that was down gets the declaration late, without later labels."""
        routing = chat_and_security(chat_down=False, security_down=True)
        security = routing["notifiers"][1]  # type: ignore[index]
        flow = make_flow(**routing)
        inc = flow.declare("Checkout errors", severity="P3", commander=COMMANDER, actor=COMMANDER)
        restrict_and_escalate(flow, inc.id)
        security.down = False
        clock.advance(seconds=10)
        assert flow.deliver_pending() == DeliveryReport(delivered=4)
        assert [(n.event.seq, n.incident.version) for n in security.heard] == [
            (1, 1),
            (2, 2),
            (3, 3),
            (4, 4),
        ]
        assert dict(security.heard[0].incident.labels) == {}
        assert flow.dead_letters() == []

    def test_nothing_recorded_under_the_restriction_reaches_chat(
        self, make_flow: FlowFactory, clock: FrozenClock
    ) -> None:
        """Whatever chat hears carries no label or severity set under the restriction."""
        routing = chat_and_security()
        chat = routing["notifiers"][0]  # type: ignore[index]
        flow = make_flow(**routing)
        inc = flow.declare("Checkout errors", severity="P3", commander=COMMANDER, actor=COMMANDER)
        flow.add_note(inc.id, "looking into it", actor=COMMANDER)
        restrict_and_escalate(flow, inc.id)
        for _ in range(3):
            chat.down = False
            clock.advance(timedelta(minutes=20))
            flow.deliver_pending()
        for notification in chat.heard:
            assert notification.incident.severity.value == "P3"
            assert not set(notification.incident.labels) & set(SECRET_LABELS)
            assert not notification.incident.restricted_to
