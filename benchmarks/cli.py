"""Command-line benchmarks: ratios from one run (issue 5, "Speed").

Run with ``python benchmarks/cli.py`` (``--quick`` for fewer runs and a
smaller metrics store). Every command runs as a real subprocess, the way a
responder runs it, with bytecode caching on (this environment may set
PYTHONDONTWRITEBYTECODE; an installed package has its bytecode compiled). It
prints:

1. ``incidentflow --help`` against ``python -c "import click"`` (what any
   click program pays before it does anything), with ``python -c "import
   incidentflow"`` shown beside them. Target ≤ 1.5×.
2. ``incidentflow list --open`` on a SQLite store of 100,000 incidents (20,000
   with ``--quick``) against ``incidentflow --help``. Target ≤ 2×.
3. ``incidentflow metrics`` over the same store: wall time and the process's
   peak resident memory. Target ≤ 2 s and ≤ 300 MB (for 100,000 incidents).

The commands of 1 and 2 run interleaved, ``--runs`` times each, and the ratio
is that of the medians. The stores are filled from real histories: a few
hundred template incidents are driven through the lifecycle by the library
(declared over a year, every severity, most of them closed as in a store used
for years: 87 % through the knowledge base, 8 % dismissed, 5 % still open),
then each template's rows are copied under new ids by SQLite itself.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from incidentflow import IncidentFlow, Severity, State
from incidentflow.stores import IncidentQuery, SQLiteStore
from incidentflow.testing import FrozenClock

START = datetime(2025, 11, 27, tzinfo=UTC)
TEMPLATES = 200

# Where incidents stand, out of 100: a store that has run for years.
_MIX = (
    [State.KB_UPDATED] * 87
    + [State.DISMISSED] * 8
    + [State.DECLARED, State.TRIAGING, State.RCA, State.FIXED, State.RESOLVED]
)


def command(*args: str) -> list[str]:
    """The ``incidentflow`` console script installed beside this Python, with ``args``."""
    script = Path(sys.executable).with_name("incidentflow")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "incidentflow", *args]


def environment() -> dict[str, str]:
    """The caller's environment with bytecode caching on and no configuration found by chance."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for name in ("INCIDENTFLOW_URL", "INCIDENTFLOW_CONFIG", "INCIDENTFLOW_ACTOR"):
        env.pop(name, None)
    return env


