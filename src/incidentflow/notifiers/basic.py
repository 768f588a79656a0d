"""Notifiers with no dependencies: log, callback, and the recording test fake."""

from __future__ import annotations

import threading
from collections.abc import Callable

from loguru import logger

from ._base import Notification, Notifier

__all__ = ["CallbackNotifier", "LogNotifier", "RecordingNotifier", "UnavailableNotifier"]


class LogNotifier(Notifier):
    """Logs each event through loguru at ``level``.

    The library's logger is disabled by default; enable it in the host with
    ``loguru.logger.enable("incidentflow")``.
    """

    name = "log"

    def __init__(self, level: str = "INFO") -> None:
        self.level = level

    def notify(self, notification: Notification) -> None:
        """Log one line naming the incident, the event and the actor."""
        event = notification.event
        incident = notification.incident
        logger.bind(incident_id=event.incident_id, seq=event.seq, type=event.type).log(
            self.level,
            "{} [{}] {} by {} (now {})",
            event.incident_id,
            incident.severity.value,
            event.type,
            event.actor,
            incident.state.value,
        )


class CallbackNotifier(Notifier):
    """Calls a function with each notification."""

    def __init__(self, callback: Callable[[Notification], object], name: str = "callback") -> None:
        self.callback = callback
        self.name = name

    def notify(self, notification: Notification) -> None:
        """Call the callback."""
        self.callback(notification)


class RecordingNotifier(Notifier):
    """Keeps every notification it receives, in order. A test fake for embedding code.

    >>> recorder = RecordingNotifier()
    >>> recorder.types()
    []
    """

    name = "recording"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.notifications: list[Notification] = []

    def notify(self, notification: Notification) -> None:
        """Record the notification."""
        with self._lock:
            self.notifications.append(notification)

    def types(self) -> list[str]:
        """The event types received, in order."""
        with self._lock:
            return [n.event.type for n in self.notifications]

    def clear(self) -> None:
        """Forget what was recorded."""
        with self._lock:
            self.notifications.clear()


class UnavailableNotifier(Notifier):
    """Stands in for a configured notifier that could not be built (a secret not set).

    Commands still run and their notifications still wait in the outbox; each
    one becomes a dead letter carrying ``reason``, to be re-driven once the
    notifier can be built (``incidentflow deliver --redrive``).
    """

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def notify(self, notification: Notification) -> None:
        """Refuse, never to be retried as it is: the notifier does not exist."""
        from ..exceptions import DeliveryError

        raise DeliveryError(
            self.name, notification.id, f"not built: {self.reason}", retryable=False
        )
