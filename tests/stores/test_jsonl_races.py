"""JsonlStore under racing processes and a filling disk.

One idempotency key is kept once in a whole folder, as SQLite and PostgreSQL
keep it with a UNIQUE constraint: processes racing the key on different
incidents apply it once, and every racer gets that result or the idempotency
rule's refusal, also on its retry. The racers are real processes, released at
one moment.

A disk that fills up while the store writes a file beside the histories (an
outbox record, a key record, a delivery state, the format marker) never leaves
a cut-off file behind: a short ``write`` goes on, and a write that fails raises
StoreError before the command counts as committed. A full disk cannot be made
safely here, so ``os.write`` is made to behave as one does, for the files of
the test's folder only.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import incidentflow
from incidentflow import IncidentFlow, StoreError
from incidentflow._events import NoteAdded
from incidentflow.stores import JsonlStore
from incidentflow.testing import FrozenClock
from incidentflow.testing.contract import CHECKOUT, LEASE, START, declare_commit, next_commit

RACERS = 6

#: Rounds of each race: without the key's lock, most rounds apply the key more than once.
ROUNDS = 3

KEY = "K"

#: A racer: opens the store, says "ready", runs its command when told "go", reports it as
#: JSON, then does it again when told (a client retrying with the same key).
RACER = r"""
import json, sys
from incidentflow import IncidentFlow, IncidentFlowError
from incidentflow.stores import JsonlStore
from incidentflow.testing import FrozenClock
from incidentflow.testing.contract import START, declare_commit

folder, mode, subject, key = sys.argv[1:5]
store = JsonlStore(folder)
flow = IncidentFlow(store, clock=FrozenClock(START))


def run(attempt):
    if mode == "declare":
        return flow.execute(
            "declare", title=subject, severity="P3", commander="carol", actor="carol",
            idempotency_key=key,
        )
    if mode == "note":
        return flow.execute(
            "add_note", subject, text=f"on {subject}", actor="carol", idempotency_key=key
        )
    if attempt == 0:  # mode "append": the store alone, every racer with one payload
        store.append(declare_commit(subject, key=key))
        return None
    return store.idempotency(key)  # what the flow's retry looks up, then replays


for attempt in range(2):
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        done = run(attempt)
        if done is None:
            report = {"outcome": "ok", "incident": subject, "version": 1, "replayed": False}
        elif hasattr(done, "fingerprint"):
            report = {"outcome": "ok", "incident": done.incident_id, "version": done.version,
                      "replayed": True}
        else:
            report = {"outcome": "ok", "incident": done.incident.id,
                      "version": done.incident.version, "replayed": done.replayed}
    except IncidentFlowError as exc:
        report = {"outcome": type(exc).__name__, "message": str(exc)}
    print(json.dumps(report), flush=True)
"""

#: Keeps a record for KEY, then is killed (SIGKILL) before its history is written.
KILLED_WRITER = r"""
import os, signal, sys
from incidentflow import IncidentFlow
from incidentflow.stores import JsonlStore
from incidentflow.stores.jsonl import _events
from incidentflow.testing import FrozenClock
from incidentflow.testing.contract import START

folder, subject, key = sys.argv[1:4]
flow = IncidentFlow(JsonlStore(folder), clock=FrozenClock(START))
_events._os_write = lambda fd, data: os.kill(os.getpid(), signal.SIGKILL)
flow.add_note(subject, "never written", actor="carol", idempotency_key=key)
"""


def child_environment() -> dict[str, str]:
    """The environment of a child process: it imports this incidentflow."""
    source = str(Path(incidentflow.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": source + (os.pathsep + path if path else "")}


def race(
    folder: Path, mode: str, subjects: list[str], logs: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One process per subject runs ``mode`` with KEY, all at once, then again.

    Returns each racer's report of the race and of its retry, in subject order.
    """
    logs.mkdir(exist_ok=True)
    racers = []
    for n, subject in enumerate(subjects):
        with (logs / f"racer-{n}.err").open("w") as err:
            racers.append(
                subprocess.Popen(
                    [sys.executable, "-c", RACER, str(folder), mode, subject, KEY],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    env=child_environment(),
                )
            )
    watchdog = threading.Timer(120, lambda: [racer.kill() for racer in racers])
    watchdog.start()
    try:
        rounds = []
        for _ in range(2):
            for racer in racers:
                assert racer.stdout is not None
                assert racer.stdout.readline().strip() == "ready", errors(logs)
            for racer in racers:  # released together: each waits on a readline
                assert racer.stdin is not None
                racer.stdin.write("go\n")
                racer.stdin.flush()
            reports = []
            for racer in racers:
                assert racer.stdout is not None
                line = racer.stdout.readline()
                assert line, errors(logs)
                reports.append(json.loads(line))
            rounds.append(reports)
    finally:
        watchdog.cancel()
        for racer in racers:
            for stream in (racer.stdin, racer.stdout):
                if stream is not None:
                    stream.close()
            racer.wait(timeout=60)
    assert [racer.returncode for racer in racers] == [0] * len(racers), errors(logs)
    return rounds[0], rounds[1]


