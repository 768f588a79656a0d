"""Every error incidentflow raises.

The tree::

    IncidentFlowError                 catch this to catch the library as a whole
    ├── ValidationError               bad input; ``.field`` names it
    ├── InvalidTransition             command not allowed in this state; ``.allowed_states``
    ├── TransitionRejected            guards unmet; ``.reasons`` lists every one
    ├── IncidentNotFound              no incident with that id
    ├── DuplicateIncident             an incident with that id already exists
    ├── ReferenceTaken                another open incident holds that external reference
    ├── ConcurrencyConflict           the incident changed since the version you decided on
    ├── IdempotencyConflict           an idempotency key reused with another payload
    ├── StoreError                    the storage backend failed; the original is ``__cause__``
    ├── ConfigError                   a policy or configuration value is wrong; ``.key`` names it
    ├── Unauthorized                  the authorizer refused; ``.actor``, ``.command``
    └── DeliveryError                 a notifier could not deliver; ``.retryable``, ``.status``

Every message names the incident, field or state involved and says what would
make the call succeed. ``str(error)`` is the whole sentence; ``error.message``
is the bare message without the field or incident in front, so no caller has
to split the text. Errors pickle and compare equal to their unpickled copy, so
they cross process boundaries (a dispatcher process, a task queue) intact.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from typing import Any

if typing.TYPE_CHECKING:
    from ._reasons import Reason

__all__ = [
    "ConcurrencyConflict",
    "ConfigError",
    "DeliveryError",
    "DuplicateIncident",
    "IdempotencyConflict",
    "IncidentFlowError",
    "IncidentNotFound",
    "InvalidTransition",
    "ReferenceTaken",
    "StoreError",
    "TransitionRejected",
    "Unauthorized",
    "ValidationError",
]


def _rebuild(cls: type[IncidentFlowError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class IncidentFlowError(Exception):
    """Root of every error raised by incidentflow.

    Attributes:
        message: The message without the field, key or incident in front of it.

    """

    message: str

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        if "message" not in self.__dict__:
            self.message = str(args[0]) if args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("__")}
        return (_rebuild, (type(self), self.args, state))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, IncidentFlowError)
        return self.args == other.args and _public(self) == _public(other)

    def __hash__(self) -> int:
        return hash((type(self), self.args))


def _public(error: IncidentFlowError) -> dict[str, Any]:
    return {k: v for k, v in error.__dict__.items() if not k.startswith("_")}


class ValidationError(IncidentFlowError, ValueError):
    """An input value is not acceptable.

    Attributes:
        field: The name of the offending argument or field.

    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class InvalidTransition(IncidentFlowError):
    """The command is not allowed in the incident's current state.

    Attributes:
        incident_id: The incident the command was aimed at.
        command: The command that was refused.
        state: The state the incident is in.
        allowed_states: The states in which the command is allowed.
        known_commands: For a command that does not exist, every command there is.

    """

    def __init__(
        self,
        incident_id: str,
        command: str,
        state: str,
        allowed_states: Iterable[str],
        *,
        known_commands: Iterable[str] = (),
    ) -> None:
        self.incident_id = incident_id
        self.command = command
        self.state = state
        self.allowed_states = tuple(allowed_states)
        self.known_commands = tuple(known_commands)
        if self.known_commands:
            self.message = (
                f"{command!r} is not a command; use one of {', '.join(self.known_commands)}"
            )
            super().__init__(self.message)
            return
        self.message = (
            f"cannot {command} while the incident is {state}; {command} is allowed only "
            f"when it is {_either(self.allowed_states)}"
        )
        super().__init__(f"{incident_id}: {self.message}")

    @classmethod
    def unknown_command(cls, command: object, known: Iterable[str]) -> InvalidTransition:
        """The error for a command name that does not exist."""
        shown = command if isinstance(command, str) else repr(command)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return cls("", shown, "", (), known_commands=known)


class TransitionRejected(IncidentFlowError):
    """The command is allowed in this state, but its guards are not met.

    Attributes:
        incident_id: The incident the command was aimed at.
        command: The command that was refused.
        reasons: Every unmet requirement, as :class:`~incidentflow.Reason` objects
            with a stable ``code``; ``str(reason)`` is its sentence.

    """

    def __init__(self, incident_id: str, command: str, reasons: Iterable[Reason]) -> None:
        self.incident_id = incident_id
        self.command = command
        self.reasons: tuple[Reason, ...] = tuple(reasons)
        self.message = f"cannot {command} yet: " + "; ".join(str(r) for r in self.reasons)
        super().__init__(f"{incident_id}: {self.message}")

    @property
    def codes(self) -> tuple[str, ...]:
        """The codes of the unmet requirements, in order."""
        return tuple(r.code for r in self.reasons)


class IncidentNotFound(IncidentFlowError, LookupError):
    """No incident has the given id."""

    def __init__(self, incident_id: str) -> None:
        self.incident_id = incident_id
        super().__init__(
            f"no incident with id {incident_id!r}; list incidents with flow.list() to find its id"
        )
        self.message = str(self)


