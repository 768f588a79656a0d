"""What a command answers: why it was refused (code, sentence, data), or what it did."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ._model import Incident

__all__ = ["Outcome", "Reason", "Verdict"]


def _frozen_data(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen
class Reason:
    """One unmet requirement of a command.

    ``code`` is public and stable (``"triage.unanswered"``, ``"containment.missing"``,
    ...): a bot or a web page branches on it, never on the message. ``message``
    is the sentence a person reads and ``str(reason)`` gives it. ``data`` holds
    what the message names (the missing answers, a deadline), JSON-ready.

    >>> reason = Reason("evidence.missing", "no evidence recorded: add one with add_evidence")
    >>> str(reason)
    'no evidence recorded: add one with add_evidence'
    >>> reason.code
    'evidence.missing'
    """

    code: str
    message: str
    data: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_data, hash=False)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (Reason, (self.code, self.message, dict(self.data)))

    def to_dict(self) -> dict[str, Any]:
        """The reason as JSON-ready values: ``{"code", "message", "data"}``."""
        return {"code": self.code, "message": self.message, "data": dict(self.data)}


@attrs.frozen
class Verdict:
    """The answer of :meth:`IncidentFlow.can`: allowed, or every reason why not.

    A verdict is truthy exactly when the command is allowed.
    """

    allowed: bool
    reasons: tuple[Reason, ...] = ()

    def __bool__(self) -> bool:
        return self.allowed


@attrs.frozen
class Outcome:
    """What :meth:`IncidentFlow.execute` did: the snapshot, and whether it was a replay.

    Attributes:
        incident: The incident's snapshot right after the command (for a
            replay, as the first run of the command left it).
        replayed: True when an earlier command with the same idempotency key
            and arguments answered and nothing new was recorded.

    """

    incident: Incident
    replayed: bool = False
