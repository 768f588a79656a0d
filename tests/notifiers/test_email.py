"""EmailNotifier against a real SMTP server (aiosmtpd on 127.0.0.1): content, TLS, failures."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import attrs
import pytest
from notifier_servers import SMTP_PASSWORD, SMTP_USER, SmtpServer, Tls

from incidentflow import ConfigError, IncidentFlow
from incidentflow.notifiers import DeliveryError, EmailNotifier, Notification
from incidentflow.testing import FrozenClock

pytest.importorskip("aiosmtpd", reason="the email tests need aiosmtpd: pip install -e '.[dev]'")

SENDER = "incidents@ops.example"
RECIPIENTS = ["oncall@ops.example", "sre-leads@ops.example"]


def plain(server: SmtpServer, **options: Any) -> EmailNotifier:
    """An EmailNotifier for ``server`` without TLS."""
    options.setdefault("sender", SENDER)
    options.setdefault("recipients", RECIPIENTS)
    return EmailNotifier(server.host, server.port, security="none", timeout=5, **options)


def parts(message: EmailMessage) -> dict[str, str]:
    """The text/plain and text/html bodies of a multipart/alternative message."""
    assert message.get_content_type() == "multipart/alternative"
    found = {}
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        found[part.get_content_type()] = part.get_content()
    return found


class TestMessage:
    """One multipart message per event: subject, threading headers, both bodies."""

    def test_delivered_through_smtp(self, smtp: SmtpServer, notification: Notification) -> None:
        """The server receives it from the sender, for every recipient, with both bodies."""
        with plain(smtp) as email:
            email.notify(notification)
        (delivered,) = smtp.handler.messages
        incident = notification.incident
        assert delivered.mail_from == SENDER
        assert delivered.rcpt_tos == RECIPIENTS
        message = delivered.message
        # A folded Subject unfolds with the fold's space in front; mail clients strip it.
        assert message["Subject"].strip() == f"[P1] {incident.id} resolved: Checkout returns 500"
        assert message["From"] == SENDER
        assert message["To"] == ", ".join(RECIPIENTS)
        assert message["X-Incidentflow-Id"] == notification.id
        assert message["X-Incidentflow-Event"] == "resolved"
        assert message["X-Incidentflow-Severity"] == "P1"
        assert message["Auto-Submitted"] == "auto-generated"
        assert parsedate_to_datetime(message["Date"]) == notification.event.at
        bodies = parts(message)
        assert set(bodies) == {"text/plain", "text/html"}
        assert "alice resolved the incident." in bodies["text/plain"]
        assert "Commander: alice" in " ".join(bodies["text/plain"].split())
        assert "<p>alice resolved the incident.</p>" in bodies["text/html"]

    def test_message_id_is_stable(self, smtp: SmtpServer, notification: Notification) -> None:
        """Sending the same notification twice gives the same Message-ID (duplicates drop)."""
        with plain(smtp) as email:
            email.notify(notification)
            email.notify(notification)
        first, second = (d.message["Message-ID"] for d in smtp.handler.messages)
        local = notification.id.replace(":", ".")
        assert first == second == f"<incidentflow.{local}@ops.example>"

    def test_messages_of_an_incident_thread(self, notifications: list[Notification]) -> None:
        """Every message after the declaration refers to the declaration's Message-ID."""
        email = EmailNotifier("127.0.0.1", sender=SENDER, recipients=RECIPIENTS)
        first, *rest = (email.message(n) for n in notifications)
        assert first["In-Reply-To"] is None
        assert {m["In-Reply-To"] for m in rest} == {first["Message-ID"]}
        assert {m["References"] for m in rest} == {first["Message-ID"]}
        assert len({m["Message-ID"] for m in [first, *rest]}) == len(notifications)

    def test_user_text_is_escaped_in_html(self, notification: Notification) -> None:
        """Markup in user text is shown, not run, in the HTML body; the text body keeps it."""
        title = "<script>alert('x')</script> & <b>bold</b>"
        incident = attrs.evolve(notification.incident, title=title, commander="<img src=x>")
        message = EmailNotifier("127.0.0.1", sender=SENDER, recipients=RECIPIENTS).message(
            attrs.evolve(notification, incident=incident)
        )
        bodies = parts(message)
        assert "<script>" not in bodies["text/html"]
        assert "<img" not in bodies["text/html"]
        assert (
            "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;"
            in bodies["text/html"]
        )
        assert title in bodies["text/plain"]

    def test_subject_cannot_inject_headers(self, notification: Notification) -> None:
        """A title with line breaks stays on one Subject line; no header is added."""
        incident = attrs.evolve(notification.incident, title="Down\r\nBcc: attacker@evil.example")
        message = EmailNotifier("127.0.0.1", sender=SENDER, recipients=RECIPIENTS).message(
            attrs.evolve(notification, incident=incident)
        )
        assert message["Bcc"] is None
        assert message["Subject"].endswith("resolved: Down Bcc: attacker@evil.example")
        assert b"\nBcc:" not in message.as_bytes()

    def test_link_to_the_incident(self, notification: Notification) -> None:
        """With incident_url, both bodies link to the incident."""
        email = EmailNotifier(
            "127.0.0.1",
            sender=SENDER,
            recipients="oncall@ops.example",
            incident_url="https://ops.example/incidents/{id}",
        )
        bodies = parts(email.message(notification))
        link = f"https://ops.example/incidents/{notification.incident.id}"
        assert "Link:" in bodies["text/plain"]
        assert link in bodies["text/plain"]
        assert f'<a href="{link}">' in bodies["text/html"]

    def test_through_a_flow(self, smtp: SmtpServer, clock: FrozenClock) -> None:
        """A flow with an EmailNotifier sends one message per event, in order."""
        with plain(smtp) as email:
            flow = IncidentFlow.in_memory(clock=clock, notifiers=[email])
            inc = flow.declare("Search is slow", severity="P3", commander="carol", actor="carol")
            flow.start_triage(inc.id, actor="carol")
        subjects = [d.message["Subject"].strip() for d in smtp.handler.messages]
        assert subjects == [
            f"[P3] {inc.id} declared: Search is slow",
            f"[P3] {inc.id} triage started: Search is slow",
        ]

    def test_concurrent_sends(self, smtp: SmtpServer, notification: Notification) -> None:
        """20 notify calls from 8 threads through one notifier: 20 messages."""
        copies = [attrs.evolve(notification, id=f"{notification.id}-{i}") for i in range(20)]
        with plain(smtp) as email, ThreadPoolExecutor(max_workers=8) as pool:
            assert list(pool.map(email.notify, copies)) == [None] * 20
        ids = {d.message["X-Incidentflow-Id"] for d in smtp.handler.messages}
        assert ids == {c.id for c in copies}


