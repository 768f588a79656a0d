"""The dispatcher process's entry point: ``python -m incidentflow.delivery._child FACTORY``.

It builds the flow through the user's factory (named by reference, so nothing
here imports the facade), runs a thread dispatcher on that flow's delivery,
answers ``ready`` on its standard output, wakes on each byte of its standard
input, and stops cleanly at the end of that input or on SIGTERM, answering
``stopped N`` with the number of deliveries it made.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from ..exceptions import ConfigError
from ._deliverer import default_worker_name
from ._host import Delivery
from ._process import CHILD_MODULE, load_factory
from ._thread import Dispatcher

__all__ = ["main"]


class _Stop(Exception):
    """SIGTERM: stop as on the end of input."""


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def main(argv: Sequence[str] | None = None) -> int:
    """The child: build the flow, deliver until the end of input, then stop cleanly."""
    parser = argparse.ArgumentParser(prog=f"python -m {CHILD_MODULE}")
    parser.add_argument("factory")
    parser.add_argument("--max-in-flight", type=int, default=8)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--batch-window", type=float, default=0.01)
    args = parser.parse_args(argv)

    # The parent reads this process's answers from its standard output; whatever
    # else prints (the factory, a notifier) goes to standard error instead.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def report(line: str) -> None:
        answers.write(" ".join(line.split()) + "\n")
        answers.flush()

    signal.signal(signal.SIGTERM, _stop_on_signal)
    try:
        flow = load_factory(args.factory)()
        # The facade is known by what it offers, not imported: delivery sits outside it.
        delivery = getattr(flow, "delivery", None)
        if not isinstance(delivery, Delivery):
            raise ConfigError(
                "process", f"{args.factory} returned {type(flow).__name__}, not an IncidentFlow"
            )
        dispatcher = Dispatcher(
            delivery,
            max_in_flight=args.max_in_flight,
            interval=args.interval,
            batch_window=args.batch_window,
            worker=f"{default_worker_name()}:process",
        ).start()
    except BaseException as exc:
        report(f"error {type(exc).__name__}: {exc}")
        return 1
    report("ready")
    try:
        while os.read(sys.stdin.fileno(), 4096):
            dispatcher.wake()
    except (_Stop, KeyboardInterrupt):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second one does not wait
    finally:
        dispatcher.stop(timeout=None)
        close = getattr(flow, "close", None)
        if callable(close):
            close()
    report(f"stopped {dispatcher.delivered}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
