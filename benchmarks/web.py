"""HTTP overhead: a command over HTTP vs the library call plus a trivial round trip (issue 13).

Run with ``python benchmarks/web.py`` (``--quick``: fewer rounds). Needs the
``web`` extra. The service runs in a child process (uvicorn on 127.0.0.1, its
own SQLite file), so client and server do not share one interpreter lock.

1. Latency, interleaved round by round: ``flow.add_note`` called in this
   process on a SQLite store of its own; ``POST /api/incidents/{id}/add_note``
   over HTTP; and two trivial endpoints of the same server: ``POST /echo``,
   which takes the same JSON body with the same headers and answers a small
   JSON object (the trivial endpoint of the target: the same request, no
   work), and ``GET /ping`` (no body at all). Each pair of incidents takes 50
   notes, then fresh ones are declared, so the snapshot each HTTP answer
   carries stays the size of a real incident's. It prints the medians,
   ``http / (library + echo)`` (the issue asks at most 1.5) and, for
   comparison, ``http / (library + ping)``. A second server, started with
   ``app(flow, inline=False)``, takes the same command in the same rounds:
   its ratio is what the hop to a worker thread costs on every command.
2. Throughput: 16 clients (threads, one keep-alive connection each) post
   ``add_note`` to 16 incidents for a few seconds, on SQLite (by default, and
   with ``inline=False``) and, when ``INCIDENTFLOW_TEST_POSTGRES_DSN`` is set,
   on PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx

from incidentflow import IncidentFlow
from incidentflow.stores import SQLiteStore

CLIENTS = 16
#: Notes added to one incident before the latency run moves to a fresh one.
PER_INCIDENT = 50


def serve(store: str, port: int, inline: bool | None = None) -> None:
    """The child process: the service on ``store`` (SQLite path or PostgreSQL DSN), and /ping."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Mount, Route

    from incidentflow.web import app

    if store.startswith("postgresql://"):
        from incidentflow.stores.postgres import PostgresStore

        flow = IncidentFlow(PostgresStore(store, schema=f"bench_web_{os.getpid()}"))
    else:
        flow = IncidentFlow(SQLiteStore(Path(store)))

    async def ping(request: object) -> PlainTextResponse:
        return PlainTextResponse("pong")

    async def echo(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"received": len(body), "actor": request.headers.get("x-actor")})

    served = Mount("/", app(flow, inline=inline))
    routes = [Route("/ping", ping), Route("/echo", echo, methods=["POST"]), served]
    asgi = Starlette(routes=routes)
    uvicorn.run(asgi, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class Server:
    """The service in a child process, stopped on exit."""

    def __init__(self, store: str, port: int, *, threads_only: bool = False) -> None:
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, __file__, "--serve", store, "--port", str(port)]
        command += ["--threads-only"] if threads_only else []
        self.process = subprocess.Popen(command)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.url}/ping", timeout=1)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the service did not start") from None
                time.sleep(0.1)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        self.process.wait(10)


def _declare(client: httpx.Client, title: str) -> str:
    body = {"title": title, "severity": "P2", "commander": "bench"}
    answer = client.post("/api/incidents", json=body, headers={"X-Actor": "bench"})
    answer.raise_for_status()
    return str(answer.json()["id"])


def _ok(
    client: httpx.Client, method: str, path: str, body: object, headers: dict[str, str]
) -> None:
    client.request(method, path, json=body, headers=headers).raise_for_status()


