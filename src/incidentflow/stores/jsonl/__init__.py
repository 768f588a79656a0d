"""JsonlStore: one append-only JSON Lines history per incident, beside its Markdown file.

Layout of ``DIR``::

    DIR/<incident id>.jsonl          the history: one event per line, the truth
    DIR/.incidentflow/format.json    the layout version of this folder
    DIR/.incidentflow/locks/         one lock file per incident (fcntl.flock), one for
                                     external references, 256 for idempotency keys
    DIR/.incidentflow/index/         per incident: the columns list() filters on  (rebuildable)
    DIR/.incidentflow/snapshots/     per incident: a checkpoint snapshot           (rebuildable)
    DIR/.incidentflow/outbox/        undelivered notifications, one file per commit,
                                     and beside it <name>.state: their delivery state
    DIR/.incidentflow/keys/          idempotency records, one file per key

How a commit stays atomic: all its events are written with one ``write`` and
made durable with ``fdatasync`` while the incident's lock is held. Every line
carries ``"commit": {"id": ..., "last": <seq of the commit's last event>}``,
so a reader knows whether a commit is whole. A last line without its newline,
or the first lines of a commit whose last line is missing (a crash mid-write),
are ignored, never misread, and cut off by the next writer. A line that is not
JSON anywhere else is corruption: :class:`StoreError` names the file and line.

The outbox items and the idempotency record of a commit are written to their
own files *before* the history (and made durable), tagged with the commit's id
and the byte offset where the commit starts. They count only if the history
holds that commit at that offset, so they appear exactly when the events do.
A key is kept once in the whole folder, as a UNIQUE constraint would: a commit
keeping one holds that key's lock (one of 256, by the key's digest) from the
check of its record to the history's write, so a second commit with the key,
on any incident and in any process, finds the first one's record and is refused
by the idempotency rule. A record whose commit never landed (its writer was
killed) counts for nothing and is replaced. Every file beside the histories is
written whole to a temporary file, then renamed into place: a disk that fills
up meanwhile raises :class:`StoreError` and leaves the previous file as it was.

Delivery: a commit's outbox file is never rewritten once written. What
happens to its items afterwards (claims with their holder and expiry, failed
attempts, the last error, the next attempt time, dead letters, deliveries) is
kept in ``<name>.state`` beside it, replaced whole (write a temporary file, then
rename) under the exclusive lock ``.incidentflow/outbox.lock``; ``claim``,
``mark_delivered``, ``mark_failed``, ``redrive``, ``pending`` and
``dead_letters`` all run under that lock, so processes never hand out one item
twice while its lease holds. Once every item of a commit is delivered, both
files are deleted. The state is not fsync'd: after a power cut an item may be
delivered again (delivery is at least once anyway) or retried once more.

The cost, which is why this store suits one host and modest traffic: each
``claim`` lists the outbox folder and reads every waiting commit's state to find
each stream's head, about 7 µs per waiting commit once this process has parsed
its file (the first claim in a process parses each, about 0.1 ms apiece), plus
one state file written. Thousands of waiting commits make claims take
milliseconds; SQLite or PostgreSQL keep claims O(log n).

The index and the checkpoints are caches: each records the history's size it
was built from and is rebuilt from the history when that does not match.
"""

from __future__ import annotations

from .._protocols import Store
from ._events import JsonlEventStore
from ._files import FORMAT_VERSION
from ._outbox import JsonlOutbox
from ._queries import JsonlQueryIndex

__all__ = ["FORMAT_VERSION", "JsonlStore"]


class JsonlStore(JsonlEventStore, JsonlOutbox, JsonlQueryIndex, Store):
    """Incidents as JSON Lines files in one folder, shared safely by threads and processes.

    Args:
        directory: The folder; created if missing. Usually the incidents folder,
            so each ``INC-….jsonl`` history sits beside its ``INC-….md`` file.
        cache_size: How many incidents' snapshots to keep in memory.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     JsonlStore(folder).exists("INC-2026-11-27-checkout")
    False

    """
