"""Store work off the event loop: one pool of worker threads for the service.

Under asyncio (uvicorn, hypercorn's asyncio worker) a call goes straight to the
pool through the running loop, which costs about two thirds of Starlette's
``run_in_threadpool`` per hop; under any other event loop (trio) it falls back
to ``run_in_threadpool``. Either way the caller's context variables go along.
The pool is the service's own, bounded by :data:`WORKERS`: a host that tunes
anyio's default thread limiter (what ``run_in_threadpool`` uses) does not size it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

__all__ = ["WORKERS", "in_worker"]

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
