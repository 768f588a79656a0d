"""Delivering claimed outbox items and settling them: the work every dispatcher shares."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs
from loguru import logger

from .._model import Incident
from ..exceptions import ConfigError
from ..notifiers._base import Notification
from ..stores import EventStore, Outbox, OutboxItem
from ._retry import RetryPolicy
from ._routing import Router
from ._snapshots import Timeline

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

__all__ = ["Deliverer", "DeliveryReport", "default_worker_name"]

#: Longest error text kept on an outbox item.
_ERROR_MAX = 500


@attrs.frozen
class DeliveryReport:
    """What one delivery run did.

    Attributes:
        delivered: Notifications delivered.
        retrying: Failed attempts that will be retried.
        dead: Notifications that gave up and became dead letters.

    >>> DeliveryReport(delivered=2) + DeliveryReport(retrying=1)
    DeliveryReport(delivered=2, retrying=1, dead=0)

    """

    delivered: int = 0
    retrying: int = 0
    dead: int = 0

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            self.delivered + other.delivered, self.retrying + other.retrying, self.dead + other.dead
        )


def default_worker_name() -> str:
    """``host:pid``: names who holds a claim."""
    pid = os.getpid()
    name = _worker_names.get(pid)  # by process: a forked child names itself anew
    if name is None:
        name = _worker_names[pid] = f"{socket.gethostname()}:{pid}"
    return name


_worker_names: dict[int, str] = {}


def _hint(exc: Exception, name: str, default: object) -> object:
    """An attribute of a notifier's exception; its default if reading it fails too."""
    try:
        return getattr(exc, name, default)
    except Exception:
        return default


