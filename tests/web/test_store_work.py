"""Where the service runs store work: on the event loop when that is safe and idle, else in threads.

The flow's clock is read inside every command, so a clock that notes its
thread tells where a command ran: the service's worker threads are named
``incidentflow-web``, the flow's delivery threads ``incidentflow-...``; the
event loop runs in uvicorn's own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from served import running

from helpers import store_flow
from incidentflow import Access, ConfigError, Incident, IncidentFlow, Permission, Policy
from incidentflow._waiting import NO_WAITING, InlineCall
from incidentflow.notifiers import CallbackNotifier, Notification
from incidentflow.testing import FrozenClock
from incidentflow.web import app
from incidentflow.web._threads import StoreWork, inline_by_default

WORKER = "incidentflow-web"


class ThreadNotingClock(FrozenClock):
    """A frozen clock that notes the name of each thread that reads it."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.threads: list[str] = []

    def __call__(self) -> datetime:
        self.threads.append(threading.current_thread().name)
        return super().__call__()


@pytest.fixture
def noting(clock: FrozenClock) -> ThreadNotingClock:
    return ThreadNotingClock(clock())


@pytest.fixture
def flow_of(tmp_path: Path, noting: ThreadNotingClock) -> Iterator[Callable[..., IncidentFlow]]:
    with contextlib.ExitStack() as stack:

        def make(kind: str = "sqlite", **kwargs: Any) -> IncidentFlow:
            folder = tmp_path / f"store-{len(stack._exit_callbacks)}"
            folder.mkdir()
            return stack.enter_context(store_flow(kind, folder, noting, **kwargs))

        yield make


def where_commands_ran(flow: IncidentFlow, noting: ThreadNotingClock, **options: Any) -> set[str]:
    """Declare and add a note over HTTP; 'loop' or 'worker' for each clock reading."""
    with running(app(flow, **options)) as url, httpx.Client(base_url=url, timeout=30) as client:
        body = {"title": "Checkout down", "severity": "P2", "commander": "alice"}
        declared = client.post("/api/incidents", json=body, headers={"X-Actor": "alice"})
        assert declared.status_code == 201, declared.text
        noting.threads.clear()
        path = f"/api/incidents/{declared.json()['id']}/add_note"
        answer = client.post(path, json={"text": "looking"}, headers={"X-Actor": "alice"})
        assert answer.status_code == 200, answer.text
    assert noting.threads, "the command read no clock"
    return {_kind(name) for name in noting.threads}


def _kind(thread: str) -> str:
    """'worker' (the service's pool), 'delivery' (the flow's own threads), else 'loop'."""
    if thread.startswith(WORKER):
        return "worker"
    return "delivery" if thread.startswith("incidentflow-") else "loop"


# -- the default ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_commands_on_embedded_stores_run_on_the_loop(
    flow_of: Callable[..., IncidentFlow], noting: ThreadNotingClock, kind: str
) -> None:
    flow = flow_of(kind)
    assert inline_by_default(flow)
    assert where_commands_ran(flow, noting) == {"loop"}


@pytest.mark.parametrize("kind", ["jsonl", "postgres"])
def test_commands_on_stores_that_wait_run_in_worker_threads(
    flow_of: Callable[..., IncidentFlow], noting: ThreadNotingClock, kind: str
) -> None:
    flow = flow_of(kind)
    assert not inline_by_default(flow)
    assert where_commands_ran(flow, noting) == {"worker"}


def test_inline_false_always_hops(
    flow_of: Callable[..., IncidentFlow], noting: ThreadNotingClock
) -> None:
    assert where_commands_ran(flow_of("sqlite"), noting, inline=False) == {"worker"}


def test_inline_true_runs_a_jsonl_store_on_the_loop(
    flow_of: Callable[..., IncidentFlow], noting: ThreadNotingClock
) -> None:
    assert where_commands_ran(flow_of("jsonl"), noting, inline=True) == {"loop"}


