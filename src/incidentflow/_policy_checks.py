"""The checks of ``Policy(...)``: each setting's value, then the process's hard rules.

Each converter raises :class:`~incidentflow.ConfigError` keyed by the setting's
name. :func:`check_rules` runs once every setting is read: it refuses a policy
that would loosen one of the seed's hard rules (a post-mortem for P1/P2, at
least one action item wherever a post-mortem is written), names the rule, and
checks what settings say about each other (types, roles and commands known).

Contain before root cause and a real user's confirmation before ``resolved``
are not settings at all: no policy can switch them off.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, cast

import attrs

from ._blame import BlameCheck
from ._fields import FIELD_TYPES
from ._model import Severity
from ._process import ProcessOverride
from ._validate import key as _valid_key
from ._validate import severity as _valid_severity
from ._validate import text as _valid_text
from ._validate import triage_key
from .exceptions import ConfigError, ValidationError

if TYPE_CHECKING:
    from ._policy import Guard, Policy

__all__ = [
    "ACTION_ITEM_RULE",
    "BLAME_CHECKS",
    "DEFAULT_TARGETS",
    "POSTMORTEM_RULE",
    "check_rules",
]

DEFAULT_TARGETS: Final = MappingProxyType(
    {
        Severity.P1: timedelta(minutes=5),
        Severity.P2: timedelta(minutes=30),
        Severity.P3: timedelta(hours=2),
        Severity.P4: timedelta(days=14),
    }
)
BLAME_CHECKS: Final = ", ".join(b.value for b in BlameCheck)
_HIGH: Final = frozenset({Severity.P1, Severity.P2})
# The bound ProcessOverride and the TOML reader set: beyond it a deadline leaves datetime's range.
_CENTURY: Final = timedelta(days=36_500)
#: The hard rules a policy may tighten but never loosen, as refusals name them.
POSTMORTEM_RULE: Final = "the hard rule 'every P1 and P2 incident has a post-mortem'"
ACTION_ITEM_RULE: Final = (
    "the hard rule 'at least one action item wherever a post-mortem is written'"
)


def _config_error(key: str, exc: ValidationError) -> ConfigError:
    return ConfigError(key, exc.message)


def severity(value: object, key: str) -> Severity:
    """``value`` as a Severity; ConfigError keyed ``key`` otherwise."""
    try:
        return _valid_severity(value, key)
    except ValidationError as exc:
        raise _config_error(key, exc) from None


def _key(name: str, value: object) -> str:
    try:
        return _valid_key(name, value)
    except ValidationError as exc:
        raise _config_error(name, exc) from None


def _mapping(name: str, value: object, example: str) -> Mapping[object, object]:
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"expected a mapping, e.g. {example}, got {value!r}")
    return value


def _listed(name: str, value: object, what: str) -> tuple[object, ...]:
    if isinstance(value, (str, Severity)) or not isinstance(value, Iterable):
        raise ConfigError(name, f"expected a list of {what}, got {value!r}")
    return tuple(value)


def targets(value: object) -> Mapping[Severity, timedelta]:
    """Response targets: the defaults, with the given severities' replaced."""
    found = dict(DEFAULT_TARGETS)
    for key, target in _mapping("response_targets", value, "{'P1': timedelta(minutes=5)}").items():
        level = severity(key, "response_targets")
        if not isinstance(target, timedelta) or target <= timedelta(0) or target > _CENTURY:
            raise ConfigError(
                "response_targets",
                f"{level.value}: expected a timedelta greater than zero up to 100 years, "
                f"e.g. timedelta(minutes=30), got {target!r}",
            )
        found[level] = target
    return MappingProxyType(found)


def severities(value: object) -> frozenset[Severity]:
    """The severities needing a post-mortem."""
    listed = _listed("postmortem_severities", value, "severities")
    return frozenset(severity(v, "postmortem_severities") for v in listed)


def flag(instance: object, attribute: attrs.Attribute[bool], value: object) -> None:
    """Validator: ``value`` is True or False."""
    if not isinstance(value, bool):
        raise ConfigError(attribute.name, f"expected True or False, got {value!r}")


def _span(name: str, value: object) -> timedelta:
    if not isinstance(value, timedelta) or value < timedelta(0) or value > _CENTURY:
        raise ConfigError(name, f"expected a timedelta from zero up to 100 years, got {value!r}")
    return value


def watch_window(value: object) -> timedelta:
    """The watch window: zero up to 100 years."""
    return _span("watch_window", value)


def postmortem_due(value: object) -> timedelta:
    """The post-mortem's due time: zero up to 100 years."""
    return _span("postmortem_due", value)


def update_cadence(value: object) -> timedelta | None:
    """The status-update cadence: positive up to 100 years, or None (or zero) for none."""
    if value is None or value == timedelta(0):
        return None
    if not isinstance(value, timedelta) or value < timedelta(0) or value > _CENTURY:
        raise ConfigError(
            "update_cadence",
            "expected a timedelta greater than zero up to 100 years, e.g. "
            f"timedelta(minutes=30), or None (no cadence), got {value!r}",
        )
    return value


