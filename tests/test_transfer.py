"""Export and import of whole histories: which histories are accepted, and what an import does.

Exports are made the way users make them: incidents driven with the library on a
:class:`FrozenClock`, exported with :func:`export_lines`, then forged line by line.
The oracle for "would the live flow have written this?" is the facade itself:
:func:`relive` runs the command behind each event again, at its time and by its
actor, and compares what the flow writes with the history.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import COMMANDER, RESPONDER, START, STEP, USER, advance_to, drive_to
from incidentflow import (
    BlameCheck,
    Event,
    IncidentFlow,
    IncidentFlowError,
    Policy,
    Severity,
    State,
    ValidationError,
    replay,
)
from incidentflow import events as ev
from incidentflow._lifecycle import COMMANDS
from incidentflow._serialization import event_from_dict
from incidentflow._transfer import (
    History,
    ImportOutcome,
    export_lines,
    import_histories,
    read_export,
)
from incidentflow.testing import FrozenClock

NAME = "forged.jsonl"
HEADER = {"format": "incidentflow-export", "version": 1, "exported_at": "2026-11-28T00:00:00Z"}

Lines = list[dict[str, Any]]


# -- making and forging exports ----------------------------------------------------------


def exported(flow: IncidentFlow, *incident_ids: str) -> Lines:
    """The events of an export of ``incident_ids``, parsed (without the header)."""
    return [json.loads(line) for line in list(export_lines(flow, incident_ids))[1:]]


def as_file(events: Lines) -> io.BytesIO:
    """An export file holding ``events`` after a header line."""
    text = "\n".join(json.dumps(line) for line in [HEADER, *events]) + "\n"
    return io.BytesIO(text.encode("utf-8"))


def read(events: Lines, policy: Policy | None = None) -> list[History]:
    """``read_export`` of ``events``, as if read from ``forged.jsonl``."""
    return read_export(as_file(events), NAME, policy)


def renumbered(events: Lines) -> Lines:
    """The events with seqs 1..n again."""
    return [{**event, "seq": seq} for seq, event in enumerate(events, start=1)]


def keeping(events: Lines, *types: str) -> Lines:
    """Only the events of ``types``, renumbered."""
    return renumbered([e for e in events if e["type"] in types])


def of_type(events: Lines, kind: str) -> dict[str, Any]:
    """The first event of type ``kind``."""
    return next(e for e in events if e["type"] == kind)


def line_of(events: Lines, kind: str, nth: int = 0) -> int:
    """The line of the file on which the ``nth`` event of type ``kind`` stands."""
    indexes = [i for i, e in enumerate(events) if e["type"] == kind]
    return indexes[nth] + 2  # line 1 is the header


def refusal(events: Lines, policy: Policy | None = None) -> ValidationError:
    """The ValidationError that reading ``events`` raises."""
    with pytest.raises(ValidationError) as caught:
        read(events, policy)
    return caught.value


def named_line(error: ValidationError) -> int:
    """The line number an error names as ``forged.jsonl:N``."""
    match = re.match(rf"{re.escape(NAME)}:(\d+)$", error.field)
    assert match, f"no file:line in {error.field!r}"
    return int(match.group(1))


def imported_into(flow: IncidentFlow, events: Lines) -> ImportOutcome:
    """Read ``events`` under ``flow``'s policy and import them into ``flow``."""
    return import_histories(flow, read(events, flow.policy))


# -- the oracle: the live flow, run again --------------------------------------------------


def _command_behind(event: Event) -> tuple[str, dict[str, Any]]:
    """The facade method and arguments that record ``event`` (seen from the outside)."""
    d = event.data
    simple = {
        ev.TriageStarted: "start_triage",
        ev.Contained: "contain",
        ev.RcaStarted: "start_rca",
        ev.MarkedFixed: "mark_fixed",
        ev.Resolved: "resolve",
    }
    if type(d) in simple:
        return simple[type(d)], {}
    match d:
        case ev.EvidenceAdded(source=source, content=content):
            return "add_evidence", {"source": source, "content": content}
        case ev.TriageAnswered(question=question, answer=answer):
            return "answer_triage", {"question": question, "answer": answer}
        case ev.ContainmentRecorded(description=description, taken_at=taken_at):
            return "record_containment", {"description": description, "taken_at": taken_at}
        case ev.WhyAdded(answer=answer):
            return "add_why", {"answer": answer}
        case ev.RootCauseSet(statement=statement, process_gap=gap):
            return "set_root_cause", {"statement": statement, "process_gap": gap}
        case ev.FixRecorded(description=description, test=test, staging_verified=verified):
            return "record_fix", {
                "description": description,
                "test": test,
                "staging_verified": verified,
            }
        case ev.DeployRecorded(deployed_at=deployed_at, ref=ref):
            return "record_deploy", {"deployed_at": deployed_at, "ref": ref}
        case ev.UserConfirmed(user=user, positive=positive, comment=comment):
            return "confirm_by_user", {"user": user, "positive": positive, "comment": comment}
        case ev.Reopened(reason=reason, to_state=to_state):
            return "reopen", {"reason": reason, "to": to_state.value}
        case ev.Dismissed(reason=reason, duplicate_of=duplicate_of):
            return "dismiss", {"reason": reason, "duplicate_of": duplicate_of}
        case ev.Reclassified(severity=severity, reason=reason):
            return "reclassify", {"severity": severity, "reason": reason}
        case ev.CommanderAssigned(commander=commander):
            return "assign_commander", {"commander": commander}
        case ev.RoleAssigned(role=role, person=person, note=note):
            return "assign_role", {"role": role, "person": person, "note": note}
        case ev.DetectionRecorded(first_occurred_at=first, detected_at=detected, method=method):
            return "record_detection", {
                "method": method,
                "first_occurred_at": first,
                "detected_at": detected,
            }
        case ev.NoteAdded(text=text):
            return "add_note", {"text": text}
        case ev.ActionItemAdded(description=description, owner=owner, due=due):
            return "add_action_item", {"description": description, "owner": owner, "due": due}
        case ev.ActionItemCompleted(number=number):
            return "complete_action_item", {"number": number}
        case ev.PostmortemDrafted():
            return "draft_postmortem", _draft_fields(d)
        case ev.PostmortemCompleted():
            return "complete_postmortem", {}
        case ev.KbUpdated(symptom=symptom, early_signs=signs, root_cause=cause, fix=fix):
            return "update_kb", {
                "symptom": symptom,
                "early_signs": signs,
                "root_cause": cause,
                "fix": fix,
            }
    raise AssertionError(f"no command behind {event.type}")


