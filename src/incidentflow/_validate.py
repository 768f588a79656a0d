"""Input checks shared by every command. Each raises ValidationError naming the field."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, date, datetime

from ._model import Severity
from .exceptions import ValidationError

#: Longest accepted incident title.
TITLE_MAX = 200
#: Longest accepted name, source, question or other one-line field.
NAME_MAX = 200
#: Longest accepted free text (a why, a summary, a note).
TEXT_MAX = 20_000
#: Longest accepted evidence content (log excerpts are large).
EVIDENCE_MAX = 1_000_000
#: Longest accepted slug.
SLUG_MAX = 48

_SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*\Z")
_NOT_SLUG_CHARS = re.compile(r"[^a-z0-9]+")
_SEVERITIES = {s.value: s for s in Severity}


# Unicode category Cc: C0 and C1 control characters and DEL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINE_BREAKS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _has_control(value: str, allow_newlines: bool) -> bool:
    pattern = _CONTROL_BUT_LINE_BREAKS if allow_newlines else _CONTROL
    return pattern.search(value) is not None


def text(field: str, value: object, *, max_len: int = TEXT_MAX, multiline: bool = True) -> str:
    """A non-empty string of at most ``max_len`` characters, stripped."""
    if not isinstance(value, str):
        raise ValidationError(field, f"expected text (str), got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise ValidationError(field, "must not be empty")
    if len(value) > max_len:
        raise ValidationError(
            field, f"is {len(value):,} characters long; at most {max_len:,} are accepted"
        )
    if _has_control(value, allow_newlines=multiline):
        what = "control characters" if multiline else "line breaks or control characters"
        raise ValidationError(field, f"must not contain {what}")
    return value


def name(field: str, value: object) -> str:
    """A one-line name such as an actor, commander, owner or source."""
    return text(field, value, max_len=NAME_MAX, multiline=False)


def triage_key(question: str) -> str:
    """The canonical name of a triage question: ``"Customer impact"`` → ``"customer_impact"``."""
    return "_".join(question.strip().lower().split())


def actor(value: object) -> str:
    """Who runs a command: required on every command."""
    if value is None:
        raise ValidationError(
            "actor", "is missing; every command needs actor=, the name of who runs it"
        )
    return name("actor", value)


def optional_text(field: str, value: object, *, max_len: int = TEXT_MAX) -> str:
    """Like :func:`text`, but ``None`` or an empty string give ``""``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    return text(field, value, max_len=max_len)


def texts(field: str, values: object) -> tuple[str, ...]:
    """A list or tuple of non-empty texts (a lone string counts as one item)."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise ValidationError(field, f"expected a list of texts, got {type(values).__name__}")
    if len(values) > 100:
        raise ValidationError(field, f"has {len(values)} items; at most 100 are accepted")
    return tuple(text(f"{field}[{i}]", v) for i, v in enumerate(values))


def boolean(field: str, value: object) -> bool:
    """A real ``bool`` (not 1, not "yes")."""
    if not isinstance(value, bool):
        raise ValidationError(field, f"expected True or False, got {type(value).__name__}")
    return value


def severity(value: object, field: str = "severity") -> Severity:
    """A :class:`Severity` or one of the strings "P1".."P4" (any case)."""
    if isinstance(value, Severity):
        return value
    if isinstance(value, str):
        found = _SEVERITIES.get(value.strip().upper())
        if found is not None:
            return found
    accepted = ", ".join(_SEVERITIES)
    raise ValidationError(field, f"{value!r} is not a severity; use one of {accepted}")


def slug(value: object) -> str:
    """An explicit slug: ``[a-z0-9-]``, 1 to 48 characters, no leading/trailing dash."""
    if not isinstance(value, str):
        raise ValidationError("slug", f"expected text (str), got {type(value).__name__}")
    if len(value) > SLUG_MAX or not _SLUG_RE.match(value):
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ValidationError(
            "slug",
            f"{shown!r} is not a safe slug; use 1 to {SLUG_MAX} lowercase letters, digits "
            "and single dashes, e.g. 'checkout-returns-500'",
        )
    return value


def slugify(title: str) -> str:
    """A safe slug made from a title; ``"incident"`` when nothing usable is left."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = _NOT_SLUG_CHARS.sub("-", ascii_title.lower()).strip("-")
    if len(words) > SLUG_MAX:
        cut = words[: SLUG_MAX + 1]
        words = cut.rsplit("-", 1)[0] if "-" in cut else words[:SLUG_MAX]
        words = words[:SLUG_MAX].strip("-")
    return words or "incident"


def aware(field: str, value: object) -> datetime:
    """An aware datetime, converted to UTC. Naive datetimes are refused."""
    if not isinstance(value, datetime):
        raise ValidationError(field, f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            field,
            "is a naive datetime; pass an aware one, e.g. datetime.now(timezone.utc)",
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValidationError(field, f"{value.isoformat()} is out of range in UTC") from None


def day(field: str, value: object) -> date:
    """A calendar date (a ``datetime`` is refused: due dates are days)."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValidationError(field, f"expected a date, got {type(value).__name__}")
    return value


def one_of(field: str, value: object, accepted: Iterable[str]) -> str:
    """One of a fixed set of strings."""
    options = tuple(accepted)
    if value not in options:
        raise ValidationError(field, f"{value!r} is not accepted; use one of {', '.join(options)}")
    assert isinstance(value, str)
    return value


def optional_key(field: str, value: object) -> str | None:
    """An idempotency key: ``None`` or a one-line text of at most 200 characters."""
    if value is None:
        return None
    return name(field, value)


def positive_int(field: str, value: object) -> int:
    """A whole number ≥ 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(field, f"expected a whole number of at least 1, got {value!r}")
    return value
