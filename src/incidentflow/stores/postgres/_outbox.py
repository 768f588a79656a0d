"""PostgresStore as an outbox shared by every host: ``FOR UPDATE SKIP LOCKED`` claims."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import psycopg.errors

from .._base import (
    OutboxItem,
)
from .._protocols import Outbox
from ._schema import PostgresBase
from ._values import (
    _from_column,
    _to_column,
)


class PostgresOutbox(PostgresBase, Outbox):
    """The outbox in PostgreSQL; only each stream's head is claimable."""

    def pending(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Undelivered outbox items that are not dead, oldest first (claimed ones too)."""
        return self._read(
            "cannot read the outbox",
            lambda conn: self._items(conn.execute(self._sql.pending, (limit,))),
        )

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

        One statement picks the heads and marks them claimed until ``now + lease``.
        It locks the rows it picks with ``FOR UPDATE SKIP LOCKED``: a worker on
        another host claiming at the same moment skips them instead of waiting,
        takes other streams' heads, and never gets the same row while the lease
        holds. A stream's later items wait until its head is delivered or dead.
        With ``incident_id``, only that incident's streams are looked at.
        """
        if limit <= 0:
            return []
        until = now + lease
        due: tuple[Any, ...] = (now, limit, _to_column(worker), until, until)
        if incident_id is None:
            sql, params = self._sql.claim, due
        else:
            sql, params = self._sql.claim_incident, (incident_id, *due)
        return self._write(
            "cannot claim outbox items",
            lambda conn: self._items(conn.execute(sql, params)),
        )

    def mark_delivered(self, ids: Iterable[str]) -> None:
        """Remove delivered items from the outbox; unknown ids are ignored."""
        delivered = list(dict.fromkeys(ids))
        if not delivered:
            return

        # Two statements in one simple query: one transaction, one round trip.
        self._write(
            "cannot mark outbox items delivered",
            lambda conn: psycopg.ClientCursor(conn).execute(
                f"{self._sql.lock_streams}; {self._sql.delete_outbox}",
                (delivered, delivered, delivered),
            ),
        )

    def settle_and_claim(
        self,
        delivered: Iterable[str],
        *,
        now: datetime,
        limit: int,
        lease: timedelta,
        worker: str,
    ) -> Sequence[OutboxItem]:
        """Mark ``delivered`` and claim the next due heads, in one transaction."""
        settled = list(dict.fromkeys(delivered))
        if limit <= 0:
            self.mark_delivered(settled)
            return []
        until = now + lease
        due = (now, limit, _to_column(worker), until, until)

        def work(conn: psycopg.Connection[Any]) -> list[OutboxItem]:
            if settled:
                psycopg.ClientCursor(conn).execute(
                    f"{self._sql.lock_streams}; {self._sql.delete_outbox}",
                    (settled, settled, settled),
                )
            return self._items(conn.execute(self._sql.claim, due))

        return self._write("cannot settle and claim outbox items", work)

    def mark_failed(
        self, item_id: str, *, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        """Count a failed attempt, release the claim, and retry later or give up."""
        params = (_to_column(error), next_attempt_at, dead, next_attempt_at, dead, item_id)

        def work(conn: psycopg.Connection[Any]) -> None:
            if not dead:  # the stream keeps its head: nothing else changes
                conn.execute(self._sql.mark_failed, params)
            else:
                psycopg.ClientCursor(conn).execute(
                    f"{self._sql.lock_streams}; {self._sql.mark_dead}",
                    ([item_id], *params, item_id),
                )

        self._write(f"cannot record the failed delivery of {item_id}", work)

    def dead_letters(self, limit: int = 100) -> Sequence[OutboxItem]:
        """Items that gave up, oldest first."""
        return self._read(
            "cannot read the dead letters",
            lambda conn: self._items(conn.execute(self._sql.dead_letters, (limit,))),
        )

    def redrive(self, ids: Iterable[str]) -> int:
        """Put dead items back in line with a fresh attempt count; returns how many."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0

        def work(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction():
                conn.execute(self._sql.lock_streams, (wanted,))
                streams = conn.execute(self._sql.redrive, (wanted,)).fetchall()
                if streams:
                    incidents, notifiers = (list(column) for column in zip(*streams, strict=True))
                    conn.execute(self._sql.rehead, (incidents, notifiers))
                return len(streams)

        return self._write("cannot re-drive dead letters", work)

    def _items(self, rows: Iterable[Sequence[Any]]) -> list[OutboxItem]:
        items = []
        for row in rows:
            item_id, notifier, attempts, next_attempt_at, last_error, dead = row[:6]
            items.append(
                OutboxItem(
                    item_id,
                    self._events([row[6:]])[0],
                    _from_column(notifier),
                    attempts,
                    None if next_attempt_at is None else next_attempt_at.astimezone(UTC),
                    _from_column(last_error),
                    dead,
                )
            )
        return items

    def explain_claim(self) -> Sequence[str]:
        """PostgreSQL's plan for the search :meth:`claim` runs, one line per step."""
        now = datetime.now(UTC)
        rows = self._read(
            "cannot explain the claim",
            lambda conn: conn.execute(
                f"EXPLAIN {self._sql.claim}", (now, 100, "explain", now, now)
            ).fetchall(),
        )
        return [str(row[0]) for row in rows]
