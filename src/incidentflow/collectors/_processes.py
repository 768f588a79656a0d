"""Ending what a collector's command started: its process group, and what left the group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys


def kill_group(proc: subprocess.Popen[bytes]) -> bool:
    """Kill the command's process group; True if anything was left in it to kill."""
    if sys.platform == "win32":
        alive = proc.poll() is None
        proc.kill()
        return alive
    try:
        # The group keeps the leader's pid reserved while it has members, even once reaped.
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False  # nothing is left in the group
    except OSError:  # pragma: no cover - defensive: the leader changed group
        proc.kill()
        return True
    running = _runs_in_group(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return running


def _runs_in_group(group: int) -> bool:
    """Whether a live process (not a zombie) is in the group; True where /proc is missing."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if entry.isdigit():
            fields = _stat(int(entry))
            if len(fields) > 2 and fields[0] not in ("Z", "X") and fields[2] == str(group):
                return True
    return False


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().decode("ascii", "replace").rpartition(")")[2].split()
    except OSError:
        return []  # it exited while we looked


def _start_time(pid: int) -> str | None:
    """A process's start time (Linux, from /proc), to tell it from a later one with its pid."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else None


def descendants(root: int) -> list[tuple[int, str]]:
    """Every live descendant of ``root`` with its start time; empty where /proc is missing."""
    children: dict[int, list[tuple[int, str]]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        fields = _stat(int(entry)) if entry.isdigit() else []
        if len(fields) > 19:
            children.setdefault(int(fields[1]), []).append((int(entry), fields[19]))
    found: list[tuple[int, str]] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def kill_escaped(processes: list[tuple[int, str]], group: int) -> int:
    """Kill the descendants that left the command's group (setsid); how many were killed."""
    killed = 0
    for pid, started in dict.fromkeys(processes):
        try:
            if os.getpgid(pid) == group or _start_time(pid) != started:
                continue  # killed with the group, or gone and its pid reused
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue
        killed += 1
    return killed


def pipe_holders(pipes: set[int]) -> list[tuple[int, str]]:
    """Other processes holding one of these pipes (by inode) open, with their start times.

    A process that left the command's group and outlived the command is no longer
    its descendant; if it still writes to the command's output, this finds it.
    Empty where /proc is missing.
    """
    links = {f"pipe:[{inode}]" for inode in pipes}
    found: list[tuple[int, str]] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            held = any(
                os.readlink(f"/proc/{entry}/fd/{fd}") in links and _writes(int(entry), fd)
                for fd in os.listdir(f"/proc/{entry}/fd")
            )
        except OSError:
            continue  # it exited, or is not ours to look at
        started = _start_time(int(entry))
        if held and started is not None:
            found.append((int(entry), started))
    return found


def _writes(pid: int, fd: str) -> bool:
    """The descriptor is a pipe's write end (a fork of ours holding the read end is spared)."""
    with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as info:
        for line in info:
            if line.startswith("flags:"):
                return int(line.split()[1], 8) & os.O_ACCMODE != os.O_RDONLY
    return False
