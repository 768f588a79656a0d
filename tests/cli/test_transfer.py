"""``export``, ``import`` and ``verify``: moving and checking histories."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from cli_terminal import TITLE, Library, Terminal, declared, ok, one_line_error

from helpers import START, drive_to
from incidentflow import IncidentFlow, State
from incidentflow._transfer import export_lines
from incidentflow.cli import EXIT_REJECTED, EXIT_USAGE
from incidentflow.testing import FrozenClock


class TestVerify:
    """``verify`` replays each history and compares it with the stored snapshot."""

    def test_consistent_store(self, term: Terminal, library: Library) -> None:
        """A store the library wrote verifies: exit 0."""
        library.drive("kb_updated", "P1")
        declared(term, "Search is slow", "P3")
        result = ok(term("verify"))
        assert "2 incident(s) checked, 0 mismatched" in result.out

    def test_tampered_snapshot(self, term: Terminal, library: Library, tmp_path: Path) -> None:
        """A snapshot edited behind the library's back makes verify exit 1 naming it."""
        tampered = declared(term)
        intact = declared(term, "Search is slow", "P3")
        with sqlite3.connect(tmp_path / "incidents.db") as db:
            changed = db.execute(
                "UPDATE snapshots SET body = replace(body, ?, ?) WHERE incident_id = ?",
                (TITLE, "Tampered title", tampered),
            ).rowcount
        db.close()
        assert changed == 1

        result = term("verify")
        assert result.code == EXIT_REJECTED
        assert tampered in result.out
        assert intact not in result.out
        assert "1 mismatched" in result.out

        as_json = term("--json", "verify")
        assert as_json.code == EXIT_REJECTED
        assert as_json.json() == {"checked": 2, "mismatched": [tampered]}
        assert ok(term("verify", intact)).out.startswith("1 incident(s) checked, 0 mismatched")


# -- export and import ----------------------------------------------------------------------


class TestExportImport:
    """Moving incidents between stores with ``export`` and ``import``."""

    @pytest.fixture
    def seeded(self, library: Library) -> list[str]:
        """Four incidents in different states on the SQLite store."""
        return [
            library.drive("kb_updated", "P1").id,
            library.drive("fixed", "P2", texts={"title": "Login is slow"}).id,
            library.drive("dismissed", "P3", texts={"title": "Synthetic check flaps"}).id,
            library.drive("declared", "P4", texts={"title": "Typo on the status page"}).id,
        ]

    def test_round_trip(
        self, term: Terminal, library: Library, seeded: list[str], tmp_path: Path
    ) -> None:
        """SQLite → export → import into JSONL gives identical histories and snapshots."""
        exported = term("export", "-o", "incidents.jsonl")
        ok(exported)
        assert "exported 4 incident(s)" in exported.out
        target = Library(f"file://{tmp_path / 'jsonl'}")

        result = ok(term("--store", target.url, "import", "incidents.jsonl", bare=True))
        assert result.out.startswith("imported 4, caught up 0, already present 0, conflicting 0")
        assert target.ids() == sorted(seeded)
        for incident_id in seeded:
            assert target.history(incident_id) == library.history(incident_id)
            assert target.get(incident_id) == library.get(incident_id)
        ok(term("--store", target.url, "verify", bare=True))

        again = ok(term("--store", target.url, "--json", "import", "incidents.jsonl", bare=True))
        assert again.json() == {
            "imported": [],
            "present": seeded,
            "conflicts": [],
            "extended": [],
            "unwritten": [],
            "older": [],
        }
        text = ok(term("--store", target.url, "import", "incidents.jsonl", bare=True)).out
        assert "already present 4" in text

    def test_export_to_standard_output(self, term: Terminal, seeded: list[str]) -> None:
        """Without ``-o`` the export goes to standard output: a header, then events."""
        lines = ok(term("export", seeded[1])).out.splitlines()
        header = json.loads(lines[0])
        assert (header["format"], header["version"]) == ("incidentflow-export", 1)
        events = [json.loads(line) for line in lines[1:]]
        assert {e["incident_id"] for e in events} == {seeded[1]}
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    def test_export_unknown_incident(self, term: Terminal, tmp_path: Path) -> None:
        """Exporting an unknown id exits 2 and writes no file."""
        error = one_line_error(term("export", "INC-2026-01-01-nope", "-o", "x.jsonl"), EXIT_USAGE)
        assert "incidentflow list" in error
        assert not (tmp_path / "x.jsonl").exists()

    def test_conflicting_history(
        self, term: Terminal, library: Library, seeded: list[str], tmp_path: Path
    ) -> None:
        """An export whose history differs from the stored one is a conflict: exit 1."""
        ok(term("export", "-o", "incidents.jsonl"))
        target = Library(f"file://{tmp_path / 'jsonl'}")
        ok(term("--store", target.url, "import", "incidents.jsonl", bare=True))
        stored = target.history(seeded[1])

        lines = (tmp_path / "incidents.jsonl").read_text(encoding="utf-8").splitlines()
        edited = []
        for line in lines:
            value = json.loads(line)
            if value.get("incident_id") == seeded[1] and value.get("type") == "declared":
                value["data"]["title"] = "Login is slow (edited)"
                line = json.dumps(value)
            edited.append(line)
        (tmp_path / "edited.jsonl").write_text("\n".join(edited) + "\n", encoding="utf-8")

        result = term("--store", target.url, "import", "edited.jsonl", bare=True)
        assert result.code == EXIT_REJECTED
        assert "conflicting 1" in result.out
        assert f"{seeded[1]}: another history is stored under this id; left as it is" in result.out
        assert target.history(seeded[1]) == stored


