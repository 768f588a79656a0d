"""The facade's access checks: the policy's authorizer, and restricted incidents.

Every command asks :meth:`Access._check_access` before any guard runs: an
incident restricted to others answers IncidentNotFound (its existence is not
disclosed), then the authorizer may raise Unauthorized. Reads take a
``viewer=``: ``None`` is the trusted host itself and sees everything; a name
sees what it may read, and nothing restricted to others. An HTTP layer passes
the request's actor as the viewer on every read.

To an actor, an incident it may not see is no incident at all, wherever it
would show: named as another command's argument (refused as a missing one),
holding a reference (``ReferenceTaken`` without a holder), behind an
idempotency key (``IdempotencyConflict``). One write goes to it regardless:
an alert it holds, which ``ingest`` records there without naming it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Unpack

from . import _events as ev
from . import _validate as v
from ._authz import can_see
from ._decide import decide, evolve, replay
from ._flow_commands import CommandOptions, Pipeline
from ._flow_commit import seen_holder
from ._model import Incident, Reference
from ._policy import Policy
from .commands import DEFINITIONS, Command
from .commands._access import principals
from .exceptions import (
    IdempotencyConflict,
    IncidentNotFound,
    ReferenceTaken,
    Unauthorized,
    ValidationError,
)
from .stores._protocols import EventStore
from .stores._records import Commit

__all__ = ["ALERT_COMMANDS", "Access", "DeclareOptions"]

#: What ``ingest`` records of an alert on an incident its sender may not see (restricted to
#: others), when that incident holds the alert's reference: the alert goes where it belongs,
#: and the sender learns nothing of the incident.
ALERT_COMMANDS = frozenset({"add_evidence", "record_detection"})


class DeclareOptions(CommandOptions, total=False):
    """The keywords ``declare`` takes besides its arguments and every command's options.

    Attributes:
        restricted_to: Restrict the incident from its first commit to these
            actors and groups (``group:sre``); recorded as a ``Restricted``
            event right after ``Declared``, so no ordinary route hears of it.

    """

    restricted_to: list[str] | tuple[str, ...] | None


class Access(Pipeline):
    """Restricting incidents, and the checks behind every command and read."""

    policy: Policy
    store: EventStore

    def restrict(
        self, incident_id: str, to: list[str] | tuple[str, ...], **options: Unpack[CommandOptions]
    ) -> Incident:
        """Restrict the incident to the actors and groups (``group:sre``) in ``to``.

        The actor running it is added, so nobody locks themselves out. For
        everyone else the incident is gone: listings, searches, metrics and
        exports omit it, a direct ``get`` or command answers IncidentNotFound,
        and its notifications go only to routes marked ``restricted = true``.
        Needs the ``admin`` permission when the policy has an authorizer.
        """
        return self._run(DEFINITIONS["restrict"], incident_id, options, {"to": to})

    def unrestrict(self, incident_id: str, **options: Unpack[CommandOptions]) -> Incident:
        """Lift the restriction: everyone with the read permission sees the incident again."""
        return self._run(DEFINITIONS["unrestrict"], incident_id, options, {})

    def _principals(self, viewer: str) -> frozenset[str]:
        """The names ``viewer`` is seen by: itself and, through the authorizer, its groups."""
        authorizer = self.policy.authorizer
        return frozenset({viewer}) if authorizer is None else authorizer.principals(viewer)

    def _visible_to(self, viewer: str | None, read: str) -> frozenset[str] | None:
        """What a listing filters by for ``viewer`` (``None``: everything), once authorized."""
        if viewer is None:
            return None
        if self.policy.authorizer is not None:
            self.policy.authorizer.authorize(viewer, read, None)
        return self._principals(viewer)

    def _sees(self, actor: str, incident: Incident) -> bool:
        """True when ``actor`` may see ``incident``: not restricted to others."""
        return can_see(incident, self._principals(actor))

    def _seen_by(self, actor: str) -> frozenset[str] | None:
        """What ``actor`` is seen by, for the checks that take principals (``""``: the host)."""
        return self._principals(actor) if actor else None

    def _check_access(
        self,
        actor: str,
        command: str,
        incident: Incident | None,
        through: Reference | None = None,
    ) -> None:
        """Raise IncidentNotFound if ``actor`` may not see ``incident``, Unauthorized if not run.

        Runs before any guard: a refused command records nothing. ``through``
        is the alert reference ``ingest`` records an alert by: an incident
        restricted to others that holds it takes that alert (the commands of
        :data:`ALERT_COMMANDS` only), without ever being shown to ``actor``.
        """
        if incident is not None and not self._sees(actor, incident):
            if not _takes_alert(incident, command, through):
                raise IncidentNotFound(incident.id)
            self._authorize_unseen(actor, command, incident)
            return
        if self.policy.authorizer is not None:
            self.policy.authorizer.authorize(actor, command, incident)

    def _authorize_unseen(self, actor: str, command: str, incident: Incident) -> None:
        """The authorizer's answer for an incident ``actor`` may not see; a refusal names none."""
        if self.policy.authorizer is None:
            return
        try:
            self.policy.authorizer.authorize(actor, command, incident)
        except Unauthorized as exc:
            raise Unauthorized(exc.actor, exc.command, exc.permission) from None

    def _hides_reference(
        self, command: Command[Any], incident_id: str, args: dict[str, Any], actor: object
    ) -> bool:
        """True when an argument of ``command`` names an incident ``actor`` may not see.

        Anything invalid answers False: the command itself reports it, in its order.
        """
        try:
            values = command.validate(args)
            actor = v.actor(actor)
        except ValidationError:
            return False
        for argument in command.references:
            other = values[argument.name]
            if other is None or other == incident_id:
                continue
            try:
                if not self._sees(actor, self.store.load(other)):
                    return True
            except IncidentNotFound:
                continue
        return False

    def _append(self, commit: Commit, actor: str) -> None:
        """Append ``commit``; a reference another commit took meanwhile is named only if seen."""
        try:
            self.store.append(commit)
        except ReferenceTaken as exc:
            raise seen_holder(exc, self.store, self._principals(actor)) from None

    def _replayed(self, key: str, fingerprint: str, viewer: str | None = None) -> Incident | None:
        """The first result of ``key``, or ``None`` if it is new; another payload raises.

        With ``viewer``, an incident it may not see now answers IdempotencyConflict,
        as a key used by someone else does: the snapshot, even its id, stays hidden.
        """
        record = self.store.idempotency(key)
        if record is None:
            return None
        if record.fingerprint != fingerprint:
            raise IdempotencyConflict(key)
        current = self.store.load(record.incident_id)
        if viewer is not None and not self._sees(viewer, current):
            raise IdempotencyConflict(key)
        if current.version == record.version:
            return current  # nothing happened since: no need to fold the history
        history = self.store.history(record.incident_id)
        return replay(history[: record.version])

    def _declaration_values(
        self, declare: Command[Any], args: dict[str, Any], actor: str
    ) -> dict[str, Any]:
        """``declare``'s validated arguments, with ``restricted_to`` when given; access checked.

        ``restricted_to`` is no field of the ``Declared`` event (it is recorded
        as the ``Restricted`` event that follows), so it is checked here, and
        fingerprinted with the rest only when given: older keys still match.
        Restricting needs what ``restrict`` needs (``admin`` under an authorizer).
        """
        self._check_access(actor, "declare", None)
        to = args.pop("restricted_to", None)
        values = declare.validated(args)
        if to is None:
            return values
        values["restricted_to"] = principals("restricted_to", to)
        self._check_access(actor, "restrict", None)
        return values

    def _declaration(
        self,
        incident_id: str,
        declared: ev.Declared,
        values: dict[str, Any],
        now: datetime,
        actor: str,
    ) -> list[ev.EventData]:
        """The events a declaration commits: ``Declared``, then ``Restricted`` when asked.

        Both go in one commit, so the outbox is routed from the restricted
        snapshot and no ordinary route ever hears of the incident.
        """
        if not values.get("restricted_to"):
            return [declared]
        command = DEFINITIONS["restrict"]
        first = evolve(None, ev.Event(incident_id, 1, now, actor, declared))
        payload = command.payload({"to": values["restricted_to"]}, now)
        return [declared, *decide(first, command, payload, self.policy, now, actor)]

    def _shown_to(self, viewer: str | None, read: str, incident: Incident) -> Incident:
        """``incident`` if ``viewer`` may read it; else IncidentNotFound or Unauthorized."""
        if viewer is not None:
            self._check_access(viewer, read, incident)
        return incident


def _takes_alert(incident: Incident, command: str, through: Reference | None) -> bool:
    """True when ``incident`` holds the alert reference ``through`` and ``command`` records it."""
    return through is not None and command in ALERT_COMMANDS and through in incident.references
