"""Storage backends and the three protocols they implement.

A backend is an :class:`EventStore` (histories and snapshots), an
:class:`Outbox` (notifications to deliver) and a :class:`QueryIndex`
(listings, similar incidents, milestones); :class:`Store` is all three, and
every backend here is one.

Open one by URL with :func:`open_store` (``memory://``, ``sqlite:///path.db``,
``file://dir``, ``postgresql://...``) or build it directly. Backends are
imported on first use, so ``import incidentflow`` does not load ``sqlite3``.
"""

from __future__ import annotations

import typing

from .._lazy import lazy_attributes as _lazy_attributes
from ._protocols import EventStore, Outbox, QueryIndex, Store
from ._records import Commit, IdempotencyRecord, IncidentQuery, IncidentSummary, OutboxItem

if typing.TYPE_CHECKING:
    from ._url import open_store
    from .jsonl import JsonlStore
    from .memory import MemoryStore
    from .postgres import PostgresStore
    from .sqlite import SQLiteStore

__all__ = [
    "Commit",
    "EventStore",
    "IdempotencyRecord",
    "IncidentQuery",
    "IncidentSummary",
    "JsonlStore",
    "MemoryStore",
    "Outbox",
    "OutboxItem",
    "PostgresStore",
    "QueryIndex",
    "SQLiteStore",
    "Store",
    "open_store",
]

_LAZY = {
    "JsonlStore": ".jsonl",
    "MemoryStore": ".memory",
    "PostgresStore": ".postgres",
    "SQLiteStore": ".sqlite",
    "open_store": "._url",
}


__getattr__, __dir__ = _lazy_attributes(__name__, globals(), _LAZY)
