"""What PostgresStore writes: columns, JSON with NUL escaped, search fields."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from ..._events import Event
from ..._metrics import DURATION_SPANS, METRICS, MILESTONE_TIMES
from ..._model import Incident
from ..._serialization import converter
from ..._similar import (
    FIELD_WEIGHTS,
    FIELDS,
    SearchText,
    indexed,
)
from ...exceptions import (
    StoreError,
)
from .._base import (
    OutboxItem,
)
from .._records import has_open_action_items
from .._snapshots import dumps, encode_payload

# NUL cannot be stored in text or JSONB: it becomes MARK "0", and MARK itself MARK "1".
_MARK = "\U0010ffff"

_ESCAPED_NUL = _MARK + "0"

_ESCAPED_MARK = _MARK + "1"

#: The text search configuration of the index and the queries. 'english' stems
#: ("timeouts" finds "timeout", "failed" finds "failing") and drops English stop
#: words, as SQLite's porter tokenizer and the in-memory ranking do. It parses the
#: words of incidentflow._similar.indexed, so hosts and paths ("db-7.prod",
#: "/var/lib") are split into words as queries are. Changing it is a migration.
SEARCH_CONFIG = "english"

_SEARCH_TEXT = ("title", "symptom", "root_cause", "gotcha", "gotcha_slug")

#: Where each of ``MILESTONE_TIMES`` sits in a stored snapshot, in that order.
_MILESTONE_PATHS = (
    "detection,first_occurred_at",
    "detection,detected_at",
    "acknowledged_at",
    "contained_at",
    "fixed_at",
    "resolved_at",
    "postmortem,completed_at",
)

#: The ``milestones`` table (schema 6): each of ``MILESTONE_TIMES`` (timestamptz) and each
#: duration of ``METRICS`` in microseconds (int8), NULL while a milestone is missing.
_MILESTONE_COLUMNS = (*MILESTONE_TIMES, *METRICS)

#: The SQL type of each column of ``milestones``.
_MILESTONE_TYPES = {
    **dict.fromkeys(MILESTONE_TIMES, "timestamptz"),
    **dict.fromkeys(METRICS, "int8"),
}

_MICROSECOND = timedelta(microseconds=1)


def _milestone_params(incident: Incident, times: tuple[datetime | None, ...]) -> dict[str, Any]:
    """The ``ms_*`` parameters of the commit's milestones row: ``times`` and their durations."""
    at = dict(zip(MILESTONE_TIMES, times, strict=True))
    at["declared_at"] = incident.declared_at
    params: dict[str, Any] = {f"ms_{name}": at[name] for name in MILESTONE_TIMES}
    for name, (later, earlier) in zip(METRICS, DURATION_SPANS, strict=True):
        a, b = at[later], at[earlier]
        params[f"ms_{name}"] = None if a is None or b is None else (a - b) // _MICROSECOND
    return params


def _time_of(path: str) -> str:
    """A milestone's time from the fields of a checkpoint ``x`` parsed by ``jsonb_to_record``."""
    top, _, inner = path.partition(",")
    return f"(x.{top} ->> '{inner}')::timestamptz" if inner else f"x.{top}"


def _micros_between(later: str, earlier: str) -> str:
    # Epoch seconds are exact numerics: the product is an exact integer of microseconds.
    return f"((extract(epoch FROM {later}) - extract(epoch FROM {earlier})) * 1000000)::int8"


#: Migration 6: the milestones row of every incident whose checkpoint is current and
#: has reached one, from the checkpoint (the others are loaded: see _fill_milestones).
_FILL_MILESTONES = (
    f"INSERT INTO {{s}}.milestones (incident_id, {', '.join(_MILESTONE_COLUMNS)}) "
    f"SELECT id, {', '.join(MILESTONE_TIMES)}, "
    + ", ".join(_micros_between(later, earlier) for later, earlier in DURATION_SPANS)
    + " FROM (SELECT i.id, i.declared_at, "
    + ", ".join(
        f"{_time_of(path)} AS {name}"
        for name, path in zip(MILESTONE_TIMES, _MILESTONE_PATHS, strict=True)
    )
    + " FROM {s}.incidents i JOIN {s}.snapshots s ON s.incident_id = i.id "
    "AND s.version = i.version, LATERAL jsonb_to_record(s.body) AS x("
    + ", ".join(
        dict.fromkeys(
            f"{path.partition(',')[0]} {'jsonb' if ',' in path else 'timestamptz'}"
            for path in _MILESTONE_PATHS
        )
    )
    + f")) AS t WHERE num_nonnulls({', '.join(MILESTONE_TIMES)}) > 0"
)

