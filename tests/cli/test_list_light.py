"""``list`` read straight from SQLite: the same rows and errors as the flow, none of the library."""

from __future__ import annotations

import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cli_terminal import (
    LIBRARY_MODULES,
    SCRIPT,
    Library,
    Terminal,
    declared,
    ok,
    process,
    sqlite_url,
)

from incidentflow import IncidentFlow
from incidentflow._validate import NAME_MAX
from incidentflow.cli import EXIT_OK, EXIT_USAGE, _light
from incidentflow.cli._light import Listing, light_listing
from incidentflow.stores.sqlite import _schema


def _filters(**given: Any) -> dict[str, Any]:
    filters: dict[str, Any] = {
        "open_only": False,
        "states": (),
        "severities": (),
        "commander": None,
        "text": None,
        "since": None,
        "until": None,
        "newest_first": True,
        "limit": None,
    }
    filters.update(given)
    return filters


def _by_the_flow(url: str, filters: dict[str, Any]) -> list[Listing]:
    """What the flow's summaries give for the same filters: the slow path."""
    with IncidentFlow.open(url) as flow:
        found = flow.summaries(
            state=filters["states"] or None,
            severity=filters["severities"] or None,
            open_only=filters["open_only"],
            commander=filters["commander"],
            text=filters["text"],
            declared_after=filters["since"],
            declared_before=filters["until"],
            newest_first=filters["newest_first"],
            limit=filters["limit"],
        )
    return [
        Listing(s.id, s.title, s.severity.value, s.state.value, s.commander, s.declared_at,
                s.version)
        for s in found
    ]  # fmt: skip


@pytest.fixture
def filled(library: Library, term: Terminal) -> Library:
    """A store with open and closed incidents of every severity, two commanders, odd titles."""
    library.drive("kb_updated", "P3", texts={"title": "Search is slow"})
    library.drive("dismissed", "P4")
    library.drive("rca", "P1")
    declared(term, "Login page is SLOW", "P2", "bob")
    declared(term, "Straße gesperrt: Ärger im Checkout", "P1", "carol")
    declared(term, "Disk full", "P4")
    return library


