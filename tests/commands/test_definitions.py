"""The command definitions: one per command, read by the machine, decide, evolve and the facade."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import COMMANDER, drive_to, every_event_type
from incidentflow import (
    ConfigError,
    Event,
    Incident,
    IncidentFlow,
    InvalidTransition,
    Policy,
    Reason,
    Records,
    Severity,
    State,
    TransitionRejected,
    ValidationError,
    replay,
)
from incidentflow._events import event_types
from incidentflow._flow_commands import CommandOptions, PostmortemFields
from incidentflow._lifecycle import COMMANDS, Lifecycle, lifecycle, mermaid_diagram
from incidentflow.commands import (
    APPLY,
    DEFINITIONS,
    Command,
    Move,
    definition,
    reason_codes,
    recorded_by,
)
from incidentflow.commands._shared import _compile_replace
from incidentflow.events import CommanderAssigned
from incidentflow.stores import MemoryStore
from incidentflow.testing import FrozenClock

#: The public reason codes. Adding one is a feature; renaming or dropping one breaks users.
REASON_CODES = {
    "access.denied",
    "access.linked",
    "access.unrestricted",
    "action_item.closed",
    "action_item.done",
    "action_item.unknown",
    "action_items.missing",
    "breach.recorded",
    "confirmation.by_commander",
    "confirmation.missing",
    "confirmation.negative",
    "containment.missing",
    "correction.needed",
    "correction.not_retractable",
    "correction.retracted",
    "correction.unknown_item",
    "deploy.missing",
    "evidence.missing",
    "fix.missing",
    "fix.not_verified_on_staging",
    "links.absent",
    "links.child_open",
    "links.contradicted",
    "links.present",
    "policy.guard",
    "postmortem.blame",
    "postmortem.required",
    "postmortem.root_cause_missing",
    "postmortem.summary_missing",
    "postmortem.went_poorly_missing",
    "postmortem.went_well_missing",
    "reference.present",
    "reference.taken",
    "reference.unknown",
    "role.vacant",
    "roles.missing",
    "root_cause.missing",
    "state.not_allowed",
    "triage.unanswered",
    "watch_window.running",
    "whys.full",
    "whys.missing",
}


class TestOneDefinitionPerCommand:
    def test_reason_codes_are_pinned(self) -> None:
        """The reason codes are public API: this list changes only on purpose."""
        assert set(reason_codes()) == REASON_CODES

    def test_codes_are_dotted_and_lowercase(self) -> None:
        """Every code reads ``area.what``."""
        for code in reason_codes():
            area, _, what = code.partition(".")
            assert area, code
            assert what, code
            assert code == code.lower(), code

    def test_every_facade_command_has_a_definition_and_back(self) -> None:
        """Each definition but the system ones is a facade method, with the same arguments."""
        for name, command in DEFINITIONS.items():
            if command.system:
                assert not hasattr(IncidentFlow, name)
                continue
            method = getattr(IncidentFlow, name)
            params = inspect.signature(method).parameters
            keywords = [p.name for p in params.values() if p.kind is p.VAR_KEYWORD]
            own = [p for p in params if p not in ("self", "incident_id", *keywords)]
            if keywords == ["fields"]:  # the post-mortem's fields come as typed keywords
                own += [
                    f
                    for f in PostmortemFields.__annotations__
                    if f not in CommandOptions.__annotations__
                ]
            assert own == [a.name for a in command.arguments], name
            assert method.__doc__, name

    def test_every_event_type_is_folded_by_exactly_one_command(self) -> None:
        """Replay can apply any stored event: every event type has one owner."""
        for event_type in event_types().values():
            owner = recorded_by(event_type)
            assert owner.name in DEFINITIONS

    def test_every_argument_is_a_field_of_its_event(self) -> None:
        """A definition's arguments fill its payload's fields, and nothing else."""
        for command in DEFINITIONS.values():
            fields = attrs.fields_dict(command.event)
            for argument in command.arguments:
                assert argument.field in fields, (command.name, argument.name)
                assert argument.doc.strip(), (command.name, argument.name)

    def test_unknown_command_is_refused_naming_the_known_ones(self) -> None:
        """A name that is no command raises InvalidTransition listing every command."""
        with pytest.raises(InvalidTransition) as info:
            definition("frobnicate")
        assert info.value.known_commands == COMMANDS
        assert "contain" in info.value.message
        with pytest.raises(ValidationError, match="command"):
            definition(["contain"])


class TestTheMachine:
    def test_one_shared_machine_holds_every_guard_as_a_condition(self) -> None:
        """Each transition's conditions are its command's guards, in definition order."""
        machine = lifecycle().machine
        for name, command in DEFINITIONS.items():
            if not command.moves:
                continue
            for source, transitions in machine.events[name].transitions.items():
                for transition in transitions:
                    funcs = [c.func for c in transition.conditions]
                    assert [f for f in funcs if f in command.guards] == list(command.guards)
                    assert State(source) in command.runs_in

    def test_recording_commands_are_internal_transitions(self) -> None:
        """A command that records without moving has dest None in the machine."""
        machine = lifecycle().machine
        for name in ("add_evidence", "add_why", "add_note", "record_breach"):
            for transitions in machine.events[name].transitions.values():
                assert all(t.dest is None for t in transitions)

    def test_an_unknown_state_fails_when_the_machine_is_built(self) -> None:
        """A definition naming a state that does not exist cannot be loaded."""
        bad: Command[Any] = attrs.evolve(
            definition("start_rca"),
            moves=(Move((State.CONTAINED,), "investigating"),),  # type: ignore[arg-type]
        )
        with pytest.raises(ValueError, match="'investigating' is not a state"):
            Lifecycle({"start_rca": bad})

    def test_the_diagram_draws_guards_on_their_arrows(self) -> None:
        """The diagram comes from the machine: contain's arrow names what it needs."""
        line = next(x for x in mermaid_diagram().splitlines() if ": contain" in x)
        assert line.strip().startswith("triaging --> contained")
        assert "≥1 evidence item" in line

    @pytest.mark.parametrize("state", list(State))
    def test_allowed_states_agree_with_the_definitions(self, state: State) -> None:
        """The machine allows a command exactly where its definition says it runs."""
        for name, command in DEFINITIONS.items():
            allowed = state in lifecycle().allowed_states(name)
            assert allowed == (state in command.runs_in), (name, state)


