"""Delivery from the outbox: routing, retries with backoff, dead letters, the Dispatcher.

Commands only write outbox items, in the same transaction as their events.
Delivery happens afterwards: inline right after the commit (the default for
scripts), from ``IncidentFlow.deliver_pending()``, or from a ``Dispatcher``
thread in long-running hosts. Each notifier hears about one incident's events
in order; a failed attempt is retried with exponential backoff and jitter, and
after ``max_attempts`` it becomes a dead letter that can be re-driven.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
from loguru import logger

from ._events import Event
from ._model import Incident, Severity
from .exceptions import ConfigError, IncidentFlowError
from .notifiers._base import Notification, Notifier
from .stores._base import OutboxItem, Store

if TYPE_CHECKING:
    import random
    from concurrent.futures import ThreadPoolExecutor

    from ._flow import IncidentFlow

__all__ = ["DeliveryReport", "Dispatcher", "RetryPolicy", "Route", "Router", "routes_from_toml"]

#: Longest error text kept on an outbox item.
_ERROR_MAX = 500
#: How many incidents' latest snapshots a dispatcher keeps for its deliveries.
_KNOWN_MAX = 4096


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How failed deliveries are retried.

    The n-th retry waits ``first_delay * multiplier**(n-1)``, capped at
    ``max_delay``, then spread by ±``jitter`` so that receivers coming back
    are not hit by every sender at once. After ``max_attempts`` failed
    attempts, or at once for a failure that says it is not worth retrying
    (an HTTP 400, a rejected sender), the item becomes a dead letter.

    >>> RetryPolicy(jitter=0).delay(3)
    datetime.timedelta(seconds=20)
    """

    max_attempts: int = 8
    first_delay: timedelta = timedelta(seconds=5)
    multiplier: float = 2.0
    max_delay: timedelta = timedelta(minutes=15)
    jitter: float = 0.2

    def __attrs_post_init__(self) -> None:
        def number(value: object) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        if not isinstance(self.max_attempts, int) or isinstance(self.max_attempts, bool):
            raise ConfigError("retry.max_attempts", "expected a whole number of at least 1")
        if self.max_attempts < 1:
            raise ConfigError("retry.max_attempts", "expected a whole number of at least 1")
        for key in ("first_delay", "max_delay"):
            if not isinstance(getattr(self, key), timedelta):
                raise ConfigError(f"retry.{key}", "expected a timedelta")
        if self.first_delay < timedelta(0):
            raise ConfigError("retry.first_delay", "expected a delay of zero or more")
        if self.max_delay < self.first_delay:
            raise ConfigError("retry.first_delay", "expected at most max_delay")
        if not number(self.multiplier) or self.multiplier < 1:
            raise ConfigError("retry.multiplier", "expected a number of at least 1")
        if not number(self.jitter) or not 0 <= self.jitter < 1:
            raise ConfigError("retry.jitter", "expected a fraction from 0 up to 1")

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """How long to wait after the ``attempts``-th failed attempt."""
        base = min(
            self.first_delay.total_seconds() * self.multiplier ** max(0, attempts - 1),
            self.max_delay.total_seconds(),
        )
        if self.jitter:
            if rng is None:
                import random

                rng = random.Random()
            base *= rng.uniform(1 - self.jitter, 1 + self.jitter)
        return timedelta(seconds=base)


def _severities(value: Iterable[Severity | str] | None) -> frozenset[Severity] | None:
    if value is None:
        return None
    from ._validate import severity

    if isinstance(value, (str, Severity)):
        value = [value]
    try:
        return frozenset(severity(v, "routes.severities") for v in value)
    except IncidentFlowError as exc:
        raise ConfigError("routes.severities", str(exc).split(": ", 1)[-1]) from None


