"""PostgresStore's schema, its migrations, and the connection pool every part uses."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeAlias, TypeVar
from urllib.parse import quote

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool, PoolTimeout

from ..._events import Event
from ..._metrics import milestone_times
from ..._model import Incident
from ..._similar import (
    SearchText,
)
from ...exceptions import (
    ConfigError,
    IncidentNotFound,
    StoreError,
)
from .._chunks import decode_checkpoints
from .._snapshots import (
    SnapshotCache,
    decode_event,
    fold_onto,
    load_snapshot,
)
from ._access import ACCESS_TABLES, fill_access
from ._dsn import (
    _connection_lost,
    _display,
    _hint,
    _parse_dsn,
    _pool_size,
    _problem,
    _schema_name,
)
from ._sql import _Statements
from ._tags import TAG_TABLES, fill_tags
from ._values import (
    _FILL_MILESTONES,
    _FILL_SEARCH,
    _INSERT_MILESTONES,
    _LAGGING,
    _MILESTONE_TYPES,
    _from_column,
    _load_json,
    _milestone_params,
    _search_params,
)

#: The schema this release writes. Schemas at an older version are migrated forward.
SCHEMA_VERSION = 6

#: The PostgreSQL schema (namespace) holding the tables unless told otherwise.

#: The first key of the advisory lock migrations hold ("IFLW"); the second is the schema's hash.
LOCK_CLASS = 0x49464C57

#: Marks our schema_version table, telling our schema from another program's.
_MARKER = "incidentflow schema versions"

_T = TypeVar("_T")


def _fill_search(store: PostgresBase, conn: psycopg.Connection[Any]) -> None:
    """Migration 2: the searchable text of every incident, from its current snapshot."""
    schema = store._sql.schema
    rows = conn.execute(f"SELECT id, version FROM {schema}.incidents ORDER BY id").fetchall()
    found = [(str(incident_id), int(version)) for incident_id, version in rows]
    for start in range(0, len(found), 500):
        snapshots = store._snapshots_of(conn, found[start : start + 500])
        with conn.cursor() as cursor:
            cursor.executemany(
                _FILL_SEARCH.format(s=schema),
                [
                    {"search_incident_id": incident.id, **_search_params(SearchText.of(incident))}
                    for incident in snapshots
                ],
            )


def _fill_milestones(store: PostgresBase, conn: psycopg.Connection[Any]) -> None:
    """Migration 6: each incident's milestones row, from its checkpoint or its snapshot."""
    schema = store._sql.schema
    conn.execute(_FILL_MILESTONES.format(s=schema))
    rows = conn.execute(_LAGGING.format(s=schema)).fetchall()
    found = [(str(incident_id), int(version)) for incident_id, version in rows]
    for start in range(0, len(found), 500):
        params = []
        for incident in store._snapshots_of(conn, found[start : start + 500]):
            times = milestone_times(incident)
            if any(at is not None for at in times):
                params.append({"ms_incident_id": incident.id, **_milestone_params(incident, times)})
        with conn.cursor() as cursor:
            cursor.executemany(_INSERT_MILESTONES.format(s=schema), params)


#: A step of a migration: a statement (``{s}`` is the schema), or a function for
#: what SQL alone cannot do.
_Step: TypeAlias = "str | Callable[[PostgresBase, psycopg.Connection[Any]], None]"

#: The first schema with the search table.
_SEARCH_SCHEMA = 2

#: The first schema with the label, field and reference tables.
_TAGS_SCHEMA = 3

#: The first schema with the access table of restricted incidents.
_ACCESS_SCHEMA = 4

#: The first schema that keeps checkpoints' long lists in chunks (snapshot_lists).
_CHUNKS_SCHEMA = 5

#: The first schema with the milestones table (times and durations, written by commits).
_MILESTONES_SCHEMA = 6

