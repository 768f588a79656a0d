"""The checked filters on types, labels, fields and references of list() and summaries()."""

from __future__ import annotations

from typing import Any

import pytest

from incidentflow import IncidentFlow, ValidationError
from incidentflow._model import Reference
from incidentflow._queries import query

_BASE: dict[str, Any] = {
    "state": None,
    "severity": None,
    "open_only": False,
    "commander": None,
    "declared_after": None,
    "declared_before": None,
    "text": None,
    "newest_first": True,
    "limit": None,
    "offset": 0,
}


class TestQuery:
    def test_every_filter_is_kept(self) -> None:
        """The checked query holds each filter in the form the stores read."""
        found = query(
            **_BASE,
            type=["security", "data"],
            labels={"service": "checkout"},
            fields={"customers": 120, "paying": True},
            reference=("alert", "fp-1"),
            open_action_items=True,
        )
        assert found.types == frozenset({"security", "data"})
        assert found.labels == {"service": "checkout"}
        assert found.fields == {"customers": 120, "paying": True}
        assert found.reference == Reference("alert", "fp-1")
        assert found.open_action_items is True

    def test_one_type_as_a_string(self) -> None:
        """type= takes one type as a plain string."""
        assert query(**_BASE, type="security").types == frozenset({"security"})

    def test_a_reference_object_is_accepted(self) -> None:
        """reference= takes a Reference as well as a (kind, value) pair."""
        assert query(**_BASE, reference=Reference("ticket", "OPS-1")).reference == Reference(
            "ticket", "OPS-1"
        )

    @pytest.mark.parametrize(
        ("bad", "field"),
        [
            ({"type": "Security Team"}, "type"),
            ({"type": []}, "type"),
            ({"type": 3}, "type"),
            ({"labels": {"Service": "x"}}, "labels"),
            ({"labels": {"service": "two\nlines"}}, "labels.service"),
            ({"labels": "service=x"}, "labels"),
            ({"fields": {"customers": None}}, "fields.customers"),
            ({"fields": {"Bad Name": 1}}, "fields"),
            ({"reference": "alert"}, "reference"),
            ({"reference": ("Alert!", "x")}, "reference.kind"),
            ({"reference": ("alert", "a\nb")}, "reference.value"),
            ({"open_action_items": "yes"}, "open_action_items"),
        ],
    )
    def test_bad_filters_name_their_field(self, bad: dict[str, Any], field: str) -> None:
        """A bad filter raises ValidationError naming the field to change."""
        with pytest.raises(ValidationError) as caught:
            query(**_BASE, **bad)
        assert caught.value.field == field


class TestFlow:
    def test_summaries_name_the_type(self) -> None:
        """A summary carries its incident's type."""
        flow = IncidentFlow.in_memory()
        flow.declare("Tokens in logs", severity="P1", commander="al", actor="al", type="security")
        [summary] = flow.summaries(type="security")
        assert summary.type == "security"