def errors(logs: Path) -> str:
    """What the racers wrote to stderr, for an assertion's message."""
    return "\n".join(f"{log.name}: {log.read_text()}" for log in sorted(logs.glob("*.err")))


def keyed_events(store: JsonlStore, incident_ids: list[str]) -> dict[str, list[int]]:
    """The seqs of the events carrying KEY, per incident that has any."""
    found = {
        incident_id: [e.seq for e in store.history(incident_id) if e.idempotency_key == KEY]
        for incident_id in incident_ids
    }
    return {incident_id: seqs for incident_id, seqs in found.items() if seqs}


def assert_applied_once(
    subjects: list[str], reports: list[dict[str, Any]], retries: list[dict[str, Any]]
) -> dict[str, Any]:
    """One racer applied the command; its twins got its result; the others were refused.

    Twins are racers with the same subject (the same payload): they get the
    winner's result as a replay. Every other racer gets IdempotencyConflict. A
    retry changes nothing: the same answer, as a replay. Returns the winner's report.
    """
    applied = [r for r in reports if r["outcome"] == "ok" and not r["replayed"]]
    assert len(applied) == 1, reports
    winner = applied[0]
    won = subjects[reports.index(winner)]
    first = (winner["incident"], winner["version"])
    for subject, report, retry in zip(subjects, reports, retries, strict=True):
        if subject == won:
            assert (report["outcome"], report["incident"], report["version"]) == ("ok", *first)
            assert (retry["outcome"], retry["replayed"]) == ("ok", True), retry
            assert (retry["incident"], retry["version"]) == first
        else:
            assert report["outcome"] == "IdempotencyConflict", report
            assert retry["outcome"] == "IdempotencyConflict", retry
    return winner


