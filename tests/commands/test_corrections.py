"""Corrections: amend and retract keep the record, guards count live items, reopen supersedes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import (
    COMMANDER,
    DEFAULT_TEXTS,
    RESPONDER,
    STEP,
    STORE_KINDS,
    USER,
    advance_to,
    codes,
    drive_to,
    refusal,
    store_flow,
    unchanged,
)
from incidentflow import (
    BlameCheck,
    Correction,
    Incident,
    IncidentFlow,
    Policy,
    ProcessOverride,
    Severity,
    State,
    ValidationError,
    replay,
)
from incidentflow.testing import FrozenClock

Drive = Callable[..., Incident]
REASON = "typo in the first version"


def amended_by(clock: FrozenClock, actor: str = RESPONDER) -> Correction:
    """The correction an amendment or retraction made now by ``actor`` carries."""
    return Correction(clock(), actor, REASON)


def keeps_the_record(flow: IncidentFlow, incident_id: str, before: list[object]) -> None:
    """The history only grew, its first events unchanged, and it replays to the snapshot."""
    history = list(flow.history(incident_id))
    assert history[: len(before)] == before
    assert len(history) > len(before)
    assert replay(history) == flow.get(incident_id)


class TestAmend:
    @pytest.mark.parametrize(
        ("state", "item", "read"),
        [
            ("fixed", "why:1", lambda inc: inc.whys[0].answer),
            ("triaging", "evidence:1", lambda inc: inc.evidence[0].content),
            ("contained", "containment:1", lambda inc: inc.containment[0].description),
            ("contained", "triage:scope", lambda inc: inc.triage["scope"]),
            ("fixed", "root_cause:statement", lambda inc: inc.root_cause.statement),
            ("fixed", "root_cause:process_gap", lambda inc: inc.root_cause.process_gap),
            ("fixed", "fix:test", lambda inc: inc.fix.test),
            ("fixed", "fix:description", lambda inc: inc.fix.description),
        ],
    )
    def test_amends_each_kind_and_keeps_the_original(
        self,
        flow: IncidentFlow,
        clock: FrozenClock,
        drive: Drive,
        state: str,
        item: str,
        read: Callable[[Incident], str],
    ) -> None:
        """Amending an item shows the new text, marks it amended, and keeps the original event."""
        inc = drive("triaging")
        if state == "triaging":
            flow.add_evidence(inc.id, source="logs", content="500s", actor=RESPONDER)
        else:
            inc = advance_to(flow, clock, inc.id, state)
        original = read(flow.get(inc.id))
        before = list(flow.history(inc.id))
        clock.advance(STEP)
        after = flow.amend(inc.id, item, "the corrected text", reason=REASON, actor=RESPONDER)
        assert read(after) == "the corrected text"
        kind = item.partition(":")[0]
        record = {
            "why": lambda i: i.whys[0],
            "evidence": lambda i: i.evidence[0],
            "containment": lambda i: i.containment[0],
            "triage": lambda i: next(a for a in i.triage_answers if a.question == "scope"),
            "root_cause": lambda i: i.root_cause,
            "fix": lambda i: i.fix,
        }[kind](after)
        assert record.amended == amended_by(clock)
        keeps_the_record(flow, inc.id, before)
        assert original in repr([e.data for e in before])
        last = flow.history(inc.id)[-1]
        assert last.type == "amended"
        assert last.data.item == item  # type: ignore[attr-defined]
        assert last.data.reason == REASON  # type: ignore[attr-defined]

    def test_amends_an_action_item_description(
        self, flow: IncidentFlow, clock: FrozenClock, drive: Drive
    ) -> None:
        """An action item's description can be corrected, after closure too."""
        inc = drive("kb_updated")
        after = flow.amend(
            inc.id, "action_item:1", "add a load test", reason=REASON, actor=COMMANDER
        )
        assert after.action_items[0].description == "add a load test"
        assert after.action_items[0].amended == amended_by(clock, COMMANDER)
        assert after.state is State.KB_UPDATED
        assert replay(flow.history(inc.id)) == after

    def test_amends_a_drafted_postmortem_field_and_a_list(
        self, flow: IncidentFlow, drive: Drive
    ) -> None:
        """A drafted summary takes one text; went_well takes a list."""
        inc = drive("resolved")
        flow.draft_postmortem(inc.id, summary="first draft", actor=COMMANDER)
        inc = flow.amend(
            inc.id, "postmortem:summary", "second draft", reason=REASON, actor=COMMANDER
        )
        inc = flow.amend(
            inc.id,
            "postmortem:went_well",
            ["fast rollback", "clear roles"],
            reason=REASON,
            actor=COMMANDER,
        )
        assert inc.postmortem is not None
        assert inc.postmortem.summary == "second draft"
        assert inc.postmortem.went_well == ("fast rollback", "clear roles")
        assert not inc.postmortem.completed

    def test_a_single_text_item_refuses_a_list(self, flow: IncidentFlow, drive: Drive) -> None:
        """Only post-mortem lists take several texts; a why given two is refused on value."""
        inc = drive("fixed")
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.amend(inc.id, "why:1", ["one", "two"], reason=REASON, actor=RESPONDER)
        assert info.value.field == "value"

    def test_amending_a_completed_postmortem_recomputes_blame(
        self, flow: IncidentFlow, drive: Drive
    ) -> None:
        """After completion, a blaming amendment is warned about and a clean one clears it."""
        inc = drive("postmortem")
        assert inc.postmortem is not None
        assert not inc.postmortem.blame_warnings
        blamed = flow.amend(
            inc.id,
            "postmortem:summary",
            f"{RESPONDER} forgot to run the load test",
            reason="more detail",
            actor=COMMANDER,
        )
        assert blamed.postmortem is not None
        assert blamed.postmortem.completed
        assert blamed.postmortem.blame_warnings
        assert blamed.postmortem.amended is not None
        event = flow.history(inc.id)[-1]
        assert event.data.blame_warnings == blamed.postmortem.blame_warnings  # type: ignore[attr-defined]
        clean = flow.amend(
            inc.id,
            "postmortem:summary",
            "the release pipeline had no load test",
            reason="blameless wording",
            actor=COMMANDER,
        )
        assert clean.postmortem is not None
        assert clean.postmortem.blame_warnings == ()
        assert replay(flow.history(inc.id)) == clean

    def test_blame_is_refused_when_the_policy_rejects_it(self, clock: FrozenClock) -> None:
        """With blame_check=reject, a blaming amendment is refused with postmortem.blame."""
        flow = IncidentFlow.in_memory(clock=clock, policy=Policy(blame_check=BlameCheck.REJECT))
        inc = drive_to(flow, clock, "postmortem")
        rejection = refusal(
            flow,
            inc.id,
            lambda: flow.amend(
                inc.id,
                "postmortem:went_poorly",
                [f"{RESPONDER} broke the release"],
                reason="detail",
                actor=COMMANDER,
            ),
        )
        assert codes(rejection) == {"postmortem.blame"}

    @pytest.mark.parametrize("item", ["why:2", "evidence:3", "containment:9", "action_item:1"])
    def test_an_item_that_does_not_exist_is_refused(
        self, flow: IncidentFlow, drive: Drive, item: str
    ) -> None:
        """Amending an item beyond those recorded is refused with correction.unknown_item."""
        inc = drive("rca")
        rejection = refusal(
            flow, inc.id, lambda: flow.amend(inc.id, item, "x", reason=REASON, actor=RESPONDER)
        )
        assert codes(rejection) == {"correction.unknown_item"}
        assert item in str(rejection)

    @pytest.mark.parametrize(
        ("item", "fragment"),
        [
            ("why:1", "set_root_cause"),
            ("triage:impact", "no answer to impact"),
            ("root_cause:statement", "set_root_cause"),
            ("fix:test", "record_fix"),
            ("postmortem:summary", "draft_postmortem"),
        ],
    )
    def test_the_refusal_says_what_is_missing(
        self, flow: IncidentFlow, drive: Drive, item: str, fragment: str
    ) -> None:
        """A missing item's refusal names the item or the command that records it."""
        inc = drive("triaging")
        rejection = refusal(
            flow, inc.id, lambda: flow.amend(inc.id, item, "x", reason=REASON, actor=RESPONDER)
        )
        assert codes(rejection) == {"correction.unknown_item"}
        if item != "why:1":
            assert fragment in str(rejection)

    @pytest.mark.parametrize(
        "item",
        [
            "why",
            "why:",
            "why:0",
            "why:-1",
            "why:two",
            "nonsense:1",
            "fix:colour",
            "root_cause:1",
            "postmortem:timeline",
            "",
            ":1",
            7,
            None,
        ],
    )
    def test_a_bad_item_name_is_refused_naming_item(
        self, flow: IncidentFlow, drive: Drive, item: object
    ) -> None:
        """An item name that names nothing correctable is a ValidationError on ``item``."""
        inc = drive("fixed")
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.amend(inc.id, item, "x", reason=REASON, actor=RESPONDER)  # type: ignore[arg-type]
        assert info.value.field == "item"

    def test_item_names_are_normalised(self, flow: IncidentFlow, drive: Drive) -> None:
        """``WHY:01`` names why 1; the event records the canonical ``why:1``."""
        inc = drive("fixed")
        flow.amend(inc.id, " WHY:01 ", "better", reason=REASON, actor=RESPONDER)
        assert flow.history(inc.id)[-1].data.item == "why:1"  # type: ignore[attr-defined]

    def test_a_reason_is_required(self, flow: IncidentFlow, drive: Drive) -> None:
        """An amendment without a real reason is refused on ``reason``."""
        inc = drive("fixed")
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.amend(inc.id, "why:1", "better", reason="  ", actor=RESPONDER)
        assert info.value.field == "reason"

    def test_a_retracted_item_cannot_be_amended(self, flow: IncidentFlow, drive: Drive) -> None:
        """Amending what was retracted is refused with correction.retracted."""
        inc = drive("rca")
        flow.add_why(inc.id, "a typo", actor=RESPONDER)
        flow.retract(inc.id, "why:1", reason=REASON, actor=RESPONDER)
        rejection = refusal(
            flow, inc.id, lambda: flow.amend(inc.id, "why:1", "x", reason=REASON, actor=RESPONDER)
        )
        assert codes(rejection) == {"correction.retracted"}


