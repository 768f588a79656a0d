"""Every store gives the same histories for the same random command sequences.

Hypothesis draws a sequence of commands with generated input (valid and not)
and runs it, step by step, against a flow on each store. Every step must have
the same outcome on every store (the same new version, or the same error), and
at the end every incident's history, event by event, and its snapshot are the
same everywhere, and replaying each history gives the stored snapshot.
PostgreSQL joins the comparison when the test server is configured (and must
be, under CI).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import store_workers
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from helpers import advance_to
from incidentflow import IncidentFlow, IncidentFlowError
from incidentflow._serialization import event_to_dict
from incidentflow.stores import MemoryStore
from incidentflow.testing import FrozenClock

START = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
PEOPLE = ["alice", "bob", "dana"]

texts = st.one_of(
    st.sampled_from(["pool exhausted", "rolled back", "Zoë’s note 🔥", "", "   "]),
    st.text(max_size=12),
)
people = st.sampled_from(PEOPLE)

# Each command: a facade method and a strategy for its keyword arguments.
COMMANDS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "start_triage": st.fixed_dictionaries({}),
    "add_evidence": st.fixed_dictionaries({"source": texts, "content": texts}),
    "answer_triage": st.fixed_dictionaries(
        {"question": st.sampled_from(["symptom", "started_at", "scope"]), "answer": texts}
    ),
    "record_containment": st.fixed_dictionaries({"description": texts}),
    "contain": st.fixed_dictionaries({}),
    "start_rca": st.fixed_dictionaries({}),
    "add_why": st.fixed_dictionaries({"answer": texts}),
    "set_root_cause": st.fixed_dictionaries({"statement": texts, "process_gap": texts}),
    "record_fix": st.fixed_dictionaries(
        {"description": texts, "test": texts, "staging_verified": st.booleans()}
    ),
    "record_deploy": st.fixed_dictionaries({"ref": texts}),
    "mark_fixed": st.fixed_dictionaries({}),
    "confirm_by_user": st.fixed_dictionaries({"user": people, "positive": st.booleans()}),
    "resolve": st.fixed_dictionaries({}),
    "add_action_item": st.fixed_dictionaries(
        {"description": texts, "owner": people, "due": st.just(START.date() + timedelta(days=7))}
    ),
    "complete_postmortem": st.fixed_dictionaries(
        {
            "summary": texts,
            "root_cause": texts,
            "went_well": st.lists(texts, max_size=2),
            "went_poorly": st.lists(texts, max_size=2),
        }
    ),
    "update_kb": st.fixed_dictionaries({"symptom": texts, "early_signs": texts}),
    "reopen": st.fixed_dictionaries(
        {"reason": texts, "to": st.sampled_from(["rca", "triaging", "nowhere"])}
    ),
    "dismiss": st.fixed_dictionaries({"reason": texts}),
    "reclassify": st.fixed_dictionaries(
        {"severity": st.sampled_from(["P1", "P2", "P3", "P4", "P5"]), "reason": texts}
    ),
    "add_note": st.fixed_dictionaries({"text": texts}),
}

HAPPY = ["triaging", "contained", "rca", "fixed", "resolved", "postmortem", "kb_updated"]

steps = st.one_of(
    st.tuples(st.just("declare"), texts, st.sampled_from(["P1", "P2", "P3", "P4", "P9"])),
    # Valid steps along the main path, so sequences reach deep states too.
    st.tuples(st.just("drive"), st.integers(0, 3), st.sampled_from(HAPPY)),
    st.tuples(st.just("advance"), st.integers(min_value=0, max_value=20)),
    st.sampled_from(sorted(COMMANDS)).flatmap(
        lambda name: st.tuples(
            st.just("command"), st.integers(0, 3), st.just(name), COMMANDS[name], people
        )
    ),
)


def store_kinds() -> list[str]:
    kinds = ["memory", "sqlite", "jsonl"]
    # Under CI PostgreSQL must take part: open_kind fails there when it is missing.
    if os.environ.get(store_workers.POSTGRES_VARIABLE) or os.environ.get("CI") == "true":
        kinds.append("postgres")
    return kinds


@contextmanager
def flows() -> Iterator[dict[str, IncidentFlow]]:
    """A flow on a fresh store of every kind, each on its own clock at START."""
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        made: dict[str, IncidentFlow] = {}
        for kind in store_kinds():
            location = Path(folder) / kind
            location.mkdir()
            store = MemoryStore() if kind == "memory" else store_workers.open_kind(kind, location)
            made[kind] = stack.enter_context(IncidentFlow(store, clock=FrozenClock(START)))
        try:
            yield made
        finally:
            store_workers.drop_postgres_schemas()


def clock(flow: IncidentFlow) -> FrozenClock:
    assert isinstance(flow.clock, FrozenClock)
    return flow.clock


def outcome(action: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, object]:
    """What one step did: the new version, or the error's type."""
    try:
        result = action(*args, **kwargs)
    except (IncidentFlowError, ValueError) as error:  # ValueError: drive_to going backwards
        return ("refused", type(error).__name__)
    return ("done", getattr(result, "version", None))


class TestSameHistories:
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(steps, min_size=1, max_size=30))
    def test_every_store_gives_the_same_history(self, plan: list[tuple[Any, ...]]) -> None:
        """The same commands give the same outcomes, histories and snapshots on every store."""
        plan = [("declare", "Checkout returns 500", "P1"), *plan]
        with flows() as by_kind:
            ids: list[str] = []
            for step in plan:
                if step[0] == "advance":
                    for flow in by_kind.values():
                        clock(flow).advance(minutes=step[1])
                    continue
                outcomes: dict[str, tuple[str, object]] = {}
                for kind, flow in by_kind.items():
                    if step[0] == "declare":
                        _, title, severity = step
                        outcomes[kind] = outcome(
                            flow.declare, title, severity=severity, commander="alice", actor="alice"
                        )
                    elif step[0] == "drive":
                        _, index, target = step
                        if not ids:
                            continue
                        incident_id = ids[index % len(ids)]
                        outcomes[kind] = outcome(advance_to, flow, clock(flow), incident_id, target)
                    else:
                        _, index, name, kwargs, actor = step
                        if not ids:
                            continue
                        incident_id = ids[index % len(ids)]
                        outcomes[kind] = outcome(
                            getattr(flow, name), incident_id, actor=actor, **kwargs
                        )
                assert len(set(outcomes.values())) <= 1, f"{step}: {outcomes}"
                if step[0] == "declare" and outcomes and next(iter(outcomes.values()))[0] == "done":
                    ids = [i.id for i in by_kind["memory"].list(newest_first=False)]
            reference = by_kind["memory"]
            states = sorted({reference.get(i).state.value for i in ids})
            event(f"states reached: {', '.join(states)}")
            for incident_id in ids:
                expected = [event_to_dict(e) for e in reference.history(incident_id)]
                for kind, flow in by_kind.items():
                    assert [event_to_dict(e) for e in flow.history(incident_id)] == expected, kind
                    assert flow.get(incident_id) == reference.get(incident_id), kind
                    assert flow.verify(incident_id), kind
