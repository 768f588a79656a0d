"""The Dispatcher: delivers the outbox from background threads of the host's process."""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Sequence

from loguru import logger

from .._model import Incident
from ..exceptions import ConfigError
from ..stores import OutboxItem
from ._deliverer import Deliverer, DeliveryReport, default_worker_name
from ._protocol import MAX_IN_FLIGHT, DeliveryHost

__all__ = ["Dispatcher", "check_dispatcher_options"]

#: How many incidents' latest snapshots a dispatcher keeps for its deliveries.
_KNOWN_MAX = 4096


def check_dispatcher_options(max_in_flight: object, interval: object, batch_window: object) -> None:
    """ConfigError unless the options make a dispatcher that can run."""
    if (
        not isinstance(max_in_flight, int)
        or isinstance(max_in_flight, bool)
        or not 1 <= max_in_flight <= MAX_IN_FLIGHT
    ):
        raise ConfigError(
            "max_in_flight",
            f"expected a whole number from 1 to {MAX_IN_FLIGHT:,}, got {max_in_flight!r}",
        )
    if (
        not isinstance(interval, (int, float))
        or isinstance(interval, bool)
        or not math.isfinite(interval)
        or interval <= 0
    ):
        raise ConfigError("interval", f"expected a positive number of seconds, got {interval!r}")
    if (
        not isinstance(batch_window, (int, float))
        or isinstance(batch_window, bool)
        or not 0 <= batch_window <= interval
    ):
        raise ConfigError("batch_window", "expected seconds from 0 up to interval")


class Dispatcher:
    """Delivers notifications from the outbox in a background thread.

    Keeps up to ``max_in_flight`` deliveries running at once, polls the store
    every ``interval`` seconds for retries and other processes' commits, and is
    woken at once by commits of the flow it serves. Several dispatchers, in one
    process or on several hosts sharing a store, split the work through claims.

    Made by ``flow.dispatcher()``; use it as a context manager, or call
    :meth:`start` and :meth:`stop`::

        with flow.dispatcher(max_in_flight=16):
            ...  # commands return at once; notifications go out behind them

    Each round marks the deliveries that succeeded and claims the next due
    items in one store call, for half the slots or more at a time; up to
    ``max_in_flight`` claimed items wait beside the ones in flight, so a
    backlog costs one store write per several deliveries while every slot
    stays busy.

    Args:
        host: What it delivers for: ``flow.delivery`` (any :class:`DeliveryHost`).

    """

    def __init__(
        self,
        host: DeliveryHost,
        *,
        max_in_flight: int = 8,
        interval: float = 1.0,
        batch_window: float = 0.01,
        worker: str | None = None,
    ) -> None:
        check_dispatcher_options(max_in_flight, interval, batch_window)
        self.host = host
        self.max_in_flight = max_in_flight
        self.interval = float(interval)
        self.batch_window = float(batch_window)
        self.worker = worker or f"{default_worker_name()}:{id(self):x}"
        #: Deliveries this dispatcher made.
        self.delivered = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Claimed items wait here for one of the delivery threads; None stops one.
        self._queue: queue.SimpleQueue[OutboxItem | None] = queue.SimpleQueue()
        self._busy = 0  # items claimed and not yet settled
        self._slots = threading.Condition()
        self._settled: list[str] = []
        # The latest snapshot of each incident the host committed: a delivery of
        # the event it ends with does not read the incident back from the store.
        # Older events get the snapshot as of themselves (Deliverer.attempt).
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
        deliverer = self.host.deliverer()
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
        self.host.attach(self)
        return self

    def wake(self) -> None:
        """Look for work now instead of at the next poll."""
        if not self._wake.is_set():  # a commit storm sets it once, not once per commit
            self._wake.set()

    def committed(self, snapshot: Incident) -> None:
        """The host committed ``snapshot`` with outbox items: keep it at hand, and wake."""
        held = self._known.get(snapshot.id)
        if held is None or held.version < snapshot.version:
            self._known[snapshot.id] = snapshot
        self.wake()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Finish the deliveries under way and those already claimed, then stop.

        Everything else stays in the outbox, free to claim.
        """
        self.host.detach(self)
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Dispatcher:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

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
                deliverer.mark_delivered(settled)
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
