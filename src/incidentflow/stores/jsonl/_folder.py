"""The folder a JsonlStore keeps: its layout, locks, atomic writes and reading a history."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..._model import Incident, Reference
from ...exceptions import (
    IncidentNotFound,
    StoreError,
    ValidationError,
)
from .._paths import cache_size as _cache_size
from .._paths import store_path
from .._records import OutboxItem, has_open_action_items
from .._snapshots import (
    SnapshotCache,
    decode_snapshot,
    encode_checkpoint,
    fold_onto,
    micros,
)
from ._files import (
    _CACHE_FORMAT,
    _META,
    _NOFOLLOW,
    _SAFE_ID,
    _SUBFOLDERS,
    _SUFFIX,
    FORMAT_VERSION,
    _dumps,
    _event,
    _History,
    _parse,
    _Position,
    _pread_all,
    _sync_folder,
)


class JsonlBase:
    """The folder, its locks and the reading of histories, shared by every part of the store."""

    def __init__(self, directory: str | os.PathLike[str], *, cache_size: int = 256) -> None:
        self.directory = store_path(directory, option="directory", noun="folder")
        self._meta = self.directory / _META
        self._lock = threading.RLock()
        self._cache: SnapshotCache[_Position] = SnapshotCache(_cache_size(cache_size))
        self._committed_tokens: set[str] = set()
        self._outbox_cache: dict[str, list[OutboxItem]] = {}
        self._prepare()

    def __repr__(self) -> str:
        return f"JsonlStore({str(self.directory)!r})"

    def _prepare(self) -> None:
        try:
            for sub in _SUBFOLDERS:
                (self._meta / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{self.directory}: cannot create the store's folders: {exc.strerror}; "
                "check that the folder is writable"
            ) from exc
        for folder in (self.directory, self._meta, *(self._meta / sub for sub in _SUBFOLDERS)):
            _remove_strays(folder)
        marker = self._meta / "format.json"
        try:
            text = marker.read_text(encoding="utf-8")
        except FileNotFoundError:
            try:
                self._write_atomic(marker, _dumps({"format": FORMAT_VERSION}), durable=True)
            except OSError as exc:
                raise StoreError(
                    f"{marker}: cannot write the store's format marker: {exc.strerror}; "
                    "check that the folder is writable"
                ) from exc
            return
        except OSError as exc:
            raise StoreError(f"{marker}: cannot read: {exc.strerror}") from exc
        try:
            found = json.loads(text)["format"]
            if not isinstance(found, int):
                raise TypeError("format is not a number")
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{marker}: not an incidentflow format marker ({exc}); "
                "point the store at an incidentflow folder"
            ) from exc
        if found > FORMAT_VERSION:
            raise StoreError(
                f"{marker}: the folder has format {found}, newer than {FORMAT_VERSION}, the "
                "newest this release of incidentflow knows; upgrade incidentflow to open it"
            )
        for folder in (self.directory, *(self._meta / sub for sub in _SUBFOLDERS)):
            if not os.access(folder, os.W_OK):
                raise StoreError(
                    f"{folder}: the folder is read-only; the store needs to write there"
                )
        if found < FORMAT_VERSION:
            # Every older layout is readable as it is: upgrading only says so.
            try:
                self._write_atomic(marker, _dumps({"format": FORMAT_VERSION}), durable=True)
            except OSError as exc:
                raise StoreError(
                    f"{marker}: cannot upgrade the folder to format {FORMAT_VERSION}: "
                    f"{exc.strerror}; check that the folder is writable"
                ) from exc

    def _history_path(self, incident_id: str) -> Path:
        if not isinstance(incident_id, str) or not _SAFE_ID.match(incident_id):
            raise ValidationError(
                "incident_id",
                f"{incident_id!r} is not an incident id (letters, digits and '-' only)",
            )
        path = self.directory / f"{incident_id}{_SUFFIX}"
        if path.parent != self.directory:
            raise ValidationError("incident_id", f"{incident_id!r} leaves the store's folder")
        return path

    @contextlib.contextmanager
    def _flock(self, path: Path, *, shared: bool) -> Iterator[None]:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
        except OSError as exc:
            raise StoreError(f"{path}: cannot open the lock file: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _incident_lock(
        self, incident_id: str, *, shared: bool
    ) -> contextlib.AbstractContextManager[None]:
        return self._flock(self._meta / "locks" / f"{incident_id}.lock", shared=shared)

    def _references_lock(self) -> contextlib.AbstractContextManager[None]:
        """Held by every commit that may take an external reference, before its incident's lock."""
        return self._flock(self._meta / "locks" / ".references.lock", shared=False)

    def _open_holder(
        self, references: Iterable[Reference], *, excluding: str
    ) -> tuple[Reference, str] | None:
        """The first of ``references`` another open incident holds, and that incident."""
        raise NotImplementedError  # the query index (JsonlQueryIndex) answers

    def _key_lock(self, key: str) -> contextlib.AbstractContextManager[None]:
        """Held by each commit keeping ``key``: after the references lock, before the incident's.

        One of 256 lock files, picked by the key's digest: a commit keeping the
        same key waits for this one; a commit keeping another key rarely does.
        """
        stripe = self._key_path(key).name[:2]
        return self._flock(self._meta / "locks" / f".key-{stripe}.lock", shared=False)

    def _write_atomic(self, path: Path, text: str, *, durable: bool) -> None:
        """Replace ``path`` with ``text`` whole, or raise OSError and leave it as it was."""
        tmp, fd = _temporary_beside(path)
        try:
            try:
                _write_all(fd, text.encode("utf-8"))
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        if durable:
            _sync_folder(path.parent)

    def _read_history(
        self, incident_id: str, path: Path, start: int = 0, after: int = 0
    ) -> _History:
        """Parse the whole commits from byte ``start`` (just after event ``after``) to the end."""
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        except FileNotFoundError:
            return _History([], 0, 0)
        except OSError as exc:
            raise StoreError(f"{path}: cannot open: {exc.strerror}") from exc
        try:
            size = os.fstat(fd).st_size
            data = _pread_all(fd, start, size - start) if size > start else b""
        except OSError as exc:
            raise StoreError(f"{path}: cannot read: {exc.strerror}") from exc
        finally:
            os.close(fd)
        lines, end = _parse(path, incident_id, data, start, after)
        return _History(lines, end, size)

    def _current(self, incident_id: str, path: Path) -> tuple[Incident | None, int, int]:
        """The snapshot, where its whole commits end and the file's size. Lock held by caller."""
        try:
            info = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            self._cache.discard(incident_id)
            return None, 0, 0
        except OSError as exc:
            raise StoreError(f"{path}: cannot read: {exc.strerror}") from exc
        cached = self._cache.get(incident_id)
        if cached is not None:
            snapshot, (dev, ino, end) = cached
            if (dev, ino) == (info.st_dev, info.st_ino) and end <= info.st_size:
                if end == info.st_size:
                    return snapshot, end, info.st_size
                try:
                    return self._catch_up(incident_id, path, snapshot, end, info)
                except StoreError:
                    self._cache.discard(incident_id)  # a replaced file: read it afresh below
        checkpoint = self._checkpoint(incident_id, info.st_size)
        if checkpoint is not None:
            try:
                return self._catch_up(incident_id, path, checkpoint[0], checkpoint[1], info)
            except StoreError:
                pass  # a stale or damaged checkpoint: replay the whole history instead
        return self._catch_up(incident_id, path, None, 0, info)

    def _catch_up(
        self,
        incident_id: str,
        path: Path,
        snapshot: Incident | None,
        start: int,
        info: os.stat_result,
    ) -> tuple[Incident | None, int, int]:
        version = 0 if snapshot is None else snapshot.version
        found = self._read_history(incident_id, path, start, version)
        events = [_event(path, line) for line in found.lines]
        if events:
            snapshot = fold_onto(snapshot, events, str(path))
        if snapshot is not None:
            self._cache.put(snapshot, (info.st_dev, info.st_ino, found.end))
        return snapshot, found.end, found.size

    def _checkpoint(self, incident_id: str, size: int) -> tuple[Incident, int] | None:
        path = self._meta / "snapshots" / f"{incident_id}.json"
        try:
            # A line of where it stands, then the checkpoint (one JSON object before: still read).
            stands, _, body = path.read_text(encoding="utf-8").partition("\n")
            value = json.loads(stands)
            offset = value["offset"]
            if value["format"] != _CACHE_FORMAT or not 0 < offset <= size:
                return None
            snapshot = decode_snapshot(body or value["snapshot"], incident_id, str(path))
        except (OSError, ValueError, KeyError, TypeError, StoreError):
            return None  # a stale or damaged checkpoint: the history is replayed instead
        if snapshot.version != value["version"]:
            return None
        return snapshot, int(offset)

    def _existing_path(self, incident_id: str) -> Path:
        # An id that cannot be a file name cannot name a stored incident.
        try:
            return self._history_path(incident_id)
        except ValidationError:
            raise IncidentNotFound(str(incident_id)) from None

    def _key_path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return self._meta / "keys" / f"{digest}.json"

    def _read_json(self, path: Path) -> dict[str, Any] | None:
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"{path}: cannot read: {exc.strerror}") from exc
        except ValueError as exc:
            raise StoreError(f"{path}: not JSON ({exc}); delete the file to drop it") from exc
        if not isinstance(value, dict):
            raise StoreError(f"{path}: not an incidentflow record; delete the file to drop it")
        return value

    def _holds(self, claim: dict[str, Any]) -> bool:
        """True when the history holds the commit a claim names. Incident lock held by caller."""
        token = claim["commit"]
        if token in self._committed_tokens:
            return True
        incident_id = claim["incident_id"]
        path = self._history_path(incident_id)
        snapshot, end, _ = self._current(incident_id, path)
        if snapshot is None or snapshot.version < claim["last"] or end <= claim["offset"]:
            return False
        try:
            with path.open("rb") as history:
                history.seek(claim["offset"])
                line = history.readline()
            value = json.loads(line)
            holds = value["commit"]["id"] == token and value["seq"] == claim["first"]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if holds:
            self._committed_tokens.add(token)
        return bool(holds)

    def close(self) -> None:
        """Forget the cached snapshots. The store holds no open files between calls."""
        self._cache.clear()

    def load(self, incident_id: str) -> Incident:
        """The current snapshot. Raises IncidentNotFound."""
        path = self._existing_path(incident_id)
        with self._lock, self._incident_lock(incident_id, shared=True):
            snapshot = self._current(incident_id, path)[0]
        if snapshot is None:
            raise IncidentNotFound(incident_id)
        return snapshot

    def _write_index(self, snapshot: Incident, end: int) -> None:
        entry = {"format": _CACHE_FORMAT, "offset": end, **_index_values(snapshot)}
        path = self._meta / "index" / f"{snapshot.id}.json"
        self._write_atomic(path, _dumps(entry), durable=False)

    def _write_checkpoint(self, snapshot: Incident, end: int) -> None:
        stands = {"format": _CACHE_FORMAT, "offset": end, "version": snapshot.version}
        path = self._meta / "snapshots" / f"{snapshot.id}.json"
        self._write_atomic(path, f"{_dumps(stands)}\n{encode_checkpoint(snapshot)}", durable=False)


