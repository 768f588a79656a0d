"""Alert storm: 10,000 Alertmanager alerts across 100 fingerprints, ingested twice (issue 12).

Run with ``python benchmarks/alerts.py`` (``--quick``: 1,000 alerts across 10).

The alerts go to SQLite in Alertmanager webhooks of 100 alerts each; the flow is
closed and opened again between the two runs. The script asserts that the store
then holds exactly one incident per fingerprint and every alert once (as one
evidence item), and that the second run recorded nothing. It prints alerts per
second of each run, and the ratio of ``ingest`` per alert (first run) to a plain
``add_evidence`` on the same store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from incidentflow import IncidentFlow
from incidentflow.alerts import parse
from incidentflow.alerts._alert import evidence_text
from incidentflow.stores import SQLiteStore
from incidentflow.testing import FrozenClock

START = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
BATCH = 100


def storm(alerts: int, fingerprints: int) -> list[dict[str, Any]]:
    """Alertmanager webhooks: alert n has fingerprint n % fingerprints and its own start."""
    payloads = []
    for first in range(0, alerts, BATCH):
        items = []
        for n in range(first, min(first + BATCH, alerts)):
            fp = n % fingerprints
            started = START - timedelta(hours=6) + timedelta(seconds=n)
            items.append(
                {
                    "status": "firing",
                    "labels": {
                        "alertname": f"ServiceErrorRate{fp}",
                        "service": f"svc-{fp}",
                        "severity": "critical" if fp % 2 else "warning",
                        "instance": f"host-{n % 7}:8080",
                    },
                    "annotations": {"summary": f"Service {fp} error rate above 5%"},
                    "startsAt": started.isoformat(),
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": f"http://prometheus.example.org/graph?g0.expr=svc_{fp}",
                    "fingerprint": f"{fp:016x}",
                }
            )
        payloads.append(
            {
                "version": "4",
                "groupKey": f'{{}}:{{batch="{first}"}}',
                "status": "firing",
                "receiver": "incidentflow",
                "alerts": items,
            }
        )
    return payloads


def ingest_all(path: Path, payloads: list[dict[str, Any]]) -> tuple[float, int]:
    """Ingest every payload on a freshly opened flow; seconds taken and alerts replayed."""
    with IncidentFlow(SQLiteStore(path), clock=FrozenClock(START)) as flow:
        began = time.perf_counter()
        replayed = 0
        for payload in payloads:
            replayed += flow.ingest(payload, source="alertmanager").counts()["replayed"]
        return time.perf_counter() - began, replayed


def check(path: Path, alerts: int, fingerprints: int) -> None:
    """Exactly one incident per fingerprint, and every alert once as evidence."""
    with IncidentFlow(SQLiteStore(path), clock=FrozenClock(START)) as flow:
        incidents = flow.list(limit=fingerprints + 10)
        assert len(incidents) == fingerprints, len(incidents)
        evidence = sum(len(i.evidence) for i in incidents)
        assert evidence == alerts, evidence
        for incident in incidents:
            assert len({e.content for e in incident.evidence}) == len(incident.evidence)
            assert len(incident.references) == 1


def add_evidence_rate(path: Path, payloads: list[dict[str, Any]], fingerprints: int) -> float:
    """Seconds per plain add_evidence of the storm's alerts (same text, same incidents' sizes)."""
    alerts = [a for p in payloads for a in parse(p, "alertmanager")]
    with IncidentFlow(SQLiteStore(path), clock=FrozenClock(START)) as flow:
        ids = [
            flow.declare(f"Service {n} error rate", severity="P2", commander="al", actor="al").id
            for n in range(fingerprints)
        ]
        began = time.perf_counter()
        for n, alert in enumerate(alerts):
            content = evidence_text(alert, alert.fingerprint)
            flow.add_evidence(
                ids[n % fingerprints], source="alertmanager", content=content, actor="alerts"
            )
        return (time.perf_counter() - began) / len(alerts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 alerts across 10 fingerprints")
    quick = parser.parse_args().quick
    alerts, fingerprints = (1_000, 10) if quick else (10_000, 100)
    payloads = storm(alerts, fingerprints)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "storm.db"
        first, replayed_first = ingest_all(path, payloads)
        second, replayed_second = ingest_all(path, payloads)  # reopened: a restart
        check(path, alerts, fingerprints)
        assert replayed_first == 0, replayed_first
        assert replayed_second == alerts, replayed_second
        plain = add_evidence_rate(Path(folder) / "plain.db", payloads, fingerprints)
    per_alert = first / alerts
    print(f"{alerts:,} alerts across {fingerprints} fingerprints on SQLite")
    declared = f"{fingerprints} incidents declared"
    print(f"first run:  {alerts / first:,.0f} alerts/s ({first:.2f} s, {declared})")
    print(f"second run: {alerts / second:,.0f} alerts/s ({second:.2f} s, every alert a replay)")
    print(f"plain add_evidence: {plain * 1000:.2f} ms; ingest per alert: {per_alert * 1000:.2f} ms")
    print(f"ratio ingest / add_evidence: {per_alert / plain:.2f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
