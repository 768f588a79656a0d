"""An alert storm against a slow webhook receiver, as ratios from one run.

Run: ``python benchmarks/notify.py`` (needs the ``dev`` extra for httpx);
``--repeat N`` sets the repetitions (default 5), ``--receiver-in-process``
runs the receiver inside the benchmark's own interpreter, as earlier versions
of this script did.

1,000 commands across 100 incidents (each declared, then nine notes), first
with no notifiers, then with a ``WebhookNotifier`` whose receiver, a real HTTP
server on 127.0.0.1, takes 50 ms per request, delivered by a dispatcher with 16
slots. Each repetition runs both storms on fresh stores, the one without
notifiers first, each after a full garbage collection; the script prints the
commands' total time in both (min and median over the repetitions) and their
ratio (target ≤ 1.2×), the most deliveries the receiver saw in flight at once
(target ≥ 8), and how long it took until all 1,000 notifications had arrived.

Three setups: the memory store with a thread dispatcher, SQLite with a thread
dispatcher, and SQLite with the dispatcher in a child process
(``flow.dispatcher(process=...)``).

The receiver runs in a process of its own by default, as a real receiver does:
its request handling is not the library's work, and inside the benchmark's
interpreter it competes with the commands for the GIL.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
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
EVENTS = INCIDENTS * (1 + NOTES_EACH)
RECEIVER_DELAY = 0.05
SLOTS = 16
INTERVAL = 0.05
SECRET = "benchmark-secret"


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

    def counts(self) -> tuple[int, int]:
        """Requests answered, and the most in flight at once, since the last reset."""
        with self.lock:
            return self.received, self.peak

    def reset(self) -> None:
        with self.lock:
            self.received = 0
            self.peak = self.in_flight

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ReceiverProcess:
    """The same receiver, in a child process (``--serve-receiver``), asked for its counts."""

    def __init__(self, delay: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-receiver", str(delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self._ask(None)

    def _ask(self, request: str | None) -> str:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        if request is not None:
            self.process.stdin.write(request + "\n")
            self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def counts(self) -> tuple[int, int]:
        received, peak = self._ask("counts").split()
        return int(received), int(peak)

    def reset(self) -> None:
        self._ask("reset")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


def serve_receiver(delay: float) -> None:
    """``--serve-receiver``: answer ``counts`` and ``reset`` on stdin until it closes."""
    receiver = Receiver(delay)
    print(receiver.url, flush=True)
    for line in sys.stdin:
        if line.strip() == "counts":
            print(*receiver.counts(), flush=True)
        elif line.strip() == "reset":
            receiver.reset()
            print("ok", flush=True)
    receiver.close()


def storm(flow: IncidentFlow) -> float:
    """Run the 1,000 commands; return their total time in seconds."""
    # The earlier runs' garbage is collected now, not by whichever storm comes next.
    gc.collect()
    start = time.perf_counter()
    ids = [
        flow.declare(f"Alert {n}", severity="P2", commander="oncall", actor="alertmanager").id
        for n in range(INCIDENTS)
    ]
    for round_ in range(NOTES_EACH):
        for incident_id in ids:
            flow.add_note(incident_id, f"alert fired again ({round_})", actor="alertmanager")
    return time.perf_counter() - start


def delivering_flow() -> IncidentFlow:
    """The flow of the dispatcher process: the benchmark's SQLite file and webhook."""
    webhook = WebhookNotifier(os.environ["NOTIFY_BENCH_URL"], secret=SECRET, timeout=5)
    return IncidentFlow(SQLiteStore(os.environ["NOTIFY_BENCH_DB"]), notifiers=[webhook])


class Run:
    """One notified storm's figures."""

    def __init__(self, commands: float, peak: int, delivered: int, all_in: float) -> None:
        self.commands = commands
        self.peak = peak
        self.delivered = delivered
        self.all_in = all_in


