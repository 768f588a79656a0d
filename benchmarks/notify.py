"""An alert storm against a slow webhook receiver, as ratios from one run.

Run: ``python benchmarks/notify.py`` (needs the ``dev`` extra for httpx).

1,000 commands across 100 incidents (each declared, then nine notes), first
with no notifiers, then with a ``WebhookNotifier`` whose receiver, a real HTTP
server on 127.0.0.1, takes 50 ms per request, delivered by a ``Dispatcher``.
Prints the commands' total time in both runs and their ratio (target ≤ 1.2×),
and the most deliveries the receiver saw in flight at once (target ≥ 8).
Each store runs the storm on a fresh store: memory, then SQLite.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from incidentflow import IncidentFlow
from incidentflow.notifiers import WebhookNotifier
from incidentflow.stores import MemoryStore, SQLiteStore, Store

INCIDENTS = 100
NOTES_EACH = 9
RECEIVER_DELAY = 0.05


class Receiver:
    """A webhook receiver that takes ``delay`` seconds and counts requests in flight."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.received = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.in_flight += 1
                    receiver.peak = max(receiver.peak, receiver.in_flight)
                time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.in_flight -= 1
                    receiver.received += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def storm(flow: IncidentFlow) -> float:
    """Run the 1,000 commands; return their total time in seconds."""
    start = time.perf_counter()
    ids = [
        flow.declare(f"Alert {n}", severity="P2", commander="oncall", actor="alertmanager").id
        for n in range(INCIDENTS)
    ]
    for round_ in range(NOTES_EACH):
        for incident_id in ids:
            flow.add_note(incident_id, f"alert fired again ({round_})", actor="alertmanager")
    return time.perf_counter() - start


def run(name: str, make_store: Callable[[], Store], receiver: Receiver) -> None:
    baseline = storm(IncidentFlow(make_store()))

    webhook = WebhookNotifier(receiver.url, secret="benchmark-secret", timeout=5)
    flow = IncidentFlow(make_store(), notifiers=[webhook])
    dispatcher = flow.dispatcher(max_in_flight=16, interval=0.05).start()
    try:
        notified = storm(flow)
        events = INCIDENTS * (1 + NOTES_EACH)
        deadline = time.monotonic() + 120
        while receiver.received < events and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        dispatcher.stop()
        flow.close()
    print(f"{name}:")
    print(f"  commands, no notifiers:            {baseline:7.3f} s")
    print(f"  commands, webhook + dispatcher:    {notified:7.3f} s")
    print(f"  ratio (target ≤ 1.2):              {notified / baseline:7.2f}")
    print(f"  most deliveries in flight (≥ 8):   {receiver.peak:7d}")
    print(f"  delivered {receiver.received} of {events}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        counter = iter(range(1000))
        stores: dict[str, Callable[[], Store]] = {
            "memory": MemoryStore,
            "sqlite": lambda: SQLiteStore(Path(folder) / f"storm-{next(counter)}.db"),
        }
        for name, make_store in stores.items():
            receiver = Receiver(RECEIVER_DELAY)
            try:
                run(name, make_store, receiver)
            finally:
                receiver.close()


if __name__ == "__main__":
    main()
