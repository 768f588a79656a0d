"""What a file-backed store is given: a path it can use, a cache size it can keep."""

from __future__ import annotations

import os
from pathlib import Path

from ..exceptions import ConfigError, StoreError

__all__ = ["cache_size", "folder_option", "store_path"]


def store_path(value: object, *, option: str, noun: str) -> Path:
    """``value`` as a Path a ``noun`` ("file", "folder") can have.

    Raises:
        ConfigError: ``value`` is not text or ``os.PathLike`` text (named ``option``).
        StoreError: The path holds a NUL or a character no file name can be
            written with (a lone surrogate), which the system would refuse later.

    """
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, (str, os.PathLike)):
        raise ConfigError(
            option, f"expected a {noun} path (str or os.PathLike), got {type(value).__name__}"
        )
    try:
        found = Path(value)
    except TypeError as exc:  # an os.PathLike giving bytes
        raise ConfigError(option, f"expected a {noun} path as text: {exc}") from None
    text = str(found)
    if "\x00" in text:
        where = text.index("\x00") + 1
        raise StoreError(
            f"{text!r}: the path contains a NUL character (character {where:,}); remove it"
        )
    try:
        os.fsencode(text)
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        kind = "a lone surrogate" if 0xD800 <= code <= 0xDFFF else "the character"
        raise StoreError(
            f"{text!r}: the path contains {kind} U+{code:04X} (character {exc.start + 1:,}), "
            f"which cannot be written in a {noun} name; remove it"
        ) from None
    return found


def cache_size(value: object) -> int:
    """``value`` as the number of snapshots a store's cache keeps (ConfigError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            "cache_size", f"expected a whole number of incidents, got {type(value).__name__}"
        )
    return value


def folder_option(option: str, value: object) -> Path | None:
    """An optional folder setting (``incidents_dir``, ``knowledge_dir``) as a Path.

    Raises:
        ConfigError: ``value`` is not a path text, or holds a NUL or a lone surrogate.

    """
    if value is None:
        return None
    try:
        return store_path(value, option=option, noun="folder")
    except StoreError as exc:
        raise ConfigError(option, str(exc)) from None
