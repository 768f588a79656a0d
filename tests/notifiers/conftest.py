"""Fixtures for the notifier tests: real servers on 127.0.0.1, real notifications.

The servers themselves are in ``notifier_servers.py``. TLS tests use a
self-signed certificate for 127.0.0.1 made by the ``openssl`` command at test
time; without the command they skip.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

# --import-mode=importlib leaves sys.path alone; the test modules import notifier_servers by name.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from notifier_servers import (  # noqa: E402
    HttpReceiver,
    SmtpRecorder,
    SmtpServer,
    Tls,
    authenticator,
    free_port,
)

from helpers import drive_to  # noqa: E402
from incidentflow import IncidentFlow  # noqa: E402
from incidentflow.notifiers import Notification  # noqa: E402
from incidentflow.testing import FrozenClock  # noqa: E402

pytest.importorskip("httpx", reason="the webhook tests need httpx: pip install -e '.[dev]'")


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    """A running HTTP receiver that checks signatures made with SIGNING_SECRET."""
    server = HttpReceiver()
    yield server
    server.stop()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where connections are refused."""
    return free_port()


@pytest.fixture
def notifications(clock: FrozenClock) -> list[Notification]:
    """Real notifications: a P1 incident driven to resolved, one per event."""
    flow = IncidentFlow.in_memory(clock=clock)
    drive_to(flow, clock, "resolved")
    (incident,) = flow.list()
    return [
        Notification(f"{event.incident_id}:{event.seq}", event, flow.get(incident.id))
        for event in flow.history(incident.id)
    ]


@pytest.fixture
def notification(notifications: list[Notification]) -> Notification:
    """The last notification of the resolved incident (``resolved``)."""
    return notifications[-1]


@pytest.fixture
def coordination(clock: FrozenClock) -> dict[str, Notification]:
    """Notifications of a role handoff and a status update, by event type."""
    flow = IncidentFlow.in_memory(clock=clock)
    inc = drive_to(flow, clock, "triaging")
    flow.assign_role(inc.id, "communications_lead", "dana", actor="alice")
    flow.assign_role(
        inc.id, "communications_lead", "erin", note="dana is off <shift>", actor="dana"
    )
    flow.post_update(
        inc.id,
        "external",
        "Checkout fails for some cards.\n<!channel> Next: failover & retry.",
        next_update_in=timedelta(minutes=30),
        actor="erin",
    )
    incident = flow.get(inc.id)
    handoff, update = flow.history(inc.id)[-2:]
    return {
        "handoff": Notification(f"{inc.id}:{handoff.seq}", handoff, incident),
        "update": Notification(f"{inc.id}:{update.seq}", update, incident),
    }


@pytest.fixture
def smtp_factory() -> Iterator[Callable[..., SmtpServer]]:
    """``smtp_factory(**controller_options)``: start an aiosmtpd server on 127.0.0.1."""
    controller_module = pytest.importorskip("aiosmtpd.controller")
    started: list[Any] = []

    def start(**options: Any) -> SmtpServer:
        handler = SmtpRecorder()
        port = free_port()
        options.setdefault("authenticator", authenticator)
        controller = controller_module.Controller(
            handler, hostname="127.0.0.1", port=port, ready_timeout=5, **options
        )
        controller.start()
        started.append(controller)
        return SmtpServer("127.0.0.1", port, handler)

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def smtp(smtp_factory: Callable[..., SmtpServer]) -> SmtpServer:
    """A plain SMTP server (no TLS) that records messages."""
    return smtp_factory()


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A certificate for IP 127.0.0.1, made by the openssl command (skips without it)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the TLS tests need the openssl command to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return Tls(cert, key)
