"""The facade's access checks: the policy's authorizer, and restricted incidents.

Every command asks :meth:`Access._check_access` before any guard runs: an
incident restricted to others answers IncidentNotFound (its existence is not
disclosed), then the authorizer may raise Unauthorized. Reads take a
``viewer=``: ``None`` is the trusted host itself and sees everything; a name
sees what it may read, and nothing restricted to others. An HTTP layer passes
the request's actor as the viewer on every read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Unpack

from . import _events as ev
from ._authz import can_see
from ._decide import decide, evolve
from ._flow_commands import CommandOptions, Pipeline
from ._model import Incident
from ._policy import Policy
from .commands import DEFINITIONS, Command
from .commands._access import principals
from .exceptions import IncidentNotFound

__all__ = ["Access", "DeclareOptions"]


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

    def _check_access(self, actor: str, command: str, incident: Incident | None) -> None:
        """Raise IncidentNotFound if ``actor`` may not see ``incident``, Unauthorized if not run.

        Runs before any guard: a refused command records nothing.
        """
        if incident is not None and not can_see(incident, self._principals(actor)):
            raise IncidentNotFound(incident.id)
        if self.policy.authorizer is not None:
            self.policy.authorizer.authorize(actor, command, incident)

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
