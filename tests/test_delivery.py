"""Delivery from the outbox: routing, retries with backoff, dead letters, the Dispatcher."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from delivery_worker import broken_flow, logged_flow
from helpers import COMMANDER, START, declare, drive_to
from incidentflow import (
    ConfigError,
    Event,
    Incident,
    IncidentFlow,
    Severity,
    State,
    ValidationError,
)
from incidentflow.delivery import (
    MAX_IN_FLIGHT,
    MAX_LIMIT,
    Delivery,
    DeliveryReport,
    RetryPolicy,
    Route,
)
from incidentflow.notifiers import (
    CallbackNotifier,
    DeliveryError,
    Notification,
    Notifier,
    RecordingNotifier,
)
from incidentflow.stores import (
    Commit,
    EventStore,
    IdempotencyRecord,
    MemoryStore,
    OutboxItem,
    SQLiteStore,
)
from incidentflow.testing import FrozenClock

#: Retries without jitter, so every delay can be checked to the second.
EXACT = RetryPolicy(jitter=0)


def recorder(name: str) -> RecordingNotifier:
    """A recording notifier with its own name (routing needs unique names)."""
    notifier = RecordingNotifier()
    notifier.name = name
    return notifier


def ids(notifier: RecordingNotifier) -> list[str]:
    """The notification ids a recording notifier received, in order."""
    return [n.id for n in notifier.notifications]


def event_ids(flow: IncidentFlow, *incident_ids: str) -> list[str]:
    """``<incident>:<seq>`` for every committed event of the incidents, in order."""
    return [f"{e.incident_id}:{e.seq}" for i in incident_ids for e in flow.history(i)]


def per_incident(received: Sequence[str]) -> dict[str, list[str]]:
    """Received ids grouped by incident, each group in the order received."""
    groups: dict[str, list[str]] = {}
    for notification_id in received:
        groups.setdefault(notification_id.rsplit(":", 1)[0], []).append(notification_id)
    return groups


def outbox(flow: IncidentFlow, notifier: str) -> list[OutboxItem]:
    """The undelivered, live outbox items of one notifier, oldest first."""
    return [i for i in flow.store.pending(limit=10_000) if i.notifier == notifier]


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {timeout} s: {condition.__doc__ or condition}")
        time.sleep(0.01)


class Flaky(Notifier):
    """Fails its first ``failures`` calls (or the calls ``fails_on`` picks), then records."""

    def __init__(
        self,
        name: str,
        *,
        failures: int = 1_000_000,
        fails_on: Callable[[Notification], bool] | None = None,
        error: Callable[[], Exception] = lambda: ConnectionError("receiver down"),
    ) -> None:
        self.name = name
        self.failures = failures
        self.fails_on = fails_on
        self.error = error
        self.calls: list[str] = []
        self.received: list[str] = []
        self._lock = threading.Lock()

    def notify(self, notification: Notification) -> None:
        with self._lock:
            self.calls.append(notification.id)
            failing = (
                self.fails_on(notification)
                if self.fails_on is not None
                else len(self.calls) <= self.failures
            )
            if not failing:
                self.received.append(notification.id)
        if failing:
            raise self.error()


class Slow(Notifier):
    """Takes ``delay`` seconds per notification and counts how many run at once."""

    def __init__(self, name: str = "slow", delay: float = 0.05) -> None:
        self.name = name
        self.delay = delay
        self.started = 0
        self.running = 0
        self.peak = 0
        self.received: list[str] = []
        self._lock = threading.Lock()

    def notify(self, notification: Notification) -> None:
        with self._lock:
            self.started += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(self.delay)
        finally:
            with self._lock:
                self.running -= 1
                self.received.append(notification.id)


@contextmanager
def dispatching(flow: IncidentFlow, **options: object) -> Iterator[None]:
    """Run a dispatcher that polls every 20 ms for the block."""
    with flow.dispatcher(interval=0.02, **options):  # type: ignore[call-overload]
        yield


def declare_many(flow: IncidentFlow, count: int, severity: str = "P2") -> list[str]:
    """Declare ``count`` incidents with distinct titles; their ids."""
    return [
        flow.declare(f"Alert storm {n}", severity=severity, commander=COMMANDER, actor=COMMANDER).id
        for n in range(count)
    ]


class TestDefaultRouting:
    def test_every_notifier_hears_every_event_in_order(self, clock: FrozenClock) -> None:
        """Without routes, each notifier hears every committed event of every incident, in order."""
        first, second = recorder("first"), recorder("second")
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[first, second])
        inc = drive_to(flow, clock, State.CONTAINED)
        other = declare(flow, severity="P4", texts={"title": "Search is slow"})
        expected = event_ids(flow, inc.id, other.id)
        assert len(expected) > 5
        assert ids(first) == expected
        assert ids(second) == expected
        assert [n.event for n in first.notifications] == [
            *flow.history(inc.id),
            *flow.history(other.id),
        ]

    def test_notification_id_is_incident_and_seq(self, clock: FrozenClock) -> None:
        """A notification's id is ``<incident id>:<seq>``, the same for every notifier."""
        first, second = recorder("first"), recorder("second")
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[first, second])
        inc = declare(flow)
        flow.start_triage(inc.id, actor=COMMANDER)
        assert ids(first) == [f"{inc.id}:1", f"{inc.id}:2"] == ids(second)

    def test_delivered_items_leave_the_outbox(self, clock: FrozenClock) -> None:
        """Once every notifier heard an event, nothing of it is pending."""
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[recorder("a"), recorder("b")])
        drive_to(flow, clock, State.TRIAGING)
        assert flow.store.pending() == []

    def test_no_notifiers_write_no_outbox(self, clock: FrozenClock) -> None:
        """A flow without notifiers leaves nothing to deliver."""
        flow = IncidentFlow.in_memory(clock=clock, deliver_inline=False)
        declare(flow)
        assert flow.store.pending() == []
        assert flow.deliver_pending() == DeliveryReport()


