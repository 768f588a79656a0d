"""Operations: deadlines, delivery, the dispatcher and metrics."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cli_terminal import SCRIPT, Library, Terminal, declared, iso, ok

from incidentflow.cli import EXIT_OK, EXIT_USAGE

# -- operations ------------------------------------------------------------------------------------


class TestDeadlines:
    """``deadlines`` and ``check-deadlines``."""

    def test_breaches_are_recorded_once(self, term: Terminal, library: Library) -> None:
        """``check-deadlines`` records each newly missed deadline once, however often it runs."""
        incident = library.drive("declared", "P1")  # declared 3 hours ago, never acknowledged
        earlier = datetime.now(UTC) - timedelta(minutes=2)  # the deadline had passed by then

        first = ok(term("check-deadlines", "--now", iso(earlier)))
        assert incident.id in first.out
        breaches = [e for e in library.history(incident.id) if e.type == "deadline_breached"]
        assert len(breaches) >= 1

        second = ok(term("--json", "check-deadlines", "--now", iso(earlier + timedelta(minutes=1))))
        assert second.json() == []
        again = [e for e in library.history(incident.id) if e.type == "deadline_breached"]
        assert again == breaches
        assert ok(term("check-deadlines")).out.strip() == "no new breaches"

        table = ok(term("deadlines", incident.id)).out
        assert "breached (recorded)" in table
        recorded = [d for d in ok(term("--json", "deadlines", incident.id)).json() if d["breached"]]
        assert len(recorded) == len(breaches)

    def test_a_time_ahead_of_now_is_refused(self, term: Terminal, library: Library) -> None:
        """Breaches are dated now: checking as of a later time would record them early."""
        incident = library.drive("declared", "P1")
        refused = term("check-deadlines", "--now", "+1d")
        assert refused.code == 2
        assert "later than the flow's clock" in refused.err
        assert not [e for e in library.history(incident.id) if e.type == "deadline_breached"]

    def test_far_future_due_date(self, term: Terminal) -> None:
        """An action item due on 9999-12-31 is refused or kept; deadline checks keep working."""
        incident_id = declared(term)
        added = term(
            "action", "add", incident_id, "Someday", "--owner", "dana", "--due", "9999-12-31"
        )
        assert added.code in {EXIT_OK, EXIT_USAGE}, added.err
        ok(term("deadlines", incident_id))
        ok(term("check-deadlines"))

    def test_deadline_table(self, term: Terminal) -> None:
        """A fresh P1's response deadline is listed as due in a few minutes."""
        incident_id = declared(term)
        table = ok(term("deadlines", incident_id)).out
        assert table.splitlines()[0].split()[:3] == ["KIND", "SUBJECT", "DUE"]
        assert " in " in table


class TestDeliver:
    """``deliver`` runs the outbox once."""

    def test_no_notifiers(self, term: Terminal) -> None:
        """Without notifiers nothing is delivered, and the command says so."""
        declared(term)
        assert ok(term("deliver")).out.strip() == "delivered 0, retrying 0, dead 0"
        assert ok(term("deliver", "--dead")).out.strip() == "no dead letters"
        assert ok(term("deliver", "--redrive")).out.startswith("0 dead letter(s)")
        assert ok(term("--json", "deliver", "--dead")).json() == []


class TestMetrics:
    """``metrics``: the MTTx table, grouped, and the Prometheus exposition."""

    def test_table(self, term: Terminal, library: Library) -> None:
        """The table has one row per duration, with MTTA and MTTR in the heading."""
        library.drive("resolved", "P1")
        out = ok(term("metrics")).out
        assert out.startswith("all: 1 incident(s), MTTA ")
        assert "time to resolve" in out
        assert out.splitlines()[1].split() == ["DURATION", "N", "MEAN", "MEDIAN", "P90", "MAX"]

    def test_by_severity(self, term: Terminal, library: Library) -> None:
        """``--by severity`` gives one block per severity."""
        library.drive("resolved", "P1")
        library.drive("kb_updated", "P3", texts={"title": "Search is slow"})
        out = ok(term("metrics", "--by", "severity")).out
        assert re.search(r"^P1: 1 incident\(s\)", out, re.MULTILINE)
        assert re.search(r"^P3: 1 incident\(s\)", out, re.MULTILINE)
        only = ok(term("metrics", "--severity", "P3")).out
        assert only.startswith("all: 1 incident(s)")

    def test_prometheus(self, term: Terminal, library: Library) -> None:
        """``--prometheus`` prints the text exposition."""
        library.drive("resolved", "P1")
        out = ok(term("metrics", "--prometheus")).out
        assert "# TYPE" in out
        assert "# HELP" in out


class TestDispatch:
    """``incidentflow dispatch`` delivers from a process of its own until told to stop."""

    def test_delivers_what_commands_left_then_stops_on_sigterm(
        self, term: Terminal, tmp_path: Path, library: Library
    ) -> None:
        """Commands with inline delivery off leave the outbox full; the dispatcher empties it."""
        import signal
        import time

        (tmp_path / "incidentflow.toml").write_text(
            '[delivery]\ninline = false\n\n[notifiers.log]\ntype = "log"\n', encoding="utf-8"
        )
        ids = [declared(term, f"Incident {n}", "P3") for n in range(3)]
        with library.flow() as flow:
            assert sorted(i.event.incident_id for i in flow.store.pending()) == sorted(ids)
        env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTFLOW_")}
        dispatcher = subprocess.Popen(
            [str(SCRIPT), "--store", term.store_url, "dispatch", "--interval", "0.05"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with library.flow() as flow:
                    if not flow.store.pending():
                        break
                time.sleep(0.05)
        finally:
            dispatcher.send_signal(signal.SIGTERM)
            out, err = dispatcher.communicate(timeout=30)
        assert dispatcher.returncode == EXIT_OK, err
        assert out.strip() == "stopped; 3 notification(s) delivered"
        assert "Traceback" not in err
        with library.flow() as flow:
            assert list(flow.store.pending()) == []
