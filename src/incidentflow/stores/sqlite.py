"""SQLiteStore: the embedded default. One file, several processes at once, crash-safe.

Durability: the database runs in WAL mode with ``synchronous=FULL`` by default,
so every committed command is on disk before ``append`` returns and survives a
power cut, not only a crash of the process. ``synchronous="NORMAL"`` trades the
last few commands before a power cut (never a crash of the process) for speed.

Concurrency: writes run in ``BEGIN IMMEDIATE`` transactions, so two processes
never interleave inside one; a busy database is waited for (``busy_timeout``)
and a write that still finds it locked is retried with a jittered backoff.
Optimistic concurrency is a versioned ``UPDATE`` of the incident row, backed by
``UNIQUE (incident_id, seq)`` on the events.

Layout (schema version 4)::

    events(incident_id, seq, type, at, actor, data JSON, idempotency_key, schema_version,
           notify JSON)            UNIQUE (incident_id, seq); notify: the notifiers that
                                   announce the event (version 4)
    incidents(id, version, state, severity, is_open, commander, title,
              declared_at µs, updated_at µs)            small row, indexed for list()
    snapshots(incident_id, version, body JSON)          checkpoint: each time the history
                                                        doubles, and on every change of state
    outbox(position, id, incident_id, seq, notifier,    undelivered notifications and
           attempts, next_attempt_at µs, last_error,    their delivery state (version 2)
           dead, claimed_by, claimed_until µs,
           ready_at µs, head)
    outbox_cursor(position)                             the last event given its outbox rows
    idempotency_keys(key, fingerprint, incident_id, version)
    search_text(id, incident_id, title, symptom,        what similar() searches (version 3),
                root_cause, gotcha, gotcha_slug)        written only when it changes
    search_index FTS5(title, symptom, root_cause,       its words, porter-stemmed, under
                      gotcha)                           search_text's id; bm25() ranks
    search_state(index_stale)                           rebuild search_index on next open
    schema_version(version, migrated_at)                forward migrations

The outbox is a set of streams, one per (incident, notifier), each delivered in
seq order: only a stream's head (its oldest row that is not dead) may be
claimed. Two derived columns keep claiming O(log n) however long the backlog:
``head`` marks each stream's head (kept up to date by every write to the
outbox), and ``ready_at`` is when the row may next be claimed (0 for a new row,
else the later of its next attempt and the end of its claim). A claim then
reads the partial index ``outbox_due_heads (ready_at, position) WHERE head = 1``
from its start and stops after ``limit`` rows (``outbox_incident_heads`` for
one incident's streams).

A command writes no outbox row itself: the notifiers its routing picked are
named in its events' ``notify`` column, in the same row and transaction as the
event, so an announcement is committed exactly when its event is. Delivery's
next write (a claim, a delivered mark) gives the events after
``outbox_cursor`` their outbox rows, in commit order, and moves the cursor on:
the rows and their index entries are written by delivery, in batches and
without waiting for the disk, not by each command. Commands without notifiers
leave ``notify`` empty and pay nothing for any of this.

The full snapshot lives apart from the small indexed row (updating a row rewrites
all of it) and is rewritten only at checkpoints; a load folds the events after
the checkpoint, and each connection caches the last snapshot of each incident
by version, so a command normally reads one indexed row (see
:mod:`incidentflow.stores._snapshots`). A command costs the same on an incident
with 2,000 events as on one with 10.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

from .._events import Event
from .._metrics import MILESTONE_TIMES, milestone_times
from .._model import Incident, Severity, State
from .._serialization import converter, event_from_dict, incident_from_json, incident_to_json
from .._similar import (
    FIELD_WEIGHTS,
    FIELDS,
    SearchDocument,
    SearchText,
    SimilarIncident,
    indexed,
    rank,
    search_text_changed,
)
from ..exceptions import (
    ConcurrencyConflict,
    ConfigError,
    DuplicateIncident,
    IdempotencyConflict,
    IncidentNotFound,
    StoreError,
)
from ._base import (
    Commit,
    IdempotencyRecord,
    IncidentQuery,
    IncidentSummary,
    OutboxItem,
    Store,
)
from ._snapshots import (
    SnapshotCache,
    check_commit,
    checkpoint_due,
    fold_onto,
    from_micros,
    micros,
)

if TYPE_CHECKING:
    from .._metrics import Milestones

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

#: The schema this release writes. Databases at an older version are migrated forward.
SCHEMA_VERSION = 5

#: ``PRAGMA application_id`` of an incidentflow database ("IFLW"): tells ours from foreign files.
APPLICATION_ID = 0x49464C57

_T = TypeVar("_T")

# -- similar incidents: search_text rows and FTS5's index of them (schema version 3) ------

_SEARCH_COLUMNS = "title, symptom, root_cause, gotcha"
_INSERT_SEARCH_TEXT = (
    f"INSERT INTO search_text (incident_id, {_SEARCH_COLUMNS}, gotcha_slug) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_SELECT_SEARCH_TEXT = (
    f"SELECT id, {_SEARCH_COLUMNS}, gotcha_slug FROM search_text WHERE incident_id = ?"
)
_UPDATE_SEARCH_TEXT = (
    "UPDATE search_text SET title = ?, symptom = ?, root_cause = ?, gotcha = ?, "
    "gotcha_slug = ? WHERE id = ?"
)
#: The index holds each search_text row's words (incidentflow._similar.indexed) under
#: the row's id: it splits them exactly as queries are split, and stems them.
_CREATE_SEARCH_INDEX = (
    f"CREATE VIRTUAL TABLE search_index USING fts5({_SEARCH_COLUMNS}, "
    "tokenize = 'porter unicode61 remove_diacritics 2')"
)
_INDEX = f"INSERT INTO search_index (rowid, {_SEARCH_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
_UNINDEX = "DELETE FROM search_index WHERE rowid = ?"
#: The best matches, ties to the newest; bm25() weighs the columns as the other stores do.
_SEARCH = (
    f"SELECT t.id, -bm25(search_index, {', '.join(map(str, FIELD_WEIGHTS))}), t.incident_id, "
    "i.severity, i.state, i.declared_at, t.title, t.symptom, t.root_cause, t.gotcha_slug "
    "FROM search_index JOIN search_text t ON t.id = search_index.rowid "
    "JOIN incidents i ON i.id = t.incident_id "
    "WHERE search_index MATCH ?1 AND t.incident_id IS NOT ?2 "
    "ORDER BY 2 DESC, i.declared_at DESC, t.incident_id DESC LIMIT ?3"
)
#: Which columns of the best matches matched: highlight() marks each hit, lengthening the text.
_SEARCH_HITS = (
    "SELECT rowid, "
    + ", ".join(
        f"length(highlight(search_index, {n}, ?1, '')) > length({name})"
        for n, name in enumerate(_SEARCH_COLUMNS.split(", "))
    )
    + " FROM search_index WHERE search_index MATCH ?2 AND rowid IN ({marks})"
)
_SEARCH_DOCUMENTS = (
    "SELECT t.incident_id, i.severity, i.state, i.declared_at, t.title, t.symptom, "
    "t.root_cause, t.gotcha, t.gotcha_slug FROM search_text t "
    "JOIN incidents i ON i.id = t.incident_id"
)


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


def _fts_phrase(term: str) -> str:
    # A quoted string is a phrase to FTS5: its operators and column filters mean nothing inside.
    return '"' + term.replace('"', '""') + '"'


def _fill_search_text(store: SQLiteStore, conn: sqlite3.Connection) -> None:
    """Migration 3: the searchable text of every incident, from its current snapshot."""
    for (incident_id,) in conn.execute("SELECT id FROM incidents").fetchall():
        text = SearchText.of(store._load(conn, incident_id))
        conn.execute(_INSERT_SEARCH_TEXT, (incident_id, *text))


#: The columns of the ``milestones`` table, each named after its field of
#: :class:`~incidentflow._metrics.Milestones` (microseconds since the epoch, UTC, or NULL).
_MILESTONES = MILESTONE_TIMES


def _fill_milestones(store: SQLiteStore, conn: sqlite3.Connection) -> None:
    """Migration 5: the milestones of every incident that has reached one."""
    for (incident_id,) in conn.execute("SELECT id FROM incidents").fetchall():
        _write_milestones(conn, store._load(conn, incident_id))


#: A step of a migration: a statement, or a function for what SQL alone cannot do.
_Step: TypeAlias = "str | Callable[[SQLiteStore, sqlite3.Connection], None]"

#: The first schema with the search tables.
_SEARCH_SCHEMA = 3
#: The first schema with the milestones table.
_MILESTONES_SCHEMA = 5

# Migration N takes a database from schema N-1 to N; each runs in one transaction.
_MIGRATIONS: tuple[tuple[_Step, ...], ...] = (
    (
        f"PRAGMA application_id = {APPLICATION_ID}",
        """CREATE TABLE schema_version (
            version INTEGER NOT NULL PRIMARY KEY,
            migrated_at TEXT NOT NULL
        )""",
        """CREATE TABLE events (
            position INTEGER PRIMARY KEY,
            incident_id TEXT NOT NULL,
            seq INTEGER NOT NULL CHECK (seq >= 1),
            type TEXT NOT NULL,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            data TEXT NOT NULL,
            idempotency_key TEXT,
            schema_version INTEGER NOT NULL,
            UNIQUE (incident_id, seq)
        )""",
        """CREATE TABLE incidents (
            id TEXT NOT NULL PRIMARY KEY,
            version INTEGER NOT NULL,
            state TEXT NOT NULL,
            severity TEXT NOT NULL,
            is_open INTEGER NOT NULL,
            commander TEXT NOT NULL,
            title TEXT NOT NULL,
            declared_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX incidents_by_open_severity ON incidents (is_open, severity, declared_at, id)",
        "CREATE INDEX incidents_by_state ON incidents (state, declared_at, id)",
        "CREATE INDEX incidents_by_commander ON incidents (commander, declared_at, id)",
        "CREATE INDEX incidents_by_declared ON incidents (declared_at, id)",
        """CREATE TABLE snapshots (
            incident_id TEXT NOT NULL PRIMARY KEY,
            version INTEGER NOT NULL,
            body TEXT NOT NULL
        )""",
        """CREATE TABLE outbox (
            position INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            incident_id TEXT NOT NULL,
            seq INTEGER NOT NULL
        )""",
        """CREATE TABLE idempotency_keys (
            key TEXT NOT NULL PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            incident_id TEXT NOT NULL,
            version INTEGER NOT NULL
        )""",
    ),
    (
        # Delivery state. Rows of version 1 go to every notifier (notifier '').
        "ALTER TABLE outbox ADD COLUMN notifier TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE outbox ADD COLUMN next_attempt_at INTEGER",
        "ALTER TABLE outbox ADD COLUMN last_error TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE outbox ADD COLUMN dead INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE outbox ADD COLUMN claimed_by TEXT",
        "ALTER TABLE outbox ADD COLUMN claimed_until INTEGER",
        "ALTER TABLE outbox ADD COLUMN ready_at INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE outbox ADD COLUMN head INTEGER NOT NULL DEFAULT 0",
        """UPDATE outbox SET head = 1 WHERE position IN (
            SELECT position FROM (
                SELECT position, row_number() OVER (
                    PARTITION BY incident_id, notifier ORDER BY seq
                ) AS n FROM outbox
            ) WHERE n = 1
        )""",
        "CREATE INDEX outbox_streams ON outbox (incident_id, notifier, seq) WHERE dead = 0",
        "CREATE INDEX outbox_due_heads ON outbox (ready_at, position) WHERE head = 1",
        "CREATE INDEX outbox_incident_heads ON outbox (incident_id, ready_at) WHERE head = 1",
        "CREATE INDEX outbox_dead ON outbox (position) WHERE dead = 1",
    ),
    (
        # Similar incidents: each incident's searchable text (see incidentflow._similar).
        # FTS5's index of it is built when a store opens (_sync_search_index), so a
        # Python without FTS5 migrates too; search_state says when it must be rebuilt.
        """CREATE TABLE search_text (
            id INTEGER PRIMARY KEY,
            incident_id TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL,
            symptom TEXT NOT NULL,
            root_cause TEXT NOT NULL,
            gotcha TEXT NOT NULL,
            gotcha_slug TEXT
        )""",
        """CREATE TABLE search_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            index_stale INTEGER NOT NULL
        )""",
        "INSERT INTO search_state (id, index_stale) VALUES (1, 1)",
        _fill_search_text,
    ),
    (
        # Announced events: a command names the notifiers of each event on the event's
        # own row; delivery turns them into outbox rows later (see _materialize).
        "ALTER TABLE events ADD COLUMN notify TEXT",
        """CREATE TABLE outbox_cursor (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            position INTEGER NOT NULL
        )""",
        "INSERT INTO outbox_cursor (id, position) SELECT 1, coalesce(max(position), 0) FROM events",
    ),
    (
        # When each incident reached each milestone, for metrics without snapshots; a
        # row exists once the incident has reached one (see _apply).
        f"""CREATE TABLE milestones (
            incident_id TEXT NOT NULL PRIMARY KEY,
            {", ".join(f"{name} INTEGER" for name in _MILESTONES)}
        ) WITHOUT ROWID""",
        _fill_milestones,
    ),
)

