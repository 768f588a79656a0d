"""JsonlStore as an outbox: one file per commit, its delivery state beside it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ...exceptions import (
    StoreError,
)
from .._protocols import Outbox
from .._records import OutboxItem
from .._snapshots import (
    micros,
)
from ._files import (
    _STATE_SUFFIX,
    FORMAT_VERSION,
    _dumps,
    _outbox_item,
    _OutboxFile,
    _ready_at,
    _state_path,
    _with_state,
)
from ._folder import JsonlBase


class JsonlOutbox(JsonlBase, Outbox):
    """The outbox as files under ``.incidentflow/outbox``, changed under one lock."""

    @contextlib.contextmanager
    def _outbox_lock(self) -> Iterator[None]:
        with self._lock, self._flock(self._meta / "outbox.lock", shared=False):
            yield

    def _outbox(self, incident_id: str | None = None) -> Iterator[_OutboxFile]:
        """The outbox files of committed commits, oldest first, with their delivery state.

        Only ``incident_id``'s, when given. Outbox lock held by the caller. A
        file whose commit never reached the history is deleted: its writer has
        finished (it held the incident's lock).
        """
        folder = self._meta / "outbox"
        try:
            listed = [n for n in os.listdir(folder) if not n.startswith(".")]
        except OSError as exc:
            raise StoreError(f"{folder}: cannot list: {exc.strerror}") from exc
        names = sorted(n for n in listed if n.endswith(".json"))
        with_state = {n for n in listed if n.endswith(_STATE_SUFFIX)}
        for stale in self._outbox_cache.keys() - set(names):
            del self._outbox_cache[stale]
        for name in names:
            path = folder / name
            items = self._outbox_cache.get(name)
            if items is None:
                items = self._outbox_items(path)
                if items is None:
                    continue
                self._outbox_cache[name] = items  # a committed outbox file never changes
            if incident_id is not None and items and items[0].event.incident_id != incident_id:
                continue
            has_state = _state_path(path).name in with_state
            yield _OutboxFile(path, items, self._read_state(path) if has_state else {})

    def _outbox_items(self, path: Path) -> list[OutboxItem] | None:
        """The items of one outbox file, or None when its commit is not in the history."""
        claim = self._read_json(path)
        if claim is None:
            return None
        try:
            with self._incident_lock(claim["incident_id"], shared=True):
                committed = self._holds(claim)
            if not committed:
                path.unlink(missing_ok=True)
                _state_path(path).unlink(missing_ok=True)
                return None
            return [_outbox_item(item) for item in claim["items"]]
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise StoreError(f"{path}: not an outbox record ({exc})") from exc
        except StoreError as exc:
            raise StoreError(f"{path}: {exc}") from exc

    def _read_state(self, path: Path) -> dict[str, dict[str, Any]]:
        state_path = _state_path(path)
        value = self._read_json(state_path)
        if value is None:
            return {}
        items = value.get("items")
        if not isinstance(items, dict):
            raise StoreError(f"{state_path}: not an outbox delivery state; delete it to reset")
        return items

    def _write_state(self, outbox_file: _OutboxFile) -> None:
        """Save one file's delivery state; delete both once every item is delivered."""
        path = outbox_file.path
        state_path = _state_path(path)
        try:
            if all(outbox_file.state(i.id).get("delivered") for i in outbox_file.items):
                path.unlink(missing_ok=True)  # first: a state file alone is swept away
                state_path.unlink(missing_ok=True)
                self._outbox_cache.pop(path.name, None)
            else:
                value = {"format": FORMAT_VERSION, "items": outbox_file.states}
                self._write_atomic(state_path, _dumps(value), durable=False)
        except OSError as exc:
            raise StoreError(f"{state_path}: cannot update: {exc.strerror or exc}") from exc

    def _sweep_states(self) -> None:
        """Delete delivery states left without their outbox file (a crash while deleting)."""
        folder = self._meta / "outbox"
        try:
            names = set(os.listdir(folder))
        except OSError as exc:
            raise StoreError(f"{folder}: cannot list: {exc.strerror}") from exc
        orphans = [
            name
            for name in names
            if name.endswith(_STATE_SUFFIX)
            and not name.startswith(".")
            and f"{name[: -len(_STATE_SUFFIX)]}.json" not in names
        ]
        for name in orphans:
            with contextlib.suppress(OSError):
                (folder / name).unlink()

    def pending(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Undelivered outbox items of committed commands that are not dead, oldest first."""
        found: list[OutboxItem] = []
        with self._outbox_lock():
            for outbox_file in self._outbox():
                for item in outbox_file.items:
                    state = outbox_file.state(item.id)
                    current = _with_state(item, state)
                    if not state.get("delivered") and not current.dead:
                        found.append(current)
                if len(found) >= limit:
                    break
        return found[:limit]

    def mark_delivered(self, ids: Iterable[str]) -> None:
        """Remove delivered items from the outbox; unknown ids are ignored."""
        delivered = set(ids)
        if not delivered:
            return
        with self._outbox_lock():
            for outbox_file in self._outbox():
                found = delivered.intersection(i.id for i in outbox_file.items)
                if not found:
                    continue
                for item_id in found:
                    outbox_file.states[item_id] = {"delivered": True}
                self._write_state(outbox_file)
                delivered -= found
                if not delivered:
                    break

    def claim(
        self,
        *,
        now: datetime,
        limit: int,
        lease: timedelta,
        worker: str,
        incident_id: str | None = None,
    ) -> Sequence[OutboxItem]:
        """Claim the due heads of the outbox's streams (see :meth:`Store.claim`).

        Reads every outbox file's delivery state (only ``incident_id``'s, when
        given) under the outbox lock, then writes the claims of the files it
        takes items from.
        """
        if limit <= 0:
            return []
        at = micros(now)
        heads: dict[tuple[str, str], tuple[int, int, _OutboxFile, OutboxItem]] = {}
        with self._outbox_lock():
            self._sweep_states()
            position = 0
            for outbox_file in self._outbox(incident_id):
                for item in outbox_file.items:
                    position += 1
                    state = outbox_file.state(item.id)
                    if state.get("delivered") or _with_state(item, state).dead:
                        continue
                    stream = (item.event.incident_id, item.notifier)
                    head = heads.get(stream)
                    if head is None or item.event.seq < head[0]:
                        heads[stream] = (item.event.seq, position, outbox_file, item)
            due = sorted(
                (head for head in heads.values() if _ready_at(head[3], head[2]) <= at),
                key=lambda head: head[1],
            )[:limit]
            until = micros(now + lease)
            touched: dict[Path, _OutboxFile] = {}
            claimed = []
            for _, _, outbox_file, item in due:
                state = outbox_file.states.setdefault(item.id, {})
                state.update(claimed_by=worker, claimed_until=until)
                touched[outbox_file.path] = outbox_file
                claimed.append(_with_state(item, state))
            for outbox_file in touched.values():
                self._write_state(outbox_file)
        return claimed

    def mark_failed(
        self, item_id: str, *, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        """Count a failed attempt, release the claim, and retry later or give up."""
        with self._outbox_lock():
            for outbox_file in self._outbox():
                item = outbox_file.find(item_id)
                if item is None:
                    continue
                state = outbox_file.state(item_id)
                if state.get("delivered") or _with_state(item, state).dead:
                    return  # a worker whose lease ran out may report late
                outbox_file.states[item_id] = {
                    "attempts": int(state.get("attempts", item.attempts)) + 1,
                    "next_attempt_at": micros(next_attempt_at),
                    "last_error": error,
                    "dead": bool(dead),
                }
                self._write_state(outbox_file)
                return

    def dead_letters(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Items that gave up, oldest first."""
        found: list[OutboxItem] = []
        with self._outbox_lock():
            for outbox_file in self._outbox():
                for item in outbox_file.items:
                    state = outbox_file.state(item.id)
                    current = _with_state(item, state)
                    if current.dead and not state.get("delivered"):
                        found.append(current)
                if len(found) >= limit:
                    break
        return found[:limit]

    def redrive(self, ids: Iterable[str]) -> int:
        """Put dead items back in line with a fresh attempt count; returns how many."""
        wanted = set(ids)
        count = 0
        if not wanted:
            return 0
        with self._outbox_lock():
            for outbox_file in self._outbox():
                changed = False
                for item in outbox_file.items:
                    if item.id not in wanted:
                        continue
                    state = outbox_file.state(item.id)
                    current = _with_state(item, state)
                    if current.dead and not state.get("delivered"):
                        outbox_file.states[item.id] = {
                            "attempts": 0,
                            "next_attempt_at": None,
                            "last_error": current.last_error,
                            "dead": False,
                        }
                        changed = True
                        count += 1
                if changed:
                    self._write_state(outbox_file)
        return count

    def settle_and_claim(
        self,
        delivered: Iterable[str],
        *,
        now: datetime,
        limit: int,
        lease: timedelta,
        worker: str,
    ) -> Sequence[OutboxItem]:
        """Mark ``delivered`` delivered, then claim up to ``limit`` due heads."""
        self.mark_delivered(delivered)
        return self.claim(now=now, limit=limit, lease=lease, worker=worker)
