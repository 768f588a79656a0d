"""PostgresStore: many hosts, one database. Needs the extra ``incidentflow[postgres]``.

URL forms (any libpq connection string works too)::

    postgresql://user:password@host:5432/dbname          a server over TCP
    postgresql:///dbname                                 the local Unix socket, as the OS user
    postgresql://user@host/dbname?sslmode=require        libpq options pass through
    postgresql://user@host/dbname?schema=incidents       the schema holding the tables
    postgres://...                                       the same
    postgresql://...?min_size=2&max_size=20              the connection pool's bounds

Durability: a command returns once its transaction is committed, with the
server's ``synchronous_commit`` setting (``on`` by default: flushed to the WAL
on disk, so it survives a crash or power cut of the server).

Concurrency: any number of threads, processes and hosts may write to the same
incidents at once. Optimistic concurrency is a versioned ``UPDATE`` of the
incident's row (``WHERE id = ? AND version = ?``), backed by
``UNIQUE (incident_id, seq)`` on the events: a command decided on a stale
version raises :class:`~incidentflow.ConcurrencyConflict` and writes nothing.
Each command is one transaction written by one statement (two, in one simple
query, when it has notifications to queue): one round trip to the server,
whatever it writes.

Layout, in its own schema (``incidentflow`` unless told otherwise; schema version 2)::

    events(position, incident_id, seq, type, at timestamptz, actor, data JSONB,
           idempotency_key, schema_version)        UNIQUE (incident_id, seq)
    incidents(id, version, state, severity, is_open, commander, title,
              title_casefold, declared_at, updated_at)   small row, indexed for list()
    snapshots(incident_id, version, body JSONB)     checkpoint: each time the history
                                                    doubles, and on every change of state
    outbox(position, id, incident_id, seq, notifier, attempts, next_attempt_at,
           last_error, dead, claimed_by, claimed_until, ready_at, head)
    idempotency_keys(key, fingerprint, incident_id, version)
    search(incident_id, title, symptom, root_cause, gotcha, gotcha_slug,
           <field>_lexemes, document tsvector)      what similar() searches (version 2),
                                                    GIN-indexed, written only on change
    schema_version(version, migrated_at)            forward migrations

Migrations run when a store opens, in one transaction under an advisory lock,
so many hosts starting at once migrate exactly once. A schema written by
a newer release, or one holding other programs' tables, is refused untouched.

As in SQLite, the full snapshot is rewritten only at checkpoints and each store
caches the last snapshot of each incident by version, so a command normally
reads one indexed row: it costs the same on an incident with 2,000 events as
on one with 10 (see :mod:`incidentflow.stores._snapshots`).

The outbox is shared by every host: delivery workers anywhere claim items with
``FOR UPDATE SKIP LOCKED``, so workers claiming at the same moment never wait
for each other and never get the same item while its lease holds. Each
(incident, notifier) stream is delivered in order: only its head, the oldest
item that is not dead, is claimable. ``head`` marks it and ``ready_at`` says
when it may next be claimed (the later of its next attempt and the end of its
claim), so a claim reads the partial index ``outbox_due_heads (ready_at,
position) WHERE head`` and stops after ``limit`` rows, however long the
backlog. Whoever moves a stream's head (a delivery, a dead letter, a re-drive)
first locks the incident's row, as each command does, so a command adding items
and a delivery removing the head never miss each other. Delivery is at least
once (an expired lease hands the item out again); receivers drop duplicates by
the notification id.

PostgreSQL text and JSONB cannot hold the NUL character; the store escapes it
(and its escape mark, U+10FFFF) on the way in and restores it on the way out,
so every string round-trips unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from .._events import Event
from .._metrics import MILESTONE_TIMES
from .._model import Incident, Severity, State
from .._serialization import converter, event_from_dict, incident_from_dict, incident_to_dict
from .._similar import (
    FIELD_WEIGHTS,
    FIELDS,
    SearchDocument,
    SearchText,
    SimilarIncident,
    indexed,
    search_text_changed,
)
from .._urls import mask_password
from ..exceptions import (
    ConcurrencyConflict,
    ConfigError,
    DuplicateIncident,
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
from ._snapshots import SnapshotCache, check_commit, check_key_unused, checkpoint_due, fold_onto

if TYPE_CHECKING:
    from .._metrics import Milestones

__all__ = ["DEFAULT_SCHEMA", "SCHEMA_VERSION", "PostgresStore"]

#: The schema this release writes. Schemas at an older version are migrated forward.
SCHEMA_VERSION = 2

#: The PostgreSQL schema (namespace) holding the tables unless told otherwise.
DEFAULT_SCHEMA = "incidentflow"

#: The first key of the advisory lock migrations hold ("IFLW"); the second is the schema's hash.
LOCK_CLASS = 0x49464C57

#: Marks our schema_version table, telling our schema from another program's.
_MARKER = "incidentflow schema versions"

#: Options of the URL's query that the store reads itself; the others go to libpq.
_STORE_OPTIONS = ("schema", "min_size", "max_size")

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# NUL cannot be stored in text or JSONB: it becomes MARK "0", and MARK itself MARK "1".
_MARK = "\U0010ffff"
_ESCAPED_NUL = _MARK + "0"
_ESCAPED_MARK = _MARK + "1"

_T = TypeVar("_T")

# -- similar incidents (schema version 2) ----------------------------------------------

#: The text search configuration of the index and the queries. 'english' stems
#: ("timeouts" finds "timeout", "failed" finds "failing") and drops English stop
#: words, as SQLite's porter tokenizer and the in-memory ranking do. It parses the
#: words of incidentflow._similar.indexed, so hosts and paths ("db-7.prod",
#: "/var/lib") are split into words as queries are. Changing it is a migration.
SEARCH_CONFIG = "english"

_SEARCH_TEXT = ("title", "symptom", "root_cause", "gotcha", "gotcha_slug")

#: Where each of ``MILESTONE_TIMES`` sits in a stored snapshot, in that order.
_MILESTONE_PATHS = (
    "detection,first_occurred_at",
    "detection,detected_at",
    "acknowledged_at",
    "contained_at",
    "fixed_at",
    "resolved_at",
    "postmortem,completed_at",
)
_SEARCH_LEXEMES = tuple(f"{name}_lexemes" for name in FIELDS)
_SEARCH_COLUMNS = ", ".join((*_SEARCH_TEXT, *_SEARCH_LEXEMES))
_SEARCH_VALUES = ", ".join(
    (
        *(f"%(search_{name})s" for name in _SEARCH_TEXT),
        *(f"to_tsvector('{SEARCH_CONFIG}', %(search_{name}_words)s)" for name in FIELDS),
    )
)
#: ts_rank_cd's weights of the labels D, C, B, A: the gotcha is C, the root cause B,
#: the title and symptom A, in the proportions of FIELD_WEIGHTS.
_RANK_WEIGHTS = [0.1, *(weight / FIELD_WEIGHTS[0] for weight in FIELD_WEIGHTS[3:1:-1]), 1.0]
_FILL_SEARCH = (
    f"INSERT INTO {{s}}.search (incident_id, {_SEARCH_COLUMNS}) "
    f"VALUES (%(search_incident_id)s, {_SEARCH_VALUES})"
)
#: The query is an OR of each term's plainto_tsquery, all parameters: nothing in the
#: terms is ever read as tsquery syntax. Stop words are left out before they reach
#: plainto_tsquery (which would send a NOTICE for each).
_SEARCH = (
    "WITH q AS (SELECT {s}.tsquery_any(plainto_tsquery(%(config)s::regconfig, t)) AS query "
    "FROM unnest(%(terms)s::text[]) AS t WHERE to_tsvector(%(config)s::regconfig, t) <> '') "
    "SELECT x.incident_id, i.severity, i.state, i.declared_at, x.title, x.symptom, "
    "x.root_cause, x.gotcha_slug, ts_rank_cd(%(weights)s::float4[], x.document, q.query) "
    "AS score, "
    + ", ".join(f"x.{name} @@ q.query" for name in _SEARCH_LEXEMES)
    + " FROM q JOIN {s}.search x ON x.document @@ q.query "
    "JOIN {s}.incidents i ON i.id = x.incident_id "
    "WHERE x.incident_id IS DISTINCT FROM %(exclude)s::text "
    "ORDER BY score DESC, i.declared_at DESC, x.incident_id DESC LIMIT %(limit)s"
)


def _search_params(text: SearchText) -> dict[str, Any]:
    """The searchable text as the ``search_*`` parameters of the statements writing it."""
    params: dict[str, Any] = {
        f"search_{name}": None if value is None else _to_column(value)
        for name, value in zip(_SEARCH_TEXT, text, strict=True)
    }
    params.update(
        (f"search_{name}_words", indexed(value))
        for name, value in zip(FIELDS, text.fields, strict=True)
    )
    return params


def _fill_search(store: PostgresStore, conn: psycopg.Connection[Any]) -> None:
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


#: A step of a migration: a statement (``{s}`` is the schema), or a function for
#: what SQL alone cannot do.
_Step: TypeAlias = "str | Callable[[PostgresStore, psycopg.Connection[Any]], None]"

#: The first schema with the search table.
_SEARCH_SCHEMA = 2

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
)

_COLUMNS = (
    "version",
    "state",
    "severity",
    "is_open",
    "commander",
    "title",
    "title_casefold",
    "declared_at",
    "updated_at",
)
_EVENT_COLUMNS = "incident_id, seq, type, at, actor, data, idempotency_key, schema_version"
_EVENT_SELECT = (
    "e.incident_id, e.seq, e.type, e.at, e.actor, e.data::text, e.idempotency_key, e.schema_version"
)

# Pools made before a fork belong to the parent; a child must neither use nor close them.
_ABANDONED: list[ConnectionPool[Any]] = []


class PostgresStore(Store):
    """Incidents in a PostgreSQL database, shared by any number of hosts.

    Args:
        dsn: A ``postgresql://`` or ``postgres://`` URL or a libpq connection
            string (``"host=db dbname=incidents user=app"``).
        schema: The schema holding the tables (created if missing); overrides
            the URL's ``?schema=``. Default ``incidentflow``. Lower-case letters,
            digits and underscores.
        min_size: Connections the pool keeps open.
        max_size: Connections the pool opens at most.
        timeout: Seconds to wait for a free connection before raising StoreError.
        connect_timeout: Seconds to wait for the server when connecting, unless
            the DSN sets ``connect_timeout`` itself.
        cache_size: How many incidents' snapshots to keep in memory.

    Raises:
        ConfigError: The DSN or an option is malformed.
        StoreError: The server cannot be reached, refuses the login, or holds
            a schema this release cannot use. The message names the host,
            database and schema, never the password.

    """

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
        self._prepare()
        self._pool = self._open_pool()

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r})"

    # -- connections -----------------------------------------------------------------

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
            for target in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target - 1]:
                    if isinstance(statement, str):
                        conn.execute(statement.format(s=self._sql.schema))
                    else:
                        statement(self, conn)
                conn.execute(
                    f"INSERT INTO {self._sql.schema}.schema_version (version) VALUES (%s)",
                    (target,),
                )

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

    # -- writing ---------------------------------------------------------------------

    def append(self, commit: Commit) -> None:
        """Write a commit in one transaction, one round trip (see :meth:`Store.append`)."""
        check_commit(commit.incident_id, commit.expected_version, commit.events)
        try:
            events = _event_columns(commit.events)
        except (TypeError, ValueError) as exc:
            raise self._fail(f"cannot serialise the events of {commit.incident_id}", exc) from exc
        cached = self._cache.get(commit.incident_id)
        previous = None
        if cached is not None and cached[0].version == commit.expected_version:
            previous = cached[0]
        self._write(
            f"cannot append to {commit.incident_id}",
            lambda conn: self._apply(conn, commit, events, previous),
        )
        self._cache.put(commit.snapshot, commit.snapshot.version)

    def _apply(
        self,
        conn: psycopg.Connection[Any],
        commit: Commit,
        events: dict[str, Any],
        previous: Incident | None,
    ) -> None:
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
            params.update(zip(_COLUMNS, _columns(snapshot), strict=True))
            columns: tuple[str, ...] = ()
        else:
            changes = _changed_columns(snapshot, previous)
            params.update(changes)
            columns = tuple(changes)
        body = None
        if checkpoint_due(expected, state_before, snapshot):
            body = self._snapshot_json(snapshot)
            params.update(version=snapshot.version, body=_jsonb(body))
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
        # Most commands change no searchable text: they skip the search row entirely.
        search = self._searchable and (previous is None or search_text_changed(previous, snapshot))
        if search:
            params.update(_search_params(SearchText.of(snapshot)))
        sql = self._sql.commit(
            columns, body is not None, record is not None, bool(commit.outbox), search
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
            if exc.diag.table_name == "idempotency_keys":
                assert record is not None
                check_key_unused(self._idempotency(conn, record.key), commit)
                raise ConcurrencyConflict(commit.incident_id, expected, expected + 1) from None
            raise self._refusal(conn, commit) from None
        if found is None or found[0] != 1:
            raise self._refusal(conn, commit)

    def _snapshot_json(self, snapshot: Incident) -> str:
        try:
            return _dump_json(incident_to_dict(snapshot))
        except (TypeError, ValueError) as exc:
            raise self._fail(f"cannot serialise the snapshot of {snapshot.id}", exc) from exc

    def _refusal(self, conn: psycopg.Connection[Any], commit: Commit) -> Exception:
        if commit.expected_version == 0:
            return DuplicateIncident(commit.incident_id)
        row = conn.execute(self._sql.select_version, (commit.incident_id,)).fetchone()
        actual = 0 if row is None else int(row[0])
        return ConcurrencyConflict(commit.incident_id, commit.expected_version, actual)

    # -- the outbox, shared by delivery workers on every host ---------------------------

    def pending(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Undelivered outbox items that are not dead, oldest first (claimed ones too)."""
        return self._read(
            "cannot read the outbox",
            lambda conn: self._items(conn.execute(self._sql.pending, (limit,))),
        )

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

        One statement picks the heads and marks them claimed until ``now + lease``.
        It locks the rows it picks with ``FOR UPDATE SKIP LOCKED``: a worker on
        another host claiming at the same moment skips them instead of waiting,
        takes other streams' heads, and never gets the same row while the lease
        holds. A stream's later items wait until its head is delivered or dead.
        With ``incident_id``, only that incident's streams are looked at.
        """
        if limit <= 0:
            return []
        until = now + lease
        due: tuple[Any, ...] = (now, limit, _to_column(worker), until, until)
        if incident_id is None:
            sql, params = self._sql.claim, due
        else:
            sql, params = self._sql.claim_incident, (incident_id, *due)
        return self._write(
            "cannot claim outbox items",
            lambda conn: self._items(conn.execute(sql, params)),
        )

    def mark_delivered(self, ids: Iterable[str]) -> None:
        """Remove delivered items from the outbox; unknown ids are ignored."""
        delivered = list(dict.fromkeys(ids))
        if not delivered:
            return

        # Two statements in one simple query: one transaction, one round trip.
        self._write(
            "cannot mark outbox items delivered",
            lambda conn: psycopg.ClientCursor(conn).execute(
                f"{self._sql.lock_streams}; {self._sql.delete_outbox}",
                (delivered, delivered, delivered),
            ),
        )

    def settle_and_claim(
        self,
        delivered: Iterable[str],
        *,
        now: datetime,
        limit: int,
        lease: timedelta,
        worker: str,
    ) -> Sequence[OutboxItem]:
        """Mark ``delivered`` and claim the next due heads, in one transaction."""
        settled = list(dict.fromkeys(delivered))
        if limit <= 0:
            self.mark_delivered(settled)
            return []
        until = now + lease
        due = (now, limit, _to_column(worker), until, until)

        def work(conn: psycopg.Connection[Any]) -> list[OutboxItem]:
            if settled:
                psycopg.ClientCursor(conn).execute(
                    f"{self._sql.lock_streams}; {self._sql.delete_outbox}",
                    (settled, settled, settled),
                )
            return self._items(conn.execute(self._sql.claim, due))

        return self._write("cannot settle and claim outbox items", work)

    def mark_failed(
        self, item_id: str, *, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        """Count a failed attempt, release the claim, and retry later or give up."""
        params = (_to_column(error), next_attempt_at, dead, next_attempt_at, dead, item_id)

        def work(conn: psycopg.Connection[Any]) -> None:
            if not dead:  # the stream keeps its head: nothing else changes
                conn.execute(self._sql.mark_failed, params)
            else:
                psycopg.ClientCursor(conn).execute(
                    f"{self._sql.lock_streams}; {self._sql.mark_dead}",
                    ([item_id], *params, item_id),
                )

        self._write(f"cannot record the failed delivery of {item_id}", work)

    def dead_letters(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Items that gave up, oldest first."""
        return self._read(
            "cannot read the dead letters",
            lambda conn: self._items(conn.execute(self._sql.dead_letters, (limit,))),
        )

    def redrive(self, ids: Iterable[str]) -> int:
        """Put dead items back in line with a fresh attempt count; returns how many."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0

        def work(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction():
                conn.execute(self._sql.lock_streams, (wanted,))
                streams = conn.execute(self._sql.redrive, (wanted,)).fetchall()
                if streams:
                    incidents, notifiers = (list(column) for column in zip(*streams, strict=True))
                    conn.execute(self._sql.rehead, (incidents, notifiers))
                return len(streams)

        return self._write("cannot re-drive dead letters", work)

    def _items(self, rows: Iterable[Sequence[Any]]) -> list[OutboxItem]:
        items = []
        for row in rows:
            item_id, notifier, attempts, next_attempt_at, last_error, dead = row[:6]
            items.append(
                OutboxItem(
                    item_id,
                    self._event(row[6:]),
                    _from_column(notifier),
                    attempts,
                    None if next_attempt_at is None else next_attempt_at.astimezone(UTC),
                    _from_column(last_error),
                    dead,
                )
            )
        return items

    def explain_claim(self) -> Sequence[str]:
        """PostgreSQL's plan for the search :meth:`claim` runs, one line per step."""
        now = datetime.now(UTC)
        rows = self._read(
            "cannot explain the claim",
            lambda conn: conn.execute(
                f"EXPLAIN {self._sql.claim}", (now, 100, "explain", now, now)
            ).fetchall(),
        )
        return [str(row[0]) for row in rows]

    # -- reading ---------------------------------------------------------------------

    def load(self, incident_id: str) -> Incident:
        """The current snapshot. Raises IncidentNotFound."""
        return self._read(f"cannot load {incident_id}", lambda conn: self._load(conn, incident_id))

    def _load(self, conn: psycopg.Connection[Any], incident_id: str) -> Incident:
        row = conn.execute(self._sql.select_version, (incident_id,)).fetchone()
        if row is None:
            raise IncidentNotFound(incident_id)
        version = int(row[0])
        cached = self._cache.get(incident_id)
        if cached is not None and cached[0].version == version:
            return cached[0]  # the common case: one indexed read
        if cached is not None and cached[0].version < version:
            base = cached[0]
        else:
            found = conn.execute(self._sql.select_snapshot, (incident_id,)).fetchone()
            if found is None:
                raise StoreError(f"{self.where}: {incident_id} has no stored snapshot")
            base = self._snapshot(found[0], incident_id)
        if base.version < version:
            tail = self._events(
                conn.execute(self._sql.select_tail, (incident_id, base.version, version))
            )
            base = fold_onto(base, tail, self.where)
        self._cache.put(base, base.version)
        return base

    def _snapshot(self, body: str, incident_id: str) -> Incident:
        try:
            return incident_from_dict(_load_json(body))
        except (StoreError, ValueError, TypeError) as exc:
            raise StoreError(f"{self.where}: the snapshot of {incident_id}: {exc}") from exc

    def _events(self, rows: Iterable[Sequence[Any]]) -> list[Event]:
        return [self._event(row) for row in rows]

    def _event(self, row: Sequence[Any]) -> Event:
        incident_id, seq, type_, at, actor, data, key, schema_version = row
        try:
            return event_from_dict(
                {
                    "incident_id": incident_id,
                    "seq": seq,
                    "type": type_,
                    "at": at.astimezone(UTC).isoformat(),
                    "actor": _from_column(actor),
                    "data": _load_json(data),
                    "idempotency_key": None if key is None else _from_column(key),
                    "schema_version": schema_version,
                }
            )
        except (ValueError, TypeError, StoreError) as exc:
            raise StoreError(
                f"{self.where}: event {seq} of {incident_id} cannot be read: {exc}"
            ) from exc

    def history(self, incident_id: str, after: int = 0) -> Sequence[Event]:
        """The events after seq ``after``, in order. Raises IncidentNotFound."""

        def read(conn: psycopg.Connection[Any]) -> list[Event]:
            events = self._events(conn.execute(self._sql.select_history, (incident_id, after)))
            if not events and conn.execute(self._sql.exists, (incident_id,)).fetchone() is None:
                raise IncidentNotFound(incident_id)
            return events

        return tuple(self._read(f"cannot read the history of {incident_id}", read))

    def list(self, query: IncidentQuery) -> Sequence[Incident]:
        """Snapshots matching ``query``, filtered, ordered and paged by SQL on indexed columns."""
        sql, params = self._sql.list(query)

        def read(conn: psycopg.Connection[Any]) -> Sequence[Incident]:
            # One snapshot of the database for the whole answer.
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                found = [(str(i), int(v)) for i, v in conn.execute(sql, params).fetchall()]
                return self._snapshots_of(conn, found)

        return self._read("cannot list incidents", read)

    def milestones(self, query: IncidentQuery) -> Iterator[Milestones]:
        """The milestones of matching incidents, read from the checkpoints by the server.

        No snapshot is built: one query returns, beside each incident's row,
        the seven times the metrics need, extracted from its stored checkpoint
        (``jsonb``). An incident whose checkpoint lags its history is loaded whole.
        """
        from .._metrics import Milestones, milestones

        times = ", ".join(f"s.body #>> '{{{path}}}'" for path in _MILESTONE_PATHS)
        sql, params = self._sql.list(
            query,
            "id, version, severity, state, declared_at, "
            f"(SELECT ARRAY[s.version::text, {times}] FROM {self.schema}.snapshots s "
            "WHERE s.incident_id = incidents.id)",
        )

        def read(conn: psycopg.Connection[Any]) -> tuple[list[Any], list[Milestones]]:
            with conn.transaction():  # every row as of one moment
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                rows = conn.execute(sql, params).fetchall()
                lagging = [
                    milestones(self._load(conn, str(row[0])))
                    for row in rows
                    if row[5] is None or int(row[5][0]) != int(row[1])
                ]
            return rows, lagging

        rows, lagging = self._read("cannot read the milestones", read)
        yield from lagging
        when = datetime.fromisoformat
        for incident_id, version, severity, state, declared, stored in rows:
            if stored is None or int(stored[0]) != int(version):
                continue
            found = dict(
                zip(
                    MILESTONE_TIMES,
                    (None if t is None else when(t) for t in stored[1:]),
                    strict=True,
                )
            )
            yield Milestones(
                incident_id=str(incident_id),
                severity=Severity(severity),
                state=State(state),
                declared_at=declared.astimezone(UTC),
                **found,
            )

    def summaries(self, query: IncidentQuery) -> Sequence[IncidentSummary]:
        """Summaries of matching incidents, read from the indexed columns alone."""
        sql, params = self._sql.list(
            query, "id, title, severity, state, commander, declared_at, updated_at, version"
        )
        rows = self._read(
            "cannot list incidents", lambda conn: conn.execute(sql, params).fetchall()
        )
        return [
            IncidentSummary(
                str(incident_id),
                _from_column(title),
                Severity(severity),
                State(state),
                _from_column(commander),
                declared.astimezone(UTC),
                updated.astimezone(UTC),
                int(version),
            )
            for incident_id, title, severity, state, commander, declared, updated, version in rows
        ]

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
                for incident_id, body in conn.execute(self._sql.select_snapshots, (unread,)):
                    bases[incident_id] = self._snapshot(body, incident_id)
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

    def _search(
        self, terms: tuple[str, ...], *, exclude: str | None, limit: int
    ) -> Sequence[SimilarIncident]:
        """Rank with ``ts_rank_cd`` over the GIN-indexed tsvectors (see :meth:`Store.search`).

        The query ORs each term's ``plainto_tsquery`` in the ``english``
        configuration (:data:`SEARCH_CONFIG`); the fields that matched are
        those whose own tsvector matches it.
        """
        if not self._searchable:
            return super()._search(terms, exclude=exclude, limit=limit)
        params = {
            "config": SEARCH_CONFIG,
            "terms": list(terms),
            "weights": _RANK_WEIGHTS,
            "exclude": exclude,
            "limit": limit,
        }
        sql = _SEARCH.format(s=self._sql.schema)
        rows = self._read(
            "cannot search for similar incidents",
            lambda conn: conn.execute(sql, params).fetchall(),
        )
        found = []
        for row in rows:
            incident_id, severity, state, declared_at, title, symptom, root_cause, slug = row[:8]
            score, hits = row[8], row[9:]
            text = SearchText(
                _from_column(title),
                _from_column(symptom),
                _from_column(root_cause),
                "",
                None if slug is None else _from_column(slug),
            )
            document = SearchDocument(
                incident_id, Severity(severity), State(state), declared_at.astimezone(UTC), text
            )
            matched = [name for name, hit in zip(FIELDS, hits, strict=True) if hit]
            found.append(document.found(float(score), matched))
        return found

    def explain_list(self, query: IncidentQuery) -> Sequence[str]:
        """PostgreSQL's plan for :meth:`list` with ``query``, one line per step."""
        sql, params = self._sql.list(query)
        rows = self._read(
            "cannot explain the query",
            lambda conn: conn.execute(f"EXPLAIN {sql}", params).fetchall(),
        )
        return [str(row[0]) for row in rows]

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


