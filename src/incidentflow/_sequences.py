"""The immutable containers snapshots hold: Records (their lists) and FrozenMap (their mappings)."""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
    ValuesView,
)
from itertools import islice
from typing import Any, Generic, TypeVar, overload

from .exceptions import StoreError

__all__ = ["FrozenMap", "Records", "StoredList"]

_new = object.__new__

T = TypeVar("T")
V = TypeVar("V")


#: A JSON array's text, or consecutive arrays' texts whose items make one list; a
#: store may keep a part zlib-compressed (bytes), expanded only when it is read.
Text = str | tuple[str | bytes, ...]


def _expanded(part: str | bytes) -> str:
    """One part of a ``Text`` as JSON text."""
    return part if isinstance(part, str) else zlib.decompress(part).decode("utf-8")


def _join(texts: tuple[str | bytes, ...]) -> str:
    """Consecutive JSON arrays' texts as one array's text."""
    parts = (_expanded(text) for text in texts)
    return f"[{','.join(text[1:-1] for text in parts if len(text) > 2)}]"


class _Stored(Generic[T]):
    """The JSON text of the first ``count`` items of the list some ``Records`` share.

    A ``Records`` read from a store starts *unread*: ``items`` holds only what was
    appended after the stored items, and ``read(text)`` gives those when the
    first is needed; the list then gets them in front, in place, so every
    ``Records`` sharing it sees them. Once read, the text stays as the encoding
    of those items, so writing the list again encodes only the new ones.

    ``mark`` is a store's note of where it keeps the first ``marked`` items
    (:meth:`Records.mark`), so its next write sends only the ones after them.
    """

    __slots__ = ("count", "items", "lock", "mark", "marked", "read", "text")

    def __init__(
        self,
        items: list[T],
        text: Text | None,
        count: int,
        read: Callable[[Text], list[T]] | None,
        mark: object = None,
        marked: int = 0,
    ) -> None:
        self.items = items
        self.text = text
        self.count = count
        self.read = read
        self.mark = mark
        self.marked = marked
        self.lock = threading.Lock()

    def fill(self) -> list[T]:
        """All the items, reading the stored ones first if they are not read yet."""
        with self.lock:
            read = self.read
            if read is not None and self.text is not None:
                prefix = read(self.text)
                if len(prefix) != self.count:
                    raise StoreError(
                        f"a stored list holds {len(prefix)} items where {self.count} were "
                        "written; the store is damaged"
                    )
                self.items[:0] = prefix
                self.read = None
        return self.items


class StoredList:
    """A JSON array of ``count`` items a store read and left unparsed, for :meth:`Records.unread`.

    A snapshot decoder given one where a ``Records`` belongs makes a ``Records``
    that parses it on first use. ``where`` names it in the error a damaged one raises;
    ``mark`` is the store's note of where it keeps these items (:meth:`Records.mark`).
    """

    __slots__ = ("count", "mark", "text", "where")

    def __init__(self, text: Text, count: int, where: str, mark: object = None) -> None:
        self.text = text
        self.count = count
        self.where = where
        self.mark = mark

    def records(self, item: Callable[[Any], T]) -> Records[T]:
        """The items, each decoded by ``item`` when the first is needed."""
        where = self.where

        def read(text: Text) -> list[T]:
            try:
                items: list[T] = []
                for part in (text,) if isinstance(text, str) else text:
                    values = json.loads(_expanded(part))
                    if not isinstance(values, list):
                        raise TypeError(f"expected a JSON array, got {type(values).__name__}")
                    items += map(item, values)
                return items
            except Exception as exc:  # a damaged store: say where, whatever the decoder raised
                raise StoreError(f"{where} cannot be read: {exc!r}") from exc

        return Records.unread(self.text, self.count, read, mark=self.mark)


