"""Reads at 100,000 incidents against the raw query plus plain Python (issue 11 §6).

Run with ``python benchmarks/reads.py`` (``--count N`` for another size,
``--rounds N`` for more rounds, ``--store PATH`` to keep the filled SQLite file
and reuse it on the next run; ``--postgres DSN``, or INCIDENTFLOW_TEST_POSTGRES_DSN, also
measures PostgreSQL on ``--postgres-count`` incidents, 20,000 by default, in a scratch
schema dropped after). The SQLite store is filled
as ``benchmarks/cli.py`` fills it: 200 template incidents driven through the
lifecycle by the library, then copied under new ids by SQL (87 % closed
through the knowledge base, 8 % dismissed, 5 % open). Each round runs every
side once, in turn; the ratio is that of the medians. It prints, target ≤ 1.5×:

1. ``flow.summaries()`` of every incident against a raw ``SELECT`` of the same
   columns, each row made a plain dict by column name;
2. ``flow.metrics()`` against a raw ``SELECT`` of the milestone times with
   MTTA and MTTR computed on the integers in plain Python; and, for reference,
   against the same seven durations' count, total, minimum, mean, median, p90
   and maximum computed on the integers in plain Python (what ``metrics``
   gives); and, for reference, ``flow.metrics(by="severity")`` (grouped, so
   read row by row rather than from the durations' indexes) against the same;
3. ``flow.list(open_only=True, severity="P1")`` (whole snapshots) against the
   raw indexed query of the same rows' snapshot JSON, each parsed with
   ``json.loads``.

Every side reads the same rows: the script checks the counts before it times.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cli as filling  # benchmarks/cli.py fills stores the same way
from incidentflow import IncidentFlow
from incidentflow.stores import SQLiteStore

TARGET = 1.5

_SUMMARY_COLUMNS = ("id", "title", "severity", "state", "commander", "declared_at", "updated_at",
                    "version", "type")  # fmt: skip
_SUMMARIES = (
    f"SELECT {', '.join(_SUMMARY_COLUMNS)} FROM incidents ORDER BY declared_at DESC, id DESC"
)
_TIMES = (
    "SELECT i.declared_at, m.acknowledged_at, m.resolved_at FROM incidents i "
    "LEFT JOIN milestones m ON m.incident_id = i.id"
)
_ALL_TIMES = (
    "SELECT i.declared_at, m.first_occurred_at, m.detected_at, m.acknowledged_at, "
    "m.contained_at, m.fixed_at, m.resolved_at, m.postmortem_completed_at FROM incidents i "
    "LEFT JOIN milestones m ON m.incident_id = i.id"
)
_OPEN_P1 = (
    "SELECT s.body FROM incidents i JOIN snapshots s ON s.incident_id = i.id "
    "WHERE i.is_open = 1 AND i.severity = 'P1' ORDER BY i.declared_at DESC, i.id DESC"
)


# -- the raw sides ----------------------------------------------------------------------


def raw_summaries(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every incident's summary columns, each row a dict by column name."""
    names = _SUMMARY_COLUMNS
    return [dict(zip(names, row, strict=True)) for row in conn.execute(_SUMMARIES)]


def raw_mtta_mttr(conn: sqlite3.Connection) -> tuple[float | None, float | None]:
    """MTTA and MTTR in seconds, on the integers (microseconds) the store keeps."""
    acknowledged = resolved = 0
    acknowledged_n = resolved_n = 0
    for declared, ack, res in conn.execute(_TIMES):
        if ack is not None:
            acknowledged += ack - declared
            acknowledged_n += 1
        if res is not None:
            resolved += res - declared
            resolved_n += 1
    return (
        acknowledged / acknowledged_n / 1e6 if acknowledged_n else None,
        resolved / resolved_n / 1e6 if resolved_n else None,
    )


