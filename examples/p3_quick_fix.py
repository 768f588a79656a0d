"""A P3 incident that needs no post-mortem: from declaration straight to the KB.

Run it from the repository root::

    python examples/p3_quick_fix.py [FOLDER]

P3 and P4 incidents may skip the post-mortem (the policy's
``postmortem_severities`` says which need one), but they still need an action
item and a knowledge-base gotcha before they are closed.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from incidentflow import IncidentFlow
from incidentflow.testing import FrozenClock


def main(folder: Path) -> None:
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2))
    flow = IncidentFlow.in_memory(
        clock=clock,
        incidents_dir=folder / "incidents",
        knowledge_dir=folder / "knowledge" / "gotchas",
    )
    inc = flow.declare(
        "Search suggestions load slowly", severity="P3", commander="carol", actor="carol"
    )
    iid = inc.id
    flow.start_triage(iid, actor="carol")
    flow.add_evidence(
        iid, source="grafana", content="p95 suggest latency 2.4 s (usual 150 ms)", actor="carol"
    )
    flow.answer_triage(iid, "symptom", "Suggestions appear after 2 seconds", actor="carol")
    flow.answer_triage(iid, "started_at", "this morning's index rebuild", actor="carol")
    flow.answer_triage(iid, "scope", "search box only; search results are fine", actor="carol")
    flow.record_containment(iid, "Served suggestions from yesterday's index", actor="carol")
    flow.contain(iid, actor="carol")
    flow.start_rca(iid, actor="carol")
    flow.add_why(iid, "The new index lacks the prefix field.", actor="carol")
    flow.add_why(iid, "The rebuild job's mapping file was edited by hand.", actor="carol")
    flow.set_root_cause(
        iid,
        "The index mapping lost its prefix field in a manual edit.",
        process_gap="Mapping changes are not validated before a rebuild.",
        actor="carol",
    )
    flow.record_fix(
        iid,
        "Restore the prefix field and rebuild",
        test="test_mapping_has_prefix",
        staging_verified=True,
        actor="carol",
    )
    flow.record_deploy(iid, ref="index-2026-11-27b", actor="carol")
    flow.mark_fixed(iid, actor="carol")
    clock.advance(minutes=20)
    flow.confirm_by_user(iid, user="frank", actor="carol")
    flow.resolve(iid, actor="carol")
    flow.add_action_item(
        iid,
        "Validate the mapping in CI before rebuilds",
        owner="carol",
        due=clock().date() + timedelta(days=14),
        actor="carol",
    )
    inc = flow.update_kb(
        iid,
        symptom="Search suggestions slow after an index rebuild",
        early_signs="suggest p95 above 500 ms right after a rebuild",
        actor="carol",
    )
    print(
        f"{inc.id} is {inc.state.value} without a post-mortem "
        f"(needed for this severity: {inc.postmortem_required})"
    )
    for path in flow.render(iid):
        print(f"  {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".agent"))
