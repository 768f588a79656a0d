"""Public test helpers for code that embeds incidentflow.

``FrozenClock`` makes time stand still until you move it, so SLA checks and the
post-deploy watch window can be tested without waiting. ``RecordingNotifier``
keeps every notification for assertions. The contract suites are the pytest
tests every store passes, one per protocol: ``EventStoreContract``,
``OutboxContract`` and ``QueryIndexContract``; ``StoreContract`` is all three.
Subclass the ones your store implements to test it.

The suites need pytest. Importing this package imports pytest only if it is
already loaded (in a test run); elsewhere the suites are imported on first use.
"""

from __future__ import annotations

import sys
import typing

from ..notifiers.basic import RecordingNotifier
from ._clock import FrozenClock

if typing.TYPE_CHECKING or "pytest" in sys.modules:
    from .contract import EventStoreContract, OutboxContract, QueryIndexContract, StoreContract

__all__ = [
    "EventStoreContract",
    "FrozenClock",
    "OutboxContract",
    "QueryIndexContract",
    "RecordingNotifier",
    "StoreContract",
]

_SUITES = frozenset({"EventStoreContract", "OutboxContract", "QueryIndexContract", "StoreContract"})


def __getattr__(name: str) -> typing.Any:
    if name in _SUITES:
        from . import contract

        value = getattr(contract, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
