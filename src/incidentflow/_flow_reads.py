"""The facade's listings and searches: everything that reads the store's query index."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from . import _validate as v
from ._model import Incident, Severity, State
from ._queries import query, severities
from ._similar import MAX_RESULTS, SearchText, SimilarIncident
from .exceptions import ValidationError
from .stores._protocols import QueryIndex
from .stores._records import IncidentQuery, IncidentSummary

if TYPE_CHECKING:
    from ._metrics import Milestones, Summary

__all__ = ["Reads"]


class Reads(abc.ABC):
    """Listings, summaries, similar incidents and metrics; see :class:`IncidentFlow`."""

    @abc.abstractmethod
    def _index(self) -> QueryIndex:
        """The store's query index."""

    @abc.abstractmethod
    def get(self, incident_id: str) -> Incident:
        """The current snapshot of an incident."""

    def list(
        self,
        *,
        state: State | str | Iterable[State | str] | None = None,
        severity: Severity | str | Iterable[Severity | str] | None = None,
        open_only: bool = False,
        commander: str | None = None,
        declared_after: datetime | None = None,
        declared_before: datetime | None = None,
        text: str | None = None,
        newest_first: bool = True,
        limit: int | None = None,
        offset: int = 0,
    ) -> Sequence[Incident]:
        """Incidents matching every given filter, newest first, paged."""
        return self._index().list(
            query(
                state=state,
                severity=severity,
                open_only=open_only,
                commander=commander,
                declared_after=declared_after,
                declared_before=declared_before,
                text=text,
                newest_first=newest_first,
                limit=limit,
                offset=offset,
            )
        )

    def summaries(
        self,
        *,
        state: State | str | Iterable[State | str] | None = None,
        severity: Severity | str | Iterable[Severity | str] | None = None,
        open_only: bool = False,
        commander: str | None = None,
        declared_after: datetime | None = None,
        declared_before: datetime | None = None,
        text: str | None = None,
        newest_first: bool = True,
        limit: int | None = None,
        offset: int = 0,
    ) -> Sequence[IncidentSummary]:
        """What :meth:`list` finds, as one-line summaries: cheaper for a table of many.

        Takes the same filters. SQLite and PostgreSQL read the summaries from
        their indexed columns without building a single snapshot; the other
        stores make them from :meth:`list`'s snapshots.
        """
        return self._index().summaries(
            query(
                state=state,
                severity=severity,
                open_only=open_only,
                commander=commander,
                declared_after=declared_after,
                declared_before=declared_before,
                text=text,
                newest_first=newest_first,
                limit=limit,
                offset=offset,
            )
        )

    def similar(
        self, incident_id: str | None = None, *, text: str | None = None, limit: int = 5
    ) -> Sequence[SimilarIncident]:
        """Past incidents most like this one, with their KB gotchas, best first.

        The query is the incident's own searchable text: its title, its triage
        answer to ``symptom``, its root cause and its KB gotcha. ``text`` adds
        words to it (an error message, a log line); without ``incident_id`` it
        is the whole query, so a responder can search before declaring. The
        incident itself is never in the answer; closed and dismissed incidents
        are. The store ranks: SQLite with FTS5, PostgreSQL with its full-text
        search, the other stores in memory (see :class:`SimilarIncident`).

        Raises:
            ValidationError: Neither ``incident_id`` nor ``text`` is given, or
                ``limit`` is not a whole number from 1 to 100.
            IncidentNotFound: No incident has that id.

        >>> from incidentflow import IncidentFlow
        >>> flow = IncidentFlow.in_memory()
        >>> old = flow.declare("Gateway timeout", severity="P2", commander="bob", actor="bob")
        >>> new = flow.declare("Cart gateway timeout", severity="P1", commander="al", actor="al")
        >>> for found in flow.similar(new.id):
        ...     print(found.title, found.matched)
        Gateway timeout ('title',)

        """
        limit = v.positive_int("limit", limit)
        if limit > MAX_RESULTS:
            raise ValidationError(
                "limit", f"is {limit:,}; at most {MAX_RESULTS} similar incidents are returned"
            )
        parts = []
        if incident_id is not None:
            parts.append(SearchText.of(self.get(incident_id)).query)
        if text is not None:
            parts.append(v.text("text", text))
        if not parts:
            raise ValidationError(
                "incident_id", "give the incident to compare, text= to search for, or both"
            )
        return self._index().search("\n".join(parts), exclude=incident_id, limit=limit)

    def milestones(
        self,
        *,
        severity: Severity | str | Iterable[Severity | str] | None = None,
        declared_after: datetime | None = None,
        declared_before: datetime | None = None,
    ) -> Iterator[Milestones]:
        """When each matching incident reached each milestone, oldest first.

        What :meth:`metrics` aggregates. SQLite reads them from its milestones
        table and PostgreSQL from its stored checkpoints, in one query and
        without building a single snapshot; the memory and JSONL stores take
        them from each matching incident's snapshot (the default
        :meth:`Store.milestones <incidentflow.stores.Store.milestones>`).
        """
        query = IncidentQuery(
            severities=severities(severity),
            declared_after=None
            if declared_after is None
            else v.aware("declared_after", declared_after),
            declared_before=None
            if declared_before is None
            else v.aware("declared_before", declared_before),
            newest_first=False,
        )
        return iter(self._index().milestones(query))

    def metrics(
        self,
        *,
        by: Literal["severity", "period"] | None = None,
        period: Literal["day", "week", "month"] = "week",
        severity: Severity | str | Iterable[Severity | str] | None = None,
        declared_after: datetime | None = None,
        declared_before: datetime | None = None,
    ) -> Sequence[Summary]:
        """MTTx figures over the matching incidents: see :func:`incidentflow.metrics.summarize`.

        Aggregates the :meth:`milestones`: on SQLite and PostgreSQL they come
        from one query and no snapshot is built, so it stays quick on a store
        of a hundred thousand incidents; the memory and JSONL stores load each
        matching snapshot first.

        >>> from incidentflow import IncidentFlow
        >>> flow = IncidentFlow.in_memory()
        >>> _ = flow.declare("Search is slow", severity="P3", commander="carol", actor="carol")
        >>> [summary] = flow.metrics()
        >>> summary.count, summary.mtta
        (1, None)
        """
        from ._metrics import summarize

        found = self.milestones(
            severity=severity, declared_after=declared_after, declared_before=declared_before
        )
        return summarize(found, by=by, period=period)
