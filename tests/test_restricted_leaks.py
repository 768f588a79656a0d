"""An incident restricted to others does not exist for them, in any answer the library gives.

Not in ``can``, not in ``ReferenceTaken``, not in a command naming another
incident, not in an idempotent replay, and not in what ``ingest`` reports to
an alert's sender; yet the alerts it holds still reach it.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import START, unchanged
from incidentflow import (
    Access,
    IdempotencyConflict,
    IncidentFlow,
    IncidentFlowError,
    IncidentNotFound,
    Policy,
    ReferenceTaken,
    Unauthorized,
    ValidationError,
)
from incidentflow.testing import FrozenClock

#: alice and zed administer, bob, carl and the alert sender command, erin reads, mallory
#: holds no role; the sec group is alice and bob.
ACCESS = Access.from_mapping(
    {
        "groups": {"sec": ["alice", "bob"]},
        "roles": [
            {"name": "admins", "permission": "admin", "members": ["alice", "zed"]},
            {"name": "commanders", "permission": "command", "members": ["bob", "carl"]},
            {"name": "readers", "permission": "read", "members": ["erin"]},
            {"name": "alerts", "permission": "command", "members": ["alertmanager"]},
        ],
    }
)
SECRET = "Secret zebra breach"


def guarded(clock: FrozenClock) -> IncidentFlow:
    """A flow whose policy has the authorizer above."""
    return IncidentFlow.in_memory(clock=clock, policy=Policy(authorizer=ACCESS))


def hidden(flow: IncidentFlow, **kwargs: Any) -> str:
    """The id of an incident alice declares restricted to herself."""
    inc = flow.declare(
        SECRET, severity="P1", commander="alice", actor="alice", restricted_to=["alice"], **kwargs
    )
    return inc.id


def answer(call: Callable[[], object]) -> tuple[str, str]:
    """What a caller learns: the error's type and its text, or ``ok``."""
    try:
        call()
    except IncidentFlowError as exc:
        return type(exc).__name__, str(exc)
    return "ok", ""


#: Who asks: inside the restriction, outside it with each permission, and nobody named.
VIEWERS = ["alice", "bob", "zed", "carl", "erin", "mallory", "(anonymous)", None]
#: Commands ``can`` is asked about (every one the facade runs for people).
ASKED = ["start_triage", "add_note", "contain", "restrict", "dismiss", "add_reference"]


class TestCan:
    @given(
        viewer=st.sampled_from(VIEWERS),
        command=st.sampled_from(ASKED),
        restricted_to=st.sampled_from([None, ["alice"], ["group:sec"]]),
    )
    @settings(max_examples=150)
    def test_it_refuses_exactly_as_get_does(
        self, viewer: str | None, command: str, restricted_to: list[str] | None
    ) -> None:
        """``can`` with an actor refuses whom ``get(viewer=actor)`` refuses, with the same error.

        Without an actor the trusted host asks, and sees every incident.
        """
        flow = guarded(FrozenClock(START))
        incident_id = flow.declare(
            SECRET, severity="P1", commander="alice", actor="alice", restricted_to=restricted_to
        ).id
        read = answer(lambda: flow.get(incident_id, viewer=viewer))
        asked = answer(lambda: flow.can(incident_id, command, actor=viewer or ""))
        if read[0] == "ok":
            assert asked[0] == "ok"
        else:
            assert asked == read