_EVENT_COLUMNS = "incident_id, seq, type, at, actor, data, idempotency_key, schema_version"
_INSERT_EVENT = f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_SELECT_VERSION = "SELECT version FROM incidents WHERE id = ?"

# A new row is its stream's head when the stream has no older live row.
_INSERT_OUTBOX = (
    "INSERT OR REPLACE INTO outbox (id, incident_id, seq, notifier, attempts, "
    "next_attempt_at, last_error, dead, ready_at, head) "
    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?8 = 0 AND NOT EXISTS ("
    "SELECT 1 FROM outbox WHERE incident_id = ?2 AND notifier = ?4 AND dead = 0 AND seq < ?3)"
)
_OUTBOX_ITEM = (
    "SELECT o.id, o.notifier, o.attempts, o.next_attempt_at, o.last_error, o.dead, "
    "e.incident_id, e.seq, e.type, e.at, e.actor, e.data, e.idempotency_key, e.schema_version "
    "FROM outbox o JOIN events e ON e.incident_id = o.incident_id AND e.seq = o.seq "
)
#: The due heads, oldest-ready first; reads nothing but the partial index outbox_due_heads.
_DUE_HEADS = (
    "SELECT position FROM outbox WHERE head = 1 AND ready_at <= ? "
    "ORDER BY ready_at, position LIMIT ?"
)
#: One incident's due heads (inline delivery after a command), from outbox_incident_heads.
_DUE_HEADS_OF_INCIDENT = (
    "SELECT position FROM outbox WHERE head = 1 AND incident_id = ? AND ready_at <= ? "
    "ORDER BY ready_at, position LIMIT ?"
)
# The stream's oldest live row becomes its head (a no-op when it already is).
_PROMOTE = (
    "UPDATE outbox SET head = 1 WHERE position = (SELECT position FROM outbox "
    "WHERE incident_id = ? AND notifier = ? AND dead = 0 ORDER BY seq LIMIT 1) AND head = 0"
)
_EVENT_ROW_COLUMNS = tuple(_EVENT_COLUMNS.split(", "))
#: An event row naming the notifiers that announce it (a JSON list) in ``notify``.
_INSERT_ANNOUNCED_EVENT = (
    f"INSERT INTO events ({_EVENT_COLUMNS}, notify) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: Announced events that have no outbox rows yet, in commit order.
_UNMATERIALIZED = (
    "SELECT incident_id, seq, notify FROM events "
    "WHERE position > ? AND position <= ? AND notify IS NOT NULL ORDER BY position"
)
_UNMATERIALIZED_EVENTS = (
    f"SELECT {_EVENT_COLUMNS}, notify FROM events "
    "WHERE position > (SELECT position FROM outbox_cursor) AND notify IS NOT NULL "
    "ORDER BY position LIMIT ?"
)

# How many times this process is a forked child: a store made before a fork reconnects.
_forks = [0]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))

