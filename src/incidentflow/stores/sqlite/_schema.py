"""SQLiteStore's schema, its migrations, and the connection every part of the store uses."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from ..._events import Event
from ..._model import Incident
from ..._similar import (
    indexed,
)
from ..._waiting import NO_WAITING, WouldWait
from ...exceptions import (
    ConfigError,
    IncidentNotFound,
    StoreError,
)
from .._chunks import decode_checkpoints
from .._paths import cache_size as _cache_size
from .._paths import store_path
from .._snapshots import (
    SnapshotCache,
    decode_event,
    load_snapshot,
)
from ._migrations import (
    _ACCESS_SCHEMA,
    _CHUNKS_SCHEMA,
    _DURATIONS_SCHEMA,
    _MIGRATIONS,
    _MILESTONES_SCHEMA,
    _SEARCH_SCHEMA,
    _TAGS_SCHEMA,
    APPLICATION_ID,
)
from ._rows import (
    _CREATE_SEARCH_INDEX,
    _EVENT_COLUMNS,
    _INDEX,
    _INSERT_OUTBOX,
    _SEARCH_COLUMNS,
    _SELECT_VERSION,
    _UNMATERIALIZED,
    UnmeasuredConnection,
    _contains_casefolded,
    _hint,
    _is_busy,
    _item_id,
    _rollback,
)

#: The schema this release writes. Databases at an older version are migrated forward.
SCHEMA_VERSION = 9


_T = TypeVar("_T")


@functools.cache
def _fts5_available() -> bool:
    """True when this Python's sqlite3 has FTS5 and the tokenizer the search index uses."""
    try:
        with contextlib.closing(sqlite3.connect(":memory:")) as conn:
            conn.execute(
                "CREATE VIRTUAL TABLE probe USING fts5(text, "
                "tokenize = 'porter unicode61 remove_diacritics 2')"
            )
    except sqlite3.Error:
        return False
    return True


#: Checkpoints and their chunked lists, in one statement: one moment of the database.
#: Rows as ``decode_checkpoints`` takes them; ``{ids}`` is as many marks as there are ids.
_SELECT_CHECKPOINTS = (
    "SELECT incident_id, NULL, NULL, NULL, NULL, body, NULL FROM snapshots "
    "WHERE incident_id IN ({ids}) UNION ALL "
    "SELECT incident_id, name, chunk, version, count, NULL, items FROM snapshot_lists "
    "WHERE incident_id IN ({ids})"
)
#: The same before the chunks table (a store pinned to an older schema, a migration).
_SELECT_BODIES = (
    "SELECT incident_id, NULL, NULL, NULL, NULL, body, NULL FROM snapshots "
    "WHERE incident_id IN ({ids})"
)

# How many times this process is a forked child: a store made before a fork reconnects.
_forks = [0]

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))

#: How long, in all, a write keeps retrying a locked database before giving up.
_RETRY_SECONDS = 30.0


#: The longest busy_timeout: SQLite keeps it in milliseconds in a 32-bit int.
_BUSY_TIMEOUT_MAX = (2**31 - 1) // 1000


def _check_seconds(busy_timeout: object) -> None:
    """Refuse a busy_timeout SQLite cannot take: not a number, negative, NaN, too long."""
    if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)):
        raise ConfigError(
            "busy_timeout", f"expected seconds (a number), got {type(busy_timeout).__name__}"
        )
    if not 0 <= busy_timeout <= _BUSY_TIMEOUT_MAX:  # also False for NaN
        shown = (
            f"a {busy_timeout.bit_length():,}-bit number"
            if isinstance(busy_timeout, int) and busy_timeout.bit_length() > 64
            else repr(busy_timeout)
        )
        raise ConfigError(
            "busy_timeout", f"expected seconds from 0 to {_BUSY_TIMEOUT_MAX:,}, got {shown}"
        )


