"""What the durable stores share: checkpoints, their loading, event decoding and a cache.

An incident's snapshot grows with its history (every note and evidence item is
in it), so rewriting the whole snapshot on every command would make a command
on a long incident slower than one on a short incident. The durable stores
therefore keep a *checkpoint*: the full snapshot as of some version, rewritten
every 16 events (every 128th of the history past 4,096), and fold the events
after it when a snapshot is loaded cold. A checkpoint's long lists are not
parsed on load: the JSON Lines store lays them out after the other fields
(:func:`encode_checkpoint`), SQLite and PostgreSQL keep them in chunks
(:mod:`incidentflow.stores._chunks`), and each becomes a ``Records`` that parses
its items when something reads them. A command that appends to a 2,000-item
list costs about what it costs on an empty one.
Inside one process the last snapshot of each incident is cached, keyed by its
version, so a command normally reads nothing but the incident's current version.

Checkpoint loading (:func:`load_snapshot`, :func:`decode_snapshot`) and the
decoding of a stored event (:func:`decode_event`) live here, once, for every
backend: each passes what its rows hold and where they came from, for messages.
"""

from __future__ import annotations

import functools
import json
import threading
import typing
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar, get_args, get_origin

import attrs
import cattrs

from .._builders import copier
from .._decide import evolve
from .._events import Event, event_types
from .._jsontext import compact_encoder
from .._model import Incident, State
from .._sequences import Records, StoredList
from .._serialization import (
    converter,
    incident_from_dict,
    incident_to_dict,
    malformed,
    structurer,
)
from ..exceptions import StoreError

__all__ = [
    "SnapshotCache",
    "checkpoint_due",
    "decode_event",
    "decode_event_dict",
    "decode_snapshot",
    "dumps",
    "encode_checkpoint",
    "encode_payload",
    "fold_onto",
    "from_micros",
    "head_without",
    "load_snapshot",
    "micros",
]

#: Events that may pile up after a checkpoint before it is rewritten, at least.
CHECKPOINT_MIN_TAIL = 16

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_P = TypeVar("_P")


def _checkpoint_step(version: int) -> int:
    # Every 16 events up to 4,095, then the largest power of two not above a 128th of
    # the version. A cold load folds fewer than 16 events up to there, and a checkpoint
    # written from a snapshot read from the store copies its long lists' text rather
    # than encoding them (``encode_checkpoint``): writing one, spread over the
    # commands in between, costs about as much as copying 128 events' text.
    return max(CHECKPOINT_MIN_TAIL, 1 << max(0, (version >> 7).bit_length() - 1))


def checkpoint_due(before_version: int, before_state: State | None, after: Incident) -> bool:
    """True when a commit from version ``before_version`` to ``after`` rewrites the checkpoint.

    A new incident (``before_version`` 0), a change of state (so closed
    incidents are listed without folding anything) and every
    ``_checkpoint_step`` events do.
    """
    if before_version == 0 or before_state is not after.state:
        return True
    step = _checkpoint_step(after.version)
    return after.version // step != before_version // step


def fold_onto(incident: Incident | None, events: Sequence[Event], where: str) -> Incident:
    """Apply ``events`` to ``incident``, checking their numbering; StoreError names ``where``."""
    for event in events:
        expected = 1 if incident is None else incident.version + 1
        if event.seq != expected:
            raise StoreError(
                f"{where}: event {event.seq} of {event.incident_id} follows version "
                f"{expected - 1}; the history has a gap or a duplicate"
            )
        incident = evolve(incident, event)
    if incident is None:
        raise StoreError(f"{where}: no events to build a snapshot from")
    return incident


def micros(moment: datetime) -> int:
    """An aware datetime as whole microseconds since the Unix epoch (sortable, exact)."""
    since = moment - _EPOCH
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def from_micros(value: int) -> datetime:
    """The aware UTC datetime :func:`micros` gave ``value`` for."""
    return _EPOCH + timedelta(microseconds=value)


