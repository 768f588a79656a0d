"""Input checks shared by every command. Each raises ValidationError naming the field."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta

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
#: Largest page size (``limit=``) a query or a listing accepts.
LIMIT_MAX = 100_000
#: Largest whole number a store can hold (a signed 64-bit integer in SQLite and PostgreSQL).
INT_MAX = 2**63 - 1

_SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*\Z")
_NOT_SLUG_CHARS = re.compile(r"[^a-z0-9]+")
_SEVERITIES = {s.value: s for s in Severity}


# Unicode category Cc: C0 and C1 control characters and DEL (U+001C-U+001E and U+0085 included).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINE_BREAKS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# A lone surrogate cannot be encoded as UTF-8: a store or a file would fail after the commit.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# str.splitlines splits on these too, so they would start a new line in a one-line field.
_SEPARATOR = re.compile(r"[\u2028\u2029]")
# Bidi overrides and isolates make text read in another order than it is stored.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_SHOWN_MAX = 60
# Every character some check refuses, for the common case where there is none.
_SUSPECT_ONE_LINE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_SUSPECT_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _shown(value: object) -> str:
    """``repr(value)``, short enough for an error message, never failing on huge input.

    >>> _shown("x" * 100).endswith("'... (100 characters)")
    True
    >>> _shown(10**100)
    'a 333-bit number'
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        # str() of a huge int is slow and, past 4,300 digits, raises ValueError.
        return f"a {value.bit_length():,}-bit number"
    if isinstance(value, str) and len(value) > _SHOWN_MAX:
        return f"{value[:_SHOWN_MAX]!r}... ({len(value):,} characters)"
    try:
        written = repr(value)
    except Exception:  # a hostile __repr__ must not replace the ValidationError
        return f"a {type(value).__name__}"
    return written if len(written) <= _SHOWN_MAX else written[: _SHOWN_MAX - 3] + "..."


def _character(value: str, found: re.Match[str]) -> str:
    char = found.group()
    label = unicodedata.name(char, "")
    named = f" {label}" if label else ""
    return f"U+{ord(char):04X}{named} (character {found.start() + 1:,} of {len(value):,})"


def _check_characters(field: str, value: str, *, multiline: bool) -> None:
    """Refuse characters that break encoding, line structure or reading order."""
    if (_SUSPECT_MULTILINE if multiline else _SUSPECT_ONE_LINE).search(value) is None:
        return
    found = _SURROGATE.search(value)
    if found is not None:
        raise ValidationError(
            field,
            f"contains the lone surrogate {_character(value, found)}, which is not valid "
            "Unicode text; decode the input with errors='replace' or remove that character",
        )
    control = (_CONTROL_BUT_LINE_BREAKS if multiline else _CONTROL).search(value)
    if control is not None:
        what = "control characters" if multiline else "line breaks or control characters"
        raise ValidationError(
            field, f"must not contain {what}; remove {_character(value, control)}"
        )
    if multiline:
        return
    found = _SEPARATOR.search(value)
    if found is not None:
        raise ValidationError(
            field,
            f"must be one line; replace {_character(value, found)} with a space or remove it",
        )
    found = _BIDI.search(value)
    if found is not None:
        raise ValidationError(
            field,
            "must not contain bidirectional overrides or isolates, which change the order "
            f"the text reads in; remove {_character(value, found)}",
        )


def text(field: str, value: object, *, max_len: int = TEXT_MAX, multiline: bool = True) -> str:
    r"""A non-empty string of at most ``max_len`` characters, stripped.

    Every text refuses lone surrogates and control characters other than tab and
    line breaks. A one-line field (``multiline=False``) also refuses line breaks,
    line and paragraph separators (U+2028, U+2029) and bidirectional overrides and
    isolates (U+202A-U+202E, U+2066-U+2069).

    >>> text("title", "  Checkout returns 500 ", multiline=False)
    'Checkout returns 500'
    >>> text("title", "Checkout\u2028returns 500", multiline=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    incidentflow.exceptions.ValidationError: title: must be one line; replace U+2028 ...

    """
    if not isinstance(value, str):
        raise ValidationError(field, f"expected text (str), got {type(value).__name__}")
    seen = _ONE_LINE if not multiline else _MULTILINE
    short = value.__class__ is str and len(value) <= _SEEN_LENGTH  # a subclass may hash its own way
    if short:
        found = seen.get(value)
        if found is not None and len(found) <= max_len:
            return found
    checked = value.strip()
    if not checked:
        raise ValidationError(field, "must not be empty")
    if len(checked) > max_len:
        raise ValidationError(
            field, f"is {len(checked):,} characters long; at most {max_len:,} are accepted"
        )
    if (_SUSPECT_MULTILINE if multiline else _SUSPECT_ONE_LINE).search(checked) is not None:
        _check_characters(field, checked, multiline=multiline)  # says which character, and why
    if short:
        if len(seen) >= _SEEN_KEPT:
            seen.clear()
        seen[value] = checked
    return checked


