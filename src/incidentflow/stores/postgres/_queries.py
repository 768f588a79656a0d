"""PostgresStore as a query index: indexed listings, tsvector search, milestones."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
import psycopg.errors

from ..._metrics import MILESTONE_TIMES, Milestones
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


class PostgresQueryIndex(PostgresBase, TermSearch):
    """Listings and summaries by SQL, milestones from jsonb checkpoints, ``ts_rank_cd``."""

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
        """The milestones of matching incidents, read from the checkpoints by the server.

        No snapshot is built: one query returns, beside each incident's row,
        the seven times the metrics need, extracted from its stored checkpoint
        (``jsonb``). An incident whose checkpoint lags its history is loaded whole.
        """
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
                lagging = [
                    milestones(self._load(conn, str(row[0])))
                    for row in rows
                    if row[6] is None or int(row[6][0]) != int(row[1])
                ]
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

    def summaries(self, query: IncidentQuery) -> Sequence[IncidentSummary]:
        """Summaries of matching incidents, read from the indexed columns alone."""
        sql, params = self._sql.list(
            query, "id, title, severity, state, commander, declared_at, updated_at, version, type"
        )
        rows = self._read(
            "cannot list incidents", lambda conn: conn.execute(sql, params).fetchall()
        )
        return [
            IncidentSummary(
                str(row[0]),
                _from_column(row[1]),
                Severity(row[2]),
                State(row[3]),
                _from_column(row[4]),
                row[5].astimezone(UTC),
                row[6].astimezone(UTC),
                int(row[7]),
                str(row[8]),
            )
            for row in rows
        ]

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
