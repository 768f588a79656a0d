"""Running the command line in tests: in-process, as a real process, and checking the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import drive_to
from incidentflow import Event, Incident, IncidentFlow, State
from incidentflow.cli import EXIT_OK, main
from incidentflow.testing import FrozenClock

SCRIPT = Path(sys.executable).parent / "incidentflow"
TITLE = "Checkout returns 500"
#: The library's heavy parts: a command that prints only help, or lists straight from
#: SQLite, imports none of them.
LIBRARY_MODULES = (
    "incidentflow._events",
    "incidentflow._model",
    "incidentflow.commands",
    "incidentflow.config",
    "incidentflow.stores",
    "cattrs",
    "loguru",
    "attrs",
    "transitions",
)


# -- running the command line ---------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one run of the command line left: its exit code and both streams."""

    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.strip().splitlines()

    def json(self) -> Any:
        return json.loads(self.out)


class Terminal:
    """Runs ``main([...])`` in-process on the test's store and captures what it prints."""

    def __init__(self, capsys: pytest.CaptureFixture[str], store_url: str) -> None:
        self.capsys = capsys
        self.store_url = store_url

    def __call__(self, *args: str, bare: bool = False) -> Outcome:
        """Run ``incidentflow --store URL ARGS...`` (``bare``: without ``--store``)."""
        argv = list(args) if bare else ["--store", self.store_url, *args]
        self.capsys.readouterr()
        code = main(argv)
        captured = self.capsys.readouterr()
        return Outcome(code, captured.out, captured.err)


def ok(outcome: Outcome) -> Outcome:
    """``outcome``, checked to have succeeded."""
    assert outcome.code == EXIT_OK, outcome.err
    assert "Traceback" not in outcome.err
    return outcome


def one_line_error(outcome: Outcome, code: int) -> str:
    """The single line ``outcome`` printed on standard error, checked to exit with ``code``."""
    assert outcome.code == code, (outcome.code, outcome.out, outcome.err)
    assert "Traceback" not in outcome.err
    assert len(outcome.err_lines) == 1, outcome.err
    return outcome.err_lines[0]


class Library:
    """The test's store seen through the library, to check what the command line did."""

    def __init__(self, url: str) -> None:
        self.url = url

    @contextmanager
    def flow(self, clock: FrozenClock | None = None) -> Iterator[IncidentFlow]:
        options: dict[str, Any] = {} if clock is None else {"clock": clock}
        flow = IncidentFlow.open(self.url, incidents_dir=None, knowledge_dir=None, **options)
        try:
            yield flow
        finally:
            flow.close()

    def get(self, incident_id: str) -> Incident:
        with self.flow() as flow:
            return flow.get(incident_id)

    def history(self, incident_id: str) -> list[Event]:
        with self.flow() as flow:
            return list(flow.history(incident_id))

    def ids(self) -> list[str]:
        with self.flow() as flow:
            return sorted(i.id for i in flow.list())

    def drive(self, state: State | str, severity: str = "P1", **options: Any) -> Incident:
        """A new incident driven to ``state`` by the library, its history starting 3 hours ago."""
        clock = FrozenClock(datetime.now(UTC) - timedelta(hours=3))
        with self.flow(clock) as flow:
            return drive_to(flow, clock, state, severity, **options)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def process(argv: Sequence[str | bytes], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (bytes for arguments that are not text) in ``cwd``, without INCIDENTFLOW_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTFLOW_")}
    return subprocess.run(
        list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def declared(
    term: Terminal, title: str = TITLE, severity: str = "P1", commander: str = "alice"
) -> str:
    """Declare an incident through the command line; its id."""
    return ok(term("declare", title, "-s", severity, "-c", commander, "-q")).out.strip()


def ready_to_contain(term: Terminal) -> str:
    """A P1 in triage with evidence and every triage answer: only containment is missing."""
    incident_id = declared(term)
    ok(term("triage", "start", incident_id))
    ok(term("evidence", "add", incident_id, "5xx rate 38% since 09:02", "--source", "grafana"))
    ok(term("triage", "answer", incident_id, "symptom", "POST /checkout returns 500"))
    ok(term("triage", "answer", incident_id, "started_at", "09:02 UTC, after deploy 41"))
    ok(term("triage", "answer", incident_id, "scope", "all card payments"))
    return incident_id


def iso(moment: datetime) -> str:
    return moment.isoformat()
