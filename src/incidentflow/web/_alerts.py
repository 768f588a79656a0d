"""The alert endpoints: ``POST /alerts/{source}``, one per alert format, feeding ``ingest``.

A request is admitted by a bearer token from ``alert_tokens`` or by an
``X-Incidentflow-Signature: sha256=<hex>`` HMAC of the raw body with a secret
from ``alert_secrets``; anything else answers 401 and nothing is read. The
token's (or secret's) name is the actor the alerts are ingested as. Sending
the same alert again changes nothing: ``ingest`` keys every write by the alert.

The answer goes to the sender, who may see no restricted incident: ``ingest``
names none in its report (an alert it attached to one has no ``incident_id``),
and a failing store answers 503 without the store's own words, which may name
an incident; they go to the log.
"""

from __future__ import annotations

from loguru import logger
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._flow import IncidentFlow
from ..alerts import SOURCES
from ..exceptions import IncidentFlowError, StoreError, ValidationError
from ._auth import SIGNATURE_HEADER, Signatures, Tokens, bearer
from ._bodies import read_body
from ._errors import error_response, problem
from ._threads import StoreWork

__all__ = ["MAX_ALERT_BODY", "alert_routes"]

#: The largest alert payload accepted, in bytes.
MAX_ALERT_BODY = 5 << 20


def alert_routes(
    flow: IncidentFlow, tokens: Tokens, secrets: Signatures, work: StoreWork
) -> list[Route]:
    """One ``POST /alerts/{source}`` route per format of :data:`incidentflow.alerts.SOURCES`."""

    def endpoint(source: str) -> Route:
        async def ingest(request: Request) -> Response:
            sender = tokens.actor(bearer(request.headers.get("authorization")))
            signature = request.headers.get(SIGNATURE_HEADER)
            if sender is None and signature is None:
                return _unauthenticated()  # nothing could admit it: the body is never read
            try:
                body = await read_body(request, MAX_ALERT_BODY)
            except ValidationError:
                return problem(413, "TooLarge", f"send at most {MAX_ALERT_BODY:,} bytes")
            if sender is None:
                sender = secrets.sender(signature, body)
            if sender is None:
                return _unauthenticated()
            try:
                report = await work.thread(flow.ingest, body, source=source, actor=sender)
            except StoreError:
                logger.exception("ingesting alerts from {} failed in the store", sender)
                return problem(503, "StoreError", "the store failed; send the alerts again later")
            except IncidentFlowError as exc:
                return error_response(exc)
            outcomes = [
                {
                    "action": o.action,
                    "incident_id": o.incident_id,
                    "replayed": o.replayed,
                    "detail": o.detail,
                    "fingerprint": o.alert.fingerprint,
                    "status": o.alert.status,
                }
                for o in report
            ]
            return JSONResponse(
                {
                    "counts": report.counts(),
                    "incident_ids": list(report.incident_ids),
                    "outcomes": outcomes,
                }
            )

        return Route(f"/alerts/{source}", ingest, methods=["POST"], name=f"alerts_{source}")

    return [endpoint(source) for source in SOURCES]


def _unauthenticated() -> Response:
    return problem(
        401,
        "Unauthenticated",
        "send Authorization: Bearer <alert token>, or sign the body: "
        f"{SIGNATURE_HEADER}: sha256=<HMAC-SHA256 hex of the body>",
    )