# -- SQL ---------------------------------------------------------------------------------


class _Statements:
    """The store's SQL, with the schema's name filled in once."""

    def __init__(self, schema: str) -> None:
        s = self.schema = f'"{schema}"'
        self.select_version = f"SELECT version FROM {s}.incidents WHERE id = %s"
        self.exists = f"SELECT 1 FROM {s}.incidents WHERE id = %s"
        self.select_state = f"SELECT version, state FROM {s}.incidents WHERE id = %s"
        self.select_key = (
            f"SELECT key, fingerprint, incident_id, version FROM {s}.idempotency_keys "
            "WHERE key = %s"
        )
        self.select_snapshot = f"SELECT body::text FROM {s}.snapshots WHERE incident_id = %s"
        self.select_snapshots = (
            f"SELECT incident_id, body::text FROM {s}.snapshots WHERE incident_id = ANY(%s)"
        )
        self.select_history = (
            f"SELECT {_EVENT_SELECT} FROM {s}.events e "
            "WHERE e.incident_id = %s AND e.seq > %s ORDER BY e.seq"
        )
        self.select_tail = (
            f"SELECT {_EVENT_SELECT} FROM {s}.events e "
            "WHERE e.incident_id = %s AND e.seq > %s AND e.seq <= %s ORDER BY e.seq"
        )
        self.select_tails = (
            f"SELECT {_EVENT_SELECT} FROM {s}.events e "
            "JOIN unnest(%s::text[], %s::int[], %s::int[]) AS t(id, after, upto) "
            "ON e.incident_id = t.id AND e.seq > t.after AND e.seq <= t.upto "
            "ORDER BY e.incident_id, e.seq"
        )
        item = (
            "o.id, o.notifier, o.attempts, o.next_attempt_at, o.last_error, o.dead, "
            f"{_EVENT_SELECT}"
        )
        joined = (
            f"FROM {s}.outbox o JOIN {s}.events e ON e.incident_id = o.incident_id "
            "AND e.seq = o.seq"
        )
        self.pending = f"SELECT {item} {joined} WHERE NOT o.dead ORDER BY o.position LIMIT %s"
        self.dead_letters = f"SELECT {item} {joined} WHERE o.dead ORDER BY o.position LIMIT %s"
        self.claim = _claim_sql(s, item, "")
        self.claim_incident = _claim_sql(s, item, "incident_id = %s AND ")
        # Who changes which item is a stream's head (deliver, kill, re-drive) first locks
        # the incident's row, as every command does: an item a command adds meanwhile
        # then sees the outcome, and the outcome sees the item.
        self.lock_streams = (
            f"SELECT 1 FROM {s}.incidents WHERE id IN (SELECT incident_id FROM {s}.outbox "
            "WHERE id = ANY(%s)) ORDER BY id FOR NO KEY UPDATE"
        )
        # The oldest live item of each stream that just lost its head, leaving out the
        # items this statement removes (it does not see its own changes).
        promote = (
            f"UPDATE {s}.outbox o SET head = true FROM (SELECT DISTINCT ON "
            f"(n.incident_id, n.notifier) n.position FROM {s}.outbox n JOIN changed c "
            "ON c.incident_id = n.incident_id AND c.notifier = n.notifier "
            "WHERE NOT n.dead AND n.id <> ALL(%s) ORDER BY n.incident_id, n.notifier, n.seq) "
            "AS next WHERE o.position = next.position AND NOT o.head"
        )
        self.delete_outbox = (
            f"WITH changed AS (DELETE FROM {s}.outbox WHERE id = ANY(%s) "
            f"RETURNING incident_id, notifier) {promote}"
        )
        failed = (
            f"UPDATE {s}.outbox SET attempts = attempts + 1, last_error = %s, "
            "next_attempt_at = %s, dead = %s, ready_at = %s, claimed_by = NULL, "
            "claimed_until = NULL, head = head AND NOT %s WHERE id = %s"
        )
        self.mark_failed = failed
        self.mark_dead = (
            f"WITH changed AS ({failed} RETURNING incident_id, notifier) "
            f"{promote.replace('ALL(%s)', 'ALL(ARRAY[%s])')}"
        )
        self.redrive = (
            f"UPDATE {s}.outbox SET attempts = 0, next_attempt_at = NULL, dead = false, "
            "ready_at = '-infinity', claimed_by = NULL, claimed_until = NULL, head = false "
            "WHERE id = ANY(%s) AND dead RETURNING incident_id, notifier"
        )
        # Each stream's head is its oldest live item (after re-driving older ones).
        self.rehead = (
            "WITH streams AS (SELECT DISTINCT * FROM unnest(%s::text[], %s::text[]) "
            "AS t(incident_id, notifier)), "
            f"heads AS (SELECT DISTINCT ON (o.incident_id, o.notifier) o.position "
            f"FROM {s}.outbox o JOIN streams t USING (incident_id, notifier) "
            "WHERE NOT o.dead ORDER BY o.incident_id, o.notifier, o.seq) "
            f"UPDATE {s}.outbox o SET head = o.position IN (SELECT position FROM heads) "
            "FROM streams t WHERE o.incident_id = t.incident_id AND o.notifier = t.notifier "
            "AND NOT o.dead AND o.head <> (o.position IN (SELECT position FROM heads))"
        )

    @functools.cache  # noqa: B019 - a few statements, each prepared once per connection
    def commit(
        self,
        columns: tuple[str, ...],
        checkpoint: bool,
        key: bool,
        outbox: bool,
        search: bool = False,
    ) -> str:
        """The statement writing a commit; ``columns`` empty means a new incident.

        Every insert reads ``changed``, the incident row written: when the
        versioned UPDATE finds the incident at another version it changes no
        row, nothing else is written, and the statement returns 0. With
        ``search``, the incident's search row is written unless it already
        holds that text.
        """
        s = self.schema
        if columns:
            assignments = ", ".join(f"{name} = %({name})s" for name in columns)
            changed = (
                f"UPDATE {s}.incidents SET {assignments} "
                "WHERE id = %(id)s AND version = %(expected)s RETURNING id"
            )
        else:
            values = ", ".join(f"%({name})s" for name in _COLUMNS)
            changed = (
                f"INSERT INTO {s}.incidents (id, {', '.join(_COLUMNS)}) "
                f"VALUES (%(id)s, {values}) RETURNING id"
            )
        parts = [
            f"WITH changed AS ({changed})",
            f"events AS (INSERT INTO {s}.events ({_EVENT_COLUMNS}) "
            "SELECT c.id, e.* FROM changed c, unnest(%(seq)s::integer[], %(type)s::text[], "
            "%(at)s::timestamptz[], %(actor)s::text[], %(data)s::jsonb[], "
            "%(event_key)s::text[], %(schema_version)s::integer[]) AS e)",
        ]
        if checkpoint:
            parts.append(
                f"snapshot AS (INSERT INTO {s}.snapshots (incident_id, version, body) "
                "SELECT c.id, %(version)s, %(body)s FROM changed c "
                "ON CONFLICT (incident_id) DO UPDATE SET version = excluded.version, "
                "body = excluded.body)"
            )
        if search:
            parts.append(
                f"searched AS (INSERT INTO {s}.search (incident_id, {_SEARCH_COLUMNS}) "
                f"SELECT c.id, {_SEARCH_VALUES} FROM changed c WHERE NOT EXISTS ("
                f"SELECT 1 FROM {s}.search x WHERE x.incident_id = c.id AND "
                f"({', '.join(_SEARCH_TEXT)}) IS NOT DISTINCT FROM "
                f"({', '.join(f'%(search_{name})s' for name in _SEARCH_TEXT)})) "
                "ON CONFLICT (incident_id) DO UPDATE SET "
                + ", ".join(f"{name} = excluded.{name}" for name in _SEARCH_COLUMNS.split(", "))
                + ")"
            )
        if key:
            parts.append(
                f"kept AS (INSERT INTO {s}.idempotency_keys "
                "(key, fingerprint, incident_id, version) "
                "SELECT %(key)s, %(fingerprint)s, %(key_incident)s, %(key_version)s FROM changed)"
            )
        flag = ", set_config('incidentflow.applied', (count(*) = 1)::text, true)"
        sql = ", ".join(parts) + f" SELECT count(*){flag if outbox else ''} FROM changed"
        if outbox:
            # A statement of its own, so that it sees what a delivery that held the
            # incident's row before this commit did; written only if the first one was.
            sql += (
                f"; INSERT INTO {s}.outbox (id, incident_id, seq, notifier, attempts, "
                "next_attempt_at, last_error, dead, ready_at, head) "
                "SELECT t.id, %(id)s, t.seq, t.notifier, t.attempts, t.next_attempt_at, "
                "t.last_error, t.dead, coalesce(t.next_attempt_at, '-infinity'), "
                f"t.first AND NOT EXISTS (SELECT 1 FROM {s}.outbox o "
                "WHERE o.incident_id = %(id)s AND o.notifier = t.notifier AND NOT o.dead) "
                "FROM unnest(%(item_id)s::text[], %(item_seq)s::integer[], "
                "%(notifier)s::text[], %(attempts)s::integer[], "
                "%(next_attempt_at)s::timestamptz[], %(last_error)s::text[], "
                "%(dead)s::boolean[], %(first)s::boolean[]) "
                "AS t(id, seq, notifier, attempts, next_attempt_at, last_error, dead, first) "
                "WHERE current_setting('incidentflow.applied', true) = 'true' "
                "ON CONFLICT (id) DO NOTHING"
            )
        return sql

    def list(
        self, query: IncidentQuery, columns: str = "id, version"
    ) -> tuple[str, tuple[Any, ...]]:
        where: list[str] = []
        params: list[Any] = []
        if query.states is not None:
            where.append("state = ANY(%s)")
            params.append(sorted(s.value for s in query.states))
        if query.severities is not None:
            where.append("severity = ANY(%s)")
            params.append(sorted(s.value for s in query.severities))
        if query.open_only:
            where.append("is_open")
        if query.commander is not None:
            where.append("commander = %s")
            params.append(_to_column(query.commander))
        if query.declared_after is not None:
            where.append("declared_at >= %s")
            params.append(query.declared_after)
        if query.declared_before is not None:
            where.append("declared_at < %s")
            params.append(query.declared_before)
        if query.text is not None:
            # Bytes of UTF-8: a substring of bytes is a substring of characters.
            where.append("position(%s::bytea IN title_casefold) > 0")
            params.append(_casefold(query.text))
        order = "DESC" if query.newest_first else "ASC"
        sql = f"SELECT {columns} FROM {self.schema}.incidents"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY declared_at {order}, id {order} LIMIT %s OFFSET %s"
        params.extend((query.limit, query.offset))
        return sql, tuple(params)


