"""Links between incidents and merges of duplicates: on both sides, guarded, re-runnable."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    COMMANDER,
    RESPONDER,
    STORE_KINDS,
    USER,
    codes,
    declare,
    drive_to,
    refusal,
    store_flow,
    unchanged,
)
from incidentflow import (
    Incident,
    IncidentFlow,
    InvalidTransition,
    Reference,
    ReferenceTaken,
    State,
    StoreError,
    ValidationError,
    replay,
)
from incidentflow.commands import LINK_KINDS
from incidentflow.testing import FrozenClock


def two(flow: IncidentFlow, **second: Any) -> tuple[Incident, Incident]:
    """Two open incidents: "Checkout down" and "Cart down"."""
    first = declare(flow, texts={"title": "Checkout down"})
    return first, declare(flow, texts={"title": "Cart down"}, **second)


def kinds(inc: Incident) -> set[tuple[str, str]]:
    """The (kind, other) pairs of an incident's links."""
    return {(x.kind, x.other) for x in inc.links}


@contextmanager
def crash_on(flow: IncidentFlow, fails: Callable[[str, str], bool]) -> Iterator[None]:
    """Make the commit of the command ``fails(name, incident_id)`` names raise StoreError, once."""
    real = flow._execute
    crashed: list[bool] = []

    def execute(command: Any, incident_id: str, options: Any, args: Any) -> Any:
        if not crashed and fails(command.name, incident_id):
            crashed.append(True)
            raise StoreError("the process died here")
        return real(command, incident_id, options, args)

    flow._execute = execute  # type: ignore[method-assign]
    try:
        yield
    finally:
        del flow._execute
    assert crashed, "the crash never happened"


