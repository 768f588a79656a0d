"""AsyncIncidentFlow: every command and read of IncidentFlow as a coroutine, off the loop."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import START
from incidentflow import (
    AsyncIncidentFlow,
    ConfigError,
    Incident,
    IncidentFlow,
    IncidentNotFound,
    Policy,
    State,
    StoreError,
    TransitionRejected,
)
from incidentflow.commands import DEFINITIONS
from incidentflow.testing import FrozenClock

pytestmark = pytest.mark.anyio

#: What stays a plain method or property: it touches no store.
PLAIN = {
    "now",
    "add_guard",
    "incident_path",
    "dispatcher",
    "notifiers",
    "router",
    "retry",
    "deliver_inline",
    "delivery_lease",
    "alert_rules",
    "in_memory",
    "open",
    "from_config",
}
#: Methods whose signature is the async flow's own (it runs its dispatcher as a task).
OWN_SIGNATURE = {"dispatcher", "in_memory", "open", "from_config", "close"}


@pytest.fixture
def anyio_backend() -> str:
    """The library is asyncio-only (stdlib): run the async tests on asyncio."""
    return "asyncio"


def public_names(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def command_names() -> set[str]:
    return {name for name, command in DEFINITIONS.items() if not command.system}


@pytest.fixture(params=["memory", "sqlite"])
async def aflow(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncIncidentFlow]:
    """An async flow on a frozen clock and a fresh store of each kind, closed after."""
    clock = FrozenClock(START)
    policy = Policy(custom_fields={"customer": "text"})
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'incidents.db'}"
    async with AsyncIncidentFlow.open(
        url, clock=clock, policy=policy, incidents_dir=None, knowledge_dir=None
    ) as flow:
        yield flow


class TestSurface:
    def test_every_public_method_of_the_sync_flow_is_here(self) -> None:
        """A method IncidentFlow gains without its async twin fails here (add one line)."""
        missing = public_names(IncidentFlow) - public_names(AsyncIncidentFlow)
        assert not missing, (
            f"AsyncIncidentFlow lacks {sorted(missing)}: add `name = _coroutine(IncidentFlow.name)`"
            " to src/incidentflow/_async.py"
        )

    def test_every_command_and_read_is_a_coroutine(self) -> None:
        """All but the plain helpers (clock, paths, properties) are ``async def``."""
        names = public_names(IncidentFlow) - PLAIN
        assert command_names() <= names
        assert {"declare", "execute", "get", "list", "verify", "close"} <= names
        blocking = [
            n for n in names if not inspect.iscoroutinefunction(getattr(AsyncIncidentFlow, n))
        ]
        assert blocking == []

    def test_signatures_are_the_sync_ones(self) -> None:
        """Each coroutine takes exactly the arguments of its sync method."""
        for name in public_names(IncidentFlow) - PLAIN - OWN_SIGNATURE:
            sync = inspect.signature(getattr(IncidentFlow, name))
            twin = inspect.signature(getattr(AsyncIncidentFlow, name))
            assert twin.parameters == sync.parameters, name
            assert twin.return_annotation == sync.return_annotation, name

    def test_docstrings_point_at_the_sync_method(self) -> None:
        """Each coroutine keeps its sync method's text and says where it runs."""
        doc = AsyncIncidentFlow.add_evidence.__doc__ or ""
        assert doc.startswith("Attach evidence")
        assert "IncidentFlow.add_evidence" in doc

    def test_import_incidentflow_does_not_load_it(self) -> None:
        """The async module loads on first use of ``incidentflow.AsyncIncidentFlow``."""
        import subprocess
        import sys

        script = "import sys, incidentflow; print('incidentflow._async' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert out.stdout.strip() == "False", out.stderr


