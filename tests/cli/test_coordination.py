"""Corrections, follow-ups, labels, references, roles and status updates from the terminal."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import click
import pytest
from cli_terminal import Library, Terminal, declared, ok, one_line_error, ready_to_contain

from incidentflow import Policy, State
from incidentflow.cli import EXIT_REJECTED, EXIT_USAGE
from incidentflow.cli._labels import field_values
from incidentflow.cli._params import span


def rejected(outcome: object, *codes: str) -> None:
    """``outcome`` (run with ``--json``) was refused with exactly these reason codes."""
    from cli_terminal import Outcome

    assert isinstance(outcome, Outcome)
    assert outcome.code == EXIT_REJECTED, (outcome.out, outcome.err)
    assert "Traceback" not in outcome.err
    assert [r["code"] for r in outcome.json()["reasons"]] == list(codes)


class TestCorrections:
    """``amend`` and ``retract`` keep the original in the history."""

    def test_amend_a_why(self, term: Terminal, library: Library) -> None:
        """``amend ID why:1 VALUE --reason R`` shows the new text and keeps the old event."""
        incident_id = library.drive("rca").id
        ok(term("rca", "why", incident_id, "The payment clinet sent no currency"))
        number = len(library.get(incident_id).whys)
        item = f"why:{number}"
        result = ok(
            term("amend", incident_id, item, "The client sent no currency", "--reason", "typo")
        )
        assert f"{item} amended" in result.out
        why = library.get(incident_id).whys[number - 1]
        assert why.answer == "The client sent no currency"
        assert why.amended is not None
        assert why.amended.reason == "typo"
        history = library.history(incident_id)
        assert history[-1].type == "amended"
        assert any(getattr(e.data, "answer", None) == "The payment clinet sent no currency"
                   for e in history)  # fmt: skip

    def test_amend_postmortem_list_takes_several_values(
        self, term: Terminal, library: Library
    ) -> None:
        """``postmortem:went_well`` takes one VALUE per entry of the list."""
        incident_id = library.drive("postmortem").id
        ok(term("amend", incident_id, "postmortem:went_well", "Rollback in 3 minutes",
                "Paging worked", "--reason", "completed the list"))  # fmt: skip
        postmortem = library.get(incident_id).postmortem
        assert postmortem is not None
        assert tuple(postmortem.went_well) == ("Rollback in 3 minutes", "Paging worked")

    def test_amend_something_missing_is_refused(self, term: Terminal) -> None:
        """Amending a why that was never recorded exits 1 with the reason's code."""
        incident_id = declared(term)
        outcome = term("--json", "amend", incident_id, "why:3", "x", "--reason", "typo")
        rejected(outcome, "correction.unknown_item")
        assert "there is no why:3" in outcome.err

    def test_amend_names_what_can_be_corrected(self, term: Terminal) -> None:
        """An item that names nothing is an input error listing the kinds."""
        incident_id = declared(term)
        error = one_line_error(term("amend", incident_id, "whys", "x", "--reason", "r"), EXIT_USAGE)
        assert "why:" in error
        assert "postmortem:" in error

    def test_retract_frees_a_place_among_the_five(self, term: Terminal, library: Library) -> None:
        """A retracted why stops counting: a sixth answer is accepted after it."""
        incident_id = library.drive("rca").id
        while len(library.get(incident_id).whys) < 5:
            ok(term("rca", "why", incident_id, "another why"))
        assert term("rca", "why", incident_id, "a sixth").code == EXIT_REJECTED
        result = ok(term("retract", incident_id, "why:5", "--reason", "a typo"))
        assert "why:5 retracted" in result.out
        ok(term("rca", "why", incident_id, "a sixth"))
        whys = library.get(incident_id).whys
        assert len(whys) == 6
        assert whys[4].retracted is not None

    def test_retract_needs_a_reason(self, term: Terminal) -> None:
        """``--reason`` is required: a usage error, exit 2."""
        incident_id = declared(term)
        error = one_line_error(term("retract", incident_id, "why:1"), EXIT_USAGE)
        assert "--reason" in error


