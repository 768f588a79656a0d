"""SQLiteStore's statements and the rows it writes: events, incidents, outbox, search."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

from ..._events import Event
from ..._metrics import DURATION_SPANS, METRICS, MILESTONE_TIMES, milestone_times
from ..._model import Incident, Severity, State
from ..._similar import (
    FIELD_WEIGHTS,
    SearchDocument,
    SearchText,
)
from .._records import Commit, IncidentQuery, OutboxItem, has_open_action_items
from .._snapshots import (
    dumps,
    encode_payload,
    from_micros,
    micros,
)
from ._access import access_filter
from ._tags import tag_filters

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
    "i.severity, i.state, i.declared_at, t.title, t.symptom, t.root_cause, t.gotcha_slug, i.type "
    "FROM search_index JOIN search_text t ON t.id = search_index.rowid "
    "JOIN incidents i ON i.id = t.incident_id "
    "WHERE search_index MATCH ?1 AND t.incident_id IS NOT ?2 "
    "AND (?4 IS NULL OR instr(?4, ',' || i.type || ',') > 0) {visible}"
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
    "t.root_cause, t.gotcha, t.gotcha_slug, i.type FROM search_text t "
    "JOIN incidents i ON i.id = t.incident_id {visible}"
)


def _search_sql(
    template: str, visible_to: frozenset[str] | None, glue: str
) -> tuple[str, list[Any]]:
    """``template`` (:data:`_SEARCH` or :data:`_SEARCH_DOCUMENTS`) kept to what a viewer may see."""
    if visible_to is None:
        return template.format(visible=""), []
    term, names = access_filter(visible_to, "i.")
    return template.format(visible=f"{glue} {term} "), names


def _types_param(types: frozenset[str] | None) -> str | None:
    """The ``?4`` of :data:`_SEARCH`: ``",a,b,"`` (types are keys, without commas), or NULL."""
    return None if types is None else "," + ",".join(sorted(types)) + ","


def _fts_phrase(term: str) -> str:
    # A quoted string is a phrase to FTS5: its operators and column filters mean nothing inside.
    return '"' + term.replace('"', '""') + '"'


#: The columns of the ``milestones`` table, each named after its field of
#: :class:`~incidentflow._metrics.Milestones` (microseconds since the epoch, UTC, or NULL).
_MILESTONES = MILESTONE_TIMES

#: The durations of :data:`~incidentflow._metrics.METRICS` kept beside them (schema 8):
#: microseconds, NULL while a milestone is missing; each has an index, so metrics seek
#: a quantile instead of sorting every value.
_DURATIONS = METRICS

_DECLARED = "(SELECT declared_at FROM incidents WHERE id = incident_id)"

#: Migration 8: the duration columns, filled from each row (``declared_at`` from its
#: incident) and indexed; and counts by severity and state read from an index.
_MEASURE_MILESTONES: tuple[str, ...] = (
    *(f"ALTER TABLE milestones ADD COLUMN {name} INTEGER" for name in _DURATIONS),
    "UPDATE milestones SET "
    + ", ".join(
        f"{name} = "
        + " - ".join(
            "(SELECT declared_at FROM incidents WHERE id = incident_id)"
            if at == "declared_at"
            else at
            for at in span
        )
        for name, span in zip(_DURATIONS, DURATION_SPANS, strict=True)
    ),
    *(
        f"CREATE INDEX milestones_by_{name} ON milestones ({name}) WHERE {name} IS NOT NULL"
        for name in _DURATIONS
    ),
    "CREATE INDEX incidents_by_severity_state ON incidents (severity, state)",
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


_COLUMNS = (
    "version",
    "state",
    "severity",
    "is_open",
    "commander",
    "title",
    "declared_at",
    "updated_at",
    "type",
    "open_action_items",
)

#: The columns of a schema before version 6 (a store pinned to one, as migration tests do).
_COLUMNS_BEFORE_TAGS = _COLUMNS[:-2]


def _columns(
    incident: Incident, changing: Incident | None = None, *, tagged: bool = True
) -> dict[str, Any]:
    """The ``incidents`` row's columns; with ``changing``, only those that may differ from it."""
    if changing is None:
        columns = {
            "version": incident.version,
            "state": incident.state.value,
            "severity": incident.severity.value,
            "is_open": int(incident.is_open),
            "commander": incident.commander,
            "title": incident.title,
            "declared_at": micros(incident.declared_at),
            "updated_at": micros(incident.updated_at),
        }
        if tagged:
            columns["type"] = incident.type
            columns["open_action_items"] = int(has_open_action_items(incident))
        return columns
    columns = {"version": incident.version}
    if tagged and incident.type != changing.type:
        columns["type"] = incident.type
    if tagged and incident.action_items is not changing.action_items:
        now_open = has_open_action_items(incident)
        if now_open != has_open_action_items(changing):
            columns["open_action_items"] = int(now_open)
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
    return (
        milestone_times(incident) != milestone_times(before)
        or incident.declared_at != before.declared_at
    )


