"""SLA clocks: the deadlines an incident runs against, from the policy's targets."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import attrs

from ._model import Incident, State
from ._policy import Policy
from .commands import DEADLINE_KINDS
from .commands._shared import later

__all__ = ["DEADLINE_KINDS", "Deadline", "deadlines", "reopened_at"]


@attrs.frozen
class Deadline:
    """One deadline of an incident.

    Attributes:
        kind: ``"response"`` (triage must start), ``"postmortem"`` (must be
            completed after resolution), ``"action_item"`` (done or declined by the
            end of its due date, after closure too) or ``"update"`` (the next status
            update, while the incident is open).
        subject: Which one: the action item's number, else ``""``.
        due_at: When it falls due (aware UTC). An action item is due at the end
            of its due date.
        met_at: When it was met, if it was.
        breached: True once the breach was recorded on the incident.

    """

    kind: str
    subject: str
    due_at: datetime
    met_at: datetime | None = None
    breached: bool = False

    @property
    def key(self) -> str:
        """The same key a recorded breach carries."""
        return f"{self.kind}:{self.subject}:{self.due_at.isoformat()}"

    @property
    def met(self) -> bool:
        """True once it was met (an action item completed or declined, triage started, ...)."""
        return self.met_at is not None

    def is_overdue(self, now: datetime) -> bool:
        """True when it is unmet and ``now`` is past its due time."""
        return self.met_at is None and now > self.due_at

    def status(self, now: datetime) -> str:
        """``"met"``, ``"overdue"`` (unmet and past due) or ``"open"`` (unmet, still due)."""
        if self.met_at is not None:
            return "met"
        return "overdue" if now > self.due_at else "open"


def deadlines(incident: Incident, policy: Policy) -> list[Deadline]:
    """Every deadline the incident runs against, in due order."""
    process = policy.process_of(incident)
    found: list[Deadline] = []
    if incident.state is not State.DISMISSED:
        found.append(
            Deadline(
                "response",
                "",
                later(incident.declared_at, process.response_target),
                incident.acknowledged_at,
            )
        )
    if incident.postmortem_required and incident.resolved_at is not None:
        pm = incident.postmortem
        found.append(
            Deadline(
                "postmortem",
                "",
                later(incident.resolved_at, policy.postmortem_due),
                pm.completed_at if pm is not None else None,
            )
        )
    for item in incident.action_items:
        if item.retracted is not None:
            continue  # recorded in error: it never was due
        end_of_day = (
            datetime.combine(item.due + timedelta(days=1), time(0), tzinfo=UTC)
            if item.due < date.max
            else datetime.max.replace(tzinfo=UTC)  # the last day there is never ends
        )
        met = item.done_at if item.declined is None else item.declined.at
        found.append(Deadline("action_item", str(item.number), end_of_day, met))
    update = _next_update(incident, process.update_cadence)
    restarted: datetime | None = None
    if update is not None:
        found.append(update[0])
        restarted = update[1]
    breached = set(incident.breaches)
    # A reclassification or a change of type moves the response and update deadlines: the
    # same deadline, breached once. A re-dated action item, a re-resolved post-mortem or
    # an update clock restarted by a reopen is a new promise, breached anew.
    once = {
        (kind, subject)
        for kind, subject, due in map(_parts, breached)
        if restarted is None or kind != "update" or datetime.fromisoformat(due) > restarted
    }
    found = [
        attrs.evolve(
            d,
            breached=d.key in breached
            or (d.kind in _ONCE_PER_SUBJECT and (d.kind, d.subject) in once),
        )
        for d in found
    ]
    return sorted(found, key=lambda d: d.due_at)


#: Deadlines whose due time moves with the severity or type, but which are one deadline.
_ONCE_PER_SUBJECT = frozenset({"response", "update"})


def _parts(key: str) -> tuple[str, str, str]:
    """A breach's key, ``kind:subject:due`` (the due time has colons of its own), split."""
    kind, _, rest = key.partition(":")
    subject, _, due = rest.partition(":")
    return kind, subject, due


def reopened_at(incident: Incident) -> datetime | None:
    """When the incident was last reopened, if it was.

    Every reopen sets the fix aside with its time (an incident is fixed or resolved only
    with a fix recorded), so the last superseded fix dates the last reopen.
    """
    if not incident.reopen_count or not incident.superseded:
        return None
    return incident.superseded[-1].at


def _next_update(
    incident: Incident, cadence: timedelta | None
) -> tuple[Deadline, datetime | None] | None:
    """The next status update, due while the incident is open: promised, or by the cadence.

    A reopen restarts the update clock: a promise made before it stands only if it
    still lay ahead at the reopen (one that fell due while the incident was fixed or
    resolved is void), and the cadence counts from the reopen. Returned with the
    reopen time when the clock restarted there, else ``None``.
    """
    if not incident.is_open:
        return None
    reopened = reopened_at(incident)
    last = incident.updates[-1] if incident.updates else None
    # An update at the very time of the reopen restarts the clock itself, from the same time.
    if reopened is not None and (last is None or last.at < reopened):
        promised = incident.next_update_due if last is not None else None
        candidates = [promised] if promised is not None and promised > reopened else []
        if cadence is not None:
            candidates.append(later(reopened, cadence))
        due = min(candidates, default=None)
        since: datetime | None = reopened
    elif last is not None:
        due = incident.next_update_due
        if due is None and cadence is not None:  # none promised, but the process now asks
            due = later(last.at, cadence)
        since = None
    else:
        due = later(incident.declared_at, cadence) if cadence is not None else None
        since = None
    if due is None:
        return None
    return Deadline("update", str(len(incident.updates) + 1), due), since
