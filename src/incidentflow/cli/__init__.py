"""The ``incidentflow`` command: run an incident from a terminal.

Every subcommand works on the same store as the library: ``--store URL``, else
the ``INCIDENTFLOW_URL`` environment variable, else the configuration file's
``store``, else the embedded SQLite default. Output is a readable table or
text; ``--json`` prints JSON for machines instead, errors too:
``{"error", "message", "reasons"}`` with each reason as ``{"code", "message", "data"}``.

Exit codes:

- 0: done.
- 1: rejected by the process: a guard unmet (every reason is printed), a
  command outside its states, a stale version, a duplicate, a reference another
  open incident holds, ``find`` finding nothing, or ``verify`` finding a history
  that does not replay to its snapshot.
- 2: usage or input error: an unknown option, a bad value (a number out of
  range, an argument that is not UTF-8), an unknown incident, a configuration
  error. One line, never a traceback.
- 3: the store or the environment failed (a database error, an unwritable file).

The command line needs click (``pip install -e '.[cli]'`` in a clone); it is
imported by this package only, never by ``import incidentflow``. One module per
command group holds its subcommands; each imports what its work needs inside
the command, and the root group imports a module only when one of its commands
runs, completes or shows its own help (``_root.SUBCOMMANDS`` lists them), so
``incidentflow --help`` loads little beyond click.
"""

from __future__ import annotations

import sys

try:
    import click as _click  # noqa: F401 - checked here so that a missing extra is one line
except ModuleNotFoundError:  # pragma: no cover - exercised by hand: depends on the install
    sys.stderr.write(
        "incidentflow: the command line needs click; install it with "
        "pip install 'click>=8.1', or pip install -e '.[cli]' in a clone of incidentflow\n"
    )
    raise SystemExit(2) from None

from ._app import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
)
from ._main import main
from ._root import cli

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_USAGE",
    "cli",
    "main",
]
