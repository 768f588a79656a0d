"""A webhook receiver that is down, then up again, over real HTTP on 127.0.0.1.

The real ``WebhookNotifier`` posts to a port where nothing listens (connections
are refused) while incidents are worked; then the recording receiver starts on
that same port and everything must arrive, signed, once, in order per incident.
A receiver that keeps answering 500 fills the dead letters, which are re-driven
once it answers 200. Each scenario runs on SQLite, and on PostgreSQL when
INCIDENTFLOW_TEST_POSTGRES_DSN names a server (required under CI=true).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from notifier_servers import (
    SECRET_PATH,
    SECRET_TOKEN,
    SIGNING_SECRET,
    Answer,
    HttpReceiver,
    Received,
)

from helpers import COMMANDER, RESPONDER
from incidentflow import DeliveryReport, Incident, IncidentFlow, RetryPolicy, Route, State
from incidentflow.notifiers import Notifier, RecordingNotifier, WebhookNotifier
from incidentflow.stores import OutboxItem, Store
from incidentflow.testing import FrozenClock

# The PostgreSQL helpers (skip without a server, fail under CI=true) live beside the store tests.
_STORES = str(Path(__file__).resolve().parents[1] / "stores")
if _STORES not in sys.path:
    sys.path.insert(0, _STORES)

import store_workers  # noqa: E402 - importable only once the folder is on sys.path

#: Parts of the receiver's URL and its signing secret: no stored error may show them.
SECRETS = ("s3cretPathToken", "B0002", SECRET_TOKEN, SIGNING_SECRET)


class ReceiverOnPort(HttpReceiver):
    """The recording receiver, started on a port chosen beforehand instead of a fresh one."""

    def __init__(self, port: int) -> None:
        # HttpReceiver binds a new port; this one must come up where the notifier already points.
        self.secret = SIGNING_SECRET
        self.answer = Answer()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A SQLite file in tmp_path, or a throwaway PostgreSQL schema (dropped afterwards)."""
    try:
        opened = store_workers.open_kind(request.param, tmp_path)
        yield opened
        opened.close()
    finally:
        store_workers.drop_postgres_schemas()


@pytest.fixture
def start_receiver(closed_port: int) -> Iterator[Callable[[], HttpReceiver]]:
    """``start_receiver()``: bring the receiver up on ``closed_port``, refused until then."""
    started: list[HttpReceiver] = []

    def start() -> HttpReceiver:
        receiver = ReceiverOnPort(closed_port)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


def secret_url(port: int) -> str:
    """The receiver's URL on ``port``, credentials in its path and query as real ones have."""
    return f"http://127.0.0.1:{port}/hooks/{SECRET_PATH}?token={SECRET_TOKEN}"


def webhook(port: int) -> WebhookNotifier:
    """The real notifier, signing with the receiver's secret.

    A refused connection fails at once whatever the timeout; the generous one
    keeps a slow machine from timing out a request the receiver did record.
    """
    return WebhookNotifier(secret_url(port), secret=SIGNING_SECRET, timeout=10, name="webhook")


def recorder(name: str) -> RecordingNotifier:
    """A healthy notifier beside the webhook."""
    notifier = RecordingNotifier()
    notifier.name = name
    return notifier


def work_incidents(
    flow: IncidentFlow, severities: Sequence[str], between: Callable[[], object] = lambda: None
) -> list[str]:
    """Declare one incident per severity and take them all to contained, in turns.

    Each command must return normally with the incident moved on; ``between``
    runs before each turn. Returns the incidents' ids.
    """
    incidents = []
    for n, severity in enumerate(severities):
        declared = flow.declare(
            f"Checkout outage {n}", severity=severity, commander=COMMANDER, actor=COMMANDER
        )
        assert (declared.state, declared.version) == (State.DECLARED, 1)
        incidents.append(declared.id)
    answers = [
        (State.TRIAGING, lambda i, q=question: flow.answer_triage(i, q, "500s", actor=RESPONDER))
        for question in flow.policy.required_triage_answers
    ]
    turns: list[tuple[State, Callable[[str], Incident]]] = [
        (State.TRIAGING, lambda i: flow.start_triage(i, actor=COMMANDER)),
        (
            State.TRIAGING,
            lambda i: flow.add_evidence(
                i, source="journalctl", content="POST /orders -> 500", actor=RESPONDER
            ),
        ),
        *answers,
        (State.TRIAGING, lambda i: flow.record_containment(i, "rolled back", actor=RESPONDER)),
        (State.CONTAINED, lambda i: flow.contain(i, actor=COMMANDER)),
        (State.CONTAINED, lambda i: flow.add_note(i, "status page updated", actor=COMMANDER)),
    ]
    for version, (state, command) in enumerate(turns, start=2):
        between()
        for incident_id in incidents:
            after = command(incident_id)
            assert (after.state, after.version) == (state, version)
    return incidents