class TestRoutes:
    @pytest.fixture
    def notifiers(self) -> tuple[RecordingNotifier, RecordingNotifier]:
        """A pager and a log."""
        return recorder("pager"), recorder("log")

    @pytest.fixture
    def routed(
        self, clock: FrozenClock, notifiers: tuple[RecordingNotifier, RecordingNotifier]
    ) -> IncidentFlow:
        """P1 declarations page; everything goes to the log."""
        return IncidentFlow.in_memory(
            clock=clock,
            notifiers=list(notifiers),
            routes=[Route("pager", severities={"P1"}, events={"declared"}), Route("log")],
        )

    def test_route_by_severity_and_event_type(
        self, routed: IncidentFlow, notifiers: tuple[RecordingNotifier, RecordingNotifier]
    ) -> None:
        """Only a P1 declaration reaches the pager; the log hears everything, in order."""
        pager, log = notifiers
        p1 = routed.declare("Checkout down", severity="P1", commander=COMMANDER, actor=COMMANDER)
        p2 = routed.declare("Search slow", severity="P2", commander=COMMANDER, actor=COMMANDER)
        routed.start_triage(p1.id, actor=COMMANDER)
        routed.start_triage(p2.id, actor=COMMANDER)
        assert ids(pager) == [f"{p1.id}:1"]
        assert ids(log) == [f"{p1.id}:1", f"{p2.id}:1", f"{p1.id}:2", f"{p2.id}:2"]

    def test_severity_is_the_one_after_the_command(
        self, routed: IncidentFlow, notifiers: tuple[RecordingNotifier, RecordingNotifier]
    ) -> None:
        """A P1 declaration pages, a P2 declaration does not, whatever else the P2 later does."""
        pager, _ = notifiers
        p2 = routed.declare("Search slow", severity="P2", commander=COMMANDER, actor=COMMANDER)
        routed.reclassify(p2.id, "P1", reason="all regions now", actor=COMMANDER)
        assert ids(pager) == []

    def test_unrouted_events_write_no_outbox_item(self, clock: FrozenClock) -> None:
        """An event no route matches leaves nothing in the outbox."""
        flow = IncidentFlow.in_memory(
            clock=clock,
            notifiers=[recorder("pager")],
            routes=[Route("pager", severities="P1")],
            deliver_inline=False,
        )
        declare(flow, severity="P3")
        assert flow.store.pending() == []
        declare(flow, severity="P1", texts={"title": "Checkout down"})
        assert [i.notifier for i in flow.store.pending()] == ["pager"]

    def test_overlapping_routes_deliver_once(self, clock: FrozenClock) -> None:
        """An event matching two routes to one notifier is delivered to it once."""
        log = recorder("log")
        flow = IncidentFlow.in_memory(
            clock=clock,
            notifiers=[log],
            routes=[Route("log", severities={"P1"}), Route("log", events={"declared"})],
        )
        inc = declare(flow)
        assert ids(log) == [f"{inc.id}:1"]

    def test_empty_routes_send_nothing(self, clock: FrozenClock) -> None:
        """``routes=[]`` routes no event anywhere (unlike ``None``: everything everywhere)."""
        log = recorder("log")
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[log], routes=[])
        declare(flow)
        assert ids(log) == []

    def test_single_strings_are_accepted(self) -> None:
        """One severity or one event type may be given as a plain string."""
        route = Route("pager", severities="P1", events="declared")
        assert {s.value for s in route.severities or ()} == {"P1"}
        assert route.events == frozenset({"declared"})


class TestConfigErrors:
    def test_route_naming_an_unknown_notifier(self, clock: FrozenClock) -> None:
        """A route to a notifier that is not configured is refused at set-up, naming the key."""
        with pytest.raises(ConfigError, match=r"routes\.notifier.*'pagr'") as caught:
            IncidentFlow.in_memory(
                clock=clock, notifiers=[recorder("pager")], routes=[Route("pagr")]
            )
        assert caught.value.key == "routes.notifier"
        assert "pager" in str(caught.value)  # says which names exist

    def test_two_notifiers_with_one_name(self, clock: FrozenClock) -> None:
        """Two notifiers may not share a name: routes and outbox items could not tell them apart."""
        with pytest.raises(ConfigError, match="'chat'") as caught:
            IncidentFlow.in_memory(clock=clock, notifiers=[recorder("chat"), recorder("chat")])
        assert caught.value.key == "notifiers"

    def test_unknown_event_type(self) -> None:
        """A route naming an event type that does not exist is refused, listing the real ones."""
        with pytest.raises(ConfigError, match="'delcared'") as caught:
            Route("log", events={"declared", "delcared"})
        assert caught.value.key == "routes.events"
        assert "triage_started" in str(caught.value)

    def test_unknown_severity(self) -> None:
        """A route naming a severity that does not exist is refused."""
        with pytest.raises(ConfigError) as caught:
            Route("log", severities={"P1", "P9"})
        assert caught.value.key == "routes.severities"
        assert "P9" in str(caught.value)

    def test_route_of_the_wrong_type(self, clock: FrozenClock) -> None:
        """Something that is not a Route in ``routes`` is refused."""
        with pytest.raises(ConfigError) as caught:
            IncidentFlow.in_memory(
                clock=clock,
                notifiers=[recorder("log")],
                routes=[{"notifier": "log"}],
            )
        assert caught.value.key == "routes"

    @pytest.mark.parametrize(
        ("options", "key"),
        [
            ({"max_attempts": 0}, "retry.max_attempts"),
            ({"max_attempts": 2.5}, "retry.max_attempts"),
            ({"first_delay": timedelta(seconds=-1)}, "retry.first_delay"),
            ({"first_delay": timedelta(hours=1)}, "retry.first_delay"),  # above max_delay
            ({"multiplier": 0.5}, "retry.multiplier"),
            ({"jitter": 1.0}, "retry.jitter"),
            ({"jitter": -0.1}, "retry.jitter"),
            ({"first_delay": 5}, "retry.first_delay"),  # seconds, not a timedelta
            ({"max_delay": "15m"}, "retry.max_delay"),
            ({"multiplier": "2"}, "retry.multiplier"),
        ],
    )
    def test_bad_retry_policy(self, options: dict[str, object], key: str) -> None:
        """A retry policy that cannot work is a ConfigError naming the key, not a TypeError."""
        with pytest.raises(ConfigError) as caught:
            RetryPolicy(**options)  # type: ignore[arg-type]
        assert caught.value.key == key

    def test_retry_of_the_wrong_type(self, clock: FrozenClock) -> None:
        """``retry=`` takes a RetryPolicy."""
        with pytest.raises(ConfigError) as caught:
            IncidentFlow.in_memory(clock=clock, retry=3)
        assert caught.value.key == "retry"

    @pytest.mark.parametrize("options", [{"max_in_flight": 0}, {"interval": 0}])
    def test_bad_dispatcher_options(self, flow: IncidentFlow, options: dict[str, float]) -> None:
        """A dispatcher needs at least one slot and a positive poll interval."""
        with pytest.raises(ConfigError):
            flow.dispatcher(**options)  # type: ignore[call-overload]

    @pytest.mark.parametrize("options", [{"limit": 0}, {"max_in_flight": 0}])
    def test_bad_deliver_pending_options(self, flow: IncidentFlow, options: dict[str, int]) -> None:
        """``deliver_pending`` needs a positive limit and at least one delivery in flight."""
        with pytest.raises(ValidationError):
            flow.deliver_pending(**options)


