"""A checkpoint's long lists kept in chunks, so that writing one sends only what is new.

SQLite and PostgreSQL keep a checkpoint as its other fields (the *head*, small)
plus, for each long list, rows holding the list's JSON in chunks: the items
added since the previous checkpoint go in one new row, and nothing already
stored is written again. Rewriting a 2,000-item list every 16 events would cost
a durable store more than the commands in between; appending 16 items costs
little. The head names each chunked list with its length and the version that
wrote its last chunk, which a load checks against the rows it reads.

A load hands each chunked list to its ``Records`` unparsed, with a mark saying
where its items are stored (:meth:`Records.mark`). The next checkpoint trusts
the mark only if the rows still end where the mark says (same last version,
same count); otherwise (another process wrote since, the list was replaced,
too many chunks) it writes the list again as one chunk.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from .._model import Incident
from .._sequences import Records, StoredList
from ..exceptions import StoreError
from ._snapshots import STORED_MIN, decode_snapshot, head_without, record_fields

__all__ = [
    "CHUNKS",
    "Chunk",
    "ChunkedCheckpoint",
    "chunked_checkpoint",
    "chunked_lists",
    "decode_checkpoints",
    "decode_chunked",
    "has_long_lists",
    "max_chunks",
    "packed",
]

#: The head's key listing its chunked lists as ``[name, count, version of the last chunk]``.
CHUNKS = "$chunks"


def max_chunks(count: int) -> int:
    """Chunks a list of ``count`` items may have; the checkpoint after writes it again as one.

    Sixteen, or one per 64 items on longer lists: a load reads a few dozen rows
    at most, and rewriting the whole list, spread over the commands since the
    last time (a chunk holds about 16 events' items), costs about as much as
    writing each event's item four times.
    """
    return max(16, count >> 6)


@attrs.frozen
class Chunk:
    """One stored row: ``count`` items of list ``name``, as a JSON array, written at ``version``."""

    name: str
    chunk: int
    version: int
    count: int
    items: str | bytes


@attrs.frozen
class ChunkedCheckpoint:
    """What a store writes for one checkpoint: the head, the rows to drop, the rows to add."""

    head: dict[str, Any]
    clear: tuple[str, ...]
    rows: tuple[Chunk, ...]
    marks: tuple[tuple[Records[Any], object], ...]

    def written(self) -> None:
        """Mark each list as stored where the rows say, once the commit is durable."""
        for records, mark in self.marks:
            records.mark(mark)


def has_long_lists(snapshot: Incident) -> bool:
    """True when a list of ``snapshot`` is long enough to be kept in chunks."""
    return any(len(getattr(snapshot, name)) >= STORED_MIN for name, _ in record_fields())


def chunked_checkpoint(
    snapshot: Incident,
    stored: Mapping[str, tuple[int, int, int]],
    key: object,
    pack: Callable[[str], str | bytes] = str,
) -> ChunkedCheckpoint:
    """The checkpoint of ``snapshot``, given ``stored``: each list's chunks, items, last version.

    ``key`` tells this store's marks from another's; ``pack`` turns a chunk's JSON
    into what the store keeps (:func:`packed` compresses it).
    """
    version = snapshot.version
    long: list[str] = []
    layout: list[list[Any]] = []
    rows: list[Chunk] = []
    clear: list[str] = []
    marks: list[tuple[Records[Any], object]] = []
    for name, encode in record_fields():
        records: Records[Any] = getattr(snapshot, name)
        held = stored.get(name)
        if len(records) < STORED_MIN:
            if held is not None:
                clear.append(name)
            continue
        long.append(name)
        noted = records.mark()
        if (
            held is not None
            and held[0] < max_chunks(held[1])
            and noted == ((key, snapshot.id, name, held[2]), held[1])
        ):
            chunks, count, last = held
            new = records.after(count)
            if new:
                rows.append(Chunk(name, chunks, version, len(new), pack(encode(new))))
                last = version
        else:
            if held is not None:
                clear.append(name)
            rows.append(Chunk(name, 0, version, len(records), pack(records.json_text(encode))))
            last = version
        layout.append([name, len(records), last])
        marks.append((records, (key, snapshot.id, name, last)))
    head = head_without(snapshot, long)
    if layout:
        head[CHUNKS] = layout
    return ChunkedCheckpoint(head, tuple(clear), tuple(rows), tuple(marks))


def chunked_lists(
    head: dict[str, Any],
    rows: Iterable[tuple[Any, ...]],
    key: object,
    incident_id: str,
    where: str,
) -> dict[str, Any]:
    """``head`` with each chunked list put back, unparsed, from its stored rows.

    ``rows`` are ``(name, chunk, version, count, items)``; StoreError naming
    ``where`` if they do not add up to what the head says.
    """
    layout = head.pop(CHUNKS, None)
    if layout is None:
        return head
    found: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(row)
    if not isinstance(layout, list):
        raise StoreError(f"{where}: the snapshot of {incident_id}: its {CHUNKS} is not a list")
    for entry in layout:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)):
            raise StoreError(
                f"{where}: the snapshot of {incident_id}: {entry!r} is not [name, count, version]"
            )
        name, count, last = entry
        chunks = sorted(found.get(name, ()), key=lambda row: row[1])
        if (
            [row[1] for row in chunks] != list(range(len(chunks)))
            or not chunks
            or sum(row[3] for row in chunks) != count
            or chunks[-1][2] != last
            or not all(_whole(row[4]) for row in chunks)
        ):
            raise StoreError(
                f"{where}: the snapshot of {incident_id}: the stored chunks of {name} do not "
                f"add up to {count} items written at version {last}; "
                "the store is damaged"
            )
        first = chunks[0][4]
        text = first if len(chunks) == 1 and isinstance(first, str) else tuple(r[4] for r in chunks)
        mark = (key, incident_id, name, last)
        head[name] = StoredList(text, count, f"{where}: the stored {name}", mark=mark)
    return head


def packed(text: str) -> bytes:
    """A chunk's JSON compressed, for a store that sends every byte over a network.

    A long list's chunks are read on every cold load, but parsed only when
    something reads the items: fewer bytes to send is what a load can save.
    """
    return zlib.compress(text.encode("utf-8"), 1)


def _whole(items: object) -> bool:
    """True for a chunk that holds a JSON array's text, or compressed bytes."""
    if isinstance(items, str):
        return items[:1] == "[" and items[-1:] == "]"
    return isinstance(items, bytes) and bool(items)


def decode_chunked(
    body: str,
    rows: Iterable[tuple[Any, ...]],
    key: object,
    incident_id: str,
    where: str,
    *,
    load: Callable[[str], Any] = json.loads,
) -> Incident:
    """The snapshot a checkpoint's head ``body`` and its list chunks ``rows`` hold."""
    if CHUNKS not in body:
        return decode_snapshot(body, incident_id, where, load=load)
    try:
        head = load(body)
    except (StoreError, ValueError) as exc:
        raise StoreError(f"{where}: the snapshot of {incident_id}: {exc}") from exc
    if not isinstance(head, dict):
        return decode_snapshot(body, incident_id, where, load=load)
    return decode_snapshot(chunked_lists(head, rows, key, incident_id, where), incident_id, where)


def decode_checkpoints(
    rows: Iterable[tuple[Any, ...]],
    key: object,
    where: str,
    *,
    load: Callable[[str], Any] = json.loads,
) -> dict[str, Incident]:
    """The snapshots in one statement's rows, by incident id.

    Each row is ``(incident_id, name, chunk, version, count, head, items)``: a
    checkpoint's head has no ``name``, each chunk of its lists no ``head``.
    """
    bodies: dict[str, str] = {}
    chunks: dict[str, list[tuple[Any, ...]]] = {}
    for incident_id, name, chunk, version, count, head, items in rows:
        if name is None:
            bodies[incident_id] = head
        else:
            chunks.setdefault(incident_id, []).append((name, chunk, version, count, items))
    return {
        incident_id: decode_chunked(
            body, chunks.get(incident_id, ()), key, incident_id, where, load=load
        )
        for incident_id, body in bodies.items()
    }
