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
work cannot wait on anything slow (see :func:`inline_by_default`), none of the
service's calls is in a worker thread and no other thread holds the store;
otherwise it hops.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, ParamSpec, TypeVar, cast

from starlette.concurrency import run_in_threadpool

from .._waiting import NO_WAITING, InlineCall, WouldWait

if TYPE_CHECKING:
    from .._flow import IncidentFlow
    from .._policy import Policy

__all__ = ["WORKERS", "StoreWork", "inline_by_default"]

#: Worker threads: the same bound as Starlette's default thread limiter.
WORKERS = 40
_P = ParamSpec("_P")
_T = TypeVar("_T")


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="incidentflow-web")


def inline_by_default(flow: IncidentFlow) -> bool:
    """Whether ``flow``'s short calls may run on the event loop when it is idle.

    Only when nothing in them can wait long:

    - the store is the memory store or SQLite (exactly those classes: a
      subclass may add work of its own); PostgreSQL waits on the network and
      JSONL on file locks other processes hold;
    - the policy asks no code of the host's (custom guards, an authorizer
      other than :class:`~incidentflow.Access` itself), which could call out
      to the network;
    - the flow writes no files (``incidents_dir``, ``knowledge_dir``): an
      incident's file is rendered whole after each command, under a lock on
      the folder that other processes take too;
    - no notifier is delivered to inline after each commit (a flow with
      notifiers and no dispatcher running).
    """
    return _local_work(flow.store, flow.policy) and _light(flow)


def _local_work(store: object, policy: Policy) -> bool:
    from .._authz import Access
    from ..stores import MemoryStore, SQLiteStore

    authorizer = policy.authorizer
    host_code = bool(policy.guards) or not (authorizer is None or type(authorizer) is Access)
    return type(store) in (MemoryStore, SQLiteStore) and not host_code


def _light(flow: IncidentFlow) -> bool:
    """No files to write after a commit, and no notifiers to wait for."""
    if flow.incidents_dir is not None or flow.knowledge_dir is not None:
        return False
    delivery = flow.delivery
    return not (delivery.notifiers and delivery.deliver_inline and not delivery.dispatchers)


def _hold(store: object) -> Callable[[], None] | None:
    """The store held for a call on the loop: what releases it, or None to hop.

    The memory and SQLite stores say whether another thread has them (a
    dispatcher, a host's own thread); SQLite stays held through the call. A
    store that cannot say is run as it is (only ``inline=True`` gets here).
    """
    try_hold = getattr(store, "_try_hold", None)
    if try_hold is None:
        return _nothing
    release: Callable[[], None] | None = try_hold()
    return release


def _nothing() -> None:
    return None


class StoreWork:
    """Runs the service's store work, in worker threads or inline on the loop.

    :meth:`thread` always hops to a worker thread (listings, metrics, alert
    batches: work whose length grows with the store) and counts the call until
    its thread is done with it, even if the request is cancelled meanwhile.
    :meth:`quick` runs on the loop when inlining is on, none of this service's
    calls is in a thread, and no other thread holds the store; otherwise it
    hops too. On the loop a call never waits: a commit does not join its
    inline delivery, and a call that finds the SQLite file locked by another
    process, having written nothing, is run again in a thread.

    ``inline=None`` decides by :func:`inline_by_default`: its store and policy
    part again whenever either is replaced (``flow.add_guard`` replaces the
    policy), the rest on every call (dispatchers come and go). ``inline=True``
    skips the store and policy part only: a flow that writes files or waits
    for its notifiers still hops.
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
        # Calls of this service that a worker thread has not finished. Counted down
        # in the worker thread itself: a loop that closes first cannot strand the count.
        self._threads = 0
        self._count_lock = threading.Lock()

    @property
    def inline(self) -> bool:
        """Whether :meth:`quick` may run on the loop now (the store's lock aside)."""
        chosen = self._chosen
        if chosen is False:
            return False
        flow = self.flow
        if chosen is None:
            seen = self._seen
            if seen is None or seen[0] is not flow.store or seen[1] is not flow.policy:
                self._local = _local_work(flow.store, flow.policy)
                self._seen = (flow.store, flow.policy)
            if not self._local:
                return False
        return _light(flow)

    async def thread(self, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``func(*args, **kwargs)`` in a worker thread, awaited."""
        self._count(1)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio: anyio's threads are not abandoned on cancel
            try:
                return await run_in_threadpool(func, *args, **kwargs)
            finally:
                self._count(-1)
        call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
        try:
            future = _pool().submit(call)
        except BaseException:
            self._count(-1)
            raise
        # Counted until the thread is done: a cancelled request leaves its call running.
        future.add_done_callback(lambda _: self._count(-1))
        return await asyncio.wrap_future(future, loop=loop)

    def _count(self, change: int) -> None:
        with self._count_lock:
            self._threads += change

    async def quick(self, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``func(*args, **kwargs)`` on the loop when allowed and idle, else in a worker thread."""
        if not self._threads and self.inline:
            release = _hold(self.flow.store)
            if release is not None:
                waiting = NO_WAITING.set(InlineCall())
                try:
                    return func(*args, **kwargs)
                except WouldWait:
                    pass  # nothing written: run it again where it may wait
                finally:
                    NO_WAITING.reset(waiting)
                    release()
        return await self.thread(func, *args, **kwargs)

    async def stream(self, items: Iterator[_T]) -> AsyncIterator[_T]:
        """``items``, each drawn in a worker thread (and counted while it is drawn)."""
        done = object()
        while (item := await self.thread(next, items, done)) is not done:
            yield cast(_T, item)
