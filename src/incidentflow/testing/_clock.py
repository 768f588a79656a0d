"""A clock that moves only when told to."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from ..exceptions import ValidationError

__all__ = ["FrozenClock"]


class FrozenClock:
    """A callable clock for ``IncidentFlow(clock=...)`` that stands still.

    >>> from datetime import datetime, timezone
    >>> clock = FrozenClock(datetime(2026, 11, 27, 14, 0, tzinfo=timezone.utc))
    >>> clock.advance(minutes=16).isoformat()
    '2026-11-27T14:16:00+00:00'
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime.now(UTC)
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValidationError("start", "is a naive datetime; pass an aware one")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        # One attribute read of an immutable datetime: a reader sees the old or the new time.
        return self._now

    def advance(self, delta: timedelta | None = None, **units: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**units)``; returns the new time."""
        step = delta if delta is not None else timedelta(**units)
        if step < timedelta(0):
            raise ValidationError("delta", "a clock only moves forward")
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (aware), forward or back."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValidationError("when", "is a naive datetime; pass an aware one")
        with self._lock:
            self._now = when.astimezone(UTC)
