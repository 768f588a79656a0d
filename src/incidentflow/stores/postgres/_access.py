"""PostgresStore's index of restricted incidents: who may see each, for listings by a viewer.

The same shape as SQLite's (see :mod:`incidentflow.stores.sqlite._access`):
``incidents.is_restricted`` and one ``incident_access`` row per name an
incident is restricted to, indexed by name, so a viewer's listing, summaries,
milestones and search leave the others' incidents out before ordering and
paging. A commit writes these rows only when it changes ``restricted_to``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from ..._model import Incident
from ._values import _to_column

if TYPE_CHECKING:
    from ._schema import PostgresBase

__all__ = ["ACCESS_TABLES", "access_filter", "fill_access", "principals", "write_access"]

#: Migration 4's statements (``{s}`` is the schema).
ACCESS_TABLES = (
    "ALTER TABLE {s}.incidents ADD COLUMN is_restricted boolean NOT NULL DEFAULT false",
    """CREATE TABLE {s}.incident_access (
        incident_id text NOT NULL,
        principal text NOT NULL,
        PRIMARY KEY (incident_id, principal)
    )""",
    "CREATE INDEX access_by_principal ON {s}.incident_access (principal, incident_id)",
)


def access_filter(schema: str, table: str = "") -> str:
    """The WHERE term keeping what the names of one ``text[]`` parameter may see.

    ``table`` qualifies the incidents' columns (``"i."``) where a query joins others.
    """
    return (
        f"(NOT {table}is_restricted OR {table}id IN (SELECT incident_id "
        f"FROM {schema}.incident_access WHERE principal = ANY(%s::text[])))"
    )


def principals(visible_to: frozenset[str]) -> list[str]:
    """The parameter of :func:`access_filter`: the names as their rows keep them."""
    return sorted(_to_column(name) for name in visible_to)


def write_access(
    conn: psycopg.Connection[Any],
    schema: str,
    snapshot: Incident,
    previous: Incident | None,
    *,
    new: bool = False,
) -> None:
    """Bring the incident's access rows to ``snapshot`` if the commit changed them.

    ``previous`` is the snapshot before (None when not cached: the rows are rewritten).
    """
    if previous is not None and previous.restricted_to == snapshot.restricted_to:
        return
    s = schema
    if not new:
        conn.execute(f"DELETE FROM {s}.incident_access WHERE incident_id = %s", (snapshot.id,))
    elif not snapshot.restricted_to:
        return  # a new incident, open to everyone: the column's default says so
    conn.execute(
        f"UPDATE {s}.incidents SET is_restricted = %s WHERE id = %s",
        (bool(snapshot.restricted_to), snapshot.id),
    )
    if snapshot.restricted_to:
        conn.execute(
            f"INSERT INTO {s}.incident_access (incident_id, principal) "
            "SELECT %s, p FROM unnest(%s::text[]) AS t(p) ON CONFLICT DO NOTHING",
            (snapshot.id, [_to_column(name) for name in snapshot.restricted_to]),
        )


def fill_access(store: PostgresBase, conn: psycopg.Connection[Any]) -> None:
    """Migration 4: the access rows of every incident restricted when it was written."""
    s = store._sql.schema
    rows = conn.execute(
        f"SELECT DISTINCT e.incident_id FROM {s}.events e JOIN {s}.incidents i "
        "ON i.id = e.incident_id WHERE e.type = 'restricted'"
    ).fetchall()
    for (incident_id,) in rows:
        incident = store._load(conn, str(incident_id))
        if incident.restricted_to:
            write_access(conn, s, incident, None)
