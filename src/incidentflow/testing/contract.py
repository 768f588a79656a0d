"""The contract every store keeps, as pytest suites to subclass (dogpile.cache style).

One suite per protocol a backend implements:

- :class:`~incidentflow.testing.EventStoreContract`: appends, loads, histories,
  optimistic concurrency, idempotency records, durability;
- :class:`~incidentflow.testing.OutboxContract`: outbox items written with
  their commit, streams, claims and leases, retries, dead letters, re-drives;
- :class:`~incidentflow.testing.QueryIndexContract`: listings, summaries,
  milestones and similar incidents.

:class:`StoreContract` is all three, for a full :class:`~incidentflow.stores.Store`.
A backend's test module is a few lines::

    from incidentflow.testing import EventStoreContract, OutboxContract, QueryIndexContract

    class TestRedisStore(EventStoreContract, OutboxContract, QueryIndexContract):
        durable = True

        def make_store(self, tmp_path):
            return RedisStore(f"redis://localhost/{tmp_path.name}")

``make_store`` may be called more than once with the same ``tmp_path``: for a
durable store each call must open the same data (a store "reopened", or a
second process). Set ``durable = False`` for a store that forgets everything
when closed; the tests that reopen a store are then skipped, with the reason.
A store whose server is missing should skip in ``make_store`` with
``pytest.skip(reason)``, never pass silently. Every suite writes through
:meth:`~incidentflow.stores.EventStore.append`, so ``make_store`` returns a
store that is an event store besides the protocol under test.

This module imports pytest; ``incidentflow.testing`` imports it only when a
suite is first used.
"""

from __future__ import annotations

from ._builders import (
    AWKWARD_TEXT,
    CHECKOUT,
    LEASE,
    START,
    FlakyNotifier,
    announced,
    declare_commit,
    item_id,
    next_commit,
    run_whole_incident,
    with_notes,
    write,
)
from ._contract_events import EventStoreContract
from ._contract_outbox import OutboxContract
from ._contract_queries import QueryIndexContract

__all__ = [
    "AWKWARD_TEXT",
    "CHECKOUT",
    "LEASE",
    "START",
    "EventStoreContract",
    "FlakyNotifier",
    "OutboxContract",
    "QueryIndexContract",
    "StoreContract",
    "announced",
    "declare_commit",
    "item_id",
    "next_commit",
    "run_whole_incident",
    "with_notes",
    "write",
]


class StoreContract(EventStoreContract, OutboxContract, QueryIndexContract):
    """The tests every :class:`~incidentflow.stores.Store` passes: all three suites."""
