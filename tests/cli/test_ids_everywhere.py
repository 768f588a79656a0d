"""Every ID a command takes reads the same way: an id, or a unique prefix of it or of its slug.

``export``, ``verify``, ``diagram`` and the other incident of ``link``, ``unlink``,
``merge --into`` and ``dismiss --duplicate-of`` once took only whole ids.
"""

from __future__ import annotations

import json

import pytest
from cli_terminal import Library, Terminal, declared, ok

from incidentflow import State
from incidentflow.cli import EXIT_USAGE


@pytest.fixture
def payments(term: Terminal) -> str:
    """The incident the examples call ``payments``."""
    return declared(term, "Payments API 503s")


@pytest.fixture
def search(term: Terminal) -> str:
    """A second incident, for the commands about two."""
    return declared(term, "Search is slow", "P3")


class TestOneIncident:
    """``export``, ``verify`` and ``diagram`` find the incident a slug names."""

    def test_export(self, term: Terminal, payments: str, search: str) -> None:
        """``export payments`` exports that incident's history, and only it."""
        lines = ok(term("export", "payments")).out.splitlines()
        assert {json.loads(line)["incident_id"] for line in lines[1:]} == {payments}

    def test_export_several(self, term: Terminal, payments: str, search: str) -> None:
        """Each word is read on its own; a slug and its whole id export one history."""
        lines = ok(term("export", "search", "payments", payments)).out.splitlines()
        assert [json.loads(line)["incident_id"] for line in lines[1:]] == [search, payments]

    def test_verify(self, term: Terminal, payments: str, search: str) -> None:
        """``verify payments`` checks that one incident."""
        data = ok(term("--json", "verify", "payments")).json()
        assert data == {"checked": 1, "mismatched": []}

    def test_diagram(self, term: Terminal, payments: str) -> None:
        """``diagram payments`` draws the incident's gantt."""
        assert "gantt" in ok(term("diagram", "payments-api")).out


class TestOtherIncident:
    """The other incident of a link, a merge or a dismissal is read like the first one."""

    def test_link_and_unlink(
        self, term: Terminal, library: Library, payments: str, search: str
    ) -> None:
        """``link search related_to payments`` links to the whole id; ``unlink`` removes it."""
        data = ok(term("--json", "link", "search", "related_to", "payments")).json()
        assert [(x["kind"], x["other"]) for x in data["links"]] == [("related_to", payments)]
        assert [x.other for x in library.get(payments).links] == [search]
        ok(term("unlink", "search", "related_to", "api-503s"))
        assert not library.get(payments).links

    def test_merge_into(self, term: Terminal, library: Library, payments: str, search: str) -> None:
        """``merge search --into payments`` dismisses search, merged into the whole id."""
        ok(term("merge", "search", "--into", "payments", "--reason", "one outage"))
        merged = library.get(search)
        assert merged.state is State.DISMISSED
        assert merged.dismissal_reason == f"merged into {payments}: one outage"

    def test_dismiss_duplicate_of(
        self, term: Terminal, library: Library, payments: str, search: str
    ) -> None:
        """``dismiss --duplicate-of payments`` records the whole id."""
        ok(term("dismiss", "search", "--reason", "same outage", "--duplicate-of", "payments"))
        assert library.get(search).duplicate_of == payments


class TestAmbiguous:
    """A prefix two incidents share is refused as everywhere else: exit 2, both listed."""

    @pytest.mark.parametrize(
        "argv",
        [
            ["export", "pay"],
            ["verify", "pay"],
            ["diagram", "pay"],
            ["link", "search", "related_to", "pay"],
            ["unlink", "search", "related_to", "pay"],
            ["merge", "search", "--into", "pay", "--reason", "dup"],
            ["dismiss", "search", "--reason", "dup", "--duplicate-of", "pay"],
        ],
    )
    def test_lists_the_matches(
        self, term: Terminal, library: Library, search: str, argv: list[str]
    ) -> None:
        """Nothing is written; the error names the prefix and every incident it matches."""
        first = declared(term, "Payments API 503s")
        second = declared(term, "Payments batch late", "P3")
        result = term(*argv)
        assert result.code == EXIT_USAGE, result.err
        assert "'pay' matches 2 incidents" in result.err
        assert first in result.err
        assert second in result.err
        assert "Traceback" not in result.err
        assert library.get(search).version == 1  # untouched
