"""The SQLite schema's migrations: migration N takes a database from schema N-1 to N."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from ..._similar import SearchText
from ._access import ACCESS_TABLES, EVER_RESTRICTED, fill_access
from ._rows import _INSERT_SEARCH_TEXT, _MEASURE_MILESTONES, _MILESTONES, _write_milestones
from ._tags import TAG_TABLES, fill_tags

if TYPE_CHECKING:
    from ._schema import SQLiteBase

#: ``PRAGMA application_id`` of an incidentflow database ("IFLW"): tells ours from foreign files.
APPLICATION_ID = 0x49464C57


def _fill_search_text(store: SQLiteBase, conn: sqlite3.Connection) -> None:
    """Migration 3: the searchable text of every incident, from its current snapshot."""
    for (incident_id,) in conn.execute("SELECT id FROM incidents").fetchall():
        text = SearchText.of(store._load(conn, incident_id))
        conn.execute(_INSERT_SEARCH_TEXT, (incident_id, *text))


def _fill_milestones(store: SQLiteBase, conn: sqlite3.Connection) -> None:
    """Migration 5: the milestones of every incident that has reached one."""
    for (incident_id,) in conn.execute("SELECT id FROM incidents").fetchall():
        _write_milestones(conn, store._load(conn, incident_id), measured=False)


def _fill_tags(store: SQLiteBase, conn: sqlite3.Connection) -> None:
    """Migration 6: every incident's type, labels, fields, references and open follow-ups.

    The checkpoints are rebuilt from each whole history first: an older release
    folded some events into less (a reopen did not keep the fix it set aside),
    so a checkpoint it wrote would disagree with the replay of its own history.
    """
    from ..._decide import replay
    from ..._serialization import incident_to_json

    store._cache.clear()
    for (incident_id,) in conn.execute("SELECT id FROM incidents").fetchall():
        history = store._events(conn, "WHERE incident_id = ? ORDER BY seq", (incident_id,))
        incident = replay(history)
        conn.execute(
            "INSERT OR REPLACE INTO snapshots (incident_id, version, body) VALUES (?, ?, ?)",
            (incident.id, incident.version, incident_to_json(incident)),
        )
        fill_tags(conn, incident)


def _fill_access(store: SQLiteBase, conn: sqlite3.Connection) -> None:
    """Migration 7: the access rows of every incident restricted when it was written."""
    for (incident_id,) in conn.execute(EVER_RESTRICTED).fetchall():
        if store._exists(conn, incident_id):
            fill_access(conn, store._load(conn, incident_id))


#: A step of a migration: a statement, or a function for what SQL alone cannot do.
_Step: TypeAlias = "str | Callable[[SQLiteBase, sqlite3.Connection], None]"

#: The first schema with the search tables.
_SEARCH_SCHEMA = 3

#: The first schema with the milestones table.
_MILESTONES_SCHEMA = 5

#: The first schema with the label, field and reference tables.
_TAGS_SCHEMA = 6

#: The first schema with the access table of restricted incidents.
_ACCESS_SCHEMA = 7

#: The first schema with the durations beside the milestones, each indexed.
_DURATIONS_SCHEMA = 8

#: The first schema that keeps checkpoints' long lists in chunks (snapshot_lists).
_CHUNKS_SCHEMA = 9

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
    (
        # What listings filter on beside the row (see _tags): type, labels, custom
        # fields, external references (one open holder each) and open action items.
        *TAG_TABLES,
        _fill_tags,
    ),
    (
        # Who may see each restricted incident (see _access), for listings by a viewer.
        *ACCESS_TABLES,
        _fill_access,
    ),
    (
        # Each duration beside the milestones, indexed: metrics read a quantile by a seek
        # instead of sorting every value; counts by severity and state read an index.
        *_MEASURE_MILESTONES,
    ),
    (
        # A checkpoint's long lists in chunks (see stores/_chunks): a checkpoint adds the
        # items new since the one before instead of writing every item again.
        """CREATE TABLE snapshot_lists (
            incident_id TEXT NOT NULL,
            name TEXT NOT NULL,
            chunk INTEGER NOT NULL,
            version INTEGER NOT NULL,
            count INTEGER NOT NULL,
            items TEXT NOT NULL,
            PRIMARY KEY (incident_id, name, chunk)
        )""",
    ),
)
