"""The JSON API: every command, the reads, metrics and the export, as Starlette routes.

Every command is ``POST /incidents/{id}/{command}`` (``POST /incidents`` declares)
with the command's arguments as a JSON object, read from its definition in
:data:`incidentflow.commands.DEFINITIONS`; the flow runs where
:class:`~incidentflow.web._threads.StoreWork` says, so the event loop never
waits on the store. ``Idempotency-Key`` is the command's
idempotency key (a replay answers the first result with ``Idempotent-Replayed:
true``); ``If-Match: "<version>"`` is its expected version (412 when stale);
every incident answer carries ``ETag: "<version>"``.

Who runs a command: the name of the bearer token presented when tokens are
configured (a request without a valid one answers 401); otherwise the
``X-Actor`` header, which a command then requires.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from .. import _validate as v
from .._flow import IncidentFlow
from .._model import Incident
from .._serialization import event_to_dict
from .._validate import INT_MAX
from ..commands import DEFINITIONS, definition
from ..exceptions import IncidentFlowError, ValidationError
from ._alerts import alert_routes
from ._auth import ANONYMOUS, Signatures, Tokens, bearer
from ._bodies import none_match, read_body, whole_number
from ._errors import error_response, problem
from ._json import arguments_from_json, jsonable, parse_moment
from ._openapi import openapi_document
from ._snapshots import snapshot_json
from ._threads import StoreWork

__all__ = ["MAX_BODY", "MAX_DEPTH", "api_routes", "prometheus_endpoint"]

#: The largest JSON body a command accepts, in bytes.
MAX_BODY = 1 << 20
#: The options a command takes from headers, never from the body.
_FROM_HEADERS = {
    "actor": "X-Actor (or the bearer token's name)",
    "idempotency_key": "the Idempotency-Key header",
    "expected_version": 'the If-Match header ("<version>")',
}
#: How deep a command's JSON body may nest: far past any argument, far short of the stack.
MAX_DEPTH = 32
#: Names the flow's own parameters take: in a body they would clash with them.
_NOT_ARGUMENTS = frozenset({"self", "command", "incident_id"})
_LISTS = ("state", "severity", "type")
_FLAGS = ("open_only", "open_action_items", "newest_first")
_TEXTS = ("commander", "text")
_MOMENTS = ("declared_after", "declared_before")
_Endpoint = Callable[[Request], Awaitable[Response]]
_JSON = "application/json"


def _viewer(actor: str | None) -> str:
    """Whom a read is for: the caller, or an anonymous one who sees no restricted incident."""
    return actor or ANONYMOUS


class _Api:
    """The endpoints, bound to one flow and its credentials."""

    def __init__(self, flow: IncidentFlow, tokens: Tokens, work: StoreWork | None = None) -> None:
        self.flow = flow
        self.tokens = tokens
        self.work = work or StoreWork(flow)

    # -- who is asking ------------------------------------------------------------------

    def caller(self, request: Request, *, needed: bool) -> str | None:
        """The actor of ``request``: its token's name, else ``X-Actor``.

        Raises _Refused (401) when tokens are configured and none valid is
        presented. This is the hook the authorization work plugs into: the
        library's authorizer receives this actor with every command.
        """
        if self.tokens:
            actor = self.tokens.actor(bearer(request.headers.get("authorization")))
            if actor is None:
                raise _Refused(
                    problem(401, "Unauthenticated", "send Authorization: Bearer <token>")
                )
            return actor
        actor = request.headers.get("x-actor")
        if needed and not actor:
            raise ValidationError("X-Actor", "name who runs the command in the X-Actor header")
        return actor or None

    # -- commands -----------------------------------------------------------------------

    async def declare(self, request: Request) -> Response:
        """``POST /incidents``: declare an incident from a JSON object of its arguments."""
        return await self._command(request, "declare", None)

    async def command(self, request: Request) -> Response:
        """``POST /incidents/{incident_id}/{command}``: run one command on an incident."""
        name = request.path_params["command"]
        unknown = _unknown_command(name)
        if unknown is not None:
            return unknown
        return await self._command(request, name, request.path_params["incident_id"])

    async def _command(self, request: Request, name: str, incident_id: str | None) -> Response:
        command = definition(name)
        if_match = request.headers.get("if-match")
        try:
            actor = self.caller(request, needed=True)
            args = arguments_from_json(command, await _body(request))
            options: dict[str, Any] = {"actor": actor}
            key = request.headers.get("idempotency-key")
            if key is not None:
                options["idempotency_key"] = key
            if if_match is not None and if_match.strip() != "*":
                options["expected_version"] = _version(if_match)
            outcome = await self.work.quick(self.flow.execute, name, incident_id, **args, **options)
        except _Refused as refused:
            return refused.response
        except IncidentFlowError as exc:
            return error_response(exc, if_match=if_match is not None)
        headers = {"ETag": _etag(outcome.incident)}
        if outcome.replayed:
            headers["Idempotent-Replayed"] = "true"
        status = 201 if name == "declare" and not outcome.replayed else 200
        if name == "declare":
            headers["Location"] = f"{request.url.path.rstrip('/')}/{outcome.incident.id}"
        return _snapshot_response(outcome.incident, status, headers)

    async def can(self, request: Request) -> Response:
        """``GET|POST /incidents/{incident_id}/can/{command}``: whether it would run now.

        Names the command route does not run answer its 404 UnknownCommand; the
        caller (or the anonymous viewer) is asked about, so an incident it may
        not see answers 404 as every other read does.
        """
        name = request.path_params["command"]
        unknown = _unknown_command(name)
        if unknown is not None:
            return unknown

        async def answer(actor: str | None) -> Response:
            command = definition(name)
            args = {}
            if request.method == "POST":
                args = arguments_from_json(command, await _body(request))
            verdict = await self.work.quick(
                self.flow.can,
                request.path_params["incident_id"],
                name,
                actor=_viewer(actor),
                **args,
            )
            reasons = [
                {"code": r.code, "message": r.message, "data": jsonable(r.data)}
                for r in verdict.reasons
            ]
            return JSONResponse({"allowed": verdict.allowed, "reasons": reasons})

        return await self._read(request, answer)

    # -- reads --------------------------------------------------------------------------

    async def _read(
        self, request: Request, answer: Callable[[str | None], Awaitable[Response]]
    ) -> Response:
        try:
            return await answer(self.caller(request, needed=False))
        except _Refused as refused:
            return refused.response
        except IncidentFlowError as exc:
            return error_response(exc)

    async def get(self, request: Request) -> Response:
        """``GET /incidents/{incident_id}``: the current snapshot."""

        async def answer(actor: str | None) -> Response:
            found = await self.work.quick(
                self.flow.get, request.path_params["incident_id"], viewer=_viewer(actor)
            )
            if none_match(request.headers.get("if-none-match"), _etag(found)):
                return Response(status_code=304, headers={"ETag": _etag(found)})
            return _snapshot_response(found, 200, {"ETag": _etag(found)})

        return await self._read(request, answer)

    async def history(self, request: Request) -> Response:
        """``GET /incidents/{incident_id}/history``: every event, seq 1..n."""

        async def answer(actor: str | None) -> Response:
            events = await self.work.thread(
                self.flow.history, request.path_params["incident_id"], viewer=_viewer(actor)
            )
            return JSONResponse([event_to_dict(e) for e in events])

        return await self._read(request, answer)

    async def incidents(self, request: Request) -> Response:
        """``GET /incidents``: the incidents matching the query's filters, paged."""

        async def answer(actor: str | None) -> Response:
            found = await self.work.thread(
                self.flow.list, **_filters(request), viewer=_viewer(actor)
            )
            listed = ",".join(snapshot_json(incident) for incident in found)
            return Response(f"[{listed}]", media_type=_JSON)

        return await self._read(request, answer)

    async def summaries(self, request: Request) -> Response:
        """``GET /summaries``: what ``/incidents`` finds, as one-line summaries."""

        async def answer(actor: str | None) -> Response:
            found = await self.work.thread(
                self.flow.summaries, **_filters(request), viewer=_viewer(actor)
            )
            return JSONResponse(jsonable(found))

        return await self._read(request, answer)

    async def similar(self, request: Request) -> Response:
        """``GET /incidents/{incident_id}/similar`` or ``GET /similar?text=``."""

        async def answer(actor: str | None) -> Response:
            params = _params(request, ("text", "limit", "type"))
            kwargs: dict[str, Any] = {"text": params.get("text")}
            if "limit" in params:
                kwargs["limit"] = _integer("limit", params["limit"])
            if request.query_params.getlist("type"):
                kwargs["type"] = request.query_params.getlist("type")
            incident_id = request.path_params.get("incident_id")
            found = await self.work.thread(
                self.flow.similar, incident_id, **kwargs, viewer=_viewer(actor)
            )
            return JSONResponse(jsonable(found))

        return await self._read(request, answer)

    async def metrics(self, request: Request) -> Response:
        """``GET /metrics``: MTTx summaries as JSON (``?format=prometheus``: the text)."""

        async def answer(actor: str | None) -> Response:
            params = _params(request, ("by", "period", "severity", "type", "format", *_MOMENTS))
            kwargs: dict[str, Any] = {k: params[k] for k in ("by", "period") if k in params}
            for name in ("severity", "type"):
                if request.query_params.getlist(name):
                    kwargs[name] = request.query_params.getlist(name)
            for name in _MOMENTS:
                if name in params:
                    kwargs[name] = parse_moment(name, params[name])
            found = await self.work.thread(self.flow.metrics, **kwargs, viewer=_viewer(actor))
            if params.get("format") == "prometheus":
                return _prometheus(found)
            return JSONResponse(
                [jsonable(s) | {"mtta": jsonable(s.mtta), "mttr": jsonable(s.mttr)} for s in found]
            )

        return await self._read(request, answer)

    async def export(self, request: Request) -> Response:
        """``GET /export``: the histories as JSON lines (``?id=`` repeated, or the filters)."""

        async def answer(actor: str | None) -> Response:
            from .._transfer import export_lines

            ids = request.query_params.getlist("id")
            if not ids:
                filters = _filters(request, extra=("id",), default_limit=None)
                found = await self.work.thread(
                    self.flow.summaries, **filters, viewer=_viewer(actor)
                )
                ids = [s.id for s in found]
            else:
                for incident_id in ids:  # a missing (or hidden) id answers 404 before the stream
                    await self.work.thread(self.flow.get, incident_id, viewer=_viewer(actor))

            def lines() -> Iterator[str]:
                for line in export_lines(self.flow, dict.fromkeys(ids)):
                    yield line + "\n"

            return StreamingResponse(self.work.stream(lines()), media_type="application/x-ndjson")

        return await self._read(request, answer)

    async def prometheus(self, request: Request) -> Response:
        """``GET /metrics`` at the root: the Prometheus text exposition of every incident."""
        try:
            actor = self.caller(request, needed=False)
            metrics = await self.work.thread(self.flow.metrics, viewer=_viewer(actor))
            return _prometheus(metrics)
        except _Refused as refused:
            return refused.response
        except IncidentFlowError as exc:
            return error_response(exc)


