"""Resolved onwards: the post-mortem, action items and the knowledge-base gotcha."""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from .. import _events as ev
from .. import _validate as v
from .._blame import BlameCheck, find_blame
from .._builders import builder, copier
from .._model import Incident, KbEntry, Postmortem, State
from ..exceptions import ValidationError
from ._define import Argument, Command, Context, Guard, Move, Recorded, Unmet, unmet
from ._shared import remembered, replace

__all__ = [
    "ACTION_ITEMS_MISSING",
    "COMPLETE_POSTMORTEM",
    "DRAFT_POSTMORTEM",
    "PHASE",
    "UPDATE_KB",
    "blame",
    "merged",
]

# Built on every fold of their events: the records attrs would make, without its setattr calls.
_new_kb_entry = builder(KbEntry)
_new_postmortem = builder(Postmortem)
_new_completed = builder(ev.PostmortemCompleted)
_with_postmortem = copier(Postmortem)
_with_kb = copier(ev.KbUpdated)
_retracted = attrgetter("retracted")


_POSTMORTEM_ARGUMENTS = (
    Argument("summary", v.text, "What happened and its impact, in a paragraph.", default=None),
    Argument("root_cause", v.text, "The root cause, as the process gap.", default=None),
    Argument("went_well", v.texts, "What went well (a list).", default=None),
    Argument("went_poorly", v.texts, "What went poorly (a list).", default=None),
)


def merged(pm: Postmortem | None, draft: ev.PostmortemDrafted | None) -> Postmortem:
    """The post-mortem with the draft's given fields written over it."""
    pm = pm or _new_postmortem()
    if draft is None or not _given(draft):
        return pm
    return _new_postmortem(
        summary=draft.summary if draft.summary is not None else pm.summary,
        root_cause=draft.root_cause if draft.root_cause is not None else pm.root_cause,
        went_well=draft.went_well if draft.went_well is not None else pm.went_well,
        went_poorly=draft.went_poorly if draft.went_poorly is not None else pm.went_poorly,
        completed_at=pm.completed_at,
        blame_warnings=pm.blame_warnings,
        amended=pm.amended,
    )


def blame(inc: Incident, pm: Postmortem) -> list[str]:
    """Phrases of the post-mortem that blame one of the incident's people."""
    texts = [pm.summary, pm.root_cause, *pm.went_well, *pm.went_poorly]
    return find_blame("\n".join(texts), set(inc.people))


def _given(draft: ev.PostmortemDrafted) -> bool:
    """True when the draft gives at least one of the post-mortem's fields."""
    return (
        draft.summary is not None
        or draft.root_cause is not None
        or draft.went_well is not None
        or draft.went_poorly is not None
    )


def _at_least_one(
    context: Context[ev.PostmortemDrafted], payload: ev.PostmortemDrafted
) -> ev.PostmortemDrafted:
    if not _given(payload):
        raise ValidationError(
            "postmortem", "give at least one of summary, root_cause, went_well, went_poorly"
        )
    return payload


DRAFT_POSTMORTEM = Command(
    name="draft_postmortem",
    summary="Fill in post-mortem fields; those left out keep their value.",
    event=ev.PostmortemDrafted,
    moves=(Move((State.FIXED, State.RESOLVED)),),
    arguments=_POSTMORTEM_ARGUMENTS,
    prepare=_at_least_one,
    fold=lambda inc, e, d: replace(inc, postmortem=merged(inc.postmortem, d)),
)


@remembered
def _pm(c: Context[ev.PostmortemDrafted]) -> Postmortem:
    """The post-mortem as the command would leave it; shared by one decision's guards."""
    return merged(c.incident.postmortem, c.payload)


def _missing(field: str, message: str) -> Guard[ev.PostmortemDrafted]:
    def check(c: Context[ev.PostmortemDrafted]) -> str | None:
        return None if getattr(_pm(c), field) else message

    return Guard(f"postmortem.{field}_missing", f"post-mortem {field}", check)


def _enough_action_items(c: Context[ev.EventData], *, written: bool) -> Unmet | None:
    inc = c.incident
    # A written post-mortem always needs a follow-up; the policy may ask for more.
    floor = (
        written
        or inc.postmortem_required
        or (inc.postmortem is not None and inc.postmortem.completed)
    )
    needed = max(int(floor), c.policy.process_of(inc).min_action_items)
    live = list(map(_retracted, inc.action_items)).count(None)  # the live ones
    if live >= needed:
        return None
    if needed == 1:
        if inc.action_items:
            return unmet(
                "no live action items (retracted ones do not count): add one with an owner "
                "and a due date"
            )
        return unmet("no action items: add at least one with an owner and a due date")
    return unmet(
        f"{live} action items recorded; a {inc.severity.value} {inc.type} incident needs "
        f"at least {needed}: add more with add_action_item",
        needed=needed,
        recorded=live,
    )


