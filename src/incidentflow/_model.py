"""The incident snapshot and everything recorded on it: frozen attrs records."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from itertools import islice
from typing import Generic, TypeVar, overload

import attrs

T = TypeVar("T")

__all__ = [
    "ActionItem",
    "Confirmation",
    "ContainmentAction",
    "Deploy",
    "Detection",
    "Evidence",
    "Fix",
    "Incident",
    "KbEntry",
    "Note",
    "Postmortem",
    "Records",
    "RootCause",
    "Severity",
    "State",
    "TriageAnswer",
    "Why",
]


class Severity(enum.Enum):
    """How bad an incident is, from P1 (critical) to P4 (low)."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def label(self) -> str:
        """The severity's name in the process, e.g. ``"P1 — Critical"``."""
        return f"{self.value} — {_SEVERITY_NAMES[self]}"


_SEVERITY_NAMES = {
    Severity.P1: "Critical",
    Severity.P2: "High",
    Severity.P3: "Medium",
    Severity.P4: "Low",
}


class State(enum.Enum):
    """Where an incident stands in the lifecycle."""

    DECLARED = "declared"
    TRIAGING = "triaging"
    CONTAINED = "contained"
    RCA = "rca"
    FIXED = "fixed"
    RESOLVED = "resolved"
    POSTMORTEM = "postmortem"
    KB_UPDATED = "kb_updated"
    DISMISSED = "dismissed"

    @property
    def is_terminal(self) -> bool:
        """True for kb_updated and dismissed, which accept nothing but notes."""
        return self in (State.KB_UPDATED, State.DISMISSED)

    @property
    def is_open(self) -> bool:
        """True while the incident still needs work before it is resolved."""
        return self in _OPEN_STATES


_OPEN_STATES = frozenset({State.DECLARED, State.TRIAGING, State.CONTAINED, State.RCA, State.FIXED})


class Records(Sequence[T], Generic[T]):
    """An immutable sequence that grows by sharing storage with what it grew from.

    Snapshots hold their evidence, notes and other lists as ``Records``:
    ``appended`` returns a new ``Records`` in O(1) when nothing else was appended
    to the same version, so a command on a long incident costs what it costs on
    a short one. It compares equal to another ``Records`` with the same items,
    never to a list or tuple, so a snapshot holding a list where ``Records``
    belongs does not pass for its replay.

    >>> first = Records(["a"])
    >>> second = first.appended("b")
    >>> list(first), list(second), second == Records(["a", "b"]), second == ("a", "b")
    (['a'], ['a', 'b'], True, False)
    """

    __slots__ = ("_items", "_len")

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._items: list[T] = list(items)
        self._len = len(self._items)

    @classmethod
    def _view(cls, items: list[T], length: int) -> Records[T]:
        view: Records[T] = cls.__new__(cls)
        view._items = items
        view._len = length
        return view

    def appended(self, item: T) -> Records[T]:
        """A new ``Records`` with ``item`` at the end; this one is unchanged."""
        items, length = self._items, self._len
        if len(items) == length:
            items.append(item)
            # Another append from this same version may have won the race.
            if items[length] is item:
                return self._view(items, length + 1)
        fresh = items[:length]
        fresh.append(item)
        return self._view(fresh, length + 1)

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...
    def __getitem__(self, index: int | slice) -> T | tuple[T, ...]:
        if isinstance(index, slice):
            return tuple(self._items[: self._len][index])
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("Records index out of range")
        return self._items[index]

    def __iter__(self) -> Iterator[T]:
        return islice(self._items, self._len)

    def __contains__(self, value: object) -> bool:
        try:
            # list.index finds the first occurrence at C speed; later ones are
            # beyond this view only if the first is too.
            return self._items.index(value) < self._len  # type: ignore[arg-type]
        except ValueError:
            return False

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Records):
            return self._len == other._len and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Records({list(self)!r})"


@attrs.frozen
class Evidence:
    """Something observed during triage: a log excerpt, a graph, a command's output."""

    source: str
    content: str
    at: datetime
    actor: str


@attrs.frozen
class TriageAnswer:
    """The answer to one question of the triage checklist."""

    question: str
    answer: str
    at: datetime
    actor: str


@attrs.frozen
class ContainmentAction:
    """A step taken to stop the bleeding, with the time it was taken."""

    description: str
    at: datetime
    actor: str


@attrs.frozen
class Why:
    """One link of the 5-Whys chain."""

    answer: str
    at: datetime
    actor: str


@attrs.frozen
class RootCause:
    """The root cause the 5-Whys chain reached, stated as the process gap."""

    statement: str
    process_gap: str
    at: datetime
    actor: str


@attrs.frozen
class Fix:
    """The change that fixes the root cause."""

    description: str
    test: str
    staging_verified: bool
    at: datetime
    actor: str


@attrs.frozen
class Deploy:
    """A deploy of the fix to production."""

    deployed_at: datetime
    ref: str
    actor: str


