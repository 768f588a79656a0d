"""Delivery, the flow's delivery side: routing before the commit, delivering after it.

``IncidentFlow`` builds one and keeps it as ``flow.delivery``. It owns the
notifiers, the router, the retry policy, the claim lease and the dispatchers
attached to the flow; the facade's delivery methods are a line each on it,
and dispatchers serve it (it is their :class:`DeliveryHost`), not the facade.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, overload

from loguru import logger

from .. import _validate as v
from .._events import Event
from .._model import Incident
from .._waiting import NO_WAITING
from ..exceptions import ConfigError, IncidentFlowError, ValidationError
from ..notifiers._base import Notifier
from ..stores import EventStore, Outbox, OutboxItem
from ._deliverer import Deliverer, DeliveryReport, default_worker_name
from ._protocol import MAX_IN_FLIGHT, MAX_LIMIT, AttachedDispatcher
from ._retry import RetryPolicy
from ._routing import Route, Router
from ._thread import Dispatcher

if TYPE_CHECKING:
    from ._process import DispatcherProcess, FlowFactory

__all__ = ["DEFAULT_INLINE_BUDGET", "Delivery"]

#: How many of one incident's items a command delivers inline after its commit.
_INLINE_LIMIT = 100
#: The retry policy of a delivery given none: frozen, so one serves every flow.
_DEFAULT_RETRY = RetryPolicy()
#: How long a command waits, at most, for its own notifications (all notifiers together).
DEFAULT_INLINE_BUDGET = timedelta(seconds=2)


def _bounded(field: str, value: object, maximum: int) -> int:
    return v.whole_number(field, value, minimum=1, maximum=maximum)


def _item_ids(ids: object) -> list[str]:
    what = f"an iterable of outbox item ids (strings), at most {MAX_LIMIT:,}"
    if isinstance(ids, (str, bytes, Mapping)) or not isinstance(ids, Iterable):
        raise ValidationError("ids", f"expected {what}, got {type(ids).__name__}")
    found: list[str] = []
    for item_id in ids:
        if not isinstance(item_id, str):
            raise ValidationError("ids", f"expected {what}; one is {type(item_id).__name__}")
        try:
            item_id.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("ids", f"{item_id!r} is not valid text") from None
        found.append(item_id)
        if len(found) > MAX_LIMIT:
            raise ValidationError("ids", f"expected {what}; redrive them in batches")
    return found


class Delivery:
    """A flow's notifications: routes them into the outbox, and delivers them after commits.

    After each commit that wrote outbox items it wakes the attached
    dispatchers, or, with none attached and ``deliver_inline``, delivers that
    incident's items at once. Nothing it does after a commit raises.

    Args:
        store: The flow's store; its outbox (when it is an :class:`~incidentflow.stores.Outbox`)
            holds the notifications.
        now: The flow's clock (aware UTC datetimes).
        notifiers: Who hears about events; each with its own ``name``.
        routes: Which notifier hears which events (``None``: all hear everything).
        retry: How failed deliveries are retried.
        deliver_inline: Deliver right after a commit when no dispatcher runs.
        inline_budget: How long a command waits for its inline deliveries, all
            notifiers together (they are tried at once, one attempt each). An
            attempt still running then goes on in the background and settles its
            item itself; a failure is retried by the next delivery.
        lease: How long a claim holds before another dispatcher may take the item.
        worker: The name claims are made under (default ``host:pid``).

    Raises:
        ConfigError: A value is of the wrong kind, or there are notifiers and
            the store keeps no outbox.

    """

    def __init__(
        self,
        store: EventStore,
        *,
        now: Callable[[], datetime],
        notifiers: Iterable[Notifier] = (),
        routes: Sequence[Route] | None = None,
        retry: RetryPolicy | None = None,
        deliver_inline: bool = True,
        lease: timedelta = timedelta(minutes=1),
        worker: str | None = None,
        inline_budget: timedelta = DEFAULT_INLINE_BUDGET,
    ) -> None:
        # An empty tuple (no notifiers) is by far the most common: no ABC walk for it.
        if notifiers != () and (
            isinstance(notifiers, (str, bytes)) or not isinstance(notifiers, Iterable)
        ):
            raise ConfigError(
                "notifiers", f"expected a list of Notifier, got {type(notifiers).__name__}"
            )
        #: Who hears about events, in the order given.
        self.notifiers: list[Notifier] = list(notifiers)
        for notifier in self.notifiers:
            if not isinstance(notifier, Notifier):
                raise ConfigError(
                    "notifiers", f"expected a Notifier, got {type(notifier).__name__}"
                )
        if self.notifiers and not isinstance(store, Outbox):
            raise ConfigError(
                "notifiers",
                f"{type(store).__name__} keeps no outbox, so nothing could be delivered; "
                "use a store with an outbox (memory, SQLite, PostgreSQL, JSONL) or no notifiers",
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigError("retry", f"expected a RetryPolicy, got {type(retry).__name__}")
        if not isinstance(deliver_inline, bool):
            raise ConfigError("deliver_inline", f"expected True or False, got {deliver_inline!r}")
        if not isinstance(lease, timedelta) or lease <= timedelta(0):
            raise ConfigError("delivery_lease", "expected a positive timedelta")
        if not isinstance(inline_budget, timedelta) or inline_budget < timedelta(0):
            raise ConfigError("delivery_budget", "expected a timedelta of zero or more")
        self._events = store
        self._outbox = store if isinstance(store, Outbox) else None
        self.now = now
        #: Which notifier hears which event.
        self.router = Router(self.notifiers, routes)
        #: How failed deliveries are retried.
        self.retry = retry or _DEFAULT_RETRY
        #: Deliver right after a commit when no dispatcher is attached.
        self.deliver_inline = deliver_inline
        #: How long a claim holds.
        self.lease = lease
        #: The name this process's claims are made under.
        self.worker = worker or default_worker_name()
        self._dispatchers: dict[AttachedDispatcher, None] = {}
        #: How long a command waits for its own notifications.
        self.inline_budget = inline_budget
        self._inline: set[threading.Thread] = set()
        self._inline_lock = threading.Lock()

    @property
    def outbox(self) -> Outbox:
        """The store holding the outbox; ConfigError for a store that keeps none."""
        if self._outbox is None:
            raise ConfigError(
                "store",
                f"{type(self._events).__name__} keeps no outbox; "
                "use a store with an outbox (memory, SQLite, PostgreSQL, JSONL) to deliver",
            )
        return self._outbox

    @property
    def dispatchers(self) -> tuple[AttachedDispatcher, ...]:
        """The dispatchers attached now, in the order they started."""
        return tuple(self._dispatchers)

    # -- before the commit -----------------------------------------------------

    def route(self, events: Sequence[Event], snapshot: Incident) -> tuple[OutboxItem, ...]:
        """The outbox items a commit's ``events`` produce, written with them.

        Called before the commit: if routing fails, the command fails with
        nothing written, rather than committing events nobody hears about.
        """
        try:
            return self.router.outbox(events, snapshot)
        except IncidentFlowError:
            raise
        except Exception as exc:
            raise ConfigError(
                "routes",
                f"routing the events of {snapshot.id} failed ({type(exc).__name__}: {exc}); "
                "nothing was recorded; fix the route or notifier and run the command again",
            ) from exc

    # -- after the commit ------------------------------------------------------

    def committed(self, snapshot: Incident, outbox: Sequence[OutboxItem]) -> None:
        """After a commit that wrote ``outbox``: wake the dispatchers, or deliver inline.

        Never raises: the command is committed, and its notifications wait in
        the outbox for the next delivery whatever goes wrong here.
        """
        if not outbox:
            return
        try:
            if self._dispatchers:
                for dispatcher in tuple(self._dispatchers):
                    try:
                        dispatcher.committed(snapshot)
                    except Exception:
                        logger.exception("waking a dispatcher after {} failed", snapshot.id)
            elif self.deliver_inline:
                self._deliver_within_budget(snapshot)
        except Exception:
            logger.exception("inline delivery after {} failed", snapshot.id)

    def _deliver_within_budget(self, snapshot: Incident) -> None:
        """Deliver this incident's due items, waiting at most ``inline_budget`` for them."""
        thread = threading.Thread(
            target=self._deliver_inline,
            args=(snapshot,),
            name=f"incidentflow-inline-{snapshot.id}",
            daemon=True,  # a hung notifier never keeps the process alive
        )
        with self._inline_lock:
            self._inline.add(thread)
        thread.start()
        if NO_WAITING.get() is None:  # a call that must not wait leaves it running
            thread.join(self.inline_budget.total_seconds())

    def _deliver_inline(self, snapshot: Incident) -> None:
        try:
            # Only this incident's streams: another incident's backlog of retries
            # must not hold up the command. Its notifiers are tried at once.
            self.deliverer().run(
                self.worker,
                limit=_INLINE_LIMIT,
                max_in_flight=max(1, min(len(self.notifiers), MAX_IN_FLIGHT)),
                known={snapshot.id: snapshot},
                incident_id=snapshot.id,
            )
        except Exception:
            logger.exception("inline delivery after {} failed", snapshot.id)
        finally:
            with self._inline_lock:
                self._inline.discard(threading.current_thread())

    # -- the protocol dispatchers use -----------------------------------------

    def deliverer(self) -> Deliverer:
        """A deliverer on this outbox, router, retry policy, clock and lease."""
        return Deliverer(
            self.outbox, self.router, self.retry, self.now, self.lease, events=self._events
        )

    def attach(self, dispatcher: AttachedDispatcher) -> None:
        """Wake ``dispatcher`` after commits instead of delivering inline."""
        self._dispatchers[dispatcher] = None

    def detach(self, dispatcher: AttachedDispatcher) -> None:
        """Stop waking ``dispatcher``."""
        self._dispatchers.pop(dispatcher, None)

    # -- what the facade offers --------------------------------------------------

    def deliver_pending(self, *, limit: int = 1000, max_in_flight: int = 8) -> DeliveryReport:
        """Deliver due notifications now, up to ``limit`` (1 to 100,000) of them.

        Up to ``max_in_flight`` (1 to 256) deliveries run at once. Failures are
        recorded on the items (attempts, next retry, error) and never raised.
        """
        limit = _bounded("limit", limit, MAX_LIMIT)
        max_in_flight = _bounded("max_in_flight", max_in_flight, MAX_IN_FLIGHT)
        if self._outbox is None:
            return DeliveryReport()  # no outbox: nothing was ever routed
        return self.deliverer().run(self.worker, limit=limit, max_in_flight=max_in_flight)

    @overload
    def dispatcher(
        self, *, max_in_flight: int = 8, interval: float = 1.0, process: None = None
    ) -> Dispatcher: ...

    @overload
    def dispatcher(
        self, *, max_in_flight: int = 8, interval: float = 1.0, process: str | FlowFactory
    ) -> DispatcherProcess: ...

    def dispatcher(
        self,
        *,
        max_in_flight: int = 8,
        interval: float = 1.0,
        process: str | FlowFactory | None = None,
    ) -> Dispatcher | DispatcherProcess:
        """A thread :class:`Dispatcher`, or with ``process`` a :class:`DispatcherProcess`."""
        self.outbox  # noqa: B018 - a ConfigError now, not a failing claim every interval
        if process is None:
            return Dispatcher(self, max_in_flight=max_in_flight, interval=interval)
        from ._process import DispatcherProcess  # subprocess loads only for a process

        return DispatcherProcess(self, process, max_in_flight=max_in_flight, interval=interval)

    def dead_letters(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Up to ``limit`` (1 to 100,000) notifications that gave up, oldest first."""
        limit = _bounded("limit", limit, MAX_LIMIT)
        return () if self._outbox is None else self._outbox.dead_letters(limit)

    def redrive(self, ids: Iterable[str] | None = None) -> int:
        """Put dead letters back in line (all of them without ``ids``); returns how many.

        ``ids`` is an iterable of outbox item ids (strings), at most 100,000 at a time.
        """
        chosen = None if ids is None else _item_ids(ids)
        if self._outbox is None:
            return 0
        if chosen is not None:
            return self._outbox.redrive(chosen)
        total = 0
        while batch := self._outbox.dead_letters(MAX_LIMIT):
            redriven = self._outbox.redrive([item.id for item in batch])
            total += redriven
            if redriven == 0 or len(batch) < MAX_LIMIT:
                break
        return total

    def stop_dispatchers(self) -> None:
        """Stop every attached dispatcher, letting each finish its deliveries under way.

        Inline deliveries still running are given one more budget to finish;
        one that does not is left to its lease (the item is retried later).
        """
        for dispatcher in tuple(self._dispatchers):
            dispatcher.stop()
        with self._inline_lock:
            running = tuple(self._inline)
        for thread in running:
            thread.join(self.inline_budget.total_seconds())
