"""Email through an SMTP server: one message per event, plain text and HTML.

Standard library only (``smtplib``). Each delivery opens its own connection,
so one notifier may be called from many threads at once.
"""

from __future__ import annotations

import html
import re
import smtplib
import ssl
from collections.abc import Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Final, Literal

from loguru import logger

from ..exceptions import ConfigError
from ._base import DeliveryError, Notification, Notifier
from ._checks import check_incident_url, check_name, check_timeout
from ._secrets import Secret, scrub
from ._text import details, headline, incident_link, one_line, summary, update_text, utc_text

__all__ = ["EmailNotifier"]

Security = Literal["starttls", "ssl", "none"]

_DEFAULT_PORTS: Final = {"starttls": 587, "ssl": 465, "none": 25}
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")
#: Control characters, line breaks included, have no place in a header value.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
#: A line break in a folded header that does not continue it: the start of another
#: header, or of the body (what Python's own ``verify_generated_headers`` refuses).
_UNFOLDED_BREAK = re.compile(r"\r\n(?![ \t])|\r(?![ \t\n])|(?<!\r)\n(?![ \t])")


class EmailNotifier(Notifier):
    """Sends each notification as an email through an SMTP server.

    The message is multipart/alternative (plain text and HTML, user text
    escaped). Its subject reads ``[P1] INC-… resolved: <title>``; its
    ``Message-ID`` is derived from the notification id, so a message sent twice
    has the same id and mail systems can drop the duplicate, and every message
    of an incident refers to its declaration, so mail clients thread them.

    Args:
        host: The SMTP server.
        port: Its port; by default 587 for ``starttls``, 465 for ``ssl``, 25 for ``none``.
        sender: The From address; it is also the envelope sender.
        recipients: The To addresses.
        username: User to log in as, with ``password``; both or neither.
        password: Never shown in reprs, logs or errors.
        security: ``"starttls"`` (upgrade a plain connection; fails if the
            server does not offer it), ``"ssl"`` (TLS from the first byte), or
            ``"none"`` (plain text; refused together with a password).
        timeout: Seconds to wait for the server at each step.
        ssl_context: The TLS settings; by default ``ssl.create_default_context()``
            (verifies the server's certificate against the system's CAs).
        incident_url: Format string for a link to the incident, filled with
            ``{id}`` and ``{slug}``.
        name: Name used in logs and routing rules.

    Raises:
        ConfigError: A setting is wrong; ``.key`` names it.

    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        sender: str,
        recipients: Sequence[str] | str,
        username: str | None = None,
        password: str | None = None,
        security: Security = "starttls",
        timeout: float = 10,
        ssl_context: ssl.SSLContext | None = None,
        incident_url: str | None = None,
        name: str = "email",
    ) -> None:
        if not isinstance(host, str) or not host or any(c.isspace() for c in host):
            raise ConfigError("host", f"expected an SMTP host name, got {host!r}")
        if security not in _DEFAULT_PORTS:
            raise ConfigError("security", f"must be 'starttls', 'ssl' or 'none', got {security!r}")
        if port is None:
            port = _DEFAULT_PORTS[security]
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError("port", f"must be a TCP port (1-65535), got {port!r}")
        if (username is None) != (password is None):
            raise ConfigError("password", "give username and password together, or neither")
        if password is not None and security == "none":
            raise ConfigError(
                "security",
                "refusing to send the SMTP password over an unencrypted connection; "
                "use security='starttls' or 'ssl'",
            )
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise ConfigError(
                "ssl_context", f"expected an ssl.SSLContext, got {type(ssl_context).__name__}"
            )
        self.host = host
        self.port = port
        self.sender = _check_address(sender, "sender")
        if isinstance(recipients, str):
            recipients = [recipients]
        if not isinstance(recipients, Sequence):
            raise ConfigError(
                "recipients", f"expected a list of addresses, got {type(recipients).__name__}"
            )
        self.recipients = tuple(_check_address(r, "recipients") for r in recipients)
        if not self.recipients:
            raise ConfigError("recipients", "name at least one address")
        self.username = username
        self._password = Secret(password) if password is not None else None
        self.security: Security = security
        self.timeout = check_timeout(timeout)
        self.incident_url = check_incident_url(incident_url)
        self.name = check_name(name)
        self._ssl_context = (
            None if security == "none" else ssl_context or ssl.create_default_context()
        )
        self._domain = self.sender.rpartition("@")[2]

    def message(self, notification: Notification) -> EmailMessage:
        """The email this notifier sends for ``notification``.

        User text in a header stays text (see ``_header_text``); should any
        header still serialize as more than itself, this raises a DeliveryError
        that is not retryable instead of building the message.
        """
        event, incident = notification.event, notification.incident
        link = incident_link(self.incident_url, incident)
        message = EmailMessage()
        # The title is user text, possibly from an alert: it must not add a header.
        message["Subject"] = _header_text(headline(notification))
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Date"] = format_datetime(event.at)
        message["Message-ID"] = self._message_id(notification.id)
        if event.seq > 1:
            thread = self._message_id(f"{event.incident_id}:1")
            message["In-Reply-To"] = thread
            message["References"] = thread
        message["Auto-Submitted"] = "auto-generated"
        message["X-Incidentflow-Id"] = _header_text(notification.id)
        message["X-Incidentflow-Event"] = _header_text(event.type)
        message["X-Incidentflow-Severity"] = incident.severity.value
        _check_headers(message, self.name, notification.id)

        facts = [
            ("Incident", incident.id),
            ("Title", one_line(incident.title)),
            ("Severity", incident.severity.label),
            ("State", incident.state.value),
            ("Commander", one_line(incident.commander, 80)),
            ("Declared", utc_text(incident.declared_at)),
        ]
        facts += details(notification)
        what = summary(notification)
        update = update_text(notification)
        width = max(len(label) for label, _ in facts) + 2
        text = [headline(notification), "", what + ".", ""]
        if update is not None:
            text += [f"    {line}" if line else "" for line in update.splitlines()] + [""]
        text += [f"{label + ':':<{width}}{value}" for label, value in facts]
        if link is not None:
            text.append(f"{'Link:':<{width}}{link}")
        text += ["", "-- ", f"Sent by incidentflow; notification {notification.id}."]
        message.set_content("\n".join(text) + "\n")

        rows = "".join(
            f'<tr><th align="left">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>'
            for label, value in facts
        )
        title = html.escape(f"{incident.id}: {one_line(incident.title)}")
        quote = ""
        if update is not None:
            lines = "<br>\n".join(html.escape(line) for line in update.splitlines())
            quote = f"<blockquote>{lines}</blockquote>\n"
        if link is not None:
            title = f'<a href="{html.escape(link)}">{title}</a>'
        page = (
            "<!DOCTYPE html>\n<html><body>\n"
            f"<h2>{title}</h2>\n"
            f"<p>{html.escape(what)}.</p>\n"
            f"{quote}"
            f"<table>{rows}</table>\n"
            f"<p><small>Sent by incidentflow; notification "
            f"{html.escape(notification.id)}.</small></p>\n"
            "</body></html>\n"
        )
        message.add_alternative(page, subtype="html")
        return message

    def notify(self, notification: Notification) -> None:
        """Send the email; DeliveryError if the server cannot be reached or refuses it."""
        message = self.message(notification)
        try:
            self._send(message)
        except smtplib.SMTPSenderRefused as exc:
            failure = _Failure(
                f"the server refused the sender {self.sender}: {_reply(exc)}",
                retryable=_temporary(exc.smtp_code),
                status=exc.smtp_code,
            )
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            refused = ", ".join(sorted(exc.recipients))
            failure = _Failure(
                f"the server refused every recipient ({refused})",
                retryable=all(_temporary(code) for code in codes),
                status=codes[0] if codes else None,
            )
        except smtplib.SMTPAuthenticationError as exc:
            failure = _Failure(
                f"the server rejected the credentials of {self.username!r}: {_reply(exc)}",
                retryable=False,
                status=exc.smtp_code,
            )
        except smtplib.SMTPNotSupportedError as exc:
            failure = _Failure(
                f"{self.host}:{self.port} does not support what the settings need "
                f"({self._describe(exc)}); check security={self.security!r}",
                retryable=False,
            )
        except smtplib.SMTPResponseException as exc:
            failure = _Failure(
                f"{self.host}:{self.port} answered {_reply(exc)}",
                retryable=_temporary(exc.smtp_code),
                status=exc.smtp_code,
            )
        except ssl.SSLCertVerificationError as exc:
            failure = _Failure(
                f"the certificate of {self.host} is not trusted ({exc.verify_message}); "
                "pass an ssl_context that trusts it",
                retryable=False,
            )
        except (smtplib.SMTPException, OSError) as exc:
            failure = _Failure(
                f"could not reach {self.host}:{self.port} ({self._describe(exc)})", retryable=True
            )
        except Exception as exc:
            failure = _Failure(
                f"could not send through {self.host}:{self.port} ({self._describe(exc)})",
                retryable=False,
            )
        else:
            return
        # Raised outside the except clauses: smtplib's frames hold the password.
        raise DeliveryError(
            self.name,
            notification.id,
            failure.message,
            retryable=failure.retryable,
            status=failure.status,
        )

    def _send(self, message: EmailMessage) -> None:
        smtp: smtplib.SMTP
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self._ssl_context
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.security == "starttls":
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
                smtp.starttls(context=self._ssl_context)
                smtp.ehlo()
            if self.username is not None and self._password is not None:
                smtp.login(self.username, self._password.reveal())
            refused = smtp.send_message(message, self.sender, list(self.recipients))
        if refused:
            logger.warning(
                "{}: the server refused some recipients of {}: {}",
                self.name,
                message["X-Incidentflow-Id"],
                ", ".join(sorted(refused)),
            )

    def _message_id(self, notification_id: str) -> str:
        local = _NOT_ATEXT.sub("-", notification_id.replace(":", "."))
        return f"<incidentflow.{local}@{self._domain}>"

    def _describe(self, exc: BaseException) -> str:
        secrets = [self._password.reveal()] if self._password is not None else []
        text = scrub(str(exc), secrets)
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    def close(self) -> None:
        """Nothing to release: each delivery opens and closes its own connection."""

    def __repr__(self) -> str:
        login = f", username={self.username!r}, password='***'" if self.username is not None else ""
        return (
            f"EmailNotifier(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"sender={self.sender!r}, recipients={list(self.recipients)!r}{login}, "
            f"name={self.name!r})"
        )


class _Failure:
    __slots__ = ("message", "retryable", "status")

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        self.message = message
        self.retryable = retryable
        self.status = status


def _temporary(code: int) -> bool:
    """SMTP 4xx replies are temporary failures: worth another attempt later."""
    return 400 <= code < 500


def _reply(exc: smtplib.SMTPResponseException) -> str:
    error = exc.smtp_error
    text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
    return f"{exc.smtp_code} {one_line(text, 200)}"


def _header_text(text: str) -> str:
    r"""``text`` made safe to put in a header: one line, nothing a mail reader decodes.

    Control characters and line breaks become spaces, and ``=?`` becomes ``= ?``:
    an RFC 2047 encoded word (``=?utf-8?q?=0D=0ABcc=3A_...?=``) in user text would
    otherwise be decoded, by the email package as the header is set or by the
    reader's mail client, into characters the text never showed, such as a line
    break followed by a ``Bcc:`` header.

    >>> _header_text("Down =?utf-8?q?x=0D=0ABcc=3A_a=40b?=\r\nX-Evil: 1")
    'Down = ?utf-8?q?x=0D=0ABcc=3A_a=40b?= X-Evil: 1'
    """
    return one_line(_CONTROL.sub(" ", text), limit=998).replace("=?", "= ?")


def _check_headers(message: EmailMessage, notifier: str, notification_id: str) -> None:
    """DeliveryError unless every header of ``message`` serializes as that one header."""
    linesep = message.policy.linesep
    for name, value in message.items():
        folded = message.policy.fold(name, value)
        if folded.endswith(linesep):
            folded = folded[: -len(linesep)]
        if _UNFOLDED_BREAK.search(folded) or folded.endswith(("\r", "\n")):
            raise DeliveryError(
                notifier,
                notification_id,
                f"refusing to send: its {name} header would break into further header "
                "lines; report this as a bug in incidentflow",
                retryable=False,
            )


def _check_address(address: object, key: str) -> str:
    if not isinstance(address, str):
        raise ConfigError(key, f"expected an email address, got {type(address).__name__}")
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, IndexError) as exc:
        raise ConfigError(key, f"{address!r} is not an email address ({exc})") from None
    if not parsed.username or not parsed.domain:
        raise ConfigError(key, f"{address!r} is not an email address (user@domain)")
    return address
