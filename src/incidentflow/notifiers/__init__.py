"""Notifiers: who hears about committed events.

The log, callback and recording notifiers need nothing beyond the library.
``WebhookNotifier`` and ``SlackNotifier`` need httpx (``pip install
'incidentflow[webhook]'``); ``EmailNotifier`` uses the standard library. They
are imported on first use, so ``import incidentflow.notifiers`` loads neither
httpx nor smtplib.
"""

from __future__ import annotations

import importlib
import typing

from ._base import DeliveryError, Notification, Notifier
from .basic import CallbackNotifier, LogNotifier, RecordingNotifier

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


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
