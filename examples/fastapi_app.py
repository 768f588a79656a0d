"""A small FastAPI service declaring and driving incidents through AsyncIncidentFlow.

Run it (needs ``pip install fastapi uvicorn``)::

    INCIDENTFLOW_URL=sqlite:///incidents.db uvicorn examples.fastapi_app:app

The lifespan opens the flow, runs its dispatcher as an asyncio task, and closes
both on shutdown. Every handler awaits the flow: the store, the files and the
notifiers work in the flow's threads, never on the event loop. Errors come back
as JSON with the library's own message and, for a refused step, every reason.
Send ``Idempotency-Key`` to make a retried request safe: the answer says
``"replayed": true`` when the first one already did the work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from incidentflow import (
    AsyncIncidentFlow,
    ConcurrencyConflict,
    DuplicateIncident,
    IdempotencyConflict,
    IncidentFlowError,
    IncidentNotFound,
    InvalidTransition,
    ReferenceTaken,
    TransitionRejected,
    ValidationError,
)
from incidentflow.serialization import incident_to_dict

#: The HTTP status each kind of refusal answers with; anything else is 400.
STATUS: dict[type[IncidentFlowError], int] = {
    IncidentNotFound: 404,
    ValidationError: 422,
    TransitionRejected: 409,
    InvalidTransition: 409,
    ConcurrencyConflict: 409,
    IdempotencyConflict: 409,
    DuplicateIncident: 409,
    ReferenceTaken: 409,
}


class Declaration(BaseModel):
    title: str
    severity: str
    commander: str
    labels: dict[str, str] | None = None
    references: dict[str, str] | None = None


def create_app(open_flow: Callable[[], Any] | None = None) -> FastAPI:
    """The service; ``open_flow`` makes its flow (default: ``AsyncIncidentFlow.open()``)."""
    opener = open_flow or AsyncIncidentFlow.open

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with opener() as flow:
            flow.start_dispatcher()  # closed with the flow
            app.state.flow = flow
            yield

    app = FastAPI(title="incidents", lifespan=lifespan)

    def flow_of(request: Request) -> AsyncIncidentFlow:
        flow: AsyncIncidentFlow = request.app.state.flow
        return flow

    @app.exception_handler(IncidentFlowError)
    async def refused(request: Request, exc: IncidentFlowError) -> JSONResponse:
        status = next((s for kind, s in STATUS.items() if isinstance(exc, kind)), 400)
        body: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
        if isinstance(exc, TransitionRejected):
            body["reasons"] = [{"code": r.code, "message": r.message} for r in exc.reasons]
        return JSONResponse(body, status_code=status)

    @app.post("/incidents", status_code=201)
    async def declare(
        declaration: Declaration,
        request: Request,
        x_actor: str = Header(),
        idempotency_key: str | None = Header(default=None),
    ) -> JSONResponse:
        outcome = await flow_of(request).execute(
            "declare",
            **declaration.model_dump(exclude_none=True),
            actor=x_actor,
            idempotency_key=idempotency_key,
        )
        body = {"incident": incident_to_dict(outcome.incident), "replayed": outcome.replayed}
        return JSONResponse(body, status_code=200 if outcome.replayed else 201)

    @app.get("/incidents")
    async def listing(request: Request, open_only: bool = False) -> list[dict[str, Any]]:
        found = await flow_of(request).list(open_only=open_only)
        return [
            {"id": i.id, "title": i.title, "severity": i.severity.value, "state": i.state.value}
            for i in found
        ]

    @app.get("/incidents/{incident_id}")
    async def show(incident_id: str, request: Request) -> dict[str, Any]:
        return incident_to_dict(await flow_of(request).get(incident_id))

    @app.get("/incidents/{incident_id}/can/{command}")
    async def can(incident_id: str, command: str, request: Request) -> dict[str, Any]:
        verdict = await flow_of(request).can(incident_id, command)
        reasons = [{"code": r.code, "message": r.message} for r in verdict.reasons]
        return {"allowed": verdict.allowed, "reasons": reasons}

    @app.post("/incidents/{incident_id}/{command}")
    async def run(
        incident_id: str,
        command: str,
        request: Request,
        x_actor: str = Header(),
        idempotency_key: str | None = Header(default=None),
        if_match: int | None = Header(default=None),
    ) -> dict[str, Any]:
        args = await request.json() if await request.body() else {}
        if not isinstance(args, dict):
            raise ValidationError("body", "send a JSON object of the command's arguments")
        for option in ("actor", "idempotency_key", "expected_version"):
            if option in args:
                raise ValidationError(
                    option, "send it as a header (X-Actor, Idempotency-Key, If-Match)"
                )
        outcome = await flow_of(request).execute(
            command,
            incident_id,
            **args,
            actor=x_actor,
            idempotency_key=idempotency_key,
            expected_version=if_match,
        )
        return {"incident": incident_to_dict(outcome.incident), "replayed": outcome.replayed}

    return app


app = create_app()
