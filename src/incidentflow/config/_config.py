"""The Config object: a team's settings, the IncidentFlow arguments they make, and back to TOML."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from .._policy import Policy
from .._toml import toml_shown
from .._urls import mask_password
from ..alerts import AlertRules
from ..delivery import MAX_IN_FLIGHT, RetryPolicy, Route
from ..exceptions import ConfigError
from ..notifiers._secrets import MASK, redact_url
from ._alerts import alerts_table
from ._common import flat_lists, instance, key_text, tidy, where
from ._delivery import delivery_table
from ._notifiers import SPECS, NotifierSpec
from ._routes import route_table, route_tables
from ._store import (
    DEFAULT_INCIDENTS_DIR,
    DEFAULT_KNOWLEDGE_DIR,
    configured_url,
    open_configured_store,
)
from ._web import WebTable

if TYPE_CHECKING:
    from ..notifiers._base import Notifier
    from ..stores._base import Store

__all__ = ["Config", "configuration_document", "time_zone"]

T = TypeVar("T")


def _optional_path(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value is None else Path(value)


def _notifier_specs(value: Mapping[str, NotifierSpec] | None) -> Mapping[str, NotifierSpec]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ConfigError(
            "notifiers", f"expected a mapping of name to spec, got {type(value).__name__}"
        )
    return MappingProxyType(dict(value))


def _route_tuple(value: Iterable[Route] | None) -> tuple[Route, ...] | None:
    return None if value is None else tuple(value)


def time_zone(key: str, value: object) -> None:
    """A check that ``value`` names an IANA time zone (``Europe/Paris``, ``UTC``)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    if isinstance(value, str) and value.strip() == value and value:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
        else:
            return
    if isinstance(value, str):
        near = [zone for zone in available_timezones() if zone.lower() == value.strip().lower()]
        if near:
            raise ConfigError(key, f'no time zone is named {value!r}; write "{near[0]}"')
    raise ConfigError(
        key,
        f"expected a time zone name, got {toml_shown(value)}; write an IANA name such as "
        '"Europe/Paris", "America/New_York" or "UTC" (on Windows, also pip install tzdata)',
    )