class TestConstructors:
    async def test_in_memory_is_awaited_or_entered(self) -> None:
        """``await AsyncIncidentFlow.in_memory()`` and ``async with`` both give a flow."""
        flow = await AsyncIncidentFlow.in_memory()
        inc = await flow.declare("DB down", severity="P1", commander="al", actor="al")
        assert (await flow.get(inc.id)).state is State.DECLARED
        await flow.close()
        async with AsyncIncidentFlow.in_memory() as entered:
            assert await entered.list() == []

    async def test_wrapping_a_sync_flow_shares_its_store(self) -> None:
        """``AsyncIncidentFlow(flow)`` sees and writes what the sync flow does."""
        sync = IncidentFlow.in_memory()
        inc = sync.declare("DB down", severity="P1", commander="al", actor="al")
        async with AsyncIncidentFlow(sync) as flow:
            assert flow.sync is sync
            await flow.start_triage(inc.id, actor="al")
        assert sync.get(inc.id).state is State.TRIAGING

    async def test_open_and_from_config_reach_sqlite(self, tmp_path: Path) -> None:
        """``open(url)`` and ``from_config(path)`` open the store in a thread."""
        url = f"sqlite:///{tmp_path / 'a.db'}"
        async with AsyncIncidentFlow.open(url, incidents_dir=None, knowledge_dir=None) as flow:
            await flow.declare("DB down", severity="P2", commander="al", actor="al")
        config = tmp_path / "incidentflow.toml"
        config.write_text(f'store = "{url}"\n', encoding="utf-8")
        async with AsyncIncidentFlow.from_config(config) as flow:
            assert [i.title for i in await flow.list()] == ["DB down"]

    @pytest.mark.parametrize("threads", [0, 257, "8", True])
    def test_a_bad_thread_count_is_a_config_error(self, threads: Any) -> None:
        """``threads`` is a whole number from 1 to 256."""
        with pytest.raises(ConfigError) as info:
            AsyncIncidentFlow(IncidentFlow.in_memory(), threads=threads)
        assert info.value.key == "threads"

    def test_wrapping_something_else_is_a_config_error(self) -> None:
        """Only an IncidentFlow can be wrapped."""
        with pytest.raises(ConfigError, match="expected an IncidentFlow"):
            AsyncIncidentFlow("sqlite:///x.db")  # type: ignore[arg-type]

    async def test_a_closed_flow_refuses_calls(self) -> None:
        """After close, a call raises StoreError instead of hanging; closing twice is fine."""
        flow = await AsyncIncidentFlow.in_memory()
        await flow.close()
        await flow.close()
        with pytest.raises(StoreError, match="closed"):
            await flow.list()


class TestErrors:
    async def test_errors_arrive_typed(self, aflow: AsyncIncidentFlow) -> None:
        """The sync flow's errors reach the awaiting task unchanged."""
        with pytest.raises(IncidentNotFound):
            await aflow.get("INC-2026-01-01-nothing")
        inc = await aflow.declare("x", severity="P1", commander="al", actor="al")
        await aflow.start_triage(inc.id, actor="al")
        with pytest.raises(TransitionRejected) as info:
            await aflow.contain(inc.id, actor="al")
        assert "evidence.missing" in {r.code for r in info.value.reasons}
        verdict = await aflow.can(inc.id, "contain")
        assert not verdict.allowed


