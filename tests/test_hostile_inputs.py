"""Hostile values get a typed IncidentFlowError naming what to change, never another exception.

Alert payloads (times as huge, NaN or out-of-range numbers and text), float custom
fields (huge ints), ``*_from_json`` (non-text, deep nesting) and store paths (NUL,
lone surrogates, non-paths).
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
from collections.abc import Callable
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incidentflow import (
    ConfigError,
    IncidentFlow,
    IncidentFlowError,
    Policy,
    StoreError,
    ValidationError,
)
from incidentflow._fields import check_field
from incidentflow.alerts import Alert, parse
from incidentflow.serialization import event_from_json, incident_from_json
from incidentflow.stores import JsonlStore, SQLiteStore
from incidentflow.stores._url import open_store

FIXTURES = Path(__file__).resolve().parent / "alerts" / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    """The JSON body of an alert fixture."""
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def replaced(payload: dict[str, Any], value: object, *path: str | int) -> dict[str, Any]:
    """A deep copy of ``payload`` with ``value`` at ``path``."""
    changed = copy.deepcopy(payload)
    target: Any = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return changed


def field_of(call: Any) -> ValidationError:
    """Run ``call``, expecting a ValidationError; return it."""
    with pytest.raises(ValidationError) as info:
        call()
    assert len(info.value.message) < 1000, "the message must not echo huge input"
    return info.value


#: Every timestamp the parsers read: (source, fixture, path in the payload, field named).
TIMESTAMPS: list[tuple[str, str, tuple[str | int, ...], str]] = [
    ("alertmanager", "alertmanager", ("alerts", 0, "startsAt"), "alerts[0].startsAt"),
    ("alertmanager", "alertmanager_resolved", ("alerts", 0, "endsAt"), "alerts[0].endsAt"),
    ("grafana", "grafana", ("alerts", 0, "startsAt"), "alerts[0].startsAt"),
    ("grafana", "grafana", ("alerts", 1, "endsAt"), "alerts[1].endsAt"),
    ("pagerduty", "pagerduty_trigger", ("payload", "timestamp"), "payload.timestamp"),
    ("datadog", "datadog_triggered", ("date",), "date"),
    ("generic", "generic", ("alerts", 0, "started_at"), "alerts[0].started_at"),
    ("generic", "generic", ("alerts", 0, "ended_at"), "alerts[0].ended_at"),
]

#: Integers of every size, the huge ones past a float's range and int's 4,300 digits.
ANY_INT = st.one_of(
    st.integers(),
    st.builds(
        lambda digits, sign: sign * 10**digits, st.integers(0, 5000), st.sampled_from([1, -1])
    ),
)
#: A time as text with any UTC offset, from year 1 to 9999.
ANY_TIME_TEXT = st.builds(
    lambda moment, offset: moment.replace(tzinfo=timezone(offset)).isoformat(),
    st.datetimes(),
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23)),
)


def repr_short(value: object) -> str:
    """A test id for ``value``: huge ints by their size."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"{value.bit_length()}-bit"
    return repr(value)


def outcome(call: Callable[[], object]) -> object:
    """What ``call`` returns, or the IncidentFlowError it raises; anything else propagates."""
    try:
        return call()
    except IncidentFlowError as exc:
        return exc


def _parsed_or_refused(source: str, payload: object, field: str) -> None:
    result = outcome(lambda: parse(payload, source))
    if isinstance(result, IncidentFlowError):
        assert isinstance(result, ValidationError)
        assert result.field == field
        assert len(result.message) < 1000
    else:
        assert isinstance(result, list)
        assert all(isinstance(alert, Alert) for alert in result)


