"""TOML text: how settings are written, read back, and named in errors.

Shared by the policy (whose fields each declare a :class:`TomlForm`) and the
configuration, which reads the same files: values are shown as TOML writes
them, keys are dotted (``policy.severity.P3.watch_window_minutes``), and an
unknown key is named with a near spelling.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import attrs

from ._model import Severity
from ._validate import key as _valid_key
from ._validate import triage_key
from .exceptions import ConfigError, ValidationError

__all__ = [
    "SEVERITY_NAMES",
    "TomlForm",
    "form",
    "in_unit",
    "items",
    "loads_toml",
    "read_count",
    "read_flag",
    "read_forms",
    "read_keys",
    "read_minutes",
    "read_questions",
    "read_table",
    "read_toml",
    "toml_forms_of",
    "toml_key",
    "toml_number",
    "toml_severity",
    "toml_shown",
    "unknown_key_message",
    "whole",
]

# Durations beyond a century are typing mistakes, and beyond timedelta's range errors.
_MAX_DAYS: Final = 36_500
_UNIT_LIMITS: Final = MappingProxyType(
    {"seconds": _MAX_DAYS * 86_400, "minutes": _MAX_DAYS * 1_440, "hours": _MAX_DAYS * 24}
)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
#: The severities' names, as messages list them.
SEVERITY_NAMES: Final = ", ".join(s.value for s in Severity)


def toml_shown(value: object, limit: int = 60) -> str:
    """``value`` as it would be written in TOML, cut to ``limit`` characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, (datetime, date, time)):
        text = f"{value.isoformat()} (a date or time)"
    elif isinstance(value, Mapping):
        text = "a table"
    elif isinstance(value, (list, tuple)):
        shown = ", ".join(toml_shown(v, limit) for v in value[:5])
        text = f"[{shown}, ...]" if len(value) > 5 else f"[{shown}]"
    else:
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def toml_key(*parts: str | int) -> str:
    """A dotted TOML key from names and 1-based list positions: ``routes[2].notifier``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            shown = part if _BARE_KEY.match(part) else json.dumps(part, ensure_ascii=False)
            text += ("." if text else "") + shown
    return text


def toml_number(key: str, value: object, *, unit: str, above: bool = False) -> float:
    """``value``, a finite number of ``unit`` from 0 (or above 0) up to a century."""
    bound = "greater than 0" if above else "0 or more"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, f"expected a number of {unit}, {bound}, got {toml_shown(value)}")
    if (value <= 0 if above else value < 0) or value > _UNIT_LIMITS.get(unit, math.inf):
        raise ConfigError(
            key,
            f"expected a number of {unit}, {bound} (at most 100 years), got {toml_shown(value)}",
        )
    return value


def toml_severity(key: str, value: object) -> Severity:
    """``value``, the name of a severity (``"P1"`` .. ``"P4"``, any case)."""
    if isinstance(value, str) and value.strip().upper() in SEVERITY_NAMES.split(", "):
        return Severity(value.strip().upper())
    raise ConfigError(key, f"expected a severity ({SEVERITY_NAMES}), got {toml_shown(value)}")


def unknown_key_message(
    unknown: Sequence[str],
    accepted: Sequence[str],
    label: str,
    elsewhere: Mapping[str, str] = MappingProxyType({}),
) -> str:
    """What to say about ``unknown`` keys in the table ``label`` that takes ``accepted``.

    The hint is a near spelling of the first unknown key, else the table
    ``elsewhere`` says it belongs in.
    """
    import difflib

    if not accepted:
        return f"unknown key; {label} takes no keys"
    first = unknown[0]
    close = difflib.get_close_matches(first, accepted, n=1)
    if close:
        hint = f" (did you mean {close[0]}?)"
    elif first in elsewhere:
        hint = f" ({first} belongs in {elsewhere[first]})"
    else:
        hint = ""
    also = f" (also unknown: {', '.join(unknown[1:])})" if unknown[1:] else ""
    return f"unknown key{also}; {label} accepts {', '.join(accepted)}{hint}"


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's content; ConfigError naming the file if unreadable or not TOML."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            str(path),
            "cannot read the file: no such file; check the path, or run incidentflow init",
        ) from None
    except IsADirectoryError:
        raise ConfigError(str(path), "is a folder; give the path of a TOML file") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(path), f"is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    return loads_toml(text, str(path))


def loads_toml(text: str, name: str) -> dict[str, Any]:
    """The TOML document ``text``; ConfigError keyed ``name`` (its file) if it is not TOML."""
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, f"not valid TOML: {exc}; fix the file there") from None


def whole(value: float) -> float:
    """Whole numbers as integers, so the TOML reads ``15`` rather than ``15.0``."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def items(key: str, value: object, accepts: str) -> Sequence[object]:
    """``value``, a TOML array; ConfigError saying what ``key`` accepts otherwise."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(key, f"expected {accepts}, got {toml_shown(value)}")
    return value


# -- each setting's TOML form ----------------------------------------------------------


@attrs.frozen
class TomlForm:
    """How one policy setting is written in TOML: declared in the field's metadata.

    Attributes:
        key: Its key in a ``[policy]`` table, e.g. ``"watch_window_minutes"``.
        help: One line saying what it sets (for comments and docs).
        accepts: What the key accepts, as errors and docs say it.
        read: The TOML value and its dotted key (for errors) → the Policy argument.
        write: The Policy value → the TOML value.

    """

    key: str
    help: str
    accepts: str
    read: Callable[[object, str], Any]
    write: Callable[[Any], Any]


def form(
    key: str,
    help: str,
    accepts: str,
    read: Callable[[object, str], Any],
    write: Callable[[Any], Any],
) -> dict[str, TomlForm]:
    """A field's metadata declaring its TOML form."""
    return {"toml": TomlForm(key, help, accepts, read, write)}