class TestFailures:
    """Refusals and unreachable servers raise DeliveryError, saying whether to retry."""

    def test_sender_refused(self, smtp: SmtpServer, notification: Notification) -> None:
        """A 5xx to MAIL FROM is permanent: not retryable, and the sender is named."""
        smtp.handler.refuse_senders[SENDER] = "550 5.7.1 Sender not allowed"
        with plain(smtp) as email, pytest.raises(DeliveryError) as caught:
            email.notify(notification)
        error = caught.value
        assert error.retryable is False
        assert error.status == 550
        assert f"refused the sender {SENDER}" in str(error)
        assert "Sender not allowed" in str(error)
        assert smtp.handler.messages == []

    def test_sender_deferred(self, smtp: SmtpServer, notification: Notification) -> None:
        """A 4xx to MAIL FROM is temporary: retryable."""
        smtp.handler.refuse_senders[SENDER] = "451 4.3.0 Try again later"
        with plain(smtp) as email, pytest.raises(DeliveryError) as caught:
            email.notify(notification)
        assert caught.value.retryable is True
        assert caught.value.status == 451

    def test_connection_refused(self, closed_port: int, notification: Notification) -> None:
        """Nobody listening: retryable, naming host and port."""
        email = EmailNotifier(
            "127.0.0.1", closed_port, sender=SENDER, recipients=RECIPIENTS, security="none"
        )
        with pytest.raises(DeliveryError) as caught:
            email.notify(notification)
        assert caught.value.retryable is True
        assert f"could not reach 127.0.0.1:{closed_port}" in str(caught.value)
        assert "ConnectionRefusedError" in str(caught.value)

    def test_silent_server_times_out(self, notification: Notification) -> None:
        """A server that accepts but never greets: retryable once the timeout passes."""
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            email = EmailNotifier(
                "127.0.0.1", port, sender=SENDER, recipients=RECIPIENTS, security="none",
                timeout=0.3,
            )  # fmt: skip
            started = time.monotonic()
            with pytest.raises(DeliveryError) as caught:
                email.notify(notification)
        assert caught.value.retryable is True
        assert time.monotonic() - started < 60  # the timeout ended it; no hang

    def test_starttls_not_offered(self, smtp: SmtpServer, notification: Notification) -> None:
        """security='starttls' against a server without STARTTLS: refused, not retryable."""
        email = EmailNotifier(smtp.host, smtp.port, sender=SENDER, recipients=RECIPIENTS)
        with pytest.raises(DeliveryError, match="STARTTLS") as caught:
            email.notify(notification)
        assert caught.value.retryable is False
        assert smtp.handler.messages == []


