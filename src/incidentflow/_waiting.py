"""Calls that must not wait: the HTTP service's short calls on its event loop.

While :data:`NO_WAITING` holds an :class:`InlineCall`, a commit does not join
its inline delivery, and the SQLite store, finding its file locked by another
process before anything of the call is committed, raises :class:`WouldWait`
at once instead of waiting: nothing is written, so the caller may run the
whole call again where waiting is allowed (a worker thread).
"""

from __future__ import annotations

import contextvars

__all__ = ["NO_WAITING", "InlineCall", "WouldWait"]


class InlineCall:
    """One call that must not wait; ``committed`` once it has written anything."""

    __slots__ = ("committed",)

    def __init__(self) -> None:
        self.committed = False


#: The call running now in this context, if it must not wait.
NO_WAITING: contextvars.ContextVar[InlineCall | None] = contextvars.ContextVar(
    "incidentflow_no_waiting", default=None
)


class WouldWait(Exception):
    """The call would wait on another process and has written nothing: run it again."""
