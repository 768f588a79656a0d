"""The fused command path (``incidentflow._flow_fast``) gives what the general pipeline gives.

Two flows run the same random commands on the same clock: one as shipped, one
whose ``_run`` always takes the general path (``_perform``). After every
command both return equal snapshots or raise the same error, and at the end
their histories are equal and replay to the stored snapshots.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incidentflow import IncidentFlow, Policy, Severity, State
from incidentflow._decide import replay
from incidentflow._model import Incident
from incidentflow._policy import ProcessOverride
from incidentflow.commands import DEFINITIONS, NOW, Command
from incidentflow.exceptions import IncidentFlowError
from incidentflow.stores.memory import MemoryStore
from incidentflow.testing import FrozenClock

START = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
DUE = date(2026, 12, 11)


texts = st.sampled_from(["pool leak", "  padded  ", "line one\nline two", "", "\x00bad", "ok"])
people = st.sampled_from(["alice", "Bob", "dana", " erin ", ""])
questions = st.sampled_from(["symptom", "started_at", "scope", "nope"])

#: (method, its arguments) for the commands the fused path runs, valid or not in any state.
commands = st.one_of(
    st.tuples(st.just("start_triage"), st.fixed_dictionaries({})),
    st.tuples(st.just("add_evidence"), st.fixed_dictionaries({"source": people, "content": texts})),
    st.tuples(
        st.just("answer_triage"), st.fixed_dictionaries({"question": questions, "answer": texts})
    ),
    st.tuples(st.just("record_containment"), st.fixed_dictionaries({"description": texts})),
    st.tuples(st.just("contain"), st.fixed_dictionaries({})),
    st.tuples(st.just("start_rca"), st.fixed_dictionaries({})),
    st.tuples(st.just("add_why"), st.fixed_dictionaries({"answer": texts})),
    st.tuples(
        st.just("set_root_cause"), st.fixed_dictionaries({"statement": texts, "process_gap": texts})
    ),
    st.tuples(
        st.just("record_fix"),
        st.fixed_dictionaries(
            {"description": texts, "test": texts, "staging_verified": st.booleans()}
        ),
    ),
    st.tuples(st.just("record_deploy"), st.fixed_dictionaries({"ref": st.just("v1.4.3")})),
    st.tuples(st.just("mark_fixed"), st.fixed_dictionaries({})),
    st.tuples(
        st.just("confirm_by_user"),
        st.fixed_dictionaries({"user": people, "positive": st.booleans()}),
    ),
    st.tuples(st.just("resolve"), st.fixed_dictionaries({})),
    st.tuples(
        st.just("add_action_item"),
        st.fixed_dictionaries({"description": texts, "owner": people, "due": st.just(DUE)}),
    ),
    st.tuples(
        st.just("complete_postmortem"),
        st.fixed_dictionaries(
            {},
            optional={
                "summary": texts,
                "root_cause": texts,
                "went_well": st.lists(texts, max_size=2),
                "went_poorly": st.lists(texts, max_size=2),
            },
        ),
    ),
    st.tuples(st.just("draft_postmortem"), st.fixed_dictionaries({"summary": texts})),
    st.tuples(
        st.just("update_kb"), st.fixed_dictionaries({"symptom": texts, "early_signs": texts})
    ),
    st.tuples(
        st.just("reopen"),
        st.fixed_dictionaries({"reason": texts, "to": st.sampled_from(["rca", "triaging"])}),
    ),
    st.tuples(st.just("add_note"), st.fixed_dictionaries({"text": texts})),
    st.tuples(st.just("dismiss"), st.fixed_dictionaries({"reason": texts})),
    st.tuples(
        st.just("reclassify"), st.fixed_dictionaries({"severity": st.just("P2"), "reason": texts})
    ),
    st.tuples(
        st.just("assign_role"), st.fixed_dictionaries({"role": st.just("scribe"), "person": people})
    ),
    st.tuples(
        st.just("set_labels"), st.fixed_dictionaries({"labels": st.just({"service": "pay"})})
    ),
    st.tuples(
        st.just("add_reference"),
        st.fixed_dictionaries({"kind": st.just("alert"), "value": st.just("fp-1")}),
    ),
    st.tuples(st.just("restrict"), st.fixed_dictionaries({"to": st.just(["alice"])})),
)
#: The options: the usual actor (the fused path), a bad actor, or a key (the general path).
options = st.one_of(
    st.fixed_dictionaries({"actor": people}),
    st.fixed_dictionaries({"actor": st.just("alice"), "idempotency_key": st.just("k-1")}),
    st.fixed_dictionaries({"actor": st.just("alice"), "expected_version": st.integers(1, 30)}),
)
steps = st.lists(st.tuples(commands, options, st.integers(0, 20)), max_size=30)

#: The benchmark's lifecycle; a random run starts after some of it, to reach the later states.
SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("start_triage", {}),
    ("add_evidence", {"source": "journalctl", "content": "error line"}),
    ("answer_triage", {"question": "symptom", "answer": "HTTP 500"}),
    ("answer_triage", {"question": "started_at", "answer": "13:55 UTC"}),
    ("answer_triage", {"question": "scope", "answer": "all users"}),
    ("record_containment", {"description": "rolled back"}),
    ("contain", {}),
    ("start_rca", {}),
    *[("add_why", {"answer": f"because {n}"}) for n in range(5)],
    ("set_root_cause", {"statement": "pool leak", "process_gap": "no leak test"}),
    ("record_fix", {"description": "release", "test": "test_release", "staging_verified": True}),
    ("record_deploy", {"ref": "v1.4.3"}),
    ("mark_fixed", {}),
    ("confirm_by_user", {"user": "dana"}),
    ("resolve", {}),
    ("add_action_item", {"description": "add a test", "owner": "bob", "due": DUE}),
    (
        "complete_postmortem",
        {"summary": "s", "root_cause": "r", "went_well": ["w"], "went_poorly": ["p"]},
    ),
    ("update_kb", {"symptom": "500s", "early_signs": "pool > 80%"}),
]


class FusedFlow(IncidentFlow):
    """A flow as shipped, counting the commands that fell back to the general pipeline."""

    general = 0

    def _perform(self, *args: Any, **kwargs: Any) -> tuple[Incident, bool]:
        self.general += 1
        return super()._perform(*args, **kwargs)


class GeneralFlow(IncidentFlow):
    """A flow whose commands all take the general pipeline."""

    def _run(
        self, command: Command[Any], incident_id: str, options: Any, args: dict[str, Any]
    ) -> Incident:
        return self._perform(command, incident_id, options, args)[0]


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except IncidentFlowError as exc:
        return type(exc).__name__, str(exc)


def _flows(policy: Policy) -> tuple[FusedFlow, FrozenClock, GeneralFlow, FrozenClock]:
    fast_clock, general_clock = FrozenClock(START), FrozenClock(START)
    fast = FusedFlow(MemoryStore(), clock=fast_clock, policy=policy)
    general = GeneralFlow(MemoryStore(), clock=general_clock, policy=policy)
    return fast, fast_clock, general, general_clock


def _both(fast: IncidentFlow, general: IncidentFlow, name: str, iid: str, **args: Any) -> None:
    """Run one command on both flows; both must answer alike."""
    got = _outcome(lambda: getattr(fast, name)(iid, **args))
    want = _outcome(lambda: getattr(general, name)(iid, **args))
    assert got == want, (name, args)


class TestFusedPath:
    @given(st.integers(0, len(SCRIPT)), steps)
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def test_it_equals_the_general_path(
        self, scripted: int, plan: list[tuple[tuple[str, dict[str, Any]], dict[str, Any], int]]
    ) -> None:
        """Every command gives the same snapshot or error on both paths; histories replay."""
        fast, fast_clock, general, general_clock = _flows(Policy())
        declared = {"title": "Checkout returns 500", "severity": "P1", "commander": "alice"}
        iid = fast.declare(**declared, actor="alice").id
        assert general.declare(**declared, actor="alice").id == iid
        for name, args in SCRIPT[:scripted]:
            if name == "confirm_by_user":
                fast_clock.advance(timedelta(minutes=16))
                general_clock.advance(timedelta(minutes=16))
            _both(fast, general, name, iid, **args, actor="alice")
        for (name, args), opts, minutes in plan:
            fast_clock.advance(timedelta(minutes=minutes))
            general_clock.advance(timedelta(minutes=minutes))
            _both(fast, general, name, iid, **args, **opts)
        history = fast.history(iid)
        assert history == general.history(iid)
        assert replay(history) == fast.get(iid) == general.get(iid)

    def test_the_benchmark_lifecycle_takes_the_fused_path(self) -> None:
        """Declare to update_kb, no command falls back; the snapshots equal the general path's."""
        fast, fast_clock, general, general_clock = _flows(Policy())
        iid = fast.declare("Checkout down", severity="P1", commander="al", actor="al").id
        general.declare("Checkout down", severity="P1", commander="al", actor="al")
        for name, args in SCRIPT:
            if name == "confirm_by_user":
                fast_clock.advance(timedelta(minutes=16))
                general_clock.advance(timedelta(minutes=16))
            assert getattr(fast, name)(iid, **args, actor="al") == getattr(general, name)(
                iid, **args, actor="al"
            )
        assert fast.general == 0
        assert fast.get(iid).state is State.KB_UPDATED
        assert fast.history(iid) == general.history(iid)

    def test_a_keyed_command_takes_the_general_path(self) -> None:
        """An idempotency key or an expected version is the general pipeline's work."""
        fast, _, _, _ = _flows(Policy())
        iid = fast.declare("Checkout down", severity="P1", commander="al", actor="al").id
        fast.add_note(iid, "one", actor="al", idempotency_key="k")
        fast.add_note(iid, "two", actor="al", expected_version=2)
        fast.add_note(iid, "three", actor="al")
        assert fast.general == 2


