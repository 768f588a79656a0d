"""Generic webhooks: a signed JSON POST per event (httpx, extra ``[webhook]``).

The body follows :data:`WEBHOOK_SCHEMA` (``incidentflow.notification/1``).
With a shared secret, each request carries
``X-Incidentflow-Signature: sha256=<hex>``, the HMAC-SHA256 of
``<timestamp>.<body>`` where the timestamp is the ``X-Incidentflow-Timestamp``
header (Unix seconds). Receivers check it with :func:`verify_signature`, which
needs nothing but the standard library.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from .._model import Severity, State
from .._serialization import event_to_dict
from ..exceptions import ConfigError
from ._base import Notification, Notifier
from ._checks import check_incident_url, check_name, check_timeout, check_url
from ._http import HttpPoster
from ._secrets import Secret
from ._text import incident_link

if TYPE_CHECKING:
    import httpx

__all__ = ["WEBHOOK_SCHEMA", "WebhookNotifier", "verify_signature"]

_SCHEMA_NAME = "incidentflow.notification/1"
_RESERVED_PREFIX = "x-incidentflow-"
_RESERVED = frozenset({"content-type", "content-length", "host", "transfer-encoding"})

#: The JSON Schema (draft 2020-12) of the body a :class:`WebhookNotifier` POSTs.
#: Within version 1, fields and event types may be added, never removed or
#: changed; receivers should ignore what they do not know.
WEBHOOK_SCHEMA: Final[Mapping[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "incidentflow webhook notification, version 1",
    "type": "object",
    "required": ["schema", "id", "event", "incident"],
    "properties": {
        "schema": {
            "description": "Names this format and its version.",
            "const": _SCHEMA_NAME,
        },
        "id": {
            "description": (
                "The notification's stable id, <incident id>:<seq>; the same event "
                "delivered twice has the same id, so receivers drop duplicates by it."
            ),
            "type": "string",
            "pattern": "^.+:[0-9]+$",
        },
        "event": {
            "description": "The committed event this notification announces.",
            "type": "object",
            "required": ["type", "seq", "at", "actor", "data"],
            "properties": {
                "type": {
                    "description": "The event type, e.g. declared, evidence_added, resolved.",
                    "type": "string",
                    "pattern": "^[a-z][a-z_]*$",
                },
                "seq": {
                    "description": "Position in the incident's history, from 1, gapless.",
                    "type": "integer",
                    "minimum": 1,
                },
                "at": {
                    "description": "When the event was recorded, ISO 8601 with a UTC offset.",
                    "type": "string",
                    "format": "date-time",
                },
                "actor": {"description": "Who ran the command.", "type": "string"},
                "data": {
                    "description": "The event type's fields, as in the event reference.",
                    "type": "object",
                },
            },
        },
        "incident": {
            "description": "The incident right after this event (its version is the event's seq).",
            "type": "object",
            "required": [
                "id",
                "title",
                "severity",
                "state",
                "commander",
                "declared_at",
                "version",
                "type",
                "labels",
                "custom_fields",
                "references",
                "roles",
            ],
            "properties": {
                "id": {"description": "INC-<YYYY-MM-DD>-<slug>.", "type": "string"},
                "title": {"description": "What is broken, in a line.", "type": "string"},
                "severity": {
                    "description": "The current severity.",
                    "enum": [s.value for s in Severity],
                },
                "state": {
                    "description": "Where the incident stands in the lifecycle.",
                    "enum": [s.value for s in State],
                },
                "commander": {"description": "The incident commander.", "type": "string"},
                "declared_at": {
                    "description": "When it was declared, ISO 8601 with a UTC offset.",
                    "type": "string",
                    "format": "date-time",
                },
                "version": {
                    "description": "How many events its history holds.",
                    "type": "integer",
                    "minimum": 1,
                },
                "type": {
                    "description": "The incident type: availability, security, data, "
                    "performance, or one the policy adds.",
                    "type": "string",
                },
                "labels": {
                    "description": 'Its key=value labels, e.g. {"service": "checkout"}.',
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                },
                "custom_fields": {
                    "description": (
                        "The custom fields the policy declares, by name: strings, "
                        "numbers or booleans (a date is its ISO text)."
                    ),
                    "type": "object",
                },
                "references": {
                    "description": (
                        "External references (alert fingerprints, tickets, chat channels), "
                        "in the order attached."
                    ),
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["kind", "value"],
                        "properties": {
                            "kind": {"type": "string"},
                            "value": {"type": "string"},
                        },
                    },
                },
                "roles": {
                    "description": "Who holds each role, by role name; the commander included.",
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                },
                "url": {
                    "description": "A link to the incident; only with incident_url set.",
                    "type": "string",
                    "format": "uri",
                },
            },
        },
    },
}


def verify_signature(
    secret: str | bytes,
    body: bytes,
    timestamp: str | int,
    signature: str,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """True if ``signature`` is the sender's signature of ``body`` at ``timestamp``.

    Pass the raw request body (before any JSON parsing) and the values of the
    ``X-Incidentflow-Timestamp`` and ``X-Incidentflow-Signature`` headers. A
    timestamp more than ``tolerance`` seconds away from ``now`` (default: the
    current time) is refused, so a recorded request cannot be replayed later.
    The comparison takes constant time.

    >>> body = b'{"schema":"incidentflow.notification/1"}'
    >>> signature = _sign(b"s3cret", 1_800_000_000, body)
    >>> verify_signature("s3cret", body, "1800000000", signature, now=1_800_000_010)
    True
    >>> verify_signature("s3cret", body, "1800000000", signature, now=1_800_000_900)
    False
    """
    key = secret.encode() if isinstance(secret, str) else secret
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        return False
    expected = _sign(key, sent_at, body)
    return hmac.compare_digest(expected.encode(), str(signature).strip().encode())


def _sign(key: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookNotifier(Notifier):
    """POSTs each notification as JSON to ``url``, signed when given a ``secret``.

    Needs httpx (``pip install -e '.[webhook]'``). One instance keeps a
    pool of connections and may be called from many threads at once.

    Args:
        url: The receiver's http(s) URL. Credentials in it (``user:pass@``,
            ``?token=``, a token in the path) are never shown in reprs, logs or errors.
        secret: Shared secret for the ``X-Incidentflow-Signature`` header.
        timeout: Seconds an attempt may take in all: connecting, sending the
            request and reading the answer (at most 64 KiB of it).
        headers: Extra headers for every request, e.g. ``Authorization``;
            treated as secret. Content-Type and ``X-Incidentflow-*`` are set by
            the notifier and cannot be overridden.
        incident_url: Format string for a link to the incident, filled with
            ``{id}`` and ``{slug}``; sent as ``incident.url``.
        name: Name used in logs and routing rules.
        transport: An ``httpx`` transport to send through, e.g.
            ``httpx.HTTPTransport(proxy=...)`` for a proxy or ``httpx.MockTransport``
            in tests. ``close()`` closes it.

    Raises:
        ConfigError: A setting is wrong; ``.key`` names it.

    """

    def __init__(
        self,
        url: str,
        *,
        secret: str | bytes | None = None,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
        incident_url: str | None = None,
        name: str = "webhook",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        check_url(url, "url")
        self.name = check_name(name)
        self.timeout = check_timeout(timeout)
        self.incident_url = check_incident_url(incident_url)
        key = _check_secret(secret) if secret is not None else None
        # The HMAC keyed once; each signature starts from a copy of it.
        self._secret = Secret(hmac.new(key, digestmod=hashlib.sha256)) if key is not None else None
        self._header_names = tuple(_check_headers(headers))
        self._http = HttpPoster(
            url,
            notifier=name,
            timeout=self.timeout,
            headers=headers,
            # A receiver that quotes the key back in an error must not put it in a log.
            secrets=() if key is None else (key.decode("utf-8", "replace"),),
            transport=transport,
        )

    def payload(self, notification: Notification) -> dict[str, Any]:
        """The JSON-ready body this notifier sends for ``notification``."""
        event = event_to_dict(notification.event)
        incident = notification.incident
        described: dict[str, Any] = {
            "id": incident.id,
            "title": incident.title,
            "severity": incident.severity.value,
            "state": incident.state.value,
            "commander": incident.commander,
            "declared_at": incident.declared_at.isoformat(),
            "version": incident.version,
            "type": incident.type,
            "labels": dict(incident.labels),
            "custom_fields": dict(incident.custom_fields),
            "references": [{"kind": r.kind, "value": r.value} for r in incident.references],
            "roles": dict(incident.roles),
        }
        link = incident_link(self.incident_url, incident)
        if link is not None:
            described["url"] = link
        return {
            "schema": _SCHEMA_NAME,
            "id": notification.id,
            "event": {key: event[key] for key in ("type", "seq", "at", "actor", "data")},
            "incident": described,
        }

    def notify(self, notification: Notification) -> None:
        """POST the notification; DeliveryError unless the receiver answers 2xx."""
        body = json.dumps(
            self.payload(notification), ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Incidentflow-Id": notification.id,
            "X-Incidentflow-Timestamp": str(timestamp),
        }
        if self._secret is not None:
            signer = self._secret.reveal().copy()
            signer.update(f"{timestamp}.".encode() + body)
            headers["X-Incidentflow-Signature"] = f"sha256={signer.hexdigest()}"
        self._http.post(notification.id, body, headers)

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __repr__(self) -> str:
        extras = "".join(
            [
                ", secret='***'" if self._secret is not None else "",
                f", headers={list(self._header_names)!r}" if self._header_names else "",
                f", incident_url={self.incident_url!r}" if self.incident_url else "",
            ]
        )
        return (
            f"WebhookNotifier(url={self._http.redacted_url!r}, name={self.name!r}, "
            f"timeout={self.timeout:g}{extras})"
        )


def _check_secret(secret: object) -> bytes:
    if isinstance(secret, str):
        secret = secret.encode()
    if not isinstance(secret, bytes):
        raise ConfigError("secret", f"expected str or bytes, got {type(secret).__name__}")
    if not secret:
        raise ConfigError("secret", "must not be empty; leave it unset to send unsigned requests")
    return secret


def _check_headers(headers: Mapping[str, str] | None) -> list[str]:
    """The header names, after checking them; values are never quoted back."""
    if headers is None:
        return []
    if not isinstance(headers, Mapping):
        raise ConfigError("headers", f"expected a mapping, got {type(headers).__name__}")
    names = []
    for header, value in headers.items():
        if not isinstance(header, str) or not isinstance(value, str):
            raise ConfigError("headers", "names and values must be strings")
        lowered = header.lower()
        if lowered in _RESERVED or lowered.startswith(_RESERVED_PREFIX):
            raise ConfigError("headers", f"{header} is set by the notifier; leave it out")
        if not header or any(c in header for c in "\r\n:") or any(c in value for c in "\r\n"):
            raise ConfigError("headers", f"{header!r} has a line break or is malformed")
        names.append(header)
    return names
