"""``[[routes]]``: who hears what. One table class, read for the file and for routes_from_toml."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from .._events import event_types
from .._toml import SEVERITY_NAMES, loads_toml, read_toml, toml_shown
from ..delivery import Route
from ..exceptions import ConfigError
from ._common import each, flat_lists, line, meta, rekey, severity_name, validated, where
from ._structure import structure

__all__ = ["ROUTES_ACCEPT", "RouteTable", "route_table", "route_tables", "routes_from_toml"]

#: What ``routes`` accepts, as errors and the reference page say it.
ROUTES_ACCEPT = "[[routes]] tables with notifier, severities, events and restricted"


def _event_type(key: str, value: str) -> None:
    known = event_types()
    if value not in known:
        raise ConfigError(
            key, f"expected an event type ({', '.join(sorted(known))}), got {toml_shown(value)}"
        )


@attrs.frozen(kw_only=True)
class RouteTable:
    """One ``[[routes]]`` table, as written: checked, not yet a :class:`Route`."""

    notifier: str = attrs.field(
        validator=validated(line("a notifier's name")),
        metadata=meta(
            "The notifier that hears the matching events.", "the name of a [notifiers.NAME] table"
        ),
    )
    severities: list[str] | None = attrs.field(
        default=None,
        validator=each(severity_name),
        metadata=meta(
            "Only incidents of these severities (default: all).",
            f"a list of severities ({SEVERITY_NAMES})",
        ),
    )
    events: list[str] | None = attrs.field(
        default=None,
        validator=each(_event_type),
        metadata=meta(
            "Only these event types (default: all).",
            'a list of event types, e.g. ["declared", "resolved"]',
        ),
    )
    restricted: bool = attrs.field(
        default=False,
        metadata=meta(
            "Also announce restricted incidents here (only such routes hear them).",
            "true or false",
        ),
    )

    @staticmethod
    def routes(
        tables: Iterable[RouteTable], source: str | None, prefix: Sequence[str] = ()
    ) -> list[Route]:
        """The routes ``tables`` describe; ConfigError keyed ``<source>: routes[N].<key>``."""
        routes = []
        for number, table in enumerate(tables, start=1):
            try:
                routes.append(
                    Route(
                        table.notifier,
                        table.severities,
                        table.events,
                        restricted=table.restricted,
                    )
                )
            except ConfigError as exc:  # a check of Route's that the table did not make
                key = f"routes[{number}].{exc.key.rpartition('.')[2]}"
                raise rekey(exc, where(source, ".".join(prefix), key)) from None
        return routes


@attrs.frozen(kw_only=True)
class _RoutesOnly:
    """The ``[[routes]]`` of a file that may hold anything else too."""

    routes: list[RouteTable] = attrs.field(factory=list, metadata=meta("", ROUTES_ACCEPT))


def routes_from_toml(source: str | os.PathLike[str], *, text: str | None = None) -> list[Route]:
    """Routes from the ``[[routes]]`` tables of a TOML file (or of ``text``).

    Other keys of the file are left alone, so this reads the routes of an
    ``incidentflow.toml``; a file without ``[[routes]]`` gives ``[]``. A wrong
    table raises ConfigError keyed ``"<source>: routes[N].<key>"``.

    >>> routes_from_toml("inline", text='''
    ... [[routes]]
    ... notifier = "pager"
    ... severities = ["P1"]
    ... events = ["declared", "deadline_breached"]
    ... ''')[0].notifier
    'pager'
    """
    name = str(source)
    data = read_toml(Path(source)) if text is None else loads_toml(text, name)
    if "routes" not in data:
        return []
    tables = structure({"routes": data["routes"]}, _RoutesOnly, name).routes
    return RouteTable.routes(tables, name)


def route_table(route: Route) -> dict[str, Any]:
    """``route`` as a ``[[routes]]`` table."""
    table: dict[str, Any] = {"notifier": route.notifier}
    if route.severities is not None:
        table["severities"] = sorted(s.value for s in route.severities)
    if route.events is not None:
        table["events"] = sorted(route.events)
    if route.restricted:
        table["restricted"] = True
    return table


def route_tables(routes: Sequence[Mapping[str, Any]]) -> str:
    """``[[routes]]`` tables as TOML text, short lists on one line."""
    import tomli_w

    return "\n".join("[[routes]]\n" + flat_lists(tomli_w.dumps(dict(r))) for r in routes)
