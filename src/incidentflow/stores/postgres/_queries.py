"""PostgresStore as a query index: indexed listings, tsvector search, milestones."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
import psycopg.errors

from ..._metrics import (
    DURATION_SPANS,
    METRICS,
    MILESTONE_TIMES,
    QUANTILES,
    Milestones,
    quantile_rank,
)
from ..._metrics_rows import Parts
from ..._model import Incident, Reference, Severity, State
from ..._similar import (
    FIELDS,
    SearchDocument,
    SearchText,
    SimilarIncident,
)
from .._base import (
    IncidentQuery,
    IncidentSummary,
)
from .._scanning import TermSearch, rank_snapshots
from ._access import principals
from ._schema import PostgresBase
from ._tags import find_reference_sql
from ._values import (
    _MILESTONE_PATHS,
    _RANK_WEIGHTS,
    _SEARCH,
    _SEARCH_VISIBLE,
    SEARCH_CONFIG,
    _from_column,
    _to_column,
)

_TIMES = dict(zip(MILESTONE_TIMES, _MILESTONE_PATHS, strict=True))


#: The checkpoint's top-level fields holding the milestones: a time, or an object holding some.
_TOP: dict[str, str] = {
    path.split(",")[0]: "jsonb" if "," in path else "timestamptz" for path in _TIMES.values()
}

#: Those fields, parsed once per row by ``jsonb_to_record`` (each ``#>>`` on the body
#: would read and parse the whole stored value again).
_RECORD = f"jsonb_to_record(s.body) AS x({', '.join(f'{k} {t}' for k, t in _TOP.items())})"


def _epoch(name: str) -> str:
    """Exact epoch seconds (numeric) of a milestone: from the checkpoint, or the incident's row."""
    if name not in _TIMES:
        return f"extract(epoch FROM incidents.{name})"
    path = _TIMES[name].split(",")
    if len(path) == 1:
        return f"extract(epoch FROM x.{path[0]})"
    return f"extract(epoch FROM (x.{path[0]} ->> '{path[1]}')::timestamptz)"


#: Each duration of METRICS in microseconds (NULL when a milestone is missing), from a
#: checkpoint: epoch seconds are exact numerics, so the product is an exact integer.
_DURATIONS = ", ".join(
    f"(({_epoch(later)} - {_epoch(earlier)}) * 1000000)::int8" for later, earlier in DURATION_SPANS
)


#: The group of each row, by what the metrics are grouped by (days since 1970-01-01, UTC).
_GROUP_KEYS: dict[str | None, str] = {
    None: "NULL",
    "severity": "severity",
    "type": "type",
    "day": "floor(extract(epoch FROM declared_at) / 86400)::bigint",
}

#: The metrics of every incident, from the milestones table's indexes (schema 6).
_EVERYTHING = IncidentQuery(newest_first=False)

_COUNTS = "SELECT severity, state, count(*) FROM {s}.incidents GROUP BY 1, 2"

#: Each duration's count, exact sum (numeric), least and greatest, in one scan.
_TOTALS = (
    "SELECT "
    + ", ".join(f"count({name}), sum({name}), min({name}), max({name})" for name in METRICS)
    + " FROM {s}.milestones"
)


def _seek(name: str) -> str:
    """The values of a duration at a rank and the one after, by a walk of its index."""
    return (
        f"ARRAY(SELECT {name} FROM {{s}}.milestones WHERE {name} IS NOT NULL "
        f"ORDER BY {name} LIMIT 2 OFFSET %s)"
    )


_SEVERITIES = {s.value: s for s in Severity}
_STATES = {s.value: s for s in State}