class TestRetract:
    def test_retracting_a_why_frees_its_place_in_the_five(
        self, flow: IncidentFlow, drive: Drive
    ) -> None:
        """A sixth why is refused; after retracting one, it is accepted and the chain has six."""
        inc = drive("rca")
        for n in range(5):
            flow.add_why(inc.id, f"why number {n + 1}", actor=RESPONDER)
        rejection = refusal(flow, inc.id, lambda: flow.add_why(inc.id, "six", actor=RESPONDER))
        assert codes(rejection) == {"whys.full"}
        before = list(flow.history(inc.id))
        flow.retract(inc.id, "why:2", reason="misspelt", actor=RESPONDER)
        after = flow.add_why(inc.id, "why number six", actor=RESPONDER)
        assert len(after.whys) == 6
        assert [w.live for w in after.whys] == [True, False, True, True, True, True]
        assert after.whys[1].answer == "why number 2"  # retracted, still shown
        keeps_the_record(flow, inc.id, before)

    def test_retracted_triage_answer_leaves_the_checklist(
        self, flow: IncidentFlow, clock: FrozenClock, drive: Drive
    ) -> None:
        """A retracted answer is no longer in ``triage``, so contain asks for it again."""
        inc = drive("triaging")
        for question in ("symptom", "started_at", "scope"):
            flow.answer_triage(inc.id, question, "an answer", actor=RESPONDER)
        flow.add_evidence(inc.id, source="logs", content="500s", actor=RESPONDER)
        flow.record_containment(inc.id, "rolled back", actor=RESPONDER)
        after = flow.retract(inc.id, "triage:started_at", reason="wrong time", actor=RESPONDER)
        assert "started_at" not in after.triage
        assert after.triage_answers[1].retracted == Correction(clock(), RESPONDER, "wrong time")
        rejection = refusal(flow, inc.id, lambda: flow.contain(inc.id, actor=COMMANDER))
        assert "triage.unanswered" in codes(rejection)

    def test_the_last_live_containment_action_after_contain_is_kept(
        self, flow: IncidentFlow, drive: Drive
    ) -> None:
        """Once contained, the only live containment action cannot be retracted."""
        inc = drive("contained")
        rejection = refusal(
            flow,
            inc.id,
            lambda: flow.retract(inc.id, "containment:1", reason=REASON, actor=RESPONDER),
        )
        assert codes(rejection) == {"correction.needed"}
        assert "amend it instead" in str(rejection)

    def test_a_containment_action_with_another_live_one_can_go(
        self, flow: IncidentFlow, drive: Drive
    ) -> None:
        """With a second live containment action, the first can be retracted after contain."""
        inc = drive("contained")
        flow.record_containment(inc.id, "failed over to the standby", actor=RESPONDER)
        after = flow.retract(inc.id, "containment:1", reason=REASON, actor=RESPONDER)
        assert [c.live for c in after.containment] == [False, True]
        rejection = refusal(
            flow,
            inc.id,
            lambda: flow.retract(inc.id, "containment:2", reason=REASON, actor=RESPONDER),
        )
        assert codes(rejection) == {"correction.needed"}

    def test_the_only_why_after_mark_fixed_is_kept(self, flow: IncidentFlow, drive: Drive) -> None:
        """Past mark_fixed, the chain keeps at least one live why."""
        inc = drive("fixed")
        rejection = refusal(
            flow, inc.id, lambda: flow.retract(inc.id, "why:1", reason=REASON, actor=RESPONDER)
        )
        assert codes(rejection) == {"correction.needed"}

    def test_retracting_twice_is_refused(self, flow: IncidentFlow, drive: Drive) -> None:
        """Retracting a retracted item is refused with correction.retracted."""
        inc = drive("triaging")
        flow.add_evidence(inc.id, source="logs", content="wrong host", actor=RESPONDER)
        flow.retract(inc.id, "evidence:1", reason=REASON, actor=RESPONDER)
        rejection = refusal(
            flow,
            inc.id,
            lambda: flow.retract(inc.id, "evidence:1", reason=REASON, actor=RESPONDER),
        )
        assert codes(rejection) == {"correction.retracted"}
        assert "record it anew" in str(rejection)

    @pytest.mark.parametrize("item", ["root_cause:statement", "fix:test", "postmortem:summary"])
    def test_single_records_can_only_be_amended(
        self, flow: IncidentFlow, drive: Drive, item: str
    ) -> None:
        """Root cause, fix and post-mortem fields are amended, never retracted."""
        inc = drive("postmortem")
        rejection = refusal(
            flow, inc.id, lambda: flow.retract(inc.id, item, reason=REASON, actor=RESPONDER)
        )
        assert codes(rejection) == {"correction.not_retractable"}

    def test_an_unknown_item_is_refused(self, flow: IncidentFlow, drive: Drive) -> None:
        """Retracting an item that was never recorded is refused with correction.unknown_item."""
        inc = drive("triaging")
        rejection = refusal(
            flow, inc.id, lambda: flow.retract(inc.id, "why:1", reason=REASON, actor=RESPONDER)
        )
        assert codes(rejection) == {"correction.unknown_item"}

    def test_retracted_action_items_do_not_count_toward_closing(
        self, flow: IncidentFlow, drive: Drive
    ) -> None:
        """A retracted action item does not satisfy the minimum; closing asks for another."""
        inc = drive("resolved", severity="P3")
        due = flow.now().date()
        flow.add_action_item(inc.id, "a mistake", owner="dana", due=due, actor=COMMANDER)
        flow.retract(inc.id, "action_item:1", reason=REASON, actor=COMMANDER)
        rejection = refusal(
            flow,
            inc.id,
            lambda: flow.update_kb(inc.id, symptom="s", early_signs="e", actor=COMMANDER),
        )
        assert codes(rejection) == {"action_items.missing"}

    def test_a_written_postmortem_keeps_a_live_action_item(self, clock: FrozenClock) -> None:
        """A P3 post-mortem written by choice keeps a live action item, even with a minimum of 0."""
        policy = Policy(severities={Severity.P3: ProcessOverride(min_action_items=0)})
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = drive_to(flow, clock, "postmortem", "P3", via_postmortem=True)
        rejection = refusal(
            flow,
            inc.id,
            lambda: flow.retract(inc.id, "action_item:1", reason=REASON, actor=COMMANDER),
        )
        assert codes(rejection) == {"correction.needed"}


