"""The immutable containers snapshots hold: Records (their lists) and FrozenMap (their mappings)."""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView
from itertools import islice
from typing import Generic, TypeVar, overload

__all__ = ["FrozenMap", "Records"]

T = TypeVar("T")
V = TypeVar("V")


class Records(Sequence[T], Generic[T]):
    """An immutable sequence that grows by sharing storage with what it grew from.

    Snapshots hold their evidence, notes and other lists as ``Records``:
    ``appended`` returns a new ``Records`` in O(1) when nothing else was appended
    to the same version, so a command on a long incident costs what it costs on
    a short one. It compares equal to another ``Records`` with the same items,
    never to a list or tuple, so a snapshot holding a list where ``Records``
    belongs does not pass for its replay.

    >>> first = Records(["a"])
    >>> second = first.appended("b")
    >>> list(first), list(second), second == Records(["a", "b"]), second == ("a", "b")
    (['a'], ['a', 'b'], True, False)
    """

    __slots__ = ("_items", "_len")

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._items: list[T] = list(items)
        self._len = len(self._items)

    @classmethod
    def _view(cls, items: list[T], length: int) -> Records[T]:
        view: Records[T] = cls.__new__(cls)
        view._items = items
        view._len = length
        return view

    def appended(self, item: T) -> Records[T]:
        """A new ``Records`` with ``item`` at the end; this one is unchanged."""
        items, length = self._items, self._len
        # An empty one never lends its list: one empty Records may serve many snapshots.
        if length and len(items) == length:
            items.append(item)
            # Another append from this same version may have won the race.
            if items[length] is item:
                return self._view(items, length + 1)
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
        if isinstance(index, slice):
            return tuple(self._items[: self._len][index])
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("Records index out of range")
        return self._items[index]

    def __iter__(self) -> Iterator[T]:
        return islice(self._items, self._len)

    def __contains__(self, value: object) -> bool:
        try:
            # list.index finds the first occurrence at C speed; later ones are
            # beyond this view only if the first is too.
            return self._items.index(value) < self._len  # type: ignore[arg-type]
        except ValueError:
            return False

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Records):
            return self._len == other._len and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

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
