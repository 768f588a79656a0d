"""The facade's listings and searches: everything that reads the store's query index."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from . import _validate as v
from ._model import FieldValue, Incident, Reference, Severity, State
from ._queries import query, severities, types
from ._queries import reference as checked_reference
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
    def get(self, incident_id: str, *, viewer: str | None = None) -> Incident:
        """The current snapshot of an incident."""

    @abc.abstractmethod
    def _visible_to(self, viewer: str | None, read: str) -> frozenset[str] | None:
        """What a listing filters by for ``viewer``; raises Unauthorized without read access."""

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
        type: str | Iterable[str] | None = None,
        labels: Mapping[str, str] | None = None,
        fields: Mapping[str, FieldValue] | None = None,
        reference: tuple[str, str] | Reference | None = None,
        open_action_items: bool = False,
        newest_first: bool = True,
        limit: int | None = None,
        offset: int = 0,
        viewer: str | None = None,
    ) -> Sequence[Incident]:
        """Incidents matching every given filter, newest first, paged.

        ``type`` is an incident type or a list of them; ``labels`` and
        ``fields`` must all match (a field's value and its type: ``1`` does not
        match ``True``); ``reference`` is a ``(kind, value)`` pair; with
        ``open_action_items`` only incidents with an action item still open, in
        any state, closed ones included. SQLite and PostgreSQL answer each of
        these filters from an index. With ``viewer`` (an actor's name) only the
        incidents it may see are listed: none restricted to others (see
        :meth:`restrict`); without it the caller is the trusted host and sees all.

        >>> from incidentflow import IncidentFlow
        >>> flow = IncidentFlow.in_memory()
        >>> inc = flow.declare("Checkout returns 500", severity="P2", commander="al",
        ...                    actor="al", labels={"service": "checkout"})
        >>> [found.id for found in flow.list(labels={"service": "checkout"})] == [inc.id]
        True
        """
        visible = self._visible_to(viewer, "list")
        # The store leaves out what the viewer may not see, before paging (see QueryIndex).
        return self._index().list(
            query(
                state=state,
                severity=severity,
                open_only=open_only,
                commander=commander,
                declared_after=declared_after,
                declared_before=declared_before,
                text=text,
                type=type,
                labels=labels,
                fields=fields,
                reference=reference,
                open_action_items=open_action_items,
                newest_first=newest_first,
                limit=limit,
                offset=offset,
                visible_to=visible,
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
        type: str | Iterable[str] | None = None,
        labels: Mapping[str, str] | None = None,
        fields: Mapping[str, FieldValue] | None = None,
        reference: tuple[str, str] | Reference | None = None,
        open_action_items: bool = False,
        newest_first: bool = True,
        limit: int | None = None,
        offset: int = 0,
        viewer: str | None = None,
    ) -> Sequence[IncidentSummary]:
        """What :meth:`list` finds, as one-line summaries: cheaper for a table of many.

        Takes the same filters. SQLite and PostgreSQL read the summaries from
        their indexed columns without building a single snapshot; the other
        stores make them from :meth:`list`'s snapshots. ``viewer`` as for :meth:`list`.
        """
        visible = self._visible_to(viewer, "summaries")
        return self._index().summaries(
            query(
                state=state,
                severity=severity,
                open_only=open_only,
                commander=commander,
                declared_after=declared_after,
                declared_before=declared_before,
                text=text,
                type=type,
                labels=labels,
                fields=fields,
                reference=reference,
                open_action_items=open_action_items,
                newest_first=newest_first,
                limit=limit,
                offset=offset,
                visible_to=visible,
            )
        )

    def find(self, kind: str, value: str) -> Incident | None:
        """The incident holding the external reference ``kind``/``value``, or None.

        The open incident holding it if there is one (at most one open incident
        holds a reference); else the newest declared incident that held it.

        Raises:
            ValidationError: ``kind`` is not a key, or ``value`` not a one-line text.

        >>> from incidentflow import IncidentFlow
        >>> flow = IncidentFlow.in_memory()
        >>> inc = flow.declare("Disk full on db-7", severity="P2", commander="al", actor="al",
        ...                    references={"alert": "fp-1c9e"})
        >>> flow.find("alert", "fp-1c9e").id == inc.id
        True
        >>> flow.find("alert", "fp-0000") is None
        True

        """
        wanted = checked_reference((kind, value), field="reference")
        found = self._index().find_reference(wanted)
        return next((i for i in found if i.is_open), found[0] if found else None)

    def similar(
        self,
        incident_id: str | None = None,
        *,
        text: str | None = None,
        limit: int = 5,
        type: str | Iterable[str] | None = None,
        viewer: str | None = None,
    ) -> Sequence[SimilarIncident]:
        """Past incidents most like this one, with their KB gotchas, best first.

        The query is the incident's own searchable text: its title, its triage
        answer to ``symptom``, its root cause and its KB gotcha. ``text`` adds
        words to it (an error message, a log line); without ``incident_id`` it
        is the whole query, so a responder can search before declaring. The
        incident itself is never in the answer; closed and dismissed incidents
        are. ``type`` keeps the incidents of that type (or those types). The
        store ranks: SQLite with FTS5, PostgreSQL with its full-text search,
        the other stores in memory (see :class:`SimilarIncident`). With
        ``viewer`` the incidents restricted to others are left out.

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
        visible = self._visible_to(viewer, "similar")
        limit = v.positive_int("limit", limit)
        if limit > MAX_RESULTS:
            raise ValidationError(
                "limit", f"is {limit:,}; at most {MAX_RESULTS} similar incidents are returned"
            )
        parts = []
        if incident_id is not None:
            parts.append(SearchText.of(self.get(incident_id, viewer=viewer)).query)
        if text is not None:
            parts.append(v.text("text", text))
        if not parts:
            raise ValidationError(
                "incident_id", "give the incident to compare, text= to search for, or both"
            )
        return self._index().search(
            "\n".join(parts),
            exclude=incident_id,
            limit=limit,
            types=types(type),
            visible_to=visible,
        )

    def milestones(
        self,
        *,
        severity: Severity | str | Iterable[Severity | str] | None = None,
        declared_after: datetime | None = None,
        declared_before: datetime | None = None,
        type: str | Iterable[str] | None = None,
        viewer: str | None = None,
    ) -> Iterator[Milestones]:
        """When each matching incident reached each milestone, oldest first.

        What :meth:`metrics` aggregates. SQLite reads them from its milestones
        table and PostgreSQL from its stored checkpoints, in one query and
        without building a single snapshot; the memory and JSONL stores take
        them from each matching incident's snapshot (the default
        :meth:`Store.milestones <incidentflow.stores.Store.milestones>`).
        With ``viewer`` the incidents restricted to others are left out.
        """
        return iter(
            self._index().milestones(
                self._milestone_query(severity, declared_after, declared_before, type, viewer)
            )
        )

    def _milestone_query(
        self,
        severity: Severity | str | Iterable[Severity | str] | None,
        declared_after: datetime | None,
        declared_before: datetime | None,
        type: str | Iterable[str] | None,
        viewer: str | None,
    ) -> IncidentQuery:
        """The checked query of :meth:`milestones` and :meth:`metrics`, oldest first."""
        visible = self._visible_to(viewer, "metrics")
        return IncidentQuery(
            severities=severities(severity),
            types=types(type),
            declared_after=None
            if declared_after is None
            else v.aware("declared_after", declared_after),
            declared_before=None
            if declared_before is None
            else v.aware("declared_before", declared_before),
            newest_first=False,
            visible_to=visible,
        )

    def metrics(
        self,
        *,
        by: Literal["severity", "type", "period"] | None = None,
        period: Literal["day", "week", "month"] = "week",
        severity: Severity | str | Iterable[Severity | str] | None = None,
        declared_after: datetime | None = None,
        declared_before: datetime | None = None,
        type: str | Iterable[str] | None = None,
        viewer: str | None = None,
    ) -> Sequence[Summary]:
        """MTTx figures over the matching incidents: see :func:`incidentflow.metrics.summarize`.

        Aggregates the :meth:`milestones`: on SQLite and PostgreSQL they come
        from one query and no snapshot is built, so it stays quick on a store
        of a hundred thousand incidents; the memory and JSONL stores load each
        matching snapshot first. ``type`` keeps the incidents of that type (or
        those types); ``by="type"`` gives one summary per type. With ``viewer``
        the incidents restricted to others are not counted.

        >>> from incidentflow import IncidentFlow
        >>> flow = IncidentFlow.in_memory()
        >>> _ = flow.declare("Search is slow", severity="P3", commander="carol", actor="carol")
        >>> [summary] = flow.metrics()
        >>> summary.count, summary.mtta
        (1, None)
        """
        from ._metrics import check_grouping, summarize
        from ._metrics_rows import summarize_durations, summary_of_parts

        query = self._milestone_query(severity, declared_after, declared_before, type, viewer)
        index = self._index()
        # SQL stores subtract the milestones themselves: no Milestones built per incident.
        computed = getattr(index, "duration_groups", None)
        if computed is not None:
            check_grouping(by, period)
            # Everything, ungrouped: SQLite seeks each quantile in its duration's index.
            parts = getattr(index, "duration_parts", None)
            if by is None and parts is not None and (read := parts(query)) is not None:
                return summary_of_parts(*read)
            found = computed(query, "day" if by == "period" else by)
            if found is not None:
                return summarize_durations(*found, by=by, period=period)
        return summarize(index.milestones(query), by=by, period=period)
