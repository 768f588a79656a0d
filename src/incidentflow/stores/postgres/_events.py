"""PostgresStore as an event store: a commit in one statement, one round trip."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import psycopg
import psycopg.errors

from ..._events import Event
from ..._metrics import milestone_times
from ..._model import Incident, State
from ..._serialization import incident_to_dict
from ..._similar import (
    SearchText,
    search_text_changed,
)
from ...exceptions import (
    ConcurrencyConflict,
    DuplicateIncident,
    IncidentNotFound,
)
from .._appending import CheckedAppend, check_key_unused
from .._base import (
    Commit,
    IdempotencyRecord,
)
from .._chunks import CHUNKS, ChunkedCheckpoint, chunked_checkpoint, has_long_lists, packed
from .._snapshots import (
    checkpoint_due,
)
from ._access import write_access
from ._schema import PostgresBase
from ._tags import write_tags
from ._values import (
    _COLUMNS,
    _changed_columns,
    _columns,
    _dump_json,
    _event_columns,
    _from_column,
    _jsonb,
    _milestone_params,
    _outbox_columns,
    _param,
    _search_params,
    _to_column,
)


class PostgresEventStore(PostgresBase, CheckedAppend):
    """Histories and snapshots in PostgreSQL, versioned by the incident's row."""

    def _write_commit(self, commit: Commit) -> None:
        """Write a checked commit in one transaction, one round trip."""
        try:
            events = _event_columns(commit.events)
        except (TypeError, ValueError) as exc:
            raise self._fail(f"cannot serialise the events of {commit.incident_id}", exc) from exc
        cached = self._cache.get(commit.incident_id)
        previous = None
        if cached is not None and cached[0].version == commit.expected_version:
            previous = cached[0]
        checkpoint = self._write(
            f"cannot append to {commit.incident_id}",
            lambda conn: self._apply_with_tags(conn, commit, events, previous),
        )
        if checkpoint is not None:
            checkpoint.written()
        self._cache.put(commit.snapshot, commit.snapshot.version)

    def _apply_with_tags(
        self,
        conn: psycopg.Connection[Any],
        commit: Commit,
        events: dict[str, Any],
        previous: Incident | None,
    ) -> ChunkedCheckpoint | None:
        """The commit's statement, and its index rows in the same transaction if they change.

        Most commands change no label, field, reference or action item: they stay
        one statement in one round trip.
        """
        if not (self._tagged and commit.index_changed):
            return self._apply(conn, commit, events, previous)
        try:
            with conn.transaction():
                checkpoint = self._apply(conn, commit, events, previous, in_transaction=True)
                known = previous if commit.expected_version > 0 else None
                write_tags(conn, self._sql.schema, commit.snapshot, known)
                if self._guarded:
                    new = commit.expected_version == 0
                    write_access(conn, self._sql.schema, commit.snapshot, known, new=new)
        except _Refused as refused:
            # Rolled back: the reads that name the refusal run outside the aborted transaction.
            raise self._refused(conn, commit, refused.violation) from None
        return checkpoint

    def _apply(
        self,
        conn: psycopg.Connection[Any],
        commit: Commit,
        events: dict[str, Any],
        previous: Incident | None,
        *,
        in_transaction: bool = False,
    ) -> ChunkedCheckpoint | None:
        """Write ``commit`` in one statement; the checkpoint written, if one was."""
        snapshot = commit.snapshot
        expected = commit.expected_version
        state_before = None if previous is None else previous.state
        if previous is None and expected > 0:
            # Not cached: the state before decides whether the checkpoint is rewritten.
            row = conn.execute(self._sql.select_state, (commit.incident_id,)).fetchone()
            if row is None or row[0] != expected:
                actual = 0 if row is None else int(row[0])
                raise ConcurrencyConflict(commit.incident_id, expected, actual)
            state_before = State(row[1])
        params: dict[str, Any] = {"id": commit.incident_id, "expected": expected, **events}
        if expected == 0:
            params.update(zip(map(_param, _COLUMNS), _columns(snapshot), strict=True))
            columns: tuple[str, ...] = ()
        else:
            changes = _changed_columns(snapshot, previous)
            if not self._tagged:
                changes.pop("type", None)
                changes.pop("open_action_items", None)
            params.update((_param(name), value) for name, value in changes.items())
            columns = tuple(changes)
        body = checkpoint = None
        if checkpoint_due(expected, state_before, snapshot):
            body, checkpoint = self._checkpoint_params(conn, snapshot, expected == 0, params)
        record = commit.idempotency
        if record is not None:
            params.update(
                key=_to_column(record.key),
                fingerprint=_to_column(record.fingerprint),
                key_incident=record.incident_id,
                key_version=record.version,
            )
        if commit.outbox:
            params.update(_outbox_columns(commit.outbox))
        milestones = self._milestones_params(snapshot, expected, previous, params)
        # Most commands change no searchable text: they skip the search row entirely.
        search = self._searchable and (previous is None or search_text_changed(previous, snapshot))
        if search:
            params.update(_search_params(SearchText.of(snapshot)))
        sql = self._sql.commit(
            columns,
            body is not None,
            record is not None,
            bool(commit.outbox),
            search,
            self._tagged,
            len(commit.events) == 1,
            self._chunked,
            milestones,
        )
        try:
            if commit.outbox:
                # Two statements in one simple query: one transaction, one round trip,
                # and the outbox's statement sees the incident as the first one left it.
                cursor: psycopg.Cursor[Any] = psycopg.ClientCursor(conn)
                cursor.execute(sql, params)
            else:
                cursor = conn.execute(sql, params)
            found = cursor.fetchone()
        except psycopg.errors.UniqueViolation as exc:
            if in_transaction:
                raise _Refused(exc) from None
            raise self._refused(conn, commit, exc) from None
        if found is None or found[0] != 1:
            raise self._refusal(conn, commit)
        return checkpoint

    def _milestones_params(
        self, snapshot: Incident, expected: int, previous: Incident | None, params: dict[str, Any]
    ) -> int:
        """Add the milestones row to ``params`` if the commit may move it; how to write it.

        Most commands move no milestone: they write no row. Without the snapshot
        before (not cached), the row is written unless the stored one holds it.
        """
        if not self._measured:
            return 0
        times = milestone_times(snapshot)
        if expected == 0:
            write = any(at is not None for at in times)  # no row: no milestone reached
        elif previous is None:
            params.update(_milestone_params(snapshot, times))
            return 2
        else:
            write = (
                times != milestone_times(previous) or snapshot.declared_at != previous.declared_at
            )
        if write:
            params.update(_milestone_params(snapshot, times))
        return 1 if write else 0

    def _refused(
        self, conn: psycopg.Connection[Any], commit: Commit, exc: psycopg.errors.UniqueViolation
    ) -> Exception:
        """The error of a commit a UNIQUE constraint refused (idempotency key, seq, id)."""
        if exc.diag.table_name == "idempotency_keys":
            record = commit.idempotency
            assert record is not None
            check_key_unused(self._idempotency(conn, record.key), commit)
            expected = commit.expected_version
            return ConcurrencyConflict(commit.incident_id, expected, expected + 1)
        return self._refusal(conn, commit)

    def _checkpoint_params(
        self,
        conn: psycopg.Connection[Any],
        snapshot: Incident,
        new: bool,
        params: dict[str, Any],
    ) -> tuple[str, ChunkedCheckpoint | None]:
        """Add the checkpoint's head and chunks (see stores/_chunks) to ``params``."""
        checkpoint = None
        try:
            if not self._chunked:
                body = _dump_json(incident_to_dict(snapshot))
            else:
                stored = {}
                # Without a long list nothing stored is kept (the statement drops any
                # chunks), so there is nothing to ask about first.
                if not new and has_long_lists(snapshot):
                    found = conn.execute(self._sql.stored_chunks, (snapshot.id,))
                    stored = {name: (chunks, count, last) for name, chunks, count, last in found}
                checkpoint = chunked_checkpoint(snapshot, stored, self._chunk_key, packed)
                body = _dump_json(checkpoint.head)
        except (TypeError, ValueError) as exc:
            raise self._fail(f"cannot serialise the snapshot of {snapshot.id}", exc) from exc
        params.update(version=snapshot.version, body=_jsonb(body))
        if checkpoint is not None:
            rows = checkpoint.rows
            rewritten = {row.name for row in rows if row.chunk == 0}
            params.update(
                kept=[entry[0] for entry in checkpoint.head.get(CHUNKS, ())],
                rewritten=[name for name in checkpoint.clear if name in rewritten],
                chunk_name=[row.name for row in rows],
                chunk_no=[row.chunk for row in rows],
                chunk_version=[row.version for row in rows],
                chunk_count=[row.count for row in rows],
                chunk_items=[row.items for row in rows],
            )
        return body, checkpoint

    def _refusal(self, conn: psycopg.Connection[Any], commit: Commit) -> Exception:
        if commit.expected_version == 0:
            return DuplicateIncident(commit.incident_id)
        row = conn.execute(self._sql.select_version, (commit.incident_id,)).fetchone()
        actual = 0 if row is None else int(row[0])
        return ConcurrencyConflict(commit.incident_id, commit.expected_version, actual)

    def load(self, incident_id: str) -> Incident:
        """The current snapshot. Raises IncidentNotFound."""
        return self._read(f"cannot load {incident_id}", lambda conn: self._load(conn, incident_id))

    def cached(self, incident_id: str) -> Incident | None:
        """The snapshot last seen of the incident, from memory only; it may be stale."""
        if self._closed or self._pid != os.getpid():
            return None  # load() says why, or a forked child starts afresh
        found = self._cache.get(incident_id)
        return None if found is None else found[0]

    def history(self, incident_id: str, after: int = 0) -> Sequence[Event]:
        """The events after seq ``after``, in order. Raises IncidentNotFound."""

        def read(conn: psycopg.Connection[Any]) -> list[Event]:
            events = self._events(conn.execute(self._sql.select_history, (incident_id, after)))
            if not events and conn.execute(self._sql.exists, (incident_id,)).fetchone() is None:
                raise IncidentNotFound(incident_id)
            return events

        return tuple(self._read(f"cannot read the history of {incident_id}", read))

    def idempotency(self, key: str) -> IdempotencyRecord | None:
        """The record kept for ``key``, if any."""
        return self._read(
            "cannot read an idempotency key", lambda conn: self._idempotency(conn, key)
        )

    def _idempotency(self, conn: psycopg.Connection[Any], key: str) -> IdempotencyRecord | None:
        row = conn.execute(self._sql.select_key, (_to_column(key),)).fetchone()
        if row is None:
            return None
        return IdempotencyRecord(_from_column(row[0]), _from_column(row[1]), row[2], row[3])

    def exists(self, incident_id: str) -> bool:
        """True when an incident with this id exists."""
        return self._read(
            f"cannot look up {incident_id}",
            lambda conn: conn.execute(self._sql.exists, (incident_id,)).fetchone() is not None,
        )


class _Refused(Exception):
    """A UNIQUE violation inside a commit's transaction, named once it is rolled back."""

    def __init__(self, violation: psycopg.errors.UniqueViolation) -> None:
        super().__init__(str(violation))
        self.violation = violation
