"""Drivers that take an incident to any state of the lifecycle, so tests stay short.

>>> from incidentflow import IncidentFlow
>>> from incidentflow.testing import FrozenClock
>>> clock = FrozenClock(START)
>>> flow = IncidentFlow.in_memory(clock=clock)
>>> drive_to(flow, clock, "rca").state.value
'rca'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from incidentflow import Incident, IncidentFlow, State, TransitionRejected
from incidentflow.testing import FrozenClock

__all__ = [
    "COMMANDER",
    "DEFAULT_TEXTS",
    "HAPPY_PATH",
    "RESPONDER",
    "START",
    "STEP",
    "STORE_KINDS",
    "TITLE",
    "USER",
    "advance_to",
    "codes",
    "declare",
    "drive_to",
    "markdown_headings",
    "markdown_outside_fences",
    "markdown_tables",
    "refusal",
    "store_flow",
    "unchanged",
]

#: When the frozen clock starts: a Friday afternoon, aware UTC.
START = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
#: How far the clock moves between two stages of the drivers.
STEP = timedelta(minutes=1)
TITLE = "Checkout returns 500"
COMMANDER = "alice"
RESPONDER = "bob"
#: The user who confirms the fix: not the commander.
USER = "carol"

#: The states of the happy path, in order.
HAPPY_PATH = (
    State.DECLARED,
    State.TRIAGING,
    State.CONTAINED,
    State.RCA,
    State.FIXED,
    State.RESOLVED,
    State.POSTMORTEM,
    State.KB_UPDATED,
)

#: Every text the drivers write; pass ``texts={...}`` to override some.
DEFAULT_TEXTS: Mapping[str, str] = {
    "title": TITLE,
    "commander": COMMANDER,
    "responder": RESPONDER,
    "user": USER,
    "evidence_source": "journalctl",
    "evidence_content": "checkout[812]: POST /orders -> 500 (pool exhausted)",
    "symptom": "every checkout returns 500",
    "started_at": "14:02 UTC after release 41",
    "scope": "all customers, web and mobile",
    "containment": "rolled back to release 40",
    "why": "the connection pool was exhausted",
    "root_cause": "release 41 opened a connection per request",
    "process_gap": "no load test ran against the release candidate",
    "fix": "reuse pooled connections in the order service",
    "fix_test": "test_orders_reuse_pooled_connections",
    "deploy_ref": "v42",
    "confirmation_comment": "checkout works again",
    "action_item": "add a load test stage to the release pipeline",
    "action_owner": "dana",
    "summary": "Checkout failed for 40 minutes after release 41.",
    "pm_root_cause": "a connection leak shipped without a load test",
    "went_well": "the rollback took two minutes",
    "went_poorly": "the first alert fired 10 minutes late",
    "kb_symptom": "checkout 500s with pool exhausted in the logs",
    "kb_early_signs": "pool usage above 80 percent on the dashboard",
}


def _texts(overrides: Mapping[str, str] | None) -> dict[str, str]:
    texts = dict(DEFAULT_TEXTS)
    if overrides:
        unknown = set(overrides) - set(texts)
        if unknown:
            raise KeyError(f"unknown text keys: {sorted(unknown)}")
        texts.update(overrides)
    return texts


def declare(
    flow: IncidentFlow,
    *,
    severity: str = "P1",
    texts: Mapping[str, str] | None = None,
    **kwargs: object,
) -> Incident:
    """Declare the standard incident (commander and actor: the commander)."""
    t = _texts(texts)
    return flow.declare(
        t["title"], severity=severity, commander=t["commander"], actor=t["commander"], **kwargs
    )


def _to_triaging(flow: IncidentFlow, clock: FrozenClock, inc: Incident, t: dict[str, str]) -> None:
    flow.start_triage(inc.id, actor=inc.commander)


def _to_contained(flow: IncidentFlow, clock: FrozenClock, inc: Incident, t: dict[str, str]) -> None:
    if not inc.evidence:
        flow.add_evidence(
            inc.id, source=t["evidence_source"], content=t["evidence_content"], actor=t["responder"]
        )
    for question in flow.policy.required_triage_answers:
        if question not in inc.triage:
            flow.answer_triage(
                inc.id, question, t.get(question, t["symptom"]), actor=t["responder"]
            )
    if not inc.containment:
        flow.record_containment(inc.id, t["containment"], actor=t["responder"])
    flow.contain(inc.id, actor=inc.commander)


def _to_rca(flow: IncidentFlow, clock: FrozenClock, inc: Incident, t: dict[str, str]) -> None:
    flow.start_rca(inc.id, actor=inc.commander)


def _to_fixed(flow: IncidentFlow, clock: FrozenClock, inc: Incident, t: dict[str, str]) -> None:
    if not inc.whys:
        flow.add_why(inc.id, t["why"], actor=t["responder"])
    if inc.root_cause is None:
        flow.set_root_cause(
            inc.id, t["root_cause"], process_gap=t["process_gap"], actor=t["responder"]
        )
    if inc.fix is None or not inc.fix.staging_verified:
        flow.record_fix(
            inc.id, t["fix"], test=t["fix_test"], staging_verified=True, actor=t["responder"]
        )
    if not inc.deploys:
        flow.record_deploy(inc.id, ref=t["deploy_ref"], actor=t["responder"])
    flow.mark_fixed(inc.id, actor=inc.commander)


def _to_resolved(flow: IncidentFlow, clock: FrozenClock, inc: Incident, t: dict[str, str]) -> None:
    clock.advance(flow.policy.watch_window)
    flow.confirm_by_user(
        inc.id, user=t["user"], comment=t["confirmation_comment"], actor=inc.commander
    )
    flow.resolve(inc.id, actor=inc.commander)


def _add_action_item(flow: IncidentFlow, inc: Incident, t: dict[str, str]) -> None:
    if not inc.action_items:
        due = flow.now().date() + timedelta(days=14)
        flow.add_action_item(
            inc.id, t["action_item"], owner=t["action_owner"], due=due, actor=inc.commander
        )


def _to_postmortem(
    flow: IncidentFlow, clock: FrozenClock, inc: Incident, t: dict[str, str]
) -> None:
    _add_action_item(flow, inc, t)
    flow.complete_postmortem(
        inc.id,
        summary=t["summary"],
        root_cause=t["pm_root_cause"],
        went_well=[t["went_well"]],
        went_poorly=[t["went_poorly"]],
        actor=inc.commander,
    )


def _to_kb_updated(
    flow: IncidentFlow, clock: FrozenClock, inc: Incident, t: dict[str, str]
) -> None:
    _add_action_item(flow, inc, t)
    flow.update_kb(
        inc.id, symptom=t["kb_symptom"], early_signs=t["kb_early_signs"], actor=inc.commander
    )


_STAGES = {
    State.TRIAGING: _to_triaging,
    State.CONTAINED: _to_contained,
    State.RCA: _to_rca,
    State.FIXED: _to_fixed,
    State.RESOLVED: _to_resolved,
    State.POSTMORTEM: _to_postmortem,
    State.KB_UPDATED: _to_kb_updated,
}


def advance_to(
    flow: IncidentFlow,
    clock: FrozenClock,
    incident_id: str,
    state: State | str,
    *,
    via_postmortem: bool | None = None,
    texts: Mapping[str, str] | None = None,
) -> Incident:
    """Take an existing incident forward along the happy path to ``state``.

    Each stage first moves the clock by :data:`STEP`. ``via_postmortem=None``
    goes through the post-mortem on the way to kb_updated only when the
    incident needs one.
    """
    target = State(state)
    t = _texts(texts)
    inc = flow.get(incident_id)
    if target is State.DISMISSED:
        clock.advance(STEP)
        return flow.dismiss(incident_id, reason="false alarm: a synthetic check", actor=COMMANDER)
    if target not in HAPPY_PATH or HAPPY_PATH.index(target) < HAPPY_PATH.index(inc.state):
        raise ValueError(f"cannot drive {incident_id} from {inc.state.value} to {target.value}")
    while inc.state is not target:
        following = HAPPY_PATH[HAPPY_PATH.index(inc.state) + 1]
        if following is State.POSTMORTEM and target is State.KB_UPDATED:
            wanted = inc.postmortem_required if via_postmortem is None else via_postmortem
            if not wanted:
                following = State.KB_UPDATED
        clock.advance(STEP)
        _STAGES[following](flow, clock, inc, t)
        inc = flow.get(incident_id)
    return inc


def drive_to(
    flow: IncidentFlow,
    clock: FrozenClock,
    state: State | str,
    severity: str = "P1",
    *,
    via_postmortem: bool | None = None,
    texts: Mapping[str, str] | None = None,
) -> Incident:
    """Declare the standard incident and drive it to ``state`` (any of the nine).

    Returns the snapshot in ``state``. Every step succeeds on the default
    policy; ``texts`` overrides what is written (see :data:`DEFAULT_TEXTS`).
    """
    inc = declare(flow, severity=severity, texts=texts)
    if State(state) is State.DECLARED:
        return inc
    return advance_to(flow, clock, inc.id, state, via_postmortem=via_postmortem, texts=texts)


@contextmanager
def unchanged(flow: IncidentFlow, incident_id: str | None = None) -> Iterator[None]:
    """Assert that the block leaves the incident (or, without an id, the store) as it was."""
    if incident_id is None:
        before_list = list(flow.list())
        yield
        assert list(flow.list()) == before_list
        return
    before = flow.get(incident_id)
    before_history = list(flow.history(incident_id))
    yield
    assert flow.get(incident_id) == before
    assert list(flow.history(incident_id)) == before_history


# -- reading Markdown the way a renderer would ---------------------------------

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_CONTAINER = re.compile(r"^ {0,3}(?:>\s?|[-+*]\s+|\d{1,9}[.)]\s+)")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+|$)(.*)$")
_SETEXT = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")


def _outside_fences(lines: Sequence[str]) -> list[str | None]:
    """The lines, with those inside fenced code blocks replaced by None."""
    out: list[str | None] = []
    fence: str | None = None
    for line in lines:
        match = _FENCE.match(line)
        if fence is None:
            if match and not (match.group(1)[0] == "`" and "`" in match.group(2)):
                fence = match.group(1)
                out.append(None)
                continue
            out.append(line)
        else:
            if (
                match
                and match.group(1)[0] == fence[0]
                and len(match.group(1)) >= len(fence)
                and not match.group(2).strip()
            ):
                fence = None
            out.append(None)
    return out


def markdown_outside_fences(text: str) -> str:
    """The text with every fenced code block removed (the fences included)."""
    return "\n".join(line for line in _outside_fences(text.split("\n")) if line is not None)


def markdown_headings(text: str) -> list[str]:
    """Every heading a CommonMark renderer would make, as ``"## Title"`` strings.

    Headings nested in list items or block quotes count too; fenced code does not.
    """
    lines = _outside_fences(text.split("\n"))
    headings: list[str] = []
    previous: str | None = None
    for line in lines:
        if line is None:
            previous = None
            continue
        content = line
        while (container := _CONTAINER.match(content)) is not None:
            content = content[container.end() :]
        if (atx := _ATX.match(content)) is not None:
            headings.append(f"{atx.group(1)} {atx.group(2).strip()}")
        elif (
            _SETEXT.match(line)
            and previous is not None
            and previous.strip()
            and not previous.lstrip().startswith(("|", "#", "-", "*", "+", ">"))
        ):
            level = "#" if line.strip()[0] == "=" else "##"
            headings.append(f"{level} {previous.strip()}")
        previous = line
    return headings


def _cells(row: str) -> list[str]:
    """Split a table row on its unescaped pipes (GFM rules, no code spans)."""
    cells: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in row.strip():
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == "|":
            cells.append("".join(current))
            current = []
        else:
            current.append(ch)
    cells.append("".join(current))
    if cells and not cells[0].strip():
        cells = cells[1:]
    if cells and not cells[-1].strip():
        cells = cells[:-1]
    return [c.strip() for c in cells]


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every pipe table outside code fences, as rows of cells (header row first)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in _outside_fences(text.split("\n")):
        if line is not None and line.lstrip().startswith("|"):
            if current is None:
                current = []
                tables.append(current)
            current.append(_cells(line))
        else:
            current = None
    return tables


# -- one flow per kind of store, for the example tests of the commands ----------

#: The stores the command tests run on: each the real engine, PostgreSQL when configured.
STORE_KINDS = ("memory", "sqlite", "jsonl", "postgres")


@contextmanager
def store_flow(
    kind: str, location: Path, clock: FrozenClock, **kwargs: Any
) -> Iterator[IncidentFlow]:
    """A flow on a fresh store of ``kind`` under ``location`` (a test's tmp_path), closed after.

    PostgreSQL runs in a throwaway schema, dropped afterwards; without a server
    the test skips, or fails under CI (``tests/pg.py`` says how to enable it).
    """
    from incidentflow.stores import JsonlStore, SQLiteStore, Store

    schema = ""
    store: Store
    if kind == "memory":
        flow = IncidentFlow.in_memory(clock=clock, **kwargs)
        store = flow.store  # type: ignore[assignment]
    elif kind == "sqlite":
        store = SQLiteStore(location / "incidents.db")
    elif kind == "jsonl":
        store = JsonlStore(location / "store")
    elif kind == "postgres":
        from incidentflow.stores.postgres import PostgresStore
        from pg import postgres_dsn

        dsn = postgres_dsn()
        schema = "test_cmd_" + hashlib.sha256(str(location).encode()).hexdigest()[:20]
        store = PostgresStore(dsn, schema=schema)
    else:
        raise ValueError(kind)
    if kind != "memory":
        flow = IncidentFlow(store, clock=clock, **kwargs)
    try:
        yield flow
    finally:
        flow.close()
        if schema:
            import psycopg

            from pg import postgres_dsn

            with psycopg.connect(postgres_dsn(), autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def refusal(flow: IncidentFlow, incident_id: str, call: Callable[[], object]) -> TransitionRejected:
    """Run ``call`` expecting TransitionRejected that leaves the incident as it was.

    Returns the exception; ``codes(refusal(...))`` gives its reason codes.
    """
    with unchanged(flow, incident_id), pytest.raises(TransitionRejected) as info:
        call()
    assert info.value.incident_id == incident_id
    return info.value


def codes(rejection: TransitionRejected) -> set[str]:
    """The reason codes of a rejection."""
    return {reason.code for reason in rejection.reasons}


def every_event_type(flow: IncidentFlow, clock: FrozenClock) -> Incident:
    """One incident whose history holds every event type but ``dismissed``."""
    step = timedelta(minutes=20)
    inc = flow.declare("Checkout returns 500", severity="P3", commander="al", actor="al")
    i = inc.id
    flow.record_detection(i, method="alert", actor="al")
    flow.reclassify(i, "P2", reason="more users", actor="al")
    flow.assign_commander(i, "bo", actor="al")
    flow.change_type(i, "performance", reason="slow, not down", actor="al")
    flow.set_labels(i, {"service": "checkout", "team": "web"}, actor="al")
    flow.set_labels(i, remove=["team"], actor="al")
    flow.set_fields(i, {"customer": "acme"}, actor="al")
    flow.add_reference(i, "ticket", "OPS-1", actor="al")
    flow.remove_reference(i, "ticket", "OPS-1", actor="al")
    flow.assign_role(i, "scribe", "cy", note="taking notes", actor="al")
    flow.release_role(i, "scribe", actor="al")
    flow.post_update(i, "internal", "looking into it", actor="al")
    clock.advance(step)
    flow.start_triage(i, actor="bo")
    flow.add_evidence(i, source="logs", content="500s", actor="bo")
    for question in ("symptom", "started_at", "scope"):
        flow.answer_triage(i, question, "x", actor="bo")
    flow.record_containment(i, "rolled back", actor="bo")
    flow.contain(i, actor="bo")
    flow.start_rca(i, actor="bo")
    flow.add_why(i, "a leek", actor="bo")
    flow.amend(i, "why:1", "a leak", reason="typo", actor="bo")
    flow.add_why(i, "not a why", actor="bo")
    flow.retract(i, "why:2", reason="recorded by mistake", actor="bo")
    flow.set_root_cause(i, "leak", process_gap="no test", actor="bo")
    flow.record_fix(i, "close it", test="t", staging_verified=True, actor="bo")
    flow.record_deploy(i, actor="bo")
    flow.mark_fixed(i, actor="bo")
    flow.confirm_by_user(i, user="cy", positive=False, actor="bo")  # back to rca
    flow.record_fix(i, "close it", test="t", staging_verified=True, actor="bo")
    flow.record_deploy(i, actor="bo")
    flow.mark_fixed(i, actor="bo")
    clock.advance(step)
    flow.confirm_by_user(i, user="cy", actor="bo")
    flow.resolve(i, actor="bo")
    flow.add_action_item(i, "add a test", owner="bo", due=clock().date(), actor="bo")
    flow.complete_action_item(i, 1, actor="bo")
    flow.add_action_item(i, "rewrite it", owner="bo", due=clock().date(), actor="bo")
    flow.reassign_action_item(i, 2, owner="cy", actor="bo")
    flow.redate_action_item(i, 2, due=clock().date() + timedelta(days=30), actor="bo")
    flow.link_action_item(i, 2, "OPS-2", actor="bo")
    flow.decline_action_item(i, 2, reason="not worth it", actor="bo")
    flow.draft_postmortem(i, summary="s", actor="bo")
    flow.complete_postmortem(i, root_cause="r", went_well=["w"], went_poorly=["p"], actor="bo")
    flow.add_action_item(i, "alert earlier", owner="bo", due=clock().date(), actor="bo")
    clock.advance(timedelta(days=2))
    assert flow.check_deadlines()  # the second item is overdue
    flow.update_kb(i, symptom="500s", early_signs="pool usage", actor="bo")
    return flow.add_note(i, "closed", actor="bo")


# -- metrics: incidents at many states and times, with jittered clocks -------------------

#: When the metrics tests' incidents start (before the offsets they draw).
METRICS_START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class JitterClock(FrozenClock):
    """A frozen clock whose every step also moves by the next of some given microseconds."""

    def __init__(self, start: datetime, jitters: list[int]) -> None:
        super().__init__(start)
        self._jitters = iter(jitters * 50)

    def advance(self, delta: timedelta | None = None, **units: float) -> datetime:
        step = delta if delta is not None else timedelta(**units)
        return super().advance(step + timedelta(microseconds=next(self._jitters, 0)))


def fill_incidents(
    flow: IncidentFlow, clock: FrozenClock, incidents: list[tuple[str, str, int]]
) -> None:
    """Drive each (state, severity, microseconds after METRICS_START) incident to its state."""
    for state, severity, offset in incidents:
        clock.set(METRICS_START + timedelta(microseconds=offset))
        drive_to(flow, clock, state, severity)


def milestone_incidents(max_size: int) -> Any:
    """A Hypothesis strategy: up to ``max_size`` (state, severity, offset) incidents."""
    from hypothesis import strategies as st

    return st.lists(
        st.tuples(
            st.sampled_from([s.value for s in State]),
            st.sampled_from(["P1", "P2", "P3", "P4"]),
            st.integers(0, 10**12),
        ),
        max_size=max_size,
    )


def jitter_lists() -> Any:
    """A Hypothesis strategy: the microseconds a JitterClock adds to its steps."""
    from hypothesis import strategies as st

    return st.lists(st.integers(0, 3_600_000_000), min_size=1, max_size=12)
