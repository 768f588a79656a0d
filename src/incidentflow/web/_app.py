"""The application: the JSON API, the alert endpoints and the pages, on one flow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.routing import BaseRoute
    from starlette.types import Receive, Scope, Send

    from .._flow import IncidentFlow
    from ._auth import Signatures, Tokens

__all__ = ["app"]


class _Metrics:
    """``GET /metrics``: the Prometheus text for scrapers, the metrics page for browsers."""

    def __init__(self, prometheus: Any, page: BaseRoute | None) -> None:
        self.prometheus = prometheus
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.requests import Request

        accept = dict(scope.get("headers") or []).get(b"accept", b"")
        if self.page is not None and b"text/html" in accept:
            await self.page.handle(scope, receive, send)
            return
        response = await self.prometheus(Request(scope, receive))
        await response(scope, receive, send)


def app(
    flow: IncidentFlow,
    *,
    tokens: Mapping[str, str] | Tokens | None = None,
    alert_tokens: Mapping[str, str] | Tokens | None = None,
    alert_secrets: Mapping[str, str] | Signatures | None = None,
    inline: bool | None = None,
    **page_options: Any,
) -> Starlette:
    """An ASGI application serving ``flow``: JSON API under ``/api``, pages under ``/``.

    A plain Starlette app: mount it in a host's FastAPI or Starlette app, or
    run it with ``incidentflow serve``. ``tokens`` (actor name → bearer token,
    or ``"env:VAR"``), and the API tokens of the policy's ``[access]`` roles,
    guard the API and the pages and name who runs each command; people sign
    in to the pages with theirs. Without any, the ``X-Actor`` header names
    the actor. ``alert_tokens`` and ``alert_secrets``
    admit the alert endpoints ``POST /api/alerts/{source}`` (bearer token, or
    HMAC-SHA256 signature of the body). ``GET /metrics`` answers the Prometheus
    text, or the metrics page to a browser. ``page_options`` go to the pages.

    Store work runs in worker threads, off the event loop. A short call (a
    command, one incident's snapshot, ``can``) runs on the loop itself while
    none of the service's calls is in a thread and no other thread holds the
    store, when ``inline`` is true, or by default when nothing in it can wait
    long: a memory or SQLite store, no code of yours in the policy (custom
    guards, an authorizer other than :class:`~incidentflow.Access`). Either
    way, a flow that writes files (``incidents_dir``, ``knowledge_dir``) or
    delivers to its notifiers inline hops. That saves the hop to a thread,
    which costs as much as the command. On the loop a call never waits: one
    that finds the SQLite file locked by another process runs again in a
    thread. ``inline=False`` always hops.

    Raises:
        ConfigError: A token or secret is malformed, or names an unset variable;
            the pages are given a fixed ``actor`` while tokens are configured;
            or ``inline`` is not True, False or None.

    """
    from starlette.applications import Starlette
    from starlette.routing import Mount, Route

    from ._api import api_routes, prometheus_endpoint
    from ._auth import Signatures, Tokens
    from ._pages import page_routes
    from ._threads import StoreWork

    keys = tokens if isinstance(tokens, Tokens) else Tokens(tokens)
    keys = keys.joined(_access_tokens(flow))
    alert_keys = (
        alert_tokens
        if isinstance(alert_tokens, Tokens)
        else Tokens(alert_tokens, option="alert_tokens")
    )
    secrets = alert_secrets if isinstance(alert_secrets, Signatures) else Signatures(alert_secrets)
    work = StoreWork(flow, inline=inline)
    api = api_routes(flow, tokens=keys, alert_tokens=alert_keys, alert_secrets=secrets, work=work)
    pages = page_routes(flow, tokens=keys, work=work, **page_options)
    page = next((r for r in pages if getattr(r, "path", None) == "/metrics"), None)
    endpoint = _Metrics(prometheus_endpoint(flow, keys, work), page)
    metrics = Route("/metrics", endpoint, methods=["GET"])
    return Starlette(routes=[Mount("/api", routes=api), metrics, *pages])


def _access_tokens(flow: IncidentFlow) -> list[tuple[str, str]]:
    """The API tokens of the policy's ``[access]`` roles, as (actor, SHA-256 hex digest)."""
    from .._authz import Access

    authorizer = flow.policy.authorizer
    if not isinstance(authorizer, Access):
        return []
    return [(token.actor, token.sha256) for role in authorizer.roles for token in role.tokens]
