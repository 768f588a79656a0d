"""Writing the rendered files atomically, strictly inside their folders.

Whatever is already at a target is not trusted: it is opened without following
a link or waiting on a FIFO, read only if it is a regular file, and only a few
kilobytes of it. Each folder is locked while a file in it is compared and
replaced, so two writers cannot put an older snapshot over a newer one.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from .._events import Event
from .._model import Incident
from ..exceptions import StoreError, ValidationError
from .markdown import render_gotcha, render_incident

__all__ = ["gotcha_file_name", "new_file_mode", "safe_file_name", "write_atomic", "write_files"]

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,80}\Z")

#: Names Windows gives to devices, whatever the extension: ``nul.md`` is ``NUL``.
_DEVICE_NAMES = frozenset(
    ["con", "prn", "aux", "nul"] + [f"{port}{n}" for port in ("com", "lpt") for n in range(10)]
)

#: How much of an existing gotcha is read to find whose it is (its third line says).
_HEAD_BYTES = 64 * 1024
#: How much of the end of an existing incident file is read to find its version.
_TAIL_BYTES = 512

_READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block the open
    | getattr(os, "O_NOCTTY", 0)
)

_STAMP = re.compile(
    r"<!-- incidentflow: (?P<id>[A-Za-z0-9-]+) version (?P<version>\d+)"
    r" declared (?P<declared>\S+) -->\s*\Z"
)

# Without flock (Windows) the writers of one process still take turns.
_PROCESS_LOCK = threading.Lock()


def safe_file_name(name: object) -> str:
    """``name`` if it is a plain file name (letters, digits, dashes), else ValidationError."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name):
        raise ValidationError(
            "incident_id", f"{name!r} is not an incident id such as 'INC-2026-11-27-db-down'"
        )
    return name


def gotcha_file_name(slug: str) -> str:
    """The file name (without ``.md``) a gotcha with ``slug`` starts from.

    A slug Windows reserves for a device gets a suffix, so the KB folder can be
    checked out and written there too:

    >>> gotcha_file_name("checkout-returns-500"), gotcha_file_name("NUL")
    ('checkout-returns-500', 'NUL-gotcha')
    """
    return f"{slug}-gotcha" if slug.lower() in _DEVICE_NAMES else slug


def write_atomic(folder: Path, name: str, text: str) -> Path:
    """Write ``folder/name.md`` through a temporary file and a rename.

    Readers see the old file or the new one, never half of one. ``name`` must be
    a plain file name: letters, digits and dashes. Raises OSError if the folder
    cannot be made or written.
    """
    safe_file_name(name)
    with _folder_locked(folder):
        return _replace(folder, name, text)


def write_files(
    incident: Incident,
    history: Sequence[Event],
    incidents_dir: Path | None,
    knowledge_dir: Path | None,
) -> list[Path]:
    """Write the incident file and, once it exists, the KB gotcha. Returns the paths.

    An incident file already stamped with a later version of the incident is
    left as it is. Raises StoreError if a folder cannot be written.
    """
    written = []
    incident_file = None
    if incidents_dir is not None:
        text = _stamped(incident, render_incident(incident, history))
        with _writing(incident, "incidents_dir", incidents_dir), _folder_locked(incidents_dir):
            name = safe_file_name(incident.id)
            incident_file = incidents_dir / f"{name}.md"
            if not _newer_on_disk(incident_file, incident):
                _replace(incidents_dir, name, text)
        written.append(incident_file)
    if knowledge_dir is not None and incident.kb_entry is not None:
        link = None
        if incident_file is not None:
            link = Path(os.path.relpath(incident_file, knowledge_dir)).as_posix()
        text = render_gotcha(incident, link)
        with _writing(incident, "knowledge_dir", knowledge_dir), _folder_locked(knowledge_dir):
            # Chosen under the lock: two incidents cannot both take the same name.
            name = _gotcha_name(knowledge_dir, incident)
            written.append(_replace(knowledge_dir, name, text))
    return written


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0o666 less the process's umask.

    Read from ``/proc/self/status`` (setting the umask to read it would change it
    for every thread meanwhile); 0o644 where that is not available.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o644