#: The incidents whose checkpoint lags their history (migration 6 loads them).
_LAGGING = (
    "SELECT i.id, i.version FROM {s}.incidents i LEFT JOIN {s}.snapshots s "
    "ON s.incident_id = i.id WHERE s.version IS DISTINCT FROM i.version ORDER BY i.id"
)

_INSERT_MILESTONES = (
    f"INSERT INTO {{s}}.milestones (incident_id, {', '.join(_MILESTONE_COLUMNS)}) "
    f"VALUES (%(ms_incident_id)s, {', '.join(f'%(ms_{name})s' for name in _MILESTONE_COLUMNS)})"
)

_SEARCH_LEXEMES = tuple(f"{name}_lexemes" for name in FIELDS)

_SEARCH_COLUMNS = ", ".join((*_SEARCH_TEXT, *_SEARCH_LEXEMES))

_SEARCH_VALUES = ", ".join(
    (
        *(f"%(search_{name})s" for name in _SEARCH_TEXT),
        *(f"to_tsvector('{SEARCH_CONFIG}', %(search_{name}_words)s)" for name in FIELDS),
    )
)

#: ts_rank_cd's weights of the labels D, C, B, A: the gotcha is C, the root cause B,
#: the title and symptom A, in the proportions of FIELD_WEIGHTS.
_RANK_WEIGHTS = [0.1, *(weight / FIELD_WEIGHTS[0] for weight in FIELD_WEIGHTS[3:1:-1]), 1.0]

_FILL_SEARCH = (
    f"INSERT INTO {{s}}.search (incident_id, {_SEARCH_COLUMNS}) "
    f"VALUES (%(search_incident_id)s, {_SEARCH_VALUES})"
)

#: The query is an OR of each term's plainto_tsquery, all parameters: nothing in the
#: terms is ever read as tsquery syntax. Stop words are left out before they reach
#: plainto_tsquery (which would send a NOTICE for each).
_SEARCH = (
    "WITH q AS (SELECT {s}.tsquery_any(plainto_tsquery(%(config)s::regconfig, t)) AS query "
    "FROM unnest(%(terms)s::text[]) AS t WHERE to_tsvector(%(config)s::regconfig, t) <> '') "
    "SELECT x.incident_id, i.severity, i.state, i.declared_at, x.title, x.symptom, "
    "x.root_cause, x.gotcha_slug, i.type, "
    "ts_rank_cd(%(weights)s::float4[], x.document, q.query) "
    "AS score, "
    + ", ".join(f"x.{name} @@ q.query" for name in _SEARCH_LEXEMES)
    + " FROM q JOIN {s}.search x ON x.document @@ q.query "
    "JOIN {s}.incidents i ON i.id = x.incident_id "
    "WHERE x.incident_id IS DISTINCT FROM %(exclude)s::text "
    "AND (%(types)s::text[] IS NULL OR i.type = ANY(%(types)s::text[])) {visible}"
    "ORDER BY score DESC, i.declared_at DESC, x.incident_id DESC LIMIT %(limit)s"
)


#: The term of :data:`_SEARCH` keeping what a viewer may see (``{visible}``), or nothing.
_SEARCH_VISIBLE = (
    "AND (NOT i.is_restricted OR i.id IN (SELECT incident_id FROM {s}.incident_access "
    "WHERE principal = ANY(%(visible)s::text[]))) "
)


def _search_params(text: SearchText) -> dict[str, Any]:
    """The searchable text as the ``search_*`` parameters of the statements writing it."""
    params: dict[str, Any] = {
        f"search_{name}": None if value is None else _to_column(value)
        for name, value in zip(_SEARCH_TEXT, text, strict=True)
    }
    params.update(
        (f"search_{name}_words", indexed(value))
        for name, value in zip(FIELDS, text.fields, strict=True)
    )
    return params


_COLUMNS = (
    "version",
    "state",
    "severity",
    "is_open",
    "commander",
    "title",
    "title_casefold",
    "declared_at",
    "updated_at",
    "type",
    "open_action_items",
)


def _param(column: str) -> str:
    """The statement parameter of an incident column (``type`` is the events' already)."""
    return "incident_type" if column == "type" else column


#: The columns of a schema before version 3 (a store pinned to one, as migration tests do).
_COLUMNS_BEFORE_TAGS = _COLUMNS[:-2]

_EVENT_COLUMNS = "incident_id, seq, type, at, actor, data, idempotency_key, schema_version"

_EVENT_SELECT = (
    "e.incident_id, e.seq, e.type, e.at, e.actor, e.data::text, e.idempotency_key, e.schema_version"
)


def _to_column(text: str) -> str:
    """Text as stored: NUL (which PostgreSQL refuses) and the escape mark escaped."""
    if "\x00" not in text and _MARK not in text:
        return text
    return text.replace(_MARK, _ESCAPED_MARK).replace("\x00", _ESCAPED_NUL)


