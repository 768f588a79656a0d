"""JsonlStore as a query index: listings from the index files, the rest from snapshots."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from loguru import logger

from ..._model import Incident, Reference
from ...exceptions import (
    IncidentNotFound,
    StoreError,
)
from .._records import IncidentQuery
from .._scanning import ScanningQueryIndex
from ._files import (
    _CACHE_FORMAT,
    _SAFE_ID,
    _SUFFIX,
    _entry_matches,
)
from ._folder import JsonlBase, _index_values


class JsonlQueryIndex(JsonlBase, ScanningQueryIndex):
    """Listings filtered on the index files; summaries, search and milestones from snapshots."""

    def list(self, query: IncidentQuery) -> Sequence[Incident]:
        """Snapshots matching ``query``: filtered on the index, then loaded page by page."""
        entries = []
        with self._lock:
            for incident_id, info in self._histories():
                entry = self._index_entry(incident_id, info)
                if entry is not None and _entry_matches(query, entry):
                    entries.append(entry)
            entries.sort(key=lambda e: (e["declared_at"], e["id"]), reverse=query.newest_first)
            stop = None if query.limit is None else query.offset + query.limit
            page = []
            for entry in entries[query.offset : stop]:
                try:
                    incident = self.load(entry["id"])
                except IncidentNotFound:
                    continue
                if query.matches(incident):
                    page.append(incident)
        return page

    def _histories(self) -> Iterator[tuple[str, os.stat_result]]:
        try:
            with os.scandir(self.directory) as found:
                for item in found:
                    name = item.name
                    if not name.endswith(_SUFFIX) or not item.is_file(follow_symlinks=False):
                        continue
                    incident_id = name[: -len(_SUFFIX)]
                    if _SAFE_ID.match(incident_id):
                        yield incident_id, item.stat(follow_symlinks=False)
        except OSError as exc:
            raise StoreError(f"{self.directory}: cannot list: {exc.strerror}") from exc

    def _index_entry(self, incident_id: str, info: os.stat_result) -> dict[str, Any] | None:
        path = self._meta / "index" / f"{incident_id}.json"
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry["format"] == _CACHE_FORMAT and entry["offset"] == info.st_size:
                entry["id"] = incident_id
                return dict(entry)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # missing, stale or damaged: rebuilt from the history below
        history = self._history_path(incident_id)
        with self._incident_lock(incident_id, shared=True):
            snapshot, end, _ = self._current(incident_id, history)
        if snapshot is None:
            return None
        try:
            self._write_index(snapshot, end)
        except OSError as exc:
            logger.warning("{}: could not rewrite the index of {}: {}", self, incident_id, exc)
        return {"id": incident_id, **_index_values(snapshot)}

    def _open_holder(
        self, references: Iterable[Reference], *, excluding: str
    ) -> tuple[Reference, str] | None:
        """The first of ``references`` another open incident holds, from the index entries.

        The caller holds the references lock, so no other commit takes one meanwhile.
        """
        wanted = {(ref.kind, ref.value): ref for ref in references}
        for incident_id, info in self._histories():
            if incident_id == excluding:
                continue
            entry = self._index_entry(incident_id, info)
            if entry is None or not entry["is_open"]:
                continue
            for kind, value in entry["references"]:
                ref = wanted.get((kind, value))
                if ref is not None:
                    return ref, incident_id
        return None

    def rebuild_index(self) -> int:
        """Rebuild every index entry and checkpoint from the histories; returns how many."""
        count = 0
        with self._lock:
            for incident_id, _ in self._histories():
                path = self._history_path(incident_id)
                with self._incident_lock(incident_id, shared=False):
                    self._cache.discard(incident_id)
                    snapshot, end, _ = self._catch_up(
                        incident_id, path, None, 0, os.stat(path, follow_symlinks=False)
                    )
                    if snapshot is None:
                        continue
                    try:
                        self._write_index(snapshot, end)
                        self._write_checkpoint(snapshot, end)
                    except OSError as exc:
                        raise StoreError(f"{self._meta}: cannot rebuild: {exc.strerror}") from exc
                    count += 1
        return count
