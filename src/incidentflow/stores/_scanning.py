"""Query-index behaviour for backends without an index of their own (memory, JSON Lines).

A backend chooses it explicitly by inheriting :class:`ScanningQueryIndex` and
implementing its one primitive, :meth:`~incidentflow.stores.QueryIndex.list`:
summaries, milestones, references and similar incidents are then made from the
snapshots ``list`` returns. Backends with a full-text index inherit :class:`TermSearch`
alone, which turns the query text into words once and calls their ranking.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from .._model import Incident, Reference
from .._similar import SearchDocument, SimilarIncident, query_terms, rank
from ._protocols import QueryIndex
from ._records import IncidentQuery, IncidentSummary

if TYPE_CHECKING:
    from .._metrics import Milestones

__all__ = ["ScanningQueryIndex", "TermSearch", "rank_snapshots"]


class TermSearch(QueryIndex):
    """:meth:`search` split into the shared query parsing and a backend's ranking primitive."""

    def search(
        self,
        text: str,
        *,
        exclude: str | None = None,
        limit: int = 5,
        types: frozenset[str] | None = None,
        visible_to: frozenset[str] | None = None,
    ) -> Sequence[SimilarIncident]:
        """Incidents sharing words with ``text``, best first (see :meth:`QueryIndex.search`)."""
        terms = query_terms(text)
        if not terms or limit < 1 or types == frozenset():
            return ()
        return self._search(terms, exclude=exclude, limit=limit, types=types, visible_to=visible_to)

    @abc.abstractmethod
    def _search(
        self,
        terms: tuple[str, ...],
        *,
        exclude: str | None,
        limit: int,
        types: frozenset[str] | None = None,
        visible_to: frozenset[str] | None = None,
    ) -> Sequence[SimilarIncident]:
        """Rank incidents (of ``types``, those ``visible_to`` may see) against ``terms``.

        ``terms`` are bound words, never query syntax.
        """


class ScanningQueryIndex(TermSearch):
    """A query index computed from the snapshots :meth:`list` returns."""

    def find_reference(
        self, reference: Reference, *, open_only: bool = False
    ) -> Sequence[Incident]:
        """The incidents holding ``reference``, newest declared first (see :meth:`list`)."""
        return self.list(IncidentQuery(reference=reference, open_only=open_only))

    def summaries(self, query: IncidentQuery) -> Sequence[IncidentSummary]:
        """What :meth:`list` returns, as summaries."""
        return [IncidentSummary.of(incident) for incident in self.list(query)]

    def milestones(self, query: IncidentQuery) -> Iterator[Milestones]:
        """The milestones of :meth:`list`'s snapshots."""
        from .._metrics import milestones  # the metrics module loads when metrics are asked for

        return (milestones(incident) for incident in self.list(query))

    def _search(
        self,
        terms: tuple[str, ...],
        *,
        exclude: str | None,
        limit: int,
        types: frozenset[str] | None = None,
        visible_to: frozenset[str] | None = None,
    ) -> Sequence[SimilarIncident]:
        """BM25F over every snapshot, in memory (see :func:`incidentflow._similar.rank`)."""
        return rank_snapshots(
            self.list(IncidentQuery(visible_to=visible_to)),
            terms,
            exclude=exclude,
            limit=limit,
            types=types,
        )


def rank_snapshots(
    incidents: Iterable[Incident],
    terms: tuple[str, ...],
    *,
    exclude: str | None,
    limit: int,
    types: frozenset[str] | None = None,
) -> Sequence[SimilarIncident]:
    """Rank ``incidents`` against ``terms`` in memory, best first, at most ``limit``."""
    documents = (SearchDocument.of(incident) for incident in incidents)
    return rank(documents, terms, exclude=exclude, limit=limit, types=types)
