"""SQLiteStore as a query index: listings on indexed columns, FTS5 search, milestones."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from ..._builders import builder
from ..._events import Event
from ..._metrics import DURATION_SPANS, QUANTILES, Milestones, quantile_rank
from ..._metrics import milestones as milestones_of
from ..._metrics_rows import Parts
from ..._model import Incident, Reference
from ..._similar import (
    FIELDS,
    SimilarIncident,
    rank,
)
from ...exceptions import StoreError
from .._records import IncidentQuery, IncidentSummary
from .._scanning import TermSearch, rank_snapshots
from .._snapshots import (
    fold_onto,
    from_micros,
)
from ._rows import (
    _DURATIONS,
    _MILESTONE_COLUMNS,
    _MILESTONES,
    _SEARCH,
    _SEARCH_DOCUMENTS,
    _SEARCH_HITS,
    _SEVERITIES,
    _STATES,
    _SUMMARY_COLUMNS,
    _fts_phrase,
    _list_sql,
    _rollback,
    _search_document,
    _search_sql,
    _types_param,
)
from ._schema import SQLiteBase
from ._tags import find_reference_sql

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

#: Each duration of METRICS as later - earlier microseconds, NULL when either is missing.
#: Incidents without a milestones row have no duration at all: the join leaves them out.
_SPANS = (
    ", ".join(f"({later} - {earlier})" for later, earlier in DURATION_SPANS)
    + " FROM incidents JOIN milestones ON milestones.incident_id = incidents.id"
)

#: The metrics of every incident, from the stored durations' indexes (schema 8).
_EVERYTHING = IncidentQuery(newest_first=False)
_COUNTS = "SELECT severity, state, count(*) FROM incidents GROUP BY 1, 2"
_TOTALS = (
    f"SELECT {', '.join(f'count({name}), sum({name})' for name in _DURATIONS)} FROM milestones"
)
#: Per duration: the values at a rank and the one after (a seek), the least and the greatest.
_SEEKS = {
    name: (
        f"SELECT {name} FROM milestones WHERE {name} IS NOT NULL ORDER BY {name} LIMIT 2 OFFSET ?",
        f"SELECT {name} FROM milestones WHERE {name} IS NOT NULL ORDER BY {name} LIMIT 1",
        f"SELECT {name} FROM milestones WHERE {name} IS NOT NULL ORDER BY {name} DESC LIMIT 1",
    )
    for name in _DURATIONS
}

_DAY = 86_400_000_000

#: The group of each row, by what the metrics are grouped by (a day floors toward the past).
_GROUP_KEYS: dict[str | None, str] = {
    None: "NULL",
    "severity": "severity",
    "type": "type",
    "day": f"(CASE WHEN declared_at >= 0 THEN declared_at / {_DAY} "
    f"ELSE -((-declared_at - 1) / {_DAY}) - 1 END)",
}

_ORDER = " ORDER BY declared_at ASC, id ASC"

#: Incidents read per statement when a listing loads many: 3 parameters each, under 999.
_BATCH = 300

#: The events after each checkpoint, for (incident_id, after, upto) rows, by the UNIQUE index.
_TAILS = (
    "JOIN (VALUES {rows}) AS wanted ON events.incident_id = wanted.column1 "
    "AND events.seq > wanted.column2 AND events.seq <= wanted.column3 "
    "ORDER BY events.incident_id, events.seq"
)


#: Summaries built from the store's own rows: nothing to validate or convert.
_new_summary = builder(IncidentSummary)


class SQLiteQueryIndex(SQLiteBase, TermSearch):
    """Listings, summaries and milestones by SQL; similar incidents by FTS5's ``bm25()``."""

    def list(self, query: IncidentQuery) -> Sequence[Incident]:
        """Snapshots matching ``query``, filtered, ordered and paged by SQL on indexed columns.

        ``visible_to`` is a term of the query (on ``incident_access``), so pages are exact.
        """
        if query.visible_to is not None and not self._guarded:
            # A store pinned to a schema without the access table: filter, then page.
            every = attrs.evolve(query, visible_to=None, limit=None, offset=0)
            return query.apply(self._snapshots_of(*_list_sql(every)))
        return self._snapshots_of(*_list_sql(query))

    def find_reference(
        self, reference: Reference, *, open_only: bool = False
    ) -> Sequence[Incident]:
        """The incidents holding ``reference``, newest declared first, by its index."""
        return self._snapshots_of(find_reference_sql(open_only), (reference.kind, reference.value))

    def _snapshots_of(self, sql: str, params: tuple[Any, ...]) -> Sequence[Incident]:
        """The snapshots of the (id, version) rows ``sql`` selects, as of one moment."""

        def read(conn: sqlite3.Connection) -> list[Incident]:
            conn.execute("BEGIN")  # one read transaction: every row as of one moment
            try:
                rows = conn.execute(sql, params).fetchall()
                current: dict[str, Incident] = {}
                stale: dict[str, int] = {}
                for incident_id, version in rows:
                    cached = self._cache.get(incident_id)
                    if cached is not None and cached[0].version == version:
                        current[incident_id] = cached[0]
                    else:
                        stale[incident_id] = version
                if stale:
                    current.update(self._load_many(conn, stale))
            finally:
                _rollback(conn)  # nothing was written; this ends the read transaction
            return [current[incident_id] for incident_id, _ in rows]

        return self._read(read)

    def _load_many(self, conn: sqlite3.Connection, wanted: dict[str, int]) -> dict[str, Incident]:
        """The snapshots of ``{id: version}``, as ``_load`` gives each, in a few statements.

        Each incident starts from its cached snapshot when that is older, else from
        its checkpoint; the checkpoints, then the events after them, are read for
        up to ``_BATCH`` incidents per statement instead of three statements each.
        """
        bases: dict[str, Incident] = {}
        unread = []
        for incident_id, version in wanted.items():
            cached = self._cache.get(incident_id)
            if cached is not None and cached[0].version < version:
                bases[incident_id] = cached[0]
            else:
                unread.append(incident_id)
        for start in range(0, len(unread), _BATCH):
            chunk = unread[start : start + _BATCH]
            bases.update(self._checkpoints(conn, chunk))
        missing = [incident_id for incident_id in unread if incident_id not in bases]
        if missing:
            raise StoreError(f"{self._where}: {missing[0]} has no stored snapshot")
        behind = [(i, bases[i].version, wanted[i]) for i in wanted if bases[i].version < wanted[i]]
        tails: dict[str, list[Event]] = {}
        for start in range(0, len(behind), _BATCH):
            part = behind[start : start + _BATCH]
            rows = ", ".join(["(?, ?, ?)"] * len(part))
            flat = tuple(value for row in part for value in row)
            for event in self._events(conn, _TAILS.format(rows=rows), flat):
                tails.setdefault(event.incident_id, []).append(event)
        loaded = {}
        for incident_id, base in bases.items():
            if base.version < wanted[incident_id]:
                base = fold_onto(base, tails.get(incident_id, ()), self._where)
            self._cache.put(base, base.version)
            loaded[incident_id] = base
        return loaded

    def summaries(self, query: IncidentQuery) -> Sequence[IncidentSummary]:
        """Summaries of matching incidents, read from the indexed columns alone."""
        if query.visible_to is not None and not self._guarded:
            return [IncidentSummary.of(incident) for incident in self.list(query)]
        sql, params = _list_sql(query, _SUMMARY_COLUMNS)
        rows = self._read(lambda conn: conn.execute(sql, params).fetchall())
        # A hundred thousand rows go through this loop: look names up once, and build
        # each summary without its __init__ (the store wrote these columns itself).
        make, severities, states = _new_summary, _SEVERITIES, _STATES
        epoch, micro = _EPOCH, _MICROSECOND
        return [
            make(i, title, severities[sev], states[state], by, epoch + declared * micro,
                 epoch + updated * micro, version, kind)
            for i, title, sev, state, by, declared, updated, version, kind in rows
        ]  # fmt: skip

    def duration_groups(
        self, query: IncidentQuery, group: str | None
    ) -> tuple[Sequence[tuple[Any, ...]], Sequence[tuple[Any, ...]]] | None:
        """What :func:`~incidentflow._metrics_rows.summarize_durations` aggregates, by SQL.

        ``group`` is ``"severity"``, ``"type"``, ``"day"`` (days since the epoch,
        UTC) or ``None``. Returns the counts as ``(group, severity, state, n)``
        and, for each incident that reached a milestone, ``(group, *durations)``,
        each duration subtracted by SQLite on the stored microseconds;
        both as of one moment. ``None`` when the store must read snapshots instead.
        """
        if query.visible_to is not None and not self._guarded:
            return None
        key = _GROUP_KEYS[group]
        counts_sql, params = _list_sql(query, f"{key}, severity, state, count(*) FROM incidents")
        times_sql, _ = _list_sql(query, f"{key}, {_SPANS}")
        if _ORDER not in counts_sql or _ORDER not in times_sql:
            return None  # another statement shape: the milestones answer instead
        # Grouped and aggregated, the order is irrelevant: SQLite reads the tables as they lie.
        counts_sql = counts_sql.replace(_ORDER, " GROUP BY 1, 2, 3")
        times_sql = times_sql.replace(_ORDER, "")

        def read(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            conn.execute("BEGIN")  # one read transaction: counts and durations agree
            try:
                return (
                    conn.execute(counts_sql, params).fetchall(),
                    conn.execute(times_sql, params).fetchall(),
                )
            finally:
                _rollback(conn)  # nothing was written; this ends the read transaction

        return self._read(read)

    def duration_parts(
        self, query: IncidentQuery
    ) -> tuple[Sequence[tuple[Any, ...]], Sequence[Parts]] | None:
        """What :func:`~incidentflow._metrics_rows.summary_of_parts` takes, read from indexes.

        For every incident unfiltered (``None`` for any other query, or a store
        before schema 8): the counts by severity and state from their index, each
        duration's count and exact sum in one scan of the milestones, and its
        least, greatest and quantile neighbours by seeks in its index; nothing is
        sorted and no value fetched besides those. All as of one moment.
        """
        if not self._measured or query != _EVERYTHING:
            return None

        def read(
            conn: sqlite3.Connection,
        ) -> tuple[Sequence[tuple[Any, ...]], Sequence[Parts]] | None:
            conn.execute("BEGIN")  # one read transaction: counts, sums and seeks agree
            try:
                counts = conn.execute(_COUNTS).fetchall()
                try:
                    totals = conn.execute(_TOTALS).fetchone()
                except sqlite3.OperationalError:  # a sum beyond 64 bits: Python's ints add it
                    return None
                parts: list[Parts] = []
                for n, name in enumerate(_DURATIONS):
                    count, total = totals[2 * n], totals[2 * n + 1]
                    if not count:
                        parts.append((0, 0, 0, 0, ()))
                        continue
                    seek, least, greatest = _SEEKS[name]
                    neighbours = []
                    for q in QUANTILES:
                        found = conn.execute(seek, (quantile_rank(count, q),)).fetchall()
                        neighbours.append((found[0][0], found[-1][0]))
                    low = conn.execute(least).fetchone()[0]
                    high = conn.execute(greatest).fetchone()[0]
                    parts.append((count, total, low, high, neighbours))
                return counts, parts
            finally:
                _rollback(conn)  # nothing was written; this ends the read transaction

        return self._read(read)

    def milestones(self, query: IncidentQuery) -> Iterator[Milestones]:
        """The milestones of matching incidents, read from their rows' columns.

        No snapshot is built and no JSON read: a commit that moves a milestone
        rewrites the incident's row of ``milestones``, so one query returns
        everything the metrics need.
        """
        if query.visible_to is not None and not self._guarded:
            yield from (milestones_of(incident) for incident in self.list(query))
            return
        sql, params = _list_sql(query, _MILESTONE_COLUMNS)
        rows = self._read(lambda conn: conn.execute(sql, params).fetchall())
        # A hundred thousand rows go through this loop: look names up once.
        severities, states, when, names = _SEVERITIES, _STATES, from_micros, _MILESTONES
        for incident_id, severity, state, declared, kind, *times in rows:
            yield Milestones(
                incident_id=incident_id,
                severity=severities[severity],
                state=states[state],
                declared_at=when(declared),
                type=kind,
                **{
                    name: None if at is None else when(at)
                    for name, at in zip(names, times, strict=True)
                },
            )

    def _search(
        self,
        terms: tuple[str, ...],
        *,
        exclude: str | None,
        limit: int,
        types: frozenset[str] | None = None,
        visible_to: frozenset[str] | None = None,
    ) -> Sequence[SimilarIncident]:
        """Rank with FTS5's ``bm25()``, each term a quoted phrase, OR-ed.

        Without FTS5 in this Python's sqlite3 (checked once per process), the
        stored searchable text is ranked in memory instead, as the other
        stores do (:func:`incidentflow._similar.rank`). ``visible_to`` is a
        term of the same query: the best ``limit`` are taken among what it may see.
        """
        if not self._searchable or (visible_to is not None and not self._guarded):
            every = self.list(IncidentQuery(visible_to=visible_to))
            return rank_snapshots(every, terms, exclude=exclude, limit=limit, types=types)
        if not self._fts:
            documents, names = _search_sql(_SEARCH_DOCUMENTS, visible_to, "WHERE")
            return self._read(
                lambda conn: rank(
                    (_search_document(row) for row in conn.execute(documents, names)),
                    terms,
                    exclude=exclude,
                    limit=limit,
                    types=types,
                )
            )
        match = " OR ".join(_fts_phrase(term) for term in terms)
        search, names = _search_sql(_SEARCH, visible_to, "AND")

        def read(conn: sqlite3.Connection) -> list[SimilarIncident]:
            conn.execute("BEGIN")  # one read transaction: the hits of the rows ranked
            try:
                best = conn.execute(
                    search, (match, exclude, limit, _types_param(types), *names)
                ).fetchall()
                if not best:
                    return []
                marks = ", ".join("?" * len(best))
                hits = {
                    row[0]: row[1:]
                    for row in conn.execute(
                        _SEARCH_HITS.format(marks=marks), ("\x01", match, *(r[0] for r in best))
                    )
                }
            finally:
                _rollback(conn)  # nothing was written; this ends the read transaction
            found = []
            for row_id, score, *rest in best:
                document = _search_document((*rest[:7], "", *rest[7:]))
                columns = hits.get(row_id, ())
                matched = [name for name, hit in zip(FIELDS, columns, strict=False) if hit]
                found.append(document.found(float(score), matched))
            return found

        return self._read(read)

    def explain_list(self, query: IncidentQuery) -> Sequence[str]:
        """The SQLite query plan of :meth:`list` for ``query``, one line per step.

        Every step names the index it reads (``labels_by_pair``,
        ``fields_by_value``, ``references_by_value``, ``incidents_by_type``, ...)
        or says ``SCAN`` where it reads a whole table.
        """
        sql, params = _list_sql(query)
        rows = self._read(lambda conn: conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
        return [str(row[-1]) for row in rows]
