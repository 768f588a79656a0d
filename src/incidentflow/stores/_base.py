"""The storage contract, as callers import it: the records and the protocols.

The records live in :mod:`incidentflow.stores._records`, the protocols in
:mod:`incidentflow.stores._protocols`; this module keeps the import path
``incidentflow.stores._base`` working for both.
"""

from __future__ import annotations

from ._protocols import EventStore, Outbox, QueryIndex, Store
from ._records import Commit, IdempotencyRecord, IncidentQuery, IncidentSummary, OutboxItem

__all__ = [
    "Commit",
    "EventStore",
    "IdempotencyRecord",
    "IncidentQuery",
    "IncidentSummary",
    "Outbox",
    "OutboxItem",
    "QueryIndex",
    "Store",
]