def run(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Run ``argv`` to completion: (wall seconds, peak resident MB). Fails loudly on error."""
    began = time.perf_counter()
    process = subprocess.Popen(
        argv, cwd=cwd, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        assert process.stderr is not None
        raise SystemExit(f"{argv} failed: {process.stderr.read().decode()}")
    if process.stderr is not None:
        process.stderr.close()
    return elapsed, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


# -- filling a store ---------------------------------------------------------------


def drive(
    flow: IncidentFlow, clock: FrozenClock, n: int, target: State, rng: random.Random
) -> None:
    """Declare template ``n`` and take it through the lifecycle as far as ``target``."""
    severity = list(Severity)[n % 4]
    title = f"Checkout latency over SLO on shard {n}"
    inc = flow.declare(title, severity=severity, commander="alice", actor="alice",
                       slug=f"tmpl{n:04d}")  # fmt: skip
    i = inc.id

    def later(low: int, high: int) -> None:
        clock.advance(minutes=rng.randrange(low, high))

    if n % 5:
        flow.record_detection(i, method="alert", actor="alice",
                              first_occurred_at=inc.declared_at - timedelta(minutes=40),
                              detected_at=inc.declared_at - timedelta(minutes=5))  # fmt: skip
    if target is State.DECLARED:
        return
    later(1, 30)
    flow.start_triage(i, actor="alice")
    if target is State.DISMISSED:
        flow.dismiss(i, reason="false alarm: a synthetic probe", actor="alice")
        return
    flow.add_evidence(i, source="journalctl", content="p99 4.2 s on shard\n" * 5, actor="bob")
    for question in ("symptom", "started_at", "scope"):
        flow.answer_triage(i, question, f"{question} as seen on the dashboard", actor="bob")
    if target is State.TRIAGING:
        return
    later(5, 120)
    flow.record_containment(i, "moved traffic to the healthy shards", actor="alice")
    flow.contain(i, actor="alice")
    flow.start_rca(i, actor="alice")
    for why in ("a slow query", "a missing index", "the migration dropped it"):
        flow.add_why(i, why, actor="alice")
    flow.set_root_cause(i, "a migration dropped an index",
                        process_gap="migrations are not checked against the query plan",
                        actor="alice")  # fmt: skip
    if target is State.RCA:
        return
    later(30, 600)
    flow.record_fix(i, "restore the index", test="test_plan_uses_index", staging_verified=True,
                    actor="alice")  # fmt: skip
    flow.record_deploy(i, ref="v1.2.3", actor="alice")
    flow.mark_fixed(i, actor="alice")
    if target is State.FIXED:
        return
    later(15, 240)
    flow.confirm_by_user(i, user="bob", actor="alice")
    flow.resolve(i, actor="alice")
    flow.add_action_item(i, "check query plans in CI", owner="carol",
                         due=date(2026, 12, 31), actor="alice")  # fmt: skip
    if target is State.RESOLVED:
        return
    later(60, 3 * 1440)
    if flow.get(i).postmortem_required:
        flow.complete_postmortem(i, summary="Checkout slowed for an hour.",
                                 root_cause="a migration dropped an index",
                                 went_well=["fast rollback"], went_poorly=["late alert"],
                                 actor="alice")  # fmt: skip
    flow.update_kb(i, symptom="checkout p99 over 4 s", early_signs="query plan changes",
                   actor="alice")  # fmt: skip


def templates(path: Path, count: int) -> list[str]:
    """A store of ``count`` template incidents; returns their slugs."""
    rng = random.Random(7)
    clock = FrozenClock(START)
    slugs = []
    with IncidentFlow(SQLiteStore(path, synchronous="NORMAL"), clock=clock) as flow:
        for n in range(count):
            clock.set(START + timedelta(seconds=rng.randrange(365 * 86_400)))
            drive(flow, clock, n, _MIX[n % len(_MIX)], rng)
            slugs.append(f"tmpl{n:04d}")
    return slugs


def fill(path: Path, count: int, template_db: Path, slugs: list[str]) -> float:
    """A store of ``count`` incidents copied from the templates; returns the seconds taken.

    The rows of ``events``, ``incidents``, ``snapshots`` and ``milestones`` are
    copied; the search index is not (nothing here searches).
    """
    began = time.perf_counter()
    SQLiteStore(path, synchronous="NORMAL").close()  # the current schema, empty
    copies = -(-count // len(slugs))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("ATTACH DATABASE ? AS template", (str(template_db),))
    # The milestone times and, from schema 8, the durations: every column but the id.
    timed = [row[1] for row in conn.execute("PRAGMA table_info(milestones)")][1:]
    conn.execute("BEGIN")
    made = 0
    for slug in slugs:
        wanted = min(copies, count - made)
        if wanted <= 0:
            break
        made += wanted
        clones = (
            "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < :copies) "
        )
        new = ":slug || '-c' || printf('%05d', n)"
        conn.execute(
            f"{clones} INSERT INTO events (incident_id, seq, type, at, actor, data, "
            f"idempotency_key, schema_version, notify) SELECT replace(incident_id, :slug, {new}), "
            f"seq, type, at, actor, replace(data, :slug, {new}), NULL, schema_version, notify "
            "FROM template.events, k WHERE incident_id LIKE '%-' || :slug",
            {"copies": wanted, "slug": slug},
        )
        conn.execute(
            f"{clones} INSERT INTO incidents (id, version, state, severity, is_open, commander, "
            "title, declared_at, updated_at, type, open_action_items, is_restricted) "
            f"SELECT replace(id, :slug, {new}), version, state, severity, is_open, commander, "
            "title, declared_at, updated_at, type, open_action_items, is_restricted "
            "FROM template.incidents, k WHERE id LIKE '%-' || :slug",
            {"copies": wanted, "slug": slug},
        )
        conn.execute(
            f"{clones} INSERT INTO snapshots SELECT replace(incident_id, :slug, {new}), version, "
            f"replace(body, :slug, {new}) FROM template.snapshots, k "
            "WHERE incident_id LIKE '%-' || :slug",
            {"copies": wanted, "slug": slug},
        )
        conn.execute(
            f"{clones} INSERT INTO snapshot_lists SELECT replace(incident_id, :slug, {new}), "
            f"name, chunk, version, count, replace(items, :slug, {new}) "
            "FROM template.snapshot_lists, k WHERE incident_id LIKE '%-' || :slug",
            {"copies": wanted, "slug": slug},
        )
        conn.execute(
            f"{clones} INSERT INTO milestones SELECT replace(incident_id, :slug, {new}), "
            f"{', '.join(timed)} FROM template.milestones, k "
            "WHERE incident_id LIKE '%-' || :slug",
            {"copies": wanted, "slug": slug},
        )
    conn.execute("COMMIT")
    conn.execute("DETACH DATABASE template")
    conn.close()
    return time.perf_counter() - began


# -- the measurements ------------------------------------------------------------------


def interleaved(sides: dict[str, list[str]], cwd: Path, runs: int) -> dict[str, float]:
    """The median wall time of each command, run in turn ``runs`` times."""
    for argv in sides.values():
        run(argv, cwd)  # write bytecode caches, warm the page cache
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(runs):
        for name, argv in sides.items():
            samples[name].append(run(argv, cwd)[0])
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    """Run the three measurements and print their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller stores")
    parser.add_argument("--runs", type=int, default=None, help="runs of each command")
    options = parser.parse_args()
    runs = options.runs or (7 if options.quick else 21)
    count = 20_000 if options.quick else 100_000

    folder = Path(tempfile.mkdtemp(prefix="incidentflow-cli-bench-"))
    try:
        template_db = folder / "templates.db"
        began = time.perf_counter()
        slugs = templates(template_db, TEMPLATES)
        print(f"{TEMPLATES} template incidents driven in {time.perf_counter() - began:.1f} s")

        big = folder / "incidents.db"
        print(f"{count:,} incidents copied in {fill(big, count, template_db, slugs):.1f} s")
        store = f"sqlite:///{big}"
        medians = interleaved(
            {
                "click": [sys.executable, "-c", "import click"],
                "import": [sys.executable, "-c", "import incidentflow"],
                "help": command("--help"),
                "list": command("--store", store, "--no-files", "list", "--open"),
            },
            folder,
            runs,
        )
        check = SQLiteStore(big)
        open_count = len(check.list(IncidentQuery(open_only=True)))
        check.close()
        print(f"\n1. incidentflow --help: {medians['help'] * 1e3:.0f} ms median of {runs}; "
              f"python -c 'import click': {medians['click'] * 1e3:.0f} ms; "
              f"python -c 'import incidentflow': {medians['import'] * 1e3:.0f} ms")  # fmt: skip
        print(f"   ratio to import click {medians['help'] / medians['click']:.2f}x "
              "(target <= 1.5x)")  # fmt: skip
        print(f"2. incidentflow list --open ({count:,} incidents, {open_count:,} open): "
              f"{medians['list'] * 1e3:.0f} ms median")  # fmt: skip
        print(f"   ratio to --help {medians['list'] / medians['help']:.2f}x (target <= 2x)")

        argv = command("--store", store, "--no-files", "metrics", "--by", "severity")
        run(argv, folder)  # warm the page cache, as a store in use has it
        results = [run(argv, folder) for _ in range(3)]
        seconds = min(r[0] for r in results)
        peak = max(r[1] for r in results)
        print(f"3. incidentflow metrics --by severity over {count:,} incidents: "
              f"{seconds:.2f} s best of 3 (target <= 2 s), peak RSS {peak:.0f} MB "
              "(target <= 300 MB)")  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
