"""Corrections: amend or retract what was recorded, with a reason, erasing nothing.

An item is named ``<kind>:<key>``: ``why:2``, ``evidence:1``, ``containment:3``,
``action_item:1`` (numbered from 1 in the order recorded), ``triage:scope`` (by
question), ``root_cause:statement``, ``fix:test``, ``postmortem:went_well``.
The history keeps what was first recorded; the snapshot holds the current value
with the correction on it, and guards count only live (unretracted) items.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import attrs

from .. import _events as ev
from .. import _validate as v
from .._blame import BlameCheck
from .._model import Correction, Incident, Postmortem, Records, State
from ..exceptions import ValidationError
from ._closure import blame
from ._define import EVERY_STATE, Argument, Command, Context, Guard, Move, Unmet, unmet
from ._shared import evolve, replace

__all__ = ["AMEND", "CORRECTABLE", "PHASE", "RETRACT", "Item", "item"]

#: What can be corrected, by kind: the keys it takes and whether it can be retracted.
CORRECTABLE: Final = {
    "evidence": "a number (evidence:1); amends the content",
    "triage": "a question (triage:scope); amends the answer",
    "containment": "a number (containment:1); amends the description",
    "why": "a number (why:2); amends the answer",
    "action_item": "a number (action_item:1); amends the description",
    "root_cause": "statement or process_gap (amend only)",
    "fix": "description or test (amend only)",
    "postmortem": "summary, root_cause, went_well or went_poorly (amend only)",
}
_NUMBERED: Final = ("evidence", "containment", "why", "action_item")
_PARTS: Final = {
    "root_cause": ("statement", "process_gap"),
    "fix": ("description", "test"),
    "postmortem": ("summary", "root_cause", "went_well", "went_poorly"),
}
_RETRACTABLE: Final = (*_NUMBERED, "triage")
#: The field each numbered or keyed kind amends, and the snapshot list that holds it.
_TEXT_FIELD: Final = {
    "evidence": ("evidence", "content"),
    "containment": ("containment", "description"),
    "why": ("whys", "answer"),
    "action_item": ("action_items", "description"),
    "triage": ("triage_answers", "answer"),
}


@attrs.frozen
class Item:
    """A parsed item name: its kind and its key (a number, a question or a part)."""

    kind: str
    key: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"

    @property
    def number(self) -> int:
        """The 1-based number of a numbered item."""
        return int(self.key)


def item(field: str, value: object) -> Item:
    """``value`` parsed as an item name, ``<kind>:<key>``."""
    text = v.name(field, value)
    kind, sep, key = text.partition(":")
    kind, key = kind.strip().lower(), key.strip()
    if not sep or kind not in CORRECTABLE or not key:
        kinds = "; ".join(f"{k}:{hint}" for k, hint in CORRECTABLE.items())
        raise ValidationError(field, f"{v._shown(value)} names nothing to correct; name {kinds}")
    if kind in _NUMBERED:
        if not (key.isascii() and key.isdigit()) or int(key) < 1 or len(key) > 9:
            raise ValidationError(field, f"{kind} items are numbered from 1, e.g. {kind}:1")
        key = str(int(key))
    elif kind == "triage":
        key = v.triage_key(key)
    elif key not in _PARTS[kind]:
        raise ValidationError(field, f"{kind} has {' and '.join(_PARTS[kind])}, not {key!r}")
    return Item(kind, key)


def _find(inc: Incident, it: Item) -> tuple[str, int] | None:
    """The snapshot list and index holding a list item, if it exists."""
    if it.kind == "triage":
        for index, answer in enumerate(inc.triage_answers):
            if answer.question == it.key:
                return "triage_answers", index
        return None
    records = getattr(inc, _TEXT_FIELD[it.kind][0])
    return (_TEXT_FIELD[it.kind][0], it.number - 1) if it.number <= len(records) else None


def _exists(c: Context[Any], it: Item) -> Unmet | None:
    inc = c.incident
    if it.kind in _TEXT_FIELD:
        if _find(inc, it) is not None:
            return None
        if it.kind == "triage":
            known = ", ".join(a.question for a in inc.triage_answers) or "none yet"
            return unmet(f"there is no answer to {it.key} (answered: {known})", item=str(it))
        count = len(getattr(inc, _TEXT_FIELD[it.kind][0]))
        return unmet(f"there is no {it} ({count} recorded)", item=str(it))
    if getattr(inc, it.kind) is None:
        command = {"root_cause": "set_root_cause", "fix": "record_fix"}.get(
            it.kind, "draft_postmortem"
        )
        return unmet(f"there is no {it.kind} to amend yet: use {command}", item=str(it))
    return None


def _item_exists(c: Context[ev.Amended | ev.Retracted]) -> Unmet | None:
    if c.payload is None:
        return None
    return _exists(c, item("item", c.payload.item))


def _still_live(c: Context[ev.Amended | ev.Retracted]) -> Unmet | None:
    if c.payload is None:
        return None
    it = item("item", c.payload.item)
    found = _find(c.incident, it) if it.kind in _TEXT_FIELD else None
    if found is None:
        return None
    record = getattr(c.incident, found[0])[found[1]]
    if record.retracted is None:
        return None
    return unmet(f"{it} is retracted already; record it anew instead", item=str(it))


# -- amend ------------------------------------------------------------------


def _value(field: str, value: object) -> tuple[str, ...]:
    # As long as evidence may be; other items are held to their own limit in _fits.
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValidationError(field, f"expected a text or a list of texts, got {v._shown(value)}")
    if len(items) > 100:
        raise ValidationError(field, f"has {len(items)} items; at most 100 are accepted")
    return tuple(v.text(f"{field}[{i}]", x, max_len=v.EVIDENCE_MAX) for i, x in enumerate(items))


def _amended_pm(c: Context[ev.Amended]) -> Postmortem | None:
    """The post-mortem as this amendment would leave it, if it amends the post-mortem."""
    if c.payload is None:
        return None
    it = item("item", c.payload.item)
    pm = c.incident.postmortem
    if it.kind != "postmortem" or pm is None:
        return None
    many = it.key in ("went_well", "went_poorly")
    changes: dict[str, Any] = {it.key: c.payload.value if many else c.payload.value[0]}
    return evolve(pm, **changes)


def _no_blame(c: Context[ev.Amended]) -> list[Unmet]:
    pm = _amended_pm(c)
    if pm is None or c.policy.blame_check is not BlameCheck.REJECT:
        return []
    return [unmet(phrase) for phrase in blame(c.incident, pm)]


def _fits(context: Context[ev.Amended], payload: ev.Amended) -> ev.Amended:
    it = item("item", payload.item)
    many = it.kind == "postmortem" and it.key in ("went_well", "went_poorly")
    if many and not payload.value:
        raise ValidationError(
            "value", f"{it} lists at least one item; amend it with the corrected list"
        )
    if not many and len(payload.value) != 1:
        raise ValidationError("value", f"{it} takes one text, not a list")
    limit = v.EVIDENCE_MAX if it.kind == "evidence" else v.TEXT_MAX
    if any(len(text) > limit for text in payload.value):
        raise ValidationError("value", f"is longer than {limit:,} characters, the limit of {it}")
    warnings: tuple[str, ...] = ()
    pm = _amended_pm(context)
    if pm is not None and pm.completed and context.policy.blame_check is BlameCheck.WARN:
        warnings = tuple(blame(context.incident, pm))
    return ev.Amended(str(it), payload.value, payload.reason, blame_warnings=warnings)


def _with_correction(record: Any, changes: dict[str, Any], correction: Correction) -> Any:
    return evolve(record, **changes, amended=correction)


def _replaced(records: Records[Any], index: int, new: Any) -> Records[Any]:
    items = list(records)
    items[index] = new
    return Records(items)


def _amend_fold(inc: Incident, e: ev.Event, d: ev.Amended) -> Incident:
    it = item("item", d.item)
    correction = Correction(e.at, e.actor, d.reason)
    if it.kind in _TEXT_FIELD:
        found = _find(inc, it)
        assert found is not None
        name, index = found
        records = getattr(inc, name)
        field = _TEXT_FIELD[it.kind][1]
        new = _with_correction(records[index], {field: d.value[0]}, correction)
        changed: dict[str, Any] = {name: _replaced(records, index, new)}
        return replace(inc, **changed)
    if it.kind == "postmortem":
        pm = inc.postmortem or Postmortem()
        value: object = d.value if it.key in ("went_well", "went_poorly") else d.value[0]
        changes: dict[str, Any] = {it.key: value, "amended": correction}
        if pm.completed:
            changes["blame_warnings"] = d.blame_warnings
        amended: Postmortem = evolve(pm, **changes)
        return replace(inc, postmortem=amended)
    current = getattr(inc, it.kind)
    corrected: dict[str, Any] = {
        it.kind: _with_correction(current, {it.key: d.value[0]}, correction)
    }
    return replace(inc, **corrected)


AMEND = Command(
    name="amend",
    summary="Correct something recorded, with a reason; the history keeps the original.",
    event=ev.Amended,
    moves=(Move(EVERY_STATE),),
    arguments=(
        Argument(
            "item",
            lambda f, x: str(item(f, x)),
            "What to correct: why:2, evidence:1, containment:1, action_item:1, triage:scope, "
            "root_cause:statement, fix:test, postmortem:summary, ...",
        ),
        Argument(
            "value",
            _value,
            "The corrected text (a list for postmortem:went_well and went_poorly).",
        ),
        Argument("reason", v.text, "Why it is corrected."),
    ),
    guards=(
        Guard("correction.unknown_item", "the item exists", _item_exists),
        Guard("correction.retracted", "the item is not retracted", _still_live),
        Guard("postmortem.blame", "no blame (policy: reject)", _no_blame),
    ),
    prepare=_fits,
    fold=_amend_fold,
)


# -- retract ----------------------------------------------------------------

_PAST_TRIAGE: Final = frozenset(
    {State.CONTAINED, State.RCA, State.FIXED, State.RESOLVED, State.POSTMORTEM, State.KB_UPDATED}
)
_PAST_RCA: Final = frozenset({State.FIXED, State.RESOLVED, State.POSTMORTEM, State.KB_UPDATED})
_CLOSED: Final = frozenset({State.POSTMORTEM, State.KB_UPDATED})


def _live_count(inc: Incident, name: str) -> int:
    return sum(1 for record in getattr(inc, name) if record.retracted is None)


def _needed(c: Context[ev.Retracted]) -> Unmet | None:
    """Retracting must not take away what let the incident past a gate of the process."""
    if c.payload is None:
        return None
    inc, it = c.incident, item("item", c.payload.item)
    if it.kind not in _RETRACTABLE or _find(inc, it) is None:
        return None
    gate: tuple[frozenset[State], Callable[[], bool], str] | None = {
        "evidence": (_PAST_TRIAGE, lambda: _live_count(inc, "evidence") <= 1, "contain"),
        "containment": (_PAST_TRIAGE, lambda: _live_count(inc, "containment") <= 1, "contain"),
        "triage": (
            _PAST_TRIAGE,
            lambda: it.key in c.policy.process_of(inc).required_triage_answers,
            "contain",
        ),
        "why": (_PAST_RCA, lambda: _live_count(inc, "whys") <= 1, "mark_fixed"),
        "action_item": (
            _CLOSED,
            lambda: _live_count(inc, "action_items") <= _minimum_items(c),
            "closing",
        ),
    }.get(it.kind)
    if gate is None:
        return None
    states, last, step = gate
    if inc.state not in states or not last():
        return None
    return unmet(
        f"{it} is what {step} relied on, and {inc.id} is past it; amend it instead of "
        "retracting it",
        item=str(it),
    )


def _minimum_items(c: Context[Any]) -> int:
    inc = c.incident
    process = c.policy.process_of(inc)
    written = inc.postmortem is not None and inc.postmortem.completed
    return max(int(inc.postmortem_required or written), process.min_action_items)


def _retractable(c: Context[ev.Retracted]) -> Unmet | None:
    if c.payload is None:
        return None
    it = item("item", c.payload.item)
    if it.kind in _RETRACTABLE:
        return None
    return unmet(f"{it.kind} can only be amended, not retracted", item=str(it))


def _retract_fold(inc: Incident, e: ev.Event, d: ev.Retracted) -> Incident:
    it = item("item", d.item)
    found = _find(inc, it)
    assert found is not None
    name, index = found
    records = getattr(inc, name)
    new = evolve(records[index], retracted=Correction(e.at, e.actor, d.reason))
    changed: dict[str, Any] = {name: _replaced(records, index, new)}
    return replace(inc, **changed)


RETRACT = Command(
    name="retract",
    summary="Withdraw something recorded in error; it stays in the history, marked retracted.",
    event=ev.Retracted,
    moves=(Move(EVERY_STATE),),
    arguments=(
        Argument(
            "item",
            lambda f, x: str(item(f, x)),
            "What to withdraw: why:2, evidence:1, containment:1, action_item:1 or triage:scope.",
        ),
        Argument("reason", v.text, "Why it is withdrawn."),
    ),
    guards=(
        Guard("correction.not_retractable", "an item that can be retracted", _retractable),
        Guard("correction.unknown_item", "the item exists", _item_exists),
        Guard("correction.retracted", "the item is not retracted", _still_live),
        Guard("correction.needed", "not what a passed gate relied on", _needed),
    ),
    fold=_retract_fold,
)


#: This phase's commands.
PHASE = (AMEND, RETRACT)