class TestActionItems:
    """``action add --ref``, ``reassign``, ``redate``, ``decline`` and ``link``."""

    def test_follow_ups_after_closure(self, term: Terminal, library: Library) -> None:
        """A closed incident's action items can still be reassigned, re-dated, linked, done."""
        incident = library.drive("kb_updated")
        assert incident.state is State.KB_UPDATED
        assert incident.action_items[0].status == "open"
        ok(term("action", "reassign", incident.id, "1", "dave", "--reason", "carol moved team"))
        ok(term("action", "redate", incident.id, "1", "2027-02-01"))
        result = ok(term("action", "link", incident.id, "1", "https://tracker/OPS-13"))
        assert "action item #1 linked to https://tracker/OPS-13" in result.out
        item = library.get(incident.id).action_items[0]
        assert (item.owner, item.due, item.ref) == (
            "dave",
            date(2027, 2, 1),
            "https://tracker/OPS-13",
        )
        ok(term("action", "done", incident.id, "1"))
        assert library.get(incident.id).action_items[0].status == "done"

    def test_add_with_a_reference(self, term: Terminal, library: Library) -> None:
        """``action add --ref`` records the issue that tracks the item."""
        incident_id = declared(term)
        ok(term("action", "add", incident_id, "Alert on empty currency", "--owner", "carol",
                "--due", "2027-01-15", "--ref", "OPS-12"))  # fmt: skip
        assert library.get(incident_id).action_items[0].ref == "OPS-12"

    def test_decline(self, term: Terminal, library: Library) -> None:
        """``decline`` needs a reason; declining twice is refused with the reason printed."""
        incident_id = declared(term)
        ok(term("action", "add", incident_id, "Rewrite the client", "--owner", "carol",
                "--due", "2027-01-15"))  # fmt: skip
        one_line_error(term("action", "decline", incident_id, "1"), EXIT_USAGE)
        ok(term("action", "decline", incident_id, "1", "--reason", "replaced by a vendor"))
        assert library.get(incident_id).action_items[0].status == "declined"
        outcome = term("--json", "action", "decline", incident_id, "1", "--reason", "again")
        assert outcome.code == EXIT_REJECTED
        assert outcome.json()["reasons"]
        assert "declined" in outcome.err

    def test_redate_checks_the_date(self, term: Terminal) -> None:
        """A due date that is not YYYY-MM-DD is an input error naming the format."""
        incident_id = declared(term)
        error = one_line_error(term("action", "redate", incident_id, "1", "soon"), EXIT_USAGE)
        assert "YYYY-MM-DD" in error

    def test_reassign_a_missing_item(self, term: Terminal) -> None:
        """Reassigning an item that does not exist is refused, exit 1."""
        incident_id = declared(term)
        outcome = term("action", "reassign", incident_id, "4", "dave")
        assert outcome.code == EXIT_REJECTED, outcome.err
        assert "action item" in outcome.err


