"""The alert record every parser gives, and what incidents take from it (title, labels, text)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Literal

import attrs

from .. import _validate as v

__all__ = [
    "STATUSES",
    "Alert",
    "AlertStatus",
    "evidence_text",
    "label_key",
    "label_value",
    "one_line",
    "readable_title",
]

AlertStatus = Literal["firing", "resolved", "acknowledged"]
#: What an alert can say: it fires, it stopped, or (PagerDuty) someone acknowledged it.
STATUSES: tuple[AlertStatus, ...] = ("firing", "resolved", "acknowledged")

_WHITESPACE = re.compile(r"\s+")
# Line breaks and characters a one-line field refuses (see incidentflow._validate).
_NOT_ONE_LINE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_NOT_KEY = re.compile(r"[^a-z0-9_./-]")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORDS = re.compile(r"[_\-.:]+")


def _frozen(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class Alert:
    """One alert, as a parser read it from a webhook payload.

    Attributes:
        source: The format it came in: ``alertmanager``, ``grafana``,
            ``pagerduty``, ``datadog`` or ``generic``.
        fingerprint: What identifies the alert at its source (Alertmanager's
            ``fingerprint``, PagerDuty's ``dedup_key``, Datadog's ``$AGGREG_KEY``).
        group_key: The group it was sent in (Alertmanager's ``groupKey``), if any.
        status: ``firing``, ``resolved`` or ``acknowledged`` (PagerDuty only).
        title: A readable one-line title (the summary, else the alert's name).
        summary: The longer description, if the source sent one.
        labels: The labels as sent (keys and values unchanged).
        annotations: The annotations as sent (PagerDuty's ``custom_details``).
        starts_at: When it started firing (aware UTC), if the source says.
        ends_at: When it ended (aware UTC), if it did.
        url: A link back to the source (``generatorURL``, the monitor), if any.
        severity: The source's severity hint, lower-case (``critical``, ``p2``), if any.

    """

    source: str
    fingerprint: str
    group_key: str | None = None
    status: AlertStatus
    title: str
    summary: str = ""
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen, hash=False)
    annotations: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen, hash=False)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    url: str | None = None
    severity: str | None = None

    def key(self, group_by: str = "fingerprint") -> str:
        """What deduplicates it: the fingerprint, or with ``group_by="group"`` the group key.

        An alert sent without a group key falls back to its fingerprint.
        """
        if group_by == "group" and self.group_key:
            return self.group_key
        return self.fingerprint

    def key_kind(self, group_by: str = "fingerprint") -> Literal["fp", "group"]:
        """What :meth:`key` gives: ``"group"`` (the group key) or ``"fp"`` (the fingerprint)."""
        return "group" if group_by == "group" and self.group_key else "fp"

    def reference(self, group_by: str = "fingerprint") -> str:
        """The alert reference an incident holds for it: ``source:kind:key``.

        The source and the kind of key are part of it, so that alerts from two
        sources, or a fingerprint and a group key, never match each other.

        >>> Alert(source="alertmanager", fingerprint="abc1", status="firing", title="t").reference()
        'alertmanager:fp:abc1'
        """
        return f"{self.source}:{self.key_kind(group_by)}:{self.key(group_by)}"


def one_line(value: str, limit: int) -> str:
    """``value`` as one tidy line of at most ``limit`` characters ("…" marks a cut)."""
    line = _WHITESPACE.sub(" ", _NOT_ONE_LINE.sub(" ", value)).strip()
    if len(line) <= limit:
        return line
    return line[: limit - 1].rstrip() + "…"


def readable_title(name: str) -> str:
    """An alert name as words: ``CheckoutErrorRate`` → ``Checkout error rate``.

    >>> readable_title("CheckoutErrorRate"), readable_title("disk_full:db-7")
    ('Checkout error rate', 'Disk full db 7')
    >>> readable_title("HTTPRequestsFailing")
    'HTTP requests failing'
    """
    words = _WORDS.sub(" ", _CAMEL.sub(" ", name.strip())).split()
    shown = [w if w.isupper() and len(w) > 1 else w.lower() for w in words]
    text = " ".join(shown)
    return text[:1].upper() + text[1:]


def label_key(key: str) -> str | None:
    """A label key made valid for :func:`incidentflow._validate.key`, or None if nothing is left.

    >>> label_key("__name__"), label_key("Availability Zone"), label_key("!!")
    ('name', 'availability_zone', None)
    """
    lowered = _NOT_KEY.sub("_", key.strip().lower())
    cut = re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", lowered)[:63]
    cut = re.sub(r"[^a-z0-9]+$", "", cut)
    return cut or None


def label_value(value: str) -> str | None:
    """A label value cut to one line of at most 200 characters, or None when empty."""
    line = one_line(value.splitlines()[0] if value.strip() else "", v.NAME_MAX)
    return line or None


def evidence_text(alert: Alert, key: str) -> str:
    """The alert written out as evidence: what fired, when, where, with its labels."""
    lines = [f"[{alert.status}] {alert.title}"]
    if alert.summary and alert.summary != alert.title:
        lines.append(alert.summary)
    lines.append(f"source: {alert.source}; key: {key}")
    if alert.starts_at is not None:
        lines.append(f"started: {alert.starts_at.isoformat()}")
    if alert.ends_at is not None:
        lines.append(f"ended: {alert.ends_at.isoformat()}")
    if alert.severity:
        lines.append(f"severity: {alert.severity}")
    if alert.labels:
        lines.append(
            "labels: " + ", ".join(f"{k}={val}" for k, val in sorted(alert.labels.items()))
        )
    for name, text in sorted(alert.annotations.items()):
        lines.append(f"{name}: {text}")
    if alert.url:
        lines.append(f"url: {alert.url}")
    written = "\n".join(lines)
    # Control characters other than line breaks would be refused by add_evidence.
    written = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]", " ", written)
    return written[: v.EVIDENCE_MAX]