class PostgresQueryIndex(PostgresBase, TermSearch):
    """Listings and summaries by SQL, milestones from their table (schema 6), ``ts_rank_cd``."""

    def list(self, query: IncidentQuery) -> Sequence[Incident]:
        """Snapshots matching ``query``, filtered, ordered and paged by SQL on indexed columns."""
        sql, params = self._sql.list(query)

        def read(conn: psycopg.Connection[Any]) -> Sequence[Incident]:
            # One snapshot of the database for the whole answer.
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                found = [(str(i), int(v)) for i, v in conn.execute(sql, params).fetchall()]
                return self._snapshots_of(conn, found)

        return self._read("cannot list incidents", read)

    def find_reference(
        self, reference: Reference, *, open_only: bool = False
    ) -> Sequence[Incident]:
        """The incidents holding ``reference``, newest declared first, by its index."""
        sql = find_reference_sql(self._sql.schema, open_only)
        params = (_to_column(reference.kind), _to_column(reference.value))

        def read(conn: psycopg.Connection[Any]) -> Sequence[Incident]:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                found = [(str(i), int(v)) for i, v in conn.execute(sql, params).fetchall()]
                return self._snapshots_of(conn, found)

        return self._read("cannot find incidents by reference", read)

    def milestones(self, query: IncidentQuery) -> Iterator[Milestones]:
        """The milestones of matching incidents, from the milestones table (schema 6).

        Before schema 6 (a store pinned to an older one), one query returns,
        beside each incident's row, the seven times extracted from its stored
        checkpoint (``jsonb``); the incidents whose checkpoint lags their
        history are loaded whole, together.
        """
        if self._measured:
            yield from self._stored_milestones(query)
            return
        from ..._metrics import milestones

        times = ", ".join(f"s.body #>> '{{{path}}}'" for path in _MILESTONE_PATHS)
        sql, params = self._sql.list(
            query,
            "id, version, severity, state, declared_at, type, "
            f"(SELECT ARRAY[s.version::text, {times}] FROM {self.schema}.snapshots s "
            "WHERE s.incident_id = incidents.id)",
        )

        def read(conn: psycopg.Connection[Any]) -> tuple[list[Any], list[Milestones]]:
            with conn.transaction():  # every row as of one moment
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                rows = conn.execute(sql, params).fetchall()
                behind = [
                    (str(row[0]), int(row[1]))
                    for row in rows
                    if row[6] is None or int(row[6][0]) != int(row[1])
                ]
                # The incidents whose checkpoint lags their history, loaded together.
                loaded = self._snapshots_of(conn, behind) if behind else ()
                lagging = [milestones(incident) for incident in loaded]
            return rows, lagging

        rows, lagging = self._read("cannot read the milestones", read)
        yield from lagging
        when = datetime.fromisoformat
        for incident_id, version, severity, state, declared, kind, stored in rows:
            if stored is None or int(stored[0]) != int(version):
                continue
            found = dict(
                zip(
                    MILESTONE_TIMES,
                    (None if t is None else when(t) for t in stored[1:]),
                    strict=True,
                )
            )
            yield Milestones(
                incident_id=str(incident_id),
                severity=Severity(severity),
                state=State(state),
                declared_at=declared.astimezone(UTC),
                type=str(kind),
                **found,
            )

    def _stored_milestones(self, query: IncidentQuery) -> Iterator[Milestones]:
        """The milestones of matching incidents, from their rows of the milestones table."""
        sql, params = self._sql.list(
            query,
            "id, severity, state, declared_at, type, "
            + ", ".join(f"m.{name}" for name in MILESTONE_TIMES),
        )
        sql = sql.replace(*self._joined(), 1)
        rows = self._read(
            "cannot read the milestones", lambda conn: conn.execute(sql, params).fetchall()
        )
        severities, states = _SEVERITIES, _STATES
        for incident_id, severity, state, declared, kind, *times in rows:
            yield Milestones(
                incident_id=str(incident_id),
                severity=severities[severity],
                state=states[state],
                declared_at=declared.astimezone(UTC),
                type=str(kind),
                **{
                    name: None if at is None else at.astimezone(UTC)
                    for name, at in zip(MILESTONE_TIMES, times, strict=True)
                },
            )

    def _joined(self, kind: str = "LEFT JOIN") -> tuple[str, str]:
        """What turns a listing's ``FROM incidents`` into one joined with the milestones."""
        s = self._sql.schema
        return (
            f"FROM {s}.incidents",
            f"FROM {s}.incidents {kind} {s}.milestones m ON m.incident_id = incidents.id",
        )

    def duration_parts(
        self, query: IncidentQuery
    ) -> tuple[Sequence[tuple[Any, ...]], Sequence[Parts]] | None:
        """What :func:`~incidentflow._metrics_rows.summary_of_parts` takes, read from indexes.

        As SQLiteStore's, for every incident unfiltered (``None`` for any other
        query, or a schema before 6): the counts by severity and state, each
        duration's count, exact sum, least and greatest in one scan of the
        milestones, and the neighbours of its quantiles by walks of its index,
        in one statement; nothing is sorted. All as of one moment.
        """
        if not self._measured or query != _EVERYTHING:
            return None
        s = self._sql.schema

        def read(conn: psycopg.Connection[Any]) -> tuple[list[Any], list[Parts]]:
            with conn.transaction():  # counts, sums and seeks as of one moment
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                counts = conn.execute(_COUNTS.format(s=s)).fetchall()
                totals = conn.execute(_TOTALS.format(s=s)).fetchone()
                assert totals is not None  # an aggregate without GROUP BY gives one row
                reached = [n for n in range(len(METRICS)) if totals[4 * n]]
                seeks = [(n, quantile_rank(totals[4 * n], q)) for n in reached for q in QUANTILES]
                found: Sequence[Any] | None = ()
                if seeks:
                    sql = "SELECT " + ", ".join(_seek(METRICS[n]) for n, _ in seeks)
                    found = conn.execute(sql.format(s=s), [rank for _, rank in seeks]).fetchone()
            neighbours = iter(found or ())
            parts: list[Parts] = []
            for n in range(len(METRICS)):
                count, total, low, high = totals[4 * n : 4 * n + 4]
                if not count:
                    parts.append((0, 0, 0, 0, ()))
                    continue
                pairs = [next(neighbours) for _ in QUANTILES]
                parts.append((count, int(total), low, high, [(p[0], p[-1]) for p in pairs]))
            return counts, parts

        return self._read("cannot read the metrics", read)

    def duration_groups(
        self, query: IncidentQuery, group: str | None
    ) -> tuple[Sequence[tuple[Any, ...]], Sequence[tuple[Any, ...]]] | None:
        """What :func:`~incidentflow._metrics_rows.summarize_durations` aggregates, by SQL.

        As SQLiteStore's: counts as ``(group, severity, state, n)`` and one
        ``(group, *durations)`` row per incident, the durations subtracted by
        the server from the times in each checkpoint (exact epoch seconds, then
        integer microseconds). The incidents whose checkpoint lags their
        history are loaded whole, together.
        """
        from ..._metrics_rows import duration_micros

        key = _GROUP_KEYS[group]
        counts_sql, params = self._sql.list(query, f"{key}, severity, state, count(*)")
        if self._measured:
            # Incidents without a row have reached no milestone: the join leaves them out.
            times_sql, _ = self._sql.list(
                query, f"{key}, {', '.join(f'm.{name}' for name in METRICS)}"
            )
            times_sql = times_sql.replace(*self._joined("JOIN"), 1)
        else:
            times_sql, _ = self._sql.list(
                query,
                f"{key}, id, version, (SELECT ARRAY[s.version::int8, {_DURATIONS}] "
                f"FROM {self.schema}.snapshots s, LATERAL {_RECORD} "
                "WHERE s.incident_id = incidents.id)",
            )
        order = " ORDER BY declared_at ASC, id ASC"
        if order not in counts_sql or order not in times_sql:
            return None  # another statement shape: the milestones answer instead
        counts_sql = counts_sql.replace(order, " GROUP BY 1, 2, 3")
        times_sql = times_sql.replace(order, "")
        if self._measured:

            def stored(conn: psycopg.Connection[Any]) -> tuple[list[Any], list[Any]]:
                with conn.transaction():  # counts and durations as of one moment
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    counts = conn.execute(counts_sql, params).fetchall()
                    return counts, conn.execute(times_sql, params).fetchall()

            return self._read("cannot read the milestones", stored)

        def read(conn: psycopg.Connection[Any]) -> tuple[list[Any], list[Any]]:
            with conn.transaction():  # every row as of one moment
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                counts = conn.execute(counts_sql, params).fetchall()
                rows, lagging, groups = [], [], {}
                found = conn.execute(times_sql, params).fetchall()
                for group_key, incident_id, version, stored in found:
                    if stored is None or stored[0] != version:
                        lagging.append((str(incident_id), int(version)))
                        groups[str(incident_id)] = group_key
                    else:
                        rows.append((group_key, *stored[1:]))
                for incident in self._snapshots_of(conn, lagging) if lagging else ():
                    rows.append((groups[incident.id], *duration_micros(incident)))
            return counts, rows

        return self._read("cannot read the milestones", read)

    def summaries(self, query: IncidentQuery) -> Sequence[IncidentSummary]:
        """Summaries of matching incidents, read from the indexed columns alone."""
        sql, params = self._sql.list(
            query, "id, title, severity, state, commander, declared_at, updated_at, version, type"
        )
        rows = self._read(
            "cannot list incidents", lambda conn: conn.execute(sql, params).fetchall()
        )
        # A hundred thousand rows go through this loop: look names up once.
        text, severities, states = _from_column, _SEVERITIES, _STATES
        return [
            IncidentSummary(
                str(i), text(title), severities[sev], states[state], text(by),
                declared.astimezone(UTC), updated.astimezone(UTC), int(version), str(kind),
            )
            for i, title, sev, state, by, declared, updated, version, kind in rows
        ]  # fmt: skip

    def _search(
        self,
        terms: tuple[str, ...],
        *,
        exclude: str | None,
        limit: int,
        types: frozenset[str] | None = None,
        visible_to: frozenset[str] | None = None,
    ) -> Sequence[SimilarIncident]:
        """Rank with ``ts_rank_cd`` over the GIN-indexed tsvectors.

        The query ORs each term's ``plainto_tsquery`` in the ``english``
        configuration (:data:`SEARCH_CONFIG`); the fields that matched are
        those whose own tsvector matches it. ``visible_to`` is a term of the
        same query: the best ``limit`` are taken among what it may see.
        """
        if not self._searchable or (visible_to is not None and not self._guarded):
            every = self.list(IncidentQuery(visible_to=visible_to))
            return rank_snapshots(every, terms, exclude=exclude, limit=limit, types=types)
        params = {
            "config": SEARCH_CONFIG,
            "terms": list(terms),
            "weights": _RANK_WEIGHTS,
            "exclude": exclude,
            "types": None if types is None else sorted(types),
            "limit": limit,
            "visible": None if visible_to is None else principals(visible_to),
        }
        visible = "" if visible_to is None else _SEARCH_VISIBLE.format(s=self._sql.schema)
        sql = _SEARCH.format(s=self._sql.schema, visible=visible)
        rows = self._read(
            "cannot search for similar incidents",
            lambda conn: conn.execute(sql, params).fetchall(),
        )
        found = []
        for row in rows:
            incident_id, severity, state, declared_at, title, symptom, root_cause, slug = row[:8]
            kind, score, hits = row[8], row[9], row[10:]
            text = SearchText(
                _from_column(title),
                _from_column(symptom),
                _from_column(root_cause),
                "",
                None if slug is None else _from_column(slug),
            )
            document = SearchDocument(
                incident_id,
                Severity(severity),
                State(state),
                declared_at.astimezone(UTC),
                text,
                type=str(kind),
            )
            matched = [name for name, hit in zip(FIELDS, hits, strict=True) if hit]
            found.append(document.found(float(score), matched))
        return found

    def explain_list(self, query: IncidentQuery) -> Sequence[str]:
        """PostgreSQL's plan for :meth:`list` with ``query``, one line per step."""
        sql, params = self._sql.list(query)
        rows = self._read(
            "cannot explain the query",
            lambda conn: conn.execute(f"EXPLAIN {sql}", params).fetchall(),
        )
        return [str(row[0]) for row in rows]