class Records(Sequence[T], Generic[T]):
    """An immutable sequence that grows by sharing storage with what it grew from.

    Snapshots hold their evidence, notes and other lists as ``Records``:
    ``appended`` returns a new ``Records`` in O(1) when nothing else was appended
    to the same version, so a command on a long incident costs what it costs on
    a short one. It compares equal to another ``Records`` with the same items,
    never to a list or tuple, so a snapshot holding a list where ``Records``
    belongs does not pass for its replay.

    A store may hand out a ``Records`` whose stored items are parsed on first use
    (:meth:`unread`): its length and ``appended`` need no item, so a command that
    only appends never parses the history it appends to. :meth:`json_text`
    reuses the stored text, so writing it back encodes only the new items.

    >>> first = Records(["a"])
    >>> second = first.appended("b")
    >>> list(first), list(second), second == Records(["a", "b"]), second == ("a", "b")
    (['a'], ['a', 'b'], True, False)
    """

    # While ``_stored`` is set, its ``items`` is the list: one attribute to swap.
    __slots__ = ("_items", "_len", "_stored")

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._items: list[T] = list(items)
        self._len = len(self._items)
        self._stored: _Stored[T] | None = None

    @classmethod
    def _view(cls, items: list[T], length: int, stored: _Stored[T] | None = None) -> Records[T]:
        view: Records[T] = cls.__new__(cls)
        view._items = items
        view._len = length
        view._stored = stored
        return view

    @classmethod
    def unread(
        cls, text: Text, count: int, read: Callable[[Text], list[T]], *, mark: object = None
    ) -> Records[T]:
        """``count`` stored items, held as the JSON array ``text`` until one is needed.

        ``text`` may also be consecutive arrays (a store's chunks), joined only if
        :meth:`json_text` needs one text.

        ``read(text)`` gives the items; it runs at most once, on the first use
        that needs an item, and what it raises (a damaged store) is raised there.
        ``mark`` is the store's note of where it keeps them (:meth:`mark`).
        """
        if count <= 0:
            return cls()
        stored = _Stored([], text, count, read, mark, count if mark is not None else 0)
        return cls._view(stored.items, count, stored)

    def mark(self, mark: object | None = None) -> tuple[object, int] | None:
        """Leave a store's note (``mark``) that it keeps these items; or read the note.

        With ``mark``, the note says the store holds all of this ``Records``'s
        items; without, it gives the note and how many items it covers, if a
        note covers no more than this one holds (``Records`` grown from this one
        share it). A store compares the note with what it holds before it trusts it.
        """
        stored = self._stored
        if mark is not None:
            if not self._len:
                return None
            if stored is None:
                # The same list, with no text yet: a note alone.
                self._stored = _Stored(self._items, None, 0, None, mark, self._len)
                return None
            with stored.lock:
                if stored.read is None or self._len == stored.count:
                    stored.mark, stored.marked = mark, self._len
                    return None
            # Unread with items after the stored ones: this one alone moves to a note of all.
            self._stored = _Stored([], stored.text, stored.count, stored.read, mark, self._len)
            self._stored.items.extend(stored.items[: self._len - stored.count])
            return None
        if stored is None:
            return None
        with stored.lock:
            if stored.mark is None or stored.marked > self._len:
                return None
            return stored.mark, stored.marked

    def after(self, count: int) -> list[T]:
        """The items after the first ``count``, parsing the stored ones only if they are needed."""
        stored = self._stored
        if stored is not None and stored.read is not None:
            with stored.lock:
                if stored.read is not None and count >= stored.count:
                    return stored.items[count - stored.count : self._len - stored.count]
        return self._all()[count : self._len]

    def _all(self) -> list[T]:
        """The list whose first ``_len`` items are these, read if need be."""
        stored = self._stored
        if stored is None:
            return self._items
        return stored.items if stored.read is None else stored.fill()

    def json_text(self, encode: Callable[[list[T]], str]) -> str:
        """These items as a JSON array, ``encode`` making the array of a list of items.

        The stored text of the first items is reused and only the rest encoded;
        the result is remembered for the next call.
        """
        length = self._len
        stored = self._stored
        known: str | None = None
        if stored is not None:
            with stored.lock:
                unread = stored.read is not None
                if 0 < stored.count <= length and stored.text is not None:
                    if not isinstance(stored.text, str):
                        stored.text = _join(stored.text)
                    known, count = stored.text, stored.count
                    rest = stored.items[: length - count] if unread else stored.items[count:length]
        if known is None:
            return self._remember(encode(list(self)), stored)
        if not rest:
            return known
        return self._remember(known[:-1] + "," + encode(rest)[1:], stored)

    def _remember(self, text: str, stored: _Stored[T] | None) -> str:
        length = self._len
        if not length:
            return text
        if stored is None:
            # ``_items`` is this one's list only while no ``_Stored`` holds it.
            self._stored = _Stored(self._items, text, length, None)
            return text
        with stored.lock:
            if stored.read is None:
                # Read: every Records sharing the list sees the same first items.
                if stored.count < length:
                    stored.text, stored.count = text, length
                return text
            read, mark, marked = stored.read, stored.mark, stored.marked
        # Unread: this one alone moves to a stored text of all its items.
        self._stored = _Stored([], text, length, read, mark, marked)
        return text

    def appended(self, item: T) -> Records[T]:
        """A new ``Records`` with ``item`` at the end; this one is unchanged."""
        stored, length = self._stored, self._len
        if stored is None:
            items = self._items
        elif stored.read is None:
            items = stored.items
        else:
            with stored.lock:
                if stored.read is not None:
                    items = stored.items
                    if len(items) == length - stored.count:
                        items.append(item)
                        return self._view(items, length + 1, stored)
            items = stored.fill()  # another append from this version won: read, then copy
        # An empty one never lends its list: one empty Records may serve many snapshots.
        if length and len(items) == length:
            items.append(item)
            # Another append from this same version may have won the race.
            if items[length] is item:
                view: Records[T] = _new(self.__class__)  # _view, inlined: every fold of an append
                view._items = items
                view._len = length + 1
                view._stored = stored
                return view
        fresh = items[:length]
        fresh.append(item)
        return self._view(fresh, length + 1)

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...
    def __getitem__(self, index: int | slice) -> T | tuple[T, ...]:
        items = self._items if self._stored is None else self._all()
        if isinstance(index, slice):
            return tuple(items[: self._len][index])
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("Records index out of range")
        return items[index]

    def __iter__(self) -> Iterator[T]:
        return islice(self._items if self._stored is None else self._all(), self._len)

    def __contains__(self, value: object) -> bool:
        items = self._items if self._stored is None else self._all()
        try:
            # list.index finds the first occurrence at C speed; later ones are
            # beyond this view only if the first is too.
            return items.index(value) < self._len  # type: ignore[arg-type]
        except ValueError:
            return False

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Records):
            return self._len == other._len and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __reduce__(self) -> tuple[type[Records[T]], tuple[list[T]]]:
        return (type(self), (list(self),))

    def __repr__(self) -> str:
        return f"Records({list(self)!r})"


