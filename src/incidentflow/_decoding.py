"""Decoders of stored records compiled once from their attrs fields: what cattrs gives, faster.

A cold load decodes a whole checkpoint: thousands of evidence items, notes and
other records, each a dict of JSON values. The shared converter dispatches on
every field of every item and collects errors as it goes; the decoder
:func:`decoder` compiles instead does, per class, one function that reads each
key, converts it as the converter would (``str(v)``, ``int(v)``, datetimes by
``datetime.fromisoformat`` and refused when naive, enums by a dict of their
values, nested records by their own decoders, ``Records`` from one list) and
writes the slots of a draft (see :mod:`incidentflow._builders`).

It checks what the converter checks, but does not say where input is
malformed: it raises whatever the first bad value raises. The caller then asks
the converter, which gives the same object or names the malformed field.
Types it does not know are decoded by the ``fallback`` hooks it is given (the
converter's), so it never decides differently from the converter.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable, Mapping
from datetime import date, datetime
from types import NoneType, UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs

from ._builders import builder, draft_class
from ._sequences import Records, StoredList

__all__ = ["Fallback", "decoder"]

T = TypeVar("T")

#: The converter's structure hook of a type (called as ``hook(value, type)``); raises if none.
Fallback = Callable[[Any], Callable[[Any, Any], Any]]

_DECODERS: dict[type, Callable[[Any], Any]] = {}
_COMPILING: set[type] = set()

_MISSING = object()

_PRIMITIVES = (str, int, float, bool)


def decoder(cls: type[T], fallback: Fallback) -> Callable[[Any], T]:
    """A function turning the dict the converter unstructured from a ``cls`` back into it.

    Kept per class: the first ``fallback`` given for a class is the one its
    decoder uses (the package has one converter).
    """
    found = _DECODERS.get(cls)
    if found is None:
        if cls in _COMPILING:  # a record holding its own type: look the decoder up when called
            return lambda value: _DECODERS[cls](value)
        _COMPILING.add(cls)
        try:
            found = _DECODERS.setdefault(cls, _Compiler(fallback).compile(cls))
        finally:
            _COMPILING.discard(cls)
    return found


def _naive(value: Any) -> datetime:
    raise ValueError(f"naive datetime {value!r} in stored data")


class _Compiler:
    """Writes the source of one class's decoder; each value it needs becomes a global of it."""

    def __init__(self, fallback: Fallback) -> None:
        self._fallback = fallback
        self._namespace: dict[str, Any] = {
            "_new": object.__new__,
            "_MISSING": _MISSING,
            "_fromiso": datetime.fromisoformat,
            "_fromisodate": date.fromisoformat,
            "_naive": _naive,
            "_Records": Records,
            "_Stored": StoredList,
            "_map": map,
            "_tuple": tuple,
            "str": str,
            "int": int,
            "float": float,
            "bool": bool,
        }
        self._count = 0

    def _name(self, prefix: str, value: Any) -> str:
        self._count += 1
        name = f"_{prefix}{self._count}"
        self._namespace[name] = value
        return name

    def _temp(self) -> str:
        self._count += 1
        return f"_v{self._count}"

    def compile(self, cls: type[T]) -> Callable[[Any], T]:
        if not attrs.has(cls):
            return self._function(cls)
        hints = typing.get_type_hints(cls)
        fields = attrs.fields(typing.cast(Any, cls))
        inline = builder(cls) is not cls
        lines = [f"def decode_{cls.__name__}(o):"]
        if inline:
            self._namespace["_draft"] = draft_class(cls)
            lines.append("    new = _new(_draft)")
        else:
            lines.append("    kw = {}")
        for field in fields:
            if not field.init:
                continue  # the converter leaves it to the class, as __init__ does
            tp = hints[field.name]
            key = repr(field.name)
            default = field.default
            if default is attrs.NOTHING:
                value = self._expression(tp, f"o[{key}]")
            elif default is None and _is_optional(tp):
                value = self._expression(tp, f"o.get({key})")  # absent and None are alike
            elif not inline:
                lines.append(f"    if {key} in o:")
                lines.append(f"        kw[{field.alias!r}] = {self._expression(tp, f'o[{key}]')}")
                continue
            else:
                temp = self._temp()
                if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                    made = f"{self._name('factory', default.factory)}()"
                else:
                    made = self._name("default", default)
                decoded = self._expression(tp, temp)
                value = f"({made} if ({temp} := o.get({key}, _MISSING)) is _MISSING else {decoded})"
            if not inline:
                lines.append(f"    kw[{field.alias!r}] = {value}")
                continue
            if field.converter is not None:
                value = f"{self._name('convert', field.converter)}({value})"
            lines.append(f"    new.{field.name} = {value}")
        if inline:
            lines += [f"    new.__class__ = {self._name('cls', cls)}", "    return new"]
        else:
            lines.append(f"    return {self._name('cls', cls)}(**kw)")
        source = "\n".join(lines)
        exec(
            compile(source, f"<incidentflow decoder of {cls.__qualname__}>", "exec"),
            self._namespace,
        )
        decode: Callable[[Any], T] = self._namespace[f"decode_{cls.__name__}"]
        return decode

    def _function(self, tp: Any) -> Callable[[Any], Any]:
        """A one-argument function decoding one value of ``tp`` (the items of a sequence)."""
        if tp in _PRIMITIVES:
            return typing.cast(Callable[[Any], Any], tp)
        if attrs.has(tp):
            return decoder(tp, self._fallback)
        source = f"def decode_item(v):\n    return {self._expression(tp, 'v')}"
        namespace = self._namespace
        exec(compile(source, f"<incidentflow decoder of {tp!r}>", "exec"), namespace)
        made: Callable[[Any], Any] = namespace.pop("decode_item")
        return made

    def _expression(self, tp: Any, value: str) -> str:
        """Python source decoding the value ``value`` (an expression) holds as ``tp``."""
        origin, args = get_origin(tp), get_args(tp)
        if tp in _PRIMITIVES:
            return f"{tp.__name__}({value})"
        if tp is datetime:
            temp = self._temp()
            return (
                f"({temp} if ({temp} := _fromiso({value})).tzinfo is not None else _naive({value}))"
            )
        if tp is date:
            return f"_fromisodate({value})"
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            members = {member.value: member for member in tp}
            return f"{self._name('members', members)}[{value}]"
        if _is_optional(tp):
            (inner,) = [arg for arg in args if arg is not NoneType]
            temp = self._temp()
            return f"(None if ({temp} := {value}) is None else {self._expression(inner, temp)})"
        if attrs.has(tp):
            return f"{self._name('decode', decoder(tp, self._fallback))}({value})"
        if origin is Records and len(args) == 1:
            item = self._name("item", self._function(args[0]))
            temp = self._temp()
            # A store's unparsed array becomes a Records that parses it on first use.
            return (
                f"({temp}.records({item}) if type({temp} := {value}) is _Stored "
                f"else _Records(_map({item}, {temp})))"
            )
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item = self._name("item", self._function(args[0]))
            return f"_tuple(_map({item}, {value}))"
        if origin is Mapping and args and all(arg in _PRIMITIVES for arg in args):
            if not value.isidentifier():  # a comprehension's iterable cannot hold a :=
                return f"{self._name('decode', self._function(tp))}({value})"
            key, item = args
            return f"{{{key.__name__}(k): {item.__name__}(v) for k, v in {value}.items()}}"
        try:
            hook = self._fallback(tp)
        except Exception:
            # No hook for the type alone: the converter passes such a field's value as it is
            # within its class (custom field mappings); the equality tests cover every field.
            return value
        return f"{self._name('hook', hook)}({value}, {self._name('type', tp)})"


def _is_optional(tp: Any) -> bool:
    origin = get_origin(tp)
    args = get_args(tp)
    return origin in (Union, UnionType) and len(args) == 2 and NoneType in args
