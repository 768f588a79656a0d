"""The server-rendered pages: board, incident, metrics and search.

Pages are Jinja2 templates with autoescaping on, so no user text reaches the
page unescaped; charts are inline SVG drawn by the templates; the stylesheet
and the one small script ship in ``web/static``; nothing comes from a CDN.
Forms post to these routes, which run the command through the flow and
redirect back (a refused step re-renders the page with its reasons and codes).
Open pages poll a small state resource with ``If-None-Match`` and swap their
live sections when the ETag changes.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from functools import partial
from typing import Any

import attrs
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .._deadlines import Deadline, deadlines
from .._flow import IncidentFlow
from .._lifecycle import next_command
from .._metrics import _PERIOD_START, PERIODS, _period_label
from .._model import Incident, Severity
from ..exceptions import (
    IncidentFlowError,
    IncidentNotFound,
    InvalidTransition,
    TransitionRejected,
    Unauthorized,
    ValidationError,
)
from ..render import incident_gantt
from ._auth import ANONYMOUS, Tokens
from ._bodies import none_match
from ._pages_auth import ACTOR_HEADER, PageAuth, form_values
from ._pages_auth import Problem as _Problem
from ._pages_charts import bar_chart, gantt_chart
from ._pages_forms import Form, declare_form, form_arguments, forms_for
from ._threads import StoreWork

__all__ = ["page_routes"]

#: How many periods the metrics page charts, newest last.
_PERIODS_SHOWN = 12
#: Security headers of every page: scripts and styles from this server only.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
#: The largest form body the pages accept, in bytes.
_FORM_MAX = 1_000_000
#: Event fields worth a line in the timeline, in the order shown.
_DETAIL_FIELDS = (
    "title",
    "severity",
    "question",
    "answer",
    "source",
    "content",
    "description",
    "statement",
    "process_gap",
    "user",
    "comment",
    "ref",
    "reason",
    "text",
    "role",
    "person",
    "commander",
    "owner",
    "summary",
)


def _problem(exc: IncidentFlowError) -> _Problem:
    if isinstance(exc, TransitionRejected):
        return _Problem(409, f"cannot {exc.command} yet", exc.message, tuple(exc.reasons))
    if isinstance(exc, ValidationError):
        return _Problem(422, f"{exc.field}: not accepted", exc.message, field=exc.field)
    if isinstance(exc, InvalidTransition):
        return _Problem(409, f"cannot {exc.command} now", exc.message)
    if isinstance(exc, IncidentNotFound):
        return _Problem(404, "no such incident", exc.message)
    if isinstance(exc, Unauthorized):
        return _Problem(403, "not allowed", exc.message)
    return _Problem(409, type(exc).__name__, getattr(exc, "message", "") or str(exc))


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("incidentflow.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["duration"] = _duration
    return env


def _when(at: datetime | date | None) -> str:
    if at is None:
        return "—"
    if isinstance(at, datetime):
        return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    return at.isoformat()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    left = int(abs(seconds))
    days, left = divmod(left, 86400)
    hours, left = divmod(left, 3600)
    minutes, secs = divmod(left, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def _countdown(deadline: Deadline | None, now: datetime) -> dict[str, Any] | None:
    if deadline is None:
        return None
    return {
        "kind": deadline.kind.replace("_", " "),
        "due_at": deadline.due_at,
        "status": deadline.status(now),
        "met_at": deadline.met_at,
        "seconds": (deadline.due_at - now).total_seconds(),
        "breached": deadline.breached,
    }


def _timeline(history: Sequence[Any]) -> list[dict[str, Any]]:
    rows = []
    for event in history:
        data = event.data
        values = attrs.asdict(data, recurse=False) if attrs.has(type(data)) else {}
        details = []
        for name in _DETAIL_FIELDS:
            value = values.get(name)
            if isinstance(value, Severity):
                value = value.value
            if isinstance(value, str) and value:
                shown = value if len(value) <= 240 else value[:239] + "…"
                details.append((name.replace("_", " "), shown))
        kind = getattr(data, "TYPE", type(data).__name__)
        rows.append(
            {
                "seq": event.seq,
                "at": event.at,
                "actor": event.actor,
                "what": kind.replace("_", " "),
                "details": details,
            }
        )
    return rows


def _etag(text: str) -> str:
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:20] + '"'


class _Pages:
    """The page handlers over one flow."""

    def __init__(
        self, flow: IncidentFlow, auth: PageAuth, poll_interval: float, work: StoreWork
    ) -> None:
        self.flow = flow
        self.work = work
        self.auth = auth
        self.poll_interval = poll_interval
        self.env = _environment()

    # -- helpers -------------------------------------------------------------------------

    def _actor(self, request: Request) -> str | None:
        return self.auth.actor(request)

    def _viewer(self, request: Request) -> str:
        """Whom reads are filtered for: the actor, else someone no incident is restricted to."""
        return self._actor(request) or ANONYMOUS

    def _render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        try:
            actor = self._actor(request)
        except ValidationError:
            actor = None

        def url(name: str, **params: Any) -> str:
            return request.url_for(name, **params).path

        html = self.env.get_template(template).render(
            url=url,
            actor=actor,
            actor_header=ACTOR_HEADER,
            signs_in=self.auth.signs_in,
            poll_ms=int(self.poll_interval * 1000),
            key=partial(secrets.token_urlsafe, 12),
            now=self.flow.now(),
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=_HEADERS)

    def _refused(self, request: Request, exc: IncidentFlowError) -> HTMLResponse:
        problem = _problem(exc)
        return self._render(request, "problem.html", problem.status, problem=problem)

    # -- board ---------------------------------------------------------------------------

    def _board_etag(self, viewer: str) -> str:
        found = self.flow.summaries(open_only=True, viewer=viewer)
        return _etag("|".join(f"{s.id}:{s.version}" for s in found))

    def _board(self, viewer: str) -> dict[str, Any]:
        now = self.flow.now()
        lanes: dict[Severity, list[dict[str, Any]]] = {s: [] for s in Severity}
        found = self.flow.list(open_only=True, viewer=viewer)
        for incident in sorted(found, key=lambda i: i.declared_at):
            due = deadlines(incident, self.flow.policy)
            response = next((d for d in due if d.kind == "response"), None)
            pending = next((d for d in due if not d.met and d.kind != "response"), None)
            lanes[incident.severity].append(
                {
                    "incident": incident,
                    "response": _countdown(response, now),
                    "next": _countdown(pending, now),
                }
            )
        etag = self._board_etag(viewer)
        return {"lanes": lanes, "etag": etag, "declare": self._declare_form(viewer)}

    def _may(self, viewer: str, command: str, incident: Incident | None) -> bool:
        """False when the policy's authorizer would refuse ``viewer`` the ``command``."""
        authorizer = self.flow.policy.authorizer
        if authorizer is None:
            return True
        try:
            authorizer.authorize(viewer, command, incident)
        except Unauthorized:
            return False
        return True

    def _declare_form(self, viewer: str) -> Form | None:
        """The board's declare form as ``viewer`` may use it: none, or without restricting."""
        if not self._may(viewer, "declare", None):
            return None
        form = declare_form()
        if self._may(viewer, "restrict", None):
            return form
        return attrs.evolve(form, fields=tuple(f for f in form.fields if f.name != "restricted_to"))

    async def board(self, request: Request) -> Response:
        try:
            context = await self.work.thread(self._board, self._viewer(request))
        except IncidentFlowError as exc:
            return self._refused(request, exc)
        return self._render(request, "board.html", **context)

    async def board_state(self, request: Request) -> Response:
        try:
            etag = await self.work.thread(self._board_etag, self._viewer(request))
        except IncidentFlowError as exc:
            return JSONResponse({"error": str(exc)}, status_code=_problem(exc).status)
        return _state_response(request, etag, {"etag": etag})

    async def declare(self, request: Request) -> Response:
        values: dict[str, str] = {}
        try:
            values = await form_values(request, _FORM_MAX)
            actor = self._require_actor(request)
            args = form_arguments("declare", values)
            outcome = await self.work.quick(
                partial(
                    self.flow.execute,
                    "declare",
                    actor=actor,
                    idempotency_key=values.get("idempotency_key") or None,
                    **args,
                )
            )
        except IncidentFlowError as exc:
            problem = _problem(exc)
            try:
                context = await self.work.thread(self._board, self._viewer(request))
            except IncidentFlowError as unseen:
                return self._refused(request, unseen)
            return self._render(
                request, "board.html", problem.status, problem=problem, values=values, **context
            )
        target = request.url_for("page_incident", incident_id=outcome.incident.id).path
        return RedirectResponse(target, status_code=303)

    def _require_actor(self, request: Request) -> str:
        actor = self._actor(request)
        if actor is None:
            raise ValidationError(
                "actor",
                f"no one to record this as: send the {ACTOR_HEADER} header, or give the "
                "pages an actor (incidentflow.web.app(flow, actor=...)), or configure tokens",
            )
        return actor

    # -- incident ------------------------------------------------------------------------

    def _incident(self, incident_id: str, viewer: str) -> dict[str, Any]:
        incident = self.flow.get(incident_id, viewer=viewer)
        history = self.flow.history(incident_id, viewer=viewer)
        now = self.flow.now()
        step = next_command(incident.state, postmortem_required=incident.postmortem_required)
        verdict = None if step is None else self.flow.can(incident_id, step, actor=viewer)
        return {
            "incident": incident,
            "timeline": _timeline(history),
            "deadlines": [_countdown(d, now) for d in deadlines(incident, self.flow.policy)],
            "gantt": gantt_chart(incident_gantt(incident, history, now=now)),
            "step": step,
            "verdict": verdict,
            "forms": [
                f for f in forms_for(incident.state, step) if self._may(viewer, f.command, incident)
            ],
            "etag": _incident_etag(incident),
        }

    async def incident(self, request: Request) -> Response:
        incident_id = request.path_params["incident_id"]
        try:
            context = await self.work.thread(self._incident, incident_id, self._viewer(request))
        except IncidentFlowError as exc:
            return self._refused(request, exc)
        return self._render(request, "incident.html", problem=None, values={}, **context)

    async def incident_state(self, request: Request) -> Response:
        incident_id = request.path_params["incident_id"]
        try:
            viewer = self._viewer(request)
            incident = await self.work.quick(partial(self.flow.get, incident_id, viewer=viewer))
        except IncidentFlowError as exc:
            return JSONResponse({"error": str(exc)}, status_code=_problem(exc).status)
        body = {"id": incident.id, "version": incident.version, "state": incident.state.value}
        return _state_response(request, _incident_etag(incident), body)

    async def run(self, request: Request) -> Response:
        incident_id = request.path_params["incident_id"]
        command = request.path_params["command"]
        values: dict[str, str] = {}
        try:
            values = await form_values(request, _FORM_MAX)
            actor = self._require_actor(request)
            args = form_arguments(command, values)
            await self.work.quick(
                partial(
                    self.flow.execute,
                    command,
                    incident_id,
                    actor=actor,
                    idempotency_key=values.get("idempotency_key") or None,
                    **args,
                )
            )
        except IncidentFlowError as exc:
            problem = _problem(exc)
            try:
                context = await self.work.thread(self._incident, incident_id, self._viewer(request))
            except IncidentFlowError as unseen:
                return self._refused(request, unseen)
            values["command"] = command
            return self._render(
                request,
                "incident.html",
                problem.status,
                problem=problem,
                values=values,
                **context,
            )
        target = request.url_for("page_incident", incident_id=incident_id).path
        return RedirectResponse(target, status_code=303)

    # -- metrics and search --------------------------------------------------------------

    def _metrics(self, period: str, viewer: str) -> dict[str, Any]:
        found = self.flow.metrics(by="period", period=period, viewer=viewer)  # type: ignore[arg-type]
        summaries = list(found)[-_PERIODS_SHOWN:]
        breaches: dict[str, int] = {s.period or "": 0 for s in summaries}
        if summaries and summaries[0].period_start is not None:
            since = datetime.combine(summaries[0].period_start, time(0), tzinfo=UTC)
            start_of = _PERIOD_START[period]
            chosen = self.flow.list(declared_after=since, newest_first=False, viewer=viewer)
            for incident in chosen:
                first_day = date.fromordinal(start_of(incident.declared_at.astimezone(UTC).date()))
                label = _period_label(period, first_day)
                if label in breaches:
                    breaches[label] += len(incident.breaches)

        def minutes(value: Any) -> float | None:
            return None if value is None else value.total_seconds() / 60

        labels = [s.period or "" for s in summaries]
        return {
            "period": period,
            "periods": PERIODS,
            "summaries": summaries,
            "charts": [
                bar_chart("MTTA (minutes)", [(s.period or "", minutes(s.mtta)) for s in summaries]),
                bar_chart("MTTR (minutes)", [(s.period or "", minutes(s.mttr)) for s in summaries]),
                bar_chart(
                    "Deadline breaches",
                    [(label, float(breaches[label])) for label in labels],
                ),
            ],
        }

    async def metrics(self, request: Request) -> Response:
        period = request.query_params.get("period", "week")
        if period not in PERIODS:
            problem = _problem(
                ValidationError("period", f"{period!r} is not a period; use day, week or month")
            )
            return self._render(request, "problem.html", 422, problem=problem)
        try:
            context = await self.work.thread(self._metrics, period, self._viewer(request))
        except IncidentFlowError as exc:
            return self._refused(request, exc)
        return self._render(request, "metrics.html", **context)

    async def search(self, request: Request) -> Response:
        query = request.query_params.get("q", "")
        found: Sequence[Any] = ()
        problem = None
        if query.strip():
            try:
                viewer = self._viewer(request)
                search = partial(self.flow.similar, text=query, limit=20, viewer=viewer)
                found = await self.work.thread(search)
            except IncidentFlowError as exc:
                problem = _problem(exc)
        status = 200 if problem is None else problem.status
        return self._render(
            request, "search.html", status, query=query, found=found, problem=problem
        )