def _span(delay: timedelta) -> str:
    """A retry delay as a person reads it: ``40s``, ``2m05s``, ``1h30m``."""
    seconds = max(0, round(delay.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _later(now: datetime, delay: timedelta) -> datetime:
    """``now + delay``, or the last moment a datetime holds when that is past it."""
    try:
        return now + delay
    except OverflowError:
        return datetime.max.replace(tzinfo=now.tzinfo)


def _describe(exc: Exception) -> str:
    """The error text kept on the item, even for an exception that cannot print itself."""
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:
        text = f"{type(exc).__name__} (its message could not be read)"
    return text[:_ERROR_MAX]


class Deliverer:
    """Delivers claimed outbox items and settles them in the store.

    Made by :meth:`Delivery.deliverer`; a dispatcher uses one for all its rounds.

    Args:
        store: The outbox to claim from and settle in.
        router: Names the notifiers items go to.
        retry: How failures are retried.
        now: The clock.
        lease: How long a claim holds.
        events: Where incidents are loaded from (default: ``store``, when it
            is an event store too, as every shipped backend is).

    """

    def __init__(
        self,
        store: Outbox,
        router: Router,
        retry: RetryPolicy,
        now: Callable[[], datetime],
        lease: timedelta = timedelta(minutes=1),
        *,
        events: EventStore | None = None,
    ) -> None:
        if events is None:
            if not isinstance(store, EventStore):
                raise ConfigError(
                    "events", f"{type(store).__name__} keeps no incidents; pass the event store"
                )
            events = store
        self.store = store
        self.events = events
        self.router = router
        self.retry = retry
        self.now = now
        self.lease = lease
        self._timeline = Timeline(events)
        import random  # here, not at import: import incidentflow stays light

        self._rng = random.Random()

    def claim(
        self, worker: str, limit: int, incident_id: str | None = None
    ) -> Sequence[OutboxItem]:
        """Claim due items for ``worker`` (only ``incident_id``'s, when given)."""
        return self.store.claim(
            now=self.now(), limit=limit, lease=self.lease, worker=worker, incident_id=incident_id
        )

    def settle_and_claim(
        self, worker: str, delivered: Sequence[str], limit: int
    ) -> Sequence[OutboxItem]:
        """Mark ``delivered`` items delivered and claim up to ``limit`` due ones."""
        return self.store.settle_and_claim(
            delivered, now=self.now(), limit=limit, lease=self.lease, worker=worker
        )

    def mark_delivered(self, ids: Sequence[str]) -> None:
        """Mark the items ``ids`` delivered (attempts that succeeded)."""
        self.store.mark_delivered(ids)

    def deliver(
        self, item: OutboxItem, known: Mapping[str, Incident] | None = None
    ) -> DeliveryReport:
        """Deliver one claimed item and settle it; never raises for a notifier's failure."""
        report = self.attempt(item, known)
        if report.delivered:
            self.store.mark_delivered([item.id])
        return report

    def attempt(
        self, item: OutboxItem, known: Mapping[str, Incident] | None = None
    ) -> DeliveryReport:
        """Try one claimed item; settle a failure at once.

        A success is left to the caller to mark delivered, so that successes
        can be settled in batches.
        """
        # Items written before routing existed name no notifier: they go to all.
        targets = (
            list(self.router.notifiers.values())
            if item.notifier == ""
            else [self.router.notifiers.get(item.notifier)]
        )
        try:
            if None in targets:
                raise LookupError(f"no notifier named {item.notifier!r} is configured")
            event = item.event
            held = (known or {}).get(event.incident_id)
            current = None
            if held is None or held.version != event.seq:
                current = self.events.load(event.incident_id)
            # The incident right after this event: never what was recorded after it.
            incident = self._timeline.as_of(event, held, current)
            if not self.router.carries_restricted(item.notifier, incident.severity, event.type):
                if current is None:
                    current = self.events.load(event.incident_id)
                if current.restricted_to:
                    return self._withheld(item, current)
            notification = Notification(item.notification_id, event, incident)
            for notifier in targets:
                assert notifier is not None
                notifier.notify(notification)
        except Exception as exc:
            return self._failed(item, exc)
        return DeliveryReport(delivered=1)

    def _withheld(self, item: OutboxItem, incident: Incident) -> DeliveryReport:
        """Give up on an item of an incident restricted since it was routed."""
        error = (
            f"not sent: {incident.id} is restricted now, and no route marked restricted "
            f"sends its {item.event.type} events to {item.notifier or 'every notifier'}; "
            "redrive it once the restriction is lifted"
        )
        logger.warning(
            "delivery of {} to {} withheld: {}", item.notification_id, item.notifier, error
        )
        self.store.mark_failed(item.id, error=error, next_attempt_at=self.now(), dead=True)
        return DeliveryReport(dead=1)

    def _failed(self, item: OutboxItem, exc: Exception) -> DeliveryReport:
        attempts = item.attempts + 1
        retryable = _hint(exc, "retryable", True)
        dead = attempts >= self.retry.max_attempts or not retryable
        error = _describe(exc)
        delay = self.retry.delay(attempts, self._rng)
        retry_after = _hint(exc, "retry_after", None)
        if isinstance(retry_after, (int, float)) and retry_after > 0:
            # The receiver said how long to wait (HTTP Retry-After): never sooner.
            delay = max(delay, timedelta(seconds=min(retry_after, 86_400.0)))
        next_attempt_at = _later(self.now(), delay)
        logger.warning(
            "delivery of {} to {} failed (attempt {}): {}{}",
            item.notification_id,
            item.notifier,
            attempts,
            error,
            "; giving up, it is a dead letter now"
            if dead
            else f"; next try in {_span(delay)} (at {next_attempt_at:%H:%M:%S} UTC)",
        )
        self.store.mark_failed(item.id, error=error, next_attempt_at=next_attempt_at, dead=dead)
        return DeliveryReport(retrying=0 if dead else 1, dead=1 if dead else 0)

    def run(
        self,
        worker: str,
        *,
        limit: int,
        max_in_flight: int,
        known: Mapping[str, Incident] | None = None,
        incident_id: str | None = None,
    ) -> DeliveryReport:
        """Claim and deliver until nothing more is due or ``limit`` items were handled."""
        report = DeliveryReport()
        handled = 0
        executor: ThreadPoolExecutor | None = None
        try:
            while handled < limit:
                batch = min(limit - handled, max(max_in_flight, 1) * 4)
                items = self.claim(worker, batch, incident_id)
                if not items:
                    break
                handled += len(items)
                if len(items) == 1 or max_in_flight <= 1:
                    results = [self.attempt(item, known) for item in items]
                else:
                    if executor is None:
                        from concurrent.futures import ThreadPoolExecutor

                        executor = ThreadPoolExecutor(
                            max_in_flight, thread_name_prefix="incidentflow"
                        )
                    results = list(executor.map(lambda i: self.attempt(i, known), items))
                delivered = [i.id for i, r in zip(items, results, strict=True) if r.delivered]
                if delivered:
                    self.store.mark_delivered(delivered)
                for result in results:
                    report += result
        finally:
            if executor is not None:
                executor.shutdown(wait=True)
        return report