class TestTriageQuestions:
    def test_an_unknown_question_is_refused_listing_the_known_ones(
        self, flow: IncidentFlow, drive: Drive
    ) -> None:
        """``start`` for ``started_at`` is refused; the message lists every known question."""
        inc = drive("triaging")
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.answer_triage(inc.id, "start", "14:02", actor=RESPONDER)
        assert info.value.field == "question"
        for known in ("symptom", "started_at", "scope"):
            assert known in str(info.value)

    def test_a_policy_question_is_known(self, clock: FrozenClock) -> None:
        """``triage_questions=("customer_impact",)`` makes the question answerable, not required."""
        policy = Policy(triage_questions=("customer_impact",))
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = drive_to(flow, clock, "triaging")
        after = flow.answer_triage(inc.id, "customer impact", "EU only", actor=RESPONDER)
        assert after.triage["customer_impact"] == "EU only"
        assert drive_to(flow, clock, "contained").state is State.CONTAINED


class TestReopenSupersedes:
    def test_reopen_keeps_the_fix_deploys_and_confirmation(
        self, flow: IncidentFlow, clock: FrozenClock, drive: Drive
    ) -> None:
        """What the reopen set aside is in ``superseded``, with when and why."""
        inc = drive("resolved")
        fix, deploys, confirmation = inc.fix, tuple(inc.deploys), inc.confirmation
        clock.advance(STEP)
        after = flow.reopen(inc.id, reason="the 500s came back", to="rca", actor=COMMANDER)
        assert after.fix is None
        assert not after.deploys
        assert after.confirmation is None
        (superseded,) = after.superseded
        assert superseded.fix == fix
        assert superseded.deploys == deploys
        assert superseded.confirmation == confirmation
        assert superseded.at == clock()
        assert superseded.reason == "the 500s came back"
        assert replay(flow.history(inc.id)) == after

    def test_mark_fixed_says_the_earlier_fix_is_superseded(
        self, flow: IncidentFlow, drive: Drive
    ) -> None:
        """After a reopen, mark_fixed asks for a fix and a deploy since the reopen."""
        inc = drive("fixed")
        flow.reopen(inc.id, reason="it came back", to="rca", actor=COMMANDER)
        rejection = refusal(flow, inc.id, lambda: flow.mark_fixed(inc.id, actor=COMMANDER))
        assert codes(rejection) == {"fix.missing", "deploy.missing"}
        assert str(rejection).count("superseded") >= 2

    def test_resolve_says_the_earlier_confirmation_is_superseded(
        self, flow: IncidentFlow, clock: FrozenClock, drive: Drive
    ) -> None:
        """After a reopen and a new fix, resolve asks for a confirmation since the reopen."""
        inc = drive("fixed")
        clock.advance(flow.policy.watch_window)
        flow.confirm_by_user(inc.id, user=USER, actor=COMMANDER)
        flow.reopen(inc.id, reason="it came back", to="rca", actor=COMMANDER)
        texts = DEFAULT_TEXTS
        flow.record_fix(
            inc.id, texts["fix"], test=texts["fix_test"], staging_verified=True, actor=RESPONDER
        )
        clock.advance(STEP)
        flow.record_deploy(inc.id, ref="v43", actor=RESPONDER)
        flow.mark_fixed(inc.id, actor=COMMANDER)
        clock.advance(flow.policy.watch_window)
        rejection = refusal(flow, inc.id, lambda: flow.resolve(inc.id, actor=COMMANDER))
        assert codes(rejection) == {"confirmation.missing"}
        assert "superseded" in str(rejection)


