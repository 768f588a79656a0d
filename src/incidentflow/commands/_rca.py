"""Contained and rca: the 5-Whys chain, the root cause, the fix and its deploy."""

from __future__ import annotations

from operator import attrgetter

from .. import _events as ev
from .. import _validate as v
from .._builders import builder
from .._model import Deploy, Fix, RootCause, State, Why
from ._define import NOW, Argument, Command, Context, Guard, Move, Unmet, unmet
from ._shared import in_incident_time, replace

__all__ = [
    "ADD_WHY",
    "MARK_FIXED",
    "MAX_WHYS",
    "PHASE",
    "RECORD_DEPLOY",
    "RECORD_FIX",
    "SET_ROOT_CAUSE",
    "START_RCA",
]

# Built on every fold of their events: the records attrs would make, without its setattr calls.
_new_deploy = builder(Deploy)
_new_fix = builder(Fix)
_new_root_cause = builder(RootCause)
_new_why = builder(Why)

#: The longest 5-Whys chain.
MAX_WHYS = 5

START_RCA = Command(
    name="start_rca",
    summary="Start root-cause analysis.",
    event=ev.RcaStarted,
    moves=(Move((State.CONTAINED,), State.RCA),),
    fold=lambda inc, e, d: inc,
)


def _live_whys(c: Context[ev.EventData]) -> int:
    return list(map(_retracted, c.incident.whys)).count(None)


_retracted = attrgetter("retracted")


def _room_for_a_why(c: Context[ev.WhyAdded]) -> Unmet | None:
    if _live_whys(c) < MAX_WHYS:
        return None
    return unmet(
        f"the 5-Whys chain already has {MAX_WHYS} whys; state the root cause instead, "
        "or retract a why recorded in error",
        limit=MAX_WHYS,
    )


ADD_WHY = Command(
    name="add_why",
    summary="Add the next link of the 5-Whys chain (at most five).",
    event=ev.WhyAdded,
    moves=(Move((State.RCA,)),),
    arguments=(Argument("answer", v.text, "The answer to the next why."),),
    guards=(Guard("whys.full", "fewer than 5 whys", _room_for_a_why),),
    fold=lambda inc, e, d: replace(inc, whys=inc.whys.appended(_new_why(d.answer, e.at, e.actor))),
)


SET_ROOT_CAUSE = Command(
    name="set_root_cause",
    summary="State the root cause and the process gap that let it through.",
    event=ev.RootCauseSet,
    moves=(Move((State.RCA,)),),
    arguments=(
        Argument("statement", v.text, "The root cause the chain reached."),
        Argument("process_gap", v.text, "The gap in the process that let it through."),
    ),
    fold=lambda inc, e, d: replace(
        inc, root_cause=_new_root_cause(d.statement, d.process_gap, e.at, e.actor)
    ),
)


RECORD_FIX = Command(
    name="record_fix",
    summary="Record the fix, the test that would have caught the bug, and staging status.",
    event=ev.FixRecorded,
    moves=(Move((State.RCA,)),),
    arguments=(
        Argument("description", v.text, "What the fix changes."),
        Argument("test", v.text, "The test that would have caught the bug."),
        Argument("staging_verified", v.boolean, "True once the fix was verified on staging."),
    ),
    fold=lambda inc, e, d: replace(
        inc, fix=_new_fix(d.description, d.test, d.staging_verified, e.at, e.actor)
    ),
)


def _fix_to_deploy(c: Context[ev.DeployRecorded]) -> Unmet | None:
    if c.incident.fix is not None:
        return None
    return unmet("no fix recorded to deploy: use record_fix first")


RECORD_DEPLOY = Command(
    name="record_deploy",
    summary="Record the fix's deploy to production, now or at deployed_at.",
    event=ev.DeployRecorded,
    moves=(Move((State.RCA,)),),
    arguments=(
        Argument("deployed_at", v.aware, "When it was deployed (aware); default now.", default=NOW),
        Argument(
            "ref",
            lambda f, x: v.optional_text(f, x, max_len=v.NAME_MAX, multiline=False),
            "The release, tag or commit deployed.",
            default="",
        ),
    ),
    guards=(Guard("fix.missing", "a fix recorded", _fix_to_deploy),),
    prepare=in_incident_time("deployed_at"),
    fold=lambda inc, e, d: replace(
        inc, deploys=inc.deploys.appended(_new_deploy(d.deployed_at, d.ref, e.actor))
    ),
)


def _whys(c: Context[ev.MarkedFixed]) -> Unmet | None:
    if _live_whys(c):
        return None
    if c.incident.whys:
        return unmet(
            "no live 5-Whys chain (retracted whys do not count): add at least one why with add_why"
        )
    return unmet("no 5-Whys chain: add at least one why with add_why")


def _since_reopen(c: Context[ev.EventData]) -> str:
    return " since the reopen (the earlier one is superseded)" if c.incident.superseded else ""


def _root_cause(c: Context[ev.MarkedFixed]) -> Unmet | None:
    if c.incident.root_cause is not None:
        return None
    return unmet("no root cause stated: state the process gap with set_root_cause")


def _fix(c: Context[ev.MarkedFixed]) -> Unmet | None:
    if c.incident.fix is not None:
        return None
    return unmet(f"no fix recorded{_since_reopen(c)}: describe it and its test with record_fix")


def _staging(c: Context[ev.MarkedFixed]) -> Unmet | None:
    fix = c.incident.fix
    if fix is None or fix.staging_verified:
        return None  # a missing fix is reported once, by fix.missing
    if not c.policy.process_of(c.incident).staging_required:
        return None
    return unmet("the fix was not verified on staging: record_fix with staging_verified=True")


def _deployed(c: Context[ev.MarkedFixed]) -> Unmet | None:
    if c.incident.deploys:
        return None
    return unmet(f"no deploy of the fix recorded{_since_reopen(c)}: use record_deploy")


MARK_FIXED = Command(
    name="mark_fixed",
    summary="Mark the incident fixed: needs whys, root cause, a verified fix and a deploy.",
    event=ev.MarkedFixed,
    moves=(Move((State.RCA,), State.FIXED),),
    guards=(
        Guard("whys.missing", "a 5-Whys chain", _whys),
        Guard("root_cause.missing", "a root cause", _root_cause),
        Guard("fix.missing", "a fix recorded", _fix),
        Guard("fix.not_verified_on_staging", "fix verified on staging (policy)", _staging),
        Guard("deploy.missing", "a deploy", _deployed),
    ),
    fold=lambda inc, e, d: replace(inc, fixed_at=e.at),
)

#: This phase's commands, in the order people meet them.
PHASE = (START_RCA, ADD_WHY, SET_ROOT_CAUSE, RECORD_FIX, RECORD_DEPLOY, MARK_FIXED)
