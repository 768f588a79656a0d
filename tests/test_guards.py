"""Every guard reason of every command, all listed at once, and ``can`` agreeing with them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

from helpers import COMMANDER, RESPONDER, USER, advance_to, declare, drive_to, unchanged
from incidentflow import (
    BlameCheck,
    CommandRequest,
    ConfigError,
    Incident,
    IncidentFlow,
    Policy,
    State,
    TransitionRejected,
)
from incidentflow.commands import reason_codes
from incidentflow.testing import FrozenClock

Drive = Callable[..., Incident]


def rejected(
    flow: IncidentFlow,
    incident_id: str,
    command: str,
    call: Callable[[], object],
    **can_args: Any,
) -> tuple[str, ...]:
    """Run ``call`` expecting TransitionRejected; check ``can`` said the same, and nothing moved.

    Returns the reasons.
    """
    before = flow.get(incident_id)
    history = list(flow.history(incident_id))
    verdict = flow.can(incident_id, command, **can_args)
    assert flow.get(incident_id) == before
    assert list(flow.history(incident_id)) == history
    assert not verdict
    with unchanged(flow, incident_id), pytest.raises(TransitionRejected) as info:
        call()
    assert info.value.incident_id == incident_id
    assert info.value.command == command
    assert info.value.reasons == verdict.reasons
    codes = reason_codes()
    for reason in info.value.reasons:
        assert reason.message in str(info.value)
        assert reason.code in codes, reason
    return tuple(str(r) for r in info.value.reasons)


def one(reasons: tuple[str, ...], fragment: str) -> str:
    """The single reason containing ``fragment``."""
    found = [r for r in reasons if fragment in r]
    assert len(found) == 1, (fragment, reasons)
    return found[0]


class TestCan:
    def test_allowed_verdict_is_truthy(self, drive: Drive, flow: IncidentFlow) -> None:
        """can() says yes, with no reasons, when every guard holds."""
        inc = drive("triaging")
        advance = flow.can(inc.id, "dismiss")
        assert advance
        assert advance.allowed is True
        assert advance.reasons == ()

    def test_wrong_state_is_answered_not_raised(self, drive: Drive, flow: IncidentFlow) -> None:
        """can() for a command the state does not allow says no and names the allowed states."""
        inc = drive("declared")
        verdict = flow.can(inc.id, "resolve")
        assert not verdict
        (reason,) = verdict.reasons
        assert reason.code == "state.not_allowed"
        assert reason.data["allowed_states"] == ["fixed"]
        assert "fixed" in str(reason)

    def test_has_no_side_effects(self, drive: Drive, flow: IncidentFlow) -> None:
        """Asking can() many times writes nothing."""
        inc = drive("rca")
        with unchanged(flow, inc.id):
            for command in ("mark_fixed", "add_why", "resolve", "contain", "update_kb"):
                flow.can(inc.id, command)


class TestContainGuards:
    def test_every_reason_at_once(self, drive: Drive, flow: IncidentFlow) -> None:
        """Without evidence, triage answers or containment, contain lists all three."""
        inc = drive("triaging")
        reasons = rejected(flow, inc.id, "contain", lambda: flow.contain(inc.id, actor=COMMANDER))
        assert len(reasons) == 3
        one(reasons, "no evidence")
        triage = one(reasons, "triage checklist not answered")
        for question in ("symptom", "started_at", "scope"):
            assert question in triage
        one(reasons, "no containment action")

    @pytest.mark.parametrize("missing", ["symptom", "started_at", "scope"])
    def test_each_missing_triage_answer_is_named(
        self, drive: Drive, flow: IncidentFlow, missing: str
    ) -> None:
        """The triage reason names exactly the unanswered questions."""
        inc = drive("triaging")
        flow.add_evidence(inc.id, source="logs", content="500s", actor=RESPONDER)
        flow.record_containment(inc.id, "rolled back", actor=RESPONDER)
        answered = [q for q in ("symptom", "started_at", "scope") if q != missing]
        for question in answered:
            flow.answer_triage(inc.id, question, "answered", actor=RESPONDER)
        (reason,) = rejected(flow, inc.id, "contain", lambda: flow.contain(inc.id, actor=COMMANDER))
        assert missing in reason
        for question in answered:
            assert question not in reason.replace(missing, "")

    def test_missing_evidence_alone(self, drive: Drive, flow: IncidentFlow) -> None:
        """With answers and containment but no evidence, only the evidence is missing."""
        inc = drive("triaging")
        for question in ("symptom", "started_at", "scope"):
            flow.answer_triage(inc.id, question, "answered", actor=RESPONDER)
        flow.record_containment(inc.id, "rolled back", actor=RESPONDER)
        (reason,) = rejected(flow, inc.id, "contain", lambda: flow.contain(inc.id, actor=COMMANDER))
        assert "evidence" in reason

    def test_missing_containment_alone(self, drive: Drive, flow: IncidentFlow) -> None:
        """With evidence and answers but no containment action, only that is missing."""
        inc = drive("triaging")
        flow.add_evidence(inc.id, source="logs", content="500s", actor=RESPONDER)
        for question in ("symptom", "started_at", "scope"):
            flow.answer_triage(inc.id, question, "answered", actor=RESPONDER)
        (reason,) = rejected(flow, inc.id, "contain", lambda: flow.contain(inc.id, actor=COMMANDER))
        assert "containment" in reason

    def test_policy_names_the_required_answers(self, clock: FrozenClock) -> None:
        """The policy's required triage answers are the ones the guard asks for."""
        flow = IncidentFlow.in_memory(
            clock=clock, policy=Policy(required_triage_answers=("symptom", "blast_radius"))
        )
        inc = drive_to(flow, clock, "triaging")
        flow.answer_triage(inc.id, "symptom", "500s", actor=RESPONDER)
        reasons = rejected(flow, inc.id, "contain", lambda: flow.contain(inc.id, actor=COMMANDER))
        triage = one(reasons, "triage checklist")
        assert "blast_radius" in triage
        assert "scope" not in triage
        flow.answer_triage(inc.id, "Blast radius", "one region", actor=RESPONDER)
        assert "triage.unanswered" not in [r.code for r in flow.can(inc.id, "contain").reasons]


