"""A command on a rich incident against the same command on a bare one (issue 10).

Run with ``python benchmarks/rich_incident.py`` (``--quick`` for a smaller run).

The rich incident has 50 labels, 5 roles (the commander and four more, with
their handoffs) and 100 status updates; the bare one has none of these and the
same number of events otherwise. The command is ``add_evidence`` (it changes
nothing the query index keeps beside the snapshot). Each store runs both sides
in interleaved batches (ABBA) and prints the median ratio rich / bare.
Target ≤ 1.2× on SQLite and on the memory store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from storage import START, interleaved

from incidentflow import IncidentFlow, Policy
from incidentflow.stores import MemoryStore, SQLiteStore, Store
from incidentflow.testing import FrozenClock

ROLES = ("communications_lead", "operations_lead", "scribe", "liaison")
POLICY = Policy(roles=("commander", *ROLES))
UPDATES = 100
LABELS = 50


def rich(flow: IncidentFlow, title: str) -> str:
    """An incident in triage with 50 labels, 5 roles and 100 updates."""
    labels = {f"label-{n}": f"value-{n}" for n in range(LABELS)}
    inc = flow.declare(title, severity="P2", commander="alice", labels=labels, actor="alice")
    flow.start_triage(inc.id, actor="alice")
    for role in ROLES:
        flow.assign_role(inc.id, role, f"person-{role}", note="takes it", actor="alice")
    for n in range(UPDATES):
        flow.post_update(inc.id, "internal", f"update {n}: still rolling back", actor="alice")
    return inc.id


def bare(flow: IncidentFlow, title: str, events: int) -> str:
    """An incident in triage with as many events, as notes."""
    inc = flow.declare(title, severity="P2", commander="alice", actor="alice")
    flow.start_triage(inc.id, actor="alice")
    for n in range(events - 2):
        flow.add_note(inc.id, f"note {n}", actor="alice")
    return inc.id


def compare(name: str, store: Store, batches: int, per_batch: int) -> float:
    flow = IncidentFlow(store, clock=FrozenClock(START), policy=POLICY)
    rich_id = rich(flow, "Checkout is slow in every region")
    bare_id = bare(flow, "Search is slow in every region", flow.get(rich_id).version)

    def command(incident_id: str) -> Callable[[], None]:
        def run() -> None:
            flow.add_evidence(incident_id, source="grafana", content="p99 4 s", actor="bob")

        return run

    for _ in range(50):  # warm both up: caches, the WAL file
        command(rich_id)()
        command(bare_id)()
    times, ratio = interleaved(
        {"bare": command(bare_id), "rich": command(rich_id)},
        batches=batches,
        per_batch=per_batch,
    )
    print(
        f"   {name:7} bare {times['bare'] * 1e6:8.1f} µs   rich {times['rich'] * 1e6:8.1f} µs"
        f"   ratio {ratio:.2f}×  (target ≤ 1.2×)"
    )
    store.close()
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller, noisier run")
    args = parser.parse_args()
    batches, per_batch = (6, 50) if args.quick else (20, 100)
    print(f"A command on an incident with {LABELS} labels, 5 roles and {UPDATES} updates")
    with tempfile.TemporaryDirectory() as folder:
        compare("memory", MemoryStore(), batches, per_batch)
        compare("sqlite", SQLiteStore(Path(folder) / "rich.db"), batches, per_batch)


if __name__ == "__main__":
    main()
