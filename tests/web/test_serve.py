"""``incidentflow serve`` really serves: the CLI started as a process, answering over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

#: How long the process may take to answer before the test gives up (a hang guard only).
STARTUP_GUARD = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(client: httpx.Client, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once the service answers; fail if the process exits or hangs (a guard only)."""
    deadline = time.monotonic() + STARTUP_GUARD
    while True:
        try:
            client.get("/api/incidents")
            return
        except httpx.TransportError:
            if process.poll() is not None:
                output = log.read_text(encoding="utf-8", errors="replace")
                pytest.fail(f"incidentflow serve exited with {process.returncode}:\n{output}")
            if time.monotonic() > deadline:
                pytest.fail(f"incidentflow serve did not answer within {STARTUP_GUARD}s")
            time.sleep(0.05)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    """``python -m incidentflow serve`` in a folder whose incidentflow.toml names a SQLite file."""
    (tmp_path / "incidentflow.toml").write_text('store = "sqlite:///x.db"\n', encoding="utf-8")
    port = _free_port()
    env = {k: val for k, val in os.environ.items() if not k.startswith("INCIDENTFLOW_")}
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "incidentflow", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            _wait_for(client, process, log)
            yield client, tmp_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=STARTUP_GUARD)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class TestServe:
    def test_it_declares_and_answers_from_the_configured_store(
        self, served: tuple[httpx.Client, Path]
    ) -> None:
        """A declare posted to the running CLI comes back from GET, kept in the configured file."""
        client, folder = served
        made = client.post(
            "/api/incidents",
            json={"title": "Checkout returns 500", "severity": "P1", "commander": "al"},
            headers={"X-Actor": "al"},
        )
        assert made.status_code == 201, made.text
        incident_id = made.json()["id"]
        fetched = client.get(f"/api/incidents/{incident_id}", headers={"X-Actor": "al"})
        assert fetched.status_code == 200, fetched.text
        assert fetched.json()["title"] == "Checkout returns 500"
        assert (folder / "x.db").exists()
