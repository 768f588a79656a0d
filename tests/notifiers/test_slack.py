"""SlackNotifier: the incoming-webhook message, its colours and escaping, its secret URL."""

from __future__ import annotations

import functools
import json
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import attrs
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from notifier_servers import HttpReceiver

from helpers import drive_to
from incidentflow import ConfigError, Event, Incident, IncidentFlow
from incidentflow._events import event_types
from incidentflow.notifiers import DeliveryError, Notification, SlackNotifier
from incidentflow.notifiers.slack import slack_escape
from incidentflow.testing import FrozenClock

SLACK_URL = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
HOSTILE_TITLE = "<!channel> R&D <https://evil.example|click> > here"


def declared(
    clock: FrozenClock, severity: str = "P1", title: str = "Checkout returns 500"
) -> Notification:
    """The notification of a fresh declaration."""
    flow = IncidentFlow.in_memory(clock=clock)
    inc = flow.declare(title, severity=severity, commander="alice <ic>", actor="alice")
    (event,) = flow.history(inc.id)
    return Notification(f"{inc.id}:1", event, inc)


@functools.cache
def a_declared_incident() -> Incident:
    clock = FrozenClock(datetime(2026, 11, 27, 14, 0, tzinfo=UTC))
    return drive_to(IncidentFlow.in_memory(clock=clock), clock, "declared")


@pytest.fixture
def slack(receiver: HttpReceiver) -> Iterator[SlackNotifier]:
    with SlackNotifier(receiver.url, timeout=2) as notifier:
        yield notifier


class TestMessage:
    """The message: fallback text, an attachment coloured by severity, escaped user text."""

    @pytest.mark.parametrize(
        ("severity", "colour"),
        [("P1", "#d00000"), ("P2", "#ff8c00"), ("P3", "#f2c744"), ("P4", "#439fe0")],
    )
    def test_colour_follows_severity(
        self, slack: SlackNotifier, clock: FrozenClock, severity: str, colour: str
    ) -> None:
        """Each severity has its colour bar."""
        message = slack.message(declared(clock, severity))
        assert message["attachments"][0]["color"] == colour

    def test_fields(self, slack: SlackNotifier, notification: Notification) -> None:
        """Title, severity, state, commander and what happened, with a fallback line."""
        message = slack.message(notification)
        incident = notification.incident
        (attachment,) = message["attachments"]
        assert message["text"] == f"[P1] {incident.id} resolved: Checkout returns 500"
        assert attachment["fallback"] == message["text"]
        assert attachment["title"] == f"{incident.id}: Checkout returns 500"
        assert attachment["text"] == "alice resolved the incident"
        fields = {f["title"]: f["value"] for f in attachment["fields"]}
        assert fields == {"Severity": "P1 — Critical", "State": "resolved", "Commander": "alice"}
        assert attachment["ts"] == int(notification.event.at.timestamp())
        assert "title_link" not in attachment

    def test_user_text_is_escaped(self, slack: SlackNotifier, clock: FrozenClock) -> None:
        """&, < and > in user text become entities: no @channel ping, no forged link."""
        message = slack.message(declared(clock, title=HOSTILE_TITLE))
        (attachment,) = message["attachments"]
        escaped = "&lt;!channel&gt; R&amp;D &lt;https://evil.example|click&gt; &gt; here"
        assert escaped in message["text"]
        assert attachment["title"].endswith(escaped)
        commander = {f["title"]: f["value"] for f in attachment["fields"]}["Commander"]
        assert commander == "alice &lt;ic&gt;"
        assert "alice &lt;ic&gt; as commander" in attachment["text"]
        for text in (message["text"], attachment["title"], attachment["text"], commander):
            assert "<" not in text
            assert ">" not in text

    def test_escape_is_only_the_three_characters(self) -> None:
        """Slack wants &, < and > escaped and nothing else (quotes stay quotes)."""
        assert slack_escape("a & b < c > d \"e\" 'f' *g*") == (
            "a &amp; b &lt; c &gt; d \"e\" 'f' *g*"
        )

    def test_link_to_the_incident(self, receiver: HttpReceiver, notification: Notification) -> None:
        """With incident_url, the title links to the incident and the text carries the link."""
        template = "https://ops.example/incidents/{id}"
        with SlackNotifier(receiver.url, incident_url=template) as slack:
            message = slack.message(notification)
        link = f"https://ops.example/incidents/{notification.incident.id}"
        assert message["attachments"][0]["title_link"] == link
        assert message["text"].endswith(f" <{link}|open>")

    @settings(max_examples=40, deadline=None)
    @given(data=st.data())
    def test_every_event_type_has_a_summary(self, data: st.DataObject) -> None:
        """Any event of any registered type gets a one-line summary naming the actor."""
        cls = data.draw(st.sampled_from(sorted(event_types().values(), key=lambda c: c.TYPE)))
        hints = typing.get_type_hints(cls)
        fields = {f.name: st.from_type(hints[f.name]) for f in attrs.fields(cls)}
        payload = data.draw(st.builds(cls, **fields))
        incident = a_declared_incident()
        event = Event(incident.id, 2, incident.declared_at, "dana", payload)
        transport = httpx.MockTransport(lambda request: httpx.Response(200))
        with SlackNotifier("https://hooks.slack.com/services/T/B/X", transport=transport) as slack:
            text = slack.message(Notification(f"{incident.id}:2", event, incident))
        summary = text["attachments"][0]["text"]
        assert summary
        assert "\n" not in summary
        assert "<" not in summary


