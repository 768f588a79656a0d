"""Hostile Python and TOML policies: refused when the policy is built, never later.

Durations beyond a century, guards in the wrong shape and policy keys written
outside ``[policy]`` are refused with a ConfigError naming the setting; what is
accepted works everywhere (round trip, deadlines, commands). Severities may be
given as ``"P1"``..``"P4"`` to every method that takes one.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import START, drive_to
from incidentflow import (
    BlameCheck,
    ConfigError,
    IncidentFlow,
    Policy,
    ProcessOverride,
    Severity,
    ValidationError,
)
from incidentflow._fields import FIELD_TYPES
from incidentflow.testing import FrozenClock

CENTURY = timedelta(days=36_500)
_MICROSECOND = timedelta(microseconds=1)


def _refuse(incident: object, request: object) -> str:
    return "refused by the test guard"


# -- strategies: every setting, mostly valid values, sometimes hostile ones ---------------


def mostly(valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any], one_in: int = 20) -> Any:
    """``hostile`` once in ``one_in`` draws, else ``valid``: most policies build."""
    return st.integers(1, one_in).flatmap(lambda n: hostile if n == 1 else valid)


_micros = CENTURY // _MICROSECOND
#: Zero up to a century, and the last microseconds before a century.
_spans = st.one_of(
    st.integers(min_value=0, max_value=_micros),
    st.integers(min_value=_micros - 2, max_value=_micros),
).map(lambda us: us * _MICROSECOND)
_positive = _spans.filter(bool)
#: Anything timedelta holds: past a century, negative, up to timedelta.max.
_any_span = st.one_of(
    st.timedeltas(min_value=CENTURY, max_value=timedelta.max),
    st.timedeltas(),
    st.integers(min_value=1, max_value=2).map(lambda us: CENTURY + us * _MICROSECOND),
)
durations = mostly(_spans, _any_span)
positive_durations = mostly(_positive, _any_span)
#: One in four anything, the others a century or less.
wild_durations = mostly(_spans, _any_span, one_in=4)
_severity_names = st.sampled_from([*Severity, "P1", "P2", "p3", " P4 "])
_keys = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
_questions = st.lists(mostly(_keys, st.text(max_size=12)), max_size=4)
_label_values = st.lists(
    mostly(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 -]{0,8}", fullmatch=True), st.text(max_size=8)),
    max_size=2,
)


@st.composite
def overrides(draw: st.DrawFn, lighter: bool) -> ProcessOverride | None:
    """A ProcessOverride, or None when it refuses what was drawn.

    ``lighter``: for P3/P4, which may drop the post-mortem and the action items.
    """
    try:
        return ProcessOverride(
            response_target=draw(st.none() | positive_durations),
            triage_questions=draw(st.none() | _questions),
            staging_required=draw(st.none() | st.booleans()),
            watch_window=draw(st.none() | durations),
            postmortem_required=draw(
                st.none() | (st.booleans() if lighter else mostly(st.just(True), st.booleans()))
            ),
            min_action_items=draw(
                st.none() | mostly(st.integers(0 if lighter else 1, 5), st.integers(-1, 1_001))
            ),
            update_cadence=draw(st.none() | durations),
        )
    except ConfigError:
        return None


@st.composite
def policy_settings(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for Policy(...): most of them valid, some not."""
    high = {Severity.P1, Severity.P2}
    chosen: dict[str, Any] = {
        "response_targets": draw(st.dictionaries(_severity_names, positive_durations, max_size=3)),
        "required_triage_answers": draw(_questions),
        "watch_window": draw(durations),
        "confirmer_must_differ": draw(st.booleans()),
        "postmortem_severities": draw(st.frozensets(st.sampled_from(list(Severity))))
        | draw(mostly(st.just(high), st.just(set()))),
        "blame_check": draw(st.sampled_from([*BlameCheck, "warn", "reject", "off"])),
        "postmortem_due": draw(durations),
        "staging_required": draw(st.booleans()),
        "min_action_items": draw(mostly(st.integers(1, 5), st.integers(-1, 1_001))),
        "update_cadence": draw(st.none() | durations),
        "triage_questions": draw(_questions),
        "custom_fields": draw(st.dictionaries(_keys, st.sampled_from(FIELD_TYPES), max_size=2)),
        "labels": draw(st.dictionaries(_keys, _label_values, max_size=2)),
    }
    types = draw(st.lists(_keys, min_size=1, max_size=3, unique=True))
    chosen["incident_types"] = types
    severities = {
        **draw(st.dictionaries(st.sampled_from(["P1", Severity.P2]), overrides(lighter=False))),
        **draw(st.dictionaries(st.sampled_from([" p3 ", Severity.P4]), overrides(lighter=True))),
    }
    chosen["severities"] = {k: found for k, found in severities.items() if found is not None}
    found_types = draw(st.dictionaries(st.sampled_from(types), overrides(lighter=False)))
    chosen["types"] = {k: found for k, found in found_types.items() if found is not None}
    return chosen