def _stats(values: list[int]) -> tuple[Any, ...]:
    if not values:
        return (0, 0, None, None, None, None, None)
    values.sort()
    n = len(values)

    def quantile(q: float) -> float:
        rank = (n - 1) * q
        low = math.floor(rank)
        high = min(low + 1, n - 1)
        return values[low] + (values[high] - values[low]) * (rank - low)

    total = sum(values)
    return (n, total, values[0], total / n, quantile(0.5), quantile(0.9), values[-1])


def raw_seven_durations(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """The seven durations' statistics (as ``metrics`` gives them), on the integers."""
    columns: list[list[int]] = [[] for _ in range(7)]
    detect, declare, ack, contain, fix, resolve, postmortem = (c.append for c in columns)
    for declared, first, detected, acked, contained, fixed, resolved, completed in conn.execute(
        _ALL_TIMES
    ):
        if detected is not None:
            if first is not None:
                detect(detected - first)
            declare(declared - detected)
        if acked is not None:
            ack(acked - declared)
        if contained is not None:
            contain(contained - declared)
        if fixed is not None:
            fix(fixed - declared)
        if resolved is not None:
            resolve(resolved - declared)
            if completed is not None:
                postmortem(completed - resolved)
    return [_stats(values) for values in columns]


def raw_open_p1(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The open P1 incidents' snapshots by the indexed query, each parsed from its JSON."""
    loads = json.loads
    return [loads(body) for (body,) in conn.execute(_OPEN_P1)]


# -- measuring -------------------------------------------------------------------------


def interleaved(sides: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """The median seconds of each side, run once each per round, in turn."""
    for side in sides.values():
        side()  # warm: page cache, statement cache, lazy imports
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, side in sides.items():
            began = time.perf_counter()
            side()
            samples[name].append(time.perf_counter() - began)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(label: str, medians: dict[str, float], ours: str, raw: str, *, target: bool) -> float:
    ratio = medians[ours] / medians[raw]
    verdict = f"(target <= {TARGET}x)" if target else "(for reference)"
    print(f"   {label}: {medians[ours] * 1e3:.1f} ms vs {medians[raw] * 1e3:.1f} ms "
          f"= {ratio:.2f}x {verdict}")  # fmt: skip
    return ratio


def measure_sqlite(path: Path, rounds: int) -> None:
    flow = IncidentFlow(SQLiteStore(path), incidents_dir=None, knowledge_dir=None)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        every = len(flow.summaries(limit=None))
        assert every == len(raw_summaries(conn)), "the sides read different rows"
        open_p1 = len(flow.list(open_only=True, severity="P1"))
        assert open_p1 == len(raw_open_p1(conn)), "the sides read different rows"
        [summary] = flow.metrics()
        mtta, _ = raw_mtta_mttr(conn)
        assert summary.mtta is not None
        assert mtta is not None
        assert abs(summary.mtta.total_seconds() - mtta) < 1e-3, (summary.mtta, mtta)
        print(f"SQLite, {every:,} incidents ({open_p1:,} open P1), {rounds} rounds:")
        medians = interleaved(
            {
                "summaries": lambda: flow.summaries(),
                "raw summaries": lambda: raw_summaries(conn),
                "metrics": lambda: flow.metrics(),
                "metrics by severity": lambda: flow.metrics(by="severity"),
                "raw mtta/mttr": lambda: raw_mtta_mttr(conn),
                "raw seven": lambda: raw_seven_durations(conn),
                "list": lambda: flow.list(open_only=True, severity="P1"),
                "raw list": lambda: raw_open_p1(conn),
            },
            rounds,
        )
        report("1. summaries() vs raw SELECT + dicts", medians, "summaries", "raw summaries",
               target=True)  # fmt: skip
        report("2. metrics() vs raw SELECT + MTTA/MTTR on integers", medians, "metrics",
               "raw mtta/mttr", target=True)  # fmt: skip
        report("   metrics() vs raw SELECT + the same seven statistics on integers", medians,
               "metrics", "raw seven", target=False)  # fmt: skip
        report("   metrics(by='severity') vs raw SELECT + MTTA/MTTR on integers", medians,
               "metrics by severity", "raw mtta/mttr", target=False)  # fmt: skip
        report("3. list(open P1) vs raw indexed SELECT + json.loads", medians, "list",
               "raw list", target=True)  # fmt: skip
    finally:
        conn.close()
        flow.close()


# -- PostgreSQL --------------------------------------------------------------------------


def fill_postgres(dsn: str, schema: str, count: int) -> None:
    """Templates driven by the library into ``schema``, then copied by PostgreSQL itself."""
    import psycopg

    from incidentflow.stores.postgres import PostgresStore
    from incidentflow.testing import FrozenClock

    began = time.perf_counter()
    rng, clock = random.Random(7), FrozenClock(filling.START)
    slugs = []
    with IncidentFlow(PostgresStore(dsn, schema=schema), clock=clock, incidents_dir=None,
                      knowledge_dir=None) as flow:  # fmt: skip
        for n in range(filling.TEMPLATES):
            clock.set(filling.START + timedelta(seconds=rng.randrange(365 * 86_400)))
            filling.drive(flow, clock, n, filling._MIX[n % len(filling._MIX)], rng)
            slugs.append(f"tmpl{n:04d}")
    copies = -(-count // len(slugs)) - 1  # each template stays as one of them
    with psycopg.connect(dsn, autocommit=True) as conn:
        copied = []
        for table, key in (("incidents", "id"), ("snapshots", "incident_id"),
                           ("events", "incident_id"), ("milestones", "incident_id")):  # fmt: skip
            columns = conn.execute(
                "SELECT column_name, data_type, is_identity FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                (schema, table),
            ).fetchall()
            if not columns:
                continue  # a schema before the milestones table (6)
            copied.append(table)
            names, values = [], []
            for name, kind, identity in columns:
                if identity == "YES":
                    continue
                names.append(name)
                new = "replace({col}, t.slug, t.slug || '-c' || lpad(k::text, 5, '0'))"
                if name == key or name == "idempotency_key":
                    values.append("NULL" if name == "idempotency_key" else new.format(col=name))
                elif kind == "jsonb":
                    values.append(new.format(col=f"{name}::text") + "::jsonb")
                else:
                    values.append(name)
            conn.execute(
                f'INSERT INTO "{schema}".{table} ({", ".join(names)}) '
                f'SELECT {", ".join(values)} FROM "{schema}".{table} '
                "JOIN unnest(%s::text[]) AS t(slug) ON "
                f"{key} LIKE '%%-' || t.slug, generate_series(1, %s) AS k",
                (slugs, copies),
            )
        for table in copied:
            conn.execute(f'ANALYZE "{schema}".{table}')
    print(f"PostgreSQL: {len(slugs) * (copies + 1):,} incidents filled in "
          f"{time.perf_counter() - began:.1f} s")  # fmt: skip


def measure_postgres(dsn: str, count: int, rounds: int) -> None:
    """The same three on PostgreSQL; the raw sides ask psycopg and aggregate in SQL."""
    import psycopg

    from incidentflow.stores.postgres import PostgresStore

    schema = f"reads_bench_{os.getpid()}"
    try:
        fill_postgres(dsn, schema, count)
        with psycopg.connect(dsn, autocommit=True) as conn, IncidentFlow(
            PostgresStore(dsn, schema=schema), incidents_dir=None, knowledge_dir=None
        ) as flow:  # fmt: skip
            s = f'"{schema}"'
            summaries_sql = _SUMMARIES.replace("FROM incidents", f"FROM {s}.incidents")
            times = (
                "SELECT avg(extract(epoch FROM (s.body->>'acknowledged_at')::timestamptz "
                "- i.declared_at)), avg(extract(epoch FROM (s.body->>'resolved_at')::timestamptz "
                f"- i.declared_at)) FROM {s}.incidents i JOIN {s}.snapshots s "
                "ON s.incident_id = i.id"
            )
            # The same two averages from the milestones table (schema 6), for reference.
            stored = f"SELECT avg(time_to_acknowledge), avg(time_to_resolve) FROM {s}.milestones"
            open_p1 = (
                f"SELECT s.body::text FROM {s}.incidents i JOIN {s}.snapshots s "
                "ON s.incident_id = i.id WHERE i.is_open AND i.severity = 'P1' "
                "ORDER BY i.declared_at DESC, i.id DESC"
            )
            names, loads = _SUMMARY_COLUMNS, json.loads

            def raw_summaries() -> object:
                rows = conn.execute(summaries_sql).fetchall()
                return [dict(zip(names, row, strict=True)) for row in rows]

            sides = {
                "summaries": lambda: flow.summaries(),
                "raw summaries": raw_summaries,
                "metrics": lambda: flow.metrics(),
                "metrics by severity": lambda: flow.metrics(by="severity"),
                "raw mtta/mttr": lambda: conn.execute(times).fetchone(),
                "raw mtta/mttr, table": lambda: conn.execute(stored).fetchone(),
                "list": lambda: flow.list(open_only=True, severity="P1"),
                "raw list": lambda: [loads(b) for (b,) in conn.execute(open_p1).fetchall()],
            }
            found = len(flow.list(open_only=True, severity="P1"))
            assert found == len(sides["raw list"]()), "the sides read different rows"  # type: ignore[arg-type]
            every = len(flow.summaries())
            print(f"PostgreSQL, {every:,} incidents ({found:,} open P1), {rounds} rounds:")
            medians = interleaved(sides, rounds)
            report("1. summaries() vs raw SELECT + dicts", medians, "summaries",
                   "raw summaries", target=True)  # fmt: skip
            report("2. metrics() vs raw SELECT aggregating MTTA/MTTR in SQL", medians,
                   "metrics", "raw mtta/mttr", target=True)  # fmt: skip
            report("   metrics(by='severity') vs the same", medians, "metrics by severity",
                   "raw mtta/mttr", target=False)  # fmt: skip
            report("   metrics() vs the same from the milestones table", medians, "metrics",
                   "raw mtta/mttr, table", target=False)  # fmt: skip
            report("3. list(open P1) vs raw indexed SELECT + json.loads", medians, "list",
                   "raw list", target=True)  # fmt: skip
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def fill(path: Path, count: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="incidentflow-reads-bench-"))
    try:
        began = time.perf_counter()
        slugs = filling.templates(folder / "templates.db", filling.TEMPLATES)
        seconds = filling.fill(path, count, folder / "templates.db", slugs)
        print(f"{count:,} incidents filled in {time.perf_counter() - began:.1f} s "
              f"({seconds:.1f} s copying)")  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    """Fill (or reuse) the store and print the three ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="incidents in the store")
    parser.add_argument("--rounds", type=int, default=15, help="rounds of every side")
    parser.add_argument("--store", type=Path, help="keep the SQLite file here, reuse it if there")
    parser.add_argument("--postgres", metavar="DSN",
                        default=os.environ.get("INCIDENTFLOW_TEST_POSTGRES_DSN"),
                        help="also measure PostgreSQL, in a scratch schema")  # fmt: skip
    parser.add_argument("--postgres-count", type=int, default=20_000, help="incidents there")
    parser.add_argument("--no-sqlite", action="store_true", help="measure PostgreSQL only")
    options = parser.parse_args()
    folder = None
    try:
        if not options.no_sqlite:
            if options.store is not None:
                path = options.store
                if not path.exists():
                    fill(path, options.count)
            else:
                folder = Path(tempfile.mkdtemp(prefix="incidentflow-reads-bench-"))
                path = folder / "incidents.db"
                fill(path, options.count)
            measure_sqlite(path, options.rounds)
        if options.postgres:
            measure_postgres(options.postgres, options.postgres_count, options.rounds)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
