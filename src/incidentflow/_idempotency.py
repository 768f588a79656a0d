"""What an idempotency key stands for: a command and its validated arguments."""

from __future__ import annotations

import enum
import json
from datetime import date, datetime
from typing import Any

from .commands import NOW

__all__ = ["fingerprint"]


def _canonical(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    if value is NOW:
        return None
    return value


def fingerprint(command: str, incident_id: str, values: dict[str, Any]) -> str:
    """What an idempotency key stands for: the command and its validated arguments."""
    canonical = {name: _canonical(value) for name, value in values.items()}
    return json.dumps([command, incident_id, canonical], sort_keys=True, default=repr)