class TestMarkFixedGuards:
    def test_every_reason_at_once(self, drive: Drive, flow: IncidentFlow) -> None:
        """Straight after start_rca, mark_fixed lists whys, root cause, fix and deploy."""
        inc = drive("rca")
        reasons = rejected(
            flow, inc.id, "mark_fixed", lambda: flow.mark_fixed(inc.id, actor=COMMANDER)
        )
        assert len(reasons) == 4
        one(reasons, "5-Whys")
        one(reasons, "root cause")
        one(reasons, "no fix recorded")
        one(reasons, "no deploy")

    def test_fix_not_verified_on_staging(self, drive: Drive, flow: IncidentFlow) -> None:
        """A fix not verified on staging blocks mark_fixed with exactly that reason."""
        inc = drive("rca")
        flow.add_why(inc.id, "pool exhausted", actor=RESPONDER)
        flow.set_root_cause(inc.id, "leak", process_gap="no load test", actor=RESPONDER)
        flow.record_fix(inc.id, "reuse", test="t", staging_verified=False, actor=RESPONDER)
        flow.record_deploy(inc.id, actor=RESPONDER)
        (reason,) = rejected(
            flow, inc.id, "mark_fixed", lambda: flow.mark_fixed(inc.id, actor=COMMANDER)
        )
        assert "staging" in reason
        flow.record_fix(inc.id, "reuse", test="t", staging_verified=True, actor=RESPONDER)
        assert flow.mark_fixed(inc.id, actor=COMMANDER).state is State.FIXED

    @pytest.mark.parametrize("left_out", ["why", "root_cause", "fix", "deploy"])
    def test_each_requirement_alone(self, drive: Drive, flow: IncidentFlow, left_out: str) -> None:
        """Leaving out any one requirement gives one reason, about it."""
        inc = drive("rca")
        if left_out != "why":
            flow.add_why(inc.id, "pool exhausted", actor=RESPONDER)
        if left_out != "root_cause":
            flow.set_root_cause(inc.id, "leak", process_gap="no load test", actor=RESPONDER)
        if left_out != "fix":
            flow.record_fix(inc.id, "reuse", test="t", staging_verified=True, actor=RESPONDER)
            if left_out != "deploy":
                flow.record_deploy(inc.id, actor=RESPONDER)
        reasons = rejected(
            flow, inc.id, "mark_fixed", lambda: flow.mark_fixed(inc.id, actor=COMMANDER)
        )
        expected = {
            "why": ["5-Whys"],
            "root_cause": ["root cause"],
            # without a fix there can be no deploy either
            "fix": ["no fix recorded", "no deploy"],
            "deploy": ["no deploy"],
        }[left_out]
        assert len(reasons) == len(expected)
        for fragment in expected:
            one(reasons, fragment)


