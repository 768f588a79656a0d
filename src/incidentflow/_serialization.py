"""The one cattrs converter: events and snapshots to JSON-ready values and back."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar, get_args, get_origin

import cattrs

from ._decoding import decoder
from ._events import Event, event_types
from ._jsontext import compact_encoder
from ._model import Incident, Records
from .exceptions import StoreError

_dumps = compact_encoder()

__all__ = [
    "converter",
    "event_from_dict",
    "event_from_json",
    "event_to_dict",
    "event_to_json",
    "incident_from_dict",
    "incident_from_json",
    "incident_to_dict",
    "incident_to_json",
    "malformed",
    "structurer",
]

T = TypeVar("T")


def _structure_datetime(value: Any, _: type) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} in stored data")
    return parsed


def _is_records(cls: Any) -> bool:
    return get_origin(cls) is Records or cls is Records


def _unstructure_records(conv: cattrs.Converter, cls: Any) -> Callable[[Records[Any]], list[Any]]:
    (item_type,) = get_args(cls) or (Any,)
    if item_type is Any:
        return lambda records: [conv.unstructure(item) for item in records]
    # The item's hook is looked up once, not dispatched again for every item.
    unstructure = conv.get_unstructure_hook(item_type)
    return lambda records: [unstructure(item) for item in records]


def _structure_records(conv: cattrs.Converter, cls: Any) -> Callable[[Any, Any], Records[Any]]:
    (item_type,) = get_args(cls) or (Any,)
    structure = conv.get_structure_hook(item_type)
    return lambda value, _: Records(structure(item, item_type) for item in value)


@functools.cache
def converter() -> cattrs.Converter:
    """The shared converter, built on first use."""
    conv = cattrs.Converter()
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(date, date.isoformat)
    conv.register_structure_hook(date, lambda v, _: date.fromisoformat(v))
    conv.register_unstructure_hook_factory(_is_records, lambda t: _unstructure_records(conv, t))
    conv.register_structure_hook_factory(_is_records, lambda t: _structure_records(conv, t))
    types = event_types()

    def unstructure_event(event: Event) -> dict[str, Any]:
        return {
            "incident_id": event.incident_id,
            "seq": event.seq,
            "type": event.type,
            "at": event.at.isoformat(),
            "actor": event.actor,
            "data": conv.unstructure(event.data, unstructure_as=type(event.data)),
            "idempotency_key": event.idempotency_key,
            "schema_version": event.schema_version,
        }

    def structure_event(value: Any, _: type) -> Event:
        data_type = types[value["type"]]
        return Event(
            incident_id=value["incident_id"],
            seq=value["seq"],
            at=_structure_datetime(value["at"], datetime),
            actor=value["actor"],
            data=conv.structure(value["data"], data_type),
            idempotency_key=value.get("idempotency_key"),
            schema_version=value.get("schema_version", 1),
        )

    conv.register_unstructure_hook(Event, unstructure_event)
    conv.register_structure_hook(Event, structure_event)
    return conv


def event_to_dict(event: Event) -> dict[str, Any]:
    """An event as JSON-ready values."""
    result: dict[str, Any] = converter().unstructure(event)
    return result


def event_from_dict(value: dict[str, Any]) -> Event:
    """An event from :func:`event_to_dict`'s output; StoreError if malformed."""
    try:
        return converter().structure(value, Event)
    except (KeyError, TypeError, ValueError, cattrs.BaseValidationError) as exc:
        raise StoreError(f"malformed stored event: {exc}") from exc


def event_to_json(event: Event) -> str:
    """An event as one line of JSON."""
    return _dumps(event_to_dict(event))


def _loaded(text: object, what: str) -> Any:
    """``json.loads(text)``, or StoreError saying why ``what`` is not JSON."""
    if not isinstance(text, (str, bytes, bytearray)):
        raise StoreError(
            f"{what} is not JSON: expected text (str or bytes), got {type(text).__name__}"
        )
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StoreError(f"{what} is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise StoreError(f"{what} is not JSON: it is nested too deeply to read") from exc


def event_from_json(line: str) -> Event:
    """An event from one line of JSON; StoreError if malformed."""
    return event_from_dict(_loaded(line, "stored event"))


def incident_to_dict(incident: Incident) -> dict[str, Any]:
    """A snapshot as JSON-ready values."""
    result: dict[str, Any] = converter().unstructure(incident)
    return result


_STRUCTURERS: dict[type[Any], Callable[[Any], Any]] = {}


def structurer(cls: type[T]) -> Callable[[Any], T]:
    """What ``converter().structure(value, cls)`` does, by a decoder compiled for ``cls``.

    Input the compiled decoder refuses goes to the converter, which decodes it
    the same way or raises naming the malformed field.
    """
    found = _STRUCTURERS.get(cls)
    if found is None:
        found = _STRUCTURERS.setdefault(cls, _structurer(cls))
    return found


def _structurer(cls: type[T]) -> Callable[[Any], T]:
    conv = converter()
    fast = decoder(cls, conv.get_structure_hook)
    slow = conv.get_structure_hook(cls)

    def structure(value: Any) -> T:
        try:
            return fast(value)
        except Exception:  # refused: the converter decodes it alike, or names what is wrong
            result: T = slow(value, cls)
            return result

    return structure


def malformed(exc: Exception) -> str:
    """What is wrong, with the path of each malformed field (``$.evidence[3].at``)."""
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    return str(exc)


def incident_from_dict(value: dict[str, Any]) -> Incident:
    """A snapshot from :func:`incident_to_dict`'s output; StoreError if malformed."""
    try:
        if "roles" not in value and "commander" in value:
            # Written before roles: the commander was the only one.
            value = {**value, "roles": {"commander": value["commander"]}}
        return structurer(Incident)(value)
    except (KeyError, TypeError, ValueError, cattrs.BaseValidationError) as exc:
        raise StoreError(f"malformed stored snapshot: {malformed(exc)}") from exc


def incident_to_json(incident: Incident) -> str:
    """A snapshot as JSON."""
    return _dumps(incident_to_dict(incident))


def incident_from_json(text: str) -> Incident:
    """A snapshot from JSON; StoreError if malformed."""
    return incident_from_dict(_loaded(text, "stored snapshot"))
