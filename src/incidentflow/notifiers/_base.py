"""The notifier contract and the notification it receives."""

from __future__ import annotations

import abc
from typing import Self

import attrs

from .._events import Event
from .._model import Incident
from ..exceptions import DeliveryError

__all__ = ["DeliveryError", "Notification", "Notifier"]


@attrs.frozen
class Notification:
    """One committed event, announced.

    Attributes:
        id: Stable id (``<incident id>:<seq>``); receivers drop duplicates by it.
        event: The committed event.
        incident: The incident right after ``event`` (its ``version`` is the
            event's ``seq``), however late the notification is delivered:
            never anything recorded after the event.

    """

    id: str
    event: Event
    incident: Incident


class Notifier(abc.ABC):
    """Something that hears about committed events.

    Implement :meth:`notify`. It runs after the command has committed: an
    exception it raises is logged and never fails or undoes the command.
    """

    #: Name used in logs and routing rules.
    name: str = "notifier"

    @abc.abstractmethod
    def notify(self, notification: Notification) -> None:
        """Announce one committed event."""

    def close(self) -> None:  # noqa: B027 - optional for notifiers without resources
        """Release connections."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