class TestLabelsAndReferences:
    """``declare --type/--label/--ref``, ``type``, ``label``, ``field``, ``ref``."""

    def test_declare_with_type_labels_and_references(
        self, term: Terminal, library: Library
    ) -> None:
        """``declare`` sets the type, labels and references given."""
        incident_id = ok(term("declare", "Token leak", "-s", "P1", "-c", "alice", "--type",
                              "security", "--label", "service=auth", "--label", "team=identity",
                              "--ref", "ticket=SEC-7", "-q")).out.strip()  # fmt: skip
        incident = library.get(incident_id)
        assert incident.type == "security"
        assert dict(incident.labels) == {"service": "auth", "team": "identity"}
        assert [(r.kind, r.value) for r in incident.references] == [("ticket", "SEC-7")]

    def test_declare_refuses_a_label_without_a_value(self, term: Terminal) -> None:
        """``--label service`` is an input error showing KEY=VALUE."""
        error = one_line_error(
            term("declare", "x", "-s", "P1", "-c", "alice", "--label", "service"), EXIT_USAGE
        )
        assert "KEY=VALUE" in error

    def test_declare_refuses_a_key_given_twice(self, term: Terminal) -> None:
        """The same label key with two values is an input error naming both."""
        error = one_line_error(
            term("declare", "x", "-s", "P1", "-c", "a", "--label", "team=a", "--label", "team=b"),
            EXIT_USAGE,
        )
        assert "'team' is given twice" in error

    def test_change_type(self, term: Terminal, library: Library) -> None:
        """``type ID TYPE --reason R`` changes it; an unknown type lists the known ones."""
        incident_id = declared(term)
        ok(term("type", incident_id, "data", "--reason", "rows were lost"))
        assert library.get(incident_id).type == "data"
        error = one_line_error(term("type", incident_id, "weather", "--reason", "r"), EXIT_USAGE)
        assert "availability, security, data, performance" in error

    def test_labels_set_and_removed(self, term: Terminal, library: Library) -> None:
        """``label ID k=v... --remove KEY`` sets and removes in one step."""
        incident_id = declared(term)
        ok(term("label", incident_id, "service=checkout", "team=payments"))
        result = ok(term("label", incident_id, "region=eu", "--remove", "team"))
        assert "labels: region=eu, service=checkout" in result.out
        assert dict(library.get(incident_id).labels) == {"region": "eu", "service": "checkout"}
        one_line_error(term("label", incident_id), EXIT_USAGE)

    def test_field_not_declared(self, term: Terminal) -> None:
        """A custom field the policy does not declare is an input error saying where to declare."""
        incident_id = declared(term)
        error = one_line_error(term("field", incident_id, "customers=120"), EXIT_USAGE)
        assert "customers" in error
        assert "not a custom field" in error

    def test_references(self, term: Terminal, library: Library) -> None:
        """``ref add`` attaches; another open incident cannot take it; ``ref remove`` frees it."""
        first = declared(term)
        second = declared(term, "Checkout is slow", "P2")
        ok(term("ref", "add", first, "alert", "fp-42"))
        outcome = term("--json", "ref", "add", second, "alert", "fp-42")
        assert outcome.code == EXIT_REJECTED, outcome.err
        assert outcome.json()["error"] == "ReferenceTaken"
        assert first in outcome.err
        assert "incidentflow find alert" in outcome.err
        ok(term("ref", "remove", first, "alert", "fp-42"))
        ok(term("ref", "add", second, "alert", "fp-42"))
        assert [(r.kind, r.value) for r in library.get(second).references] == [("alert", "fp-42")]
        assert not library.get(first).references


class TestRoles:
    """``role assign`` and ``role release``, with handoffs recorded."""

    def test_assign_hand_over_release(self, term: Terminal, library: Library) -> None:
        """Assigning a held role hands it over; the handoff keeps from, to and the note."""
        incident_id = declared(term)
        result = ok(term("role", "assign", incident_id, "communications_lead", "carol"))
        assert "communications_lead is now carol" in result.out
        result = ok(term("role", "assign", incident_id, "communications_lead", "dave",
                         "--note", "carol is off shift; status page drafted"))  # fmt: skip
        assert "communications_lead handed from carol to dave" in result.out
        incident = library.get(incident_id)
        assert incident.roles["communications_lead"] == "dave"
        handoff = incident.handoffs[-1]
        assert (handoff.from_person, handoff.to_person) == ("carol", "dave")
        assert handoff.note == "carol is off shift; status page drafted"
        ok(term("role", "release", incident_id, "communications_lead"))
        assert "communications_lead" not in library.get(incident_id).roles

    def test_unknown_role(self, term: Terminal) -> None:
        """A role the policy does not list is an input error listing the roles."""
        incident_id = declared(term)
        error = one_line_error(term("role", "assign", incident_id, "wizard", "dave"), EXIT_USAGE)
        assert "communications_lead" in error


class TestUpdates:
    """``update ID internal|external TEXT --next SPAN``."""

    def test_post_with_next_update(self, term: Terminal, library: Library) -> None:
        """An update is recorded and the next one falls due after ``--next``."""
        incident_id = ready_to_contain(term)
        result = ok(
            term("update", incident_id, "internal", "Rolled back; watching", "--next", "30m")
        )
        assert "internal update posted; next due" in result.out
        incident = library.get(incident_id)
        [posted] = incident.updates
        assert (posted.audience, posted.text) == ("internal", "Rolled back; watching")
        assert posted.next_update_at == posted.at + timedelta(minutes=30)
        assert incident.next_update_due == posted.next_update_at
        data = ok(term("--json", "update", incident_id, "external", "Checkout is back")).json()
        assert [u["audience"] for u in data["updates"]] == ["internal", "external"]

    def test_bad_audience_and_span(self, term: Terminal) -> None:
        """An audience other than internal or external, or an unreadable span, exits 2."""
        incident_id = declared(term)
        one_line_error(term("update", incident_id, "press", "text"), EXIT_USAGE)
        error = one_line_error(term("update", incident_id, "internal", "t", "--next", "soon"),
                               EXIT_USAGE)  # fmt: skip
        assert "30m" in error


