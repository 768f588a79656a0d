"""Request bodies and header values read with a bound: refused as soon as they are known bad.

A body is refused once it is known to be too large; a number in a header or a
form is read only from ASCII digits, few enough that ``int`` never refuses
them; ``If-None-Match`` is compared as RFC 9110 says, by one helper every
conditional read shares.
"""

from __future__ import annotations

from starlette.requests import Request

from .._validate import INT_MAX
from ..exceptions import ValidationError

__all__ = ["NUMBER_DIGITS", "none_match", "read_body", "whole_number"]

#: Digits a Content-Length may have; more is refused before it is parsed as a number.
_MAX_DIGITS = 15
#: Digits a whole number in a header or a form may have: as many as the largest a store holds.
NUMBER_DIGITS = len(str(INT_MAX))


def whole_number(text: str, *, max_digits: int = NUMBER_DIGITS) -> int | None:
    """``text`` as a whole number when it is 1 to ``max_digits`` ASCII digits, else None.

    ``str.isdigit`` alone accepts "²" (which ``int`` refuses) and "١" (which
    ``int`` reads as 1), and ``int`` refuses text of over 4,300 digits: both
    are turned away here, before ``int`` sees them.

    >>> whole_number("42"), whole_number("²"), whole_number("١"), whole_number("9" * 5000)
    (42, None, None, None)
    """
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


def none_match(header: str | None, etag: str) -> bool:
    """True when an ``If-None-Match`` header matches ``etag``, so a read answers 304.

    As RFC 9110 §13.1.2 says: ``*`` matches any current representation, the
    header may list several entity-tags separated by commas, and the
    comparison is weak (``W/"3"`` matches ``"3"``).

    >>> none_match('W/"2", "3"', '"3"'), none_match("*", '"3"'), none_match('"30"', '"3"')
    (True, True, False)
    """
    if header is None:
        return False
    if header.strip() == "*":
        return True
    # An entity-tag's opaque part holds no quote, so no piece of one split at a
    # comma is a whole quoted tag: splitting finds exactly the listed tags.
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


async def read_body(request: Request, limit: int, *, field: str = "body") -> bytes:
    """The request's body, or ValidationError on ``field`` once it passes ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before anything is
    read, and a body sent in chunks is refused at the chunk that passes it, so
    no more than ``limit`` bytes are ever held. A ``Content-Length`` that is
    not written in ASCII digits is left to the server; the bound still holds.
    """
    declared = request.headers.get("content-length", "").strip()
    if declared.isascii() and declared.isdigit():
        length = whole_number(declared, max_digits=_MAX_DIGITS)
        if length is None:
            raise ValidationError(
                field,
                f"declares a length of {len(declared):,} digits; send at most {limit:,} bytes",
            )
        if length > limit:
            raise ValidationError(field, f"is {length} bytes; send at most {limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ValidationError(field, f"is over {limit:,} bytes; send at most {limit:,}")
        chunks.append(chunk)
    return b"".join(chunks)
