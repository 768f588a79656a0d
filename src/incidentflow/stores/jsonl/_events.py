"""JsonlStore as an event store: one durable write per commit, intents for keys and outbox."""

from __future__ import annotations

import contextlib
import errno
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from loguru import logger

from ..._events import Event
from ..._model import Incident
from ..._serialization import event_to_dict
from ...exceptions import (
    ConcurrencyConflict,
    DuplicateIncident,
    IncidentNotFound,
    ReferenceTaken,
    StoreError,
)
from .._appending import CheckedAppend, check_key_unused
from .._records import Commit, IdempotencyRecord
from .._snapshots import (
    checkpoint_due,
)
from ._files import (
    _NOFOLLOW,
    _dumps,
    _event,
    _outbox_value,
    _sync_folder,
)
from ._folder import JsonlBase

_sync = getattr(os, "fdatasync", os.fsync)

_os_write = os.write  # the one write of a commit; tests inject disk errors here


class JsonlEventStore(JsonlBase, CheckedAppend):
    """Histories as JSON Lines files: a commit is one ``write`` and ``fdatasync``."""

    def exists(self, incident_id: str) -> bool:
        """True when an incident with this id exists."""
        try:
            self.load(incident_id)
        except IncidentNotFound:
            return False
        return True

    def cached(self, incident_id: str) -> Incident | None:
        """The snapshot last seen of the incident, from memory only; it may be stale."""
        found = self._cache.get(incident_id)
        return None if found is None else found[0]

    def history(self, incident_id: str, after: int = 0) -> Sequence[Event]:
        """The events after seq ``after``, in order. Raises IncidentNotFound."""
        path = self._existing_path(incident_id)
        with self._lock, self._incident_lock(incident_id, shared=True):
            found = self._read_history(incident_id, path)
        if not found.lines:
            raise IncidentNotFound(incident_id)
        return tuple(_event(path, line) for line in found.lines[max(after, 0) :])

    def _write_commit(self, commit: Commit) -> None:
        """Write a checked commit: intents first, then the history's one durable write."""
        incident_id = commit.incident_id
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
        snapshot = commit.snapshot
        takes = commit.index_changed and snapshot.is_open and bool(snapshot.references)
        # Locks in one order only: the references lock, the key's, then the incident's.
        references = self._references_lock() if takes else contextlib.nullcontext()
        key = commit.idempotency
        key_lock = contextlib.nullcontext() if key is None else self._key_lock(key.key)
        with self._lock, references, key_lock, self._incident_lock(incident_id, shared=False):
            before, end, size = self._current(incident_id, path)
            actual = 0 if before is None else before.version
            if commit.expected_version == 0 and before is not None:
                raise DuplicateIncident(incident_id)
            if actual != commit.expected_version:
                raise ConcurrencyConflict(incident_id, commit.expected_version, actual)
            if key is not None:
                self._check_key_unused(commit)
            if takes:
                held = set() if before is None or not before.is_open else set(before.references)
                taken = self._open_holder(
                    [ref for ref in snapshot.references if ref not in held], excluding=incident_id
                )
                if taken is not None:
                    raise ReferenceTaken(taken[0].kind, taken[0].value, taken[1])
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
                + ("; free some disk space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "")
            ) from exc
        return written

    def _check_key_unused(self, commit: Commit) -> None:
        """Apply the idempotency rule to the record kept for the commit's key, if any.

        The caller holds the key's lock, so no other commit keeping this key is
        under way: a record whose commit is not in its history was left by a
        writer that failed or was killed, and the commit's own record replaces it.
        """
        record = commit.idempotency
        assert record is not None
        claim = self._read_json(self._key_path(record.key))
        if claim is None or claim.get("key") != record.key:
            return
        # The named incident's history is read without its lock: taking it could deadlock.
        if not self._holds(claim):
            return
        try:
            kept = IdempotencyRecord(
                record.key, str(claim["fingerprint"]), claim["incident_id"], int(claim["version"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(
                f"{self._key_path(record.key)}: not an idempotency record ({exc})"
            ) from exc
        check_key_unused(kept, commit)

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