async def every_command(flow: AsyncIncidentFlow, called: set[str]) -> Incident:
    """Drive one incident through every non-system command, awaiting each one."""
    clock = flow.sync.clock
    assert isinstance(clock, FrozenClock)

    async def run(name: str, *args: Any, **kwargs: Any) -> Incident:
        called.add(name)
        method: Callable[..., Awaitable[Incident]] = getattr(flow, name)
        return await method(*args, actor=kwargs.pop("actor", "bo"), **kwargs)

    inc = await run("declare", "Checkout returns 500", severity="P3", commander="al")
    i = inc.id
    await run("record_detection", i, method="alert")
    await run("reclassify", i, "P2", reason="more users")
    await run("assign_commander", i, "bo")
    await run("change_type", i, "performance", reason="slow, not down")
    await run("set_labels", i, {"service": "checkout"})
    await run("set_fields", i, {"customer": "acme"})
    await run("add_reference", i, "ticket", "OPS-1")
    await run("remove_reference", i, "ticket", "OPS-1")
    await run("assign_role", i, "scribe", "cy", note="taking notes")
    await run("release_role", i, "scribe")
    await run("post_update", i, "internal", "looking into it")
    clock.advance(timedelta(minutes=20))
    await run("start_triage", i)
    await run("add_evidence", i, source="logs", content="500s")
    for question in ("symptom", "started_at", "scope"):
        await run("answer_triage", i, question, "x")
    await run("record_containment", i, "rolled back")
    await run("contain", i)
    await run("start_rca", i)
    await run("add_why", i, "a leek")
    await run("amend", i, "why:1", "a leak", reason="typo")
    await run("add_why", i, "not a why")
    await run("retract", i, "why:2", reason="recorded by mistake")
    await run("set_root_cause", i, "leak", process_gap="no test")
    await run("record_fix", i, "close it", test="t", staging_verified=True)
    await run("record_deploy", i)
    await run("mark_fixed", i)
    await run("reopen", i, reason="errors again")
    await run("record_fix", i, "close it", test="t", staging_verified=True)
    await run("record_deploy", i)
    await run("mark_fixed", i)
    clock.advance(timedelta(minutes=20))
    await run("confirm_by_user", i, user="cy")
    await run("resolve", i)
    due = clock().date()
    await run("add_action_item", i, "add a test", owner="bo", due=due)
    await run("complete_action_item", i, 1)
    await run("add_action_item", i, "rewrite it", owner="bo", due=due)
    await run("reassign_action_item", i, 2, owner="cy")
    await run("redate_action_item", i, 2, due=due + timedelta(days=30))
    await run("link_action_item", i, 2, "OPS-2")
    await run("decline_action_item", i, 2, reason="not worth it")
    await run("draft_postmortem", i, summary="s")
    await run("complete_postmortem", i, root_cause="r", went_well=["w"], went_poorly=["p"])
    await run("update_kb", i, symptom="500s", early_signs="pool usage")
    await run("add_note", i, "closed")
    other = await run("declare", "False alarm", severity="P4", commander="al")
    await run("dismiss", other.id, reason="duplicate", duplicate_of=i)
    parent = await run("declare", "Payments down", severity="P2", commander="al")
    twin = await run("declare", "Payments failing", severity="P2", commander="al")
    await run("restrict", parent.id, ["group:security"])  # before its links: links pin it
    await run("unrestrict", parent.id)
    await run("link", parent.id, "related_to", i)
    await run("unlink", parent.id, "related_to", i)
    merged = await run("merge", twin.id, into=parent.id, reason="same outage")
    assert merged.state is State.DISMISSED
    return await flow.get(i)


class TestEveryCommand:
    async def test_every_command_runs_through_the_async_api(self, aflow: AsyncIncidentFlow) -> None:
        """Each non-system command is awaited once at least, and the history replays."""
        called: set[str] = set()
        inc = await every_command(aflow, called)
        assert inc.state is State.KB_UPDATED
        assert command_names() - called == set()
        assert await aflow.verify(inc.id)

    async def test_execute_says_whether_it_was_a_replay(self, aflow: AsyncIncidentFlow) -> None:
        """A keyed command run twice answers the second time with ``replayed``."""
        args = {"title": "DB down", "severity": "P1", "commander": "al", "actor": "al"}
        first = await aflow.execute("declare", idempotency_key="page-1", **args)
        again = await aflow.execute("declare", idempotency_key="page-1", **args)
        assert (first.replayed, again.replayed) == (False, True)
        assert again.incident == first.incident
        note = await aflow.execute("add_note", first.incident.id, text="hi", actor="al")
        assert note.incident.version == 2