def _no_blame(c: Context[ev.PostmortemDrafted]) -> list[Unmet] | None:
    if c.policy.blame_check is not BlameCheck.REJECT:
        return None  # None, not []: the guard holds without being asked twice
    return [unmet(phrase) for phrase in blame(c.incident, _pm(c))] or None


def _complete(
    context: Context[ev.PostmortemDrafted], payload: ev.PostmortemDrafted
) -> Sequence[ev.EventData]:
    warn = context.policy.blame_check is BlameCheck.WARN
    warnings = tuple(blame(context.incident, _pm(context))) if warn else ()
    completed = _new_completed(blame_warnings=warnings)
    return (payload, completed) if _given(payload) else (completed,)


def _completed(inc: Incident, e: ev.Event, d: ev.PostmortemCompleted) -> Incident:
    pm = inc.postmortem or _new_postmortem()
    return replace(
        inc,
        state=State.POSTMORTEM,
        postmortem=_with_postmortem(pm, completed_at=e.at, blame_warnings=d.blame_warnings),
    )


_ACTION_ITEMS_SUMMARY = "enough action items (≥1 with a post-mortem)"
#: Shared by complete_postmortem and update_kb: every closed incident has its follow-ups.
ACTION_ITEMS_MISSING: Guard[ev.EventData] = Guard(
    "action_items.missing",
    _ACTION_ITEMS_SUMMARY,
    lambda c: _enough_action_items(c, written=False),
)
_ACTION_ITEMS_FOR_POSTMORTEM: Guard[ev.EventData] = Guard(
    "action_items.missing",
    _ACTION_ITEMS_SUMMARY,
    lambda c: _enough_action_items(c, written=True),
)

COMPLETE_POSTMORTEM = Command(
    name="complete_postmortem",
    summary="Complete the post-mortem, filling in any fields given first.",
    event=ev.PostmortemDrafted,
    moves=(Move((State.RESOLVED,), State.POSTMORTEM),),
    arguments=_POSTMORTEM_ARGUMENTS,
    guards=(
        _missing("summary", "the post-mortem has no summary"),
        _missing("root_cause", "the post-mortem has no root cause"),
        _missing("went_well", 'the post-mortem lists nothing under "what went well"'),
        _missing("went_poorly", 'the post-mortem lists nothing under "what went poorly"'),
        _ACTION_ITEMS_FOR_POSTMORTEM,
        Guard("postmortem.blame", "no blame (policy: reject)", _no_blame),
    ),
    emit=_complete,
    fold=None,  # the fields given are folded as draft_postmortem's event
    records=(Recorded(ev.PostmortemCompleted, _completed),),
)


def _postmortem_first(c: Context[ev.KbUpdated]) -> Unmet | None:
    inc = c.incident
    if inc.state is not State.RESOLVED or not inc.postmortem_required:
        return None
    return unmet(
        f"a {inc.severity.value} incident needs a completed post-mortem first: "
        "use complete_postmortem",
        severity=inc.severity.value,
    )


def _from_incident(context: Context[ev.KbUpdated], payload: ev.KbUpdated) -> ev.KbUpdated:
    inc = context.incident
    return _with_kb(
        payload,
        slug=inc.slug,
        root_cause=payload.root_cause or (inc.root_cause.statement if inc.root_cause else ""),
        fix=payload.fix or (inc.fix.description if inc.fix else ""),
    )


def _kb_written(inc: Incident, e: ev.Event, d: ev.KbUpdated) -> Incident:
    entry = _new_kb_entry(d.slug, d.symptom, d.root_cause, d.fix, d.early_signs, e.at, e.actor)
    return replace(inc, closed_at=e.at, kb_entry=entry)


UPDATE_KB = Command(
    name="update_kb",
    summary="Write the knowledge-base gotcha and close the incident.",
    event=ev.KbUpdated,
    moves=(Move((State.RESOLVED, State.POSTMORTEM), State.KB_UPDATED),),
    arguments=(
        Argument("symptom", v.text, "What responders saw."),
        Argument("early_signs", v.text, "How to spot it early next time."),
        Argument("root_cause", v.optional_text, "Default: the incident's root cause.", default=""),
        Argument("fix", v.optional_text, "Default: the incident's fix.", default=""),
    ),
    guards=(
        Guard("postmortem.required", "post-mortem done (P1/P2)", _postmortem_first),
        ACTION_ITEMS_MISSING,
    ),
    prepare=_from_incident,
    fold=_kb_written,
)

#: This phase's commands, in the order people meet them.
PHASE = (DRAFT_POSTMORTEM, COMPLETE_POSTMORTEM, UPDATE_KB)