class DuplicateIncident(IncidentFlowError):
    """An incident with this id already exists."""

    def __init__(self, incident_id: str) -> None:
        self.incident_id = incident_id
        super().__init__(
            f"an incident with id {incident_id!r} already exists; "
            "choose another slug or leave slug unset to get a free one"
        )


class ReferenceTaken(IncidentFlowError):
    """An external reference is held by another open incident.

    A reference (an alert fingerprint, a ticket) is unique per kind among open
    incidents, so that ``flow.find`` has one answer.

    Attributes:
        kind: The reference's kind, e.g. ``"alert"``.
        value: Its value.
        holder: The open incident that holds it, or ``None`` when its id is not
            disclosed: an incident restricted to others is named only to those
            who may see it.

    """

    def __init__(self, kind: str, value: str, holder: str | None) -> None:
        self.kind = kind
        self.value = value
        self.holder = holder
        if holder is None:
            super().__init__(
                f"the {kind} reference {value!r} belongs to another open incident; use "
                f"another {kind} reference, or ask whoever works on that incident to "
                "detach it there first"
            )
            return
        super().__init__(
            f"the {kind} reference {value!r} belongs to the open incident {holder}; "
            f"work on {holder} (flow.find gives it), or detach the reference there first"
        )


class Unauthorized(IncidentFlowError, PermissionError):
    """The policy's authorizer refused the actor this command (or read).

    Raised before any guard runs, so nothing is recorded. An incident the
    actor may not see answers :class:`IncidentNotFound` instead: its existence
    is not disclosed.

    Attributes:
        actor: Who asked (``""`` when nobody was named).
        command: The command (or read: ``"get"``, ``"list"``) refused.
        permission: The permission it needs (``read``, ``respond``, ``command``, ``admin``).
        incident_id: The incident it was run on, if any.

    """

    def __init__(
        self, actor: str, command: str, permission: str = "", incident_id: str | None = None
    ) -> None:
        self.actor = actor
        self.command = command
        self.permission = permission
        self.incident_id = incident_id
        who = repr(actor) if actor else "an anonymous caller"
        needs = f" (it needs the {permission} permission)" if permission else ""
        on = f" on {incident_id}" if incident_id else ""
        super().__init__(
            f"{who} may not run {command}{on}{needs}; grant a role with that permission "
            "in [access] of the configuration, or run it as someone who has one"
        )
        self.message = str(self)


class ConcurrencyConflict(IncidentFlowError):
    """The incident changed since the version the command was decided on.

    Reload the incident and run the command again.
    """

    def __init__(self, incident_id: str, expected: int, actual: int) -> None:
        self.incident_id = incident_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{incident_id}: expected version {expected} but the incident is at version "
            f"{actual}; reload it and retry the command"
        )


class IdempotencyConflict(IncidentFlowError):
    """An idempotency key was reused for a different command or payload."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"idempotency key {key!r} was already used for a different command or payload; "
            "use a new key for a new command"
        )


class StoreError(IncidentFlowError):
    """The storage backend failed. The driver's exception is ``__cause__``."""


class ConfigError(IncidentFlowError):
    """A configuration or policy value is wrong.

    Attributes:
        key: The configuration key at fault.

    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


class DeliveryError(IncidentFlowError):
    """A notifier could not deliver a notification.

    The delivery engine retries a retryable failure later and dead-letters one
    that is not. The message names the notifier, the notification and what
    went wrong; it never holds a secret (credentials in URLs, passwords,
    signing secrets are masked), and the driver's exception is not chained as
    ``__cause__`` because its traceback carries them.

    >>> error = DeliveryError("paging", "INC-2026-11-27-db:3", "answered 503", retryable=True)
    >>> str(error), error.retryable
    ('paging could not deliver INC-2026-11-27-db:3: answered 503', True)

    Attributes:
        notifier: The name of the notifier that failed.
        notification_id: The notification it could not deliver.
        retryable: True when a later attempt may succeed (timeouts, refused
            connections, HTTP 5xx, 408 and 429, SMTP 4xx); False when only a
            change of configuration will help (other HTTP 4xx, a redirect, a
            rejected sender, wrong credentials, an untrusted certificate).
        status: The HTTP status or SMTP reply code, when the receiver answered.
        retry_after: Seconds the receiver asked to wait before the next attempt
            (HTTP ``Retry-After``), when it said.

    """

    def __init__(
        self,
        notifier: str,
        notification_id: str,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.notifier = notifier
        self.notification_id = notification_id
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.message = message
        super().__init__(f"{notifier} could not deliver {notification_id}: {message}")


def _either(states: tuple[str, ...]) -> str:
    """``"resolved or postmortem"``, ``"a, b or c"``: a list as a person says it."""
    if not states:
        return "in no state"
    if len(states) == 1:
        return states[0]
    return ", ".join(states[:-1]) + " or " + states[-1]
