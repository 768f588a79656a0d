"""Where the service runs store work: a pool of worker threads, or the event loop itself.

Under asyncio (uvicorn, hypercorn's asyncio worker) a call goes straight to the
pool through the running loop, which costs about two thirds of Starlette's
``run_in_threadpool`` per hop; under any other event loop (trio) it falls back
to ``run_in_threadpool``. Either way the caller's context variables go along.
The pool is the service's own, bounded by :data:`WORKERS`: a host that tunes
anyio's default thread limiter (what ``run_in_threadpool`` uses) does not size it.

A hop costs about as much as a command on an embedded store: on a virtual
machine each one wakes idle CPUs twice. So :class:`StoreWork` runs a short call
(a command, one incident's snapshot, ``can``) on the loop itself when the flow's
work cannot wait on anything slow (see :func:`inline_by_default`) and no other
store work is running in a worker thread; otherwise it hops.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

if TYPE_CHECKING:
    from .._flow import IncidentFlow
    from .._policy import Policy

__all__ = ["WORKERS", "StoreWork", "in_worker", "inline_by_default"]

#: Worker threads: the same bound as Starlette's default thread limiter.
WORKERS = 40
_P = ParamSpec("_P")
_T = TypeVar("_T")


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="incidentflow-web")


async def in_worker(func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``func(*args, **kwargs)`` run in a worker thread, awaited."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: let anyio find the loop
        return await run_in_threadpool(func, *args, **kwargs)
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return await loop.run_in_executor(_pool(), call)


def inline_by_default(flow: IncidentFlow) -> bool:
    """Whether ``flow``'s short calls may run on the event loop when it is idle.

    Only when nothing in them can wait long: the store is the memory store or
    SQLite (exactly those classes: a subclass may add work of its own), the
    policy asks no code of the host's (custom guards, an authorizer other than
    :class:`~incidentflow.Access`), which could call out to the network, and
    no notifier is delivered to inline after each commit (a flow with
    notifiers and no dispatcher). PostgreSQL and JSONL (whose file locks other
    processes hold) always hop.
    """
    return _local_work(flow.store, flow.policy) and not _delivers_inline(flow)


def _local_work(store: object, policy: Policy) -> bool:
    from .._authz import Access
    from ..stores import MemoryStore, SQLiteStore

    host_code = bool(policy.guards) or not (
        policy.authorizer is None or isinstance(policy.authorizer, Access)
    )
    return type(store) in (MemoryStore, SQLiteStore) and not host_code


def _delivers_inline(flow: IncidentFlow) -> bool:
    """Whether a commit waits for notifiers: some, inline delivery on, no dispatcher."""
    delivery = flow.delivery
    return bool(delivery.notifiers) and delivery.deliver_inline and not delivery.dispatchers


class StoreWork:
    """Runs the service's store work, in worker threads or inline on the loop.

    :meth:`thread` always hops to a worker thread (listings, metrics, alert
    batches: work whose length grows with the store). :meth:`quick` runs on
    the loop when inlining is on and no :meth:`thread` call is running, so it
    neither waits on the store's lock behind a long read nor holds up the loop
    longer than one short call; otherwise it hops too.

    ``inline=None`` decides by :func:`inline_by_default`: its store and policy
    part again whenever either is replaced (``flow.add_guard`` replaces the
    policy), its delivery part on every call (dispatchers come and go).
    """

    def __init__(self, flow: IncidentFlow, *, inline: bool | None = None) -> None:
        if inline is not None and not isinstance(inline, bool):
            from ..exceptions import ConfigError

            raise ConfigError(
                "inline", f"expected True, False or None (decide), got {type(inline).__name__}"
            )
        self.flow = flow
        self._chosen = inline
        self._seen: tuple[object, object] | None = None
        self._local = False
        self._threads = 0  # calls of this service running in worker threads now

    @property
    def inline(self) -> bool:
        """Whether :meth:`quick` may run on the loop now."""
        if self._chosen is not None:
            return self._chosen
        flow = self.flow
        seen = self._seen
        if seen is None or seen[0] is not flow.store or seen[1] is not flow.policy:
            self._local = _local_work(flow.store, flow.policy)
            self._seen = (flow.store, flow.policy)
        return self._local and not _delivers_inline(flow)

    async def thread(self, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``func(*args, **kwargs)`` in a worker thread, awaited."""
        self._threads += 1
        try:
            return await in_worker(func, *args, **kwargs)
        finally:
            self._threads -= 1

    async def quick(self, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``func(*args, **kwargs)`` on the loop when allowed and idle, else in a worker thread."""
        if not self._threads and self.inline:
            return func(*args, **kwargs)
        return await self.thread(func, *args, **kwargs)

    async def stream(self, items: Iterator[_T]) -> AsyncIterator[_T]:
        """``items`` drawn in worker threads; counted as thread work until the stream ends."""
        self._threads += 1
        try:
            async for item in iterate_in_threadpool(items):
                yield item
        finally:
            self._threads -= 1
