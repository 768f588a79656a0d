"""The command path's shortcuts give exactly what the plain ways give.

Builders and copiers against ``cls(...)`` and ``attrs.evolve``, the remembered
text checks against the checks themselves, the blame check's pre-filter against
its regular expressions, and a whole lifecycle against its replay.
"""

from __future__ import annotations

import gc
import pickle
import weakref
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import every_event_type
from incidentflow import IncidentFlow, Policy, Severity, State
from incidentflow import _validate as v
from incidentflow._blame import _GENERIC_BLAME, _MIN_NAME_LENGTH, _blaming, find_blame
from incidentflow._builders import builder, copier, draft_class, is_draft
from incidentflow._decide import incident_id_for
from incidentflow._events import Event, EvidenceAdded, event_types
from incidentflow._model import ActionItem, Evidence, Postmortem, Records
from incidentflow._sequences import FrozenMap
from incidentflow.exceptions import ValidationError
from incidentflow.testing import FrozenClock

START = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


@attrs.frozen
class _Sample:
    name: str
    tags: FrozenMap[str] = attrs.field(factory=FrozenMap, converter=FrozenMap)
    count: int = 0
    items: list[int] = attrs.field(factory=list, kw_only=True)
    note: str = attrs.field(default="", kw_only=True)


@attrs.frozen
class _Checked:
    size: int = attrs.field(validator=attrs.validators.ge(0))


def _lifecycle(flow: IncidentFlow, clock: FrozenClock) -> str:
    """The benchmark's P1 lifecycle, declare to update_kb; the incident's id."""
    iid = flow.declare("Checkout returns 500", severity="P1", commander="alice", actor="alice").id
    flow.start_triage(iid, actor="alice")
    for n in range(3):
        flow.add_evidence(iid, source="journalctl", content=f"error line {n}", actor="bob")
    for question in ("symptom", "started_at", "scope"):
        flow.answer_triage(iid, question, "seen", actor="alice")
    flow.record_containment(iid, "rolled back to v1.4.2", actor="bob")
    flow.contain(iid, actor="alice")
    flow.start_rca(iid, actor="alice")
    for n in range(5):
        flow.add_why(iid, f"because {n}", actor="bob")
    flow.set_root_cause(iid, "pool leak", process_gap="no leak test", actor="bob")
    flow.record_fix(iid, "release", test="test_release", staging_verified=True, actor="bob")
    flow.record_deploy(iid, ref="v1.4.3", actor="bob")
    flow.mark_fixed(iid, actor="alice")
    clock.advance(timedelta(minutes=16))
    flow.confirm_by_user(iid, user="dana", actor="alice")
    flow.resolve(iid, actor="alice")
    due = date(2026, 12, 11)
    flow.add_action_item(iid, "add a pool leak test", owner="bob", due=due, actor="alice")
    flow.complete_postmortem(
        iid,
        summary="Checkout failed.",
        root_cause="Connections leaked.",
        went_well=["fast rollback"],
        went_poorly=["Bob forgot the alert"],
        actor="alice",
    )
    flow.update_kb(iid, symptom="500s", early_signs="pool > 80%", actor="alice")
    return iid


