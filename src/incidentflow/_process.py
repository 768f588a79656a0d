"""The process an incident runs: the policy's settings for its severity and type.

A :class:`Process` is what the guards read: the response target, the triage
questions, whether staging is required, the watch window, whether a post-mortem
is required, the minimum number of action items, the roles required before a
command, and the status-update cadence. :class:`ProcessOverride` is how a
severity or an incident type changes some of them; ``Policy.process`` resolves
the base settings, then the severity's, then the type's.

Contain before root cause and a real user's confirmation before ``resolved``
are not settings: no process can switch them off.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any, TypeVar

import attrs

from ._toml import (
    form,
    in_unit,
    read_count,
    read_flag,
    read_forms,
    read_keys,
    read_questions,
    read_table,
    toml_forms_of,
    toml_key,
    toml_number,
    whole,
)
from ._validate import triage_key
from .exceptions import ConfigError

__all__ = ["Process", "ProcessOverride"]

T = TypeVar("T")

_CENTURY = timedelta(days=36_500)


@attrs.frozen(kw_only=True)
class Process:
    """The settings one incident runs under, resolved for its severity and type.

    Attributes:
        response_target: Time from declaration to the start of triage.
        required_triage_answers: Questions answered before ``contain``.
        staging_required: The fix must be verified on staging before ``mark_fixed``.
        watch_window: Time after the last deploy before ``resolve``.
        postmortem_required: A completed post-mortem is needed before the KB entry.
        min_action_items: Live action items needed before closing.
        required_roles: Roles that must be held before a command, by command name.
        update_cadence: How often a status update is due (``None``: no cadence).

    """

    response_target: timedelta
    required_triage_answers: tuple[str, ...]
    staging_required: bool
    watch_window: timedelta
    postmortem_required: bool
    min_action_items: int
    required_roles: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=lambda: MappingProxyType({}), hash=False
    )
    update_cadence: timedelta | None = None


# -- the checks of the Python constructor (None always means "inherit") ------------------


def _flag(name: str, value: object) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ConfigError(name, f"expected True, False or None (inherit), got {value!r}")
    return value


def _span(name: str, value: object, *, positive: bool = False) -> timedelta | None:
    if value is None:
        return None
    low = "greater than zero" if positive else "from zero"
    if (
        not isinstance(value, timedelta)
        or value < timedelta(0)
        or (positive and not value)
        or value > _CENTURY
    ):
        raise ConfigError(
            name, f"expected a timedelta {low} up to 100 years, or None (inherit), got {value!r}"
        )
    return value


def _names(name: str, value: object, what: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(name, f"expected a list of {what}, got {value!r}")
    listed = tuple(value)
    if any(not isinstance(item, str) or not item.strip() for item in listed):
        raise ConfigError(name, f"expected a list of {what} (non-empty text), got {listed!r}")
    return tuple(dict.fromkeys(listed))


def _response_target(value: object) -> timedelta | None:
    return _span("response_target", value, positive=True)


def _triage_questions(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    named = _names("triage_questions", value, "question names")
    return tuple(dict.fromkeys(triage_key(q) for q in named))


def _staging_required(value: object) -> bool | None:
    return _flag("staging_required", value)


def _watch_window(value: object) -> timedelta | None:
    return _span("watch_window", value)


def _postmortem_required(value: object) -> bool | None:
    return _flag("postmortem_required", value)


def _min_action_items(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000:
        raise ConfigError(
            "min_action_items", f"expected a whole number from 0 to 1000, got {value!r}"
        )
    return value


def _required_roles(value: object) -> Mapping[str, tuple[str, ...]] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(
            "required_roles",
            f"expected a mapping of command to roles, e.g. {{'contain': ('scribe',)}}, "
            f"got {value!r}",
        )
    found = {}
    for command, roles in value.items():
        if not isinstance(command, str):
            raise ConfigError("required_roles", f"expected command names as keys, got {command!r}")
        found[command] = _names(f"required_roles.{command}", roles, "role names")
    return MappingProxyType(found)


def _update_cadence(value: object) -> timedelta | None:
    return _span("update_cadence", value)


# -- the TOML forms of an override's settings --------------------------------------------


def _read_target(value: object, where: str) -> timedelta:
    return timedelta(minutes=toml_number(where, value, unit="minutes", above=True))


def _write_minutes(value: timedelta) -> float:
    return whole(value / timedelta(minutes=1))


_ROLES_ACCEPT = 'a table of command = roles, e.g. { contain = ["communications_lead"] }'


def _read_roles(value: object, where: str) -> Mapping[str, tuple[str, ...]]:
    table = read_table(value, where, _ROLES_ACCEPT)
    return {
        str(command): read_keys(roles, f"{where}.{toml_key(str(command))}", '["scribe"]')
        for command, roles in table.items()
    }


@attrs.frozen(kw_only=True)
class ProcessOverride:
    """What a severity or an incident type changes; ``None`` keeps what it inherits.

    ``triage_questions`` of a type are added to those its severity requires; a
    severity's replace the base ones. ``required_roles`` add to what is
    inherited. ``update_cadence=timedelta(0)`` turns an inherited cadence off.

    >>> light = ProcessOverride(staging_required=False, watch_window=timedelta(0))
    >>> light.to_dict()
    {'staging_required': False, 'watch_window_minutes': 0}
    """

    response_target: timedelta | None = attrs.field(
        default=None,
        converter=_response_target,
        metadata=form(
            "response_minutes",
            "Time from declaration to the start of triage, in minutes.",
            "a number of minutes, greater than 0",
            _read_target,
            _write_minutes,
        ),
    )
    triage_questions: tuple[str, ...] | None = attrs.field(
        default=None,
        converter=_triage_questions,
        metadata=form(
            "triage_questions",
            "Triage questions answered before contain (a type's add to its severity's).",
            'a list of question names, e.g. ["symptom", "scope"]',
            read_questions,
            list,
        ),
    )
    staging_required: bool | None = attrs.field(
        default=None,
        converter=_staging_required,
        metadata=form(
            "staging_required",
            "The fix must be verified on staging before mark_fixed.",
            "true or false",
            read_flag,
            bool,
        ),
    )
    watch_window: timedelta | None = attrs.field(
        default=None,
        converter=_watch_window,
        metadata=in_unit(
            "watch_window_minutes", "minutes", "How long after the last deploy before resolve."
        ),
    )
    postmortem_required: bool | None = attrs.field(
        default=None,
        converter=_postmortem_required,
        metadata=form(
            "postmortem_required",
            "A completed post-mortem is needed (never false for P1/P2 or for a type).",
            "true or false",
            read_flag,
            bool,
        ),
    )
    min_action_items: int | None = attrs.field(
        default=None,
        converter=_min_action_items,
        metadata=form(
            "min_action_items",
            "Live action items needed before closing (at least 1 with a post-mortem).",
            "a whole number, 0 or more",
            read_count,
            int,
        ),
    )
    required_roles: Mapping[str, tuple[str, ...]] | None = attrs.field(
        default=None,
        converter=_required_roles,
        hash=False,
        metadata=form(
            "required_roles",
            "Roles that must be held before a command.",
            _ROLES_ACCEPT,
            _read_roles,
            lambda value: {command: list(roles) for command, roles in value.items()},
        ),
    )
    update_cadence: timedelta | None = attrs.field(
        default=None,
        converter=_update_cadence,
        metadata=in_unit(
            "update_cadence_minutes",
            "minutes",
            "How often a status update is due, in minutes (0: no cadence).",
        ),
    )

    def over(self, base: Process, *, add_questions: bool = False) -> Process:
        """``base`` with this override's settings written over it."""
        questions = base.required_triage_answers
        if self.triage_questions is not None:
            if add_questions:
                questions = tuple(dict.fromkeys((*questions, *self.triage_questions)))
            else:
                questions = self.triage_questions
        roles = dict(base.required_roles)
        for command, needed in (self.required_roles or {}).items():
            roles[command] = tuple(dict.fromkeys((*roles.get(command, ()), *needed)))
        cadence = _or(self.update_cadence, base.update_cadence)
        return Process(
            response_target=_or(self.response_target, base.response_target),
            required_triage_answers=questions,
            staging_required=_or(self.staging_required, base.staging_required),
            watch_window=_or(self.watch_window, base.watch_window),
            postmortem_required=_or(self.postmortem_required, base.postmortem_required),
            min_action_items=_or(self.min_action_items, base.min_action_items),
            required_roles=MappingProxyType(roles),
            update_cadence=cadence or None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The settings this override sets, as TOML-ready values (inherited ones left out)."""
        return {
            f.key: f.write(getattr(self, name))
            for name, f in toml_forms_of(ProcessOverride).items()
            if getattr(self, name) is not None
        }

    @classmethod
    def from_dict(cls, data: object, where: str) -> ProcessOverride:
        """An override from :meth:`to_dict`'s shape, the table at the dotted key ``where``.

        A wrong key or value raises ConfigError keyed with its dotted key.
        """
        forms = toml_forms_of(cls)
        keys = ", ".join(f.key for f in forms.values())
        return cls(**read_forms(data, where, forms, f"a table of {keys}"))


def _or(value: T | None, inherited: T) -> T:
    return inherited if value is None else value