def _draft_fields(draft: ev.PostmortemDrafted) -> dict[str, Any]:
    fields = attrs.asdict(draft, recurse=False)
    return {name: value for name, value in fields.items() if value is not None}


def relive(history: Sequence[Event], policy: Policy) -> bool:
    """Whether the live flow, running the commands behind ``history`` again, writes it exactly.

    Each command runs at its first event's time and by its actor, through the
    facade, under ``policy``. A ``postmortem_drafted`` followed at the same
    instant by ``postmortem_completed`` is tried as one ``complete_postmortem``
    first, then as ``draft_postmortem``.
    """
    first = history[0]
    declared = first.data
    assert isinstance(declared, ev.Declared)
    clock = FrozenClock(first.at)
    with IncidentFlow.in_memory(clock=clock, policy=policy) as flow:
        try:
            incident = flow.declare(
                declared.title,
                severity=declared.severity,
                commander=declared.commander,
                actor=first.actor,
                slug=declared.slug,
            )
            while incident.version < len(history):
                event = history[incident.version]
                clock.set(event.at)
                incident = _run_again(flow, history, event)
        except IncidentFlowError:
            return False
        return tuple(flow.history(incident.id)) == tuple(history)


def _run_again(flow: IncidentFlow, history: Sequence[Event], event: Event) -> Any:
    incident_id, actor = event.incident_id, event.actor
    if isinstance(event.data, ev.DeadlineBreached):
        # check_deadlines records every overdue breach at once; run the one command it runs.
        breach = attrs.asdict(event.data, recurse=False)
        from incidentflow.commands import definition

        return flow._run(definition("record_breach"), incident_id, {"actor": actor}, breach)
    command, args = _command_behind(event)
    following = history[event.seq] if event.seq < len(history) else None
    if (
        command == "draft_postmortem"
        and following is not None
        and isinstance(following.data, ev.PostmortemCompleted)
        and (following.at, following.actor) == (event.at, event.actor)
    ):
        try:
            return flow.complete_postmortem(incident_id, actor=actor, **args)
        except IncidentFlowError:
            pass
    return getattr(flow, command)(incident_id, actor=actor, **args)


# -- histories made with the library ----------------------------------------------------


def _p1_with_postmortem(flow: IncidentFlow, clock: FrozenClock) -> str:
    return drive_to(flow, clock, "kb_updated", "P1").id


def _p3_straight_to_kb(flow: IncidentFlow, clock: FrozenClock) -> str:
    return drive_to(flow, clock, "kb_updated", "P3").id


def _dismissed(flow: IncidentFlow, clock: FrozenClock) -> str:
    return drive_to(flow, clock, "dismissed", "P2", texts={"title": "Synthetic check flaps"}).id


def _reopened(flow: IncidentFlow, clock: FrozenClock) -> str:
    incident = drive_to(flow, clock, "resolved", "P2")
    clock.advance(STEP)
    flow.reopen(incident.id, reason="errors came back", to="triaging", actor=COMMANDER)
    flow.add_evidence(incident.id, source="grafana", content="5xx again", actor=RESPONDER)
    return advance_to(flow, clock, incident.id, "kb_updated").id


def _negative_confirmation(flow: IncidentFlow, clock: FrozenClock) -> str:
    incident = drive_to(flow, clock, "fixed", "P1")
    clock.advance(STEP)
    flow.confirm_by_user(incident.id, user=USER, positive=False, actor=COMMANDER)
    assert flow.get(incident.id).state is State.RCA
    flow.add_why(incident.id, "the retry storm hid the leak", actor=RESPONDER)
    return advance_to(flow, clock, incident.id, "kb_updated").id


def _reclassified(flow: IncidentFlow, clock: FrozenClock) -> str:
    incident = drive_to(flow, clock, "triaging", "P1")
    flow.reclassify(incident.id, "P3", reason="one region only", actor=COMMANDER)
    advance_to(flow, clock, incident.id, "resolved")
    flow.reclassify(incident.id, "P2", reason="refunds were affected", actor=COMMANDER)
    assert flow.get(incident.id).postmortem_required
    return advance_to(flow, clock, incident.id, "kb_updated").id