def _claim_sql(s: str, item: str, only: str) -> str:
    # The due heads, oldest-ready first, read from the partial index outbox_due_heads;
    # rows another claim is taking are skipped, not waited for.
    return (
        f"WITH picked AS (SELECT position FROM {s}.outbox "
        f"WHERE {only}head AND ready_at <= %s "
        "ORDER BY ready_at, position LIMIT %s FOR UPDATE SKIP LOCKED), "
        f"claimed AS (UPDATE {s}.outbox o SET claimed_by = %s, claimed_until = %s, "
        "ready_at = %s FROM picked WHERE o.position = picked.position RETURNING o.*) "
        f"SELECT {item} FROM claimed o JOIN {s}.events e "
        "ON e.incident_id = o.incident_id AND e.seq = o.seq ORDER BY o.ready_at, o.position"
    )


# -- values -----------------------------------------------------------------------------


def _to_column(text: str) -> str:
    """Text as stored: NUL (which PostgreSQL refuses) and the escape mark escaped."""
    if "\x00" not in text and _MARK not in text:
        return text
    return text.replace(_MARK, _ESCAPED_MARK).replace("\x00", _ESCAPED_NUL)


def _from_column(text: str) -> str:
    """The text :func:`_to_column` stored."""
    if _MARK not in text:
        return text
    return text.replace(_ESCAPED_NUL, "\x00").replace(_ESCAPED_MARK, _MARK)