class TestRetryPolicy:
    def test_delays_double_up_to_the_cap(self) -> None:
        """Without jitter the n-th retry waits 5 s, 10 s, 20 s, ... and never more than the cap."""
        policy = RetryPolicy(jitter=0, max_delay=timedelta(seconds=60))
        delays = [policy.delay(n).total_seconds() for n in range(1, 7)]
        assert delays == [5, 10, 20, 40, 60, 60]

    def test_jitter_spreads_within_bounds(self) -> None:
        """With jitter, the delay varies but stays within ±jitter of the base delay."""
        policy = RetryPolicy(jitter=0.2)
        rng = random.Random(4)
        delays = {policy.delay(2, rng).total_seconds() for _ in range(200)}
        assert all(8.0 <= d <= 12.0 for d in delays)
        assert len(delays) > 100


class TestFailingNotifier:
    @pytest.fixture
    def chat(self) -> Flaky:
        """A chat notifier whose receiver is down."""
        return Flaky("chat")

    @pytest.fixture
    def log(self) -> RecordingNotifier:
        """A healthy notifier."""
        return recorder("log")

    @pytest.fixture
    def failing(self, clock: FrozenClock, chat: Flaky, log: RecordingNotifier) -> IncidentFlow:
        """A flow whose chat notifier fails, with exact delays and 8 attempts."""
        return IncidentFlow.in_memory(clock=clock, notifiers=[chat, log], retry=EXACT)

    def test_the_command_still_succeeds(self, failing: IncidentFlow) -> None:
        """The command returns its snapshot and its events are committed."""
        inc = declare(failing)
        assert inc.state is State.DECLARED
        assert [e.type for e in failing.history(inc.id)] == ["declared"]

    def test_the_attempt_is_recorded_on_the_item(self, failing: IncidentFlow, chat: Flaky) -> None:
        """The item counts the attempt, keeps the error, and is due again after the first delay."""
        inc = declare(failing)
        [item] = outbox(failing, "chat")
        assert chat.calls == [f"{inc.id}:1"]
        assert item.attempts == 1
        assert item.last_error == "ConnectionError: receiver down"
        assert item.next_attempt_at == START + timedelta(seconds=5)
        assert not item.dead

    def test_backoff_doubles_and_is_capped(self, clock: FrozenClock, chat: Flaky) -> None:
        """Each retry waits twice as long as the one before, up to ``max_delay``."""
        retry = RetryPolicy(jitter=0, max_attempts=20, max_delay=timedelta(seconds=60))
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[chat], retry=retry)
        declare(flow)
        waits = []
        for _ in range(6):
            [item] = outbox(flow, "chat")
            assert item.next_attempt_at is not None
            waits.append((item.next_attempt_at - clock()).total_seconds())
            clock.set(item.next_attempt_at)
            assert flow.deliver_pending() == DeliveryReport(retrying=1)
        assert waits == [5, 10, 20, 40, 60, 60]
        assert outbox(flow, "chat")[0].attempts == 7

    def test_receivers_retry_after_is_honoured(self, clock: FrozenClock) -> None:
        """A receiver that asks for two minutes' rest (Retry-After) is not tried sooner."""
        busy = Flaky(
            "webhook",
            error=lambda: DeliveryError(
                "webhook", "x", "answered 429", retryable=True, status=429, retry_after=120
            ),
        )
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[busy], retry=EXACT)
        declare(flow)
        [item] = outbox(flow, "webhook")
        assert item.next_attempt_at == START + timedelta(seconds=120)

    def test_not_retried_before_it_is_due(
        self, failing: IncidentFlow, clock: FrozenClock, chat: Flaky
    ) -> None:
        """An item waiting for its retry is left alone until its time comes."""
        declare(failing)
        clock.advance(seconds=4)
        assert failing.deliver_pending() == DeliveryReport()
        assert len(chat.calls) == 1
        clock.advance(seconds=1)
        assert failing.deliver_pending() == DeliveryReport(retrying=1)
        assert len(chat.calls) == 2

    def test_later_items_of_the_stream_wait_in_order(
        self, failing: IncidentFlow, clock: FrozenClock, chat: Flaky
    ) -> None:
        """While an event fails, the incident's later events for that notifier are not tried."""
        inc = declare(failing)
        failing.start_triage(inc.id, actor=COMMANDER)
        failing.add_note(inc.id, "status page updated", actor=COMMANDER)
        assert chat.calls == [f"{inc.id}:1"]
        assert [(i.event.seq, i.attempts) for i in outbox(failing, "chat")] == [
            (1, 1),
            (2, 0),
            (3, 0),
        ]
        chat.failures = 0
        clock.advance(seconds=5)
        assert failing.deliver_pending() == DeliveryReport(delivered=3)
        assert chat.received == event_ids(failing, inc.id)

    def test_other_incidents_streams_are_not_held_up(self, clock: FrozenClock) -> None:
        """A stuck event of one incident does not hold back another incident's events."""
        stuck = Flaky("chat", fails_on=lambda n: n.event.incident_id.endswith("down"))
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[stuck], retry=EXACT)
        down = flow.declare("Checkout down", severity="P1", commander=COMMANDER, actor=COMMANDER)
        slow = flow.declare("Search slow", severity="P3", commander=COMMANDER, actor=COMMANDER)
        flow.start_triage(slow.id, actor=COMMANDER)
        assert stuck.received == event_ids(flow, slow.id)
        assert [i.id for i in outbox(flow, "chat")] == [f"{down.id}:1:chat"]

    def test_a_command_does_not_retry_other_incidents_inline(self, clock: FrozenClock) -> None:
        """Inline delivery sends the command's own notifications, not other incidents' retries."""
        webhook = Flaky("webhook", fails_on=lambda n: "storm" in n.id)
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[webhook], retry=EXACT)
        declare_many(flow, 5)  # "Alert storm n": their deliveries fail and fall due again
        clock.advance(minutes=1)
        webhook.calls.clear()
        inc = flow.declare("Checkout down", severity="P1", commander=COMMANDER, actor=COMMANDER)
        assert webhook.calls == [f"{inc.id}:1"]

    def test_other_notifiers_are_unaffected(
        self, failing: IncidentFlow, clock: FrozenClock, log: RecordingNotifier
    ) -> None:
        """A healthy notifier hears every event at once, whatever another one does."""
        inc = drive_to(failing, clock, State.CONTAINED)
        assert ids(log) == event_ids(failing, inc.id)
        assert outbox(failing, "log") == []

    def test_error_text_is_truncated(self, clock: FrozenClock) -> None:
        """The error kept on an item is what the notifier said, cut to 500 characters."""
        chat = Flaky("chat", error=lambda: ValueError("x" * 5000))
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[chat], retry=EXACT)
        declare(flow)
        [item] = outbox(flow, "chat")
        assert len(item.last_error) == 500
        assert item.last_error == ("ValueError: " + "x" * 5000)[:500]

    def test_deliver_pending_never_raises_a_notifiers_error(
        self, clock: FrozenClock, chat: Flaky
    ) -> None:
        """Failures in a delivery run are counted in the report, not raised."""
        flow = IncidentFlow.in_memory(
            clock=clock, notifiers=[chat], retry=EXACT, deliver_inline=False
        )
        declare_many(flow, 3)
        assert flow.deliver_pending() == DeliveryReport(retrying=3)

    def test_an_item_for_an_unconfigured_notifier_is_retried(self, clock: FrozenClock) -> None:
        """A flow that does not know an item's notifier records that, instead of crashing."""
        writer = IncidentFlow.in_memory(clock=clock, notifiers=[recorder("pager")])
        writer.deliver_inline = False
        declare(writer)
        reader = IncidentFlow(writer.store, clock=clock, notifiers=[recorder("log")])
        assert reader.deliver_pending() == DeliveryReport(retrying=1)
        [item] = outbox(reader, "pager")
        assert "no notifier named 'pager'" in item.last_error


