"""SQLiteStore as an outbox: streams of notifications, claimed from a partial index."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from .._protocols import Outbox
from .._records import OutboxItem
from .._snapshots import (
    decode_event,
    from_micros,
    micros,
)
from ._rows import (
    _DUE_HEADS,
    _DUE_HEADS_OF_INCIDENT,
    _OUTBOX_ITEM,
    _PROMOTE,
    _UNMATERIALIZED_EVENTS,
    _item_id,
    _rollback,
)
from ._schema import SQLiteBase


class SQLiteOutbox(SQLiteBase, Outbox):
    """The outbox in SQLite; only each stream's head is claimable."""

    def pending(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Undelivered outbox items that are not dead, oldest first.

        Announced events without outbox rows yet (see :meth:`_materialize`) are
        listed after the rows, as the items they will become.
        """

        def read(conn: sqlite3.Connection) -> list[OutboxItem]:
            conn.execute("BEGIN")  # one read transaction: rows and announcements of one moment
            try:
                rows = conn.execute(
                    f"{_OUTBOX_ITEM} WHERE o.dead = 0 ORDER BY o.position LIMIT ?", (limit,)
                ).fetchall()
                items = [self._outbox_item(row) for row in rows]
                if len(items) < limit:
                    announced = conn.execute(_UNMATERIALIZED_EVENTS, (limit - len(items),))
                    for *event_row, notify in announced.fetchall():
                        event = decode_event(event_row, self._where)
                        for notifier in self._notifiers(notify, event.incident_id, event.seq):
                            item_id = _item_id(event.incident_id, event.seq, notifier)
                            items.append(OutboxItem(item_id, event, notifier))
            finally:
                _rollback(conn)  # nothing was written; this ends the read transaction
            return items[:limit]

        return self._read(read)

    def mark_delivered(self, ids: Iterable[str]) -> None:
        """Remove delivered items from the outbox; unknown ids are ignored."""
        delivered = list(dict.fromkeys(ids))
        if not delivered:
            return

        def work(conn: sqlite3.Connection) -> None:
            self._materialize(conn)
            self._delete_delivered(conn, delivered)

        self._write(work, durable=False)

    def _delete_delivered(self, conn: sqlite3.Connection, delivered: Sequence[str]) -> None:
        streams = set()
        for item_id in delivered:
            row = conn.execute(
                "DELETE FROM outbox WHERE id = ? RETURNING incident_id, notifier", (item_id,)
            ).fetchone()
            if row is not None:
                streams.add((row[0], row[1]))
        for stream in streams:
            conn.execute(_PROMOTE, stream)

    def settle_and_claim(
        self,
        delivered: Iterable[str],
        *,
        now: datetime,
        limit: int,
        lease: timedelta,
        worker: str,
    ) -> Sequence[OutboxItem]:
        """Mark ``delivered`` and claim the next due heads, in one write transaction."""
        settled = list(dict.fromkeys(delivered))
        if limit <= 0:
            self.mark_delivered(settled)
            return []

        def work(conn: sqlite3.Connection) -> list[Any]:
            self._materialize(conn)
            if settled:
                self._delete_delivered(conn, settled)
            return self._claim_rows(conn, _DUE_HEADS, (micros(now), limit), worker, now + lease)

        return [self._outbox_item(row) for row in self._write(work, durable=False)]

    def claim(
        self,
        *,
        now: datetime,
        limit: int,
        lease: timedelta,
        worker: str,
        incident_id: str | None = None,
    ) -> Sequence[OutboxItem]:
        """Claim the due heads of the outbox's streams (see :meth:`Outbox.claim`).

        One ``BEGIN IMMEDIATE`` transaction picks and marks the rows, so two
        processes claiming at once never get the same row while its lease holds.
        """
        if limit <= 0:
            return []
        at = micros(now)
        params: tuple[Any, ...]
        if incident_id is None:
            search, params = _DUE_HEADS, (at, limit)
        else:
            search, params = _DUE_HEADS_OF_INCIDENT, (incident_id, at, limit)

        def work(conn: sqlite3.Connection) -> list[Any]:
            self._materialize(conn)
            return self._claim_rows(conn, search, params, worker, now + lease)

        return [self._outbox_item(row) for row in self._write(work, durable=False)]

    def _claim_rows(
        self,
        conn: sqlite3.Connection,
        search: str,
        params: tuple[Any, ...],
        worker: str,
        held_until: datetime,
    ) -> list[Any]:
        positions = [r[0] for r in conn.execute(search, params).fetchall()]
        if not positions:
            return []
        until = micros(held_until)
        conn.executemany(
            "UPDATE outbox SET claimed_by = ?, claimed_until = ?, ready_at = ? WHERE position = ?",
            [(worker, until, until, position) for position in positions],
        )
        marks = ", ".join("?" * len(positions))
        return conn.execute(
            f"{_OUTBOX_ITEM} WHERE o.position IN ({marks}) ORDER BY o.position", positions
        ).fetchall()

    def mark_failed(
        self, item_id: str, *, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        """Count a failed attempt, release the claim, and retry later or give up.

        An item that is already dead stays so (a worker whose lease ran out may
        report late).
        """
        retry_at = micros(next_attempt_at)

        def work(conn: sqlite3.Connection) -> None:
            self._materialize(conn)
            row = conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = ?, dead = ?, ready_at = ?, claimed_by = NULL, "
                "claimed_until = NULL, head = head AND NOT ? WHERE id = ? AND dead = 0 "
                "RETURNING incident_id, notifier",
                (error, retry_at, int(dead), retry_at, int(dead), item_id),
            ).fetchone()
            if row is not None and dead:
                conn.execute(_PROMOTE, (row[0], row[1]))  # the stream goes on past it

        self._write(work, durable=False)

    def dead_letters(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Items that gave up, oldest first."""
        rows = self._read(
            lambda conn: conn.execute(
                f"{_OUTBOX_ITEM} WHERE o.dead = 1 ORDER BY o.position LIMIT ?", (limit,)
            ).fetchall()
        )
        return [self._outbox_item(row) for row in rows]

    def redrive(self, ids: Iterable[str]) -> int:
        """Put dead items back in line with a fresh attempt count; returns how many."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0

        def work(conn: sqlite3.Connection) -> int:
            self._materialize(conn)
            count = 0
            for item_id in wanted:
                row = conn.execute(
                    "SELECT incident_id, notifier, seq FROM outbox WHERE id = ? AND dead = 1",
                    (item_id,),
                ).fetchone()
                if row is None:
                    continue
                incident_id, notifier, seq = row
                # Back in line at its place: a younger head steps back behind it.
                conn.execute(
                    "UPDATE outbox SET head = 0 WHERE position = (SELECT position FROM outbox "
                    "WHERE incident_id = ? AND notifier = ? AND dead = 0 ORDER BY seq LIMIT 1) "
                    "AND seq > ?",
                    (incident_id, notifier, seq),
                )
                conn.execute(
                    "UPDATE outbox SET attempts = 0, next_attempt_at = NULL, dead = 0, "
                    "ready_at = 0, claimed_by = NULL, claimed_until = NULL, head = 0 "
                    "WHERE id = ?",
                    (item_id,),
                )
                conn.execute(_PROMOTE, (incident_id, notifier))
                count += 1
            return count

        return self._write(work)

    def _outbox_item(self, row: Sequence[Any]) -> OutboxItem:
        item_id, notifier, attempts, next_attempt_at, last_error, dead = row[:6]
        return OutboxItem(
            item_id,
            decode_event(row[6:], self._where),
            notifier,
            attempts,
            None if next_attempt_at is None else from_micros(next_attempt_at),
            last_error,
            bool(dead),
        )

    def explain_claim(self, incident_id: str | None = None) -> Sequence[str]:
        """The SQLite query plan of the search :meth:`claim` runs, one line per step."""
        params: tuple[Any, ...]
        if incident_id is None:
            search, params = _DUE_HEADS, (0, 1)
        else:
            search, params = _DUE_HEADS_OF_INCIDENT, (incident_id, 0, 1)
        rows = self._read(
            lambda conn: conn.execute(f"EXPLAIN QUERY PLAN {search}", params).fetchall()
        )
        return [str(row[-1]) for row in rows]