def in_unit(key: str, unit: str, help: str) -> dict[str, TomlForm]:
    """A duration written as a number of ``unit`` (0 or more)."""
    one = timedelta(**{unit: 1})

    def read(value: object, where: str) -> timedelta:
        return timedelta(**{unit: toml_number(where, value, unit=unit)})

    def write(value: timedelta) -> float:
        return whole(value / one)

    return form(key, help, f"a number of {unit}, 0 or more", read, write)


_TARGETS_ACCEPT: Final = "a table of severity = minutes, e.g. { P1 = 5, P2 = 30 }"


# -- readers shared by the policy's settings -------------------------------------------


def read_flag(value: object, where: str) -> bool:
    """``value``, ``true`` or ``false``."""
    if not isinstance(value, bool):
        raise ConfigError(where, f"expected true or false, got {toml_shown(value)}")
    return value


def read_count(value: object, where: str) -> int:
    """``value``, a whole number, 0 or more."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000:
        raise ConfigError(where, f"expected a whole number from 0 to 1000, got {toml_shown(value)}")
    return value


def read_minutes(value: object, where: str) -> timedelta:
    """``value``, a number of minutes, 0 or more."""
    return timedelta(minutes=toml_number(where, value, unit="minutes"))


def read_questions(value: object, where: str) -> tuple[str, ...]:
    """``value``, a list of triage question names, normalised (``Scope`` → ``scope``)."""
    listed = items(where, value, 'a list of question names, e.g. ["symptom", "scope"]')
    for number, item in enumerate(listed, start=1):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(
                f"{where}[{number}]",
                f'expected a question name (text), e.g. "customer_impact", got {toml_shown(item)}',
            )
    return tuple(dict.fromkeys(triage_key(str(item)) for item in listed))


def read_keys(value: object, where: str, example: str) -> tuple[str, ...]:
    """``value``, a list of keys (lowercase letters, digits and ``_ . / -``)."""
    listed = items(where, value, f"a list of names, e.g. {example}")
    found = []
    for number, item in enumerate(listed, start=1):
        try:
            found.append(_valid_key(f"{where}[{number}]", item))
        except ValidationError as exc:
            raise ConfigError(exc.field, exc.message) from None
    return tuple(dict.fromkeys(found))


def read_table(value: object, where: str, accepts: str) -> Mapping[str, Any]:
    """``value``, a TOML table; ConfigError saying what ``where`` accepts otherwise."""
    if not isinstance(value, Mapping):
        raise ConfigError(where, f"expected {accepts}, got {toml_shown(value)}")
    return value


def read_forms(
    value: object, where: str, forms: Mapping[str, TomlForm], accepts: str
) -> dict[str, Any]:
    """The settings of the table ``value`` at ``where``, each read through its form.

    Returns the arguments by field name; an unknown key is named with a near spelling.
    """
    table = read_table(value, where, accepts)
    fields = {f.key: name for name, f in forms.items()}
    unknown = sorted(str(key) for key in table if key not in fields)
    if unknown:
        raise ConfigError(
            f"{where}.{toml_key(unknown[0])}",
            unknown_key_message(unknown, list(fields), f"[{where}]"),
        )
    return {
        name: f.read(table[f.key], f"{where}.{toml_key(f.key)}")
        for name, f in forms.items()
        if f.key in table
    }


def toml_forms_of(cls: type) -> Mapping[str, TomlForm]:
    """The TOML forms ``cls``'s fields declare, by field name, in field order."""
    found = {field.name: field.metadata.get("toml") for field in attrs.fields(cls)}
    return MappingProxyType({name: f for name, f in found.items() if f is not None})
