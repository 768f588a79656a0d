"""A command on a store that caches snapshots commits against the cached version first."""

from __future__ import annotations

from pathlib import Path

from incidentflow import IncidentFlow
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
