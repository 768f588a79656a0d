"""The facade's SLA clocks: an incident's deadlines, and recording the ones missed."""

from __future__ import annotations

import abc
import itertools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import cast

from . import _events as ev
from . import _validate as v
from ._deadlines import Deadline, deadlines
from ._flow_commands import Pipeline
from ._model import Incident, State
from ._policy import Policy
from .commands import definition
from .exceptions import (
    ConcurrencyConflict,
    ConfigError,
    IncidentNotFound,
    InvalidTransition,
    TransitionRejected,
    ValidationError,
)
from .stores._protocols import EventStore, QueryIndex
from .stores._records import IncidentQuery

__all__ = ["Clocks"]

_BREACH = definition("record_breach")


def checked_clock(clock: object, default: Callable[[], datetime]) -> Callable[[], datetime]:
    """``clock``, or ``default`` when it is None; ConfigError when it cannot be called.

    Checked when the flow is built, not at its first command.
    """
    if clock is None:
        return default
    if not callable(clock):
        raise ConfigError(
            "clock",
            "expected a callable returning an aware datetime, e.g. "
            f"incidentflow.testing.FrozenClock(...), got {type(clock).__name__}",
        )
    return cast(Callable[[], datetime], clock)


class Clocks(Pipeline):
    """Deadlines and their breaches; see :class:`IncidentFlow`."""

    store: EventStore
    policy: Policy

    @abc.abstractmethod
    def now(self) -> datetime:
        """The flow clock's time."""

    @abc.abstractmethod
    def get(self, incident_id: str) -> Incident:
        """The current snapshot of an incident."""

    @abc.abstractmethod
    def _index(self) -> QueryIndex:
        """The store's query index."""

    def deadlines(self, incident_id: str) -> Sequence[Deadline]:
        """The incident's deadlines (response, post-mortem, action items), due order."""
        return deadlines(self.get(incident_id), self.policy)

    def check_deadlines(
        self, now: datetime | None = None, *, actor: str = "incidentflow"
    ) -> Sequence[ev.Event]:
        """Record a ``deadline_breached`` event for every deadline newly passed unmet.

        ``now`` (default: the flow's clock) may be earlier than the clock, never
        later: a breach is recorded at the flow's time. Each breach is recorded
        once, however often this runs and from however many processes: a second
        recording of the same deadline is refused, and a lost race is retried on
        the fresh snapshot. Closed incidents are checked too while they have open
        action items. The events are notified through the routing like any
        other. Returns the events recorded.
        """
        clock = self.now()
        checked_at = clock if now is None else v.aware("now", now)
        if checked_at > clock:
            raise ValidationError(
                "now",
                f"{checked_at.isoformat()} is later than the flow's clock "
                f"({clock.isoformat()}); breaches are recorded at the flow's time, when a "
                "deadline due after it has not passed: leave now out, or give an earlier one",
            )
        actor = v.actor(actor)
        recorded: list[ev.Event] = []
        index = self._index()
        unfinished = frozenset(s for s in State if not s.is_terminal)
        finished = frozenset(s for s in State if s.is_terminal)
        candidates = itertools.chain(
            index.list(IncidentQuery(states=unfinished)),
            index.list(IncidentQuery(states=finished, open_action_items=True)),
        )
        for incident in candidates:
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
                after = self._run(_BREACH, incident_id, {"actor": actor}, args)
            except ConcurrencyConflict:
                continue  # another writer moved the incident on: decide again
            except (TransitionRejected, InvalidTransition, IncidentNotFound):
                return None  # already recorded by another process, or closed meanwhile
            return self.store.history(incident_id, after=after.version - 1)[0]
        return None
