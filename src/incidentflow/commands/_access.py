"""Who may see an incident: restricting it to named actors and groups, and lifting that."""

from __future__ import annotations

from .. import _events as ev
from .. import _validate as v
from ..exceptions import ValidationError
from ._define import EVERY_STATE, Argument, Command, Context, Guard, Move, Unmet, unmet
from ._shared import replace

__all__ = ["PHASE", "RESTRICT", "UNRESTRICT", "principals"]

#: At most this many actors and groups on one restriction.
MAX_PRINCIPALS = 100


def principals(field: str, value: object) -> tuple[str, ...]:
    """Actor names and ``group:<name>`` entries: one name or a list, at least one."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise ValidationError(
            field, f"expected actor or group names, e.g. ['alice', 'group:sre'], got {items!r}"
        )
    if not items:
        raise ValidationError(field, "name at least one actor or group:<name>")
    if len(items) > MAX_PRINCIPALS:
        raise ValidationError(field, f"has {len(items)} names; at most {MAX_PRINCIPALS}")
    return tuple(dict.fromkeys(v.name(field, item) for item in items))


def _with_actor(context: Context[ev.Restricted], payload: ev.Restricted) -> ev.Restricted:
    # Whoever restricts keeps access: nobody can lock themselves out by mistake.
    names = (*payload.to, context.actor) if context.actor else payload.to
    return ev.Restricted(tuple(sorted(set(names))))


def _unjoined(c: Context[ev.EventData]) -> Unmet | None:
    """A linked incident keeps its restriction: its links join it to incidents restricted alike."""
    others = [x.other for x in c.incident.links]
    if c.incident.duplicate_of:
        others.append(c.incident.duplicate_of)
    if not others:
        return None
    return unmet(
        f"{c.incident.id} is linked to {', '.join(dict.fromkeys(others))}, restricted as it is "
        "now: unlink them first, then change who may see it",
        others=list(dict.fromkeys(others)),
    )


_UNJOINED: Guard[ev.EventData] = Guard("access.linked", "no link to another incident", _unjoined)


RESTRICT = Command(
    name="restrict",
    summary="Restrict the incident to named actors and groups; everyone else sees no incident.",
    event=ev.Restricted,
    moves=(Move(EVERY_STATE),),
    arguments=(
        Argument(
            "to", principals, "Actors and groups (group:sre) who may see it; the actor is added."
        ),
    ),
    guards=(_UNJOINED,),
    prepare=_with_actor,
    fold=lambda inc, e, d: replace(inc, restricted_to=d.to),
)


def _restricted(c: Context[ev.Unrestricted]) -> Unmet | None:
    if c.incident.restricted_to:
        return None
    return unmet(f"{c.incident.id} is not restricted; everyone with read access sees it")


UNRESTRICT = Command(
    name="unrestrict",
    summary="Lift the restriction: everyone with read access sees the incident again.",
    event=ev.Unrestricted,
    moves=(Move(EVERY_STATE),),
    guards=(Guard("access.unrestricted", "the incident is restricted", _restricted), _UNJOINED),
    fold=lambda inc, e, d: replace(inc, restricted_to=()),
)

#: This phase's commands.
PHASE = (RESTRICT, UNRESTRICT)
