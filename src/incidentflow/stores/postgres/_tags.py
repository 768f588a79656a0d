"""PostgresStore's index rows: labels, custom fields and external references, beside the incident.

The same tables as SQLite's (see :mod:`incidentflow.stores.sqlite._tags`):
one small table each, indexed on what listings filter on, and a partial UNIQUE
index on open references, so two hosts declaring with one alert fingerprint at
the same moment get one incident and one ReferenceTaken. A commit that changes
none of them (``Commit.index_changed`` False) writes none of these rows.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import psycopg

from ..._model import FieldValue, Incident
from ...exceptions import ReferenceTaken
from .._records import IncidentQuery, has_open_action_items
from ._values import _from_column, _to_column

if TYPE_CHECKING:
    from ._schema import PostgresBase

__all__ = ["TAG_TABLES", "fill_tags", "find_reference_sql", "tag_filters", "write_tags"]

#: Migration 3's statements (``{s}`` is the schema).
TAG_TABLES = (
    "ALTER TABLE {s}.incidents ADD COLUMN type text NOT NULL DEFAULT 'availability'",
    "ALTER TABLE {s}.incidents ADD COLUMN open_action_items boolean NOT NULL DEFAULT false",
    "CREATE INDEX incidents_by_type ON {s}.incidents (type, declared_at, id)",
    "CREATE INDEX incidents_with_open_action_items ON {s}.incidents (declared_at, id) "
    "WHERE open_action_items",
    """CREATE TABLE {s}.incident_labels (
        incident_id text NOT NULL,
        key text NOT NULL,
        value text NOT NULL,
        PRIMARY KEY (incident_id, key)
    )""",
    "CREATE INDEX labels_by_pair ON {s}.incident_labels (key, value, incident_id)",
    # value: the field's JSON text, so that 1, 1.0, true and "1" stay four values.
    """CREATE TABLE {s}.incident_fields (
        incident_id text NOT NULL,
        name text NOT NULL,
        value text NOT NULL,
        PRIMARY KEY (incident_id, name)
    )""",
    "CREATE INDEX fields_by_value ON {s}.incident_fields (name, value, incident_id)",
    """CREATE TABLE {s}.incident_references (
        incident_id text NOT NULL,
        kind text NOT NULL,
        value text NOT NULL,
        is_open boolean NOT NULL,
        PRIMARY KEY (incident_id, kind, value)
    )""",
    "CREATE INDEX references_by_value ON {s}.incident_references (kind, value, incident_id)",
    "CREATE UNIQUE INDEX references_open ON {s}.incident_references (kind, value) WHERE is_open",
)


def field_json(value: FieldValue) -> str:
    """A custom field's value as its row keeps it (JSON text, so its type is kept)."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def find_reference_sql(schema: str, open_only: bool) -> str:
    """The ids and versions of the incidents holding a reference, newest declared first."""
    only_open = "AND r.is_open " if open_only else ""
    return (
        f"SELECT i.id, i.version FROM {schema}.incident_references r "
        f"JOIN {schema}.incidents i ON i.id = r.incident_id "
        f"WHERE r.kind = %s AND r.value = %s {only_open}"
        "ORDER BY i.declared_at DESC, i.id DESC"
    )


def write_tags(
    conn: psycopg.Connection[Any], schema: str, snapshot: Incident, previous: Incident | None
) -> None:
    """Bring the incident's label, field and reference rows to ``snapshot``.

    Runs in the commit's transaction. With the snapshot before (``previous``,
    None for a new incident or one not cached) only changed tables are written.

    Raises:
        ReferenceTaken: another open incident holds one of the snapshot's references.

    """
    s, incident_id = schema, snapshot.id
    if previous is None or previous.labels != snapshot.labels:
        conn.execute(f"DELETE FROM {s}.incident_labels WHERE incident_id = %s", (incident_id,))
        if snapshot.labels:
            conn.execute(
                f"INSERT INTO {s}.incident_labels (incident_id, key, value) "
                "SELECT %s, k, v FROM unnest(%s::text[], %s::text[]) AS t(k, v)",
                (
                    incident_id,
                    list(snapshot.labels),
                    [_to_column(value) for value in snapshot.labels.values()],
                ),
            )
    if previous is None or previous.custom_fields != snapshot.custom_fields:
        conn.execute(f"DELETE FROM {s}.incident_fields WHERE incident_id = %s", (incident_id,))
        if snapshot.custom_fields:
            conn.execute(
                f"INSERT INTO {s}.incident_fields (incident_id, name, value) "
                "SELECT %s, k, v FROM unnest(%s::text[], %s::text[]) AS t(k, v)",
                (
                    incident_id,
                    list(snapshot.custom_fields),
                    [field_json(value) for value in snapshot.custom_fields.values()],
                ),
            )
    if (
        previous is None
        or previous.is_open != snapshot.is_open
        or previous.references != snapshot.references
    ):
        _write_references(conn, s, snapshot)


