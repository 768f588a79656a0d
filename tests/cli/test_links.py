"""``link``, ``unlink`` and ``merge`` from the terminal, with and without ``--json``."""

from __future__ import annotations

from cli_terminal import Library, Terminal, declared, ok

from incidentflow.cli import EXIT_REJECTED, EXIT_USAGE


class TestLink:
    def test_link_records_both_sides(self, term: Terminal, library: Library) -> None:
        """``link`` prints the snapshot; the other incident holds the inverse link."""
        parent = declared(term, "Checkout down")
        child = declared(term, "Cart down")
        data = ok(term("--json", "link", parent, "parent_of", child)).json()
        assert [(x["kind"], x["other"]) for x in data["links"]] == [("parent_of", child)]
        with library.flow() as flow:
            assert [(x.kind, x.other) for x in flow.get(child).links] == [("child_of", parent)]

    def test_linking_twice_exits_rejected_with_the_code(self, term: Terminal) -> None:
        """A second identical link exits 1; ``--json`` names the reason code."""
        a, b = declared(term, "Checkout down"), declared(term, "Cart down")
        ok(term("link", a, "related_to", b))
        again = term("--json", "link", a, "related_to", b)
        assert again.code == EXIT_REJECTED
        assert [r["code"] for r in again.json()["reasons"]] == ["links.present"]

    def test_an_unknown_kind_is_a_usage_error(self, term: Terminal) -> None:
        """KIND is one of the link kinds; anything else exits 2."""
        a, b = declared(term, "Checkout down"), declared(term, "Cart down")
        assert term("link", a, "blocks", b).code == EXIT_USAGE

    def test_unlink_removes_both_sides(self, term: Terminal, library: Library) -> None:
        """``unlink`` from the other side removes the link from both incidents."""
        a, b = declared(term, "Checkout down"), declared(term, "Cart down")
        ok(term("link", a, "caused_by", b))
        data = ok(term("--json", "unlink", b, "causes", a)).json()
        assert data["links"] == []
        with library.flow() as flow:
            assert not flow.get(a).links


class TestMerge:
    def test_merge_closes_the_duplicate(self, term: Terminal, library: Library) -> None:
        """``merge --into`` dismisses the duplicate; the target holds its reference."""
        target = declared(term, "Checkout down")
        dup = declared(term, "Cart down")
        ok(term("ref", "add", dup, "alert", "fp-9"))
        data = ok(term("--json", "merge", dup, "--into", target, "--reason", "one outage")).json()
        assert data["state"] == "dismissed"
        assert data["dismissal_reason"] == f"merged into {target}: one outage"
        again = term("merge", dup, "--into", target, "--reason", "again")
        assert again.code == EXIT_REJECTED  # merged already: dismissed
        with library.flow() as flow:
            found = flow.find("alert", "fp-9")
            assert found is not None
            assert found.id == target
