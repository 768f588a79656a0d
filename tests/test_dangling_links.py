"""A link whose other incident is not in this store (an export of one of two) holds nothing up."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from helpers import START, drive_to, unchanged
from incidentflow import IncidentFlow, State, TransitionRejected, ValidationError
from incidentflow._transfer import export_lines, import_histories, read_export
from incidentflow.stores import SQLiteStore
from incidentflow.testing import FrozenClock


def _parent_alone(tmp_path: Path, clock: FrozenClock) -> tuple[IncidentFlow, str, str]:
    """A store holding a fixed parent whose open child was not exported with it."""
    source = IncidentFlow.in_memory(clock=clock, incidents_dir=None, knowledge_dir=None)
    child = source.declare("Payments down", severity="P3", commander="a", actor="a")
    parent = drive_to(source, clock, State.FIXED, "P3")
    source.link(parent.id, "parent_of", child.id, actor="a")
    text = "\n".join(export_lines(source, [parent.id])) + "\n"
    target = IncidentFlow(
        SQLiteStore(tmp_path / "target.db"), clock=clock, incidents_dir=None, knowledge_dir=None
    )
    histories = read_export(io.StringIO(text), "export.jsonl", target.policy, now=target.now())
    assert import_histories(target, histories).imported == (parent.id,)
    return target, parent.id, child.id


def test_a_parent_whose_child_is_not_here_can_be_resolved(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """Its child holds it up only where the child is: can() answers, resolve runs."""
    flow, parent, child = _parent_alone(tmp_path, clock)
    assert not flow.store.exists(child)
    flow.confirm_by_user(parent, user="dana", actor="a")
    clock.advance(minutes=20)
    assert flow.can(parent, "resolve").allowed
    assert flow.resolve(parent, actor="a").state is State.RESOLVED


def test_a_link_to_an_incident_not_here_can_be_removed(tmp_path: Path, clock: FrozenClock) -> None:
    flow, parent, child = _parent_alone(tmp_path, clock)
    after = flow.unlink(parent, "parent_of", child, actor="a")
    assert [(x.kind, x.other) for x in after.links] == []
    with unchanged(flow, parent), pytest.raises(TransitionRejected):
        flow.unlink(parent, "parent_of", child, actor="a")  # nothing left to remove


def test_linking_to_an_incident_not_here_is_still_refused(
    tmp_path: Path, clock: FrozenClock
) -> None:
    flow, parent, child = _parent_alone(tmp_path, clock)
    with unchanged(flow, parent), pytest.raises(ValidationError, match="there is no incident"):
        flow.link(parent, "related_to", child, actor="a")


def test_only_incidents_restricted_alike_are_joined() -> None:
    """A link or a duplicate never joins a restricted incident to one others see.

    Either would show the restricted incident's id to those who see only the
    other, so linking them is refused even to someone who sees both, and a
    linked incident keeps its restriction until it is unlinked.
    """
    clock = FrozenClock(START)
    flow = IncidentFlow.in_memory(clock=clock, incidents_dir=None, knowledge_dir=None)
    secret = flow.declare(
        "Secret zebra breach", severity="P1", commander="alice", actor="alice",
        restricted_to=["alice"],
    ).id  # fmt: skip
    public = flow.declare("Queue stalls", severity="P3", commander="bob", actor="bob").id
    with unchanged(flow, public), pytest.raises(ValidationError, match="restrict both alike"):
        flow.link(public, "related_to", secret, actor="alice")
    other = flow.declare("Disk full", severity="P3", commander="bob", actor="bob").id
    flow.link(public, "related_to", other, actor="bob")
    assert [r.code for r in flow.can(public, "restrict", to=["bob"]).reasons] == ["access.linked"]
    with unchanged(flow, public), pytest.raises(TransitionRejected, match="unlink them first"):
        flow.restrict(public, ["bob"], actor="bob")
    flow.unlink(public, "related_to", other, actor="bob")
    assert flow.restrict(public, ["bob"], actor="bob").restricted_to == ("bob",)
