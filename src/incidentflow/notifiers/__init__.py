"""Notifiers: who hears about committed events.

The log, callback and recording notifiers need nothing beyond the library.
``WebhookNotifier`` and ``SlackNotifier`` need httpx (the ``webhook`` extra:
``pip install -e '.[webhook]'`` in a clone); ``EmailNotifier`` uses the standard library. They
are imported on first use, so ``import incidentflow.notifiers`` loads neither
httpx nor smtplib.
"""

from __future__ import annotations

import typing

from .._lazy import lazy_attributes as _lazy_attributes
from ._base import DeliveryError, Notification, Notifier
from .basic import CallbackNotifier, LogNotifier, RecordingNotifier, UnavailableNotifier

if typing.TYPE_CHECKING:
    from .email import EmailNotifier
    from .slack import SlackNotifier
    from .webhook import WEBHOOK_SCHEMA, WebhookNotifier, verify_signature

__all__ = [
    "WEBHOOK_SCHEMA",
    "CallbackNotifier",
    "DeliveryError",
    "EmailNotifier",
    "LogNotifier",
    "Notification",
    "Notifier",
    "RecordingNotifier",
    "SlackNotifier",
    "UnavailableNotifier",
    "WebhookNotifier",
    "verify_signature",
]

_LAZY = {
    "EmailNotifier": ".email",
    "SlackNotifier": ".slack",
    "WEBHOOK_SCHEMA": ".webhook",
    "WebhookNotifier": ".webhook",
    "verify_signature": ".webhook",
}


__getattr__, __dir__ = _lazy_attributes(__name__, globals(), _LAZY)
