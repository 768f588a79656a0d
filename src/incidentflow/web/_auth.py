"""Who is calling: bearer tokens and HMAC signatures, checked in constant time.

Tokens are configured by name (the name is the actor the request runs as):
``{"ci-bot": "env:CI_BOT_TOKEN"}`` reads the token from the environment, any
other text is the token itself. Only the sha256 digest of each token is kept;
a presented token is hashed and compared with every digest by
:func:`hmac.compare_digest`, so neither the comparison nor the loop stops early.

An HMAC secret must be kept as given (the signature is computed with it): the
``X-Incidentflow-Signature: sha256=<hex>`` header is the HMAC-SHA256 of the
raw body, compared in constant time with each configured secret's.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from typing import Final

from ..exceptions import ConfigError

__all__ = ["ANONYMOUS", "SIGNATURE_HEADER", "Signatures", "Tokens", "bearer", "sign"]

#: Whom a request reads for when it names no actor: no incident is restricted to it.
ANONYMOUS: Final = "(anonymous)"
#: The header carrying an HMAC-SHA256 signature of the raw request body.
SIGNATURE_HEADER: Final = "X-Incidentflow-Signature"
_ENV_PREFIX: Final = "env:"


def _resolved(option: str, name: object, value: object, environ: Mapping[str, str]) -> bytes:
    """The secret ``value`` names: ``env:VAR`` is read from the environment."""
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ConfigError(f"{option}.{name}", "expected a name (the actor), up to 200 characters")
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{option}.{name}", 'expected a secret, or "env:VAR" naming the variable holding it'
        )
    if value.startswith(_ENV_PREFIX):
        variable = value.removeprefix(_ENV_PREFIX)
        found = environ.get(variable)
        if not found:
            raise ConfigError(
                f"{option}.{name}", f"the environment variable {variable} is unset or empty; set it"
            )
        value = found
    if len(value) < 16:
        raise ConfigError(
            f"{option}.{name}", "is shorter than 16 characters; use a long random secret"
        )
    return value.encode()


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


class Tokens:
    """Bearer tokens by actor name, kept as sha256 digests only."""

    def __init__(
        self,
        configured: Mapping[str, str] | None,
        *,
        option: str = "tokens",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        if configured is not None and not isinstance(configured, Mapping):
            raise ConfigError(option, "expected a table of actor name = token (or env:VAR)")
        self._digests: tuple[tuple[str, bytes], ...] = tuple(
            (name, _digest(_resolved(option, name, value, env)))
            for name, value in (configured or {}).items()
        )

    def __bool__(self) -> bool:
        return bool(self._digests)

    def joined(self, digests: Iterable[tuple[str, str]]) -> Tokens:
        """These tokens and others kept as (actor, SHA-256 hex digest), as ``[access]`` keeps them.

        Raises:
            ConfigError: A digest is not 64 hexadecimal digits.

        """
        more = []
        for name, hexdigest in digests:
            try:
                digest = bytes.fromhex(hexdigest)
            except (TypeError, ValueError):
                digest = b""
            if len(digest) != hashlib.sha256().digest_size:
                raise ConfigError(f"access.tokens.{name}", "expected a SHA-256 hex digest")
            more.append((name, digest))
        joined = Tokens(None)
        joined._digests = self._digests + tuple(more)
        return joined

    @property
    def names(self) -> tuple[str, ...]:
        """The configured actors' names."""
        return tuple(name for name, _ in self._digests)

    def actor(self, token: str | None) -> str | None:
        """The actor whose token this is, or ``None``; every digest is compared."""
        if not token:
            return None
        presented = _digest(token.encode())
        found = None
        for name, digest in self._digests:
            if hmac.compare_digest(presented, digest) and found is None:
                found = name
        return found


class Signatures:
    """HMAC-SHA256 secrets by sender name, for signed request bodies."""

    def __init__(
        self,
        configured: Mapping[str, str] | None,
        *,
        option: str = "alert_secrets",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        if configured is not None and not isinstance(configured, Mapping):
            raise ConfigError(option, "expected a table of sender name = secret (or env:VAR)")
        self._secrets: tuple[tuple[str, bytes], ...] = tuple(
            (name, _resolved(option, name, value, env))
            for name, value in (configured or {}).items()
        )

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def sender(self, header: str | None, body: bytes) -> str | None:
        """Who signed ``body`` (``sha256=<hex>`` in ``header``), or ``None``."""
        if not header or not header.startswith("sha256="):
            return None
        try:
            presented = bytes.fromhex(header.removeprefix("sha256="))
        except ValueError:
            return None
        found = None
        for name, secret in self._secrets:
            expected = hmac.new(secret, body, hashlib.sha256).digest()
            if hmac.compare_digest(presented, expected) and found is None:
                found = name
        return found


def sign(secret: str | bytes, body: bytes) -> str:
    """The ``X-Incidentflow-Signature`` value for ``body`` (what a sender computes)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if it is one."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
