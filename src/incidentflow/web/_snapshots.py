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
from typing import Any, cast, get_args, get_origin

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
        # Each run's values in one C call (a tuple even for a run of one field).
        self.getters: dict[str, Callable[[Incident], tuple[object, ...]]] = {
            run[0][0]: _getter(tuple(name for name, _ in run))
            for run in (*(part[0] for part in self.parts), self.tail)
            if run
        }
        self.kept: dict[int, tuple[object, Any, str | None]] = {}
        # Whole texts: of a record list, and of a run of plain fields, by the values' identities.
        self.texts: dict[tuple[str, tuple[int, ...]], tuple[tuple[object, ...], str]] = {}
        # The last text of each list, by its first item: the next version, the same items
        # and some more (a fold appends), encodes only those.
        self.lists: dict[tuple[str, int], tuple[tuple[object, ...], str]] = {}

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
        where = run[0][0]  # runs are told apart by their first field
        values = self.getters[where](incident)
        text = self._known(where, values)
        if text is None:
            encoded = encode({name: hook(v) for (name, hook), v in zip(run, values, strict=True)})
            text = self._keep(where, values, encoded[1:-1])
        return text

    def _list_text(self, name: str, records: Records[Any], item_hook: _Hook) -> str:
        """``[…]`` for a record list; an unchanged list, or its items, reuse their text."""
        if not records:
            return "[]"
        values = (records,)
        text = self._known(name, values)
        if text is not None:
            return text
        items = tuple(records)
        lineage = (name, id(items[0]))
        before = self.lists.get(lineage)
        if (
            before is not None
            and len(before[0]) < len(items)
            and all(map(operator.is_, before[0], items))  # the same items first, by identity
        ):
            start, texts = len(before[0]), [before[1][:-1]]  # its text without the "]"
        else:
            start, texts = 0, ["["]
        for item in items[start:]:
            texts.append(self._item_text(item, item_hook))
        text = texts[0] + ",".join(texts[1:]) if start == 0 else ",".join(texts)
        text += "]"
        if len(self.lists) >= KEPT_ITEMS:
            self.lists.clear()
        self.lists[lineage] = (items, text)
        return self._keep(name, values, text)

    def _item_text(self, item: object, item_hook: _Hook) -> str:
        found = self._form(item, item_hook)
        item_text = found[2]
        if item_text is None:
            item_text = encode(found[1])
            self.kept[id(item)] = (item, found[1], item_text)
        return item_text


def _getter(names: tuple[str, ...]) -> Callable[[Incident], tuple[object, ...]]:
    if len(names) == 1:
        one = operator.attrgetter(names[0])
        return lambda incident: (one(incident),)
    return cast(Callable[[Incident], tuple[object, ...]], operator.attrgetter(*names))


@functools.cache
def _encoder() -> _Encoder:
    return _Encoder()


def snapshot_dict(incident: Incident) -> dict[str, Any]:
    """``incident_to_dict(incident)``; the record items' forms are shared, never to be changed."""
    return _encoder().as_dict(incident)


def snapshot_json(incident: Incident) -> str:
    """``incident_to_dict(incident)`` as the service's JSON text."""
    return _encoder().as_text(incident)
