"""Checks and TOML text shared by the configuration's tables."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from .._toml import toml_key, toml_number, toml_severity, toml_shown
from ..exceptions import ConfigError
from ..notifiers._checks import check_incident_url, check_url

__all__ = [
    "address",
    "each",
    "env_name",
    "env_names",
    "flat_lists",
    "from_env",
    "frozen_mapping",
    "http_url",
    "instance",
    "key_text",
    "line",
    "link",
    "meta",
    "number",
    "one_of",
    "port_number",
    "rekey",
    "severity_name",
    "tidy",
    "validated",
    "wait_seconds",
    "where",
    "within",
]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def meta(help: str, accepts: str) -> dict[str, str]:
    """Field metadata: a one-line ``help`` (for comments and docs) and what it ``accepts``."""
    return {"help": help, "accepts": accepts}


# -- keys ------------------------------------------------------------------------------


def key_text(path: Iterable[str | int]) -> str:
    """A path of keys and 0-based list indexes as a dotted TOML key, lists 1-based.

    A part starting with NUL is a dotted key written already (from a ConfigError).
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += toml_key(part + 1)
        elif part.startswith("\x00"):
            text += ("." if text else "") + part[1:]
        else:
            text += ("." if text else "") + toml_key(part)
    return text


def where(source: Path | str | None, *parts: str) -> str:
    """A ConfigError key: ``"<file>: <dotted.key>"``, or the dotted key without a file."""
    key = ".".join(p for p in parts if p)
    if source is None:
        return key or "config"
    return f"{source}: {key}" if key else str(source)


def rekey(exc: ConfigError, key: str) -> ConfigError:
    """``exc``'s message under another key."""
    return ConfigError(key, exc.message)


# -- checks of single values: (dotted key, value) -> None or ConfigError ---------------


def number(unit: str, *, above: bool = False) -> Callable[[str, Any], None]:
    """A check that a value is a number of ``unit`` from 0 (or above 0)."""

    def check(key: str, value: object) -> None:
        toml_number(key, value, unit=unit, above=above)

    return check


def severity_name(key: str, value: object) -> None:
    """A check that a value names a severity."""
    toml_severity(key, value)


def env_name(key: str, value: object) -> None:
    """``value`` names an environment variable; a secret written here instead is not echoed."""
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        shown = toml_shown(value) if not isinstance(value, str) else "a value that is not one"
        raise ConfigError(
            key,
            "expected the name of an environment variable (letters, digits and _, "
            f"e.g. PAGER_SECRET), got {shown}; the secret itself belongs in that variable",
        )


def line(what: str) -> Callable[[str, Any], None]:
    """A check that a value is ``what``: non-empty text on one line."""

    def check(key: str, value: object) -> None:
        if not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n\x00"):
            raise ConfigError(
                key, f"expected {what} (non-empty, one line), got {toml_shown(value)}"
            )

    return check


def http_url(key: str, value: str) -> None:
    """A check that a value is an http(s) URL."""
    check_url(value, key)


def link(key: str, value: str | None) -> None:
    """A check that a value is a link to an incident, with ``{id}`` or ``{slug}``."""
    try:
        check_incident_url(value, key)
    except ConfigError as exc:
        raise rekey(exc, key) from None


def address(key: str, value: object) -> None:
    """A check that a value is an email address."""
    user, at, domain = value.rpartition("@") if isinstance(value, str) else ("", "", "")
    if not at or not user or "." not in domain or any(c.isspace() for c in str(value)):
        raise ConfigError(
            key, f"expected an email address (user@example.com), got {toml_shown(value)}"
        )


def wait_seconds(key: str, value: object) -> None:
    """A check that a value is a number of seconds above 0, at most 600."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 600:
        raise ConfigError(
            key, f"expected a number of seconds above 0, at most 600, got {toml_shown(value)}"
        )


def one_of(accepted: Sequence[str], *, upper: bool = False) -> Callable[[str, object], None]:
    """A check that a value is one of ``accepted`` (compared in upper case if ``upper``)."""

    def check(key: str, value: object) -> None:
        given = value.upper() if upper and isinstance(value, str) else value
        if given not in accepted:
            raise ConfigError(
                key, f"expected one of {', '.join(accepted)}, got {toml_shown(value)}"
            )

    return check


def within(
    low: float, high: float, what: str, *, below_high: bool = False
) -> Callable[[str, object], None]:
    """A check that a number is from ``low`` to ``high`` (``high`` excluded if ``below_high``)."""

    def check(key: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"expected {what}, got {toml_shown(value)}")
        inside = low <= value < high if below_high else low <= value <= high
        if not inside:
            raise ConfigError(key, f"expected {what}, got {toml_shown(value)}")

    return check


def port_number(key: str, value: object) -> None:
    """A check that a value is a TCP port."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ConfigError(key, f"expected a TCP port from 1 to 65535, got {toml_shown(value)}")


def env_names(key: str, value: Mapping[str, str]) -> None:
    """A check of a table of HTTP header name = environment variable."""
    for header, name in value.items():
        if not _HEADER_NAME.fullmatch(header):
            raise ConfigError(f"{key}.{header}", "expected an HTTP header name, e.g. Authorization")
        env_name(f"{key}.{header}", name)


def from_env(environ: Mapping[str, str], key: str, name: str, what: str) -> str:
    """The value of environment variable ``name``, which holds ``what``; ConfigError if unset."""
    value = environ.get(name)
    if value is None:
        raise ConfigError(
            key, f"the environment variable {name} is not set; export {name} holding {what}"
        )
    if not value.strip():
        raise ConfigError(key, f"the environment variable {name} is empty; set it to {what}")
    return value


# -- attrs validators from those checks ------------------------------------------------


def validated(
    check: Callable[[str, Any], None],
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator running ``check(field name, value)`` unless the value is None."""

    def validator(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            check(attribute.name, value)

    return validator


def each(check: Callable[[str, Any], None]) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator running ``check`` on each item of a list (1-based key)."""

    def validator(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        for position, item in enumerate(value or (), start=1):
            check(f"{attribute.name}[{position}]", item)

    return validator


def instance(
    kind: type | tuple[type, ...], what: str
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator: the value is a ``kind`` (a bool only where ``kind`` says so)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)

    def validator(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) and bool not in kinds:
            raise ConfigError(attribute.name, f"expected {what}, got {value!r}")
        if not isinstance(value, kind):
            raise ConfigError(attribute.name, f"expected {what}, got {type(value).__name__}")

    return validator


def frozen_mapping(value: Mapping[str, str] | None) -> Mapping[str, str]:
    """A read-only copy of ``value`` (``None``: empty)."""
    return MappingProxyType(dict(value or {}))


# -- writing TOML ----------------------------------------------------------------------


def tidy(value: Any) -> Any:
    """Whole floats as integers (``15`` rather than ``15.0``), in nested tables and lists."""
    if isinstance(value, dict):
        return {k: tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tidy(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def flat_lists(text: str) -> str:
    """Short lists on one line: ``["P1", "P2"]`` instead of one item per line."""
    return re.sub(
        r"\[\n((?:    .*\n)+?)\]",
        lambda m: "[" + ", ".join(item.strip().rstrip(",") for item in m[1].splitlines()) + "]",
        text,
    )