def _incident_etag(incident: Incident) -> str:
    return f'"{incident.version}"'


def _state_response(request: Request, etag: str, body: Mapping[str, Any]) -> Response:
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(dict(body), headers=headers)


def page_routes(
    flow: IncidentFlow,
    *,
    actor: str | None = None,
    poll_interval: float = 2.0,
    tokens: Tokens | None = None,
    work: StoreWork | None = None,
) -> list[BaseRoute]:
    """The pages' routes over ``flow``, to mount at ``/`` (see :func:`incidentflow.web.app`).

    Args:
        flow: The flow the pages read and run commands on.
        actor: Who form posts are recorded as when a request sends no
            ``X-Actor`` header; only without tokens.
        poll_interval: How often, in seconds, an open page asks whether its
            incident (or the board) changed.
        tokens: With any, people sign in with their token (``/signin`` sets
            a cookie; a bearer header also does) and ``X-Actor`` is ignored.
        work: Runs the store work (shared with the API by the app).

    Raises:
        ValidationError: ``actor`` is not a name, or ``poll_interval`` is not
            a number of seconds from 0.1 to 3600.
        ConfigError: ``actor`` is given together with tokens.

    """
    auth = PageAuth(tokens, actor)
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, int | float):
        raise ValidationError("poll_interval", "expected a number of seconds, e.g. 2")
    if not 0.1 <= poll_interval <= 3600:
        raise ValidationError(
            "poll_interval", f"is {poll_interval}; give a number of seconds from 0.1 to 3600"
        )
    pages = _Pages(flow, auth, float(poll_interval), work or StoreWork(flow))
    static = StaticFiles(packages=[("incidentflow.web", "static")])
    routes: list[tuple[str, Callable[[Request], Any], str, list[str]]] = [
        ("/", pages.board, "page_board", ["GET"]),
        ("/board/state", pages.board_state, "page_board_state", ["GET"]),
        ("/incidents", pages.declare, "page_declare", ["POST"]),
        ("/incidents/{incident_id}", pages.incident, "page_incident", ["GET"]),
        ("/incidents/{incident_id}/state", pages.incident_state, "page_incident_state", ["GET"]),
        (
            "/incidents/{incident_id}/commands/{command}",
            pages.run,
            "page_command",
            ["POST"],
        ),
        ("/metrics", pages.metrics, "page_metrics", ["GET"]),
        ("/search", pages.search, "page_search", ["GET"]),
    ]
    render = pages._render
    found: list[BaseRoute] = [
        Route(path, auth.guard(endpoint, render, state=path.endswith("/state")), name=name,
              methods=methods)
        for path, endpoint, name, methods in routes
    ]  # fmt: skip
    found.append(
        Route("/signin", partial(auth.sign_in, render=render), name="page_sign_in",
              methods=["GET", "POST"])
    )  # fmt: skip
    found.append(
        Route("/signout", partial(auth.sign_out, render=render), name="page_sign_out",
              methods=["POST"])
    )  # fmt: skip
    found.append(Mount("/static", app=static, name="page_static"))
    return found
