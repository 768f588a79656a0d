"""Every command of the facade: what it records, its event, and the states it is allowed in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest

from helpers import (
    COMMANDER,
    DEFAULT_TEXTS,
    RESPONDER,
    START,
    USER,
    advance_to,
    declare,
    drive_to,
    unchanged,
)
from incidentflow import (
    DuplicateIncident,
    Event,
    Incident,
    IncidentFlow,
    InvalidTransition,
    Severity,
    State,
    TransitionRejected,
    ValidationError,
)
from incidentflow.testing import FrozenClock

Drive = Callable[..., Incident]

NON_TERMINAL = tuple(s.value for s in State if not s.is_terminal)
EVERY_STATE = tuple(s.value for s in State)

#: The states each command is allowed in, in lifecycle order.
ALLOWED: dict[str, tuple[str, ...]] = {
    "start_triage": ("declared",),
    "add_evidence": ("declared", "triaging", "contained", "rca", "fixed"),
    "answer_triage": ("declared", "triaging", "contained", "rca"),
    "record_containment": ("triaging", "contained", "rca"),
    "contain": ("triaging",),
    "start_rca": ("contained",),
    "add_why": ("rca",),
    "set_root_cause": ("rca",),
    "record_fix": ("rca",),
    "record_deploy": ("rca",),
    "mark_fixed": ("rca",),
    "confirm_by_user": ("fixed",),
    "resolve": ("fixed",),
    "draft_postmortem": ("fixed", "resolved"),
    "complete_postmortem": ("resolved",),
    "add_action_item": NON_TERMINAL,
    "complete_action_item": EVERY_STATE,
    "reassign_action_item": EVERY_STATE,
    "redate_action_item": EVERY_STATE,
    "decline_action_item": EVERY_STATE,
    "link_action_item": EVERY_STATE,
    "update_kb": ("resolved", "postmortem"),
    "reopen": ("fixed", "resolved"),
    "dismiss": ("declared", "triaging"),
    "reclassify": NON_TERMINAL,
    "assign_commander": NON_TERMINAL,
    "record_detection": NON_TERMINAL,
    "add_note": EVERY_STATE,
    "amend": EVERY_STATE,
    "retract": EVERY_STATE,
    "change_type": NON_TERMINAL,
    "set_labels": EVERY_STATE,
    "set_fields": EVERY_STATE,
    "add_reference": EVERY_STATE,
    "remove_reference": EVERY_STATE,
    "assign_role": NON_TERMINAL,
    "release_role": NON_TERMINAL,
    "post_update": NON_TERMINAL,
    "link": EVERY_STATE,
    "unlink": EVERY_STATE,
    "merge": ("declared", "triaging", "contained", "rca", "fixed"),
    "restrict": EVERY_STATE,
    "unrestrict": EVERY_STATE,
}

#: What a closed (kb_updated or dismissed) incident still accepts: notes, follow-ups,
#: corrections and what platforms route on.
AFTER_CLOSURE = frozenset(c for c, states in ALLOWED.items() if "kb_updated" in states)

Call = Callable[[IncidentFlow, Incident], Incident]


def _another(flow: IncidentFlow) -> str:
    """A new open incident to link or merge to: its id."""
    return flow.declare("Cart down", severity="P3", commander=COMMANDER, actor=COMMANDER).id


#: One valid call of each command (valid arguments; the state may still refuse it).
CALLS: dict[str, Call] = {
    "start_triage": lambda f, i: f.start_triage(i.id, actor=COMMANDER),
    "add_evidence": lambda f, i: f.add_evidence(
        i.id, source="grafana", content="p99 latency 12 s", actor=RESPONDER
    ),
    "answer_triage": lambda f, i: f.answer_triage(i.id, "symptom", "500s", actor=RESPONDER),
    "record_containment": lambda f, i: f.record_containment(
        i.id, "disabled the feature flag", actor=RESPONDER
    ),
    "contain": lambda f, i: f.contain(i.id, actor=COMMANDER),
    "start_rca": lambda f, i: f.start_rca(i.id, actor=COMMANDER),
    "add_why": lambda f, i: f.add_why(i.id, "the cache expired at once", actor=RESPONDER),
    "set_root_cause": lambda f, i: f.set_root_cause(
        i.id, "no jitter on cache expiry", process_gap="no review checklist item", actor=RESPONDER
    ),
    "record_fix": lambda f, i: f.record_fix(
        i.id, "add jitter", test="test_expiry_jitter", staging_verified=True, actor=RESPONDER
    ),
    "record_deploy": lambda f, i: f.record_deploy(i.id, ref="v43", actor=RESPONDER),
    "mark_fixed": lambda f, i: f.mark_fixed(i.id, actor=COMMANDER),
    "confirm_by_user": lambda f, i: f.confirm_by_user(i.id, user=USER, actor=COMMANDER),
    "resolve": lambda f, i: f.resolve(i.id, actor=COMMANDER),
    "draft_postmortem": lambda f, i: f.draft_postmortem(
        i.id, summary="checkout failed", actor=COMMANDER
    ),
    "complete_postmortem": lambda f, i: f.complete_postmortem(i.id, actor=COMMANDER),
    "add_action_item": lambda f, i: f.add_action_item(
        i.id, "add a load test", owner="dana", due=date(2026, 12, 11), actor=COMMANDER
    ),
    "complete_action_item": lambda f, i: f.complete_action_item(i.id, 1, actor=COMMANDER),
    "update_kb": lambda f, i: f.update_kb(
        i.id, symptom="500s", early_signs="pool alerts", actor=COMMANDER
    ),
    "reopen": lambda f, i: f.reopen(i.id, reason="errors are back", actor=COMMANDER),
    "dismiss": lambda f, i: f.dismiss(i.id, reason="false alarm", actor=COMMANDER),
    "reclassify": lambda f, i: f.reclassify(
        i.id, "P2" if i.severity is not Severity.P2 else "P3", reason="scope", actor=COMMANDER
    ),
    "assign_commander": lambda f, i: f.assign_commander(i.id, "erin", actor=COMMANDER),
    "record_detection": lambda f, i: f.record_detection(i.id, method="alert", actor=COMMANDER),
    "add_note": lambda f, i: f.add_note(i.id, "status page updated", actor=COMMANDER),
    "reassign_action_item": lambda f, i: f.reassign_action_item(
        i.id, 1, owner="erin", actor=COMMANDER
    ),
    "redate_action_item": lambda f, i: f.redate_action_item(
        i.id, 1, due=date(2026, 12, 20), reason="waits for the vendor", actor=COMMANDER
    ),
    "decline_action_item": lambda f, i: f.decline_action_item(
        i.id, 1, reason="accepted risk", actor=COMMANDER
    ),
    "link_action_item": lambda f, i: f.link_action_item(i.id, 1, "OPS-1234", actor=COMMANDER),
    "amend": lambda f, i: f.amend(
        i.id, "evidence:1", "p99 latency 14 s", reason="misread", actor=RESPONDER
    ),
    "retract": lambda f, i: f.retract(i.id, "evidence:1", reason="wrong graph", actor=RESPONDER),
    "change_type": lambda f, i: f.change_type(
        i.id, "performance", reason="latency, not errors", actor=COMMANDER
    ),
    "set_labels": lambda f, i: f.set_labels(i.id, {"service": "checkout"}, actor=COMMANDER),
    "set_fields": lambda f, i: f.set_fields(i.id, {"customer": "acme"}, actor=COMMANDER),
    "add_reference": lambda f, i: f.add_reference(i.id, "ticket", "OPS-77", actor=COMMANDER),
    "remove_reference": lambda f, i: f.remove_reference(i.id, "ticket", "OPS-0", actor=COMMANDER),
    "assign_role": lambda f, i: f.assign_role(i.id, "scribe", "fay", actor=COMMANDER),
    "release_role": lambda f, i: f.release_role(i.id, "scribe", actor=COMMANDER),
    "post_update": lambda f, i: f.post_update(
        i.id, "internal", "rolled back; watching", actor=COMMANDER
    ),
    "link": lambda f, i: f.link(i.id, "related_to", _another(f), actor=COMMANDER),
    "unlink": lambda f, i: f.unlink(i.id, "related_to", _another(f), actor=COMMANDER),
    "merge": lambda f, i: f.merge(i.id, into=_another(f), reason="one outage", actor=COMMANDER),
    "restrict": lambda f, i: f.restrict(i.id, ["group:security"], actor=COMMANDER),
    "unrestrict": lambda f, i: f.unrestrict(i.id, actor=COMMANDER),
}


def _last_event(flow: IncidentFlow, inc: Incident) -> Event:
    history = flow.history(inc.id)
    assert len(history) == inc.version
    return history[-1]


class TestCommandTable:
    def test_every_command_of_the_lifecycle_is_covered(self) -> None:
        """The state table of these tests names every command, each a method of the facade."""
        from incidentflow._lifecycle import COMMANDS, SYSTEM_COMMANDS

        public = set(COMMANDS) - SYSTEM_COMMANDS
        assert public - {"declare"} == set(CALLS) == set(ALLOWED)
        assert all(callable(getattr(IncidentFlow, command)) for command in public)

    @pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
    @pytest.mark.parametrize("command", sorted(CALLS))
    def test_command_is_refused_outside_its_states(
        self, flow: IncidentFlow, clock: FrozenClock, command: str, state: State
    ) -> None:
        """Outside its states a command raises InvalidTransition naming the states that allow it."""
        inc = drive_to(flow, clock, state)
        if state.value in ALLOWED[command]:
            reasons: tuple[str, ...] = ()
            try:
                CALLS[command](flow, inc)
            except TransitionRejected as exc:
                reasons = exc.reasons
            except ValidationError as exc:
                # The default policy declares no custom fields: the state let it through.
                if command != "set_fields":
                    raise
                reasons = (exc.message,)
            assert reasons or flow.get(inc.id).version > inc.version
            return
        with unchanged(flow, inc.id), pytest.raises(InvalidTransition) as info:
            CALLS[command](flow, inc)
        assert info.value.allowed_states == ALLOWED[command]
        assert info.value.state == state.value
        assert info.value.command == command
        assert info.value.incident_id == inc.id
        for allowed in ALLOWED[command]:
            assert allowed in str(info.value)

    @pytest.mark.parametrize("state", [State.KB_UPDATED, State.DISMISSED], ids=lambda s: s.value)
    def test_terminal_states_accept_only_notes_follow_ups_and_corrections(
        self, flow: IncidentFlow, clock: FrozenClock, state: State
    ) -> None:
        """kb_updated and dismissed accept notes, follow-ups, corrections, routing data, links
        and access changes; no state changes."""
        assert {
            "add_note",
            "complete_action_item",
            "reassign_action_item",
            "redate_action_item",
            "decline_action_item",
            "link_action_item",
            "amend",
            "retract",
            "set_labels",
            "set_fields",
            "add_reference",
            "remove_reference",
            "link",
            "unlink",
            "restrict",
            "unrestrict",
        } == AFTER_CLOSURE
        inc = drive_to(flow, clock, state)
        for command, call in CALLS.items():
            if command in AFTER_CLOSURE:
                continue
            with unchanged(flow, inc.id), pytest.raises(InvalidTransition) as info:
                call(flow, inc)
            assert state.value not in info.value.allowed_states
        noted = flow.add_note(inc.id, "closed for good", actor=COMMANDER)
        assert noted.state is state
        assert noted.notes[-1].text == "closed for good"


class TestDeclare:
    def test_records_the_declaration(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """declare stores title, severity, commander, who declared and when."""
        inc = flow.declare("Checkout returns 500", severity="P1", commander="alice", actor="bob")
        assert inc.title == "Checkout returns 500"
        assert inc.severity is Severity.P1
        assert inc.commander == "alice"
        assert inc.declared_by == "bob"
        assert inc.declared_at == clock()
        assert inc.state is State.DECLARED
        assert inc.version == 1
        assert flow.get(inc.id) == inc

    def test_id_is_date_and_slug(self, flow: IncidentFlow) -> None:
        """The id is INC-<YYYY-MM-DD>-<slug of the title>."""
        inc = declare(flow)
        assert inc.id == "INC-2026-11-27-checkout-returns-500"
        assert inc.slug == "checkout-returns-500"

    def test_history_starts_with_a_declared_event(self, flow: IncidentFlow) -> None:
        """The first event is "declared", seq 1, stamped with the clock and the actor."""
        inc = declare(flow)
        (event,) = flow.history(inc.id)
        assert (event.type, event.seq, event.at, event.actor) == ("declared", 1, START, COMMANDER)
        assert event.incident_id == inc.id

    @pytest.mark.parametrize(
        ("severity", "required"), [("P1", True), ("P2", True), ("P3", False), ("P4", False)]
    )
    def test_postmortem_required_for_p1_and_p2(
        self, flow: IncidentFlow, severity: str, required: bool
    ) -> None:
        """P1 and P2 incidents need a post-mortem by default; P3 and P4 do not."""
        assert declare(flow, severity=severity).postmortem_required is required

    @pytest.mark.parametrize("severity", [Severity.P2, "p2", " P2 "])
    def test_severity_accepts_the_enum_and_any_case(
        self, flow: IncidentFlow, severity: object
    ) -> None:
        """A Severity or its name in any case is accepted."""
        assert declare(flow, severity=severity).severity is Severity.P2  # type: ignore[arg-type]

    def test_explicit_slug(self, flow: IncidentFlow) -> None:
        """An explicit slug names the incident instead of the title."""
        inc = declare(flow, slug="pay-500")
        assert inc.id == "INC-2026-11-27-pay-500"

    def test_same_title_same_day_is_numbered(self, flow: IncidentFlow) -> None:
        """A second incident with the same title that day gets a "-2" slug."""
        first = declare(flow)
        second = declare(flow)
        assert second.id == first.id + "-2"
        assert len(flow.list()) == 2

    def test_numbering_never_runs_out(self, flow: IncidentFlow) -> None:
        """The 52nd, 200th... incident of one title that day gets the next number."""
        ids = [declare(flow).id for _ in range(120)]
        assert ids[51].endswith("-52")
        assert ids[-1].endswith("-120")
        assert len(set(ids)) == 120

    def test_the_next_number_takes_a_logarithmic_number_of_lookups(
        self, flow: IncidentFlow
    ) -> None:
        """Finding the free number asks the store about O(log n) ids, not one per incident."""
        for _ in range(64):
            declare(flow)
        asked: list[str] = []
        exists = flow.store.exists

        def counting(incident_id: str) -> bool:
            asked.append(incident_id)
            return exists(incident_id)

        flow.store.exists = counting  # type: ignore[method-assign]
        assert declare(flow).id.endswith("-65")
        assert len(asked) <= 2 * 7 + 2  # doubling to 128, halving back: about 2·log2(64)

    def test_a_number_taken_out_of_order_is_skipped(self, flow: IncidentFlow) -> None:
        """An explicit slug that looks numbered does not stop the numbering."""
        first = declare(flow)
        declare(flow, slug=first.slug + "-2")
        assert declare(flow).id == first.id + "-3"

    def test_taken_explicit_slug_raises_duplicate(self, flow: IncidentFlow) -> None:
        """An explicit slug already used that day raises DuplicateIncident and writes nothing."""
        declare(flow, slug="pay-500")
        with unchanged(flow), pytest.raises(DuplicateIncident):
            declare(flow, slug="pay-500")


class TestStartTriage:
    def test_moves_to_triaging_and_stamps_acknowledgement(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """start_triage moves to triaging and stops the response-time clock."""
        inc = declare(flow)
        clock.advance(minutes=3)
        after = flow.start_triage(inc.id, actor="bob")
        assert after.state is State.TRIAGING
        assert after.acknowledged_at == START + timedelta(minutes=3)
        event = _last_event(flow, after)
        assert (event.type, event.actor) == ("triage_started", "bob")


class TestAddEvidence:
    def test_records_source_content_time_and_actor(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """add_evidence appends an item with its source, content, time and actor."""
        inc = drive("triaging")
        after = flow.add_evidence(
            inc.id, source="grafana", content="p99 12 s\nerrors 40%", actor="bob"
        )
        (item,) = after.evidence
        assert (item.source, item.content, item.at, item.actor) == (
            "grafana",
            "p99 12 s\nerrors 40%",
            clock(),
            "bob",
        )
        assert _last_event(flow, after).type == "evidence_added"

    def test_accepts_a_large_log_excerpt(self, drive: Drive, flow: IncidentFlow) -> None:
        """Evidence content up to 1,000,000 characters is kept whole."""
        inc = drive("triaging")
        content = "x" * 1_000_000
        after = flow.add_evidence(inc.id, source="journalctl", content=content, actor="bob")
        assert after.evidence[0].content == content


class TestAnswerTriage:
    def test_records_the_answer(self, drive: Drive, flow: IncidentFlow) -> None:
        """answer_triage records the answer under the question, normalised to snake case."""
        inc = drive("triaging")
        after = flow.answer_triage(inc.id, "Started At", "14:02 UTC", actor="bob")
        assert after.triage == {"started_at": "14:02 UTC"}
        assert after.triage_answers[0].actor == "bob"
        assert _last_event(flow, after).type == "triage_answered"

    def test_a_new_answer_replaces_the_old_one(self, drive: Drive, flow: IncidentFlow) -> None:
        """Answering a question again keeps only the latest answer."""
        inc = drive("triaging")
        flow.answer_triage(inc.id, "scope", "web only", actor="bob")
        after = flow.answer_triage(inc.id, "scope", "web and mobile", actor="bob")
        assert after.triage == {"scope": "web and mobile"}
        assert len(after.triage_answers) == 1


class TestRecordContainment:
    def test_records_the_action_now(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """record_containment keeps the description, the time taken and the actor."""
        inc = drive("triaging")
        after = flow.record_containment(inc.id, "rolled back to v40", actor="bob")
        (action,) = after.containment
        assert (action.description, action.at, action.actor) == (
            "rolled back to v40",
            clock(),
            "bob",
        )
        assert _last_event(flow, after).type == "containment_recorded"

    def test_records_an_earlier_time(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """taken_at records when the action was really taken."""
        inc = drive("triaging")
        clock.advance(minutes=10)
        taken = START + timedelta(minutes=2)
        after = flow.record_containment(inc.id, "scaled up", taken_at=taken, actor="bob")
        assert after.containment[0].at == taken


class TestContain:
    def test_moves_to_contained(self, drive: Drive, flow: IncidentFlow, clock: FrozenClock) -> None:
        """contain moves a triaged incident to contained and stamps the time."""
        inc = drive("contained")
        assert inc.state is State.CONTAINED
        assert inc.contained_at == clock()
        assert _last_event(flow, inc).type == "contained"


class TestStartRca:
    def test_moves_to_rca(self, drive: Drive, flow: IncidentFlow) -> None:
        """start_rca moves a contained incident to root-cause analysis."""
        inc = drive("contained")
        after = flow.start_rca(inc.id, actor=COMMANDER)
        assert after.state is State.RCA
        assert _last_event(flow, after).type == "rca_started"


class TestAddWhy:
    def test_appends_to_the_chain(self, drive: Drive, flow: IncidentFlow) -> None:
        """add_why appends the next link of the 5-Whys chain, in order."""
        inc = drive("rca")
        flow.add_why(inc.id, "the pool was exhausted", actor="bob")
        after = flow.add_why(inc.id, "each request opened a connection", actor="erin")
        assert [w.answer for w in after.whys] == [
            "the pool was exhausted",
            "each request opened a connection",
        ]
        assert after.whys[1].actor == "erin"
        assert _last_event(flow, after).type == "why_added"

    def test_accepts_five_whys(self, drive: Drive, flow: IncidentFlow) -> None:
        """The chain takes up to five whys."""
        inc = drive("rca")
        for n in range(5):
            after = flow.add_why(inc.id, f"why number {n + 1}", actor="bob")
        assert len(after.whys) == 5


class TestSetRootCause:
    def test_records_statement_and_process_gap(self, drive: Drive, flow: IncidentFlow) -> None:
        """set_root_cause records the statement and the process gap."""
        inc = drive("rca")
        after = flow.set_root_cause(
            inc.id, "connection leak", process_gap="no load test", actor="bob"
        )
        assert after.root_cause is not None
        assert (after.root_cause.statement, after.root_cause.process_gap) == (
            "connection leak",
            "no load test",
        )
        assert _last_event(flow, after).type == "root_cause_set"


class TestRecordFix:
    def test_records_description_test_and_staging(self, drive: Drive, flow: IncidentFlow) -> None:
        """record_fix records the fix, the test that would have caught it and staging status."""
        inc = drive("rca")
        after = flow.record_fix(
            inc.id, "reuse connections", test="test_reuse", staging_verified=False, actor="bob"
        )
        assert after.fix is not None
        assert (after.fix.description, after.fix.test, after.fix.staging_verified) == (
            "reuse connections",
            "test_reuse",
            False,
        )
        assert _last_event(flow, after).type == "fix_recorded"


class TestRecordDeploy:
    def test_records_the_deploy(self, drive: Drive, flow: IncidentFlow, clock: FrozenClock) -> None:
        """record_deploy records when the fix went out and the release ref."""
        inc = drive("rca")
        flow.record_fix(inc.id, "fix", test="t", staging_verified=True, actor="bob")
        after = flow.record_deploy(inc.id, ref="v42", actor="bob")
        assert after.last_deploy is not None
        assert (after.last_deploy.deployed_at, after.last_deploy.ref) == (clock(), "v42")
        assert _last_event(flow, after).type == "deploy_recorded"

    def test_records_an_earlier_deploy_time(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """deployed_at records when the deploy really happened."""
        inc = drive("rca")
        flow.record_fix(inc.id, "fix", test="t", staging_verified=True, actor="bob")
        deployed = clock() - timedelta(minutes=1)
        after = flow.record_deploy(inc.id, deployed_at=deployed, actor="bob")
        assert after.deploys[-1].deployed_at == deployed


class TestMarkFixed:
    def test_moves_to_fixed(self, drive: Drive, flow: IncidentFlow, clock: FrozenClock) -> None:
        """mark_fixed moves to fixed and stamps the time."""
        inc = drive("fixed")
        assert inc.state is State.FIXED
        assert inc.fixed_at == clock()
        assert _last_event(flow, inc).type == "marked_fixed"


class TestConfirmByUser:
    def test_positive_answer_is_recorded(self, drive: Drive, flow: IncidentFlow) -> None:
        """A positive confirmation is kept with the user and the comment."""
        inc = drive("fixed")
        after = flow.confirm_by_user(inc.id, user=USER, comment="works", actor=COMMANDER)
        assert after.state is State.FIXED
        assert after.confirmation is not None
        assert (after.confirmation.user, after.confirmation.positive) == (USER, True)
        assert after.confirmation.comment == "works"
        assert _last_event(flow, after).type == "user_confirmed"

    def test_negative_answer_reopens_to_rca(self, drive: Drive, flow: IncidentFlow) -> None:
        """A negative confirmation reopens the incident to rca and counts the reopen."""
        inc = drive("fixed")
        after = flow.confirm_by_user(inc.id, user=USER, positive=False, actor=COMMANDER)
        assert after.state is State.RCA
        assert after.reopen_count == 1
        assert after.confirmation is None
        assert not after.deploys
        types = [e.type for e in flow.history(inc.id)]
        assert types[-2:] == ["user_confirmed", "reopened"]
        assert flow.history(inc.id)[-2].data.positive is False  # type: ignore[attr-defined]
        assert after.version == inc.version + 2


class TestResolve:
    def test_moves_to_resolved(self, drive: Drive, flow: IncidentFlow, clock: FrozenClock) -> None:
        """resolve moves a confirmed, watched fix to resolved and stamps the time."""
        inc = drive("resolved")
        assert inc.state is State.RESOLVED
        assert inc.resolved_at == clock()
        assert _last_event(flow, inc).type == "resolved"


class TestDraftPostmortem:
    def test_fills_fields_step_by_step(self, drive: Drive, flow: IncidentFlow) -> None:
        """draft_postmortem fills the given fields and keeps those left None."""
        inc = drive("resolved")
        flow.draft_postmortem(inc.id, summary="checkout down 40 min", actor=COMMANDER)
        after = flow.draft_postmortem(
            inc.id, went_well=["fast rollback"], went_poorly=("late alert",), actor=COMMANDER
        )
        pm = after.postmortem
        assert pm is not None
        assert pm.summary == "checkout down 40 min"
        assert pm.went_well == ("fast rollback",)
        assert pm.went_poorly == ("late alert",)
        assert pm.completed is False
        assert after.state is State.RESOLVED
        assert _last_event(flow, after).type == "postmortem_drafted"

    def test_needs_at_least_one_field(self, drive: Drive, flow: IncidentFlow) -> None:
        """A draft with no field at all is refused."""
        inc = drive("resolved")
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.draft_postmortem(inc.id, actor=COMMANDER)
        assert info.value.field == "postmortem"


class TestCompletePostmortem:
    def test_moves_to_postmortem(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """complete_postmortem stores the fields given and completes the post-mortem."""
        inc = drive("postmortem")
        assert inc.state is State.POSTMORTEM
        pm = inc.postmortem
        assert pm is not None
        assert pm.completed_at == clock()
        assert pm.summary == DEFAULT_TEXTS["summary"]
        assert pm.went_well == (DEFAULT_TEXTS["went_well"],)
        types = [e.type for e in flow.history(inc.id)]
        assert types[-2:] == ["postmortem_drafted", "postmortem_completed"]

    def test_completes_a_finished_draft_with_one_event(
        self, drive: Drive, flow: IncidentFlow
    ) -> None:
        """A post-mortem drafted in full is completed by a single postmortem_completed event."""
        inc = drive("resolved")
        flow.add_action_item(inc.id, "load test", owner="dana", due=date(2026, 12, 1), actor="a")
        flow.draft_postmortem(
            inc.id,
            summary="s",
            root_cause="r",
            went_well=["w"],
            went_poorly=["p"],
            actor=COMMANDER,
        )
        before = flow.get(inc.id).version
        after = flow.complete_postmortem(inc.id, actor=COMMANDER)
        assert after.version == before + 1
        assert _last_event(flow, after).type == "postmortem_completed"
        assert after.postmortem is not None
        assert after.postmortem.summary == "s"


class TestActionItems:
    def test_items_are_numbered_from_one(self, drive: Drive, flow: IncidentFlow) -> None:
        """add_action_item numbers items 1, 2, ... with owner and due date."""
        inc = drive("resolved")
        flow.add_action_item(inc.id, "load test", owner="dana", due=date(2026, 12, 1), actor="a")
        after = flow.add_action_item(
            inc.id, "pool alert", owner="erin", due=date(2026, 12, 4), actor="a"
        )
        assert [(a.number, a.description, a.owner, a.due) for a in after.action_items] == [
            (1, "load test", "dana", date(2026, 12, 1)),
            (2, "pool alert", "erin", date(2026, 12, 4)),
        ]
        assert _last_event(flow, after).type == "action_item_added"

    def test_complete_marks_the_item_done(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """complete_action_item stamps the item done and leaves the others open."""
        inc = drive("resolved")
        flow.add_action_item(inc.id, "load test", owner="dana", due=date(2026, 12, 1), actor="a")
        flow.add_action_item(inc.id, "alert", owner="erin", due=date(2026, 12, 1), actor="a")
        after = flow.complete_action_item(inc.id, 2, actor="erin")
        assert [a.done for a in after.action_items] == [False, True]
        assert after.action_items[1].done_at == clock()
        assert _last_event(flow, after).type == "action_item_completed"


class TestUpdateKb:
    def test_from_postmortem_closes_the_incident(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """update_kb after the post-mortem writes the gotcha and closes the incident."""
        inc = drive("kb_updated")
        assert inc.state is State.KB_UPDATED
        assert inc.closed_at == clock()
        entry = inc.kb_entry
        assert entry is not None
        assert entry.slug == inc.slug
        assert entry.symptom == DEFAULT_TEXTS["kb_symptom"]
        assert entry.early_signs == DEFAULT_TEXTS["kb_early_signs"]
        assert entry.root_cause == DEFAULT_TEXTS["root_cause"]
        assert entry.fix == DEFAULT_TEXTS["fix"]
        types = [e.type for e in flow.history(inc.id)]
        assert "postmortem_completed" in types
        assert types[-1] == "kb_updated"

    @pytest.mark.parametrize("severity", ["P3", "P4"])
    def test_from_resolved_for_minor_severities(
        self, drive: Drive, flow: IncidentFlow, severity: str
    ) -> None:
        """A P3 or P4 goes from resolved straight to kb_updated, without a post-mortem."""
        inc = drive("kb_updated", severity)
        assert inc.state is State.KB_UPDATED
        assert inc.postmortem is None
        types = [e.type for e in flow.history(inc.id)]
        assert "postmortem_completed" not in types
        assert types[-3:] == ["resolved", "action_item_added", "kb_updated"]

    def test_root_cause_and_fix_can_be_given(self, drive: Drive, flow: IncidentFlow) -> None:
        """update_kb takes its own wording of the root cause and the fix."""
        inc = drive("postmortem")
        after = flow.update_kb(
            inc.id,
            symptom="500s",
            early_signs="pool alerts",
            root_cause="leaky pool",
            fix="pooled connections",
            actor=COMMANDER,
        )
        assert after.kb_entry is not None
        assert (after.kb_entry.root_cause, after.kb_entry.fix) == (
            "leaky pool",
            "pooled connections",
        )


class TestReopen:
    @pytest.mark.parametrize("source", ["fixed", "resolved"])
    @pytest.mark.parametrize("target", ["triaging", "rca"])
    def test_reopens_to_triaging_or_rca(
        self, drive: Drive, flow: IncidentFlow, source: str, target: str
    ) -> None:
        """reopen sends a fixed or resolved incident back, clears the confirmation, counts it."""
        inc = drive(source)
        after = flow.reopen(inc.id, reason="errors are back", to=target, actor=COMMANDER)
        assert after.state is State(target)
        assert after.reopen_count == 1
        assert after.confirmation is None
        assert after.resolved_at is None
        event = _last_event(flow, after)
        assert event.type == "reopened"
        assert event.data.to_state is State(target)  # type: ignore[attr-defined]

    def test_default_target_is_rca(self, drive: Drive, flow: IncidentFlow) -> None:
        """Without ``to`` the incident goes back to root-cause analysis."""
        inc = drive("fixed")
        assert flow.reopen(inc.id, reason="errors", actor=COMMANDER).state is State.RCA

    def test_reopened_incident_can_be_fixed_again(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """A reopened incident goes round again and counts every reopen."""
        inc = drive("resolved")
        flow.reopen(inc.id, reason="errors are back", actor=COMMANDER)
        again = advance_to(flow, clock, inc.id, "resolved")
        assert again.state is State.RESOLVED
        assert flow.reopen(inc.id, reason="again", actor=COMMANDER).reopen_count == 2

    @pytest.mark.parametrize("target", ["contained", "declared", "kb_updated", ""])
    def test_other_targets_are_refused(self, drive: Drive, flow: IncidentFlow, target: str) -> None:
        """Only triaging and rca are reopen targets."""
        inc = drive("fixed")
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.reopen(inc.id, reason="why not", to=target, actor=COMMANDER)
        assert info.value.field == "to"


class TestDismiss:
    @pytest.mark.parametrize("source", ["declared", "triaging"])
    def test_dismisses_a_false_alarm(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock, source: str
    ) -> None:
        """dismiss closes a declared or triaging incident with its reason."""
        inc = drive(source)
        after = flow.dismiss(inc.id, reason="synthetic check misfired", actor=COMMANDER)
        assert after.state is State.DISMISSED
        assert after.dismissal_reason == "synthetic check misfired"
        assert after.closed_at == clock()
        assert _last_event(flow, after).type == "dismissed"

    def test_records_the_duplicate(self, flow: IncidentFlow) -> None:
        """A duplicate names the incident it duplicates."""
        first = declare(flow)
        second = declare(flow)
        after = flow.dismiss(second.id, reason="duplicate", duplicate_of=first.id, actor="a")
        assert after.duplicate_of == first.id


class TestReclassify:
    def test_changes_the_severity(self, drive: Drive, flow: IncidentFlow) -> None:
        """reclassify changes the severity and records the previous one and the reason."""
        inc = drive("triaging", "P1")
        after = flow.reclassify(inc.id, "P3", reason="only admins affected", actor=COMMANDER)
        assert after.severity is Severity.P3
        assert after.postmortem_required is False
        event = _last_event(flow, after)
        assert event.type == "reclassified"
        assert event.data.previous is Severity.P1  # type: ignore[attr-defined]
        assert event.data.reason == "only admins affected"  # type: ignore[attr-defined]

    def test_raising_a_resolved_p3_to_p1_makes_the_postmortem_mandatory(
        self, drive: Drive, flow: IncidentFlow
    ) -> None:
        """A resolved P3 raised to P1 can no longer skip the post-mortem."""
        inc = drive("resolved", "P3")
        assert inc.postmortem_required is False
        flow.add_action_item(inc.id, "load test", owner="dana", due=date(2026, 12, 1), actor="a")
        after = flow.reclassify(inc.id, "P1", reason="data loss found", actor=COMMANDER)
        assert after.postmortem_required is True
        with pytest.raises(TransitionRejected) as info:
            flow.update_kb(inc.id, symptom="s", early_signs="e", actor=COMMANDER)
        assert "postmortem.required" in info.value.codes

    def test_lowering_a_resolved_p1_keeps_the_postmortem(
        self, drive: Drive, flow: IncidentFlow
    ) -> None:
        """Once resolved, lowering the severity never drops a required post-mortem."""
        inc = drive("resolved", "P1")
        after = flow.reclassify(inc.id, "P4", reason="impact was small", actor=COMMANDER)
        assert after.postmortem_required is True

    def test_same_severity_is_refused(self, drive: Drive, flow: IncidentFlow) -> None:
        """Reclassifying to the current severity is refused."""
        inc = drive("triaging", "P2")
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.reclassify(inc.id, "P2", reason="same", actor=COMMANDER)
        assert info.value.field == "severity"


class TestAssignCommander:
    def test_hands_over(self, drive: Drive, flow: IncidentFlow) -> None:
        """assign_commander hands the incident over, recorded as the commander role's handoff."""
        inc = drive("rca")
        after = flow.assign_commander(inc.id, "erin", actor=COMMANDER)
        assert after.commander == "erin"
        assert after.roles["commander"] == "erin"
        event = _last_event(flow, after)
        assert event.type == "role_assigned"
        assert (event.data.role, event.data.person, event.data.previous) == (
            "commander",
            "erin",
            COMMANDER,
        )
        assert after.handoffs[-1].from_person == COMMANDER
        assert after.handoffs[-1].to_person == "erin"

    def test_histories_from_before_roles_replay_as_then(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """A commander_assigned event of an older history still changes the commander."""
        from incidentflow._decide import evolve
        from incidentflow.events import CommanderAssigned

        inc = drive("rca")
        old = Event(inc.id, inc.version + 1, clock(), COMMANDER, CommanderAssigned("erin"))
        after = evolve(inc, old)
        assert (after.commander, after.roles["commander"]) == ("erin", "erin")
        assert after.handoffs == inc.handoffs

    def test_same_commander_is_refused(self, drive: Drive, flow: IncidentFlow) -> None:
        """Assigning the current commander again is refused."""
        inc = drive("rca")
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.assign_commander(inc.id, COMMANDER, actor=COMMANDER)
        assert info.value.field == "commander"


class TestRecordDetection:
    @pytest.mark.parametrize("method", ["alert", "user_report", "other"])
    def test_records_when_and_how(
        self, flow: IncidentFlow, clock: FrozenClock, method: str
    ) -> None:
        """record_detection keeps when it first occurred, when it was detected, and how."""
        inc = declare(flow)
        first = START - timedelta(minutes=30)
        detected = START - timedelta(minutes=10)
        after = flow.record_detection(
            inc.id, method=method, first_occurred_at=first, detected_at=detected, actor="bob"
        )
        assert after.detection is not None
        assert (after.detection.first_occurred_at, after.detection.detected_at) == (first, detected)
        assert after.detection.method == method
        assert _last_event(flow, after).type == "detection_recorded"

    def test_unknown_method_is_refused(self, flow: IncidentFlow) -> None:
        """Only alert, user_report and other are detection methods."""
        inc = declare(flow)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.record_detection(inc.id, method="pager", actor="bob")
        assert info.value.field == "method"

    def test_first_occurrence_after_detection_is_refused(self, flow: IncidentFlow) -> None:
        """An issue cannot first occur after it was detected."""
        inc = declare(flow)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.record_detection(
                inc.id,
                method="alert",
                first_occurred_at=START - timedelta(minutes=1),
                detected_at=START - timedelta(minutes=5),
                actor="bob",
            )
        assert info.value.field == "first_occurred_at"


class TestAddNote:
    @pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
    def test_allowed_in_every_state(
        self, flow: IncidentFlow, clock: FrozenClock, state: State
    ) -> None:
        """add_note works in every state and leaves the state alone."""
        inc = drive_to(flow, clock, state)
        after = flow.add_note(inc.id, "status page updated", actor="bob")
        assert after.state is state
        assert (after.notes[-1].text, after.notes[-1].actor) == ("status page updated", "bob")
        assert _last_event(flow, after).type == "note_added"


class TestEveryCommand:
    def test_every_event_carries_seq_time_and_actor(self, drive: Drive, flow: IncidentFlow) -> None:
        """A whole lifecycle leaves a gapless history whose replay is the snapshot."""
        inc = drive("kb_updated")
        history = flow.history(inc.id)
        assert [e.seq for e in history] == list(range(1, len(history) + 1))
        assert len(history) == inc.version
        assert all(e.incident_id == inc.id and e.actor for e in history)
        assert [e.at for e in history] == sorted(e.at for e in history)
        assert all(e.at.utcoffset() == timedelta(0) for e in history)
        assert flow.verify(inc.id)

    def test_commands_return_the_stored_snapshot(self, drive: Drive, flow: IncidentFlow) -> None:
        """What a command returns is what get() returns afterwards."""
        inc = drive("rca")
        after = flow.add_why(inc.id, "why", actor="bob")
        assert after == flow.get(inc.id)
        assert after.version == inc.version + 1

    def test_expected_version_that_matches_is_accepted(
        self, drive: Drive, flow: IncidentFlow
    ) -> None:
        """A command naming the current version goes through."""
        inc = drive("rca")
        after = flow.add_why(inc.id, "why", actor="bob", expected_version=inc.version)
        assert after.version == inc.version + 1


class TestExecute:
    """``flow.execute``: a command by name, telling a replay from a new run."""

    def test_a_replayed_key_says_so(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """The same key and arguments again: replayed, nothing recorded, the first snapshot."""
        inc = drive_to(flow, clock, State.TRIAGING)
        args = {"source": "grafana", "content": "p99 12 s", "actor": RESPONDER}
        first = flow.execute("add_evidence", inc.id, idempotency_key="ev-1", **args)
        again = flow.execute("add_evidence", inc.id, idempotency_key="ev-1", **args)
        assert (first.replayed, again.replayed) == (False, True)
        assert again.incident == first.incident
        assert flow.get(inc.id).version == first.incident.version

    def test_declare_by_name(self, flow: IncidentFlow) -> None:
        """declare takes no incident id, and replays like any keyed command."""
        args = {"title": "DB down", "severity": "P1", "commander": COMMANDER, "actor": COMMANDER}
        first = flow.execute("declare", idempotency_key="page-7", **args)
        again = flow.execute("declare", idempotency_key="page-7", **args)
        assert (first.replayed, again.replayed) == (False, True)
        assert len(flow.list()) == 1
        with pytest.raises(ValidationError) as info:
            flow.execute("declare", first.incident.id, **args)
        assert info.value.field == "incident_id"

    def test_refusals_are_the_commands_own(self, flow: IncidentFlow) -> None:
        """Unknown and system commands, and a missing id, are refused before anything runs."""
        inc = declare(flow)
        with pytest.raises(InvalidTransition):
            flow.execute("frobnicate", inc.id, actor=COMMANDER)
        with pytest.raises(InvalidTransition):
            flow.execute("record_breach", inc.id, actor=COMMANDER)
        with pytest.raises(ValidationError) as info:
            flow.execute("add_note", text="x", actor=COMMANDER)
        assert info.value.field == "incident_id"
        with unchanged(flow, inc.id), pytest.raises(InvalidTransition):
            flow.execute("resolve", inc.id, actor=COMMANDER)
