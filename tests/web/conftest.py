"""Fixtures for the HTTP service: a real uvicorn on 127.0.0.1 in a thread, and httpx clients."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed")
pytest.importorskip("uvicorn", reason="the web extra is not installed")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from served import ALERT_SECRET, ALERT_TOKEN, Service, running

from helpers import store_flow
from incidentflow.testing import FrozenClock


@pytest.fixture
def serve(tmp_path: Path, clock: FrozenClock) -> Iterator[Callable[..., Service]]:
    """Start a service on a fresh SQLite flow, with the ``app`` options given."""
    from incidentflow.web import app

    with contextlib.ExitStack() as stack:

        def start(kind: str = "sqlite", **options: Any) -> Service:
            folder = tmp_path / f"store-{len(stack._exit_callbacks)}"
            folder.mkdir()
            flow = stack.enter_context(store_flow(kind, folder, clock))
            url = stack.enter_context(running(app(flow, **options)))
            client = stack.enter_context(httpx.Client(base_url=url, timeout=30))
            return Service(flow, clock, url, client)

        yield start


@pytest.fixture
def service(serve: Callable[..., Service]) -> Service:
    """A service without tokens (X-Actor names the actor), alerts admitted by token or HMAC."""
    alert_tokens = {"alertmanager": ALERT_TOKEN}
    return serve(alert_tokens=alert_tokens, alert_secrets={"grafana": ALERT_SECRET})