def _replace(folder: Path, name: str, text: str) -> Path:
    """Replace ``folder/name.md`` with ``text`` whole; the caller holds the folder's lock.

    A file replaced keeps its permissions; a new one gets what ``open()`` would
    give it, not the owner-only mode of a temporary file.
    """
    target = folder / f"{safe_file_name(name)}.md"
    try:
        found = target.lstat()
        mode = stat.S_IMODE(found.st_mode) if stat.S_ISREG(found.st_mode) else new_file_mode()
    except FileNotFoundError:
        mode = new_file_mode()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


@contextlib.contextmanager
def _folder_locked(folder: Path) -> Iterator[None]:
    """Make ``folder`` if needed and hold its lock: one writer at a time, across processes.

    The lock is taken on the folder itself, so it leaves no file behind.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if sys.platform == "win32":
        with _PROCESS_LOCK:
            yield
        return
    import fcntl

    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def _writing(incident: Incident, setting: str, folder: Path) -> Iterator[None]:
    """Turn a failure to write in ``folder`` into a StoreError saying what to change."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise StoreError(
            f"{incident.id}: cannot write its file in {setting} {folder}: "
            f"{exc.strerror or exc}{where}; make {folder} a folder this process can write, "
            f"or set {setting} to one"
        ) from exc


def _stamped(incident: Incident, text: str) -> str:
    """``text`` with the incident's version stamped on a last, invisible line."""
    declared = _declared(incident)
    stamp = f"<!-- incidentflow: {incident.id} version {incident.version} declared {declared} -->"
    return f"{text.rstrip()}\n\n{stamp}\n"


def _declared(incident: Incident) -> str:
    # To the second: a store that keeps less precision still stamps the same text.
    return incident.declared_at.isoformat(timespec="seconds")


def _newer_on_disk(path: Path, incident: Incident) -> bool:
    """Whether ``path`` holds a later version of ``incident`` than the one at hand."""
    tail = _peek(path, _TAIL_BYTES, from_end=True)
    found = _STAMP.search(tail) if tail else None
    if found is None or found["id"] != incident.id:
        return False
    # The same id declared at another time (a store started afresh) is not newer.
    return found["declared"] == _declared(incident) and int(found["version"]) > incident.version


def _gotcha_name(knowledge_dir: Path, incident: Incident) -> str:
    """The gotcha's file name: its slug, dated if something not its own is there."""
    assert incident.kb_entry is not None
    name = gotcha_file_name(incident.kb_entry.slug)
    path = knowledge_dir / f"{name}.md"
    if not os.path.lexists(path):
        return name
    head = _peek(path, _HEAD_BYTES)
    # The line saying which incident the gotcha is of, with or without a link.
    own = re.compile(
        rf"^\*\*Incident:\*\* (?:\[{re.escape(incident.id)}\]\(|{re.escape(incident.id)} *$)",
        re.MULTILINE,
    )
    if head is not None and own.search(head):
        return name
    return f"{name}-{incident.declared_at:%Y-%m-%d}"


def _peek(path: Path, limit: int, *, from_end: bool = False) -> str | None:
    """Up to ``limit`` bytes of the regular file at ``path``, from its start or its end.

    None if no regular file is there: a link, a FIFO, a device or a folder is
    neither followed nor read, and nor is a file that cannot be opened.
    """
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        opened = os.fstat(fd)
        # Checked again on what was opened: the path may have been swapped meanwhile.
        if not stat.S_ISREG(opened.st_mode):
            return None
        if from_end and opened.st_size > limit:
            os.lseek(fd, opened.st_size - limit, os.SEEK_SET)
        data = os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace")
