"""SQLiteStore's index of restricted incidents: who may see each, for listings by a viewer.

``incidents.is_restricted`` says whether an incident is restricted at all, and
``incident_access`` holds one row per name it is restricted to, indexed by
name. A listing for a viewer keeps the unrestricted incidents and those whose
names meet the viewer's (``access_by_principal``), before it orders and pages,
so a page for a viewer is as long as it should be. A commit writes these rows
only when it changes ``restricted_to``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..._model import Incident
from .._records import Commit

__all__ = [
    "ACCESS_TABLES",
    "EVER_RESTRICTED",
    "access_filter",
    "fill_access",
    "write_access",
]

#: Migration 7's statements: the column, the table of names and its index by name.
ACCESS_TABLES = (
    "ALTER TABLE incidents ADD COLUMN is_restricted INTEGER NOT NULL DEFAULT 0",
    """CREATE TABLE incident_access (
        incident_id TEXT NOT NULL,
        principal TEXT NOT NULL,
        PRIMARY KEY (incident_id, principal)
    ) WITHOUT ROWID""",
    "CREATE INDEX access_by_principal ON incident_access (principal, incident_id)",
)


def access_filter(visible_to: frozenset[str], table: str = "") -> tuple[str, list[Any]]:
    """The WHERE term (and its parameters) keeping what ``visible_to`` may see.

    ``table`` qualifies the incidents' columns (``"i."``) where a query joins others.
    """
    marks = ", ".join("?" * len(visible_to))
    term = (
        f"({table}is_restricted = 0 OR {table}id IN "
        f"(SELECT incident_id FROM incident_access WHERE principal IN ({marks})))"
    )
    return term, sorted(visible_to)


def write_access(conn: sqlite3.Connection, commit: Commit, previous: Incident | None) -> None:
    """Bring the incident's access rows to the commit's snapshot, if it changed them."""
    snapshot = commit.snapshot
    if commit.expected_version == 0:
        if snapshot.restricted_to:
            _write(conn, snapshot, clear=False)
        return
    if previous is not None and previous.restricted_to == snapshot.restricted_to:
        return
    _write(conn, snapshot, clear=True)


#: The incidents a migration looks at: only a ``restricted`` event restricts one.
EVER_RESTRICTED = "SELECT DISTINCT incident_id FROM events WHERE type = 'restricted'"


def fill_access(conn: sqlite3.Connection, incident: Incident) -> None:
    """Migration 7 for one incident: its access rows, if it is restricted."""
    if incident.restricted_to:
        _write(conn, incident, clear=True)


def _write(conn: sqlite3.Connection, incident: Incident, *, clear: bool) -> None:
    if clear:
        conn.execute("DELETE FROM incident_access WHERE incident_id = ?", (incident.id,))
    conn.execute(
        "UPDATE incidents SET is_restricted = ? WHERE id = ?",
        (int(bool(incident.restricted_to)), incident.id),
    )
    conn.executemany(
        "INSERT OR IGNORE INTO incident_access (incident_id, principal) VALUES (?, ?)",
        [(incident.id, name) for name in incident.restricted_to],
    )
