"""JsonlStore passes the store contract, plus what only the files do."""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from incidentflow import IncidentFlow, IncidentNotFound, StoreError, ValidationError
from incidentflow._decide import replay
from incidentflow._events import NoteAdded
from incidentflow.stores import IncidentQuery, JsonlStore, OutboxItem, Store
from incidentflow.stores import jsonl as jsonl_module
from incidentflow.testing import (
    EventStoreContract,
    FrozenClock,
    OutboxContract,
    QueryIndexContract,
)
from incidentflow.testing.contract import (
    CHECKOUT,
    LEASE,
    START,
    announced,
    declare_commit,
    item_id,
    next_commit,
    with_notes,
    write,
)


class TestJsonlStore(EventStoreContract, OutboxContract, QueryIndexContract):
    """The contract, in JSON Lines files."""

    def make_store(self, tmp_path: Path) -> Store:
        return JsonlStore(tmp_path / "incidents")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "incidents"


@pytest.fixture
def store(folder: Path) -> JsonlStore:
    return JsonlStore(folder)


def history_file(folder: Path, incident_id: str = CHECKOUT) -> Path:
    return folder / f"{incident_id}.jsonl"


class TestLayout:
    def test_one_history_file_per_incident(self, store: JsonlStore, folder: Path) -> None:
        """Each incident is one .jsonl file, one JSON event per line, seq 1..n."""
        with_notes(store, 2)
        lines = history_file(folder).read_text(encoding="utf-8").splitlines()
        values = [json.loads(line) for line in lines]
        assert [v["seq"] for v in values] == [1, 2, 3]
        assert [v["type"] for v in values] == ["declared", "note_added", "note_added"]
        marker = json.loads((folder / ".incidentflow" / "format.json").read_text())
        assert marker["format"] == jsonl_module.FORMAT_VERSION

    def test_history_beside_the_markdown_file(self, folder: Path) -> None:
        """With the incidents folder as the store, INC-….jsonl sits beside INC-….md."""
        clock = FrozenClock(START)
        flow = IncidentFlow(JsonlStore(folder), clock=clock, incidents_dir=folder)
        inc = flow.declare("Checkout returns 500", severity="P1", commander="alice", actor="a")
        assert (folder / f"{inc.id}.jsonl").exists()
        assert (folder / f"{inc.id}.md").exists()
        assert [i.id for i in flow.list()] == [inc.id]

    def test_a_commit_is_one_write(self, store: JsonlStore, folder: Path) -> None:
        """Every line of a commit names the commit and its last seq."""
        declared = write(store, declare_commit())
        store.append(next_commit(declared, NoteAdded("a"), NoteAdded("b")))
        lines = [json.loads(x) for x in history_file(folder).read_text().splitlines()]
        assert lines[1]["commit"] == lines[2]["commit"]
        assert lines[1]["commit"]["last"] == 3
        assert lines[0]["commit"]["id"] != lines[1]["commit"]["id"]


