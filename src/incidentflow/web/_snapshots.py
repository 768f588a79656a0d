"""A snapshot's JSON answer, converting only what changed since the last one.

A snapshot shares its record items with the snapshot before it (a fold
appends; an amended item is a new object), so the JSON form of each item is
kept by identity while it lives, and a command's answer converts and encodes
only the items the command added. The item is kept beside its forms, so an
identity is never reused while cached, and the cache starts afresh past a
bound. The text is exactly what ``json.dumps`` gives for ``incident_to_dict``
with the service's settings (a test compares them for every event type).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, get_args, get_origin

import attrs

from .._model import Incident, Records
from .._serialization import converter

__all__ = ["KEPT_ITEMS", "encode", "snapshot_dict", "snapshot_json"]

#: Record items whose forms are kept (by identity) before the cache starts afresh.
KEPT_ITEMS = 8192
#: The service's JSON settings, Starlette's ``JSONResponse``'s own.
encode: Callable[[object], str] = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
).encode

_Hook = Callable[[Any], Any]


class _Encoder:
    """The snapshot's fields in order: runs of plain fields, and record lists."""

    def __init__(self) -> None:
        conv = converter()
        attrs.resolve_types(Incident)
        self.fields: list[tuple[str, _Hook | None, _Hook]] = []
        # Text: each run of plain fields is encoded as one object; each record list item by item.
        self.parts: list[tuple[tuple[tuple[str, _Hook], ...], str, _Hook | None]] = []
        run: list[tuple[str, _Hook]] = []
        for field in attrs.fields(Incident):
            if get_origin(field.type) is Records:
                (item_type,) = get_args(field.type)
                item_hook = conv.get_unstructure_hook(item_type)
                self.fields.append((field.name, item_hook, list))
                self.parts.append((tuple(run), field.name, item_hook))
                run = []
            else:
                hook = conv.get_unstructure_hook(field.type)
                self.fields.append((field.name, None, hook))
                run.append((field.name, hook))
        self.tail = tuple(run)
        self.kept: dict[int, tuple[object, Any, str | None]] = {}

    def _form(self, item: object, item_hook: _Hook) -> tuple[object, Any, str | None]:
        kept = self.kept
        found = kept.get(id(item))
        if found is None or found[0] is not item:
            if len(kept) >= KEPT_ITEMS:
                kept.clear()
            found = kept[id(item)] = (item, item_hook(item), None)
        return found

    def as_dict(self, incident: Incident) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, item_hook, hook in self.fields:
            value = getattr(incident, name)
            if item_hook is None:
                result[name] = hook(value)
            else:
                result[name] = [self._form(item, item_hook)[1] for item in value]
        return result

    def as_text(self, incident: Incident) -> str:
        pieces: list[str] = []
        for run, name, item_hook in self.parts:
            if run:
                pieces.append(encode({n: hook(getattr(incident, n)) for n, hook in run})[1:-1])
            texts = []
            for item in getattr(incident, name):
                found = self._form(item, item_hook)  # type: ignore[arg-type]
                text = found[2]
                if text is None:
                    text = encode(found[1])
                    self.kept[id(item)] = (item, found[1], text)
                texts.append(text)
            pieces.append(f'"{name}":[{",".join(texts)}]')
        if self.tail:
            pieces.append(encode({n: hook(getattr(incident, n)) for n, hook in self.tail})[1:-1])
        return "{" + ",".join(pieces) + "}"


@functools.cache
def _encoder() -> _Encoder:
    return _Encoder()


def snapshot_dict(incident: Incident) -> dict[str, Any]:
    """``incident_to_dict(incident)``; the record items' forms are shared, never to be changed."""
    return _encoder().as_dict(incident)


def snapshot_json(incident: Incident) -> str:
    """``incident_to_dict(incident)`` as the service's JSON text."""
    return _encoder().as_text(incident)
