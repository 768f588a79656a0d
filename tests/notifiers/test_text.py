"""The sentences Slack and email say about each event: one for every event type."""

from __future__ import annotations

import typing
from datetime import UTC, date, datetime

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incidentflow import Event
from incidentflow import _events as ev
from incidentflow._events import EventData, event_types
from incidentflow.notifiers._text import sentence

AT = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def payloads(cls: type[EventData]) -> st.SearchStrategy[EventData]:
    """Any payload of the event type ``cls``."""
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: st.from_type(hints[f.name]) for f in attrs.fields(cls)})


class TestSentences:
    @pytest.mark.parametrize("cls", sorted(event_types().values(), key=lambda c: c.TYPE),
                             ids=lambda c: c.TYPE)  # fmt: skip
    @settings(max_examples=15, deadline=None)
    @given(data=st.data())
    def test_every_event_type_has_a_sentence(
        self, cls: type[EventData], data: st.DataObject
    ) -> None:
        """Each registered event type is said in its own sentence, not the generic fallback."""
        event = Event("INC-2026-11-27-x", 2, AT, "dana", data.draw(payloads(cls)))
        said = sentence(event)
        assert said, f"{cls.TYPE} has no sentence in notifiers/_text.py"
        assert "\n" not in said

    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            (ev.Amended("why:2", ("the pool leaked",), "typo"),
             "dana amended why:2 to the pool leaked: typo"),
            (ev.Retracted("evidence:1", "another host"), "dana retracted evidence:1: another host"),
            (ev.ActionItemReassigned(2, "erin", "owns pools"),
             "dana reassigned action item 2 to erin: owns pools"),
            (ev.ActionItemRedated(2, date(2026, 12, 24)), "dana moved action item 2 to 2026-12-24"),
            (ev.ActionItemDeclined(2, "covered"), "dana declined action item 2: covered"),
            (ev.ActionItemLinked(2, "OPS-9"), "dana linked action item 2 to OPS-9"),
            (ev.TypeChanged("security", "a token leaked", previous="availability"),
             "dana changed the type from availability to security: a token leaked"),
            (ev.LabelsSet({"team": "core", "service": "pay"}, ("region",)),
             "dana set labels service=pay, team=core and removed labels region"),
            (ev.FieldsSet({"paid": True}), "dana set fields paid=yes"),
            (ev.ReferenceAdded("ticket", "OPS-1"), "dana added the reference ticket: OPS-1"),
            (ev.ReferenceRemoved("ticket", "OPS-1"), "dana removed the reference ticket: OPS-1"),
            (ev.RoleAssigned("scribe", "frank"), "dana assigned scribe to frank"),
            (ev.RoleAssigned("scribe", "gus", "shift", previous="frank"),
             "dana handed over scribe: frank → gus (shift)"),
            (ev.RoleReleased("scribe", previous="gus"), "dana released scribe (held by gus)"),
            (ev.UpdatePosted("internal", "looking\ninto it"),
             "dana posted an internal status update: looking into it"),
            (ev.DeadlineBreached("update", "status update", AT),
             "the update deadline for status update passed unmet (due 2026-11-27 14:00 UTC)"),
        ],
        ids=lambda value: getattr(value, "TYPE", ""),
    )  # fmt: skip
    def test_sentences_for_the_new_events(self, data: EventData, expected: str) -> None:
        """Corrections, follow-ups, labels, references, roles and updates read as sentences."""
        assert sentence(Event("INC-2026-11-27-x", 2, AT, "dana", data)) == expected