class TestBuilders:
    """A builder makes what the class makes; a copier what attrs.evolve makes."""

    def test_a_builder_equals_the_class(self) -> None:
        """Defaults, factories, converters and keyword-only fields come out the same."""
        build = builder(_Sample)
        assert build is not _Sample
        for args, kwargs in [
            (("a",), {}),
            (("a", {"k": "v"}, 3), {"items": [1], "note": "n"}),
            ((), {"name": "b", "count": 2}),
        ]:
            made, expected = build(*args, **kwargs), _Sample(*args, **kwargs)
            assert made == expected
            assert type(made) is _Sample
            assert isinstance(made.tags, FrozenMap)

    def test_factories_are_called_per_object(self) -> None:
        """Two built objects never share a factory default."""
        build = builder(_Sample)
        assert build("a").items is not build("b").items

    def test_a_built_object_is_frozen_and_pickles(self) -> None:
        """The object has its real class: frozen, picklable, equal after the round trip."""
        made = builder(_Sample)("a", count=1)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            made.name = "b"  # type: ignore[misc]
        assert pickle.loads(pickle.dumps(made)) == made

    def test_a_class_with_validators_is_built_by_itself(self) -> None:
        """Where the shortcut does not fit, the builder is the class: validators still run."""
        assert builder(_Checked) is _Checked
        with pytest.raises(ValueError, match="size"):
            copier(_Checked)(_Checked(1), size=-1)

    def test_every_builder_in_use_equals_its_class(self, clock: FrozenClock) -> None:
        """Every event, payload and record of a history of every event type, built both ways."""
        policy = Policy(custom_fields={"customer": "text"})
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        history = flow.history(every_event_type(flow, clock).id)
        seen: list[object] = [*history, *(event.data for event in history)]
        snapshot = flow.get(history[0].incident_id)
        for field in attrs.fields(type(snapshot)):
            value = getattr(snapshot, field.name)
            seen.extend(value if isinstance(value, Records) else [value])
        checked = set()
        for record in seen:
            cls = type(record)
            if not attrs.has(cls):
                continue
            given = {f.alias: getattr(record, f.name) for f in attrs.fields(cls) if f.init}
            assert builder(cls)(**given) == cls(**given) == record, cls
            checked.add(cls)
        assert len(checked) > 50  # the payloads, the envelope and the records they fold into

    def test_drafts_are_not_event_types(self) -> None:
        """The writable twins of payloads never show up as stored event types."""
        draft_class(EvidenceAdded)
        assert all(not is_draft(cls) for cls in event_types().values())
        assert event_types()["evidence_added"] is EvidenceAdded

    @settings(max_examples=50, deadline=None)
    @given(
        st.text(max_size=5),
        st.integers(min_value=0, max_value=9),
        st.sampled_from([None, "x"]),
    )
    def test_a_copier_equals_attrs_evolve(self, name: str, count: int, note: str | None) -> None:
        """Changed fields are converted, the others kept, as with attrs.evolve."""
        original = _Sample("a", {"k": "v"}, 1, items=[1])
        changes: dict[str, Any] = {"name": name, "count": count, "tags": {"n": name}}
        if note is not None:
            changes["note"] = note
        assert copier(_Sample)(original, **changes) == attrs.evolve(original, **changes)

    def test_a_copier_refuses_unknown_fields(self) -> None:
        """A misspelt field is an error, never silently dropped."""
        with pytest.raises(TypeError, match="nmae"):
            copier(_Sample)(_Sample("a"), nmae="b")

    def test_the_records_builders_equal_the_classes(self) -> None:
        """Evidence, action items and post-mortems built fast equal the plain ones."""
        assert builder(Evidence)("s", "c", START, "a") == Evidence("s", "c", START, "a")
        item = ActionItem(1, "d", "o", date(2026, 1, 1), ref="r")
        assert builder(ActionItem)(1, "d", "o", date(2026, 1, 1), ref="r") == item
        assert builder(Postmortem)(summary="s") == Postmortem(summary="s")
        event = Event("INC-1", 1, START, "a", EvidenceAdded("s", "c"))
        assert builder(Event)("INC-1", 1, START, "a", EvidenceAdded("s", "c")) == event


