"""Every error incidentflow raises.

The tree::

    IncidentFlowError                 catch this to catch the library as a whole
    ├── ValidationError               bad input; ``.field`` names it
    ├── InvalidTransition             command not allowed in this state; ``.allowed_states``
    ├── TransitionRejected            guards unmet; ``.reasons`` lists every one
    ├── IncidentNotFound              no incident with that id
    ├── DuplicateIncident             an incident with that id already exists
    ├── ConcurrencyConflict           the incident changed since the version you decided on
    ├── IdempotencyConflict           an idempotency key reused with another payload
    ├── StoreError                    the storage backend failed; the original is ``__cause__``
    ├── ConfigError                   a policy or configuration value is wrong; ``.key`` names it
    ├── DeliveryError                 a notifier could not deliver; ``.retryable``, ``.status``
    └── Unauthorized                  the actor may not run this command

Every message names the incident, field or state involved and says what would
make the call succeed.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ConcurrencyConflict",
    "ConfigError",
    "DeliveryError",
    "DuplicateIncident",
    "IdempotencyConflict",
    "IncidentFlowError",
    "IncidentNotFound",
    "InvalidTransition",
    "StoreError",
    "TransitionRejected",
    "Unauthorized",
    "ValidationError",
]


class IncidentFlowError(Exception):
    """Root of every error raised by incidentflow."""


class ValidationError(IncidentFlowError, ValueError):
    """An input value is not acceptable.

    Attributes:
        field: The name of the offending argument or field.

    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class InvalidTransition(IncidentFlowError):
    """The command is not allowed in the incident's current state.

    Attributes:
        incident_id: The incident the command was aimed at.
        command: The command that was refused.
        state: The state the incident is in.
        allowed_states: The states in which the command is allowed.

    """

    def __init__(
        self, incident_id: str, command: str, state: str, allowed_states: Iterable[str]
    ) -> None:
        self.incident_id = incident_id
        self.command = command
        self.state = state
        self.allowed_states = tuple(allowed_states)
        allowed = ", ".join(self.allowed_states) or "no state"
        super().__init__(
            f"{incident_id}: cannot {command} while the incident is {state}; "
            f"{command} is allowed only when it is {allowed}"
        )


class TransitionRejected(IncidentFlowError):
    """The command is allowed in this state, but its guards are not met.

    Attributes:
        incident_id: The incident the command was aimed at.
        command: The command that was refused.
        reasons: Every unmet requirement, in plain language.

    """

    def __init__(self, incident_id: str, command: str, reasons: Iterable[str]) -> None:
        self.incident_id = incident_id
        self.command = command
        self.reasons = tuple(reasons)
        listed = "; ".join(self.reasons)
        super().__init__(f"{incident_id}: cannot {command} yet: {listed}")


class IncidentNotFound(IncidentFlowError, LookupError):
    """No incident has the given id."""

    def __init__(self, incident_id: str) -> None:
        self.incident_id = incident_id
        super().__init__(
            f"no incident with id {incident_id!r}; list incidents with flow.list() to find its id"
        )


class DuplicateIncident(IncidentFlowError):
    """An incident with this id already exists."""

    def __init__(self, incident_id: str) -> None:
        self.incident_id = incident_id
        super().__init__(
            f"an incident with id {incident_id!r} already exists; "
            "choose another slug or leave slug unset to get a free one"
        )


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
        super().__init__(f"{notifier} could not deliver {notification_id}: {message}")


class Unauthorized(IncidentFlowError):
    """The actor is not allowed to run this command."""