# Migration N takes a schema from version N-1 to N; all run in one transaction.
_MIGRATIONS: tuple[tuple[_Step, ...], ...] = (
    (
        """CREATE TABLE {s}.schema_version (
            version integer PRIMARY KEY,
            migrated_at timestamptz NOT NULL DEFAULT now()
        )""",
        f"COMMENT ON TABLE {{s}}.schema_version IS '{_MARKER}'",
        """CREATE TABLE {s}.events (
            position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            incident_id text NOT NULL,
            seq integer NOT NULL CHECK (seq >= 1),
            type text NOT NULL,
            at timestamptz NOT NULL,
            actor text NOT NULL,
            data jsonb NOT NULL,
            idempotency_key text,
            schema_version integer NOT NULL,
            UNIQUE (incident_id, seq)
        )""",
        """CREATE TABLE {s}.incidents (
            id text PRIMARY KEY,
            version integer NOT NULL,
            state text NOT NULL,
            severity text NOT NULL,
            is_open boolean NOT NULL,
            commander text NOT NULL,
            title text NOT NULL,
            title_casefold bytea NOT NULL,
            declared_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        )""",
        "CREATE INDEX incidents_by_open_severity ON {s}.incidents "
        "(is_open, severity, declared_at, id)",
        "CREATE INDEX incidents_by_state ON {s}.incidents (state, declared_at, id)",
        "CREATE INDEX incidents_by_commander ON {s}.incidents (commander, declared_at, id)",
        "CREATE INDEX incidents_by_declared ON {s}.incidents (declared_at, id)",
        """CREATE TABLE {s}.snapshots (
            incident_id text PRIMARY KEY,
            version integer NOT NULL,
            body jsonb NOT NULL
        )""",
        """CREATE TABLE {s}.outbox (
            position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id text NOT NULL UNIQUE,
            incident_id text NOT NULL,
            seq integer NOT NULL,
            notifier text NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz,
            last_error text NOT NULL DEFAULT '',
            dead boolean NOT NULL DEFAULT false,
            claimed_by text,
            claimed_until timestamptz,
            ready_at timestamptz NOT NULL DEFAULT '-infinity',
            head boolean NOT NULL DEFAULT false
        )""",
        "CREATE INDEX outbox_streams ON {s}.outbox (incident_id, notifier, seq) WHERE NOT dead",
        "CREATE INDEX outbox_due_heads ON {s}.outbox (ready_at, position) WHERE head",
        "CREATE INDEX outbox_heads_by_incident ON {s}.outbox (incident_id) WHERE head",
        "CREATE INDEX outbox_live ON {s}.outbox (position) WHERE NOT dead",
        "CREATE INDEX outbox_dead ON {s}.outbox (position) WHERE dead",
        """CREATE TABLE {s}.idempotency_keys (
            key text PRIMARY KEY,
            fingerprint text NOT NULL,
            incident_id text NOT NULL,
            version integer NOT NULL
        )""",
    ),
    (
        # Similar incidents (see incidentflow._similar): each incident's searchable
        # text, the lexemes of each field's words, all of them weighted in one
        # GIN-indexed document, and an OR of tsqueries so that queries are made of
        # parameters alone.
        """CREATE TABLE {s}.search (
            incident_id text PRIMARY KEY,
            title text NOT NULL,
            symptom text NOT NULL,
            root_cause text NOT NULL,
            gotcha text NOT NULL,
            gotcha_slug text,
            title_lexemes tsvector NOT NULL,
            symptom_lexemes tsvector NOT NULL,
            root_cause_lexemes tsvector NOT NULL,
            gotcha_lexemes tsvector NOT NULL,
            document tsvector GENERATED ALWAYS AS (
                setweight(title_lexemes, 'A') || setweight(symptom_lexemes, 'A')
                || setweight(root_cause_lexemes, 'B') || setweight(gotcha_lexemes, 'C')
            ) STORED
        )""",
        "CREATE INDEX search_document ON {s}.search USING gin (document)",
        "CREATE AGGREGATE {s}.tsquery_any (tsquery) (SFUNC = tsquery_or, STYPE = tsquery)",
        _fill_search,
    ),
    (
        # What listings filter on beside the row (see _tags): type, labels, custom
        # fields, external references (one open holder each) and open action items.
        *TAG_TABLES,
        fill_tags,
    ),
    (
        # Who may see each restricted incident (see _access), for listings by a viewer.
        *ACCESS_TABLES,
        fill_access,
    ),
    (
        # A checkpoint's long lists in chunks (see stores/_chunks): a checkpoint adds the
        # items new since the one before instead of writing every item again. Each is
        # zlib-compressed JSON: a cold load sends them, and parses them only if read.
        """CREATE TABLE {s}.snapshot_lists (
            incident_id text NOT NULL,
            name text NOT NULL,
            chunk integer NOT NULL,
            version integer NOT NULL,
            count integer NOT NULL,
            items bytea NOT NULL,
            PRIMARY KEY (incident_id, name, chunk)
        )""",
    ),
    (
        # Each incident's milestones and durations (microseconds), written by the commit
        # that moves one; metrics seek each duration's quantiles in its index.
        "CREATE TABLE {s}.milestones (incident_id text PRIMARY KEY, "
        + ", ".join(f"{name} {kind}" for name, kind in _MILESTONE_TYPES.items())
        + ")",
        *(
            f"CREATE INDEX milestones_by_{name} ON {{s}}.milestones ({name}) "
            f"WHERE {name} IS NOT NULL"
            for name, kind in _MILESTONE_TYPES.items()
            if kind == "int8"
        ),
        _fill_milestones,
    ),
)