class TestSnapshots:
    """Snapshots built by the fast path are the ones a replay gives."""

    def test_a_lifecycle_replays_to_its_snapshot(self) -> None:
        """Every command of the benchmark's lifecycle, then verify: replay equals the snapshot."""
        clock = FrozenClock(START)
        flow = IncidentFlow.in_memory(clock=clock, policy=Policy())
        iid = _lifecycle(flow, clock)
        assert flow.verify(iid)
        assert flow.get(iid).state is State.KB_UPDATED

    def test_declared_incidents_share_no_items(self) -> None:
        """Two incidents start from the same empty lists; adding to one leaves the other empty."""
        flow = IncidentFlow.in_memory(clock=FrozenClock(START))
        first = flow.declare("One", severity="P3", commander="al", actor="al").id
        second = flow.declare("Two", severity="P3", commander="al", actor="al").id
        flow.add_evidence(first, source="s", content="one", actor="al")
        flow.add_note(first, "a note", actor="al")
        flow.add_evidence(second, source="s", content="two", actor="al")
        assert [e.content for e in flow.get(first).evidence] == ["one"]
        assert [e.content for e in flow.get(second).evidence] == ["two"]
        assert list(flow.get(second).notes) == []
        fresh = flow.declare("Three", severity="P3", commander="al", actor="al")
        assert list(fresh.evidence) == []
        assert list(fresh.notes) == []

    def test_an_empty_records_never_lends_its_list(self) -> None:
        """Appending to an empty Records twice gives two independent ones."""
        empty: Records[int] = Records()
        one, two = empty.appended(1), empty.appended(2)
        assert (list(empty), list(one), list(two)) == ([], [1], [2])
        assert empty._items == []

    def test_states_and_severities_hash_as_members(self) -> None:
        """Members hash by identity: usable as keys, equal after pickling."""
        table = {state: state.value for state in State}
        assert all(table[state] == state.value for state in State)
        assert pickle.loads(pickle.dumps(Severity.P1)) is Severity.P1
        assert {Severity.P1, Severity.P1, Severity.P2} == {Severity.P1, Severity.P2}

    @settings(max_examples=100, deadline=None)
    @given(st.datetimes(min_value=datetime(1, 1, 1), timezones=st.just(UTC)))
    def test_incident_ids_use_the_declaration_day(self, at: datetime) -> None:
        """The id's date is strftime's ``%Y-%m-%d``, however it is formatted."""
        assert incident_id_for(at, "x") == f"INC-{at:%Y-%m-%d}-x"

    def test_frozen_maps_answer_as_dicts(self) -> None:
        """get, keys, values and items match the dict's."""
        data = {"a": 1, "b": 2}
        mapping = FrozenMap(data)
        assert (mapping.get("a"), mapping.get("z"), mapping.get("z", 3)) == (1, None, 3)
        assert list(mapping.items()) == list(data.items())
        assert mapping.keys() == data.keys()
        assert list(mapping.values()) == [1, 2]


_TEXTS = st.text(alphabet=st.sampled_from([*"ab \t\n\u2028\u202e\x00é", "\ud800"]), max_size=8)


def _plain_text(field: str, value: object, max_len: int, multiline: bool) -> str:
    """The text check with nothing remembered."""
    v._ONE_LINE.clear()
    v._MULTILINE.clear()
    return v.text(field, value, max_len=max_len, multiline=multiline)


class TestRememberedTexts:
    """Texts checked once are answered the same the next time, failures included."""

    @settings(max_examples=200, deadline=None)
    @given(_TEXTS, st.booleans(), st.sampled_from([2, 5, 200]))
    def test_a_second_check_answers_as_the_first(
        self, value: str, multiline: bool, max_len: int
    ) -> None:
        """Accepted or refused, the same answer as a check that remembers nothing."""
        try:
            expected: str | type[ValidationError] = _plain_text("f", value, max_len, multiline)
        except ValidationError:
            expected = ValidationError
        for _ in range(2):
            try:
                found: str | type[ValidationError] = v.text(
                    "f", value, max_len=max_len, multiline=multiline
                )
            except ValidationError:
                found = ValidationError
            assert found == expected

    def test_a_remembered_text_still_obeys_a_shorter_limit(self) -> None:
        """A text accepted under a long limit is refused under a shorter one."""
        v.text("f", "x" * 150)
        with pytest.raises(ValidationError, match="at most 100"):
            v.text("f", "x" * 150, max_len=100)
        v.name("f", "n" * 150)
        with pytest.raises(ValidationError, match="at most 10"):
            v.text("f", "n" * 150, max_len=10, multiline=False)

    def test_a_multiline_text_is_not_remembered_as_one_line(self) -> None:
        """A line break passes as text and is still refused in a name."""
        assert v.text("f", "two\nlines") == "two\nlines"
        with pytest.raises(ValidationError, match="line breaks"):
            v.name("actor", "two\nlines")

    def test_a_list_of_remembered_texts_answers_as_each_text(self) -> None:
        """Items seen before are answered from memory; a bad one is still named by its place."""
        v.text("went_well", "fast rollback")
        assert v.texts("went_well", [" fast rollback", "fast rollback"]) == (
            "fast rollback",
            "fast rollback",
        )
        with pytest.raises(ValidationError, match=r"went_well\[1\]: must not be empty"):
            v.texts("went_well", ["fast rollback", "   "])

    def test_a_command_refuses_a_remembered_name_too_long_for_it(self) -> None:
        """The command path answers remembered names itself, and still within their limit."""
        long = "n" * 250
        assert v.text("f", long, max_len=300, multiline=False) == long  # remembered, one line
        flow = IncidentFlow.in_memory()
        incident = flow.declare("Checkout returns 500", severity="P2", commander="al", actor="al")
        with pytest.raises(ValidationError, match="actor: is 250 characters long; at most 200"):
            flow.add_evidence(incident.id, source="logs", content="HTTP 500", actor=long)
        with pytest.raises(ValidationError, match="source: is 250 characters long; at most 200"):
            flow.add_evidence(incident.id, source=long, content="HTTP 500", actor="al")
        assert flow.get(incident.id).version == 1

    def test_a_str_subclass_is_checked_every_time(self) -> None:
        """Only exact strings are remembered; a subclass is checked and returned as a str."""

        class Name(str):
            pass

        assert type(v.name("actor", Name(" al "))) is str
        assert v.name("actor", Name(" al ")) == "al"


