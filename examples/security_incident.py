"""A security incident: its own triage questions, restricted labels, roles and a correction.

Run it from the repository root::

    python examples/security_incident.py [FOLDER]

The policy gives the ``security`` incident type two extra triage questions,
allows only known values for the ``service`` and ``team`` labels, requires a
communications lead before a security incident is contained, and asks for a
status update every 30 minutes. Along the way a responder mistypes a why and
retracts it, corrects an evidence item, and hands the communications role over.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from incidentflow import (
    IncidentFlow,
    Policy,
    ProcessOverride,
    TransitionRejected,
    ValidationError,
)
from incidentflow.testing import FrozenClock

POLICY = Policy(
    triage_questions=("customer_impact",),
    labels={"service": ("checkout", "auth", "search"), "team": ()},
    custom_fields={"customers_affected": "int"},
    types={
        "security": ProcessOverride(
            triage_questions=("credentials_rotated", "data_exposed"),
            required_roles={"contain": ("communications_lead",)},
            update_cadence=timedelta(minutes=30),
        )
    },
)


def main(folder: Path) -> None:
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3))
    flow = IncidentFlow.in_memory(
        clock=clock,
        policy=POLICY,
        incidents_dir=folder / "incidents",
        knowledge_dir=folder / "knowledge" / "gotchas",
    )
    inc = flow.declare(
        "API keys visible in the auth service's debug log",
        severity="P2",
        commander="alice",
        type="security",
        labels={"service": "auth", "team": "identity"},
        references={"ticket": "SEC-311"},
        actor="alice",
    )
    iid = inc.id
    print(f"declared {iid} ({inc.type}, {inc.severity.value})")
    try:
        flow.set_labels(iid, {"service": "billing"}, actor="alice")
    except ValidationError as exc:
        print(f"refused label: {exc.message}")

    flow.start_triage(iid, actor="alice")
    flow.add_evidence(
        iid, source="loki", content="auth-debug.log lines with api_key= since 09:12", actor="bob"
    )
    flow.amend(
        iid,
        "evidence:1",
        "auth-debug.log lines with api_key= since 08:12 (the first line is an hour earlier)",
        reason="misread the first timestamp",
        actor="bob",
    )
    answers = {
        "symptom": "API keys written to the debug log in clear",
        "started_at": "08:12 UTC, the 2.7.0 deploy",
        "scope": "auth service debug log only; 212 keys",
        "credentials_rotated": "yes, all 212 keys by 10:05",
        "data_exposed": "log readable by the platform team only",
    }
    for question, answer in answers.items():
        flow.answer_triage(iid, question, answer, actor="bob")
    flow.set_fields(iid, {"customers_affected": 212}, actor="alice")
    flow.record_containment(iid, "Turned off debug logging and purged the log", actor="bob")
    try:
        flow.contain(iid, actor="alice")
    except TransitionRejected as exc:
        print(f"contain refused: {exc.reasons[0].code}: {exc.reasons[0].message}")

    flow.assign_role(iid, "communications_lead", "dana", note="owns the status page", actor="alice")
    flow.post_update(iid, "internal", "Keys rotated; debug logging is off.", actor="dana")
    flow.contain(iid, actor="alice")
    clock.advance(minutes=25)
    flow.assign_role(
        iid, "communications_lead", "erin", note="dana off shift; next update 10:30", actor="dana"
    )
    flow.post_update(
        iid, "external", "We rotated affected API keys; no action needed.", actor="erin"
    )

    flow.start_rca(iid, actor="alice")
    flow.add_why(iid, "The 2.7.0 logger prints request headers at debug level.", actor="bob")
    flow.add_why(iid, "Debug level was on in production.", actor="bob")
    flow.add_why(iid, "Someone typed this into the wrong incident.", actor="bob")
    inc = flow.retract(iid, "why:3", reason="belonged to another incident", actor="bob")
    print(f"whys: {sum(w.live for w in inc.whys)} live, {len(inc.whys)} recorded")
    flow.set_root_cause(
        iid,
        "Header logging at debug level reached production with debug on.",
        process_gap="No check keeps secrets out of logs at any level.",
        actor="bob",
    )
    flow.record_fix(
        iid,
        "Redact credential headers in the logger",
        test="test_logger_redacts_api_keys",
        staging_verified=True,
        actor="bob",
    )
    flow.record_deploy(iid, ref="auth-2.7.1", actor="bob")
    flow.mark_fixed(iid, actor="alice")
    clock.advance(minutes=20)
    flow.confirm_by_user(iid, user="frank", comment="no keys in the log now", actor="alice")
    flow.resolve(iid, actor="alice")
    flow.add_action_item(
        iid,
        "Add a log-scanning check for secrets to CI",
        owner="bob",
        due=clock().date() + timedelta(days=14),
        ref="SEC-312",
        actor="alice",
    )
    flow.complete_postmortem(
        iid,
        summary="API keys were written to a debug log for two hours; all were rotated.",
        root_cause="No check keeps secrets out of logs at any level.",
        went_well=["Keys rotated within an hour"],
        went_poorly=["Debug logging was on in production"],
        actor="alice",
    )
    inc = flow.update_kb(
        iid,
        symptom="Credentials in a log file",
        early_signs="debug level enabled in a production deploy",
        actor="alice",
    )
    print(f"{inc.id} is {inc.state.value}; roles: {dict(inc.roles)}")
    print(f"handoffs: {len(inc.handoffs)}, updates: {len(inc.updates)}")
    print(f"replay matches the snapshot: {flow.verify(iid)}")
    for path in flow.render(iid):
        print(f"  {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".agent"))