class TestResolveGuards:
    def test_no_confirmation_and_watch_window_at_once(
        self, drive: Drive, flow: IncidentFlow
    ) -> None:
        """Right after the deploy, resolve lists the missing confirmation and the watch window."""
        inc = drive("fixed")
        deployed = inc.deploys[-1].deployed_at
        reasons = rejected(flow, inc.id, "resolve", lambda: flow.resolve(inc.id, actor=COMMANDER))
        assert len(reasons) == 2
        confirmation = one(reasons, "no user confirmation recorded after the deploy")
        assert f"{deployed:%H:%M} UTC" in confirmation
        one(reasons, "watch window")

    def test_no_confirmation_alone(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """After the watch window, a missing confirmation is the only reason."""
        inc = drive("fixed")
        clock.advance(minutes=30)
        (reason,) = rejected(flow, inc.id, "resolve", lambda: flow.resolve(inc.id, actor=COMMANDER))
        assert "no user confirmation" in reason

    def test_negative_confirmation_blocks_resolve(self, drive: Drive, flow: IncidentFlow) -> None:
        """After a negative answer the incident is back in rca and cannot be resolved."""
        inc = drive("fixed")
        flow.confirm_by_user(inc.id, user=USER, positive=False, actor=COMMANDER)
        verdict = flow.can(inc.id, "resolve")
        assert not verdict
        assert "fixed" in str(verdict.reasons[0])
        assert flow.get(inc.id).state is State.RCA

    def test_confirmer_is_the_commander(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The commander confirming their own fix does not count."""
        inc = drive("fixed")
        clock.advance(minutes=30)
        flow.confirm_by_user(inc.id, user=COMMANDER, actor=COMMANDER)
        (reason,) = rejected(flow, inc.id, "resolve", lambda: flow.resolve(inc.id, actor=COMMANDER))
        assert "commander" in reason
        assert COMMANDER in reason

    def test_policy_switch_lets_the_commander_confirm(self, clock: FrozenClock) -> None:
        """Policy(confirmer_must_differ=False) accepts the commander's own confirmation."""
        flow = IncidentFlow.in_memory(clock=clock, policy=Policy(confirmer_must_differ=False))
        inc = drive_to(flow, clock, "fixed")
        clock.advance(minutes=30)
        flow.confirm_by_user(inc.id, user=COMMANDER, actor=COMMANDER)
        assert flow.can(inc.id, "resolve")
        assert flow.resolve(inc.id, actor=COMMANDER).state is State.RESOLVED

    def test_watch_window_runs_from_the_deploy(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """resolve waits until 15 minutes after the deploy, to the minute."""
        inc = drive("fixed")
        deployed = inc.deploys[-1].deployed_at
        flow.confirm_by_user(inc.id, user=USER, actor=COMMANDER)
        clock.set(deployed + timedelta(minutes=14))
        (reason,) = rejected(flow, inc.id, "resolve", lambda: flow.resolve(inc.id, actor=COMMANDER))
        assert "watch window" in reason
        assert f"{deployed + timedelta(minutes=15):%H:%M} UTC" in reason
        assert "1m00s left" in reason
        clock.set(deployed + timedelta(minutes=14, seconds=59))
        (reason,) = rejected(flow, inc.id, "resolve", lambda: flow.resolve(inc.id, actor=COMMANDER))
        assert "(1s left)" in reason  # exact: never a minute that has already passed
        clock.set(deployed + timedelta(minutes=15))
        assert flow.resolve(inc.id, actor=COMMANDER).state is State.RESOLVED

    def test_policy_sets_the_watch_window(self, clock: FrozenClock) -> None:
        """A longer watch window in the policy keeps the incident open longer."""
        flow = IncidentFlow.in_memory(clock=clock, policy=Policy(watch_window=timedelta(hours=1)))
        inc = drive_to(flow, clock, "fixed")
        flow.confirm_by_user(inc.id, user=USER, actor=COMMANDER)
        clock.advance(minutes=30)
        (reason,) = rejected(flow, inc.id, "resolve", lambda: flow.resolve(inc.id, actor=COMMANDER))
        assert "30m00s left" in reason
        clock.advance(minutes=30)
        assert flow.resolve(inc.id, actor=COMMANDER).state is State.RESOLVED


PM_FIELDS = {
    "summary": "checkout failed for 40 minutes",
    "root_cause": "a connection leak shipped without a load test",
    "went_well": ["rollback in two minutes"],
    "went_poorly": ["the alert fired late"],
}
PM_REASONS = {
    "summary": "no summary",
    "root_cause": "no root cause",
    "went_well": "went well",
    "went_poorly": "went poorly",
}


class TestCompletePostmortemGuards:
    def test_every_reason_at_once(self, drive: Drive, flow: IncidentFlow) -> None:
        """An empty post-mortem lists summary, root cause, went well, went poorly, action items."""
        inc = drive("resolved")
        reasons = rejected(
            flow,
            inc.id,
            "complete_postmortem",
            lambda: flow.complete_postmortem(inc.id, actor=COMMANDER),
        )
        assert len(reasons) == 5
        for fragment in PM_REASONS.values():
            one(reasons, fragment)
        one(reasons, "action items")

    @pytest.mark.parametrize("missing", sorted(PM_FIELDS))
    def test_each_missing_field_alone(self, drive: Drive, flow: IncidentFlow, missing: str) -> None:
        """Each missing post-mortem field is its own reason."""
        inc = drive("resolved")
        flow.add_action_item(inc.id, "load test", owner="dana", due=date(2026, 12, 1), actor="a")
        given = {k: v for k, v in PM_FIELDS.items() if k != missing}
        flow.draft_postmortem(inc.id, actor=COMMANDER, **given)
        (reason,) = rejected(
            flow,
            inc.id,
            "complete_postmortem",
            lambda: flow.complete_postmortem(inc.id, actor=COMMANDER),
        )
        assert PM_REASONS[missing] in reason

    def test_can_checks_the_fields_given_to_it(self, drive: Drive, flow: IncidentFlow) -> None:
        """can() with some post-mortem fields, like the command, names only the missing one."""
        inc = drive("resolved")
        flow.add_action_item(inc.id, "load test", owner="dana", due=date(2026, 12, 1), actor="a")
        missing = "summary"
        given = {k: v for k, v in PM_FIELDS.items() if k != missing}
        (reason,) = rejected(
            flow,
            inc.id,
            "complete_postmortem",
            lambda: flow.complete_postmortem(inc.id, actor=COMMANDER, **given),
            **given,
        )
        assert PM_REASONS[missing] in reason

    def test_missing_action_items_alone(self, drive: Drive, flow: IncidentFlow) -> None:
        """A complete write-up without action items is refused for that alone."""
        inc = drive("resolved")
        (reason,) = rejected(
            flow,
            inc.id,
            "complete_postmortem",
            lambda: flow.complete_postmortem(inc.id, actor=COMMANDER, **PM_FIELDS),
            **PM_FIELDS,
        )
        assert "action item" in reason

    def test_drafted_fields_count(self, drive: Drive, flow: IncidentFlow) -> None:
        """Fields filled earlier with draft_postmortem satisfy the guard."""
        inc = drive("resolved")
        flow.add_action_item(inc.id, "load test", owner="dana", due=date(2026, 12, 1), actor="a")
        flow.draft_postmortem(inc.id, actor=COMMANDER, **PM_FIELDS)
        assert flow.can(inc.id, "complete_postmortem")
        assert flow.complete_postmortem(inc.id, actor=COMMANDER).state is State.POSTMORTEM

    def test_blame_rejected_in_reject_mode(self, clock: FrozenClock) -> None:
        """With blame_check="reject", blaming a participant or "human error" is refused."""
        flow = IncidentFlow.in_memory(clock=clock, policy=Policy(blame_check="reject"))
        inc = drive_to(flow, clock, "resolved")
        flow.add_action_item(inc.id, "load test", owner="dana", due=date(2026, 12, 1), actor="a")
        fields = dict(PM_FIELDS, summary=f"{RESPONDER} forgot the migration; human error")
        reasons = rejected(
            flow,
            inc.id,
            "complete_postmortem",
            lambda: flow.complete_postmortem(inc.id, actor=COMMANDER, **fields),
            **fields,
        )
        assert len(reasons) == 2
        one(reasons, f"{RESPONDER} forgot")
        one(reasons, "human error")

    def test_blame_warned_in_warn_mode(self, drive: Drive, flow: IncidentFlow) -> None:
        """By default blame is accepted and recorded as warnings on the event and the snapshot."""
        assert flow.policy.blame_check is BlameCheck.WARN
        inc = drive("resolved")
        flow.add_action_item(inc.id, "load test", owner="dana", due=date(2026, 12, 1), actor="a")
        fields = dict(PM_FIELDS, went_poorly=[f"{RESPONDER} broke the deploy"])
        assert flow.can(inc.id, "complete_postmortem", **fields)
        after = flow.complete_postmortem(inc.id, actor=COMMANDER, **fields)
        assert after.state is State.POSTMORTEM
        assert after.postmortem is not None
        (warning,) = after.postmortem.blame_warnings
        assert f"{RESPONDER} broke" in warning
        event = flow.history(inc.id)[-1]
        assert event.type == "postmortem_completed"
        assert event.data.blame_warnings == (warning,)  # type: ignore[attr-defined]

    def test_blame_ignored_when_off(self, clock: FrozenClock) -> None:
        """With blame_check="off", no warnings are recorded."""
        flow = IncidentFlow.in_memory(clock=clock, policy=Policy(blame_check="off"))
        inc = drive_to(flow, clock, "resolved")
        flow.add_action_item(inc.id, "load test", owner="dana", due=date(2026, 12, 1), actor="a")
        fields = dict(PM_FIELDS, summary="human error")
        after = flow.complete_postmortem(inc.id, actor=COMMANDER, **fields)
        assert after.postmortem is not None
        assert after.postmortem.blame_warnings == ()

    def test_clean_postmortem_has_no_warnings(self, drive: Drive) -> None:
        """A post-mortem about the process carries no blame warnings."""
        inc = drive("postmortem")
        assert inc.postmortem is not None
        assert inc.postmortem.blame_warnings == ()


class TestUpdateKbGuards:
    def test_p1_from_resolved_lists_postmortem_and_action_items(
        self, drive: Drive, flow: IncidentFlow
    ) -> None:
        """A resolved P1 without post-mortem or action items is refused for both reasons."""
        inc = drive("resolved", "P1")
        reasons = rejected(
            flow,
            inc.id,
            "update_kb",
            lambda: flow.update_kb(inc.id, symptom="s", early_signs="e", actor=COMMANDER),
        )
        assert len(reasons) == 2
        assert "P1" in one(reasons, "post-mortem")
        one(reasons, "action items")

    @pytest.mark.parametrize("severity", ["P1", "P2"])
    def test_post_mortem_required_even_with_action_items(
        self, drive: Drive, flow: IncidentFlow, severity: str
    ) -> None:
        """P1 and P2 incidents cannot skip the post-mortem."""
        inc = drive("resolved", severity)
        flow.add_action_item(inc.id, "load test", owner="dana", due=date(2026, 12, 1), actor="a")
        (reason,) = rejected(
            flow,
            inc.id,
            "update_kb",
            lambda: flow.update_kb(inc.id, symptom="s", early_signs="e", actor=COMMANDER),
        )
        assert "post-mortem" in reason

    @pytest.mark.parametrize("severity", ["P3", "P4"])
    def test_minor_incident_needs_an_action_item(
        self, drive: Drive, flow: IncidentFlow, severity: str
    ) -> None:
        """A P3/P4 may skip the post-mortem but not the action item."""
        inc = drive("resolved", severity)
        (reason,) = rejected(
            flow,
            inc.id,
            "update_kb",
            lambda: flow.update_kb(inc.id, symptom="s", early_signs="e", actor=COMMANDER),
        )
        assert "action item" in reason

    def test_policy_can_require_a_postmortem_for_p3(self, clock: FrozenClock) -> None:
        """postmortem_severities decides which incidents need a post-mortem."""
        policy = Policy(postmortem_severities=["P1", "P2", "P3"])
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = drive_to(flow, clock, "resolved", "P3")
        assert inc.postmortem_required
        flow.add_action_item(inc.id, "load test", owner="dana", due=date(2026, 12, 1), actor="a")
        (reason,) = rejected(
            flow,
            inc.id,
            "update_kb",
            lambda: flow.update_kb(inc.id, symptom="s", early_signs="e", actor=COMMANDER),
        )
        assert "post-mortem" in reason


class TestRecordingGuards:
    def test_no_sixth_why(self, drive: Drive, flow: IncidentFlow) -> None:
        """The 5-Whys chain stops at five."""
        inc = drive("rca")
        for n in range(5):
            flow.add_why(inc.id, f"why {n + 1}", actor=RESPONDER)
        (reason,) = rejected(
            flow, inc.id, "add_why", lambda: flow.add_why(inc.id, "why 6", actor=RESPONDER)
        )
        assert "5" in reason

    def test_no_deploy_without_a_fix(self, drive: Drive, flow: IncidentFlow) -> None:
        """A deploy needs a recorded fix first."""
        inc = drive("rca")
        (reason,) = rejected(
            flow,
            inc.id,
            "record_deploy",
            lambda: flow.record_deploy(inc.id, actor=RESPONDER),
        )
        assert "record_fix" in reason

    def test_unknown_action_item(self, drive: Drive, flow: IncidentFlow) -> None:
        """Completing an action item that does not exist is refused, listing the known ones."""
        inc = drive("resolved")
        flow.add_action_item(inc.id, "load test", owner="dana", due=date(2026, 12, 1), actor="a")
        (reason,) = rejected(
            flow,
            inc.id,
            "complete_action_item",
            lambda: flow.complete_action_item(inc.id, 7, actor=COMMANDER),
            number=7,
        )
        assert "7" in reason
        assert "1" in reason

    def test_action_item_already_done(self, drive: Drive, flow: IncidentFlow) -> None:
        """Completing an action item twice is refused."""
        inc = drive("resolved")
        flow.add_action_item(inc.id, "load test", owner="dana", due=date(2026, 12, 1), actor="a")
        flow.complete_action_item(inc.id, 1, actor=COMMANDER)
        (reason,) = rejected(
            flow,
            inc.id,
            "complete_action_item",
            lambda: flow.complete_action_item(inc.id, 1, actor=COMMANDER),
            number=1,
        )
        assert "already done" in reason


class TestCustomGuards:
    def test_guard_returning_none_allows(self, clock: FrozenClock) -> None:
        """A custom guard that returns None lets the command through."""
        calls: list[CommandRequest] = []

        def guard(incident: Incident | None, request: CommandRequest) -> None:
            calls.append(request)

        flow = IncidentFlow.in_memory(clock=clock, policy=Policy().with_guard("add_note", guard))
        inc = declare(flow)
        after = flow.add_note(inc.id, "hello", actor="bob")
        assert after.notes[-1].text == "hello"
        (request,) = calls
        assert (request.command, request.actor, request.now) == ("add_note", "bob", clock())
        assert request.args["text"] == "hello"

    def test_guard_returning_a_string_rejects(self, clock: FrozenClock) -> None:
        """A string from a custom guard is a reason; built-in reasons are listed beside it."""

        def guard(incident: Incident | None, request: CommandRequest) -> str:
            return f"change freeze: {request.command} needs the CAB's approval"

        policy = Policy().with_guard("contain", guard)
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = drive_to(flow, clock, "triaging")
        reasons = rejected(flow, inc.id, "contain", lambda: flow.contain(inc.id, actor=COMMANDER))
        assert len(reasons) == 4
        one(reasons, "change freeze")
        one(reasons, "no evidence")

    def test_guard_returning_a_list_adds_every_reason(
        self, drive: Drive, flow: IncidentFlow
    ) -> None:
        """Every item of a list returned by a guard is a reason; flow.add_guard adds it."""
        flow.add_guard("add_why", lambda incident, request: ["needs a second pair", "no RCA yet"])
        inc = drive("rca")
        reasons = rejected(
            flow, inc.id, "add_why", lambda: flow.add_why(inc.id, "why", actor=RESPONDER)
        )
        assert reasons == ("needs a second pair", "no RCA yet")

    def test_empty_list_allows(self, drive: Drive, flow: IncidentFlow) -> None:
        """A guard returning an empty list lets the command through."""
        flow.add_guard("add_why", lambda incident, request: [])
        inc = drive("rca")
        assert flow.add_why(inc.id, "why", actor=RESPONDER).whys

    def test_guards_accumulate(self, drive: Drive, flow: IncidentFlow) -> None:
        """Several guards on one command each contribute their reasons, in order."""
        flow.add_guard("add_note", lambda incident, request: "first")
        flow.add_guard("add_note", lambda incident, request: "second")
        inc = drive("declared")
        reasons = rejected(
            flow, inc.id, "add_note", lambda: flow.add_note(inc.id, "n", actor=RESPONDER)
        )
        assert reasons == ("first", "second")

    def test_guard_on_declare_sees_no_incident(self, clock: FrozenClock) -> None:
        """A declare guard gets incident None and can refuse the declaration."""
        seen: list[Incident | None] = []

        def guard(incident: Incident | None, request: CommandRequest) -> str:
            seen.append(incident)
            return f"{request.actor} may not declare incidents"

        flow = IncidentFlow.in_memory(clock=clock, policy=Policy().with_guard("declare", guard))
        with unchanged(flow), pytest.raises(TransitionRejected) as info:
            declare(flow)
        assert [str(r) for r in info.value.reasons] == [f"{COMMANDER} may not declare incidents"]
        assert info.value.codes == ("policy.guard",)
        assert seen == [None]

    def test_guard_decides_on_the_actor_and_can_agrees(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """can() asked on behalf of an actor gives the same answer as the command."""

        def two_person_rule(incident: Incident | None, request: CommandRequest) -> str | None:
            if request.actor == "intern":
                return "an intern may not resolve incidents alone"
            return None

        flow.add_guard("resolve", two_person_rule)
        inc = drive("fixed")
        flow.confirm_by_user(inc.id, user=USER, actor=COMMANDER)
        clock.advance(minutes=30)
        verdict = flow.can(inc.id, "resolve", actor="intern")
        with unchanged(flow, inc.id), pytest.raises(TransitionRejected) as info:
            flow.resolve(inc.id, actor="intern")
        assert (
            [str(r) for r in verdict.reasons]
            == [str(r) for r in info.value.reasons]
            == ["an intern may not resolve incidents alone"]
        )

    def test_guards_do_not_leak_between_flows(self, clock: FrozenClock) -> None:
        """add_guard changes only that flow's policy."""
        policy = Policy()
        first = IncidentFlow.in_memory(clock=clock, policy=policy)
        second = IncidentFlow.in_memory(clock=clock, policy=policy)
        first.add_guard("add_note", lambda incident, request: "no notes")
        inc = declare(second)
        assert second.add_note(inc.id, "fine", actor="bob").notes
        assert policy.guards == {}

    def test_unknown_command_is_a_config_error(self) -> None:
        """A guard for a command that does not exist is refused, naming the command."""
        with pytest.raises(ConfigError) as info:
            Policy().with_guard("resolv", lambda incident, request: None)
        assert "resolv" in str(info.value)

    def test_guard_must_be_callable(self) -> None:
        """A guard that is not callable is refused."""
        with pytest.raises(ConfigError):
            Policy().with_guard("resolve", "no interns")  # type: ignore[arg-type]


class TestGuardsAfterReopen:
    def test_reopened_incident_needs_a_new_fix_and_confirmation(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """After a reopen the old fix, deploy and confirmation no longer count."""
        inc = drive("resolved")
        flow.reopen(inc.id, reason="errors are back", actor=COMMANDER)
        reasons = rejected(
            flow, inc.id, "mark_fixed", lambda: flow.mark_fixed(inc.id, actor=COMMANDER)
        )
        one(reasons, "no fix recorded")
        one(reasons, "no deploy")
        fixed = advance_to(flow, clock, inc.id, State.FIXED)
        assert fixed.confirmation is None
        assert not flow.can(inc.id, "resolve")
