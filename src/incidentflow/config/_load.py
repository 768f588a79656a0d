"""load_config: the file found, read table by table into a :class:`Config`."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ..exceptions import ConfigError
from ._alerts import ALERTS_ACCEPT, AlertsTable, SeverityRuleTable
from ._common import line, meta, rekey, validated, where
from ._config import Config, time_zone
from ._delivery import DeliveryTable
from ._files import locate
from ._notifiers import SPECS, TYPES, NotifierSpec
from ._policy_table import POLICY_KEYS, policy_from_table
from ._routes import ROUTES_ACCEPT, RouteTable
from ._store import anchor_path, anchor_store, check_store_url
from ._structure import accepted_keys, structure
from ._web import WEB_ACCEPT, WebTable

__all__ = ["FileTable", "load_config"]


@attrs.frozen(kw_only=True)
class FileTable:
    """The whole file (or ``[tool.incidentflow]``), as written."""

    store: str | None = attrs.field(
        default=None,
        validator=validated(check_store_url),
        metadata=meta(
            "Where incidents are stored; INCIDENTFLOW_URL wins over it. Default: SQLite at "
            ".agent/incidents/incidentflow.db in this file's folder.",
            "a store URL: sqlite:///PATH, file://DIR, postgresql://HOST/DB or memory://",
        ),
    )
    incidents_dir: str | None = attrs.field(
        default=None,
        validator=validated(line("a folder")),
        metadata=meta(
            "Where the incident files people read are written.",
            "a folder, relative to this file's folder or absolute",
        ),
    )
    knowledge_dir: str | None = attrs.field(
        default=None,
        validator=validated(line("a folder")),
        metadata=meta(
            "Where knowledge-base gotchas are written.",
            "a folder, relative to this file's folder or absolute",
        ),
    )
    actor: str | None = attrs.field(
        default=None,
        validator=validated(line("a name")),
        metadata=meta(
            "Who runs commands from the command line, unless --actor or INCIDENTFLOW_ACTOR say.",
            "a name",
        ),
    )
    display_timezone: str | None = attrs.field(
        default=None,
        validator=validated(time_zone),
        metadata=meta(
            "The zone the command line shows and reads times in when TZ is not set; "
            "times are stored in UTC. Default: the system's.",
            'an IANA time zone name, e.g. "Europe/Paris" or "UTC"',
        ),
    )
    # Read by Policy.from_dict, from the forms the Policy declares for its fields.
    policy: dict[str, Any] = attrs.field(
        factory=dict,
        metadata=meta("The process's numbers and switches.", "a table"),
    )
    delivery: DeliveryTable = attrs.field(
        factory=DeliveryTable,
        metadata=meta("How notifications are delivered and retried.", "a table"),
    )
    notifiers: dict[str, NotifierSpec] = attrs.field(
        factory=dict,
        metadata=meta(
            "Who hears about events: one [notifiers.NAME] table each.",
            f"a table of [notifiers.NAME] tables, each with type = one of {TYPES}",
        ),
    )
    routes: list[RouteTable] | None = attrs.field(
        default=None,
        metadata=meta(
            "Who hears what: without [[routes]], every notifier hears every event.", ROUTES_ACCEPT
        ),
    )
    alerts: AlertsTable = attrs.field(
        factory=AlertsTable,
        metadata=meta("How ingested alerts become incidents (flow.ingest).", ALERTS_ACCEPT),
    )
    web: WebTable = attrs.field(
        factory=WebTable,
        metadata=meta("Who may call the HTTP service (incidentflow serve).", WEB_ACCEPT),
    )
    # Read by Access.from_mapping: roles, groups and hashed tokens become the policy's authorizer.
    access: dict[str, Any] = attrs.field(
        factory=dict,
        metadata=meta(
            "Who may read, respond, command or administer (roles, groups, hashed tokens).",
            "a table with default, [access.groups] and [[access.roles]]",
        ),
    )


@functools.cache
def _elsewhere() -> Mapping[str, str]:
    """Each key of a table below the top level → the table it belongs in (the first, if several)."""
    homes: dict[str, str] = dict.fromkeys(POLICY_KEYS, "[policy]")
    tables: list[tuple[type, str]] = [
        (DeliveryTable, "[delivery]"),
        (RouteTable, "a [[routes]] table"),
        (AlertsTable, "[alerts]"),
        (SeverityRuleTable, "an [[alerts.severity]] table"),
        (WebTable, "[web]"),
        *((spec, f'a [notifiers.NAME] table with type = "{spec.TYPE}"') for spec in SPECS.values()),
    ]
    for table, label in tables:
        for key in accepted_keys(table):
            if key != "type":
                homes.setdefault(key, label)
    return MappingProxyType(homes)


def load_config(
    path: str | os.PathLike[str] | None = None, *, start: str | os.PathLike[str] | None = None
) -> Config:
    """The configuration in ``path``, or the one found for the current folder.

    With ``path``: that file; a ``pyproject.toml`` is read for its
    ``[tool.incidentflow]`` table, any other file as a whole. Without it: the
    file named by ``INCIDENTFLOW_CONFIG``, else the nearest ``incidentflow.toml``
    or ``pyproject.toml`` with a ``[tool.incidentflow]`` table, looking in
    ``start`` (default: the current folder) and then each parent folder up to
    the root; in one folder ``incidentflow.toml`` wins. Without any file, the
    defaults: ``Config()``.

    Relative paths in the file (``incidents_dir``, ``knowledge_dir``, a
    ``sqlite:///`` or ``file://`` store) are relative to the file's folder.

    Raises:
        ConfigError: The file is missing, unreadable or not TOML (the message
            has the line), or a key is unknown or its value wrong (the key is
            ``"<file>: <dotted.key>"``, the message says what is accepted).

    """
    located = locate(path, start)
    if located is None:
        return Config()
    source, name, prefix, data = located
    table = structure(data, FileTable, name, prefix, _elsewhere())
    folder = source.parent
    settings: dict[str, Any] = {
        "store": None if table.store is None else anchor_store(table.store, folder),
        "incidents_dir": None
        if table.incidents_dir is None
        else anchor_path(table.incidents_dir, folder),
        "knowledge_dir": None
        if table.knowledge_dir is None
        else anchor_path(table.knowledge_dir, folder),
        "actor": table.actor,
        "display_timezone": table.display_timezone,
        "notifiers": table.notifiers,
        "source": source,
        "policy": policy_from_table(table.policy, name, (*prefix, "policy"), _elsewhere()),
    }
    within = ".".join(prefix)
    try:
        settings.update(table.delivery.settings())
    except ConfigError as exc:
        key = exc.key.removeprefix("retry.")
        raise rekey(exc, where(name, within, "delivery", key)) from None
    if table.routes is not None:
        settings["routes"] = RouteTable.routes(table.routes, name, prefix)
    settings["alerts"] = table.alerts.rules(name, prefix)
    settings["web"] = table.web
    if table.access:
        from .._authz import Access

        try:
            access = Access.from_mapping(table.access)
        except ConfigError as exc:
            raise rekey(exc, where(name, within, exc.key)) from None
        settings["policy"] = attrs.evolve(settings["policy"], authorizer=access)
    try:
        return Config(**settings)
    except ConfigError as exc:
        raise rekey(exc, where(name, within, exc.key)) from None
