"""Who is looking at the pages, and whether a form post came from them.

With tokens configured (the service's own, or the API tokens of the policy's
``[access]`` roles), the pages sign people in as the API does: an
``Authorization: Bearer`` header (a reverse proxy or a script sends one), or
the cookie the sign-in form sets, which holds the token, ``HttpOnly`` and
``SameSite=Strict``. ``X-Actor`` is then ignored and a fixed page actor is
refused: either would let anyone name themselves.

Without tokens the pages trust ``X-Actor`` (an authenticating reverse proxy
sets it) or their fixed actor: a service on a trusted network.

Either way a form post must come from the pages themselves. A browser's
``Sec-Fetch-Site`` or ``Origin`` naming another site is refused with 403, and
only URL-encoded forms are read, so a page elsewhere cannot post a form in a
responder's name (cross-site request forgery).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import parse_qsl

import attrs
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from .. import _validate as v
from .._reasons import Reason
from ..exceptions import ConfigError, ValidationError
from ._auth import Tokens, bearer
from ._bodies import read_body

__all__ = ["ACTOR_HEADER", "COOKIE", "PageAuth", "Problem", "form_values"]

#: The header a caller names its actor with when no tokens are configured.
ACTOR_HEADER: Final = "X-Actor"
#: The cookie the sign-in form sets: the token itself, never readable by scripts.
COOKIE: Final = "incidentflow_token"
#: What a browser's ``Sec-Fetch-Site`` says of a request from our own pages (or typed in).
_OWN_SITES: Final = frozenset({"same-origin", "none"})
_FORM_TYPE: Final = "application/x-www-form-urlencoded"
#: A token is at most this long (a sign-in form holding more is refused unread).
_SIGN_IN_MAX: Final = 4096

_Endpoint = Callable[[Request], Awaitable[Response]]
_Render = Callable[..., HTMLResponse]


@attrs.frozen
class Problem:
    """Why a page or a form post was refused, as the page shows it."""

    status: int
    title: str
    message: str
    reasons: tuple[Reason, ...] = ()
    field: str | None = None


class PageAuth:
    """The pages' caller: a token's actor when tokens are configured, else ``X-Actor``."""

    def __init__(self, tokens: Tokens | None, actor: str | None) -> None:
        self.tokens = tokens if tokens is not None else Tokens(None)
        if self.tokens and actor is not None:
            raise ConfigError(
                "actor",
                "the pages cannot have a fixed actor when tokens are configured: everyone "
                "would act as it; leave it out, and people sign in with their own token",
            )
        self.fixed = None if actor is None else v.actor(actor)

    @property
    def signs_in(self) -> bool:
        """Whether callers sign in with a token (tokens are configured)."""
        return bool(self.tokens)

    def actor(self, request: Request) -> str | None:
        """Who ``request`` comes from, or ``None`` (raises ValidationError for a bad X-Actor)."""
        if self.signs_in:
            presented = bearer(request.headers.get("authorization"))
            return self.tokens.actor(presented or request.cookies.get(COOKIE))
        header = request.headers.get(ACTOR_HEADER)
        if header:
            return v.actor(header)
        return self.fixed

    def guard(self, endpoint: _Endpoint, render: _Render, *, state: bool = False) -> _Endpoint:
        """``endpoint`` behind the sign-in (when tokens are configured) and the same-site check.

        A caller who is not signed in gets 401: the sign-in page, or for a
        ``state`` resource (polled by the pages' script) a small JSON body.
        """

        async def guarded(request: Request) -> Response:
            if request.method == "POST":
                refused = _cross_site(request)
                if refused is not None:
                    return render(request, "problem.html", 403, problem=refused)
            if self.signs_in and self.actor(request) is None:
                if state:
                    return JSONResponse({"error": "sign in first"}, status_code=401)
                return _sign_in_page(render, request, 401, next_path=_here(request))
            return await endpoint(request)

        return guarded

    async def sign_in(self, request: Request, render: _Render) -> Response:
        """``GET|POST /signin``: the form, or a token checked and kept in the cookie."""
        if request.method == "GET":
            return _sign_in_page(render, request, 200, next_path=request.query_params.get("next"))
        refused = _cross_site(request)
        if refused is not None:
            return render(request, "problem.html", 403, problem=refused)
        try:
            form = await _form(request, _SIGN_IN_MAX)
        except ValidationError as exc:
            return _sign_in_page(render, request, 422, error=exc.message)
        token = form.get("token", "").strip()
        next_path = _local_path(form.get("next"), request)
        if not self.signs_in or self.tokens.actor(token) is None:
            error = "that token is not valid here; paste the whole token you were given"
            return _sign_in_page(render, request, 401, next_path=next_path, error=error)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            path=_root(request),
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    async def sign_out(self, request: Request, render: _Render) -> Response:
        """``POST /signout``: forget the cookie and go back to the sign-in page."""
        refused = _cross_site(request)
        if refused is not None:
            return render(request, "problem.html", 403, problem=refused)
        response = RedirectResponse(request.url_for("page_sign_in").path, status_code=303)
        response.delete_cookie(COOKIE, path=_root(request), httponly=True, samesite="strict")
        return response


async def form_values(request: Request, limit: int) -> dict[str, str]:
    """A posted form's fields: URL-encoded (what the pages' forms send), at most 100.

    Raises ValidationError for another content type, a body over ``limit``
    bytes, or one that is not a form in UTF-8.
    """
    return await _form(request, limit)


async def _form(request: Request, limit: int) -> dict[str, str]:
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    body = await read_body(request, limit, field="form")
    if kind != _FORM_TYPE and (body or kind):  # an empty post needs no type
        raise ValidationError(
            "form", f"is sent as {kind or 'nothing'}; send it as {_FORM_TYPE}, as the pages do"
        )
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100))
    except (UnicodeDecodeError, ValueError):
        raise ValidationError(
            "form", "is not an HTML form of at most 100 fields in UTF-8"
        ) from None


def _cross_site(request: Request) -> Problem | None:
    """Why a post from another site is refused, or ``None`` when it came from these pages."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        own = site.lower() in _OWN_SITES
    else:
        origin = request.headers.get("origin")
        # Browsers send Origin with every cross-site post; a client without one is no browser.
        own = origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"
    if own:
        return None
    return Problem(
        403,
        "refused: posted from another site",
        "this form was posted from a page of another site, so it may not have been you; "
        "open the incidentflow page itself and submit the form there",
    )


def _sign_in_page(
    render: _Render,
    request: Request,
    status: int,
    *,
    next_path: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    return render(
        request, "signin.html", status, next_path=_local_path(next_path, request), error=error
    )


def _root(request: Request) -> str:
    """The path the pages are mounted at (the cookie is theirs alone)."""
    return request.url_for("page_board").path


def _here(request: Request) -> str:
    """The page asked for, to come back to after signing in (a GET's own path and query)."""
    if request.method != "GET":
        return _root(request)
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _local_path(value: str | None, request: Request) -> str:
    """``value`` if it is a path on this server (never another site), else the board."""
    root = _root(request)
    if not value or not value.startswith(root) or value.startswith("//") or "\\" in value:
        return root
    if any(ord(c) < 32 for c in value) or len(value) > 2000:
        return root
    return value