def test_a_guard_added_while_serving_moves_commands_to_threads(
    flow_of: Callable[..., IncidentFlow], noting: ThreadNotingClock
) -> None:
    """A host's guard may call out to the network: once added, it never runs on the loop."""
    flow = flow_of("sqlite")
    with running(app(flow)) as url, httpx.Client(base_url=url, timeout=30) as client:
        body = {"title": "Checkout down", "severity": "P2", "commander": "alice"}
        declared = client.post("/api/incidents", json=body, headers={"X-Actor": "alice"})
        path = f"/api/incidents/{declared.json()['id']}/add_note"
        ran_in = []
        for guarded in (False, True):
            if guarded:
                flow.add_guard("add_note", lambda incident, request: None)
            noting.threads.clear()
            answer = client.post(path, json={"text": "looking"}, headers={"X-Actor": "alice"})
            assert answer.status_code == 200, answer.text
            ran_in.append({_kind(name) for name in noting.threads})
    assert ran_in == [{"loop"}, {"worker"}]


def test_a_custom_authorizer_keeps_commands_off_the_loop(
    flow_of: Callable[..., IncidentFlow], noting: ThreadNotingClock
) -> None:
    class Anyone:
        def authorize(self, actor: str, command: str, incident: object) -> None:
            return None

        def principals(self, actor: str) -> frozenset[str]:
            return frozenset({actor})

    flow = flow_of("sqlite", policy=Policy(authorizer=Anyone()))
    assert not inline_by_default(flow)
    assert where_commands_ran(flow, noting) == {"worker"}


def test_the_built_in_access_roles_stay_on_the_loop(
    flow_of: Callable[..., IncidentFlow], noting: ThreadNotingClock
) -> None:
    flow = flow_of("sqlite", policy=Policy(authorizer=Access(default=Permission.ADMIN)))
    assert where_commands_ran(flow, noting) == {"loop"}


def test_notifiers_delivered_inline_keep_commands_off_the_loop_until_a_dispatcher_runs(
    flow_of: Callable[..., IncidentFlow], noting: ThreadNotingClock
) -> None:
    """Without a dispatcher a commit waits for its notifiers (webhooks): never on the loop."""
    heard: list[object] = []
    flow = flow_of("sqlite", notifiers=[CallbackNotifier(heard.append, "pager")])
    assert where_commands_ran(flow, noting) - {"delivery"} == {"worker"}
    assert heard, "the notifier was not delivered to inline"
    with flow.dispatcher(interval=60):
        assert inline_by_default(flow)
        # The dispatcher holds the store while it delivers the last commit's notifications;
        # a command arriving then hops. Once it is idle, commands run on the loop.
        assert "loop" in notes_ran(flow, noting, attempts=20)
    assert not inline_by_default(flow)


def notes_ran(flow: IncidentFlow, noting: ThreadNotingClock, *, attempts: int) -> list[str]:
    """Add notes over HTTP until one runs wholly on the loop; where each ran."""
    ran = []
    with running(app(flow)) as url, httpx.Client(base_url=url, timeout=30) as client:
        body = {"title": "Checkout down", "severity": "P2", "commander": "alice"}
        declared = client.post("/api/incidents", json=body, headers={"X-Actor": "alice"})
        path = f"/api/incidents/{declared.json()['id']}/add_note"
        for _ in range(attempts):
            noting.threads.clear()
            answer = client.post(path, json={"text": "looking"}, headers={"X-Actor": "alice"})
            assert answer.status_code == 200, answer.text
            kinds = {_kind(name) for name in noting.threads} - {"delivery"}
            ran.append(kinds.pop() if len(kinds) == 1 else "mixed")
            if ran[-1] == "loop":
                break
            time.sleep(0.05)  # let the dispatcher finish delivering
    return ran


def test_a_flow_that_writes_files_keeps_commands_off_the_loop(
    flow_of: Callable[..., IncidentFlow], noting: ThreadNotingClock, tmp_path: Path
) -> None:
    """An incident's file is rendered whole after each command, under a folder lock."""
    flow = flow_of("sqlite")
    flow.incidents_dir = tmp_path / "incidents"
    assert not inline_by_default(flow)
    assert where_commands_ran(flow, noting) == {"worker"}
    assert list((tmp_path / "incidents").glob("*.md"))


def test_an_access_subclass_counts_as_host_code(flow_of: Callable[..., IncidentFlow]) -> None:
    """A subclass may look people up in a directory: only Access itself is known to be quick."""

    class DirectoryAccess(Access):
        pass

    flow = flow_of("sqlite", policy=Policy(authorizer=DirectoryAccess(default=Permission.ADMIN)))
    assert not inline_by_default(flow)


