"""AsyncIncidentFlow: the facade as coroutines, for asyncio hosts (FastAPI, Slack Bolt, aiohttp).

Each method runs the synchronous :class:`~incidentflow.IncidentFlow` method of
the same name in one of the flow's own threads (a bounded pool), so the event
loop never waits on the store, the files or a notifier. The stores are
thread-safe (each says so), and a command's events, snapshot, idempotency
record and outbox items are one atomic append, which is what makes
cancellation safe: see :class:`AsyncIncidentFlow`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from loguru import logger

from ._flow import IncidentFlow
from ._model import Incident, Severity
from ._policy import Guard
from ._reasons import Outcome, Verdict
from .delivery import Router
from .delivery._protocol import MAX_LIMIT
from .delivery._thread import check_dispatcher_options
from .exceptions import ConfigError, StoreError

if TYPE_CHECKING:
    from ._metrics import Milestones
    from .alerts._rules import AlertRules
    from .delivery import RetryPolicy
    from .notifiers._base import Notifier

__all__ = ["AsyncDispatcher", "AsyncIncidentFlow"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: The most threads one flow runs store work in.
_MAX_THREADS = 256


def _coroutine(
    method: Callable[Concatenate[IncidentFlow, _P], _R],
) -> Callable[Concatenate[AsyncIncidentFlow, _P], Coroutine[Any, Any, _R]]:
    """The coroutine twin of an ``IncidentFlow`` method: the same signature, awaited.

    The sync method runs in one of the flow's threads; ``mypy`` sees the very
    parameters of ``method``, so the two can never drift apart.
    """
    name = method.__name__

    async def call(self: AsyncIncidentFlow, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        bound: Callable[_P, _R] = getattr(self.sync, name)
        return await self._offload(bound, *args, **kwargs)

    call.__name__ = name
    call.__qualname__ = f"AsyncIncidentFlow.{name}"
    call.__doc__ = _doc(name, method.__doc__ or "")
    call.__wrapped__ = method  # type: ignore[attr-defined]  # inspect.signature shows its own
    return call


def _doc(name: str, sync_doc: str) -> str:
    """The sync method's docstring without its doctest, and where it runs."""
    lines = sync_doc.strip().splitlines()
    cut = next((i for i, line in enumerate(lines) if line.lstrip().startswith(">>>")), len(lines))
    text = "\n".join(lines[:cut]).rstrip()
    return (
        f"{text}\n\n"
        f"Awaits :meth:`IncidentFlow.{name} <incidentflow.IncidentFlow.{name}>`, "
        "run in one of the flow's threads.\n"
    )


class _Opening(Awaitable["AsyncIncidentFlow"]):
    """An AsyncIncidentFlow being opened: ``await`` it, or ``async with`` it to close it after."""

    def __init__(self, build: Callable[[], IncidentFlow], threads: int) -> None:
        self._build = build
        self._threads = threads
        self._flow: AsyncIncidentFlow | None = None

    def __await__(self) -> Generator[Any, None, AsyncIncidentFlow]:
        return self._open().__await__()

    async def _open(self) -> AsyncIncidentFlow:
        # Opening a store creates files or connects: off the loop too.
        return AsyncIncidentFlow(await asyncio.to_thread(self._build), threads=self._threads)

    async def __aenter__(self) -> AsyncIncidentFlow:
        self._flow = await self._open()
        return self._flow

    async def __aexit__(self, *exc_info: object) -> None:
        if self._flow is not None:
            await self._flow.close()