@pytest.mark.parametrize(
    "policy",
    [
        Policy().with_guard("add_note", lambda inc, request: "no notes today"),
        Policy(severities={Severity.P1: ProcessOverride(required_roles={"contain": ("scribe",)})}),
    ],
    ids=["custom guard", "required roles"],
)
def test_a_checked_policy_takes_the_general_path(policy: Policy) -> None:
    """Custom guards and required roles are the general path's: both flows refuse alike."""
    fast, _, general, _ = _flows(policy)
    for flow in (fast, general):
        iid = flow.declare("Checkout down", severity="P1", commander="al", actor="al").id
        flow.start_triage(iid, actor="al")
    _both(fast, general, "add_note", iid, text="hi", actor="al")
    _both(fast, general, "contain", iid, actor="al")
    assert fast.general == 3


#: Values any argument may be given: texts, None, NOW, wrong types, times, dates.
argument_values = st.sampled_from(
    [
        "ok",
        "  padded ",
        "",
        None,
        NOW,
        3,
        True,
        ["a", "b"],
        {"k": "v"},
        "P2",
        "rca",
        "INC-2026-11-27-other",
        START,
        DUE,
    ]
)


class TestCompiledValidate:
    @given(
        st.sampled_from(sorted(DEFINITIONS)),
        st.dictionaries(
            st.sampled_from(["text", "source", "content", "reason", "to", "nope", "taken_at"]),
            argument_values,
            max_size=3,
        ),
        st.data(),
    )
    @settings(max_examples=400, deadline=None)
    def test_it_equals_validate(self, name: str, extra: dict[str, Any], data: Any) -> None:
        """Every command's compiled validate returns or raises what ``validate`` does."""
        command = DEFINITIONS[name]
        own = {
            a.name: data.draw(argument_values)
            for a in command.arguments
            if data.draw(st.booleans())
        }
        args = {**own, **extra} if data.draw(st.booleans()) else own
        assert _outcome(lambda: command.validated(args)) == _outcome(lambda: command.validate(args))
