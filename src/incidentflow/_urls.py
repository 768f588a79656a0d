"""Connection URLs in messages, reprs and logs: the password masked, the rest kept.

Shared by the configuration and the stores, which both quote store URLs back
to the user; a mistyped URL is quoted too, so the masking works on text that
:func:`urllib.parse.urlsplit` would refuse.
"""

from __future__ import annotations

import re

from .notifiers._secrets import MASK

__all__ = ["mask_password"]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# libpq takes the password as a query option (?password=) or a keyword (password=...).
# sslpassword (the client key's passphrase) is one too: every option ending in "password".
_PASSWORD_OPTION = re.compile(
    r"(\b[A-Za-z_]*password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&#]*)", re.IGNORECASE
)


def mask_password(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part, and any ``password=``, masked.

    The user info ends at the last ``@``, so a password holding an unencoded
    ``/``, ``@`` or ``[`` is masked whole. Without ``scheme://`` the user and
    the password cannot be told apart, and everything before the ``@`` is masked.

    >>> mask_password("postgresql://ops:hunter2@db/incidents")
    'postgresql://ops:***@db/incidents'
    >>> mask_password("postgresql//ops:hunter2@db/incidents")
    '***@db/incidents'
    >>> mask_password("postgresql://db/incidents?password=hunter2&sslmode=require")
    'postgresql://db/incidents?password=***&sslmode=require'
    >>> mask_password("postgresql://db/incidents?sslmode=verify-full&sslpassword=k3y")
    'postgresql://db/incidents?sslmode=verify-full&sslpassword=***'
    >>> mask_password("sqlite:///data/incidents.db")
    'sqlite:///data/incidents.db'
    """
    at = url.rfind("@")
    if at >= 0:
        scheme = _SCHEME.match(url)
        if scheme is None:
            url = MASK + url[at:]
        else:
            user, colon, _ = url[scheme.end() : at].partition(":")
            if colon:
                url = f"{url[: scheme.end()]}{user}:{MASK}{url[at:]}"
    return _PASSWORD_OPTION.sub(lambda found: found[1] + MASK, url)