class TestDeadLetters:
    @pytest.fixture
    def retry(self) -> RetryPolicy:
        """Three attempts, exact delays."""
        return RetryPolicy(jitter=0, max_attempts=3)

    def exhaust(self, flow: IncidentFlow, clock: FrozenClock) -> DeliveryReport:
        """Move the clock past every retry and deliver until nothing is due."""
        report = DeliveryReport()
        for _ in range(10):
            clock.advance(minutes=15)
            report += flow.deliver_pending()
        return report

    def test_dead_after_max_attempts(self, clock: FrozenClock, retry: RetryPolicy) -> None:
        """After the last allowed attempt the item is a dead letter, with its attempts and error."""
        chat = Flaky("chat")
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[chat], retry=retry)
        inc = declare(flow)
        report = self.exhaust(flow, clock)
        assert report == DeliveryReport(retrying=1, dead=1)
        [dead] = flow.dead_letters()
        assert dead.id == f"{inc.id}:1:chat"
        assert (dead.attempts, dead.dead, dead.last_error) == (
            3,
            True,
            "ConnectionError: receiver down",
        )
        assert len(chat.calls) == 3
        assert outbox(flow, "chat") == []

    def test_stream_continues_past_a_dead_letter(
        self, clock: FrozenClock, retry: RetryPolicy
    ) -> None:
        """Once an event is dead, the incident's later events go out."""
        chat = Flaky("chat", fails_on=lambda n: n.event.type == "declared")
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[chat], retry=retry)
        inc = declare(flow)
        flow.start_triage(inc.id, actor=COMMANDER)
        assert chat.received == []
        self.exhaust(flow, clock)
        assert chat.received == [f"{inc.id}:2"]
        assert [d.id for d in flow.dead_letters()] == [f"{inc.id}:1:chat"]

    def test_redrive_delivers_it(self, clock: FrozenClock, retry: RetryPolicy) -> None:
        """Re-driven dead letters get fresh attempts and are delivered once the receiver works."""
        chat = Flaky("chat")
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[chat], retry=retry)
        inc = declare(flow)
        flow.start_triage(inc.id, actor=COMMANDER)
        self.exhaust(flow, clock)
        assert len(flow.dead_letters()) == 2
        chat.failures = 0
        assert flow.redrive() == 2
        assert flow.dead_letters() == []
        assert [i.attempts for i in outbox(flow, "chat")] == [0, 0]
        assert flow.deliver_pending() == DeliveryReport(delivered=2)
        assert chat.received == event_ids(flow, inc.id)

    def test_redrive_chosen_ids(self, clock: FrozenClock, retry: RetryPolicy) -> None:
        """``redrive(ids)`` puts back only those; unknown or live ids count for nothing."""
        chat = Flaky("chat")
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[chat], retry=retry)
        first, second = declare_many(flow, 2)
        self.exhaust(flow, clock)
        assert flow.redrive([f"{first}:1:chat", "INC-nope:1:chat"]) == 1
        assert [d.id for d in flow.dead_letters()] == [f"{second}:1:chat"]
        assert flow.redrive([f"{first}:1:chat"]) == 0  # live again, not dead

    def test_not_retryable_failure_is_dead_at_once(self, clock: FrozenClock) -> None:
        """A failure that says retrying is pointless dead-letters the item on the first attempt."""
        chat = Flaky(
            "chat",
            error=lambda: DeliveryError("chat", "x", "answered 400", retryable=False, status=400),
        )
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[chat], retry=EXACT)
        inc = declare(flow)
        [dead] = flow.dead_letters()
        assert (dead.id, dead.attempts) == (f"{inc.id}:1:chat", 1)
        assert "answered 400" in dead.last_error
        assert chat.calls == [f"{inc.id}:1"]

    def test_any_exception_may_say_it_is_not_retryable(self, clock: FrozenClock) -> None:
        """``retryable = False`` on any exception is honoured, not only on DeliveryError."""

        class Rejected(Exception):
            retryable = False

        flow = IncidentFlow.in_memory(
            clock=clock, notifiers=[Flaky("chat", error=Rejected)], retry=EXACT
        )
        declare(flow)
        assert len(flow.dead_letters()) == 1

    def test_dead_letters_limit(self, clock: FrozenClock) -> None:
        """``dead_letters(limit)`` returns at most that many, oldest first."""
        never = RetryPolicy(max_attempts=1)
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[Flaky("chat")], retry=never)
        incidents = declare_many(flow, 3)
        assert [d.event.incident_id for d in flow.dead_letters(limit=2)] == incidents[:2]


class TestReceiverRecovers:
    def test_down_for_the_first_attempts_then_everything_arrives(self, clock: FrozenClock) -> None:
        """A receiver down for its first K calls loses nothing and fails no command."""
        webhook, log = Flaky("webhook", failures=4), recorder("log")
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[webhook, log], retry=EXACT)
        incidents = [
            drive_to(flow, clock, State.CONTAINED, texts={"title": f"Outage {n}"}).id
            for n in range(3)
        ]
        assert webhook.received  # it came back while the incidents were still being worked
        for _ in range(20):
            if not outbox(flow, "webhook"):
                break
            clock.advance(minutes=1)
            flow.deliver_pending()
        everything = event_ids(flow, *incidents)
        assert sorted(webhook.received) == sorted(everything)
        assert len(webhook.received) == len(everything)  # nothing twice
        assert per_incident(webhook.received) == per_incident(everything)
        assert ids(log) == everything
        assert flow.dead_letters() == []
        assert flow.store.pending() == []