class _Refused(Exception):
    """A request turned away before the flow is asked (401)."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _prometheus(summaries: Any) -> Response:
    from .._prometheus import to_prometheus

    return PlainTextResponse(
        to_prometheus(summaries), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


async def _body(request: Request) -> dict[str, Any]:
    """The request's JSON object; options that come from headers are refused in it."""
    raw = await read_body(request, MAX_BODY)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except RecursionError:  # deeper than the stack: certainly deeper than MAX_DEPTH
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("body", f"is not JSON ({exc}); send a JSON object") from None
    if not isinstance(body, dict):
        raise ValidationError("body", "send a JSON object of the command's arguments")
    if _depth(body) > MAX_DEPTH:
        raise _too_deep()
    for name, where in _FROM_HEADERS.items():
        if name in body:
            raise ValidationError(name, f"is not read from the body; send it as {where}")
    clashes = sorted(_NOT_ARGUMENTS.intersection(body))
    if clashes:
        raise ValidationError(
            clashes[0], "is no command's argument; send only the command's arguments"
        )
    return body


def _depth(body: dict[str, Any]) -> int:
    """How deep ``body`` nests (an object of scalars is 1), without recursing.

    Stops at the first level past MAX_DEPTH: deeper is refused whatever it holds.
    """
    deepest = 0
    pending: list[tuple[dict[str, Any] | list[Any], int]] = [(body, 1)]
    while pending and deepest <= MAX_DEPTH:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _too_deep() -> ValidationError:
    return ValidationError(
        "body",
        f"nests deeper than {MAX_DEPTH} levels; send a JSON object of the command's arguments,"
        f" nested at most {MAX_DEPTH} levels deep",
    )


