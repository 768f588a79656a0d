"""``[web]``: who may call the HTTP service (``incidentflow serve``).

::

    [web]
    tokens = { "ci-bot" = "env:CI_BOT_TOKEN" }            # actor name = env:VARIABLE
    alert_tokens = { "alertmanager" = "env:AM_TOKEN" }    # bearer tokens for /api/alerts/*
    alert_secrets = { "grafana" = "env:GRAFANA_SECRET" }  # HMAC-SHA256 signing secrets
    inline = false                                        # store work always in threads

Secrets stay out of the file: each value names the environment variable holding it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .._toml import toml_shown
from ..exceptions import ConfigError
from ._common import env_name, instance, meta, validated

__all__ = ["WEB_ACCEPT", "WebTable"]

#: What ``web`` accepts, as errors and the reference page say it.
WEB_ACCEPT = "a table with tokens, alert_tokens, alert_secrets and inline"
_ACCEPTS = 'a table of name = "env:VARIABLE", e.g. { "ci-bot" = "env:CI_BOT_TOKEN" }'


def _named_secrets(key: str, value: object) -> None:
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"expected {_ACCEPTS}, got {toml_shown(value)}")
    for name, secret in value.items():
        if not isinstance(secret, str) or not secret.startswith("env:"):
            raise ConfigError(
                f"{key}.{name}",
                'keep secrets out of the file: write "env:VARIABLE" naming the variable '
                f"holding it, got {toml_shown(secret)}",
            )
        env_name(f"{key}.{name}", secret.removeprefix("env:"))


@attrs.frozen(kw_only=True)
class WebTable:
    """The ``[web]`` table, as written: each secret as ``env:VARIABLE``."""

    tokens: dict[str, str] = attrs.field(
        factory=dict,
        validator=validated(_named_secrets),
        metadata=meta(
            "API bearer tokens by the actor they name; with none, X-Actor names the actor.",
            _ACCEPTS,
        ),
    )
    alert_tokens: dict[str, str] = attrs.field(
        factory=dict,
        validator=validated(_named_secrets),
        metadata=meta(
            "Bearer tokens admitting the alert endpoints.",
            _ACCEPTS,
        ),
    )
    alert_secrets: dict[str, str] = attrs.field(
        factory=dict,
        validator=validated(_named_secrets),
        metadata=meta(
            "HMAC-SHA256 secrets admitting signed alert bodies (X-Incidentflow-Signature).",
            _ACCEPTS,
        ),
    )

    inline: bool | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(instance(bool, "true or false")),
        metadata=meta(
            "Short store work on the event loop while it is idle (true), always in worker"
            " threads (false); left out, decided by the store and policy.",
            "true or false",
        ),
    )

    def options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`incidentflow.web.app` this table sets."""
        options: dict[str, Any] = {
            "tokens": dict(self.tokens),
            "alert_tokens": dict(self.alert_tokens),
            "alert_secrets": dict(self.alert_secrets),
        }
        if self.inline is not None:
            options["inline"] = self.inline
        return options