class TestReferenceTaken:
    def test_a_hidden_holder_is_not_named(self, clock: FrozenClock) -> None:
        """Declaring with a reference a hidden incident holds is refused without its id.

        The message still says what to do; someone inside the restriction is told which.
        """
        flow = guarded(clock)
        secret = hidden(flow, references={"jira": "SEC-42"})
        probe = {"severity": "P3", "commander": "bob", "references": {"jira": "SEC-42"}}
        with unchanged(flow), pytest.raises(ReferenceTaken) as caught:
            flow.declare("Probe", **probe, actor="bob")
        assert caught.value.holder is None
        assert secret not in str(caught.value)
        assert "use another jira reference" in caught.value.message
        assert (caught.value.kind, caught.value.value) == ("jira", "SEC-42")
        assert pickle.loads(pickle.dumps(caught.value)) == caught.value
        with pytest.raises(ReferenceTaken) as inside:
            flow.declare("Probe", **probe, actor="alice")
        assert inside.value.holder == secret

    @pytest.mark.parametrize("authorizer", [True, False], ids=["general path", "fused path"])
    def test_adding_the_reference_is_refused_without_the_id(
        self, clock: FrozenClock, authorizer: bool
    ) -> None:
        """``add_reference`` on a visible incident: refused, holder unnamed, nothing written."""
        flow = guarded(clock) if authorizer else IncidentFlow.in_memory(clock=clock)
        secret = hidden(flow, references={"jira": "SEC-42"})
        mine = flow.declare("Other", severity="P3", commander="bob", actor="bob")
        with unchanged(flow, mine.id), pytest.raises(ReferenceTaken) as caught:
            flow.add_reference(mine.id, kind="jira", value="SEC-42", actor="bob")
        assert caught.value.holder is None
        assert secret not in str(caught.value)
        ours = flow.declare("Alice's other", severity="P3", commander="alice", actor="alice")
        with unchanged(flow, ours.id), pytest.raises(ReferenceTaken) as inside:
            flow.add_reference(ours.id, kind="jira", value="SEC-42", actor="alice")
        assert inside.value.holder == secret  # someone inside the restriction is told which

    def test_can_gives_the_reason_without_the_holder(self, clock: FrozenClock) -> None:
        """``can(add_reference)`` answers ``reference.taken`` with no holder in text or data."""
        flow = guarded(clock)
        secret = hidden(flow, references={"jira": "SEC-42"})
        mine = flow.declare("Other", severity="P3", commander="bob", actor="bob")
        verdict = flow.can(mine.id, "add_reference", actor="bob", kind="jira", value="SEC-42")
        [reason] = verdict.reasons
        assert (verdict.allowed, reason.code, dict(reason.data)) == (False, "reference.taken", {})
        assert secret not in reason.message
        assert flow.can(mine.id, "add_reference", kind="jira", value="SEC-42").reasons[0].data == {
            "holder": secret
        }


#: Each command that names another incident, as (method, arguments naming ``other``).
NAMING: dict[str, Callable[[str], dict[str, str]]] = {
    "link": lambda other: {"kind": "related_to", "other": other},
    "unlink": lambda other: {"kind": "related_to", "other": other},
    "merge": lambda other: {"into": other, "reason": "the same outage"},
    "dismiss": lambda other: {"reason": "a duplicate", "duplicate_of": other},
}


