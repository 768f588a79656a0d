"""Compact JSON text from one encoder built once, not one built on every call."""

from __future__ import annotations

from collections.abc import Callable
from json import encoder as _encoder
from typing import Any

__all__ = ["compact_encoder"]


def compact_encoder(*, allow_nan: bool = True) -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=…)``, one function.

    ``JSONEncoder.encode`` builds a C encoder on every call, about half the cost
    of encoding a small object such as an event's payload. The function returned
    holds one, built once. Built without a table of the containers being encoded
    (the table that detects circular references), it keeps no state from one
    call to the next, so threads may share it; what it encodes is plain data
    unstructured from snapshots and events, which holds no cycle. Where the C
    encoder is missing, it is ``JSONEncoder.encode``.
    """
    python = _encoder.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=allow_nan)
    # Not in typeshed: the C accelerator json.encoder itself uses, None without it.
    make = getattr(_encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the C encoder
        return python.encode
    encode_c = make(
        None, python.default, _encoder.encode_basestring, None, ":", ",", False, False, allow_nan
    )
    join = "".join

    def dumps(value: Any) -> str:
        return join(encode_c(value, 0))

    dumps.__doc__ = f"Compact JSON text (allow_nan={allow_nan})."
    return dumps
