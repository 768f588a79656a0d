"""The usual command in one pass: validate, decide, fold and append, fused.

The general pipeline (``IncidentFlow._perform``) serves every option: an
idempotency key, an expected version, access rules, linked incidents,
notifiers, files, custom guards and required roles. Most commands use none of
them; this path runs those with the same checks, in the same order, without
the layers in between. Anything else goes to the general path before the
clock is read or anything is written, so both give the same snapshot, the same
stored events and the same errors (``tests/test_fast_paths_fused.py`` compares them).
"""

from __future__ import annotations

import abc
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from loguru import logger

from . import _validate as v
from ._builders import builder
from ._decide import context_reasons, evolve, steps
from ._events import Event, EventData
from ._flow_commands import CommandOptions, Pipeline
from ._flow_commit import index_changed, new_commit, references_free
from ._lifecycle import Step, lifecycle
from ._model import Incident, State
from ._policy import Policy
from .commands import Command, Context
from .delivery import Delivery
from .exceptions import ConfigError, IncidentFlowError, StoreError, TransitionRejected
from .stores._protocols import EventStore

__all__ = ["FastPath", "stamped", "utc", "weak_now"]

_new_event = builder(Event)
# A named tuple built as a tuple: its generated __new__ is a Python call.
_tuple_new = tuple.__new__
_NO_OTHERS: Mapping[str, State] = MappingProxyType({})
_NO_OUTBOX = ()
_NAMES, _NAME_MAX = v.remembered(v.name) or ({}, 0)
_seen_name = _NAMES.get
#: The lifecycle's steps by (command, state), as asked: a dictionary read per command.
_STEPS: dict[tuple[str, State], tuple[Step, ...]] = {}


def utc(now: object) -> datetime:
    """What a clock returned, checked to be aware and converted to UTC."""
    if now.__class__ is datetime and now.tzinfo is UTC:
        return now  # aware, and already UTC
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ConfigError("clock", f"must return an aware datetime, returned {now!r}")
    return now.astimezone(UTC)


def stamped(now: datetime, incident: Incident, *, logged: bool = True) -> datetime:
    """The time a command on ``incident`` is decided and recorded at: ``now``, or later.

    Never before the incident's last event: a clock that stepped back (an NTP
    correction, a host behind the others on one database) would otherwise stamp an
    event before the one it follows, down to triage acknowledged before the
    declaration. The event takes the last event's time instead, and the step back
    is logged (unless ``logged`` is false: a question, not a command). So time order
    in a history is its commit order; histories written otherwise (by an older
    release) are still read and imported as written.
    """
    last = incident.updated_at
    if now >= last or not logged:
        return max(now, last)
    logger.warning(
        "the clock reads {}, before the last event of {} at {}: the clock stepped back, "
        "so the command is recorded at {}",
        now.isoformat(),
        incident.id,
        last.isoformat(),
        last.isoformat(),
    )
    return last


def weak_now(flow: FastPath) -> Callable[[], datetime]:
    """``flow.now`` without a reference to ``flow``, for the parts it owns.

    A bound method would make a cycle: a dropped flow would wait for the
    garbage collector, with everything it holds, instead of going at once.
    """
    ref = weakref.ref(flow)
    clock = flow.clock

    def now() -> datetime:
        alive = ref()
        return utc(clock()) if alive is None else alive.now()

    return now