@attrs.frozen(kw_only=True)
class Config:
    """The settings of a team's incident process, as ``incidentflow.toml`` holds them.

    Build one with :func:`load_config` (from a file) or directly; every
    argument has the default an empty file gives. :meth:`flow_arguments` gives
    the keyword arguments of the :class:`~incidentflow.IncidentFlow` it
    describes (``IncidentFlow.from_config`` uses them).

    >>> config = Config(store="memory://", policy=Policy(blame_check="reject"))
    >>> arguments = config.flow_arguments(incidents_dir=None, knowledge_dir=None)
    >>> type(arguments["store"]).__name__, arguments["policy"].blame_check.value
    ('MemoryStore', 'reject')
    >>> arguments["store"].close()

    Attributes:
        store: The store URL. ``None``: ``INCIDENTFLOW_URL``, else SQLite at
            ``.agent/incidents/incidentflow.db`` in :attr:`root`.
        incidents_dir: Where incident files are written. ``None``:
            ``.agent/incidents`` in :attr:`root`.
        knowledge_dir: Where KB gotchas are written. ``None``:
            ``.agent/knowledge/gotchas`` in :attr:`root`.
        actor: Who runs commands from the command line, unless told otherwise.
        policy: The process's numbers and switches.
        retry: How failed deliveries are retried.
        deliver_inline: Deliver right after each command (else: a dispatcher does).
        delivery_lease: How long a claimed notification stays with its worker.
        max_in_flight: Deliveries a dispatcher runs at once.
        poll_interval: Seconds between a dispatcher's looks at the outbox.
        notifiers: Who hears about events, by name (the ``[notifiers.NAME]`` tables).
        routes: Who hears what; ``None``: every notifier hears every event.
        alerts: How ``flow.ingest`` turns alerts into incidents (the ``[alerts]`` table).
        display_timezone: The IANA zone the command line shows and reads times in
            when ``TZ`` is not set (``None``: the system's). Times are stored in UTC.
        source: The file this configuration was read from (``None``: the defaults).

    Raises:
        ConfigError: A value is wrong, or a route names a notifier that is not configured.

    """

    store: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(instance(str, "a store URL")),
        repr=lambda url: repr(mask_password(url) if url is not None else None),
    )
    incidents_dir: Path | None = attrs.field(default=None, converter=_optional_path)
    knowledge_dir: Path | None = attrs.field(default=None, converter=_optional_path)
    actor: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(instance(str, "a name"))
    )
    policy: Policy = attrs.field(factory=Policy, validator=instance(Policy, "a Policy"))
    retry: RetryPolicy = attrs.field(
        factory=RetryPolicy, validator=instance(RetryPolicy, "a RetryPolicy")
    )
    deliver_inline: bool = attrs.field(default=True, validator=instance(bool, "True or False"))
    delivery_lease: timedelta = attrs.field(
        default=timedelta(minutes=1), validator=instance(timedelta, "a timedelta")
    )
    max_in_flight: int = attrs.field(default=8, validator=instance(int, "a whole number"))
    poll_interval: float = attrs.field(
        default=1.0, validator=instance((int, float), "a number of seconds")
    )
    notifiers: Mapping[str, NotifierSpec] = attrs.field(factory=dict, converter=_notifier_specs)
    routes: tuple[Route, ...] | None = attrs.field(default=None, converter=_route_tuple)
    alerts: AlertRules = attrs.field(
        factory=AlertRules, validator=instance(AlertRules, "AlertRules")
    )
    #: The ``[web]`` table: the HTTP service's tokens and alert secrets (as ``env:VARIABLE``).
    web: WebTable = attrs.field(factory=WebTable, validator=instance(WebTable, "WebTable"))
    display_timezone: str | None = attrs.field(default=None)
    source: Path | None = attrs.field(default=None, converter=_optional_path)

    @display_timezone.validator
    def _check_display_timezone(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            time_zone(attribute.name, value)

    def __attrs_post_init__(self) -> None:
        if self.delivery_lease <= timedelta(0):
            raise ConfigError("delivery.lease_seconds", "expected a duration above 0")
        if not 1 <= self.max_in_flight <= MAX_IN_FLIGHT:
            raise ConfigError(
                "delivery.max_in_flight", f"expected a whole number from 1 to {MAX_IN_FLIGHT}"
            )
        if not self.poll_interval > 0:
            raise ConfigError("delivery.poll_seconds", "expected a number of seconds above 0")
        for name, spec in self.notifiers.items():
            if not isinstance(name, str) or not name.strip():
                raise ConfigError("notifiers", f"expected a non-empty notifier name, got {name!r}")
            if not isinstance(spec, tuple(SPECS.values())):
                raise ConfigError(
                    f"notifiers.{name}",
                    f"expected one of {', '.join(c.__name__ for c in SPECS.values())}, "
                    f"got {type(spec).__name__}",
                )
        for number, route in enumerate(self.routes or (), start=1):
            if not isinstance(route, Route):
                raise ConfigError(
                    f"routes[{number}]", f"expected a Route, got {type(route).__name__}"
                )
            if route.notifier not in self.notifiers:
                configured = ", ".join(sorted(self.notifiers)) or "none"
                raise ConfigError(
                    f"routes[{number}].notifier",
                    f"no notifier is named {route.notifier!r}; name one of the configured "
                    f"notifiers ({configured}) or add a "
                    f"[notifiers.{key_text([route.notifier])}] table",
                )

    @property
    def root(self) -> Path:
        """The folder that relative paths and default folders are in: the file's, else the cwd."""
        return self.source.parent if self.source is not None else Path.cwd()

    # -- the flow's arguments -------------------------------------------------

    def build_notifiers(
        self, environ: Mapping[str, str] | None = None, *, strict: bool = False
    ) -> list[Notifier]:
        """The configured notifiers, with their secrets read from ``environ`` (default: os.environ).

        A notifier whose secret's variable is not set is reported once (a
        warning through loguru) and stands in as an
        :class:`~incidentflow.notifiers.UnavailableNotifier`: commands run, and
        its notifications turn into dead letters carrying the reason. With
        ``strict``, it raises ConfigError naming the ``*_env`` key instead.
        """
        from loguru import logger

        from ..notifiers import UnavailableNotifier

        environ = os.environ if environ is None else environ
        built: list[Notifier] = []
        try:
            for name, spec in self.notifiers.items():
                try:
                    built.append(spec.build(name, environ))
                except ConfigError as exc:
                    key = key_text(["notifiers", name, "\x00" + exc.key])
                    error = ConfigError(where(self._source_text, key), exc.message)
                    if strict:
                        raise error from None
                    logger.warning("notifier {} is unavailable: {}", name, error)
                    built.append(UnavailableNotifier(name, str(error)))
        except BaseException:
            for notifier in built:
                notifier.close()
            raise
        return built

    def store_url(self, *, masked: bool = False) -> str | None:
        """The store URL :meth:`flow_arguments` opens, without overrides.

        ``INCIDENTFLOW_URL`` if set, else :attr:`store`, else the embedded
        SQLite default in :attr:`root` (``None`` when there is no file either:
        :func:`~incidentflow.stores.open_store`'s own default).
        """
        root = self.root if self.source is not None else None
        url = configured_url(self.store, root)
        return mask_password(url) if masked and url is not None else url

    def flow_arguments(self, **overrides: Any) -> dict[str, Any]:
        """The keyword arguments of the :class:`~incidentflow.IncidentFlow` this describes.

        ``IncidentFlow(**config.flow_arguments())`` is the configured flow. The
        result holds ``store`` (opened here, unless a Store was given),
        ``policy``, ``retry``, ``deliver_inline``, ``delivery_lease``,
        ``alert_rules``, ``incidents_dir``, ``knowledge_dir``, ``notifiers`` (built, their
        secrets read from the environment) and ``routes``, plus every other
        keyword given (``clock=``, ...).

        Each keyword given wins over the configuration (``store=`` takes a URL
        or a Store; ``incidents_dir=None`` writes no incident files). Giving
        ``notifiers=`` replaces the configured notifiers, and then the
        configured routes too unless ``routes=`` is given. The store is, in
        order: ``store=``, ``INCIDENTFLOW_URL``, :attr:`store`, SQLite at
        ``.agent/incidents/incidentflow.db`` in :attr:`root`.

        The notifiers are built before the store is opened, so a missing
        secret opens nothing; if the store cannot be opened, the notifiers
        built are closed. The caller owns what it gets; :meth:`open_with`
        also closes it when the flow cannot be built.

        Raises:
            ConfigError: A secret's variable is unset, or the store URL is wrong
                (keyed by where it came from: ``store``, ``INCIDENTFLOW_URL`` or
                ``<file>: store``).

        """
        from ..stores._base import Store

        given = overrides.pop("store", None)
        arguments: dict[str, Any] = {
            "policy": self.policy,
            "retry": self.retry,
            "deliver_inline": self.deliver_inline,
            "delivery_lease": self.delivery_lease,
            "alert_rules": self.alerts,
            "incidents_dir": self._folder(self.incidents_dir, DEFAULT_INCIDENTS_DIR),
            "knowledge_dir": self._folder(self.knowledge_dir, DEFAULT_KNOWLEDGE_DIR),
        }
        built: list[Notifier] = []
        if "notifiers" in overrides:
            arguments["routes"] = None
        else:
            built = self.build_notifiers()
            arguments["notifiers"] = built
            arguments["routes"] = self.routes
        arguments.update(overrides)
        if isinstance(given, Store):
            return {"store": given, **arguments}
        try:
            root = self.root if self.source is not None else None
            store = open_configured_store(given, self.store, root, self._source_text)
        except BaseException:
            for notifier in built:
                notifier.close()
            raise
        return {"store": store, **arguments}

    def open_with(self, factory: Callable[..., T], /, **overrides: Any) -> T:
        """``factory(**self.flow_arguments(**overrides))``, closing what was opened if it raises.

        ``IncidentFlow.from_config`` is ``load_config(path).open_with(IncidentFlow, ...)``:
        when the flow cannot be built, the store opened here and the notifiers
        built here are closed (a store or notifiers given are left open).
        """
        arguments = self.flow_arguments(**overrides)
        try:
            return factory(**arguments)
        except BaseException:
            if arguments["store"] is not overrides.get("store"):
                store: Store = arguments["store"]
                store.close()
            if "notifiers" not in overrides:
                for notifier in arguments["notifiers"]:
                    notifier.close()
            raise

    def _folder(self, value: Path | None, default: Path) -> Path:
        folder = value if value is not None else default
        return self.source.parent / folder if self.source is not None else folder

    @property
    def _source_text(self) -> str | None:
        return None if self.source is None else str(self.source)

    # -- writing it back ------------------------------------------------------

    def to_toml(self, *, masked: bool = True) -> str:
        """The configuration as a TOML document that :func:`load_config` reads back.

        With ``masked`` (the default), what might be a credential is hidden: a
        password in the store URL and the path and query of a literal webhook
        URL. Secrets themselves are never held, only the names of the
        environment variables that hold them.
        """
        import tomli_w

        document = configuration_document(self, masked=masked)
        routes = document.pop("routes", None)
        if routes == []:
            document = {"routes": [], **document}
        text = flat_lists(tomli_w.dumps(document))
        if routes:
            text += "\n" + route_tables(routes)
        return text


def configuration_document(config: Config, *, masked: bool) -> dict[str, Any]:
    """The configuration as the tables and values of its TOML file."""
    document: dict[str, Any] = {}
    if config.store is not None:
        document["store"] = mask_password(config.store) if masked else config.store
    for key in ("incidents_dir", "knowledge_dir"):
        value = getattr(config, key)
        if value is not None:
            document[key] = str(value)
    if config.actor is not None:
        document["actor"] = config.actor
    if config.display_timezone is not None:
        document["display_timezone"] = config.display_timezone
    if config.routes is not None:
        document["routes"] = [route_table(route) for route in config.routes]
    document["policy"] = config.policy.to_dict()
    document["delivery"] = delivery_table(
        inline=config.deliver_inline,
        lease=config.delivery_lease,
        retry=config.retry,
        max_in_flight=config.max_in_flight,
        poll_interval=config.poll_interval,
    )
    alerts = alerts_table(config.alerts)
    if alerts:
        document["alerts"] = alerts
    if config.notifiers:
        document["notifiers"] = {
            name: _spec_table(spec, masked) for name, spec in config.notifiers.items()
        }
    return document


def _spec_table(spec: NotifierSpec, masked: bool) -> dict[str, Any]:
    table: dict[str, Any] = {"type": spec.TYPE}
    for field in attrs.fields(type(spec)):
        value = getattr(spec, field.name)
        if value is None or (isinstance(value, Mapping) and not value):
            continue
        if masked and isinstance(value, str) and _URL.match(value):
            # The receiver's own URL is the credential: all but its host is hidden.
            value = redact_url(value) if field.name == "url" else _masked_link(value)
        if isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        table[field.name] = tidy(value)
    return table


#: ``scheme://`` at the start: the value is a URL, shown masked.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
#: A query (or fragment) parameter carrying a credential: ?password=, ?token=, ?api_key=, ?sig=.
_CREDENTIAL = re.compile(
    r"([?&;#][^=&#;]*(?:pass|pwd|secret|token|key|sig|auth|credential)[^=&#;]*=)([^&#;]*)",
    re.IGNORECASE,
)


def _masked_link(url: str) -> str:
    """A link (``incident_url``) with its user info and credential parameters masked.

    The rest stays readable, ``{id}`` included, so that the template can be checked.

    >>> _masked_link("https://ops:pw@ops.example.com/incidents/{id}?password=pw&view=full")
    'https://***@ops.example.com/incidents/{id}?password=***&view=full'
    >>> _masked_link("https://ops.example.com/incidents/{slug}?api_key=k1#access_token=t")
    'https://ops.example.com/incidents/{slug}?api_key=***#access_token=***'
    """
    scheme = _URL.match(url)
    start = scheme.end() if scheme is not None else 0
    end = min((i for i in (url.find("?", start), url.find("#", start)) if i >= 0), default=len(url))
    at = url.rfind("@", start, end)  # the last: a password may hold an unencoded @ or /
    if at >= 0:
        url = url[:start] + MASK + url[at:]
    return _CREDENTIAL.sub(lambda found: found[1] + MASK, url)