class TestReads:
    async def test_every_read_answers_like_the_sync_flow(self, aflow: AsyncIncidentFlow) -> None:
        """Listings, searches, metrics, deadlines and files come back awaited."""
        inc = await aflow.declare(
            "Checkout pool exhausted",
            severity="P2",
            commander="al",
            references={"alert": "fp-1"},
            actor="al",
        )
        sync = aflow.sync
        assert await aflow.list(open_only=True) == sync.list(open_only=True)
        assert [s.id for s in await aflow.summaries()] == [inc.id]
        assert (await aflow.find("alert", "fp-1")) == inc
        assert await aflow.similar(text="pool exhausted") == sync.similar(text="pool exhausted")
        assert list(await aflow.milestones()) == list(sync.milestones())
        assert await aflow.metrics() == sync.metrics()
        assert await aflow.deadlines(inc.id) == sync.deadlines(inc.id)
        assert [e.seq for e in await aflow.history(inc.id)] == [1]
        assert await aflow.render(inc.id) == []  # no folders: nothing written
        assert await aflow.check_deadlines() == []
        assert await aflow.dead_letters() == []
        assert await aflow.redrive() == 0
        assert (await aflow.deliver_pending()).delivered == 0

    async def test_render_writes_files_off_the_loop(self, tmp_path: Path) -> None:
        """With folders, render writes the incident file and returns its path."""
        async with AsyncIncidentFlow.in_memory(incidents_dir=tmp_path) as flow:
            inc = await flow.declare("DB down", severity="P1", commander="al", actor="al")
            (path,) = await flow.render(inc.id)
            assert path == flow.incident_path(inc.id)
            assert path.read_text(encoding="utf-8").startswith("# Incident: DB down")

    async def test_plain_helpers_need_no_await(self) -> None:
        """The clock, guards and delivery settings are plain attributes of the sync flow."""
        async with AsyncIncidentFlow.in_memory(clock=FrozenClock(START)) as flow:
            assert flow.now() == START
            flow.add_guard("start_triage", lambda incident, request: request.actor != "intern")
            inc = await flow.declare("x", severity="P4", commander="al", actor="al")
            assert not (await flow.can(inc.id, "start_triage", actor="intern")).allowed
            flow.deliver_inline = False
            assert flow.sync.deliver_inline is False
            assert (flow.notifiers, flow.retry, flow.delivery_lease) == (
                flow.sync.notifiers,
                flow.sync.retry,
                flow.sync.delivery_lease,
            )
            assert flow.router is flow.sync.router


class TestTheLoopKeepsRunning:
    async def test_a_held_command_does_not_block_other_coroutines(self) -> None:
        """While a store write waits, the loop keeps serving reads of other coroutines."""
        from incidentflow.stores.memory import MemoryStore

        entered, release = threading.Event(), threading.Event()

        class SlowStore(MemoryStore):
            def append(self, commit: Any) -> None:
                if commit.expected_version == 1:
                    entered.set()
                    release.wait(10)
                super().append(commit)

        async with AsyncIncidentFlow(IncidentFlow(SlowStore())) as flow:
            inc = await flow.declare("x", severity="P4", commander="al", actor="al")
            held = asyncio.ensure_future(flow.add_note(inc.id, "slow", actor="al"))
            await asyncio.to_thread(entered.wait, 10)
            # The loop is free: another coroutine reads while the write is held.
            assert (await flow.get(inc.id)).version == 1
            assert not held.done()
            release.set()
            assert (await held).version == 2


class TestIngest:
    async def test_alerts_are_ingested_off_the_loop(self, aflow: AsyncIncidentFlow) -> None:
        """An Alertmanager payload declares once; the same payload again changes nothing."""
        payload = {
            "version": "4",
            "groupKey": "{}:{alertname='DiskFull'}",
            "status": "firing",
            "receiver": "incidentflow",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "DiskFull", "severity": "critical"},
                    "annotations": {},
                    "startsAt": "2026-11-27T13:58:00Z",
                    "fingerprint": "1c9e",
                }
            ],
        }
        first = await aflow.ingest(payload, source="alertmanager")
        again = await aflow.ingest(payload, source="alertmanager")
        assert len(first.incident_ids) == 1
        assert again.incident_ids == first.incident_ids
        assert len(await aflow.list()) == 1
        assert aflow.alert_rules is aflow.sync.alert_rules
