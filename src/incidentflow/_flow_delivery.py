"""The facade's delivery methods: notifiers, the outbox, dispatchers, dead letters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, overload

from . import _validate as v
from .delivery import Delivery, DeliveryReport, Dispatcher, RetryPolicy, Router
from .notifiers._base import Notifier
from .stores._base import OutboxItem

if TYPE_CHECKING:
    from .delivery import DispatcherProcess, FlowFactory

__all__ = ["Deliveries"]


class Deliveries:
    """How a flow's notifications reach people; see :class:`IncidentFlow`."""

    #: The delivery host: routing, the outbox's retries, dispatchers.
    delivery: Delivery

    @property
    def notifiers(self) -> Sequence[Notifier]:
        """Who hears about events, in the order given."""
        return self.delivery.notifiers

    @property
    def router(self) -> Router:
        """Which notifier hears which event."""
        return self.delivery.router

    @property
    def retry(self) -> RetryPolicy:
        """How failed deliveries are retried."""
        return self.delivery.retry

    @property
    def deliver_inline(self) -> bool:
        """Deliver right after each commit while no dispatcher runs."""
        return self.delivery.deliver_inline

    @deliver_inline.setter
    def deliver_inline(self, value: bool) -> None:
        self.delivery.deliver_inline = v.boolean("deliver_inline", value)

    @property
    def delivery_lease(self) -> timedelta:
        """How long a delivery's claim on an outbox item holds."""
        return self.delivery.lease

    def deliver_pending(self, *, limit: int = 1000, max_in_flight: int = 8) -> DeliveryReport:
        """Deliver due notifications from the outbox now, up to ``limit`` of them.

        For scripts and cron jobs; long-running hosts use :meth:`dispatcher`.
        ``limit`` runs from 1 to 100,000 and ``max_in_flight`` from 1 to 256
        (else ValidationError). Failures are recorded on the items (attempts,
        next retry, error) and never raised.
        """
        return self.delivery.deliver_pending(limit=limit, max_in_flight=max_in_flight)

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
        """A :class:`Dispatcher` delivering this flow's outbox in a background thread.

        While one runs, commands no longer deliver inline: they return at once
        and the dispatcher is woken. Start it with ``start()`` or a ``with`` block.

        With ``process``, the deliveries run in a child process instead, so their
        CPU work does not compete with the commands for this interpreter. Pass a
        function defined at module level (or ``"package.module:function"``) that
        builds the flow to deliver with: the same store and notifiers as this one.
        The child calls it once, inherits the environment, and stops when this
        process stops it or exits. Not for a ``MemoryStore``.
        """
        return self.delivery.dispatcher(
            max_in_flight=max_in_flight, interval=interval, process=process
        )

    def dead_letters(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Up to ``limit`` (1 to 100,000) notifications that gave up, oldest first."""
        return self.delivery.dead_letters(limit)

    def redrive(self, ids: Iterable[str] | None = None) -> int:
        """Put dead letters back in line (all of them without ``ids``); returns how many.

        ``ids`` is an iterable of outbox item ids (strings), else ValidationError.
        """
        return self.delivery.redrive(ids)