def _from_column(text: str) -> str:
    """The text :func:`_to_column` stored."""
    if _MARK not in text:
        return text
    return text.replace(_ESCAPED_NUL, "\x00").replace(_ESCAPED_MARK, _MARK)


def _deep(value: Any, convert: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return convert(value)
    if isinstance(value, dict):
        return {convert(k): _deep(v, convert) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v, convert) for v in value]
    return value


def _dump_json(value: Any) -> str:
    text = dumps(value)
    if "\\u0000" in text or _MARK in text:
        text = dumps(_deep(value, _to_column))
    return text


def _payload_json(event: Event) -> str:
    """The event's data as stored: compact JSON, NUL and the escape mark escaped."""
    text = encode_payload(event)
    if "\\u0000" in text or _MARK in text:
        return _dump_json(converter().unstructure(event.data, unstructure_as=type(event.data)))
    return text


def _load_json(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise StoreError(f"stored JSON cannot be read: {exc}") from exc
    return _deep(value, _from_column) if _MARK in text else value


def _identity(text: str) -> str:
    return text


def _jsonb(text: str) -> Jsonb:
    return Jsonb(text, dumps=_identity)


def _casefold(text: str) -> bytes:
    return text.casefold().encode("utf-8")


def _event_columns(events: Sequence[Event]) -> dict[str, Any]:
    """The events as one array per column (the incident id comes from the statement).

    A single event, what most commands write, is given as plain values: psycopg
    adapts arrays in Python, which would cost more than the rest of the statement.
    """
    if len(events) == 1:
        (event,) = events
        key = event.idempotency_key
        return {
            "seq": event.seq,
            "type": event.type,
            "at": event.at,
            "actor": _to_column(event.actor),
            "data": _jsonb(_payload_json(event)),
            "event_key": None if key is None else _to_column(key),
            "schema_version": event.schema_version,
        }
    return {
        "seq": [event.seq for event in events],
        "type": [event.type for event in events],
        "at": [event.at for event in events],
        "actor": [_to_column(event.actor) for event in events],
        "data": [_jsonb(_payload_json(event)) for event in events],
        "event_key": [
            None if event.idempotency_key is None else _to_column(event.idempotency_key)
            for event in events
        ],
        "schema_version": [event.schema_version for event in events],
    }


def _outbox_columns(items: Sequence[OutboxItem]) -> dict[str, list[Any]]:
    """The outbox items as one array per column; ``first``: oldest live item of its stream."""
    ordered = sorted(items, key=lambda item: item.event.seq)
    seen: set[str] = set()
    first = []
    for item in ordered:
        first.append(not item.dead and item.notifier not in seen)
        if not item.dead:
            seen.add(item.notifier)
    return {
        "item_id": [item.id for item in ordered],
        "item_seq": [item.event.seq for item in ordered],
        "notifier": [_to_column(item.notifier) for item in ordered],
        "attempts": [item.attempts for item in ordered],
        "next_attempt_at": [item.next_attempt_at for item in ordered],
        "last_error": [_to_column(item.last_error) for item in ordered],
        "dead": [item.dead for item in ordered],
        "first": first,
    }


def _columns(incident: Incident) -> tuple[Any, ...]:
    return (
        incident.version,
        incident.state.value,
        incident.severity.value,
        incident.is_open,
        _to_column(incident.commander),
        _to_column(incident.title),
        _casefold(incident.title),
        incident.declared_at,
        incident.updated_at,
        incident.type,
        has_open_action_items(incident),
    )


def _changed_columns(incident: Incident, before: Incident | None) -> dict[str, Any]:
    """The incident row's columns to set; with ``before``, only those that changed."""
    if before is None:
        return dict(zip(_COLUMNS, _columns(incident), strict=True))
    # Setting only what changed keeps the statement small and the update HOT.
    columns: dict[str, Any] = {"version": incident.version}
    if incident.state is not before.state:
        columns["state"] = incident.state.value
        columns["is_open"] = incident.is_open
    if incident.severity is not before.severity:
        columns["severity"] = incident.severity.value
    if incident.commander != before.commander:
        columns["commander"] = _to_column(incident.commander)
    if incident.title != before.title:
        columns["title"] = _to_column(incident.title)
        columns["title_casefold"] = _casefold(incident.title)
    if incident.declared_at != before.declared_at:
        columns["declared_at"] = incident.declared_at
    if incident.updated_at != before.updated_at:
        columns["updated_at"] = incident.updated_at
    if incident.type != before.type:
        columns["type"] = incident.type
    if incident.action_items is not before.action_items:
        now_open = has_open_action_items(incident)
        if now_open != has_open_action_items(before):
            columns["open_action_items"] = now_open
    return columns
