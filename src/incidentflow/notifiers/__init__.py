"""Notifiers: who hears about committed events."""

from ._base import Notification, Notifier
from .basic import CallbackNotifier, LogNotifier, RecordingNotifier

__all__ = [
    "CallbackNotifier",
    "LogNotifier",
    "Notification",
    "Notifier",
    "RecordingNotifier",
]
