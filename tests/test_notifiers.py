"""Notifiers hear every committed event, in order, and can never fail a command."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator

import pytest
from loguru import logger

from helpers import COMMANDER, RESPONDER, USER, declare, drive_to, unchanged
from incidentflow import IncidentFlow, IncidentFlowError, State
from incidentflow.notifiers import (
    CallbackNotifier,
    LogNotifier,
    Notification,
    Notifier,
    RecordingNotifier,
)
from incidentflow.testing import FrozenClock


@pytest.fixture
def recorder() -> RecordingNotifier:
    """A fresh recording notifier."""
    return RecordingNotifier()


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """What loguru writes while the test runs, one line per record; the sink is removed after."""
    lines: list[str] = []
    handler = logger.add(lambda message: lines.append(str(message)), format="{name}|{message}")
    yield lines
    logger.remove(handler)


def notified_flow(clock: FrozenClock, *notifiers: Notifier) -> IncidentFlow:
    """An in-memory flow with these notifiers."""
    return IncidentFlow.in_memory(clock=clock, notifiers=notifiers)


class Exploding(Notifier):
    """A notifier whose every delivery fails."""

    name = "exploding"

    def __init__(self) -> None:
        self.calls = 0

    def notify(self, notification: Notification) -> None:
        self.calls += 1
        raise RuntimeError("webhook down")


class TestDelivery:
    def test_every_event_arrives_in_order_with_stable_ids(
        self, clock: FrozenClock, recorder: RecordingNotifier
    ) -> None:
        """Each committed event reaches the notifier once, in order, id "<incident>:<seq>"."""
        flow = notified_flow(clock, recorder)
        inc = drive_to(flow, clock, "kb_updated")
        history = flow.history(inc.id)
        assert [n.event for n in recorder.notifications] == list(history)
        assert [n.id for n in recorder.notifications] == [
            f"{inc.id}:{seq}" for seq in range(1, len(history) + 1)
        ]
        assert recorder.types() == [e.type for e in history]

    def test_notification_carries_the_snapshot_after_the_command(
        self, clock: FrozenClock, recorder: RecordingNotifier
    ) -> None:
        """The snapshot in a notification is the incident right after its command."""
        flow = notified_flow(clock, recorder)
        inc = declare(flow)
        after = flow.start_triage(inc.id, actor=COMMANDER)
        first, second = recorder.notifications
        assert first.incident == inc
        assert second.incident == after
        assert second.incident.state is State.TRIAGING

    def test_a_two_event_command_notifies_both(
        self, clock: FrozenClock, recorder: RecordingNotifier
    ) -> None:
        """A negative confirmation notifies the confirmation and then the reopening."""
        flow = notified_flow(clock, recorder)
        inc = drive_to(flow, clock, "fixed")
        recorder.clear()
        flow.confirm_by_user(inc.id, user=USER, positive=False, actor=COMMANDER)
        assert recorder.types() == ["user_confirmed", "reopened"]
        assert [n.id for n in recorder.notifications] == [
            f"{inc.id}:{inc.version + 1}",
            f"{inc.id}:{inc.version + 2}",
        ]

    def test_events_of_several_incidents_keep_their_own_ids(
        self, clock: FrozenClock, recorder: RecordingNotifier
    ) -> None:
        """Notifications from two incidents interleave in commit order with their own seqs."""
        flow = notified_flow(clock, recorder)
        first = declare(flow)
        second = declare(flow)
        flow.add_note(first.id, "a", actor=RESPONDER)
        assert [n.id for n in recorder.notifications] == [
            f"{first.id}:1",
            f"{second.id}:1",
            f"{first.id}:2",
        ]

    def test_delivered_items_leave_the_outbox(
        self, clock: FrozenClock, recorder: RecordingNotifier
    ) -> None:
        """Once delivered, nothing is left pending in the store's outbox."""
        flow = notified_flow(clock, recorder)
        drive_to(flow, clock, "rca")
        assert recorder.notifications
        assert list(flow.store.pending()) == []

    def test_rejected_commands_notify_nothing(
        self, clock: FrozenClock, recorder: RecordingNotifier
    ) -> None:
        """Refused, invalid or malformed commands announce nothing."""
        flow = notified_flow(clock, recorder)
        inc = drive_to(flow, clock, "triaging")
        count = len(recorder.notifications)
        attempts: list[Callable[[], object]] = [
            lambda: flow.contain(inc.id, actor=COMMANDER),
            lambda: flow.resolve(inc.id, actor=COMMANDER),
            lambda: flow.add_evidence(inc.id, source="", content="x", actor=RESPONDER),
            lambda: flow.add_note(inc.id, "n", actor=RESPONDER, expected_version=1),
            lambda: flow.declare("", severity="P1", commander="a", actor="a"),
        ]
        for attempt in attempts:
            with unchanged(flow, inc.id), pytest.raises(IncidentFlowError):
                attempt()
        assert len(recorder.notifications) == count

    def test_idempotent_retry_notifies_nothing_new(
        self, clock: FrozenClock, recorder: RecordingNotifier
    ) -> None:
        """A retried command with the same idempotency key is not announced again."""
        flow = notified_flow(clock, recorder)
        inc = declare(flow)
        flow.add_note(inc.id, "n", actor=RESPONDER, idempotency_key="note-1")
        flow.add_note(inc.id, "n", actor=RESPONDER, idempotency_key="note-1")
        assert recorder.types() == ["declared", "note_added"]


