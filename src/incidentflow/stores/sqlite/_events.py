"""SQLiteStore as an event store: the write of a commit, loads, histories and keys."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import attrs

from ..._events import Event
from ..._model import Incident, State
from ..._similar import (
    SearchText,
    indexed,
    search_text_changed,
)
from ...exceptions import (
    ConcurrencyConflict,
    DuplicateIncident,
    IncidentNotFound,
)
from .._appending import CheckedAppend, check_key_unused
from .._chunks import ChunkedCheckpoint, chunked_checkpoint
from .._records import Commit, IdempotencyRecord
from .._snapshots import (
    checkpoint_due,
    dumps,
    encode_checkpoint,
)
from ._access import write_access
from ._rows import (
    _COLUMNS,
    _COLUMNS_BEFORE_TAGS,
    _EVENT_ROW_COLUMNS,
    _INDEX,
    _INSERT_ANNOUNCED_EVENT,
    _INSERT_EVENT,
    _INSERT_OUTBOX,
    _INSERT_SEARCH_TEXT,
    _SELECT_SEARCH_TEXT,
    _SELECT_VERSION,
    _UNINDEX,
    _UPDATE_SEARCH_TEXT,
    _columns,
    _event_row,
    _keep_milestones,
    _notify_columns,
    _outbox_row,
    _update_sql,
)
from ._schema import SQLiteBase, _forks
from ._tags import write_tags

#: Each chunked list of an incident: its chunks, items and the version of its last chunk.
_STORED_CHUNKS = (
    "SELECT name, count(*), sum(count), max(version) FROM snapshot_lists "
    "WHERE incident_id = ? GROUP BY name"
)


class SQLiteEventStore(SQLiteBase, CheckedAppend):
    """Histories and snapshots in SQLite: one ``BEGIN IMMEDIATE`` transaction per commit."""

    def _write_commit(self, commit: Commit) -> None:
        """Write a checked commit in one ``BEGIN IMMEDIATE`` transaction."""
        try:
            rows = [_event_row(event) for event in commit.events]
        except (TypeError, ValueError) as exc:
            raise self._fail(f"cannot serialise the events of {commit.incident_id}", exc) from exc
        notify = _notify_columns(commit)
        if notify is not None:
            rows = [(*row, value) for row, value in zip(rows, notify, strict=True)]
        cached = self._cache.get(commit.incident_id)
        previous = None
        if cached is not None and cached[0].version == commit.expected_version:
            previous = cached[0]
        checkpoint = self._write(lambda conn: self._apply(conn, commit, rows, previous))
        if checkpoint is not None:
            checkpoint.written()
        self._cache.put(commit.snapshot, commit.snapshot.version)

    def _apply(
        self,
        conn: sqlite3.Connection,
        commit: Commit,
        rows: Sequence[tuple[Any, ...]],
        previous: Incident | None,
    ) -> ChunkedCheckpoint | None:
        """Write ``commit`` in the open transaction; the checkpoint written, if one was."""
        snapshot = commit.snapshot
        state_before: State | None = None
        if commit.expected_version == 0:
            columns = _columns(snapshot, tagged=self._tagged)
            try:
                conn.execute(
                    f"INSERT INTO incidents (id, {', '.join(columns)}) "
                    f"VALUES (?{', ?' * len(columns)})",
                    (commit.incident_id, *columns.values()),
                )
            except sqlite3.IntegrityError:
                raise DuplicateIncident(commit.incident_id) from None
        else:
            # Setting only what changed leaves the indexes alone on most commands.
            if previous is not None:
                changed = _columns(snapshot, changing=previous, tagged=self._tagged)
            else:
                # Not cached: the row still holds the columns before this commit.
                names = _COLUMNS if self._tagged else _COLUMNS_BEFORE_TAGS
                row = conn.execute(
                    f"SELECT {', '.join(names)} FROM incidents WHERE id = ?",
                    (commit.incident_id,),
                ).fetchone()
                before = {} if row is None else dict(zip(names, row, strict=True))
                state_before = State(before["state"]) if before else None
                changed = {
                    name: value
                    for name, value in _columns(snapshot, tagged=self._tagged).items()
                    if name == "version" or before.get(name) != value
                }
            updated = conn.execute(
                _update_sql(tuple(changed)),
                (*changed.values(), commit.incident_id, commit.expected_version),
            )
            if updated.rowcount != 1:
                row = conn.execute(
                    "SELECT version FROM incidents WHERE id = ?", (commit.incident_id,)
                ).fetchone()
                actual = 0 if row is None else int(row[0])
                raise ConcurrencyConflict(commit.incident_id, commit.expected_version, actual)
        announced = len(rows[0]) > len(_EVENT_ROW_COLUMNS)  # with notify: see _notify_columns
        insert = _INSERT_ANNOUNCED_EVENT if announced else _INSERT_EVENT
        try:
            if len(rows) == 1:
                conn.execute(insert, rows[0])
            else:
                conn.executemany(insert, rows)
        except sqlite3.IntegrityError:
            raise ConcurrencyConflict(
                commit.incident_id, commit.expected_version, commit.expected_version + 1
            ) from None
        # Most commands change no label, field, reference or action item: no index rows.
        if self._tagged and commit.index_changed:
            write_tags(conn, commit, previous)
        if self._guarded and commit.index_changed:
            write_access(conn, commit, previous)
        # Most commands (evidence, notes, deploys) change no searchable text: no search I/O.
        if self._searchable and (previous is None or search_text_changed(previous, snapshot)):
            self._index_search(conn, commit)
        if self._timed:
            _keep_milestones(conn, commit, previous)
        if previous is not None:
            state_before = previous.state
        checkpoint = None
        if checkpoint_due(commit.expected_version, state_before, snapshot):
            if self._chunked:
                checkpoint = self._write_checkpoint(conn, snapshot, commit.expected_version == 0)
            else:
                self._write_snapshot(conn, snapshot, encode_checkpoint(snapshot))
        if commit.outbox and not announced:
            # Items that are not fresh announcements: rows now, behind the older ones.
            self._materialize(conn)
            conn.executemany(
                _INSERT_OUTBOX,
                [_outbox_row(item) for item in sorted(commit.outbox, key=lambda i: i.event.seq)],
            )
        if commit.idempotency is not None:
            self._keep_key(conn, commit)
        return checkpoint

    def _write_checkpoint(
        self, conn: sqlite3.Connection, snapshot: Incident, new: bool
    ) -> ChunkedCheckpoint:
        """The snapshot's head, and its long lists' new items as chunks (see stores/_chunks)."""
        stored = {}
        if not new:
            rows = conn.execute(_STORED_CHUNKS, (snapshot.id,))
            stored = {name: (chunks, count, last) for name, chunks, count, last in rows}
        try:
            checkpoint = chunked_checkpoint(snapshot, stored, self._chunk_key)
            body = dumps(checkpoint.head)
        except (TypeError, ValueError) as exc:
            raise self._fail(f"cannot serialise the snapshot of {snapshot.id}", exc) from exc
        if checkpoint.clear:
            marks = ", ".join("?" * len(checkpoint.clear))
            conn.execute(
                f"DELETE FROM snapshot_lists WHERE incident_id = ? AND name IN ({marks})",
                (snapshot.id, *checkpoint.clear),
            )
        if checkpoint.rows:
            conn.executemany(
                "INSERT INTO snapshot_lists (incident_id, name, chunk, version, count, items) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(snapshot.id, *attrs.astuple(row)) for row in checkpoint.rows],
            )
        self._write_snapshot(conn, snapshot, body)
        return checkpoint

    def _write_snapshot(self, conn: sqlite3.Connection, snapshot: Incident, body: str) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO snapshots (incident_id, version, body) VALUES (?, ?, ?)",
            (snapshot.id, snapshot.version, body),
        )

    def _index_search(self, conn: sqlite3.Connection, commit: Commit) -> None:
        """Write the incident's searchable text and its index entry if they changed.

        Called when the text may have changed: a new incident, a commit whose
        snapshot before is not cached (the stored row then decides), or a
        change of the title, symptom, root cause or gotcha.
        """
        text = SearchText.of(commit.snapshot)
        old = None
        if commit.expected_version > 0:
            old = conn.execute(_SELECT_SEARCH_TEXT, (commit.incident_id,)).fetchone()
        if old is None:
            row_id = conn.execute(_INSERT_SEARCH_TEXT, (commit.incident_id, *text)).lastrowid
        else:
            row_id = old[0]
            if SearchText(*old[1:]) == text:
                return
            if self._fts:
                conn.execute(_UNINDEX, (row_id,))
            conn.execute(_UPDATE_SEARCH_TEXT, (*text, row_id))
        if self._fts:
            conn.execute(_INDEX, (row_id, *map(indexed, text.fields)))
        else:
            conn.execute("UPDATE search_state SET index_stale = 1 WHERE index_stale = 0")

    def _keep_key(self, conn: sqlite3.Connection, commit: Commit) -> None:
        record = commit.idempotency
        assert record is not None
        try:
            conn.execute(
                "INSERT INTO idempotency_keys (key, fingerprint, incident_id, version) "
                "VALUES (?, ?, ?, ?)",
                (record.key, record.fingerprint, record.incident_id, record.version),
            )
        except sqlite3.IntegrityError:
            # Another command kept this key first; the transaction is rolled back whole.
            check_key_unused(self._idempotency(conn, record.key), commit)
            raise

    def idempotency(self, key: str) -> IdempotencyRecord | None:
        """The record kept for ``key``, if any."""
        return self._read(lambda conn: self._idempotency(conn, key))

    def _idempotency(self, conn: sqlite3.Connection, key: str) -> IdempotencyRecord | None:
        row = conn.execute(
            "SELECT key, fingerprint, incident_id, version FROM idempotency_keys WHERE key = ?",
            (key,),
        ).fetchone()
        return None if row is None else IdempotencyRecord(*row)

    def load(self, incident_id: str) -> Incident:
        """The current snapshot. Raises IncidentNotFound."""
        with self._lock:
            conn = self._connection()
            try:  # the common case, one indexed read: the cached snapshot is current
                row = conn.execute(_SELECT_VERSION, (incident_id,)).fetchone()
            except sqlite3.Error:
                row = None
            cached = self._cache.get(incident_id)
            if row is not None and cached is not None and cached[0].version == row[0]:
                return cached[0]
            return self._retrying(lambda: self._load(conn, incident_id))

    def cached(self, incident_id: str) -> Incident | None:
        """The snapshot last seen of the incident, from memory only; it may be stale."""
        if self._closed or self._forks != _forks[0]:
            return None  # load() says why, or a forked child starts afresh
        found = self._cache.get(incident_id)
        return None if found is None else found[0]

    def history(self, incident_id: str, after: int = 0) -> Sequence[Event]:
        """The events after seq ``after``, in order. Raises IncidentNotFound."""

        def read(conn: sqlite3.Connection) -> Sequence[Event]:
            events = self._events(
                conn, "WHERE incident_id = ? AND seq > ? ORDER BY seq", (incident_id, after)
            )
            if not events and not self._exists(conn, incident_id):
                raise IncidentNotFound(incident_id)
            return events

        return tuple(self._read(read))

    def exists(self, incident_id: str) -> bool:
        """True when an incident with this id exists."""
        return self._read(lambda conn: self._exists(conn, incident_id))