class TestOneKeyAcrossIncidents:
    """Processes racing one idempotency key on different incidents keep it once."""

    def test_keyed_declares_declare_one_incident(self, tmp_path: Path) -> None:
        """Six processes declare three titles with one key: one incident, once."""
        titles = [f"Checkout returns 500 on shard {n % 3}" for n in range(RACERS)]
        for round_ in range(ROUNDS):
            folder = tmp_path / f"round-{round_}"
            JsonlStore(folder).close()  # the folder exists before the race: only commits race
            reports, retries = race(folder, "declare", titles, tmp_path / f"logs-{round_}")
            winner = assert_applied_once(titles, reports, retries)
            store = JsonlStore(folder)
            assert sorted(p.name for p in folder.glob("*.jsonl")) == [f"{winner['incident']}.jsonl"]
            record = store.idempotency(KEY)
            assert record is not None
            assert (record.incident_id, record.version) == (winner["incident"], winner["version"])

    def test_keyed_notes_on_different_incidents_apply_once(self, tmp_path: Path) -> None:
        """Six processes add a note with one key to three incidents: one note, once."""
        for round_ in range(ROUNDS):
            folder = tmp_path / f"round-{round_}"
            flow = IncidentFlow(JsonlStore(folder), clock=FrozenClock(START))
            ids = [
                flow.declare(f"Queue {n} stalls", severity="P3", commander="c", actor="c").id
                for n in range(3)
            ]
            subjects = [ids[n % 3] for n in range(RACERS)]
            reports, retries = race(folder, "note", subjects, tmp_path / f"logs-{round_}")
            winner = assert_applied_once(subjects, reports, retries)
            store = JsonlStore(folder)
            assert keyed_events(store, ids) == {winner["incident"]: [2]}
            for incident_id in ids:
                assert store.load(incident_id).version == (
                    2 if incident_id == winner["incident"] else 1
                )
            record = store.idempotency(KEY)
            assert record is not None
            assert (record.incident_id, record.version) == (winner["incident"], 2)

    def test_commits_with_one_key_and_one_payload_write_one(self, tmp_path: Path) -> None:
        """Six processes append one keyed payload to six incidents: one commit is written.

        The store alone, as the flow calls it: the others are refused with
        ConcurrencyConflict, and the retry (the flow looks the key up) finds the
        winner's record.
        """
        subjects = [f"INC-2026-11-27-shard-{n}" for n in range(RACERS)]
        for round_ in range(ROUNDS):
            folder = tmp_path / f"round-{round_}"
            JsonlStore(folder).close()
            reports, retries = race(folder, "append", subjects, tmp_path / f"logs-{round_}")
            outcomes = [report["outcome"] for report in reports]
            assert sorted(outcomes) == ["ConcurrencyConflict"] * (RACERS - 1) + ["ok"], reports
            winner = subjects[outcomes.index("ok")]
            assert {(r["incident"], r["version"]) for r in retries} == {(winner, 1)}, retries
            assert sorted(p.name for p in folder.glob("*.jsonl")) == [f"{winner}.jsonl"]
            record = JsonlStore(folder).idempotency(KEY)
            assert record is not None
            assert (record.incident_id, record.version) == (winner, 1)

    def test_a_record_left_by_a_killed_writer_is_taken_by_one_racer(self, tmp_path: Path) -> None:
        """A record whose writer was killed before its history keeps nothing; racers take it once.

        The record left behind names an incident whose history never got the
        commit: it counts for nothing, and of the racers that come after, one
        applies the key and the record then names that one.
        """
        folder = tmp_path / "incidents"
        flow = IncidentFlow(JsonlStore(folder), clock=FrozenClock(START))
        ids = [
            flow.declare(f"Queue {n} stalls", severity="P3", commander="c", actor="c").id
            for n in range(4)
        ]
        killed = subprocess.run(
            [sys.executable, "-c", KILLED_WRITER, str(folder), ids[3], KEY],
            env=child_environment(),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert list((folder / ".incidentflow" / "keys").iterdir()), "no record was left"
        store = JsonlStore(folder)
        assert store.idempotency(KEY) is None
        assert store.load(ids[3]).version == 1
        subjects = [ids[n % 3] for n in range(RACERS)]
        reports, retries = race(folder, "note", subjects, tmp_path / "logs")
        winner = assert_applied_once(subjects, reports, retries)
        store = JsonlStore(folder)
        assert keyed_events(store, ids) == {winner["incident"]: [2]}
        record = store.idempotency(KEY)
        assert record is not None
        assert (record.incident_id, record.version) == (winner["incident"], 2)


# -- a filling disk ------------------------------------------------------------------------


class FillingDisk:
    """``os.write`` as a nearly full disk has it, for the files under one folder.

    Each call writes at most ``chunk`` bytes (a short write); once ``room``
    bytes are written, a call raises ENOSPC. Writes elsewhere are untouched.
    """

    def __init__(self, folder: Path, chunk: int, room: int | None = None) -> None:
        self.folder = str(folder.resolve())
        self.chunk = chunk
        self.room = room
        self.short_writes = 0
        self._write = os.write

    def __call__(self, fd: int, data: Any) -> int:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if not target.startswith(self.folder + os.sep):
            return self._write(fd, data)
        size = min(len(data), self.chunk)
        if self.room is not None:
            if self.room <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            size = min(size, self.room)
        if size < len(data):
            self.short_writes += 1
        written = self._write(fd, bytes(memoryview(data)[:size]))
        if self.room is not None:
            self.room -= written
        return written


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to tell the store's files from others")
    return tmp_path / "incidents"


def leftovers(folder: Path) -> list[str]:
    """Temporary files anywhere in the folder: none may outlive a failed write."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.tmp"))


def records(folder: Path, sub: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (folder / ".incidentflow" / sub).iterdir()}


class TestFillingDisk:
    """A short write is carried on; a full disk fails the command and leaves no cut-off file."""

    def test_short_writes_are_written_out(
        self, folder: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Every file comes out whole when each write takes only 64 bytes."""
        disk = FillingDisk(folder, chunk=64)
        monkeypatch.setattr(os, "write", disk)
        store = JsonlStore(folder)
        first = declare_commit(notifiers=("pager", "chat"))
        store.append(first)
        note = next_commit(
            first.snapshot, NoteAdded("y" * 5_000), notifiers=("pager", "chat"), key="k"
        )
        store.append(note)
        claimed = store.claim(now=START, limit=1, lease=LEASE, worker="w")
        store.mark_failed(claimed[0].id, error="receiver down", next_attempt_at=START, dead=False)
        assert disk.short_writes > 3  # the format marker, both outbox records, key and state
        monkeypatch.undo()
        meta = folder / ".incidentflow"
        for sub in ("outbox", "keys", "index"):
            for path in (meta / sub).iterdir():
                json.loads(path.read_text(encoding="utf-8"))  # whole, or this raises
        json.loads((meta / "format.json").read_text(encoding="utf-8"))
        fresh = JsonlStore(folder)
        assert len(fresh.pending(limit=100)) == 4
        assert [item.attempts for item in fresh.pending(limit=100)].count(1) == 1
        record = fresh.idempotency("k")
        assert record is not None
        assert (record.incident_id, record.version) == (CHECKOUT, 2)

    def test_a_full_disk_fails_the_command_and_changes_nothing(
        self, folder: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """4 KiB then ENOSPC while writing the outbox record: StoreError, as if never run.

        The history line would still fit (as in the last page of its file): the
        command must fail anyway, and delivery of everything else go on.
        """
        store = JsonlStore(folder)
        first = declare_commit(notifiers=("pager",))
        store.append(first)
        history = (folder / f"{CHECKOUT}.jsonl").read_bytes()
        outbox = records(folder, "outbox")
        pending = store.pending(limit=100)
        note = next_commit(first.snapshot, NoteAdded("y" * 10_000), notifiers=("pager", "chat"))
        monkeypatch.setattr(os, "write", FillingDisk(folder, chunk=4096, room=4096))
        with pytest.raises(StoreError, match="No space left on device"):
            store.append(note)
        monkeypatch.undo()
        assert (folder / f"{CHECKOUT}.jsonl").read_bytes() == history
        assert records(folder, "outbox") == outbox
        assert leftovers(folder) == []
        fresh = JsonlStore(folder)
        assert fresh.load(CHECKOUT) == first.snapshot
        assert fresh.pending(limit=100) == pending
        assert fresh.claim(now=START, limit=100, lease=LEASE, worker="w") == list(pending)
        fresh.append(note)  # the disk has room again: the same commit goes through
        assert fresh.load(CHECKOUT) == note.snapshot
        assert len(fresh.pending(limit=100)) == len(pending) + 2

    def test_a_full_disk_while_keeping_a_key(
        self, folder: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """ENOSPC midway through the key record: StoreError, no outbox record, no key."""
        store = JsonlStore(folder)
        first = declare_commit(notifiers=("pager",))
        store.append(first)
        outbox = records(folder, "outbox")
        note = next_commit(first.snapshot, notifiers=("pager",), key="k" * 3_000)
        outbox_size = 2_000  # room for the small outbox record, not for the long key's record
        monkeypatch.setattr(os, "write", FillingDisk(folder, chunk=512, room=outbox_size))
        with pytest.raises(StoreError, match="free some disk space"):
            store.append(note)
        monkeypatch.undo()
        assert records(folder, "outbox") == outbox
        assert records(folder, "keys") == {}
        assert leftovers(folder) == []
        assert JsonlStore(folder).load(CHECKOUT) == first.snapshot
        assert JsonlStore(folder).idempotency("k" * 3_000) is None

    def test_a_new_folder_on_a_full_disk_is_refused_and_left_openable(
        self, folder: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The format marker is written whole or not at all."""
        monkeypatch.setattr(os, "write", FillingDisk(folder, chunk=5, room=5))
        with pytest.raises(StoreError, match="format marker"):
            JsonlStore(folder)
        monkeypatch.undo()
        assert not (folder / ".incidentflow" / "format.json").exists()
        assert leftovers(folder) == []
        JsonlStore(folder).append(declare_commit())
        assert JsonlStore(folder).load(CHECKOUT).version == 1
