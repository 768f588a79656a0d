"""Storage backends and the contract they implement.

Open one by URL with :func:`open_store` (``memory://``, ``sqlite:///path.db``,
``file://dir``, ``postgresql://...``) or build it directly. Backends are
imported on first use, so ``import incidentflow`` does not load ``sqlite3``.
"""

from __future__ import annotations

import importlib
import typing

from ._base import Commit, IdempotencyRecord, IncidentQuery, OutboxItem, Store
from .memory import MemoryStore

if typing.TYPE_CHECKING:
    from ._url import open_store
    from .jsonl import JsonlStore
    from .postgres import PostgresStore
    from .sqlite import SQLiteStore

__all__ = [
    "Commit",
    "IdempotencyRecord",
    "IncidentQuery",
    "JsonlStore",
    "MemoryStore",
    "OutboxItem",
    "PostgresStore",
    "SQLiteStore",
    "Store",
    "open_store",
]

_LAZY = {
    "JsonlStore": ".jsonl",
    "PostgresStore": ".postgres",
    "SQLiteStore": ".sqlite",
    "open_store": "._url",
}


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
