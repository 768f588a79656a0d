"""How failed deliveries are retried: exponential backoff with jitter, then a dead letter."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING

import attrs

from ..exceptions import ConfigError

if TYPE_CHECKING:
    import random

__all__ = ["RetryPolicy"]

#: The longest wait a policy may ask for: any clock of this millennium can add it to a date.
_MAX_DELAY = timedelta(days=365)


def _number(value: object) -> bool:
    """A real, finite number (not a bool, not NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How failed deliveries are retried.

    The n-th retry waits ``first_delay * multiplier**(n-1)``, capped at
    ``max_delay``, then spread by ±``jitter`` so that receivers coming back
    are not hit by every sender at once. After ``max_attempts`` failed
    attempts, or at once for a failure that says it is not worth retrying
    (an HTTP 400, a rejected sender), the item becomes a dead letter.

    ``multiplier`` and ``jitter`` are finite numbers and ``max_delay`` is at
    most 365 days, so a policy that is built schedules every retry it is asked
    for; anything else is a ConfigError naming the field.

    >>> RetryPolicy(jitter=0).delay(3)
    datetime.timedelta(seconds=20)
    """

    max_attempts: int = 8
    first_delay: timedelta = timedelta(seconds=5)
    multiplier: float = 2.0
    max_delay: timedelta = timedelta(minutes=15)
    jitter: float = 0.2

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or isinstance(self.max_attempts, bool):
            raise ConfigError("retry.max_attempts", "expected a whole number of at least 1")
        if self.max_attempts < 1:
            raise ConfigError("retry.max_attempts", "expected a whole number of at least 1")
        for key in ("first_delay", "max_delay"):
            if not isinstance(getattr(self, key), timedelta):
                raise ConfigError(f"retry.{key}", "expected a timedelta")
        if self.first_delay < timedelta(0):
            raise ConfigError("retry.first_delay", "expected a delay of zero or more")
        if self.max_delay > _MAX_DELAY:
            raise ConfigError(
                "retry.max_delay", f"expected at most {_MAX_DELAY.days} days, got {self.max_delay}"
            )
        if self.max_delay < self.first_delay:
            raise ConfigError("retry.first_delay", "expected at most max_delay")
        if not _number(self.multiplier) or self.multiplier < 1:
            raise ConfigError(
                "retry.multiplier",
                f"expected a finite number of at least 1, got {self.multiplier!r}",
            )
        if not _number(self.jitter) or not 0 <= self.jitter < 1:
            raise ConfigError(
                "retry.jitter", f"expected a fraction from 0 up to 1, got {self.jitter!r}"
            )

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """How long to wait after the ``attempts``-th failed attempt."""
        cap = self.max_delay.total_seconds()
        try:
            base = min(
                self.first_delay.total_seconds() * self.multiplier ** max(0, attempts - 1), cap
            )
        except OverflowError:  # a thousand attempts in: the cap has long been reached
            base = cap
        if self.jitter:
            if rng is None:
                import random  # here, not at import: import incidentflow stays light

                rng = random.Random()
            base *= rng.uniform(1 - self.jitter, 1 + self.jitter)
        return timedelta(seconds=base)