class AsyncIncidentFlow:
    """Every command and read of :class:`~incidentflow.IncidentFlow`, as a coroutine.

    Wrap a flow (``AsyncIncidentFlow(IncidentFlow.open(url))``) or open one
    with the same constructors, awaited or in ``async with``::

        async with AsyncIncidentFlow.open("sqlite:///incidents.db") as flow:
            inc = await flow.declare("Checkout 500", severity="P1", commander="al", actor="al")
            await flow.start_triage(inc.id, actor="al")

    Each call runs the sync method in one of the flow's ``threads`` (1 to 256):
    the event loop never waits on the store, the files or a notifier, and at
    most ``threads`` calls run at once (the rest wait their turn, off the loop).

    **Cancellation.** A cancelled command either committed or did not, never
    half: its events, snapshot, idempotency record and outbox items are one
    atomic append. A command cancelled while it waits for a free thread is
    dropped; one already running finishes in its thread (committed, or refused
    as it would have been) while the awaiting task sees ``CancelledError``.
    To learn which, run it again with the same ``idempotency_key``: a
    committed command answers with ``replayed=True`` (see :meth:`execute`).
    :meth:`close` waits for such commands before it closes the store.

    **Delivery.** Without a dispatcher, notifications are delivered right
    after each commit, in the command's thread. :meth:`start_dispatcher` runs
    delivery as an asyncio task instead (see :class:`AsyncDispatcher`).
    """

    def __init__(self, flow: IncidentFlow, *, threads: int = 8) -> None:
        if not isinstance(flow, IncidentFlow):
            raise ConfigError("flow", f"expected an IncidentFlow, got {type(flow).__name__}")
        if isinstance(threads, bool) or not isinstance(threads, int):
            raise ConfigError("threads", f"expected a whole number, got {threads!r}")
        if not 1 <= threads <= _MAX_THREADS:
            raise ConfigError("threads", f"expected 1 to {_MAX_THREADS}, got {threads}")
        #: The synchronous flow every call runs on.
        self.sync = flow
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="incidentflow-async")
        self._dispatchers: dict[AsyncDispatcher, None] = {}
        self._closing: asyncio.Future[None] | None = None

    # -- constructors, mirroring IncidentFlow's -------------------------------

    @classmethod
    def in_memory(cls, *, threads: int = 8, **kwargs: Any) -> _Opening:
        """A flow on a fresh memory store; see :meth:`IncidentFlow.in_memory`.

        ``flow = await AsyncIncidentFlow.in_memory()``, or ``async with`` it.
        """
        return _Opening(functools.partial(IncidentFlow.in_memory, **kwargs), threads)

    @classmethod
    def open(cls, url: str | None = None, *, threads: int = 8, **kwargs: Any) -> _Opening:
        """A flow on the store named by ``url``; see :meth:`IncidentFlow.open`.

        The store is opened in a thread: ``flow = await AsyncIncidentFlow.open(url)``,
        or ``async with AsyncIncidentFlow.open(url) as flow:`` to close it after.
        """
        return _Opening(functools.partial(IncidentFlow.open, url, **kwargs), threads)

    @classmethod
    def from_config(
        cls, path: str | Path | None = None, *, threads: int = 8, **overrides: Any
    ) -> _Opening:
        """The flow a configuration file describes; see :meth:`IncidentFlow.from_config`."""
        return _Opening(functools.partial(IncidentFlow.from_config, path, **overrides), threads)

    # -- running off the loop ---------------------------------------------------

    async def _offload(self, call: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """``call(*args, **kwargs)`` in one of the flow's threads, with this task's context."""
        if self._closing is not None:
            raise StoreError("this AsyncIncidentFlow is closed; open a new one")
        context = contextvars.copy_context()
        work = functools.partial(context.run, call, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    # -- commands ------------------------------------------------------------

    declare = _coroutine(IncidentFlow.declare)

    async def execute(self, command: str, incident_id: str | None = None, **args: Any) -> Outcome:
        """Run ``command`` by name and say whether it was new or a replay.

        See :meth:`IncidentFlow.execute`: ``replayed`` is True when an
        idempotency key answered with the first result and nothing new was
        recorded, which is how a caller whose command was cancelled learns
        whether it committed. Runs in one of the flow's threads.
        """
        return await self._offload(self.sync.execute, command, incident_id, **args)

    start_triage = _coroutine(IncidentFlow.start_triage)
    add_evidence = _coroutine(IncidentFlow.add_evidence)
    answer_triage = _coroutine(IncidentFlow.answer_triage)
    record_containment = _coroutine(IncidentFlow.record_containment)
    contain = _coroutine(IncidentFlow.contain)
    start_rca = _coroutine(IncidentFlow.start_rca)
    add_why = _coroutine(IncidentFlow.add_why)
    set_root_cause = _coroutine(IncidentFlow.set_root_cause)
    record_fix = _coroutine(IncidentFlow.record_fix)
    record_deploy = _coroutine(IncidentFlow.record_deploy)
    mark_fixed = _coroutine(IncidentFlow.mark_fixed)
    confirm_by_user = _coroutine(IncidentFlow.confirm_by_user)
    resolve = _coroutine(IncidentFlow.resolve)
    draft_postmortem = _coroutine(IncidentFlow.draft_postmortem)
    complete_postmortem = _coroutine(IncidentFlow.complete_postmortem)
    add_action_item = _coroutine(IncidentFlow.add_action_item)
    complete_action_item = _coroutine(IncidentFlow.complete_action_item)
    reassign_action_item = _coroutine(IncidentFlow.reassign_action_item)
    redate_action_item = _coroutine(IncidentFlow.redate_action_item)
    decline_action_item = _coroutine(IncidentFlow.decline_action_item)
    link_action_item = _coroutine(IncidentFlow.link_action_item)
    update_kb = _coroutine(IncidentFlow.update_kb)
    reopen = _coroutine(IncidentFlow.reopen)
    dismiss = _coroutine(IncidentFlow.dismiss)
    reclassify = _coroutine(IncidentFlow.reclassify)
    assign_commander = _coroutine(IncidentFlow.assign_commander)
    record_detection = _coroutine(IncidentFlow.record_detection)
    add_note = _coroutine(IncidentFlow.add_note)
    amend = _coroutine(IncidentFlow.amend)
    retract = _coroutine(IncidentFlow.retract)
    change_type = _coroutine(IncidentFlow.change_type)
    set_labels = _coroutine(IncidentFlow.set_labels)
    set_fields = _coroutine(IncidentFlow.set_fields)
    add_reference = _coroutine(IncidentFlow.add_reference)
    remove_reference = _coroutine(IncidentFlow.remove_reference)
    assign_role = _coroutine(IncidentFlow.assign_role)
    release_role = _coroutine(IncidentFlow.release_role)
    post_update = _coroutine(IncidentFlow.post_update)
    check_deadlines = _coroutine(IncidentFlow.check_deadlines)
    link = _coroutine(IncidentFlow.link)
    unlink = _coroutine(IncidentFlow.unlink)
    merge = _coroutine(IncidentFlow.merge)
    ingest = _coroutine(IncidentFlow.ingest)
    restrict = _coroutine(IncidentFlow.restrict)
    unrestrict = _coroutine(IncidentFlow.unrestrict)

    # -- reads -----------------------------------------------------------------

    get = _coroutine(IncidentFlow.get)
    history = _coroutine(IncidentFlow.history)
    verify = _coroutine(IncidentFlow.verify)

    async def can(self, incident_id: str, command: str, *, actor: str = "", **args: Any) -> Verdict:
        """Whether ``command`` would be accepted now, with every reason if not.

        See :meth:`IncidentFlow.can`. Runs in one of the flow's threads.
        """
        return await self._offload(self.sync.can, incident_id, command, actor=actor, **args)

    summaries = _coroutine(IncidentFlow.summaries)
    find = _coroutine(IncidentFlow.find)
    similar = _coroutine(IncidentFlow.similar)

    async def milestones(
        self,
        *,
        severity: Severity | str | Iterable[Severity | str] | None = None,
        declared_after: datetime | None = None,
        declared_before: datetime | None = None,
        type: str | Iterable[str] | None = None,
        viewer: str | None = None,
    ) -> Iterator[Milestones]:
        """When each matching incident reached each milestone, oldest first.

        See :meth:`IncidentFlow.milestones`. The rows are all read in one of
        the flow's threads: iterating the answer never touches the store.
        """
        rows = await self._offload(
            lambda: list(
                self.sync.milestones(
                    severity=severity,
                    declared_after=declared_after,
                    declared_before=declared_before,
                    type=type,
                    viewer=viewer,
                )
            )
        )
        return iter(rows)

    metrics = _coroutine(IncidentFlow.metrics)
    deadlines = _coroutine(IncidentFlow.deadlines)
    render = _coroutine(IncidentFlow.render)

    # -- delivery --------------------------------------------------------------

    deliver_pending = _coroutine(IncidentFlow.deliver_pending)
    dead_letters = _coroutine(IncidentFlow.dead_letters)
    redrive = _coroutine(IncidentFlow.redrive)

    def dispatcher(
        self, *, max_in_flight: int = 8, interval: float = 1.0, limit: int = 1000
    ) -> AsyncDispatcher:
        """An :class:`AsyncDispatcher` for this flow, not started yet.

        ``async with flow.dispatcher():`` runs it for the block. The thread and
        process dispatchers stay on :meth:`IncidentFlow.dispatcher` (``flow.sync``).
        """
        return AsyncDispatcher(self, max_in_flight=max_in_flight, interval=interval, limit=limit)

    def start_dispatcher(
        self, *, max_in_flight: int = 8, interval: float = 1.0, limit: int = 1000
    ) -> AsyncDispatcher:
        """Start delivering the outbox in an asyncio task; :meth:`close` stops it.

        Call it from a running event loop (a FastAPI lifespan, a Bolt app's
        startup). Returns the running :class:`AsyncDispatcher`.
        """
        return self.dispatcher(max_in_flight=max_in_flight, interval=interval, limit=limit).start()

    # -- what needs no store: plain methods and properties -----------------------

    def now(self) -> datetime:
        """The flow clock's time (aware UTC); see :meth:`IncidentFlow.now`."""
        return self.sync.now()

    def add_guard(self, command: str, guard: Guard) -> None:
        """Add a custom guard to ``command``; see :meth:`IncidentFlow.add_guard`."""
        self.sync.add_guard(command, guard)

    def incident_path(self, incident_id: str) -> Path | None:
        """Where the incident's Markdown file is written, or None without a folder."""
        return self.sync.incident_path(incident_id)

    @property
    def alert_rules(self) -> AlertRules | None:
        """How :meth:`ingest` maps alerts to incidents; see ``IncidentFlow.alert_rules``."""
        return self.sync.alert_rules

    @alert_rules.setter
    def alert_rules(self, rules: AlertRules | None) -> None:
        self.sync.alert_rules = rules

    @property
    def notifiers(self) -> Sequence[Notifier]:
        """Who hears about events, in the order given."""
        return self.sync.notifiers

    @property
    def router(self) -> Router:
        """Which notifier hears which event."""
        return self.sync.router

    @property
    def retry(self) -> RetryPolicy:
        """How failed deliveries are retried."""
        return self.sync.retry

    @property
    def deliver_inline(self) -> bool:
        """Deliver right after each commit (in its thread) while no dispatcher runs."""
        return self.sync.deliver_inline

    @deliver_inline.setter
    def deliver_inline(self, value: bool) -> None:
        self.sync.deliver_inline = value

    @property
    def delivery_lease(self) -> timedelta:
        """How long a delivery's claim on an outbox item holds."""
        return self.sync.delivery_lease

    # -- closing ---------------------------------------------------------------

    async def close(self) -> None:
        """Stop the dispatchers, wait for the commands still running, then close the flow.

        Commands whose callers were cancelled finish first, so none is cut off
        by a closing store. Calling it again waits for the first close.
        """
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        # Shielded: a host cancelled while closing still leaves the store closed cleanly.
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        for dispatcher in tuple(self._dispatchers):
            await dispatcher.aclose()
        await asyncio.to_thread(self._close_sync)

    def _close_sync(self) -> None:
        self._executor.shutdown(wait=True)
        self.sync.close()

    async def __aenter__(self) -> AsyncIncidentFlow:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncIncidentFlow({self.sync.store!r})"

    # Last: in the class body ``list`` names this method from here on.
    list = _coroutine(IncidentFlow.list)


class AsyncDispatcher:
    """Delivers a flow's outbox from an asyncio task, woken by commits and on an interval.

    Each round runs :meth:`IncidentFlow.deliver_pending` (up to ``limit``
    items, ``max_in_flight`` at once) in one of the flow's threads. While it
    runs, commands no longer deliver inline: they return at once and wake it.
    It also looks every ``interval`` seconds for retries that fell due and for
    other processes' commits. A failing round is logged and tried again.

    Made by :meth:`AsyncIncidentFlow.dispatcher` (start it with :meth:`start`
    or ``async with``) or :meth:`AsyncIncidentFlow.start_dispatcher`; stopped
    by :meth:`aclose` or when the flow closes.
    """

    def __init__(
        self,
        flow: AsyncIncidentFlow,
        *,
        max_in_flight: int = 8,
        interval: float = 1.0,
        limit: int = 1000,
    ) -> None:
        check_dispatcher_options(max_in_flight, interval, 0.0)
        self.flow = flow
        self.max_in_flight = max_in_flight
        self.interval = float(interval)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ConfigError(
                "limit", f"expected a whole number from 1 to {MAX_LIMIT:,}, got {limit!r}"
            )
        self.limit = limit
        #: Notifications this dispatcher delivered.
        self.delivered = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True between :meth:`start` and the end of :meth:`aclose`."""
        return self._task is not None and not self._task.done()

    def start(self) -> AsyncDispatcher:
        """Start the task on the running event loop (once); commands wake it from now on."""
        if self.running:
            return self
        self.flow.sync.delivery.outbox  # noqa: B018 - a ConfigError now, not every round
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._wake.set()  # a first round at once: the backlog of before it started
        self.flow.sync.delivery.attach(self)
        self.flow._dispatchers[self] = None
        self._task = self._loop.create_task(self._run(), name="incidentflow-async-dispatcher")
        return self

    def committed(self, snapshot: Incident) -> None:
        """A command committed outbox items: deliver now (called from its thread)."""
        self._call_on_loop(self._wake.set)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the task to stop after its round (from any thread); :meth:`aclose` waits too."""
        self._call_on_loop(self._request_stop)

    async def aclose(self) -> None:
        """Stop after the round under way, and wait for it."""
        self._request_stop()
        if self._task is not None:
            await asyncio.shield(self._task)

    async def __aenter__(self) -> AsyncDispatcher:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _request_stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def _call_on_loop(self, callback: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            if loop is _running_loop():
                callback()
            else:
                loop.call_soon_threadsafe(callback)
        except RuntimeError:
            pass  # the loop is closed: nothing is left to wake

    async def _run(self) -> None:
        try:
            while not self._stopping:
                await self._wait()
                if self._stopping:
                    break
                await self._round()
        finally:
            self.flow.sync.delivery.detach(self)
            self.flow._dispatchers.pop(self, None)

    async def _wait(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.interval)
        self._wake.clear()

    async def _round(self) -> None:
        sync = self.flow.sync
        try:
            while not self._stopping:
                report = await self.flow._offload(
                    sync.deliver_pending, limit=self.limit, max_in_flight=self.max_in_flight
                )
                self.delivered += report.delivered
                if report.delivered + report.retrying + report.dead < self.limit:
                    return  # the outbox has nothing more due now
        except Exception:
            logger.exception("the async dispatcher's delivery round failed; it tries again")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