class TestTls:
    """STARTTLS and implicit TLS with a certificate made at test time, and logging in."""

    @pytest.fixture
    def starttls(self, smtp_factory: Callable[..., SmtpServer], tls: Tls) -> SmtpServer:
        return smtp_factory(tls_context=tls.server_context(), require_starttls=True)

    def test_starttls_and_login(
        self, starttls: SmtpServer, tls: Tls, notification: Notification
    ) -> None:
        """The connection is upgraded before logging in; the server sees TLS and the user."""
        with EmailNotifier(
            starttls.host,
            starttls.port,
            sender=SENDER,
            recipients=RECIPIENTS,
            username=SMTP_USER,
            password=SMTP_PASSWORD,
            ssl_context=tls.client_context(),
        ) as email:
            email.notify(notification)
        (delivered,) = starttls.handler.messages
        assert delivered.tls is True
        assert delivered.login == SMTP_USER

    def test_wrong_password(
        self, starttls: SmtpServer, tls: Tls, notification: Notification
    ) -> None:
        """Rejected credentials: not retryable; the user is named, the password is not."""
        email = EmailNotifier(
            starttls.host,
            starttls.port,
            sender=SENDER,
            recipients=RECIPIENTS,
            username=SMTP_USER,
            password="wrong-" + SMTP_PASSWORD,
            ssl_context=tls.client_context(),
        )
        with pytest.raises(DeliveryError) as caught:
            email.notify(notification)
        assert caught.value.retryable is False
        assert caught.value.status == 535
        assert SMTP_USER in str(caught.value)
        assert SMTP_PASSWORD not in str(caught.value)
        assert SMTP_PASSWORD not in repr(caught.value)

    def test_untrusted_certificate(self, starttls: SmtpServer, notification: Notification) -> None:
        """The default context refuses a self-signed certificate: not retryable, says why."""
        email = EmailNotifier(starttls.host, starttls.port, sender=SENDER, recipients=RECIPIENTS)
        with pytest.raises(DeliveryError, match=r"certificate of 127\.0\.0\.1 is not") as caught:
            email.notify(notification)
        assert caught.value.retryable is False
        assert starttls.handler.messages == []

    def test_implicit_tls(
        self, smtp_factory: Callable[..., SmtpServer], tls: Tls, notification: Notification
    ) -> None:
        """security='ssl' speaks TLS from the first byte."""
        # aiosmtpd does not count implicit TLS as TLS for AUTH; it is, so allow AUTH.
        server = smtp_factory(ssl_context=tls.server_context(), auth_require_tls=False)
        with EmailNotifier(
            server.host,
            server.port,
            sender=SENDER,
            recipients=RECIPIENTS,
            security="ssl",
            username=SMTP_USER,
            password=SMTP_PASSWORD,
            ssl_context=tls.client_context(),
        ) as email:
            email.notify(notification)
        (delivered,) = server.handler.messages
        assert delivered.login == SMTP_USER


