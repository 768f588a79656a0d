"""Slack incoming webhooks: one message per event (httpx, extra ``[webhook]``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from .._model import Severity
from ._base import Notification, Notifier
from ._checks import check_incident_url, check_name, check_timeout, check_url
from ._http import HttpPoster
from ._text import details, headline, incident_link, one_line, summary, update_text

if TYPE_CHECKING:
    import httpx

__all__ = ["SLACK_COLOURS", "SlackNotifier", "slack_escape"]

#: The attachment colour bar of each severity.
SLACK_COLOURS: Final = {
    Severity.P1: "#d00000",
    Severity.P2: "#ff8c00",
    Severity.P3: "#f2c744",
    Severity.P4: "#439fe0",
}


def slack_escape(text: str) -> str:
    """Text made literal for Slack mrkdwn: ``&``, ``<`` and ``>`` as entities.

    >>> slack_escape("<!channel> R&D > ops")
    '&lt;!channel&gt; R&amp;D &gt; ops'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackNotifier(Notifier):
    """Posts each notification to a Slack channel through an incoming webhook.

    The message has a one-line ``text`` (shown in notifications and by
    clients without attachments) and an attachment coloured by severity with
    the title, state, commander, what happened and, with ``incident_url``, a
    link. A status update shows its whole text, its audience and when the next
    one is due; a role handoff shows the role, from whom and to whom. User
    text is escaped, so a title cannot ping ``@channel`` or forge links. Needs
    httpx (``pip install -e '.[webhook]'``); safe to call from many
    threads at once.

    Args:
        webhook_url: The incoming webhook's URL. It is a credential: reprs,
            logs and errors show only ``https://hooks.slack.com/services/***``.
        timeout: Seconds an attempt may take in all: connecting, sending the
            request and reading the answer (at most 64 KiB of it).
        incident_url: Format string for a link to the incident, filled with
            ``{id}`` and ``{slug}``, e.g. ``"https://ops.example/incidents/{id}"``.
        name: Name used in logs and routing rules.
        transport: An ``httpx`` transport to send through (a proxy, or
            ``httpx.MockTransport`` in tests). ``close()`` closes it.

    Raises:
        ConfigError: A setting is wrong; ``.key`` names it.

    """

    def __init__(
        self,
        webhook_url: str,
        *,
        timeout: float = 5.0,
        incident_url: str | None = None,
        name: str = "slack",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        check_url(webhook_url, "webhook_url")
        self.name = check_name(name)
        self.timeout = check_timeout(timeout)
        self.incident_url = check_incident_url(incident_url)
        self._http = HttpPoster(
            webhook_url, notifier=name, timeout=self.timeout, transport=transport
        )

    def message(self, notification: Notification) -> dict[str, Any]:
        """The Slack message this notifier posts for ``notification``."""
        incident = notification.incident
        link = incident_link(self.incident_url, incident)
        text = slack_escape(headline(notification))
        if link is not None:
            text += f" <{slack_escape(link)}|open>"
        attachment: dict[str, Any] = {
            "color": SLACK_COLOURS[incident.severity],
            "fallback": slack_escape(headline(notification)),
            "title": slack_escape(f"{incident.id}: {one_line(incident.title)}"),
            "text": slack_escape(summary(notification)),
            "fields": [
                {"title": "Severity", "value": incident.severity.label, "short": True},
                {"title": "State", "value": incident.state.value, "short": True},
                {
                    "title": "Commander",
                    "value": slack_escape(one_line(incident.commander, 80)),
                    "short": True,
                },
            ],
            "footer": slack_escape(f"incidentflow · {notification.id}"),
            "ts": int(notification.event.at.timestamp()),
        }
        update = update_text(notification)
        if update is not None:
            attachment["fields"].append(
                {"title": "Update", "value": slack_escape(update), "short": False}
            )
        attachment["fields"] += [
            {"title": label, "value": slack_escape(value), "short": True}
            for label, value in details(notification)
        ]
        if link is not None:
            attachment["title_link"] = link
        return {"text": text, "attachments": [attachment]}

    def notify(self, notification: Notification) -> None:
        """Post the message; DeliveryError unless Slack answers 2xx."""
        body = json.dumps(self.message(notification), ensure_ascii=False).encode("utf-8")
        self._http.post(notification.id, body, {"Content-Type": "application/json"})

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __repr__(self) -> str:
        link = f", incident_url={self.incident_url!r}" if self.incident_url else ""
        return (
            f"SlackNotifier(webhook_url={self._http.redacted_url!r}, name={self.name!r}, "
            f"timeout={self.timeout:g}{link})"
        )