class TestDeliverPending:
    def test_no_inline_delivery_leaves_items_in_the_outbox(self, clock: FrozenClock) -> None:
        """With ``deliver_inline=False`` commands only write the outbox; deliver_pending sends."""
        log = recorder("log")
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[log], deliver_inline=False)
        inc = declare(flow)
        flow.start_triage(inc.id, actor=COMMANDER)
        assert ids(log) == []
        assert [i.id for i in flow.store.pending()] == [f"{inc.id}:1:log", f"{inc.id}:2:log"]
        assert flow.deliver_pending() == DeliveryReport(delivered=2)
        assert ids(log) == event_ids(flow, inc.id)
        assert flow.store.pending() == []
        assert flow.deliver_pending() == DeliveryReport()

    def test_late_notification_carries_the_incident_as_of_its_event(
        self, clock: FrozenClock
    ) -> None:
        """A notification delivered late carries its own event and the incident right after it."""
        log = recorder("log")
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[log], deliver_inline=False)
        inc = declare(flow)
        after = flow.start_triage(inc.id, actor=COMMANDER)
        flow.deliver_pending()
        assert [(n.event.type, n.event.seq) for n in log.notifications] == [
            ("declared", 1),
            ("triage_started", 2),
        ]
        assert [n.incident for n in log.notifications] == [inc, after]

    def test_limit(self, clock: FrozenClock) -> None:
        """``limit`` bounds how many items one run handles."""
        log = recorder("log")
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[log], deliver_inline=False)
        declare_many(flow, 5)
        assert flow.deliver_pending(limit=2) == DeliveryReport(delivered=2)
        assert flow.deliver_pending(limit=10) == DeliveryReport(delivered=3)

    def test_several_deliveries_in_flight(self, clock: FrozenClock) -> None:
        """With ``max_in_flight=8``, slow deliveries of many incidents run side by side."""
        slow = Slow(delay=0.05)
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[slow], deliver_inline=False)
        incidents = declare_many(flow, 40)
        assert flow.deliver_pending(max_in_flight=8) == DeliveryReport(delivered=40)
        assert slow.peak >= 4
        assert slow.peak <= 8
        assert sorted(slow.received) == sorted(f"{i}:1" for i in incidents)

    def test_one_in_flight_is_sequential(self, clock: FrozenClock) -> None:
        """With ``max_in_flight=1`` deliveries run one at a time."""
        slow = Slow(delay=0.005)
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[slow], deliver_inline=False)
        declare_many(flow, 10)
        assert flow.deliver_pending(max_in_flight=1) == DeliveryReport(delivered=10)
        assert slow.peak == 1

    def test_each_stream_stays_in_order_when_parallel(self, clock: FrozenClock) -> None:
        """Parallel delivery still gives each notifier one incident's events in order."""
        slow = Slow(delay=0.002)
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[slow], deliver_inline=False)
        incidents = [
            drive_to(flow, clock, State.RCA, texts={"title": f"Outage {n}"}).id for n in range(6)
        ]
        flow.deliver_pending(max_in_flight=8)
        assert per_incident(slow.received) == per_incident(event_ids(flow, *incidents))


class TestDispatcher:
    def test_commands_do_not_wait_for_a_slow_notifier(self, clock: FrozenClock) -> None:
        """With a dispatcher running, a command returns before its notification is sent."""
        release = threading.Event()
        sent: list[str] = []

        def held(notification: Notification) -> None:
            release.wait(5)
            sent.append(notification.id)

        flow = IncidentFlow.in_memory(clock=clock, notifiers=[CallbackNotifier(held, "slow")])
        with dispatching(flow):
            inc = declare(flow)
            assert sent == []
            assert not release.is_set()
            release.set()
            wait_until(lambda: sent == [f"{inc.id}:1"])

    def test_keeps_several_deliveries_in_flight(self, clock: FrozenClock) -> None:
        """A dispatcher with ``max_in_flight=8`` runs at least 4 slow deliveries at once."""
        slow = Slow(delay=0.05)
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[slow])
        with dispatching(flow, max_in_flight=8):
            incidents = declare_many(flow, 40)
            wait_until(lambda: len(slow.received) == 40)
        assert 4 <= slow.peak <= 8
        assert sorted(slow.received) == sorted(f"{i}:1" for i in incidents)
        assert flow.store.pending() == []

    def test_delivers_what_was_pending_before_it_started(self, clock: FrozenClock) -> None:
        """On start, the dispatcher picks up items other processes left in the outbox."""
        log = recorder("log")
        writer = IncidentFlow.in_memory(clock=clock, notifiers=[log], deliver_inline=False)
        inc = declare(writer)
        server = IncidentFlow(writer.store, clock=clock, notifiers=[log])
        with dispatching(server):
            wait_until(lambda: ids(log) == [f"{inc.id}:1"])

    def test_polls_for_other_writers_commits(self, clock: FrozenClock) -> None:
        """Commits of another flow on the same store are delivered at the next poll."""
        log = recorder("log")
        server = IncidentFlow.in_memory(clock=clock, notifiers=[log])
        writer = IncidentFlow(server.store, clock=clock, notifiers=[log], deliver_inline=False)
        with dispatching(server):
            inc = declare(writer)
            wait_until(lambda: ids(log) == [f"{inc.id}:1"])

    def test_retries_once_the_clock_passes_the_backoff(self, clock: FrozenClock) -> None:
        """A failed delivery is tried again by the dispatcher when it falls due."""
        chat = Flaky("chat", failures=1)
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[chat], retry=EXACT)
        with dispatching(flow):
            inc = declare(flow)
            wait_until(lambda: len(chat.calls) == 1)
            time.sleep(0.05)
            assert chat.received == []  # not due yet: the clock stands still
            clock.advance(seconds=5)
            wait_until(lambda: chat.received == [f"{inc.id}:1"])

    def test_stop_finishes_in_flight_work_and_leaves_the_rest(self, clock: FrozenClock) -> None:
        """stop() waits for the deliveries under way; what was not started stays in the outbox."""
        slow = Slow(delay=0.2)
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[slow])
        dispatcher = flow.dispatcher(max_in_flight=2, interval=0.02).start()
        incidents = declare_many(flow, 10)
        wait_until(lambda: slow.started >= 2)
        dispatcher.stop()
        assert not dispatcher.running
        assert slow.running == 0
        assert len(slow.received) == slow.started  # every started delivery finished
        assert 2 <= len(slow.received) < 10
        left = [i.event.incident_id for i in outbox(flow, "slow")]
        assert len(left) == 10 - len(slow.received)
        assert flow.deliver_pending() == DeliveryReport(delivered=len(left))
        assert sorted(slow.received) == sorted(f"{i}:1" for i in incidents)

    def test_context_manager(self, clock: FrozenClock) -> None:
        """``with flow.dispatcher():`` starts it and stops it again."""
        log = recorder("log")
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[log])
        with flow.dispatcher(interval=0.02) as dispatcher:
            assert dispatcher.running
            inc = declare(flow)
            wait_until(lambda: ids(log) == [f"{inc.id}:1"])
        assert not dispatcher.running

    def test_commands_deliver_inline_again_after_stop(self, clock: FrozenClock) -> None:
        """Once the dispatcher stopped, a flow that delivers inline does so again."""
        log = recorder("log")
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[log])
        with dispatching(flow):
            pass
        inc = declare(flow)
        assert ids(log) == [f"{inc.id}:1"]

    def test_two_dispatchers_deliver_each_item_once(self, clock: FrozenClock) -> None:
        """Two dispatchers on one flow share the work: every notification arrives exactly once."""
        slow = Slow(delay=0.002)
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[slow])
        with dispatching(flow, max_in_flight=4), dispatching(flow, max_in_flight=4):
            incidents = declare_many(flow, 30)
            for incident_id in incidents:
                flow.start_triage(incident_id, actor=COMMANDER)
                flow.add_note(incident_id, "paged the database team", actor=COMMANDER)
            wait_until(lambda: len(slow.received) >= 90 and not flow.store.pending())
        everything = event_ids(flow, *incidents)
        counts = Counter(slow.received)
        assert set(counts) == set(everything)
        assert set(counts.values()) == {1}
        assert per_incident(slow.received) == per_incident(everything)


