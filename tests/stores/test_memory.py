"""MemoryStore passes the store contract."""

from pathlib import Path

from incidentflow.stores import MemoryStore, Store
from incidentflow.testing import EventStoreContract, OutboxContract, QueryIndexContract


class TestMemoryStore(EventStoreContract, OutboxContract, QueryIndexContract):
    """The contract, in process memory (nothing survives closing the store)."""

    durable = False

    def make_store(self, tmp_path: Path) -> Store:
        return MemoryStore()
