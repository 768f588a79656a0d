"""Nothing a collector's command started outlives the collection: not in its group, not setsid."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from incidentflow.collectors import Command

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or not Path("/proc/self/stat").exists(),
    reason="process groups and sessions as Linux has them",
)

#: A child that leaves the command's process group and session, then waits to be killed.
SETSID_CHILD = "import os, time; os.setsid(); time.sleep(30)"


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_gone(pid: int, within: float = 2.0) -> bool:
    """Whether ``pid`` is gone within ``within`` seconds."""
    deadline = time.monotonic() + within
    while is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def started() -> Iterator[list[int]]:
    """The pids a test's command reports; any still running at the end are killed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if is_running(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def pids_in(content: str) -> list[int]:
    return [int(line) for line in content.splitlines() if line.isdigit()]


class TestLeftInTheGroup:
    """What the command leaves running in its process group is killed when it exits."""

    def test_a_background_child_is_killed_when_the_command_exits(self, started: list[int]) -> None:
        """`cmd &` with the output redirected: the command exits at once, the child goes too."""
        command = Command(["sh", "-c", "sleep 30 >/dev/null 2>&1 </dev/null & echo $!"])
        evidence = command.collect(timeout=5)
        started += pids_in(evidence.content)
        assert len(started) == 1
        assert not evidence.timed_out
        assert evidence.exit_code == 0
        assert wait_gone(started[0])
        assert (
            "[the command exited; the processes it left running in its process group were killed]"
            in (evidence.content)
        )


class TestLeftTheGroup:
    """A child that called setsid is found and killed at the timeout, and the note says so."""

    def test_a_setsid_child_of_a_running_command_is_killed(self, started: list[int]) -> None:
        """The command is still running at the timeout; its setsid child dies with it."""
        code = (
            "import subprocess, sys, time\n"
            f"child = subprocess.Popen([sys.executable, '-c', {SETSID_CHILD!r}],\n"
            "    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(30)\n"
        )
        evidence = Command([sys.executable, "-c", code]).collect(timeout=1.5)
        started += pids_in(evidence.content)
        assert len(started) == 1
        assert evidence.timed_out
        assert wait_gone(started[0])
        assert "with 1 process it started outside the group" in evidence.content

    def test_a_setsid_child_holding_the_output_is_killed(self, started: list[int]) -> None:
        """The command exited; its setsid child kept writing to the output until the timeout."""
        code = (
            "import subprocess, sys\n"
            f"child = subprocess.Popen([sys.executable, '-c', {SETSID_CHILD!r}])\n"
            "print(child.pid, flush=True)\n"
        )
        evidence = Command([sys.executable, "-c", code]).collect(timeout=1.5)
        started += pids_in(evidence.content)
        assert len(started) == 1
        assert evidence.timed_out
        assert wait_gone(started[0])
        assert "the command had exited, and its process group was killed" in evidence.content
        assert "with 1 process it started outside the group" in evidence.content
        assert "not killed" not in evidence.content