@attrs.frozen
class Confirmation:
    """A user's answer to "is it working for you now?"."""

    user: str
    positive: bool
    comment: str
    at: datetime
    actor: str


@attrs.frozen
class Detection:
    """When the issue first occurred and how it came to light."""

    first_occurred_at: datetime | None
    detected_at: datetime | None
    method: str
    actor: str


@attrs.frozen
class Note:
    """A free-form note, allowed in every state."""

    text: str
    at: datetime
    actor: str


@attrs.frozen
class ActionItem:
    """A follow-up with an owner and a due date, numbered from 1."""

    number: int
    description: str
    owner: str
    due: date
    done_at: datetime | None = None

    @property
    def done(self) -> bool:
        """True once the item was completed."""
        return self.done_at is not None


@attrs.frozen
class Postmortem:
    """The post-mortem, drafted step by step and then completed."""

    summary: str = ""
    root_cause: str = ""
    went_well: tuple[str, ...] = ()
    went_poorly: tuple[str, ...] = ()
    completed_at: datetime | None = None
    blame_warnings: tuple[str, ...] = ()

    @property
    def completed(self) -> bool:
        """True once ``complete_postmortem`` succeeded."""
        return self.completed_at is not None


@attrs.frozen
class KbEntry:
    """The knowledge-base gotcha written for the root cause."""

    slug: str
    symptom: str
    root_cause: str
    fix: str
    early_signs: str
    at: datetime
    actor: str


@attrs.frozen
class Incident:
    """The state of one incident: the fold of its event history.

    Snapshots are immutable; every command returns a new one.

    Attributes:
        id: ``INC-<YYYY-MM-DD>-<slug>``, from the declaration date (UTC).
        slug: ``[a-z0-9-]``, at most 48 characters; names the files.
        title: What is broken, in a line.
        severity: The current severity.
        state: Where the incident stands in the lifecycle.
        commander: The incident commander.
        declared_at: When it was declared (aware UTC).
        declared_by: Who declared it.
        version: The number of events in its history.
        updated_at: When the last event was recorded.
        postmortem_required: A completed post-mortem is needed before the KB entry.
        acknowledged_at: When triage started (the response-time clock stopped).
        contained_at: When it was declared contained.
        fixed_at: When it was marked fixed (cleared by a reopen).
        resolved_at: When it was resolved (cleared by a reopen).
        closed_at: When it reached kb_updated or was dismissed.
        detection: When it first occurred and how it was detected.
        evidence: Evidence items, oldest first.
        triage_answers: The latest answer to each triage question.
        containment: Containment actions, oldest first.
        whys: The 5-Whys chain.
        root_cause: The root cause and its process gap.
        fix: The current fix (cleared by a reopen).
        deploys: Deploys of the current fix (cleared by a reopen).
        confirmation: The latest user confirmation (cleared by a reopen).
        notes: Free-form notes.
        action_items: Follow-ups, numbered from 1.
        postmortem: The post-mortem, once drafted.
        kb_entry: The knowledge-base gotcha, once written.
        breaches: The deadlines recorded as breached (see ``flow.deadlines``).
        people: Everyone who took part: every actor, commander, confirming user
            and action-item owner, in order of appearance (for the blame check).
        reopen_count: How many times it was reopened.
        dismissal_reason: Why it was dismissed, if it was.
        duplicate_of: The incident it duplicates, if dismissed as a duplicate.

    """

    id: str
    slug: str
    title: str
    severity: Severity
    state: State
    commander: str
    declared_at: datetime
    declared_by: str
    version: int
    updated_at: datetime
    postmortem_required: bool
    acknowledged_at: datetime | None = None
    contained_at: datetime | None = None
    fixed_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    detection: Detection | None = None
    evidence: Records[Evidence] = attrs.field(factory=Records)
    triage_answers: Records[TriageAnswer] = attrs.field(factory=Records)
    containment: Records[ContainmentAction] = attrs.field(factory=Records)
    whys: Records[Why] = attrs.field(factory=Records)
    root_cause: RootCause | None = None
    fix: Fix | None = None
    deploys: Records[Deploy] = attrs.field(factory=Records)
    confirmation: Confirmation | None = None
    notes: Records[Note] = attrs.field(factory=Records)
    action_items: Records[ActionItem] = attrs.field(factory=Records)
    postmortem: Postmortem | None = None
    kb_entry: KbEntry | None = None
    breaches: Records[str] = attrs.field(factory=Records)
    people: Records[str] = attrs.field(factory=Records)
    reopen_count: int = 0
    dismissal_reason: str | None = None
    duplicate_of: str | None = None

    @property
    def triage(self) -> dict[str, str]:
        """The triage checklist as a question → latest answer mapping."""
        return {a.question: a.answer for a in self.triage_answers}

    @property
    def last_deploy(self) -> Deploy | None:
        """The latest deploy of the fix by deploy time (one may be logged late), if any."""
        return max(self.deploys, key=lambda d: d.deployed_at, default=None)

    @property
    def is_open(self) -> bool:
        """True while the incident still needs work before it is resolved."""
        return self.state.is_open
