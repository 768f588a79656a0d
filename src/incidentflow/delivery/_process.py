"""A dispatcher in a child process, so that delivery's CPU work leaves the host's interpreter.

The parent starts ``python -m incidentflow.delivery._child FACTORY ...``. The
child calls the factory to build its own flow on the same store, with the same
notifiers, runs a thread :class:`~incidentflow.delivery.Dispatcher` in it and
answers ``ready``. The parent wakes it with a byte on its standard input after
commits that wrote outbox items, and stops it by closing that input: the
child finishes the deliveries under way, marks them and exits. A child whose
parent dies sees the same end of input and stops the same way.

Nothing here weakens the outbox: the child claims items with leases like any
dispatcher, so if it is killed outright, the next dispatcher takes its items
over once their leases end, and delivers them (again, at least once).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from loguru import logger

from ..exceptions import ConfigError
from ._thread import check_dispatcher_options

if TYPE_CHECKING:
    from .._flow import IncidentFlow
    from .._model import Incident
    from ._protocol import DeliveryHost

__all__ = ["CHILD_MODULE", "DispatcherProcess", "FlowFactory", "factory_reference", "load_factory"]

#: The module the child process runs (``python -m``).
CHILD_MODULE = "incidentflow.delivery._child"

#: A function building the flow a dispatcher process delivers with: the same store
#: and notifiers as the host's flow. Passed by reference (``"package.module:function"``).
FlowFactory = Callable[[], "IncidentFlow"]


def factory_reference(factory: str | FlowFactory) -> str:
    """``module:function`` (or ``path/to/file.py:function``) naming ``factory``."""
    if isinstance(factory, str):
        module_part, _, name_part = factory.partition(":")
        if not module_part or not name_part:
            raise ConfigError("process", f"expected 'package.module:function', got {factory!r}")
        return factory
    if not callable(factory):
        raise ConfigError("process", f"expected a flow factory, got {type(factory).__name__}")
    module_name: str | None = getattr(factory, "__module__", None)
    name: str = getattr(factory, "__qualname__", "")
    if not module_name or not name or "<" in name:
        raise ConfigError(
            "process",
            f"{factory!r} cannot be found by another process; pass a function defined "
            "at the top level of a module, or 'package.module:function'",
        )
    module = sys.modules.get(module_name)
    if module_name == "__main__":
        path = getattr(module, "__file__", None)
        if path is None:
            raise ConfigError(
                "process",
                "a factory from an interactive session cannot be imported; define it in a module",
            )
        reference = f"{Path(path).resolve()}:{name}"
    else:
        reference = f"{module_name}:{name}"
    if module is None or _attribute(module, name) is not factory:
        raise ConfigError(
            "process", f"{reference} does not name {factory!r}; define it at module level"
        )
    return reference


def _attribute(module: ModuleType, name: str) -> object:
    found: object = module
    for part in name.split("."):
        found = getattr(found, part, None)
    return found


def load_factory(reference: str) -> Callable[[], object]:
    """The function a reference made by :func:`factory_reference` names."""
    module_name, _, name = reference.rpartition(":")
    if module_name.endswith(".py"):
        # The host's main script: loaded under another name, so its __main__ block
        # does not run again.
        spec = importlib.util.spec_from_file_location("__incidentflow_factory__", module_name)
        if spec is None or spec.loader is None:
            raise ConfigError("process", f"cannot load {module_name}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    found = _attribute(module, name)
    if not callable(found):
        raise ConfigError("process", f"{reference} is not a function")
    return found


class DispatcherProcess:
    """Delivers the outbox from a child process; made by ``flow.dispatcher(process=...)``.

    It has the :class:`~incidentflow.delivery.Dispatcher`'s interface:
    :meth:`start`, :meth:`stop`, :meth:`wake`, :attr:`running`, a ``with``
    block. :attr:`delivered` is known once it has stopped.

    Args:
        host: What it delivers for: ``flow.delivery`` (any :class:`DeliveryHost`).
        factory: A module-level function, or ``"package.module:function"``,
            building the flow the child delivers with.

    """

    def __init__(
        self,
        host: DeliveryHost,
        factory: str | FlowFactory,
        *,
        max_in_flight: int = 8,
        interval: float = 1.0,
        batch_window: float = 0.01,
        start_timeout: float = 60.0,
    ) -> None:
        from ..stores.memory import MemoryStore

        if isinstance(host.outbox, MemoryStore):
            raise ConfigError(
                "process",
                "a MemoryStore lives in one process; use a store other processes can "
                "open (SQLite, PostgreSQL, JSONL files) or a thread dispatcher",
            )
        # The same checks as a thread dispatcher's, here rather than in the child.
        check_dispatcher_options(max_in_flight, interval, batch_window)
        self.host = host
        self.factory = factory_reference(factory)
        self.max_in_flight = max_in_flight
        self.interval = float(interval)
        self.batch_window = float(batch_window)
        self.start_timeout = start_timeout
        #: Deliveries the child made; set when it has stopped.
        self.delivered = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader: threading.Thread | None = None
        self._gone_reported = False
        self._woken_at = float("-inf")

    @property
    def running(self) -> bool:
        """True while the child process runs."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id of the child last started (kept once it has stopped)."""
        return self._pid

    def start(self) -> DispatcherProcess:
        """Start the child and wait until it delivers; ConfigError if it cannot start."""
        if self.running:
            return self
        command = [
            sys.executable,
            "-m",
            CHILD_MODULE,
            self.factory,
            f"--max-in-flight={self.max_in_flight}",
            f"--interval={self.interval!r}",
            f"--batch-window={self.batch_window!r}",
        ]
        env = dict(os.environ)
        # The child imports what the host can: its factory lives on the host's path.
        env["PYTHONPATH"] = os.pathsep.join(str(Path(entry or ".").resolve()) for entry in sys.path)
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._process = process
        self._pid = process.pid
        self._gone_reported = False
        self._lines = queue.Queue()
        self._reader = threading.Thread(
            target=self._read,
            args=(process, self._lines),
            daemon=True,
            name="incidentflow-dispatcher-process",
        )
        self._reader.start()
        try:
            first = self._lines.get(timeout=self.start_timeout)
        except queue.Empty:
            first = "error it did not start within the start timeout"
        if first != "ready":
            self._abandon()
            problem = "it exited before it was ready" if first is None else first.split(" ", 1)[-1]
            raise ConfigError(
                "process", f"the dispatcher process for {self.factory} failed: {problem}"
            )
        assert process.stdin is not None
        with contextlib.suppress(OSError):  # a full pipe must never block a command
            os.set_blocking(process.stdin.fileno(), False)
        self.host.attach(self)
        return self

    @staticmethod
    def _read(process: subprocess.Popen[bytes], lines: queue.Queue[str | None]) -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                lines.put(line.decode("utf-8", "replace").strip())
        lines.put(None)

    def wake(self) -> None:
        """Tell the child to look for work now."""
        process = self._process
        if process is None or process.stdin is None:
            return
        # The child claims batch_window after a wake-up at the earliest, so that
        # claim also sees the commits of the next half window: they need no wake-up.
        now = time.monotonic()
        if now - self._woken_at < self.batch_window / 2:
            return
        self._woken_at = now
        try:
            os.write(process.stdin.fileno(), b"w")
        except BlockingIOError:
            pass  # its input is full of wake-ups already
        except (OSError, ValueError):
            if not self._gone_reported:
                self._gone_reported = True
                logger.error(
                    "the dispatcher process {} is gone (exit code {}); notifications wait "
                    "in the outbox for the next dispatcher",
                    process.pid,
                    process.poll(),
                )

    def committed(self, snapshot: Incident) -> None:
        """The host committed ``snapshot`` with outbox items: wake the child."""
        self.wake()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Let the child finish the deliveries under way and exit; kill it after ``timeout``."""
        self.host.detach(self)
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()  # end of input: the child stops
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning(
                "the dispatcher process {} did not stop within {} s; killing it "
                "(its claimed items are delivered again once their leases end)",
                process.pid,
                timeout,
            )
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(5)
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is not None and line.startswith("stopped "):
                self.delivered = int(line.split()[1])
        self._process = None

    def _abandon(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        if self._reader is not None:
            self._reader.join(5)
        self._process = None

    def __enter__(self) -> DispatcherProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
