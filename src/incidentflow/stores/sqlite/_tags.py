"""SQLiteStore's index rows: labels, custom fields and external references, beside the incident.

Each is a small table keyed by incident, with an index on what a listing
filters on, so ``list(labels=..., fields=..., reference=...)`` reads an index
instead of every snapshot. ``incident_references`` also keeps whether its
incident is open, and a partial UNIQUE index on (kind, value) among open rows
makes "one open incident per reference" hold for every process writing the file.
A commit rewrites these rows only when it changes them (``Commit.index_changed``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from ..._model import FieldValue, Incident
from ...exceptions import ReferenceTaken
from .._records import Commit, IncidentQuery, has_open_action_items

__all__ = [
    "TAG_TABLES",
    "field_json",
    "fill_tags",
    "find_reference_sql",
    "tag_filters",
    "write_tags",
]

#: Migration 6's statements: the tables, their indexes and the new incident columns.
TAG_TABLES = (
    "ALTER TABLE incidents ADD COLUMN type TEXT NOT NULL DEFAULT 'availability'",
    "ALTER TABLE incidents ADD COLUMN open_action_items INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX incidents_by_type ON incidents (type, declared_at, id)",
    "CREATE INDEX incidents_with_open_action_items ON incidents (declared_at, id) "
    "WHERE open_action_items = 1",
    """CREATE TABLE incident_labels (
        incident_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (incident_id, key)
    ) WITHOUT ROWID""",
    "CREATE INDEX labels_by_pair ON incident_labels (key, value, incident_id)",
    # value: the field's JSON, so that 1, 1.0, true and "1" stay four values.
    """CREATE TABLE incident_fields (
        incident_id TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (incident_id, name)
    ) WITHOUT ROWID""",
    "CREATE INDEX fields_by_value ON incident_fields (name, value, incident_id)",
    """CREATE TABLE incident_references (
        incident_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        is_open INTEGER NOT NULL,
        PRIMARY KEY (incident_id, kind, value)
    ) WITHOUT ROWID""",
    "CREATE INDEX references_by_value ON incident_references (kind, value, incident_id)",
    "CREATE UNIQUE INDEX references_open ON incident_references (kind, value) WHERE is_open = 1",
)

_FIND_REFERENCE = (
    "SELECT i.id, i.version FROM incident_references r JOIN incidents i ON i.id = r.incident_id "
    "WHERE r.kind = ? AND r.value = ? {open} ORDER BY i.declared_at DESC, i.id DESC"
)

_OPEN_HOLDER = (
    "SELECT incident_id FROM incident_references "
    "WHERE kind = ? AND value = ? AND is_open = 1 AND incident_id != ?"
)


def field_json(value: FieldValue) -> str:
    """A custom field's value as its row keeps it (JSON, so its type is kept)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def find_reference_sql(open_only: bool) -> str:
    """The ids and versions of the incidents holding a reference, newest declared first."""
    return _FIND_REFERENCE.format(open="AND r.is_open = 1" if open_only else "")


def write_tags(conn: sqlite3.Connection, commit: Commit, previous: Incident | None) -> None:
    """Bring the incident's label, field and reference rows to the commit's snapshot.

    With the snapshot before at hand (``previous``) only the tables whose
    content changed are written; without it, all three are rewritten.

    Raises:
        ReferenceTaken: another open incident holds one of the snapshot's references.

    """
    snapshot = commit.snapshot
    new = commit.expected_version == 0
    known = previous if not new else None
    if new or known is None or known.labels != snapshot.labels:
        _replace(
            conn, "incident_labels", "key, value", snapshot.id, not new, snapshot.labels.items()
        )
    if new or known is None or known.custom_fields != snapshot.custom_fields:
        rows = ((name, field_json(value)) for name, value in snapshot.custom_fields.items())
        _replace(conn, "incident_fields", "name, value", snapshot.id, not new, rows)
    if (
        new
        or known is None
        or known.is_open != snapshot.is_open
        or known.references != snapshot.references
    ):
        _write_references(conn, snapshot, clear=not new)


def _replace(
    conn: sqlite3.Connection,
    table: str,
    columns: str,
    incident_id: str,
    clear: bool,
    rows: Iterable[tuple[Any, ...]],
) -> None:
    if clear:
        conn.execute(f"DELETE FROM {table} WHERE incident_id = ?", (incident_id,))
    found = [(incident_id, *row) for row in rows]
    if found:
        conn.executemany(f"INSERT INTO {table} (incident_id, {columns}) VALUES (?, ?, ?)", found)


def _write_references(conn: sqlite3.Connection, snapshot: Incident, *, clear: bool) -> None:
    if clear:
        conn.execute("DELETE FROM incident_references WHERE incident_id = ?", (snapshot.id,))
    is_open = int(snapshot.is_open)
    for ref in dict.fromkeys(snapshot.references):
        try:
            conn.execute(
                "INSERT INTO incident_references (incident_id, kind, value, is_open) "
                "VALUES (?, ?, ?, ?)",
                (snapshot.id, ref.kind, ref.value, is_open),
            )
        except sqlite3.IntegrityError:
            # Only this statement failed; _write rolls the whole commit back.
            row = conn.execute(_OPEN_HOLDER, (ref.kind, ref.value, snapshot.id)).fetchone()
            holder = "another open incident" if row is None else str(row[0])
            raise ReferenceTaken(ref.kind, ref.value, holder) from None


def fill_tags(conn: sqlite3.Connection, incident: Incident) -> None:
    """Migration 6 for one incident: its new columns and its index rows."""
    conn.execute(
        "UPDATE incidents SET type = ?, open_action_items = ? WHERE id = ?",
        (incident.type, int(has_open_action_items(incident)), incident.id),
    )
    _replace(conn, "incident_labels", "key, value", incident.id, True, incident.labels.items())
    rows = ((name, field_json(value)) for name, value in incident.custom_fields.items())
    _replace(conn, "incident_fields", "name, value", incident.id, True, rows)
    # Old databases predate references: a clash among them cannot be, but is not fatal.
    conn.execute("DELETE FROM incident_references WHERE incident_id = ?", (incident.id,))
    conn.executemany(
        "INSERT OR IGNORE INTO incident_references (incident_id, kind, value, is_open) "
        "VALUES (?, ?, ?, ?)",
        [(incident.id, r.kind, r.value, int(incident.is_open)) for r in incident.references],
    )


def tag_filters(query: IncidentQuery) -> tuple[list[str], list[Any]]:
    """The WHERE terms (and their parameters) of the type, label, field and reference filters."""
    where: list[str] = []
    params: list[Any] = []
    if query.types is not None:
        where.append(f"type IN ({', '.join('?' * len(query.types))})")
        params.extend(sorted(query.types))
    for key, value in sorted((query.labels or {}).items()):
        where.append("id IN (SELECT incident_id FROM incident_labels WHERE key = ? AND value = ?)")
        params.extend((key, value))
    for name, field in sorted((query.fields or {}).items()):
        where.append("id IN (SELECT incident_id FROM incident_fields WHERE name = ? AND value = ?)")
        params.extend((name, field_json(field)))
    if query.reference is not None:
        where.append(
            "id IN (SELECT incident_id FROM incident_references WHERE kind = ? AND value = ?)"
        )
        params.extend((query.reference.kind, query.reference.value))
    if query.open_action_items:
        where.append("open_action_items = 1")
    return where, params
