"""Connection strings, schema names and pool sizes for PostgresStore; its error messages."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..._urls import mask_password
from ...exceptions import (
    ConfigError,
)

#: Options of the URL's query that the store reads itself; the others go to libpq.
#: The schema a store uses unless told otherwise.
DEFAULT_SCHEMA = "incidentflow"

_STORE_OPTIONS = ("schema", "min_size", "max_size")

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _parse_dsn(dsn: object) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The connection string for libpq, the store's own options, and libpq's parameters."""
    if not isinstance(dsn, str) or not dsn.strip():
        raise ConfigError("dsn", f"expected a PostgreSQL URL or connection string, got {dsn!r}")
    options: dict[str, str] = {}
    conninfo = dsn
    password = ""
    if "://" in dsn:
        try:
            parts = urlsplit(dsn)
        except ValueError:
            # urlsplit's own message can quote the host part, password and all.
            raise ConfigError(
                "dsn",
                f"malformed URL {mask_password(dsn)!r}: {_url_problem(dsn)}",
            ) from None
        scheme = parts.scheme.lower()
        if scheme not in ("postgresql", "postgres"):
            raise ConfigError("dsn", f"expected a postgresql:// URL, got a {scheme}:// one")
        password = unquote(parts.netloc.rpartition("@")[0].partition(":")[2])
        passed = []
        # Read as libpq reads a URI: percent-decoded only, a "+" stays a plus.
        for name, value in parse_qsl(parts.query.replace("+", "%2B"), keep_blank_values=True):
            if name in _STORE_OPTIONS:
                options[name] = value
            else:
                passed.append((name, value))
        # Rebuilt by hand: urlunsplit drops the "//" of an empty host (the Unix socket);
        # a space as %20, since libpq would keep a "+" as it is.
        query = urlencode(passed, quote_via=quote)
        conninfo = f"postgresql://{parts.netloc}{parts.path}{'?' + query if query else ''}"
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        message = _scrub(_problem(exc), password)
        raise ConfigError(
            "dsn",
            f"not a valid PostgreSQL connection string ({message}); use "
            "postgresql://user@host:port/dbname or 'host=... dbname=...'",
        ) from None
    return make_conninfo("", **params), options, params


def _url_problem(dsn: str) -> str:
    """Why urlsplit refuses ``dsn`` and what would do, in words that quote none of it."""
    user_info, _, host = dsn.partition("://")[2].rpartition("@")
    if "[" in host or "]" in host:
        return "an IPv6 host goes between matching brackets; e.g. postgresql://user@[::1]/db"
    if "[" in user_info or "]" in user_info:
        return (
            "write [ and ] in a user name or password as %5B and %5D; "
            "e.g. postgresql://user:p%5B1%5D@host/db"
        )
    return "the host holds characters a URL cannot; e.g. postgresql://user@host/db"


def _scrub(text: str, password: str) -> str:
    """``text`` without the password, whether known or only recognisable."""
    if password:
        text = text.replace(password, "***").replace(quote(password, safe=""), "***")
    text = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text)
    return re.sub(r"(://[^:/?#@\s]*:)[^@/\s]*@", r"\1***@", text)


def _display(params: dict[str, Any]) -> str:
    """``postgresql://user@host:port/dbname`` for messages: never the password."""
    user = params.get("user") or os.environ.get("PGUSER") or _os_user()
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or ""
    port = params.get("port") or os.environ.get("PGPORT") or ""
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or user
    where = host if host and not host.startswith("/") else ""
    if port and where:
        where += f":{port}"
    text = f"postgresql://{user}@{where}/{dbname}"
    if not where:
        socket = f" in {host}" if host else ""
        text += f" (Unix socket{socket}{', port ' + str(port) if port else ''})"
    return text


def _os_user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        return "?"


def _schema_name(value: object) -> str:
    name = DEFAULT_SCHEMA if value is None else value
    if not isinstance(name, str) or not _SCHEMA_NAME.fullmatch(name):
        raise ConfigError(
            "schema",
            f"{value!r} is not a schema name this store uses: lower-case letters, digits "
            "and underscores, starting with a letter or underscore, at most 63",
        )
    return name


def _pool_size(key: str, given: int | None, option: str | None, default: int) -> int:
    value: object = given if given is not None else option if option is not None else default
    try:
        size = int(str(value))
    except ValueError:
        size = -1
    if size < (1 if key == "max_size" else 0) or isinstance(value, bool):
        raise ConfigError(key, f"expected a whole number of connections, got {value!r}")
    return size


def _problem(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    # libpq repeats the server's answer over several lines; the first two say it all.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:2])


def _hint(exc: BaseException) -> str:
    text = str(exc).lower()
    if "connection refused" in text or "no such file or directory" in text:
        return "; is the server running and accepting connections on that host and port?"
    if "does not exist" in text and "database" in text:
        return "; create the database (createdb) or name an existing one"
    if "role" in text and "does not exist" in text:
        return "; create the role (createuser) or connect as an existing one"
    if "password authentication failed" in text or "no password supplied" in text:
        return "; check the user name and password"
    if "timeout expired" in text or "could not translate host name" in text:
        return "; check the host name and that the server is reachable from here"
    if "permission denied" in text:
        return "; grant the user the rights on the schema, or use a schema it owns"
    if "disk full" in text or "no space left" in text:
        return "; the database server ran out of disk space (nothing of this command was written)"
    return ""


def _connection_lost(exc: psycopg.Error) -> bool:
    state = exc.sqlstate
    return isinstance(exc, psycopg.OperationalError) and (
        state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")
    )