class TestNamingAnotherIncident:
    @given(
        command=st.sampled_from(sorted(NAMING)),
        way=st.sampled_from(["method", "execute", "can"]),
        authorizer=st.booleans(),
        here_state=st.sampled_from(["declared", "triaging", "dismissed"]),
        hidden_closed=st.booleans(),
    )
    @settings(max_examples=120)
    def test_a_hidden_incident_answers_as_a_missing_one(
        self, command: str, way: str, authorizer: bool, here_state: str, hidden_closed: bool
    ) -> None:
        """A hidden id and an id nobody declared give the same error and message; nothing moves."""
        clock = FrozenClock(START)
        flow = guarded(clock) if authorizer else IncidentFlow.in_memory(clock=clock)
        secret = hidden(flow)
        if hidden_closed:
            flow.dismiss(secret, reason="false alarm", actor="alice")
        ghost = secret.replace("zebra", "yak-x")
        here = flow.declare("Public", severity="P3", commander="bob", actor="bob").id
        if here_state == "triaging":
            flow.start_triage(here, actor="bob")
        elif here_state == "dismissed":
            flow.dismiss(here, reason="false alarm", actor="bob")

        def run(other: str) -> tuple[str, str]:
            args = NAMING[command](other)
            if way == "method":
                call = lambda: getattr(flow, command)(here, **args, actor="bob")  # noqa: E731
            elif way == "execute":
                call = lambda: flow.execute(command, here, **args, actor="bob")  # noqa: E731
            else:
                call = lambda: flow.can(here, command, actor="bob", **args)  # noqa: E731
            with unchanged(flow, here), unchanged(flow, secret):
                kind, text = answer(call)
            return kind, text.replace(other, "<other>")

        assert run(secret) == run(ghost)

    def test_dismiss_never_records_a_hidden_id(self, clock: FrozenClock) -> None:
        """``dismiss(duplicate_of=<hidden>)`` by bob is refused; alice, who sees both, may."""
        flow = guarded(clock)
        secret = hidden(flow)
        here = flow.declare("Public", severity="P3", commander="bob", actor="bob").id
        with unchanged(flow, here):
            refused = answer(
                lambda: flow.dismiss(here, reason="dup", duplicate_of=secret, actor="bob")
            )
        missing = f"duplicate_of: there is no incident {secret}; give an existing id"
        assert refused == ("ValidationError", missing)
        # Alice sees both, but a public duplicate of a hidden one would show its id to bob.
        with unchanged(flow, here), pytest.raises(ValidationError, match="restrict both alike"):
            flow.dismiss(here, reason="dup", duplicate_of=secret, actor="alice")
        twin = hidden(flow, slug="zebra-again")
        dismissed = flow.dismiss(twin, reason="dup", duplicate_of=secret, actor="alice")
        assert dismissed.duplicate_of == secret


class TestDeclareReplay:
    DECLARATION: ClassVar[dict[str, Any]] = {
        "title": SECRET,
        "severity": "P1",
        "commander": "alice",
    }

    def test_a_replay_by_someone_outside_is_a_conflict(self, clock: FrozenClock) -> None:
        """zed (admin, outside) replaying alice's key: IdempotencyConflict, never the snapshot."""
        flow = guarded(clock)
        first = flow.execute(
            "declare", **self.DECLARATION, restricted_to=["alice"], actor="alice",
            idempotency_key="pager-4711",
        )  # fmt: skip
        with unchanged(flow), pytest.raises(IdempotencyConflict) as caught:
            flow.execute(
                "declare", **self.DECLARATION, restricted_to=["alice"], actor="zed",
                idempotency_key="pager-4711",
            )  # fmt: skip
        assert first.incident.id not in str(caught.value)
        flow.add_note(first.incident.id, text="keys", actor="alice", idempotency_key="note-1")
        with pytest.raises(IncidentNotFound):  # other commands check who asks before replaying
            flow.add_note(first.incident.id, text="keys", actor="zed", idempotency_key="note-1")
        again = flow.execute(
            "declare", **self.DECLARATION, restricted_to=["alice"], actor="alice",
            idempotency_key="pager-4711",
        )  # fmt: skip
        assert (again.replayed, again.incident) == (True, first.incident)

    def test_restricted_after_the_declaration_counts_too(self, clock: FrozenClock) -> None:
        """Declared with a key, restricted afterwards: bob's replay no longer shows version 1."""
        flow = guarded(clock)
        incident_id = flow.declare(**self.DECLARATION, actor="alice", idempotency_key="k-9").id
        flow.restrict(incident_id, ["alice"], actor="alice")
        with pytest.raises(IdempotencyConflict) as caught:
            flow.declare(**self.DECLARATION, actor="bob", idempotency_key="k-9")
        assert incident_id not in str(caught.value)


def alert(
    fingerprint: str, status: str = "firing", start: str = "2026-11-27T13:00:00Z"
) -> dict[str, Any]:
    """One generic alert."""
    return {
        "fingerprint": fingerprint,
        "status": status,
        "title": f"Disk full ({fingerprint})",
        "severity": "critical",
        "started_at": start,
    }


