"""Custom fields: the types the policy can declare, and the check of a value."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date

from . import _validate as v
from ._model import FieldValue
from .exceptions import ValidationError

__all__ = ["FIELD_TYPES", "check_field"]

#: The types a custom field can have.
FIELD_TYPES = ("text", "int", "float", "bool", "date")


def check_field(declared: Mapping[str, str], name: str, value: object) -> FieldValue:
    """``value`` checked against the type ``declared`` gives the field ``name``.

    A date is kept as its ISO text, so every value stays JSON-ready.
    """
    field = f"fields.{name}"
    kind = declared.get(name)
    if kind is None:
        known = ", ".join(declared) or "none: declare them in the policy's [policy.fields]"
        raise ValidationError(field, f"{name!r} is not a custom field; the policy declares {known}")
    if kind == "text":
        return v.text(field, value, max_len=v.NAME_MAX * 10, multiline=False)
    if kind == "bool":
        return v.boolean(field, value)
    if kind == "int":
        # Bounded as the stores' integer columns are: a 64-bit signed number.
        return v.whole_number(field, value, minimum=-v.INT_MAX - 1, maximum=v.INT_MAX)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError(field, f"expected a number, got {v._shown(value)}")
        # Beyond 1e15 JSON writes a float without its point (1e+16), and a jsonb column
        # gives it back as an int: the stores could no longer tell it was a float.
        # The bound is compared first: an int compares with 1e15 exactly, while
        # isfinite() converts it to a float, which overflows past about 1.8e308.
        if abs(value) >= 1e15 or not math.isfinite(value):
            raise ValidationError(
                field, f"expected a number between -1e15 and 1e15, got {v._shown(value)}"
            )
        return float(value) + 0.0  # -0.0 is 0.0, as SQL compares it
    if kind == "date":
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                raise ValidationError(
                    field, f"expected a date like 2026-12-31, got {v._shown(value)}"
                ) from None
        return v.day(field, value).isoformat()
    raise ValidationError(field, f"the policy gives {name} the unknown type {kind!r}")