def _unknown_command(name: str) -> Response | None:
    """404 UnknownCommand unless ``name`` is a command ``/incidents/{id}/...`` runs.

    ``declare`` has its own route, and system commands are recorded by the
    flow alone: neither is run, nor asked about, on an incident over HTTP.
    """
    command = DEFINITIONS.get(name)
    if command is not None and not command.system and name != "declare":
        return None
    names = ", ".join(n for n, c in DEFINITIONS.items() if not c.system and n != "declare")
    return problem(404, "UnknownCommand", f"there is no command {name!r}; use {names}")


def _snapshot_response(incident: Incident, status: int, headers: dict[str, str]) -> Response:
    """The snapshot as JSON, encoding only what the snapshot before it did not hold."""
    return Response(snapshot_json(incident), status_code=status, headers=headers, media_type=_JSON)


def _version(if_match: str) -> int:
    text = if_match.strip().removeprefix("W/").strip('"')
    version = whole_number(text)
    if version is None or not 1 <= version <= INT_MAX:
        raise ValidationError(
            "If-Match",
            f'expected "<version>", a version number in digits 0-9 such as "3" (the ETag'
            f" of the incident), got {v._shown(if_match)}",
        )
    return version


def _etag(incident: Incident) -> str:
    return f'"{incident.version}"'