def blame_check(value: BlameCheck | str) -> BlameCheck:
    """The blame check's mode."""
    try:
        return BlameCheck(value)
    except ValueError:
        raise ConfigError("blame_check", f"{value!r} is not one of {BLAME_CHECKS}") from None


def _questions(name: str, value: object) -> tuple[str, ...]:
    listed = _listed(name, value, "question names")
    if any(not isinstance(q, str) or not q.strip() for q in listed):
        raise ConfigError(name, "each question name must be non-empty text")
    return tuple(dict.fromkeys(triage_key(str(q)) for q in listed))


def answers(value: object) -> tuple[str, ...]:
    """The triage answers required before ``contain``, normalised."""
    return _questions("required_triage_answers", value)


def questions(value: object) -> tuple[str, ...]:
    """Extra, optional triage questions the policy knows, normalised."""
    return _questions("triage_questions", value)


def min_action_items(value: object) -> int:
    """The base number of action items: at least one (a hard rule)."""
    if isinstance(value, bool) or not isinstance(value, int) or value > 1_000:
        raise ConfigError(
            "min_action_items", f"expected a whole number from 1 to 1000, got {value!r}"
        )
    if value < 1:
        raise ConfigError(
            "min_action_items",
            f"cannot be {value}: {ACTION_ITEM_RULE}; use 1 or more "
            "(a severity without a post-mortem may set 0 in its own override)",
        )
    return value


def _keys(name: str, value: object, example: str) -> tuple[str, ...]:
    listed = _listed(name, value, f"names, e.g. {example}")
    return tuple(dict.fromkeys(_key(name, item) for item in listed))


def incident_types(value: object) -> tuple[str, ...]:
    """The incident types: at least one; the first is the default."""
    found = _keys("incident_types", value, "('availability', 'security')")
    if not found:
        raise ConfigError("incident_types", "is empty; list at least one type, e.g. 'availability'")
    return found


def roles(value: object) -> tuple[str, ...]:
    """The roles: "commander" among them."""
    found = _keys("roles", value, "('commander', 'scribe')")
    if "commander" not in found:
        raise ConfigError(
            "roles", f"must include 'commander' (every incident has one), got {found!r}"
        )
    return found


def _overrides(name: str, value: object) -> dict[object, ProcessOverride]:
    found = {}
    for key, override in _mapping(name, value, "{'P3': ProcessOverride(...)}").items():
        if not isinstance(override, ProcessOverride):
            raise ConfigError(
                name, f"{key}: expected a ProcessOverride, got {type(override).__name__}"
            )
        found[key] = override
    return found


def severity_overrides(value: object) -> Mapping[Severity, ProcessOverride]:
    """The overrides by severity."""
    found = {severity(k, "severities"): o for k, o in _overrides("severities", value).items()}
    return MappingProxyType({s: found[s] for s in Severity if s in found})


def type_overrides(value: object) -> Mapping[str, ProcessOverride]:
    """The overrides by incident type."""
    found = _overrides("types", value).items()
    return MappingProxyType({_key("types", k): o for k, o in found})


def custom_fields(value: object) -> Mapping[str, str]:
    """The custom fields: name → one of the field types."""
    found = {}
    for name, kind in _mapping("custom_fields", value, "{'customer': 'text'}").items():
        checked = _key("custom_fields", name)
        if kind not in FIELD_TYPES:
            raise ConfigError(
                f"custom_fields.{checked}",
                f"{kind!r} is not a field type; use one of {', '.join(FIELD_TYPES)}",
            )
        found[checked] = str(kind)
    return MappingProxyType(found)


def labels(value: object) -> Mapping[str, tuple[str, ...]]:
    """The allowed labels: key → allowed values (empty: any value)."""
    found = {}
    for key, allowed in _mapping("labels", value, "{'service': ('checkout',)}").items():
        checked = _key("labels", key)
        values = []
        for item in _listed(f"labels.{checked}", allowed, "values"):
            try:
                values.append(_valid_text(f"labels.{checked}", item, max_len=200, multiline=False))
            except ValidationError as exc:
                raise _config_error(f"labels.{checked}", exc) from None
        found[checked] = tuple(dict.fromkeys(values))
    return MappingProxyType(found)


def guard_command(command: object) -> str:
    """``command``, the name of a command a custom guard can be added to."""
    from .commands import DEFINITIONS

    if not isinstance(command, str) or command not in DEFINITIONS:
        raise ConfigError(
            "guards", f"{command!r} is not a command; use one of {', '.join(DEFINITIONS)}"
        )
    return command


def guard(value: object) -> Guard:
    """``value``, a custom guard: something callable."""
    if not callable(value):
        raise ConfigError("guards", f"a guard must be callable, got {type(value).__name__}")
    return cast("Guard", value)