class TestLink:
    @pytest.mark.parametrize("kind", sorted(LINK_KINDS))
    def test_both_incidents_record_the_link(self, flow: IncidentFlow, kind: str) -> None:
        """The incident records the kind, the other one the inverse kind, each with who and when."""
        a, b = two(flow)
        linked = flow.link(a.id, kind, b.id, actor=RESPONDER)
        assert kinds(linked) == {(kind, b.id)}
        assert kinds(flow.get(b.id)) == {(LINK_KINDS[kind], a.id)}
        assert linked.links[0].actor == RESPONDER
        assert linked.links[0].at == flow.now()
        assert replay(flow.history(a.id)) == linked
        assert replay(flow.history(b.id)) == flow.get(b.id)

    def test_the_inverses_pair_up(self) -> None:
        """parent_of ↔ child_of, duplicate_of ↔ duplicated_by, caused_by ↔ causes, related_to."""
        assert LINK_KINDS["parent_of"] == "child_of"
        assert LINK_KINDS["duplicate_of"] == "duplicated_by"
        assert LINK_KINDS["caused_by"] == "causes"
        assert LINK_KINDS["related_to"] == "related_to"
        assert all(LINK_KINDS[inverse] == kind for kind, inverse in LINK_KINDS.items())

    def test_linking_twice_is_refused_with_a_code(self, flow: IncidentFlow) -> None:
        """The same link again, from either side, is refused with links.present."""
        a, b = two(flow)
        flow.link(a.id, "related_to", b.id, actor=COMMANDER)
        again = refusal(flow, a.id, lambda: flow.link(a.id, "related_to", b.id, actor=COMMANDER))
        assert codes(again) == {"links.present"}
        back = refusal(flow, b.id, lambda: flow.link(b.id, "related_to", a.id, actor=COMMANDER))
        assert codes(back) == {"links.present"}

    def test_the_opposite_link_is_refused(self, flow: IncidentFlow) -> None:
        """A parent cannot also be its child's child: links.contradicted, nothing recorded."""
        a, b = two(flow)
        flow.link(a.id, "parent_of", b.id, actor=COMMANDER)
        with unchanged(flow, b.id):
            rejection = refusal(
                flow, a.id, lambda: flow.link(a.id, "child_of", b.id, actor=COMMANDER)
            )
        assert codes(rejection) == {"links.contradicted"}
        assert "unlink first" in rejection.reasons[0].message

    def test_the_other_must_exist_and_not_be_this_one(self, flow: IncidentFlow) -> None:
        """A missing or the same incident is a ValidationError naming other."""
        a, _ = two(flow)
        for other, says in ((a.id, "itself"), ("INC-2026-01-01-nothing", "no incident")):
            with unchanged(flow, a.id), pytest.raises(ValidationError) as info:
                flow.link(a.id, "related_to", other, actor=COMMANDER)
            assert info.value.field == "other"
            assert says in info.value.message

    def test_an_unknown_kind_is_refused(self, flow: IncidentFlow) -> None:
        """The kind is one of the link kinds; the message lists them."""
        a, b = two(flow)
        with unchanged(flow), pytest.raises(ValidationError) as info:
            flow.link(a.id, "blocks", b.id, actor=COMMANDER)
        assert info.value.field == "kind"
        assert "parent_of" in info.value.message

    def test_a_closed_incident_can_be_linked(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """A new incident can name an old, closed one as its cause; the closed one records it."""
        old = drive_to(flow, clock, State.KB_UPDATED)
        new = declare(flow, texts={"title": "Checkout down again"})
        flow.link(new.id, "caused_by", old.id, actor=COMMANDER)
        closed = flow.get(old.id)
        assert closed.state is State.KB_UPDATED
        assert kinds(closed) == {("causes", new.id)}

    def test_a_link_stopped_halfway_is_completed_by_running_it_again(
        self, flow: IncidentFlow
    ) -> None:
        """If the other incident's commit never happened, the same call records only that half."""
        a, b = two(flow)
        with crash_on(flow, lambda _, incident_id: incident_id == b.id), pytest.raises(StoreError):
            flow.link(a.id, "parent_of", b.id, actor=COMMANDER)
        assert kinds(flow.get(a.id)) == {("parent_of", b.id)}
        assert not flow.get(b.id).links
        version = flow.get(a.id).version
        flow.link(a.id, "parent_of", b.id, actor=COMMANDER)
        assert flow.get(a.id).version == version
        assert kinds(flow.get(b.id)) == {("child_of", a.id)}

    def test_an_idempotency_key_replays_the_whole_link(self, flow: IncidentFlow) -> None:
        """The same key and arguments answer the first result; execute says it was a replay."""
        a, b = two(flow)
        first = flow.execute(
            "link", a.id, kind="related_to", other=b.id, actor=COMMANDER, idempotency_key="k-1"
        )
        again = flow.execute(
            "link", a.id, kind="related_to", other=b.id, actor=COMMANDER, idempotency_key="k-1"
        )
        assert (first.replayed, again.replayed) == (False, True)
        assert again.incident == first.incident
        assert len(flow.get(b.id).links) == 1

    def test_execute_records_both_sides(self, flow: IncidentFlow) -> None:
        """flow.execute("link") records the inverse on the other incident too."""
        a, b = two(flow)
        flow.execute("link", a.id, kind="parent_of", other=b.id, actor=COMMANDER)
        assert kinds(flow.get(b.id)) == {("child_of", a.id)}


class TestUnlink:
    def test_both_incidents_lose_the_link(self, flow: IncidentFlow) -> None:
        """Unlinking from either side removes it from both; the history keeps it."""
        a, b = two(flow)
        flow.link(a.id, "parent_of", b.id, actor=COMMANDER)
        flow.unlink(b.id, "child_of", a.id, actor=COMMANDER)
        assert not flow.get(a.id).links
        assert not flow.get(b.id).links
        assert [e.type for e in flow.history(a.id)][-2:] == ["linked", "unlinked"]

    def test_unlinking_what_is_not_linked_is_refused(self, flow: IncidentFlow) -> None:
        """links.absent names the kind and the other incident."""
        a, b = two(flow)
        rejection = refusal(flow, a.id, lambda: flow.unlink(a.id, "causes", b.id, actor=COMMANDER))
        assert codes(rejection) == {"links.absent"}
        assert rejection.reasons[0].data == {"kind": "causes", "other": b.id}


class TestParentAndChildren:
    def test_a_parent_waits_for_its_open_children(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """resolve is refused with links.child_open naming each open child; allowed once closed."""
        parent = drive_to(flow, clock, State.FIXED)
        child = declare(flow, texts={"title": "Cart down"})
        other = declare(flow, texts={"title": "Search down"})
        flow.link(parent.id, "parent_of", child.id, actor=COMMANDER)
        flow.link(other.id, "child_of", parent.id, actor=COMMANDER)
        clock.advance(flow.policy.watch_window)
        flow.confirm_by_user(parent.id, user=USER, actor=COMMANDER)
        rejection = refusal(flow, parent.id, lambda: flow.resolve(parent.id, actor=COMMANDER))
        assert codes(rejection) == {"links.child_open"}
        assert rejection.reasons[0].data == {"children": [child.id, other.id]}
        assert not flow.can(parent.id, "resolve").allowed
        flow.dismiss(child.id, reason="false alarm", actor=COMMANDER)
        flow.unlink(parent.id, "parent_of", other.id, actor=COMMANDER)
        assert flow.can(parent.id, "resolve").allowed
        assert flow.resolve(parent.id, actor=COMMANDER).state is State.RESOLVED

    def test_a_resolved_child_no_longer_holds_the_parent(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """A child that reached resolved is not open: the parent can resolve."""
        parent = drive_to(flow, clock, State.FIXED)
        child = drive_to(flow, clock, State.RESOLVED, texts={"title": "Cart down"})
        flow.link(child.id, "child_of", parent.id, actor=COMMANDER)
        clock.advance(flow.policy.watch_window)
        flow.confirm_by_user(parent.id, user=USER, actor=COMMANDER)
        assert flow.resolve(parent.id, actor=COMMANDER).state is State.RESOLVED

    def test_only_commands_that_need_them_read_linked_incidents(
        self, flow: IncidentFlow, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A parent's add_evidence loads the parent only; can('resolve') loads each child once."""
        a, b = two(flow)
        flow.link(a.id, "parent_of", b.id, actor=COMMANDER)
        loaded: list[str] = []
        real, cached = flow.store.load, flow.store.cached

        def load(incident_id: str) -> Incident:
            loaded.append(incident_id)
            return real(incident_id)

        def from_memory(incident_id: str) -> Incident | None:
            loaded.append(incident_id)
            return cached(incident_id)

        monkeypatch.setattr(flow.store, "load", load)
        monkeypatch.setattr(flow.store, "cached", from_memory)
        flow.add_evidence(a.id, source="grafana", content="errors", actor=COMMANDER)
        assert loaded == [a.id]  # the cached snapshot: one read, of the parent
        loaded.clear()
        flow.can(a.id, "resolve")
        assert loaded == [a.id]  # declared: the state refuses before any guard runs
        assert flow.get(a.id).links


class TestMerge:
    def test_the_duplicate_closes_and_the_target_takes_what_it_had(
        self, flow: IncidentFlow
    ) -> None:
        """Dismissed as "merged into X"; evidence, labels and references move to X in one event."""
        target, dup = two(
            flow, labels={"service": "cart", "zone": "eu"}, references={"alert": "fp-2"}
        )
        flow.set_labels(target.id, {"service": "checkout"}, actor=COMMANDER)
        flow.start_triage(dup.id, actor=COMMANDER)
        flow.add_evidence(dup.id, source="grafana", content="cart 500s", actor=RESPONDER)
        flow.add_evidence(dup.id, source="logs", content="wrong graph", actor=RESPONDER)
        flow.retract(dup.id, "evidence:2", reason="wrong graph", actor=RESPONDER)
        version = flow.get(target.id).version
        merged = flow.merge(dup.id, into=target.id, reason="one outage", actor=COMMANDER)
        assert merged.state is State.DISMISSED
        assert merged.dismissal_reason == f"merged into {target.id}: one outage"
        assert merged.duplicate_of == target.id
        assert not merged.references
        assert kinds(merged) == {("duplicate_of", target.id)}
        after = flow.get(target.id)
        assert after.version == version + 1
        assert flow.history(target.id)[-1].type == "absorbed"
        assert [(e.source, e.content) for e in after.evidence] == [("grafana", "cart 500s")]
        assert dict(after.labels) == {"service": "checkout", "zone": "eu"}
        assert Reference("alert", "fp-2") in after.references
        assert kinds(after) == {("duplicated_by", dup.id)}
        assert flow.find("alert", "fp-2") == after
        for inc in (merged, after):
            assert replay(flow.history(inc.id)) == flow.get(inc.id)

    @pytest.mark.parametrize("state", [s for s in State if s.is_open], ids=lambda s: s.value)
    def test_a_duplicate_merges_at_any_open_state(
        self, flow: IncidentFlow, clock: FrozenClock, state: State
    ) -> None:
        """From declared to fixed, a duplicate can be merged."""
        target = declare(flow, texts={"title": "Checkout down"})
        dup = drive_to(flow, clock, state, texts={"title": "Cart down"})
        assert flow.merge(dup.id, into=target.id, reason="same", actor=COMMANDER).state is (
            State.DISMISSED
        )

    @pytest.mark.parametrize("state", [State.RESOLVED, State.DISMISSED], ids=lambda s: s.value)
    def test_a_closed_duplicate_is_not_merged(
        self, flow: IncidentFlow, clock: FrozenClock, state: State
    ) -> None:
        """Outside the open states merge raises InvalidTransition; nothing moves."""
        target = declare(flow, texts={"title": "Checkout down"})
        dup = drive_to(flow, clock, state, texts={"title": "Cart down"})
        with unchanged(flow, target.id), unchanged(flow, dup.id), pytest.raises(InvalidTransition):
            flow.merge(dup.id, into=target.id, reason="same", actor=COMMANDER)

    def test_the_target_must_exist_not_be_itself_nor_closed(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """into names another incident that exists and is not closed (ValidationError on into)."""
        dup = declare(flow, texts={"title": "Cart down"})
        closed = drive_to(flow, clock, State.DISMISSED, texts={"title": "Search down"})
        for into, says in (
            (dup.id, "itself"),
            ("INC-2026-01-01-nothing", "no incident"),
            (closed.id, "dismissed"),
        ):
            with unchanged(flow, dup.id), pytest.raises(ValidationError) as info:
                flow.merge(dup.id, into=into, reason="same", actor=COMMANDER)
            assert info.value.field == "into"
            assert says in info.value.message

    def test_a_merge_stopped_halfway_is_completed_by_running_it_again(
        self, flow: IncidentFlow
    ) -> None:
        """The duplicate closed, the target did not absorb: the re-run records only that half."""
        target, dup = two(flow, references={"alert": "fp-2"})
        with crash_on(flow, lambda name, _: name == "absorb"), pytest.raises(StoreError):
            flow.merge(dup.id, into=target.id, reason="same", actor=COMMANDER)
        closed = flow.get(dup.id)
        assert closed.state is State.DISMISSED
        assert Reference("alert", "fp-2") not in flow.get(target.id).references
        assert flow.merge(dup.id, into=target.id, reason="same", actor=COMMANDER) == closed
        assert Reference("alert", "fp-2") in flow.get(target.id).references
        with pytest.raises(InvalidTransition):  # complete now: a third run is refused
            flow.merge(dup.id, into=target.id, reason="same", actor=COMMANDER)

    def test_a_merge_cut_short_is_completed_even_after_the_target_closed(
        self, flow: IncidentFlow
    ) -> None:
        """The target closed before the re-run: it still takes the duplicate's share."""
        target, dup = two(flow, references={"alert": "fp-3"})
        with crash_on(flow, lambda name, _: name == "absorb"), pytest.raises(StoreError):
            flow.merge(dup.id, into=target.id, reason="same", actor=COMMANDER)
        flow.dismiss(target.id, reason="handled elsewhere", actor=COMMANDER)
        flow.merge(dup.id, into=target.id, reason="same", actor=COMMANDER)
        assert Reference("alert", "fp-3") in flow.get(target.id).references
        assert flow.verify(target.id)

    def test_dismiss_as_duplicate_still_needs_an_existing_incident(
        self, flow: IncidentFlow
    ) -> None:
        """dismiss(duplicate_of=...) names another incident that exists."""
        a, _ = two(flow)
        with unchanged(flow, a.id), pytest.raises(ValidationError) as info:
            flow.dismiss(a.id, reason="dup", duplicate_of="INC-2026-01-01-nothing", actor=COMMANDER)
        assert info.value.field == "duplicate_of"


class TestFiles:
    def test_both_incident_files_show_the_links(self, clock: FrozenClock, tmp_path: Path) -> None:
        """Each file has a Links section: the kind, the other incident and since when."""
        flow = IncidentFlow.in_memory(clock=clock, incidents_dir=tmp_path)
        a, b = two(flow)
        flow.link(a.id, "parent_of", b.id, actor=COMMANDER)
        parent = (tmp_path / f"{a.id}.md").read_text()
        child = (tmp_path / f"{b.id}.md").read_text()
        assert "## Links" in parent
        assert f"| Parent of | {b.id} | 2026-11-27 14:00 UTC | {COMMANDER} |" in parent
        assert f"| Child of | {a.id} | 2026-11-27 14:00 UTC | {COMMANDER} |" in child


class TestEveryStore:
    @pytest.mark.parametrize("kind", STORE_KINDS)
    def test_links_and_merges_reload_and_replay(
        self, kind: str, tmp_path: Path, clock: FrozenClock
    ) -> None:
        """Links, a merge and the moved reference survive the store and replay to the snapshot."""
        with store_flow(kind, tmp_path, clock) as flow:
            a, b = two(flow, references={"alert": "fp-2"})
            c = declare(flow, texts={"title": "Search down"})
            flow.link(a.id, "parent_of", c.id, actor=COMMANDER)
            flow.add_evidence(b.id, source="grafana", content="5xx", actor=RESPONDER)
            flow.merge(b.id, into=a.id, reason="one outage", actor=COMMANDER)
            found = flow.find("alert", "fp-2")
            assert found is not None
            assert found.id == a.id
            assert kinds(flow.get(a.id)) == {("parent_of", c.id), ("duplicated_by", b.id)}
            for inc in (a, b, c):
                assert flow.verify(inc.id)
            # a reference moved by a merge is held by one open incident: it stays unique
            second = declare(flow, texts={"title": "Cart down again"})
            with pytest.raises(ReferenceTaken) as info:
                flow.add_reference(second.id, "alert", "fp-2", actor=COMMANDER)
            assert info.value.holder == a.id