class ProcessLog:
    """What the dispatcher processes' notifier wrote: ``start``/``done`` lines per delivery."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self, kind: str) -> list[tuple[str, int]]:
        """(notification id, pid) of every ``kind`` line, in the order written."""
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == kind:
                found.append((parts[1], int(parts[2])))
        return found

    def done(self) -> list[str]:
        """The ids of the finished deliveries, in order."""
        return [notification_id for notification_id, _ in self.lines("done")]


@pytest.fixture
def process_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ProcessLog:
    """The environment delivery_worker.logged_flow reads: a SQLite file and a log."""
    monkeypatch.setenv("DELIVERY_TEST_STORE", f"sqlite:///{tmp_path / 'incidents.db'}")
    monkeypatch.setenv("DELIVERY_TEST_LOG", str(tmp_path / "deliveries.log"))
    monkeypatch.setenv("DELIVERY_TEST_DELAY", "0")
    return ProcessLog(tmp_path / "deliveries.log")


@pytest.fixture(params=["sqlite", "postgres"])
def shared_store(
    request: pytest.FixtureRequest, process_log: ProcessLog, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Each store several processes share: SQLite, and PostgreSQL when a server is named."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    import pg

    dsn = pg.postgres_dsn()
    psycopg = pytest.importorskip("psycopg")
    schema = f"test_process_{os.getpid()}_{time.monotonic_ns()}"
    joiner = "&" if "?" in dsn else "?"
    monkeypatch.setenv("DELIVERY_TEST_STORE", f"{dsn}{joiner}schema={schema}&max_size=4")
    try:
        yield "postgres"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def storm(flow: IncidentFlow, incidents: int, notes: int) -> list[str]:
    """Declare ``incidents`` incidents and add ``notes`` notes to each; their ids."""
    declared = declare_many(flow, incidents)
    for n in range(notes):
        for incident_id in declared:
            flow.add_note(incident_id, f"alert fired again ({n})", actor=COMMANDER)
    return declared


class TestDispatcherProcess:
    def test_delivers_from_a_child_process_in_order(
        self, process_log: ProcessLog, shared_store: str
    ) -> None:
        """Every event is delivered once, by the child, in order per incident; none inline."""
        flow = logged_flow()
        with flow.dispatcher(max_in_flight=4, interval=0.05, process=logged_flow) as dispatcher:
            assert dispatcher.running
            assert dispatcher.pid not in (None, os.getpid())
            incidents = storm(flow, 6, 3)
            everything = event_ids(flow, *incidents)
            wait_until(lambda: len(process_log.done()) >= len(everything), timeout=30)
        assert not dispatcher.running
        assert Counter(process_log.done()) == Counter(everything)
        assert per_incident(process_log.done()) == per_incident(everything)
        assert {pid for _, pid in process_log.lines("done")} == {dispatcher.pid}
        assert dispatcher.delivered == len(everything)
        assert flow.store.pending() == []
        flow.close()

    def test_commands_deliver_inline_again_after_stop(self, process_log: ProcessLog) -> None:
        """Once the process stopped, the flow delivers inline, in this process."""
        flow = logged_flow()
        with flow.dispatcher(interval=0.05, process=logged_flow):
            pass
        inc = declare(flow)
        assert process_log.lines("done") == [(f"{inc.id}:1", os.getpid())]
        flow.close()

    def test_stop_finishes_what_it_claimed_and_leaves_the_rest(
        self, process_log: ProcessLog, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """stop() lets the child finish its claimed deliveries; the rest stays deliverable."""
        monkeypatch.setenv("DELIVERY_TEST_DELAY", "0.2")
        flow = logged_flow()
        dispatcher = flow.dispatcher(max_in_flight=2, interval=0.05, process=logged_flow).start()
        incidents = declare_many(flow, 12)
        wait_until(lambda: len(process_log.lines("start")) >= 2, timeout=30)
        dispatcher.stop()
        assert not dispatcher.running
        started = [i for i, _ in process_log.lines("start")]
        assert sorted(process_log.done()) == sorted(started)  # nothing was cut off
        assert 2 <= dispatcher.delivered == len(started) < 12
        # No claim outlives the process: what is left is deliverable at once.
        monkeypatch.setenv("DELIVERY_TEST_DELAY", "0")
        assert flow.deliver_pending() == DeliveryReport(delivered=12 - len(started))
        assert sorted(process_log.done()) == sorted(f"{i}:1" for i in incidents)
        flow.close()

    def test_a_killed_process_is_taken_over_once_its_leases_end(
        self, process_log: ProcessLog, shared_store: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """kill -9 mid-delivery loses nothing: the next dispatcher delivers it all, in order."""
        monkeypatch.setenv("DELIVERY_TEST_DELAY", "0.1")
        monkeypatch.setenv("DELIVERY_TEST_LEASE", "1")
        flow = logged_flow()
        first = flow.dispatcher(max_in_flight=2, interval=0.05, process=logged_flow).start()
        incidents = storm(flow, 4, 2)
        everything = event_ids(flow, *incidents)
        wait_until(lambda: len(process_log.lines("start")) >= 3, timeout=30)
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)
        wait_until(lambda: not first.running)
        first.stop()
        killed = first.pid
        second = flow.dispatcher(max_in_flight=2, interval=0.05, process=logged_flow).start()
        try:
            wait_until(lambda: set(process_log.done()) >= set(everything), timeout=30)
        finally:
            second.stop()
        done = process_log.done()
        assert set(done) == set(everything)
        # At least once: what the killed process delivered without marking it, or
        # had under way, arrives again; nothing else does.
        touched = {i for i, pid in process_log.lines("start") if pid == killed}
        assert {i for i, n in Counter(done).items() if n > 1} <= touched
        assert {pid for _, pid in process_log.lines("done")} <= {killed, second.pid}
        assert per_incident(list(dict.fromkeys(done))) == per_incident(everything)
        assert flow.store.pending() == []
        flow.close()

    def test_a_failing_factory_is_reported_at_start(self, process_log: ProcessLog) -> None:
        """start() raises ConfigError with the factory's own error; nothing stays attached."""
        flow = logged_flow()
        with pytest.raises(ConfigError, match="DELIVERY_TEST_URL is not set"):
            flow.dispatcher(process=broken_flow).start()
        with pytest.raises(ConfigError, match="not an IncidentFlow"):
            flow.dispatcher(process="delivery_worker:not_a_flow").start()
        with pytest.raises(ConfigError, match="No module named"):
            flow.dispatcher(process="no_such_module:make_flow").start()
        inc = declare(flow)  # still delivered inline: no dispatcher is attached
        assert process_log.done() == [f"{inc.id}:1"]
        flow.close()

    @pytest.mark.parametrize(
        ("factory", "problem"),
        [
            (lambda: None, "top level of a module"),
            ("no colon", "package.module:function"),
            (42, "expected a flow factory"),
        ],
    )
    def test_a_factory_another_process_cannot_find(
        self, process_log: ProcessLog, factory: object, problem: str
    ) -> None:
        """A lambda, a malformed reference or a non-function is refused at once."""
        flow = logged_flow()
        with pytest.raises(ConfigError, match=problem):
            flow.dispatcher(process=factory)  # type: ignore[call-overload]
        flow.close()

    def test_memory_store_is_refused(self, clock: FrozenClock) -> None:
        """A MemoryStore cannot be shared with another process."""
        flow = IncidentFlow.in_memory(clock=clock)
        with pytest.raises(ConfigError, match="MemoryStore lives in one process"):
            flow.dispatcher(process=logged_flow)


