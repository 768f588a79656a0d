"""JsonlStore: one append-only JSON Lines history per incident, beside its Markdown file.

Layout of ``DIR``::

    DIR/<incident id>.jsonl          the history: one event per line, the truth
    DIR/.incidentflow/format.json    the layout version of this folder
    DIR/.incidentflow/locks/         one lock file per incident (fcntl.flock)
    DIR/.incidentflow/index/         per incident: the columns list() filters on  (rebuildable)
    DIR/.incidentflow/snapshots/     per incident: a checkpoint snapshot           (rebuildable)
    DIR/.incidentflow/outbox/        undelivered notifications, one file per commit,
                                     and beside it <name>.state: their delivery state
    DIR/.incidentflow/keys/          idempotency records, one file per key

How a commit stays atomic: all its events are written with one ``write`` and
made durable with ``fdatasync`` while the incident's lock is held. Every line
carries ``"commit": {"id": ..., "last": <seq of the commit's last event>}``,
so a reader knows whether a commit is whole. A last line without its newline,
or the first lines of a commit whose last line is missing (a crash mid-write),
are ignored, never misread, and cut off by the next writer. A line that is not
JSON anywhere else is corruption: :class:`StoreError` names the file and line.

The outbox items and the idempotency record of a commit are written to their
own files *before* the history (and made durable), tagged with the commit's id
and the byte offset where the commit starts. They count only if the history
holds that commit at that offset, so they appear exactly when the events do.

Delivery: a commit's outbox file is never rewritten once written. What
happens to its items afterwards (claims with their holder and expiry, failed
attempts, the last error, the next attempt time, dead letters, deliveries) is
kept in ``<name>.state`` beside it, replaced whole (write a temporary file, then
rename) under the exclusive lock ``.incidentflow/outbox.lock``; ``claim``,
``mark_delivered``, ``mark_failed``, ``redrive``, ``pending`` and
``dead_letters`` all run under that lock, so processes never hand out one item
twice while its lease holds. Once every item of a commit is delivered, both
files are deleted. The state is not fsync'd: after a power cut an item may be
delivered again (delivery is at least once anyway) or retried once more.

The cost, which is why this store suits one host and modest traffic: each
``claim`` lists the outbox folder and reads every waiting commit's state to find
each stream's head, about 7 µs per waiting commit once this process has parsed
its file (the first claim in a process parses each, about 0.1 ms apiece), plus
one state file written. Thousands of waiting commits make claims take
milliseconds; SQLite or PostgreSQL keep claims O(log n).

The index and the checkpoints are caches: each records the history's size it
was built from and is rebuilt from the history when that does not match.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
from loguru import logger

from .._events import Event
from .._model import Incident, State
from .._serialization import event_from_dict, event_to_dict, incident_from_dict, incident_to_dict
from ..exceptions import (
    ConcurrencyConflict,
    DuplicateIncident,
    IdempotencyConflict,
    IncidentNotFound,
    StoreError,
    ValidationError,
)
from ._base import Commit, IdempotencyRecord, IncidentQuery, OutboxItem, Store
from ._snapshots import (
    SnapshotCache,
    check_commit,
    checkpoint_due,
    fold_onto,
    from_micros,
    micros,
)

__all__ = ["FORMAT_VERSION", "JsonlStore"]

#: The layout version this release writes; a folder with a newer one is refused, an
#: older one is upgraded (2 added the outbox's delivery state files).
FORMAT_VERSION = 2

# The version of the index entries and checkpoints (caches, rebuilt when it differs).
_CACHE_FORMAT = 1

_META = ".incidentflow"
_SUBFOLDERS = ("locks", "index", "snapshots", "outbox", "keys")
_SUFFIX = ".jsonl"
_STATE_SUFFIX = ".state"
_NOT_SET: Any = object()
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
_READ_CHUNK = 1 << 16
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_sync = getattr(os, "fdatasync", os.fsync)
_os_write = os.write  # the one write of a commit; tests inject disk errors here

# (device, inode) of the history file and the byte offset where its whole commits end.
_Position = tuple[int, int, int]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _History:
    """The whole commits found in a history file, as parsed lines."""

    def __init__(self, lines: list[dict[str, Any]], end: int, size: int) -> None:
        self.lines = lines
        self.end = end
        self.size = size


class JsonlStore(Store):
    """Incidents as JSON Lines files in one folder, shared safely by threads and processes.

    Args:
        directory: The folder; created if missing. Usually the incidents folder,
            so each ``INC-….jsonl`` history sits beside its ``INC-….md`` file.
        cache_size: How many incidents' snapshots to keep in memory.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     JsonlStore(folder).exists("INC-2026-11-27-checkout")
    False

    """

    def __init__(self, directory: str | os.PathLike[str], *, cache_size: int = 256) -> None:
        self.directory = Path(directory)
        self._meta = self.directory / _META
        self._lock = threading.RLock()
        self._cache: SnapshotCache[_Position] = SnapshotCache(cache_size)
        self._committed_tokens: set[str] = set()
        self._outbox_cache: dict[str, list[OutboxItem]] = {}
        self._prepare()

    def __repr__(self) -> str:
        return f"JsonlStore({str(self.directory)!r})"

    # -- the folder --------------------------------------------------------------

    def _prepare(self) -> None:
        try:
            for sub in _SUBFOLDERS:
                (self._meta / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{self.directory}: cannot create the store's folders: {exc.strerror}; "
                "check that the folder is writable"
            ) from exc
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

    def _write_atomic(self, path: Path, text: str, *, durable: bool) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, text.encode("utf-8"))
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

    # -- reading a history ----------------------------------------------------------

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
            value = json.loads(path.read_text(encoding="utf-8"))
            offset = value["offset"]
            if value["format"] != _CACHE_FORMAT or not 0 < offset <= size:
                return None
            snapshot = incident_from_dict(value["snapshot"])
        except (OSError, ValueError, KeyError, TypeError, StoreError):
            return None
        if snapshot.id != incident_id or snapshot.version != value["version"]:
            return None
        return snapshot, int(offset)

    # -- the Store contract ------------------------------------------------------------

    def _existing_path(self, incident_id: str) -> Path:
        # An id that cannot be a file name cannot name a stored incident.
        try:
            return self._history_path(incident_id)
        except ValidationError:
            raise IncidentNotFound(str(incident_id)) from None

    def load(self, incident_id: str) -> Incident:
        """The current snapshot. Raises IncidentNotFound."""
        path = self._existing_path(incident_id)
        with self._lock, self._incident_lock(incident_id, shared=True):
            snapshot = self._current(incident_id, path)[0]
        if snapshot is None:
            raise IncidentNotFound(incident_id)
        return snapshot

    def exists(self, incident_id: str) -> bool:
        """True when an incident with this id exists."""
        try:
            self.load(incident_id)
        except IncidentNotFound:
            return False
        return True

    def history(self, incident_id: str, after: int = 0) -> Sequence[Event]:
        """The events after seq ``after``, in order. Raises IncidentNotFound."""
        path = self._existing_path(incident_id)
        with self._lock, self._incident_lock(incident_id, shared=True):
            found = self._read_history(incident_id, path)
        if not found.lines:
            raise IncidentNotFound(incident_id)
        return tuple(_event(path, line) for line in found.lines[max(after, 0) :])

    def append(self, commit: Commit) -> None:
        """Write a commit atomically (see :meth:`Store.append`)."""
        incident_id = commit.incident_id
        check_commit(incident_id, commit.expected_version, commit.events)
        path = self._history_path(incident_id)
        token = uuid.uuid4().hex
        last = commit.events[-1].seq
        try:
            data = "".join(
                _dumps({**event_to_dict(e), "commit": {"id": token, "last": last}}) + "\n"
                for e in commit.events
            ).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise StoreError(f"{path}: cannot serialise the commit: {exc}") from exc
        with self._lock, self._incident_lock(incident_id, shared=False):
            before, end, size = self._current(incident_id, path)
            actual = 0 if before is None else before.version
            if commit.expected_version == 0 and before is not None:
                raise DuplicateIncident(incident_id)
            if actual != commit.expected_version:
                raise ConcurrencyConflict(incident_id, commit.expected_version, actual)
            if commit.idempotency is not None:
                self._check_key_unused(commit)
            intents = self._write_intents(commit, token, end)
            try:
                self._write_history(path, data, end, size)
            except BaseException:
                for intent in intents:
                    with contextlib.suppress(OSError):
                        intent.unlink()
                raise
            self._committed_tokens.add(token)
            new_end = end + len(data)
            try:
                info = os.stat(path)
                self._cache.put(commit.snapshot, (info.st_dev, info.st_ino, new_end))
                self._write_index(commit.snapshot, new_end)
                if checkpoint_due(
                    commit.expected_version,
                    None if before is None else before.state,
                    commit.snapshot,
                ):
                    self._write_checkpoint(commit.snapshot, new_end)
            except (OSError, TypeError, ValueError) as exc:
                # The commit is durable; the index and checkpoint are rebuilt on demand.
                logger.warning("{}: could not refresh the index of {}: {}", self, incident_id, exc)

    def _write_history(self, path: Path, data: bytes, end: int, size: int) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | _NOFOLLOW, 0o644)
        except OSError as exc:
            raise StoreError(f"{path}: cannot open for writing: {exc.strerror}") from exc
        try:
            if size > end:
                os.ftruncate(fd, end)  # cut off a torn commit left by a crash
            view = memoryview(data)
            while view:
                written = _os_write(fd, view)
                view = view[written:]
            _sync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)
                _sync(fd)
            raise StoreError(
                f"{path}: cannot append the commit: {exc.strerror or exc}; nothing was written"
                + ("; free some disk space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "")
            ) from exc
        finally:
            os.close(fd)
        if end == 0:
            try:
                _sync_folder(path.parent)
            except OSError as exc:
                raise StoreError(f"{path.parent}: cannot sync the folder: {exc.strerror}") from exc

    def _write_index(self, snapshot: Incident, end: int) -> None:
        entry = {
            "format": _CACHE_FORMAT,
            "offset": end,
            "version": snapshot.version,
            "state": snapshot.state.value,
            "severity": snapshot.severity.value,
            "is_open": snapshot.is_open,
            "commander": snapshot.commander,
            "title": snapshot.title,
            "declared_at": micros(snapshot.declared_at),
        }
        path = self._meta / "index" / f"{snapshot.id}.json"
        self._write_atomic(path, _dumps(entry), durable=False)

    def _write_checkpoint(self, snapshot: Incident, end: int) -> None:
        value = {
            "format": _CACHE_FORMAT,
            "offset": end,
            "version": snapshot.version,
            "snapshot": incident_to_dict(snapshot),
        }
        path = self._meta / "snapshots" / f"{snapshot.id}.json"
        self._write_atomic(path, _dumps(value), durable=False)

    # -- outbox and idempotency: intents that count once the history holds the commit -----

    def _write_intents(self, commit: Commit, token: str, offset: int) -> list[Path]:
        written: list[Path] = []
        claim = {
            "commit": token,
            "incident_id": commit.incident_id,
            "offset": offset,
            "first": commit.events[0].seq,
            "last": commit.events[-1].seq,
        }
        try:
            if commit.outbox:
                items = [_outbox_value(item) for item in commit.outbox]
                path = self._meta / "outbox" / f"{time.time_ns():020d}-{token}.json"
                self._write_atomic(path, _dumps({**claim, "items": items}), durable=True)
                written.append(path)
            if commit.idempotency is not None:
                record = commit.idempotency
                value = {
                    **claim,
                    "key": record.key,
                    "fingerprint": record.fingerprint,
                    "version": record.version,
                }
                path = self._key_path(record.key)
                self._write_atomic(path, _dumps(value), durable=True)
                written.append(path)
        except OSError as exc:
            for path in written:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise StoreError(
                f"{self._meta}: cannot write the commit's outbox or idempotency record: "
                f"{exc.strerror or exc}; nothing was written"
            ) from exc
        return written

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

    def _check_key_unused(self, commit: Commit) -> None:
        record = commit.idempotency
        assert record is not None
        claim = self._read_json(self._key_path(record.key))
        if claim is None or claim.get("key") != record.key:
            return
        # Lock-free check for another incident: taking its lock here could deadlock.
        if not self._holds(claim):
            return
        if claim.get("fingerprint") != record.fingerprint:
            raise IdempotencyConflict(record.key)
        raise ConcurrencyConflict(
            commit.incident_id, commit.expected_version, commit.expected_version + 1
        )

    def idempotency(self, key: str) -> IdempotencyRecord | None:
        """The record kept for ``key``, if its command committed."""
        with self._lock:
            claim = self._read_json(self._key_path(key))
            if claim is None or claim.get("key") != key:
                return None
            try:
                incident_id = claim["incident_id"]
                with self._incident_lock(incident_id, shared=True):
                    if not self._holds(claim):
                        return None
                return IdempotencyRecord(
                    key, claim["fingerprint"], incident_id, int(claim["version"])
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise StoreError(
                    f"{self._key_path(key)}: not an idempotency record ({exc})"
                ) from exc

    # -- the outbox: one file per commit, and its delivery state beside it --------------

    @contextlib.contextmanager
    def _outbox_lock(self) -> Iterator[None]:
        with self._lock, self._flock(self._meta / "outbox.lock", shared=False):
            yield

    def _outbox(self, incident_id: str | None = None) -> Iterator[_OutboxFile]:
        """The outbox files of committed commits, oldest first, with their delivery state.

        Only ``incident_id``'s, when given. Outbox lock held by the caller. A
        file whose commit never reached the history is deleted: its writer has
        finished (it held the incident's lock).
        """
        folder = self._meta / "outbox"
        try:
            listed = [n for n in os.listdir(folder) if not n.startswith(".")]
        except OSError as exc:
            raise StoreError(f"{folder}: cannot list: {exc.strerror}") from exc
        names = sorted(n for n in listed if n.endswith(".json"))
        with_state = {n for n in listed if n.endswith(_STATE_SUFFIX)}
        for stale in self._outbox_cache.keys() - set(names):
            del self._outbox_cache[stale]
        for name in names:
            path = folder / name
            items = self._outbox_cache.get(name)
            if items is None:
                items = self._outbox_items(path)
                if items is None:
                    continue
                self._outbox_cache[name] = items  # a committed outbox file never changes
            if incident_id is not None and items and items[0].event.incident_id != incident_id:
                continue
            has_state = _state_path(path).name in with_state
            yield _OutboxFile(path, items, self._read_state(path) if has_state else {})

    def _outbox_items(self, path: Path) -> list[OutboxItem] | None:
        """The items of one outbox file, or None when its commit is not in the history."""
        claim = self._read_json(path)
        if claim is None:
            return None
        try:
            with self._incident_lock(claim["incident_id"], shared=True):
                committed = self._holds(claim)
            if not committed:
                path.unlink(missing_ok=True)
                _state_path(path).unlink(missing_ok=True)
                return None
            return [_outbox_item(item) for item in claim["items"]]
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise StoreError(f"{path}: not an outbox record ({exc})") from exc
        except StoreError as exc:
            raise StoreError(f"{path}: {exc}") from exc

    def _read_state(self, path: Path) -> dict[str, dict[str, Any]]:
        state_path = _state_path(path)
        value = self._read_json(state_path)
        if value is None:
            return {}
        items = value.get("items")
        if not isinstance(items, dict):
            raise StoreError(f"{state_path}: not an outbox delivery state; delete it to reset")
        return items

    def _write_state(self, outbox_file: _OutboxFile) -> None:
        """Save one file's delivery state; delete both once every item is delivered."""
        path = outbox_file.path
        state_path = _state_path(path)
        try:
            if all(outbox_file.state(i.id).get("delivered") for i in outbox_file.items):
                path.unlink(missing_ok=True)  # first: a state file alone is swept away
                state_path.unlink(missing_ok=True)
                self._outbox_cache.pop(path.name, None)
            else:
                value = {"format": FORMAT_VERSION, "items": outbox_file.states}
                self._write_atomic(state_path, _dumps(value), durable=False)
        except OSError as exc:
            raise StoreError(f"{state_path}: cannot update: {exc.strerror or exc}") from exc

    def _sweep_states(self) -> None:
        """Delete delivery states left without their outbox file (a crash while deleting)."""
        folder = self._meta / "outbox"
        try:
            names = set(os.listdir(folder))
        except OSError as exc:
            raise StoreError(f"{folder}: cannot list: {exc.strerror}") from exc
        orphans = [
            name
            for name in names
            if name.endswith(_STATE_SUFFIX)
            and not name.startswith(".")
            and f"{name[: -len(_STATE_SUFFIX)]}.json" not in names
        ]
        for name in orphans:
            with contextlib.suppress(OSError):
                (folder / name).unlink()

    def pending(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Undelivered outbox items of committed commands that are not dead, oldest first."""
        found: list[OutboxItem] = []
        with self._outbox_lock():
            for outbox_file in self._outbox():
                for item in outbox_file.items:
                    state = outbox_file.state(item.id)
                    current = _with_state(item, state)
                    if not state.get("delivered") and not current.dead:
                        found.append(current)
                if len(found) >= limit:
                    break
        return found[:limit]

    def mark_delivered(self, ids: Iterable[str]) -> None:
        """Remove delivered items from the outbox; unknown ids are ignored."""
        delivered = set(ids)
        if not delivered:
            return
        with self._outbox_lock():
            for outbox_file in self._outbox():
                found = delivered.intersection(i.id for i in outbox_file.items)
                if not found:
                    continue
                for item_id in found:
                    outbox_file.states[item_id] = {"delivered": True}
                self._write_state(outbox_file)
                delivered -= found
                if not delivered:
                    break

    def claim(
        self,
        *,
        now: datetime,
        limit: int,
        lease: timedelta,
        worker: str,
        incident_id: str | None = None,
    ) -> Sequence[OutboxItem]:
        """Claim the due heads of the outbox's streams (see :meth:`Store.claim`).

        Reads every outbox file's delivery state (only ``incident_id``'s, when
        given) under the outbox lock, then writes the claims of the files it
        takes items from.
        """
        if limit <= 0:
            return []
        at = micros(now)
        heads: dict[tuple[str, str], tuple[int, int, _OutboxFile, OutboxItem]] = {}
        with self._outbox_lock():
            self._sweep_states()
            position = 0
            for outbox_file in self._outbox(incident_id):
                for item in outbox_file.items:
                    position += 1
                    state = outbox_file.state(item.id)
                    if state.get("delivered") or _with_state(item, state).dead:
                        continue
                    stream = (item.event.incident_id, item.notifier)
                    head = heads.get(stream)
                    if head is None or item.event.seq < head[0]:
                        heads[stream] = (item.event.seq, position, outbox_file, item)
            due = sorted(
                (head for head in heads.values() if _ready_at(head[3], head[2]) <= at),
                key=lambda head: head[1],
            )[:limit]
            until = micros(now + lease)
            touched: dict[Path, _OutboxFile] = {}
            claimed = []
            for _, _, outbox_file, item in due:
                state = outbox_file.states.setdefault(item.id, {})
                state.update(claimed_by=worker, claimed_until=until)
                touched[outbox_file.path] = outbox_file
                claimed.append(_with_state(item, state))
            for outbox_file in touched.values():
                self._write_state(outbox_file)
        return claimed

    def mark_failed(
        self, item_id: str, *, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        """Count a failed attempt, release the claim, and retry later or give up."""
        with self._outbox_lock():
            for outbox_file in self._outbox():
                item = outbox_file.find(item_id)
                if item is None:
                    continue
                state = outbox_file.state(item_id)
                if state.get("delivered") or _with_state(item, state).dead:
                    return  # a worker whose lease ran out may report late
                outbox_file.states[item_id] = {
                    "attempts": int(state.get("attempts", item.attempts)) + 1,
                    "next_attempt_at": micros(next_attempt_at),
                    "last_error": error,
                    "dead": bool(dead),
                }
                self._write_state(outbox_file)
                return

    def dead_letters(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Items that gave up, oldest first."""
        found: list[OutboxItem] = []
        with self._outbox_lock():
            for outbox_file in self._outbox():
                for item in outbox_file.items:
                    state = outbox_file.state(item.id)
                    current = _with_state(item, state)
                    if current.dead and not state.get("delivered"):
                        found.append(current)
                if len(found) >= limit:
                    break
        return found[:limit]

    def redrive(self, ids: Iterable[str]) -> int:
        """Put dead items back in line with a fresh attempt count; returns how many."""
        wanted = set(ids)
        count = 0
        if not wanted:
            return 0
        with self._outbox_lock():
            for outbox_file in self._outbox():
                changed = False
                for item in outbox_file.items:
                    if item.id not in wanted:
                        continue
                    state = outbox_file.state(item.id)
                    current = _with_state(item, state)
                    if current.dead and not state.get("delivered"):
                        outbox_file.states[item.id] = {
                            "attempts": 0,
                            "next_attempt_at": None,
                            "last_error": current.last_error,
                            "dead": False,
                        }
                        changed = True
                        count += 1
                if changed:
                    self._write_state(outbox_file)
        return count

    # -- list -------------------------------------------------------------------------

    def list(self, query: IncidentQuery) -> Sequence[Incident]:
        """Snapshots matching ``query``: filtered on the index, then loaded page by page."""
        entries = []
        with self._lock:
            for incident_id, info in self._histories():
                entry = self._index_entry(incident_id, info)
                if entry is not None and _entry_matches(query, entry):
                    entries.append(entry)
            entries.sort(key=lambda e: (e["declared_at"], e["id"]), reverse=query.newest_first)
            stop = None if query.limit is None else query.offset + query.limit
            page = []
            for entry in entries[query.offset : stop]:
                try:
                    incident = self.load(entry["id"])
                except IncidentNotFound:
                    continue
                if query.matches(incident):
                    page.append(incident)
        return page

    def _histories(self) -> Iterator[tuple[str, os.stat_result]]:
        try:
            with os.scandir(self.directory) as found:
                for item in found:
                    name = item.name
                    if not name.endswith(_SUFFIX) or not item.is_file(follow_symlinks=False):
                        continue
                    incident_id = name[: -len(_SUFFIX)]
                    if _SAFE_ID.match(incident_id):
                        yield incident_id, item.stat(follow_symlinks=False)
        except OSError as exc:
            raise StoreError(f"{self.directory}: cannot list: {exc.strerror}") from exc

    def _index_entry(self, incident_id: str, info: os.stat_result) -> dict[str, Any] | None:
        path = self._meta / "index" / f"{incident_id}.json"
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry["format"] == _CACHE_FORMAT and entry["offset"] == info.st_size:
                entry["id"] = incident_id
                return dict(entry)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # missing, stale or damaged: rebuilt from the history below
        history = self._history_path(incident_id)
        with self._incident_lock(incident_id, shared=True):
            snapshot, end, _ = self._current(incident_id, history)
        if snapshot is None:
            return None
        try:
            self._write_index(snapshot, end)
        except OSError as exc:
            logger.warning("{}: could not rewrite the index of {}: {}", self, incident_id, exc)
        return {
            "id": incident_id,
            "state": snapshot.state.value,
            "severity": snapshot.severity.value,
            "is_open": snapshot.is_open,
            "commander": snapshot.commander,
            "title": snapshot.title,
            "declared_at": micros(snapshot.declared_at),
        }

    def rebuild_index(self) -> int:
        """Rebuild every index entry and checkpoint from the histories; returns how many."""
        count = 0
        with self._lock:
            for incident_id, _ in self._histories():
                path = self._history_path(incident_id)
                with self._incident_lock(incident_id, shared=False):
                    self._cache.discard(incident_id)
                    snapshot, end, _ = self._catch_up(
                        incident_id, path, None, 0, os.stat(path, follow_symlinks=False)
                    )
                    if snapshot is None:
                        continue
                    try:
                        self._write_index(snapshot, end)
                        self._write_checkpoint(snapshot, end)
                    except OSError as exc:
                        raise StoreError(f"{self._meta}: cannot rebuild: {exc.strerror}") from exc
                    count += 1
        return count

    def close(self) -> None:
        """Forget the cached snapshots. The store holds no open files between calls."""
        self._cache.clear()


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pread_all(fd: int, offset: int, length: int) -> bytes:
    chunks = []
    while length > 0:
        chunk = os.pread(fd, min(length, 1 << 24), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        length -= len(chunk)
    return b"".join(chunks)


def _parse(
    path: Path, incident_id: str, data: bytes, start: int, after: int
) -> tuple[list[dict[str, Any]], int]:
    """The lines of whole commits in ``data`` and the offset where the last one ends."""
    lines: list[dict[str, Any]] = []
    open_commit: list[dict[str, Any]] = []
    end = start
    pos = 0
    while True:
        newline = data.find(b"\n", pos)
        if newline < 0:
            break  # a last line without its newline: torn by a crash, ignored
        line_no = after + len(lines) + len(open_commit) + 1
        where = f"{path}: line {line_no}"
        try:
            value = json.loads(data[pos:newline])
        except ValueError as exc:
            raise StoreError(
                f"{where} is not JSON ({exc}); the history is damaged: restore the file "
                "from a backup or remove the line and everything after it"
            ) from exc
        try:
            commit = value["commit"]
            token, last, seq = commit["id"], commit["last"], value["seq"]
            valid = (
                value["incident_id"] == incident_id
                and seq == line_no
                and isinstance(last, int)
                and last >= seq
                and (not open_commit or open_commit[0]["commit"]["id"] == token)
            )
        except (KeyError, TypeError) as exc:
            raise StoreError(f"{where} is not an incidentflow event ({exc})") from exc
        if not valid:
            raise StoreError(
                f"{where} does not continue the history of {incident_id} "
                f"(expected event {line_no}); the history is damaged"
            )
        open_commit.append(value)
        if seq == last:
            lines.extend(open_commit)
            open_commit = []
            end = start + newline + 1
        pos = newline + 1
    # Whole lines of a commit whose last line never made it are ignored, like a torn line.
    return lines, end


def _event(path: Path, line: dict[str, Any]) -> Event:
    try:
        return event_from_dict(line)
    except StoreError as exc:
        raise StoreError(f"{path}: line {line.get('seq')}: {exc}") from exc


def _entry_matches(query: IncidentQuery, entry: dict[str, Any]) -> bool:
    return (
        (query.states is None or State(entry["state"]) in query.states)
        and (query.severities is None or entry["severity"] in {s.value for s in query.severities})
        and (not query.open_only or bool(entry["is_open"]))
        and (query.commander is None or entry["commander"] == query.commander)
        and (query.declared_after is None or entry["declared_at"] >= micros(query.declared_after))
        and (query.declared_before is None or entry["declared_at"] < micros(query.declared_before))
        and (query.text is None or query.text.casefold() in str(entry["title"]).casefold())
    )


class _OutboxFile:
    """One commit's outbox items and their delivery state, by item id."""

    def __init__(
        self, path: Path, items: list[OutboxItem], states: dict[str, dict[str, Any]]
    ) -> None:
        self.path = path
        self.items = items
        self.states = states

    def state(self, item_id: str) -> dict[str, Any]:
        found = self.states.get(item_id)
        return found if isinstance(found, dict) else {}

    def find(self, item_id: str) -> OutboxItem | None:
        return next((item for item in self.items if item.id == item_id), None)


def _state_path(path: Path) -> Path:
    return path.with_name(path.name[: -len(".json")] + _STATE_SUFFIX)


def _outbox_item(value: dict[str, Any]) -> OutboxItem:
    """An item as written in an outbox file (format 1 items have only id and event)."""
    retry_at = value.get("next_attempt_at")
    return OutboxItem(
        value["id"],
        event_from_dict(value["event"]),
        str(value.get("notifier", "")),
        int(value.get("attempts", 0)),
        None if retry_at is None else from_micros(int(retry_at)),
        str(value.get("last_error", "")),
        bool(value.get("dead", False)),
    )


def _outbox_value(item: OutboxItem) -> dict[str, Any]:
    value: dict[str, Any] = {"id": item.id, "notifier": item.notifier}
    if item.attempts:
        value["attempts"] = item.attempts
    if item.next_attempt_at is not None:
        value["next_attempt_at"] = micros(item.next_attempt_at)
    if item.last_error:
        value["last_error"] = item.last_error
    if item.dead:
        value["dead"] = True
    value["event"] = event_to_dict(item.event)
    return value


def _with_state(item: OutboxItem, state: dict[str, Any]) -> OutboxItem:
    """The item as its delivery state has it (the file's own fields where the state is silent)."""
    if not state:
        return item
    retry_at = state.get("next_attempt_at", _NOT_SET)
    return attrs.evolve(
        item,
        attempts=int(state.get("attempts", item.attempts)),
        next_attempt_at=(
            item.next_attempt_at
            if retry_at is _NOT_SET
            else None
            if retry_at is None
            else from_micros(int(retry_at))
        ),
        last_error=str(state.get("last_error", item.last_error)),
        dead=bool(state.get("dead", item.dead)),
    )


def _ready_at(item: OutboxItem, outbox_file: _OutboxFile) -> int:
    """When an item may next be claimed, in µs: after its next attempt time and its claim."""
    state = outbox_file.state(item.id)
    retry_at = _with_state(item, state).next_attempt_at
    return max(0 if retry_at is None else micros(retry_at), int(state.get("claimed_until") or 0))