class FrozenMap(Mapping[str, V]):
    """A read-only mapping: labels, custom fields and roles on a snapshot.

    It compares equal to any mapping with the same items (as a dict does),
    pickles (a snapshot crosses process boundaries), and offers no way to
    change it, so no caller can alter a snapshot another holds.

    >>> labels = FrozenMap({"service": "checkout"})
    >>> labels["service"], labels == {"service": "checkout"}, dict(labels)
    ('checkout', True, {'service': 'checkout'})
    """

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[str, V] | Iterable[tuple[str, V]] = ()) -> None:
        self._data: dict[str, V] = dict(items)

    def __getitem__(self, key: str) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    # The dict's own views and lookups run in C; they offer no way to change it either.
    @overload
    def get(self, key: str, /) -> V | None: ...
    @overload
    def get(self, key: str, /, default: V | T) -> V | T: ...
    def get(self, key: str, /, default: object = None) -> object:
        """The value for ``key``, else ``default``."""
        return self._data.get(key, default)

    def keys(self) -> KeysView[str]:
        """The keys, in insertion order."""
        return self._data.keys()

    def values(self) -> ValuesView[V]:
        """The values, in insertion order."""
        return self._data.values()

    def items(self) -> ItemsView[str, V]:
        """The (key, value) pairs, in insertion order."""
        return self._data.items()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type[FrozenMap[V]], tuple[dict[str, V]]]:
        return (type(self), (self._data,))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"
