"""Lifecycle speed, as ratios against baselines run in the same process.

Run: ``python benchmarks/lifecycle.py`` (needs the ``dev`` extra for
python-statemachine). Prints, for one run:

* a full P1 lifecycle in memory (declare … update_kb with 3 evidence items,
  triage answers, 1 containment action, 5 whys, fix, deploy, a confirmation,
  a post-mortem with 2 action items and a KB entry; no files) against
  (a) bare ``transitions`` doing the 7 state changes with a Machine per model,
  with ``auto_transitions`` (its default; target: ≤ 1.5×) and without (target:
  ≤ 2×, issue 11), and
  (b) python-statemachine doing the same 7 events (target: faster, ratio < 1);
  the four sides run interleaved, round by round; each ratio is the median of
  the rounds' ratios (and, in brackets, the ratio of the sides' medians);
* ``import incidentflow`` against importing its five core dependencies alone
  (target: ≤ 1.3×), each in a fresh interpreter.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from statemachine import State as SMState
from statemachine import StateMachine
from transitions import Machine

from incidentflow import IncidentFlow, Policy
from incidentflow.testing import FrozenClock

STATES = ["declared", "triaging", "contained", "rca", "fixed", "resolved", "postmortem", "kb"]
STEPS = ["start_triage", "contain", "start_rca", "mark_fixed", "resolve", "postmortem", "kb"]
TRANSITIONS = [
    {"trigger": trigger, "source": source, "dest": dest}
    for trigger, source, dest in zip(STEPS, STATES[:-1], STATES[1:], strict=True)
]


class Model:
    pass


def bare_transitions() -> None:
    model = Model()
    Machine(model=model, states=STATES, transitions=TRANSITIONS, initial="declared")
    for step in STEPS:
        getattr(model, step)()


def bare_transitions_without_auto() -> None:
    model = Model()
    Machine(
        model=model,
        states=STATES,
        transitions=TRANSITIONS,
        initial="declared",
        auto_transitions=False,
    )
    for step in STEPS:
        getattr(model, step)()


class Lifecycle(StateMachine):  # type: ignore[misc]
    declared = SMState(initial=True)
    triaging = SMState()
    contained = SMState()
    rca = SMState()
    fixed = SMState()
    resolved = SMState()
    postmortem = SMState()
    kb = SMState(final=True)
    start_triage = declared.to(triaging)
    contain = triaging.to(contained)
    start_rca = contained.to(rca)
    mark_fixed = rca.to(fixed)
    resolve = fixed.to(resolved)
    complete_postmortem = resolved.to(postmortem)
    update_kb = postmortem.to(kb)


def python_statemachine() -> None:
    sm = Lifecycle()
    sm.start_triage()
    sm.contain()
    sm.start_rca()
    sm.mark_fixed()
    sm.resolve()
    sm.complete_postmortem()
    sm.update_kb()


START = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def make_incidentflow_run() -> Callable[[], None]:
    clock = FrozenClock(START)
    policy = Policy()
    due = date(2026, 12, 11)

    def run() -> None:
        clock.set(START)
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        i = flow.declare("Checkout returns 500", severity="P1", commander="alice", actor="alice")
        iid = i.id
        flow.start_triage(iid, actor="alice")
        for n in range(3):
            flow.add_evidence(iid, source="journalctl", content=f"error line {n}", actor="bob")
        flow.answer_triage(iid, "symptom", "HTTP 500 on checkout", actor="alice")
        flow.answer_triage(iid, "started_at", "13:55 UTC", actor="alice")
        flow.answer_triage(iid, "scope", "all users", actor="alice")
        flow.record_containment(iid, "rolled back to v1.4.2", actor="bob")
        flow.contain(iid, actor="alice")
        flow.start_rca(iid, actor="alice")
        for n in range(5):
            flow.add_why(iid, f"because {n}", actor="bob")
        flow.set_root_cause(iid, "pool leak", process_gap="no leak test", actor="bob")
        flow.record_fix(
            iid, "release in finally", test="test_release", staging_verified=True, actor="bob"
        )
        flow.record_deploy(iid, ref="v1.4.3", actor="bob")
        flow.mark_fixed(iid, actor="alice")
        clock.advance(timedelta(minutes=16))
        flow.confirm_by_user(iid, user="dana", actor="alice")
        flow.resolve(iid, actor="alice")
        flow.add_action_item(iid, "add a pool leak test", owner="bob", due=due, actor="alice")
        flow.add_action_item(iid, "alert on pool usage", owner="erin", due=due, actor="alice")
        flow.complete_postmortem(
            iid,
            summary="Checkout failed for 40 minutes.",
            root_cause="Connections leaked by a new query.",
            went_well=["fast rollback"],
            went_poorly=["no alert on pool usage"],
            actor="alice",
        )
        flow.update_kb(
            iid, symptom="500s, too many connections", early_signs="pool > 80%", actor="alice"
        )

    return run


def interleaved(
    sides: dict[str, Callable[[], None]], rounds: int = 41, number: int = 50
) -> dict[str, list[float]]:
    """Seconds per call of each side, one sample per round, the sides taking turns.

    A round runs every side ``number`` times in a row, so each sample of one side
    has the others' samples of the same round beside it, a few milliseconds away.
    """
    for fn in sides.values():
        for _ in range(50):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - start) / number)
    return samples


def paired_ratio(ours: list[float], anchor: list[float]) -> float:
    """The median of the rounds' ratios: each compares samples taken side by side.

    A shared VM changes speed from one second to the next; a ratio of two
    samples a few milliseconds apart cancels that, a ratio of two medians
    taken over the whole run does not quite.
    """
    return statistics.median(a / b for a, b in zip(ours, anchor, strict=True))


def import_time(statement: str, rounds: int = 15) -> float:
    """Best wall time of a fresh interpreter running ``statement``.

    Bytecode caching is allowed (and warmed once) so that incidentflow, often
    installed editable from source, is measured like the installed dependencies.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", statement], check=True, env=env)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True, env=env)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    samples = interleaved(
        {
            "ours": make_incidentflow_run(),
            "bare": bare_transitions,
            "bare_no_auto": bare_transitions_without_auto,
            "psm": python_statemachine,
        }
    )
    ours, bare, no_auto, psm = (
        statistics.median(samples[k]) for k in ("ours", "bare", "bare_no_auto", "psm")
    )
    print(f"full P1 lifecycle, incidentflow in memory:       {ours * 1e6:8.1f} µs")
    print(f"7 state changes, bare transitions:               {bare * 1e6:8.1f} µs")
    print(f"7 state changes, bare transitions, no auto:      {no_auto * 1e6:8.1f} µs")
    print(f"7 events, python-statemachine:                   {psm * 1e6:8.1f} µs")
    print("ratios: median of the rounds' ratios (ratio of the medians in brackets)")
    for label, anchor in (
        ("transitions (target ≤ 1.5)", "bare"),
        ("transitions without auto_transitions (target ≤ 2)", "bare_no_auto"),
        ("python-statemachine (target < 1)", "psm"),
    ):
        paired = paired_ratio(samples["ours"], samples[anchor])
        plain = ours / statistics.median(samples[anchor])
        print(f"  vs {label:<52} {paired:5.2f}  ({plain:.2f})")

    deps = import_time("import attrs, cattrs, transitions, loguru, tomli_w")
    lib = import_time("import incidentflow")
    print(f"import of the 5 core dependencies: {deps * 1e3:6.1f} ms")
    print(f"import incidentflow:               {lib * 1e3:6.1f} ms")
    print(f"import ratio (target ≤ 1.3):        {lib / deps:6.2f}")


if __name__ == "__main__":
    main()