class TestIngest:
    def restricted_alert(self, flow: IncidentFlow) -> str:
        """An incident declared by alert fp-1, then restricted to alice: its id."""
        report = flow.ingest({"alerts": [alert("fp-1")]}, source="generic", actor="alertmanager")
        incident_id = report.outcomes[0].incident_id
        assert incident_id is not None
        flow.restrict(incident_id, ["alice"], actor="alice")
        return incident_id

    @pytest.mark.parametrize("authorizer", [True, False])
    def test_the_alert_reaches_it_and_the_batch_goes_on(
        self, clock: FrozenClock, authorizer: bool
    ) -> None:
        """fp-1 again, with fp-2: evidence on the hidden incident, unnamed; fp-2 declared."""
        flow = guarded(clock) if authorizer else IncidentFlow.in_memory(clock=clock)
        secret = self.restricted_alert(flow)
        before = len(flow.get(secret).evidence)
        batch = {"alerts": [alert("fp-1", start="2026-11-27T13:30:00Z"), alert("fp-2")]}
        report = flow.ingest(batch, source="generic", actor="alertmanager")
        first, second = report.outcomes
        assert (first.action, first.incident_id) == ("attached", None)
        assert "restricted" in first.detail
        assert secret not in first.detail
        assert second.action == "declared"
        assert second.incident_id not in (None, secret)
        assert secret not in report.incident_ids
        evidence = flow.get(secret).evidence
        assert len(evidence) == before + 1
        assert evidence[-1].actor == "alertmanager"

    def test_a_resolved_alert_is_noted_unnamed(self, clock: FrozenClock) -> None:
        """The resolved alert is evidence on the hidden incident, reported with no id."""
        flow = guarded(clock)
        secret = self.restricted_alert(flow)
        report = flow.ingest(
            {"alerts": [alert("fp-1", "resolved")]}, source="generic", actor="alertmanager"
        )
        assert [(o.action, o.incident_id) for o in report] == [("noted_resolved", None)]
        assert "[resolved]" in flow.get(secret).evidence[-1].content

    def test_a_replayed_declaration_is_unnamed(self, clock: FrozenClock) -> None:
        """The very alert that declared it, sent again after the restriction: no id back."""
        flow = guarded(clock)
        secret = self.restricted_alert(flow)
        with unchanged(flow, secret):
            report = flow.ingest(
                {"alerts": [alert("fp-1")]}, source="generic", actor="alertmanager"
            )
        [outcome] = report.outcomes
        assert (outcome.action, outcome.incident_id, outcome.replayed) == ("declared", None, True)
        assert secret not in outcome.detail
        flow.restrict(secret, ["alice", "alertmanager"], actor="alice")  # the sender inside
        report = flow.ingest({"alerts": [alert("fp-1")]}, source="generic", actor="alertmanager")
        assert [(o.action, o.incident_id) for o in report] == [("declared", secret)]

    def test_a_refused_sender_is_not_told_the_id(self, clock: FrozenClock) -> None:
        """A sender the authorizer refuses evidence gets Unauthorized naming no incident."""
        flow = guarded(clock)
        secret = self.restricted_alert(flow)
        with unchanged(flow, secret), pytest.raises(Unauthorized) as caught:
            flow.ingest(
                {"alerts": [alert("fp-1", start="2026-11-27T13:30:00Z")]},
                source="generic",
                actor="erin",
            )
        assert caught.value.incident_id is None
        assert secret not in str(caught.value)

    def test_only_the_holder_of_the_alert_takes_it(self, clock: FrozenClock) -> None:
        """A hidden incident that gave the alert's reference up is not written through it."""
        flow = guarded(clock)
        secret = self.restricted_alert(flow)
        [reference] = flow.get(secret).references
        flow.remove_reference(secret, kind=reference.kind, value=reference.value, actor="alice")
        flow.add_note(secret, text="the alert was noise", actor="alice")
        with unchanged(flow, secret):
            report = flow.ingest(
                {"alerts": [alert("fp-1")]}, source="generic", actor="alertmanager"
            )
        [outcome] = report.outcomes
        assert outcome.incident_id is None
        assert secret not in outcome.detail
