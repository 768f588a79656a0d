"""The HTTP machinery the webhook and Slack notifiers share (httpx, extra ``[webhook]``).

Requests go straight to a pooled ``httpx.HTTPTransport`` rather than through
``httpx.Client``: the client logs every request URL at INFO, and these URLs
carry credentials. Redirects are not followed and nothing is retried here; the
delivery engine retries.

httpx's timeouts hold for each read or write, so a receiver that keeps sending
a byte now and then would hold an attempt for hours. Each attempt therefore
runs in a helper thread that the caller waits for until the notifier's
``timeout`` has passed, and reads at most 64 KiB of the answer.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import ssl
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
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

#: How much of an answer's body is read, and how much of a failed one a message quotes.
_READ_LIMIT = 64 * 1024
_EXCERPT = 200
#: Header values shorter than this are not masked word by word (``Bearer``, ``Basic``).
_SECRET_WORD_MIN = 8
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
        # The token of ``Authorization: Bearer <token>`` is quoted back without its scheme.
        static_secrets += [
            word
            for value in static.values()
            for word in value.split()
            if len(word) >= _SECRET_WORD_MIN and word != value
        ]
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
        """Send ``body``; return on a 2xx answer, raise DeliveryError on anything else.

        The whole attempt (connecting, sending, reading the answer) takes at
        most ``timeout`` seconds; an answer not complete by then counts as none.
        """
        httpx = self._httpx
        deadline = time.monotonic() + self.timeout
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
            response, answer, complete = self._exchange(request, deadline)
        except _Overdue as exc:
            problem = f"no answer within {self.timeout:g} s"
            if exc.status is not None:
                problem = (
                    f"no complete answer within {self.timeout:g} s "
                    f"(it answered {exc.status}, but its body kept coming)"
                )
            retryable = True
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
            reason = _excerpt(_reason(response).encode(), self._secrets, complete=True)
            problem = f"{self.redacted_url} answered {status} {reason}".rstrip()
            if 300 <= status < 400:
                problem += "; redirects are not followed, so use the final address"
            excerpt = _excerpt(answer, self._secrets, complete=complete)
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

    def _exchange(
        self, request: httpx.Request, deadline: float
    ) -> tuple[httpx.Response, bytes, bool]:
        """Send ``request`` and read the answer by ``deadline``; ``_Overdue`` if it is not done.

        The work runs in a helper thread: httpx's timeouts bound each read, not
        a receiver that trickles its answer, and nothing else can interrupt a
        blocked read. A helper given up on stops at its next read past the
        deadline (a trickled body) or at httpx's own timeout.
        """
        outcome: list[tuple[httpx.Response, bytes, bool] | BaseException] = []
        answered: list[int] = []
        done = threading.Event()

        def attempt() -> None:
            try:
                response = self._transport.handle_request(request)
                answered.append(response.status_code)
                try:
                    outcome.append((response, *_read_limited(response, deadline)))
                finally:
                    response.close()
            except BaseException as exc:  # the caller raises it
                outcome.append(exc)
            finally:
                done.set()

        helper = threading.Thread(target=attempt, name=f"incidentflow-{self.notifier}", daemon=True)
        helper.start()
        if not done.wait(min(max(0.0, deadline - time.monotonic()), threading.TIMEOUT_MAX)):
            raise _Overdue(answered[0] if answered else None)
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return result


class _Overdue(Exception):
    """The attempt did not end by its deadline; ``status`` is the answer's, if one began."""

    def __init__(self, status: int | None) -> None:
        super().__init__(status)
        self.status = status


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


def _read_limited(response: httpx.Response, deadline: float) -> tuple[bytes, bool]:
    """Up to ``_READ_LIMIT`` bytes of the body, and whether that is all of it.

    ``_Overdue`` once ``deadline`` passes with the body still arriving.
    """
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _READ_LIMIT:
            return b"".join(chunks)[:_READ_LIMIT], False
        if time.monotonic() > deadline:
            raise _Overdue(response.status_code)
    return b"".join(chunks), True


def _reason(response: httpx.Response) -> str:
    try:
        return response.reason_phrase
    except Exception:  # a non-standard status has no phrase
        return ""


def _excerpt(body: bytes, secrets: Sequence[str], *, complete: bool) -> str:
    """The start of a receiver's answer on one line, at most ``_EXCERPT`` characters.

    Every secret is masked before the text is cut or its whitespace collapsed,
    so a cut never leaves the start of a secret in the message. When the body
    was read only in part, its last characters, which may begin a secret the
    read cut through, are dropped first.
    """
    text = body.decode("utf-8", errors="replace")
    if not complete:
        text = text[: max(0, len(text) - max(map(len, secrets), default=0))]
    text = " ".join(scrub(text, secrets).split())
    text = scrub(text, secrets)  # a secret whose whitespace the line collapsed into a match
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