class TestCrashes:
    def test_torn_last_line_is_ignored(self, store: JsonlStore, folder: Path) -> None:
        """A last line cut short by a crash is ignored, then cut off by the next commit."""
        snapshot = with_notes(store, 2)
        with history_file(folder).open("ab") as f:
            f.write(b'{"incident_id":"' + CHECKOUT.encode() + b'","seq":4,"ty')
        fresh = JsonlStore(folder)
        assert fresh.load(CHECKOUT) == snapshot
        assert len(fresh.history(CHECKOUT)) == 3
        after = write(fresh, next_commit(snapshot, NoteAdded("after the crash")))
        assert JsonlStore(folder).load(CHECKOUT) == after
        assert replay(JsonlStore(folder).history(CHECKOUT)) == after

    def test_incomplete_commit_is_ignored(self, store: JsonlStore, folder: Path) -> None:
        """The first lines of a commit whose last line never made it count for nothing."""
        snapshot = with_notes(store, 1)
        commit = next_commit(snapshot, NoteAdded("one"), NoteAdded("two"), NoteAdded("three"))
        store.append(commit)
        lines = history_file(folder).read_bytes().splitlines(keepends=True)
        history_file(folder).write_bytes(b"".join(lines[:-1]))  # lose the commit's last line
        fresh = JsonlStore(folder)
        assert fresh.load(CHECKOUT) == snapshot
        assert [e.seq for e in fresh.history(CHECKOUT)] == [1, 2]
        retried = write(fresh, next_commit(snapshot, NoteAdded("retried")))
        assert [e.seq for e in JsonlStore(folder).history(CHECKOUT)] == [1, 2, 3]
        assert JsonlStore(folder).load(CHECKOUT) == retried

    def test_stale_index_and_checkpoint_are_rebuilt(self, store: JsonlStore, folder: Path) -> None:
        """An index entry or checkpoint older than the history (a crash) is not trusted."""
        first = with_notes(store, 1)
        meta = folder / ".incidentflow"
        saved = {p: p.read_bytes() for p in meta.glob("*/*.json")}
        latest = write(
            store, next_commit(first, NoteAdded("after the index"), NoteAdded("and more"))
        )
        for path, data in saved.items():
            path.write_bytes(data)  # as if the process died before refreshing them
        fresh = JsonlStore(folder)
        assert fresh.load(CHECKOUT) == latest
        assert fresh.list(IncidentQuery()) == [latest]

    def test_missing_index_is_rebuilt(self, store: JsonlStore, folder: Path) -> None:
        """Deleting the index and checkpoints loses nothing; rebuild_index() restores them."""
        snapshot = with_notes(store, 20)
        shutil.rmtree(folder / ".incidentflow" / "index")
        shutil.rmtree(folder / ".incidentflow" / "snapshots")
        fresh = JsonlStore(folder)
        assert fresh.list(IncidentQuery(open_only=True)) == [snapshot]
        assert fresh.rebuild_index() == 1
        assert (folder / ".incidentflow" / "snapshots" / f"{CHECKOUT}.json").exists()
        assert JsonlStore(folder).load(CHECKOUT) == snapshot

    def test_damaged_checkpoint_is_ignored(self, store: JsonlStore, folder: Path) -> None:
        """A checkpoint that is not JSON or does not fit the history is replaced by replay."""
        snapshot = with_notes(store, 3)
        checkpoint = folder / ".incidentflow" / "snapshots" / f"{CHECKOUT}.json"
        checkpoint.write_text("{not json", encoding="utf-8")
        assert JsonlStore(folder).load(CHECKOUT) == snapshot
        checkpoint.write_text(
            json.dumps({"format": 1, "offset": 5, "version": 1, "snapshot": {}}),
            encoding="utf-8",
        )
        assert JsonlStore(folder).load(CHECKOUT) == snapshot

    def test_outbox_record_of_an_uncommitted_commit_is_dropped(
        self, store: JsonlStore, folder: Path
    ) -> None:
        """An outbox record whose commit never reached the history is never delivered."""
        snapshot = write(store, declare_commit())
        orphan = {
            "commit": "f" * 32,
            "incident_id": CHECKOUT,
            "offset": history_file(folder).stat().st_size,
            "first": 2,
            "last": 2,
            "items": [],
        }
        path = folder / ".incidentflow" / "outbox" / "00000000000000000001-orphan.json"
        path.write_text(json.dumps(orphan), encoding="utf-8")
        store.append(next_commit(snapshot, outbox=True))
        assert [item.id for item in store.pending()] == [f"{CHECKOUT}:2"]
        assert not path.exists()

    def test_key_of_an_uncommitted_commit_is_not_reported(
        self, store: JsonlStore, folder: Path
    ) -> None:
        """An idempotency record whose commit never reached the history is ignored."""
        snapshot = write(store, declare_commit())
        commit = next_commit(snapshot, key="k")
        assert commit.idempotency is not None
        store._write_intents(commit, "e" * 32, history_file(folder).stat().st_size)
        assert store.idempotency("k") is None
        store.append(commit)
        assert store.idempotency("k") == commit.idempotency


class TestPaths:
    @pytest.mark.parametrize(
        "incident_id", ["../escape", "a/b", ".hidden", "", "INC\x00x", "C:\\evil", "-dash"]
    )
    def test_unsafe_ids_never_reach_the_disk(
        self, store: JsonlStore, tmp_path: Path, incident_id: str
    ) -> None:
        """An id that is not letters, digits and dashes never becomes a path.

        Writing it is refused; reading it finds nothing (no stored incident can have it).
        """
        before = sorted(p.name for p in tmp_path.rglob("*"))
        with pytest.raises(ValidationError):
            store.append(declare_commit(incident_id))
        with pytest.raises(IncidentNotFound):
            store.load(incident_id)
        with pytest.raises(IncidentNotFound):
            store.history(incident_id)
        assert not store.exists(incident_id)
        assert sorted(p.name for p in tmp_path.rglob("*")) == before

    def test_symlinked_history_is_refused(
        self, store: JsonlStore, folder: Path, tmp_path: Path
    ) -> None:
        """A history file that is a symlink is not followed."""
        from incidentflow import StoreError

        target = tmp_path / "elsewhere.jsonl"
        target.write_text("", encoding="utf-8")
        os.symlink(target, history_file(folder))
        with pytest.raises(StoreError):
            store.append(declare_commit())
        assert target.read_text(encoding="utf-8") == ""


def outbox_folder(folder: Path) -> Path:
    return folder / ".incidentflow" / "outbox"


