"""PostgresStore's statements, written once per schema."""

from __future__ import annotations

import functools
from typing import Any

from .._base import (
    IncidentQuery,
)
from ._access import access_filter, principals
from ._tags import tag_filters
from ._values import (
    _COLUMNS,
    _COLUMNS_BEFORE_TAGS,
    _EVENT_COLUMNS,
    _EVENT_SELECT,
    _MILESTONE_COLUMNS,
    _MILESTONE_TYPES,
    _SEARCH_COLUMNS,
    _SEARCH_TEXT,
    _SEARCH_VALUES,
    _casefold,
    _param,
    _to_column,
)


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
        # A checkpoint and its chunked lists (see stores/_chunks), in one statement: one
        # moment of the database. Rows: (incident, name, chunk, version, count, head,
        # packed items): the head's with a NULL name, each chunk's with a NULL head.
        head = "incident_id, NULL, NULL::integer, NULL::integer, NULL::integer, body::text"
        self.select_snapshots = (
            f"SELECT {head}, NULL::bytea FROM {s}.snapshots "
            "WHERE incident_id = ANY(%(ids)s) UNION ALL "
            "SELECT incident_id, name, chunk, version, count, NULL, items "
            f"FROM {s}.snapshot_lists WHERE incident_id = ANY(%(ids)s)"
        )
        # Before the chunks table (a store pinned to an older schema, a migration).
        self.select_bodies = (
            f"SELECT {head}, NULL::bytea FROM {s}.snapshots WHERE incident_id = ANY(%(ids)s)"
        )
        self.stored_chunks = (
            f"SELECT name, count(*)::integer, sum(count)::integer, max(version) "
            f"FROM {s}.snapshot_lists WHERE incident_id = %s GROUP BY name"
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
        tagged: bool = True,
        single: bool = False,
        chunked: bool = True,
        milestones: int = 0,
    ) -> str:
        """The statement writing a commit; ``columns`` empty means a new incident.

        Every insert reads ``changed``, the incident row written: when the
        versioned UPDATE finds the incident at another version it changes no
        row, nothing else is written, and the statement returns 0. With
        ``search``, the incident's search row is written unless it already
        holds that text. ``single``: the one event's columns are plain values,
        not arrays (see ``_event_columns``). ``chunked``: a checkpoint's long
        lists go to their chunks (``stores/_chunks``), not into its body.
        ``milestones``: 1 writes the incident's ``milestones`` row (the ``ms_*``
        parameters), 2 writes it unless the stored row holds those values already.
        """
        s = self.schema
        if columns:
            assignments = ", ".join(f"{name} = %({_param(name)})s" for name in columns)
            changed = (
                f"UPDATE {s}.incidents SET {assignments} "
                "WHERE id = %(id)s AND version = %(expected)s RETURNING id"
            )
        else:
            names = _COLUMNS if tagged else _COLUMNS_BEFORE_TAGS
            values = ", ".join(f"%({_param(name)})s" for name in names)
            changed = (
                f"INSERT INTO {s}.incidents (id, {', '.join(names)}) "
                f"VALUES (%(id)s, {values}) RETURNING id"
            )
        if single:
            inserted = (
                "SELECT c.id, %(seq)s::integer, %(type)s::text, %(at)s::timestamptz, "
                "%(actor)s::text, %(data)s::jsonb, %(event_key)s::text, "
                "%(schema_version)s::integer FROM changed c"
            )
        else:
            inserted = (
                "SELECT c.id, e.* FROM changed c, unnest(%(seq)s::integer[], %(type)s::text[], "
                "%(at)s::timestamptz[], %(actor)s::text[], %(data)s::jsonb[], "
                "%(event_key)s::text[], %(schema_version)s::integer[]) AS e"
            )
        parts = [
            f"WITH changed AS ({changed})",
            f"events AS (INSERT INTO {s}.events ({_EVENT_COLUMNS}) {inserted})",
        ]
        if checkpoint:
            parts.append(
                f"snapshot AS (INSERT INTO {s}.snapshots (incident_id, version, body) "
                "SELECT c.id, %(version)s, %(body)s FROM changed c "
                "ON CONFLICT (incident_id) DO UPDATE SET version = excluded.version, "
                "body = excluded.body)"
            )
        if checkpoint and chunked:
            # The long lists' chunks (stores/_chunks): a list written again keeps its first
            # chunk's row (updated) and loses the others; the rows touched never overlap.
            parts.append(
                f"cleared AS (DELETE FROM {s}.snapshot_lists l USING changed c "
                "WHERE l.incident_id = c.id AND (NOT l.name = ANY(%(kept)s::text[]) "
                "OR (l.name = ANY(%(rewritten)s::text[]) AND l.chunk > 0)))"
            )
            parts.append(
                f"chunked AS (INSERT INTO {s}.snapshot_lists "
                "(incident_id, name, chunk, version, count, items) "
                "SELECT c.id, x.* FROM changed c, unnest(%(chunk_name)s::text[], "
                "%(chunk_no)s::integer[], %(chunk_version)s::integer[], "
                "%(chunk_count)s::integer[], %(chunk_items)b::bytea[]) AS x "
                "ON CONFLICT (incident_id, name, chunk) DO UPDATE SET "
                "version = excluded.version, count = excluded.count, items = excluded.items)"
            )
        if milestones:
            listed = ", ".join(_MILESTONE_COLUMNS)
            # The declared type of each parameter: a NULL of either kind stays typed.
            values = ", ".join(f"%(ms_{name})s::{kind}" for name, kind in _MILESTONE_TYPES.items())
            same = (
                f" WHERE ({', '.join(f'm.{name}' for name in _MILESTONE_COLUMNS)}) "
                f"IS DISTINCT FROM ({', '.join(f'excluded.{name}' for name in _MILESTONE_COLUMNS)})"
            )
            parts.append(
                f"measured AS (INSERT INTO {s}.milestones AS m (incident_id, {listed}) "
                f"SELECT c.id, {values} FROM changed c ON CONFLICT (incident_id) DO UPDATE SET "
                + ", ".join(f"{name} = excluded.{name}" for name in _MILESTONE_COLUMNS)
                + (same if milestones == 2 else "")
                + ")"
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
        tags, values = tag_filters(self.schema, query)
        where.extend(tags)
        params.extend(values)
        if query.visible_to is not None:
            where.append(access_filter(self.schema))
            params.append(principals(query.visible_to))
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
