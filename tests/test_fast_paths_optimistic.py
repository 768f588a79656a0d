"""A command on a store that caches snapshots commits against the cached version first."""

from __future__ import annotations

from pathlib import Path

import pytest

from incidentflow import (
    Incident,
    IncidentFlow,
    IncidentNotFound,
    Policy,
    TransitionRejected,
    Unauthorized,
)
from incidentflow.stores import SQLiteStore
from incidentflow.testing import FrozenClock


def test_a_warm_command_reads_nothing_before_its_commit(tmp_path: Path) -> None:
    """With the snapshot cached, a command is BEGIN, the versioned UPDATE, INSERT, COMMIT."""
    store = SQLiteStore(tmp_path / "incidents.db")
    flow = IncidentFlow(store, clock=FrozenClock())
    incident = flow.declare("Checkout returns 500", severity="P1", commander="al", actor="al")
    flow.start_triage(incident.id, actor="al")
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    flow.add_evidence(incident.id, source="logs", content="500s", actor="bo")
    store._conn.set_trace_callback(None)
    assert [s.split()[0].upper() for s in statements] == ["BEGIN", "UPDATE", "INSERT", "COMMIT"]
    store.close()


class _Audit:
    """An authorizer that records every question it is asked and refuses eve."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, int | None]] = []

    def authorize(self, actor: str, command: str, incident: Incident | None) -> None:
        self.asked.append((actor, command, None if incident is None else incident.version))
        if actor == "eve":
            raise Unauthorized(actor=actor, command=command)

    def principals(self, actor: str) -> frozenset[str]:
        return frozenset({actor})


def test_a_refusal_on_the_current_snapshot_is_decided_once(tmp_path: Path) -> None:
    """A refused step or actor asks the authorizer once, as when every command read first."""
    audit = _Audit()
    flow = IncidentFlow(SQLiteStore(tmp_path / "incidents.db"), policy=Policy(authorizer=audit))
    incident = flow.declare("Checkout returns 500", severity="P2", commander="al", actor="al")
    flow.start_triage(incident.id, actor="al")
    audit.asked.clear()
    with pytest.raises(TransitionRejected):
        flow.contain(incident.id, actor="al")
    with pytest.raises(Unauthorized):
        flow.add_note(incident.id, "x", actor="eve")
    assert audit.asked == [("al", "contain", 2), ("eve", "add_note", 2)]
    flow.close()


def test_a_keyed_retry_is_checked_against_who_may_see_the_incident_now(tmp_path: Path) -> None:
    """Restricted by another process since the first run: the retry answers not found."""
    here = IncidentFlow(SQLiteStore(tmp_path / "incidents.db"))
    there = IncidentFlow(SQLiteStore(tmp_path / "incidents.db"))
    incident = here.declare("Checkout returns 500", severity="P2", commander="al", actor="al")
    here.start_triage(incident.id, actor="mallory", idempotency_key="k1")
    there.restrict(incident.id, ["al"], actor="al")  # here's cache still shows it unrestricted
    with pytest.raises(IncidentNotFound):
        here.start_triage(incident.id, actor="mallory", idempotency_key="k1")
    assert here.start_triage(incident.id, actor="al", idempotency_key="k1").version == 2
    here.close()
    there.close()