def _deadlines_breached(flow: IncidentFlow, clock: FrozenClock) -> str:
    incident = drive_to(flow, clock, "declared", "P1")
    clock.advance(minutes=10)
    assert flow.check_deadlines()  # the response deadline
    advance_to(flow, clock, incident.id, "resolved")
    clock.advance(days=2)
    assert flow.check_deadlines()  # the post-mortem deadline
    return advance_to(flow, clock, incident.id, "kb_updated").id


def _detours(flow: IncidentFlow, clock: FrozenClock) -> str:
    incident = drive_to(flow, clock, "declared", "P1")
    flow.record_detection(incident.id, method="alert", first_occurred_at=START, actor=RESPONDER)
    flow.assign_commander(incident.id, commander="erin", actor=COMMANDER)
    flow.add_note(incident.id, "status page updated", actor=RESPONDER)
    advance_to(flow, clock, incident.id, "rca")
    flow.add_why(incident.id, "retries doubled the load", actor=RESPONDER)
    advance_to(flow, clock, incident.id, "fixed")
    flow.draft_postmortem(incident.id, summary="Checkout failed for 20 minutes", actor="erin")
    advance_to(flow, clock, incident.id, "resolved")
    due = clock().date() + timedelta(days=3)
    flow.add_action_item(incident.id, "alert on pool usage", owner="dana", due=due, actor="erin")
    flow.add_action_item(incident.id, "load-test releases", owner="bob", due=due, actor="erin")
    flow.complete_action_item(incident.id, 1, actor="dana")
    advance_to(flow, clock, incident.id, "kb_updated")
    flow.add_note(incident.id, "closed after review", actor="erin")
    return incident.id


def _drafted_then_completed_at_once(flow: IncidentFlow, clock: FrozenClock) -> str:
    incident = drive_to(flow, clock, "resolved", "P1")
    due = clock().date() + timedelta(days=3)
    flow.add_action_item(incident.id, "alert on pool usage", owner="dana", due=due, actor=COMMANDER)
    flow.draft_postmortem(
        incident.id,
        summary="Checkout failed",
        root_cause="no load test",
        went_well=["rollback"],
        went_poorly=["late alert"],
        actor=COMMANDER,
    )
    flow.complete_postmortem(incident.id, actor=COMMANDER)  # same instant, same actor
    return advance_to(flow, clock, incident.id, "kb_updated").id


LEGITIMATE: dict[str, Callable[[IncidentFlow, FrozenClock], str]] = {
    "p1-with-postmortem": _p1_with_postmortem,
    "p3-straight-to-kb": _p3_straight_to_kb,
    "dismissed": _dismissed,
    "reopened": _reopened,
    "negative-confirmation": _negative_confirmation,
    "reclassified": _reclassified,
    "deadlines-breached": _deadlines_breached,
    "detours": _detours,
    "drafted-then-completed-at-once": _drafted_then_completed_at_once,
}


def made(
    make: Callable[[IncidentFlow, FrozenClock], str], policy: Policy | None = None
) -> tuple[Lines, tuple[Event, ...]]:
    """The export of one incident that ``make`` drives, and its history."""
    clock = FrozenClock(START)
    with IncidentFlow.in_memory(clock=clock, policy=policy) as flow:
        incident_id = make(flow, clock)
        return exported(flow, incident_id), tuple(flow.history(incident_id))


@pytest.fixture
def sqlite_flow(tmp_path: Path) -> IncidentFlow:
    """An empty flow on a SQLite store in the test's folder, writing no files."""
    return IncidentFlow.open(
        f"sqlite:///{tmp_path / 'target.db'}", incidents_dir=None, knowledge_dir=None
    )


# -- tests ---------------------------------------------------------------------------


class TestEventCommands:
    """The table of which command records which event type."""

    def test_every_event_type_has_its_command(self) -> None:
        """Every event type of this release maps to a command of the lifecycle."""
        from incidentflow.commands import recorded_by

        for event_type in ev.event_types().values():
            assert recorded_by(event_type).name in COMMANDS


