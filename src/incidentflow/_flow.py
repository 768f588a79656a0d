"""IncidentFlow: the facade. Load, decide, append, then render and notify."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack, cast

from loguru import logger

from . import _events as ev
from . import _idempotency, commands
from . import _validate as v
from ._builders import builder, copier
from ._decide import decide, evolve, incident_id_for, replay
from ._decide import reasons as decide_reasons
from ._flow_access import Access, DeclareOptions
from ._flow_clocks import Clocks, checked_clock
from ._flow_commands import CommandOptions, Commands, Coordination
from ._flow_commit import (
    events_of,
    index_changed,
    new_commit,
    new_outcome,
    references_exist,
    references_free,
    taken_reasons,
)
from ._flow_delivery import Deliveries
from ._flow_fast import FastPath, stamped, utc, weak_now
from ._flow_ingest import Ingestion, files_deferred
from ._flow_links import RELATIONS, Relations
from ._flow_reads import Reads
from ._model import Incident, Reference, Severity
from ._policy import Guard, Policy
from ._reasons import Outcome, Reason, Verdict
from ._sequences import FrozenMap
from ._slugs import slug_candidates
from .commands import Command
from .delivery import DEFAULT_INLINE_BUDGET, Delivery, RetryPolicy, Route
from .exceptions import (
    ConcurrencyConflict,
    ConfigError,
    DuplicateIncident,
    IdempotencyConflict,
    IncidentFlowError,
    InvalidTransition,
    StoreError,
    Unauthorized,
    ValidationError,
)
from .notifiers._base import Notifier
from .stores._base import (
    IdempotencyRecord,
    OutboxItem,
)
from .stores._paths import folder_option
from .stores._protocols import EventStore, QueryIndex

if TYPE_CHECKING:
    from .alerts._rules import AlertRules

__all__ = ["Clock", "IncidentFlow", "Verdict"]

#: A callable returning the current time as an aware datetime.
Clock = Callable[[], datetime]

#: Where ``IncidentFlow.open`` writes incident files unless told otherwise.
DEFAULT_INCIDENTS_DIR = Path(".agent/incidents")
#: Where ``IncidentFlow.open`` writes KB gotchas unless told otherwise.
DEFAULT_KNOWLEDGE_DIR = Path(".agent/knowledge/gotchas")


_OPTIONS = frozenset(CommandOptions.__annotations__)
_new_declared = builder(ev.Declared)
_with = copier(ev.Declared)
_NOTHING: FrozenMap[Any] = FrozenMap()  # what the payload's converter makes of {}, made once


@functools.cache
def _default_policy() -> Policy:
    """The policy of a flow given none: frozen (changes make a new one), so one serves all."""
    return Policy()


def system_clock() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


class IncidentFlow(
    FastPath, Access, Commands, Coordination, Relations, Reads, Clocks, Deliveries, Ingestion
):
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
        store: EventStore,
        *,
        clock: Clock | None = None,
        policy: Policy | None = None,
        notifiers: Iterable[Notifier] = (),
        routes: Sequence[Route] | None = None,
        retry: RetryPolicy | None = None,
        deliver_inline: bool = True,
        delivery_lease: timedelta = timedelta(minutes=1),
        delivery_budget: timedelta = DEFAULT_INLINE_BUDGET,
        alert_rules: AlertRules | None = None,
        incidents_dir: str | Path | None = None,
        knowledge_dir: str | Path | None = None,
    ) -> None:
        if not isinstance(store, EventStore):
            raise ConfigError("store", f"expected an EventStore, got {type(store).__name__}")
        if policy is not None and not isinstance(policy, Policy):
            raise ConfigError("policy", f"expected a Policy, got {type(policy).__name__}")
        self.store = store
        self.clock: Clock = checked_clock(clock, system_clock)
        self.policy = policy or _default_policy()
        #: The delivery side: routing, retries, dispatchers (see :mod:`incidentflow.delivery`).
        self.delivery = Delivery(
            store,
            now=weak_now(self),
            notifiers=notifiers,
            routes=routes,
            retry=retry,
            deliver_inline=deliver_inline,
            lease=delivery_lease,
            inline_budget=delivery_budget,
        )
        if alert_rules is not None:
            from .alerts._rules import AlertRules

            if not isinstance(alert_rules, AlertRules):
                raise ConfigError(
                    "alert_rules", f"expected AlertRules, got {type(alert_rules).__name__}"
                )
            self.alert_rules = alert_rules
        self.incidents_dir = folder_option("incidents_dir", incidents_dir)
        self.knowledge_dir = folder_option("knowledge_dir", knowledge_dir)

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
        """The flow a configuration file describes: ``load_config(path).open_with(cls, ...)``.

        Without ``path``, the file named by ``INCIDENTFLOW_CONFIG``, else the
        nearest ``incidentflow.toml`` or ``pyproject.toml`` with a
        ``[tool.incidentflow]`` table, else the defaults. Keywords win over the
        file, and ``INCIDENTFLOW_URL`` over its ``store`` (see
        :func:`~incidentflow.load_config` and :meth:`~incidentflow.Config.flow_arguments`).
        """
        from .config import load_config

        return load_config(path).open_with(cls, **overrides)

    def add_guard(self, command: str, guard: Guard) -> None:
        """Add a custom guard to ``command`` (see :meth:`Policy.with_guard`)."""
        self.policy = self.policy.with_guard(command, guard)

    def _index(self) -> QueryIndex:
        """The store's query index; listings and searches need one."""
        if not isinstance(self.store, QueryIndex):
            raise ConfigError(
                "store",
                f"{type(self.store).__name__} keeps no query index (listings, similar "
                "incidents, metrics): use a store that implements QueryIndex",
            )
        return self.store

    # -- the clock ----------------------------------------------------------

    def now(self) -> datetime:
        """The flow clock's time, checked to be aware and converted to UTC."""
        return utc(self.clock())

    # -- reading ------------------------------------------------------------

    def get(self, incident_id: str, *, viewer: str | None = None) -> Incident:
        """The current snapshot of an incident; IncidentNotFound if ``viewer`` may not see it."""
        return self._shown_to(viewer, "get", self.store.load(v.name("incident_id", incident_id)))

    def history(self, incident_id: str, *, viewer: str | None = None) -> Sequence[ev.Event]:
        """The incident's whole event history, seq 1..n; ``viewer`` as for :meth:`get`."""
        if viewer is not None:
            self.get(incident_id, viewer=viewer)
        return self.store.history(v.name("incident_id", incident_id))

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

    def can(self, incident_id: str, command: str, *, actor: str = "", **args: Any) -> Verdict:
        """Whether ``command`` would be accepted now, with every reason if not.

        Has no side effects. Without ``args`` only the state and the guards that
        need no arguments are checked; with them, the arguments are checked too
        (a bad one raises ValidationError). ``actor`` is passed to custom guards
        that decide by who runs the command, and is the viewer: ``can`` refuses
        it as ``get(viewer=actor)`` does (IncidentNotFound for an incident it
        may not see, Unauthorized without the read permission), and refuses an
        argument naming such an incident as one that does not exist. A name that
        is no command raises InvalidTransition listing the commands.
        """
        definition = commands.definition(command)
        if actor:
            actor = v.actor(actor)
        incident = self.get(incident_id, viewer=actor or None)
        try:
            if actor:
                self._check_access(actor, definition.name, incident)
        except Unauthorized as exc:
            return Verdict(False, (Reason("access.denied", exc.message, {"actor": actor}),))
        now = stamped(self.now(), incident, logged=False)  # as the command would be stamped
        values = definition.validate(args) if args else None
        payload = None if values is None else definition.payload(values, now)
        try:
            others = self._linked_states(incident, definition)
            reasons = decide_reasons(incident, definition, payload, self.policy, now, actor, others)
        except InvalidTransition as exc:
            data = {"state": exc.state, "allowed_states": list(exc.allowed_states)}
            return Verdict(False, (Reason("state.not_allowed", exc.message, data),))
        if values is not None:
            seen_by = self._seen_by(actor)
            references_exist(self.store, definition, incident, values, seen_by)
            if definition.name == "add_reference" and incident.is_open:
                ref = Reference(values["kind"], values["value"])
                reasons.extend(taken_reasons(self._index(), incident.id, ref, seen_by))
        return Verdict(not reasons, tuple(reasons))

    # -- commands -----------------------------------------------------------

    def declare(
        self,
        title: str,
        *,
        severity: Severity | str,
        commander: str,
        slug: str | None = None,
        type: str | None = None,
        labels: Mapping[str, str] | None = None,
        fields: Mapping[str, object] | None = None,
        references: Mapping[str, str] | None = None,
        **options: Unpack[DeclareOptions],
    ) -> Incident:
        """Declare a new incident; its id is ``INC-<date>-<slug>``.

        Without ``slug`` one is made from the title, numbered ("-2") if taken
        today; an explicit slug that is taken raises DuplicateIncident.
        ``type`` is one of the policy's incident types (default: its first);
        ``labels`` (``{"service": "checkout"}``), custom ``fields`` and external
        ``references`` (``{"alert": fingerprint}``) can be set here or later.
        A reference another open incident holds raises ReferenceTaken.
        ``restricted_to`` restricts it in the same commit (see :meth:`restrict`).
        """
        args: dict[str, object] = {"title": title, "severity": severity, "commander": commander}
        args |= {"slug": slug, "type": type, "labels": labels, "fields": fields}
        args |= {"references": references, "restricted_to": options.pop("restricted_to", None)}
        return self._declare(args, options).incident

    def _declare(self, args: dict[str, Any], options: CommandOptions) -> Outcome:
        definition = commands.definition("declare")
        actor, key, _ = self._options(options, allow_version=False)
        values = self._declaration_values(definition, args, actor)
        fingerprint = _idempotency.fingerprint("declare", "", values) if key is not None else ""
        if key is not None and (done := self._replayed(key, fingerprint, actor)) is not None:
            return Outcome(done, replayed=True)
        now = self.now()
        proposed = _new_declared(
            title=values["title"],
            slug=values["slug"] or v.slugify(values["title"]),
            severity=values["severity"],
            commander=values["commander"],
            type=values["type"] or "",
            labels=values["labels"] or _NOTHING,
            custom_fields=values["fields"] or _NOTHING,
            references=values["references"] or (),
        )
        (declared,) = decide(None, definition, proposed, self.policy, now, actor)
        assert isinstance(declared, ev.Declared)

        def taken(candidate: str) -> bool:
            return self.store.exists(incident_id_for(now, candidate))

        numbered = values["slug"] is None
        for candidate in slug_candidates(declared.slug, numbered=numbered, taken=taken):
            incident_id = incident_id_for(now, candidate)
            if values["slug"] is None and self.store.exists(incident_id):
                if key is not None and (done := self._replayed(key, fingerprint, actor)):
                    return Outcome(done, replayed=True)  # a twin with the same key won the race
                continue
            data = declared if candidate == declared.slug else _with(declared, slug=candidate)
            batch = self._declaration(incident_id, data, values, now, actor)
            try:
                return Outcome(self._commit(incident_id, None, batch, now, actor, key, fingerprint))
            except (DuplicateIncident, ConcurrencyConflict, IdempotencyConflict):
                if key is not None and (done := self._replayed(key, fingerprint, actor)):
                    return Outcome(done, replayed=True)
                if values["slug"] is not None:
                    raise
        raise DuplicateIncident(incident_id_for(now, declared.slug))

    # -- the pipeline ---------------------------------------------------------

    def _execute(
        self,
        command: Command[Any],
        incident_id: str,
        options: CommandOptions,
        args: dict[str, Any],
    ) -> Outcome:
        if len(options) == 1 and "actor" in options:  # no key: never a replay
            return new_outcome(self._run(command, incident_id, options, args), False)
        snapshot, replayed = self._perform(command, incident_id, options, args)
        return new_outcome(snapshot, replayed)

    def _perform(
        self,
        command: Command[Any],
        incident_id: str,
        options: CommandOptions,
        args: dict[str, Any],
        through: Reference | None = None,  # the alert ``ingest`` records: see _check_access
    ) -> tuple[Incident, bool]:
        """The snapshot after the command, and whether it was a replay of an earlier run."""
        incident_id = v.name("incident_id", incident_id)
        actor, key, expected_version = self._options(options)
        values = command.validate(args)
        stamp: list[datetime] = []  # one clock reading, however often the command is decided
        # Commit against the version last seen here: one round trip, no read first. A keyed
        # command reads first, so that a retry is checked against who may see it now.
        cached = self.store.cached(incident_id) if key is None else None
        if cached is not None:
            try:
                return self._decided(
                    command, cached, values, actor, key, expected_version, stamp, through
                )
            except StoreError:
                raise
            except IncidentFlowError:
                incident = self.store.load(incident_id)
                if incident.version == cached.version:
                    raise  # decided on the current snapshot: the refusal stands, asked once
                # decided on a stale snapshot: decide again on the stored one
        else:
            incident = self.store.load(incident_id)
        return self._decided(
            command, incident, values, actor, key, expected_version, stamp, through
        )

    def _decided(
        self,
        command: Command[Any],
        incident: Incident,
        values: dict[str, Any],
        actor: str,
        key: str | None,
        expected_version: int | None,
        stamp: list[datetime],
        through: Reference | None = None,
    ) -> tuple[Incident, bool]:
        incident_id = incident.id
        if incident.restricted_to or self.policy.authorizer is not None:
            self._check_access(actor, command.name, incident, through)  # before guards, replays
        fingerprint = (
            _idempotency.fingerprint(command.name, incident_id, values) if key is not None else ""
        )
        if key is not None and (done := self._replayed(key, fingerprint)) is not None:
            return done, True
        if not stamp:
            stamp.append(self.now())
        now = stamped(stamp[0], incident)  # never before the incident's last event
        payload = command.payload(values, now)
        try:
            if expected_version is not None and expected_version != incident.version:
                raise ConcurrencyConflict(incident_id, expected_version, incident.version)
            others = self._linked_states(incident, command)
            events = decide(incident, command, payload, self.policy, now, actor, others)
            if command.references:
                references_exist(self.store, command, incident, values, self._principals(actor))
            return self._commit(incident_id, incident, events, now, actor, key, fingerprint), False
        except IncidentFlowError:
            # A twin with the same key may have committed since we looked: its result wins.
            if key is not None and (done := self._replayed(key, fingerprint)) is not None:
                return done, True
            raise

    def execute(self, command: str, incident_id: str | None = None, **args: Any) -> Outcome:
        """Run ``command`` by name and say whether it was new or a replay.

        The arguments are the command's own, with ``actor``,
        ``idempotency_key`` and ``expected_version``; ``declare`` takes no
        ``incident_id``. A host that retries with an idempotency key (an alert
        re-sent, an HTTP request repeated) learns from ``replayed`` that the
        first run answered and nothing new was recorded.

        >>> flow = IncidentFlow.in_memory()
        >>> first = flow.execute("declare", title="DB down", severity="P1", commander="al",
        ...                      actor="al", idempotency_key="page-1")
        >>> again = flow.execute("declare", title="DB down", severity="P1", commander="al",
        ...                      actor="al", idempotency_key="page-1")
        >>> first.replayed, again.replayed, again.incident == first.incident
        (False, True, True)
        """
        definition = commands.definition(command)
        options = cast(CommandOptions, {k: args.pop(k) for k in list(args) if k in _OPTIONS})
        if definition.name == "declare":
            if incident_id is not None:
                raise ValidationError("incident_id", "declare makes a new incident; give none")
            return self._declare(args, options)
        if definition.system:
            raise InvalidTransition.unknown_command(
                command, tuple(name for name, c in commands.DEFINITIONS.items() if not c.system)
            )
        if incident_id is None:
            raise ValidationError("incident_id", f"{command} needs the id of an incident")
        if definition.name in RELATIONS:
            return self._relation(definition, incident_id, options, args)
        return self._execute(definition, incident_id, options, args)

    def _relation(
        self, command: Command[Any], incident_id: str, options: CommandOptions, args: dict[str, Any]
    ) -> Outcome:
        if self._hides_reference(command, incident_id, args, options.get("actor")):
            return self._execute(command, incident_id, options, args)  # refused as if missing
        return super()._relation(command, incident_id, options, args)

    def _options(
        self, options: CommandOptions, *, allow_version: bool = True
    ) -> tuple[str, str | None, int | None]:
        """The checked actor, idempotency key and expected version of a command."""
        if len(options) == 1 and "actor" in options:  # the usual call: nothing else to check
            return v.actor(options["actor"]), None, None
        if not _OPTIONS.issuperset(options) or (
            not allow_version and "expected_version" in options
        ):
            unknown = sorted(set(options) - _OPTIONS) or ["expected_version"]
            raise ValidationError(unknown[0], "is not an argument of this command")
        actor = v.actor(options.get("actor"))
        key = v.optional_key("idempotency_key", options.get("idempotency_key"))
        expected = options.get("expected_version")
        if expected is not None:
            expected = v.positive_int("expected_version", expected)
        return actor, key, expected

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
        events = events_of(incident_id, base, now, actor, data, key)
        snapshot = incident
        for event in events:
            snapshot = evolve(snapshot, event)
        assert snapshot is not None
        changed = index_changed(incident, snapshot)
        if changed:
            references_free(self.store, incident, snapshot, self._principals(actor))
        delivery = self.delivery
        # Without notifiers nothing is routed: the router would answer ().
        outbox = delivery.route(events, snapshot) if delivery.router.notifiers else ()
        record = (
            IdempotencyRecord(key, fingerprint, incident_id, snapshot.version)
            if key is not None
            else None
        )
        commit = new_commit(incident_id, base, events, snapshot, outbox, record, changed)
        self._append(commit, actor)
        if outbox or self.incidents_dir is not None or self.knowledge_dir is not None:
            self._after_commit(snapshot, outbox)
        return snapshot

    def _after_commit(self, snapshot: Incident, outbox: Sequence[OutboxItem]) -> None:
        # The command is committed: nothing here may keep it from returning.
        if (self.incidents_dir or self.knowledge_dir) and not files_deferred(snapshot):
            try:
                self._write_files(snapshot)
            except Exception:
                logger.exception("could not write the files of {}", snapshot.id)
        if not outbox:
            return
        try:
            self.delivery.committed(snapshot, outbox)
        except Exception:
            logger.exception(
                "announcing {} failed; its notifications wait in the outbox", snapshot.id
            )

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
        self.delivery.stop_dispatchers()
        for notifier in self.notifiers:
            notifier.close()
        self.store.close()

    def __enter__(self) -> IncidentFlow:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
