"""Configuration: ``incidentflow.toml``, or ``[tool.incidentflow]`` in ``pyproject.toml``.

A team keeps its process settings in one file next to its code: the store, the
folders for the files people read, the policy, delivery and retries, the
notifiers and who hears what. :func:`load_config` finds and reads it;
:meth:`Config.open_flow` builds the :class:`~incidentflow.IncidentFlow` it
describes.

The file is read with :mod:`tomllib` and structured with cattrs into strict
"raw" attrs classes (unknown keys refused, no silent coercion of ``"15"`` to
15). Whatever is wrong becomes one :class:`~incidentflow.ConfigError` whose key
is ``"<file>: <dotted.key>"`` and whose message says what the key accepts.

Secrets never sit in the file: a ``*_env`` key names the environment variable
that holds one, read when the flow is opened.

Precedence, strongest first: a keyword passed to :meth:`Config.open_flow` (the
command line's flags), the environment (``INCIDENTFLOW_URL``), the
configuration file, the defaults.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeAlias, TypeVar, get_args, get_origin
from urllib.parse import quote, urlsplit

import attrs

from ._delivery import RetryPolicy, Route
from ._model import Severity
from ._policy import BlameCheck, Policy
from ._urls import mask_password
from .exceptions import ConfigError
from .notifiers._checks import check_incident_url, check_url
from .notifiers._secrets import redact_url

if TYPE_CHECKING:
    import cattrs

    from ._flow import IncidentFlow
    from .notifiers._base import Notifier

__all__ = [
    "CONFIG_ENV",
    "CONFIG_FILE",
    "Config",
    "EmailNotifierSpec",
    "LogNotifierSpec",
    "NotifierSpec",
    "SlackNotifierSpec",
    "WebhookNotifierSpec",
    "default_config_toml",
    "load_config",
    "policy_from_table",
    "read_toml",
]

#: The configuration file's name, looked for from the current folder upwards.
CONFIG_FILE: Final = "incidentflow.toml"
#: The environment variable naming the configuration file to read.
CONFIG_ENV: Final = "INCIDENTFLOW_CONFIG"
#: The store URL's environment variable (it wins over the file's ``store``).
_STORE_ENV: Final = "INCIDENTFLOW_URL"
_PYPROJECT: Final = "pyproject.toml"
_PYPROJECT_TABLE: Final = ("tool", "incidentflow")

# Durations beyond a century are typing mistakes, and beyond timedelta's range errors.
_MAX_DAYS: Final = 36_500
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_SEVERITY_NAMES: Final = ", ".join(s.value for s in Severity)
_LOG_LEVELS: Final = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
_SECURITY: Final = ("starttls", "ssl", "none")
_MAX_IN_FLIGHT: Final = 256

T = TypeVar("T")


def _meta(help: str, accepts: str) -> dict[str, str]:
    """Field metadata: a one-line ``help`` (for comments and docs) and what it ``accepts``."""
    return {"help": help, "accepts": accepts}


# -- showing values -------------------------------------------------------------


def _show(value: object, limit: int = 60) -> str:
    """``value`` as it would be written in TOML, cut to ``limit`` characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, (datetime, date, time)):
        text = f"{value.isoformat()} (a date or time)"
    elif isinstance(value, Mapping):
        text = "a table"
    elif isinstance(value, (list, tuple)):
        text = (
            "["
            + ", ".join(_show(v, limit) for v in value[:5])
            + (", ...]" if len(value) > 5 else "]")
        )
    else:
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _key_text(path: Iterable[str | int]) -> str:
    """A path of keys and 0-based list indexes as a dotted TOML key, lists 1-based."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part + 1}]"
        elif part.startswith("\x00"):  # a key path given as text already (from a ConfigError)
            text += ("." if text else "") + part[1:]
        else:
            shown = part if _BARE_KEY.match(part) else json.dumps(part, ensure_ascii=False)
            text += ("." if text else "") + shown
    return text


def _where(source: Path | str | None, *parts: str) -> str:
    """A ConfigError key: ``"<file>: <dotted.key>"``, or the dotted key without a file."""
    key = ".".join(p for p in parts if p)
    if source is None:
        return key or "config"
    return f"{source}: {key}" if key else str(source)


def _message(exc: ConfigError) -> str:
    """A ConfigError's message without its key."""
    text = str(exc)
    prefix = f"{exc.key}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _rekey(exc: ConfigError, key: str) -> ConfigError:
    return ConfigError(key, _message(exc))


# -- checks shared by the raw tables and the public classes ----------------------


class _Wrong(TypeError):
    """A value of the wrong type, raised by the converter's strict hooks."""

    def __init__(self, expected: str, value: object) -> None:
        self.expected = expected
        self.shown = _show(value)
        super().__init__(f"expected {expected}, got {self.shown}")


def _number(key: str, value: object, *, unit: str, minimum: float = 0, above: bool = False) -> None:
    """``value`` is a finite number of ``unit`` from ``minimum`` (exclusive if ``above``)."""
    limit = {"minutes": _MAX_DAYS * 1440, "hours": _MAX_DAYS * 24, "seconds": _MAX_DAYS * 86400}
    bound = f"greater than {minimum:g}" if above else f"{minimum:g} or more"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, f"expected a number of {unit}, {bound}, got {_show(value)}")
    if (value <= minimum if above else value < minimum) or value > limit.get(unit, math.inf):
        raise ConfigError(
            key, f"expected a number of {unit}, {bound} (at most 100 years), got {_show(value)}"
        )


def _severity_name(key: str, value: object) -> None:
    if not isinstance(value, str) or value.strip().upper() not in {s.value for s in Severity}:
        raise ConfigError(key, f"expected a severity ({_SEVERITY_NAMES}), got {_show(value)}")


def _env_name(key: str, value: object) -> None:
    """``value`` names an environment variable; a secret written here instead is not echoed."""
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        shown = _show(value) if not isinstance(value, str) else "a value that is not one"
        raise ConfigError(
            key,
            "expected the name of an environment variable (letters, digits and _, "
            f"e.g. PAGER_SECRET), got {shown}; the secret itself belongs in that variable",
        )


def _line(key: str, value: object, what: str) -> None:
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n\x00"):
        raise ConfigError(key, f"expected {what} (non-empty, one line), got {_show(value)}")


def _http_url(key: str, value: str) -> None:
    check_url(value, key)


def _link(key: str, value: str | None) -> None:
    try:
        check_incident_url(value, key)
    except ConfigError as exc:
        raise ConfigError(key, _message(exc)) from None


def _address(key: str, value: object) -> None:
    user, at, domain = value.rpartition("@") if isinstance(value, str) else ("", "", "")
    if not at or not user or "." not in domain or any(c.isspace() for c in str(value)):
        raise ConfigError(key, f"expected an email address (user@example.com), got {_show(value)}")


