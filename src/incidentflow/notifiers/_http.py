"""The HTTP machinery the webhook and Slack notifiers share (httpx, extra ``[webhook]``).

Requests go straight to a pooled ``httpx.HTTPTransport`` rather than through
``httpx.Client``: the client logs every request URL at INFO, and these URLs
carry credentials. Redirects are not followed and nothing is retried here; the
delivery engine retries.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import ssl
import time
from collections.abc import Iterable, Mapping
from datetime import UTC
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from ..exceptions import ConfigError
from ._base import DeliveryError
from ._secrets import Secret, redact_url, scrub, url_secrets

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpPoster", "require_httpx"]

#: How much of a failed answer's body is read, and how much of it a message quotes.
_READ_LIMIT = 64 * 1024
_EXCERPT = 200
#: Statuses worth retrying besides 5xx: request timeout, too many requests.
_RETRYABLE_4XX = frozenset({408, 429})


def require_httpx(notifier: str) -> ModuleType:
    """The httpx module, or ConfigError naming the extra that installs it."""
    try:
        import httpx
    except ImportError:
        raise ConfigError(
            "httpx", f"{notifier} needs httpx: install it with pip install -e '.[webhook]'"
        ) from None
    return httpx


class HttpPoster:
    """POSTs bodies to one URL over a pool of connections; safe to share between threads.

    ``headers`` are sent with every request and are treated as secret (they may
    hold an ``Authorization``), as are ``secrets``, which are never sent. A
    ``user:password@`` in the URL becomes a Basic ``Authorization`` header.
    """

    def __init__(
        self,
        url: str,
        *,
        notifier: str,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._httpx = require_httpx(notifier)
        self.notifier = notifier
        self.timeout = timeout
        self.redacted_url = redact_url(url)
        parts = urlsplit(url)
        self._host = parts.hostname
        static = dict(headers or {})
        given = {name.lower() for name in static}
        # Also masked wherever a receiver quotes them back: the header values and
        # any other secret the notifier holds (a webhook's signing secret).
        static_secrets = [value for value in (*static.values(), *secrets) if len(value) >= 3]
        if parts.username is not None or parts.password is not None:
            credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            token = base64.b64encode(credentials.encode()).decode("ascii")
            if "authorization" not in given:  # an explicit header wins
                static["Authorization"] = f"Basic {token}"
            static_secrets.append(token)
            parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
        self._secrets = sorted({*url_secrets(url), *static_secrets}, key=len, reverse=True)
        if "user-agent" not in given:
            static["User-Agent"] = _user_agent()
        target: httpx.URL | str = urlunsplit(parts._replace(fragment=""))
        # Parsed once, as httpx would on every request; a URL it refuses stays text
        # and fails at delivery with the reason, as before.
        with contextlib.suppress(Exception):
            target = self._httpx.URL(target)
        self._url = Secret(target)
        self._headers = Secret(static)
        self._extensions = {"timeout": self._httpx.Timeout(timeout).as_dict()}
        self._transport: httpx.BaseTransport = transport or self._httpx.HTTPTransport()

    def post(self, notification_id: str, body: bytes, headers: Mapping[str, str]) -> None:
        """Send ``body``; return on a 2xx answer, raise DeliveryError on anything else."""
        httpx = self._httpx
        status: int | None = None
        retry_after: float | None = None
        try:
            request = httpx.Request(
                "POST",
                self._url.reveal(),
                content=body,
                headers={**self._headers.reveal(), **headers},
                extensions=self._extensions,
            )
            response = self._transport.handle_request(request)
            try:
                answer = _read_limited(response)
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            problem = f"no answer within {self.timeout:g} s ({type(exc).__name__})"
            retryable = True
        except httpx.TransportError as exc:
            if (untrusted := _certificate_error(exc)) is not None:
                problem = (
                    f"the certificate of {self._host} is not trusted ({untrusted.verify_message});"
                    " pass transport=httpx.HTTPTransport(verify=<an ssl.SSLContext that trusts it>)"
                )
                retryable = False
            else:
                problem = f"could not reach {self.redacted_url} ({self._describe(exc)})"
                retryable = True
        except Exception as exc:
            problem = f"could not send to {self.redacted_url} ({self._describe(exc)})"
            retryable = False
        else:
            status = response.status_code
            if 200 <= status < 300:
                return
            problem = f"{self.redacted_url} answered {status} {_reason(response)}"
            if 300 <= status < 400:
                problem += "; redirects are not followed, so use the final address"
            excerpt = scrub(_excerpt(answer), self._secrets)
            if excerpt:
                problem += f": {excerpt}"
            retryable = status >= 500 or status in _RETRYABLE_4XX
            retry_after = _retry_after(response.headers.get("Retry-After"))
        # Raised outside the except clauses: the driver's traceback names the URL and headers.
        raise DeliveryError(
            self.notifier,
            notification_id,
            problem,
            retryable=retryable,
            status=status,
            retry_after=retry_after,
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._transport.close()

    def _describe(self, exc: Exception) -> str:
        text = scrub(str(exc), self._secrets)
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _user_agent() -> str:
    from .._version import __version__

    return f"incidentflow/{__version__}"


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind a transport error, if that is what it is."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _read_limited(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _READ_LIMIT:
            break
    return b"".join(chunks)


def _reason(response: httpx.Response) -> str:
    try:
        return response.reason_phrase
    except Exception:  # a non-standard status has no phrase
        return ""


def _excerpt(body: bytes) -> str:
    text = " ".join(body[: _EXCERPT * 4].decode("utf-8", errors="replace").split())
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())