def guards(value: object) -> Mapping[str, tuple[Guard, ...]]:
    """The custom guards: command name → a list of guards, checked as ``with_guard`` checks."""
    found: dict[str, tuple[Guard, ...]] = {}
    for command, listed in _mapping("guards", value, "{'resolve': [two_person_rule]}").items():
        name = guard_command(command)
        if callable(listed) or isinstance(listed, (str, bytes)) or not isinstance(listed, Iterable):
            raise ConfigError(
                "guards",
                f"{name}: expected a list of guards, e.g. {{{name!r}: [my_guard]}}, got "
                f"{type(listed).__name__}; Policy.with_guard adds one guard at a time",
            )
        checked = tuple(guard(item) for item in listed)
        if checked:  # a command with no guards is no different from one left out
            found[name] = checked
    return MappingProxyType(found)


# -- what the settings say about each other, and the hard rules ------------------------


def _overrides_of(policy: Policy) -> Iterator[tuple[str, ProcessOverride]]:
    for level, override in policy.severities.items():
        yield f"severities.{level.value}", override
    for name, override in policy.types.items():
        yield f"types.{name}", override


def check_rules(policy: Policy) -> None:
    """ConfigError for the first setting that loosens a hard rule or names the unknown."""
    missing = sorted(s.value for s in _HIGH - policy.postmortem_severities)
    if missing:
        raise ConfigError(
            "postmortem_severities",
            f"leaves out {', '.join(missing)}: {POSTMORTEM_RULE}; keep P1 and P2 in the list "
            "(you may add P3 or P4)",
        )
    for level in sorted(_HIGH & set(policy.severities), key=lambda s: s.value):
        if policy.severities[level].postmortem_required is False:
            raise ConfigError(
                f"severities.{level.value}.postmortem_required",
                f"cannot be false: {POSTMORTEM_RULE}; remove the setting",
            )
    for name, override in policy.types.items():
        if name not in policy.incident_types:
            raise ConfigError(
                f"types.{name}",
                f"{name!r} is not an incident type; add it to incident_types or use one of "
                f"{', '.join(policy.incident_types)}",
            )
        if override.postmortem_required is False:
            raise ConfigError(
                f"types.{name}.postmortem_required",
                f"cannot be false: {POSTMORTEM_RULE}, and a type applies to every severity; "
                "set postmortem_required = false on the severity instead (P3 or P4)",
            )
    _check_roles(policy)
    _check_action_items(policy)


#: Commands that must never wait for a role, and why.
_NO_ROLES_BEFORE = {
    "assign_role": "it is how a role gets held",
    "release_role": "a held role must always be releasable",
    "assign_commander": "it is how the commander changes",
    "record_breach": "the library records breaches itself (check_deadlines)",
}


def _check_roles(policy: Policy) -> None:
    from .commands import DEFINITIONS

    for where, override in _overrides_of(policy):
        for command, needed in (override.required_roles or {}).items():
            if command in _NO_ROLES_BEFORE:
                raise ConfigError(
                    f"{where}.required_roles",
                    f"{command} cannot require roles: {_NO_ROLES_BEFORE[command]}",
                )
            if command not in DEFINITIONS or command == "declare":
                import difflib  # only to word a refusal

                close = difflib.get_close_matches(command, list(DEFINITIONS), n=1)
                hint = f"did you mean {close[0]}? " if close and close[0] != "declare" else ""
                raise ConfigError(
                    f"{where}.required_roles",
                    f"{command!r} is not a command that can require roles; {hint}use one of "
                    f"{', '.join(sorted(set(DEFINITIONS) - {'declare'}))}",
                )
            unknown = [role for role in needed if role not in policy.roles]
            if unknown:
                raise ConfigError(
                    f"{where}.required_roles.{command}",
                    f"{unknown[0]!r} is not a role; use one of {', '.join(policy.roles)} "
                    "(or add it to roles)",
                )


def _check_action_items(policy: Policy) -> None:
    # A table that itself sets 0 where a post-mortem is required is refused; a type that
    # adds a post-mortem to a lighter severity lifts its minimum to 1 (Policy.process).
    for level, override in policy.severities.items():
        if override.min_action_items != 0:
            continue
        required = override.postmortem_required
        if required is None:
            required = level in policy.postmortem_severities
        if required or level in _HIGH:
            raise ConfigError(
                f"severities.{level.value}.min_action_items",
                f"cannot be 0 where a post-mortem is required ({level.value}): "
                f"{ACTION_ITEM_RULE}; use 1 or more, or drop the post-mortem for this "
                "severity (not P1/P2)",
            )
    for name, override in policy.types.items():
        if override.min_action_items == 0:
            raise ConfigError(
                f"types.{name}.min_action_items",
                f"cannot be 0: a type applies to P1 and P2 too, which need a post-mortem: "
                f"{ACTION_ITEM_RULE}; use 1 or more, or set 0 on a severity without one",
            )