#: How long, in all, a write keeps retrying a locked database before giving up.
_RETRY_SECONDS = 30.0


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


@functools.cache
def _update_sql(columns: tuple[str, ...]) -> str:
    assignments = ", ".join(f"{name} = ?" for name in columns)
    return f"UPDATE incidents SET {assignments} WHERE id = ? AND version = ?"


def _rollback(conn: sqlite3.Connection) -> None:
    # Undo a failed transaction; the error that caused it is the one worth raising.
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _hint(problem: object) -> str:
    text = str(problem).lower()
    if "full" in text:
        return "; free some disk space (nothing of this command was written)"
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return (
            "; check that the file and its folder are writable (WAL mode keeps "
            "-wal and -shm files beside the database)"
        )
    if "malformed" in text or "not a database" in text:
        return "; the file is damaged or not a database: restore it from a backup"
    return ""


def _contains_casefolded(title: object, text: object) -> bool:
    # The same test as IncidentQuery.matches: casefold, not SQL's ASCII-only LIKE.
    return str(text).casefold() in str(title).casefold()


class SQLiteStore(Store):
    """Incidents in one SQLite file, shared safely by threads and processes.

    Similar incidents (:meth:`search`) are ranked by an FTS5 index and its
    ``bm25()``. If this Python's ``sqlite3`` lacks FTS5 (checked once per
    process), the store keeps the searchable text all the same and ranks it
    in memory; the next store opened with FTS5 rebuilds the index.

    Args:
        path: The database file; created with its folders if missing.
        synchronous: ``"FULL"`` (default): every commit survives a power cut.
            ``"NORMAL"``: commits survive a crash of the process; a power cut
            may lose the last few.
        busy_timeout: Seconds to wait for another process's write to finish.
        cache_size: How many incidents' snapshots to keep in memory.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     store = SQLiteStore(pathlib.Path(folder) / "incidents.db")
    ...     store.exists("INC-2026-11-27-checkout")
    ...     store.close()
    False

    """

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
        if busy_timeout < 0:
            raise ConfigError("busy_timeout", f"expected seconds >= 0, got {busy_timeout!r}")
        self.path = Path(path)
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
        self._fts = self._searchable and _fts5_available()
        self._conn = self._connect()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # -- connection ------------------------------------------------------------

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
            (app_id,) = conn.execute("PRAGMA application_id").fetchone()
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
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

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed; open a new one")
        if self._forks != _forks[0]:
            # A forked child must not share its parent's connection.
            self._forks = _forks[0]
            self._cache.clear()
            self._conn = self._connect()
        return self._conn

    def _retrying(self, work: Callable[[], _T]) -> _T:
        deadline = time.monotonic() + _RETRY_SECONDS
        pause = 0.001
        while True:
            try:
                return work()
            except sqlite3.Error as exc:
                if not _is_busy(exc):
                    raise self._fail("the database failed", exc) from exc
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
                return result

            if not relaxed:
                return self._retrying(attempt)
            conn.execute("PRAGMA synchronous=NORMAL")
            try:
                return self._retrying(attempt)
            finally:
                conn.execute(f"PRAGMA synchronous={self.synchronous}")

    # -- writing -----------------------------------------------------------------

    def append(self, commit: Commit) -> None:
        """Write a commit in one transaction (see :meth:`Store.append`)."""
        check_commit(commit.incident_id, commit.expected_version, commit.events)
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
        self._write(lambda conn: self._apply(conn, commit, rows, previous))
        self._cache.put(commit.snapshot, commit.snapshot.version)

    def _apply(
        self,
        conn: sqlite3.Connection,
        commit: Commit,
        rows: Sequence[tuple[Any, ...]],
        previous: Incident | None,
    ) -> None:
        snapshot = commit.snapshot
        state_before: State | None = None
        if commit.expected_version == 0:
            columns = _columns(snapshot)
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
                changed = _columns(snapshot, changing=previous)
            else:
                # Not cached: the row still holds the columns before this commit.
                row = conn.execute(
                    f"SELECT {', '.join(_COLUMNS)} FROM incidents WHERE id = ?",
                    (commit.incident_id,),
                ).fetchone()
                before = {} if row is None else dict(zip(_COLUMNS, row, strict=True))
                state_before = State(before["state"]) if before else None
                changed = {
                    name: value
                    for name, value in _columns(snapshot).items()
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
        # Most commands (evidence, notes, deploys) change no searchable text: no search I/O.
        if self._searchable and (previous is None or search_text_changed(previous, snapshot)):
            self._index_search(conn, commit)
        if self._timed:
            _keep_milestones(conn, commit, previous)
        if previous is not None:
            state_before = previous.state
        if checkpoint_due(commit.expected_version, state_before, snapshot):
            try:
                body = incident_to_json(snapshot)
            except (TypeError, ValueError) as exc:
                raise self._fail(f"cannot serialise the snapshot of {snapshot.id}", exc) from exc
            conn.execute(
                "INSERT OR REPLACE INTO snapshots (incident_id, version, body) VALUES (?, ?, ?)",
                (commit.incident_id, snapshot.version, body),
            )
        if commit.outbox and not announced:
            # Items that are not fresh announcements: rows now, behind the older ones.
            self._materialize(conn)
            conn.executemany(
                _INSERT_OUTBOX,
                [_outbox_row(item) for item in sorted(commit.outbox, key=lambda i: i.event.seq)],
            )
        if commit.idempotency is not None:
            self._keep_key(conn, commit)

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
            # Another command with this key committed first: retrying returns its result.
            first = conn.execute(
                "SELECT fingerprint FROM idempotency_keys WHERE key = ?", (record.key,)
            ).fetchone()
            if first is not None and first[0] != record.fingerprint:
                raise IdempotencyConflict(record.key) from None
            raise ConcurrencyConflict(
                commit.incident_id, commit.expected_version, commit.expected_version + 1
            ) from None

    # -- delivery ----------------------------------------------------------------

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

    def mark_delivered(self, ids: Iterable[str]) -> None:
        """Remove delivered items from the outbox; unknown ids are ignored."""
        delivered = list(dict.fromkeys(ids))
        if not delivered:
            return

        def work(conn: sqlite3.Connection) -> None:
            self._materialize(conn)
            self._delete_delivered(conn, delivered)

        self._write(work, durable=False)

    def _delete_delivered(self, conn: sqlite3.Connection, delivered: Sequence[str]) -> None:
        streams = set()
        for item_id in delivered:
            row = conn.execute(
                "DELETE FROM outbox WHERE id = ? RETURNING incident_id, notifier", (item_id,)
            ).fetchone()
            if row is not None:
                streams.add((row[0], row[1]))
        for stream in streams:
            conn.execute(_PROMOTE, stream)

    def settle_and_claim(
        self,
        delivered: Iterable[str],
        *,
        now: datetime,
        limit: int,
        lease: timedelta,
        worker: str,
    ) -> Sequence[OutboxItem]:
        """Mark ``delivered`` and claim the next due heads, in one write transaction."""
        settled = list(dict.fromkeys(delivered))
        if limit <= 0:
            self.mark_delivered(settled)
            return []

        def work(conn: sqlite3.Connection) -> list[Any]:
            self._materialize(conn)
            if settled:
                self._delete_delivered(conn, settled)
            return self._claim_rows(conn, _DUE_HEADS, (micros(now), limit), worker, now + lease)

        return [self._outbox_item(row) for row in self._write(work, durable=False)]

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

        One ``BEGIN IMMEDIATE`` transaction picks and marks the rows, so two
        processes claiming at once never get the same row while its lease holds.
        """
        if limit <= 0:
            return []
        at = micros(now)
        params: tuple[Any, ...]
        if incident_id is None:
            search, params = _DUE_HEADS, (at, limit)
        else:
            search, params = _DUE_HEADS_OF_INCIDENT, (incident_id, at, limit)

        def work(conn: sqlite3.Connection) -> list[Any]:
            self._materialize(conn)
            return self._claim_rows(conn, search, params, worker, now + lease)

        return [self._outbox_item(row) for row in self._write(work, durable=False)]

    def _claim_rows(
        self,
        conn: sqlite3.Connection,
        search: str,
        params: tuple[Any, ...],
        worker: str,
        held_until: datetime,
    ) -> list[Any]:
        positions = [r[0] for r in conn.execute(search, params).fetchall()]
        if not positions:
            return []
        until = micros(held_until)
        conn.executemany(
            "UPDATE outbox SET claimed_by = ?, claimed_until = ?, ready_at = ? WHERE position = ?",
            [(worker, until, until, position) for position in positions],
        )
        marks = ", ".join("?" * len(positions))
        return conn.execute(
            f"{_OUTBOX_ITEM} WHERE o.position IN ({marks}) ORDER BY o.position", positions
        ).fetchall()

    def mark_failed(
        self, item_id: str, *, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        """Count a failed attempt, release the claim, and retry later or give up.

        An item that is already dead stays so (a worker whose lease ran out may
        report late).
        """
        retry_at = micros(next_attempt_at)

        def work(conn: sqlite3.Connection) -> None:
            self._materialize(conn)
            row = conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = ?, dead = ?, ready_at = ?, claimed_by = NULL, "
                "claimed_until = NULL, head = head AND NOT ? WHERE id = ? AND dead = 0 "
                "RETURNING incident_id, notifier",
                (error, retry_at, int(dead), retry_at, int(dead), item_id),
            ).fetchone()
            if row is not None and dead:
                conn.execute(_PROMOTE, (row[0], row[1]))  # the stream goes on past it

        self._write(work, durable=False)

    def dead_letters(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Items that gave up, oldest first."""
        rows = self._read(
            lambda conn: conn.execute(
                f"{_OUTBOX_ITEM} WHERE o.dead = 1 ORDER BY o.position LIMIT ?", (limit,)
            ).fetchall()
        )
        return [self._outbox_item(row) for row in rows]

    def redrive(self, ids: Iterable[str]) -> int:
        """Put dead items back in line with a fresh attempt count; returns how many."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0

        def work(conn: sqlite3.Connection) -> int:
            self._materialize(conn)
            count = 0
            for item_id in wanted:
                row = conn.execute(
                    "SELECT incident_id, notifier, seq FROM outbox WHERE id = ? AND dead = 1",
                    (item_id,),
                ).fetchone()
                if row is None:
                    continue
                incident_id, notifier, seq = row
                # Back in line at its place: a younger head steps back behind it.
                conn.execute(
                    "UPDATE outbox SET head = 0 WHERE position = (SELECT position FROM outbox "
                    "WHERE incident_id = ? AND notifier = ? AND dead = 0 ORDER BY seq LIMIT 1) "
                    "AND seq > ?",
                    (incident_id, notifier, seq),
                )
                conn.execute(
                    "UPDATE outbox SET attempts = 0, next_attempt_at = NULL, dead = 0, "
                    "ready_at = 0, claimed_by = NULL, claimed_until = NULL, head = 0 "
                    "WHERE id = ?",
                    (item_id,),
                )
                conn.execute(_PROMOTE, (incident_id, notifier))
                count += 1
            return count

        return self._write(work)

    def _outbox_item(self, row: Sequence[Any]) -> OutboxItem:
        item_id, notifier, attempts, next_attempt_at, last_error, dead = row[:6]
        return OutboxItem(
            item_id,
            self._event(row[6:]),
            notifier,
            attempts,
            None if next_attempt_at is None else from_micros(next_attempt_at),
            last_error,
            bool(dead),
        )

    def explain_claim(self, incident_id: str | None = None) -> Sequence[str]:
        """The SQLite query plan of the search :meth:`claim` runs, one line per step."""
        params: tuple[Any, ...]
        if incident_id is None:
            search, params = _DUE_HEADS, (0, 1)
        else:
            search, params = _DUE_HEADS_OF_INCIDENT, (incident_id, 0, 1)
        rows = self._read(
            lambda conn: conn.execute(f"EXPLAIN QUERY PLAN {search}", params).fetchall()
        )
        return [str(row[-1]) for row in rows]

    # -- reading -----------------------------------------------------------------

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

    def _load(self, conn: sqlite3.Connection, incident_id: str) -> Incident:
        row = conn.execute(_SELECT_VERSION, (incident_id,)).fetchone()
        if row is None:
            raise IncidentNotFound(incident_id)
        version = int(row[0])
        cached = self._cache.get(incident_id)
        if cached is not None and cached[0].version == version:
            return cached[0]
        if cached is not None and cached[0].version < version:
            base = cached[0]
        else:
            found = conn.execute(
                "SELECT body FROM snapshots WHERE incident_id = ?", (incident_id,)
            ).fetchone()
            if found is None:
                raise StoreError(f"{self.path}: {incident_id} has no stored snapshot")
            base = self._snapshot(found[0], incident_id)
        if base.version < version:
            tail = self._events(
                conn,
                "WHERE incident_id = ? AND seq > ? AND seq <= ? ORDER BY seq",
                (incident_id, base.version, version),
            )
            base = fold_onto(base, tail, str(self.path))
        self._cache.put(base, base.version)
        return base

    def _snapshot(self, body: str, incident_id: str) -> Incident:
        try:
            return incident_from_json(body)
        except StoreError as exc:
            raise StoreError(f"{self.path}: {incident_id}: {exc}") from exc

    def _events(
        self, conn: sqlite3.Connection, where: str, params: tuple[Any, ...]
    ) -> Sequence[Event]:
        rows = conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events {where}", params).fetchall()
        return [self._event(row) for row in rows]

    def _event(self, row: Sequence[Any]) -> Event:
        incident_id, seq, type_, at, actor, data, key, schema_version = row
        try:
            return event_from_dict(
                {
                    "incident_id": incident_id,
                    "seq": seq,
                    "type": type_,
                    "at": at,
                    "actor": actor,
                    "data": json.loads(data),
                    "idempotency_key": key,
                    "schema_version": schema_version,
                }
            )
        except (ValueError, TypeError, StoreError) as exc:
            raise StoreError(
                f"{self.path}: event {seq} of {incident_id} cannot be read: {exc}"
            ) from exc

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

    def list(self, query: IncidentQuery) -> Sequence[Incident]:
        """Snapshots matching ``query``, filtered, ordered and paged by SQL on indexed columns."""
        sql, params = _list_sql(query)

        def read(conn: sqlite3.Connection) -> list[Incident]:
            found = []
            conn.execute("BEGIN")  # one read transaction: every row as of one moment
            try:
                for incident_id, version in conn.execute(sql, params).fetchall():
                    cached = self._cache.get(incident_id)
                    if cached is not None and cached[0].version == version:
                        found.append(cached[0])
                    else:
                        found.append(self._load(conn, incident_id))
            finally:
                _rollback(conn)  # nothing was written; this ends the read transaction
            return found

        return self._read(read)

    def summaries(self, query: IncidentQuery) -> Sequence[IncidentSummary]:
        """Summaries of matching incidents, read from the indexed columns alone."""
        sql, params = _list_sql(query, _SUMMARY_COLUMNS)
        rows = self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [
            IncidentSummary(
                incident_id,
                title,
                Severity(severity),
                State(state),
                commander,
                from_micros(declared),
                from_micros(updated),
                version,
            )
            for incident_id, title, severity, state, commander, declared, updated, version in rows
        ]

    def milestones(self, query: IncidentQuery) -> Iterator[Milestones]:
        """The milestones of matching incidents, read from their rows' columns.

        No snapshot is built and no JSON read: a commit that moves a milestone
        rewrites the incident's row of ``milestones``, so one query returns
        everything the metrics need.
        """
        from .._metrics import Milestones

        sql, params = _list_sql(query, _MILESTONE_COLUMNS)
        rows = self._read(lambda conn: conn.execute(sql, params).fetchall())
        # A hundred thousand rows go through this loop: look names up once.
        severities, states, when, names = _SEVERITIES, _STATES, from_micros, _MILESTONES
        for incident_id, severity, state, declared, *times in rows:
            yield Milestones(
                incident_id=incident_id,
                severity=severities[severity],
                state=states[state],
                declared_at=when(declared),
                **{
                    name: None if at is None else when(at)
                    for name, at in zip(names, times, strict=True)
                },
            )

    def _search(
        self, terms: tuple[str, ...], *, exclude: str | None, limit: int
    ) -> Sequence[SimilarIncident]:
        """Rank with FTS5's ``bm25()``, each term a quoted phrase, OR-ed (see :meth:`Store.search`).

        Without FTS5 in this Python's sqlite3 (checked once per process), the
        stored searchable text is ranked in memory instead, as the other
        stores do (:func:`incidentflow._similar.rank`).
        """
        if not self._searchable:
            return super()._search(terms, exclude=exclude, limit=limit)
        if not self._fts:
            return self._read(
                lambda conn: rank(
                    (_search_document(row) for row in conn.execute(_SEARCH_DOCUMENTS)),
                    terms,
                    exclude=exclude,
                    limit=limit,
                )
            )
        match = " OR ".join(_fts_phrase(term) for term in terms)

        def read(conn: sqlite3.Connection) -> list[SimilarIncident]:
            conn.execute("BEGIN")  # one read transaction: the hits of the rows ranked
            try:
                best = conn.execute(_SEARCH, (match, exclude, limit)).fetchall()
                if not best:
                    return []
                marks = ", ".join("?" * len(best))
                hits = {
                    row[0]: row[1:]
                    for row in conn.execute(
                        _SEARCH_HITS.format(marks=marks), ("\x01", match, *(r[0] for r in best))
                    )
                }
            finally:
                _rollback(conn)  # nothing was written; this ends the read transaction
            found = []
            for row_id, score, *rest in best:
                document = _search_document((*rest[:7], "", rest[7]))
                columns = hits.get(row_id, ())
                matched = [name for name, hit in zip(FIELDS, columns, strict=False) if hit]
                found.append(document.found(float(score), matched))
            return found

        return self._read(read)

    def explain_list(self, query: IncidentQuery) -> Sequence[str]:
        """The SQLite query plan of :meth:`list` for ``query``, one line per step."""
        sql, params = _list_sql(query)
        rows = self._read(lambda conn: conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
        return [str(row[-1]) for row in rows]

    def idempotency(self, key: str) -> IdempotencyRecord | None:
        """The record kept for ``key``, if any."""
        row = self._read(
            lambda conn: conn.execute(
                "SELECT key, fingerprint, incident_id, version FROM idempotency_keys WHERE key = ?",
                (key,),
            ).fetchone()
        )
        return None if row is None else IdempotencyRecord(*row)

    def pending(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Undelivered outbox items that are not dead, oldest first.

        Announced events without outbox rows yet (see :meth:`_materialize`) are
        listed after the rows, as the items they will become.
        """

        def read(conn: sqlite3.Connection) -> list[OutboxItem]:
            conn.execute("BEGIN")  # one read transaction: rows and announcements of one moment
            try:
                rows = conn.execute(
                    f"{_OUTBOX_ITEM} WHERE o.dead = 0 ORDER BY o.position LIMIT ?", (limit,)
                ).fetchall()
                items = [self._outbox_item(row) for row in rows]
                if len(items) < limit:
                    announced = conn.execute(_UNMATERIALIZED_EVENTS, (limit - len(items),))
                    for *event_row, notify in announced.fetchall():
                        event = self._event(event_row)
                        for notifier in self._notifiers(notify, event.incident_id, event.seq):
                            item_id = _item_id(event.incident_id, event.seq, notifier)
                            items.append(OutboxItem(item_id, event, notifier))
            finally:
                _rollback(conn)  # nothing was written; this ends the read transaction
            return items[:limit]

        return self._read(read)

    def exists(self, incident_id: str) -> bool:
        """True when an incident with this id exists."""
        return self._read(lambda conn: self._exists(conn, incident_id))

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


_COLUMNS = (
    "version",
    "state",
    "severity",
    "is_open",
    "commander",
    "title",
    "declared_at",
    "updated_at",
)


def _columns(incident: Incident, changing: Incident | None = None) -> dict[str, Any]:
    """The ``incidents`` row's columns; with ``changing``, only those that may differ from it."""
    if changing is None:
        return {
            "version": incident.version,
            "state": incident.state.value,
            "severity": incident.severity.value,
            "is_open": int(incident.is_open),
            "commander": incident.commander,
            "title": incident.title,
            "declared_at": micros(incident.declared_at),
            "updated_at": micros(incident.updated_at),
        }
    columns: dict[str, Any] = {"version": incident.version}
    if incident.state is not changing.state:
        columns["state"] = incident.state.value
        columns["is_open"] = int(incident.is_open)
    if incident.severity is not changing.severity:
        columns["severity"] = incident.severity.value
    if incident.commander != changing.commander:
        columns["commander"] = incident.commander
    if incident.title != changing.title:
        columns["title"] = incident.title
    if incident.declared_at != changing.declared_at:
        columns["declared_at"] = micros(incident.declared_at)
    if incident.updated_at != changing.updated_at:
        columns["updated_at"] = micros(incident.updated_at)
    return columns


def _milestones_changed(incident: Incident, before: Incident | None) -> bool:
    """Whether a commit moved any milestone (most commands move none)."""
    if before is None:
        return _milestone_values(incident) != _NO_MILESTONES
    return milestone_times(incident) != milestone_times(before)


def _keep_milestones(conn: sqlite3.Connection, commit: Commit, previous: Incident | None) -> None:
    """Rewrite the incident's milestones row when the commit moved one (most move none)."""
    snapshot = commit.snapshot
    if commit.expected_version == 0 or previous is not None:
        if _milestones_changed(snapshot, previous):
            _write_milestones(conn, snapshot)
        return
    # The snapshot before is not cached: the stored row decides.
    stored = conn.execute(_SELECT_MILESTONES, (commit.incident_id,)).fetchone()
    if (stored or _NO_MILESTONES) != _milestone_values(snapshot):
        _write_milestones(conn, snapshot)


def _write_milestones(conn: sqlite3.Connection, incident: Incident) -> None:
    values = _milestone_values(incident)
    if values == _NO_MILESTONES:
        conn.execute("DELETE FROM milestones WHERE incident_id = ?", (incident.id,))
    else:
        conn.execute(_REPLACE_MILESTONES, (incident.id, *values))


def _milestone_values(incident: Incident) -> tuple[int | None, ...]:
    """The incident's row of ``milestones``, in the order of ``_MILESTONES``."""
    return tuple(None if at is None else micros(at) for at in milestone_times(incident))


_NO_MILESTONES: tuple[int | None, ...] = (None,) * len(_MILESTONES)
_SELECT_MILESTONES = f"SELECT {', '.join(_MILESTONES)} FROM milestones WHERE incident_id = ?"
_REPLACE_MILESTONES = (
    f"INSERT OR REPLACE INTO milestones (incident_id, {', '.join(_MILESTONES)}) "
    f"VALUES (?{', ?' * len(_MILESTONES)})"
)


def _notify_columns(commit: Commit) -> list[str | None] | None:
    """Each event's ``notify`` column: the notifiers its outbox items go to, as JSON.

    None when the commit has no outbox items, or items that are not fresh
    announcements of its own events (attempts made, a different id): those
    are written as outbox rows at once.
    """
    if not commit.outbox:
        return None
    first = commit.expected_version + 1
    names: list[list[str]] = [[] for _ in commit.events]
    for item in commit.outbox:
        event = item.event
        index = event.seq - first
        if (
            not 0 <= index < len(names)
            or event.incident_id != commit.incident_id
            or item.attempts
            or item.dead
            or item.next_attempt_at is not None
            or item.last_error
            or item.id != _item_id(commit.incident_id, event.seq, item.notifier)
        ):
            return None
        names[index].append(item.notifier)
    return [_notify_value(tuple(n)) if n else None for n in names]


@functools.lru_cache(maxsize=256)
def _notify_value(names: tuple[str, ...]) -> str:
    return json.dumps(names, ensure_ascii=False, separators=(",", ":"))


def _item_id(incident_id: str, seq: int, notifier: str) -> str:
    """The id of an outbox item, as :meth:`OutboxItem.for_event` makes it."""
    return f"{incident_id}:{seq}:{notifier}" if notifier else f"{incident_id}:{seq}"


def _outbox_row(item: OutboxItem) -> tuple[Any, ...]:
    retry_at = None if item.next_attempt_at is None else micros(item.next_attempt_at)
    return (
        item.id,
        item.event.incident_id,
        item.event.seq,
        item.notifier,
        item.attempts,
        retry_at,
        item.last_error,
        int(item.dead),
        retry_at or 0,
    )


def _search_document(row: Sequence[Any]) -> SearchDocument:
    """A search_text row joined with its incident's severity, state and declaration time."""
    incident_id, severity, state, declared_at, *text = row
    return SearchDocument(
        incident_id, Severity(severity), State(state), from_micros(declared_at), SearchText(*text)
    )


def _event_row(event: Event) -> tuple[Any, ...]:
    data = converter().unstructure(event.data, unstructure_as=type(event.data))
    return (
        event.incident_id,
        event.seq,
        event.type,
        event.at.isoformat(),
        event.actor,
        json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        event.idempotency_key,
        event.schema_version,
    )


_SUMMARY_COLUMNS = (
    "id, title, severity, state, commander, declared_at, updated_at, version FROM incidents"
)

# What metrics need of an incident.
_MILESTONE_COLUMNS = (
    f"id, severity, state, declared_at, {', '.join(_MILESTONES)} "
    "FROM incidents LEFT JOIN milestones ON milestones.incident_id = incidents.id"
)


_SEVERITIES = {s.value: s for s in Severity}
_STATES = {s.value: s for s in State}


def _list_sql(
    query: IncidentQuery, columns: str = "id, version FROM incidents"
) -> tuple[str, tuple[Any, ...]]:
    where: list[str] = []
    params: list[Any] = []
    if query.states is not None:
        where.append(f"state IN ({', '.join('?' * len(query.states))})")
        params.extend(sorted(s.value for s in query.states))
    if query.severities is not None:
        where.append(f"severity IN ({', '.join('?' * len(query.severities))})")
        params.extend(sorted(s.value for s in query.severities))
    if query.open_only:
        where.append("is_open = 1")
    if query.commander is not None:
        where.append("commander = ?")
        params.append(query.commander)
    if query.declared_after is not None:
        where.append("declared_at >= ?")
        params.append(micros(query.declared_after))
    if query.declared_before is not None:
        where.append("declared_at < ?")
        params.append(micros(query.declared_before))
    if query.text is not None:
        where.append("incidentflow_contains(title, ?)")
        params.append(query.text)
    order = "DESC" if query.newest_first else "ASC"
    sql = f"SELECT {columns}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY declared_at {order}, id {order} LIMIT ? OFFSET ?"
    params.extend((-1 if query.limit is None else query.limit, query.offset))
    return sql, tuple(params)
