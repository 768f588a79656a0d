"""The written files against hostile folders: planted paths, racing writers, bad folders."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from helpers import RESPONDER, drive_to
from incidentflow import IncidentFlow, StoreError
from incidentflow.render.files import write_files
from incidentflow.testing import FrozenClock

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and symlinks are POSIX")


def gotcha_names(knowledge_dir: Path) -> list[str]:
    """The file names in the KB folder, sorted."""
    return sorted(p.name for p in knowledge_dir.iterdir())


class TestPlantedGotchaPath:
    @posix_only
    def test_a_fifo_at_the_gotcha_path_does_not_block(
        self, file_flow: IncidentFlow, clock: FrozenClock, folders: tuple[Path, Path]
    ) -> None:
        """A FIFO where the gotcha goes is left alone: update_kb returns, the gotcha is dated."""
        _, knowledge_dir = folders
        knowledge_dir.mkdir(parents=True)
        fifo = knowledge_dir / "checkout-returns-500.md"
        os.mkfifo(fifo)
        done: list[str] = []
        worker = threading.Thread(
            target=lambda: done.append(drive_to(file_flow, clock, "kb_updated").state.value),
            daemon=True,
        )
        worker.start()
        worker.join(timeout=20)
        if worker.is_alive():  # unblock the writer stuck opening the FIFO, then fail
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            worker.join(timeout=5)
            pytest.fail("update_kb blocked on a FIFO planted at the gotcha's path")
        assert done == ["kb_updated"]
        assert gotcha_names(knowledge_dir) == [
            "checkout-returns-500-2026-11-27.md",
            "checkout-returns-500.md",
        ]
        assert fifo.is_fifo()

    @posix_only
    def test_a_link_to_dev_zero_is_not_read(self, tmp_path: Path) -> None:
        """A symlink to /dev/zero at the gotcha path is not followed: no MemoryError from render."""
        script = f"""
import os, resource, sys
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).parent)!r})
from helpers import START, drive_to
from incidentflow import IncidentFlow
from incidentflow.testing import FrozenClock
kb = Path({str(tmp_path)!r}) / "kb"
kb.mkdir()
os.symlink("/dev/zero", kb / "checkout-returns-500.md")
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
clock = FrozenClock(START)
flow = IncidentFlow.in_memory(clock=clock, knowledge_dir=kb)
inc = drive_to(flow, clock, "kb_updated")
print(sorted(p.name for p in flow.render(inc.id)))
print(os.readlink(kb / "checkout-returns-500.md"))
"""
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.split("\n")[:2] == [
            "['checkout-returns-500-2026-11-27.md']",
            "/dev/zero",
        ]

    def test_only_the_start_of_a_huge_file_is_read(
        self, file_flow: IncidentFlow, clock: FrozenClock, folders: tuple[Path, Path]
    ) -> None:
        """A huge file at the gotcha path costs a few kilobytes to inspect, not its size."""
        _, knowledge_dir = folders
        knowledge_dir.mkdir(parents=True)
        with (knowledge_dir / "checkout-returns-500.md").open("wb") as huge:
            huge.truncate(64 * 1024 * 1024)  # sparse: no disk used
        inc = drive_to(file_flow, clock, "postmortem")
        tracemalloc.start()
        try:
            file_flow.update_kb(inc.id, symptom="s", early_signs="e", actor=RESPONDER)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 8 * 1024 * 1024
        assert "checkout-returns-500-2026-11-27.md" in gotcha_names(knowledge_dir)


class TestOwnGotcha:
    def test_rerendering_without_an_incidents_folder_keeps_one_gotcha(
        self, clock: FrozenClock, tmp_path: Path
    ) -> None:
        """Without incidents_dir, later commits and render() update the gotcha, not copy it."""
        flow = IncidentFlow.in_memory(clock=clock, knowledge_dir=tmp_path / "kb")
        inc = drive_to(flow, clock, "kb_updated")
        flow.add_note(inc.id, "later note", actor=RESPONDER)
        flow.render(inc.id)
        assert gotcha_names(tmp_path / "kb") == ["checkout-returns-500.md"]

    def test_another_incidents_gotcha_is_not_taken_for_ours(
        self, clock: FrozenClock, tmp_path: Path
    ) -> None:
        """A gotcha of another incident that mentions ours in its text keeps its name."""
        kb = tmp_path / "kb"
        kb.mkdir()
        other = kb / "checkout-returns-500.md"
        mention = (
            "See INC-2026-11-27-checkout-returns-500 and [INC-2026-11-27-checkout-returns-500]"
        )
        other.write_text(
            f"# Gotcha: x\n\n**Incident:** INC-2026-01-01-other  \n\n## Symptom\n\n{mention}\n",
            encoding="utf-8",
        )
        before = other.read_text(encoding="utf-8")
        flow = IncidentFlow.in_memory(clock=clock, knowledge_dir=kb, incidents_dir=tmp_path / "i")
        drive_to(flow, clock, "kb_updated")
        assert other.read_text(encoding="utf-8") == before
        assert gotcha_names(kb) == [
            "checkout-returns-500-2026-11-27.md",
            "checkout-returns-500.md",
        ]


class TestIncidentFileNeverGoesBack:
    def test_an_older_snapshot_does_not_replace_a_newer_file(
        self, file_flow: IncidentFlow, clock: FrozenClock, folders: tuple[Path, Path]
    ) -> None:
        """Writing version n after version n+1 leaves the file at n+1."""
        incidents_dir, knowledge_dir = folders
        old = drive_to(file_flow, clock, "triaging")
        new = file_flow.add_note(old.id, "the newer note", actor=RESPONDER)
        write_files(old, (), incidents_dir, knowledge_dir)
        text = (incidents_dir / f"{new.id}.md").read_text(encoding="utf-8")
        assert "the newer note" in text
        assert f"version {new.version} " in text

    def test_two_racing_writers_leave_the_newest_file(
        self,
        file_flow: IncidentFlow,
        clock: FrozenClock,
        folders: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The writer of the older version paused before its rename does not win the race."""
        incidents_dir, _ = folders
        inc = drive_to(file_flow, clock, "triaging")
        real_replace = os.replace
        slow_in_rename = threading.Event()

        def replace(src: str, dst: str) -> None:
            if threading.current_thread().name == "slow":
                slow_in_rename.set()
                time.sleep(0.5)  # the scheduler pauses this writer between render and rename
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        slow = threading.Thread(
            target=lambda: file_flow.add_note(inc.id, "SLOW note", actor=RESPONDER), name="slow"
        )
        slow.start()
        assert slow_in_rename.wait(timeout=10)
        fast = file_flow.add_note(inc.id, "FAST note", actor=RESPONDER)
        slow.join(timeout=10)
        text = (incidents_dir / f"{inc.id}.md").read_text(encoding="utf-8")
        assert file_flow.get(inc.id).version == fast.version
        assert "FAST note" in text
        assert f"version {fast.version} " in text


