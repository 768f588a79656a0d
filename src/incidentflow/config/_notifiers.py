"""The ``[notifiers.NAME]`` tables: one spec class per ``type``, each building its notifier."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar, Final, TypeAlias

import attrs

from .._toml import toml_shown
from ..exceptions import ConfigError
from ..notifiers._secrets import redact_url
from ._common import (
    address,
    each,
    env_name,
    env_names,
    from_env,
    frozen_mapping,
    http_url,
    line,
    link,
    meta,
    one_of,
    port_number,
    rekey,
    validated,
    wait_seconds,
)

if TYPE_CHECKING:
    from ..notifiers._base import Notifier

__all__ = [
    "SPECS",
    "TYPES",
    "EmailNotifierSpec",
    "LogNotifierSpec",
    "NotifierSpec",
    "SlackNotifierSpec",
    "WebhookNotifierSpec",
]

_LOG_LEVELS: Final = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
_SECURITY: Final = ("starttls", "ssl", "none")


def _strings(value: object) -> tuple[str, ...]:
    """A tuple of strings from a list or tuple (a lone string is refused, not split)."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(
            "recipients", f"expected a list of email addresses, got {toml_shown(value)}"
        )
    return tuple(value)


@attrs.frozen(kw_only=True)
class LogNotifierSpec:
    """A ``[notifiers.NAME]`` table with ``type = "log"``: a line in the host's log per event.

    Attributes:
        level: The loguru level to log at.

    """

    TYPE: ClassVar[str] = "log"

    level: str = attrs.field(
        default="INFO",
        validator=validated(one_of(_LOG_LEVELS, upper=True)),
        metadata=meta("The loguru level to log at.", f"one of {', '.join(_LOG_LEVELS)}"),
    )

    def build(self, name: str, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier this table describes, named ``name``."""
        from ..notifiers.basic import LogNotifier

        notifier = LogNotifier(self.level.upper())
        notifier.name = name
        return notifier


@attrs.frozen(kw_only=True)
class WebhookNotifierSpec:
    """A ``[notifiers.NAME]`` table with ``type = "webhook"``: a signed JSON POST per event.

    Give the URL literally (``url``; shown masked by ``incidentflow config show``)
    or through an environment variable (``url_env``), not both.

    Attributes:
        url: The receiver's http(s) URL.
        url_env: The environment variable holding the URL instead.
        secret_env: The environment variable holding the signing secret.
        headers_env: Extra headers: header name → environment variable holding its value.
        timeout: Seconds to wait to connect and for each read or write.
        incident_url: A link to the incident, with ``{id}`` or ``{slug}``.

    """

    TYPE: ClassVar[str] = "webhook"

    url: str | None = attrs.field(
        default=None,
        validator=validated(http_url),
        repr=lambda url: repr(redact_url(url) if url is not None else None),
        metadata=meta("The receiver's http(s) URL.", "an http:// or https:// URL"),
    )
    url_env: str | None = attrs.field(
        default=None,
        validator=validated(env_name),
        metadata=meta(
            "The environment variable holding the URL, instead of url.",
            "the name of an environment variable",
        ),
    )
    secret_env: str | None = attrs.field(
        default=None,
        validator=validated(env_name),
        metadata=meta(
            "The environment variable holding the signing secret (X-Incidentflow-Signature).",
            "the name of an environment variable",
        ),
    )
    headers_env: Mapping[str, str] = attrs.field(
        factory=dict,
        converter=frozen_mapping,
        validator=validated(env_names),
        metadata=meta(
            "Extra headers, e.g. Authorization: header name = environment variable.",
            'a table of header name = environment variable, e.g. { Authorization = "PAGER_TOKEN" }',
        ),
    )
    timeout: float = attrs.field(
        default=5.0,
        validator=validated(wait_seconds),
        metadata=meta("Seconds to wait for the receiver.", "a number of seconds above 0"),
    )
    incident_url: str | None = attrs.field(
        default=None,
        validator=validated(link),
        metadata=meta(
            "A link to the incident, sent with each event.",
            "an http(s) URL with {id} or {slug}, e.g. https://ops.example.com/incidents/{id}",
        ),
    )

    def __attrs_post_init__(self) -> None:
        if (self.url is None) == (self.url_env is None):
            raise ConfigError("url", "give the receiver's URL as url or as url_env, one of them")

    def build(self, name: str, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier this table describes, named ``name``; secrets are read from ``environ``."""
        environ = os.environ if environ is None else environ
        url = self.url
        if url is None:
            assert self.url_env is not None
            url = from_env(environ, "url_env", self.url_env, "the webhook's URL")
        secret = None
        if self.secret_env is not None:
            secret = from_env(environ, "secret_env", self.secret_env, "the signing secret")
        headers = {
            header: from_env(environ, f"headers_env.{header}", variable, f"the {header} header")
            for header, variable in self.headers_env.items()
        }
        keys = {
            "url": "url" if self.url is not None else "url_env",
            "secret": "secret_env",
            "headers": "headers_env",
            "httpx": "type",
        }
        try:
            from ..notifiers.webhook import WebhookNotifier

            return WebhookNotifier(
                url,
                secret=secret,
                timeout=self.timeout,
                headers=headers or None,
                incident_url=self.incident_url,
                name=name,
            )
        except ConfigError as exc:
            raise rekey(exc, keys.get(exc.key, exc.key)) from None


@attrs.frozen(kw_only=True)
class SlackNotifierSpec:
    """A ``[notifiers.NAME]`` table with ``type = "slack"``: a message per event.

    A Slack incoming-webhook URL is itself the credential, so it is always read
    from the environment variable ``webhook_url_env`` names.

    Attributes:
        webhook_url_env: The environment variable holding the incoming-webhook URL.
        timeout: Seconds to wait for Slack.
        incident_url: A link to the incident, with ``{id}`` or ``{slug}``.

    """

    TYPE: ClassVar[str] = "slack"

    webhook_url_env: str = attrs.field(
        validator=validated(env_name),
        metadata=meta(
            "The environment variable holding the incoming-webhook URL (the URL is the secret).",
            "the name of an environment variable, e.g. SLACK_WEBHOOK_URL",
        ),
    )
    timeout: float = attrs.field(
        default=5.0,
        validator=validated(wait_seconds),
        metadata=meta("Seconds to wait for Slack.", "a number of seconds above 0"),
    )
    incident_url: str | None = attrs.field(
        default=None,
        validator=validated(link),
        metadata=meta(
            "A link to the incident in each message.",
            "an http(s) URL with {id} or {slug}, e.g. https://ops.example.com/incidents/{id}",
        ),
    )

    def build(self, name: str, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier this table describes, named ``name``; the URL is read from ``environ``."""
        environ = os.environ if environ is None else environ
        url = from_env(
            environ, "webhook_url_env", self.webhook_url_env, "the Slack incoming-webhook URL"
        )
        try:
            from ..notifiers.slack import SlackNotifier

            return SlackNotifier(
                url, timeout=self.timeout, incident_url=self.incident_url, name=name
            )
        except ConfigError as exc:
            keys = {"webhook_url": "webhook_url_env", "httpx": "type"}
            raise rekey(exc, keys.get(exc.key, exc.key)) from None


@attrs.frozen(kw_only=True)
class EmailNotifierSpec:
    """A ``[notifiers.NAME]`` table with ``type = "email"``: an email per event over SMTP.

    Attributes:
        host: The SMTP server.
        sender: The From address.
        recipients: The To addresses.
        port: The server's port (default: 587 for starttls, 465 for ssl, 25 for none).
        security: ``"starttls"``, ``"ssl"`` or ``"none"``.
        username: The user to log in as, with ``password_env``.
        password_env: The environment variable holding the SMTP password.
        timeout: Seconds to wait for the server at each step.
        incident_url: A link to the incident, with ``{id}`` or ``{slug}``.

    """

    TYPE: ClassVar[str] = "email"

    host: str = attrs.field(
        validator=validated(line("an SMTP host name")),
        metadata=meta("The SMTP server.", "a host name, e.g. smtp.example.com"),
    )
    sender: str = attrs.field(
        validator=validated(address),
        metadata=meta("The From address.", "an email address"),
    )
    recipients: tuple[str, ...] = attrs.field(
        converter=_strings,
        validator=each(address),
        metadata=meta(
            "The To addresses.", 'a list of email addresses, e.g. ["oncall@example.com"]'
        ),
    )
    port: int | None = attrs.field(
        default=None,
        validator=validated(port_number),
        metadata=meta(
            "The server's port; by default 587 (starttls), 465 (ssl) or 25 (none).",
            "a whole number from 1 to 65535",
        ),
    )
    security: str = attrs.field(
        default="starttls",
        validator=validated(one_of(_SECURITY)),
        metadata=meta("How the connection is encrypted.", f"one of {', '.join(_SECURITY)}"),
    )
    username: str | None = attrs.field(
        default=None,
        validator=validated(line("a user name")),
        metadata=meta("The user to log in as, with password_env.", "text"),
    )
    password_env: str | None = attrs.field(
        default=None,
        validator=validated(env_name),
        metadata=meta(
            "The environment variable holding the SMTP password.",
            "the name of an environment variable",
        ),
    )
    timeout: float = attrs.field(
        default=10.0,
        validator=validated(wait_seconds),
        metadata=meta("Seconds to wait for the server at each step.", "a number of seconds"),
    )
    incident_url: str | None = attrs.field(
        default=None,
        validator=validated(link),
        metadata=meta(
            "A link to the incident in each email.",
            "an http(s) URL with {id} or {slug}, e.g. https://ops.example.com/incidents/{id}",
        ),
    )

    def __attrs_post_init__(self) -> None:
        if not self.recipients:
            raise ConfigError("recipients", "name at least one address")
        if (self.username is None) != (self.password_env is None):
            raise ConfigError("password_env", "give username and password_env together, or neither")
        if self.password_env is not None and self.security == "none":
            raise ConfigError(
                "security",
                'refusing to send the SMTP password unencrypted; use "starttls" or "ssl"',
            )

    def build(self, name: str, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier this table describes, named ``name``; its password from ``environ``."""
        environ = os.environ if environ is None else environ
        password = None
        if self.password_env is not None:
            password = from_env(environ, "password_env", self.password_env, "the SMTP password")
        from ..notifiers.email import EmailNotifier

        try:
            return EmailNotifier(
                self.host,
                self.port,
                sender=self.sender,
                recipients=self.recipients,
                username=self.username,
                password=password,
                security=self.security,  # type: ignore[arg-type]
                timeout=self.timeout,
                incident_url=self.incident_url,
                name=name,
            )
        except ConfigError as exc:
            raise rekey(exc, {"password": "password_env"}.get(exc.key, exc.key)) from None


#: One ``[notifiers.NAME]`` table: which one is chosen by its ``type`` key.
NotifierSpec: TypeAlias = (
    LogNotifierSpec | WebhookNotifierSpec | SlackNotifierSpec | EmailNotifierSpec
)

SPECS: Final[Mapping[str, type[NotifierSpec]]] = MappingProxyType(
    {
        cls.TYPE: cls
        for cls in (EmailNotifierSpec, LogNotifierSpec, SlackNotifierSpec, WebhookNotifierSpec)
    }
)
TYPES: Final = ", ".join(SPECS)
