"""What every contract suite shares: how a store is made, reopened and shared."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from .._flow import IncidentFlow
from ..stores._base import (
    Store,
)
from ._builders import START
from ._clock import FrozenClock


class ContractFixtures:
    """The fixtures of the contract suites; subclass a suite and define ``make_store``."""

    #: True when a store made again on the same ``tmp_path`` sees what the first one wrote.
    durable: ClassVar[bool] = True

    def make_store(self, tmp_path: Path) -> Store:
        """A store keeping its data under ``tmp_path``. Override in the backend's tests."""
        raise NotImplementedError(f"{type(self).__name__} must define make_store(tmp_path)")

    # -- fixtures ---------------------------------------------------------------------

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        """A fresh store, closed after the test."""
        store = self.make_store(tmp_path)
        try:
            yield store
        finally:
            store.close()

    @pytest.fixture
    def clock(self) -> FrozenClock:
        """A clock standing at START."""
        return FrozenClock(START)

    @pytest.fixture
    def flow(self, store: Store, clock: FrozenClock) -> IncidentFlow:
        """A flow on the store under test."""
        return IncidentFlow(store, clock=clock)

    def reopen(self, store: Store, tmp_path: Path) -> Store:
        """Close ``store`` and make it again on the same location (durable stores only)."""
        if not self.durable:
            pytest.skip(f"{type(self).__name__}: the store is not durable")
        store.close()
        return self.make_store(tmp_path)

    def second(self, tmp_path: Path) -> Store:
        """Another store on the same location, as another process would open it."""
        if not self.durable:
            pytest.skip(f"{type(self).__name__}: the store is not shared between instances")
        return self.make_store(tmp_path)