# Short texts already accepted, to their stripped form, one-line and multi-line apart:
# whether a text passes depends on it alone (and on its length), and the same actors,
# incident ids and names come back on every command.
_ONE_LINE: dict[str, str] = {}
_MULTILINE: dict[str, str] = {}
_SEEN_LENGTH = 256
_SEEN_KEPT = 4096


def name(field: str, value: object) -> str:
    """A one-line name such as an actor, commander, owner or source."""
    if value.__class__ is str:  # asked on every command: once seen, a dictionary lookup
        found = _ONE_LINE.get(value)
        if found is not None and len(found) <= NAME_MAX:
            return found
    return text(field, value, max_len=NAME_MAX, multiline=False)


def remembered(check: Callable[..., object]) -> tuple[dict[str, str], int] | None:
    """Where ``check`` (:func:`text` or :func:`name`) remembers the texts it accepted.

    The texts it accepted, exactly as given (exact ``str`` only), to what it
    returned, and the longest it accepts: a text found there with a result no
    longer passes the check again. ``None`` for any other check.
    """
    if check is text:
        return _MULTILINE, TEXT_MAX
    if check is name:
        return _ONE_LINE, NAME_MAX
    return None


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


def optional_text(
    field: str, value: object, *, max_len: int = TEXT_MAX, multiline: bool = True
) -> str:
    """Like :func:`text`, but ``None`` or an empty string give ``""``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    return text(field, value, max_len=max_len, multiline=multiline)


def texts(field: str, values: object) -> tuple[str, ...]:
    """A list or tuple of non-empty texts (a lone string counts as one item)."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise ValidationError(field, f"expected a list of texts, got {type(values).__name__}")
    if len(values) > 100:
        raise ValidationError(field, f"has {len(values)} items; at most 100 are accepted")
    # A text seen before is looked up; only another is checked, under its own name.
    seen = _MULTILINE
    return tuple(
        found
        if value.__class__ is str and (found := seen.get(value)) is not None
        else text(f"{field}[{i}]", value)
        for i, value in enumerate(values)
    )


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
    raise ValidationError(field, f"{_shown(value)} is not a severity; use one of {accepted}")


def slug(value: object) -> str:
    """An explicit slug: ``[a-z0-9-]``, 1 to 48 characters, no leading/trailing dash."""
    if not isinstance(value, str):
        raise ValidationError("slug", f"expected text (str), got {type(value).__name__}")
    if len(value) > SLUG_MAX or not _SLUG_RE.match(value):
        given = value if len(value) <= 60 else value[:57] + "..."
        raise ValidationError(
            "slug",
            f"{given!r} is not a safe slug; use 1 to {SLUG_MAX} lowercase letters, digits "
            "and single dashes, e.g. 'checkout-returns-500'",
        )
    return value


@functools.lru_cache(maxsize=1024)  # the same titles come back (tests, alerts, retries)
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
        raise ValidationError(
            field, f"{_shown(value)} is not accepted; use one of {', '.join(options)}"
        )
    assert isinstance(value, str)
    return value


def optional_key(field: str, value: object) -> str | None:
    """An idempotency key: ``None`` or a one-line text of at most 200 characters."""
    if value is None:
        return None
    return name(field, value)


