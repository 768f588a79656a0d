"""Fast constructors for frozen attrs records: what ``cls(...)`` gives, built for the hot path.

attrs' frozen ``__init__`` writes each slot through ``object.__setattr__``, by
name; every command builds a few records (its payload, the event envelope, the
commit, the items its fold adds). A builder writes the slots of a *draft*, a
writable subclass with the same layout, then gives the object its real class:
the result is exactly the object ``cls(...)`` makes, for a few times less.

A class the trick does not fit (validators, hooks, fields left out of
``__init__``, no slots) gets ``cls`` itself as its builder, so a builder is
always correct; a test compares every builder in use with its class.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import attrs

__all__ = ["builder", "compile_copier", "copier", "draft_class", "is_draft"]

T = TypeVar("T")

_DRAFT_MARK = "__incidentflow_draft_of__"


_DRAFTS: dict[type, type] = {}
_BUILDERS: dict[type, Callable[..., Any]] = {}


def draft_class(cls: type[T]) -> type[T]:
    """A writable subclass of the slotted ``cls`` adding no slots: its instances can become ``cls``.

    ``object``'s own ``__setattr__`` and ``__delattr__`` let CPython write the
    slots directly; the frozen class's hooks stay on ``cls``.
    """
    found = _DRAFTS.get(cls)
    if found is None:
        found = _DRAFTS.setdefault(cls, _draft_class(cls))
    return found


def _draft_class(cls: type) -> type:
    namespace: dict[str, Any] = {
        "__slots__": (),
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
        "__module__": cls.__module__,
        "__doc__": f"A {cls.__name__} being built; it becomes a {cls.__name__} when done.",
        _DRAFT_MARK: cls,
    }
    return type(f"_{cls.__name__}Draft", (cls,), namespace)


def is_draft(cls: type) -> bool:
    """True for a class :func:`draft_class` made (kept out of listings of subclasses)."""
    return _DRAFT_MARK in cls.__dict__


def _fits(cls: type) -> bool:
    """True when ``cls(...)`` only stores its arguments, defaults and converted values."""
    if not attrs.has(cls) or "__slots__" not in cls.__dict__ or "__dict__" in dir(cls):
        return False
    if any(hasattr(cls, hook) for hook in ("__attrs_pre_init__", "__attrs_post_init__")):
        return False
    init = getattr(cls.__init__, "__code__", None)
    if init is None or not init.co_filename.startswith("<attrs generated"):
        return False  # an __init__ written by hand may check or compute: it must run
    # A slot that is no field (a cached hash, say) would be left unset by a builder.
    slots = {name for klass in cls.__mro__ for name in klass.__dict__.get("__slots__", ())}
    if slots - {"__weakref__"} != {field.name for field in attrs.fields(cls)}:
        return False
    for field in attrs.fields(cls):
        if not field.init or field.validator is not None:
            return False
        if isinstance(field.converter, attrs.Converter):  # may take self or the field
            return False
        default = field.default
        if isinstance(default, attrs.Factory) and default.takes_self:  # type: ignore[arg-type]
            return False
    return True


def builder(cls: type[T]) -> Callable[..., T]:
    """A function taking the arguments of ``cls(...)`` and returning what it returns."""
    found = _BUILDERS.get(cls)
    if found is None:
        found = _BUILDERS.setdefault(cls, _builder(cls) if _fits(cls) else cls)
    return found


def _builder(cls: type) -> Callable[..., Any]:
    draft: type = draft_class(cls)
    namespace: dict[str, Any] = {"_new": object.__new__, "_draft": draft, "_cls": cls}
    positional: list[str] = []
    keyword: list[str] = []
    body = ["    new = _new(_draft)"]
    for field in attrs.fields(cls):
        parameter = field.alias
        value = parameter
        default = field.default
        if default is attrs.NOTHING:
            signature = parameter
        elif isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            namespace[f"_factory_{parameter}"] = default.factory
            signature = f"{parameter}=_NOTHING"
            namespace["_NOTHING"] = attrs.NOTHING
            body.append(f"    if {parameter} is _NOTHING: {parameter} = _factory_{parameter}()")
        else:
            namespace[f"_default_{parameter}"] = default
            signature = f"{parameter}=_default_{parameter}"
        if field.converter is not None:
            namespace[f"_convert_{parameter}"] = field.converter
            value = f"_convert_{parameter}({parameter})"
        (keyword if field.kw_only else positional).append(signature)
        body.append(f"    new.{field.name} = {value}")
    parameters = ", ".join(positional + (["*", *keyword] if keyword else []))
    lines = [f"def build({parameters}):", *body, "    new.__class__ = _cls", "    return new"]
    source = "\n".join(lines)
    exec(compile(source, f"<incidentflow builder of {cls.__qualname__}>", "exec"), namespace)
    built: Callable[..., Any] = namespace["build"]
    return built


_COPIERS: dict[tuple[type, tuple[str, ...]], Callable[..., Any]] = {}


def copier(cls: type[T], *setting: str) -> Callable[..., T]:
    """``attrs.evolve`` for the slotted, frozen ``cls``: a copy with some fields changed.

    The copy takes the instance, then a value for each field named in
    ``setting``, in that order, then any other changes by keyword. Changes are
    given by the names ``cls(...)`` takes and converted as it would convert
    them; a name it does not take raises TypeError.
    """
    found = _COPIERS.get((cls, setting))
    if found is None:
        made = compile_copier(cls, setting) if _fits(cls) else _evolving(cls, setting)
        found = _COPIERS.setdefault((cls, setting), made)
    return found


def _evolving(cls: type[T], setting: tuple[str, ...]) -> Callable[..., T]:
    """A copier through ``attrs.evolve``, for a class whose ``__init__`` does more than store."""

    def evolve(inst: T, /, *values: Any, **changes: Any) -> T:
        return attrs.evolve(inst, **dict(zip(setting, values, strict=True)), **changes)  # type: ignore[misc]

    return evolve


def compile_copier(cls: type[T], setting: tuple[str, ...] = ()) -> Callable[..., T]:
    """A new copier of ``cls`` (see :func:`copier`), compiled from its fields."""
    # Each slot is written on a draft, then the changes are set, through converters if any.
    fields = attrs.fields(cast(Any, cls))
    by_alias = {f.alias: f for f in fields}
    unknown = sorted(name for name in setting if name not in by_alias)
    if unknown:
        raise TypeError(f"unknown fields: {unknown}")
    namespace: dict[str, Any] = {
        "_cls": cls,
        "_draft": draft_class(cls),
        "_new": object.__new__,
        "_slot": {f.alias: f.name for f in fields},
        "_converters": {f.alias: f.converter for f in fields if f.converter is not None},
    }
    # Locals start with "_": an alias never does, so a field cannot shadow one.
    lines = [f"def replace(_inst, /, {''.join(f'{name}, ' for name in setting)}**_changes):"]
    if not setting:
        # The fields a call changes pick a copier that sets them as it copies, compiled once.
        by_changes: dict[tuple[str, ...], Callable[..., T]] = {}
        namespace["_by_changes"] = by_changes
        namespace["_changing"] = functools.partial(_changing, cls, by_changes)
        lines += [
            "    if _changes:",
            "        if len(_changes) == 1:  # a fold's usual call: one field",
            "            for _name, _value in _changes.items():",
            "                _set = _by_changes.get((_name,))",
            "                if _set is not None:",
            "                    return _set(_inst, _value)",
            "        _names = tuple(_changes)",
            "        _set = _by_changes.get(_names)",
            "        if _set is None:",
            "            _set = _changing(_names)",
            "        return _set(_inst, *_changes.values())",
        ]
    lines.append("    _copy = _new(_draft)")
    for field in fields:
        if field.alias not in setting:
            lines.append(f"    _copy.{field.name} = _inst.{field.name}")
        elif field.converter is None:
            lines.append(f"    _copy.{field.name} = {field.alias}")
        else:
            lines.append(f"    _copy.{field.name} = _converters[{field.alias!r}]({field.alias})")
    lines += [
        "    if _changes:",
        "        if not _changes.keys() <= _slot.keys():",
        "            raise TypeError(f'unknown fields: {sorted(_changes.keys() - _slot.keys())}')",
        "        for _name, _value in _changes.items():",
        "            _convert = _converters.get(_name)",
        "            _value = _value if _convert is None else _convert(_value)",
        "            setattr(_copy, _slot[_name], _value)",
        "    _copy.__class__ = _cls",
        "    return _copy",
    ]
    source = "\n".join(lines)
    exec(compile(source, f"<incidentflow copier of {cls.__qualname__}>", "exec"), namespace)
    compiled: Callable[..., T] = namespace["replace"]
    return compiled


def _changing(
    cls: type[T], found: dict[tuple[str, ...], Callable[..., T]], names: tuple[str, ...]
) -> Callable[..., T]:
    """The copier of ``cls`` setting ``names``, kept in ``found``; TypeError for unknown names."""
    made = found.get(names)
    if made is None:
        made = found.setdefault(names, compile_copier(cls, names))
    return made
