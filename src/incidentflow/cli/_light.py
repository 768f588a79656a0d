"""``list`` without the library: one indexed query on the SQLite file, when that is enough.

``incidentflow list`` is what a responder runs first and most. Opening the
whole flow (configuration, policy, notifiers, the store's snapshot machinery)
costs several times the query itself, so when the store is a SQLite file at
this release's schema and the configuration holds nothing but the few
settings checked here, the listing is read directly from the ``incidents``
table with :mod:`sqlite3`: the same SQL, the same order, the same rows.

Whenever this module cannot be certain it gives the same answer, the same
error and the same side effects as the full path (a configuration with more
in it, a store that is not SQLite, a file that is missing, foreign, older or
newer, a filter that needs the policy, a value the library would refuse),
it answers ``None`` and the command opens the flow as usual. It never writes.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, unquote

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "Listing", "light_listing"]

#: ``stores.sqlite._schema.SCHEMA_VERSION`` and ``APPLICATION_ID``, kept here so that a
#: listing imports no store; a test checks they agree (another version: the full path).
SCHEMA_VERSION = 9
APPLICATION_ID = 0x49464C57

#: ``_validate.NAME_MAX``: the longest commander or text filter the library accepts.
_NAME_MAX = 200

# The file's keys a listing can take as they are; any other key needs the full configuration.
_SIMPLE_KEYS = frozenset({"store", "incidents_dir", "knowledge_dir", "actor", "display_timezone"})
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_DEFAULT_DATABASE = Path(".agent") / "incidents" / "incidentflow.db"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The columns and order of the SQLite store's summaries (stores.sqlite._rows._list_sql).
_SELECT = "SELECT id, title, severity, state, commander, declared_at, version FROM incidents"


class Listing(NamedTuple):
    """One row of ``list``: what its table and its JSON show."""

    id: str
    title: str
    severity: str
    state: str
    commander: str
    declared_at: datetime
    version: int


class _Settings(NamedTuple):
    """What a listing needs of the configuration: the database and the display zone."""

    database: Path
    display_timezone: str | None


def light_listing(
    store: str | None,
    config_path: str | None,
    *,
    open_only: bool,
    states: Sequence[str],
    severities: Sequence[str],
    commander: str | None,
    text: str | None,
    since: datetime | None,
    until: datetime | None,
    newest_first: bool,
    limit: int | None,
) -> tuple[list[Listing], str | None] | None:
    """The rows ``list`` prints and the configured display zone; ``None``: open the flow.

    ``store`` and ``config_path`` are ``--store`` and ``--config``; the filters
    are the command's, as click checked them.
    """
    if not (_plain_name(commander) and _plain_name(text)):
        return None  # the library's checks of these texts decide, and word the refusal
    try:
        settings = _settings(store, config_path)
        if settings is None:
            return None
        filters = _Filters(
            open_only, states, severities, commander, text, since, until, newest_first, limit
        )
        rows = _query(settings.database, filters)
    except (OSError, ValueError, RuntimeError, sqlite3.Error):
        return None  # the full path meets the same problem and reports it as it always has
    return None if rows is None else (rows, settings.display_timezone)


def _plain_name(value: str | None) -> bool:
    """Whether the library would take ``value`` as a one-line name exactly as it is."""
    if value is None:
        return True
    # isprintable() is False for every control, separator, bidi and surrogate character.
    return (
        bool(value) and value == value.strip() and len(value) <= _NAME_MAX and value.isprintable()
    )


# -- the configuration --------------------------------------------------------------


def _settings(store: str | None, config_path: str | None) -> _Settings | None:
    """The database and display zone, when the configuration surely loads as they say."""
    found = _locate(config_path)
    if found is None:
        return None
    source, table = found
    if table is None:
        root, file_store, zone = None, None, None
    else:
        if not _SIMPLE_KEYS.issuperset(table) or not all(
            _one_line(table[key])
            for key in ("incidents_dir", "knowledge_dir", "actor")
            if key in table
        ):
            return None
        file_store, zone = table.get("store"), table.get("display_timezone")
        if file_store is not None and not _file_store_url(file_store):
            return None
        if zone is not None and not _time_zone(zone):
            return None
        assert source is not None
        root = source.parent
    # --store, else INCIDENTFLOW_URL (both relative to here), else the file's, else the default.
    url, folder = store, None
    if url is None:
        url = os.environ.get("INCIDENTFLOW_URL") or None
    if url is None and file_store is not None:
        url, folder = file_store, root
    if url is None:
        database = _DEFAULT_DATABASE if root is None else root / _DEFAULT_DATABASE
    elif (found_path := _sqlite_path(url, folder)) is not None:
        database = found_path
    else:
        return None
    return _Settings(database, zone)


def _locate(config_path: str | None) -> tuple[Path | None, Mapping[str, Any] | None] | None:
    """The configuration file and its table, ``(None, None)`` when there is none.

    ``None`` when only the full load can tell (a file named that is missing, a
    file that is not TOML, a table of the wrong shape).
    """
    named = config_path if config_path is not None else os.environ.get("INCIDENTFLOW_CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            return None
        if path.name == "pyproject.toml":
            table = _tool_table(path)
            return None if table is None else (path.absolute(), table)
        data = _read(path)
        return None if data is None else (path.absolute(), data)
    if config_path is not None:
        return None  # --config "": the full load words the refusal
    folder = Path.cwd().absolute()
    for directory in (folder, *folder.parents):
        candidate = directory / "incidentflow.toml"
        if candidate.is_file():
            data = _read(candidate)
            return None if data is None else (candidate, data)
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            if b"incidentflow" not in pyproject.read_bytes():
                continue
            data = _read(pyproject)
            if data is None:
                return None
            tool = data.get("tool")
            if not isinstance(tool, dict) or "incidentflow" not in tool:
                continue
            table = tool["incidentflow"]
            return (pyproject, table) if isinstance(table, dict) else None
    return None, None


def _tool_table(path: Path) -> Mapping[str, Any] | None:
    data = _read(path)
    tool = None if data is None else data.get("tool")
    table = tool.get("incidentflow") if isinstance(tool, dict) else None
    return table if isinstance(table, dict) else None


def _read(path: Path) -> dict[str, Any] | None:
    """A TOML file's content, or ``None`` if it is not TOML (the full load says why)."""
    import tomllib

    try:
        return tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None