@pytest.mark.parametrize("kind", STORE_KINDS)
class TestOnEveryStore:
    def test_corrections_keep_the_record(
        self, kind: str, tmp_path: Path, clock: FrozenClock
    ) -> None:
        """Amend and retract are stored, reloaded and replayed the same on every store."""
        with store_flow(kind, tmp_path, clock) as flow:
            inc = drive_to(flow, clock, "rca")
            flow.add_why(inc.id, "teh pool was exhausted", actor=RESPONDER)
            flow.add_why(inc.id, "a duplicate", actor=RESPONDER)
            before = list(flow.history(inc.id))
            flow.amend(inc.id, "why:1", "the pool was exhausted", reason=REASON, actor=RESPONDER)
            flow.retract(inc.id, "why:2", reason="duplicate", actor=RESPONDER)
            after = flow.get(inc.id)
            assert after.whys[0].answer == "the pool was exhausted"
            assert after.whys[0].amended is not None
            assert not after.whys[1].live
            keeps_the_record(flow, inc.id, before)
            assert flow.verify(inc.id)

    def test_a_reopen_keeps_what_it_superseded(
        self, kind: str, tmp_path: Path, clock: FrozenClock
    ) -> None:
        """The superseded fix survives a reload from the store."""
        with store_flow(kind, tmp_path, clock) as flow:
            inc = drive_to(flow, clock, "resolved")
            flow.reopen(inc.id, reason="it came back", actor=COMMANDER)
            after = flow.get(inc.id)
            assert after.superseded[0].fix == inc.fix
            assert replay(flow.history(inc.id)) == after