def _index_values(snapshot: Incident) -> dict[str, Any]:
    """What an index entry keeps of a snapshot, for listings that load no snapshot."""
    return {
        "version": snapshot.version,
        "state": snapshot.state.value,
        "severity": snapshot.severity.value,
        "is_open": snapshot.is_open,
        "commander": snapshot.commander,
        "title": snapshot.title,
        "declared_at": micros(snapshot.declared_at),
        "type": snapshot.type,
        "labels": dict(snapshot.labels),
        "fields": dict(snapshot.custom_fields),
        "references": [[ref.kind, ref.value] for ref in snapshot.references],
        "open_action_items": has_open_action_items(snapshot),
        "restricted_to": list(snapshot.restricted_to),
    }


#: A temporary file of ``_write_atomic``: ``.<name>.<pid>.<random>.tmp``.
_TEMPORARY = re.compile(r"\..+\.(\d+)\.[0-9a-f]{16}\.tmp\Z")
#: A temporary file this old is a stray even if its process id is in use again.
_STRAY_AGE = 3600.0


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte: a short write (a nearly full disk) goes on, or raises OSError."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if not written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def _temporary_beside(path: Path) -> tuple[Path, int]:
    """A new temporary file beside ``path``: a name no one can guess, opened exclusively.

    ``O_EXCL`` fails on any file or link already at the name and ``O_NOFOLLOW``
    refuses a symlink, so nothing planted there is followed and written through.
    """
    for _ in range(8):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
        except FileExistsError:
            continue
    raise StoreError(f"{path.parent}: cannot make a temporary file; the names are taken")


def _remove_strays(folder: Path) -> None:
    """Remove temporary files left by a process that died (kill -9) before renaming them."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        found = _TEMPORARY.match(entry.name)
        if found is None:
            continue
        with contextlib.suppress(OSError):
            info = entry.stat(follow_symlinks=False)
            if _alive(int(found.group(1))) and now - info.st_mtime < _STRAY_AGE:
                continue  # another process is writing it now
            os.unlink(entry.path)  # a link is removed, never what it points to


def _alive(pid: int) -> bool:
    """Whether a process with this id runs (any user's)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