class TestDelivery:
    """The message is POSTed as JSON; failures raise DeliveryError like the webhook's."""

    def test_posts_the_message(
        self, slack: SlackNotifier, receiver: HttpReceiver, notification: Notification
    ) -> None:
        """The receiver gets the JSON of message(), as application/json."""
        slack.notify(notification)
        (request,) = receiver.wait_for(1)
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.body) == slack.message(notification)

    def test_through_a_flow(self, receiver: HttpReceiver, clock: FrozenClock) -> None:
        """A flow with a SlackNotifier posts one message per event."""
        with SlackNotifier(receiver.url) as slack:
            flow = IncidentFlow.in_memory(clock=clock, notifiers=[slack])
            drive_to(flow, clock, "contained")
            (inc,) = flow.list()
            count = len(flow.history(inc.id))
        texts = [json.loads(r.body)["text"] for r in receiver.wait_for(count)]
        assert len(texts) == count
        assert texts[0].endswith("declared: Checkout returns 500")
        assert texts[-1].endswith("contained: Checkout returns 500")

    @pytest.mark.parametrize(
        ("status", "body", "retryable"),
        [(404, b"no_service", False), (403, b"invalid_token", False), (500, b"", True),
         (429, b"rate_limited", True)],
    )  # fmt: skip
    def test_slack_errors(
        self,
        slack: SlackNotifier,
        receiver: HttpReceiver,
        notification: Notification,
        status: int,
        body: bytes,
        retryable: bool,
    ) -> None:
        """Slack's error answers keep their reason; only rate limits and 5xx are retried."""
        receiver.answer_with(status, body)
        with pytest.raises(DeliveryError) as caught:
            slack.notify(notification)
        assert caught.value.retryable is retryable
        assert caught.value.notifier == "slack"
        assert body.decode() in str(caught.value)


class TestSecretUrl:
    """The webhook URL is a credential: shown only as .../services/***."""

    def test_repr(self) -> None:
        """repr and str show the host and /services/***, nothing of the token."""
        with SlackNotifier(SLACK_URL, incident_url="https://ops.example/{id}") as slack:
            text = repr(slack)
            assert str(slack) == text
        assert text == (
            "SlackNotifier(webhook_url='https://hooks.slack.com/services/***', name='slack', "
            "timeout=5, incident_url='https://ops.example/{id}')"
        )

    def test_configuration_errors_do_not_quote_it(self) -> None:
        """A wrong URL is named by its key, shown redacted."""
        with pytest.raises(ConfigError) as caught:
            SlackNotifier("hooks.slack.com/services/T0/B0/SECRETSECRET")
        assert caught.value.key == "webhook_url"
        assert "SECRETSECRET" not in str(caught.value)
        with pytest.raises(ConfigError) as caught:
            SlackNotifier("ftp://hooks.slack.com/services/T0/B0/SECRETSECRET")
        assert "SECRETSECRET" not in str(caught.value)
        assert "ftp://hooks.slack.com/services/***" in str(caught.value)


class TestCoordination:
    """Status updates and role handoffs are rendered for the people in the channel."""

    def test_a_status_update_shows_its_text_audience_and_next_due(
        self, coordination: dict[str, Notification]
    ) -> None:
        """The whole update (lines kept, escaped), its audience and the next due time."""
        notification = coordination["update"]
        with SlackNotifier(SLACK_URL) as slack:
            (attachment,) = slack.message(notification)["attachments"]
        fields = {f["title"]: f["value"] for f in attachment["fields"]}
        assert fields["Update"] == (
            "Checkout fails for some cards.\n&lt;!channel&gt; Next: failover &amp; retry."
        )
        assert fields["Audience"] == "external"
        due = notification.event.at + timedelta(minutes=30)
        assert fields["Next update due"] == f"{due:%Y-%m-%d %H:%M} UTC"
        assert attachment["text"].startswith("erin posted an external status update: Checkout")
        assert "<" not in attachment["text"]

    def test_a_handoff_names_the_role_from_and_to(
        self, coordination: dict[str, Notification]
    ) -> None:
        """A handover reads "communications_lead: dana → erin", with the note."""
        with SlackNotifier(SLACK_URL) as slack:
            (attachment,) = slack.message(coordination["handoff"])["attachments"]
        assert attachment["text"] == (
            "dana handed over communications_lead: dana → erin (dana is off &lt;shift&gt;)"
        )
        fields = {f["title"]: f["value"] for f in attachment["fields"]}
        assert {k: fields[k] for k in ("Role", "From", "To", "Note")} == {
            "Role": "communications_lead",
            "From": "dana",
            "To": "erin",
            "Note": "dana is off &lt;shift&gt;",
        }

    def test_other_events_keep_the_three_fields(self, notification: Notification) -> None:
        """Only updates and handoffs add fields; a plain event keeps severity, state, commander."""
        with SlackNotifier(SLACK_URL) as slack:
            (attachment,) = slack.message(notification)["attachments"]
        assert [f["title"] for f in attachment["fields"]] == ["Severity", "State", "Commander"]