def _integer(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValidationError(name, f"expected a whole number, got {value!r}") from None


def _flag(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered not in {"true", "false", "1", "0", "yes", "no"}:
        raise ValidationError(name, f"expected true or false, got {value!r}")
    return lowered in {"true", "1", "yes"}


def _params(request: Request, accepted: tuple[str, ...]) -> dict[str, str]:
    unknown = [name for name in request.query_params if name not in accepted]
    if unknown:
        raise ValidationError(
            unknown[0], f"is no query parameter here; use {', '.join(sorted(accepted))}"
        )
    return dict(request.query_params)


def _filters(
    request: Request, *, extra: tuple[str, ...] = (), default_limit: int | None = 100
) -> dict[str, Any]:
    """``flow.list``'s filters from the query string (lists by repeating a parameter)."""
    query = request.query_params
    accepted = (*_LISTS, *_FLAGS, *_TEXTS, *_MOMENTS, "label", "reference", "limit", "offset")
    params = _params(request, (*accepted, *extra))
    filters: dict[str, Any] = {name: query.getlist(name) for name in _LISTS if name in params}
    filters |= {name: _flag(name, params[name]) for name in _FLAGS if name in params}
    filters |= {name: params[name] for name in _TEXTS if name in params}
    filters |= {name: parse_moment(name, params[name]) for name in _MOMENTS if name in params}
    labels = {}
    for pair in query.getlist("label"):
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError("label", f"expected name=value, got {pair!r}")
        labels[name] = value
    if labels:
        filters["labels"] = labels
    if "reference" in params:
        kind, sep, value = params["reference"].partition(":")
        if not sep:
            raise ValidationError("reference", f"expected kind:value, got {params['reference']!r}")
        filters["reference"] = (kind, value)
    limit = params.get("limit")
    filters["limit"] = default_limit if limit is None else _integer("limit", limit)
    if "offset" in params:
        filters["offset"] = _integer("offset", params["offset"])
    return filters


def api_routes(
    flow: IncidentFlow,
    *,
    tokens: Mapping[str, str] | Tokens | None = None,
    alert_tokens: Mapping[str, str] | Tokens | None = None,
    alert_secrets: Mapping[str, str] | Signatures | None = None,
    work: StoreWork | None = None,
) -> list[BaseRoute]:
    """The JSON API's routes, to mount under ``/api``.

    ``tokens`` maps actor names to bearer tokens (``"env:VAR"`` reads one from
    the environment): with them every request needs a valid token and runs as
    its name; without them commands name their actor in ``X-Actor``.
    ``alert_tokens`` and ``alert_secrets`` (HMAC-SHA256 of the body) admit the
    alert endpoints ``POST /alerts/{source}``; without either they answer 401.
    ``work`` runs the store work (shared with the pages by :func:`~incidentflow.web.app`).
    """
    work = work or StoreWork(flow)
    api = _Api(flow, tokens if isinstance(tokens, Tokens) else Tokens(tokens), work)
    alert_keys = (
        alert_tokens
        if isinstance(alert_tokens, Tokens)
        else Tokens(alert_tokens, option="alert_tokens")
    )
    secrets = alert_secrets if isinstance(alert_secrets, Signatures) else Signatures(alert_secrets)
    document = openapi_document()

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    return [
        # Commands first: the busiest route is matched without trying the others.
        # No other route's path has this shape with POST, so the order changes no answer.
        Route("/incidents/{incident_id}/{command}", api.command, methods=["POST"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/incidents", api.declare, methods=["POST"]),
        Route("/incidents", api.incidents, methods=["GET"]),
        Route("/summaries", api.summaries, methods=["GET"]),
        Route("/similar", api.similar, methods=["GET"]),
        Route("/metrics", api.metrics, methods=["GET"]),
        Route("/export", api.export, methods=["GET"]),
        Route("/incidents/{incident_id}", api.get, methods=["GET"]),
        Route("/incidents/{incident_id}/history", api.history, methods=["GET"]),
        Route("/incidents/{incident_id}/similar", api.similar, methods=["GET"]),
        Route("/incidents/{incident_id}/can/{command}", api.can, methods=["GET", "POST"]),
        *alert_routes(flow, alert_keys, secrets, work),
    ]


def prometheus_endpoint(flow: IncidentFlow, tokens: Tokens, work: StoreWork) -> _Endpoint:
    """The root ``GET /metrics`` endpoint: the Prometheus text, behind the same tokens."""
    return _Api(flow, tokens, work).prometheus
