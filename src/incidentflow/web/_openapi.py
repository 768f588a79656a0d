"""The OpenAPI 3.1 document of the JSON API, generated from the command definitions.

Each command's path, request body (its arguments, their JSON kinds and their
docs) and summary come from :data:`incidentflow.commands.DEFINITIONS`, so a
command added there is in the document without a line here.
"""

from __future__ import annotations

from typing import Any

from .._version import __version__
from ..alerts import SOURCES
from ..commands import DEFINITIONS, Argument, Command
from ._json import Kind, kind_of

__all__ = ["openapi_document"]

_SCHEMAS: dict[Kind, dict[str, Any]] = {
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "duration": {
        "oneOf": [
            {"type": "number", "exclusiveMinimum": 0, "description": "minutes"},
            {"type": "string", "format": "duration", "description": "ISO 8601, e.g. PT30M"},
        ]
    },
    "boolean": {"type": "boolean"},
    "integer": {"type": "integer"},
    "object": {"type": "object"},
    "string": {"type": "string"},
    "any": {},
}
_ERROR = {"$ref": "#/components/schemas/Error"}
_INCIDENT = {"$ref": "#/components/schemas/Incident"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


_ERRORS = {
    "401": _error("No valid bearer token (when tokens are configured)."),
    "403": _error("Unauthorized: the caller may not run this command."),
    "404": _error("IncidentNotFound (also for an incident the caller may not see)."),
    "409": _error("InvalidTransition, TransitionRejected (with reasons), ReferenceTaken, ..."),
    "412": _error("If-Match names a version that is no longer current."),
    "422": _error("ValidationError (names the field) or IdempotencyConflict."),
}
_HEADERS = [
    {
        "name": "Idempotency-Key",
        "in": "header",
        "schema": {"type": "string"},
        "description": "Retries with the same key and arguments answer the first result.",
    },
    {
        "name": "If-Match",
        "in": "header",
        "schema": {"type": "string"},
        "description": 'The version the command was decided on, e.g. "3"; 412 when stale.',
    },
    {
        "name": "X-Actor",
        "in": "header",
        "schema": {"type": "string"},
        "description": "Who runs the command, when no tokens are configured.",
    },
]
_INCIDENT_ID = {"name": "incident_id", "in": "path", "required": True, "schema": {"type": "string"}}

#: ``declare``'s restriction, recorded as a ``restrict`` in the same commit.
_RESTRICTED_TO = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Restrict it from the start to these actors and groups (group:sre); "
    "the actor is added. No ordinary notification route ever hears of it.",
}


def _schema(command: Command[Any], argument: Argument) -> dict[str, Any]:
    schema = dict(_SCHEMAS[kind_of(command, argument)])
    schema["description"] = argument.doc
    if not argument.required and argument.default is not None:
        default = argument.default
        if isinstance(default, (str, int, float, bool)):
            schema["default"] = default
    return schema


def _operation(command: Command[Any]) -> dict[str, Any]:
    properties = {a.name: _schema(command, a) for a in command.arguments}
    if command.name == "declare":
        properties["restricted_to"] = _RESTRICTED_TO
    body = {"type": "object", "additionalProperties": False, "properties": properties}
    required = [a.name for a in command.arguments if a.required]
    if required:
        body["required"] = required
    parameters = list(_HEADERS) if command.name == "declare" else [_INCIDENT_ID, *_HEADERS]
    ok = "201" if command.name == "declare" else "200"
    return {
        "operationId": command.name,
        "summary": command.summary,
        "description": _states(command),
        "tags": ["commands"],
        "parameters": parameters,
        "requestBody": {
            "required": bool(required),
            "content": {"application/json": {"schema": body}},
        },
        "responses": {
            ok: {
                "description": "The incident's new snapshot (ETag: its version).",
                "content": {"application/json": {"schema": _INCIDENT}},
            },
            **_ERRORS,
        },
    }


def _states(command: Command[Any]) -> str:
    states = ", ".join(state.value for state in command.runs_in) or "none (it creates one)"
    return f"Runs in: {states}."


def _read(summary: str, *, incident: bool = False, **extra: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": ["reads"],
        "responses": {"200": {"description": summary}, "404": _ERRORS["404"]},
    }
    if incident:
        operation["parameters"] = [_INCIDENT_ID]
    return operation | extra


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI 3.1 document, every command in it (paths relative to ``/api``)."""
    paths: dict[str, Any] = {
        "/incidents": {
            "post": _operation(DEFINITIONS["declare"]),
            "get": _read("Incidents matching the filters (repeat state, severity, type)."),
        },
        "/summaries": {"get": _read("What /incidents finds, as one-line summaries.")},
        "/similar": {"get": _read("Past incidents like ?text=, with their KB gotchas.")},
        "/metrics": {"get": _read("MTTx summaries (?by=, ?period=; ?format=prometheus).")},
        "/export": {"get": _read("The histories as JSON lines (?id= repeated, or filters).")},
        "/incidents/{incident_id}": {"get": _read("The incident's snapshot.", incident=True)},
        "/incidents/{incident_id}/history": {
            "get": _read("The incident's events, seq 1..n.", incident=True)
        },
        "/incidents/{incident_id}/similar": {
            "get": _read("Past incidents like this one.", incident=True)
        },
        "/incidents/{incident_id}/can/{command}": {
            "get": _read("Whether the command would be accepted now, with every reason."),
            "post": _read("The same, with the command's arguments checked too."),
        },
    }
    for command in DEFINITIONS.values():
        if not command.system and command.name != "declare":
            paths[f"/incidents/{{incident_id}}/{command.name}"] = {"post": _operation(command)}
    for source in SOURCES:
        paths[f"/alerts/{source}"] = {
            "post": {
                "operationId": f"ingest_{source}",
                "summary": f"Ingest a {source} webhook: attach or declare per alert.",
                "tags": ["alerts"],
                "requestBody": {"required": True, "content": {"application/json": {}}},
                "responses": {
                    "200": {"description": "What each alert did (declared, attached, ...)."},
                    "401": _ERRORS["401"],
                    "422": _ERRORS["422"],
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "incidentflow", "version": __version__},
        "servers": [{"url": "/api"}],
        "paths": paths,
        "components": {
            "schemas": {
                "Incident": {"type": "object", "description": "An incident's snapshot."},
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string"},
                        "reasons": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "code": {"type": "string"},
                                    "message": {"type": "string"},
                                    "data": {"type": "object"},
                                },
                            },
                        },
                    },
                },
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "signature": {"type": "apiKey", "in": "header", "name": "X-Incidentflow-Signature"},
            },
        },
    }
