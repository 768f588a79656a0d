"""The TOML forms of the policy's settings: how each is read from a table and written.

The generic pieces (numbers, flags, lists of names, dotted keys) live in
:mod:`._toml`; here are the policy's own shapes: response targets per severity,
the per-severity and per-type process tables, custom fields and labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

from ._blame import BlameCheck
from ._fields import FIELD_TYPES
from ._model import Severity
from ._policy_checks import BLAME_CHECKS
from ._process import ProcessOverride
from ._toml import (
    SEVERITY_NAMES,
    TomlForm,
    form,
    items,
    read_keys,
    read_table,
    toml_key,
    toml_number,
    toml_severity,
    toml_shown,
    whole,
)
from .exceptions import ConfigError

__all__ = [
    "FIELDS_ACCEPT",
    "LABELS_ACCEPT",
    "TARGETS_ACCEPT",
    "keys_form",
    "overrides_form",
    "read_blame_check",
    "read_cadence",
    "read_fields",
    "read_labels",
    "read_severities",
    "read_targets",
    "write_cadence",
    "write_targets",
]

TARGETS_ACCEPT: Final = "a table of severity = minutes, e.g. { P1 = 5, P2 = 30 }"


def read_targets(value: object, where: str) -> dict[Severity, timedelta]:
    targets = {}
    for name, minutes in read_table(value, where, TARGETS_ACCEPT).items():
        at = f"{where}.{toml_key(str(name))}"
        severity = toml_severity(at, name)
        targets[severity] = timedelta(minutes=toml_number(at, minutes, unit="minutes", above=True))
    return targets


def write_targets(value: Mapping[Severity, timedelta]) -> dict[str, float]:
    return {s.value: whole(value[s] / timedelta(minutes=1)) for s in Severity}


def read_severities(value: object, where: str) -> frozenset[Severity]:
    listed = items(where, value, f"a list of severities ({SEVERITY_NAMES})")
    return frozenset(toml_severity(f"{where}[{n}]", v) for n, v in enumerate(listed, start=1))


def read_blame_check(value: object, where: str) -> BlameCheck:
    if not isinstance(value, str) or value not in BLAME_CHECKS.split(", "):
        raise ConfigError(where, f"expected one of {BLAME_CHECKS}, got {toml_shown(value)}")
    return BlameCheck(value)


def read_cadence(value: object, where: str) -> timedelta | None:
    return timedelta(minutes=toml_number(where, value, unit="minutes")) or None


def write_cadence(value: timedelta | None) -> float:
    return 0 if value is None else whole(value / timedelta(minutes=1))


def keys_form(key: str, help: str, example: str) -> dict[str, TomlForm]:
    return form(
        key,
        help,
        f"a list of names, e.g. {example}",
        lambda value, where: read_keys(value, where, example),
        list,
    )


_OVERRIDE_KEYS: Final = "response_minutes, triage_questions, staging_required, ..."


def overrides_form(key: str, help: str, example: str, by_severity: bool) -> dict[str, TomlForm]:
    accepts = f"a table of {example} tables, each setting {_OVERRIDE_KEYS}"

    def read(value: object, where: str) -> dict[object, ProcessOverride]:
        found: dict[object, ProcessOverride] = {}
        for name, table in read_table(value, where, accepts).items():
            at = f"{where}.{toml_key(str(name))}"
            chosen = toml_severity(at, name) if by_severity else str(name)
            found[chosen] = ProcessOverride.from_dict(table, at)
        return found

    def write(value: Mapping[Any, ProcessOverride]) -> dict[str, Any]:
        return {getattr(k, "value", k): o.to_dict() for k, o in value.items()}

    return form(key, help, accepts, read, write)


FIELDS_ACCEPT: Final = f'a table of name = type ({", ".join(FIELD_TYPES)}), e.g. customer = "text"'


def read_fields(value: object, where: str) -> dict[str, str]:
    found = {}
    for name, kind in read_table(value, where, FIELDS_ACCEPT).items():
        if kind not in FIELD_TYPES:
            raise ConfigError(
                f"{where}.{toml_key(str(name))}",
                f"expected a field type ({', '.join(FIELD_TYPES)}), got {toml_shown(kind)}",
            )
        found[str(name)] = str(kind)
    return found


LABELS_ACCEPT: Final = 'a table of key = allowed values, e.g. service = ["checkout"], team = []'


def read_labels(value: object, where: str) -> dict[str, tuple[str, ...]]:
    found = {}
    for key, allowed in read_table(value, where, LABELS_ACCEPT).items():
        at = f"{where}.{toml_key(str(key))}"
        listed = items(at, allowed, "a list of allowed values ([] allows any value)")
        for number, item in enumerate(listed, start=1):
            if not isinstance(item, str) or not item.strip():
                raise ConfigError(f"{at}[{number}]", f"expected text, got {toml_shown(item)}")
        found[str(key)] = tuple(str(item) for item in listed)
    return found
