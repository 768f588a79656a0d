"""Keeping secrets out of reprs, messages and logs.

Webhook URLs often carry their credential (a Slack path, ``?token=``,
``user:pass@``); passwords and signing secrets are credentials outright. The
notifiers hold them in :class:`Secret` boxes, show URLs only through
:func:`redact_url`, and pass driver error texts through :func:`scrub`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["MASK", "Secret", "redact_url", "scrub", "url_secrets"]

#: What stands in for a hidden value.
MASK = "***"

T = TypeVar("T")


class Secret(Generic[T]):
    """A value that shows as ``'***'`` wherever it is printed.

    Loguru's ``diagnose`` mode prints the value of every name on the lines of a
    traceback, attributes included; a boxed secret prints as the mask.

    >>> Secret("hunter2")
    '***'
    """

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def reveal(self) -> T:
        """The value itself, for the one call that needs it."""
        return self._value

    def __repr__(self) -> str:
        return repr(MASK)

    __str__ = __repr__


def redact_url(url: str) -> str:
    """``url`` with its credentials hidden, for reprs, messages and logs.

    Hides the user info, every query value and the fragment, and every path
    segment after the first: webhook services put their token in the path
    (Slack ``/services/T/B/token``, Discord ``/api/webhooks/id/token``).

    >>> redact_url("https://hooks.slack.com/services/T000/B000/XXXX")
    'https://hooks.slack.com/services/***'
    >>> redact_url("https://bot:s3cret@ops.example:8443/hooks/ops?token=abc&team=sre#top")
    'https://***@ops.example:8443/hooks/***?token=***&team=***'
    >>> redact_url("not a url")
    '***'
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return MASK
    if not parts.scheme or not parts.hostname:
        return MASK
    host = parts.hostname
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = ("***@" if "@" in parts.netloc else "") + host
    if port is not None:
        netloc += f":{port}"
    segments = [s for s in parts.path.split("/") if s]
    path = f"/{segments[0]}/{MASK}" if len(segments) > 1 else "/" + MASK if segments else ""
    query = "&".join(f"{name}={MASK}" for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    return f"{parts.scheme}://{netloc}{path}" + (f"?{query}" if query else "")


def url_secrets(url: str) -> list[str]:
    """The parts of ``url`` that :func:`redact_url` hides, raw and decoded, longest first."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = [url, parts.netloc.rpartition("@")[0], parts.fragment]
    found += [part for part in (parts.username, parts.password) if part]
    segments = [s for s in parts.path.split("/") if s]
    found += segments[1:] if len(segments) > 1 else segments
    found += [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    found += [unquote(part) for part in found]
    return sorted({part for part in found if len(part) >= 3}, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by the mask.

    >>> scrub("POST https://x.example/hook/abc123 failed", ["abc123"])
    'POST https://x.example/hook/*** failed'
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