def notification_ids(flow: IncidentFlow, incidents: Sequence[str]) -> list[str]:
    """``<incident>:<seq>`` of every committed event of ``incidents``, in order."""
    return [f"{e.incident_id}:{e.seq}" for i in incidents for e in flow.history(i)]


def per_incident(ids: Sequence[str]) -> dict[str, list[str]]:
    """Notification ids grouped by incident, each group in the given order."""
    groups: dict[str, list[str]] = {}
    for notification_id in ids:
        groups.setdefault(notification_id.rsplit(":", 1)[0], []).append(notification_id)
    return groups


def outbox(flow: IncidentFlow, notifier: str = "webhook") -> list[OutboxItem]:
    """The live (undelivered, not dead) outbox items of one notifier."""
    return [i for i in flow.store.pending(limit=10_000) if i.notifier == notifier]


def heads(flow: IncidentFlow) -> list[OutboxItem]:
    """Each incident's oldest undelivered webhook item: the one being retried."""
    first: dict[str, OutboxItem] = {}
    for item in outbox(flow):
        held = first.get(item.event.incident_id)
        if held is None or item.event.seq < held.event.seq:
            first[item.event.incident_id] = item
    return list(first.values())


def received_ids(requests: Sequence[Received]) -> list[str]:
    """The notification ids of the requests, in arrival order; each request checked on the way.

    Every request must be for the secret URL, validly signed, and name in its
    ``X-Incidentflow-Id`` header the id its body carries.
    """
    ids = []
    for request in requests:
        assert request.path == f"/hooks/{SECRET_PATH}?token={SECRET_TOKEN}"
        assert request.signature_ok is True
        body_id = json.loads(request.body)["id"]
        assert request.headers["x-incidentflow-id"] == body_id
        ids.append(body_id)
    return ids


def assert_no_secret(text: str) -> None:
    leaked = [secret for secret in SECRETS if secret in text]
    assert leaked == [], f"secrets leaked: {leaked}"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout} s still not true: {what}")
        time.sleep(0.01)


class TestReceiverDownThenUp:
    #: Failed attempts on each incident's first notification before the receiver comes up.
    DOWN_FOR = 4

    def test_everything_arrives_once_it_listens(
        self,
        store: Store,
        clock: FrozenClock,
        closed_port: int,
        start_receiver: Callable[[], HttpReceiver],
    ) -> None:
        """Refused connections fail no command and lose nothing: all arrives once it is up."""
        log = recorder("log")
        retry = RetryPolicy(jitter=0, max_attempts=20)
        # P3 is not routed to the webhook: it must hear nothing of that incident.
        routes = [Route("webhook", severities={"P1", "P2"}), Route("log")]
        with IncidentFlow(
            store, clock=clock, notifiers=[webhook(closed_port), log], routes=routes, retry=retry
        ) as flow:
            incidents = work_incidents(
                flow, ["P1", "P2", "P3", "P1"], between=lambda: clock.advance(seconds=30)
            )
            routed = [i for n, i in enumerate(incidents) if n != 2]
            expected = notification_ids(flow, routed)

            # Down: inline delivery failed, the commands did not; the log heard everything.
            heard = [n.id for n in log.notifications]
            assert Counter(heard) == Counter(notification_ids(flow, incidents))
            assert per_incident(heard) == per_incident(notification_ids(flow, incidents))
            waiting = outbox(flow)
            assert sorted(i.notification_id for i in waiting) == sorted(expected)
            for item in heads(flow):
                assert item.attempts >= 1
                assert item.next_attempt_at is not None
                assert item.next_attempt_at > clock()
                assert "could not reach http://127.0.0.1:" in item.last_error
                assert "refused" in item.last_error  # nothing listened: not a timeout, not a 5xx
                assert "/hooks/***" in item.last_error
                assert_no_secret(item.last_error)
            head_ids = {i.id for i in heads(flow)}
            assert all(i.attempts == 0 for i in waiting if i.id not in head_ids)  # in line

            for _ in range(self.DOWN_FOR):
                clock.advance(retry.max_delay)
                assert flow.deliver_pending() == DeliveryReport(retrying=len(routed))
            assert min(i.attempts for i in heads(flow)) >= self.DOWN_FOR
            assert flow.dead_letters() == []

            receiver = start_receiver()
            assert receiver.url == secret_url(closed_port)
            report = DeliveryReport()
            for _ in range(10):
                if not outbox(flow):
                    break
                clock.advance(retry.max_delay)
                report += flow.deliver_pending()

            received = received_ids(receiver.requests)
            assert report == DeliveryReport(delivered=len(expected))
            assert Counter(received) == Counter(expected)  # each once, none lost
            assert per_incident(received) == per_incident(expected)  # in seq order
            assert flow.store.pending() == []
            assert flow.dead_letters() == []

    def test_dispatcher_delivers_everything_once_it_listens(
        self, store: Store, closed_port: int, start_receiver: Callable[[], HttpReceiver]
    ) -> None:
        """A dispatcher on the real clock delivers it all once the receiver is up, then stops."""
        retry = RetryPolicy(
            first_delay=timedelta(seconds=0.05),
            max_delay=timedelta(seconds=0.2),
            jitter=0,
            max_attempts=200,
        )
        with IncidentFlow(store, notifiers=[webhook(closed_port)], retry=retry) as flow:
            with flow.dispatcher(max_in_flight=4, interval=0.02) as dispatcher:
                incidents = work_incidents(flow, ["P1", "P2", "P3"])
                expected = notification_ids(flow, incidents)
                wait_until(
                    lambda: (
                        len(heads(flow)) == len(incidents)
                        and min(i.attempts for i in heads(flow)) >= self.DOWN_FOR
                    ),
                    timeout=20,
                    what=f"every incident's first notification failed {self.DOWN_FOR} times",
                )
                assert sorted(i.notification_id for i in outbox(flow)) == sorted(expected)
                assert all("refused" in i.last_error for i in heads(flow))

                receiver = start_receiver()
                wait_until(
                    lambda: (
                        set(received_ids(receiver.requests)) >= set(expected)
                        and not flow.store.pending()
                    ),
                    timeout=20,
                    what="every notification arrived and was marked delivered",
                )
            assert not dispatcher.running
            received = received_ids(receiver.requests)
            assert Counter(received) == Counter(expected)
            assert per_incident(received) == per_incident(expected)
            assert dispatcher.delivered == len(expected)
            assert flow.store.pending() == []
            assert flow.dead_letters() == []