class TestReading:
    """Values as the command line reads them: spans and typed custom fields."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("90s", timedelta(seconds=90)),
            ("30m", timedelta(minutes=30)),
            ("1h", timedelta(hours=1)),
            ("1h30m", timedelta(minutes=90)),
            ("2d", timedelta(days=2)),
        ],
    )
    def test_span(self, text: str, expected: timedelta) -> None:
        """Spans combine days, hours, minutes and seconds, in that order."""
        assert span(click.Context(click.Command("x")), click.Option(["--next"]), text) == expected

    @pytest.mark.parametrize("text", ["", "30", "m30", "0m", "30m1h", "400d", "9" * 30 + "s"])
    def test_span_refused(self, text: str) -> None:
        """Empty, unit-less, zero, out-of-order and huge spans are refused."""
        with pytest.raises(click.BadParameter):
            span(click.Context(click.Command("x")), click.Option(["--next"]), text)

    def test_fields_are_converted_for_their_declared_type(self) -> None:
        """Text becomes the type the policy declares, and the library accepts the result."""
        declared_fields = {"customers": "int", "loss": "float", "paid": "bool", "since": "date"}
        policy = Policy(custom_fields=declared_fields)
        given = {"customers": "120", "loss": "2.5", "paid": "yes", "since": "2026-11-27",
                 "other": "text"}  # fmt: skip
        values = field_values(policy.custom_fields, given)
        assert values == {"customers": 120, "loss": 2.5, "paid": True, "since": "2026-11-27",
                          "other": "text"}  # fmt: skip
        for name in declared_fields:
            assert policy.check_field(name, values[name]) == values[name]

    @pytest.mark.parametrize(
        ("kind", "text"), [("int", "12.5"), ("int", "9" * 30), ("float", "nan"), ("bool", "maybe")]
    )
    def test_field_refused(self, kind: str, text: str) -> None:
        """A value that does not read as the declared type is an input error naming the type."""
        with pytest.raises(click.BadParameter, match="the policy declares"):
            field_values({"x": kind}, {"x": text})


class TestFindAndFilters:
    """``find KIND VALUE`` and the new ``list`` filters."""

    def test_find(self, term: Terminal) -> None:
        """``find`` prints the incident holding a reference; none holding it exits 1."""
        incident_id = ok(term("declare", "Card payments fail", "-s", "P1", "-c", "alice",
                              "--ref", "alert=am-3f9c", "-q")).out.strip()  # fmt: skip
        assert incident_id in ok(term("find", "alert", "am-3f9c")).out
        assert ok(term("--json", "find", "alert", "am-3f9c")).json()["id"] == incident_id
        error = one_line_error(term("find", "alert", "am-0000"), EXIT_REJECTED)
        assert "no incident holds the reference alert=am-0000" in error
        outcome = term("--json", "find", "alert", "am-0000")
        assert outcome.code == EXIT_REJECTED
        assert outcome.json()["error"] == "NotFound"

    def test_list_filters(self, term: Terminal, library: Library) -> None:
        """``list`` filters by type, labels, reference and open action items."""
        closed = library.drive("kb_updated", "P3").id
        security = ok(term("declare", "Token leak", "-s", "P1", "-c", "alice", "--type",
                           "security", "--label", "team=identity", "--ref", "ticket=SEC-7",
                           "-q")).out.strip()  # fmt: skip
        checkout = ok(term("declare", "Checkout down", "-s", "P1", "-c", "alice", "--label",
                           "team=payments", "--label", "service=checkout",
                           "-q")).out.strip()  # fmt: skip

        def ids(*options: str) -> list[str]:
            return [row["id"] for row in ok(term("--json", "list", *options)).json()]

        assert ids("--type", "security") == [security]
        assert ids("--type", "security", "--type", "availability") == [checkout, security, closed]
        assert ids("--label", "team=payments") == [checkout]
        assert ids("--label", "team=payments", "--label", "service=search") == []
        assert ids("--ref", "ticket=SEC-7") == [security]
        assert ids("--open-action-items") == [closed]
        error = one_line_error(term("list", "--label", "team"), EXIT_USAGE)
        assert "KEY=VALUE" in error
        error = one_line_error(term("list", "--field", "customers=1"), EXIT_USAGE)
        assert "'customers' is not a custom field" in error

    def test_metrics_by_type(self, term: Terminal, library: Library) -> None:
        """``metrics --by type`` gives one group per type; ``--type`` keeps one."""
        library.drive("kb_updated", "P3")
        ok(term("declare", "Token leak", "-s", "P1", "-c", "alice", "--type", "security", "-q"))
        groups = ok(term("--json", "metrics", "--by", "type")).json()
        assert [g["type"] for g in groups] == ["availability", "security"]
        assert [g["count"] for g in groups] == [1, 1]
        only = ok(term("--json", "metrics", "--type", "security")).json()
        assert [g["count"] for g in only] == [1]
        assert "security: 1 incident(s)" in ok(term("metrics", "--by", "type")).out


class TestDeadlines:
    """``deadlines`` says met, open or overdue, never a negative countdown."""

    def test_met_deadlines_after_closure(self, term: Terminal, library: Library) -> None:
        """A closed incident's response deadline is met; its open action item is still listed."""
        incident = library.drive("kb_updated")
        table = ok(term("deadlines", incident.id)).out
        assert "in -" not in table
        [response] = [line for line in table.splitlines() if line.startswith("response")]
        assert " met " in response
        data = ok(term("--json", "deadlines", incident.id)).json()
        statuses = {(d["kind"], d["status"]) for d in data}
        assert ("response", "met") in statuses
        assert any(kind == "action_item" and status in {"open", "overdue"}
                   for kind, status in statuses)  # fmt: skip

    def test_update_deadline(self, term: Terminal) -> None:
        """A status update's ``--next`` is listed as an open update deadline."""
        incident_id = declared(term)
        ok(term("update", incident_id, "internal", "Investigating", "--next", "30m"))
        data = ok(term("--json", "deadlines", incident_id)).json()
        assert [d["status"] for d in data if d["kind"] == "update"] == ["open"]


