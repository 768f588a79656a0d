"""The protocol a flow and its dispatchers share, and the bounds of delivery's arguments.

A dispatcher needs three things from what it serves (a :class:`DeliveryHost`,
in practice ``flow.delivery``): the outbox it empties, a
:class:`~incidentflow.delivery.Deliverer` to claim, deliver and settle with,
and a place to attach itself so that commits wake it. The host, in turn, calls
two things on an attached dispatcher (an :class:`AttachedDispatcher`):
``committed(snapshot)`` after each commit that wrote outbox items, and
``stop()`` when the flow closes. Neither side reaches into the other's privates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .._model import Incident
    from ..stores import Outbox
    from ._deliverer import Deliverer

__all__ = ["MAX_IN_FLIGHT", "MAX_LIMIT", "AttachedDispatcher", "DeliveryHost"]

#: The largest ``limit`` of ``deliver_pending``, ``dead_letters`` and ids per ``redrive``.
MAX_LIMIT = 100_000
#: The most deliveries one dispatcher or ``deliver_pending`` runs at once.
MAX_IN_FLIGHT = 256


class AttachedDispatcher(Protocol):
    """What a host calls on the dispatchers attached to it."""

    def committed(self, snapshot: Incident) -> None:
        """The host committed ``snapshot`` with outbox items: look for work now."""

    def stop(self, timeout: float | None = 30.0) -> None:
        """Finish the deliveries under way and stop."""


class DeliveryHost(Protocol):
    """What a dispatcher needs from the flow it delivers for."""

    @property
    def outbox(self) -> Outbox:
        """The store holding the outbox."""

    def deliverer(self) -> Deliverer:
        """A deliverer on the host's outbox, router, retry policy, clock and lease."""

    def attach(self, dispatcher: AttachedDispatcher) -> None:
        """Wake ``dispatcher`` after commits instead of delivering inline."""

    def detach(self, dispatcher: AttachedDispatcher) -> None:
        """Stop waking ``dispatcher``; without dispatchers, commits deliver inline again."""