# Pools made before a fork belong to the parent; a child must neither use nor close them.
_ABANDONED: list[ConnectionPool[Any]] = []


class PostgresBase:
    """The pool, schema and shared reads of a PostgreSQL store (see PostgresStore)."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        min_size: int | None = None,
        max_size: int | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        cache_size: int = 256,
    ) -> None:
        conninfo, options, params = _parse_dsn(dsn)
        self._password = str(params.get("password") or "")
        self.schema = _schema_name(schema if schema is not None else options.get("schema"))
        self.min_size = _pool_size("min_size", min_size, options.get("min_size"), 1)
        self.max_size = _pool_size("max_size", max_size, options.get("max_size"), 10)
        if self.max_size < self.min_size:
            raise ConfigError(
                "max_size", f"must be at least min_size ({self.min_size}), got {self.max_size}"
            )
        if timeout <= 0 or connect_timeout <= 0:
            raise ConfigError("timeout", "timeouts must be positive numbers of seconds")
        self.timeout = float(timeout)
        #: Where the store is, for messages: host, port, database and schema, no password.
        self.where = f"{_display(params)}, schema {self.schema}"
        self._conninfo = conninfo
        self._kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in params:
            self._kwargs["connect_timeout"] = max(1, round(connect_timeout))
        if "application_name" not in params:
            self._kwargs["application_name"] = "incidentflow"
        self._sql = _Statements(self.schema)
        self._cache: SnapshotCache[int] = SnapshotCache(cache_size)
        self._closed = False
        self._pid = os.getpid()
        # A store pinned to an older schema (as tests of migrations do) keeps no search rows.
        self._searchable = SCHEMA_VERSION >= _SEARCH_SCHEMA
        self._tagged = SCHEMA_VERSION >= _TAGS_SCHEMA
        self._guarded = SCHEMA_VERSION >= _ACCESS_SCHEMA
        self._chunked = SCHEMA_VERSION >= _CHUNKS_SCHEMA
        self._measured = SCHEMA_VERSION >= _MILESTONES_SCHEMA
        # What this store's marks on stored lists carry: another store trusts none of them.
        self._chunk_key = object()
        self._prepare()
        self._pool = self._open_pool()

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r})"

    def _redact(self, text: str) -> str:
        # Libpq never repeats a password, but a message may quote a whole DSN.
        if len(self._password) >= 4:
            for secret in {self._password, quote(self._password, safe="")}:
                text = text.replace(secret, "***")
        return text

    def _fail(self, what: str, exc: BaseException) -> StoreError:
        return StoreError(self._redact(f"{self.where}: {what}: {_problem(exc)}{_hint(exc)}"))

    def _prepare(self) -> None:
        """Check the schema and migrate it forward, on a connection of its own."""
        try:
            with psycopg.connect(self._conninfo, **self._kwargs) as conn:
                version = self._schema_version_of(conn)
                if version != SCHEMA_VERSION:
                    self._migrate(conn)
        except psycopg.Error as exc:
            raise self._fail("cannot open the store", exc) from exc

    def _schema_version_of(self, conn: psycopg.Connection[Any]) -> int:
        """The schema's version, 0 if it has none yet; StoreError if foreign or newer."""
        # One statement, so one snapshot, of plain catalog reads (not to_regclass, whose
        # caches may not yet show what another host has just committed).
        marker, tables = conn.execute(
            "SELECT (SELECT d.description FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_description d ON d.objoid = c.oid "
            "AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0 "
            "WHERE n.nspname = %s AND c.relname = 'schema_version'), "
            "array(SELECT tablename::text FROM pg_tables WHERE schemaname = %s "
            "ORDER BY tablename)",
            (self.schema, self.schema),
        ).fetchone() or (None, [])
        if marker is None:
            if tables:
                raise StoreError(
                    f"{self.where}: not an incidentflow schema (it holds other tables: "
                    f"{', '.join(tables[:5])}); give the store a schema of its own, "
                    "e.g. ?schema=incidentflow"
                )
            return 0
        if marker != _MARKER:
            raise StoreError(
                f"{self.where}: its schema_version table belongs to another program; "
                "give the store a schema of its own"
            )
        row = conn.execute(f"SELECT max(version) FROM {self._sql.schema}.schema_version").fetchone()
        version = int(row[0] or 0) if row is not None else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.where}: the schema has version {version}, newer than "
                f"{SCHEMA_VERSION}, the newest this release of incidentflow knows; "
                "upgrade incidentflow to open it"
            )
        return version

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        # The lock makes hosts starting together queue here; the first migrates, the
        # others then find the schema current. It is taken before the transaction
        # begins, so that transaction sees the catalog as the first host left it.
        # DDL is transactional: a migration is applied whole or not at all.
        lock = (LOCK_CLASS, self.schema)
        conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", lock)
        try:
            self._migrate_locked(conn)
        finally:
            with contextlib.suppress(psycopg.Error):  # a broken connection has let go already
                conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", lock)

    def _migrate_locked(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            current = self._schema_version_of(conn)
            if current == SCHEMA_VERSION:
                return
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self._sql.schema}")
            try:
                for target in range(current + 1, SCHEMA_VERSION + 1):
                    # A step that reads snapshots reads them as the schema before it kept them.
                    self._chunked = target > _CHUNKS_SCHEMA
                    for statement in _MIGRATIONS[target - 1]:
                        if isinstance(statement, str):
                            conn.execute(statement.format(s=self._sql.schema))
                        else:
                            statement(self, conn)
                    conn.execute(
                        f"INSERT INTO {self._sql.schema}.schema_version (version) VALUES (%s)",
                        (target,),
                    )
            finally:
                self._chunked = SCHEMA_VERSION >= _CHUNKS_SCHEMA

    def _open_pool(self) -> ConnectionPool[Any]:
        pool: ConnectionPool[Any] = ConnectionPool(
            self._conninfo,
            kwargs=self._kwargs,
            min_size=self.min_size,
            max_size=self.max_size,
            timeout=self.timeout,
            name=f"incidentflow {self.where}",
            open=False,
        )
        # Waiting for the first connections keeps the pool from growing on the first
        # request: one thread then reuses one warm connection instead of rotating.
        try:
            pool.open(wait=True, timeout=self.timeout)
        except PoolTimeout as exc:
            pool.close()
            raise StoreError(
                f"{self.where}: the connection pool could not open {self.min_size} "
                f"connection(s) within {self.timeout:g} s: {_problem(exc)}"
            ) from exc
        return pool

    def _current_pool(self) -> ConnectionPool[Any]:
        if self._closed:
            raise StoreError(f"{self.where}: the store is closed; open a new one")
        if self._pid != os.getpid():
            # A forked child gets a pool of its own and leaves its parent's alone.
            _ABANDONED.append(self._pool)
            self._pid = os.getpid()
            self._cache.clear()
            self._pool = self._open_pool()
        return self._pool

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._current_pool().connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreError(
                f"{self.where}: no database connection within {self.timeout:g} s: "
                f"{_problem(exc)}; check that the server is up, or raise max_size "
                f"({self.max_size}) if every connection is busy"
            ) from exc

    def _read(self, what: str, work: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        for attempt in (1, 2):
            try:
                with self._connection() as conn:
                    return work(conn)
            except psycopg.Error as exc:
                # A connection the server dropped (restart, failover) is worth one more try,
                # once the pool has replaced every idle connection that died with it.
                if attempt == 1 and _connection_lost(exc):
                    with contextlib.suppress(psycopg.Error):
                        self._current_pool().check()
                    continue
                raise self._fail(what, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _write(self, what: str, work: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        try:
            with self._connection() as conn:
                return work(conn)
        except psycopg.Error as exc:
            error = self._fail(what, exc)
            if _connection_lost(exc):
                error = StoreError(
                    f"{error}; the connection broke during the write, so it may or may not "
                    "have been committed: reload the incident, or retry with the same "
                    "idempotency key"
                )
            raise error from exc

    def _load(self, conn: psycopg.Connection[Any], incident_id: str) -> Incident:
        """The snapshot at the version the incident's row holds (checkpoint and tail)."""
        row = conn.execute(self._sql.select_version, (incident_id,)).fetchone()
        if row is None:
            raise IncidentNotFound(incident_id)

        def checkpoint() -> Incident | None:
            return self._checkpoints(conn, [incident_id]).get(incident_id)

        def tail(after: int, upto: int) -> Sequence[Event]:
            return self._events(conn.execute(self._sql.select_tail, (incident_id, after, upto)))

        return load_snapshot(
            self._cache,
            incident_id,
            int(row[0]),
            checkpoint=checkpoint,
            tail=tail,
            where=self.where,
        )

    def _checkpoints(
        self, conn: psycopg.Connection[Any], incident_ids: Sequence[str]
    ) -> dict[str, Incident]:
        """The stored checkpoints of ``incident_ids``, with their chunked lists, at one moment."""
        sql = self._sql.select_snapshots if self._chunked else self._sql.select_bodies
        rows = conn.execute(sql, {"ids": list(incident_ids)})
        return decode_checkpoints(rows, self._chunk_key, self.where, load=_load_json)

    def _events(self, rows: Iterable[Sequence[Any]]) -> list[Event]:
        return [decode_event(row, self.where, data=_load_json, text=_from_column) for row in rows]

    def _snapshots_of(
        self, conn: psycopg.Connection[Any], found: Sequence[tuple[str, int]]
    ) -> Sequence[Incident]:
        """The snapshots of ``(id, version)`` pairs, reading what the cache lacks in batches."""
        current: dict[str, Incident] = {}
        stale: dict[str, int] = {}
        for incident_id, version in found:
            cached = self._cache.get(incident_id)
            if cached is not None and cached[0].version == version:
                current[incident_id] = cached[0]
            else:
                stale[incident_id] = version
        if stale:
            bases: dict[str, Incident] = {}
            unread = []
            for incident_id, version in stale.items():
                cached = self._cache.get(incident_id)
                if cached is not None and cached[0].version < version:
                    bases[incident_id] = cached[0]
                else:
                    unread.append(incident_id)
            if unread:
                bases.update(self._checkpoints(conn, unread))
            missing = set(stale) - set(bases)
            if missing:
                raise StoreError(f"{self.where}: {min(missing)} has no stored snapshot")
            behind = [i for i in stale if bases[i].version < stale[i]]
            tails: dict[str, list[Event]] = {i: [] for i in behind}
            if behind:
                cursor = conn.execute(
                    self._sql.select_tails,
                    (behind, [bases[i].version for i in behind], [stale[i] for i in behind]),
                )
                for event in self._events(cursor):
                    tails[event.incident_id].append(event)
            for incident_id, base in bases.items():
                snapshot = fold_onto(base, tails.get(incident_id, ()), self.where)
                self._cache.put(snapshot, snapshot.version)
                current[incident_id] = snapshot
        return [current[incident_id] for incident_id, _ in found]

    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        return self._read("cannot read the schema version", self._schema_version_of)

    def close(self) -> None:
        """Close the pool's connections. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._cache.clear()
        if self._pid == os.getpid():
            self._pool.close()
