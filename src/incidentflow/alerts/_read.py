"""Reading a webhook's JSON: each reader names the field it refuses (``alerts[3].startsAt``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from .._validate import _shown
from ..exceptions import ValidationError

__all__ = [
    "document",
    "epoch_or_time",
    "items",
    "obj",
    "optional_text",
    "string_map",
    "text",
    "time",
    "values_map",
]

#: Go's zero time: Alertmanager and Grafana send it as ``endsAt`` of a firing alert.
_GO_ZERO = datetime(1, 1, 1, tzinfo=UTC)
#: Webhook bodies larger than this are refused before parsing (10 MB).
BODY_MAX = 10_000_000
#: The most alerts one payload may carry.
ALERTS_MAX = 10_000
_DIGITS = re.compile(r"\d{9,14}\Z")


def _at(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def document(payload: object) -> Mapping[str, object]:
    """The payload as a JSON object: a mapping as is, JSON text (``str``/``bytes``) parsed."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        raw = bytes(payload)
        if len(raw) > BODY_MAX:
            raise ValidationError("payload", f"is {len(raw):,} bytes; at most {BODY_MAX:,}")
        try:
            payload = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError(
                "payload", f"is not UTF-8 text (byte {exc.start:,}); send the JSON as UTF-8"
            ) from None
    if isinstance(payload, str):
        if len(payload) > BODY_MAX:
            raise ValidationError(
                "payload", f"is {len(payload):,} characters; at most {BODY_MAX:,}"
            )
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise ValidationError(
                "payload", f"is not valid JSON{_json_problem(exc)}; send a JSON object"
            ) from None
    return obj(payload, "")


def obj(value: object, path: str) -> Mapping[str, object]:
    """``value`` if it is a JSON object (a mapping with text keys)."""
    if not isinstance(value, Mapping):
        raise ValidationError(path or "payload", f"expected a JSON object, got {_kind(value)}")
    return value


def items(parent: Mapping[str, object], key: str, path: str) -> list[Mapping[str, object]]:
    """The list of objects under ``key``: at least one, at most :data:`ALERTS_MAX`."""
    where = _at(path, key)
    value = parent.get(key)
    if value is None:
        raise ValidationError(where, "is missing; send a list of alerts")
    if not isinstance(value, list):
        raise ValidationError(where, f"expected a list, got {_kind(value)}")
    if not value:
        raise ValidationError(where, "is empty; send at least one alert")
    if len(value) > ALERTS_MAX:
        raise ValidationError(
            where, f"has {len(value):,} alerts; at most {ALERTS_MAX:,} per payload"
        )
    return [obj(item, _at(where, n)) for n, item in enumerate(value)]


def text(parent: Mapping[str, object], key: str, path: str) -> str:
    """A required, non-empty text field."""
    found = optional_text(parent, key, path)
    if not found:
        raise ValidationError(_at(path, key), "is missing or empty; it is required")
    return found


def optional_text(parent: Mapping[str, object], key: str, path: str) -> str:
    """A text field, ``""`` when absent or null; numbers are refused (send text)."""
    value = parent.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(_at(path, key), f"expected text, got {_kind(value)}")
    return value.strip()


def string_map(parent: Mapping[str, object], key: str, path: str) -> dict[str, str]:
    """An object of text values (labels, annotations); absent or null gives ``{}``."""
    value = parent.get(key)
    if value is None:
        return {}
    where = _at(path, key)
    found: dict[str, str] = {}
    for name, item in obj(value, where).items():
        if not isinstance(item, str):
            raise ValidationError(f"{where}.{name}", f"expected text, got {_kind(item)}")
        found[str(name)] = item
    return found


def values_map(parent: Mapping[str, object], key: str, path: str) -> dict[str, str]:
    """An object of any JSON values (custom details), each written as text."""
    value = parent.get(key)
    if value is None:
        return {}
    where = _at(path, key)
    if not isinstance(value, Mapping):  # PagerDuty accepts a bare string of details too
        return {"details": value if isinstance(value, str) else _written(value, where)}
    return {
        str(name): item if isinstance(item, str) else _written(item, f"{where}.{name}")
        for name, item in value.items()
    }


def _written(value: object, where: str) -> str:
    """``value`` as JSON text; a value JSON cannot hold is refused, naming ``where``."""
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        # ValueError: an int past the digits Python writes; TypeError: not a JSON value.
        raise ValidationError(
            where, f"cannot be written as JSON text (got {_kind(value)}); send plain JSON values"
        ) from None


def time(parent: Mapping[str, object], key: str, path: str, *, required: bool) -> datetime | None:
    """An RFC 3339 time with its UTC offset, in UTC; Go's zero time gives ``None``."""
    where = _at(path, key)
    value = parent.get(key)
    if value is None or value == "":
        if required:
            raise ValidationError(
                where, "is missing; send an RFC 3339 time, e.g. 2026-11-27T14:02:00Z"
            )
        return None
    if not isinstance(value, str):
        raise ValidationError(where, f"expected an RFC 3339 time as text, got {_kind(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(
            where, f"{_shown(value)} is not an RFC 3339 time; send e.g. 2026-11-27T14:02:00Z"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValidationError(
            where, f"{_shown(value)} has no UTC offset; add one, e.g. Z or +02:00"
        )
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 or 9999-12-31T23:59-01:00
        raise ValidationError(
            where, f"{_shown(value)} is out of range once in UTC; send a time in years 1 to 9999"
        ) from None
    if parsed == _GO_ZERO:
        if required:
            raise ValidationError(where, "is Go's zero time; send when the alert started")
        return None
    return parsed


def epoch_or_time(parent: Mapping[str, object], key: str, path: str) -> datetime | None:
    """Epoch milliseconds or seconds (number or digits), or an RFC 3339 time; absent: None."""
    value = parent.get(key)
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        try:  # dividing a huge int overflows too, as fromtimestamp does
            seconds = value / 1000 if value > 10**11 else value
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValidationError(
                _at(path, key), f"{_shown(value)} is out of range as an epoch time"
            ) from None
    if isinstance(value, float):
        raise ValidationError(
            _at(path, key),
            "expected whole epoch milliseconds or seconds, or an RFC 3339 time, "
            f"got {_kind(value)}",
        )
    return time(parent, key, path, required=False)


def _json_problem(exc: ValueError | RecursionError) -> str:
    """Where or why ``json.loads`` refused the text, for the message."""
    if isinstance(exc, json.JSONDecodeError):
        return f" at line {exc.lineno}, column {exc.colno}"
    if isinstance(exc, RecursionError):
        return " (it is nested too deeply)"
    return " (a number in it has too many digits to read)"  # int's limit on digits


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false", int: "a number"}
    if value is None:
        return "null"
    for kind, name in names.items():
        if isinstance(value, kind):
            return f"{name} ({_shown(value)})" if kind in (str, int, bool) else name
    if isinstance(value, float):
        return f"a number ({_shown(value)})"
    return f"a {type(value).__name__}"
