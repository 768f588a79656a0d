"""``show`` as a terminal reads it: text as typed, times in the display zone, lines that fit.

``show --markdown`` stays the file people commit: escaped, and in UTC.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cli_terminal import Library, Terminal, declared, ok

from incidentflow.cli._terminal import for_terminal

BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")


def shown_in(zone: ZoneInfo, moment: datetime | None) -> str:
    """``moment`` as the terminal shows it in ``zone``: ``2026-12-06 06:26 CET``."""
    assert moment is not None
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M %Z}"


class TestText:
    """What the renderer escaped for Markdown reads as it was typed."""

    def test_angle_brackets(self, term: Terminal) -> None:
        """``<`` and ``>`` in answers, headings and tables are shown, not ``&lt;``/``&gt;``.

        Only what the renderer escaped is undone: an entity the user typed, and
        evidence in its fence, stay as written; ``--markdown`` keeps the escapes.
        """
        incident_id = declared(term, "Login slow when p95 > 4s")
        ok(term("triage", "start", incident_id))
        ok(term("triage", "answer", incident_id, "scope", "a < b & c > d"))
        ok(term("evidence", "add", incident_id, "if a &lt; b", "--source", "sh -c 'echo 1>&2'"))
        ok(term("update", incident_id, "internal", "status <b>ok</b>", "--next", "30m"))
        ok(term("note", incident_id, "rising &amp; falling"))
        out = ok(term("show", incident_id)).out
        assert "Incident: Login slow when p95 > 4s" in out
        assert "Scope: a < b & c > d" in out
        assert ": sh -c 'echo 1>&2' (" in out  # the evidence's heading
        assert "status <b>ok</b>" in out
        assert "&gt;" not in out
        assert "rising &amp; falling" in out
        assert "    if a &lt; b" in out
        markdown = ok(term("show", incident_id, "--markdown")).out
        assert "# Incident: Login slow when p95 &gt; 4s" in markdown
        assert "a &lt; b & c &gt; d" in markdown


class TestTimes:
    """The terminal shows times in the zone every other command uses; the file keeps UTC."""

    def test_tz(self, term: Terminal, library: Library, monkeypatch: pytest.MonkeyPatch) -> None:
        """With TZ=Europe/Berlin the times are in CET, as ``timeline`` shows them; the file: UTC."""
        monkeypatch.setenv("TZ", "Europe/Berlin")
        incident_id = declared(term)
        ok(term("update", incident_id, "internal", "looking", "--next", "30m"))
        incident = library.get(incident_id)
        out = ok(term("show", incident_id)).out
        assert f"Date: {shown_in(BERLIN, incident.declared_at)}\n" in out
        assert f"Next update due: {shown_in(BERLIN, incident.next_update_due)}\n" in out
        assert " UTC" not in out
        timeline = ok(term("timeline", incident_id)).out
        assert f"{incident.declared_at.astimezone(BERLIN):%Y-%m-%d %H:%M}" in timeline
        # --markdown prints the file as written to disk: in UTC, whatever TZ says.
        markdown = ok(term("show", incident_id, "--markdown")).out
        assert re.search(r"\*\*Date:\*\* \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", markdown)
        assert " CET" not in markdown

    def test_tables(
        self, term: Terminal, library: Library, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Table columns headed "(UTC)" are shown in the zone, each time naming it."""
        monkeypatch.setenv("TZ", "Europe/Berlin")
        incident_id = declared(term)
        ok(term("update", incident_id, "internal", "looking", "--next", "30m"))
        update = library.get(incident_id).updates[0]
        out = ok(term("show", incident_id)).out
        assert "(UTC)" not in out
        row = next(line for line in out.splitlines() if "looking" in line)
        assert row.startswith(shown_in(BERLIN, update.at))

    def test_display_timezone(
        self, term: Terminal, library: Library, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without TZ, the configuration's ``display_timezone`` is the zone."""
        from incidentflow.cli import _clock

        monkeypatch.delenv("TZ")
        monkeypatch.setattr(_clock, "_configured", None)  # restored after the test
        incident_id = declared(term)
        Path("incidentflow.toml").write_text('display_timezone = "Asia/Tokyo"\n', encoding="utf-8")
        declared_at = library.get(incident_id).declared_at
        out = ok(term("show", incident_id)).out
        assert f"Date: {shown_in(TOKYO, declared_at)}\n" in out

    def test_postmortem_timeline(
        self, term: Terminal, library: Library, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The post-mortem's timeline, whose rows the file writes without "UTC", is in the zone."""
        monkeypatch.setenv("TZ", "Asia/Tokyo")
        incident = library.drive("postmortem")
        out = ok(term("show", incident.id)).out
        timeline = out.split("Timeline\n--------\n", 1)[1]
        first = next(line for line in timeline.splitlines() if "Incident declared" in line)
        assert first.startswith(shown_in(TOKYO, incident.declared_at))

    def test_a_time_no_zone_can_show_stays_in_utc(self) -> None:
        """A time at the end of the calendar, past what the zone can show, is kept in UTC."""
        text = for_terminal("**Date:** 9999-12-31 23:59 UTC  \n", 80, zone=TOKYO)
        assert text == "Date: 9999-12-31 23:59 UTC\n"


class TestWidth:
    """No line runs past the terminal's width (the next command aside: it is copied whole)."""

    def test_long_headings_wrap(self, term: Terminal, monkeypatch: pytest.MonkeyPatch) -> None:
        """An evidence heading holding a long command line wraps; its underline fits too."""
        monkeypatch.setenv("COLUMNS", "60")
        incident_id = declared(term)
        ok(term("triage", "start", incident_id))
        source = "kubectl logs deploy/checkout --since=1h " + "--selector app=checkout " * 4
        ok(term("evidence", "add", incident_id, "500s", "--source", source))
        lines = ok(term("show", incident_id)).out.splitlines()
        assert max(len(line) for line in lines if not line.startswith("Next:")) <= 60
        heading = next(i for i, line in enumerate(lines) if "kubectl logs" in line)
        assert lines[heading + 1].startswith("--since=1h")  # wrapped, not cut
        assert set(lines[heading + 3]) == {"·"}

    @pytest.mark.parametrize("columns", [40, 50, 60])
    def test_narrow_timeline(
        self, term: Terminal, monkeypatch: pytest.MonkeyPatch, columns: int
    ) -> None:
        """``timeline`` fits terminals narrower than its fixed columns and their details."""
        monkeypatch.setenv("COLUMNS", str(columns))
        incident_id = declared(term, commander="alexandra-the-commander")
        ok(term("triage", "start", incident_id))
        ok(term("note", incident_id, "word " * 30))
        lines = ok(term("timeline", incident_id)).out.splitlines()
        assert max(len(line) for line in lines) <= columns
        assert lines[0].split()[:2] == ["SEQ", "TIME"]
