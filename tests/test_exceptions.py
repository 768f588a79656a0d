"""Every error: catchable as one, pickles equal, and keeps its bare message."""

from __future__ import annotations

import pickle

import pytest

import incidentflow.exceptions as errors
from incidentflow import Reason

EXAMPLES: list[errors.IncidentFlowError] = [
    errors.ValidationError("title", "must not be empty"),
    errors.InvalidTransition("INC-2026-11-27-db", "resolve", "declared", ["fixed"]),
    errors.InvalidTransition.unknown_command("frobnicate", ["declare", "contain"]),
    errors.TransitionRejected(
        "INC-2026-11-27-db",
        "contain",
        [Reason("evidence.missing", "no evidence recorded", {"n": [1]})],
    ),
    errors.IncidentNotFound("INC-2026-11-27-db"),
    errors.DuplicateIncident("INC-2026-11-27-db"),
    errors.ReferenceTaken("alert", "d41d8cd9", "INC-2026-11-27-db"),
    errors.Unauthorized("dave", "contain", "command", "INC-2026-11-27-db"),
    errors.ConcurrencyConflict("INC-2026-11-27-db", 3, 4),
    errors.IdempotencyConflict("key-1"),
    errors.StoreError("the database is locked"),
    errors.ConfigError("policy.watch_window_minutes", "expected a number"),
    errors.DeliveryError(
        "paging", "INC-2026-11-27-db:3", "answered 503", retryable=True, status=503
    ),
]


class TestErrors:
    def test_every_exported_error_has_an_example(self) -> None:
        """The examples cover every class the module exports."""
        exported = {getattr(errors, name) for name in errors.__all__}
        assert exported == {type(e) for e in EXAMPLES} | {errors.IncidentFlowError}

    @pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
    def test_pickles_and_unpickles_equal(self, error: errors.IncidentFlowError) -> None:
        """An error crosses a process boundary intact: same type, message and attributes."""
        copy = pickle.loads(pickle.dumps(error))
        assert copy == error
        assert str(copy) == str(error)
        assert vars(copy) == vars(error)

    @pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
    def test_keeps_its_bare_message(self, error: errors.IncidentFlowError) -> None:
        """``.message`` is the sentence without the field or incident in front."""
        assert error.message
        assert error.message in str(error)
        assert isinstance(error, errors.IncidentFlowError)

    def test_bare_message_of_a_validation_error(self) -> None:
        """No caller has to split ``str(exc)`` to show the field's problem."""
        error = errors.ValidationError("title", "must not be empty")
        assert (error.field, error.message) == ("title", "must not be empty")
        assert str(error) == "title: must not be empty"

    def test_different_errors_are_not_equal(self) -> None:
        """Equality is by type and content, not by identity alone."""
        assert errors.IncidentNotFound("a") != errors.IncidentNotFound("b")
        assert errors.IncidentNotFound("a") == errors.IncidentNotFound("a")
        assert len({errors.IncidentNotFound("a"), errors.IncidentNotFound("a")}) == 1