class TestLegitimateHistories:
    """Every path the live flow allows imports, unchanged."""

    @pytest.mark.parametrize("make", LEGITIMATE.values(), ids=LEGITIMATE.keys())
    def test_imports(
        self, make: Callable[[IncidentFlow, FrozenClock], str], sqlite_flow: IncidentFlow
    ) -> None:
        """The history imports into SQLite as it was, and replays to the same snapshot."""
        events, history = made(make)

        outcome = imported_into(sqlite_flow, events)

        incident_id = history[0].incident_id
        assert outcome == ImportOutcome(imported=(incident_id,))
        assert tuple(sqlite_flow.history(incident_id)) == history
        assert sqlite_flow.get(incident_id) == replay(history)
        assert sqlite_flow.verify(incident_id)

    @pytest.mark.parametrize("make", LEGITIMATE.values(), ids=LEGITIMATE.keys())
    def test_oracle_agrees(self, make: Callable[[IncidentFlow, FrozenClock], str]) -> None:
        """The live flow, run again, writes each of these histories exactly (the oracle holds)."""
        _, history = made(make)
        assert relive(history, Policy())

    def test_blame_check_sees_who_took_part_before_the_command(self) -> None:
        """A post-mortem the live blame check passed (its author had not taken part) imports."""
        policy = Policy(blame_check=BlameCheck.REJECT)

        def make(flow: IncidentFlow, clock: FrozenClock) -> str:
            incident = drive_to(flow, clock, "resolved", "P1")
            due = clock().date() + timedelta(days=3)
            flow.add_action_item(incident.id, "page sooner", owner="dana", due=due, actor=COMMANDER)
            flow.complete_postmortem(
                incident.id,
                summary="erin missed nothing; the page went to an old rota",
                root_cause="the rota export is manual",
                went_well=["rollback"],
                went_poorly=["the page"],
                actor="erin",  # first appears with this command
            )
            return advance_to(flow, clock, incident.id, "kb_updated").id

        events, history = made(make, policy)
        flow = IncidentFlow.in_memory(policy=policy)
        assert imported_into(flow, events).imported == (history[0].incident_id,)

    def test_custom_guards_see_the_arguments(self) -> None:
        """A custom guard that reads the command's arguments sees them on import too."""

        def reason_required(incident: object, request: Any) -> str | None:
            return None if request.args.get("reason") else "say why"

        policy = Policy().with_guard("reopen", reason_required)
        events, history = made(_reopened, policy)
        flow = IncidentFlow.in_memory(policy=policy)
        assert imported_into(flow, events).imported == (history[0].incident_id,)

    def test_draft_then_complete_read_as_two_commands_when_one_is_refused(self) -> None:
        """A draft and a completion at one instant import when the two separate commands pass."""

        def draft_first(incident: object, request: Any) -> str | None:
            given = any(value is not None for value in request.args.values())
            return "draft the fields first, then complete" if given else None

        policy = Policy().with_guard("complete_postmortem", draft_first)
        events, history = made(_drafted_then_completed_at_once, policy)
        flow = IncidentFlow.in_memory(policy=policy)
        assert imported_into(flow, events).imported == (history[0].incident_id,)


class TestProcessRules:
    """A history the live flow would have refused at any step is refused, naming the line."""

    def test_resolved_without_doing_anything(self) -> None:
        """A P1 cut down to its state changes is refused at ``contained``, listing every guard."""
        full, _ = made(_p1_with_postmortem)
        cut = keeping(
            full,
            "declared",
            "triage_started",
            "contained",
            "rca_started",
            "marked_fixed",
            "resolved",
        )

        error = refusal(cut)

        assert named_line(error) == line_of(cut, "contained")
        message = str(error)
        assert "no evidence recorded" in message
        assert "triage checklist not answered" in message
        assert "no containment action recorded" in message

    def test_refused_into_a_store(self, sqlite_flow: IncidentFlow) -> None:
        """Nothing of a refused export reaches the store."""
        full, _ = made(_p1_with_postmortem)
        cut = keeping(full, "declared", "triage_started", "contained")
        with pytest.raises(ValidationError):
            imported_into(sqlite_flow, cut)
        assert list(sqlite_flow.list()) == []

    def test_target_policy_watch_window(self) -> None:
        """A resolution inside the importing policy's watch window is refused with its reason."""
        events, _ = made(_p1_with_postmortem)
        error = refusal(events, Policy(watch_window=timedelta(hours=1)))
        assert named_line(error) == line_of(events, "resolved")
        assert "watch window" in str(error)

    def test_commander_confirming_own_fix(self) -> None:
        """A fix confirmed by the commander is refused when the importing policy forbids it."""

        def make(flow: IncidentFlow, clock: FrozenClock) -> str:
            return drive_to(flow, clock, "resolved", "P2", texts={"user": COMMANDER}).id

        events, _ = made(make, Policy(confirmer_must_differ=False))
        error = refusal(events)
        assert named_line(error) == line_of(events, "resolved")
        assert "a user other than the commander must confirm" in str(error)
        assert read(events, Policy(confirmer_must_differ=False))

    def test_why_outside_rca(self) -> None:
        """A why recorded during triage is refused, naming the states that allow it."""
        events, _ = made(_p1_with_postmortem)
        why = of_type(events, "why_added")
        rest = [e for e in events if e is not why]
        at = rest.index(of_type(rest, "triage_started")) + 1
        moved = renumbered([*rest[:at], {**why, "at": rest[at - 1]["at"]}, *rest[at:]])

        error = refusal(moved)

        assert named_line(error) == line_of(moved, "why_added")
        assert "add_why is allowed only when the incident is rca" in str(error)

    def test_sixth_why(self) -> None:
        """A 5-Whys chain of six is refused at the sixth."""
        events, _ = made(_p1_with_postmortem)
        why = of_type(events, "why_added")
        at = events.index(why)
        longer = renumbered([*events[:at], *[why] * 6, *events[at + 1 :]])
        error = refusal(longer)
        assert named_line(error) == line_of(longer, "why_added", 5)
        assert "already has 5 whys" in str(error)

    def test_completing_an_unknown_action_item(self) -> None:
        """Completing an action item that does not exist is refused, as the live command is."""
        events, _ = made(_detours)
        completed = of_type(events, "action_item_completed")
        forged = [{**e, "data": {"number": 7}} if e is completed else e for e in events]
        error = refusal(forged)
        assert named_line(error) == line_of(forged, "action_item_completed")
        assert "there is no action item 7" in str(error)

    def test_action_item_numbers(self) -> None:
        """Action items numbered other than 1, 2, ... are refused."""
        events, _ = made(_detours)
        second = [e for e in events if e["type"] == "action_item_added"][1]
        forged = [{**e, "data": {**e["data"], "number": 1}} if e is second else e for e in events]
        error = refusal(forged)
        assert named_line(error) == line_of(forged, "action_item_added", 1)
        assert "number (expected 2)" in str(error)

    def test_negative_confirmation_without_its_reopen(self) -> None:
        """A negative confirmation must reopen the incident in the same commit."""
        events, _ = made(_negative_confirmation)
        cut = renumbered([e for e in events if e is not of_type(events, "reopened")])
        error = refusal(cut)
        assert "also records reopened" in str(error)

    def test_evidence_after_closing(self) -> None:
        """After kb_updated only notes are accepted."""
        events, _ = made(_p1_with_postmortem)
        last = events[-1]
        note = {**last, "type": "note_added", "data": {"text": "looked again"}}
        evidence = {**last, "type": "evidence_added", "data": {"source": "a", "content": "b"}}
        assert read(renumbered([*events, note]))
        error = refusal(renumbered([*events, evidence]))
        assert named_line(error) == len(events) + 2
        assert "add_evidence is allowed only when" in str(error)

    def test_forged_postmortem_flag(self) -> None:
        """A P1 declared as needing no post-mortem is refused at its declaration."""
        events, _ = made(_p3_straight_to_kb)
        forged = [
            {**e, "data": {**e["data"], "severity": "P1"}} if e["type"] == "declared" else e
            for e in events
        ]
        error = refusal(forged)
        assert named_line(error) == 2
        assert "this policy requires one for P1 incidents" in str(error)

    def test_stricter_postmortem_flag_stays(self) -> None:
        """A P3 written under a policy needing its post-mortem imports still needing it."""
        strict = Policy(postmortem_severities=["P1", "P2", "P3"])
        events, history = made(_p3_straight_to_kb, strict)  # goes through the post-mortem
        assert "postmortem_completed" in [e["type"] for e in events]
        (read_back,) = read(events)
        assert read_back.events == history
        assert replay(read_back.events).postmortem_required