class TestFailingNotifier:
    def test_raising_notifier_never_fails_the_command(
        self, clock: FrozenClock, recorder: RecordingNotifier
    ) -> None:
        """A notifier that raises never fails a command; the others still hear every event.

        Its own stream waits: the failed notification is retried later and the
        events behind it follow in order, so it was called once.
        """
        exploding = Exploding()
        flow = notified_flow(clock, exploding, recorder)
        inc = declare(flow)
        after = flow.start_triage(inc.id, actor=COMMANDER)
        assert after.state is State.TRIAGING
        assert flow.get(inc.id) == after
        assert exploding.calls == 1
        assert recorder.types() == ["declared", "triage_started"]
        waiting = {item.id: item.attempts for item in flow.store.pending()}
        assert waiting == {f"{inc.id}:1:{exploding.name}": 1, f"{inc.id}:2:{exploding.name}": 0}

    def test_failure_is_logged_when_logging_is_enabled(
        self, clock: FrozenClock, log_lines: list[str]
    ) -> None:
        """With the library's logging enabled, a notifier failure is logged with its name."""
        logger.enable("incidentflow")
        flow = notified_flow(clock, Exploding())
        inc = declare(flow)
        failures = [line for line in log_lines if "exploding" in line]
        assert len(failures) == 1
        assert f"{inc.id}:1" in failures[0]


class TestCallbackNotifier:
    def test_calls_the_function_with_each_notification(self, clock: FrozenClock) -> None:
        """CallbackNotifier hands every notification to the callback."""
        seen: list[Notification] = []
        flow = notified_flow(clock, CallbackNotifier(seen.append, name="pager"))
        inc = declare(flow)
        flow.start_triage(inc.id, actor=COMMANDER)
        assert [n.event.type for n in seen] == ["declared", "triage_started"]
        assert all(isinstance(n, Notification) for n in seen)

    def test_has_its_name(self) -> None:
        """The name given is the notifier's name in logs."""
        assert CallbackNotifier(print, name="pager").name == "pager"
        assert CallbackNotifier(print).name == "callback"


class TestLogNotifier:
    def test_silent_until_the_host_enables_logging(
        self, clock: FrozenClock, log_lines: list[str]
    ) -> None:
        """LogNotifier output reaches loguru sinks only after logger.enable("incidentflow")."""
        flow = notified_flow(clock, LogNotifier())
        inc = declare(flow)
        assert log_lines == []
        logger.enable("incidentflow")
        flow.start_triage(inc.id, actor=COMMANDER)
        (line,) = log_lines
        assert line.startswith("incidentflow.")
        assert inc.id in line
        assert "triage_started" in line
        assert COMMANDER in line

    def test_library_logger_is_disabled_on_import(self) -> None:
        """A fresh `import incidentflow` disables its logger, so hosts see nothing by default."""
        script = textwrap.dedent(
            """
            from datetime import datetime, timezone
            from loguru import logger
            lines = []
            logger.remove()
            logger.add(lines.append, format="{message}")
            from incidentflow import IncidentFlow
            from incidentflow.notifiers import LogNotifier
            flow = IncidentFlow.in_memory(notifiers=[LogNotifier()])
            flow.declare("Disk full", severity="P3", commander="a", actor="a")
            print(len(lines))
            logger.enable("incidentflow")
            flow.declare("Disk full again", severity="P3", commander="a", actor="a")
            print(len(lines))
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
        )
        assert result.stdout.split() == ["0", "1"]


class TestRecordingNotifier:
    def test_clear_forgets(self, clock: FrozenClock, recorder: RecordingNotifier) -> None:
        """clear() empties the recording."""
        flow = notified_flow(clock, recorder)
        declare(flow)
        recorder.clear()
        assert recorder.notifications == []
        assert recorder.types() == []

    def test_is_the_same_fake_in_testing(self) -> None:
        """incidentflow.testing offers the same RecordingNotifier."""
        from incidentflow.testing import RecordingNotifier as TestingRecorder

        assert TestingRecorder is RecordingNotifier
