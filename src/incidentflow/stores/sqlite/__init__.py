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

Layout (schema version 6)::

    events(incident_id, seq, type, at, actor, data JSON, idempotency_key, schema_version,
           notify JSON)            UNIQUE (incident_id, seq); notify: the notifiers that
                                   announce the event (version 4)
    incidents(id, version, state, severity, is_open, commander, title,
              declared_at µs, updated_at µs, type,      small row, indexed for list()
              open_action_items)                        (type, open_action_items: version 6)
    incident_labels(incident_id, key, value)            what list() filters on beside the
    incident_fields(incident_id, name, value JSON)      row, each indexed (version 6); a
    incident_references(incident_id, kind, value,       partial UNIQUE index keeps one open
                        is_open)                        holder per reference
    snapshots(incident_id, version, body JSON)          checkpoint: every 16 events (n/128 past
                                                        4,096), and on every change of state;
                                                        long lists laid out after the rest
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

from .._protocols import Store
from ._events import SQLiteEventStore
from ._migrations import APPLICATION_ID
from ._outbox import SQLiteOutbox
from ._queries import SQLiteQueryIndex
from ._schema import SCHEMA_VERSION

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SQLiteStore"]


class SQLiteStore(SQLiteEventStore, SQLiteOutbox, SQLiteQueryIndex, Store):
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
