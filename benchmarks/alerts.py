"""Alert storm: 10,000 Alertmanager alerts across 100 fingerprints, ingested twice (issue 12).

Run with ``python benchmarks/alerts.py`` (``--quick``: 1,000 alerts across 10).

The alerts go to SQLite in Alertmanager webhooks of 100 alerts each; the flow is
closed and opened again between the two runs. The script asserts that the store
then holds exactly one incident per fingerprint and every alert once (as one
evidence item), and that the second run recorded nothing. It prints alerts per
second of each run.

Then, on one store, it compares ``ingest`` of a webhook of 100 new alerts for
open incidents (each attached as evidence: the steady state of a storm) with 100
plain ``add_evidence`` calls carrying the same texts, in interleaved batches
(ABBA), and prints the median of the neighbouring batches' ratios.
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


def interleaved_ratio(path: Path, fingerprints: int, batches: int) -> tuple[float, float, float]:
    """Per alert: ingest (attaching) and plain add_evidence, interleaved; and their ratio."""
    import statistics

    later = START + timedelta(days=1)
    with IncidentFlow(SQLiteStore(path), clock=FrozenClock(START)) as flow:
        for payload in storm(fingerprints, fingerprints):  # one open incident per fingerprint
            flow.ingest(payload, source="alertmanager")
        ids = [i.id for i in flow.list(limit=fingerprints)]
        rounds = iter(range(10**9))

        def ingest_batch() -> None:
            n = next(rounds)
            payload = storm(BATCH, fingerprints)[0]
            # New alerts (another start) for the same fingerprints: each is attached.
            for i, a in enumerate(payload["alerts"]):
                a["startsAt"] = (later + timedelta(minutes=n, milliseconds=i)).isoformat()
            report = flow.ingest(payload, source="alertmanager")
            assert report.counts()["attached"] == BATCH, report.counts()

        texts = [evidence_text(a, a.fingerprint) for a in parse(storm(BATCH, 1)[0], "alertmanager")]

        def plain_batch() -> None:
            for i, text in enumerate(texts):
                flow.add_evidence(ids[i % len(ids)], source="alertmanager", content=text,
                                  actor="alerts")  # fmt: skip

        samples: dict[str, list[float]] = {"ingest": [], "plain": []}
        sides = [("ingest", ingest_batch), ("plain", plain_batch)]
        for _ in range(2):  # warm up both
            ingest_batch()
            plain_batch()
        for round_ in range(batches):
            for name, run in sides if round_ % 2 == 0 else reversed(sides):
                began = time.perf_counter()
                run()
                samples[name].append((time.perf_counter() - began) / BATCH)
        ratios = [a / b for a, b in zip(samples["ingest"], samples["plain"], strict=True)]
        return (
            statistics.median(samples["ingest"]),
            statistics.median(samples["plain"]),
            statistics.median(ratios),
        )


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
        ingest_one, plain_one, ratio = interleaved_ratio(
            Path(folder) / "steady.db", fingerprints, 6 if quick else 20
        )
    print(f"{alerts:,} alerts across {fingerprints} fingerprints on SQLite")
    declared = f"{fingerprints} incidents declared"
    print(f"first run:  {alerts / first:,.0f} alerts/s ({first:.2f} s, {declared})")
    print(f"second run: {alerts / second:,.0f} alerts/s ({second:.2f} s, every alert a replay)")
    print(
        f"attaching: ingest {ingest_one * 1e6:.0f} µs per alert, plain add_evidence "
        f"{plain_one * 1e6:.0f} µs; ratio {ratio:.2f}x (median of interleaved batches)"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