class TestDeclarations:
    """A history has exactly one declaration, first."""

    def test_second_declaration(self) -> None:
        """A second ``declared`` event is refused naming its line, not a traceback."""
        events, _ = made(_p1_with_postmortem)
        again = renumbered([*events[:3], {**events[0], "at": events[2]["at"]}, *events[3:]])
        error = refusal(again)
        assert named_line(error) == 5
        assert "declares the incident again" in str(error)

    def test_second_declaration_at_the_end(self) -> None:
        """A ``declared`` event after the closing is refused as well."""
        events, _ = made(_dismissed)
        error = refusal(renumbered([*events, {**events[0], "at": events[-1]["at"]}]))
        assert named_line(error) == len(events) + 2


class TestImportOutcome:
    """What import_histories does with incidents already stored, and with files."""

    def test_catch_up(self, sqlite_flow: IncidentFlow) -> None:
        """A stored history that is the start of the imported one gets the rest appended."""
        clock = FrozenClock(START)
        with IncidentFlow.in_memory(clock=clock) as source:
            incident_id = drive_to(source, clock, "resolved", "P1").id
            earlier = exported(source, incident_id)
            advance_to(source, clock, incident_id, "kb_updated")
            later = exported(source, incident_id)
            history = tuple(source.history(incident_id))
        assert imported_into(sqlite_flow, earlier).imported == (incident_id,)

        outcome = imported_into(sqlite_flow, later)

        assert outcome == ImportOutcome(extended=(incident_id,))
        assert tuple(sqlite_flow.history(incident_id)) == history
        assert sqlite_flow.get(incident_id) == replay(history)
        assert sqlite_flow.verify(incident_id)
        assert imported_into(sqlite_flow, later) == ImportOutcome(present=(incident_id,))

    def test_diverging_history_is_a_conflict(self, sqlite_flow: IncidentFlow) -> None:
        """A stored history that is not the start of the imported one is left untouched."""
        events, _ = made(_p1_with_postmortem)
        incident_id = events[0]["incident_id"]
        evidence = events.index(of_type(events, "evidence_added"))
        start = events[: evidence + 1]
        edited = [*start[:-1], {**start[-1], "data": {**start[-1]["data"], "content": "other"}}]
        imported_into(sqlite_flow, edited)
        stored = tuple(sqlite_flow.history(incident_id))

        assert imported_into(sqlite_flow, events) == ImportOutcome(conflicts=(incident_id,))
        assert tuple(sqlite_flow.history(incident_id)) == stored

    def test_older_export_is_already_present(self, sqlite_flow: IncidentFlow) -> None:
        """An export older than what is stored is reported as older, and nothing changes."""
        events, history = made(_p1_with_postmortem)
        incident_id = events[0]["incident_id"]
        imported_into(sqlite_flow, events)
        assert imported_into(sqlite_flow, events[:5]) == ImportOutcome(older=(incident_id,))
        assert tuple(sqlite_flow.history(incident_id)) == history

    def test_another_writer_first(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An incident another writer stores between the check and the write counts as present."""
        events, _ = made(_p1_with_postmortem)
        incident_id = events[0]["incident_id"]
        flow = IncidentFlow.in_memory()
        imported_into(flow, events)
        exists = flow.store.exists
        told: list[str] = []

        def exists_late(asked: str) -> bool:
            if not told:  # the other writer commits just after this first look
                told.append(asked)
                return False
            return exists(asked)

        monkeypatch.setattr(flow.store, "exists", exists_late)
        assert imported_into(flow, events) == ImportOutcome(present=(incident_id,))

    def test_unwritable_files(self, tmp_path: Path) -> None:
        """Files that cannot be written leave the imports committed and are reported."""
        blocked = tmp_path / "incidents"
        blocked.write_text("a file where the folder should be", encoding="utf-8")
        flow = IncidentFlow.in_memory(incidents_dir=blocked)
        first, _ = made(_p1_with_postmortem)
        second, _ = made(_dismissed)
        ids = (first[0]["incident_id"], second[0]["incident_id"])

        outcome = imported_into(flow, first + second)

        assert outcome == ImportOutcome(imported=ids, unwritten=ids)
        assert [flow.get(i).id for i in ids] == list(ids)

    def test_files_written(self, tmp_path: Path) -> None:
        """Imported and extended incidents get their files, as after a command."""
        flow = IncidentFlow.in_memory(incidents_dir=tmp_path / "incidents")
        events, _ = made(_p1_with_postmortem)
        assert imported_into(flow, events).unwritten == ()
        path = flow.incident_path(events[0]["incident_id"])
        assert path is not None
        assert path.exists()


# -- properties ------------------------------------------------------------------------

NAMES = ("alice", "bob", "carol", "dave")
TITLE_P1 = "Checkout returns 500"
WAITS = st.sampled_from(
    [
        timedelta(0),
        timedelta(minutes=1),
        timedelta(minutes=16),
        timedelta(hours=3),
        timedelta(days=2),
    ]
)
POLICIES = st.builds(
    Policy,
    blame_check=st.sampled_from(list(BlameCheck)),
    confirmer_must_differ=st.booleans(),
    # P1 and P2 always need a post-mortem: a policy may add severities, never drop these.
    postmortem_severities=st.sets(st.sampled_from(Severity)).map(
        lambda s: s | {Severity.P1, Severity.P2}
    ),
)
PM_TEXTS = ("the deploy script skipped the migration", "bob forgot the key", "rollback was fast")
BLAMELESS = ("the deploy script skipped the migration", "rollback was fast")


def _next_step(
    flow: IncidentFlow, incident_id: str, data: st.DataObject, pm_texts: Sequence[str] = PM_TEXTS
) -> tuple[str, dict[str, Any]]:
    """A command, with valid arguments, that moves the incident along the main path."""
    inc = flow.get(incident_id)
    if inc.state is State.DECLARED:
        return "start_triage", {}
    if inc.state is State.TRIAGING:
        missing = [q for q in flow.policy.required_triage_answers if q not in inc.triage]
        if not inc.evidence:
            return "add_evidence", {"source": "journalctl", "content": "500s"}
        if missing:
            return "answer_triage", {"question": missing[0], "answer": "checkout fails"}
        if not inc.containment:
            return "record_containment", {"description": "rolled back"}
        return "contain", {}
    if inc.state is State.CONTAINED:
        return "start_rca", {}
    if inc.state is State.RCA:
        if not inc.whys:
            return "add_why", {"answer": "the pool ran dry"}
        if inc.root_cause is None:
            return "set_root_cause", {"statement": "leak", "process_gap": "no load test"}
        if inc.fix is None:
            return "record_fix", {"description": "pool", "test": "t", "staging_verified": True}
        if not inc.deploys:
            return "record_deploy", {"ref": "v2"}
        return "mark_fixed", {}
    if inc.state is State.FIXED:
        confirmation = inc.confirmation
        # Nobody who has commanded the incident may confirm: a handoff does not change that.
        handed = (h.from_person for h in inc.handoffs if h.role == "commander")
        commanders = {inc.commander, *handed}
        if confirmation is None or not confirmation.positive or confirmation.user in commanders:
            others = [n for n in NAMES if n not in commanders]
            return "confirm_by_user", {"user": data.draw(st.sampled_from(others))}
        return "resolve", {}
    if inc.state is State.RESOLVED:
        if not inc.action_items:
            due = flow.now().date() + timedelta(days=7)
            return "add_action_item", {"description": "load test", "owner": "dana", "due": due}
        if inc.postmortem_required:
            return "complete_postmortem", {
                "summary": data.draw(st.sampled_from(pm_texts)),
                "root_cause": "no load test",
                "went_well": [data.draw(st.sampled_from(pm_texts))],
                "went_poorly": ["the alert was late"],
            }
    return "update_kb", {"symptom": "500s", "early_signs": "pool at 80%"}


def _detour(
    flow: IncidentFlow, incident_id: str, data: st.DataObject, *, dismiss: bool
) -> tuple[str, dict[str, Any]]:
    """A valid step off the main path."""
    inc = flow.get(incident_id)
    kinds = ["reclassify", "assign_commander", "add_note", "record_detection"]
    if dismiss and inc.state in (State.DECLARED, State.TRIAGING) and data.draw(st.booleans()):
        kinds.append("dismiss")
    if inc.state is State.FIXED:
        kinds += ["confirm_by_user", "reopen", "draft_postmortem"]
    if inc.state is State.RESOLVED:
        kinds += ["reopen", "draft_postmortem"]
    if inc.state is State.RCA and inc.deploys:
        kinds.append("record_deploy")
    if inc.action_items:
        kinds.append("complete_action_item")
    kind = data.draw(st.sampled_from(kinds))
    others = [n for n in NAMES if n != inc.commander]
    choices: dict[str, dict[str, Any]] = {
        "reclassify": {"severity": data.draw(st.sampled_from(Severity)), "reason": "scope"},
        "assign_commander": {"commander": others[0]},
        "add_note": {"text": "support informed"},
        "record_detection": {"method": "alert", "first_occurred_at": inc.declared_at},
        "dismiss": {"reason": "false alarm"},
        "confirm_by_user": {
            "user": data.draw(st.sampled_from(NAMES)),
            "positive": data.draw(st.booleans()),
        },
        "reopen": {"reason": "it came back", "to": data.draw(st.sampled_from(["rca", "triaging"]))},
        "draft_postmortem": {"summary": data.draw(st.sampled_from(PM_TEXTS))},
        "record_deploy": {"ref": "hotfix", "deployed_at": inc.declared_at},
        "complete_action_item": {"number": data.draw(st.sampled_from([1, len(inc.action_items)]))},
    }
    return kind, choices[kind]


def _step(
    flow: IncidentFlow, clock: FrozenClock, incident_id: str, data: st.DataObject, *, dismiss: bool
) -> None:
    """One random, mostly valid step on the incident; a refusal changes nothing."""
    clock.advance(data.draw(WAITS))
    roll = data.draw(st.integers(0, 9))
    if roll == 0:
        flow.check_deadlines()
        return
    if roll <= 2:
        command, args = _detour(flow, incident_id, data, dismiss=dismiss)
    else:
        command, args = _next_step(flow, incident_id, data)
    actor = data.draw(st.sampled_from(NAMES))
    with contextlib.suppress(IncidentFlowError):
        getattr(flow, command)(incident_id, actor=actor, **args)


PROPERTY = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class TestProperties:
    """Histories the library writes import; one event less imports only if still valid."""

    @PROPERTY
    @given(policy=POLICIES, data=st.data())
    def test_round_trip(self, policy: Policy, data: st.DataObject) -> None:
        """Random histories round-trip through export and import into an empty store."""
        clock = FrozenClock(START)
        source = IncidentFlow.in_memory(clock=clock, policy=policy)
        ids: list[str] = []
        for _ in range(data.draw(st.integers(1, 80), label="steps")):
            if not ids or (len(ids) < 3 and data.draw(st.integers(0, 30)) == 0):
                severity = data.draw(st.sampled_from(Severity))
                ids.append(
                    source.declare(
                        f"Incident {len(ids)}", severity=severity, commander="alice", actor="alice"
                    ).id
                )
            _step(source, clock, data.draw(st.sampled_from(ids)), data, dismiss=True)
        text = "\n".join(export_lines(source, ids)) + "\n"
        target = IncidentFlow.in_memory(policy=policy)

        outcome = import_histories(target, read_export(io.StringIO(text), "random.jsonl", policy))

        assert outcome == ImportOutcome(imported=tuple(ids))
        for incident_id in ids:
            assert target.history(incident_id) == source.history(incident_id)
            assert target.get(incident_id) == source.get(incident_id)

    @PROPERTY
    @given(policy=POLICIES, data=st.data())
    def test_one_event_deleted(self, policy: Policy, data: st.DataObject) -> None:
        """One event deleted from a closed P1 imports exactly when the live flow would write it."""
        clock = FrozenClock(START)
        source = IncidentFlow.in_memory(clock=clock, policy=policy)
        incident_id = source.declare(TITLE_P1, severity="P1", commander="alice", actor="alice").id
        for _ in range(data.draw(st.integers(0, 30), label="detours")):
            _step(source, clock, incident_id, data, dismiss=False)
        for _ in range(60):
            if source.get(incident_id).state is State.KB_UPDATED:
                break
            clock.advance(minutes=16)
            command, args = _next_step(source, incident_id, data, BLAMELESS)
            getattr(source, command)(incident_id, actor="bob", **args)
        assert source.get(incident_id).state is State.KB_UPDATED
        events = exported(source, incident_id)
        gone = data.draw(st.integers(0, len(events) - 1), label="deleted")
        _check_deletion(events, gone, policy)

    @pytest.mark.parametrize("make", [_detours, _negative_confirmation, _deadlines_breached])
    def test_every_single_deletion(self, make: Callable[[IncidentFlow, FrozenClock], str]) -> None:
        """Each single-event deletion from a rich closed P1 imports exactly when still valid."""
        events, _ = made(make)
        for gone in range(len(events)):
            _check_deletion(events, gone, Policy())


def _check_deletion(events: Lines, gone: int, policy: Policy) -> None:
    """Delete event ``gone``: the import must agree with the live flow, and never crash."""
    cut = renumbered(events[:gone] + events[gone + 1 :])
    refused: ValidationError | None = None
    try:
        histories = read(cut, policy)
    except ValidationError as exc:  # any other exception fails the test
        refused = exc
    if refused is not None:
        assert refused.field.startswith(f"{NAME}:"), refused
        # Without the declaration there is nothing to run again.
        live = gone > 0 and relive(tuple(event_from_dict(line) for line in cut), policy)
        assert not live, f"refused a history the live flow writes: {refused}"
        return
    (history,) = histories
    assert relive(history.events, policy), f"accepted event {gone + 1} deleted"
    flow = IncidentFlow.in_memory(policy=policy)
    incident_id = history.incident_id
    assert import_histories(flow, histories) == ImportOutcome(imported=(incident_id,))
    assert flow.verify(incident_id)


class TestImportChecks:
    """What an export may not hold, and what it may (issue 11: exports always re-import)."""

    def test_a_schema_version_from_the_future_is_refused(self) -> None:
        """schema_version 999 names the line and says which versions this release reads."""
        events, _ = made(_p1_with_postmortem)
        events[3] = {**events[3], "schema_version": 999}
        with pytest.raises(ValidationError) as info:
            read(events)
        assert info.value.field == "forged.jsonl:5"
        assert "schema_version 999" in info.value.message

    def test_an_idempotency_key_must_be_text(self) -> None:
        """A key that is a JSON object is refused on import, not later by the store."""
        events, _ = made(_p1_with_postmortem)
        events[2] = {**events[2], "idempotency_key": {"a": 1}}
        with pytest.raises(ValidationError) as info:
            read(events)
        assert info.value.field.startswith("forged.jsonl:4")

    def test_a_bad_actor_names_the_file_and_line(self) -> None:
        """An actor with a line break is refused naming the file and line, as every check is."""
        events, _ = made(_p1_with_postmortem)
        events[3] = {**events[3], "actor": "bob\nmallory"}
        with pytest.raises(ValidationError) as info:
            read(events)
        assert info.value.field == "forged.jsonl:5: actor"
        assert "line breaks" in info.value.message

    def test_a_declaration_far_in_the_future_is_refused(self) -> None:
        """An incident dated 9999-12-30 is refused, naming the writer's clock."""
        events, _ = made(_p1_with_postmortem)
        lines = [json.loads(json.dumps(e).replace("2026-11-27", "9999-12-30")) for e in events]
        with pytest.raises(ValidationError) as info:
            read_export(as_file(lines), "forged.jsonl", now=START)
        assert "check the writer's clock" in info.value.message

    @pytest.mark.parametrize("skew", [timedelta(minutes=-5), timedelta(minutes=5)])
    def test_hosts_with_skewed_clocks_re_import(
        self, sqlite_flow: IncidentFlow, skew: timedelta
    ) -> None:
        """Two writers whose clocks differ by five minutes: the export imports as written."""
        clock = FrozenClock(START)
        other = FrozenClock(START + skew)
        with IncidentFlow.in_memory(clock=clock) as flow:
            inc = drive_to(flow, clock, "triaging", "P2")
            other.advance(minutes=1)
            skewed = IncidentFlow(flow.store, clock=other)  # another host, same store
            skewed.add_evidence(inc.id, source="logs", content="500s", actor=RESPONDER)
            flow.add_note(inc.id, "rolled back", actor=COMMANDER)
            assert flow.verify(inc.id)
            lines = exported(flow, inc.id)
            history = tuple(flow.history(inc.id))
        assert imported_into(sqlite_flow, lines) == ImportOutcome(imported=(inc.id,))
        assert tuple(sqlite_flow.history(inc.id)) == history


class TestStreaming:
    """An export is read one history at a time: memory does not grow with its size."""

    @staticmethod
    def _export(incidents: int) -> bytes:
        clock = FrozenClock(START)
        with IncidentFlow.in_memory(clock=clock) as flow:
            ids = [
                flow.declare(f"Alert {n}", severity="P4", commander=COMMANDER, actor=COMMANDER).id
                for n in range(incidents)
            ]
            return "".join(line + "\n" for line in export_lines(flow, ids)).encode("utf-8")

    def test_memory_does_not_grow_with_the_export(self) -> None:
        """Reading 2,000 incidents peaks at what reading 200 does, give or take noise."""
        import tracemalloc

        from incidentflow._transfer import iter_export

        def peak(data: bytes) -> int:
            tracemalloc.start()
            try:
                for _ in iter_export(io.BytesIO(data), "big.jsonl"):
                    pass
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

        small, large = self._export(200), self._export(2_000)
        peak(large)  # warm the converter's caches
        held = 2_000 * len(large) // len(large.splitlines())  # a line per incident, kept
        # Holding every history would add at least a line per incident; reading one at a
        # time adds nothing that grows with the file.
        assert peak(large) - peak(small) < held // 4

    def test_a_history_split_in_two_is_refused(self) -> None:
        """Each incident's events stand together; one that starts again is named by its line."""
        lines = self._export(2).decode("utf-8").splitlines()
        header, first, second = lines[0], lines[1], lines[2]
        again = json.loads(first)
        again["seq"] = 2
        text = "\n".join([header, first, second, json.dumps(again)]) + "\n"
        with pytest.raises(ValidationError) as info:
            read_export(io.StringIO(text), "split.jsonl")
        assert info.value.field == "split.jsonl:4"
        assert "start again" in info.value.message