def _plain_blame(text: str, participants: set[str]) -> list[str]:
    """The blame check without its pre-filter."""
    found = [
        f'"{m.group(0)}" assigns blame; describe the process gap instead'
        for m in _GENERIC_BLAME.finditer(text)
    ]
    for person in sorted({p for p in participants if len(p) >= _MIN_NAME_LENGTH}):
        found += [
            f'"{m.group(0)}" names a person next to a failure; describe the process gap instead'
            for m in _blaming(person).finditer(text)
        ]
    return found


_BLAME_WORDS = ["Bob", "bob", "BOB", "forgot", "error", "human", "fault", "'s", " ", "of"]
_BLAME_WORDS += ["ſ", "K", "İ", "ı", "faulT", "ERROR", "Kim", "ſam", "kim", ".", "\n"]


class TestBlamePrefilter:
    """The pre-filter skips only regular expressions that cannot match."""

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(st.sampled_from(_BLAME_WORDS), max_size=12).map("".join),
        st.sets(st.sampled_from(["bob", "Kim", "kim", "sam", "ſam", "al", "İlk"]), max_size=3),
    )
    def test_it_finds_what_the_expressions_find(self, text: str, people: set[str]) -> None:
        """ASCII or not, any case, the same phrases as running every expression."""
        assert find_blame(text, people) == _plain_blame(text, people)

    def test_case_folding_beyond_ascii_still_matches(self) -> None:
        """A Kelvin sign or a long s in the text matches as the expressions say."""
        for text in ("\u212aim forgot", "human error", "Bob's fault", "ſam failed"):
            assert find_blame(text, {"kim", "sam", "bob"}) == _plain_blame(
                text, {"kim", "sam", "bob"}
            )


def test_flows_share_the_default_policy_but_never_each_others_guards() -> None:
    """Two flows given no policy start from one; a guard added to one stays with it."""
    first, second = IncidentFlow.in_memory(), IncidentFlow.in_memory()
    assert first.policy is second.policy
    first.add_guard("start_triage", lambda incident, request: "not yet")
    for flow in (first, second):
        flow.declare("Checkout returns 500", severity="P3", commander="al", actor="al")
    [one] = first.list()
    [other] = second.list()
    assert not first.can(one.id, "start_triage").allowed
    assert second.can(other.id, "start_triage").allowed
    assert IncidentFlow.in_memory().policy is second.policy


class TestFlowLifetime:
    """A flow holds no reference cycle: dropping it frees it, without the garbage collector."""

    def test_a_dropped_flow_is_freed_at_once(self) -> None:
        """Its parts keep the clock, not the flow; the delivery side still tells the time."""
        clock = FrozenClock(START)
        flow = IncidentFlow.in_memory(clock=clock)
        flow.declare("Checkout returns 500", severity="P2", commander="al", actor="al")
        alive = weakref.ref(flow)
        now = flow.delivery.now
        gc.disable()
        try:
            del flow
            assert alive() is None
        finally:
            gc.enable()
        assert now() == START