class TestSameAnswer:
    """The light path gives what the flow gives, row for row, and prints it the same way."""

    CASES = (
        {},
        {"open_only": True},
        {"open_only": True, "severities": ("P1",)},
        {"severities": ("P2", "P1", "P1")},
        {"states": ("declared", "rca")},
        {"commander": "bob"},
        {"text": "slow"},
        {"text": "STRASSE"},
        {"newest_first": False, "limit": 2},
        {"since": datetime(2000, 1, 1, tzinfo=UTC), "until": datetime(2999, 1, 1, tzinfo=UTC)},
        {"until": datetime(2000, 1, 1, tzinfo=UTC)},
    )

    @pytest.mark.parametrize("given", CASES)
    def test_rows_equal_the_flows(self, filled: Library, store_url: str, given: Any) -> None:
        """Every filter the light path takes selects and orders exactly as the flow does."""
        filters = _filters(**given)
        light = light_listing(store_url, None, **filters)
        assert light is not None
        assert light[0] == _by_the_flow(store_url, filters)

    @pytest.mark.parametrize("as_json", [False, True])
    def test_output_equals_the_full_paths(
        self, filled: Library, term: Terminal, monkeypatch: pytest.MonkeyPatch, as_json: bool
    ) -> None:
        """The table and the JSON are the same, byte for byte, with and without the light path."""
        options = ["--json"] if as_json else []
        light = ok(term(*options, "list", "--open", "--severity", "P1", "--severity", "P2"))
        everything = ok(term(*options, "list"))
        monkeypatch.setattr(_light, "light_listing", lambda *a, **k: None)
        assert ok(term(*options, "list", "--open", "--severity", "P1", "--severity", "P2")) == light
        assert ok(term(*options, "list")) == everything
        assert "Straße" in everything.out

    def test_configured_zone_and_relative_store(
        self,
        filled: Library,
        term: Terminal,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A file's display zone and relative store path are read as the full load reads them."""
        (tmp_path / "team").mkdir()
        (tmp_path / "team" / "incidentflow.toml").write_text(
            'store = "sqlite:///../incidents.db"\ndisplay_timezone = "Asia/Tokyo"\n'
            'actor = "alice"\n',
            encoding="utf-8",
        )
        monkeypatch.chdir(tmp_path / "team")
        monkeypatch.delenv("TZ")
        light = ok(term("list", bare=True))
        assert "Straße" in light.out
        with IncidentFlow.open(sqlite_url(tmp_path / "incidents.db")) as flow:
            newest = flow.summaries(limit=1)[0]
        shown = newest.declared_at.astimezone(_tokyo()).strftime("%Y-%m-%d %H:%M")
        assert shown in light.out.splitlines()[1]
        monkeypatch.setattr(_light, "light_listing", lambda *a, **k: None)
        assert ok(term("list", bare=True)) == light

    def test_loads_none_of_the_library(
        self, filled: Library, store_url: str, tmp_path: Path
    ) -> None:
        """``list --open`` imports no event model, store, configuration, converter or logger."""
        (tmp_path / "incidentflow.toml").write_text(
            f'store = "{store_url}"\ndisplay_timezone = "UTC"\n', encoding="utf-8"
        )
        code = (
            "import contextlib, io, sys\n"
            "from incidentflow.cli import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            "    code = main(['list', '--open', '--severity', 'P1'])\n"
            f"heavy = {LIBRARY_MODULES!r}\n"
            "loaded = sorted(m for m in heavy if m in sys.modules)\n"
            "print(code, out.getvalue().count('INC-'), loaded)\n"
        )
        run = process([sys.executable, "-c", code], tmp_path)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "0 2 []"


def _tokyo() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Tokyo")


class TestFallsBack:
    """Whenever it cannot be sure, the light path steps aside and the flow answers as before."""

    def test_what_needs_the_full_path(
        self, filled: Library, store_url: str, tmp_path: Path
    ) -> None:
        """Another store, a missing file, a text the library would check: no answer."""
        assert light_listing(store_url, None, **_filters()) is not None
        for url in ("memory://", f"file://{tmp_path}/j", sqlite_url(tmp_path / "missing.db"),
                    f"{store_url}?timeout=3", "sqlite://relative.db"):  # fmt: skip
            assert light_listing(url, None, **_filters()) is None, url
        for text in (" slow", "", "a\u202eb", "x" * (NAME_MAX + 1)):
            assert light_listing(store_url, None, **_filters(text=text)) is None
            assert light_listing(store_url, None, **_filters(commander=text)) is None
        assert not (tmp_path / "missing.db").exists()

    def test_a_file_the_store_would_change(self, filled: Library, tmp_path: Path) -> None:
        """An older schema (the store migrates it) or a foreign file is left to the store."""
        for change in ("DELETE FROM schema_version WHERE version = (SELECT max(version) "
                       "FROM schema_version)", "PRAGMA application_id = 7"):  # fmt: skip
            copy = tmp_path / "copy.db"
            with sqlite3.connect(tmp_path / "incidents.db") as source, sqlite3.connect(copy) as to:
                source.backup(to)
                to.execute(change)
            assert light_listing(sqlite_url(copy), None, **_filters()) is None
            copy.unlink()

    @pytest.mark.parametrize(
        "content",
        [
            "[policy]\nwatch_window_minutes = 5\n",
            '[notifiers.log]\ntype = "log"\n',
            'actor = ""\n',
            'display_timezone = "Mars/Base"\n',
            'store = "postgresql://u:secret@host/db"\n',
            "not toml =\n",
        ],
    )
    def test_a_configuration_with_more(
        self, filled: Library, store_url: str, tmp_path: Path, content: str
    ) -> None:
        """A file holding anything but the simple settings is loaded in full, errors and all."""
        path = tmp_path / "incidentflow.toml"
        path.write_text(content, encoding="utf-8")
        assert light_listing(store_url, None, **_filters()) is None
        assert light_listing(store_url, str(path), **_filters()) is None

    def test_configuration_errors_are_unchanged(
        self, filled: Library, term: Terminal, tmp_path: Path
    ) -> None:
        """A wrong configuration is refused by ``list`` as it always was: one line, exit 2."""
        (tmp_path / "incidentflow.toml").write_text(
            'display_timezone = "Mars/Base"\n', encoding="utf-8"
        )
        outcome = term("list", "--open")
        assert outcome.code == EXIT_USAGE
        assert "display_timezone" in outcome.err
        assert "time zone" in outcome.err
        outcome = term("list", "--config", str(tmp_path / "nowhere.toml"))
        assert outcome.code == EXIT_USAGE

    def test_pyproject_table(self, filled: Library, store_url: str, tmp_path: Path) -> None:
        """``[tool.incidentflow]`` of a pyproject.toml is read as the full load reads it."""
        path = tmp_path / "pyproject.toml"
        path.write_text(f'[tool.incidentflow]\nstore = "{store_url}"\n', encoding="utf-8")
        assert light_listing(None, None, **_filters()) is not None
        path.write_text("[tool.incidentflow]\n[tool.incidentflow.policy]\n", encoding="utf-8")
        assert light_listing(store_url, None, **_filters()) is None


class TestWarnings:
    """Opening the library later still shows its warnings: the sink comes with loguru."""

    def test_warning_of_a_command_in_a_fresh_process(self, tmp_path: Path) -> None:
        """loguru is not loaded before the command runs, and its warning line is shown."""
        (tmp_path / "afile").write_text("", encoding="utf-8")
        (tmp_path / "incidentflow.toml").write_text(
            'incidents_dir = "afile/sub"\n', encoding="utf-8"
        )
        run = process([str(SCRIPT), "declare", "Disk full", "-s", "P3", "-c", "al", "-q"],
                      tmp_path)  # fmt: skip
        assert run.returncode == EXIT_OK, run.stderr
        [line] = run.stderr.strip().splitlines()
        assert line.startswith("incidentflow: warning: could not write the files of INC-")


def test_constants_agree_with_the_library() -> None:
    """The schema, the application id and the name bound the light path checks are the store's."""
    assert _light.SCHEMA_VERSION == _schema.SCHEMA_VERSION
    assert _light.APPLICATION_ID == _schema.APPLICATION_ID
    assert _light._NAME_MAX == NAME_MAX