class FastPath(Pipeline):
    """``_run``: the fused path when nothing but ``actor=`` is asked for, else the general one."""

    store: EventStore
    policy: Policy
    delivery: Delivery
    incidents_dir: Path | None
    knowledge_dir: Path | None

    clock: Callable[[], datetime]

    @abc.abstractmethod
    def now(self) -> datetime:
        """The flow clock's time, aware and in UTC."""

    @abc.abstractmethod
    def _perform(
        self,
        command: Command[Any],
        incident_id: str,
        options: CommandOptions,
        args: dict[str, Any],
    ) -> tuple[Incident, bool]:
        """The general pipeline: the snapshot after the command, and whether it was a replay."""

    @abc.abstractmethod
    def _decided(
        self,
        command: Command[Any],
        incident: Incident,
        values: dict[str, Any],
        actor: str,
        key: str | None,
        expected_version: int | None,
        stamp: list[datetime],
    ) -> tuple[Incident, bool]:
        """The general pipeline from a loaded snapshot on."""

    def _run(
        self,
        command: Command[Any],
        incident_id: str,
        options: CommandOptions,
        args: dict[str, Any],
    ) -> Incident:
        if (
            len(options) != 1
            or "actor" not in options
            or command.references
            or not self.policy._unchecked
            or self.incidents_dir is not None
            or self.knowledge_dir is not None
            or self.delivery.router.notifiers
        ):
            return self._perform(command, incident_id, options, args)[0]
        # What _perform does with these options, in its order. An id the store holds
        # a snapshot of is one it was declared under: valid, and already stripped.
        store = self.store
        cached = store.cached(incident_id) if incident_id.__class__ is str else None
        if cached is None:
            given, incident_id = incident_id, v.name("incident_id", incident_id)
            if given.__class__ is not str or incident_id != given:  # stripped, or a subclass
                cached = store.cached(incident_id)
        actor = options["actor"]
        if actor.__class__ is str and (found := _seen_name(actor)) and len(found) <= _NAME_MAX:
            actor = found  # what v.actor answers for a name it accepted before
        else:
            actor = v.actor(actor)
        values = command.validated(args)
        stamp: list[datetime] = []
        if cached is not None:
            try:
                return self._fused(command, cached, values, actor, stamp)
            except StoreError:
                raise
            except IncidentFlowError:
                incident = store.load(incident_id)
                if incident.version == cached.version:
                    raise
        else:
            incident = store.load(incident_id)
        return self._fused(command, incident, values, actor, stamp)

    def _fused(
        self,
        command: Command[Any],
        inc: Incident,
        values: dict[str, Any],
        actor: str,
        stamp: list[datetime],
    ) -> Incident:
        """``_decided`` without key, expected version, links, outbox or files, in one frame."""
        if inc.restricted_to or (command.sees_links and inc.links):
            return self._decided(command, inc, values, actor, None, None, stamp)[0]
        if not stamp:
            now = self.clock()
            if now.__class__ is not datetime or now.tzinfo is not UTC:
                now = utc(now)
            stamp.append(now)
        now = stamp[0]
        if now < inc.updated_at:
            now = stamped(now, inc)
        if command._fields_by_name:  # command.payload without its call: the usual shape
            payload = command._build_payload(**values)
        else:
            payload = command.payload(values, now)
        # decide(), for a policy with no custom guards or required roles.
        where = (command.name, inc.state)
        found = _STEPS.get(where)
        if found is None:
            found = _STEPS[where] = lifecycle().steps(*where)
        if not found:
            steps(inc, command)  # raises InvalidTransition
        if command.plain:
            data: Sequence[EventData] = (payload,)
        else:
            context: Context[Any] = _tuple_new(
                Context, (inc, payload, self.policy, now, actor, _NO_OTHERS)
            )
            if command.guards and not _all_hold(found, context, payload):
                unmet = context_reasons(command, context)  # every reason, as decide gives them
                raise TransitionRejected(inc.id, command.name, unmet)
            if command.prepare is not None:
                payload = command.prepare(context, payload)
            data = command.emit(context, payload) if command.emits_more else (payload,)
        # _commit(), with nothing to route and no files to write.
        incident_id = inc.id
        base = inc.version
        if len(data) == 1:
            events: tuple[Event, ...] = (
                _new_event(incident_id, base + 1, now, actor, data[0], None),
            )
            snapshot = evolve(inc, events[0])
        else:
            events = tuple(
                _new_event(incident_id, base + i, now, actor, item, None)
                for i, item in enumerate(data, start=1)
            )
            snapshot = inc
            for event in events:
                snapshot = evolve(snapshot, event)
        changed = index_changed(inc, snapshot)
        if changed:
            references_free(self.store, inc, snapshot, frozenset({actor}))
        elif len(events) == 1:
            self.store._append_event(events[0], snapshot)
            return snapshot
        self.store.append(
            new_commit(incident_id, base, events, snapshot, _NO_OUTBOX, None, changed)
        )
        return snapshot


def _all_hold(found: tuple[Step, ...], context: Context[Any], payload: EventData) -> bool:
    """True when no guard of the selected steps gives a reason, asked as ``decide`` asks."""
    for step in found:
        if step.when and not step.selected_by(payload):
            continue
        for guard in step.guards:
            if guard.check(context) is not None and guard.reasons(context):
                return False
    return True
