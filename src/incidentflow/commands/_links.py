"""Relations between incidents: links (duplicate, cause, related, parent and child) and merges.

A link is recorded on both incidents, the inverse kind on the other one; the
facade runs the two halves as two commits. A merge closes the duplicate first
(``merge``: it gives up its external references) and then the target absorbs
its evidence, labels and references (``absorb``, run by the library).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .. import _events as ev
from .. import _validate as v
from .._model import Evidence, Incident, Link, Records, State
from ..exceptions import ValidationError
from ._define import (
    EVERY_STATE,
    Argument,
    Command,
    Context,
    Guard,
    Move,
    Unmet,
    unmet,
)
from ._shared import incident_id, replace
from ._triage import references

__all__ = [
    "ABSORB",
    "CHILD_OPEN",
    "LINK",
    "LINK_KINDS",
    "MERGE",
    "OPEN_STATES",
    "PHASE",
    "UNLINK",
    "inverse",
    "linked",
]

#: Every kind of link, with the kind the other incident records.
LINK_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "duplicate_of": "duplicated_by",
        "duplicated_by": "duplicate_of",
        "caused_by": "causes",
        "causes": "caused_by",
        "related_to": "related_to",
        "parent_of": "child_of",
        "child_of": "parent_of",
    }
)

#: The states a duplicate can be merged in: while work on it is under way.
OPEN_STATES: tuple[State, ...] = tuple(s for s in State if s.is_open)


def inverse(kind: str) -> str:
    """The kind of link the other incident records: ``parent_of`` → ``child_of``."""
    return LINK_KINDS[kind]


def _kind(field: str, value: object) -> str:
    return v.one_of(field, value, LINK_KINDS)


def linked(inc: Incident, kind: str, other: str) -> bool:
    """True when ``inc`` holds a link of ``kind`` to ``other``."""
    return any(link.kind == kind and link.other == other for link in inc.links)


def _not_linked(c: Context[ev.Linked]) -> Unmet | None:
    if c.payload is None or not linked(c.incident, c.payload.kind, c.payload.other):
        return None
    kind, other = c.payload.kind, c.payload.other
    return unmet(f"{c.incident.id} is {kind} {other} already", kind=kind, other=other)


def _consistent(c: Context[ev.Linked]) -> Unmet | None:
    if c.payload is None:
        return None
    kind, other = c.payload.kind, c.payload.other
    opposite = inverse(kind)
    if opposite == kind or not linked(c.incident, opposite, other):
        return None
    return unmet(
        f"{c.incident.id} is {opposite} {other}: it cannot be {kind} it too; unlink first",
        kind=kind,
        other=other,
        linked=opposite,
    )


def _with_link(inc: Incident, kind: str, other: str, e: ev.Event) -> Records[Link]:
    if linked(inc, kind, other):
        return inc.links
    return inc.links.appended(Link(kind, other, e.at, e.actor))


_LINK_ARGUMENTS = (
    Argument("kind", _kind, "duplicate_of, caused_by, related_to, parent_of or child_of."),
    Argument("other", incident_id, "The other incident's id.", incident_ref=True),
)

LINK = Command(
    name="link",
    summary="Link to another incident (the other records the inverse: parent_of ↔ child_of).",
    event=ev.Linked,
    moves=(Move(EVERY_STATE),),
    arguments=_LINK_ARGUMENTS,
    guards=(
        Guard("links.present", "not linked so already", _not_linked),
        Guard("links.contradicted", "not linked the opposite way", _consistent),
    ),
    fold=lambda inc, e, d: replace(inc, links=_with_link(inc, d.kind, d.other, e)),
)


def _is_linked(c: Context[ev.Unlinked]) -> Unmet | None:
    if c.payload is None or linked(c.incident, c.payload.kind, c.payload.other):
        return None
    kind, other = c.payload.kind, c.payload.other
    return unmet(f"{c.incident.id} is not {kind} {other}", kind=kind, other=other)


UNLINK = Command(
    name="unlink",
    summary="Remove a link to another incident (and the inverse on the other).",
    event=ev.Unlinked,
    moves=(Move(EVERY_STATE),),
    arguments=_LINK_ARGUMENTS,
    guards=(Guard("links.absent", "linked so", _is_linked),),
    fold=lambda inc, e, d: replace(
        inc,
        links=Records(x for x in inc.links if (x.kind, x.other) != (d.kind, d.other)),
    ),
)


def _giving_up_references(context: Context[ev.Merged], payload: ev.Merged) -> ev.Merged:
    return ev.Merged(payload.into, payload.reason, references=tuple(context.incident.references))


def _merged(inc: Incident, e: ev.Event, d: ev.Merged) -> Incident:
    return replace(
        inc,
        closed_at=e.at,
        dismissal_reason=f"merged into {d.into}: {d.reason}",
        duplicate_of=d.into,
        references=Records(),
        links=_with_link(inc, "duplicate_of", d.into, e),
    )


MERGE = Command(
    name="merge",
    summary="Merge a duplicate into another incident: it closes, its evidence and references move.",
    event=ev.Merged,
    moves=(Move(OPEN_STATES, State.DISMISSED),),
    arguments=(
        Argument(
            "into",
            incident_id,
            "The incident it duplicates, which takes its evidence, labels and references.",
            incident_ref=True,
        ),
        Argument("reason", v.text, "Why they are one incident."),
    ),
    prepare=_giving_up_references,
    fold=_merged,
)


def _evidence(field: str, value: object) -> tuple[Evidence, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(x, Evidence) for x in value):
        raise ValidationError(field, "expected the merged incident's Evidence items")
    return tuple(value)


def _new_to_target(context: Context[ev.Absorbed], payload: ev.Absorbed) -> ev.Absorbed:
    inc = context.incident
    labels = {k: val for k, val in payload.labels.items() if k not in inc.labels}
    held = set(inc.references)
    refs = tuple(r for r in payload.references if r not in held)
    return ev.Absorbed(payload.source, payload.evidence, labels, refs)


def _absorbed(inc: Incident, e: ev.Event, d: ev.Absorbed) -> Incident:
    return replace(
        inc,
        evidence=Records((*inc.evidence, *d.evidence)) if d.evidence else inc.evidence,
        labels={**inc.labels, **d.labels} if d.labels else inc.labels,
        references=Records((*inc.references, *d.references)) if d.references else inc.references,
        links=_with_link(inc, "duplicated_by", d.source, e),
    )


ABSORB = Command(
    name="absorb",
    summary="Take in a merged duplicate's evidence, labels and references (run by merge).",
    event=ev.Absorbed,
    # In every state: a merge cut short is completed even if its target closed meanwhile.
    moves=(Move(EVERY_STATE),),
    arguments=(
        Argument("source", incident_id, "The merged duplicate.", incident_ref=True),
        Argument("evidence", _evidence, "Its live evidence items.", default=()),
        Argument("labels", v.labels, "Its labels; the target's own keep their values.", default={}),
        Argument("references", references, "The external references it gave up.", default=()),
    ),
    prepare=_new_to_target,
    fold=_absorbed,
    system=True,
)


def _no_open_child(c: Context[ev.EventData]) -> Unmet | None:
    if not c.others:
        return None
    children = [x.other for x in c.incident.links if x.kind == "parent_of"]
    still_open = [child for child in children if c.others.get(child, State.DISMISSED).is_open]
    if not still_open:
        return None
    return unmet(
        f"{c.incident.id} is the parent of {', '.join(still_open)}, still open: "
        "resolve or dismiss the children first, or unlink them",
        children=still_open,
    )


#: Resolve's guard: a parent waits for its children (their states come in ``Context.others``).
CHILD_OPEN = Guard(
    "links.child_open", "no child incident open", _no_open_child, sees=("parent_of",)
)

#: This phase's commands, in the order people meet them.
PHASE = (LINK, UNLINK, MERGE, ABSORB)
