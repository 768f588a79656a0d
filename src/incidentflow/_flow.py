"""IncidentFlow: the facade. Load, decide, append, then render and notify."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import attrs
from loguru import logger

from . import _events as ev
from . import _validate as v
from ._commands import build
from ._deadlines import Deadline, deadlines
from ._decide import check_state, decide, evolve, guard_reasons, incident_id_for, replay
from ._delivery import (
    Deliverer,
    DeliveryReport,
    Dispatcher,
    RetryPolicy,
    Route,
    Router,
    default_worker_name,
)
from ._model import Incident, Severity, State
from ._policy import Guard, Policy
from ._similar import MAX_RESULTS, SearchText, SimilarIncident
from .exceptions import (
    ConcurrencyConflict,
    ConfigError,
    DuplicateIncident,
    IdempotencyConflict,
    IncidentFlowError,
    InvalidTransition,
    TransitionRejected,
    ValidationError,
)
from .notifiers._base import Notifier
from .stores._base import (
    Commit,
    IdempotencyRecord,
    IncidentQuery,
    IncidentSummary,
    OutboxItem,
    Store,
)

if TYPE_CHECKING:
    from ._metrics import Milestones, Summary
    from ._worker import DispatcherProcess, FlowFactory

__all__ = ["Clock", "IncidentFlow", "Verdict"]

#: A callable returning the current time as an aware datetime.
Clock = Callable[[], datetime]

#: Where ``IncidentFlow.open`` writes incident files unless told otherwise.
DEFAULT_INCIDENTS_DIR = Path(".agent/incidents")
#: Where ``IncidentFlow.open`` writes KB gotchas unless told otherwise.
DEFAULT_KNOWLEDGE_DIR = Path(".agent/knowledge/gotchas")

#: How many numbered slugs ("-2", "-3", ...) to try when a title's slug is taken.
_SLUG_ATTEMPTS = 50


def system_clock() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


@attrs.frozen
class Verdict:
    """The answer of :meth:`IncidentFlow.can`: allowed, or every reason why not.

    A verdict is truthy exactly when the command is allowed.
    """

    allowed: bool
    reasons: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.allowed


class IncidentFlow:
    """Runs incidents through the lifecycle on a store.

    Every command validates its arguments, checks the incident's state and
    guards, appends the resulting events atomically, then rewrites the incident's
    Markdown file (when a folder is set) and notifies. It returns the new
    snapshot. Every command takes ``actor=`` (who runs it), and optionally
    ``idempotency_key=`` (the same key and arguments return the first result)
    and ``expected_version=`` (raise ConcurrencyConflict if the incident moved).

    >>> flow = IncidentFlow.in_memory()
    >>> inc = flow.declare("Checkout returns 500", severity="P1", commander="alice", actor="alice")
    >>> inc.state.value, inc.severity.value
    ('declared', 'P1')
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        policy: Policy | None = None,
        notifiers: Iterable[Notifier] = (),
        routes: Sequence[Route] | None = None,
        retry: RetryPolicy | None = None,
        deliver_inline: bool = True,
        delivery_lease: timedelta = timedelta(minutes=1),
        incidents_dir: str | Path | None = None,
        knowledge_dir: str | Path | None = None,
    ) -> None:
        if not isinstance(store, Store):
            raise ConfigError("store", f"expected a Store, got {type(store).__name__}")
        if policy is not None and not isinstance(policy, Policy):
            raise ConfigError("policy", f"expected a Policy, got {type(policy).__name__}")
        self.store = store
        self.clock: Clock = clock or system_clock
        self.policy = policy or Policy()
        self.notifiers: list[Notifier] = list(notifiers)
        for notifier in self.notifiers:
            if not isinstance(notifier, Notifier):
                raise ConfigError(
                    "notifiers", f"expected a Notifier, got {type(notifier).__name__}"
                )
        self.router = Router(self.notifiers, routes)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigError("retry", f"expected a RetryPolicy, got {type(retry).__name__}")
        self.retry = retry or RetryPolicy()
        self.deliver_inline = v.boolean("deliver_inline", deliver_inline)
        if not isinstance(delivery_lease, timedelta) or delivery_lease <= timedelta(0):
            raise ConfigError("delivery_lease", "expected a positive timedelta")
        self.delivery_lease = delivery_lease
        self._dispatchers: set[Dispatcher | DispatcherProcess] = set()
        self._worker = default_worker_name()
        self.incidents_dir = Path(incidents_dir) if incidents_dir is not None else None
        self.knowledge_dir = Path(knowledge_dir) if knowledge_dir is not None else None

    @classmethod
    def in_memory(cls, **kwargs: Any) -> IncidentFlow:
        """A flow on a fresh :class:`~incidentflow.stores.MemoryStore`.

        It writes no files unless ``incidents_dir`` or ``knowledge_dir`` is given.
        """
        from .stores.memory import MemoryStore

        return cls(MemoryStore(), **kwargs)

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        incidents_dir: str | Path | None = DEFAULT_INCIDENTS_DIR,
        knowledge_dir: str | Path | None = DEFAULT_KNOWLEDGE_DIR,
        **kwargs: Any,
    ) -> IncidentFlow:
        """A flow on the store named by ``url``, writing the files people read.

        Without ``url``, the ``INCIDENTFLOW_URL`` environment variable is used,
        and without that the embedded default: SQLite at
        ``.agent/incidents/incidentflow.db``. ``sqlite:///PATH``, ``file://DIR``
        (JSONL), ``postgresql://...`` and ``memory://`` are understood, plus
        stores registered under the ``incidentflow.stores`` entry-point group.
        Files go to ``.agent/incidents/`` and ``.agent/knowledge/gotchas/``
        unless other folders (or ``None``, for none) are given.
        """
        from .stores._url import open_store

        store = open_store(url)
        try:
            return cls(store, incidents_dir=incidents_dir, knowledge_dir=knowledge_dir, **kwargs)
        except BaseException:
            store.close()
            raise

    @classmethod
    def from_config(cls, path: str | Path | None = None, **overrides: Any) -> IncidentFlow:
        """The flow a configuration file describes: ``load_config(path).open_flow(**overrides)``.

        Without ``path``, the file named by ``INCIDENTFLOW_CONFIG``, else the
        nearest ``incidentflow.toml`` or ``pyproject.toml`` with a
        ``[tool.incidentflow]`` table, else the defaults. Keywords win over the
        file, and ``INCIDENTFLOW_URL`` over its ``store`` (see
        :func:`~incidentflow.load_config` and :meth:`~incidentflow.Config.open_flow`).
        """
        from ._config import load_config

        return load_config(path).open_flow(**overrides)

    def add_guard(self, command: str, guard: Guard) -> None:
        """Add a custom guard to ``command`` (see :meth:`Policy.with_guard`)."""
        self.policy = self.policy.with_guard(command, guard)

    # -- the clock ----------------------------------------------------------

    def now(self) -> datetime:
        """The flow clock's time, checked to be aware and converted to UTC."""
        now = self.clock()
        if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
            raise ConfigError("clock", f"must return an aware datetime, returned {now!r}")
        return now.astimezone(UTC)

    # -- reading ------------------------------------------------------------

    def get(self, incident_id: str) -> Incident:
        """The current snapshot of an incident. Raises IncidentNotFound."""
        return self.store.load(v.name("incident_id", incident_id))

    def history(self, incident_id: str) -> Sequence[ev.Event]:
        """The incident's whole event history, seq 1..n."""
        return self.store.history(v.name("incident_id", incident_id))

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
        return self.store.list(
            _query(
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
        return self.store.summaries(
            _query(
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

    def verify(self, incident_id: str) -> bool:
        """True when replaying the history gives exactly the stored snapshot.

        The snapshot is read first and compared with the replay of the events up
        to its version: the two reads are separate, and a command committed
        between them lengthens the history without making the incident corrupt.
        A history shorter than the snapshot's version is a mismatch.
        """
        snapshot = self.get(incident_id)
        history = self.history(incident_id)
        if not 0 < snapshot.version <= len(history):
            return False
        return replay(history[: snapshot.version]) == snapshot

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
        return self.store.search("\n".join(parts), exclude=incident_id, limit=limit)

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
            severities=_severities(severity),
            declared_after=None
            if declared_after is None
            else v.aware("declared_after", declared_after),
            declared_before=None
            if declared_before is None
            else v.aware("declared_before", declared_before),
            newest_first=False,
        )
        return iter(self.store.milestones(query))

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

    def can(self, incident_id: str, command: str, *, actor: str = "", **args: Any) -> Verdict:
        """Whether ``command`` would be accepted now, with every reason if not.

        Has no side effects. Without ``args`` only the state and the guards that
        need no arguments are checked; with them, the arguments are checked too.
        ``actor`` is passed to custom guards that decide by who runs the command.
        """
        if actor:
            actor = v.actor(actor)
        incident = self.get(incident_id)
        now = self.now()
        payload = build(command, now, args) if args else None
        try:
            check_state(incident, command)
        except InvalidTransition as exc:
            return Verdict(False, (str(exc),))
        reasons = guard_reasons(incident, command, payload, self.policy, now, actor)
        return Verdict(not reasons, tuple(reasons))

    # -- commands -----------------------------------------------------------

    def declare(
        self,
        title: str,
        *,
        severity: Severity | str,
        commander: str,
        actor: str | None = None,
        slug: str | None = None,
        idempotency_key: str | None = None,
    ) -> Incident:
        """Declare a new incident; its id is ``INC-<date>-<slug>``.

        Without ``slug`` one is made from the title, numbered ("-2") if taken
        today; an explicit slug that is taken raises DuplicateIncident.
        """
        actor = v.actor(actor)
        key = v.optional_key("idempotency_key", idempotency_key)
        payload = ev.Declared(
            title=v.text("title", title, max_len=v.TITLE_MAX, multiline=False),
            slug=v.slug(slug) if slug is not None else v.slugify(title),
            severity=v.severity(severity),
            commander=v.name("commander", commander),
            postmortem_required=False,
        )
        fingerprint = _fingerprint(
            "declare",
            "",
            {"title": title, "severity": severity, "commander": commander, "slug": slug},
        )
        if key is not None and (done := self._replayed(key, fingerprint)) is not None:
            return done
        now = self.now()
        (declared,) = decide(None, "declare", payload, self.policy, now, actor)
        assert isinstance(declared, ev.Declared)
        for candidate in _slug_candidates(declared.slug, numbered=slug is None):
            incident_id = incident_id_for(now, candidate)
            if slug is None and self.store.exists(incident_id):
                continue
            data = attrs.evolve(declared, slug=candidate)
            try:
                return self._commit(incident_id, None, [data], now, actor, key, fingerprint)
            except DuplicateIncident:
                if slug is not None:
                    raise
        raise DuplicateIncident(incident_id_for(now, declared.slug))

    def start_triage(
        self,
        incident_id: str,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Acknowledge the incident and start triage (stops the response-time clock)."""
        return self._run(
            "start_triage", incident_id, actor, (idempotency_key, expected_version), {}
        )

    def add_evidence(
        self,
        incident_id: str,
        *,
        source: str,
        content: str,
        actor: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Attach evidence: where it came from and what it shows (up to 1,000,000 chars)."""
        return self._run(
            "add_evidence",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            {"source": source, "content": content},
        )

    def answer_triage(
        self,
        incident_id: str,
        question: str,
        answer: str,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Answer one triage checklist question (e.g. ``symptom``, ``started_at``, ``scope``)."""
        return self._run(
            "answer_triage",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            {"question": question, "answer": answer},
        )

    def record_containment(
        self,
        incident_id: str,
        description: str,
        *,
        actor: str | None = None,
        taken_at: datetime | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Record a containment action, taken now or at ``taken_at``."""
        return self._run(
            "record_containment",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            {"description": description, "taken_at": taken_at},
        )

    def contain(
        self,
        incident_id: str,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Declare the incident contained: evidence, triage answers and containment needed."""
        return self._run("contain", incident_id, actor, (idempotency_key, expected_version), {})

    def start_rca(
        self,
        incident_id: str,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Start root-cause analysis."""
        return self._run("start_rca", incident_id, actor, (idempotency_key, expected_version), {})

    def add_why(
        self,
        incident_id: str,
        answer: str,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Add the next link of the 5-Whys chain (at most five)."""
        return self._run(
            "add_why", incident_id, actor, (idempotency_key, expected_version), {"answer": answer}
        )

    def set_root_cause(
        self,
        incident_id: str,
        statement: str,
        *,
        process_gap: str,
        actor: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """State the root cause and the process gap that let it through."""
        return self._run(
            "set_root_cause",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            {"statement": statement, "process_gap": process_gap},
        )

    def record_fix(
        self,
        incident_id: str,
        description: str,
        *,
        test: str,
        staging_verified: bool,
        actor: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Record the fix, the test that would have caught the bug, and staging status."""
        return self._run(
            "record_fix",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            {"description": description, "test": test, "staging_verified": staging_verified},
        )

    def record_deploy(
        self,
        incident_id: str,
        *,
        actor: str | None = None,
        deployed_at: datetime | None = None,
        ref: str = "",
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Record the fix's deploy, now or at ``deployed_at``; ``ref`` names the release."""
        return self._run(
            "record_deploy",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            {"deployed_at": deployed_at, "ref": ref},
        )

    def mark_fixed(
        self,
        incident_id: str,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Mark the incident fixed: needs whys, root cause, a verified fix and a deploy."""
        return self._run("mark_fixed", incident_id, actor, (idempotency_key, expected_version), {})

    def confirm_by_user(
        self,
        incident_id: str,
        *,
        user: str,
        actor: str | None = None,
        positive: bool = True,
        comment: str = "",
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Record a user's answer; a negative one reopens the incident to rca."""
        return self._run(
            "confirm_by_user",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            {"user": user, "positive": positive, "comment": comment},
        )

    def resolve(
        self,
        incident_id: str,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Resolve: needs a positive user confirmation and the watch window passed."""
        return self._run("resolve", incident_id, actor, (idempotency_key, expected_version), {})

    def draft_postmortem(
        self,
        incident_id: str,
        *,
        actor: str | None = None,
        summary: str | None = None,
        root_cause: str | None = None,
        went_well: Sequence[str] | None = None,
        went_poorly: Sequence[str] | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Fill in post-mortem fields; those left ``None`` keep their value."""
        return self._run(
            "draft_postmortem",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            _pm_args(summary, root_cause, went_well, went_poorly),
        )

    def complete_postmortem(
        self,
        incident_id: str,
        *,
        actor: str | None = None,
        summary: str | None = None,
        root_cause: str | None = None,
        went_well: Sequence[str] | None = None,
        went_poorly: Sequence[str] | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Complete the post-mortem, filling in any fields given first."""
        return self._run(
            "complete_postmortem",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            _pm_args(summary, root_cause, went_well, went_poorly),
        )

    def add_action_item(
        self,
        incident_id: str,
        description: str,
        *,
        owner: str,
        due: date,
        actor: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Add a follow-up with an owner and a due date; items are numbered from 1."""
        return self._run(
            "add_action_item",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            {"description": description, "owner": owner, "due": due},
        )

    def complete_action_item(
        self,
        incident_id: str,
        number: int,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Mark action item ``number`` done."""
        return self._run(
            "complete_action_item",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            {"number": number},
        )

    def update_kb(
        self,
        incident_id: str,
        *,
        symptom: str,
        early_signs: str,
        actor: str | None = None,
        root_cause: str | None = None,
        fix: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Write the knowledge-base gotcha and close the incident.

        ``root_cause`` and ``fix`` default to the incident's own.
        """
        return self._run(
            "update_kb",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            {"symptom": symptom, "early_signs": early_signs, "root_cause": root_cause, "fix": fix},
        )

    def reopen(
        self,
        incident_id: str,
        *,
        reason: str,
        actor: str | None = None,
        to: str = "rca",
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Reopen a fixed or resolved incident to ``"rca"`` or ``"triaging"``."""
        return self._run(
            "reopen",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            {"reason": reason, "to": to},
        )

    def dismiss(
        self,
        incident_id: str,
        *,
        reason: str,
        actor: str | None = None,
        duplicate_of: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Dismiss a false alarm or a duplicate (before containment)."""
        return self._run(
            "dismiss",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            {"reason": reason, "duplicate_of": duplicate_of},
        )

    def reclassify(
        self,
        incident_id: str,
        severity: Severity | str,
        *,
        reason: str,
        actor: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Change the severity, with a reason."""
        return self._run(
            "reclassify",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            {"severity": severity, "reason": reason},
        )

    def assign_commander(
        self,
        incident_id: str,
        commander: str,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Hand the incident to another commander."""
        return self._run(
            "assign_commander",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            {"commander": commander},
        )

    def record_detection(
        self,
        incident_id: str,
        *,
        method: str,
        actor: str | None = None,
        first_occurred_at: datetime | None = None,
        detected_at: datetime | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Record when the issue first occurred and how it was detected.

        ``method`` is ``"alert"``, ``"user_report"`` or ``"other"``.
        """
        return self._run(
            "record_detection",
            incident_id,
            actor,
            (idempotency_key, expected_version),
            {"method": method, "first_occurred_at": first_occurred_at, "detected_at": detected_at},
        )

    def add_note(
        self,
        incident_id: str,
        text: str,
        *,
        actor: str | None = None,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Incident:
        """Add a free-form note; allowed in every state."""
        return self._run(
            "add_note", incident_id, actor, (idempotency_key, expected_version), {"text": text}
        )

    # -- SLA clocks ---------------------------------------------------------

    def deadlines(self, incident_id: str) -> Sequence[Deadline]:
        """The incident's deadlines (response, post-mortem, action items), due order."""
        return deadlines(self.get(incident_id), self.policy)

    def check_deadlines(
        self, now: datetime | None = None, *, actor: str = "incidentflow"
    ) -> Sequence[ev.Event]:
        """Record a ``deadline_breached`` event for every deadline newly passed unmet.

        Each breach is recorded once, however often this runs and from however
        many processes: a second recording of the same deadline is refused, and
        a lost race is retried on the fresh snapshot. The events are notified
        through the routing like any other. Returns the events recorded.
        """
        checked_at = self.now() if now is None else v.aware("now", now)
        actor = v.actor(actor)
        recorded: list[ev.Event] = []
        open_states = [s for s in State if not s.is_terminal]
        for incident in self.store.list(IncidentQuery(states=frozenset(open_states))):
            for deadline in deadlines(incident, self.policy):
                if deadline.breached or not deadline.is_overdue(checked_at):
                    continue
                event = self._record_breach(incident.id, deadline, actor)
                if event is not None:
                    recorded.append(event)
        return recorded

    def _record_breach(self, incident_id: str, deadline: Deadline, actor: str) -> ev.Event | None:
        args = {"kind": deadline.kind, "subject": deadline.subject, "due_at": deadline.due_at}
        for _ in range(5):
            try:
                after = self._run("record_breach", incident_id, actor, (None, None), args)
            except ConcurrencyConflict:
                continue  # another writer moved the incident on: decide again
            except (TransitionRejected, InvalidTransition):
                return None  # already recorded by another process, or closed meanwhile
            return self.store.history(incident_id, after=after.version - 1)[0]
        return None

    # -- the pipeline ---------------------------------------------------------

    def _run(
        self,
        command: str,
        incident_id: str,
        actor: str | None,
        options: tuple[object, object],
        args: dict[str, Any],
    ) -> Incident:
        incident_id = v.name("incident_id", incident_id)
        actor = v.actor(actor)
        key, expected_version = _options(*options)
        fingerprint = _fingerprint(command, incident_id, args) if key is not None else ""
        if key is not None and (done := self._replayed(key, fingerprint)) is not None:
            return done
        now = self.now()
        payload = build(command, now, args)
        incident = self.store.load(incident_id)
        if expected_version is not None and expected_version != incident.version:
            raise ConcurrencyConflict(incident_id, expected_version, incident.version)
        events = decide(incident, command, payload, self.policy, now, actor)
        return self._commit(incident_id, incident, events, now, actor, key, fingerprint)

    def _replayed(self, key: str, fingerprint: str) -> Incident | None:
        record = self.store.idempotency(key)
        if record is None:
            return None
        if record.fingerprint != fingerprint:
            raise IdempotencyConflict(key)
        history = self.store.history(record.incident_id)
        return replay(history[: record.version])

    def _commit(
        self,
        incident_id: str,
        incident: Incident | None,
        data: Sequence[ev.EventData],
        now: datetime,
        actor: str,
        key: str | None,
        fingerprint: str,
    ) -> Incident:
        base = 0 if incident is None else incident.version
        events = tuple(
            ev.Event(incident_id, base + i, now, actor, payload, key)
            for i, payload in enumerate(data, start=1)
        )
        snapshot = incident
        for event in events:
            snapshot = evolve(snapshot, event)
        assert snapshot is not None
        outbox = self.router.outbox(events, snapshot)
        record = (
            IdempotencyRecord(key, fingerprint, incident_id, snapshot.version)
            if key is not None
            else None
        )
        self.store.append(Commit(incident_id, base, events, snapshot, outbox, record))
        self._after_commit(snapshot, outbox)
        return snapshot

    def _after_commit(self, snapshot: Incident, outbox: Sequence[OutboxItem]) -> None:
        if self.incidents_dir is not None or self.knowledge_dir is not None:
            try:
                self._write_files(snapshot)
            except (OSError, IncidentFlowError):
                logger.exception("could not write the files of {}", snapshot.id)
        if not outbox:
            return
        if self._dispatchers:
            for dispatcher in tuple(self._dispatchers):
                dispatcher._committed(snapshot)
        elif self.deliver_inline:
            try:
                # Only this incident's streams: another incident's backlog of
                # retries must not hold up the command.
                self._deliverer().run(
                    self._worker,
                    limit=100,
                    max_in_flight=1,
                    known={snapshot.id: snapshot},
                    incident_id=snapshot.id,
                )
            except Exception:
                # The command is committed; its notifications wait in the outbox.
                logger.exception("inline delivery after {} failed", snapshot.id)

    # -- delivery -----------------------------------------------------------

    def _deliverer(self) -> Deliverer:
        return Deliverer(self.store, self.router, self.retry, self.now, self.delivery_lease)

    def deliver_pending(self, *, limit: int = 1000, max_in_flight: int = 8) -> DeliveryReport:
        """Deliver due notifications from the outbox now, up to ``limit`` of them.

        For scripts and cron jobs; long-running hosts use :meth:`dispatcher`.
        Failures are recorded on the items (attempts, next retry, error) and
        never raised.
        """
        return self._deliverer().run(
            self._worker,
            limit=v.positive_int("limit", limit),
            max_in_flight=v.positive_int("max_in_flight", max_in_flight),
        )

    @overload
    def dispatcher(
        self, *, max_in_flight: int = 8, interval: float = 1.0, process: None = None
    ) -> Dispatcher: ...

    @overload
    def dispatcher(
        self, *, max_in_flight: int = 8, interval: float = 1.0, process: str | FlowFactory
    ) -> DispatcherProcess: ...

    def dispatcher(
        self,
        *,
        max_in_flight: int = 8,
        interval: float = 1.0,
        process: str | FlowFactory | None = None,
    ) -> Dispatcher | DispatcherProcess:
        """A :class:`Dispatcher` delivering this flow's outbox in a background thread.

        While one runs, commands no longer deliver inline: they return at once
        and the dispatcher is woken. Start it with ``start()`` or a ``with`` block.

        With ``process``, the deliveries run in a child process instead, so their
        CPU work does not compete with the commands for this interpreter. Pass a
        function defined at module level (or ``"package.module:function"``) that
        builds the flow to deliver with: the same store and notifiers as this one.
        The child calls it once, inherits the environment, and stops when this
        process stops it or exits. Not for a ``MemoryStore``.
        """
        if process is None:
            return Dispatcher(self, max_in_flight=max_in_flight, interval=interval)
        from ._worker import DispatcherProcess

        return DispatcherProcess(self, process, max_in_flight=max_in_flight, interval=interval)

    def dead_letters(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Notifications that gave up after their last attempt, oldest first."""
        return self.store.dead_letters(v.positive_int("limit", limit))

    def redrive(self, ids: Iterable[str] | None = None) -> int:
        """Put dead letters back in line (all of them without ``ids``); returns how many."""
        if ids is None:
            ids = [item.id for item in self.store.dead_letters(limit=1_000_000)]
        return self.store.redrive(list(ids))

    def _attach(self, dispatcher: Dispatcher | DispatcherProcess) -> None:
        self._dispatchers.add(dispatcher)

    def _detach(self, dispatcher: Dispatcher | DispatcherProcess) -> None:
        self._dispatchers.discard(dispatcher)

    # -- files --------------------------------------------------------------

    def render(self, incident_id: str) -> Sequence[Path]:
        """(Re)write the incident's Markdown file and, once written, its KB gotcha.

        Returns the paths written. Does nothing for folders that are not set.
        """
        return self._write_files(self.get(incident_id))

    def _write_files(self, incident: Incident) -> Sequence[Path]:
        # After a commit the snapshot is at hand: no need to read it back.
        from .render.files import write_files

        needs_history = incident.postmortem is not None or incident.resolved_at is not None
        history = self.history(incident.id) if needs_history else ()
        return write_files(incident, history, self.incidents_dir, self.knowledge_dir)

    def incident_path(self, incident_id: str) -> Path | None:
        """Where the incident's Markdown file is written, or None without a folder."""
        from .render.files import safe_file_name

        if self.incidents_dir is None:
            return None
        return self.incidents_dir / f"{safe_file_name(incident_id)}.md"

    def close(self) -> None:
        """Stop dispatchers, then close the notifiers and the store."""
        for dispatcher in tuple(self._dispatchers):
            dispatcher.stop()
        for notifier in self.notifiers:
            notifier.close()
        self.store.close()

    def __enter__(self) -> IncidentFlow:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _query(
    *,
    state: State | str | Iterable[State | str] | None,
    severity: Severity | str | Iterable[Severity | str] | None,
    open_only: bool,
    commander: str | None,
    declared_after: datetime | None,
    declared_before: datetime | None,
    text: str | None,
    newest_first: bool,
    limit: int | None,
    offset: int,
) -> IncidentQuery:
    """The checked query of :meth:`IncidentFlow.list` and :meth:`IncidentFlow.summaries`."""
    return IncidentQuery(
        states=_states(state),
        severities=_severities(severity),
        open_only=v.boolean("open_only", open_only),
        commander=None if commander is None else v.name("commander", commander),
        declared_after=None
        if declared_after is None
        else v.aware("declared_after", declared_after),
        declared_before=None
        if declared_before is None
        else v.aware("declared_before", declared_before),
        text=None if text is None else v.name("text", text),
        newest_first=v.boolean("newest_first", newest_first),
        limit=None if limit is None else v.positive_int("limit", limit),
        offset=_offset(offset),
    )


def _options(key: object, expected: object) -> tuple[str | None, int | None]:
    key = v.optional_key("idempotency_key", key)
    if expected is not None and (
        isinstance(expected, bool) or not isinstance(expected, int) or expected < 1
    ):
        raise ValidationError(
            "expected_version", f"expected a version of at least 1, got {expected!r}"
        )
    return key, expected


def _fingerprint(command: str, incident_id: str, args: dict[str, Any]) -> str:
    return json.dumps([command, incident_id, args], sort_keys=True, default=repr)


def _pm_args(
    summary: object, root_cause: object, went_well: object, went_poorly: object
) -> dict[str, Any]:
    return {
        "summary": summary,
        "root_cause": root_cause,
        "went_well": went_well,
        "went_poorly": went_poorly,
    }


def _slug_candidates(slug: str, *, numbered: bool) -> Iterable[str]:
    yield slug
    if not numbered:
        return
    for n in range(2, _SLUG_ATTEMPTS + 2):
        suffix = f"-{n}"
        yield slug[: v.SLUG_MAX - len(suffix)].rstrip("-") + suffix


def _states(value: object) -> frozenset[State] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, (str, State)) else value
    if not isinstance(values, Iterable):
        raise ValidationError("state", f"expected a state or a list of states, got {value!r}")
    states = set()
    for item in values:
        try:
            states.add(State(item))
        except ValueError:
            accepted = ", ".join(s.value for s in State)
            raise ValidationError(
                "state", f"{item!r} is not a state; use one of {accepted}"
            ) from None
    return frozenset(states)


def _severities(value: object) -> frozenset[Severity] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, (str, Severity)) else value
    if not isinstance(values, Iterable):
        raise ValidationError("severity", f"expected a severity or a list, got {value!r}")
    return frozenset(v.severity(item) for item in values)


def _offset(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError("offset", f"expected a whole number of zero or more, got {value!r}")
    return value