def test_inline_must_be_a_bool_or_none(flow_of: Callable[..., IncidentFlow]) -> None:
    with pytest.raises(ConfigError) as info:
        app(flow_of("memory"), inline="yes")
    assert info.value.key == "inline"
    assert "True, False or None" in str(info.value)


# -- never on the loop behind thread work -------------------------------------------


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition`` holds; fail after 30 s (a hang guard only)."""
    for _ in range(30_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    pytest.fail("the condition never held")


def test_quick_calls_hop_while_thread_work_runs(flow_of: Callable[..., IncidentFlow]) -> None:
    """A short call waits for no long one on the loop: it hops while any is in a thread."""
    work = StoreWork(flow_of("memory"))
    release = threading.Event()

    def long_read() -> str:
        release.wait(30)
        return threading.current_thread().name

    def short() -> str:
        return threading.current_thread().name

    async def scenario() -> tuple[str, str, str, str]:
        loop_thread = threading.current_thread().name
        pending = asyncio.ensure_future(work.thread(long_read))
        await asyncio.sleep(0)  # the long read is now in its thread
        while_busy = await work.quick(short)
        release.set()
        long_ran_in = await pending
        after = await work.quick(short)
        return loop_thread, while_busy, long_ran_in, after

    loop_thread, while_busy, long_ran_in, after = asyncio.run(scenario())
    assert long_ran_in.startswith(WORKER)
    assert while_busy.startswith(WORKER)
    assert after == loop_thread


def test_an_export_stream_counts_each_item_while_it_is_drawn(
    flow_of: Callable[..., IncidentFlow],
) -> None:
    work = StoreWork(flow_of("memory"))
    drawing, release = threading.Event(), threading.Event()

    def items() -> Iterator[str]:
        yield "a"
        drawing.set()
        release.wait(30)
        yield "b"

    def short() -> str:
        return threading.current_thread().name

    async def scenario() -> tuple[list[str], str, str]:
        async def drain() -> list[str]:
            return [item async for item in work.stream(items())]

        drained = asyncio.ensure_future(drain())
        await until(drawing.is_set)  # the second item is being drawn in its thread
        during = await work.quick(short)
        release.set()
        got = await drained
        return got, during, await work.quick(short)

    got, during, after = asyncio.run(scenario())
    assert got == ["a", "b"]
    assert during.startswith(WORKER)
    assert not after.startswith(WORKER)


def test_a_cancelled_thread_call_stays_counted_until_its_thread_is_done(
    flow_of: Callable[..., IncidentFlow],
) -> None:
    """A request cancelled mid-read (a host's timeout) leaves the read running: no inlining."""
    work = StoreWork(flow_of("memory"))
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def long_read() -> None:
        started.set()
        release.wait(30)
        finished.set()

    def short() -> str:
        return threading.current_thread().name

    async def scenario() -> tuple[str, str]:
        request = asyncio.ensure_future(work.thread(long_read))
        await until(started.is_set)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        while_running = await work.quick(short)
        release.set()
        await until(lambda: finished.is_set() and not work._threads)
        return while_running, await work.quick(short)

    while_running, after = asyncio.run(scenario())
    assert while_running.startswith(WORKER)
    assert not after.startswith(WORKER)


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_quick_calls_hop_while_another_thread_holds_the_store(
    flow_of: Callable[..., IncidentFlow], kind: str
) -> None:
    """A dispatcher's or a host thread's long read holds the store: the loop never waits on it."""
    flow = flow_of(kind)
    work = StoreWork(flow)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with flow.store._lock:  # type: ignore[attr-defined]
            holding.set()
            release.wait(30)

    def short() -> str:
        return threading.current_thread().name

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(30)
    try:
        while_held = asyncio.run(work.quick(short))
    finally:
        release.set()
        holder.join(30)
    assert while_held.startswith(WORKER)
    assert not asyncio.run(work.quick(short)).startswith(WORKER)


def test_a_call_that_must_not_wait_never_joins_its_inline_delivery(
    flow_of: Callable[..., IncidentFlow],
) -> None:
    """Inline delivery still happens, in its own thread, but the call does not wait for it.

    This is what a command on the loop gets if a dispatcher stops between the
    service's check and the commit, leaving notifiers to be delivered inline.
    """
    returned, delivered = threading.Event(), threading.Event()
    returned.set()  # the declaration below is delivered while the test waits, as usual
    saw_return: list[bool] = []

    def pager(notification: Notification) -> None:
        if notification.event.type == "note_added":
            saw_return.append(returned.wait(10))  # False: the command waited for this
            delivered.set()

    flow = flow_of(
        "memory", notifiers=[CallbackNotifier(pager, "pager")], delivery_budget=timedelta(hours=1)
    )
    incident = flow.declare("Checkout down", severity="P2", commander="alice", actor="alice")
    returned.clear()
    token = NO_WAITING.set(InlineCall())
    try:
        flow.add_note(incident.id, "looking", actor="alice")
    finally:
        NO_WAITING.reset(token)
    returned.set()
    assert delivered.wait(30)
    assert saw_return == [True]


def test_inline_true_still_hops_for_files_and_notifiers_delivered_inline(
    flow_of: Callable[..., IncidentFlow], tmp_path: Path
) -> None:
    """``inline=True`` vouches for the store and the policy, not for what follows a commit."""
    plain = flow_of("jsonl")
    assert StoreWork(plain, inline=True).inline
    notified = flow_of("jsonl", notifiers=[CallbackNotifier(lambda _: None, "pager")])
    assert not StoreWork(notified, inline=True).inline
    filed = flow_of("jsonl")
    filed.knowledge_dir = tmp_path / "kb"
    assert not StoreWork(filed, inline=True).inline


def test_a_failing_thread_call_is_uncounted(flow_of: Callable[..., IncidentFlow]) -> None:
    work = StoreWork(flow_of("memory"))

    def fails() -> None:
        raise ConfigError("x", "broken on purpose")

    def short() -> str:
        return threading.current_thread().name

    async def scenario() -> str:
        with pytest.raises(ConfigError):
            await work.thread(fails)
        return await work.quick(short)

    assert not asyncio.run(scenario()).startswith(WORKER)


# -- the configuration ------------------------------------------------------------------


@pytest.mark.parametrize(("line", "expected"), [("inline = false", False), ("", None)])
def test_the_web_table_sets_inline(tmp_path: Path, line: str, expected: bool | None) -> None:
    from incidentflow import load_config
    from incidentflow.cli._serve import web_options

    path = tmp_path / "incidentflow.toml"
    path.write_text(f"[web]\n{line}\n", encoding="utf-8")
    assert web_options(load_config(path)).get("inline") is expected


def test_the_web_table_refuses_an_inline_that_is_no_bool(tmp_path: Path) -> None:
    from incidentflow import load_config

    path = tmp_path / "incidentflow.toml"
    path.write_text('[web]\ninline = "no"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key.endswith("web.inline")
    assert "true or false" in str(info.value)


# -- SQLite locked by another process -------------------------------------------------


def test_a_command_finding_the_file_locked_by_another_process_waits_in_a_thread(
    flow_of: Callable[..., IncidentFlow], noting: ThreadNotingClock
) -> None:
    """On the loop it gives up at once, having written nothing, and runs again in a thread."""
    flow = flow_of("sqlite")
    incident = flow.declare("Checkout down", severity="P2", commander="alice", actor="alice")
    other = sqlite3.connect(flow.store.path, isolation_level=None)  # type: ignore[attr-defined]
    other.execute("BEGIN IMMEDIATE")  # another process writing
    work = StoreWork(flow)
    loop_ran: list[bool] = []

    async def scenario() -> Incident:
        command = asyncio.ensure_future(
            work.quick(flow.add_note, incident.id, "looking", actor="alice")
        )
        await until(lambda: bool(work._threads))  # it hopped: the loop is free meanwhile
        loop_ran.append(not command.done())
        other.execute("ROLLBACK")
        return await command

    noting.threads.clear()
    try:
        noted = asyncio.run(scenario())
    finally:
        other.close()
    assert loop_ran == [True]
    assert noted.version == incident.version + 1
    assert [e.seq for e in flow.history(incident.id)] == list(range(1, noted.version + 1))
    assert {_kind(name) for name in noting.threads} == {"loop", "worker"}


def test_held_for_a_call_on_the_loop_sqlite_waits_for_no_other_process(
    flow_of: Callable[..., IncidentFlow],
) -> None:
    flow = flow_of("sqlite")
    store = flow.store

    def busy_timeout() -> int:
        return int(store._conn.execute("PRAGMA busy_timeout").fetchone()[0])  # type: ignore[attr-defined]

    configured = busy_timeout()
    release = store._try_hold()  # type: ignore[attr-defined]
    assert release is not None
    try:
        assert busy_timeout() == 0
    finally:
        release()
    assert busy_timeout() == configured > 0


def test_a_commit_on_the_loop_marks_the_call_committed(
    flow_of: Callable[..., IncidentFlow],
) -> None:
    """Once written, a call is never run again: a later busy file is waited for instead."""
    flow = flow_of("sqlite")
    incident = flow.declare("Checkout down", severity="P2", commander="alice", actor="alice")
    call = InlineCall()
    token = NO_WAITING.set(call)
    try:
        flow.add_note(incident.id, "looking", actor="alice")
    finally:
        NO_WAITING.reset(token)
    assert call.committed


def test_sqlite_stays_held_through_a_call_on_the_loop(
    flow_of: Callable[..., IncidentFlow],
) -> None:
    """No other thread of the process gets the store between the check and the call."""
    flow = flow_of("sqlite")
    work = StoreWork(flow)

    def another_thread_gets_the_store() -> bool:
        got: list[bool] = []

        def attempt() -> None:
            lock = flow.store._lock  # type: ignore[attr-defined]
            got.append(lock.acquire(blocking=False))
            if got[-1]:
                lock.release()

        thread = threading.Thread(target=attempt)
        thread.start()
        thread.join(30)
        return got[0]

    assert asyncio.run(work.quick(another_thread_gets_the_store)) is False
    assert another_thread_gets_the_store() is True


# -- which routes run where -------------------------------------------------------------


def test_short_routes_run_on_the_loop_and_long_ones_in_threads(
    flow_of: Callable[..., IncidentFlow],
) -> None:
    flow = flow_of("sqlite")
    seen: dict[str, set[str]] = {}
    for name in ("execute", "get", "can", "history", "list", "summaries"):
        original = getattr(flow, name)

        def spy(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            seen.setdefault(_name, set()).add(_kind(threading.current_thread().name))
            return _original(*args, **kwargs)

        setattr(flow, name, spy)
    actor = {"X-Actor": "alice"}
    with running(app(flow, actor="alice")) as url, httpx.Client(base_url=url, timeout=30) as c:

        def where(name: str, method: str, path: str, **options: Any) -> set[str]:
            seen.clear()
            answer = c.request(method, path, **options)
            assert answer.status_code < 400, answer.text
            return seen.get(name, set())

        body = {"title": "Checkout down", "severity": "P2", "commander": "alice"}
        assert where("execute", "POST", "/api/incidents", json=body, headers=actor) == {"loop"}
        incident = c.get("/api/incidents", params={"limit": 1}).json()[0]["id"]
        api = f"/api/incidents/{incident}"
        note = {"json": {"text": "looking"}, "headers": actor}
        assert where("execute", "POST", f"{api}/add_note", **note) == {"loop"}
        assert where("get", "GET", api) == {"loop"}
        assert where("can", "GET", f"{api}/can/add_note", headers=actor) == {"loop"}
        assert where("history", "GET", f"{api}/history") == {"worker"}
        assert where("list", "GET", "/api/incidents") == {"worker"}
        assert where("summaries", "GET", "/api/summaries") == {"worker"}
        form = {"title": "Search down", "severity": "P3", "commander": "alice"}
        assert where("execute", "POST", "/incidents", data=form) == {"loop"}
        page = f"/incidents/{incident}"
        assert where("get", "GET", f"{page}/state") == {"loop"}
        assert where("execute", "POST", f"{page}/commands/add_note", data={"text": "x"}) == {"loop"}
        assert where("summaries", "GET", "/") == {"worker"}


def test_a_thread_call_outliving_its_loop_is_uncounted_once_done(
    flow_of: Callable[..., IncidentFlow],
) -> None:
    """A server restarted on a new loop gets its inlining back once the old call finishes."""
    work = StoreWork(flow_of("memory"))
    started, release = threading.Event(), threading.Event()

    def long_read() -> None:
        started.set()
        release.wait(30)

    async def begin() -> asyncio.Future[None]:
        pending = asyncio.ensure_future(work.thread(long_read))
        await until(started.is_set)
        return pending  # asyncio.run cancels it and closes the loop

    asyncio.run(begin())
    assert work._threads == 1
    release.set()
    for _ in range(30_000):  # a hang guard only
        if not work._threads:
            break
        time.sleep(0.001)
    assert work._threads == 0
