"""Checks of the notifiers' settings: each wrong value is a ConfigError naming its key."""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from ..exceptions import ConfigError
from ._secrets import redact_url

__all__ = ["check_incident_url", "check_name", "check_timeout", "check_url"]

_SAMPLE_ID = "INC-2026-11-27-checkout-returns-500"


def check_url(url: object, key: str) -> str:
    """``url`` if it is an http(s) URL with a host; ConfigError naming ``key`` if not."""
    if not isinstance(url, str):
        raise ConfigError(key, f"expected an http(s) URL string, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ConfigError(key, f"{redact_url(url)} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            key,
            f"must be an http:// or https:// URL with a host, got {redact_url(url)!r}",
        )
    if any(c in url for c in "\r\n\t "):
        raise ConfigError(key, "must not contain whitespace")
    return url


def check_timeout(timeout: object, key: str = "timeout") -> float:
    """``timeout`` as a float if it is a positive number of seconds; ConfigError if not."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ConfigError(key, f"must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def check_name(name: object) -> str:
    """``name`` if it is a non-empty string; ConfigError('name') if not."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("name", f"must be a non-empty string, got {name!r}")
    return name


def check_incident_url(template: str | None, key: str = "incident_url") -> str | None:
    """``template`` if it makes an http(s) link from ``{id}`` or ``{slug}``; ConfigError if not."""
    if template is None:
        return None
    if not isinstance(template, str):
        raise ConfigError(key, f"expected a format string, got {type(template).__name__}")
    if "{id}" not in template and "{slug}" not in template:
        raise ConfigError(
            key, "must contain {id} or {slug}, e.g. 'https://ops.example/incidents/{id}'"
        )
    try:
        sample = template.format(id=_SAMPLE_ID, slug="checkout-returns-500")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            key, f"is not a valid format string ({exc!r}); only {{id}} and {{slug}} are filled in"
        ) from None
    if not sample.startswith(("http://", "https://")):
        raise ConfigError(key, "must start with http:// or https://")
    return template