class TestConfiguration:
    """Wrong settings fail at construction with ConfigError naming the key."""

    @pytest.mark.parametrize(
        ("options", "key"),
        [
            ({"host": ""}, "host"),
            ({"host": "smtp example"}, "host"),
            ({"port": 0}, "port"),
            ({"port": 70000}, "port"),
            ({"port": "25"}, "port"),
            ({"security": "tls"}, "security"),
            ({"sender": "not an address"}, "sender"),
            ({"sender": "ops@example\nBcc: x@y"}, "sender"),
            ({"recipients": []}, "recipients"),
            ({"recipients": ["ok@example", "nope"]}, "recipients"),
            ({"recipients": 42}, "recipients"),
            ({"username": "ops"}, "password"),
            ({"password": "pa55word-s3cret"}, "password"),
            ({"username": "ops", "password": "pa55word-s3cret", "security": "none"}, "security"),
            ({"timeout": 0}, "timeout"),
            ({"ssl_context": "yes"}, "ssl_context"),
            ({"incident_url": "https://ops.example/incidents"}, "incident_url"),
        ],
    )
    def test_bad_setting(self, options: dict[str, Any], key: str) -> None:
        """Each wrong setting names its key."""
        settings: dict[str, Any] = {
            "host": "smtp.example",
            "sender": SENDER,
            "recipients": RECIPIENTS,
        }
        settings.update(options)
        with pytest.raises(ConfigError) as caught:
            EmailNotifier(**settings)
        assert caught.value.key == key
        if "password" in options:
            assert options["password"] not in str(caught.value)

    @pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("ssl", 465), ("none", 25)])
    def test_default_ports(self, security: Any, port: int) -> None:
        """Without a port, the standard one for the security mode."""
        email = EmailNotifier(
            "smtp.example", sender=SENDER, recipients="a@b.example", security=security
        )
        assert email.port == port

    def test_repr_hides_the_password(self) -> None:
        """repr shows where and as whom it sends, never the password."""
        email = EmailNotifier(
            "smtp.example",
            sender=SENDER,
            recipients=["a@b.example"],
            username="ops",
            password=SMTP_PASSWORD,
        )
        assert repr(email) == (
            "EmailNotifier(host='smtp.example', port=587, security='starttls', "
            "sender='incidents@ops.example', recipients=['a@b.example'], username='ops', "
            "password='***', name='email')"
        )
        assert str(email) == repr(email)


class TestCoordination:
    """A status update arrives whole, with its audience and when the next one is due."""

    def test_a_status_update_email(
        self, smtp: SmtpServer, coordination: dict[str, Notification]
    ) -> None:
        """Both bodies hold every line of the update; the HTML escapes it."""
        notification = coordination["update"]
        with plain(smtp) as email:
            email.notify(notification)
        (delivered,) = smtp.handler.messages
        bodies = parts(delivered.message)
        text = bodies["text/plain"].replace("\r\n", "\n")
        assert (
            "    Checkout fails for some cards.\n    <!channel> Next: failover & retry.\n" in text
        )
        due = notification.event.at + timedelta(minutes=30)
        assert f"Next update due: {due:%Y-%m-%d %H:%M} UTC" in " ".join(text.split())
        assert "Audience: external" in " ".join(text.split())
        assert (
            "<blockquote>Checkout fails for some cards.<br>\n"
            "&lt;!channel&gt; Next: failover &amp; retry.</blockquote>"
        ) in bodies["text/html"].replace("\r\n", "\n")

    def test_a_handoff_email(self, coordination: dict[str, Notification]) -> None:
        """A handover says who handed which role to whom, and lists role, from and to."""
        message = EmailNotifier("127.0.0.1", sender=SENDER, recipients=RECIPIENTS).message(
            coordination["handoff"]
        )
        text = " ".join(parts(message)["text/plain"].split())
        assert "dana handed over communications_lead: dana → erin (dana is off <shift>)." in text
        assert "Role: communications_lead From: dana To: erin" in text
        assert "&lt;shift&gt;" in parts(message)["text/html"]
