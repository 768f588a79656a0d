"""Fixed: a real user's confirmation and the watch window before resolved; reopening."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .. import _events as ev
from .. import _validate as v
from .._builders import builder
from .._model import Confirmation, Incident, Records, State, SupersededFix
from ..exceptions import ValidationError
from ._coordination import COMMANDER
from ._define import Argument, Command, Context, Guard, Move, Unmet, unmet
from ._links import CHILD_OPEN
from ._shared import later, remembered, replace, time_left, when

__all__ = ["CONFIRM_BY_USER", "REOPEN", "RESOLVE"]

# Built on every fold of their events: the records attrs would make, without its setattr calls.
_new_confirmation = builder(Confirmation)


def _positive(payload: ev.UserConfirmed | None) -> bool:
    return payload is None or payload.positive


def _negative(payload: ev.UserConfirmed | None) -> bool:
    return payload is None or not payload.positive


def _reopen_when_negative(
    context: Context[ev.UserConfirmed], payload: ev.UserConfirmed
) -> Sequence[ev.EventData]:
    if payload.positive:
        return (payload,)
    reason = f"user {payload.user} reported the problem persists"
    return (payload, ev.Reopened(reason=reason, to_state=State.RCA))


CONFIRM_BY_USER = Command(
    name="confirm_by_user",
    summary="Record a user's answer to 'does it work now?'; a negative one reopens to rca.",
    event=ev.UserConfirmed,
    moves=(
        Move((State.FIXED,), None, when=_positive),
        Move((State.FIXED,), State.RCA, when=_negative),
    ),
    arguments=(
        Argument(
            "user",
            v.name,
            "The user who answered (by default, nobody who has commanded the incident).",
        ),
        Argument("positive", v.boolean, "True when it works for them now.", default=True),
        Argument("comment", v.optional_text, "What they said, in their words.", default=""),
    ),
    emit=_reopen_when_negative,
    fold=lambda inc, e, d: replace(
        inc, confirmation=_new_confirmation(d.user, d.positive, d.comment, e.at, e.actor)
    ),
)


@remembered
def _confirmation(inc: Incident) -> Confirmation | None:
    """The latest confirmation, if it came after the latest deploy."""
    deploy, confirmation = inc.last_deploy, inc.confirmation
    if deploy is None or confirmation is None or confirmation.at < deploy.deployed_at:
        return None
    return confirmation


def _confirmed(c: Context[ev.Resolved]) -> Unmet | None:
    if _confirmation(c.incident) is not None:
        return None
    deploy = c.incident.last_deploy
    since = f" after the deploy at {when(deploy.deployed_at)}" if deploy is not None else ""
    if c.incident.superseded:
        since += " (the confirmation before the reopen is superseded)"
    return unmet(
        f"no user confirmation recorded{since}: ask a user and record it with confirm_by_user"
    )


def _confirmed_positive(c: Context[ev.Resolved]) -> Unmet | None:
    confirmation = _confirmation(c.incident)
    if confirmation is None or confirmation.positive:
        return None
    return unmet(
        f"the last user confirmation, by {confirmation.user}, was negative",
        user=confirmation.user,
    )


def _former_commanders(inc: Incident, at: datetime) -> dict[str, datetime]:
    """Who held the commander role up to ``at`` and handed it over since: when they last did.

    Handoffs are recorded in commit order, which is time order: an event is never
    stamped before the one it follows (see ``incidentflow._flow_fast.stamped``).
    """
    former: dict[str, datetime] = {}
    for handoff in inc.handoffs:
        if handoff.role != COMMANDER:
            continue
        if handoff.from_person is not None:
            former[handoff.from_person] = handoff.at
        if handoff.at > at:
            break  # its from_person held the role at ``at``; whoever took it then did not
    return former


def _confirmed_by_another(c: Context[ev.Resolved]) -> Unmet | None:
    confirmation = _confirmation(c.incident)
    if confirmation is None or not confirmation.positive or not c.policy.confirmer_must_differ:
        return None
    # Everyone who commanded the incident up to the confirmation counts, and the commander
    # now: handing the role over must not turn the commander's own word into a user's.
    # Names are compared exactly, as actors are everywhere (the authorizer, restricted_to).
    user, commander = confirmation.user, c.incident.commander
    if user == commander:
        return unmet(
            f"the confirmation came from the incident commander {commander}; "
            "a user other than the commander must confirm",
            user=commander,
        )
    handed_over = _former_commanders(c.incident, confirmation.at).get(user)
    if handed_over is None:
        return None
    return unmet(
        f"the confirmation came from {user}, the incident commander until "
        f"{when(handed_over)}; a user who has not been the commander must confirm",
        user=user,
    )


def _watched(c: Context[ev.Resolved]) -> Unmet | None:
    deploy = c.incident.last_deploy
    if deploy is None:
        return None
    watch_end = later(deploy.deployed_at, c.policy.process_of(c.incident).watch_window)
    if c.now >= watch_end:
        return None
    return unmet(
        f"the post-deploy watch window runs until {when(watch_end)} "
        f"({time_left(watch_end - c.now)} left)",
        until=watch_end.isoformat(),
    )


RESOLVE = Command(
    name="resolve",
    summary="Resolve: needs a positive user confirmation and the watch window passed.",
    event=ev.Resolved,
    moves=(Move((State.FIXED,), State.RESOLVED),),
    guards=(
        Guard("confirmation.missing", "a user confirmed after the deploy", _confirmed),
        Guard("confirmation.negative", "the confirmation is positive", _confirmed_positive),
        Guard("confirmation.by_commander", "confirmed by a non-commander", _confirmed_by_another),
        Guard("watch_window.running", "watch window passed", _watched),
        CHILD_OPEN,
    ),
    fold=lambda inc, e, d: replace(inc, resolved_at=e.at),
)


def _reopen_target(field: str, value: object) -> State:
    if value in ("triaging", State.TRIAGING):
        return State.TRIAGING
    if value in ("rca", State.RCA):
        return State.RCA
    raise ValidationError(
        field, f"{v._shown(value)} is not accepted; reopen to 'triaging' or 'rca'"
    )


def _to(state: State) -> Move:
    return Move(
        (State.FIXED, State.RESOLVED),
        state,
        when=lambda p: p is None or p.to_state is state,
    )


def _reopened(inc: Incident, e: ev.Event, d: ev.Reopened) -> Incident:
    superseded = inc.superseded
    if inc.fix is not None or inc.deploys or inc.confirmation is not None:
        attempt = SupersededFix(inc.fix, tuple(inc.deploys), inc.confirmation, e.at, d.reason)
        superseded = superseded.appended(attempt)
    return replace(
        inc,
        superseded=superseded,
        state=d.to_state,
        reopen_count=inc.reopen_count + 1,
        confirmation=None,
        fix=None,
        deploys=Records(),
        fixed_at=None,
        resolved_at=None,
        closed_at=None,
    )


REOPEN = Command(
    name="reopen",
    summary="Reopen a fixed or resolved incident to rca or triaging, with a reason; the fix, "
    "its deploys and the confirmation are kept, marked superseded, and needed anew.",
    event=ev.Reopened,
    moves=(_to(State.TRIAGING), _to(State.RCA)),
    arguments=(
        Argument("reason", v.text, "Why it is reopened."),
        Argument(
            "to",
            _reopen_target,
            "Where it goes back to: 'rca' (default) or 'triaging'.",
            default="rca",
            field="to_state",
        ),
    ),
    fold=_reopened,
)

#: This phase's commands, in the order people meet them.
PHASE = (CONFIRM_BY_USER, RESOLVE, REOPEN)
