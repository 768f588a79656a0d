"""collect_into: run collectors and attach what they gathered to an incident."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from .. import _validate as v
from .._decide import check_state
from ..exceptions import ValidationError
from ._base import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, Collector

if TYPE_CHECKING:
    from .._flow import IncidentFlow
    from .._model import Incident


def collect_into(
    flow: IncidentFlow,
    incident_id: str,
    collectors: Iterable[Collector],
    *,
    actor: str,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> list[Incident]:
    """Run each collector and add what it gathered to the incident as evidence.

    The collectors run one after the other; each result is added as soon as
    it is ready, so what was gathered is kept even if a later step fails. The
    evidence's source is the collector's short name (``"git log -n 20"``); its
    content is :attr:`CollectedEvidence.evidence_text`: a one-line header (the
    command, exit code, duration, what was cut or redacted), then the output,
    with secrets redacted. A tool that is missing, fails or times out still
    gives an evidence item that says so.

    Args:
        flow: The flow holding the incident.
        incident_id: The incident to add evidence to.
        collectors: The collectors to run, in order.
        actor: Who collects the evidence.
        timeout: Seconds each command may run (see :meth:`Collector.collect`).
        max_bytes: Bytes of output kept from each command.
        cwd: Directory the commands run in; the current one when ``None``.
        env: The commands' whole environment; the host's when ``None``.

    Returns:
        The incident's snapshot after each piece of evidence was added, in order.

    Raises:
        ValidationError: a collector or an argument is not acceptable.
        IncidentNotFound: no incident has that id (checked before anything runs).
        InvalidTransition: the incident's state accepts no evidence (checked
            before anything runs).

    Example:
        >>> import sys
        >>> from incidentflow import IncidentFlow
        >>> from incidentflow.collectors import Command
        >>> flow = IncidentFlow.in_memory()
        >>> inc = flow.declare("Checkout is slow", severity="P3", commander="alice", actor="alice")
        >>> hello = Command([sys.executable, "-c", "print('hello')"], source="hello")
        >>> [snapshot] = collect_into(flow, inc.id, [hello], actor="bob")
        >>> print(snapshot.evidence[-1].content.splitlines()[-1])
        hello

    """
    actor = v.actor(actor)
    checked = list(collectors) if not isinstance(collectors, Collector) else [collectors]
    for i, collector in enumerate(checked):
        if not isinstance(collector, Collector):
            raise ValidationError(
                f"collectors[{i}]", f"expected a Collector, got {type(collector).__name__}"
            )
    # Fail before running anything slow: the incident exists and accepts evidence.
    check_state(flow.get(incident_id), "add_evidence")
    snapshots = []
    for collector in checked:
        evidence = collector.collect(timeout=timeout, max_bytes=max_bytes, cwd=cwd, env=env)
        snapshots.append(
            flow.add_evidence(
                incident_id,
                source=evidence.source,
                content=evidence.evidence_text,
                actor=actor,
            )
        )
    return snapshots
