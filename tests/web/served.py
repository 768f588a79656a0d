"""A real uvicorn on 127.0.0.1 in a thread, and the service handle the API tests use.

Each server listens on a socket bound to port 0 (one free port per test, so
pytest-xdist workers never collide) and is stopped when its block ends.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import uvicorn

from incidentflow import IncidentFlow
from incidentflow.testing import FrozenClock

__all__ = ["ALERT_SECRET", "ALERT_TOKEN", "API_TOKEN", "Service", "running"]

#: The tokens the token-guarded services accept (long enough for the check on length).
ALERT_TOKEN = "alert-token-0123456789abcdef"
ALERT_SECRET = "alert-secret-0123456789abcdef"
API_TOKEN = "api-token-ci-bot-0123456789abcdef"


@contextlib.contextmanager
def running(asgi: Any) -> Iterator[str]:
    """Serve ``asgi`` with uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(asgi, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@attrs.define
class Service:
    """A flow served over HTTP, and a client for it."""

    flow: IncidentFlow
    clock: FrozenClock
    url: str
    client: httpx.Client

    def post(self, path: str, actor: str = "alice", **kwargs: Any) -> httpx.Response:
        """POST to ``/api<path>`` as ``actor`` (the X-Actor header)."""
        headers = {"X-Actor": actor, **kwargs.pop("headers", {})}
        return self.client.post(f"/api{path}", headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET ``/api<path>``."""
        return self.client.get(f"/api{path}", **kwargs)
