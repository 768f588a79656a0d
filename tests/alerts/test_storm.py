"""A small alert storm on SQLite: one incident per fingerprint, every alert once, twice over."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from incidentflow import IncidentFlow
from incidentflow.stores import SQLiteStore
from incidentflow.testing import FrozenClock

# benchmarks/alerts.py builds the payloads; loaded by path, as "alerts" would be ambiguous.
_SPEC = importlib.util.spec_from_file_location(
    "alert_storm_benchmark", Path(__file__).resolve().parents[2] / "benchmarks" / "alerts.py"
)
assert _SPEC is not None
assert _SPEC.loader is not None
_BENCHMARK = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_BENCHMARK)
START, storm = _BENCHMARK.START, _BENCHMARK.storm

ALERTS = 500
FINGERPRINTS = 10


class TestStorm:
    def test_storm_twice_with_a_restart(self, tmp_path: Path) -> None:
        """500 alerts over 10 fingerprints, sent twice with a reopen: 10 incidents, 500 evidence."""
        path = tmp_path / "storm.db"
        payloads = storm(ALERTS, FINGERPRINTS)
        counts = []
        for _ in range(2):
            with IncidentFlow(SQLiteStore(path), clock=FrozenClock(START)) as flow:
                totals = {"declared": 0, "attached": 0, "replayed": 0}
                for payload in payloads:
                    found = flow.ingest(payload, source="alertmanager").counts()
                    for name in totals:
                        totals[name] += found[name]
                counts.append(totals)
        assert counts[0] == {
            "declared": FINGERPRINTS,
            "attached": ALERTS - FINGERPRINTS,
            "replayed": 0,
        }
        assert counts[1]["replayed"] == ALERTS
        with IncidentFlow(SQLiteStore(path), clock=FrozenClock(START)) as flow:
            incidents = flow.list()
            assert len(incidents) == FINGERPRINTS
            assert sum(len(i.evidence) for i in incidents) == ALERTS
            assert all(i.version == 2 + ALERTS // FINGERPRINTS for i in incidents)
