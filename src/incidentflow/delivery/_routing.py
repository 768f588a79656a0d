"""Which notifier hears which event: every notifier everything, or by routes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from .._events import Event
from .._model import Incident, Severity
from ..exceptions import ConfigError, IncidentFlowError
from ..notifiers._base import Notifier
from ..stores import OutboxItem

__all__ = ["Route", "Router"]


def _severities(value: Iterable[Severity | str] | None) -> frozenset[Severity] | None:
    if value is None:
        return None
    from .._validate import severity

    if isinstance(value, (str, Severity)):
        value = [value]
    elif isinstance(value, bytes) or not isinstance(value, Iterable):
        raise ConfigError(
            "routes.severities",
            f"expected a severity or a list of them, e.g. ['P1', 'P2'], got {type(value).__name__}",
        )
    try:
        return frozenset(severity(v, "routes.severities") for v in value)
    except IncidentFlowError as exc:
        raise ConfigError("routes.severities", exc.message) from None


def _event_types(value: Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    from .._events import event_types

    if isinstance(value, str):
        value = [value]
    elif isinstance(value, bytes) or not isinstance(value, Iterable):
        raise ConfigError(
            "routes.events",
            f"expected an event type or a list of them, e.g. ['declared'], "
            f"got {type(value).__name__}",
        )
    types = frozenset(_event_type(v) for v in value)
    known = event_types()
    unknown = sorted(t for t in types if t not in known)
    if unknown:
        raise ConfigError(
            "routes.events",
            f"{unknown[0]!r} is not an event type; use one of {', '.join(sorted(known))}",
        )
    return types


def _event_type(value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(
            "routes.events",
            f"expected event type names (strings) such as 'declared', got {type(value).__name__}",
        )
    return value


def _check_notifier(route: object, attribute: object, value: str) -> None:
    if not isinstance(value, str):
        raise ConfigError(
            "routes.notifier", f"expected a notifier's name (a string), got {type(value).__name__}"
        )


def _check_restricted(route: object, attribute: object, value: bool) -> None:
    # A string such as "false" is truthy: taking it would open restricted incidents to the route.
    if not isinstance(value, bool):
        raise ConfigError("routes.restricted", f"expected True or False, got {value!r}")


@attrs.frozen
class Route:
    """Send matching events to one notifier.

    Attributes:
        notifier: The notifier's ``name``.
        severities: Only incidents of these severities (``None``: all).
        events: Only these event types, e.g. ``{"declared", "resolved"}`` (``None``: all).
        restricted: Whether it also carries the events of restricted incidents
            (see :meth:`IncidentFlow.restrict <incidentflow.IncidentFlow.restrict>`);
            only such routes do, and without routes nobody hears them.

    >>> Route("pager", severities={"P1"}, events={"declared"}).notifier
    'pager'

    """

    notifier: str = attrs.field(validator=_check_notifier)
    severities: frozenset[Severity] | None = attrs.field(default=None, converter=_severities)
    events: frozenset[str] | None = attrs.field(default=None, converter=_event_types)
    restricted: bool = attrs.field(default=False, kw_only=True, validator=_check_restricted)

    def matches(self, event: Event, incident: Incident) -> bool:
        """True when ``event`` on ``incident`` goes to this route's notifier."""
        restricted = bool(incident.restricted_to)
        return (self.restricted or not restricted) and self.accepts(incident.severity, event.type)

    def accepts(self, severity: Severity, event_type: str) -> bool:
        """True when an event of ``event_type`` on an incident of ``severity`` goes here."""
        return (self.severities is None or severity in self.severities) and (
            self.events is None or event_type in self.events
        )


class Router:
    """Which notifier hears which event: every notifier everything, or by routes.

    >>> from incidentflow.notifiers import CallbackNotifier
    >>> pager = CallbackNotifier(print, "pager")
    >>> router = Router([pager], [Route("pager", severities={"P1"})])
    >>> list(router.notifiers), router.routes[0].notifier
    (['pager'], 'pager')
    """

    def __init__(self, notifiers: Sequence[Notifier], routes: Sequence[Route] | None) -> None:
        names = [n.name for n in notifiers]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ConfigError(
                "notifiers", f"two notifiers are named {duplicated[0]!r}; give each its own name"
            )
        #: The notifiers by name.
        self.notifiers: dict[str, Notifier] = dict(zip(names, notifiers, strict=True))
        if routes is not None:
            if isinstance(routes, (str, bytes)) or not isinstance(routes, Iterable):
                raise ConfigError(
                    "routes", f"expected a list of Route, got {type(routes).__name__}"
                )
            routes = list(routes)
            for route in routes:
                if not isinstance(route, Route):
                    raise ConfigError("routes", f"expected Route, got {type(route).__name__}")
                if route.notifier not in self.notifiers:
                    known = ", ".join(self.notifiers) or "none"
                    raise ConfigError(
                        "routes.notifier",
                        f"no notifier is named {route.notifier!r} (notifiers: {known})",
                    )
        #: The routes, or None when every notifier hears every event.
        self.routes = None if routes is None else tuple(routes)
        # (severity, event type) -> (notifier, item id suffix) pairs: routing is decided
        # once per kind of event, not on every command.
        self._targets: dict[tuple[Severity, str, bool], tuple[tuple[str, str], ...]] = {}

    def _suffixed(
        self, severity: Severity, event_type: str, restricted: bool
    ) -> tuple[tuple[str, str], ...]:
        key = (severity, event_type, restricted)
        found = self._targets.get(key)
        if found is None:
            if self.routes is None:
                # A restricted incident is announced only through routes marked for it.
                names: Iterable[str] = () if restricted else self.notifiers
            else:
                names = dict.fromkeys(
                    r.notifier
                    for r in self.routes
                    if (r.restricted or not restricted) and r.accepts(severity, event_type)
                )
            found = tuple((name, f":{name}" if name else "") for name in names)
            self._targets[key] = found
        return found

    def carries_restricted(self, notifier: str, severity: Severity, event_type: str) -> bool:
        """True when a route marked ``restricted`` sends such an event to ``notifier``."""
        return any(name == notifier for name, _ in self._suffixed(severity, event_type, True))

    def outbox(self, events: Sequence[Event], incident: Incident) -> tuple[OutboxItem, ...]:
        """The outbox items a commit's events produce."""
        if not self.notifiers:
            return ()
        items: list[OutboxItem] = []
        for event in events:
            stem = f"{event.incident_id}:{event.seq}"
            restricted = bool(incident.restricted_to)
            for name, suffix in self._suffixed(incident.severity, event.data.TYPE, restricted):
                items.append(OutboxItem(stem + suffix, event, name))
        return tuple(items)
