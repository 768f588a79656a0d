"""Snapshots and events as JSON-ready values, and back: what the stores write.

Use these to put an incident in an HTTP response, a message queue or a file,
and to read it back exactly:

>>> from incidentflow import IncidentFlow
>>> from incidentflow.serialization import incident_from_dict, incident_to_dict
>>> flow = IncidentFlow.in_memory()
>>> inc = flow.declare("Search is slow", severity="P3", commander="carol", actor="carol")
>>> data = incident_to_dict(inc)
>>> data["severity"], data["state"]
('P3', 'declared')
>>> incident_from_dict(data) == inc
True

Times are ISO 8601 strings with their UTC offset, enums their values, records
nested objects. The ``*_from_*`` functions raise :class:`~incidentflow.StoreError`
for malformed input.
"""

from ._serialization import (
    event_from_dict,
    event_from_json,
    event_to_dict,
    event_to_json,
    incident_from_dict,
    incident_from_json,
    incident_to_dict,
    incident_to_json,
)

__all__ = [
    "event_from_dict",
    "event_from_json",
    "event_to_dict",
    "event_to_json",
    "incident_from_dict",
    "incident_from_json",
    "incident_to_dict",
    "incident_to_json",
]
