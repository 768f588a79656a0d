"""Storage backends and the contract they implement."""

from ._base import Commit, IdempotencyRecord, IncidentQuery, OutboxItem, Store
from .memory import MemoryStore

__all__ = [
    "Commit",
    "IdempotencyRecord",
    "IncidentQuery",
    "MemoryStore",
    "OutboxItem",
    "Store",
]