class EventsOnly(EventStore):
    """An event store without an outbox: histories and snapshots, nothing to deliver."""

    def __init__(self) -> None:
        self.inner = MemoryStore()

    def append(self, commit: Commit) -> None:
        self.inner.append(commit)

    def load(self, incident_id: str) -> Incident:
        return self.inner.load(incident_id)

    def history(self, incident_id: str, after: int = 0) -> Sequence[Event]:
        return self.inner.history(incident_id, after)

    def exists(self, incident_id: str) -> bool:
        return self.inner.exists(incident_id)

    def idempotency(self, key: str) -> IdempotencyRecord | None:
        return self.inner.idempotency(key)

    def close(self) -> None:
        self.inner.close()


class TestBadInputAtTheBoundary:
    @pytest.mark.parametrize("ids", [5, "INC-1:1:chat", b"INC-1:1:chat", [5], ["ok", None]])
    def test_redrive_takes_an_iterable_of_id_strings(self, flow: IncidentFlow, ids: object) -> None:
        """``redrive`` refuses anything but an iterable of id strings, naming ``ids``."""
        with pytest.raises(ValidationError, match="outbox item ids") as caught:
            flow.redrive(ids)  # type: ignore[arg-type]
        assert caught.value.field == "ids"

    def test_redrive_refuses_an_id_that_is_not_text(self, flow: IncidentFlow) -> None:
        """A lone surrogate in an id is a ValidationError, not the store's UnicodeEncodeError."""
        with pytest.raises(ValidationError) as caught:
            flow.redrive(["INC-1:1:\ud800"])
        assert caught.value.field == "ids"

    def test_redrive_takes_a_generator(self, flow: IncidentFlow) -> None:
        """Any iterable of strings is accepted; unknown ids redrive nothing."""
        assert flow.redrive(i for i in ["INC-nope:1:chat"]) == 0

    @pytest.mark.parametrize("limit", [0, -1, 10**30, 100_001, True, 1.5, "10"])
    def test_dead_letters_limit_is_bounded(self, flow: IncidentFlow, limit: object) -> None:
        """``dead_letters(limit)`` takes 1 to 100,000: a ValidationError naming ``limit``."""
        with pytest.raises(ValidationError, match="100,000") as caught:
            flow.dead_letters(limit)  # type: ignore[arg-type]
        assert caught.value.field == "limit"

    def test_dead_letters_at_the_maximum(self, flow: IncidentFlow) -> None:
        """The documented maximum itself is accepted."""
        assert list(flow.dead_letters(MAX_LIMIT)) == []

    @pytest.mark.parametrize(
        ("options", "field"),
        [
            ({"limit": 10**30}, "limit"),
            ({"limit": MAX_LIMIT + 1}, "limit"),
            ({"max_in_flight": 10**30}, "max_in_flight"),
            ({"max_in_flight": MAX_IN_FLIGHT + 1}, "max_in_flight"),
            ({"max_in_flight": 2.0}, "max_in_flight"),
        ],
    )
    def test_deliver_pending_options_are_bounded(
        self, flow: IncidentFlow, options: dict[str, object], field: str
    ) -> None:
        """Huge or fractional options are a ValidationError naming the option, not OverflowError."""
        with pytest.raises(ValidationError) as caught:
            flow.deliver_pending(**options)  # type: ignore[arg-type]
        assert caught.value.field == field

    @pytest.mark.parametrize(
        "options", [{"max_in_flight": 10**30}, {"interval": float("nan")}, {"interval": True}]
    )
    def test_dispatcher_options_are_bounded(
        self, flow: IncidentFlow, options: dict[str, object]
    ) -> None:
        """A dispatcher refuses thread counts it cannot start and intervals it cannot wait."""
        with pytest.raises(ConfigError):
            flow.dispatcher(**options)  # type: ignore[call-overload]

    def test_deliver_inline_takes_a_boolean(self, flow: IncidentFlow) -> None:
        """Setting ``deliver_inline`` to something else is a ValidationError."""
        with pytest.raises(ValidationError):
            flow.deliver_inline = "yes"  # type: ignore[assignment]
        assert flow.deliver_inline is True


class Unprintable(Exception):
    """An exception that cannot print itself or say whether to retry."""

    def __str__(self) -> str:
        raise RuntimeError("no message")

    @property
    def retry_after(self) -> float:
        raise KeyError("retry_after")


class Bomb:
    """An attached dispatcher that fails when woken."""

    def __init__(self) -> None:
        self.stopped = False

    def committed(self, snapshot: Incident) -> None:
        raise RuntimeError("the dispatcher fell over")

    def stop(self, timeout: float | None = 30.0) -> None:
        self.stopped = True


class Woken:
    """An attached dispatcher counting its wake-ups."""

    def __init__(self) -> None:
        self.snapshots: list[Incident] = []

    def committed(self, snapshot: Incident) -> None:
        self.snapshots.append(snapshot)

    def stop(self, timeout: float | None = 30.0) -> None:
        pass


class ExplodingRoute(Route):
    """A route whose matching fails, as a buggy custom route would."""

    def accepts(self, severity: Severity, event_type: str) -> bool:
        if event_type == "triage_started":
            raise KeyError(event_type)
        return True


