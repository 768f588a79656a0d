"""Writing the rendered files atomically, strictly inside their folders."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .._events import Event
from .._model import Incident
from ..exceptions import ValidationError
from .markdown import render_gotcha, render_incident

__all__ = ["safe_file_name", "write_atomic", "write_files"]

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,80}\Z")


def safe_file_name(name: object) -> str:
    """``name`` if it is a plain file name (letters, digits, dashes), else ValidationError."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name):
        raise ValidationError(
            "incident_id", f"{name!r} is not an incident id such as 'INC-2026-11-27-db-down'"
        )
    return name


def write_atomic(folder: Path, name: str, text: str) -> Path:
    """Write ``folder/name.md`` through a temporary file and a rename.

    Readers see the old file or the new one, never half of one. ``name`` must be
    a plain file name: letters, digits and dashes.
    """
    safe_file_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.md"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_files(
    incident: Incident,
    history: Sequence[Event],
    incidents_dir: Path | None,
    knowledge_dir: Path | None,
) -> list[Path]:
    """Write the incident file and, once it exists, the KB gotcha. Returns the paths."""
    written = []
    incident_file = None
    if incidents_dir is not None:
        incident_file = write_atomic(incidents_dir, incident.id, render_incident(incident, history))
        written.append(incident_file)
    if knowledge_dir is not None and incident.kb_entry is not None:
        link = None
        if incident_file is not None:
            link = Path(os.path.relpath(incident_file, knowledge_dir)).as_posix()
        name = _gotcha_name(knowledge_dir, incident)
        written.append(write_atomic(knowledge_dir, name, render_gotcha(incident, link)))
    return written


def _gotcha_name(knowledge_dir: Path, incident: Incident) -> str:
    """The gotcha's file name: its slug, dated if another incident's gotcha has it."""
    assert incident.kb_entry is not None
    name = incident.kb_entry.slug
    existing = knowledge_dir / f"{name}.md"
    try:
        taken = existing.exists() and f"[{incident.id}]" not in existing.read_text("utf-8")
    except OSError:
        taken = False
    return f"{name}-{incident.declared_at:%Y-%m-%d}" if taken else name
