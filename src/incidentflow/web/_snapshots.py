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
import operator
from collections.abc import Callable, Iterable
from itertools import compress
from typing import Any, cast, get_args, get_origin

import attrs

from .._jsontext import compact_encoder
from .._model import Incident, Records
from .._serialization import converter

__all__ = ["KEPT_ANSWERS", "KEPT_ITEMS", "encode", "snapshot_dict", "snapshot_json"]

#: Record items whose forms are kept (by identity) before the cache starts afresh.
KEPT_ITEMS = 8192
#: Incidents whose last answer (each field's value and text) is kept before that cache
#: starts afresh: the incidents being worked on, not every one ever answered.
KEPT_ANSWERS = 1024
#: The service's JSON settings, Starlette's ``JSONResponse``'s own.
encode: Callable[[object], str] = compact_encoder(allow_nan=False)

_Hook = Callable[[Any], Any]


class _Encoder:
    """A snapshot's JSON, field by field; ``as_dict`` goes by runs of plain fields and lists."""

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
        # Whole texts of record lists, by the lists' identities.
        self.texts: dict[tuple[str, tuple[int, ...]], tuple[tuple[object, ...], str]] = {}
        # The last text of each list, by its first item: the next version, the same items
        # and some more (a fold appends), encodes only those.
        self.lists: dict[tuple[str, int], tuple[tuple[object, ...], str]] = {}
        # Every field in order: its key's text, its hook, and the item hook of a record list.
        self.fields: tuple[tuple[str, str, _Hook, _Hook | None], ...] = tuple(
            (field.name, f'"{field.name}":', *_hooks(conv, field.type))
            for field in attrs.fields(Incident)
        )
        self.values = cast(
            Callable[[Incident], tuple[object, ...]],
            operator.attrgetter(*(name for name, *_ in self.fields)),
        )
        # Each incident's last answer: its field values and their texts. A command's
        # snapshot keeps the objects of the fields it did not change, so only the
        # changed fields are converted again.
        self.last: dict[str, tuple[tuple[object, ...], list[str]]] = {}
        self.positions = range(len(self.fields))

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
        values = self.values(incident)
        last = self.last.get(incident.id)
        if last is None:
            pieces = [""] * len(values)
            changed: Iterable[int] = range(len(values))
        else:
            pieces = list(last[1])
            # The positions whose value is another object, found without a Python loop.
            changed = compress(self.positions, map(operator.is_not, values, last[0]))
        for n in changed:
            name, key, hook, item_hook = self.fields[n]
            value = values[n]
            if item_hook is not None:
                pieces[n] = key + self._list_text(name, cast(Records[Any], value), item_hook)
            else:
                pieces[n] = key + _value_text(hook(value))
        if len(self.last) >= KEPT_ANSWERS:
            self.last.clear()
        self.last[incident.id] = (values, pieces)
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


def _value_text(value: object) -> str:
    """``encode(value)``, without the encoder's machinery for an integer or ``None``."""
    if value.__class__ is int:
        return str(value)  # JSON's form of an integer (a bool is not of this class)
    if value is None:
        return "null"
    return encode(value)


def _hooks(conv: Any, tp: Any) -> tuple[_Hook, _Hook | None]:
    """A field's hook, and its items' hook if it is a record list."""
    if get_origin(tp) is Records:
        (item_type,) = get_args(tp)
        return conv.get_unstructure_hook(tp), conv.get_unstructure_hook(item_type)
    return conv.get_unstructure_hook(tp), None


@functools.cache
def _encoder() -> _Encoder:
    return _Encoder()


def snapshot_dict(incident: Incident) -> dict[str, Any]:
    """``incident_to_dict(incident)``; the record items' forms are shared, never to be changed."""
    return _encoder().as_dict(incident)


def snapshot_json(incident: Incident) -> str:
    """``incident_to_dict(incident)`` as the service's JSON text."""
    return _encoder().as_text(incident)
