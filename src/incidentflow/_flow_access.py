"""The facade's access checks: the policy's authorizer, and restricted incidents.

Every command asks :meth:`Access._check_access` before any guard runs: an
incident restricted to others answers IncidentNotFound (its existence is not
disclosed), then the authorizer may raise Unauthorized. Reads take a
``viewer=``: ``None`` is the trusted host itself and sees everything; a name
sees what it may read, and nothing restricted to others. An HTTP layer passes
the request's actor as the viewer on every read.
"""

from __future__ import annotations

import abc
from typing import Any, Unpack

from ._authz import can_see
from ._flow_commands import CommandOptions
from ._model import Incident
from ._policy import Policy
from .commands import DEFINITIONS, Command
from .exceptions import IncidentNotFound

__all__ = ["Access"]


class Access(abc.ABC):
    """Restricting incidents, and the checks behind every command and read."""

    policy: Policy

    @abc.abstractmethod
    def _run(
        self,
        command: Command[Any],
        incident_id: str,
        options: CommandOptions,
        args: dict[str, Any],
    ) -> Incident:
        """Validate, decide, commit and announce one command."""

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

    def _shown_to(self, viewer: str | None, read: str, incident: Incident) -> Incident:
        """``incident`` if ``viewer`` may read it; else IncidentNotFound or Unauthorized."""
        if viewer is not None:
            self._check_access(viewer, read, incident)
        return incident
