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
import operator
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
        # Each run of plain fields (encoded as one object) is followed by a record list
        # (encoded item by item); the fields after the last list are the tail.
        self.parts: list[tuple[tuple[tuple[str, _Hook], ...], str, _Hook]] = []
        run: list[tuple[str, _Hook]] = []
        for field in attrs.fields(Incident):
            if get_origin(field.type) is Records:
                (item_type,) = get_args(field.type)
                self.parts.append((tuple(run), field.name, conv.get_unstructure_hook(item_type)))
                run = []
            else:
                run.append((field.name, conv.get_unstructure_hook(field.type)))
        self.tail = tuple(run)
        self.kept: dict[int, tuple[object, Any, str | None]] = {}
        # Whole texts: of a record list, and of a run of plain fields, by the values' identities.
        self.texts: dict[tuple[str, tuple[int, ...]], tuple[tuple[object, ...], str]] = {}

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
        for run, name, item_hook in self.parts:
            result.update((field, hook(getattr(incident, field))) for field, hook in run)
            result[name] = [self._form(item, item_hook)[1] for item in getattr(incident, name)]
        result.update((field, hook(getattr(incident, field))) for field, hook in self.tail)
        return result

    def as_text(self, incident: Incident) -> str:
        pieces: list[str] = []
        for run, name, item_hook in self.parts:
            if run:
                pieces.append(self._run_text(incident, run))
            records = getattr(incident, name)
            pieces.append(f'"{name}":{self._list_text(name, records, item_hook)}')
        if self.tail:
            pieces.append(self._run_text(incident, self.tail))
        return "{" + ",".join(pieces) + "}"

    def _known(self, where: str, values: tuple[object, ...]) -> str | None:
        """The text kept for exactly these values (by identity) of field ``where``, if any."""
        found = self.texts.get((where, tuple(map(id, values))))
        if found is not None and all(map(operator.is_, found[0], values)):
            return found[1]
        return None

    def _keep(self, where: str, values: tuple[object, ...], text: str) -> str:
        if len(self.texts) >= KEPT_ITEMS:
            self.texts.clear()
        self.texts[(where, tuple(map(id, values)))] = (values, text)
        return text

    def _run_text(self, incident: Incident, run: tuple[tuple[str, _Hook], ...]) -> str:
        """``"a":…,"b":…`` for a run of plain fields; unchanged values reuse their text."""
        values = tuple(getattr(incident, name) for name, _ in run)
        where = run[0][0]  # runs are told apart by their first field
        text = self._known(where, values)
        if text is None:
            encoded = encode({name: hook(v) for (name, hook), v in zip(run, values, strict=True)})
            text = self._keep(where, values, encoded[1:-1])
        return text

    def _list_text(self, name: str, records: Records[Any], item_hook: _Hook) -> str:
        """``[…]`` for a record list; an unchanged list, or item, reuses its text."""
        if not records:
            return "[]"
        values = (records,)
        text = self._known(name, values)
        if text is not None:
            return text
        texts = []
        for item in records:
            found = self._form(item, item_hook)
            item_text = found[2]
            if item_text is None:
                item_text = encode(found[1])
                self.kept[id(item)] = (item, found[1], item_text)
            texts.append(item_text)
        return self._keep(name, values, f"[{','.join(texts)}]")


@functools.cache
def _encoder() -> _Encoder:
    return _Encoder()


def snapshot_dict(incident: Incident) -> dict[str, Any]:
    """``incident_to_dict(incident)``; the record items' forms are shared, never to be changed."""
    return _encoder().as_dict(incident)


def snapshot_json(incident: Incident) -> str:
    """``incident_to_dict(incident)`` as the service's JSON text."""
    return _encoder().as_text(incident)
