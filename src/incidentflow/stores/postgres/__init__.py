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
whatever it writes. A flow decides a command on the snapshot this store last
saw (:meth:`cached`) and commits against its version, so a command makes no
other round trip; a stale snapshot fails that commit, writing nothing, and the
command is decided again on the stored one.

Layout, in its own schema (``incidentflow`` unless told otherwise; schema version 2)::

    events(position, incident_id, seq, type, at timestamptz, actor, data JSONB,
           idempotency_key, schema_version)        UNIQUE (incident_id, seq)
    incidents(id, version, state, severity, is_open, commander, title,
              title_casefold, declared_at, updated_at)   small row, indexed for list()
    snapshots(incident_id, version, body JSONB)     checkpoint: every 16 events (n/128 past
                                                    4,096), and on every change of state; long
                                                    lists as one laid-out string, '$lists'
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

from .._protocols import Store
from ._dsn import DEFAULT_SCHEMA
from ._events import PostgresEventStore
from ._outbox import PostgresOutbox
from ._queries import PostgresQueryIndex
from ._schema import SCHEMA_VERSION

__all__ = ["DEFAULT_SCHEMA", "SCHEMA_VERSION", "PostgresStore"]


class PostgresStore(PostgresEventStore, PostgresOutbox, PostgresQueryIndex, Store):
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