class UnmeasuredConnection(sqlite3.Connection):
    """The connection of a store pinned to a schema before 8: milestones without durations."""


def _keep_milestones(conn: sqlite3.Connection, commit: Commit, previous: Incident | None) -> None:
    """Rewrite the incident's milestones row when the commit moved one (most move none)."""
    measured = not isinstance(conn, UnmeasuredConnection)
    snapshot = commit.snapshot
    if commit.expected_version == 0 or previous is not None:
        if _milestones_changed(snapshot, previous):
            _write_milestones(conn, snapshot, measured=measured)
        return
    # The snapshot before is not cached: the stored row decides.
    values = _milestone_values(snapshot)
    if measured:
        stored = conn.execute(_SELECT_MEASURED, (commit.incident_id,)).fetchone()
        wanted = (*values, *_duration_values(values, micros(snapshot.declared_at)))
    else:
        stored = conn.execute(_SELECT_MILESTONES, (commit.incident_id,)).fetchone()
        wanted = values
    if (stored or (None,) * len(wanted)) != wanted:
        _write_milestones(conn, snapshot, measured=measured)


def _write_milestones(
    conn: sqlite3.Connection, incident: Incident, *, measured: bool = True
) -> None:
    values = _milestone_values(incident)
    if values == _NO_MILESTONES:
        conn.execute("DELETE FROM milestones WHERE incident_id = ?", (incident.id,))
    elif measured:
        durations = _duration_values(values, micros(incident.declared_at))
        conn.execute(_REPLACE_MEASURED, (incident.id, *values, *durations))
    else:
        conn.execute(_REPLACE_MILESTONES, (incident.id, *values))


def _milestone_values(incident: Incident) -> tuple[int | None, ...]:
    """The incident's row of ``milestones``, in the order of ``_MILESTONES``."""
    return tuple(None if at is None else micros(at) for at in milestone_times(incident))


def _duration_values(times: tuple[int | None, ...], declared: int) -> tuple[int | None, ...]:
    """The ``_DURATIONS`` of a milestones row: each span of DURATION_SPANS, in microseconds."""
    at = dict(zip(_MILESTONES, times, strict=True))
    at["declared_at"] = declared
    spans = ((at[later], at[earlier]) for later, earlier in DURATION_SPANS)
    return tuple(None if a is None or b is None else a - b for a, b in spans)


_NO_MILESTONES: tuple[int | None, ...] = (None,) * len(_MILESTONES)

_SELECT_MILESTONES = f"SELECT {', '.join(_MILESTONES)} FROM milestones WHERE incident_id = ?"

_SELECT_MEASURED = (
    f"SELECT {', '.join(_MILESTONES + _DURATIONS)} FROM milestones WHERE incident_id = ?"
)

_REPLACE_MILESTONES = (
    f"INSERT OR REPLACE INTO milestones (incident_id, {', '.join(_MILESTONES)}) "
    f"VALUES (?{', ?' * len(_MILESTONES)})"
)

_REPLACE_MEASURED = (
    f"INSERT OR REPLACE INTO milestones (incident_id, {', '.join(_MILESTONES + _DURATIONS)}) "
    f"VALUES (?{', ?' * (len(_MILESTONES) + len(_DURATIONS))})"
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
    return dumps(names)


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
    """A search_text row joined with its incident's severity, state, declaration time and type."""
    incident_id, severity, state, declared_at, *text, kind = row
    return SearchDocument(
        incident_id,
        Severity(severity),
        State(state),
        from_micros(declared_at),
        SearchText(*text),
        type=kind,
    )


def _event_row(event: Event) -> tuple[Any, ...]:
    return (
        event.incident_id,
        event.seq,
        event.type,
        event.at.isoformat(),
        event.actor,
        encode_payload(event),
        event.idempotency_key,
        event.schema_version,
    )


_SUMMARY_COLUMNS = (
    "id, title, severity, state, commander, declared_at, updated_at, version, type FROM incidents"
)

# What metrics need of an incident.
_MILESTONE_COLUMNS = (
    f"id, severity, state, declared_at, type, {', '.join(_MILESTONES)} "
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
    tags, values = tag_filters(query)
    where.extend(tags)
    params.extend(values)
    if query.visible_to is not None:
        term, names = access_filter(query.visible_to)
        where.append(term)
        params.extend(names)
    order = "DESC" if query.newest_first else "ASC"
    sql = f"SELECT {columns}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY declared_at {order}, id {order} LIMIT ? OFFSET ?"
    params.extend((-1 if query.limit is None else query.limit, query.offset))
    return sql, tuple(params)
