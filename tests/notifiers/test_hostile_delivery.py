"""Hostile receivers, titles and settings: what a delivery must withstand.

Every server here listens on 127.0.0.1: the SMTP server of ``conftest.py``
(aiosmtpd), the recording HTTP receiver, and a receiver below that trickles
its answer a byte at a time.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from notifier_servers import HttpReceiver, SmtpServer

from helpers import COMMANDER
from incidentflow import ConfigError, IncidentFlow
from incidentflow.delivery import DeliveryReport, RetryPolicy, Route
from incidentflow.notifiers import (
    CallbackNotifier,
    DeliveryError,
    EmailNotifier,
    Notification,
    WebhookNotifier,
)
from incidentflow.notifiers import email as email_module
from incidentflow.testing import FrozenClock

SENDER = "incidents@ops.example"
RECIPIENTS = ["oncall@ops.example", "sre-leads@ops.example"]
EXACT = RetryPolicy(jitter=0)


def run_with_hang_guard(call: Callable[[], DeliveryReport], guard: float = 30) -> DeliveryReport:
    """``call()`` in a thread; fails the test if it has not returned after ``guard`` seconds."""
    result: list[DeliveryReport] = []
    worker = threading.Thread(target=lambda: result.append(call()), daemon=True)
    worker.start()
    worker.join(guard)
    assert result, f"still running after {guard} s: the attempt is not bounded by its timeout"
    return result[0]


# -- 1. email: no header from user text ------------------------------------------------------

#: Every header the notifier writes on a declaration, in order: nothing else may appear.
DECLARATION_HEADERS = [
    "Subject",
    "From",
    "To",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "X-Incidentflow-Id",
    "X-Incidentflow-Event",
    "X-Incidentflow-Severity",
    "MIME-Version",
    "Content-Type",
]


def mail_flow(smtp: SmtpServer, clock: FrozenClock) -> IncidentFlow:
    """A flow that mails through ``smtp``, delivering when asked."""
    mail = EmailNotifier(
        smtp.host, smtp.port, sender=SENDER, recipients=RECIPIENTS, security="none", timeout=5
    )
    return IncidentFlow.in_memory(clock=clock, notifiers=[mail], deliver_inline=False, retry=EXACT)


class TestEmailHeaders:
    """A title cannot add a header, nor end the headers early, in the message the server gets."""

    @pytest.mark.parametrize(
        "title",
        [
            "Checkout =?utf-8?q?down=0D=0ABcc=3A_attacker=40evil=2Eexample?= now",
            "DB =?utf-8?q?x=0D=0AReply-To=3A_attacker=40evil=2Eexample?=",
            "DB =?utf-8?q?x=0D=0A=0D=0APlease_reset_your_password_at_http=3A//evil=2Eexample?=",
            "DB =?utf-8?b?eA0KQmNjOiBhdHRhY2tlckBldmlsLmV4YW1wbGU=?= down",
            "DB =?iso-8859-1?q?x=0ABcc=3A_attacker=40evil=2Eexample?= =?utf-8?q?=0D=0A?=",
        ],
        ids=["bcc", "reply-to", "early-body", "base64", "two-words"],
    )
    def test_an_encoded_word_in_the_title_adds_no_header(
        self, smtp: SmtpServer, clock: FrozenClock, title: str
    ) -> None:
        """The server receives exactly the notifier's headers and recipients; the title is text."""
        flow = mail_flow(smtp, clock)
        inc = flow.declare(title, severity="P1", commander=COMMANDER, actor=COMMANDER)
        assert flow.deliver_pending() == DeliveryReport(delivered=1)
        (delivered,) = smtp.handler.messages
        assert delivered.mail_from == SENDER
        assert delivered.rcpt_tos == RECIPIENTS
        message = delivered.message
        assert list(message.keys()) == DECLARATION_HEADERS
        head = delivered.raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
        starts = [line.split(":", 1)[0] for line in head.split("\r\n") if line[:1] not in " \t"]
        assert starts == DECLARATION_HEADERS
        # The title shows as typed, its encoded word broken up (``= ?``) rather than decoded.
        subject = " ".join(str(message["Subject"]).split())
        shown = " ".join(title.replace("=?", "= ?").split())
        assert subject == f"[P1] {inc.id} declared: {shown}"
        assert message["To"] == ", ".join(RECIPIENTS)
        assert message["From"] == SENDER
        assert message.get_content_type() == "multipart/alternative"
        kinds = [part.get_content_type() for part in message.iter_parts()]
        assert kinds == ["text/plain", "text/html"]

    def test_a_header_that_would_break_is_refused(
        self, smtp: SmtpServer, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Should user text ever reach a header unneutralised, the message is not sent at all."""
        monkeypatch.setattr(email_module, "_header_text", lambda text: text)
        flow = mail_flow(smtp, clock)
        flow.declare(
            "Checkout =?utf-8?q?down=0D=0ABcc=3A_attacker=40evil=2Eexample?=",
            severity="P1",
            commander=COMMANDER,
            actor=COMMANDER,
        )
        assert flow.deliver_pending() == DeliveryReport(dead=1)
        assert smtp.handler.messages == []
        [dead] = flow.dead_letters()
        assert "Subject header would break" in dead.last_error


# -- 3. secrets quoted back by a receiver -----------------------------------------------------

TOKEN = "Zq9xTokenVal-" + "4f3e2d1c0b9a" * 5


def leaked_prefix(text: str, secret: str = TOKEN) -> int:
    """How many leading characters of ``secret`` appear in ``text``."""
    return max((k for k in range(1, len(secret) + 1) if secret[:k] in text), default=0)


class TestSecretsInErrors:
    """A receiver that quotes a credential back never gets any part of it into the dead letter."""

    @pytest.mark.parametrize("padding", [100, 130, 150, 160])
    def test_a_quoted_token_straddling_the_cut_is_masked(
        self, receiver: HttpReceiver, clock: FrozenClock, padding: int
    ) -> None:
        """Wherever the 200-character cut falls in the token, none of the token is kept."""
        body = "e" * padding + f" received Authorization: Bearer {TOKEN} (rejected)"
        receiver.answer_with(401, body.encode())
        hook = WebhookNotifier(receiver.url, headers={"Authorization": f"Bearer {TOKEN}"})
        flow = IncidentFlow.in_memory(clock=clock, notifiers=[hook], deliver_inline=False)
        flow.declare("Checkout returns 500", severity="P1", commander=COMMANDER, actor=COMMANDER)
        assert flow.deliver_pending() == DeliveryReport(dead=1)
        [dead] = flow.dead_letters()
        assert "answered 401" in dead.last_error
        assert leaked_prefix(dead.last_error) < 4
        flow.close()

    def test_a_token_after_a_run_of_whitespace_is_masked(
        self, receiver: HttpReceiver, notification: Notification
    ) -> None:
        """Whitespace that the excerpt collapses does not push the token out of the masked text."""
        body = " " * 760 + f"token={TOKEN}"
        receiver.answer_with(403, body.encode())
        hook = WebhookNotifier(receiver.url, headers={"X-Api-Key": TOKEN})
        with hook, pytest.raises(DeliveryError) as caught:
            hook.notify(notification)
        assert "token=***" in str(caught.value)
        assert leaked_prefix(str(caught.value)) < 4

    def test_a_bearer_token_quoted_without_its_scheme_is_masked(
        self, receiver: HttpReceiver, notification: Notification
    ) -> None:
        """The token of ``Authorization: Bearer <token>`` is a secret on its own too."""
        receiver.answer_with(401, f"invalid token {TOKEN}".encode())
        hook = WebhookNotifier(receiver.url, headers={"Authorization": f"Bearer {TOKEN}"})
        with hook, pytest.raises(DeliveryError) as caught:
            hook.notify(notification)
        assert "invalid token ***" in str(caught.value)
        assert leaked_prefix(str(caught.value)) < 4


# -- 4. a receiver that trickles its answer ---------------------------------------------------


class Trickler:
    """An HTTP receiver on 127.0.0.1 that answers slowly, and never finishes.

    It sends ``head`` at once, then ``trickled`` one byte every ``pause``
    seconds, then more body bytes at that pace until it is stopped or the
    client hangs up: each read the client makes gets a byte well within any
    per-read timeout.
    """

    def __init__(self, head: bytes, trickled: bytes = b"", pause: float = 0.2) -> None:
        self.head = head
        self.trickled = trickled
        self.pause = pause
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}/hook"

    def stop(self) -> None:
        self._stop.set()
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)  # the request: small enough to arrive in one read
                conn.sendall(self.head)
                for byte in self.trickled:
                    if self._stop.wait(self.pause):
                        return
                    conn.sendall(bytes([byte]))
                while not self._stop.wait(self.pause):
                    conn.sendall(b"x")
            except OSError:
                return  # the client gave up and closed the connection


@pytest.fixture
def trickler_factory() -> Iterator[Callable[..., Trickler]]:
    """``trickler_factory(head, trickled)``: start a Trickler, stopped after the test."""
    started: list[Trickler] = []

    def start(head: bytes, trickled: bytes = b"") -> Trickler:
        trickler = Trickler(head, trickled)
        started.append(trickler)
        return trickler

    yield start
    for trickler in started:
        trickler.stop()


OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
ERROR_HEAD = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100000\r\n\r\n"


class TestTricklingReceiver:
    """A receiver that keeps sending a byte now and then cannot hold an attempt past ``timeout``."""

    @pytest.mark.parametrize(
        ("head", "trickled", "said"),
        [
            (OK_HEAD, b"", "no complete answer within 1 s (it answered 200"),
            (ERROR_HEAD, b"", "no complete answer within 1 s (it answered 500"),
            (b"", OK_HEAD, "no answer within 1 s"),
        ],
        ids=["body-after-200", "body-after-500", "status-and-headers"],
    )
    def test_the_attempt_times_out_and_is_retried(
        self,
        trickler_factory: Callable[..., Trickler],
        clock: FrozenClock,
        head: bytes,
        trickled: bytes,
        said: str,
    ) -> None:
        """The failed attempt is recorded as timed out, and the item waits for its retry."""
        trickler = trickler_factory(head, trickled)
        hook = WebhookNotifier(trickler.url, timeout=1, name="hook")
        flow = IncidentFlow.in_memory(
            clock=clock, notifiers=[hook], deliver_inline=False, retry=EXACT
        )
        flow.declare("Checkout returns 500", severity="P1", commander=COMMANDER, actor=COMMANDER)
        started = time.monotonic()
        report = run_with_hang_guard(flow.deliver_pending)
        assert time.monotonic() - started < 15  # only catches a hang, not a slow machine
        assert report == DeliveryReport(retrying=1)
        [item] = flow.store.pending()
        assert item.attempts == 1
        assert item.last_error is not None
        assert said in item.last_error
        assert item.next_attempt_at == clock() + timedelta(seconds=5)
        flow.close()


# -- 5 and 6. settings that cannot work are refused when built --------------------------------


class TestRetryPolicySettings:
    """A retry policy that would crash delivery later is a ConfigError now."""

    @pytest.mark.parametrize("multiplier", [float("nan"), float("inf")])
    def test_a_multiplier_that_is_not_a_finite_number(self, multiplier: float) -> None:
        """NaN slips through ``< 1``; infinity is no multiplier either."""
        with pytest.raises(ConfigError) as caught:
            RetryPolicy(multiplier=multiplier)
        assert caught.value.key == "retry.multiplier"

    def test_a_delay_no_date_can_take(self) -> None:
        """Three million days cannot be added to any date: max_delay names the limit."""
        huge = timedelta(days=3_000_000)
        with pytest.raises(ConfigError, match="365 days") as caught:
            RetryPolicy(first_delay=huge, max_delay=huge)
        assert caught.value.key == "retry.max_delay"

    def test_the_next_attempt_saturates_at_the_end_of_time(self) -> None:
        """Even the longest delay, near the year 9999, schedules a retry instead of crashing."""
        clock = FrozenClock(datetime(9999, 6, 1, tzinfo=UTC))
        longest = timedelta(days=365)

        def refuse(notification: Notification) -> None:
            raise ConnectionError("receiver down")

        flow = IncidentFlow.in_memory(
            clock=clock,
            notifiers=[CallbackNotifier(refuse, name="chat")],
            deliver_inline=False,
            retry=RetryPolicy(first_delay=longest, max_delay=longest, jitter=0),
        )
        flow.declare("Checkout returns 500", severity="P1", commander=COMMANDER, actor=COMMANDER)
        assert flow.deliver_pending() == DeliveryReport(retrying=1)
        [item] = flow.store.pending()
        assert item.attempts == 1
        assert item.next_attempt_at == datetime.max.replace(tzinfo=UTC)


class TestRouteSettings:
    """A badly typed route is a ConfigError naming the setting, not a TypeError."""

    @pytest.mark.parametrize(
        ("options", "key"),
        [
            ({"severities": 5}, "routes.severities"),
            ({"severities": 1.5}, "routes.severities"),
            ({"events": 5}, "routes.events"),
            ({"events": [["declared"]]}, "routes.events"),
            ({"restricted": "false"}, "routes.restricted"),
        ],
    )
    def test_wrong_types(self, options: dict[str, object], key: str) -> None:
        """Numbers, nested lists or a string for a flag: refused, naming the key."""
        with pytest.raises(ConfigError) as caught:
            Route("chat", **options)  # type: ignore[arg-type]
        assert caught.value.key == key

    def test_a_notifier_name_that_is_not_text(self) -> None:
        """The notifier is named by a string."""
        with pytest.raises(ConfigError) as caught:
            Route(5)  # type: ignore[arg-type]
        assert caught.value.key == "routes.notifier"