def _built(chosen: dict[str, Any]) -> Policy | None:
    """The policy, or None when Policy(...) refuses the settings with a ConfigError."""
    try:
        return Policy(**chosen)
    except ConfigError:
        return None


# -- durations are bounded where the policy is built, so every policy loads back --------


class TestDurationBounds:
    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("watch_window", CENTURY + _MICROSECOND),
            ("watch_window", timedelta.max),
            ("postmortem_due", CENTURY + timedelta(days=1)),
            ("update_cadence", timedelta(days=999_999_999)),
            ("response_targets", {"P3": CENTURY + _MICROSECOND}),
            ("response_targets", {Severity.P1: timedelta.max}),
        ],
    )
    def test_a_duration_over_a_century_is_refused_naming_the_setting(
        self, key: str, value: object
    ) -> None:
        """Policy(...) refuses what ProcessOverride and the TOML reader refuse: over 100 years."""
        with pytest.raises(ConfigError) as info:
            Policy(**{key: value})
        assert info.value.key == key
        assert "up to 100 years" in info.value.message

    def test_the_refusal_names_the_severity_of_a_response_target(self) -> None:
        """A response target's refusal says which severity's target to change."""
        with pytest.raises(ConfigError) as info:
            Policy(response_targets={"p2": timedelta(days=40_000)})
        assert info.value.message.startswith("P2: expected a timedelta greater than zero")


class TestRoundTrip:
    @settings(max_examples=300)
    @given(chosen=policy_settings())
    def test_every_policy_that_builds_loads_back_from_its_own_dict(
        self, chosen: dict[str, Any]
    ) -> None:
        """Policy(...) refuses with a ConfigError, or from_dict(to_dict()) gives it back.

        The same holds through the TOML text ``to_toml`` writes.
        """
        policy = _built(chosen)
        if policy is None:
            return
        assert Policy.from_dict(policy.to_dict()) == policy
        assert Policy.from_dict(tomllib.loads(policy.to_toml())) == policy


class TestDeadlinesOfAcceptedDurations:
    @settings(max_examples=30)
    @given(
        watch_window=wild_durations,
        update_cadence=st.none() | wild_durations,
        response=wild_durations,
        postmortem_due=wild_durations,
    )
    def test_no_duration_a_policy_accepts_breaks_a_deadline_or_a_command(
        self,
        watch_window: timedelta,
        update_cadence: timedelta | None,
        response: timedelta,
        postmortem_due: timedelta,
    ) -> None:
        """A duration is refused at Policy(...), or can, resolve and the deadlines work with it."""
        policy = _built(
            {
                "watch_window": watch_window,
                "update_cadence": update_cadence,
                "response_targets": {"P1": response},
                "postmortem_due": postmortem_due,
            }
        )
        if policy is None:
            return
        clock = FrozenClock(START)
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = drive_to(flow, clock, "fixed")

        def every_clock() -> None:
            flow.deadlines(inc.id)
            flow.check_deadlines()

        every_clock()
        flow.can(inc.id, "resolve")
        flow.confirm_by_user(inc.id, user="carol", actor="carol")
        clock.advance(policy.watch_window)
        flow.resolve(inc.id, actor="alice")
        every_clock()
        clock.advance(policy.postmortem_due + _MICROSECOND)
        every_clock()
        kinds = {d.kind for d in flow.deadlines(inc.id) if d.breached}
        assert "postmortem" in kinds


# -- guards given to the constructor are checked as with_guard checks them ---------------


def _with_guard_refusal(command: str, guard: Any) -> str:
    with pytest.raises(ConfigError) as info:
        Policy().with_guard(command, guard)
    return str(info.value)


