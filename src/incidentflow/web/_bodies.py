"""Request bodies read with a bound: refused as soon as they are known to be too large."""

from __future__ import annotations

from starlette.requests import Request

from ..exceptions import ValidationError

__all__ = ["read_body"]

#: Digits a Content-Length may have; more is refused before it is parsed as a number.
_MAX_DIGITS = 15


async def read_body(request: Request, limit: int, *, field: str = "body") -> bytes:
    """The request's body, or ValidationError on ``field`` once it passes ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before anything is
    read, and a body sent in chunks is refused at the chunk that passes it, so
    no more than ``limit`` bytes are ever held.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and (len(declared) > _MAX_DIGITS or int(declared) > limit):
        raise ValidationError(field, f"is {declared} bytes; send at most {limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ValidationError(field, f"is over {limit:,} bytes; send at most {limit:,}")
        chunks.append(chunk)
    return b"".join(chunks)