class TestNothingRaisedAfterTheCommit:
    def test_a_notifier_whose_error_cannot_print(self, clock: FrozenClock) -> None:
        """An exception that breaks even its own message leaves the command's snapshot intact."""
        chat = Flaky("chat", error=Unprintable)
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[chat], retry=EXACT)
        inc = declare(flow)
        assert inc.version == 1
        [item] = outbox(flow, "chat")
        assert (item.attempts, item.last_error) == (
            1,
            "Unprintable (its message could not be read)",
        )

    def test_a_failing_dispatcher_does_not_fail_the_command(self, clock: FrozenClock) -> None:
        """A dispatcher raising when woken is logged; the command returns, the others are woken."""
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[recorder("log")])
        bomb, woken = Bomb(), Woken()
        flow.delivery.attach(bomb)
        flow.delivery.attach(woken)
        inc = declare(flow)
        assert [s.version for s in woken.snapshots] == [inc.version]
        flow.close()
        assert bomb.stopped

    def test_a_failing_store_claim_does_not_fail_the_command(self, clock: FrozenClock) -> None:
        """Inline delivery that cannot claim leaves the items in the outbox; the command returns."""

        class NoClaims(MemoryStore):
            def claim(self, **options: Any) -> Sequence[OutboxItem]:
                raise OSError("disk gone")

        log = recorder("log")
        flow = IncidentFlow(NoClaims(), clock=clock, notifiers=[log])
        inc = declare(flow)
        assert flow.get(inc.id).version == 1
        assert [i.id for i in outbox(flow, "log")] == [f"{inc.id}:1:log"]

    def test_routing_that_raises_fails_the_command_with_nothing_written(
        self, clock: FrozenClock
    ) -> None:
        """Routing runs before the commit: if it raises, the command fails whole (ConfigError)."""
        log = recorder("log")
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[log], routes=[ExplodingRoute("log")])
        inc = declare(flow)
        with pytest.raises(ConfigError, match="nothing was recorded") as caught:
            flow.start_triage(inc.id, actor=COMMANDER)
        assert caught.value.key == "routes"
        assert flow.get(inc.id).state is State.DECLARED
        assert len(flow.history(inc.id)) == 1
        assert ids(log) == [f"{inc.id}:1"]
        assert outbox(flow, "log") == []


class TestStoreWithoutOutbox:
    def test_notifiers_need_an_outbox(self, clock: FrozenClock) -> None:
        """Notifiers on a store that keeps no outbox are a ConfigError naming ``notifiers``."""
        with pytest.raises(ConfigError, match="keeps no outbox") as caught:
            IncidentFlow(EventsOnly(), clock=clock, notifiers=[recorder("log")])  # type: ignore[arg-type]
        assert caught.value.key == "notifiers"

    def test_without_notifiers_it_works_and_routes_nothing(self, clock: FrozenClock) -> None:
        """With no notifiers, an event store alone runs commands and delivery has nothing to do."""
        flow = IncidentFlow(EventsOnly(), clock=clock)  # type: ignore[arg-type]
        inc = declare(flow)
        assert flow.start_triage(inc.id, actor=COMMANDER).state is State.TRIAGING
        assert flow.deliver_pending() == DeliveryReport()
        assert list(flow.dead_letters()) == []
        assert flow.redrive() == 0

    def test_no_dispatcher_without_an_outbox(self, clock: FrozenClock) -> None:
        """A dispatcher for a store without an outbox is refused at once, naming ``store``."""
        delivery = Delivery(EventsOnly(), now=clock)
        with pytest.raises(ConfigError, match="keeps no outbox") as caught:
            delivery.dispatcher()
        assert caught.value.key == "store"


class TestDeliveryHost:
    def test_a_dispatcher_serves_any_host(self, clock: FrozenClock) -> None:
        """A Dispatcher needs only a DeliveryHost: here a Delivery on a store, with no flow."""
        flow = IncidentFlow.in_memory(
            clock=clock, notifiers=[recorder("log")], deliver_inline=False
        )
        inc = declare(flow)
        log = recorder("log")
        host = Delivery(flow.store, now=clock, notifiers=[log])
        with host.dispatcher(max_in_flight=1, interval=0.01) as dispatcher:
            assert host.dispatchers == (dispatcher,)
            wait_until(lambda: ids(log) == [f"{inc.id}:1"])
        assert not host.dispatchers

    def test_a_flow_attaches_its_dispatcher_to_its_delivery(self, clock: FrozenClock) -> None:
        """While a dispatcher runs it is attached to ``flow.delivery``; stopping detaches it."""
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[recorder("log")])
        with flow.dispatcher(interval=0.01) as dispatcher:
            assert flow.delivery.dispatchers == (dispatcher,)
        assert not flow.delivery.dispatchers


class Hung(Notifier):
    """Blocks every notification until ``release`` is set; counts who is waiting."""

    def __init__(self, name: str, release: threading.Event) -> None:
        self.name = name
        self.release = release
        self.waiting = 0
        self.received: list[str] = []
        self._lock = threading.Lock()

    def notify(self, notification: Notification) -> None:
        with self._lock:
            self.waiting += 1
        self.release.wait(60)  # a hang guard, not a speed claim
        with self._lock:
            self.waiting -= 1
            self.received.append(notification.id)


class TestInlineBudget:
    """Commands are never held up by notifications: inline delivery has a budget."""

    def test_hung_notifiers_do_not_hold_up_the_command(self, tmp_path: Path) -> None:
        """Three hung notifiers: the command returns while all three still wait, tried at once."""
        release = threading.Event()
        hung = [Hung(f"hook-{n}", release) for n in range(3)]
        flow = IncidentFlow(
            SQLiteStore(tmp_path / "incidents.db"),
            clock=FrozenClock(START),
            notifiers=hung,
            delivery_budget=timedelta(milliseconds=50),
        )
        try:
            inc = declare(flow, severity="P1")
            assert flow.get(inc.id).version == 1  # committed, and returned
            deadline = time.monotonic() + 30  # a hang guard
            while sum(h.waiting for h in hung) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert [h.waiting for h in hung] == [1, 1, 1]  # all tried at once, all still hung
            assert all(h.received == [] for h in hung)
            release.set()
        finally:
            release.set()
            flow.close()  # waits for the deliveries under way
        assert all(h.received == [f"{inc.id}:1"] for h in hung)
        store = SQLiteStore(tmp_path / "incidents.db")
        assert store.pending() == []  # settled by the deliveries that went on
        store.close()

    def test_a_budget_must_be_a_duration(self) -> None:
        """A negative or non-timedelta budget is a ConfigError naming delivery_budget."""
        for wrong in (timedelta(seconds=-1), 2):
            with pytest.raises(ConfigError) as info:
                IncidentFlow.in_memory(delivery_budget=wrong)  # type: ignore[arg-type]
            assert info.value.key == "delivery_budget"
