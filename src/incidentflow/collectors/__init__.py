"""Evidence collectors: the process's triage commands as code.

Each collector describes one command; :meth:`Collector.collect` runs it
without a shell, with standard input closed, a timeout and an output cap, and
returns a :class:`CollectedEvidence` whose content has already been through
:func:`redact`. A missing tool, a failing command or a timeout is described in
the evidence, never raised. :func:`collect_into` runs several and adds each
result to an incident.

>>> import sys
>>> evidence = Command([sys.executable, "-c", "print('token=s3cr3t-value')"]).collect()
>>> evidence.exit_code, evidence.content
(0, 'token=[REDACTED:token]')

This package is not imported by ``import incidentflow``; import it when needed.
"""

from ._base import CollectedEvidence, Collector
from ._builtin import Command, DockerLogs, DockerPs, GitLog, Journalctl, SystemctlStatus
from ._into import collect_into
from ._redact import redact

__all__ = [
    "CollectedEvidence",
    "Collector",
    "Command",
    "DockerLogs",
    "DockerPs",
    "GitLog",
    "Journalctl",
    "SystemctlStatus",
    "collect_into",
    "redact",
]
