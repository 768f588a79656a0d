"""SLA clocks: the deadlines an incident runs against, from the policy's targets."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import attrs

from ._model import Incident, State
from ._policy import Policy
from .commands import DEADLINE_KINDS

__all__ = ["DEADLINE_KINDS", "Deadline", "deadlines"]


@attrs.frozen
class Deadline:
    """One deadline of an incident.

    Attributes:
        kind: ``"response"`` (triage must start), ``"postmortem"`` (must be
            completed after resolution) or ``"action_item"``.
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

    def is_overdue(self, now: datetime) -> bool:
        """True when it is unmet and ``now`` is past its due time."""
        return self.met_at is None and now > self.due_at


def deadlines(incident: Incident, policy: Policy) -> list[Deadline]:
    """Every deadline the incident runs against, in due order."""
    found: list[Deadline] = []
    if incident.state is not State.DISMISSED:
        found.append(
            Deadline(
                "response",
                "",
                incident.declared_at + policy.response_target(incident.severity),
                incident.acknowledged_at,
            )
        )
    if incident.postmortem_required and incident.resolved_at is not None:
        pm = incident.postmortem
        found.append(
            Deadline(
                "postmortem",
                "",
                incident.resolved_at + policy.postmortem_due,
                pm.completed_at if pm is not None else None,
            )
        )
    for item in incident.action_items:
        end_of_day = (
            datetime.combine(item.due + timedelta(days=1), time(0), tzinfo=UTC)
            if item.due < date.max
            else datetime.max.replace(tzinfo=UTC)  # the last day there is never ends
        )
        found.append(Deadline("action_item", str(item.number), end_of_day, item.done_at))
    breached = set(incident.breaches)
    found = [attrs.evolve(d, breached=d.key in breached) for d in found]
    return sorted(found, key=lambda d: d.due_at)
