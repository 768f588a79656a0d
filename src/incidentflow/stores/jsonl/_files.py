"""The JSON Lines folder's layout and formats: history lines, index entries, outbox files."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ..._events import Event
from ..._model import State
from ..._serialization import event_to_dict
from ...exceptions import (
    StoreError,
)
from .._records import IncidentQuery, OutboxItem, same_value
from .._snapshots import (
    decode_event_dict,
    dumps,
    from_micros,
    micros,
)

#: The layout version this release writes; a folder with a newer one is refused, an
#: older one is upgraded (2 added the outbox's delivery state files).
FORMAT_VERSION = 2

# The version of the index entries and checkpoints (caches, rebuilt when it differs);
# format 3 entries keep restricted_to, so a viewer's page is filtered before paging.
_CACHE_FORMAT = 3

_META = ".incidentflow"

_SUBFOLDERS = ("locks", "index", "snapshots", "outbox", "keys")

_SUFFIX = ".jsonl"

_STATE_SUFFIX = ".state"

_NOT_SET: Any = object()

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")

_READ_CHUNK = 1 << 16

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

# (device, inode) of the history file and the byte offset where its whole commits end.
_Position = tuple[int, int, int]


def _dumps(value: Any) -> str:
    return dumps(value)


class _History:
    """The whole commits found in a history file, as parsed lines."""

    def __init__(self, lines: list[dict[str, Any]], end: int, size: int) -> None:
        self.lines = lines
        self.end = end
        self.size = size


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pread_all(fd: int, offset: int, length: int) -> bytes:
    chunks = []
    while length > 0:
        chunk = os.pread(fd, min(length, 1 << 24), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        length -= len(chunk)
    return b"".join(chunks)


def _parse(
    path: Path, incident_id: str, data: bytes, start: int, after: int
) -> tuple[list[dict[str, Any]], int]:
    """The lines of whole commits in ``data`` and the offset where the last one ends."""
    lines: list[dict[str, Any]] = []
    open_commit: list[dict[str, Any]] = []
    end = start
    pos = 0
    while True:
        newline = data.find(b"\n", pos)
        if newline < 0:
            break  # a last line without its newline: torn by a crash, ignored
        line_no = after + len(lines) + len(open_commit) + 1
        where = f"{path}: line {line_no}"
        try:
            value = json.loads(data[pos:newline])
        except ValueError as exc:
            raise StoreError(
                f"{where} is not JSON ({exc}); the history is damaged: restore the file "
                "from a backup or remove the line and everything after it"
            ) from exc
        try:
            commit = value["commit"]
            token, last, seq = commit["id"], commit["last"], value["seq"]
            valid = (
                value["incident_id"] == incident_id
                and seq == line_no
                and isinstance(last, int)
                and last >= seq
                and (not open_commit or open_commit[0]["commit"]["id"] == token)
            )
        except (KeyError, TypeError) as exc:
            raise StoreError(f"{where} is not an incidentflow event ({exc})") from exc
        if not valid:
            raise StoreError(
                f"{where} does not continue the history of {incident_id} "
                f"(expected event {line_no}); the history is damaged"
            )
        open_commit.append(value)
        if seq == last:
            lines.extend(open_commit)
            open_commit = []
            end = start + newline + 1
        pos = newline + 1
    # Whole lines of a commit whose last line never made it are ignored, like a torn line.
    return lines, end


def _event(path: Path, line: dict[str, Any]) -> Event:
    return decode_event_dict(line, f"{path}: line {line.get('seq')}")


def _entry_matches(query: IncidentQuery, entry: dict[str, Any]) -> bool:
    return (
        (query.states is None or State(entry["state"]) in query.states)
        and (query.severities is None or entry["severity"] in {s.value for s in query.severities})
        and (not query.open_only or bool(entry["is_open"]))
        and (query.commander is None or entry["commander"] == query.commander)
        and (query.declared_after is None or entry["declared_at"] >= micros(query.declared_after))
        and (query.declared_before is None or entry["declared_at"] < micros(query.declared_before))
        and (query.text is None or query.text.casefold() in str(entry["title"]).casefold())
        and (query.types is None or entry["type"] in query.types)
        and (query.labels is None or _entry_holds(entry["labels"], query.labels))
        and (query.fields is None or _entry_holds(entry["fields"], query.fields))
        and (
            query.reference is None
            or [query.reference.kind, query.reference.value] in entry["references"]
        )
        and (not query.open_action_items or bool(entry["open_action_items"]))
        and (
            query.visible_to is None
            or not entry["restricted_to"]
            or not query.visible_to.isdisjoint(entry["restricted_to"])
        )
    )


def _entry_holds(held: dict[str, Any], wanted: Mapping[str, object]) -> bool:
    missing = object()
    return all(same_value(held.get(key, missing), value) for key, value in wanted.items())


class _OutboxFile:
    """One commit's outbox items and their delivery state, by item id."""

    def __init__(
        self, path: Path, items: list[OutboxItem], states: dict[str, dict[str, Any]]
    ) -> None:
        self.path = path
        self.items = items
        self.states = states

    def state(self, item_id: str) -> dict[str, Any]:
        found = self.states.get(item_id)
        return found if isinstance(found, dict) else {}

    def find(self, item_id: str) -> OutboxItem | None:
        return next((item for item in self.items if item.id == item_id), None)


def _state_path(path: Path) -> Path:
    return path.with_name(path.name[: -len(".json")] + _STATE_SUFFIX)


def _outbox_item(value: dict[str, Any]) -> OutboxItem:
    """An item as written in an outbox file (format 1 items have only id and event)."""
    retry_at = value.get("next_attempt_at")
    return OutboxItem(
        value["id"],
        decode_event_dict(value["event"], "an outbox item"),
        str(value.get("notifier", "")),
        int(value.get("attempts", 0)),
        None if retry_at is None else from_micros(int(retry_at)),
        str(value.get("last_error", "")),
        bool(value.get("dead", False)),
    )


def _outbox_value(item: OutboxItem) -> dict[str, Any]:
    value: dict[str, Any] = {"id": item.id, "notifier": item.notifier}
    if item.attempts:
        value["attempts"] = item.attempts
    if item.next_attempt_at is not None:
        value["next_attempt_at"] = micros(item.next_attempt_at)
    if item.last_error:
        value["last_error"] = item.last_error
    if item.dead:
        value["dead"] = True
    value["event"] = event_to_dict(item.event)
    return value


def _with_state(item: OutboxItem, state: dict[str, Any]) -> OutboxItem:
    """The item as its delivery state has it (the file's own fields where the state is silent)."""
    if not state:
        return item
    retry_at = state.get("next_attempt_at", _NOT_SET)
    return attrs.evolve(
        item,
        attempts=int(state.get("attempts", item.attempts)),
        next_attempt_at=(
            item.next_attempt_at
            if retry_at is _NOT_SET
            else None
            if retry_at is None
            else from_micros(int(retry_at))
        ),
        last_error=str(state.get("last_error", item.last_error)),
        dead=bool(state.get("dead", item.dead)),
    )


def _ready_at(item: OutboxItem, outbox_file: _OutboxFile) -> int:
    """When an item may next be claimed, in µs: after its next attempt time and its claim."""
    state = outbox_file.state(item.id)
    retry_at = _with_state(item, state).next_attempt_at
    return max(0 if retry_at is None else micros(retry_at), int(state.get("claimed_until") or 0))