def _deep(value: Any, convert: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return convert(value)
    if isinstance(value, dict):
        return {convert(k): _deep(v, convert) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v, convert) for v in value]
    return value


def _dump_json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if "\\u0000" in text or _MARK in text:
        text = json.dumps(_deep(value, _to_column), ensure_ascii=False, separators=(",", ":"))
    return text


def _load_json(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise StoreError(f"stored JSON cannot be read: {exc}") from exc
    return _deep(value, _from_column) if _MARK in text else value


def _identity(text: str) -> str:
    return text


def _jsonb(text: str) -> Jsonb:
    return Jsonb(text, dumps=_identity)


def _casefold(text: str) -> bytes:
    return text.casefold().encode("utf-8")


def _event_columns(events: Sequence[Event]) -> dict[str, list[Any]]:
    """The events as one array per column (the incident id comes from the statement)."""
    unstructure = converter().unstructure
    return {
        "seq": [event.seq for event in events],
        "type": [event.type for event in events],
        "at": [event.at for event in events],
        "actor": [_to_column(event.actor) for event in events],
        "data": [
            _jsonb(_dump_json(unstructure(event.data, unstructure_as=type(event.data))))
            for event in events
        ],
        "event_key": [
            None if event.idempotency_key is None else _to_column(event.idempotency_key)
            for event in events
        ],
        "schema_version": [event.schema_version for event in events],
    }


def _outbox_columns(items: Sequence[OutboxItem]) -> dict[str, list[Any]]:
    """The outbox items as one array per column; ``first``: oldest live item of its stream."""
    ordered = sorted(items, key=lambda item: item.event.seq)
    seen: set[str] = set()
    first = []
    for item in ordered:
        first.append(not item.dead and item.notifier not in seen)
        if not item.dead:
            seen.add(item.notifier)
    return {
        "item_id": [item.id for item in ordered],
        "item_seq": [item.event.seq for item in ordered],
        "notifier": [_to_column(item.notifier) for item in ordered],
        "attempts": [item.attempts for item in ordered],
        "next_attempt_at": [item.next_attempt_at for item in ordered],
        "last_error": [_to_column(item.last_error) for item in ordered],
        "dead": [item.dead for item in ordered],
        "first": first,
    }


def _columns(incident: Incident) -> tuple[Any, ...]:
    return (
        incident.version,
        incident.state.value,
        incident.severity.value,
        incident.is_open,
        _to_column(incident.commander),
        _to_column(incident.title),
        _casefold(incident.title),
        incident.declared_at,
        incident.updated_at,
    )


def _changed_columns(incident: Incident, before: Incident | None) -> dict[str, Any]:
    """The incident row's columns to set; with ``before``, only those that changed."""
    if before is None:
        return dict(zip(_COLUMNS, _columns(incident), strict=True))
    # Setting only what changed keeps the statement small and the update HOT.
    columns: dict[str, Any] = {"version": incident.version}
    if incident.state is not before.state:
        columns["state"] = incident.state.value
        columns["is_open"] = incident.is_open
    if incident.severity is not before.severity:
        columns["severity"] = incident.severity.value
    if incident.commander != before.commander:
        columns["commander"] = _to_column(incident.commander)
    if incident.title != before.title:
        columns["title"] = _to_column(incident.title)
        columns["title_casefold"] = _casefold(incident.title)
    if incident.declared_at != before.declared_at:
        columns["declared_at"] = incident.declared_at
    if incident.updated_at != before.updated_at:
        columns["updated_at"] = incident.updated_at
    return columns


# -- connection strings and errors -----------------------------------------------------


def _parse_dsn(dsn: object) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The connection string for libpq, the store's own options, and libpq's parameters."""
    if not isinstance(dsn, str) or not dsn.strip():
        raise ConfigError("dsn", f"expected a PostgreSQL URL or connection string, got {dsn!r}")
    options: dict[str, str] = {}
    conninfo = dsn
    password = ""
    if "://" in dsn:
        try:
            parts = urlsplit(dsn)
        except ValueError:
            # urlsplit's own message can quote the host part, password and all.
            raise ConfigError(
                "dsn",
                f"malformed URL {mask_password(dsn)!r}: {_url_problem(dsn)}",
            ) from None
        scheme = parts.scheme.lower()
        if scheme not in ("postgresql", "postgres"):
            raise ConfigError("dsn", f"expected a postgresql:// URL, got a {scheme}:// one")
        password = unquote(parts.netloc.rpartition("@")[0].partition(":")[2])
        passed = []
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name in _STORE_OPTIONS:
                options[name] = value
            else:
                passed.append((name, value))
        # Rebuilt by hand: urlunsplit drops the "//" of an empty host (the Unix socket).
        query = urlencode(passed)
        conninfo = f"postgresql://{parts.netloc}{parts.path}{'?' + query if query else ''}"
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        message = _scrub(_problem(exc), password)
        raise ConfigError(
            "dsn",
            f"not a valid PostgreSQL connection string ({message}); use "
            "postgresql://user@host:port/dbname or 'host=... dbname=...'",
        ) from None
    return make_conninfo("", **params), options, params


def _url_problem(dsn: str) -> str:
    """Why urlsplit refuses ``dsn`` and what would do, in words that quote none of it."""
    user_info, _, host = dsn.partition("://")[2].rpartition("@")
    if "[" in host or "]" in host:
        return "an IPv6 host goes between matching brackets; e.g. postgresql://user@[::1]/db"
    if "[" in user_info or "]" in user_info:
        return (
            "write [ and ] in a user name or password as %5B and %5D; "
            "e.g. postgresql://user:p%5B1%5D@host/db"
        )
    return "the host holds characters a URL cannot; e.g. postgresql://user@host/db"


def _scrub(text: str, password: str) -> str:
    """``text`` without the password, whether known or only recognisable."""
    if password:
        text = text.replace(password, "***").replace(quote(password, safe=""), "***")
    text = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text)
    return re.sub(r"(://[^:/?#@\s]*:)[^@/\s]*@", r"\1***@", text)


def _display(params: dict[str, Any]) -> str:
    """``postgresql://user@host:port/dbname`` for messages: never the password."""
    user = params.get("user") or os.environ.get("PGUSER") or _os_user()
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or ""
    port = params.get("port") or os.environ.get("PGPORT") or ""
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or user
    where = host if host and not host.startswith("/") else ""
    if port and where:
        where += f":{port}"
    text = f"postgresql://{user}@{where}/{dbname}"
    if not where:
        socket = f" in {host}" if host else ""
        text += f" (Unix socket{socket}{', port ' + str(port) if port else ''})"
    return text


def _os_user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        return "?"


def _schema_name(value: object) -> str:
    name = DEFAULT_SCHEMA if value is None else value
    if not isinstance(name, str) or not _SCHEMA_NAME.fullmatch(name):
        raise ConfigError(
            "schema",
            f"{value!r} is not a schema name this store uses: lower-case letters, digits "
            "and underscores, starting with a letter or underscore, at most 63",
        )
    return name


def _pool_size(key: str, given: int | None, option: str | None, default: int) -> int:
    value: object = given if given is not None else option if option is not None else default
    try:
        size = int(str(value))
    except ValueError:
        size = -1
    if size < (1 if key == "max_size" else 0) or isinstance(value, bool):
        raise ConfigError(key, f"expected a whole number of connections, got {value!r}")
    return size


def _problem(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    # libpq repeats the server's answer over several lines; the first two say it all.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:2])


def _hint(exc: BaseException) -> str:
    text = str(exc).lower()
    if "connection refused" in text or "no such file or directory" in text:
        return "; is the server running and accepting connections on that host and port?"
    if "does not exist" in text and "database" in text:
        return "; create the database (createdb) or name an existing one"
    if "role" in text and "does not exist" in text:
        return "; create the role (createuser) or connect as an existing one"
    if "password authentication failed" in text or "no password supplied" in text:
        return "; check the user name and password"
    if "timeout expired" in text or "could not translate host name" in text:
        return "; check the host name and that the server is reachable from here"
    if "permission denied" in text:
        return "; grant the user the rights on the schema, or use a schema it owns"
    if "disk full" in text or "no space left" in text:
        return "; the database server ran out of disk space (nothing of this command was written)"
    return ""


def _connection_lost(exc: psycopg.Error) -> bool:
    state = exc.sqlstate
    return isinstance(exc, psycopg.OperationalError) and (
        state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")
    )