class TestGuardsAtConstruction:
    def test_a_bare_callable_is_refused(self) -> None:
        """A guard given instead of a list of guards is refused, naming the command."""
        with pytest.raises(ConfigError) as info:
            Policy(guards={"contain": _refuse})
        assert info.value.key == "guards"
        assert "contain: expected a list of guards" in info.value.message

    def test_an_unknown_command_is_refused_as_with_guard_refuses_it(self) -> None:
        """A misspelt command would never run its guard: refused with with_guard's message."""
        with pytest.raises(ConfigError) as info:
            Policy(guards={"resolv": [_refuse]})
        assert str(info.value) == _with_guard_refusal("resolv", _refuse)

    def test_a_guard_that_cannot_be_called_is_refused_as_with_guard_refuses_it(self) -> None:
        """A list item that is not callable is refused when the policy is built."""
        with pytest.raises(ConfigError) as info:
            Policy(guards={"contain": [_refuse, 5]})
        assert str(info.value) == _with_guard_refusal("contain", 5)

    @pytest.mark.parametrize("guards", [[("contain", [_refuse])], "contain", None])
    def test_guards_that_are_not_a_mapping_are_refused(self, guards: object) -> None:
        """The guards are a mapping of command to a list of guards."""
        with pytest.raises(ConfigError) as info:
            Policy(guards=guards)  # type: ignore[arg-type]
        assert info.value.key == "guards"

    def test_guards_given_once_run_on_every_command(self) -> None:
        """Guards given as any iterable are kept, so they are asked every time, not once."""

        def once() -> Iterator[Any]:
            yield _refuse

        policy = Policy(guards={"add_note": once()})
        clock = FrozenClock(START)
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = drive_to(flow, clock, "declared")
        for _ in range(2):
            verdict = flow.can(inc.id, "add_note")
            assert [r.message for r in verdict.reasons] == ["refused by the test guard"]

    def test_the_policy_keeps_its_own_copy_of_the_guards(self) -> None:
        """Changing the mapping given to Policy(...) afterwards does not change the policy."""
        given: dict[str, list[Any]] = {"contain": [_refuse]}
        policy = Policy(guards=given)
        given["contain"].append(_refuse)
        given["resolve"] = [_refuse]
        assert {command: len(found) for command, found in policy.guards.items()} == {"contain": 1}


# -- the severity may be given as "P1".."P4" -------------------------------------------


class TestSeverityStrings:
    def test_process_response_target_and_needs_postmortem_take_severity_strings(self) -> None:
        """'P1'..'P4' (any case) mean what the Severity members mean, as elsewhere."""
        policy = Policy(
            response_targets={"P1": timedelta(minutes=10)},
            severities={"P3": ProcessOverride(min_action_items=0, postmortem_required=False)},
        )
        assert policy.process("P3") == policy.process(Severity.P3)
        assert policy.process(" p3 ", "security") == policy.process(Severity.P3, "security")
        assert policy.response_target("p1") == timedelta(minutes=10)
        assert policy.needs_postmortem("P2") is True
        assert policy.needs_postmortem("P4") is False

    @pytest.mark.parametrize("value", ["P5", "", "critical", 1, None])
    def test_an_unknown_severity_is_a_validation_error_naming_severity(self, value: object) -> None:
        """Anything else is refused as declare refuses it, not with a KeyError."""
        for call in (Policy().process, Policy().response_target, Policy().needs_postmortem):
            with pytest.raises(ValidationError) as info:
                call(value)  # type: ignore[arg-type]
            assert info.value.field == "severity"
            assert "use one of P1, P2, P3, P4" in info.value.message

    def test_a_type_that_is_not_text_is_a_validation_error(self) -> None:
        """An unhashable incident type is refused, not a TypeError."""
        with pytest.raises(ValidationError) as info:
            Policy().process("P1", ["security"])  # type: ignore[arg-type]
        assert info.value.field == "type"


# -- policy keys outside [policy] -----------------------------------------------------


class TestKeysOutsidePolicyTable:
    def test_a_policy_key_above_the_policy_table_is_refused(self, tmp_path: Path) -> None:
        """blame_check = "reject" written above [policy] would be lost: refused, naming it."""
        path = tmp_path / "incidentflow.toml"
        path.write_text(
            'store = "memory://"\nblame_check = "reject"\n\n[policy]\nstaging_required = false\n',
            encoding="utf-8",
        )
        with pytest.raises(ConfigError) as info:
            Policy.from_toml(path)
        assert info.value.key == f"{path}: blame_check"
        assert "move it under [policy]" in info.value.message

    def test_every_stray_key_is_named(self, tmp_path: Path) -> None:
        """The first stray key is the error's key; the others are listed in the message."""
        path = tmp_path / "incidentflow.toml"
        path.write_text(
            "watch_window_minutes = 60\n\n[policy]\nstaging_required = false\n\n"
            "[severity.P3]\nstaging_required = false\n",
            encoding="utf-8",
        )
        with pytest.raises(ConfigError) as info:
            Policy.from_toml(path)
        assert info.value.key == f"{path}: watch_window_minutes"
        assert "(also outside it: severity)" in info.value.message