class TestDestinations:
    def test_single_destination_events_know_their_state(self) -> None:
        """An event whose command always lands in one state carries it in replay."""
        assert APPLY[definition("contain").event][1] is State.CONTAINED
        assert APPLY[definition("add_note").event][1] is None
        assert APPLY[definition("reopen").event][1] is None


def _values(draw: st.DrawFn, field: attrs.Attribute[Any]) -> Any:
    strategies: dict[str, st.SearchStrategy[Any]] = {
        "severity": st.sampled_from(Severity),
        "state": st.sampled_from(State),
        "version": st.integers(1, 10**6),
        "reopen_count": st.integers(0, 9),
        "postmortem_required": st.booleans(),
    }
    if field.name in strategies:
        return draw(strategies[field.name])
    if field.type in ("Records[str]",):
        return Records(draw(st.lists(st.text(max_size=5), max_size=3)))
    if str(field.type).startswith("datetime"):
        return draw(st.datetimes(timezones=st.just(UTC)))
    return draw(st.text(max_size=8))


@st.composite
def _changes(draw: st.DrawFn) -> tuple[Incident, dict[str, Any]]:
    clock = FrozenClock(datetime(2026, 11, 27, 14, tzinfo=UTC))
    flow = IncidentFlow.in_memory(clock=clock)
    stage = draw(st.sampled_from(["declared", "rca", "resolved", "kb_updated"]))
    inc = drive_to(flow, clock, stage)
    simple = [
        f
        for f in attrs.fields(Incident)
        if f.name in ("title", "commander", "severity", "state", "version", "reopen_count")
        or f.name in ("postmortem_required", "breaches", "updated_at", "dismissal_reason")
    ]
    chosen = draw(st.lists(st.sampled_from(simple), unique_by=lambda f: f.name, max_size=5))
    return inc, {f.name: _values(draw, f) for f in chosen}