def latency(folder: Path, rounds: int, port: int) -> None:
    """Median latencies, interleaved: library, HTTP command (both modes), trivial round trips."""
    flow = IncidentFlow(SQLiteStore(folder / "library.db"))
    local = flow.declare("Library incident", severity="P2", commander="bench", actor="bench")
    with (
        Server(str(folder / "served.db"), port) as server,
        Server(str(folder / "threads.db"), port + 3, threads_only=True) as threads,
        httpx.Client(base_url=server.url) as c,
        httpx.Client(base_url=threads.url) as t,
    ):
        path, hop_path = (f"/api/incidents/{_declare(x, 'Served')}/add_note" for x in (c, t))
        headers = {"X-Actor": "bench"}
        for _ in range(20):  # warm every path up
            flow.add_note(local.id, "warm-up", actor="bench")
            c.post(path, json={"text": "warm-up"}, headers=headers).raise_for_status()
            t.post(hop_path, json={"text": "warm-up"}, headers=headers).raise_for_status()
            c.get("/ping")
            c.post("/echo", json={"text": "warm-up"}, headers=headers)
        library, http, hop, ping, echo = [], [], [], [], []

        def timed(samples: list[float], call: Callable[[], object]) -> None:
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)

        order = random.Random(13)
        for n in range(rounds):
            if n % PER_INCIDENT == 0:  # a fresh incident now and then: a realistic snapshot size
                local = flow.declare(f"Library {n}", severity="P2", commander="bench", actor="b")
                path = f"/api/incidents/{_declare(c, f'Served {n}')}/add_note"
                hop_path = f"/api/incidents/{_declare(t, f'Served {n}')}/add_note"
            note = {"text": f"note {n}"}
            calls: list[tuple[list[float], Callable[[], object]]] = [
                (library, partial(flow.add_note, local.id, note["text"], actor="bench")),
                (http, partial(_ok, c, "POST", path, note, headers)),
                (ping, partial(_ok, c, "GET", "/ping", None, {})),
                (echo, partial(_ok, c, "POST", "/echo", note, headers)),
                (hop, partial(_ok, t, "POST", hop_path, note, headers)),
            ]
            # Each round in its own order: what runs right after the library call's fsync
            # (which slows the next work on this machine) is no one side's burden.
            order.shuffle(calls)
            for samples, call in calls:
                timed(samples, call)
    flow.close()
    lib_ms, http_ms, hop_ms, ping_ms, echo_ms = (
        statistics.median(xs) * 1000 for xs in (library, http, hop, ping, echo)
    )
    print(f"latency over {rounds} interleaved rounds (medians, SQLite):")
    print(f"  library add_note                  {lib_ms:7.3f} ms")
    print(f"  POST /echo round trip             {echo_ms:7.3f} ms")
    print(f"  GET /ping round trip              {ping_ms:7.3f} ms")
    print(f"  HTTP add_note                     {http_ms:7.3f} ms")
    print(f"  HTTP add_note, app(inline=False)  {hop_ms:7.3f} ms")
    print(f"  ratio http / (library + echo) = {http_ms / (lib_ms + echo_ms):.2f} (target <= 1.5)")
    print(f"  ratio http / (library + ping) = {http_ms / (lib_ms + ping_ms):.2f} (GET, no body)")
    hops = hop_ms / (lib_ms + echo_ms)
    print(f"  ratio with inline=False       = {hops:.2f} (every command hops)")


def throughput(
    store: str, label: str, seconds: float, port: int, *, threads_only: bool = False
) -> None:
    """Commands per second with ``CLIENTS`` concurrent clients, each on its own incident."""
    with Server(store, port, threads_only=threads_only) as server:
        with httpx.Client(base_url=server.url) as setup:
            ids = [_declare(setup, f"Throughput incident {n}") for n in range(CLIENTS)]
        counts = [0] * CLIENTS
        errors: list[str] = []
        start = threading.Barrier(CLIENTS + 1)
        stop = time.monotonic() + seconds + 0.5

        def client(n: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as c:
                path = f"/api/incidents/{ids[n]}/add_note"
                start.wait()
                while time.monotonic() < stop:
                    answer = c.post(path, json={"text": "busy"}, headers={"X-Actor": "bench"})
                    if answer.status_code != 200:
                        errors.append(answer.text)
                    counts[n] += 1

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        start.wait()
        began = time.monotonic()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
    if store.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "bench_web_{server.process.pid}" CASCADE')
    total = sum(counts)
    print(f"throughput on {label}, {CLIENTS} concurrent clients: {total / elapsed:,.0f} commands/s "
          f"({total:,} in {elapsed:.1f} s, {len(errors)} errors)")  # fmt: skip
    if errors:
        raise SystemExit(f"errors under load, e.g. {errors[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs")
    parser.add_argument("--serve", metavar="STORE", help=argparse.SUPPRESS)
    parser.add_argument("--threads-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=18_400, help="the first port to use")
    options = parser.parse_args()
    if options.serve:
        serve(options.serve, options.port, False if options.threads_only else None)
        return
    rounds, seconds = (200, 2.0) if options.quick else (1000, 5.0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        latency(folder, rounds, options.port)
        throughput(str(folder / "throughput.db"), "SQLite", seconds, options.port + 1)
        throughput(
            str(folder / "hops.db"), "SQLite, inline=False", seconds, options.port + 4,
            threads_only=True,
        )  # fmt: skip
    dsn = os.environ.get("INCIDENTFLOW_TEST_POSTGRES_DSN")
    if dsn:
        throughput(dsn, "PostgreSQL", seconds, options.port + 2)
    else:
        print("PostgreSQL: skipped (set INCIDENTFLOW_TEST_POSTGRES_DSN)")


if __name__ == "__main__":
    main()
