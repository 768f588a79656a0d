"""What ``flow.ingest`` did: one :class:`AlertOutcome` per alert, in an :class:`IngestReport`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

import attrs

from ._alert import Alert

__all__ = ["ACTIONS", "AlertAction", "AlertOutcome", "IngestReport"]

AlertAction = Literal["declared", "attached", "noted_resolved", "ignored"]
#: What ingesting an alert can do.
ACTIONS: tuple[AlertAction, ...] = ("declared", "attached", "noted_resolved", "ignored")


@attrs.frozen(kw_only=True)
class AlertOutcome:
    """What ingesting one alert did.

    Attributes:
        alert: The alert, as parsed.
        action: ``declared`` (a new incident), ``attached`` (evidence on the
            open incident that holds its key), ``noted_resolved`` (a resolved
            alert recorded as evidence; the incident stays open) or ``ignored``
            (a resolved alert no open incident holds).
        incident_id: The incident it declared or went to, if any.
        replayed: True when an earlier ingest of the same alert had done it
            already and nothing new was recorded.
        detail: Why, in words, plus what was left out (labels refused by the policy).

    """

    alert: Alert
    action: AlertAction
    incident_id: str | None
    replayed: bool = False
    detail: str = ""


def _outcomes(value: Iterable[AlertOutcome]) -> tuple[AlertOutcome, ...]:
    return tuple(value)


@attrs.frozen
class IngestReport:
    """The outcome of every alert of one payload, in the payload's order.

    >>> IngestReport(()).counts()
    {'declared': 0, 'attached': 0, 'noted_resolved': 0, 'ignored': 0, 'replayed': 0}
    """

    outcomes: Sequence[AlertOutcome] = attrs.field(converter=_outcomes)

    def __iter__(self) -> Iterator[AlertOutcome]:
        return iter(self.outcomes)

    def __len__(self) -> int:
        return len(self.outcomes)

    @property
    def incident_ids(self) -> tuple[str, ...]:
        """The incidents the alerts went to, each once, in first-seen order."""
        return tuple(dict.fromkeys(o.incident_id for o in self.outcomes if o.incident_id))

    @property
    def declared(self) -> tuple[AlertOutcome, ...]:
        """The outcomes that declared a new incident (replays of a declaration included)."""
        return tuple(o for o in self.outcomes if o.action == "declared")

    def counts(self) -> dict[str, int]:
        """How many alerts took each action, and how many were replays."""
        found: dict[str, int] = dict.fromkeys(ACTIONS, 0)
        for outcome in self.outcomes:
            found[outcome.action] += 1
        found["replayed"] = sum(o.replayed for o in self.outcomes)
        return found