def positive_int(field: str, value: object, *, maximum: int = INT_MAX) -> int:
    """A whole number from 1 to ``maximum`` (by default the largest a store can hold).

    Pass ``maximum=LIMIT_MAX`` for a page size, so a huge value is refused here
    instead of overflowing in a store, ``range`` or ``timedelta``.

    >>> positive_int("limit", 50, maximum=LIMIT_MAX)
    50
    >>> positive_int("limit", 10**30, maximum=LIMIT_MAX)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    incidentflow.exceptions.ValidationError: limit: is a 100-bit number; use ... from 1 to 100,000

    """
    return whole_number(field, value, minimum=1, maximum=maximum)


def whole_number(field: str, value: object, *, minimum: int = 0, maximum: int = INT_MAX) -> int:
    """A whole number (a real ``int``, not a ``bool``) from ``minimum`` to ``maximum``.

    >>> whole_number("offset", 0)
    0
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            field,
            f"expected a whole number from {minimum:,} to {maximum:,}, "
            f"got {type(value).__name__} {_shown(value)}",
        )
    if value < minimum:
        raise ValidationError(
            field,
            f"expected a whole number of at least {minimum:,}"
            + (f" and at most {maximum:,}" if maximum < INT_MAX else "")
            + f", got {_shown(value)}",
        )
    if value > maximum:
        number = f"{value:,}" if value.bit_length() <= 64 else _shown(value)
        raise ValidationError(
            field, f"is {number}; use a whole number from {minimum:,} to {maximum:,}"
        )
    return value


_KEY_RE = re.compile(r"[a-z0-9](?:[a-z0-9_./-]{0,61}[a-z0-9])?\Z")
#: The most labels, custom fields or references one command may set.
ENTRIES_MAX = 100


def key(field: str, value: object) -> str:
    """A label key or reference kind: 1–63 lowercase letters, digits and ``_ . / -``.

    >>> key("labels", "service")
    'service'
    """
    if not isinstance(value, str):
        raise ValidationError(field, f"expected a key (str), got {type(value).__name__}")
    if not _KEY_RE.match(value):
        raise ValidationError(
            field,
            f"{_shown(value)} is not a key; use 1 to 63 lowercase letters, digits and "
            "_ . / - starting and ending with a letter or digit, e.g. 'service'",
        )
    return value


def _entries(field: str, value: object) -> list[tuple[object, object]]:
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 for p in value
    ):
        pairs = [(p[0], p[1]) for p in value]
    else:
        raise ValidationError(
            field, f"expected a mapping of key to value, got {type(value).__name__}"
        )
    if len(pairs) > ENTRIES_MAX:
        raise ValidationError(field, f"has {len(pairs)} entries; at most {ENTRIES_MAX} per command")
    return pairs


def labels(field: str, value: object) -> dict[str, str]:
    """Labels: a mapping of key (see :func:`key`) to a one-line value.

    >>> labels("labels", {"service": "checkout", "team": "payments"})
    {'service': 'checkout', 'team': 'payments'}
    """
    found: dict[str, str] = {}
    for k, text_value in _entries(field, value):
        checked = key(field, k)
        found[checked] = name(f"{field}.{checked}", text_value)
    return found


def keys(field: str, value: object) -> tuple[str, ...]:
    """A list of keys (see :func:`key`); a lone string counts as one."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise ValidationError(field, f"expected a list of keys, got {type(value).__name__}")
    if len(items) > ENTRIES_MAX:
        raise ValidationError(field, f"has {len(items)} keys; at most {ENTRIES_MAX} per command")
    return tuple(dict.fromkeys(key(field, item) for item in items))


def mapping(field: str, value: object) -> dict[str, object]:
    """A mapping of key (see :func:`key`) to any value, checked later against the policy."""
    return {key(field, k): item for k, item in _entries(field, value)}


def reference_value(field: str, value: object) -> str:
    """An external reference's value: one line, at most 500 characters."""
    return text(field, value, max_len=500, multiline=False)


def duration(field: str, value: object) -> timedelta:
    """A positive ``timedelta`` of at most 100 years."""
    if not isinstance(value, timedelta):
        raise ValidationError(
            field, f"expected a timedelta, e.g. timedelta(minutes=30), got {type(value).__name__}"
        )
    if value <= timedelta(0) or value > timedelta(days=36_500):
        raise ValidationError(
            field, f"expected a positive duration of at most 100 years, got {value}"
        )
    return value