class TestReceiverAlwaysFailing:
    def test_dead_letters_are_redriven_once_it_answers_200(
        self, store: Store, clock: FrozenClock, receiver: HttpReceiver
    ) -> None:
        """Answers of 500 end in dead letters, clean of secrets; re-driven, they all arrive."""
        # A careless error page: the receiver quotes its own secret URL back.
        receiver.answer_with(500, f"cannot handle {receiver.url}".encode())
        retry = RetryPolicy(jitter=0, max_attempts=3)
        notifier: Notifier = WebhookNotifier(receiver.url, secret=SIGNING_SECRET, timeout=10)
        with IncidentFlow(store, clock=clock, notifiers=[notifier], retry=retry) as flow:
            incidents = []
            for n, severity in enumerate(["P1", "P2"]):
                inc = flow.declare(
                    f"Search down {n}", severity=severity, commander=COMMANDER, actor=COMMANDER
                )
                flow.start_triage(inc.id, actor=COMMANDER)
                after = flow.add_note(inc.id, "paged the search team", actor=COMMANDER)
                assert (after.state, after.version) == (State.TRIAGING, 3)
                incidents.append(inc.id)
            expected = notification_ids(flow, incidents)

            for _ in range(50):
                if not outbox(flow):
                    break
                clock.advance(retry.max_delay)
                flow.deliver_pending()

            dead = flow.dead_letters()
            assert sorted(d.id for d in dead) == sorted(f"{i}:webhook" for i in expected)
            for item in dead:
                assert (item.dead, item.attempts) == (True, retry.max_attempts)
                assert "answered 500" in item.last_error
                assert "cannot handle ***" in item.last_error  # the echoed URL, masked
                assert_no_secret(item.last_error)
            failed = received_ids(receiver.requests)
            assert Counter(failed) == Counter(dict.fromkeys(expected, retry.max_attempts))
            assert flow.store.pending() == []

            receiver.answer_with(200, b"ok")
            assert flow.redrive() == len(expected)
            assert flow.dead_letters() == []
            assert [i.attempts for i in outbox(flow)] == [0] * len(expected)
            assert flow.deliver_pending() == DeliveryReport(delivered=len(expected))
            redelivered = received_ids(receiver.requests[len(failed) :])
            assert Counter(redelivered) == Counter(expected)
            assert per_incident(redelivered) == per_incident(expected)
            assert flow.store.pending() == []
            assert flow.dead_letters() == []

    def test_an_echoed_signing_secret_is_masked_in_the_dead_letter(
        self, store: Store, clock: FrozenClock, receiver: HttpReceiver
    ) -> None:
        """A receiver quoting its signing secret back leaves no trace of it on the dead letter."""
        receiver.answer_with(500, f"bad signature: expected key {SIGNING_SECRET}".encode())
        notifier: Notifier = WebhookNotifier(receiver.url, secret=SIGNING_SECRET, timeout=10)
        retry = RetryPolicy(max_attempts=1)
        with IncidentFlow(store, clock=clock, notifiers=[notifier], retry=retry) as flow:
            flow.declare("Search down", severity="P1", commander=COMMANDER, actor=COMMANDER)
            [dead] = flow.dead_letters()
            assert "bad signature: expected key" in dead.last_error
            assert_no_secret(dead.last_error)