def _timeout(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 600:
        raise ConfigError(
            key, f"expected a number of seconds above 0, at most 600, got {_show(value)}"
        )


def _one_of(accepted: Sequence[str], *, upper: bool = False) -> Callable[[str, object], None]:
    """A check that a value is one of ``accepted`` (compared in upper case if ``upper``)."""

    def check(key: str, value: object) -> None:
        given = value.upper() if upper and isinstance(value, str) else value
        if given not in accepted:
            raise ConfigError(key, f"expected one of {', '.join(accepted)}, got {_show(value)}")

    return check


def _within(
    low: float, high: float, what: str, *, below_high: bool = False
) -> Callable[[str, object], None]:
    """A check that a number is from ``low`` to ``high`` (``high`` excluded if ``below_high``)."""

    def check(key: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"expected {what}, got {_show(value)}")
        inside = low <= value < high if below_high else low <= value <= high
        if not inside:
            raise ConfigError(key, f"expected {what}, got {_show(value)}")

    return check


def _port(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ConfigError(key, f"expected a TCP port from 1 to 65535, got {_show(value)}")


def _store_url(key: str, value: str) -> None:
    """A store URL: ``scheme://...`` with no password in it."""
    scheme, separator, _ = value.partition("://")
    if not separator or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise ConfigError(
            key,
            f"expected a store URL (sqlite:///PATH, file://DIR, postgresql://..., memory://), "
            f"got {_show(_mask_password(value))}",
        )
    try:
        password = urlsplit(value).password
    except ValueError:
        password = None
    if password:
        raise ConfigError(
            key,
            "the URL holds a password; keep secrets out of the file: set INCIDENTFLOW_URL in "
            "the environment instead, or give the password through PGPASSWORD or ~/.pgpass",
        )


#: The name this module gave it before stores needed it too; the command line imports it.
_mask_password = mask_password


def _from_env(environ: Mapping[str, str], key: str, name: str, what: str) -> str:
    """The value of environment variable ``name``, which holds ``what``; ConfigError if unset."""
    value = environ.get(name)
    if value is None:
        raise ConfigError(
            key, f"the environment variable {name} is not set; export {name} holding {what}"
        )
    if not value.strip():
        raise ConfigError(key, f"the environment variable {name} is empty; set it to {what}")
    return value


def _validated(
    check: Callable[[str, Any], None],
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator running ``check(field name, value)`` unless the value is None."""

    def validator(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            check(attribute.name, value)

    return validator


def _each(check: Callable[[str, Any], None]) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator running ``check`` on each item of a list (1-based key)."""

    def validator(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        for number, item in enumerate(value or (), start=1):
            check(f"{attribute.name}[{number}]", item)

    return validator


def _env_names(key: str, value: Mapping[str, str]) -> None:
    for header, name in value.items():
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", header):
            raise ConfigError(f"{key}.{header}", "expected an HTTP header name, e.g. Authorization")
        _env_name(f"{key}.{header}", name)


def _strings(value: Sequence[str]) -> tuple[str, ...]:
    """A tuple of strings from a list or tuple (a lone string is refused, not split)."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError("recipients", f"expected a list of email addresses, got {_show(value)}")
    return tuple(value)


def _mapping(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(value or {}))


# -- notifier specs (public) ---------------------------------------------------


@attrs.frozen(kw_only=True)
class LogNotifierSpec:
    """A ``[notifiers.NAME]`` table with ``type = "log"``: a line in the host's log per event.

    Attributes:
        level: The loguru level to log at.

    """

    TYPE: ClassVar[str] = "log"

    level: str = attrs.field(
        default="INFO",
        validator=_validated(_one_of(_LOG_LEVELS, upper=True)),
        metadata=_meta("The loguru level to log at.", f"one of {', '.join(_LOG_LEVELS)}"),
    )

    def build(self, name: str, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier this table describes, named ``name``."""
        from .notifiers.basic import LogNotifier

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
        validator=_validated(_http_url),
        repr=lambda url: repr(redact_url(url) if url is not None else None),
        metadata=_meta("The receiver's http(s) URL.", "an http:// or https:// URL"),
    )
    url_env: str | None = attrs.field(
        default=None,
        validator=_validated(_env_name),
        metadata=_meta(
            "The environment variable holding the URL, instead of url.",
            "the name of an environment variable",
        ),
    )
    secret_env: str | None = attrs.field(
        default=None,
        validator=_validated(_env_name),
        metadata=_meta(
            "The environment variable holding the signing secret (X-Incidentflow-Signature).",
            "the name of an environment variable",
        ),
    )
    headers_env: Mapping[str, str] = attrs.field(
        factory=dict,
        converter=_mapping,
        validator=_validated(_env_names),
        metadata=_meta(
            "Extra headers, e.g. Authorization: header name = environment variable.",
            'a table of header name = environment variable, e.g. { Authorization = "PAGER_TOKEN" }',
        ),
    )
    timeout: float = attrs.field(
        default=5.0,
        validator=_validated(_timeout),
        metadata=_meta("Seconds to wait for the receiver.", "a number of seconds above 0"),
    )
    incident_url: str | None = attrs.field(
        default=None,
        validator=_validated(_link),
        metadata=_meta(
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
            url = _from_env(environ, "url_env", self.url_env, "the webhook's URL")
        secret = None
        if self.secret_env is not None:
            secret = _from_env(environ, "secret_env", self.secret_env, "the signing secret")
        headers = {
            header: _from_env(environ, f"headers_env.{header}", variable, f"the {header} header")
            for header, variable in self.headers_env.items()
        }
        keys = {
            "url": "url" if self.url is not None else "url_env",
            "secret": "secret_env",
            "headers": "headers_env",
            "httpx": "type",
        }
        try:
            from .notifiers.webhook import WebhookNotifier

            return WebhookNotifier(
                url,
                secret=secret,
                timeout=self.timeout,
                headers=headers or None,
                incident_url=self.incident_url,
                name=name,
            )
        except ConfigError as exc:
            raise _rekey(exc, keys.get(exc.key, exc.key)) from None


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
        validator=_validated(_env_name),
        metadata=_meta(
            "The environment variable holding the incoming-webhook URL (the URL is the secret).",
            "the name of an environment variable, e.g. SLACK_WEBHOOK_URL",
        ),
    )
    timeout: float = attrs.field(
        default=5.0,
        validator=_validated(_timeout),
        metadata=_meta("Seconds to wait for Slack.", "a number of seconds above 0"),
    )
    incident_url: str | None = attrs.field(
        default=None,
        validator=_validated(_link),
        metadata=_meta(
            "A link to the incident in each message.",
            "an http(s) URL with {id} or {slug}, e.g. https://ops.example.com/incidents/{id}",
        ),
    )

    def build(self, name: str, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier this table describes, named ``name``; the URL is read from ``environ``."""
        environ = os.environ if environ is None else environ
        url = _from_env(
            environ, "webhook_url_env", self.webhook_url_env, "the Slack incoming-webhook URL"
        )
        try:
            from .notifiers.slack import SlackNotifier

            return SlackNotifier(
                url, timeout=self.timeout, incident_url=self.incident_url, name=name
            )
        except ConfigError as exc:
            keys = {"webhook_url": "webhook_url_env", "httpx": "type"}
            raise _rekey(exc, keys.get(exc.key, exc.key)) from None


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
        validator=_validated(lambda key, value: _line(key, value, "an SMTP host name")),
        metadata=_meta("The SMTP server.", "a host name, e.g. smtp.example.com"),
    )
    sender: str = attrs.field(
        validator=_validated(_address),
        metadata=_meta("The From address.", "an email address"),
    )
    recipients: tuple[str, ...] = attrs.field(
        converter=_strings,
        validator=_each(_address),
        metadata=_meta(
            "The To addresses.", 'a list of email addresses, e.g. ["oncall@example.com"]'
        ),
    )
    port: int | None = attrs.field(
        default=None,
        validator=_validated(_port),
        metadata=_meta(
            "The server's port; by default 587 (starttls), 465 (ssl) or 25 (none).",
            "a whole number from 1 to 65535",
        ),
    )
    security: str = attrs.field(
        default="starttls",
        validator=_validated(_one_of(_SECURITY)),
        metadata=_meta("How the connection is encrypted.", f"one of {', '.join(_SECURITY)}"),
    )
    username: str | None = attrs.field(
        default=None,
        validator=_validated(lambda key, value: _line(key, value, "a user name")),
        metadata=_meta("The user to log in as, with password_env.", "text"),
    )
    password_env: str | None = attrs.field(
        default=None,
        validator=_validated(_env_name),
        metadata=_meta(
            "The environment variable holding the SMTP password.",
            "the name of an environment variable",
        ),
    )
    timeout: float = attrs.field(
        default=10.0,
        validator=_validated(_timeout),
        metadata=_meta("Seconds to wait for the server at each step.", "a number of seconds"),
    )
    incident_url: str | None = attrs.field(
        default=None,
        validator=_validated(_link),
        metadata=_meta(
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
            password = _from_env(environ, "password_env", self.password_env, "the SMTP password")
        from .notifiers.email import EmailNotifier

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
            raise _rekey(exc, {"password": "password_env"}.get(exc.key, exc.key)) from None


#: One ``[notifiers.NAME]`` table: which one is chosen by its ``type`` key.
NotifierSpec: TypeAlias = (
    LogNotifierSpec | WebhookNotifierSpec | SlackNotifierSpec | EmailNotifierSpec
)

_SPECS: Final[Mapping[str, type[NotifierSpec]]] = MappingProxyType(
    {
        cls.TYPE: cls
        for cls in (EmailNotifierSpec, LogNotifierSpec, SlackNotifierSpec, WebhookNotifierSpec)
    }
)
_TYPES: Final = ", ".join(_SPECS)


# -- the raw tables of the file -----------------------------------------------


def _response_minutes(key: str, value: Mapping[str, float]) -> None:
    for severity, minutes in value.items():
        _severity_name(f"{key}.{severity}", severity)
        _number(f"{key}.{severity}", minutes, unit="minutes", above=True)


def _triage_answer(key: str, value: str) -> None:
    if not value.strip():
        raise ConfigError(key, 'expected a question name, e.g. "customer_impact", got ""')


def _blame_check(key: str, value: str) -> None:
    accepted = [b.value for b in BlameCheck]
    if value not in accepted:
        raise ConfigError(key, f"expected one of {', '.join(accepted)}, got {_show(value)}")


def _minutes(key: str, value: float) -> None:
    _number(key, value, unit="minutes")


def _hours(key: str, value: float) -> None:
    _number(key, value, unit="hours")


@attrs.frozen(kw_only=True)
class _PolicyTable:
    """``[policy]``: :meth:`Policy.to_dict`'s shape; a key left out keeps Policy's default."""

    response_minutes: dict[str, float] | None = attrs.field(
        default=None,
        validator=_validated(_response_minutes),
        metadata=_meta(
            "Time from declaration to the start of triage, per severity, in minutes.",
            "a table of severity = minutes, e.g. { P1 = 5, P2 = 30 }",
        ),
    )
    required_triage_answers: list[str] | None = attrs.field(
        default=None,
        validator=_each(_triage_answer),
        metadata=_meta(
            "Triage questions answered before contain (add your own, e.g. customer_impact).",
            'a list of question names, e.g. ["symptom", "started_at", "scope"]',
        ),
    )
    watch_window_minutes: float | None = attrs.field(
        default=None,
        validator=_validated(_minutes),
        metadata=_meta(
            "How long after the last deploy before resolve is allowed.",
            "a number of minutes, 0 or more",
        ),
    )
    confirmer_must_differ: bool | None = attrs.field(
        default=None,
        metadata=_meta(
            "The user who confirms the fix may not be the incident commander.", "true or false"
        ),
    )
    postmortem_severities: list[str] | None = attrs.field(
        default=None,
        validator=_each(_severity_name),
        metadata=_meta(
            "Severities whose incidents need a completed post-mortem.",
            f"a list of severities ({_SEVERITY_NAMES})",
        ),
    )
    blame_check: str | None = attrs.field(
        default=None,
        validator=_validated(_blame_check),
        metadata=_meta(
            "Blaming language in a post-mortem: warn on the event, reject the command, or off.",
            f"one of {', '.join(b.value for b in BlameCheck)}",
        ),
    )
    postmortem_due_hours: float | None = attrs.field(
        default=None,
        validator=_validated(_hours),
        metadata=_meta(
            "How long after resolution the post-mortem is due.", "a number of hours, 0 or more"
        ),
    )

    def to_policy(self) -> Policy:
        kwargs: dict[str, Any] = {}
        if self.response_minutes is not None:
            kwargs["response_targets"] = {
                k: timedelta(minutes=v) for k, v in self.response_minutes.items()
            }
        if self.required_triage_answers is not None:
            kwargs["required_triage_answers"] = tuple(self.required_triage_answers)
        if self.watch_window_minutes is not None:
            kwargs["watch_window"] = timedelta(minutes=self.watch_window_minutes)
        if self.confirmer_must_differ is not None:
            kwargs["confirmer_must_differ"] = self.confirmer_must_differ
        if self.postmortem_severities is not None:
            kwargs["postmortem_severities"] = self.postmortem_severities
        if self.blame_check is not None:
            kwargs["blame_check"] = self.blame_check
        if self.postmortem_due_hours is not None:
            kwargs["postmortem_due"] = timedelta(hours=self.postmortem_due_hours)
        try:
            return Policy(**kwargs)
        except ConfigError as exc:  # a check Policy makes that the table did not
            names = {
                "response_targets": "response_minutes",
                "watch_window": "watch_window_minutes",
                "postmortem_due": "postmortem_due_hours",
            }
            raise _rekey(exc, names.get(exc.key, exc.key)) from None


def _seconds(key: str, value: float) -> None:
    _number(key, value, unit="seconds")


def _positive_seconds(key: str, value: float) -> None:
    _number(key, value, unit="seconds", above=True)


def _at_least_one(key: str, value: int) -> None:
    if value < 1:
        raise ConfigError(key, f"expected a whole number of at least 1, got {value}")


@attrs.frozen(kw_only=True)
class _DeliveryTable:
    """``[delivery]``: inline delivery, the outbox lease, retries and the dispatcher."""

    inline: bool | None = attrs.field(
        default=None,
        metadata=_meta(
            "Deliver right after each command (true), or leave it to a dispatcher or "
            "`incidentflow deliver` (false).",
            "true or false",
        ),
    )
    lease_seconds: float | None = attrs.field(
        default=None,
        validator=_validated(_positive_seconds),
        metadata=_meta(
            "How long a claimed notification stays with the worker that claimed it.",
            "a number of seconds above 0",
        ),
    )
    max_attempts: int | None = attrs.field(
        default=None,
        validator=_validated(_at_least_one),
        metadata=_meta(
            "Failed attempts before a notification becomes a dead letter.",
            "a whole number of at least 1",
        ),
    )
    first_delay_seconds: float | None = attrs.field(
        default=None,
        validator=_validated(_seconds),
        metadata=_meta("The wait before the first retry.", "a number of seconds, 0 or more"),
    )
    multiplier: float | None = attrs.field(
        default=None,
        validator=_validated(_within(1, 10, "a number from 1 to 10")),
        metadata=_meta("Each retry waits this many times longer.", "a number from 1 to 10"),
    )
    max_delay_seconds: float | None = attrs.field(
        default=None,
        validator=_validated(_seconds),
        metadata=_meta(
            "The longest wait between retries.", "a number of seconds, first_delay_seconds or more"
        ),
    )
    jitter: float | None = attrs.field(
        default=None,
        validator=_validated(
            _within(0, 1, "a fraction from 0 up to (not including) 1", below_high=True)
        ),
        metadata=_meta(
            "Spread each wait by ± this fraction, so receivers coming back are not flooded.",
            "a fraction from 0 up to 1",
        ),
    )
    max_in_flight: int | None = attrs.field(
        default=None,
        validator=_validated(
            _within(1, _MAX_IN_FLIGHT, f"a whole number from 1 to {_MAX_IN_FLIGHT}")
        ),
        metadata=_meta(
            "Deliveries a dispatcher runs at once.", f"a whole number from 1 to {_MAX_IN_FLIGHT}"
        ),
    )
    poll_seconds: float | None = attrs.field(
        default=None,
        validator=_validated(_positive_seconds),
        metadata=_meta(
            "How often a dispatcher looks for retries and other processes' commits.",
            "a number of seconds above 0",
        ),
    )

    def __attrs_post_init__(self) -> None:
        defaults = RetryPolicy()
        first = self.first_delay_seconds
        first = defaults.first_delay.total_seconds() if first is None else first
        longest = self.max_delay_seconds
        longest = defaults.max_delay.total_seconds() if longest is None else longest
        if longest < first:
            raise ConfigError(
                "max_delay_seconds",
                f"expected at least first_delay_seconds ({first:g}), got {longest:g}",
            )

    def settings(self) -> dict[str, Any]:
        """The :class:`Config` keywords this table sets."""
        retry: dict[str, Any] = {}
        if self.max_attempts is not None:
            retry["max_attempts"] = self.max_attempts
        if self.first_delay_seconds is not None:
            retry["first_delay"] = timedelta(seconds=self.first_delay_seconds)
        if self.multiplier is not None:
            retry["multiplier"] = self.multiplier
        if self.max_delay_seconds is not None:
            retry["max_delay"] = timedelta(seconds=self.max_delay_seconds)
        if self.jitter is not None:
            retry["jitter"] = self.jitter
        settings: dict[str, Any] = {"retry": RetryPolicy(**retry)}
        if self.inline is not None:
            settings["deliver_inline"] = self.inline
        if self.lease_seconds is not None:
            settings["delivery_lease"] = timedelta(seconds=self.lease_seconds)
        if self.max_in_flight is not None:
            settings["max_in_flight"] = self.max_in_flight
        if self.poll_seconds is not None:
            settings["poll_interval"] = self.poll_seconds
        return settings


def _event_type(key: str, value: str) -> None:
    from ._events import event_types

    known = event_types()
    if value not in known:
        raise ConfigError(
            key, f"expected an event type ({', '.join(sorted(known))}), got {_show(value)}"
        )


@attrs.frozen(kw_only=True)
class _RouteTable:
    """One ``[[routes]]`` table: the format of :func:`~incidentflow.routes_from_toml`."""

    notifier: str = attrs.field(
        validator=_validated(lambda key, value: _line(key, value, "a notifier's name")),
        metadata=_meta(
            "The notifier that hears the matching events.", "the name of a [notifiers.NAME] table"
        ),
    )
    severities: list[str] | None = attrs.field(
        default=None,
        validator=_each(_severity_name),
        metadata=_meta(
            "Only incidents of these severities (default: all).",
            f"a list of severities ({_SEVERITY_NAMES})",
        ),
    )
    events: list[str] | None = attrs.field(
        default=None,
        validator=_each(_event_type),
        metadata=_meta(
            "Only these event types (default: all).",
            'a list of event types, e.g. ["declared", "resolved"]',
        ),
    )

    def to_route(self) -> Route:
        return Route(self.notifier, self.severities, self.events)


@attrs.frozen(kw_only=True)
class _FileTable:
    """The whole file (or ``[tool.incidentflow]``)."""

    store: str | None = attrs.field(
        default=None,
        validator=_validated(_store_url),
        metadata=_meta(
            "Where incidents are stored; INCIDENTFLOW_URL wins over it. Default: SQLite at "
            ".agent/incidents/incidentflow.db in this file's folder.",
            "a store URL: sqlite:///PATH, file://DIR, postgresql://HOST/DB or memory://",
        ),
    )
    incidents_dir: str | None = attrs.field(
        default=None,
        validator=_validated(lambda key, value: _line(key, value, "a folder")),
        metadata=_meta(
            "Where the incident files people read are written.",
            "a folder, relative to this file's folder or absolute",
        ),
    )
    knowledge_dir: str | None = attrs.field(
        default=None,
        validator=_validated(lambda key, value: _line(key, value, "a folder")),
        metadata=_meta(
            "Where knowledge-base gotchas are written.",
            "a folder, relative to this file's folder or absolute",
        ),
    )
    actor: str | None = attrs.field(
        default=None,
        validator=_validated(lambda key, value: _line(key, value, "a name")),
        metadata=_meta(
            "Who runs commands from the command line, unless --actor or INCIDENTFLOW_ACTOR say.",
            "a name",
        ),
    )
    policy: _PolicyTable = attrs.field(
        factory=_PolicyTable,
        metadata=_meta("The process's numbers and switches.", "a table"),
    )
    delivery: _DeliveryTable = attrs.field(
        factory=_DeliveryTable,
        metadata=_meta("How notifications are delivered and retried.", "a table"),
    )
    notifiers: dict[str, NotifierSpec] = attrs.field(
        factory=dict,
        metadata=_meta(
            "Who hears about events: one [notifiers.NAME] table each.",
            f"a table of [notifiers.NAME] tables, each with type = one of {_TYPES}",
        ),
    )
    routes: list[_RouteTable] | None = attrs.field(
        default=None,
        metadata=_meta(
            "Who hears what: without [[routes]], every notifier hears every event.",
            "[[routes]] tables with notifier, severities and events",
        ),
    )


# -- the converter --------------------------------------------------------------


def _check_text(value: object, _: object) -> str:
    if not isinstance(value, str):
        raise _Wrong("text (a quoted string)", value)
    return value


def _check_bool(value: object, _: object) -> bool:
    if not isinstance(value, bool):
        raise _Wrong("true or false", value)
    return value


def _check_int(value: object, _: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Wrong("a whole number", value)
    return value


def _check_float(value: object, _: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Wrong("a number", value)
    if not math.isfinite(value):
        raise _Wrong("a finite number", value)
    return value


_KINDS: Final[Mapping[Any, str]] = MappingProxyType(
    {str: "text", bool: "true or false", int: "whole numbers", float: "numbers"}
)


def _is_sequence(cl: Any) -> bool:
    args = get_args(cl)
    return get_origin(cl) is list or (get_origin(cl) is tuple and len(args) == 2 and args[1] is ...)


def _is_table(cl: Any) -> bool:
    return get_origin(cl) in (dict, Mapping) and get_args(cl)[:1] == (str,)


def _sequence_hook(conv: cattrs.Converter, cl: Any) -> Callable[[Any, Any], Any]:
    from cattrs.errors import IterableValidationError, IterableValidationNote

    item = get_args(cl)[0]
    make: Callable[[list[Any]], Any] = tuple if get_origin(cl) is tuple else list
    handler = conv.get_structure_hook(item)

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise _Wrong(f"a list of {_KINDS.get(item, 'tables')}", value)
        result, errors = [], []
        for index, element in enumerate(value):
            try:
                result.append(handler(element, item))
            except Exception as exc:
                note = IterableValidationNote(f"@ index {index}", index, item)
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {cl!r}", errors, cl)
        return make(result)

    return structure


def _table_hook(conv: cattrs.Converter, cl: Any) -> Callable[[Any, Any], Any]:
    from cattrs.errors import IterableValidationError, IterableValidationNote

    item = get_args(cl)[1]
    handler = conv.get_structure_hook(item)

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _Wrong("a table", value)
        result, errors = {}, []
        for key, element in value.items():
            try:
                result[key] = handler(element, item)
            except Exception as exc:
                note = IterableValidationNote(f"@ key {key!r}", key, item)
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {cl!r}", errors, cl)
        return result

    return structure


def _class_hook(conv: cattrs.Converter, cl: Any) -> Callable[[Any, Any], Any]:
    from cattrs.gen import make_dict_structure_fn

    inner = make_dict_structure_fn(cl, conv)

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _Wrong("a table", value)
        return inner(value, cl)

    return structure


def _notifier_hook(conv: cattrs.Converter) -> Callable[[Any, Any], NotifierSpec]:
    def structure(value: Any, _: Any) -> NotifierSpec:
        if not isinstance(value, Mapping):
            raise _Wrong(f"a table with type = one of {_TYPES}", value)
        if "type" not in value:
            raise ConfigError("type", f"missing; every notifier table needs type = one of {_TYPES}")
        kind = value["type"]
        spec = _SPECS.get(kind) if isinstance(kind, str) else None
        if spec is None:
            raise ConfigError("type", f"expected one of {_TYPES}, got {_show(kind)}")
        rest = {key: item for key, item in value.items() if key != "type"}
        result: NotifierSpec = conv.structure(rest, spec)
        return result

    return structure


@functools.cache
def _converter() -> cattrs.Converter:
    """The configuration's converter: strict types, unknown keys refused. Built on first use."""
    import cattrs

    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(str, _check_text)
    conv.register_structure_hook(bool, _check_bool)
    conv.register_structure_hook(int, _check_int)
    conv.register_structure_hook(float, _check_float)
    conv.register_structure_hook_factory(attrs.has, lambda cl: _class_hook(conv, cl))
    conv.register_structure_hook_factory(_is_sequence, lambda cl: _sequence_hook(conv, cl))
    conv.register_structure_hook_factory(_is_table, lambda cl: _table_hook(conv, cl))
    conv.register_structure_hook_func(lambda cl: cl == NotifierSpec, _notifier_hook(conv))
    return conv


def _structure(data: Any, cl: type[T], source: str | None, prefix: Sequence[str]) -> T:
    """``data`` as a ``cl``; anything wrong is one ConfigError naming the file and the key."""
    try:
        return _converter().structure(data, cl)
    except Exception as exc:
        raise _explain(exc, cl, source, prefix) from None


def _accepted(cl: type) -> list[str]:
    names = [f.name for f in attrs.fields(cl)]
    return ["type", *names] if cl in _SPECS.values() else names


def _table_label(path: Sequence[str | int], prefix: Sequence[str]) -> str:
    if not path:
        return "the top level" if not prefix else f"[{'.'.join(prefix)}]"
    if isinstance(path[-1], int):
        return f"each [[{_key_text(path[:-1])}]] table"
    return f"[{_key_text(path)}]"


def _hint(key: str, accepted: Sequence[str], table: type) -> str:
    """A guess at what an unknown key was meant to be: a near spelling, or its table."""
    import difflib

    close = difflib.get_close_matches(key, accepted, n=1)
    if close:
        return f" (did you mean {close[0]}?)"
    homes: dict[type, str] = {
        _PolicyTable: "[policy]",
        _DeliveryTable: "[delivery]",
        _RouteTable: "a [[routes]] table",
        **{spec: f'a [notifiers.NAME] table with type = "{spec.TYPE}"' for spec in _SPECS.values()},
    }
    for home, label in homes.items():
        if home is not table and key in _accepted(home) and key != "type":
            return f" ({key} belongs in {label})"
    return ""


def _explain(
    exc: BaseException, cl: type, source: str | None, prefix: Sequence[str]
) -> ConfigError:
    """The first problem cattrs found, as a ConfigError: the file, the key, what is accepted."""
    from cattrs.errors import (
        ClassValidationError,
        ForbiddenExtraKeysError,
        IterableValidationError,
    )

    path: list[str | int] = list(prefix)
    owner: type = cl
    accepts: str | None = None  # what the innermost field accepts
    field_depth = len(path)
    while True:
        if isinstance(exc, ClassValidationError):
            owner = exc.cl
            with_notes, others = exc.group_exceptions()
            if with_notes:
                exc, attribute = with_notes[0]
                path.append(attribute.name)
                field = attrs.fields_dict(owner).get(attribute.name)
                accepts = field.metadata.get("accepts") if field is not None else None
                field_depth = len(path)
                continue
            exc = others[0]
            if isinstance(exc, ForbiddenExtraKeysError):
                unknown = sorted(exc.extra_fields)
                accepted = _accepted(exc.cl)
                label = _table_label(path, prefix)
                hint = _hint(unknown[0], accepted, exc.cl)
                also = f" (also unknown: {', '.join(unknown[1:])})" if unknown[1:] else ""
                message = (
                    f"unknown key{also}; {label} accepts {', '.join(accepted)}{hint}"
                    if accepted
                    else f"unknown key; {label} takes no keys"
                )
                return ConfigError(_where(source, _key_text([*path, unknown[0]])), message)
            if isinstance(exc, ConfigError):  # a check of the class itself
                return ConfigError(
                    _where(source, _key_text([*path, "\x00" + exc.key])), _message(exc)
                )
            break
        if isinstance(exc, IterableValidationError):
            with_notes_i, others_i = exc.group_exceptions()
            if with_notes_i:
                exc, item = with_notes_i[0]
                path.append(item.index)
                continue
            exc = others_i[0]
            continue
        break
    key = _where(source, _key_text(path))
    if isinstance(exc, KeyError):
        label = _table_label(path[:-1], prefix)
        return ConfigError(key, f"missing; {label} needs {path[-1]} ({accepts or 'a value'})")
    if isinstance(exc, ConfigError):  # raised by a hook, e.g. a notifier's type
        return ConfigError(_where(source, _key_text([*path, "\x00" + exc.key])), _message(exc))
    if isinstance(exc, _Wrong):
        if accepts is not None and len(path) == field_depth:
            return ConfigError(key, f"expected {accepts}, got {exc.shown}")
        where = f"; {_key_text(path[:field_depth][-1:])} takes {accepts}" if accepts else ""
        return ConfigError(key, f"expected {exc.expected}, got {exc.shown}{where}")
    return ConfigError(
        key, f"cannot be read ({type(exc).__name__}); expected {accepts or 'a value'}"
    )


# -- Policy's TOML ---------------------------------------------------------------


def policy_from_table(
    data: Mapping[str, Any], *, source: str | None = None, prefix: Sequence[str] = ()
) -> Policy:
    """A :class:`Policy` from a ``[policy]`` table (:meth:`Policy.to_dict`'s shape).

    Errors are ConfigErrors keyed ``"<source>: <prefix>.<key>"``.
    """
    return _structure(data, _PolicyTable, source, prefix).to_policy()


# -- the configuration -----------------------------------------------------------


def _optional_path(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value is None else Path(value)


def _notifier_specs(value: Mapping[str, NotifierSpec] | None) -> Mapping[str, NotifierSpec]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ConfigError(
            "notifiers", f"expected a mapping of name to spec, got {type(value).__name__}"
        )
    return MappingProxyType(dict(value))


def _route_tuple(value: Iterable[Route] | None) -> tuple[Route, ...] | None:
    return None if value is None else tuple(value)


def _instance(
    kind: type | tuple[type, ...], what: str
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def validator(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise ConfigError(attribute.name, f"expected {what}, got {value!r}")
        if not isinstance(value, kind):
            raise ConfigError(attribute.name, f"expected {what}, got {type(value).__name__}")

    return validator


@attrs.frozen(kw_only=True)
class Config:
    """The settings of a team's incident process, as ``incidentflow.toml`` holds them.

    Build one with :func:`load_config` (from a file) or directly; every
    argument has the default an empty file gives. :meth:`open_flow` makes the
    :class:`~incidentflow.IncidentFlow` it describes.

    >>> config = Config(store="memory://", policy=Policy(blame_check="reject"))
    >>> with config.open_flow(incidents_dir=None, knowledge_dir=None) as flow:
    ...     flow.policy.blame_check.value
    'reject'

    Attributes:
        store: The store URL. ``None``: ``INCIDENTFLOW_URL``, else SQLite at
            ``.agent/incidents/incidentflow.db`` in :attr:`root`.
        incidents_dir: Where incident files are written. ``None``:
            ``.agent/incidents`` in :attr:`root`.
        knowledge_dir: Where KB gotchas are written. ``None``:
            ``.agent/knowledge/gotchas`` in :attr:`root`.
        actor: Who runs commands from the command line, unless told otherwise.
        policy: The process's numbers and switches.
        retry: How failed deliveries are retried.
        deliver_inline: Deliver right after each command (else: a dispatcher does).
        delivery_lease: How long a claimed notification stays with its worker.
        max_in_flight: Deliveries a dispatcher runs at once.
        poll_interval: Seconds between a dispatcher's looks at the outbox.
        notifiers: Who hears about events, by name (the ``[notifiers.NAME]`` tables).
        routes: Who hears what; ``None``: every notifier hears every event.
        source: The file this configuration was read from (``None``: the defaults).

    Raises:
        ConfigError: A value is wrong, or a route names a notifier that is not configured.

    """

    store: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(_instance(str, "a store URL")),
        repr=lambda url: repr(_mask_password(url) if url is not None else None),
    )
    incidents_dir: Path | None = attrs.field(default=None, converter=_optional_path)
    knowledge_dir: Path | None = attrs.field(default=None, converter=_optional_path)
    actor: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(_instance(str, "a name"))
    )
    policy: Policy = attrs.field(factory=Policy, validator=_instance(Policy, "a Policy"))
    retry: RetryPolicy = attrs.field(
        factory=RetryPolicy, validator=_instance(RetryPolicy, "a RetryPolicy")
    )
    deliver_inline: bool = attrs.field(default=True, validator=_instance(bool, "True or False"))
    delivery_lease: timedelta = attrs.field(
        default=timedelta(minutes=1), validator=_instance(timedelta, "a timedelta")
    )
    max_in_flight: int = attrs.field(default=8, validator=_instance(int, "a whole number"))
    poll_interval: float = attrs.field(
        default=1.0, validator=_instance((int, float), "a number of seconds")
    )
    notifiers: Mapping[str, NotifierSpec] = attrs.field(factory=dict, converter=_notifier_specs)
    routes: tuple[Route, ...] | None = attrs.field(default=None, converter=_route_tuple)
    source: Path | None = attrs.field(default=None, converter=_optional_path)

    def __attrs_post_init__(self) -> None:
        if self.delivery_lease <= timedelta(0):
            raise ConfigError("delivery.lease_seconds", "expected a duration above 0")
        if not 1 <= self.max_in_flight <= _MAX_IN_FLIGHT:
            raise ConfigError(
                "delivery.max_in_flight", f"expected a whole number from 1 to {_MAX_IN_FLIGHT}"
            )
        if not self.poll_interval > 0:
            raise ConfigError("delivery.poll_seconds", "expected a number of seconds above 0")
        for name, spec in self.notifiers.items():
            if not isinstance(name, str) or not name.strip():
                raise ConfigError("notifiers", f"expected a non-empty notifier name, got {name!r}")
            if not isinstance(spec, tuple(_SPECS.values())):
                raise ConfigError(
                    f"notifiers.{name}",
                    f"expected one of {', '.join(c.__name__ for c in _SPECS.values())}, "
                    f"got {type(spec).__name__}",
                )
        for number, route in enumerate(self.routes or (), start=1):
            if not isinstance(route, Route):
                raise ConfigError(
                    f"routes[{number}]", f"expected a Route, got {type(route).__name__}"
                )
            if route.notifier not in self.notifiers:
                configured = ", ".join(sorted(self.notifiers)) or "none"
                raise ConfigError(
                    f"routes[{number}].notifier",
                    f"no notifier is named {route.notifier!r}; name one of the configured "
                    f"notifiers ({configured}) or add a "
                    f"[notifiers.{_key_text([route.notifier])}] table",
                )

    @property
    def root(self) -> Path:
        """The folder that relative paths and default folders are in: the file's, else the cwd."""
        return self.source.parent if self.source is not None else Path.cwd()

    # -- building the flow ----------------------------------------------------

    def build_notifiers(self, environ: Mapping[str, str] | None = None) -> list[Notifier]:
        """The configured notifiers, with their secrets read from ``environ`` (default: os.environ).

        Raises ConfigError naming the ``*_env`` key when a variable is not set.
        """
        environ = os.environ if environ is None else environ
        built: list[Notifier] = []
        try:
            for name, spec in self.notifiers.items():
                try:
                    built.append(spec.build(name, environ))
                except ConfigError as exc:
                    key = _key_text(["notifiers", name, "\x00" + exc.key])
                    raise ConfigError(_where(self._source_text, key), _message(exc)) from None
        except BaseException:
            for notifier in built:
                notifier.close()
            raise
        return built

    def store_url(self, *, masked: bool = False) -> str | None:
        """The store URL :meth:`open_flow` opens, without overrides.

        ``INCIDENTFLOW_URL`` if set, else :attr:`store`, else the embedded
        SQLite default in :attr:`root` (``None`` when there is no file either:
        :func:`~incidentflow.stores.open_store`'s own default).
        """
        url = os.environ.get(_STORE_ENV) or self.store
        if url is None and self.source is not None:
            url = _sqlite_url(self.root / ".agent" / "incidents" / "incidentflow.db")
        return _mask_password(url) if masked and url is not None else url

    def open_flow(self, **overrides: Any) -> IncidentFlow:
        """The :class:`~incidentflow.IncidentFlow` this configuration describes.

        Each keyword of ``IncidentFlow`` given here wins over the configuration
        (``store=`` takes a URL or a Store; ``incidents_dir=None`` writes no
        incident files). Giving ``notifiers=`` replaces the configured
        notifiers, and then the configured routes too unless ``routes=`` is given.

        The store is, in order: ``store=``, ``INCIDENTFLOW_URL``, :attr:`store`,
        SQLite at ``.agent/incidents/incidentflow.db`` in :attr:`root`.
        """
        from ._flow import DEFAULT_INCIDENTS_DIR, DEFAULT_KNOWLEDGE_DIR, IncidentFlow
        from .stores._base import Store
        from .stores._url import open_store

        store = overrides.pop("store", None)
        settings: dict[str, Any] = {
            "policy": self.policy,
            "retry": self.retry,
            "deliver_inline": self.deliver_inline,
            "delivery_lease": self.delivery_lease,
            "incidents_dir": self._folder(self.incidents_dir, DEFAULT_INCIDENTS_DIR),
            "knowledge_dir": self._folder(self.knowledge_dir, DEFAULT_KNOWLEDGE_DIR),
        }
        if "notifiers" in overrides:
            settings["routes"] = None
        else:
            settings["notifiers"] = self.build_notifiers()
            settings["routes"] = self.routes
        settings.update(overrides)
        given = isinstance(store, Store)
        try:
            if not given:
                store = self._open_store(open_store, store)
            try:
                return IncidentFlow(store, **settings)
            except BaseException:
                if not given:  # close only what was opened here
                    store.close()
                raise
        except BaseException:
            if "notifiers" not in overrides:
                for notifier in settings["notifiers"]:
                    notifier.close()
            raise

    def _open_store(self, open_store: Callable[[str | None], Any], url: object) -> Any:
        if url is not None:
            key = "store"
        elif os.environ.get(_STORE_ENV):
            url, key = os.environ[_STORE_ENV], _STORE_ENV
        else:
            url, key = self.store_url(), _where(self._source_text, "store")
        try:
            return open_store(url)  # type: ignore[arg-type]
        except ConfigError as exc:
            raise _rekey(exc, key) from None

    def _folder(self, value: Path | None, default: Path) -> Path:
        folder = value if value is not None else default
        return self.source.parent / folder if self.source is not None else folder

    @property
    def _source_text(self) -> str | None:
        return None if self.source is None else str(self.source)

    # -- writing it back ------------------------------------------------------

    def to_toml(self, *, masked: bool = True) -> str:
        """The configuration as a TOML document that :func:`load_config` reads back.

        With ``masked`` (the default), what might be a credential is hidden: a
        password in the store URL and the path and query of a literal webhook
        URL. Secrets themselves are never held, only the names of the
        environment variables that hold them.
        """
        import tomli_w

        document = self._document(masked)
        routes = document.pop("routes", None)
        if routes == []:
            document = {"routes": [], **document}
        text = _flat_lists(tomli_w.dumps(document))
        if routes:
            text += "\n" + _route_tables(routes)
        return text

    def _document(self, masked: bool) -> dict[str, Any]:
        document: dict[str, Any] = {}
        if self.store is not None:
            document["store"] = _mask_password(self.store) if masked else self.store
        for key in ("incidents_dir", "knowledge_dir"):
            value = getattr(self, key)
            if value is not None:
                document[key] = str(value)
        if self.actor is not None:
            document["actor"] = self.actor
        if self.routes is not None:
            document["routes"] = [_route_table(route) for route in self.routes]
        document["policy"] = _tidy(self.policy.to_dict())
        document["delivery"] = _tidy(
            {
                "inline": self.deliver_inline,
                "lease_seconds": self.delivery_lease.total_seconds(),
                "max_attempts": self.retry.max_attempts,
                "first_delay_seconds": self.retry.first_delay.total_seconds(),
                "multiplier": float(self.retry.multiplier),
                "max_delay_seconds": self.retry.max_delay.total_seconds(),
                "jitter": float(self.retry.jitter),
                "max_in_flight": self.max_in_flight,
                "poll_seconds": float(self.poll_interval),
            }
        )
        if self.notifiers:
            document["notifiers"] = {
                name: _spec_table(spec, masked) for name, spec in self.notifiers.items()
            }
        return document


def _tidy(value: Any) -> Any:
    """Whole floats as integers (``15`` rather than ``15.0``), in nested tables and lists."""
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _route_table(route: Route) -> dict[str, Any]:
    table: dict[str, Any] = {"notifier": route.notifier}
    if route.severities is not None:
        table["severities"] = sorted(s.value for s in route.severities)
    if route.events is not None:
        table["events"] = sorted(route.events)
    return table


def _spec_table(spec: NotifierSpec, masked: bool) -> dict[str, Any]:
    table: dict[str, Any] = {"type": spec.TYPE}
    for field in attrs.fields(type(spec)):
        value = getattr(spec, field.name)
        if value is None or (isinstance(value, Mapping) and not value):
            continue
        if field.name == "url" and masked:
            value = redact_url(value)
        if isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        table[field.name] = _tidy(value)
    return table


def _sqlite_url(path: Path) -> str:
    return "sqlite:///" + quote(path.as_posix())


def _anchor_store(url: str, folder: Path) -> str:
    """``url`` with a relative ``sqlite:///`` or ``file://`` path made relative to ``folder``."""
    scheme, _, rest = url.partition("://")
    base = quote(folder.as_posix())
    if scheme.lower() == "sqlite":
        path, question, query = rest.partition("?")
        if path.startswith("/") and not path.startswith("//") and len(path) > 1:
            return f"{scheme}:///{base.rstrip('/')}/{path[1:]}{question}{query}"
    elif scheme.lower() == "file" and rest and not rest.startswith("/"):
        return f"{scheme}://{base.rstrip('/')}/{rest}"
    return url


def _anchor_path(value: str, folder: Path) -> Path:
    path = Path(value)
    # ~name of a user this system does not know: then it is a folder named so.
    with contextlib.suppress(RuntimeError):
        path = path.expanduser()
    return folder / path


# -- reading files ----------------------------------------------------------------


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's content; ConfigError naming the file if unreadable or not TOML."""
    import tomllib

    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            str(path), "no such file; check the path, or run incidentflow init"
        ) from None
    except IsADirectoryError:
        raise ConfigError(str(path), "is a folder; give the path of a TOML file") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(path), f"is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}; fix the file there") from None


def _pyproject_table(path: Path, *, required: bool) -> Mapping[str, Any] | None:
    """``[tool.incidentflow]`` of a pyproject.toml; None (or ConfigError if required) if absent."""
    if not required:
        try:
            if b"incidentflow" not in path.read_bytes():
                return None
        except OSError:
            return None
    data = read_toml(path)
    tool = data.get("tool")
    table = tool.get("incidentflow") if isinstance(tool, dict) else None
    if table is None:
        if required:
            raise ConfigError(
                str(path),
                "has no [tool.incidentflow] table; add one, or give the path of an "
                "incidentflow.toml",
            )
        return None
    if not isinstance(table, dict):
        raise ConfigError(
            _where(path, "tool.incidentflow"), f"expected a table, got {_show(table)}"
        )
    return table


def _locate(
    path: str | os.PathLike[str] | None, start: str | os.PathLike[str] | None
) -> tuple[Path, str, Sequence[str], Mapping[str, Any]] | None:
    """The file (absolute), its name for messages, the table prefix and the table, or None.

    A file named by the caller or INCIDENTFLOW_CONFIG is named in messages as given.
    """
    named: Path | None = None
    if path is not None:
        named = Path(path)
    elif os.environ.get(CONFIG_ENV):
        named = Path(os.environ[CONFIG_ENV])
        if not named.exists():
            raise ConfigError(
                CONFIG_ENV, f"names {str(named)!r}, which does not exist; fix or unset {CONFIG_ENV}"
            )
    if named is not None:
        named = named.expanduser()
        if named.name == _PYPROJECT:
            table = _pyproject_table(named, required=True)
            assert table is not None
            return named.absolute(), str(named), _PYPROJECT_TABLE, table
        return named.absolute(), str(named), (), read_toml(named)
    folder = Path(start if start is not None else Path.cwd()).expanduser().absolute()
    if folder.is_file():
        folder = folder.parent
    for directory in (folder, *folder.parents):
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            return candidate, str(candidate), (), read_toml(candidate)
        pyproject = directory / _PYPROJECT
        if pyproject.is_file():
            found = _pyproject_table(pyproject, required=False)
            if found is not None:
                return pyproject, str(pyproject), _PYPROJECT_TABLE, found
    return None


def load_config(
    path: str | os.PathLike[str] | None = None, *, start: str | os.PathLike[str] | None = None
) -> Config:
    """The configuration in ``path``, or the one found for the current folder.

    With ``path``: that file; a ``pyproject.toml`` is read for its
    ``[tool.incidentflow]`` table, any other file as a whole. Without it: the
    file named by ``INCIDENTFLOW_CONFIG``, else the nearest ``incidentflow.toml``
    or ``pyproject.toml`` with a ``[tool.incidentflow]`` table, looking in
    ``start`` (default: the current folder) and then each parent folder up to
    the root; in one folder ``incidentflow.toml`` wins. Without any file, the
    defaults: ``Config()``.

    Relative paths in the file (``incidents_dir``, ``knowledge_dir``, a
    ``sqlite:///`` or ``file://`` store) are relative to the file's folder.

    Raises:
        ConfigError: The file is missing, unreadable or not TOML (the message
            has the line), or a key is unknown or its value wrong (the key is
            ``"<file>: <dotted.key>"``, the message says what is accepted).

    """
    located = _locate(path, start)
    if located is None:
        return Config()
    source, name, prefix, data = located
    table = _structure(data, _FileTable, name, prefix)
    folder = source.parent
    kwargs: dict[str, Any] = {
        "store": None if table.store is None else _anchor_store(table.store, folder),
        "incidents_dir": None
        if table.incidents_dir is None
        else _anchor_path(table.incidents_dir, folder),
        "knowledge_dir": None
        if table.knowledge_dir is None
        else _anchor_path(table.knowledge_dir, folder),
        "actor": table.actor,
        "notifiers": table.notifiers,
        "source": source,
    }
    where = ".".join(prefix)
    try:
        kwargs["policy"] = table.policy.to_policy()
    except ConfigError as exc:
        raise _rekey(exc, _where(name, where, "policy", exc.key)) from None
    try:
        kwargs.update(table.delivery.settings())
    except ConfigError as exc:
        raise _rekey(exc, _where(name, where, "delivery", exc.key.removeprefix("retry."))) from None
    if table.routes is not None:
        routes = []
        for number, route in enumerate(table.routes, start=1):
            try:
                routes.append(route.to_route())
            except ConfigError as exc:
                key = f"routes[{number}].{exc.key.rpartition('.')[2]}"
                raise _rekey(exc, _where(name, where, key)) from None
        kwargs["routes"] = routes
    try:
        return Config(**kwargs)
    except ConfigError as exc:
        raise _rekey(exc, _where(name, where, exc.key)) from None


# -- the starter file -------------------------------------------------------------

_HEADER = """\
# incidentflow configuration.
#
# The command line and IncidentFlow.from_config() find this file by looking in the
# current folder and then each parent folder. Relative paths are relative to the
# folder this file is in. Precedence: command-line flags, then the environment
# (INCIDENTFLOW_URL), then this file, then the defaults. Every key is optional;
# the values below are the defaults.
"""

_NOTIFIERS_HELP = """\
# Notifiers: who hears about events, one [notifiers.NAME] table each; NAME is
# what routes refer to. type is one of email, log, slack, webhook. Secrets are
# never written here: a *_env key names the environment variable holding one.
# Without [[routes]], every notifier hears every event.
"""


def _example() -> Config:
    return Config(
        notifiers={
            "pager": WebhookNotifierSpec(
                url="https://pager.example.com/hooks/incidents",
                secret_env="PAGER_SIGNING_SECRET",
                incident_url="https://ops.example.com/incidents/{id}",
            ),
            "chat": SlackNotifierSpec(webhook_url_env="SLACK_WEBHOOK_URL"),
            "mail": EmailNotifierSpec(
                host="smtp.example.com",
                sender="incidents@example.com",
                recipients=("oncall@example.com",),
                username="incidents",
                password_env="SMTP_PASSWORD",
            ),
        },
        routes=(
            Route("pager", severities={"P1", "P2"}, events={"declared", "deadline_breached"}),
            Route("chat"),
            Route("mail", events={"resolved", "postmortem_completed"}),
        ),
    )


def _comments() -> dict[str, str]:
    """The help of every table and key, by dotted key."""
    found: dict[str, str] = {}
    for table, cl in (("", _FileTable), ("policy", _PolicyTable), ("delivery", _DeliveryTable)):
        for field in attrs.fields(cl):
            key = f"{table}.{field.name}" if table else field.name
            found[key] = field.metadata["help"]
    return found


def _commented(text: str, comments: Mapping[str, str]) -> str:
    """``text`` (as tomli-w writes it) with each key's and table's help above it."""
    out: list[str] = []
    table = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[([^\[\]]+)\]", line)
        key = re.match(r"([A-Za-z0-9_-]+) = ", line)
        dotted = None
        if header:
            table = header[1]
            dotted = table
        elif key:
            dotted = f"{table}.{key[1]}" if table else key[1]
        if dotted is not None and dotted in comments:
            out.extend(_wrap(comments[dotted]))
        out.append(line)
    return "\n".join(out) + "\n"


def _wrap(text: str, width: int = 86) -> list[str]:
    import textwrap

    return ["# " + line for line in textwrap.wrap(text, width - 2)]


def default_config_toml() -> str:
    """A commented ``incidentflow.toml`` holding the defaults (``incidentflow init`` writes it).

    The values come from :class:`Config`'s defaults, so the file cannot drift
    from them; examples of settings with no default (the store, folders,
    notifiers and routes) are commented out.
    """
    import tomli_w

    comments = _comments()
    defaults = Config()
    parts = [_HEADER]
    examples: dict[str, Any] = {
        "store": "sqlite:///.agent/incidents/incidentflow.db",
        "incidents_dir": ".agent/incidents",
        "knowledge_dir": ".agent/knowledge/gotchas",
        "actor": "alice",
    }
    for key, value in examples.items():
        parts.append("\n".join([*_wrap(comments[key]), "# " + tomli_w.dumps({key: value})]))
    document = defaults._document(masked=False)
    body = {key: document[key] for key in ("policy", "delivery")}
    parts.append(_commented(_flat_lists(tomli_w.dumps(body)), comments).rstrip("\n") + "\n")
    example = _example()._document(masked=False)
    sample = _flat_lists(tomli_w.dumps({"notifiers": example["notifiers"]}))
    sample += "\n" + _route_tables(example["routes"])
    parts.append(
        _NOTIFIERS_HELP + "\n".join(f"# {line}" if line else "#" for line in sample.splitlines())
    )
    return "\n".join(parts).rstrip("\n") + "\n"


def _route_tables(routes: Sequence[Mapping[str, Any]]) -> str:
    import tomli_w

    blocks = []
    for route in routes:
        body = tomli_w.dumps(dict(route))
        blocks.append("[[routes]]\n" + _flat_lists(body))
    return "\n".join(blocks)


def _flat_lists(text: str) -> str:
    """Short lists on one line: ``["P1", "P2"]`` instead of one item per line."""
    return re.sub(
        r"\[\n((?:    .*\n)+?)\]",
        lambda m: "[" + ", ".join(item.strip().rstrip(",") for item in m[1].splitlines()) + "]",
        text,
    )
