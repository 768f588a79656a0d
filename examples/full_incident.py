"""A whole P1 incident driven from code, from declaration to the knowledge base.

Run it from the repository root::

    python examples/full_incident.py [FOLDER]

It keeps the incident in the embedded default store, SQLite, under FOLDER
(default: ``.agent`` in the current directory: ``.agent/incidents/incidentflow.db``),
prints what happened, including a step the process refused and why, and the
paths of the Markdown files it wrote. Run it again and a second incident joins
the first in the same database.

The incident is replayed as it happened over an afternoon: a FrozenClock stands
in for the wall clock so the 15-minute post-deploy watch window passes at once.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from incidentflow import IncidentFlow, TransitionRejected
from incidentflow.testing import FrozenClock


def main(folder: Path) -> None:
    # Start the story three hours ago, so every time recorded is in the past.
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3))
    # With no arguments, IncidentFlow.open() uses .agent/ in the current folder;
    # the folder is spelled out here so the example can write elsewhere.
    flow = IncidentFlow.open(
        "sqlite:///" + quote(str(folder / "incidents" / "incidentflow.db")),
        clock=clock,
        incidents_dir=folder / "incidents",
        knowledge_dir=folder / "knowledge" / "gotchas",
    )
    with flow:
        run_incident(flow, clock)


def run_incident(flow: IncidentFlow, clock: FrozenClock) -> None:

    # 14:00 — the pager goes off.
    inc = flow.declare(
        "Checkout returns 500 for every order",
        severity="P1",
        commander="alice",
        actor="alice",
    )
    iid = inc.id
    flow.record_detection(
        iid,
        method="alert",
        first_occurred_at=clock() - timedelta(minutes=9),
        detected_at=clock() - timedelta(minutes=4),
        actor="alice",
    )
    clock.advance(minutes=3)
    flow.start_triage(iid, actor="alice")

    # Triage: evidence and the checklist.
    flow.add_evidence(
        iid,
        source="journalctl -u checkout -n 50",
        content="psycopg.OperationalError: connection pool exhausted (50/50 in use)",
        actor="bob",
    )
    flow.add_evidence(
        iid,
        source="git log -5 --oneline",
        content="a1b2c3d Add order-history report query\n9f8e7d6 Bump payment SDK",
        actor="bob",
    )
    flow.answer_triage(iid, "symptom", "POST /checkout returns HTTP 500", actor="alice")
    flow.answer_triage(iid, "started_at", "right after the v1.4.2 deploy", actor="alice")
    flow.answer_triage(iid, "scope", "every customer; revenue stopped", actor="alice")

    # The process refuses to call it contained before anything was done.
    try:
        flow.contain(iid, actor="alice")
    except TransitionRejected as rejected:
        print("Refused, as it should be:")
        for reason in rejected.reasons:
            print(f"  - {reason}")

    clock.advance(minutes=4)
    flow.record_containment(iid, "Rolled checkout back to v1.4.1", actor="bob")
    flow.contain(iid, actor="alice")

    # Root-cause analysis: five whys, then the process gap.
    flow.start_rca(iid, actor="alice")
    for why in (
        "Checkout could not get a database connection.",
        "The pool was exhausted by the order-history report query.",
        "The new query did not return its connection on error paths.",
        "No test exercises connection release on errors.",
        "Our review checklist has no item for resource cleanup.",
    ):
        flow.add_why(iid, why, actor="bob")
    flow.set_root_cause(
        iid,
        "The report query leaked pool connections on error paths.",
        process_gap="Nothing in tests or review checks that connections are released.",
        actor="bob",
    )
    clock.advance(minutes=35)
    flow.record_fix(
        iid,
        "Release the connection in a finally block; cap the report's pool share.",
        test="test_report_query_releases_connection_on_error",
        staging_verified=True,
        actor="bob",
    )
    flow.record_deploy(iid, ref="v1.4.3", actor="bob")
    flow.mark_fixed(iid, actor="alice")

    # A real user confirms, and the 15-minute watch window passes.
    clock.advance(minutes=5)
    flow.confirm_by_user(
        iid, user="dana (support)", comment="Three test orders went through", actor="alice"
    )
    try:
        flow.resolve(iid, actor="alice")
    except TransitionRejected as rejected:
        print(f"Not yet: {rejected.reasons[0]}")
    clock.advance(minutes=11)
    flow.resolve(iid, actor="alice")

    # The post-mortem is mandatory for a P1.
    flow.add_action_item(
        iid,
        "Add a connection-leak test to the data-access test suite",
        owner="bob",
        due=clock().date() + timedelta(days=7),
        actor="alice",
    )
    flow.add_action_item(
        iid,
        "Alert when pool usage stays above 80% for 2 minutes",
        owner="erin",
        due=clock().date() + timedelta(days=14),
        actor="alice",
    )
    flow.complete_postmortem(
        iid,
        summary="Checkout failed for every customer for about 20 minutes after v1.4.2.",
        root_cause="A new report query leaked pool connections; no test or review step checks it.",
        went_well=["Rollback took four minutes", "The alert fired within five minutes"],
        went_poorly=["No pool-usage alert", "The leak passed review unnoticed"],
        actor="alice",
    )
    inc = flow.update_kb(
        iid,
        symptom="HTTP 500 on checkout with 'connection pool exhausted' in the logs",
        early_signs="Pool usage climbing after a deploy that adds a query",
        actor="alice",
    )

    print()
    print(f"{inc.id}: {inc.title}")
    print(f"  severity {inc.severity.value}, now {inc.state.value}, {inc.version} events")
    assert inc.acknowledged_at is not None
    waited = inc.acknowledged_at - inc.declared_at
    target = flow.policy.response_target(inc.severity)
    print(f"  acknowledged after {waited} (target {target})")
    print(f"  replay of the history matches the snapshot: {flow.verify(iid)}")
    print(f"  incidents in the store: {len(flow.list())}")
    print("Files written:")
    for path in flow.render(iid):
        print(f"  {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".agent"))
