"""Errors as HTTP answers: each error type has its status, the body says what to change.

The body is ``{"error": <type>, "message": ..., "field"?: ..., "reasons"?: [...]}``;
a refused step lists every unmet guard as ``{"code", "message", "data"}``.

======================  ======  ============================================
error                   status  when
======================  ======  ============================================
ValidationError         422     an argument, a header or the body is wrong
IdempotencyConflict     422     the key was used for another payload
InvalidTransition       409     the command is not allowed in this state
TransitionRejected      409     a guard is unmet (``reasons`` lists them)
ConcurrencyConflict     409     the incident changed meanwhile (412 with If-Match)
ReferenceTaken          409     another open incident holds the reference
                                (``holder`` names it, if the caller may see it)
DuplicateIncident       409     the slug is taken today
IncidentNotFound        404     no such incident (or one the caller may not see)
Unauthorized            403     the caller may not run this command
ConfigError             500     the service is misconfigured
StoreError              503     the store failed; retry later
======================  ======  ============================================
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from ..exceptions import (
    ConcurrencyConflict,
    ConfigError,
    DuplicateIncident,
    IdempotencyConflict,
    IncidentFlowError,
    IncidentNotFound,
    InvalidTransition,
    ReferenceTaken,
    StoreError,
    TransitionRejected,
    Unauthorized,
    ValidationError,
)
from ._json import jsonable

__all__ = ["STATUSES", "error_body", "error_response", "problem"]

#: Each error type's HTTP status; the first type an error is an instance of wins.
STATUSES: tuple[tuple[type[IncidentFlowError], int], ...] = (
    (ValidationError, 422),
    (IdempotencyConflict, 422),
    (TransitionRejected, 409),
    (InvalidTransition, 409),
    (ConcurrencyConflict, 409),
    (ReferenceTaken, 409),
    (DuplicateIncident, 409),
    (IncidentNotFound, 404),
    (Unauthorized, 403),
    (ConfigError, 500),
    (StoreError, 503),
)


def error_body(exc: IncidentFlowError) -> dict[str, Any]:
    """The JSON body describing ``exc``."""
    body: dict[str, Any] = {"error": type(exc).__name__, "message": exc.message}
    if isinstance(exc, ValidationError):
        body["field"] = exc.field
    if isinstance(exc, ConfigError):
        body["field"] = exc.key
    if isinstance(exc, TransitionRejected):
        body["reasons"] = [
            {"code": r.code, "message": r.message, "data": jsonable(r.data)} for r in exc.reasons
        ]
    if isinstance(exc, InvalidTransition) and exc.state is not None:
        body["state"] = jsonable(exc.state)
        body["allowed_states"] = list(jsonable(exc.allowed_states))
    if isinstance(exc, ConcurrencyConflict):
        body["expected_version"], body["version"] = exc.expected, exc.actual
    if isinstance(exc, ReferenceTaken) and exc.holder is not None:
        body["holder"] = exc.holder  # None: restricted to others, so not disclosed
    return body


def error_response(exc: IncidentFlowError, *, if_match: bool = False) -> JSONResponse:
    """``exc`` as a response; a stale ``If-Match`` answers 412 Precondition Failed."""
    status = next((code for kind, code in STATUSES if isinstance(exc, kind)), 500)
    headers = {}
    if isinstance(exc, ConcurrencyConflict):
        headers["ETag"] = f'"{exc.actual}"'
        if if_match:
            status = 412
    return JSONResponse(error_body(exc), status_code=status, headers=headers)


def problem(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    """An error answer that is no library error (401 without credentials, 415, ...)."""
    headers = {"WWW-Authenticate": 'Bearer realm="incidentflow"'} if status == 401 else None
    body = {"error": error, "message": message, **extra}
    return JSONResponse(body, status_code=status, headers=headers)