def _one_line(value: object) -> bool:
    # config._common.line: non-empty text on one line.
    return (
        isinstance(value, str) and bool(value.strip()) and not any(c in value for c in "\r\n\x00")
    )


def _file_store_url(value: object) -> bool:
    """Whether config._store.check_store_url surely accepts ``value``: a URL without ``@``."""
    if not isinstance(value, str) or "@" in value:
        return False
    scheme, separator, _ = value.partition("://")
    return bool(separator) and _SCHEME.fullmatch(scheme) is not None


def _time_zone(value: object) -> bool:
    """Whether config._config.time_zone accepts ``value``: an IANA name, as written."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(value, str) or not value or value.strip() != value:
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _sqlite_path(url: str, folder: Path | None) -> Path | None:
    """The file of a ``sqlite:///`` URL that opens as stores._url does; else ``None``.

    ``folder``: the configuration file's, when the URL was written in it (relative
    paths are relative to it, as config._store.anchor_store makes them).
    """
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.lower() != "sqlite":
        return None
    path_part, _, query = rest.partition("?")
    if not path_part.startswith("/") or not path_part[1:]:
        return None
    options = dict(parse_qsl(query, keep_blank_values=True))
    if options.pop("synchronous", "FULL").upper() not in ("FULL", "NORMAL") or options:
        return None
    if folder is not None and not path_part.startswith("//"):
        return Path(unquote(f"{quote(folder.as_posix()).rstrip('/')}/{path_part[1:]}"))
    return Path(unquote(path_part[1:]))


# -- the query ---------------------------------------------------------------------


class _Filters(NamedTuple):
    """The filters of ``list`` that the incidents table answers alone."""

    open_only: bool
    states: Sequence[str]
    severities: Sequence[str]
    commander: str | None
    text: str | None
    since: datetime | None
    until: datetime | None
    newest_first: bool
    limit: int | None


def _query(database: Path, filters: _Filters) -> list[Listing] | None:
    """The matching rows, or ``None`` when the file is not one the store would only read."""
    open_only, states, severities, commander, text, since, until, newest_first, limit = filters
    if not database.is_file():
        return None  # the store would create it
    # mode=rw never creates the file; closing the last connection tidies -wal and -shm
    # as the store's own close does. Nothing here writes.
    uri = f"{database.absolute().as_uri()}?mode=rw"
    conn = sqlite3.connect(uri, uri=True, timeout=5.0, isolation_level=None)
    try:
        conn.execute("BEGIN")  # one read transaction: the checks and the rows as of one moment
        if not _current(conn):
            return None
        where: list[str] = []
        params: list[Any] = []
        if states:
            where.append(f"state IN ({', '.join('?' * len(set(states)))})")
            params.extend(sorted(set(states)))
        if severities:
            where.append(f"severity IN ({', '.join('?' * len(set(severities)))})")
            params.extend(sorted(set(severities)))
        if open_only:
            where.append("is_open = 1")
        if commander is not None:
            where.append("commander = ?")
            params.append(commander)
        if since is not None:
            where.append("declared_at >= ?")
            params.append(_micros(since))
        if until is not None:
            where.append("declared_at < ?")
            params.append(_micros(until))
        if text is not None:
            conn.create_function("incidentflow_contains", 2, _contains, deterministic=True)
            where.append("incidentflow_contains(title, ?)")
            params.append(text)
        order = "DESC" if newest_first else "ASC"
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
        sql += f" ORDER BY declared_at {order}, id {order} LIMIT ? OFFSET 0"
        params.append(-1 if limit is None else limit)
        rows = conn.execute(sql, params).fetchall()
        conn.execute("COMMIT")
    finally:
        conn.close()
    epoch, micro = _EPOCH, timedelta(microseconds=1)
    return [
        Listing(i, title, sev, state, by, epoch + declared * micro, version)
        for i, title, sev, state, by, declared, version in rows
    ]


def _current(conn: sqlite3.Connection) -> bool:
    """Whether the store would open this file without writing: ours, at this schema, in WAL."""
    (app_id,) = conn.execute("PRAGMA application_id").fetchone()
    if app_id != APPLICATION_ID:
        return False
    (version,) = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    if version != SCHEMA_VERSION:
        return False  # the store migrates an older file and refuses a newer one
    (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    stale = conn.execute("SELECT index_stale FROM search_state").fetchone()
    return str(mode).lower() == "wal" and not (stale is not None and stale[0])


def _micros(moment: datetime) -> int:
    # stores._snapshots.micros: whole microseconds since the epoch, UTC.
    since = moment.astimezone(UTC) - _EPOCH
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def _contains(title: object, text: object) -> bool:
    # stores.sqlite._rows._contains_casefolded: casefold, not SQL's ASCII-only LIKE.
    return str(text).casefold() in str(title).casefold()