def notified(store: Store, receiver: Receiver | ReceiverProcess, *, process: bool) -> Run:
    """The storm with the webhook and a dispatcher; waits until everything has arrived."""
    webhook = WebhookNotifier(receiver.url, secret=SECRET, timeout=5)
    flow = IncidentFlow(store, notifiers=[webhook])
    if process:
        assert isinstance(store, SQLiteStore)
        os.environ["NOTIFY_BENCH_DB"] = str(store.path)
        os.environ["NOTIFY_BENCH_URL"] = receiver.url
    dispatcher = (
        flow.dispatcher(max_in_flight=SLOTS, interval=INTERVAL, process=delivering_flow)
        if process
        else flow.dispatcher(max_in_flight=SLOTS, interval=INTERVAL)
    ).start()
    receiver.reset()
    try:
        started = time.perf_counter()
        commands = storm(flow)
        deadline = time.monotonic() + 120
        while receiver.counts()[0] < EVENTS and time.monotonic() < deadline:
            time.sleep(0.02)
        all_in = time.perf_counter() - started
    finally:
        dispatcher.stop()
        flow.close()
    received, peak = receiver.counts()
    return Run(commands, peak, received, all_in)


def setup(
    name: str,
    make_store: Callable[[], Store],
    receiver: Receiver | ReceiverProcess,
    repeat: int,
    *,
    process: bool = False,
) -> None:
    baselines: list[float] = []
    runs: list[Run] = []
    for _ in range(repeat):
        baseline = IncidentFlow(make_store())
        baselines.append(storm(baseline))
        baseline.close()
        runs.append(notified(make_store(), receiver, process=process))
    commands = [r.commands for r in runs]

    def spread(values: list[float]) -> str:
        return f"{min(values):7.3f} s  {statistics.median(values):7.3f} s"

    ratios = [r.commands / b for r, b in zip(runs, baselines, strict=True)]
    print(f"{name}:                                   min       median")
    print(f"  commands, no notifiers:            {spread(baselines)}")
    print(f"  commands, webhook + dispatcher:    {spread(commands)}")
    print(
        f"  ratio (target ≤ 1.2):              {min(commands) / min(baselines):7.2f}    "
        f"{statistics.median(commands) / statistics.median(baselines):7.2f}"
        f"    (per repetition: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(f"  most deliveries in flight (≥ 8):   {min(r.peak for r in runs):7d} (lowest run)")
    print(f"  all delivered after:               {spread([r.all_in for r in runs])}")
    print(f"  delivered: {', '.join(f'{r.delivered} of {EVENTS}' for r in runs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of each setup")
    parser.add_argument(
        "--receiver-in-process",
        action="store_true",
        help="run the receiver inside this interpreter (it then competes with the commands)",
    )
    parser.add_argument("--serve-receiver", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receiver is not None:
        serve_receiver(args.serve_receiver)
        return
    where = "this process" if args.receiver_in_process else "a process of its own"
    print(f"receiver: {RECEIVER_DELAY * 1000:.0f} ms per request, in {where}; {args.repeat} runs")
    with tempfile.TemporaryDirectory() as folder:
        counter = iter(range(1_000_000))

        def sqlite() -> Store:
            return SQLiteStore(Path(folder) / f"storm-{next(counter)}.db")

        setups: list[tuple[str, Callable[[], Store], bool]] = [
            ("memory, thread dispatcher", MemoryStore, False),
            ("sqlite, thread dispatcher", sqlite, False),
            ("sqlite, dispatcher process", sqlite, True),
        ]
        for name, make_store, process in setups:
            receiver: Receiver | ReceiverProcess = (
                Receiver(RECEIVER_DELAY)
                if args.receiver_in_process
                else ReceiverProcess(RECEIVER_DELAY)
            )
            try:
                setup(name, make_store, receiver, args.repeat, process=process)
            finally:
                receiver.close()


if __name__ == "__main__":
    main()