def _event_types(value: Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    from ._events import event_types

    if isinstance(value, str):
        value = [value]
    known = event_types()
    types = frozenset(value)
    unknown = sorted(t for t in types if t not in known)
    if unknown:
        raise ConfigError(
            "routes.events",
            f"{unknown[0]!r} is not an event type; use one of {', '.join(sorted(known))}",
        )
    return types


@attrs.frozen
class Route:
    """Send matching events to one notifier.

    Attributes:
        notifier: The notifier's ``name``.
        severities: Only incidents of these severities (``None``: all).
        events: Only these event types, e.g. ``{"declared", "resolved"}`` (``None``: all).

    >>> Route("pager", severities={"P1"}, events={"declared"}).notifier
    'pager'

    """

    notifier: str
    severities: frozenset[Severity] | None = attrs.field(default=None, converter=_severities)
    events: frozenset[str] | None = attrs.field(default=None, converter=_event_types)

    def matches(self, event: Event, incident: Incident) -> bool:
        """True when ``event`` on ``incident`` goes to this route's notifier."""
        return self.accepts(incident.severity, event.type)

    def accepts(self, severity: Severity, event_type: str) -> bool:
        """True when an event of ``event_type`` on an incident of ``severity`` goes here."""
        return (self.severities is None or severity in self.severities) and (
            self.events is None or event_type in self.events
        )


_ROUTE_KEYS = ("notifier", "severities", "events")


def routes_from_toml(source: str | os.PathLike[str], *, text: str | None = None) -> list[Route]:
    """Routes from the ``[[routes]]`` tables of a TOML file (or of ``text``).

    >>> routes_from_toml("inline", text='''
    ... [[routes]]
    ... notifier = "pager"
    ... severities = ["P1"]
    ... events = ["declared", "deadline_breached"]
    ... ''')[0].notifier
    'pager'
    """
    import tomllib

    name = str(source)
    try:
        content = text if text is not None else Path(source).read_text(encoding="utf-8")
        data = tomllib.loads(content)
    except OSError as exc:
        raise ConfigError(name, f"cannot read the file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, f"not valid TOML: {exc}") from None
    tables = data.get("routes", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{name}: routes", "expected [[routes]] tables")
    routes = []
    for number, table in enumerate(tables, start=1):
        where = f"{name}: routes[{number}]"
        for key in table:
            if key not in _ROUTE_KEYS:
                raise ConfigError(
                    f"{where}.{key}", f"unknown key; a route takes {', '.join(_ROUTE_KEYS)}"
                )
        notifier = table.get("notifier")
        if not isinstance(notifier, str) or not notifier:
            raise ConfigError(f"{where}.notifier", "expected the name of a notifier")
        for key in ("severities", "events"):
            value = table.get(key)
            if value is not None and (
                not isinstance(value, list) or not all(isinstance(v, str) for v in value)
            ):
                raise ConfigError(f"{where}.{key}", "expected a list of strings")
        try:
            routes.append(Route(notifier, table.get("severities"), table.get("events")))
        except ConfigError as exc:
            key = exc.key.split(".")[-1]
            raise ConfigError(f"{where}.{key}", str(exc).split(": ", 1)[-1]) from None
    return routes


class Router:
    """Which notifier hears which event: every notifier everything, or by routes."""

    def __init__(self, notifiers: Sequence[Notifier], routes: Sequence[Route] | None) -> None:
        names = [n.name for n in notifiers]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ConfigError(
                "notifiers", f"two notifiers are named {duplicated[0]!r}; give each its own name"
            )
        self.notifiers: dict[str, Notifier] = dict(zip(names, notifiers, strict=True))
        if routes is not None:
            for route in routes:
                if not isinstance(route, Route):
                    raise ConfigError("routes", f"expected Route, got {type(route).__name__}")
                if route.notifier not in self.notifiers:
                    known = ", ".join(self.notifiers) or "none"
                    raise ConfigError(
                        "routes.notifier",
                        f"no notifier is named {route.notifier!r} (notifiers: {known})",
                    )
        self.routes = None if routes is None else tuple(routes)
        # (severity, event type) -> (notifier, item id suffix) pairs: routing is decided
        # once per kind of event, not on every command.
        self._targets: dict[tuple[Severity, str], tuple[tuple[str, str], ...]] = {}

    def _suffixed(self, severity: Severity, event_type: str) -> tuple[tuple[str, str], ...]:
        key = (severity, event_type)
        found = self._targets.get(key)
        if found is None:
            if self.routes is None:
                names: Iterable[str] = self.notifiers
            else:
                names = dict.fromkeys(
                    r.notifier for r in self.routes if r.accepts(severity, event_type)
                )
            found = tuple((name, f":{name}" if name else "") for name in names)
            self._targets[key] = found
        return found

    def outbox(self, events: Sequence[Event], incident: Incident) -> tuple[OutboxItem, ...]:
        """The outbox items a commit's events produce."""
        if not self.notifiers:
            return ()
        items: list[OutboxItem] = []
        for event in events:
            stem = f"{event.incident_id}:{event.seq}"
            for name, suffix in self._suffixed(incident.severity, event.data.TYPE):
                items.append(OutboxItem(stem + suffix, event, name))
        return tuple(items)


@attrs.frozen
class DeliveryReport:
    """What one delivery run did.

    Attributes:
        delivered: Notifications delivered.
        retrying: Failed attempts that will be retried.
        dead: Notifications that gave up and became dead letters.

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
    return f"{socket.gethostname()}:{os.getpid()}"


class Deliverer:
    """Delivers claimed outbox items and settles them in the store."""

    def __init__(
        self,
        store: Store,
        router: Router,
        retry: RetryPolicy,
        now: Callable[[], datetime],
        lease: timedelta = timedelta(minutes=1),
    ) -> None:
        self.store = store
        self.router = router
        self.retry = retry
        self.now = now
        self.lease = lease
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
            incident = (known or {}).get(item.event.incident_id)
            if incident is None or incident.version < item.event.seq:
                incident = self.store.load(item.event.incident_id)
            notification = Notification(item.notification_id, item.event, incident)
            for notifier in targets:
                assert notifier is not None
                notifier.notify(notification)
        except Exception as exc:
            return self._failed(item, exc)
        return DeliveryReport(delivered=1)

    def _failed(self, item: OutboxItem, exc: Exception) -> DeliveryReport:
        attempts = item.attempts + 1
        retryable = getattr(exc, "retryable", True)
        dead = attempts >= self.retry.max_attempts or not retryable
        error = f"{type(exc).__name__}: {exc}"[:_ERROR_MAX]
        delay = self.retry.delay(attempts, self._rng)
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, (int, float)) and retry_after > 0:
            # The receiver said how long to wait (HTTP Retry-After): never sooner.
            delay = max(delay, timedelta(seconds=retry_after))
        next_attempt_at = self.now() + delay
        logger.warning(
            "delivery of {} to {} failed (attempt {}): {}{}",
            item.notification_id,
            item.notifier,
            attempts,
            error,
            "; giving up, it is a dead letter now" if dead else f"; next try at {next_attempt_at}",
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


class Dispatcher:
    """Delivers notifications from the outbox in a background thread.

    Keeps up to ``max_in_flight`` deliveries running at once, polls the store
    every ``interval`` seconds for retries and other processes' commits, and is
    woken at once by commits of the flow it serves. Several dispatchers, in one
    process or on several hosts sharing a store, split the work through claims.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with flow.dispatcher(max_in_flight=16):
            ...  # commands return at once; notifications go out behind them

    Each round marks the deliveries that succeeded and claims the next due
    items in one store call, for half the slots or more at a time; up to
    ``max_in_flight`` claimed items wait beside the ones in flight, so a
    backlog costs one store write per several deliveries while every slot
    stays busy.
    """

    def __init__(
        self,
        flow: IncidentFlow,
        *,
        max_in_flight: int = 8,
        interval: float = 1.0,
        batch_window: float = 0.01,
        worker: str | None = None,
    ) -> None:
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ConfigError("max_in_flight", "expected a whole number of at least 1")
        if not isinstance(interval, (int, float)) or interval <= 0:
            raise ConfigError("interval", "expected a positive number of seconds")
        self.flow = flow
        self.max_in_flight = max_in_flight
        self.interval = float(interval)
        if not isinstance(batch_window, (int, float)) or not 0 <= batch_window <= interval:
            raise ConfigError("batch_window", "expected seconds from 0 up to interval")
        self.batch_window = float(batch_window)
        self.worker = worker or f"{default_worker_name()}:{id(self):x}"
        self.delivered = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Claimed items wait here for one of the delivery threads; None stops one.
        self._queue: queue.SimpleQueue[OutboxItem | None] = queue.SimpleQueue()
        self._busy = 0  # items claimed and not yet settled
        self._slots = threading.Condition()
        self._settled: list[str] = []
        # The latest snapshot of each incident this flow committed: a delivery
        # that finds its incident here does not read it back from the store.
        self._known: dict[str, Incident] = {}

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Dispatcher:
        """Start the background thread and its delivery threads (once)."""
        if self.running:
            return self
        self._stopping.clear()
        deliverer = self.flow._deliverer()
        # Started now, not on the first burst: a storm of commands does not also
        # pay for starting threads.
        workers = [
            threading.Thread(
                target=self._deliver, args=(deliverer,), name=f"incidentflow-delivery-{n}"
            )
            for n in range(self.max_in_flight)
        ]
        for worker in workers:
            worker.daemon = True
            worker.start()
        self._thread = threading.Thread(
            target=self._loop, args=(deliverer, workers), name="incidentflow-dispatcher"
        )
        self._thread.daemon = True
        self._thread.start()
        self.flow._attach(self)
        return self

    def wake(self) -> None:
        """Look for work now instead of at the next poll."""
        if not self._wake.is_set():  # a commit storm sets it once, not once per commit
            self._wake.set()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Finish the deliveries under way and those already claimed, then stop.

        Everything else stays in the outbox, free to claim.
        """
        self.flow._detach(self)
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Dispatcher:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _committed(self, snapshot: Incident) -> None:
        """The flow committed ``snapshot`` with outbox items: keep it at hand, and wake."""
        held = self._known.get(snapshot.id)
        if held is None or held.version < snapshot.version:
            self._known[snapshot.id] = snapshot
        self.wake()

    def _loop(self, deliverer: Deliverer, workers: Sequence[threading.Thread]) -> None:
        while not self._stopping.is_set():
            free = self._room()
            if self._stopping.is_set():
                break
            with self._slots:
                settled, self._settled = self._settled, []
            items: Sequence[OutboxItem] = ()
            try:
                # Successes are marked before claiming: a stream's next item
                # becomes claimable only once its head is settled.
                items = deliverer.settle_and_claim(self.worker, settled, free)
            except Exception:
                logger.exception("the dispatcher could not settle or claim outbox items")
                with self._slots:
                    self._settled[:0] = settled  # marked with the next round's
            if len(self._known) > _KNOWN_MAX:
                self._known.clear()
            with self._slots:
                self._busy += len(items)
            for item in items:
                self._queue.put(item)
            if items and len(items) == free:
                continue  # more may be due: claim again once slots free up
            self._wake.wait(self.interval)
            self._wake.clear()
            # Let a burst of commits gather before the next claim.
            self._stopping.wait(self.batch_window)
        # The claimed items are delivered before the delivery threads stop.
        for _ in workers:
            self._queue.put(None)
        for worker in workers:
            worker.join()
        self._settle(deliverer)

    def _deliver(self, deliverer: Deliverer) -> None:
        """A delivery thread: attempt claimed items until told to stop."""
        while (item := self._queue.get()) is not None:
            try:
                report = deliverer.attempt(item, self._known)
            except Exception:
                logger.exception("a delivery crashed")
                report = DeliveryReport()
            with self._slots:
                self._busy -= 1
                if report.delivered:
                    self.delivered += 1
                    self._settled.append(item.id)
                self._slots.notify_all()
            self.wake()  # a stream's next item may be claimable now

    def _settle(self, deliverer: Deliverer) -> None:
        with self._slots:
            settled, self._settled = self._settled, []
        if settled:
            try:
                deliverer.store.mark_delivered(settled)
            except Exception:
                # Still claimed: they are delivered again once the lease ends.
                logger.exception("the dispatcher could not mark {} deliveries", len(settled))

    def _room(self) -> int:
        """How many items to claim next: at least half a round's worth, unless threads idle.

        Up to ``2 * max_in_flight`` claimed items are held, so the delivery
        threads always find the next one waiting while the dispatcher settles
        and claims in batches. A delivery thread left without work waits at
        most ``batch_window`` for a batch to gather.
        """
        held = 2 * self.max_in_flight
        batch = max(1, self.max_in_flight // 2)
        with self._slots:
            gather_until: float | None = None
            while not self._stopping.is_set():
                if held - self._busy >= batch:
                    break
                if self._busy >= self.max_in_flight:
                    self._slots.wait(0.1)  # every thread busy: wait for a settled delivery
                    continue
                now = time.monotonic()
                if gather_until is None:
                    gather_until = now + self.batch_window
                if now >= gather_until:
                    break
                self._slots.wait(gather_until - now)
            return held - self._busy
