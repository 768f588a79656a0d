"""Flow factories for the dispatcher-process tests: every process calling one gets the same flow.

The environment says where: ``DELIVERY_TEST_STORE`` (the store's URL),
``DELIVERY_TEST_LOG`` (a file each notification's id is appended to, as
``start <id>`` and ``done <id>`` lines), ``DELIVERY_TEST_DELAY`` (seconds a
delivery takes) and ``DELIVERY_TEST_LEASE`` (seconds a claim holds).
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from incidentflow import IncidentFlow
from incidentflow.notifiers import CallbackNotifier, Notification
from incidentflow.stores import open_store


def _append(line: str) -> None:
    with Path(os.environ["DELIVERY_TEST_LOG"]).open("a", encoding="utf-8") as log:
        log.write(f"{line}\n")


def _deliver(notification: Notification) -> None:
    _append(f"start {notification.id} {os.getpid()}")
    time.sleep(float(os.environ.get("DELIVERY_TEST_DELAY", "0")))
    _append(f"done {notification.id} {os.getpid()}")


def logged_flow() -> IncidentFlow:
    """A flow on the test's store whose notifier ``log`` writes to the test's log."""
    return IncidentFlow(
        open_store(os.environ["DELIVERY_TEST_STORE"]),
        notifiers=[CallbackNotifier(_deliver, "log")],
        delivery_lease=timedelta(seconds=float(os.environ.get("DELIVERY_TEST_LEASE", "60"))),
    )


def broken_flow() -> IncidentFlow:
    """A factory that fails, as one with a missing setting does."""
    raise RuntimeError("DELIVERY_TEST_URL is not set")


def not_a_flow() -> object:
    """A factory that returns something else."""
    return "not a flow"