class TestAlertTimes:
    @settings(max_examples=300)
    @given(
        st.sampled_from(TIMESTAMPS),
        st.one_of(ANY_INT, st.floats(), ANY_TIME_TEXT, st.text(max_size=40)),
    )
    def test_any_timestamp_gives_alerts_or_a_validation_error(
        self, where: tuple[str, str, tuple[str | int, ...], str], value: object
    ) -> None:
        """Any number (huge, NaN, inf) or text as any timestamp: alerts, or the field refused."""
        source, name, path, field = where
        _parsed_or_refused(source, replaced(fixture(name), value, *path), field)

    @pytest.mark.parametrize("value", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-23:59"])
    @pytest.mark.parametrize("where", TIMESTAMPS, ids=lambda w: f"{w[0]}-{w[3]}")
    def test_time_outside_the_years_once_in_utc(
        self, where: tuple[str, str, tuple[str | int, ...], str], value: str
    ) -> None:
        """A valid time that leaves years 1-9999 once in UTC is refused, as JSON and as text."""
        source, name, path, field = where
        payload = replaced(fixture(name), value, *path)
        for given_as in (payload, json.dumps(payload)):
            exc = field_of(lambda given_as=given_as: parse(given_as, source))
            assert exc.field == field
            assert "out of range once in UTC" in exc.message

    @pytest.mark.parametrize("value", [10**400, 10**5000], ids=["e400", "e5000"])
    def test_huge_epoch_date(self, value: int) -> None:
        """A Datadog date past a float's range is out of range as an epoch time, never Overflow."""
        exc = field_of(
            lambda: parse(replaced(fixture("datadog_triggered"), value, "date"), "datadog")
        )
        assert exc.field == "date"
        assert "out of range as an epoch time" in exc.message

    @pytest.mark.parametrize("value", [float("nan"), float("inf"), 1.7e12])
    def test_fractional_epoch_date_says_what_to_send(self, value: float) -> None:
        """A float date is refused with what Datadog's date may be: epoch numbers or RFC 3339."""
        exc = field_of(
            lambda: parse(replaced(fixture("datadog_triggered"), value, "date"), "datadog")
        )
        assert exc.field == "date"
        assert "whole epoch milliseconds" in exc.message

    def test_ingest_huge_epoch_date(self) -> None:
        """The reviewer's webhook body: ingest refuses the date and declares nothing."""
        flow = IncidentFlow.in_memory(incidents_dir=None, knowledge_dir=None)
        body = (
            '{"id": "1", "title": "Disk full", "transition": "Triggered", '
            '"aggregation_key": "agg", "date": 1' + "0" * 400 + "}"
        )
        exc = field_of(lambda: flow.ingest(body, source="datadog"))
        assert exc.field == "date"
        assert flow.list() == []


class TestAlertNumbers:
    @pytest.mark.parametrize("source", ["generic", "datadog", "alertmanager"])
    def test_json_number_with_too_many_digits(self, source: str) -> None:
        """JSON text holding a 5,000-digit number is not JSON Python reads: payload refused."""
        exc = field_of(lambda: parse('{"alerts": 1' + "0" * 5000 + "}", source))
        assert exc.field == "payload"
        assert "not valid JSON" in exc.message

    def test_huge_alertmanager_version(self) -> None:
        """A version past int's 4,300 digits is refused naming version, not by str()."""
        exc = field_of(
            lambda: parse(replaced(fixture("alertmanager"), 10**5000, "version"), "alertmanager")
        )
        assert exc.field == "version"

    def test_huge_datadog_alert_id(self) -> None:
        """A numeric alert_id longer than Datadog's 64 bits is refused naming alert_id."""
        payload = replaced(fixture("datadog_triggered"), 10**5000, "alert_id")
        exc = field_of(lambda: parse(payload, "datadog"))
        assert exc.field == "alert_id"

    @pytest.mark.parametrize("value", [10**5000, object(), {1, 2}], ids=["e5000", "object", "set"])
    def test_custom_details_json_cannot_write(self, value: object) -> None:
        """A custom detail that JSON cannot write is refused naming it."""
        payload = replaced(fixture("pagerduty_trigger"), value, "payload", "custom_details", "x")
        exc = field_of(lambda: parse(payload, "pagerduty"))
        assert exc.field == "payload.custom_details.x"


#: Any int, any float (NaN, inf, ±0.0), and bools.
ANY_NUMBER = st.one_of(ANY_INT, st.floats(), st.booleans())


class TestNumericFields:
    @settings(max_examples=400)
    @given(st.sampled_from(["int", "float"]), ANY_NUMBER)
    def test_any_number_gives_a_value_or_a_validation_error(self, kind: str, value: object) -> None:
        """Any int, float or bool for an int or float field: a value of that type, or refused."""
        checked = outcome(lambda: check_field({"n": kind}, "n", value))
        if isinstance(checked, IncidentFlowError):
            assert isinstance(checked, ValidationError)
            assert checked.field == "fields.n"
            assert len(checked.message) < 1000
            return
        assert not isinstance(value, bool), "a bool is not a number here"
        assert type(checked) is (int if kind == "int" else float)
        assert checked == value

    def test_huge_int_in_declare_and_set_fields(self) -> None:
        """The reviewer's case: 10**400 for a float field is refused by declare and set_fields."""
        flow = IncidentFlow.in_memory(
            policy=Policy(custom_fields={"cost": "float"}), incidents_dir=None, knowledge_dir=None
        )
        exc = field_of(
            lambda: flow.declare(
                "Checkout returns 500",
                severity="P1",
                commander="alice",
                actor="alice",
                fields={"cost": 10**400},
            )
        )
        assert (exc.field, "between -1e15 and 1e15" in exc.message) == ("fields.cost", True)
        inc = flow.declare("Checkout returns 500", severity="P1", commander="alice", actor="alice")
        exc = field_of(lambda: flow.set_fields(inc.id, {"cost": -(10**400)}, actor="alice"))
        assert exc.field == "fields.cost"
        assert flow.get(inc.id).custom_fields == {}


_FROM_JSON = [incident_from_json, event_from_json]


class TestFromJson:
    @settings(max_examples=200)
    @given(
        st.sampled_from(_FROM_JSON),
        st.one_of(
            st.none(),
            st.integers(),
            st.floats(),
            st.booleans(),
            st.lists(st.text(max_size=3), max_size=3),
            st.builds(object),
            st.text(),
            st.binary(),
        ),
    )
    def test_anything_gives_a_record_or_a_store_error(self, read: Any, value: object) -> None:
        """Whatever is given, text or not, the result is a record or StoreError."""
        result = outcome(lambda: read(value))
        if isinstance(result, IncidentFlowError):
            assert isinstance(result, StoreError)
            assert "stored" in str(result)

    @pytest.mark.parametrize("read", _FROM_JSON)
    @pytest.mark.parametrize("value", [None, 5, ["{}"]])
    def test_not_text(self, read: Any, value: object) -> None:
        """A value that is not text is malformed input, said in the module's words."""
        with pytest.raises(StoreError, match="is not JSON: expected text"):
            read(value)

    @pytest.mark.parametrize("read", _FROM_JSON)
    @pytest.mark.parametrize("text", ['{"a":' * 100_000, "[" * 100_000])
    def test_nested_too_deeply(self, read: Any, text: str) -> None:
        """JSON nested past Python's recursion limit is StoreError, not RecursionError."""
        with pytest.raises(StoreError, match="nested too deeply"):
            read(text)


#: Any characters, lone surrogates included, but no "/" or "%" and not "." or "..": a
#: path built from one stays a name inside its folder.
_NAME = st.text(
    st.one_of(st.characters(exclude_characters="/%"), st.characters(categories=["Cs"])),
    min_size=1,
    max_size=20,
).filter(lambda name: name not in (".", ".."))


class TestStorePaths:
    @pytest.mark.parametrize("store", [SQLiteStore, JsonlStore])
    @pytest.mark.parametrize(
        ("name", "says"),
        [
            ("a\x00b", "the path contains a NUL character (character "),
            ("a\ud800b", "the path contains a lone surrogate U+D800"),
            ("a\udfffb", "the path contains a lone surrogate U+DFFF"),
        ],
    )
    def test_impossible_path(self, tmp_path: Path, store: Any, name: str, says: str) -> None:
        """A path no file can have is the store's StoreError, naming the problem; nothing made.

        U+DC80-U+DCFF are not refused: they stand for the undecodable bytes of a
        real file name (os.fsencode's surrogateescape).
        """
        with pytest.raises(StoreError, match="remove it") as info:
            store(tmp_path / "sub" / name)
        assert says in str(info.value)
        assert list(tmp_path.iterdir()) == []
        opened = store(tmp_path / "a\udc80")
        getattr(opened, "close", lambda: None)()
        assert os.listdir(os.fsencode(tmp_path)) == [b"a\x80"]

    @pytest.mark.parametrize(("store", "field"), [(SQLiteStore, "path"), (JsonlStore, "directory")])
    @pytest.mark.parametrize("value", [None, 42, b"/tmp/x"])
    def test_not_a_path(self, store: Any, field: str, value: object) -> None:
        """Something that is not a path is a ConfigError naming the argument."""
        with pytest.raises(ConfigError) as info:
            store(value)
        assert info.value.key == field

    @pytest.mark.parametrize(
        "value", [float("nan"), float("inf"), 10**400, "5", True, 2**40], ids=repr_short
    )
    def test_sqlite_busy_timeout(self, tmp_path: Path, value: object) -> None:
        """A busy_timeout SQLite cannot wait for is refused as ConfigError at construction."""
        with pytest.raises(ConfigError) as info:
            SQLiteStore(tmp_path / "x.db", busy_timeout=value)  # type: ignore[arg-type]
        assert info.value.key == "busy_timeout"

    @pytest.mark.parametrize("store", [SQLiteStore, JsonlStore])
    @pytest.mark.parametrize("value", ["256", None, 1.5, True])
    def test_cache_size(self, tmp_path: Path, store: Any, value: object) -> None:
        """A cache_size that is not a whole number is refused at construction, not later."""
        with pytest.raises(ConfigError) as info:
            store(tmp_path / "x", cache_size=value)
        assert info.value.key == "cache_size"

    @pytest.mark.parametrize(
        ("url", "says"),
        [
            ("sqlite:///inc%00.db", "NUL character"),
            ("file:///{tmp}/inc%00", "NUL character"),
            ("sqlite:///\ud800.db", "lone surrogate U+D800"),
            ("file://\udfff", "lone surrogate U+DFFF"),
        ],
    )
    def test_open_url(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, says: str
    ) -> None:
        """IncidentFlow.open with such a URL raises the store's StoreError."""
        monkeypatch.chdir(tmp_path)
        with pytest.raises(StoreError, match=re.escape(says)):
            IncidentFlow.open(
                url.format(tmp=str(tmp_path).lstrip("/")), incidents_dir=None, knowledge_dir=None
            )

    @settings(max_examples=60)
    @given(st.sampled_from(["sqlite:////{dir}/", "file:///{dir}/"]), _NAME)
    def test_any_name_in_a_url_opens_or_is_refused(self, scheme: str, name: str) -> None:
        """Any one-name path in a sqlite or file URL: a store, or ConfigError/StoreError."""
        with tempfile.TemporaryDirectory() as folder:
            url = scheme.format(dir=folder.lstrip("/")) + name
            try:
                store = open_store(url)
            except (ConfigError, StoreError):
                return
            except IncidentFlowError as exc:
                pytest.fail(f"{url!r}: {type(exc).__name__}, not ConfigError or StoreError")
            close = getattr(store, "close", None)
            if close is not None:
                close()


class TestFlowSettings:
    """A flow built with an unusable clock or folder is refused when built, not at first use."""

    @pytest.mark.parametrize("clock", ["2026-11-27T14:00Z", 0, 42.0, object()])
    def test_a_clock_that_cannot_be_called(self, clock: object) -> None:
        with pytest.raises(ConfigError, match="clock: expected a callable"):
            IncidentFlow.in_memory(clock=clock)

    @pytest.mark.parametrize("option", ["incidents_dir", "knowledge_dir"])
    @pytest.mark.parametrize("value", [42, b"bytes", "a\x00b", "\ud800x"])
    def test_a_folder_that_is_no_path(self, option: str, value: object) -> None:
        with pytest.raises(ConfigError, match=option):
            IncidentFlow.in_memory(**{option: value})