class SnapshotCache(Generic[_P]):
    """The most recently used snapshots of one process, at most ``size`` incidents. Thread-safe.

    Each snapshot is kept with a backend-specific ``position`` (where in the
    backend's storage that snapshot ends), from which a later load catches up.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._snapshots: OrderedDict[str, tuple[Incident, _P]] = OrderedDict()

    def get(self, incident_id: str) -> tuple[Incident, _P] | None:
        """The cached snapshot and its position, if any."""
        with self._lock:
            found = self._snapshots.get(incident_id)
            if found is not None:
                self._snapshots.move_to_end(incident_id)
            return found

    def put(self, incident: Incident, position: _P) -> None:
        """Remember ``incident`` and where it ends."""
        if self._size <= 0:
            return
        with self._lock:
            self._snapshots[incident.id] = (incident, position)
            self._snapshots.move_to_end(incident.id)
            while len(self._snapshots) > self._size:
                self._snapshots.popitem(last=False)

    def discard(self, incident_id: str) -> None:
        """Forget one incident."""
        with self._lock:
            self._snapshots.pop(incident_id, None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._snapshots.clear()


#: Compact JSON, as ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``
#: writes it, without building an encoder on every call.
dumps: Callable[[Any], str] = compact_encoder()

#: Each payload class's unstructure hook, looked up once (a race only looks it up twice).
_UNSTRUCTURE: dict[type[Any], Callable[[Any], Any]] = {}


def encode_payload(event: Event) -> str:
    """The event's data as the compact JSON every backend stores (``event_to_dict``'s ``data``)."""
    cls = type(event.data)
    hook = _UNSTRUCTURE.get(cls)
    if hook is None:
        hook = _UNSTRUCTURE[cls] = converter().get_unstructure_hook(cls)
    return dumps(hook(event.data))


def decode_event(
    row: Sequence[Any],
    where: str,
    *,
    data: Callable[[Any], Any] = json.loads,
    text: Callable[[str], str] | None = None,
) -> Event:
    """The event stored as ``(incident_id, seq, type, at, actor, data, key, schema_version)``.

    ``at`` is ISO text or an aware datetime; ``data`` turns the stored data into
    a dict (JSON text by default); ``text`` undoes a backend's escaping of the
    actor and key. StoreError names ``where``, the event and the incident.
    """
    incident_id, seq, type_, at, actor, stored, key, schema_version = row
    try:
        if text is not None:
            actor = text(actor)
            key = None if key is None else text(key)
        return _build_event(incident_id, seq, type_, at, actor, data(stored), key, schema_version)
    except (ValueError, TypeError, KeyError, StoreError, cattrs.BaseValidationError) as exc:
        raise StoreError(
            f"{where}: event {seq} of {incident_id} cannot be read: {malformed(exc)}"
        ) from exc


def decode_event_dict(value: Mapping[str, Any], where: str) -> Event:
    """The event stored as the dict :func:`~incidentflow._serialization.event_to_dict` made."""
    try:
        return _build_event(
            value["incident_id"],
            value["seq"],
            value["type"],
            value["at"],
            value["actor"],
            value["data"],
            value.get("idempotency_key"),
            value.get("schema_version", 1),
        )
    except (ValueError, TypeError, KeyError, StoreError, cattrs.BaseValidationError) as exc:
        raise StoreError(
            f"{where}: event {value.get('seq')} of {value.get('incident_id')} cannot be read: "
            f"malformed stored event: {malformed(exc)}"
        ) from exc


@functools.cache
def _payload_decoders() -> dict[str, Callable[[Any], Any]]:
    """Each event type's payload decoder (the converter's, compiled), looked up once per process."""
    return {name: structurer(cls) for name, cls in event_types().items()}


def _build_event(
    incident_id: Any,
    seq: Any,
    type_: Any,
    at: Any,
    actor: Any,
    data: Any,
    key: Any,
    schema_version: Any,
) -> Event:
    # The converter's Event hook, without its per-row dispatch: what a cold load decodes most.
    structure = _payload_decoders().get(type_)
    if structure is None:
        raise StoreError(f"unknown event type {type_!r}")
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError(f"naive datetime {at!r} in stored data")
        moment = at.astimezone(UTC)
    else:
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError(f"naive datetime {at!r} in stored data")
    return Event(
        incident_id=incident_id,
        seq=seq,
        at=moment,
        actor=actor,
        data=structure(data),
        idempotency_key=key,
        schema_version=schema_version,
    )


#: A list this long or longer is kept apart from the checkpoint's other fields, to be
#: parsed only when something needs its items (a command that appends never does).
#: Shorter lists parse in well under 0.1 ms and cost a durable store nothing extra.
STORED_MIN = 64

#: How a checkpoint whose long lists follow its other fields begins.
_LAYOUT = '{"$lists":'
_HEAD = ',"head":'


@functools.cache
def record_fields() -> tuple[tuple[str, Callable[[list[Any]], str]], ...]:
    """Each ``Records`` field of a snapshot, with what encodes a list of its items as JSON."""
    hints = typing.get_type_hints(Incident)
    conv = converter()
    found = []
    for field in attrs.fields(Incident):
        tp = hints[field.name]
        if get_origin(tp) is Records:
            hook = conv.get_unstructure_hook(get_args(tp)[0])
            found.append((field.name, _array_encoder(hook)))
    return tuple(found)


def _array_encoder(hook: Callable[[Any], Any]) -> Callable[[list[Any]], str]:
    return lambda items: dumps([hook(item) for item in items])


_EMPTY: Records[Any] = Records()


def head_without(snapshot: Incident, names: Sequence[str]) -> dict[str, Any]:
    """``incident_to_dict(snapshot)`` without the lists ``names``, which are not encoded."""
    head = incident_to_dict(copier(Incident)(snapshot, **dict.fromkeys(names, _EMPTY)))
    for name in names:
        del head[name]
    return head


def encode_checkpoint(snapshot: Incident) -> str:
    """The checkpoint of ``snapshot`` as one JSON text, its long lists after its other fields.

    Without a list of ``STORED_MIN`` items it is ``incident_to_dict``'s JSON.
    Otherwise it is ``{"$lists": [[name, length, count], ...], "head": {...the
    other fields...}, name: [...], ...}``, each list ``length`` characters long:
    :func:`decode_snapshot` parses the head alone and hands each list to its
    ``Records`` unparsed. A list handed out unparsed, and appended to, is written
    again by copying its text (:meth:`Records.json_text`).
    """
    long = []
    for name, encode in record_fields():
        records = getattr(snapshot, name)
        if len(records) >= STORED_MIN:
            long.append((name, records.json_text(encode)))
    if not long:
        return dumps(incident_to_dict(snapshot))
    head = head_without(snapshot, [name for name, _ in long])
    layout = [[name, len(text), len(getattr(snapshot, name))] for name, text in long]
    lists = "".join(f',"{name}":{text}' for name, text in long)
    return f"{_LAYOUT}{dumps(layout)}{_HEAD}{dumps(head)}{lists}}}"


_scan = json.JSONDecoder().raw_decode


def _unlayered(text: str, where: str) -> dict[str, Any]:
    """The snapshot dict of a checkpoint :func:`encode_checkpoint` laid out, lists unparsed."""
    layout, at = _scan(text, len(_LAYOUT))
    if not text.startswith(_HEAD, at):
        raise ValueError(f"expected the head at character {at}")
    head, at = _scan(text, at + len(_HEAD))
    if not isinstance(head, dict) or not isinstance(layout, list):
        raise ValueError("the head or the layout is not what a checkpoint holds")
    for entry in layout:
        if not (isinstance(entry, list) and len(entry) == 3):
            raise ValueError(f"a list's place {entry!r} is not [name, length, count]")
        name, length, count = entry
        if not (isinstance(name, str) and type(length) is int and type(count) is int):
            raise ValueError(f"a list's place {entry!r} is not [name, length, count]")
        marker = f',"{name}":'
        start = at + len(marker)
        at = start + length
        placed = text.startswith(marker, start - len(marker)) and text[start] + text[at - 1] == "[]"
        if not placed or name in head:
            raise ValueError(f"the list {name!r} is not where its place says")
        head[name] = StoredList(text[start:at], count, f"{where}: the stored {name}")
    if text[at:] != "}":
        raise ValueError(f"unexpected text after the last list, at character {at}")
    return head


def decode_snapshot(
    body: str | Mapping[str, Any],
    incident_id: str,
    where: str,
    *,
    load: Callable[[str], Any] = json.loads,
) -> Incident:
    """A stored checkpoint (JSON text, or the dict it holds) as a snapshot of ``incident_id``."""
    value: Any
    try:
        if isinstance(body, str) and body.startswith(_LAYOUT):
            value = _unlayered(body, f"{where}: the snapshot of {incident_id}")
        else:
            value = load(body) if isinstance(body, str) else body
        if not isinstance(value, Mapping):
            raise StoreError(f"expected a JSON object, got {type(value).__name__}")
        # A dict is decoded as it is: incident_from_dict copies before it changes anything.
        snapshot = incident_from_dict(value if type(value) is dict else dict(value))
    except (StoreError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise StoreError(f"{where}: the snapshot of {incident_id}: {exc}") from exc
    if snapshot.id != incident_id:
        raise StoreError(f"{where}: the snapshot of {incident_id} is of {snapshot.id}")
    return snapshot


def load_snapshot(
    cache: SnapshotCache[int],
    incident_id: str,
    version: int,
    *,
    checkpoint: Callable[[], Incident | None],
    tail: Callable[[int, int], Sequence[Event]],
    where: str,
) -> Incident:
    """The snapshot of ``incident_id`` at ``version``: cached, or a checkpoint and its tail.

    The cache answers when it holds that version, and is caught up when it
    holds an older one; otherwise ``checkpoint()`` reads the stored checkpoint
    (None: there is none). ``tail(after, upto)`` reads the events in between,
    which are folded on. The result is cached, keyed by its version.
    """
    cached = cache.get(incident_id)
    if cached is not None and cached[0].version == version:
        return cached[0]
    base: Incident | None
    if cached is not None and cached[0].version < version:
        base = cached[0]
    else:
        base = checkpoint()
        if base is None:
            raise StoreError(f"{where}: {incident_id} has no stored snapshot")
    if base.version < version:
        base = fold_onto(base, tail(base.version, version), where)
    cache.put(base, base.version)
    return base
