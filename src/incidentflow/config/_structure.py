"""Reading a TOML table into the configuration's strict attrs classes, with cattrs.

Unknown keys are refused and nothing is coerced (``"15"`` is not 15).
Whatever is wrong becomes one ConfigError whose key is ``"<file>: <dotted.key>"``
and whose message says what that key accepts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeVar, get_args, get_origin

import attrs

from .._toml import toml_shown, unknown_key_message
from ..exceptions import ConfigError
from ._common import key_text, where
from ._notifiers import SPECS, TYPES, NotifierSpec

if TYPE_CHECKING:
    import cattrs

__all__ = ["accepted_keys", "structure"]

T = TypeVar("T")


class _Wrong(TypeError):
    """A value of the wrong type, raised by the converter's strict hooks."""

    def __init__(self, expected: str, value: object) -> None:
        self.expected = expected
        self.shown = toml_shown(value)
        super().__init__(f"expected {expected}, got {self.shown}")


def _check_text(value: object, _: object) -> str:
    if not isinstance(value, str):
        raise _Wrong("text (a quoted string)", value)
    return value


def _check_bool(value: object, _: object) -> bool:
    if not isinstance(value, bool):
        raise _Wrong("true or false", value)
    return value


def _check_int(value: object, _: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Wrong("a whole number", value)
    return value


def _check_float(value: object, _: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Wrong("a number", value)
    if not math.isfinite(value):
        raise _Wrong("a finite number", value)
    return value


_KINDS: Final[Mapping[Any, str]] = MappingProxyType(
    {str: "text", bool: "true or false", int: "whole numbers", float: "numbers"}
)


def _is_sequence(cl: Any) -> bool:
    args = get_args(cl)
    return get_origin(cl) is list or (get_origin(cl) is tuple and len(args) == 2 and args[1] is ...)


def _is_table(cl: Any) -> bool:
    return get_origin(cl) in (dict, Mapping) and get_args(cl)[:1] == (str,)


def _sequence_hook(conv: cattrs.Converter, cl: Any) -> Callable[[Any, Any], Any]:
    from cattrs.errors import IterableValidationError, IterableValidationNote

    item = get_args(cl)[0]
    make: Callable[[list[Any]], Any] = tuple if get_origin(cl) is tuple else list
    handler = conv.get_structure_hook(item)

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise _Wrong(f"a list of {_KINDS.get(item, 'tables')}", value)
        result, errors = [], []
        for index, element in enumerate(value):
            try:
                result.append(handler(element, item))
            except Exception as exc:
                note = IterableValidationNote(f"@ index {index}", index, item)
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {cl!r}", errors, cl)
        return make(result)

    return structure


def _table_hook(conv: cattrs.Converter, cl: Any) -> Callable[[Any, Any], Any]:
    from cattrs.errors import IterableValidationError, IterableValidationNote

    item = get_args(cl)[1]
    handler = conv.get_structure_hook(item)

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _Wrong("a table", value)
        result, errors = {}, []
        for key, element in value.items():
            try:
                result[key] = handler(element, item)
            except Exception as exc:
                note = IterableValidationNote(f"@ key {key!r}", key, item)
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {cl!r}", errors, cl)
        return result

    return structure


def _class_hook(conv: cattrs.Converter, cl: Any) -> Callable[[Any, Any], Any]:
    from cattrs.gen import make_dict_structure_fn

    inner = make_dict_structure_fn(cl, conv)

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _Wrong("a table", value)
        return inner(value, cl)

    return structure


def _notifier_hook(conv: cattrs.Converter) -> Callable[[Any, Any], NotifierSpec]:
    def structure(value: Any, _: Any) -> NotifierSpec:
        if not isinstance(value, Mapping):
            raise _Wrong(f"a table with type = one of {TYPES}", value)
        if "type" not in value:
            raise ConfigError("type", f"missing; every notifier table needs type = one of {TYPES}")
        kind = value["type"]
        spec = SPECS.get(kind) if isinstance(kind, str) else None
        if spec is None:
            raise ConfigError("type", f"expected one of {TYPES}, got {toml_shown(kind)}")
        rest = {key: item for key, item in value.items() if key != "type"}
        result: NotifierSpec = conv.structure(rest, spec)
        return result

    return structure


@functools.cache
def _converter() -> cattrs.Converter:
    """The configuration's converter: strict types, unknown keys refused. Built on first use."""
    import cattrs

    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(str, _check_text)
    conv.register_structure_hook(bool, _check_bool)
    conv.register_structure_hook(int, _check_int)
    conv.register_structure_hook(float, _check_float)
    conv.register_structure_hook_factory(attrs.has, lambda cl: _class_hook(conv, cl))
    conv.register_structure_hook_factory(_is_sequence, lambda cl: _sequence_hook(conv, cl))
    conv.register_structure_hook_factory(_is_table, lambda cl: _table_hook(conv, cl))
    conv.register_structure_hook_func(lambda cl: cl == NotifierSpec, _notifier_hook(conv))
    return conv


def structure(
    data: Any,
    cl: type[T],
    source: str | None,
    prefix: Sequence[str] = (),
    elsewhere: Mapping[str, str] = MappingProxyType({}),
) -> T:
    """``data`` as a ``cl``; anything wrong is one ConfigError naming the file and the key.

    ``prefix`` is the dotted key of ``data`` in its file; ``elsewhere`` maps keys
    to the table they belong in, to hint where an unknown key was meant to go.
    """
    try:
        return _converter().structure(data, cl)
    except Exception as exc:
        raise _explain(exc, cl, source, prefix, elsewhere) from None


def accepted_keys(cl: type) -> list[str]:
    """The keys the table ``cl`` accepts."""
    names = [f.name for f in attrs.fields(cl)]
    return ["type", *names] if cl in SPECS.values() else names


def _table_label(path: Sequence[str | int], prefix: Sequence[str]) -> str:
    if not path:
        return "the top level" if not prefix else f"[{'.'.join(prefix)}]"
    if isinstance(path[-1], int):
        return f"each [[{key_text(path[:-1])}]] table"
    return f"[{key_text(path)}]"


def _explain(
    exc: BaseException,
    cl: type,
    source: str | None,
    prefix: Sequence[str],
    elsewhere: Mapping[str, str],
) -> ConfigError:
    """The first problem cattrs found, as a ConfigError: the file, the key, what is accepted."""
    from cattrs.errors import (
        ClassValidationError,
        ForbiddenExtraKeysError,
        IterableValidationError,
    )

    path: list[str | int] = list(prefix)
    owner: type = cl
    accepts: str | None = None  # what the innermost field accepts
    field_depth = len(path)
    while True:
        if isinstance(exc, ClassValidationError):
            owner = exc.cl
            with_notes, others = exc.group_exceptions()
            if with_notes:
                exc, attribute = with_notes[0]
                path.append(attribute.name)
                field = attrs.fields_dict(owner).get(attribute.name)
                accepts = field.metadata.get("accepts") if field is not None else None
                field_depth = len(path)
                continue
            exc = others[0]
            if isinstance(exc, ForbiddenExtraKeysError):
                unknown = sorted(exc.extra_fields)
                accepted = accepted_keys(exc.cl)
                label = _table_label(path, prefix)
                message = unknown_key_message(unknown, accepted, label, elsewhere)
                return ConfigError(where(source, key_text([*path, unknown[0]])), message)
            if isinstance(exc, ConfigError):  # a check of the class itself
                return ConfigError(where(source, key_text([*path, "\x00" + exc.key])), exc.message)
            break
        if isinstance(exc, IterableValidationError):
            with_notes_i, others_i = exc.group_exceptions()
            if with_notes_i:
                exc, item = with_notes_i[0]
                path.append(item.index)
                continue
            exc = others_i[0]
            continue
        break
    key = where(source, key_text(path))
    if isinstance(exc, KeyError):
        label = _table_label(path[:-1], prefix)
        return ConfigError(key, f"missing; {label} needs {path[-1]} ({accepts or 'a value'})")
    if isinstance(exc, ConfigError):  # raised by a hook, e.g. a notifier's type
        return ConfigError(where(source, key_text([*path, "\x00" + exc.key])), exc.message)
    if isinstance(exc, _Wrong):
        if accepts is not None and len(path) == field_depth:
            return ConfigError(key, f"expected {accepts}, got {exc.shown}")
        takes = f"; {key_text(path[:field_depth][-1:])} takes {accepts}" if accepts else ""
        return ConfigError(key, f"expected {exc.expected}, got {exc.shown}{takes}")
    return ConfigError(
        key, f"cannot be read ({type(exc).__name__}); expected {accepts or 'a value'}"
    )
