"""open_store: a store from a URL, by scheme.

URL forms:

=======================================  ===============================================
``memory://``                            :class:`~incidentflow.stores.MemoryStore`
``sqlite:///relative/path.db``           :class:`~incidentflow.stores.SQLiteStore`; three
                                         slashes then the path, relative to the current folder
``sqlite:////absolute/path.db``          four slashes: an absolute path
``sqlite:///path.db?synchronous=NORMAL`` trade durability on power loss for speed
``file://relative/dir``                  :class:`~incidentflow.stores.JsonlStore` in that folder
``file:///absolute/dir``                 three slashes: an absolute folder
``postgresql://user@host/db``            ``PostgresStore`` (extra ``incidentflow[postgres]``)
``<scheme>://...``                       a store registered under the entry-point group
                                         ``incidentflow.stores`` by another package
=======================================  ===============================================

Paths are percent-decoded (``%20`` for a space). With no URL, the
``INCIDENTFLOW_URL`` environment variable is used, and without it the embedded
default, SQLite at ``.agent/incidents/incidentflow.db`` under the current folder.

A third-party store registers itself in its ``pyproject.toml``::

    [project.entry-points."incidentflow.stores"]
    redis = "my_package.store:open_redis_store"   # a callable taking the URL
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, unquote

from .._urls import mask_password
from ..exceptions import ConfigError
from ._base import Store

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["DEFAULT_PATH", "ENTRY_POINT_GROUP", "ENVIRONMENT_VARIABLE", "open_store"]

#: Where ``open_store(None)`` keeps incidents when ``INCIDENTFLOW_URL`` is unset.
DEFAULT_PATH = Path(".agent") / "incidents" / "incidentflow.db"
#: The environment variable holding the store URL.
ENVIRONMENT_VARIABLE = "INCIDENTFLOW_URL"
#: The entry-point group third-party stores register under.
ENTRY_POINT_GROUP = "incidentflow.stores"


def open_store(url: str | None = None) -> Store:
    """The store a URL names (see the module docs for the forms).

    ``None`` means ``$INCIDENTFLOW_URL``, or SQLite at ``.agent/incidents/incidentflow.db``.
    Raises ConfigError for an unknown scheme (listing the known ones) or a
    malformed URL, and StoreError when the backend cannot open its storage.

    >>> type(open_store("memory://")).__name__
    'MemoryStore'
    """
    key = "url"
    if url is None:
        url = os.environ.get(ENVIRONMENT_VARIABLE) or None
        key = ENVIRONMENT_VARIABLE
    if url is None:
        from .sqlite import SQLiteStore

        return SQLiteStore(DEFAULT_PATH)
    if not isinstance(url, str):
        raise ConfigError(key, f"expected a URL string, got {type(url).__name__}")
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator or not scheme:
        raise ConfigError(
            key,
            f"{_shown(url)} is not a store URL; use one of {_known()} (e.g. sqlite:///incidents.db)",
        )
    builtin = _BUILTIN.get(scheme)
    if builtin is not None:
        return builtin(key, url, rest)
    plugin = _plugins().get(scheme)
    if plugin is None:
        raise ConfigError(
            key, f"unknown store scheme {scheme!r} in {_shown(url)}; known: {_known()}"
        )
    try:
        opener = plugin.load()
    except Exception as exc:
        raise ConfigError(
            key, f"the store registered for {scheme!r} ({plugin.value}) cannot be loaded: {exc}"
        ) from exc
    store = opener(url)
    if not isinstance(store, Store):
        raise ConfigError(
            key,
            f"the store registered for {scheme!r} ({plugin.value}) returned "
            f"{type(store).__name__}, not a Store",
        )
    return store


def _memory(key: str, url: str, rest: str) -> Store:
    if rest.strip("/"):
        raise ConfigError(key, f"{_shown(url)}: a memory store takes no path; use memory://")
    from .memory import MemoryStore

    return MemoryStore()


def _sqlite(key: str, url: str, rest: str) -> Store:
    path_part, _, query = rest.partition("?")
    if not path_part.startswith("/") or not path_part[1:]:
        raise ConfigError(
            key,
            f"{_shown(url)}: give a file path after three slashes: sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db",
        )
    options = dict(parse_qsl(query, keep_blank_values=True))
    level = options.pop("synchronous", "FULL").upper()
    if options:
        raise ConfigError(
            key,
            f"{_shown(url)}: unknown option(s) {', '.join(sorted(options))}; known: synchronous",
        )
    if level not in ("FULL", "NORMAL"):
        raise ConfigError(key, f"{_shown(url)}: synchronous must be FULL or NORMAL")
    from .sqlite import SQLiteStore

    synchronous: Literal["FULL", "NORMAL"] = "NORMAL" if level == "NORMAL" else "FULL"
    return SQLiteStore(Path(unquote(path_part[1:])), synchronous=synchronous)


def _file(key: str, url: str, rest: str) -> Store:
    if not rest or "?" in rest:
        raise ConfigError(
            key,
            f"{_shown(url)}: give a folder: file://relative/dir or file:///absolute/dir",
        )
    from .jsonl import JsonlStore

    return JsonlStore(Path(unquote(rest)))


def _postgres(key: str, url: str, rest: str) -> Store:
    try:
        from .postgres import PostgresStore  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise ConfigError(
            key,
            "PostgreSQL stores need psycopg: pip install 'psycopg[binary]>=3.1' "
            "'psycopg-pool>=3.2', or pip install -e '.[postgres]' in a clone of incidentflow "
            f"({exc})",
        ) from exc
    store: Store = PostgresStore(url)
    return store


_BUILTIN: dict[str, Callable[[str, str, str], Store]] = {
    "file": _file,
    "memory": _memory,
    "postgres": _postgres,
    "postgresql": _postgres,
    "sqlite": _sqlite,
}


def _plugins() -> dict[str, EntryPoint]:
    # Imported here: reading the installed distributions costs milliseconds, and
    # only a scheme that is not built in needs it.
    from importlib.metadata import entry_points

    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name.lower(), point)
    return found


def _shown(url: str) -> str:
    """``url`` quoted for a message, its password masked: a mistyped URL is quoted back."""
    return repr(mask_password(url))


def _known() -> str:
    names = sorted(set(_BUILTIN) | set(_plugins()))
    return ", ".join(f"{name}://" for name in names)