class TestTypedFields:
    """Custom fields the policy declares, typed on the command line."""

    def test_declare_set_and_filter(self, term: Terminal, library: Library, tmp_path: Path) -> None:
        """Values are read as the declared type at declare, in ``field`` and in ``list``."""
        (tmp_path / "incidentflow.toml").write_text(
            '[policy.fields]\ncustomers = "int"\npaid = "bool"\nsince = "date"\n', encoding="utf-8"
        )
        incident_id = ok(term("declare", "Refunds fail", "-s", "P2", "-c", "alice", "--field",
                              "customers=12", "--field", "paid=no", "-q")).out.strip()  # fmt: skip
        assert dict(library.get(incident_id).custom_fields) == {"customers": 12, "paid": False}
        result = ok(
            term("field", incident_id, "paid=yes", "since=2026-11-27", "--remove", "customers")
        )
        assert "fields: paid=True, since=2026-11-27" in result.out
        assert dict(library.get(incident_id).custom_fields) == {"paid": True, "since": "2026-11-27"}
        ids = [row["id"] for row in ok(term("--json", "list", "--field", "paid=true")).json()]
        assert ids == [incident_id]
        error = one_line_error(term("field", incident_id, "customers=many"), EXIT_USAGE)
        assert "customers as a whole number" in error


class TestReference:
    """docs/reference/cli.md lists every command."""

    def test_every_command_is_documented(self) -> None:
        """Each command path (``action decline``, ``ref add``, ...) appears in the reference."""
        from incidentflow.cli import cli

        page = Path(__file__).parent.parent.parent / "docs" / "reference" / "cli.md"
        text = page.read_text(encoding="utf-8")

        def paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[str]:
            found = []
            for name, command in group.commands.items():
                if isinstance(command, click.Group):
                    found.extend(paths(command, (*prefix, name)))
                else:
                    found.append(" ".join((*prefix, name)))
            return found

        assert [p for p in paths(cli) if f"`{p}" not in text] == []
