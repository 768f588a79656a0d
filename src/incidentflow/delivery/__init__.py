"""Delivery from the outbox: routing, retries with backoff, dead letters, dispatchers.

Commands only write outbox items, in the same transaction as their events.
Delivery happens afterwards: inline right after the commit (the default for
scripts), from ``IncidentFlow.deliver_pending()``, or from a :class:`Dispatcher`
thread (or a :class:`DispatcherProcess`) in long-running hosts. Each notifier
hears about one incident's events in order; a failed attempt is retried with
exponential backoff and jitter, and after ``max_attempts`` it becomes a dead
letter that can be re-driven.

A flow's delivery side is ``flow.delivery`` (a :class:`Delivery`); dispatchers
serve it through the small :class:`DeliveryHost` protocol.

>>> from incidentflow.delivery import RetryPolicy, Route
>>> Route("pager", severities={"P1"}).notifier, RetryPolicy(jitter=0).max_attempts
('pager', 8)
"""

from __future__ import annotations

import typing as _typing

from .._lazy import lazy_attributes as _lazy_attributes
from ._deliverer import Deliverer, DeliveryReport
from ._host import DEFAULT_INLINE_BUDGET, Delivery
from ._protocol import MAX_IN_FLIGHT, MAX_LIMIT, AttachedDispatcher, DeliveryHost
from ._retry import RetryPolicy
from ._routing import Route, Router
from ._thread import Dispatcher

if _typing.TYPE_CHECKING:
    from ._process import DispatcherProcess, FlowFactory

__all__ = [
    "DEFAULT_INLINE_BUDGET",
    "MAX_IN_FLIGHT",
    "MAX_LIMIT",
    "AttachedDispatcher",
    "Deliverer",
    "Delivery",
    "DeliveryHost",
    "DeliveryReport",
    "Dispatcher",
    "DispatcherProcess",
    "FlowFactory",
    "RetryPolicy",
    "Route",
    "Router",
]

# DispatcherProcess loads on first use: subprocess stays out of ``import incidentflow``.
__getattr__, __dir__ = _lazy_attributes(
    __name__, globals(), {"DispatcherProcess": "._process", "FlowFactory": "._process"}
)
