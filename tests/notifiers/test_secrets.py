"""Secrets never show: not in reprs, not in errors, not in the logs, whatever fails."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator

import pytest
from loguru import logger
from notifier_servers import (
    SECRET_TOKEN,
    SIGNING_SECRET,
    SMTP_PASSWORD,
    SMTP_USER,
    HttpReceiver,
    SmtpServer,
    Tls,
)

from helpers import drive_to
from incidentflow import IncidentFlow
from incidentflow.notifiers import (
    DeliveryError,
    EmailNotifier,
    Notification,
    Notifier,
    SlackNotifier,
    WebhookNotifier,
)
from incidentflow.notifiers._secrets import Secret, redact_url, scrub
from incidentflow.testing import FrozenClock

HEADER_TOKEN = "Bearer hdr-t0ken-s3cret"
URL_PASSWORD = "url-pa55-s3cret"
#: Everything that must never be printed. (The Basic header is base64 of user:URL_PASSWORD.)
SECRETS = [
    "s3cretPathToken",
    "B0002",
    SECRET_TOKEN,
    SIGNING_SECRET,
    SMTP_PASSWORD,
    HEADER_TOKEN,
    "hdr-t0ken-s3cret",
    URL_PASSWORD,
    "aG9vazp1cmwtcGE1NS1zM2NyZXQ",
]


def assert_no_secret(text: str) -> None:
    leaked = [secret for secret in SECRETS if secret in text]
    assert leaked == [], f"secrets leaked: {leaked}"


class TestRedactUrl:
    """redact_url keeps what identifies the receiver and hides what authenticates to it."""

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            (
                "https://hooks.slack.com/services/T000/B000/XXXX",
                "https://hooks.slack.com/services/***",
            ),
            ("https://ops.example/hook?token=abc&x=1", "https://ops.example/***?token=***&x=***"),
            ("https://user:pw@ops.example:8443/", "https://***@ops.example:8443"),
            ("https://token@ops.example", "https://***@ops.example"),
            ("http://127.0.0.1:8080/api/webhooks/123/tok#frag", "http://127.0.0.1:8080/api/***"),
            ("http://[::1]:9000/a/b", "http://[::1]:9000/a/***"),
            ("https://ops.example", "https://ops.example"),
            ("ops.example/hook", "***"),
            ("http://ops.example:notaport/x", "***"),
        ],
    )
    def test_redacts(self, url: str, shown: str) -> None:
        """User info, query values, fragment and all but the first path segment are hidden."""
        assert redact_url(url) == shown

    def test_scrub(self) -> None:
        """scrub replaces every occurrence of every secret."""
        assert scrub("a s3 b s3 c k", ["s3", "k"]) == "a *** b *** c ***"

    def test_secret_box(self) -> None:
        """A boxed secret prints as the mask, and gives its value only when asked."""
        box = Secret("hunter2")
        assert repr(box) == str(box) == f"{box!r}" == "'***'"
        assert box.reveal() == "hunter2"


def secret_url(receiver_or_port: HttpReceiver | int) -> str:
    """A receiver URL with a password, a secret path and a query token."""
    if isinstance(receiver_or_port, int):
        base = f"http://hook:{URL_PASSWORD}@127.0.0.1:{receiver_or_port}"
        return f"{base}/hooks/T0001/B0002/s3cretPathToken?token={SECRET_TOKEN}"
    return receiver_or_port.url.replace("http://", f"http://hook:{URL_PASSWORD}@")


class TestReprs:
    """repr and str of every notifier show no secret."""

    def test_webhook(self, receiver: HttpReceiver) -> None:
        """URL redacted, secret masked, header names only."""
        with WebhookNotifier(
            secret_url(receiver), secret=SIGNING_SECRET, headers={"Authorization": HEADER_TOKEN}
        ) as hook:
            text = repr(hook)
            assert str(hook) == text
        assert_no_secret(text)
        assert text == (
            f"WebhookNotifier(url='http://***@127.0.0.1:{receiver.port}/hooks/***?token=***', "
            "name='webhook', timeout=5, secret='***', headers=['Authorization'])"
        )

    def test_slack(self, receiver: HttpReceiver) -> None:
        """The path and credentials are hidden."""
        with SlackNotifier(secret_url(receiver)) as slack:
            assert_no_secret(repr(slack))
            assert_no_secret(str(slack))

    def test_email(self) -> None:
        """The password is masked."""
        email = EmailNotifier(
            "smtp.example", sender="a@b.example", recipients="c@d.example",
            username=SMTP_USER, password=SMTP_PASSWORD,
        )  # fmt: skip
        assert_no_secret(repr(email))
        assert_no_secret(str(email))
        assert_no_secret(repr(vars(email)))


@pytest.fixture
def log_output() -> Iterator[list[str]]:
    """Everything loguru writes, tracebacks with variable values included (diagnose=True)."""
    logger.enable("incidentflow")
    out: list[str] = []
    sink = logger.add(
        out.append,
        level="DEBUG",
        format="{level} {name} {message}\n{exception}",
        backtrace=True,
        diagnose=True,
        colorize=False,
    )
    yield out
    logger.remove(sink)


@pytest.fixture
def failing_notifiers(
    receiver: HttpReceiver,
    closed_port: int,
    smtp_factory: Callable[..., SmtpServer],
    tls: Tls,
) -> Iterator[list[Notifier]]:
    """A webhook, a Slack hook and an email notifier, each failing its own way."""
    # The receiver echoes its own secret URL back, as a careless error page might.
    receiver.answer_with(500, f"bad request to {receiver.url}".encode())
    server = smtp_factory(tls_context=tls.server_context())
    notifiers: list[Notifier] = [
        WebhookNotifier(
            secret_url(receiver),
            secret=SIGNING_SECRET,
            headers={"Authorization": HEADER_TOKEN},
            timeout=2,
            name="paging",
        ),
        SlackNotifier(secret_url(closed_port), timeout=2),
        EmailNotifier(
            server.host, server.port, sender="incidents@ops.example",
            recipients="oncall@ops.example", username=SMTP_USER,
            password="x" + SMTP_PASSWORD, ssl_context=tls.client_context(), timeout=5,
        ),
    ]  # fmt: skip
    yield notifiers
    for notifier in notifiers:
        notifier.close()


class TestFailuresDoNotLeak:
    """Delivering to failing receivers prints no secret: errors, logs, tracebacks."""

    def test_errors(self, failing_notifiers: list[Notifier], notification: Notification) -> None:
        """str and repr of each DeliveryError are clean, and still say what failed."""
        for notifier in failing_notifiers:
            with pytest.raises(DeliveryError) as caught:
                notifier.notify(notification)
            assert_no_secret(str(caught.value))
            assert_no_secret(repr(caught.value))
            assert notifier.name in str(caught.value)

    def test_loguru_output_with_tracebacks(
        self,
        failing_notifiers: list[Notifier],
        notification: Notification,
        log_output: list[str],
        clock: FrozenClock,
    ) -> None:
        """A flow delivering to them logs the failures; the logs, tracebacks included, are clean."""
        flow = IncidentFlow.in_memory(clock=clock, notifiers=failing_notifiers)
        drive_to(flow, clock, "triaging")
        for notifier in failing_notifiers:
            try:
                notifier.notify(notification)
            except DeliveryError:
                logger.opt(exception=True).error("delivery through {!r} failed", notifier)
        text = "".join(log_output)
        assert "could not deliver" in text
        assert "Traceback" in text
        assert_no_secret(text)

    def test_standard_logging(
        self,
        failing_notifiers: list[Notifier],
        notification: Notification,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """httpx, httpcore and smtplib log nothing secret, even at DEBUG."""
        caplog.set_level(logging.DEBUG)
        for notifier in failing_notifiers:
            with pytest.raises(DeliveryError):
                notifier.notify(notification)
        assert_no_secret(caplog.text)

    def test_what_the_receiver_echoes_is_scrubbed(
        self, failing_notifiers: list[Notifier], notification: Notification
    ) -> None:
        """The receiver's answer quotes the secret URL; the error shows it masked."""
        with pytest.raises(DeliveryError) as caught:
            failing_notifiers[0].notify(notification)
        assert "bad request to http://127.0.0.1:" in str(caught.value)
        assert "/hooks/***" in str(caught.value)


class TestLightImports:
    """Importing the notifiers loads neither httpx nor smtplib until one is used."""

    def run(self, code: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return result.stdout.strip()

    def test_package_import(self) -> None:
        """import incidentflow.notifiers, and the receiver's verify_signature, stay light."""
        out = self.run(
            """
            import sys
            import incidentflow.notifiers
            from incidentflow.notifiers import verify_signature, WEBHOOK_SCHEMA
            print(sorted(m for m in ("httpx", "httpcore", "smtplib") if m in sys.modules))
            """
        )
        assert out == "[]"

    def test_httpx_loads_when_a_notifier_is_built(self) -> None:
        """Building a WebhookNotifier is what imports httpx."""
        out = self.run(
            """
            import sys
            from incidentflow.notifiers import WebhookNotifier
            before = "httpx" in sys.modules
            WebhookNotifier("http://127.0.0.1:9/").close()
            print(before, "httpx" in sys.modules)
            """
        )
        assert out == "False True"
