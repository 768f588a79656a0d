"""Storage benchmarks: ratios from one run (issue 3, "Speed").

Run with ``python benchmarks/storage.py`` (``--quick`` for a smaller run, ``--cold-only``
for the cold half of section 2 alone). Prints:

1. SQLite: one durable ``add_evidence`` through ``IncidentFlow`` against raw
   ``sqlite3`` doing the same work in the same process: a versioned UPDATE of
   one JSON snapshot row plus one INSERT of an event, in one transaction, with
   the same journal mode (WAL) and synchronous setting (FULL). Target ≤ 1.25×
   (issue 11; issue 3 asked ≤ 1.5×).
2. Every backend: a command on an incident with 2,000 events against one on an
   incident with 10 events, with a warm cache (target ≤ 1.2×), then on every
   durable store with a cold one, as the command line runs each command: the
   store's snapshot cache is emptied before every command (issue 11 §6: target
   ≤ 1.5×).
3. SQLite with 100,000 incidents: ``list(open_only=True, severity="P1")``.
   Target ≤ 20 ms, with the query plan showing the index it uses.
4. PostgreSQL (with ``--postgres DSN`` or ``$INCIDENTFLOW_TEST_POSTGRES_DSN``): one
   durable ``add_evidence`` against raw psycopg doing the same work (a versioned
   UPDATE of one JSONB snapshot row plus one INSERT of an event, same server and
   ``synchronous_commit``): in one transaction of two statements, the same
   pipelined, and in ONE statement (a CTE: one round trip), the anchor of issue 11
   §6 (target ≤ 1.15×). Section 2 then covers PostgreSQL too.

fsync time on a shared disk is noisy, so each comparison interleaves batches of
the two sides and reports the median of the ratios of neighbouring batches.
"An incident with 10 events" is a fresh one for every batch (it reaches 10 +
the batch size); the 2,000-event incident keeps growing from 2,000.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from incidentflow import IncidentFlow
from incidentflow._decide import evolve
from incidentflow._events import Declared, Dismissed, Event
from incidentflow._model import Severity
from incidentflow._serialization import event_to_json, incident_to_json
from incidentflow.stores import Commit, IncidentQuery, JsonlStore, MemoryStore, SQLiteStore, Store
from incidentflow.testing import FrozenClock

START = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)

#: Untimed commands first: a fresh WAL file grows (slower fsyncs) until its first checkpoint.
WARM_UP = 400


def interleaved(
    sides: dict[str, Callable[[], None]],
    *,
    batches: int,
    per_batch: int,
    setup: dict[str, Callable[[], None]] | None = None,
) -> tuple[dict[str, float], float]:
    """Run two sides' batches in turn (ABBA order); seconds per call and the ratio B/A.

    The ratio is the median of the ratios of neighbouring batches, which cancels
    the slow drift of a shared disk's fsync time; the times are medians too.
    """
    (first, run_first), (second, run_second) = sides.items()
    samples: dict[str, list[float]] = {first: [], second: []}

    def batch(name: str, call: Callable[[], None]) -> None:
        if setup and name in setup:
            setup[name]()  # untimed
        gc.disable()
        began = time.perf_counter()
        for _ in range(per_batch):
            call()
        samples[name].append((time.perf_counter() - began) / per_batch)
        gc.enable()

    for round_ in range(batches):
        order = [(first, run_first), (second, run_second)]
        for name, call in order if round_ % 2 == 0 else reversed(order):
            batch(name, call)
    ratios = [b / a for a, b in zip(samples[first], samples[second], strict=True)]
    times = {name: statistics.median(values) for name, values in samples.items()}
    return times, statistics.median(ratios)


def flow_on(store: Store) -> IncidentFlow:
    return IncidentFlow(store, clock=FrozenClock(START))


def incident_with(flow: IncidentFlow, events: int, title: str) -> str:
    """An incident in triage with ``events`` events in its history."""
    incident = flow.declare(title, severity="P1", commander="alice", actor="alice")
    flow.start_triage(incident.id, actor="alice")
    for n in range(events - 2):
        flow.add_evidence(incident.id, source="journalctl", content=f"log line {n}", actor="bob")
    assert flow.get(incident.id).version == events
    return incident.id


# -- 1. SQLite durable command against raw sqlite3 --------------------------------------


def sqlite_vs_raw(folder: Path, batches: int, per_batch: int, synchronous: str = "FULL") -> float:
    store = SQLiteStore(folder / f"flow-{synchronous}.db", synchronous=synchronous)  # type: ignore[arg-type]
    flow = flow_on(store)
    incident_id = incident_with(flow, 10, "Checkout returns 500")
    snapshot = flow.get(incident_id)
    snapshot_json = incident_to_json(snapshot)
    event_json = event_to_json(flow.history(incident_id)[-1])

    raw = sqlite3.connect(folder / f"raw-{synchronous}.db", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute(f"PRAGMA synchronous={synchronous}")
    raw.execute("CREATE TABLE snapshots (id TEXT PRIMARY KEY, version INTEGER, body TEXT)")
    raw.execute(
        "CREATE TABLE events (incident_id TEXT, seq INTEGER, type TEXT, at TEXT, actor TEXT, "
        "data TEXT, UNIQUE (incident_id, seq))"
    )
    raw.execute("INSERT INTO snapshots VALUES (?, 0, ?)", (incident_id, snapshot_json))
    raw_version = [0]

    def raw_command() -> None:
        version = raw_version[0]
        raw.execute("BEGIN IMMEDIATE")
        raw.execute(
            "UPDATE snapshots SET version = ?, body = ? WHERE id = ? AND version = ?",
            (version + 1, snapshot_json, incident_id, version),
        )
        raw.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
            (
                incident_id,
                version + 1,
                "evidence_added",
                "2026-11-27T14:00:00+00:00",
                "bob",
                event_json,
            ),
        )
        raw.execute("COMMIT")
        raw_version[0] = version + 1

    current = [incident_id]

    def fresh_incident() -> None:
        current[0] = incident_with(flow, 10, f"Checkout returns 500 again {len(current)}")
        current.append("")

    def flow_command() -> None:
        flow.add_evidence(current[0], source="journalctl", content="log line", actor="bob")

    for _ in range(WARM_UP):  # until each WAL file has reached its steady size
        raw_command()
        flow_command()
    times, ratio = interleaved(
        {"raw sqlite3": raw_command, "IncidentFlow + SQLiteStore": flow_command},
        batches=batches,
        per_batch=per_batch,
        setup={"IncidentFlow + SQLiteStore": fresh_incident},
    )
    if synchronous == "FULL":
        print("1. SQLite, one durable add_evidence (WAL, synchronous=FULL)")
    else:
        print(f"   the same with synchronous={synchronous} (no fsync: the CPU overhead alone)")
    for name, seconds in times.items():
        print(f"   {name:<28} {seconds * 1e6:8.0f} µs per command (median of {batches} batches)")
    target = "; target ≤ 1.25×" if synchronous == "FULL" else ""
    print(f"   ratio {ratio:.2f}×  (median of batch-pair ratios{target})")
    raw.close()
    store.close()
    return ratio


# -- 2. long history against short history, every backend -------------------------------


#: Commands per cold batch: one checkpoint each (every 16 events up to 4,096).
COLD_BATCH = 16


def long_vs_short(
    name: str, store: Store, batches: int, per_batch: int, *, cold: bool = False
) -> float:
    """Section 2: a command on a 2,000-event incident against one on a 10-event incident.

    ``cold`` empties the store's snapshot cache before every command. That is how
    the command line runs a command (a new process, a new store), and how a
    service with more active incidents than its cache holds runs most of them.
    Cold batches are 16 commands, the checkpoint step up to 4,096 events: each
    batch writes one checkpoint, so its cost is in every batch, not in some.
    """
    flow = flow_on(store)
    cache: Any = getattr(store, "_cache", None)  # the benchmark empties it when cold
    short = [incident_with(flow, 10, "Search is slow")]
    long = [incident_with(flow, 2000, "Checkout returns 500")]

    def fresh_short() -> None:
        short[0] = incident_with(flow, 10, f"Search is slow again {len(short)}")
        short.append("")

    def on(incident: list[str]) -> Callable[[], None]:
        def command() -> None:
            if cold:
                cache.clear()
            flow.add_evidence(incident[0], source="journalctl", content="log line", actor="bob")

        return command

    times, ratio = interleaved(
        {"10 events": on(short), "2,000 events": on(long)},
        batches=batches,
        per_batch=per_batch,
        setup={"10 events": fresh_short},
    )
    print(
        f"   {name:<8} 10 events {times['10 events'] * 1e6:8.0f} µs   "
        f"2,000 events {times['2,000 events'] * 1e6:8.0f} µs   ratio {ratio:.2f}×"
        + ("  (cold)" if cold else "")
    )
    store.close()
    return ratio


# -- 3. 100,000 incidents in SQLite ------------------------------------------------------


def many_incidents(folder: Path, count: int) -> float:
    """Fill a database with ``count`` incidents (0.5 % open, 10 % P1) and time list()."""
    # Like a database used for years: nearly every incident closed, a few hundred open.
    path = folder / "many.db"
    store = SQLiteStore(path, synchronous="NORMAL")
    severities = [Severity.P1] + [Severity.P2] * 2 + [Severity.P3] * 3 + [Severity.P4] * 4
    began = time.perf_counter()
    conn = store._conn  # one transaction for the whole fill: setup only
    conn.execute("BEGIN IMMEDIATE")
    for n in range(count):
        incident_id = f"INC-bench-{n:06d}"
        at = START - timedelta(minutes=count - n)
        declared = Event(
            incident_id,
            1,
            at,
            "alice",
            Declared(f"Incident number {n}", f"bench-{n}", severities[n % 10], "alice", False),
        )
        events = [declared]
        if n % 199:  # every 199th incident is still open
            events.append(Event(incident_id, 2, at, "alice", Dismissed("false alarm")))
        snapshot = None
        for event in events:
            snapshot = evolve(snapshot, event)
        assert snapshot is not None
        first = Commit(incident_id, 0, (declared,), evolve(None, declared))
        store._apply(conn, first, [_row(declared)], None)
        if len(events) > 1:
            rest = Commit(incident_id, 1, tuple(events[1:]), snapshot)
            store._apply(conn, rest, [_row(e) for e in events[1:]], None)
    conn.execute("COMMIT")
    store.close()
    print(f"3. SQLite, {count:,} incidents (filled in {time.perf_counter() - began:.1f} s)")

    store = SQLiteStore(path)
    query = IncidentQuery(open_only=True, severities=frozenset({Severity.P1}))
    found = store.list(query)  # warm the page cache, as a running service has it
    cold = SQLiteStore(path, cache_size=0)
    samples = []
    for _ in range(20):
        began = time.perf_counter()
        found = cold.list(query)
        samples.append(time.perf_counter() - began)
    best, median = min(samples), statistics.median(samples)
    print(
        f"   list(open_only=True, severity='P1'): {len(found)} incidents in "
        f"{median * 1e3:.1f} ms median, {best * 1e3:.1f} ms best (no snapshot cache; "
        "target ≤ 20 ms)"
    )
    print("   query plan:")
    for line in cold.explain_list(query):
        print(f"     {line}")
    cold.close()
    store.close()
    return median


def _row(event: Event) -> tuple[object, ...]:
    from incidentflow.stores.sqlite._rows import _event_row

    return _event_row(event)


# -- 4. PostgreSQL -----------------------------------------------------------------------


@contextlib.contextmanager
def postgres_schema(dsn: str, name: str) -> Iterator[str]:
    """A throwaway schema on the server at ``dsn``, dropped afterwards."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    try:
        yield name
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def postgres_vs_raw(dsn: str, batches: int, per_batch: int) -> float:
    """PostgresStore against raw psycopg doing the same work; target ≤ 1.15× (one statement).

    Raw psycopg: one transaction with a versioned UPDATE of one JSONB snapshot
    row and an INSERT of the event (JSON text prepared beforehand, as for
    SQLite), with the same server and ``synchronous_commit``. The
    straightforward way takes four round trips (BEGIN, UPDATE, INSERT, COMMIT);
    in pipeline mode, one or two; as one statement (a CTE), one. IncidentFlow
    commits with one statement (one round trip), after reading the incident's
    version (one more) unless it commits optimistically against its cached one.

    Both sides run on the same connection, borrowed from the store's pool: on a
    shared virtual machine one server process may answer in 20 µs and another in
    100 µs, which would swamp the difference being measured.
    """
    import psycopg
    from psycopg.types.json import Jsonb

    from incidentflow.stores.postgres import PostgresStore

    with postgres_schema(dsn, f"bench_{os.getpid()}") as schema:
        store = PostgresStore(dsn, schema=schema)
        flow = flow_on(store)
        incident_id = incident_with(flow, 10, "Checkout returns 500")
        snapshot_json = incident_to_json(flow.get(incident_id))
        event_json = event_to_json(flow.history(incident_id)[-1])

        pool = store._pool
        raw = pool.getconn()  # for the setup only; each command borrows it again
        raw.execute(
            f'CREATE TABLE "{schema}".raw_snapshots (id text PRIMARY KEY, version integer, '
            "body jsonb)"
        )
        raw.execute(
            f'CREATE TABLE "{schema}".raw_events (incident_id text, seq integer, type text, '
            "at timestamptz, actor text, data jsonb, UNIQUE (incident_id, seq))"
        )
        raw.execute(
            f'INSERT INTO "{schema}".raw_snapshots VALUES (%s, 0, %s)',
            (incident_id, Jsonb(snapshot_json, dumps=str)),
        )
        update = (
            f'UPDATE "{schema}".raw_snapshots SET version = %s, body = %s '
            "WHERE id = %s AND version = %s"
        )
        insert = f'INSERT INTO "{schema}".raw_events VALUES (%s, %s, %s, %s, %s, %s)'
        # The same write as one statement: one transaction, one round trip.
        combined = (
            f'WITH updated AS (UPDATE "{schema}".raw_snapshots SET version = %(next)s, '
            "body = %(body)s WHERE id = %(id)s AND version = %(version)s RETURNING id) "
            f'INSERT INTO "{schema}".raw_events SELECT id, %(next)s, %(type)s, %(at)s, '
            "%(actor)s, %(data)s FROM updated"
        )
        pool.putconn(raw)
        raw_version = [0]

        def raw_statements(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
            version = raw_version[0]
            updated = conn.execute(
                update, (version + 1, Jsonb(snapshot_json, dumps=str), incident_id, version)
            )
            event = Jsonb(event_json, dumps=str)
            conn.execute(insert, (incident_id, version + 1, "evidence_added", START, "bob", event))
            return updated

        def raw_command() -> None:
            with pool.connection() as conn, conn.transaction():
                assert raw_statements(conn).rowcount == 1
            raw_version[0] += 1

        def raw_pipelined() -> None:
            with pool.connection() as conn, conn.pipeline() as pipeline, conn.transaction():
                updated = raw_statements(conn)
                pipeline.sync()
                assert updated.rowcount == 1
            raw_version[0] += 1

        def raw_one_statement() -> None:
            version = raw_version[0]
            params = {
                "next": version + 1,
                "body": Jsonb(snapshot_json, dumps=str),
                "id": incident_id,
                "version": version,
                "type": "evidence_added",
                "at": START,
                "actor": "bob",
                "data": Jsonb(event_json, dumps=str),
            }
            with pool.connection() as conn:
                assert conn.execute(combined, params).rowcount == 1
            raw_version[0] += 1

        current = [incident_id]

        def fresh_incident() -> None:
            current[0] = incident_with(flow, 10, f"Checkout returns 500 again {len(current)}")
            current.append("")

        def flow_command() -> None:
            flow.add_evidence(current[0], source="journalctl", content="log line", actor="bob")

        for _ in range(WARM_UP // 2):
            raw_command()
            raw_pipelined()
            raw_one_statement()
            flow_command()
        raw = pool.getconn()
        (setting,) = raw.execute("SHOW synchronous_commit").fetchone() or ("?",)
        server = raw.info.server_version
        pool.putconn(raw)
        print(
            f"4. PostgreSQL {server // 10000}.{server % 10000}, one durable add_evidence "
            f"(synchronous_commit={setting}); each ratio is the median of batch-pair ratios"
        )
        name = "IncidentFlow + PostgresStore"
        times, ratio = interleaved(
            {"raw psycopg": raw_command, name: flow_command},
            batches=batches,
            per_batch=per_batch,
            setup={name: fresh_incident},
        )
        piped, piped_ratio = interleaved(
            {"raw psycopg, pipelined": raw_pipelined, name: flow_command},
            batches=batches,
            per_batch=per_batch,
            setup={name: fresh_incident},
        )
        single, single_ratio = interleaved(
            {"raw psycopg, one statement": raw_one_statement, name: flow_command},
            batches=batches,
            per_batch=per_batch,
            setup={name: fresh_incident},
        )
        # Each comparison is its own interleaved run: fsync moves between runs, so
        # each line shows its two sides, never one run's side against another's.
        for label, found, found_ratio, note in (
            ("raw psycopg", times, ratio, "≤ 1.25×"),
            ("raw psycopg, pipelined", piped, piped_ratio, "for reference"),
            ("raw psycopg, one statement", single, single_ratio, "issue 11's anchor: ≤ 1.15×"),
        ):
            print(
                f"   {label:<27} {found[label] * 1e6:6.0f} µs, {name} {found[name] * 1e6:6.0f} µs "
                f"(medians of {batches}): ratio {found_ratio:.2f}× ({note})"
            )
        store.close()
    return ratio


def postgres_long_vs_short(dsn: str, batches: int, per_batch: int, *, cold: bool = False) -> float:
    from incidentflow.stores.postgres import PostgresStore

    with postgres_schema(dsn, f"bench_long_{os.getpid()}") as schema:
        store = PostgresStore(dsn, schema=schema)
        return long_vs_short("postgres", store, batches, per_batch, cold=cold)


def postgres_dsn(given: str | None) -> str | None:
    """The server to measure, or None (and why) when there is none or no driver."""
    dsn = given or os.environ.get("INCIDENTFLOW_TEST_POSTGRES_DSN")
    if not dsn:
        return None
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        print("   (PostgreSQL: psycopg is missing; pip install -e '.[postgres]')")
        return None
    return dsn


def fsync_latency(folder: Path, count: int = 50) -> float:
    """Median seconds for one small append plus fdatasync: what every durable commit pays."""
    samples = []
    with tempfile.NamedTemporaryFile(dir=folder) as file:
        for _ in range(count):
            began = time.perf_counter()
            file.write(b"x" * 200)
            file.flush()
            os.fdatasync(file.fileno())
            samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def claims_on_a_long_outbox(folder: Path, streams: int = 1_000, per_stream: int = 100) -> None:
    """Section 5: the median time of a claim of 10 on ``streams`` x ``per_stream`` waiting rows."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "stores"))
    from test_sqlite import LEASE, bulk_outbox  # the suite's bulk writer: one layout to keep

    path = folder / "outbox.db"
    store = SQLiteStore(path, synchronous="NORMAL")
    bulk_outbox(path, streams, per_stream)
    timings: dict[str, list[float]] = {"claim of 10": [], "nothing due": [], "delivered": []}
    claimed: list[str] = []
    for n in range(streams // 10):
        started = time.perf_counter()
        batch = store.claim(now=START, limit=10, lease=LEASE, worker=f"w{n}")
        timings["claim of 10"].append(time.perf_counter() - started)
        claimed.extend(item.id for item in batch)
    for n in range(30):
        started = time.perf_counter()
        store.claim(now=START, limit=10, lease=LEASE, worker="late")
        timings["nothing due"].append(time.perf_counter() - started)
        started = time.perf_counter()
        store.mark_delivered([claimed[n]])
        timings["delivered"].append(time.perf_counter() - started)
    store.close()
    print(f"5. SQLite outbox, {streams * per_stream:,} waiting rows in {streams:,} streams")
    for name, times in timings.items():
        print(f"   {name}: median {statistics.median(times) * 1e3:.3f} ms (target < 5 ms)")


def cold_only(postgres: str | None, batches: int) -> int:
    """Section 2 with a cold cache alone: what decoding a checkpoint costs on each store."""
    print("2. A command on an incident with 2,000 events against one with 10, cold cache")
    with tempfile.TemporaryDirectory(prefix="incidentflow-bench-") as folder:
        root = Path(folder)
        long_vs_short("sqlite", SQLiteStore(root / "cold.db"), batches, COLD_BATCH, cold=True)
        long_vs_short("jsonl", JsonlStore(root / "cold-jsonl"), batches, COLD_BATCH, cold=True)
        dsn = postgres_dsn(postgres)
        if dsn:
            postgres_long_vs_short(dsn, batches, COLD_BATCH, cold=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument(
        "--postgres",
        metavar="DSN",
        help="PostgreSQL server for sections 2 and 4 (default: $INCIDENTFLOW_TEST_POSTGRES_DSN); "
        "the benchmark works in throwaway schemas",
    )
    parser.add_argument(
        "--cold-only",
        action="store_true",
        help="section 2 with a cold cache only (every durable store), nothing else",
    )
    options = parser.parse_args()
    batches, per_batch = (10, 20) if options.quick else (40, 25)
    count = 20_000 if options.quick else 100_000
    if options.cold_only:
        return cold_only(options.postgres, batches)
    with tempfile.TemporaryDirectory(prefix="incidentflow-bench-") as folder:
        root = Path(folder)
        sqlite_vs_raw(root, batches, per_batch)
        sqlite_vs_raw(root, batches, per_batch, synchronous="NORMAL")
        print("2. A command on an incident with 2,000 events against one with 10")
        long_vs_short("memory", MemoryStore(), batches, per_batch)
        long_vs_short("sqlite", SQLiteStore(root / "long.db"), batches, per_batch)
        long_vs_short("jsonl", JsonlStore(root / "jsonl"), batches, per_batch)
        dsn = postgres_dsn(options.postgres)
        if dsn:
            postgres_long_vs_short(dsn, batches, per_batch)
        print("   the same with a cold cache (emptied before every command; target ≤ 1.5×)")
        long_vs_short("sqlite", SQLiteStore(root / "cold.db"), batches, COLD_BATCH, cold=True)
        long_vs_short("jsonl", JsonlStore(root / "cold-jsonl"), batches, COLD_BATCH, cold=True)
        if dsn:
            postgres_long_vs_short(dsn, batches, COLD_BATCH, cold=True)
        many_incidents(root, count)
        if dsn:
            postgres_vs_raw(dsn, batches, per_batch)
        else:
            print(
                "4. PostgreSQL: skipped; give a server with --postgres DSN or "
                "INCIDENTFLOW_TEST_POSTGRES_DSN (bash .ci/postgres.sh prints one)"
            )
        claims_on_a_long_outbox(root, 1_000, 20 if options.quick else 100)
    fsync = fsync_latency(Path(tempfile.gettempdir()))
    print(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "sqlite": sqlite3.sqlite_version,
                "fsync_µs": round(fsync * 1e6),
            },
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
