"""How the command line reads values: times, dates, severities, bounded numbers."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import click

__all__ = [
    "INT_MAX",
    "LIMIT_MAX",
    "SEVERITIES",
    "SEVERITY_METAVAR",
    "STATE",
    "STATES",
    "Group",
    "Seconds",
    "count",
    "day",
    "incident_argument",
    "moment",
    "pairs",
    "set_app",
    "severity",
    "span",
]

_F = TypeVar("_F", bound=Callable[..., Any])

#: The library's bounds (``_validate.INT_MAX``, ``LIMIT_MAX``), kept here for the same reason
#: as the names below; a test checks they agree.
INT_MAX = 2**63 - 1
LIMIT_MAX = 100_000


def count(low: int = 1, high: int = LIMIT_MAX) -> click.IntRange:
    """A whole number from ``low`` to ``high``: anything else is a usage error naming both.

    The default bounds are the library's page size (``limit=``), so a huge number is
    refused here, naming the option, rather than by the library naming its argument.
    """
    return click.IntRange(low, high)


class Seconds(click.FloatRange):
    """Seconds from ``min`` to ``max``; ``nan`` is refused (it compares false to both ends)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The number of seconds, checked to be a number within the range."""
        seconds = super().convert(value, param, ctx)
        if math.isnan(seconds):
            self.fail(f"{value!r} is not a number of seconds; give one from {self.min} to "
                      f"{self.max}", param, ctx)  # fmt: skip
        return seconds


def moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """A time as people type it, in UTC: ``now-10m``, ``+3d``, ``yesterday 23:15``, ``23:15Z``, ISO.

    Clock times and bare dates are in the display zone (``TZ``); ISO 8601 needs its offset.
    """
    if value is None:
        return None
    from ._clock import parse_time

    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def day(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    """A calendar date: ``YYYY-MM-DD``, ``today``, ``tomorrow``, ``+3d``, in the display zone."""
    if value is None:
        return None
    from ._clock import parse_date

    try:
        return parse_date(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


#: The severities and states as the library spells them (``Severity``, ``State``), kept
#: here so that building the commands imports no model; a test checks they agree.
SEVERITIES = ("P1", "P2", "P3", "P4")
STATES = (
    "declared",
    "triaging",
    "contained",
    "rca",
    "fixed",
    "resolved",
    "postmortem",
    "kb_updated",
    "dismissed",
)
_SEVERITY_NAMES = list(SEVERITIES)
SEVERITY_METAVAR = "|".join(_SEVERITY_NAMES)


def severity(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Severities as the library spells them (P1 to P4), whatever case was typed."""
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(severity(ctx, param, item) for item in value)
    name = str(value).strip().upper()
    if name not in _SEVERITY_NAMES:
        raise click.BadParameter(
            f"{value!r} is not a severity; use one of {', '.join(_SEVERITY_NAMES)}"
        )
    return name


_SPAN = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_SPAN_UNITS = (86400, 3600, 60, 1)
#: The longest span the command line takes: a year, far beyond any update cadence.
_SPAN_MAX = timedelta(days=366)


def span(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    """A length of time as people write it: ``90s``, ``30m``, ``1h``, ``1h30m``, ``2d``."""
    if value is None:
        return None
    found = _SPAN.fullmatch(value.strip().lower())
    if not value.strip() or found is None:
        raise click.BadParameter(
            f"{value!r} is not a length of time; write e.g. 90s, 30m, 1h or 1h30m"
        )
    # Digits beyond a year's worth are refused below; cap them before int() sees a huge string.
    if any(len(part) > 9 for part in found.groups() if part):
        raise click.BadParameter(f"{value!r} is too long; give at most {_SPAN_MAX.days} days")
    seconds = sum(int(n) * unit for n, unit in zip(found.groups(), _SPAN_UNITS, strict=True) if n)
    result = timedelta(seconds=seconds)
    if not timedelta(0) < result <= _SPAN_MAX:
        raise click.BadParameter(
            f"{value!r} is out of range; give more than 0s and at most {_SPAN_MAX.days} days"
        )
    return result


def pairs(ctx: click.Context, param: click.Parameter, value: Any) -> dict[str, str]:
    """``KEY=VALUE`` words (``service=checkout``) as a dict; a key given twice is refused.

    The value may itself hold ``=``: only the first one separates.
    """
    found: dict[str, str] = {}
    for word in (value,) if isinstance(value, str) else value or ():
        key, sep, text = str(word).partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(
                f"{word!r} is not KEY=VALUE; write e.g. service=checkout", param=param
            )
        key = key.strip()
        if key in found and found[key] != text:
            raise click.BadParameter(
                f"{key!r} is given twice ({found[key]!r} and {text!r}); give it once",
                param=param,
            )
        found[key] = text
    return found


STATE = click.Choice(list(STATES), case_sensitive=False)


def incident_argument(function: _F) -> _F:
    """The ``ID`` argument of a command about one incident: an id, a unique prefix or slug.

    Left out, it is ``-i/--incident`` or the folder's current incident (``incidentflow use``).
    """
    from ._current import complete_incident, resolve_argument

    return click.argument(
        "incident_id", metavar="ID", callback=resolve_argument, shell_complete=complete_incident
    )(function)


def set_app(
    attribute: str, *, given: object = None
) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A callback setting the shared App's ``attribute`` to the option's value (or ``given``)."""

    def store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and value is not False:
            from ._app import App

            setattr(ctx.ensure_object(App), attribute, value if given is None else given)
        return value

    return store


def _global_options() -> list[click.Option]:
    """The group's options, repeated hidden on every subcommand: accepted anywhere on the line."""
    return [
        click.Option(
            ["--store"], hidden=True, expose_value=False, is_eager=True, callback=set_app("store")
        ),
        click.Option(
            ["--config"],
            hidden=True,
            expose_value=False,
            is_eager=True,
            callback=set_app("config_path"),
        ),
        click.Option(
            ["--json"], is_flag=True, hidden=True, expose_value=False, callback=set_app("as_json")
        ),
        click.Option(
            ["--actor"], hidden=True, expose_value=False, callback=set_app("actor_option")
        ),
        click.Option(
            ["--no-files"],
            is_flag=True,
            hidden=True,
            expose_value=False,
            callback=set_app("write_files", given=False),
        ),
        click.Option(
            ["-i", "--incident"],
            hidden=True,
            expose_value=False,
            callback=set_app("incident_option"),
        ),
    ]


class Group(click.Group):
    """Lists subcommands in the order they are added: the order of the process.

    Every subcommand also takes the global options (``list --json``), and a
    command about one incident may leave its ID out when there is a current one.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The subcommands' names, in the order they were added."""
        return list(self.commands)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Add ``cmd``, giving it the global options it does not have yet."""
        taken = {opt for param in cmd.params for opt in param.opts}
        cmd.params.extend(o for o in _global_options() if not taken & set(o.opts))
        super().add_command(cmd, name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """The subcommand, and its words with the current incident put in for a left-out ID."""
        name, cmd, rest = super().resolve_command(ctx, args)
        if cmd is not None and not isinstance(cmd, click.Group) and not ctx.resilient_parsing:
            from ._app import App
            from ._current import given_config, insert_incident

            app = ctx.ensure_object(App)
            if (config := given_config(cmd, rest)) is not None:
                app.config_path = config  # the current incident is looked up under it
            rest = insert_incident(app, cmd, rest, path=f"{ctx.command_path} {name}")
        return name, cmd, rest