class TestFold:
    @settings(max_examples=60, deadline=None)
    @given(_changes())
    def test_the_fast_copy_equals_attrs_evolve(self, case: tuple[Incident, dict[str, Any]]) -> None:
        """The compiled snapshot copy gives what attrs.evolve gives, converters and all."""
        inc, changes = case
        assert _compile_replace()(inc, **changes) == attrs.evolve(inc, **changes)

    def test_the_fast_copy_refuses_unknown_fields(self, flow: IncidentFlow) -> None:
        """A misspelt field is an error, as with attrs.evolve, never silently dropped."""
        inc = flow.declare("x", severity="P4", commander=COMMANDER, actor=COMMANDER)
        with pytest.raises(TypeError, match="reasn"):
            _compile_replace()(inc, reasn="typo")

    def test_every_event_type_replays_the_same_with_attrs_evolve(
        self, flow: IncidentFlow, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Every event type folds to the same snapshot with attrs.evolve as with the fast copy."""
        flow = IncidentFlow.in_memory(
            clock=clock, policy=Policy(custom_fields={"customer": "text"})
        )
        histories = [flow.history(every_event_type(flow, clock).id)]
        dismissed = flow.declare("False alarm", severity="P4", commander="al", actor="al")
        flow.dismiss(dismissed.id, reason="noise", actor="al")
        histories.append(flow.history(dismissed.id))
        parent = flow.declare("Parent", severity="P4", commander="al", actor="al")
        child = flow.declare("Child", severity="P4", commander="al", actor="al")
        flow.restrict(parent.id, ["group:sre"], actor="al")  # before any link: links pin it
        flow.unrestrict(parent.id, actor="al")
        flow.link(parent.id, "parent_of", child.id, actor="al")
        flow.unlink(parent.id, "parent_of", child.id, actor="al")
        flow.merge(child.id, into=parent.id, reason="the same outage", actor="al")
        histories += [flow.history(parent.id), flow.history(child.id)]
        # Histories from before roles hold commander_assigned, which no command records now.
        legacy = flow.declare("Old history", severity="P4", commander="al", actor="al")
        handover = Event(legacy.id, 2, clock(), "al", CommanderAssigned("bo"))
        histories.append([*flow.history(legacy.id), handover])
        covered = {type(e.data) for history in histories for e in history}
        assert covered == set(event_types().values())
        fast = [replay(history) for history in histories]
        import incidentflow.commands._shared as shared

        modules = ("_triage", "_rca", "_resolve", "_closure", "_anytime", "_followups", "_labels")
        for module in (*modules, "_coordination", "_corrections", "_links", "_access"):
            monkeypatch.setattr(f"incidentflow.commands.{module}.replace", attrs.evolve)
        monkeypatch.setattr(shared, "replace", attrs.evolve)
        assert [replay(history) for history in histories] == fast

    def test_an_export_from_before_roles_imports(self, clock: FrozenClock) -> None:
        """A commander_assigned event in an older export is accepted as the handover it was."""
        import io

        from incidentflow._serialization import event_to_json
        from incidentflow._transfer import export_lines, import_histories, read_export

        flow = IncidentFlow.in_memory(clock=clock)
        inc = flow.declare("Old history", severity="P4", commander="al", actor="al")
        handover = Event(inc.id, 2, clock(), "al", CommanderAssigned("bo"))
        header = next(iter(export_lines(flow, [])))
        lines = [header, *(event_to_json(e) for e in (*flow.history(inc.id), handover))]
        other = IncidentFlow.in_memory(clock=clock)
        histories = read_export(io.StringIO("\n".join(lines) + "\n"), "old.jsonl")
        assert import_histories(other, histories).imported == (inc.id,)
        assert other.get(inc.id).commander == "bo"

    def test_every_event_type_survives_export_and_import(self, clock: FrozenClock) -> None:
        """An export holding every event type imports into another flow to the same snapshot."""
        import io

        from incidentflow._transfer import export_lines, import_histories, read_export

        policy = Policy(custom_fields={"customer": "text"})
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = every_event_type(flow, clock)
        text = "".join(line + "\n" for line in export_lines(flow, [inc.id]))
        other = IncidentFlow.in_memory(clock=clock, policy=policy)
        outcome = import_histories(other, read_export(io.StringIO(text), "x.jsonl", policy))
        assert outcome.imported == (inc.id,)
        assert other.get(inc.id) == flow.get(inc.id)
        assert other.history(inc.id) == flow.history(inc.id)

    def test_records_equal_only_records(self) -> None:
        """A list where Records belongs is a different snapshot, not an equal one."""
        assert Records(["a"]) == Records(["a"])
        assert Records(["a"]) != ["a"]
        assert Records(["a"]) != ("a",)


class TestIdempotencyByMeaning:
    """A retried command written differently but meaning the same returns the first result."""

    @pytest.mark.parametrize("again", ["p1", "P1 ", Severity.P1])
    def test_severity_spelled_differently(self, flow: IncidentFlow, again: Any) -> None:
        """``"P1"``, ``"p1"``, ``"P1 "`` and ``Severity.P1`` are one request."""
        first = flow.declare(
            "DB down", severity="P1", commander="al", actor="al", idempotency_key="k"
        )
        retry = flow.declare(
            "DB down", severity=again, commander="al", actor="al", idempotency_key="k"
        )
        assert retry == first
        assert len(flow.list()) == 1

    def test_text_with_surrounding_spaces(self, flow: IncidentFlow) -> None:
        """Stripped text is the same text: ``"T3 "`` after ``"T3"`` replays."""
        inc = drive_to(flow, FrozenClock(datetime(2026, 11, 27, 14, tzinfo=UTC)), "triaging")
        first = flow.add_evidence(inc.id, source="T3", content="x", actor="al", idempotency_key="e")
        again = flow.add_evidence(
            inc.id, source="T3 ", content="x", actor="al", idempotency_key="e"
        )
        assert again == first
        assert len(flow.get(inc.id).evidence) == 1

    def test_the_same_instant_in_another_offset(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """An instant written in UTC and in UTC+2 is one request."""
        inc = drive_to(flow, clock, "triaging")
        at = clock() - timedelta(minutes=1)
        east = at.astimezone(timezone(timedelta(hours=2)))
        first = flow.record_containment(
            inc.id, "rolled back", taken_at=at, actor=COMMANDER, idempotency_key="c"
        )
        again = flow.record_containment(
            inc.id, "rolled back", taken_at=east, actor=COMMANDER, idempotency_key="c"
        )
        assert again == first

    def test_a_default_time_replays_later(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """A retry without taken_at, a minute later, is the same request (now is not fixed)."""
        inc = drive_to(flow, clock, "triaging")
        first = flow.record_containment(inc.id, "failover", actor=COMMANDER, idempotency_key="c")
        clock.advance(timedelta(minutes=1))
        assert (
            flow.record_containment(inc.id, "failover", actor=COMMANDER, idempotency_key="c")
            == first
        )


class TestBoundary:
    def test_can_refuses_an_unknown_command(self, flow: IncidentFlow) -> None:
        """``can`` with a made-up command raises instead of answering."""
        inc = flow.declare("x", severity="P4", commander=COMMANDER, actor=COMMANDER)
        with pytest.raises(InvalidTransition, match="not a command"):
            flow.can(inc.id, "frobnicate")
        with pytest.raises(ValidationError, match="command"):
            flow.can(inc.id, ["x"])  # type: ignore[arg-type]

    def test_a_wrong_state_is_a_reason_with_a_code(self, flow: IncidentFlow) -> None:
        """``can`` answers a wrong state with ``state.not_allowed`` and the allowed states."""
        inc = flow.declare("x", severity="P4", commander=COMMANDER, actor=COMMANDER)
        (reason,) = flow.can(inc.id, "resolve").reasons
        assert reason.code == "state.not_allowed"
        assert reason.data == {"state": "declared", "allowed_states": ["fixed"]}

    @pytest.mark.parametrize(
        ("duplicate_of", "message"),
        [
            ("INC-2026-11-27-nothing-here", "there is no incident"),
            ("any text at all", "not an incident id"),
            ("../../etc/passwd", "not an incident id"),
        ],
    )
    def test_dismissing_as_a_duplicate_needs_a_real_other_incident(
        self, flow: IncidentFlow, duplicate_of: str, message: str
    ) -> None:
        """duplicate_of must name another incident that exists."""
        inc = flow.declare("x", severity="P4", commander=COMMANDER, actor=COMMANDER)
        with pytest.raises(Exception, match=message) as info:
            flow.dismiss(inc.id, reason="dup", duplicate_of=duplicate_of, actor=COMMANDER)
        assert getattr(info.value, "field", None) == "duplicate_of"
        assert flow.get(inc.id).state is State.DECLARED

    def test_an_incident_cannot_duplicate_itself(self, flow: IncidentFlow) -> None:
        """duplicate_of naming the incident itself is refused."""
        inc = flow.declare("x", severity="P4", commander=COMMANDER, actor=COMMANDER)
        with pytest.raises(Exception, match="itself"):
            flow.dismiss(inc.id, reason="dup", duplicate_of=inc.id, actor=COMMANDER)

    def test_dismissing_as_a_duplicate_of_another(self, flow: IncidentFlow) -> None:
        """An existing other incident is accepted and kept on the snapshot."""
        first = flow.declare("x", severity="P4", commander=COMMANDER, actor=COMMANDER)
        second = flow.declare("x", severity="P4", commander=COMMANDER, actor=COMMANDER)
        after = flow.dismiss(second.id, reason="dup", duplicate_of=first.id, actor=COMMANDER)
        assert after.duplicate_of == first.id

    def test_unknown_keyword_is_refused(self, flow: IncidentFlow) -> None:
        """A misspelt option is a ValidationError naming it, not silently ignored."""
        inc = flow.declare("x", severity="P4", commander=COMMANDER, actor=COMMANDER)
        with pytest.raises(Exception, match="actr"):
            flow.add_note(inc.id, "hi", actr="bob")  # type: ignore[call-arg]

    def test_rejections_carry_reason_objects(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """TransitionRejected lists Reason objects with codes; str() is the message."""
        inc = drive_to(flow, clock, "triaging")
        with pytest.raises(TransitionRejected) as info:
            flow.contain(inc.id, actor=COMMANDER)
        assert info.value.codes == ("evidence.missing", "triage.unanswered", "containment.missing")
        assert all(isinstance(r, Reason) for r in info.value.reasons)
        triage = info.value.reasons[1]
        assert triage.data["missing"] == ["symptom", "started_at", "scope"]
        assert str(triage) in str(info.value)


class _TwinStore(MemoryStore):
    """A store that lets a twin command commit right before the next load."""

    twin: Callable[[], object] | None = None

    def load(self, incident_id: str) -> Incident:
        twin, self.twin = self.twin, None
        if twin is not None:
            twin()
        return super().load(incident_id)


class TestRacingTwins:
    """A keyed command whose twin commits first returns the twin's result, whatever failed."""

    @pytest.mark.parametrize(
        "call",
        [
            lambda f, i: f.start_triage(i, actor="al", idempotency_key="A"),
            lambda f, i: f.add_note(i, "n", actor="al", expected_version=1, idempotency_key="B"),
            lambda f, i: f.assign_commander(i, "bob", actor="al", idempotency_key="C"),
        ],
        ids=["invalid-transition", "stale-version", "validation"],
    )
    def test_the_first_result_wins(
        self, clock: FrozenClock, call: Callable[[IncidentFlow, str], Incident]
    ) -> None:
        """The twin committed between our key lookup and our load: we get its snapshot."""
        store = _TwinStore()
        flow = IncidentFlow(store, clock=clock)
        inc = flow.declare("Checkout", severity="P1", commander="al", actor="al")
        store.twin = lambda: call(flow, inc.id)
        mine = call(flow, inc.id)
        assert mine == flow.get(inc.id)
        assert len(flow.history(inc.id)) == 2


class TestLenientInputs:
    def test_none_for_a_time_means_now_in_can_too(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """``taken_at=None`` is the clock's time, in ``can`` as in the command."""
        inc = drive_to(flow, clock, "triaging")
        assert flow.can(inc.id, "record_containment", description="rollback", taken_at=None)

    @pytest.mark.parametrize(
        "call",
        [
            lambda f, i: f.dead_letters(10**5000),
            lambda f, i: f.deliver_pending(limit=10**5000),
            lambda f, i: f.reopen(i, reason="r", to=10**5000, actor="al"),
            lambda f, i: f.list(state=10**5000),
            lambda f, i: f.list(severity=10**5000),
            lambda f, i: f.metrics(by=10**5000),
        ],
    )
    def test_huge_numbers_are_validation_errors(
        self, flow: IncidentFlow, call: Callable[[IncidentFlow, str], object]
    ) -> None:
        """A number too long to print is refused like any bad value, never a ValueError."""
        inc = flow.declare("x", severity="P4", commander=COMMANDER, actor=COMMANDER)
        with pytest.raises(ValidationError):
            call(flow, inc.id)

    def test_a_custom_guard_may_answer_with_a_bool(self, flow: IncidentFlow) -> None:
        """True lets the command through; False refuses it with ``policy.guard``."""
        inc = flow.declare("x", severity="P4", commander=COMMANDER, actor=COMMANDER)
        flow.add_guard("start_triage", lambda incident, request: request.actor != "intern")
        assert flow.can(inc.id, "start_triage", actor="alice")
        verdict = flow.can(inc.id, "start_triage", actor="intern")
        assert [r.code for r in verdict.reasons] == ["policy.guard"]

    def test_a_custom_guard_answering_junk_is_a_config_error(self, flow: IncidentFlow) -> None:
        """An answer that is no reason, bool or list says which guard is wrong."""
        inc = flow.declare("x", severity="P4", commander=COMMANDER, actor=COMMANDER)
        flow.add_guard("start_triage", lambda incident, request: 42)
        with pytest.raises(ConfigError, match="guard"):
            flow.can(inc.id, "start_triage")
