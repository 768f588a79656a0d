"""Real servers on 127.0.0.1 for the notifier tests: an HTTP receiver and an SMTP handler.

The HTTP receiver (standard library) records every request, checks its
signature with the shipped ``verify_signature``, and can be told to answer an
error status or to hang past the client's timeout. The SMTP handler plugs
into aiosmtpd: it records messages and can refuse senders. The fixtures that
start them are in this folder's ``conftest.py``.
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from incidentflow.notifiers import verify_signature

__all__ = [
    "SECRET_PATH",
    "SECRET_TOKEN",
    "SIGNING_SECRET",
    "SMTP_PASSWORD",
    "SMTP_USER",
    "Answer",
    "Delivered",
    "HttpReceiver",
    "Received",
    "SmtpRecorder",
    "SmtpServer",
    "Tls",
    "authenticator",
    "free_port",
]

#: The secret path and token of the receiver's URL: they must never show up in output.
SECRET_PATH = "T0001/B0002/s3cretPathToken"
SECRET_TOKEN = "qu3ryT0kenValue"
SIGNING_SECRET = "whsec-signing-s3cret"
SMTP_USER = "ops-bot"
SMTP_PASSWORD = "smtp-pa55word-s3cret"


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None


@dataclass
class Answer:
    """What the receiver answers: a status, a body, headers; or it hangs."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


class HttpReceiver:
    """An HTTP server on 127.0.0.1 (a free port) that records what is POSTed to it."""

    def __init__(self, secret: str | None = SIGNING_SECRET) -> None:
        self.secret = secret
        self.answer = Answer()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """A URL with credentials in its path and query, as real webhook URLs have."""
        return f"{self.base}/hooks/{SECRET_PATH}?token={SECRET_TOKEN}"

    def answer_with(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.answer = Answer(status, body, headers)

    def hang(self) -> None:
        """Read requests but answer none until the receiver stops."""
        self.answer = Answer(hang=True)

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def _record(self, received: Received) -> None:
        with self._arrived:
            self.requests.append(received)
            self._arrived.notify_all()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                signature_ok = None
                if receiver.secret is not None and "x-incidentflow-signature" in headers:
                    signature_ok = verify_signature(
                        receiver.secret,
                        body,
                        headers.get("x-incidentflow-timestamp", ""),
                        headers["x-incidentflow-signature"],
                    )
                receiver._record(Received(self.path, headers, body, signature_ok))
                answer = receiver.answer
                if answer.hang:
                    receiver.release.wait(10)
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Delivered:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    tls: bool
    login: str | None


class SmtpRecorder:
    """aiosmtpd handler: records messages, refuses senders in ``refuse_senders``."""

    def __init__(self) -> None:
        self.messages: list[Delivered] = []
        self.refuse_senders: dict[str, str] = {}

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if address in self.refuse_senders:
            return self.refuse_senders[address]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.login_data.decode() if session.authenticated else None
        tls = session.ssl is not None
        self.messages.append(
            Delivered(envelope.mail_from, list(envelope.rcpt_tos), message, raw, tls, login)
        )
        return "250 Message accepted for delivery"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    if ok:
        return AuthResult(success=True, auth_data=auth_data)
    return AuthResult(success=False, handled=False)  # not handled: the server answers 535


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: SmtpRecorder


@dataclass
class Tls:
    """A self-signed certificate for 127.0.0.1 and the contexts that use it."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))
