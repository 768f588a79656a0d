"""Public test helpers for code that embeds incidentflow.

``FrozenClock`` makes time stand still until you move it, so SLA checks and the
post-deploy watch window can be tested without waiting. ``RecordingNotifier``
keeps every notification for assertions. ``StoreContract`` is the pytest suite
every store passes; subclass it to test your own store.

``StoreContract`` needs pytest. Importing this package imports pytest only if
it is already loaded (in a test run); elsewhere ``StoreContract`` is imported
on first use.
"""

from __future__ import annotations

import sys
import typing

from ..notifiers.basic import RecordingNotifier
from ._clock import FrozenClock

if typing.TYPE_CHECKING or "pytest" in sys.modules:
    from .contract import StoreContract

__all__ = ["FrozenClock", "RecordingNotifier", "StoreContract"]


def __getattr__(name: str) -> typing.Any:
    if name == "StoreContract":
        from .contract import StoreContract

        globals()[name] = StoreContract
        return StoreContract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
