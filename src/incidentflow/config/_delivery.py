"""``[delivery]``: inline delivery, the outbox lease, retries and the dispatcher."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs

from ..delivery import MAX_IN_FLIGHT, RetryPolicy
from ..exceptions import ConfigError
from ._common import meta, number, tidy, validated, within

__all__ = ["DeliveryTable", "delivery_table"]


def _at_least_one(key: str, value: int) -> None:
    if value < 1:
        raise ConfigError(key, f"expected a whole number of at least 1, got {value}")


_seconds = number("seconds")
_positive_seconds = number("seconds", above=True)


@attrs.frozen(kw_only=True)
class DeliveryTable:
    """``[delivery]``: inline delivery, the outbox lease, retries and the dispatcher."""

    inline: bool | None = attrs.field(
        default=None,
        metadata=meta(
            "Deliver right after each command (true), or leave it to a dispatcher or "
            "`incidentflow deliver` (false).",
            "true or false",
        ),
    )
    lease_seconds: float | None = attrs.field(
        default=None,
        validator=validated(_positive_seconds),
        metadata=meta(
            "How long a claimed notification stays with the worker that claimed it.",
            "a number of seconds above 0",
        ),
    )
    max_attempts: int | None = attrs.field(
        default=None,
        validator=validated(_at_least_one),
        metadata=meta(
            "Failed attempts before a notification becomes a dead letter.",
            "a whole number of at least 1",
        ),
    )
    first_delay_seconds: float | None = attrs.field(
        default=None,
        validator=validated(_seconds),
        metadata=meta("The wait before the first retry.", "a number of seconds, 0 or more"),
    )
    multiplier: float | None = attrs.field(
        default=None,
        validator=validated(within(1, 10, "a number from 1 to 10")),
        metadata=meta("Each retry waits this many times longer.", "a number from 1 to 10"),
    )
    max_delay_seconds: float | None = attrs.field(
        default=None,
        validator=validated(_seconds),
        metadata=meta(
            "The longest wait between retries.", "a number of seconds, first_delay_seconds or more"
        ),
    )
    jitter: float | None = attrs.field(
        default=None,
        validator=validated(
            within(0, 1, "a fraction from 0 up to (not including) 1", below_high=True)
        ),
        metadata=meta(
            "Spread each wait by ± this fraction, so receivers coming back are not flooded.",
            "a fraction from 0 up to 1",
        ),
    )
    max_in_flight: int | None = attrs.field(
        default=None,
        validator=validated(within(1, MAX_IN_FLIGHT, f"a whole number from 1 to {MAX_IN_FLIGHT}")),
        metadata=meta(
            "Deliveries a dispatcher runs at once.", f"a whole number from 1 to {MAX_IN_FLIGHT}"
        ),
    )
    poll_seconds: float | None = attrs.field(
        default=None,
        validator=validated(_positive_seconds),
        metadata=meta(
            "How often a dispatcher looks for retries and other processes' commits.",
            "a number of seconds above 0",
        ),
    )

    def __attrs_post_init__(self) -> None:
        defaults = RetryPolicy()
        first = self.first_delay_seconds
        first = defaults.first_delay.total_seconds() if first is None else first
        longest = self.max_delay_seconds
        longest = defaults.max_delay.total_seconds() if longest is None else longest
        if longest < first:
            raise ConfigError(
                "max_delay_seconds",
                f"expected at least first_delay_seconds ({first:g}), got {longest:g}",
            )

    def settings(self) -> dict[str, Any]:
        """The :class:`Config` keywords this table sets."""
        retry: dict[str, Any] = {}
        if self.max_attempts is not None:
            retry["max_attempts"] = self.max_attempts
        if self.first_delay_seconds is not None:
            retry["first_delay"] = timedelta(seconds=self.first_delay_seconds)
        if self.multiplier is not None:
            retry["multiplier"] = self.multiplier
        if self.max_delay_seconds is not None:
            retry["max_delay"] = timedelta(seconds=self.max_delay_seconds)
        if self.jitter is not None:
            retry["jitter"] = self.jitter
        settings: dict[str, Any] = {"retry": RetryPolicy(**retry)}
        if self.inline is not None:
            settings["deliver_inline"] = self.inline
        if self.lease_seconds is not None:
            settings["delivery_lease"] = timedelta(seconds=self.lease_seconds)
        if self.max_in_flight is not None:
            settings["max_in_flight"] = self.max_in_flight
        if self.poll_seconds is not None:
            settings["poll_interval"] = self.poll_seconds
        return settings


def delivery_table(
    *,
    inline: bool,
    lease: timedelta,
    retry: RetryPolicy,
    max_in_flight: int,
    poll_interval: float,
) -> dict[str, Any]:
    """The ``[delivery]`` table holding these settings."""
    table: dict[str, Any] = tidy(
        {
            "inline": inline,
            "lease_seconds": lease.total_seconds(),
            "max_attempts": retry.max_attempts,
            "first_delay_seconds": retry.first_delay.total_seconds(),
            "multiplier": float(retry.multiplier),
            "max_delay_seconds": retry.max_delay.total_seconds(),
            "jitter": float(retry.jitter),
            "max_in_flight": max_in_flight,
            "poll_seconds": float(poll_interval),
        }
    )
    return table