class TestFolderErrors:
    def test_a_folder_below_a_file_is_a_store_error(
        self, clock: FrozenClock, tmp_path: Path
    ) -> None:
        """render() into a path below a regular file raises StoreError naming the setting."""
        (tmp_path / "afile").write_text("", encoding="utf-8")
        flow = IncidentFlow.in_memory(clock=clock, incidents_dir=tmp_path / "afile" / "inc")
        inc = flow.declare("Checkout returns 500", severity="P3", commander="a", actor="a")
        with pytest.raises(StoreError, match="incidents_dir") as caught:
            flow.render(inc.id)
        assert isinstance(caught.value.__cause__, OSError)
        assert inc.id in str(caught.value)

    def test_a_knowledge_folder_that_is_a_file_is_a_store_error(
        self, clock: FrozenClock, tmp_path: Path
    ) -> None:
        """A knowledge_dir that is a file makes render() raise StoreError naming knowledge_dir."""
        (tmp_path / "kb").write_text("", encoding="utf-8")
        flow = IncidentFlow.in_memory(clock=clock, knowledge_dir=tmp_path / "kb")
        inc = drive_to(flow, clock, "kb_updated")  # the failing write after a commit is logged
        with pytest.raises(StoreError, match="knowledge_dir"):
            flow.render(inc.id)

    def test_a_read_only_folder_is_a_store_error(
        self, file_flow: IncidentFlow, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A folder that refuses the rename (read-only file system) raises StoreError."""
        inc = drive_to(file_flow, clock, "triaging")

        def read_only(src: object, dst: object) -> None:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))

        monkeypatch.setattr(os, "replace", read_only)
        after = file_flow.add_note(inc.id, "committed anyway", actor=RESPONDER)
        assert after.notes[-1].text == "committed anyway"
        with pytest.raises(StoreError, match="Read-only file system"):
            file_flow.render(inc.id)


class TestDeviceNames:
    @pytest.mark.parametrize("title", ["NUL", "con", "Aux", "COM1", "lpt9", "prn"])
    def test_a_device_name_gets_a_suffix(
        self, clock: FrozenClock, tmp_path: Path, title: str
    ) -> None:
        """A gotcha whose slug Windows reserves for a device is written, and rewritten, suffixed."""
        flow = IncidentFlow.in_memory(
            clock=clock, incidents_dir=tmp_path / "i", knowledge_dir=tmp_path / "kb"
        )
        inc = drive_to(flow, clock, "kb_updated", texts={"title": title})
        flow.render(inc.id)
        assert gotcha_names(tmp_path / "kb") == [f"{title.lower()}-gotcha.md"]


class TestModes:
    """Files people read get what open() would give them, not a temporary file's 0600."""

    def test_new_files_follow_the_umask_and_replaced_ones_keep_theirs(self, tmp_path: Path) -> None:
        import stat

        from incidentflow.render.files import new_file_mode

        old = os.umask(0o027)
        try:
            assert new_file_mode() == 0o640
            flow = IncidentFlow.in_memory(
                incidents_dir=tmp_path / "incidents", knowledge_dir=tmp_path / "kb"
            )
            inc = flow.declare("Disk full", severity="P4", commander="a", actor="a")
            path = flow.incident_path(inc.id)
            assert path is not None
            assert stat.S_IMODE(path.stat().st_mode) == 0o640
            path.chmod(0o664)
            flow.add_note(inc.id, "looking", actor="a")
            assert stat.S_IMODE(path.stat().st_mode) == 0o664
        finally:
            os.umask(old)