class SQLiteBase:
    """The connection, schema and shared reads of a SQLite store (see SQLiteStore)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout: float = 5.0,
        cache_size: int = 256,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ConfigError("synchronous", f"expected 'FULL' or 'NORMAL', got {synchronous!r}")
        _check_seconds(busy_timeout)
        _cache_size(cache_size)
        self.path = store_path(path, option="path", noun="file")
        self._where = str(self.path)
        self.synchronous = synchronous
        self.busy_timeout = float(busy_timeout)
        self._lock = threading.RLock()
        self._cache: SnapshotCache[int] = SnapshotCache(cache_size)
        self._forks = _forks[0]
        self._closed = False
        # A store pinned to an older schema (as tests of migrations do) keeps no search
        # or milestones rows.
        self._searchable = SCHEMA_VERSION >= _SEARCH_SCHEMA
        self._timed = SCHEMA_VERSION >= _MILESTONES_SCHEMA
        self._tagged = SCHEMA_VERSION >= _TAGS_SCHEMA
        self._guarded = SCHEMA_VERSION >= _ACCESS_SCHEMA
        self._measured = SCHEMA_VERSION >= _DURATIONS_SCHEMA
        self._chunked = SCHEMA_VERSION >= _CHUNKS_SCHEMA
        # What this store's marks on stored lists carry: another store trusts none of them.
        self._chunk_key = object()
        self._fts = self._searchable and _fts5_available()
        self._conn = self._connect()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _fail(self, what: str, exc: BaseException) -> StoreError:
        problem = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return StoreError(f"{self.path}: {what}: {problem}{_hint(problem)}")

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{self.path}: cannot create the folder {self.path.parent}: {exc.strerror}; "
                "check that it is writable"
            ) from exc
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                # A store pinned before schema 8 writes milestones without their durations.
                factory=sqlite3.Connection if self._measured else UnmeasuredConnection,
            )
        except sqlite3.Error as exc:
            raise StoreError(
                f"{self.path}: cannot open the database: {exc}; "
                "check that the file and its folder are readable and writable"
            ) from exc
        try:
            self._retrying(lambda: self._prepare(conn))
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        try:
            # Read-only checks first: a foreign or newer file is refused untouched.
            # One read transaction: another process creating the schema meanwhile
            # must not be seen half (its tables without its application id).
            conn.execute("BEGIN")
            try:
                (app_id,) = conn.execute("PRAGMA application_id").fetchone()
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            finally:
                conn.execute("COMMIT")
            if tables and app_id != APPLICATION_ID:
                raise StoreError(
                    f"{self.path}: not an incidentflow database (it holds other tables: "
                    f"{', '.join(sorted(tables)[:5])}); point the store at a new file"
                )
            version = self._schema_version(conn) if tables else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: the database has schema version {version}, newer than "
                    f"{SCHEMA_VERSION}, the newest this release of incidentflow knows; "
                    "upgrade incidentflow to open it"
                )
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"{self.path}: cannot switch the database to WAL mode (it stays in {mode})"
                )
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            conn.create_function(
                "incidentflow_contains", 2, _contains_casefolded, deterministic=True
            )
            if version < SCHEMA_VERSION:
                self._migrate(conn)
            if self._fts:
                self._sync_search_index(conn)
        except sqlite3.Error as exc:
            if _is_busy(exc):
                raise
            raise StoreError(
                f"{self.path}: cannot use this file as an incidentflow database: {exc}{_hint(exc)}"
            ) from exc

    def _sync_search_index(self, conn: sqlite3.Connection) -> None:
        """Build FTS5's index of the searchable text if it is missing or stale.

        It is stale after migration 3, and after a Python without FTS5 wrote
        to this file (such a store keeps ``search_text`` alone up to date).
        """
        row = conn.execute("SELECT index_stale FROM search_state").fetchone()
        if row is None or not row[0]:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT index_stale FROM search_state").fetchone()[0]:
                conn.execute("DROP TABLE IF EXISTS search_index")
                conn.execute(_CREATE_SEARCH_INDEX)
                rows = conn.execute(f"SELECT id, {_SEARCH_COLUMNS} FROM search_text").fetchall()
                conn.executemany(_INDEX, [(row[0], *map(indexed, row[1:])) for row in rows])
                conn.execute("UPDATE search_state SET index_stale = 0")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            current = self._schema_version(conn) if "schema_version" in tables else 0
            now = datetime.now(UTC).isoformat()
            for target in range(current + 1, SCHEMA_VERSION + 1):
                # A step that reads snapshots reads them as the schema before it keeps them.
                self._chunked = target > _CHUNKS_SCHEMA
                for statement in _MIGRATIONS[target - 1]:
                    if isinstance(statement, str):
                        conn.execute(statement)
                    else:
                        statement(self, conn)
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (target, now))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        finally:
            self._chunked = SCHEMA_VERSION >= _CHUNKS_SCHEMA

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed; open a new one")
        if self._forks != _forks[0]:
            # A forked child must not share its parent's connection.
            self._forks = _forks[0]
            self._cache.clear()
            self._conn = self._connect()
        return self._conn

    def _try_hold(self) -> Callable[[], None] | None:
        """Hold the store for one call that must not wait; None if another thread has it.

        The lock is re-entrant, so the call's own reads and writes take it
        again; SQLite's own wait for another process's write is off meanwhile
        (``busy_timeout`` 0), so a locked file raises WouldWait at once (see
        :mod:`incidentflow._waiting`). Returns what gives both back.
        """
        if not self._lock.acquire(blocking=False):
            return None
        try:
            conn = self._connection()
            conn.execute("PRAGMA busy_timeout=0")
        except BaseException:
            self._lock.release()
            raise

        def release() -> None:
            try:
                conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            finally:
                self._lock.release()

        return release

    def _retrying(self, work: Callable[[], _T]) -> _T:
        deadline = time.monotonic() + _RETRY_SECONDS
        pause = 0.001
        while True:
            try:
                return work()
            except sqlite3.Error as exc:
                if not _is_busy(exc):
                    raise self._fail("the database failed", exc) from exc
                inline = NO_WAITING.get()
                if inline is not None and not inline.committed:
                    raise WouldWait(f"{self.path} is locked by another process") from exc
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"{self.path}: the database stayed locked for {_RETRY_SECONDS:.0f} s; "
                        "another process holds a write transaction open"
                    ) from exc
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, 0.1)

    def _read(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            conn = self._connection()
            return self._retrying(lambda: work(conn))

    def _write(self, work: Callable[[sqlite3.Connection], _T], *, durable: bool = True) -> _T:
        """Run ``work`` in one write transaction.

        ``durable=False`` is for delivery bookkeeping (claims, delivered marks):
        it commits without waiting for the disk. A power cut can lose such a
        mark, which only means a notification is delivered again, as
        at-least-once delivery allows; the next durable commit syncs it anyway.
        """
        with self._lock:
            conn = self._connection()
            relaxed = not durable and self.synchronous == "FULL"

            def attempt() -> _T:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
                inline = NO_WAITING.get()
                if inline is not None:
                    inline.committed = True  # from here on, running the call again repeats it
                return result

            if not relaxed:
                return self._retrying(attempt)
            conn.execute("PRAGMA synchronous=NORMAL")
            try:
                return self._retrying(attempt)
            finally:
                conn.execute(f"PRAGMA synchronous={self.synchronous}")

    def _materialize(self, conn: sqlite3.Connection) -> None:
        """Give the events announced since the last call their outbox rows, in commit order.

        Runs at the start of every delivery write, inside its transaction, so the
        rows exist before anything is claimed, marked or re-driven; a command only
        names its notifiers on its events' rows (``notify``).
        """
        (cursor,) = conn.execute("SELECT position FROM outbox_cursor").fetchone()
        (last,) = conn.execute("SELECT max(position) FROM events").fetchone()
        if last is None or last <= cursor:
            return
        rows = []
        for incident_id, seq, notify in conn.execute(_UNMATERIALIZED, (cursor, last)):
            for notifier in self._notifiers(notify, incident_id, seq):
                item_id = _item_id(incident_id, seq, notifier)
                rows.append((item_id, incident_id, seq, notifier, 0, None, "", 0, 0))
        if rows:
            conn.executemany(_INSERT_OUTBOX, rows)
        conn.execute("UPDATE outbox_cursor SET position = ?", (last,))

    def _notifiers(self, notify: str, incident_id: str, seq: int) -> list[str]:
        try:
            names = json.loads(notify)
            if isinstance(names, list) and all(isinstance(name, str) for name in names):
                return names
        except ValueError:
            pass
        raise StoreError(
            f"{self.path}: event {seq} of {incident_id} names its notifiers wrongly: {notify!r}"
        )

    def _load(self, conn: sqlite3.Connection, incident_id: str) -> Incident:
        """The snapshot at the version the incident's row holds (checkpoint and tail)."""
        row = conn.execute(_SELECT_VERSION, (incident_id,)).fetchone()
        if row is None:
            raise IncidentNotFound(incident_id)

        def checkpoint() -> Incident | None:
            return self._checkpoints(conn, [incident_id]).get(incident_id)

        def tail(after: int, upto: int) -> Sequence[Event]:
            return self._events(
                conn,
                "WHERE incident_id = ? AND seq > ? AND seq <= ? ORDER BY seq",
                (incident_id, after, upto),
            )

        return load_snapshot(
            self._cache,
            incident_id,
            int(row[0]),
            checkpoint=checkpoint,
            tail=tail,
            where=self._where,
        )

    def _checkpoints(
        self, conn: sqlite3.Connection, incident_ids: Sequence[str]
    ) -> dict[str, Incident]:
        """The stored checkpoints of ``incident_ids``, with their chunked lists, at one moment."""
        sql = _SELECT_CHECKPOINTS if self._chunked else _SELECT_BODIES
        marks = ", ".join("?" * len(incident_ids))
        params = tuple(incident_ids) * (2 if self._chunked else 1)
        rows = conn.execute(sql.format(ids=marks), params)
        return decode_checkpoints(rows, self._chunk_key, self._where)

    def _events(
        self, conn: sqlite3.Connection, where: str, params: tuple[Any, ...]
    ) -> Sequence[Event]:
        rows = conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events {where}", params).fetchall()
        return [decode_event(row, self._where) for row in rows]

    def _exists(self, conn: sqlite3.Connection, incident_id: str) -> bool:
        row = conn.execute("SELECT 1 FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        return row is not None

    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        return self._read(self._schema_version)

    def close(self) -> None:
        """Close the connection. Closing twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._cache.clear()
            if self._forks == _forks[0]:
                try:
                    self._conn.close()
                except sqlite3.Error as exc:
                    raise self._fail("cannot close the database", exc) from exc