def _write_references(conn: psycopg.Connection[Any], s: str, snapshot: Incident) -> None:
    conn.execute(f"DELETE FROM {s}.incident_references WHERE incident_id = %s", (snapshot.id,))
    references = list(dict.fromkeys(snapshot.references))
    if not references:
        return
    kinds = [_to_column(ref.kind) for ref in references]
    values = [_to_column(ref.value) for ref in references]
    # A racing commit holding one of them open is waited for, then skipped, not raised.
    written = conn.execute(
        f"INSERT INTO {s}.incident_references (incident_id, kind, value, is_open) "
        "SELECT %s, k, v, %s FROM unnest(%s::text[], %s::text[]) AS t(k, v) "
        "ON CONFLICT DO NOTHING RETURNING kind, value",
        (snapshot.id, snapshot.is_open, kinds, values),
    ).fetchall()
    if len(written) == len(references):
        return
    kept = {(str(kind), str(value)) for kind, value in written}
    for kind, value in zip(kinds, values, strict=True):
        if (kind, value) in kept:
            continue
        row = conn.execute(
            f"SELECT incident_id FROM {s}.incident_references "
            "WHERE kind = %s AND value = %s AND is_open AND incident_id <> %s",
            (kind, value, snapshot.id),
        ).fetchone()
        holder = "another open incident" if row is None else str(row[0])
        raise ReferenceTaken(_from_column(kind), _from_column(value), holder)


def fill_tags(store: PostgresBase, conn: psycopg.Connection[Any]) -> None:
    """Migration 3: every incident's type, labels, fields, references and open follow-ups.

    The checkpoints are rebuilt from each whole history first: an older release
    folded some events into less (a reopen did not keep the fix it set aside),
    so a checkpoint it wrote would disagree with the replay of its own history.
    """
    from ..._decide import replay
    from ..._serialization import incident_to_json
    from ._values import _jsonb

    s = store._sql.schema
    rows = conn.execute(f"SELECT id, version FROM {s}.incidents ORDER BY id").fetchall()
    store._cache.clear()
    for incident_id, version in rows:
        tail = conn.execute(store._sql.select_tail, (incident_id, 0, version))
        incident = replay(store._events(tail))
        conn.execute(
            f"INSERT INTO {s}.snapshots (incident_id, version, body) VALUES (%s, %s, %s) "
            "ON CONFLICT (incident_id) DO UPDATE SET version = excluded.version, "
            "body = excluded.body",
            (incident.id, incident.version, _jsonb(incident_to_json(incident))),
        )
        conn.execute(
            f"UPDATE {s}.incidents SET type = %s, open_action_items = %s WHERE id = %s",
            (incident.type, has_open_action_items(incident), incident.id),
        )
        write_tags(conn, s, incident, None)


def tag_filters(schema: str, query: IncidentQuery) -> tuple[list[str], list[Any]]:
    """The WHERE terms (and their parameters) of the type, label, field and reference filters."""
    s = schema
    where: list[str] = []
    params: list[Any] = []
    if query.types is not None:
        where.append("type = ANY(%s)")
        params.append(sorted(query.types))
    for key, value in sorted((query.labels or {}).items()):
        where.append(
            f"id IN (SELECT incident_id FROM {s}.incident_labels WHERE key = %s AND value = %s)"
        )
        params.extend((key, _to_column(value)))
    for name, field in sorted((query.fields or {}).items()):
        where.append(
            f"id IN (SELECT incident_id FROM {s}.incident_fields WHERE name = %s AND value = %s)"
        )
        params.extend((name, field_json(field)))
    if query.reference is not None:
        where.append(
            f"id IN (SELECT incident_id FROM {s}.incident_references "
            "WHERE kind = %s AND value = %s)"
        )
        params.extend((_to_column(query.reference.kind), _to_column(query.reference.value)))
    if query.open_action_items:
        where.append("open_action_items")
    return where, params
