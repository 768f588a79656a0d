"""The store setting: checking a URL, anchoring relative paths, opening the store."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, urlsplit

from .._toml import toml_shown
from .._urls import mask_password
from ..exceptions import ConfigError
from ._common import rekey

if TYPE_CHECKING:
    from ..stores._base import Store

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_INCIDENTS_DIR",
    "DEFAULT_KNOWLEDGE_DIR",
    "STORE_ENV",
    "anchor_path",
    "anchor_store",
    "check_store_url",
    "configured_url",
    "open_configured_store",
    "sqlite_url",
]

#: The store URL's environment variable (it wins over the file's ``store``).
STORE_ENV: Final = "INCIDENTFLOW_URL"
#: Where incident files go unless the configuration says otherwise (as IncidentFlow.open).
DEFAULT_INCIDENTS_DIR: Final = Path(".agent/incidents")
#: Where KB gotchas go unless the configuration says otherwise (as IncidentFlow.open).
DEFAULT_KNOWLEDGE_DIR: Final = Path(".agent/knowledge/gotchas")
#: Where the embedded SQLite store is kept, in the configuration file's folder.
DEFAULT_DATABASE: Final = DEFAULT_INCIDENTS_DIR / "incidentflow.db"

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def check_store_url(key: str, value: str) -> None:
    """A store URL: ``scheme://...`` with no password in it."""
    scheme, separator, _ = value.partition("://")
    if not separator or not _SCHEME.fullmatch(scheme):
        raise ConfigError(
            key,
            f"expected a store URL (sqlite:///PATH, file://DIR, postgresql://..., memory://), "
            f"got {toml_shown(mask_password(value))}",
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


def sqlite_url(path: Path) -> str:
    """The ``sqlite:///`` URL of ``path``."""
    return "sqlite:///" + quote(path.as_posix())


def anchor_store(url: str, folder: Path) -> str:
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


def anchor_path(value: str, folder: Path) -> Path:
    """``value``, a folder written in the file, relative to the file's ``folder``."""
    path = Path(value)
    # ~name of a user this system does not know: then it is a folder named so.
    with contextlib.suppress(RuntimeError):
        path = path.expanduser()
    return folder / path


def configured_url(
    store: str | None, root: Path | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """``INCIDENTFLOW_URL``, else the file's ``store``, else SQLite in the file's folder ``root``.

    ``None`` when there is no file either: :func:`~incidentflow.stores.open_store`'s default.
    """
    environ = os.environ if environ is None else environ
    url = environ.get(STORE_ENV) or store
    if url is None and root is not None:
        url = sqlite_url(root / DEFAULT_DATABASE)
    return url


def open_configured_store(
    given: object, store: str | None, root: Path | None, source: str | None
) -> Store:
    """The store: the URL ``given`` by a keyword, else :func:`configured_url`'s.

    A ConfigError names what the URL came from: ``store``, ``INCIDENTFLOW_URL``
    or ``<file>: store``.
    """
    from ..stores._url import open_store

    if given is not None:
        url, key = given, "store"
    elif os.environ.get(STORE_ENV):
        url, key = os.environ[STORE_ENV], STORE_ENV
    else:
        url, key = configured_url(store, root), f"{source}: store" if source else "store"
    try:
        return open_store(url)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise rekey(exc, key) from None