def _export_of(*incidents: tuple[State | str, str, str]) -> list[list[dict[str, Any]]]:
    """The exported events of incidents driven by the library: one list per incident."""
    clock = FrozenClock(START)
    with IncidentFlow.in_memory(clock=clock) as flow:
        ids = [
            drive_to(flow, clock, state, severity, texts={"title": title}).id
            for state, severity, title in incidents
        ]
        histories = []
        for incident_id in ids:
            lines = list(export_lines(flow, [incident_id]))[1:]
            histories.append([json.loads(line) for line in lines])
    return histories


HEADER = {"format": "incidentflow-export", "version": 1, "exported_at": "2026-11-28T00:00:00Z"}


def _renumbered(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**event, "seq": seq} for seq, event in enumerate(events, start=1)]


def _without(events: list[dict[str, Any]], *types: str) -> list[dict[str, Any]]:
    return _renumbered([e for e in events if e["type"] not in types])


def _of_type(events: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(e for e in events if e["type"] == kind)


def _with_data(event: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {**event, "data": {**event["data"], **data}}


def _forgeries() -> list[Any]:
    """Broken exports: (lines after a valid history, the lines at fault), by case."""
    valid, full = _export_of(("declared", "P3", "Search is slow"), ("kb_updated", "P1", TITLE))
    declared_event = full[0]
    first = 2 + len(valid)  # the first line after the header and the valid history

    def case(name: str, tail: list[Any], *, at: Sequence[int], head: Any = HEADER) -> Any:
        lines = [head, *valid, *tail] if head is not None else [*valid, *tail]
        return pytest.param(lines, set(at), id=name)

    gap = [declared_event, full[2]]
    no_pm = _without(full, "postmortem_completed")
    flag_forged = _without(full, "postmortem_completed", "postmortem_drafted")
    flag_forged[0] = _with_data(flag_forged[0], postmortem_required=False)
    return [
        case("not-json", ["{not json"], at=[first]),
        case("missing-header", [], at=[1], head=None),
        case("wrong-version", [], at=[1], head={**HEADER, "version": 2}),
        case("version-as-text", [], at=[1], head={**HEADER, "version": "1"}),
        case("version-as-boolean", [], at=[1], head={**HEADER, "version": True}),
        case("gap-in-seq", gap, at=[first + 1]),
        case("seq-as-boolean", [{**declared_event, "seq": True}], at=[first]),
        case("not-starting-with-declared", [{**full[1], "seq": 1}], at=[first]),
        case(
            "id-not-matching-declaration",
            [{**declared_event, "incident_id": "INC-2026-11-27-something-else"}],
            at=[first],
        ),
        case(
            "path-like-id",
            [{**declared_event, "incident_id": "INC-2026-01-01-../../x"}],
            at=[first],
        ),
        case("id-not-text", [{**declared_event, "incident_id": 5}], at=[first]),
        case(
            "contained-after-declared",
            [declared_event, {**_of_type(full, "contained"), "seq": 2}],
            at=[first + 1],
        ),
        case("p1-closed-without-postmortem", no_pm, at=[first + len(no_pm) - 1]),
        case(
            "p1-closed-with-forged-postmortem-flag",
            flag_forged,
            at=[first, first + len(flag_forged) - 1],
        ),
        case("empty-title", [_with_data(declared_event, title="")], at=[first]),
        case("multi-line-title", [_with_data(declared_event, title="a\nb")], at=[first]),
        case("deeply-nested", ["[" * 100_000 + "]" * 100_000], at=[first]),
        case("not-utf8", [b"\xff\xfe not text"], at=[first]),
    ]


FORGERIES = _forgeries()


def _write_lines(path: Path, lines: list[Any]) -> None:
    with path.open("wb") as out:
        for line in lines:
            if isinstance(line, bytes):
                out.write(line)
            elif isinstance(line, str):
                out.write(line.encode("utf-8"))
            else:
                out.write(json.dumps(line).encode("utf-8"))
            out.write(b"\n")


class TestImportRefusesForgedFiles:
    """A broken or forged export exits 2 naming the line, and imports nothing at all."""

    @pytest.mark.parametrize(("lines", "at"), FORGERIES)
    def test_refused(self, term: Terminal, tmp_path: Path, lines: list[Any], at: set[int]) -> None:
        """The import exits 2 with one line naming the file; the store stays empty."""
        _write_lines(tmp_path / "forged.jsonl", lines)
        target = Library(f"file://{tmp_path / 'target'}")

        result = term("--store", target.url, "import", "forged.jsonl", bare=True)

        error = one_line_error(result, EXIT_USAGE)
        assert "forged.jsonl" in error
        assert target.ids() == []

    @pytest.mark.parametrize(("lines", "at"), FORGERIES)
    def test_names_the_line(
        self, term: Terminal, tmp_path: Path, lines: list[Any], at: set[int]
    ) -> None:
        """The error names the line at fault as ``FILE:LINE``."""
        _write_lines(tmp_path / "forged.jsonl", lines)
        result = term(
            "--store", f"file://{tmp_path / 'target'}", "import", "forged.jsonl", bare=True
        )
        assert result.code == EXIT_USAGE, (result.out, result.err)
        named = {int(n) for n in re.findall(r"forged\.jsonl:(\d+)", result.err)}
        assert named, f"no line number in: {result.err}"
        assert named <= at, f"expected line {sorted(at)}: {result.err}"

    def test_empty_file(self, term: Terminal, tmp_path: Path) -> None:
        """An empty file exits 2 saying it is empty."""
        (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
        error = one_line_error(term("import", "empty.jsonl"), EXIT_USAGE)
        assert "empty" in error

    def test_missing_file(self, term: Terminal) -> None:
        """A file that does not exist exits 2 naming it."""
        error = one_line_error(term("import", "nowhere.jsonl"), EXIT_USAGE)
        assert "nowhere.jsonl" in error


class TestExportOutput:
    """``export -o`` never damages the store nor overwrites a file unasked."""

    def test_refuses_the_store_itself(self, term: Terminal, tmp_path: Path) -> None:
        """Writing the export over the SQLite file (or its WAL) is a usage error."""
        declared(term)
        for target in ("incidents.db", "incidents.db-wal"):
            error = one_line_error(term("export", "-o", str(tmp_path / target)), EXIT_USAGE)
            assert "part of the store" in error
        assert ok(term("list")).out.count("INC-") == 1

    def test_needs_force_to_overwrite(self, term: Terminal, tmp_path: Path) -> None:
        """An existing file is kept unless --force; nothing temporary is left behind."""
        declared(term)
        target = tmp_path / "out.jsonl"
        target.write_text("keep me", encoding="utf-8")
        assert "--force" in one_line_error(term("export", "-o", str(target)), EXIT_USAGE)
        assert target.read_text(encoding="utf-8") == "keep me"
        ok(term("export", "-o", str(target), "--force"))
        assert target.read_text(encoding="utf-8").startswith('{"format": "incidentflow-export"')
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []

    def test_duplicate_ids_are_exported_once(self, term: Terminal) -> None:
        """``export A A`` writes A's history once, so the file can be imported."""
        incident_id = declared(term)
        lines = ok(term("export", incident_id, incident_id)).out.splitlines()
        assert len(lines) == 2  # the header and the one declaration