class TestEdges:
    """What a review of the corrections found: each a refusal or a kept mark."""

    def test_a_completed_postmortem_list_cannot_be_emptied(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Amending went_well to nothing is refused: complete_postmortem required an item."""
        inc = drive_to(flow, clock, State.POSTMORTEM)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.amend(inc.id, "postmortem:went_well", [], reason=REASON, actor=COMMANDER)
        assert info.value.field == "value"
        assert "at least one item" in info.value.message

    @pytest.mark.parametrize("item", ["why:²", "action_item:³", "evidence:①", "why:١"])
    def test_item_numbers_are_ascii_digits(
        self, flow: IncidentFlow, clock: FrozenClock, item: str
    ) -> None:
        """A number written with other digits is a ValidationError naming item, never a crash."""
        inc = drive_to(flow, clock, State.RCA)
        with unchanged(flow, inc.id), pytest.raises(ValidationError) as info:
            flow.amend(inc.id, item, "x", reason=REASON, actor=COMMANDER)
        assert info.value.field == "item"
        with pytest.raises(ValidationError):
            flow.can(inc.id, "retract", item=item, reason=REASON)

    def test_evidence_is_amended_up_to_its_own_length(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Evidence may be long (a log excerpt), and so may its correction; a why may not."""
        inc = drive_to(flow, clock, State.RCA)
        excerpt = "log line\n" * 5_000  # 45,000 characters
        after = flow.amend(inc.id, "evidence:1", excerpt, reason=REASON, actor=RESPONDER)
        assert after.evidence[0].content == excerpt.strip()
        flow.add_why(inc.id, "the pool was too small", actor=RESPONDER)
        with pytest.raises(ValidationError) as info:
            flow.amend(inc.id, "why:1", excerpt, reason=REASON, actor=RESPONDER)
        assert "20,000" in info.value.message

    def test_a_later_draft_keeps_the_amendment_mark(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Drafting another field after an amendment keeps the post-mortem marked amended."""
        inc = drive_to(flow, clock, State.RESOLVED)
        flow.draft_postmortem(inc.id, summary="checkout failed", actor=COMMANDER)
        flow.amend(inc.id, "postmortem:summary", "checkout failed for 20 min", reason=REASON,
                   actor=COMMANDER)  # fmt: skip
        after = flow.draft_postmortem(inc.id, root_cause="no pool alert", actor=COMMANDER)
        assert after.postmortem is not None
        assert after.postmortem.amended == amended_by(clock, COMMANDER)
        assert replay(flow.history(inc.id)) == after

    def test_a_retracted_symptom_is_not_searched(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """similar() stops matching a symptom once it is retracted."""
        from incidentflow._similar import SearchText

        inc = drive_to(flow, clock, State.TRIAGING)
        inc = flow.answer_triage(inc.id, "symptom", "payment gateway timeouts", actor=RESPONDER)
        assert SearchText.of(inc).symptom == "payment gateway timeouts"
        inc = flow.retract(inc.id, "triage:symptom", reason=REASON, actor=RESPONDER)
        assert SearchText.of(inc).symptom == ""