class TestOutbox:
    def test_delivery_state_sits_beside_the_commits_outbox_file(
        self, store: JsonlStore, folder: Path
    ) -> None:
        """Claims and failures go to <record>.state; both files go once all is delivered."""
        announced(store, 1, notifiers=("pager", "slack"))
        (record,) = outbox_folder(folder).glob("*.json")
        before = record.read_bytes()
        store.claim(now=START, limit=10, lease=LEASE, worker="worker-1")
        state_file = record.with_suffix(".state")
        state = json.loads(state_file.read_text(encoding="utf-8"))["items"]
        assert state[item_id(1)]["claimed_by"] == "worker-1"
        retry_at = START + timedelta(minutes=1)
        store.mark_failed(item_id(1), error="HTTP 500", next_attempt_at=retry_at, dead=False)
        state = json.loads(state_file.read_text(encoding="utf-8"))["items"]
        assert state[item_id(1)]["attempts"] == 1
        assert "claimed_by" not in state[item_id(1)]
        assert record.read_bytes() == before  # the record itself is never rewritten
        store.mark_delivered([item_id(1, "slack")])
        assert record.exists()
        store.mark_delivered([item_id(1)])
        assert sorted(outbox_folder(folder).iterdir()) == []

    def test_format_1_folder_is_upgraded_and_its_outbox_delivered(self, folder: Path) -> None:
        """A folder of format 1 (items without a notifier, no state files) opens and delivers."""
        old = JsonlStore(folder)
        commit = declare_commit(outbox=True)
        old.append(commit)
        (record,) = outbox_folder(folder).glob("*.json")
        value = json.loads(record.read_text(encoding="utf-8"))
        value["items"] = [{"id": i["id"], "event": i["event"]} for i in value["items"]]
        record.write_text(json.dumps(value), encoding="utf-8")
        marker = folder / ".incidentflow" / "format.json"
        marker.write_text('{"format": 1}', encoding="utf-8")

        store = JsonlStore(folder)
        assert json.loads(marker.read_text())["format"] == jsonl_module.FORMAT_VERSION
        assert store.load(CHECKOUT) == commit.snapshot
        assert store.pending() == [OutboxItem(f"{CHECKOUT}:1", commit.events[0])]
        (claimed,) = store.claim(now=START, limit=10, lease=LEASE, worker="worker-1")
        assert (claimed.id, claimed.notifier) == (f"{CHECKOUT}:1", "")

    def test_state_left_without_its_record_is_swept(self, store: JsonlStore, folder: Path) -> None:
        """A state file whose record is gone (a crash between the two deletes) is removed."""
        announced(store, 1)
        orphan = outbox_folder(folder) / "00000000000000000001-gone.state"
        orphan.write_text('{"format": 2, "items": {}}', encoding="utf-8")
        assert [i.id for i in store.claim(now=START, limit=10, lease=LEASE, worker="w")] == [
            item_id(1)
        ]
        assert not orphan.exists()

    def test_damaged_state_file_names_itself(self, store: JsonlStore, folder: Path) -> None:
        """A state file that is not JSON gives a StoreError naming it and how to reset it."""
        announced(store, 1)
        store.claim(now=START, limit=10, lease=LEASE, worker="w")
        (state_file,) = outbox_folder(folder).glob("*.state")
        state_file.write_text("{not json", encoding="utf-8")
        with pytest.raises(StoreError, match="delete the file") as caught:
            store.claim(now=START + LEASE, limit=10, lease=LEASE, worker="w")
        assert state_file.name in str(caught.value)

    def test_claims_with_many_commits_waiting(self, store: JsonlStore) -> None:
        """200 waiting commits in 20 streams: one claim hands out each stream's head, once."""
        for n in range(20):
            announced(store, 10, f"INC-2026-11-27-many-{n}")
        claimed = store.claim(now=START, limit=100, lease=LEASE, worker="w")
        assert sorted(i.id for i in claimed) == sorted(
            item_id(1, incident_id=f"INC-2026-11-27-many-{n}") for n in range(20)
        )
        assert store.claim(now=START, limit=100, lease=LEASE, worker="other") == []


class TestTemporaryFiles:
    """Snapshot and index files are replaced through temporary files nobody can hijack."""

    def test_a_symlink_at_the_temporary_name_is_not_followed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A link planted where the temporary file goes is skipped; its target is untouched."""
        from incidentflow.stores.jsonl import _folder

        victim = tmp_path / "victim.txt"
        victim.write_text("keep me", encoding="utf-8")
        store = JsonlStore(tmp_path / "store")
        tokens = iter(["0" * 16, "1" * 16])
        monkeypatch.setattr(_folder.secrets, "token_hex", lambda n: next(tokens))
        target = tmp_path / "store" / "out.json"
        (tmp_path / "store" / f".out.json.{os.getpid()}.{'0' * 16}.tmp").symlink_to(victim)
        store._write_atomic(target, "written", durable=False)
        assert victim.read_text(encoding="utf-8") == "keep me"
        assert target.read_text(encoding="utf-8") == "written"
        store.close()

    def test_strays_of_dead_processes_are_removed_on_opening(self, tmp_path: Path) -> None:
        """A temporary file a killed process left behind is gone once the store opens again."""
        folder = tmp_path / "store"
        JsonlStore(folder).close()
        dead = folder / ".INC-2026-11-27-x.jsonl.999999999.0123456789abcdef.tmp"
        dead.write_text("half", encoding="utf-8")
        live = folder / f".INC-2026-11-27-y.jsonl.{os.getpid()}.fedcba9876543210.tmp"
        live.write_text("being written", encoding="utf-8")
        mine = folder / "notes.tmp"  # not the store's: never touched
        mine.write_text("mine", encoding="utf-8")
        JsonlStore(folder).close()
        assert not dead.exists()
        assert live.exists()
        assert mine.exists()
