"""Bad input gets a typed error naming the field and changes nothing; unicode just works."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    COMMANDER,
    DEFAULT_TEXTS,
    RESPONDER,
    START,
    TITLE,
    advance_to,
    declare,
    drive_to,
    unchanged,
)
from incidentflow import (
    ConcurrencyConflict,
    ConfigError,
    IdempotencyConflict,
    Incident,
    IncidentFlow,
    IncidentFlowError,
    IncidentNotFound,
    InvalidTransition,
    ValidationError,
)
from incidentflow.stores import SQLiteStore
from incidentflow.testing import FrozenClock

Drive = Callable[..., Incident]

NAIVE = datetime(2026, 11, 27, 14, 0)
TEN_MB = "x" * (10 * 1024 * 1024)


def files_under(root: Path) -> list[Path]:
    """Every file below ``root``."""
    return sorted(p for p in root.rglob("*") if p.is_file())


def refused(
    field: str, call: Callable[[], object], error: type[IncidentFlowError] = ValidationError
) -> IncidentFlowError:
    """Run ``call`` expecting ``error`` about ``field``; return the error."""
    with pytest.raises(error) as info:
        call()
    exc = info.value
    if isinstance(exc, ValidationError):
        assert exc.field == field
    assert field in str(exc)
    assert len(str(exc)) < 1000, "the message must not echo huge input"
    str(exc).encode("utf-8")  # no lone surrogate echoed: the message can be printed
    return exc


class TestTitle:
    @pytest.mark.parametrize(
        "title",
        ["", "   ", "\t\n", "a" * 201, TEN_MB, "line one\n# Injected", "tab\x00nul", 42, None],
        ids=[
            "empty",
            "spaces",
            "whitespace",
            "201-chars",
            "10-MB",
            "newline",
            "nul",
            "int",
            "none",
        ],
    )
    def test_bad_title_creates_nothing(
        self, file_flow: IncidentFlow, tmp_path: Path, title: object
    ) -> None:
        """A title that is empty, too long, multi-line or not text declares nothing."""
        with unchanged(file_flow):
            refused(
                "title",
                lambda: file_flow.declare(
                    title,  # type: ignore[arg-type]
                    severity="P1",
                    commander=COMMANDER,
                    actor=COMMANDER,
                ),
            )
        assert file_flow.list() == []
        assert files_under(tmp_path) == []

    def test_two_hundred_characters_are_accepted(self, flow: IncidentFlow) -> None:
        """A 200-character title is the longest accepted."""
        inc = flow.declare("a" * 200, severity="P1", commander=COMMANDER, actor=COMMANDER)
        assert inc.title == "a" * 200

    def test_title_is_stripped(self, flow: IncidentFlow) -> None:
        """Surrounding whitespace is not part of the title."""
        inc = flow.declare(f"  {TITLE}  ", severity="P1", commander=COMMANDER, actor=COMMANDER)
        assert inc.title == TITLE


class TestSeverity:
    @pytest.mark.parametrize("severity", ["P5", "", "  ", None, 5, "P0", "critical", 1.0])
    def test_unknown_severity_creates_nothing(self, flow: IncidentFlow, severity: object) -> None:
        """A severity outside P1..P4 is refused with the accepted values."""
        with unchanged(flow):
            exc = refused(
                "severity",
                lambda: flow.declare(
                    TITLE,
                    severity=severity,  # type: ignore[arg-type]
                    commander=COMMANDER,
                    actor=COMMANDER,
                ),
            )
        assert "P1" in str(exc)
        assert "P4" in str(exc)

    @pytest.mark.parametrize("severity", ["P5", None])
    def test_unknown_severity_in_reclassify(
        self, drive: Drive, flow: IncidentFlow, severity: object
    ) -> None:
        """reclassify refuses an unknown severity and leaves the incident alone."""
        inc = drive("triaging")
        with unchanged(flow, inc.id):
            refused(
                "severity",
                lambda: flow.reclassify(
                    inc.id,
                    severity,  # type: ignore[arg-type]
                    reason="r",
                    actor=COMMANDER,
                ),
            )


class TestSlug:
    @pytest.mark.parametrize(
        "slug",
        [
            "../../etc/passwd",
            "..",
            "a/b",
            "a\\b",
            "nul\x00byte",
            "a" * 500,
            "a" * 49,
            "Checkout",
            "",
            "-leading",
            "trailing-",
            "double--dash",
            "with space",
            "ünïcode",
            7,
        ],
    )
    def test_unsafe_slug_writes_nothing(
        self, file_flow: IncidentFlow, tmp_path: Path, slug: object
    ) -> None:
        """Only [a-z0-9-] slugs of at most 48 characters are accepted; nothing is written."""
        with unchanged(file_flow):
            refused("slug", lambda: declare(file_flow, slug=slug))
        assert files_under(tmp_path) == []

    @pytest.mark.parametrize(
        "incident_id", ["../../etc/passwd", "INC-2026-11-27-x/../../y", "/abs"]
    )
    def test_incident_path_never_leaves_the_folder(
        self, file_flow: IncidentFlow, folders: tuple[Path, Path], incident_id: str
    ) -> None:
        """incident_path() refuses an id that would point outside the incidents folder."""
        incidents_dir, _ = folders
        try:
            path = file_flow.incident_path(incident_id)
        except IncidentFlowError:
            return
        assert path is not None
        assert path.resolve().parent == incidents_dir.resolve()

    def test_48_characters_are_accepted(self, flow: IncidentFlow) -> None:
        """A 48-character slug is the longest accepted."""
        assert declare(flow, slug="a" * 48).slug == "a" * 48

    def test_title_never_makes_an_unsafe_slug(
        self, file_flow: IncidentFlow, tmp_path: Path
    ) -> None:
        """A hostile title is turned into a safe slug and the file stays in its folder."""
        inc = file_flow.declare(
            "../../etc/passwd " + "é" * 150, severity="P1", commander="a", actor="a"
        )
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", inc.slug)
        assert len(inc.slug) <= 48
        (written,) = files_under(tmp_path)
        assert written.parent == tmp_path / "incidents"


class TestTimes:
    @pytest.mark.parametrize(
        ("field", "call"),
        [
            (
                "taken_at",
                lambda f, i: f.record_containment(i.id, "rollback", taken_at=NAIVE, actor="b"),
            ),
            ("deployed_at", lambda f, i: f.record_deploy(i.id, deployed_at=NAIVE, actor="b")),
            (
                "first_occurred_at",
                lambda f, i: f.record_detection(
                    i.id, method="alert", first_occurred_at=NAIVE, actor="b"
                ),
            ),
            (
                "detected_at",
                lambda f, i: f.record_detection(i.id, method="alert", detected_at=NAIVE, actor="b"),
            ),
        ],
        ids=["taken_at", "deployed_at", "first_occurred_at", "detected_at"],
    )
    def test_naive_datetime_is_refused(
        self, flow: IncidentFlow, clock: FrozenClock, field: str, call: Any
    ) -> None:
        """A datetime without a time zone is refused, naming the field."""
        inc = drive_to(flow, clock, "rca")
        flow.record_fix(inc.id, "fix", test="t", staging_verified=True, actor=RESPONDER)
        inc = flow.get(inc.id)
        with unchanged(flow, inc.id):
            exc = refused(field, lambda: call(flow, inc))
        assert "naive" in str(exc)

    def test_a_time_seconds_ahead_shows_the_seconds_that_tell_it_from_now(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """Saying 14:00 is in the future when it is 14:00 would be no help: seconds show."""
        inc = drive_to(flow, clock, "triaging")
        ahead = clock() + timedelta(seconds=30)
        with unchanged(flow, inc.id):
            exc = refused(
                "taken_at", lambda: flow.record_containment(inc.id, "x", taken_at=ahead, actor="b")
            )
        now = f"{clock():%Y-%m-%d %H:%M}"
        assert f"{ahead:%H:%M:%S} UTC is in the future (now is {now} UTC)" in str(exc)

    @pytest.mark.parametrize("field", ["taken_at", "deployed_at"])
    def test_time_before_the_declaration_is_refused(
        self, flow: IncidentFlow, clock: FrozenClock, field: str
    ) -> None:
        """An action cannot have happened before the incident was declared."""
        inc = drive_to(flow, clock, "rca")
        flow.record_fix(inc.id, "fix", test="t", staging_verified=True, actor=RESPONDER)
        before = START - timedelta(minutes=1)
        with unchanged(flow, inc.id):
            if field == "taken_at":
                exc = refused(
                    field,
                    lambda: flow.record_containment(inc.id, "x", taken_at=before, actor="b"),
                )
            else:
                exc = refused(
                    field, lambda: flow.record_deploy(inc.id, deployed_at=before, actor="b")
                )
        assert inc.id in str(exc)

    @pytest.mark.parametrize(
        "field", ["taken_at", "deployed_at", "first_occurred_at", "detected_at"]
    )
    def test_time_in_the_future_is_refused(
        self, flow: IncidentFlow, clock: FrozenClock, field: str
    ) -> None:
        """Nothing can be recorded as happening after now."""
        inc = drive_to(flow, clock, "rca")
        flow.record_fix(inc.id, "fix", test="t", staging_verified=True, actor=RESPONDER)
        later = clock() + timedelta(hours=1)
        calls = {
            "taken_at": lambda: flow.record_containment(inc.id, "x", taken_at=later, actor="b"),
            "deployed_at": lambda: flow.record_deploy(inc.id, deployed_at=later, actor="b"),
            "first_occurred_at": lambda: flow.record_detection(
                inc.id, method="alert", first_occurred_at=later, actor="b"
            ),
            "detected_at": lambda: flow.record_detection(
                inc.id, method="alert", detected_at=later, actor="b"
            ),
        }
        with unchanged(flow, inc.id):
            exc = refused(field, calls[field])
        assert "future" in str(exc)

    def test_other_time_zones_are_converted_to_utc(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """An aware time in another zone is stored as the same instant in UTC."""
        inc = drive("triaging")
        taken = (clock() - timedelta(minutes=1)).astimezone(timezone(timedelta(hours=-5)))
        after = flow.record_containment(inc.id, "rollback", taken_at=taken, actor="b")
        assert after.containment[0].at == taken
        assert after.containment[0].at.utcoffset() == timedelta(0)

    @pytest.mark.parametrize("due", [datetime(2026, 12, 1, tzinfo=UTC), "2026-12-01", 20261201])
    def test_due_must_be_a_date(self, drive: Drive, flow: IncidentFlow, due: object) -> None:
        """A due date is a calendar date, not a datetime or a string."""
        inc = drive("resolved")
        with unchanged(flow, inc.id):
            refused(
                "due",
                lambda: flow.add_action_item(
                    inc.id,
                    "load test",
                    owner="dana",
                    due=due,  # type: ignore[arg-type]
                    actor="a",
                ),
            )

    def test_due_before_the_declaration_is_refused(self, drive: Drive, flow: IncidentFlow) -> None:
        """An action item cannot be due before the incident happened."""
        inc = drive("resolved")
        with unchanged(flow, inc.id):
            refused(
                "due",
                lambda: flow.add_action_item(
                    inc.id, "load test", owner="dana", due=date(2026, 1, 1), actor="a"
                ),
            )


class TestClock:
    def test_naive_clock_is_a_config_error(self) -> None:
        """A clock returning naive datetimes is a configuration error; nothing is declared."""
        flow = IncidentFlow.in_memory(clock=lambda: NAIVE)
        with unchanged(flow), pytest.raises(ConfigError) as info:
            declare(flow)
        assert info.value.key == "clock"
        assert flow.list() == []

    def test_naive_clock_fails_commands_too(self, clock: FrozenClock) -> None:
        """A clock that turns naive later fails the next command and writes nothing."""
        current: list[datetime] = [START]
        flow = IncidentFlow.in_memory(clock=lambda: current[0])
        inc = declare(flow)
        current[0] = NAIVE
        with unchanged(flow, inc.id), pytest.raises(ConfigError):
            flow.start_triage(inc.id, actor=COMMANDER)

    def test_aware_clock_in_another_zone_stamps_utc(self) -> None:
        """Events are stamped in UTC whatever zone the clock answers in."""
        tokyo = timezone(timedelta(hours=9))
        flow = IncidentFlow.in_memory(clock=lambda: START.astimezone(tokyo))
        inc = declare(flow)
        assert inc.declared_at == START
        assert flow.history(inc.id)[0].at.utcoffset() == timedelta(0)

    def test_frozen_clock_refuses_naive_start(self) -> None:
        """FrozenClock itself refuses a naive start."""
        with pytest.raises(ValidationError):
            FrozenClock(NAIVE)


class TestUnknownIncident:
    @pytest.mark.parametrize(
        "call",
        [
            lambda f: f.get("INC-2026-11-27-nope"),
            lambda f: f.history("INC-2026-11-27-nope"),
            lambda f: f.can("INC-2026-11-27-nope", "contain"),
            lambda f: f.add_note("INC-2026-11-27-nope", "n", actor="a"),
            lambda f: f.start_triage("INC-2026-11-27-nope", actor="a"),
        ],
        ids=["get", "history", "can", "add_note", "start_triage"],
    )
    def test_unknown_id_raises_incident_not_found(
        self, flow: IncidentFlow, call: Callable[[IncidentFlow], object]
    ) -> None:
        """An id that names no incident raises IncidentNotFound with the id."""
        declare(flow)
        with unchanged(flow), pytest.raises(IncidentNotFound) as info:
            call(flow)
        assert "INC-2026-11-27-nope" in str(info.value)
        assert isinstance(info.value, LookupError)

    @pytest.mark.parametrize("incident_id", ["", None, 5])
    def test_malformed_id_is_a_validation_error(
        self, flow: IncidentFlow, incident_id: object
    ) -> None:
        """An id that is not text is refused, naming incident_id."""
        refused("incident_id", lambda: flow.add_note(incident_id, "n", actor="a"))  # type: ignore[arg-type]


class TestActor:
    @pytest.mark.parametrize("actor", [None, "", "   ", 5, "two\nlines", "a" * 201])
    def test_declare_needs_an_actor(self, flow: IncidentFlow, actor: object) -> None:
        """declare without a usable actor is refused and creates nothing."""
        with unchanged(flow):
            refused(
                "actor",
                lambda: flow.declare(
                    TITLE,
                    severity="P1",
                    commander=COMMANDER,
                    actor=actor,  # type: ignore[arg-type]
                ),
            )

    @pytest.mark.parametrize("actor", [None, "", "   ", 5])
    def test_commands_need_an_actor(self, drive: Drive, flow: IncidentFlow, actor: object) -> None:
        """Every command names who runs it; without one nothing is recorded."""
        inc = drive("rca")
        with unchanged(flow, inc.id):
            refused("actor", lambda: flow.add_why(inc.id, "why", actor=actor))  # type: ignore[arg-type]

    @pytest.mark.parametrize("commander", [None, "", 5])
    def test_declare_needs_a_commander(self, flow: IncidentFlow, commander: object) -> None:
        """An incident without a commander is not declared."""
        with unchanged(flow):
            refused(
                "commander",
                lambda: flow.declare(
                    TITLE,
                    severity="P1",
                    commander=commander,  # type: ignore[arg-type]
                    actor=COMMANDER,
                ),
            )


class TestWrongTypes:
    @pytest.mark.parametrize(
        ("state", "field", "call"),
        [
            (
                "rca",
                "staging_verified",
                lambda f, i: f.record_fix(i.id, "fix", test="t", staging_verified="yes", actor="b"),
            ),
            (
                "rca",
                "staging_verified",
                lambda f, i: f.record_fix(i.id, "fix", test="t", staging_verified=1, actor="b"),
            ),
            ("rca", "answer", lambda f, i: f.add_why(i.id, 42, actor="b")),
            (
                "triaging",
                "content",
                lambda f, i: f.add_evidence(i.id, source="logs", content=b"bytes", actor="b"),
            ),
            (
                "triaging",
                "content",
                lambda f, i: f.add_evidence(
                    i.id, source="logs", content="x" * 1_000_001, actor="b"
                ),
            ),
            ("triaging", "answer", lambda f, i: f.answer_triage(i.id, "scope", ["all"], actor="b")),
            (
                "fixed",
                "positive",
                lambda f, i: f.confirm_by_user(i.id, user="u", positive="no", actor="b"),
            ),
            ("resolved", "number", lambda f, i: f.complete_action_item(i.id, "1", actor="b")),
            ("resolved", "number", lambda f, i: f.complete_action_item(i.id, True, actor="b")),
            ("resolved", "number", lambda f, i: f.complete_action_item(i.id, 0, actor="b")),
            (
                "resolved",
                "went_well",
                lambda f, i: f.draft_postmortem(i.id, went_well=5, actor="b"),
            ),
            (
                "resolved",
                "went_well[1]",
                lambda f, i: f.draft_postmortem(i.id, went_well=["ok", ""], actor="b"),
            ),
            ("resolved", "summary", lambda f, i: f.draft_postmortem(i.id, summary=3.5, actor="b")),
            (
                "resolved",
                "summary",
                lambda f, i: f.draft_postmortem(i.id, summary="x" * 20_001, actor="b"),
            ),
            ("triaging", "reason", lambda f, i: f.dismiss(i.id, reason="", actor="b")),
            ("fixed", "reason", lambda f, i: f.reopen(i.id, reason=None, actor="b")),
            ("rca", "text", lambda f, i: f.add_note(i.id, "\x07bell", actor="b")),
            (
                "rca",
                "process_gap",
                lambda f, i: f.set_root_cause(i.id, "leak", process_gap="", actor="b"),
            ),
        ],
    )
    def test_wrong_type_is_refused_and_changes_nothing(
        self, flow: IncidentFlow, clock: FrozenClock, state: str, field: str, call: Any
    ) -> None:
        """A value of the wrong type or shape is refused, naming the field."""
        inc = drive_to(flow, clock, state)
        with unchanged(flow, inc.id):
            refused(field, lambda: call(flow, inc))

    def test_list_filter_with_unknown_state(self, flow: IncidentFlow) -> None:
        """Listing by a state that does not exist is refused, naming the states."""
        exc = refused("state", lambda: flow.list(state="closed"))
        assert "kb_updated" in str(exc)


class TestConcurrency:
    def test_stale_expected_version_writes_nothing(self, drive: Drive, flow: IncidentFlow) -> None:
        """A command decided on an old version raises ConcurrencyConflict and writes nothing."""
        inc = drive("rca")
        flow.add_why(inc.id, "someone else's why", actor="erin")
        with unchanged(flow, inc.id), pytest.raises(ConcurrencyConflict) as info:
            flow.add_why(inc.id, "my why", actor="bob", expected_version=inc.version)
        assert (info.value.expected, info.value.actual) == (inc.version, inc.version + 1)
        assert inc.id in str(info.value)

    @pytest.mark.parametrize("version", [0, -1, "3", True, 1.0])
    def test_malformed_expected_version(
        self, drive: Drive, flow: IncidentFlow, version: object
    ) -> None:
        """expected_version must be a whole number of at least 1."""
        inc = drive("rca")
        with unchanged(flow, inc.id):
            refused(
                "expected_version",
                lambda: flow.add_why(inc.id, "w", actor="b", expected_version=version),  # type: ignore[arg-type]
            )


class TestIdempotency:
    def test_same_key_same_payload_returns_the_first_result(
        self, drive: Drive, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """A retried command returns what the first call returned and writes nothing."""
        inc = drive("rca")
        first = flow.add_why(inc.id, "pool exhausted", actor="bob", idempotency_key="why-1")
        flow.add_note(inc.id, "later note", actor="bob")
        clock.advance(minutes=5)
        with unchanged(flow, inc.id):
            again = flow.add_why(inc.id, "pool exhausted", actor="bob", idempotency_key="why-1")
        assert again == first
        assert [w.answer for w in flow.get(inc.id).whys] == ["pool exhausted"]
        assert flow.history(inc.id)[first.version - 1].idempotency_key == "why-1"

    def test_same_key_other_payload_raises(self, drive: Drive, flow: IncidentFlow) -> None:
        """Reusing a key for another payload raises IdempotencyConflict and writes nothing."""
        inc = drive("rca")
        flow.add_why(inc.id, "pool exhausted", actor="bob", idempotency_key="why-1")
        with unchanged(flow, inc.id), pytest.raises(IdempotencyConflict) as info:
            flow.add_why(inc.id, "something else", actor="bob", idempotency_key="why-1")
        assert "why-1" in str(info.value)

    def test_same_key_other_command_raises(self, drive: Drive, flow: IncidentFlow) -> None:
        """A key belongs to one command: reusing it for another raises."""
        inc = drive("rca")
        flow.add_why(inc.id, "pool exhausted", actor="bob", idempotency_key="k")
        with unchanged(flow, inc.id), pytest.raises(IdempotencyConflict):
            flow.add_note(inc.id, "pool exhausted", actor="bob", idempotency_key="k")

    def test_declare_is_idempotent(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """A retried declaration returns the same incident instead of a second one."""
        first = declare(flow, idempotency_key="page-123")
        clock.advance(minutes=1)
        again = declare(flow, idempotency_key="page-123")
        assert again == first
        assert len(flow.list()) == 1
        with unchanged(flow), pytest.raises(IdempotencyConflict):
            declare(flow, severity="P2", idempotency_key="page-123")

    def test_rejected_command_keeps_its_key_free(self, drive: Drive, flow: IncidentFlow) -> None:
        """A key used by a refused command can be used again once the command can succeed."""
        inc = drive("triaging")
        with pytest.raises(IncidentFlowError):
            flow.contain(inc.id, actor=COMMANDER, idempotency_key="contain-1")
        flow.add_evidence(inc.id, source="s", content="c", actor=RESPONDER)
        for question in ("symptom", "started_at", "scope"):
            flow.answer_triage(inc.id, question, "a", actor=RESPONDER)
        flow.record_containment(inc.id, "rollback", actor=RESPONDER)
        assert flow.contain(inc.id, actor=COMMANDER, idempotency_key="contain-1").version

    @pytest.mark.parametrize("key", ["", "two\nlines", 5])
    def test_malformed_key(self, drive: Drive, flow: IncidentFlow, key: object) -> None:
        """An idempotency key must be one line of text."""
        inc = drive("rca")
        with unchanged(flow, inc.id):
            refused(
                "idempotency_key",
                lambda: flow.add_why(inc.id, "w", actor="b", idempotency_key=key),  # type: ignore[arg-type]
            )


def _unicode(key: str) -> str:
    """A distinct text for ``key`` with emoji, CJK, RTL scripts and a combining mark."""
    return f"{key.replace('_', ' ')} 🔥 結帳失敗 שלום مرحبا Zoe\u0308 ✅"


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


class TestUnicode:
    def test_every_text_field_round_trips_and_renders(
        self, file_flow: IncidentFlow, clock: FrozenClock, folders: tuple[Path, Path]
    ) -> None:
        """Emoji, CJK, right-to-left text and combining marks work in every text field."""
        texts = {key: _unicode(key) for key in DEFAULT_TEXTS}
        inc = drive_to(file_flow, clock, "postmortem", texts=texts)
        note = _unicode("note")
        reason = _unicode("reclassify reason")
        file_flow.add_note(inc.id, note, actor=texts["responder"])
        file_flow.reclassify(inc.id, "P2", reason=reason, actor=texts["commander"])
        inc = advance_to(file_flow, clock, inc.id, "kb_updated", texts=texts)

        assert inc.title == texts["title"]
        assert inc.commander == texts["commander"]
        assert inc.evidence[0].content == texts["evidence_content"]
        assert inc.notes[0].text == note
        assert inc.kb_entry is not None
        assert inc.kb_entry.symptom == texts["kb_symptom"]
        assert file_flow.verify(inc.id)

        incidents_dir, knowledge_dir = folders
        incident_md = _nfc((incidents_dir / f"{inc.id}.md").read_text(encoding="utf-8"))
        gotcha_md = _nfc((knowledge_dir / f"{inc.slug}.md").read_text(encoding="utf-8"))
        in_gotcha = {"kb_symptom", "kb_early_signs"}
        for key, value in texts.items():
            where = gotcha_md if key in in_gotcha else incident_md
            assert _nfc(value) in where, key
        assert _nfc(note) in incident_md
        assert _nfc(reason) in incident_md
        assert _nfc(texts["title"]) in gotcha_md

    def test_unicode_title_gets_an_ascii_slug(self, flow: IncidentFlow) -> None:
        """A title with no ASCII letters still gets a safe slug."""
        inc = flow.declare("結帳失敗 🔥", severity="P2", commander="陳", actor="陳")
        assert inc.slug == "incident"
        assert inc.title == "結帳失敗 🔥"

    def test_unicode_names(self, drive: Drive, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Names in any script identify people, including the confirming user."""
        inc = drive("fixed")
        clock.advance(minutes=20)
        flow.confirm_by_user(inc.id, user="Ζωή", actor="مريم")
        assert flow.resolve(inc.id, actor="José").state.value == "resolved"
        assert flow.history(inc.id)[-1].actor == "José"
        assert flow.history(inc.id)[-2].actor == "مريم"
        confirmation = flow.get(inc.id).confirmation
        assert confirmation is not None
        assert confirmation.user == "Ζωή"


# -- the hardened boundary (issue 9, "Bad input that gets through") ----------------------

SURROGATES = ["a\ud800b", "\udfff", "high then low reversed \udc00\ud800", "emoji half \ud83d"]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]
SEPARATORS = ["\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e"]
#: Larger than any page size (LIMIT_MAX) and than any whole number a store holds.
HUGE = [100_001, 2**63, 10**30, 2**200]


def _codepoint(text: str) -> str:
    return f"U+{ord(text):04X}"


class TestLoneSurrogates:
    @pytest.mark.parametrize("text", SURROGATES)
    @pytest.mark.parametrize(
        ("field", "call"),
        [
            ("title", lambda f, i, t: f.declare(t, severity="P1", commander="a", actor="a")),
            ("commander", lambda f, i, t: f.declare("x", severity="P1", commander=t, actor="a")),
            ("actor", lambda f, i, t: f.add_note(i.id, "n", actor=t)),
            ("text", lambda f, i, t: f.add_note(i.id, t, actor="a")),
            ("content", lambda f, i, t: f.add_evidence(i.id, source="s", content=t, actor="a")),
            ("source", lambda f, i, t: f.add_evidence(i.id, source=t, content="c", actor="a")),
            ("answer", lambda f, i, t: f.answer_triage(i.id, "scope", t, actor="a")),
            (
                "idempotency_key",
                lambda f, i, t: f.add_note(i.id, "n", actor="a", idempotency_key=t),
            ),
            ("incident_id", lambda f, i, t: f.get(t)),
        ],
        ids=lambda value: value if isinstance(value, str) and value.isidentifier() else None,
    )
    def test_refused_before_anything_is_written(
        self, file_flow: IncidentFlow, clock: FrozenClock, field: str, call: Any, text: str
    ) -> None:
        """A lone surrogate (not valid Unicode) is a ValidationError naming the field."""
        inc = drive_to(file_flow, clock, "triaging")
        with unchanged(file_flow), unchanged(file_flow, inc.id):
            exc = refused(field, lambda: call(file_flow, inc, text))
        assert "surrogate" in str(exc)
        assert exc.message.startswith("contains the lone surrogate U+D")

    def test_the_next_command_works_on_a_durable_store(
        self, tmp_path: Path, clock: FrozenClock, folders: tuple[Path, Path]
    ) -> None:
        """After a refused surrogate the incident takes commands again, with no duplicate."""
        incidents_dir, knowledge_dir = folders
        store = SQLiteStore(tmp_path / "incidents.db")
        with IncidentFlow(
            store, clock=clock, incidents_dir=incidents_dir, knowledge_dir=knowledge_dir
        ) as flow:
            inc = declare(flow)
            for _ in range(3):  # a client retrying the same bad request
                with unchanged(flow, inc.id):
                    refused("text", lambda: flow.add_note(inc.id, "a\ud800b", actor=COMMANDER))
            after = flow.add_note(inc.id, "retried without the surrogate", actor=COMMANDER)
            assert after.version == inc.version + 1
            assert [e.type for e in flow.history(inc.id)] == ["declared", "note_added"]
            assert flow.verify(inc.id)
            assert flow.check_deadlines() is not None
        assert "retried" in (incidents_dir / f"{inc.id}.md").read_text(encoding="utf-8")

    def test_paired_surrogates_written_as_one_character_are_fine(self, flow: IncidentFlow) -> None:
        """An emoji outside the BMP is one code point in Python, not a surrogate pair."""
        inc = declare(flow)
        assert (
            flow.add_note(inc.id, "on fire \U0001f525", actor=COMMANDER)
            .notes[0]
            .text.endswith("\U0001f525")
        )


class TestOneLineFields:
    @pytest.mark.parametrize("char", BIDI + SEPARATORS, ids=_codepoint)
    @pytest.mark.parametrize(
        ("field", "call"),
        [
            ("title", lambda f, i, t: f.declare(t, severity="P1", commander="a", actor="a")),
            ("commander", lambda f, i, t: f.assign_commander(i.id, t, actor="a")),
            ("actor", lambda f, i, t: f.add_note(i.id, "n", actor=t)),
            ("source", lambda f, i, t: f.add_evidence(i.id, source=t, content="c", actor="a")),
            ("question", lambda f, i, t: f.answer_triage(i.id, t, "a", actor="a")),
            (
                "idempotency_key",
                lambda f, i, t: f.add_note(i.id, "n", actor="a", idempotency_key=t),
            ),
        ],
        ids=["title", "commander", "actor", "source", "question", "idempotency_key"],
    )
    def test_refuse_bidi_controls_and_line_separators(
        self, flow: IncidentFlow, clock: FrozenClock, field: str, call: Any, char: str
    ) -> None:
        """One-line fields refuse characters that reorder the text or start a new line."""
        inc = drive_to(flow, clock, "triaging")
        with unchanged(flow), unchanged(flow, inc.id):
            exc = refused(field, lambda: call(flow, inc, f"left{char}right"))
        assert _codepoint(char) in str(exc), "the message names the character to remove"

    @pytest.mark.parametrize("char", ["\u202e", "\u2067", "\u2028", "\u2029"], ids=_codepoint)
    def test_free_text_keeps_them(self, drive: Drive, flow: IncidentFlow, char: str) -> None:
        """Free text (notes, whys, evidence) keeps bidi marks and separators people paste."""
        inc = drive("rca")
        assert flow.add_why(inc.id, f"left{char}right", actor=RESPONDER).whys[-1].answer == (
            f"left{char}right"
        )

    @pytest.mark.parametrize("char", ["\u200f", "\u061c", "\u200e"], ids=_codepoint)
    def test_plain_direction_marks_stay_allowed(self, flow: IncidentFlow, char: str) -> None:
        """Right-to-left and left-to-right marks only hint direction; names in Arabic need them."""
        inc = flow.declare(f"مرحبا{char} checkout", severity="P2", commander="a", actor="a")
        assert char in inc.title


class TestHugeNumbers:
    @pytest.mark.parametrize("limit", HUGE)
    @pytest.mark.parametrize("query", ["list", "summaries"])
    def test_page_size_over_the_maximum(self, flow: IncidentFlow, query: str, limit: int) -> None:
        """A page size over 100,000 is refused, naming limit (no OverflowError from a store)."""
        declare(flow)
        exc = refused("limit", lambda: getattr(flow, query)(limit=limit))
        assert "100,000" in str(exc)

    @pytest.mark.parametrize("query", ["list", "summaries"])
    def test_largest_page_size_is_accepted(self, flow: IncidentFlow, query: str) -> None:
        """limit=100,000 is the largest page size and lists normally."""
        inc = declare(flow)
        assert [found.id for found in getattr(flow, query)(limit=100_000)] == [inc.id]

    @pytest.mark.parametrize("offset", [2**63, 10**30, -1, True, "0"])
    @pytest.mark.parametrize("query", ["list", "summaries"])
    def test_offset_a_store_cannot_hold(
        self, flow: IncidentFlow, query: str, offset: object
    ) -> None:
        """An offset is a whole number a store can hold, or it is refused naming offset."""
        refused("offset", lambda: getattr(flow, query)(offset=offset))

    def test_huge_offset_on_sqlite(self, tmp_path: Path, clock: FrozenClock) -> None:
        """The largest accepted offset reaches SQLite without an OverflowError."""
        with IncidentFlow(SQLiteStore(tmp_path / "incidents.db"), clock=clock) as flow:
            declare(flow)
            assert flow.list(offset=2**63 - 1) == []
            refused("limit", lambda: flow.list(limit=10**30))

    @pytest.mark.parametrize("limit", HUGE)
    def test_dead_letters_limit(self, flow: IncidentFlow, limit: int) -> None:
        """dead_letters(10**30) is a ValidationError naming limit."""
        refused("limit", lambda: flow.dead_letters(limit))

    @pytest.mark.parametrize("number", [2**63, 10**30])
    def test_action_item_number(self, drive: Drive, flow: IncidentFlow, number: int) -> None:
        """An action-item number no store can hold is refused, naming number."""
        inc = drive("resolved")
        with unchanged(flow, inc.id):
            refused("number", lambda: flow.complete_action_item(inc.id, number, actor="a"))

    @pytest.mark.parametrize("version", [2**63, 10**30, 2**200])
    def test_expected_version(self, drive: Drive, flow: IncidentFlow, version: int) -> None:
        """An expected_version no store can hold is refused, or conflicts; it never overflows."""
        inc = drive("rca")
        with unchanged(flow, inc.id), pytest.raises((ValidationError, ConcurrencyConflict)):
            flow.add_why(inc.id, "w", actor="b", expected_version=version)


class TestCommandNames:
    @pytest.mark.parametrize("command", ["frobnicate", "fly", "_decide", "__init__", "Contain"])
    def test_unknown_command_in_can(self, flow: IncidentFlow, command: str) -> None:
        """can() refuses a command that does not exist, naming the commands that do."""
        inc = declare(flow)
        with unchanged(flow, inc.id), pytest.raises(InvalidTransition) as info:
            flow.can(inc.id, command)
        assert command in str(info.value)
        assert "start_triage" in str(info.value)
        assert "add_note" in str(info.value)

    @pytest.mark.parametrize("command", [["x"], ("contain",), 5, None, b"contain", {"a": 1}])
    def test_command_name_that_is_not_text(self, flow: IncidentFlow, command: object) -> None:
        """can(id, ["x"]) is a ValidationError naming command, not a TypeError."""
        inc = declare(flow)
        with unchanged(flow, inc.id):
            refused("command", lambda: flow.can(inc.id, command))  # type: ignore[arg-type]

    def test_known_command_still_answers(self, drive: Drive, flow: IncidentFlow) -> None:
        """A known command not allowed now gets a Verdict with coded reasons, not an error."""
        inc = drive("triaging")
        verdict = flow.can(inc.id, "contain")
        assert not verdict.allowed
        assert all(reason.code and str(reason) == reason.message for reason in verdict.reasons)

    @pytest.mark.parametrize("ids", [5, b"id", "one-id", [5], [None], ["a\ud800"], {"a": 1}])
    def test_redrive_with_ids_that_are_not_a_list_of_text(
        self, flow: IncidentFlow, ids: object
    ) -> None:
        """redrive(5) is a ValidationError naming ids, not a TypeError."""
        exc = refused("ids", lambda: flow.redrive(ids))  # type: ignore[arg-type]
        assert isinstance(exc, ValidationError)

    def test_redrive_with_nothing_dead(self, flow: IncidentFlow) -> None:
        """redrive() and redrive([]) put nothing back when nothing is dead."""
        assert flow.redrive() == 0
        assert flow.redrive([]) == 0


class TestDuplicateOf:
    def test_itself(self, drive: Drive, flow: IncidentFlow) -> None:
        """An incident cannot be dismissed as a duplicate of itself."""
        inc = drive("triaging")
        with unchanged(flow, inc.id):
            exc = refused(
                "duplicate_of",
                lambda: flow.dismiss(inc.id, reason="dup", duplicate_of=inc.id, actor="a"),
            )
        assert inc.id in str(exc)

    def test_unknown_incident(self, drive: Drive, flow: IncidentFlow) -> None:
        """duplicate_of must name an incident that exists."""
        inc = drive("triaging")
        with unchanged(flow, inc.id):
            exc = refused(
                "duplicate_of",
                lambda: flow.dismiss(
                    inc.id, reason="dup", duplicate_of="INC-2026-11-27-nope", actor="a"
                ),
            )
        assert "INC-2026-11-27-nope" in str(exc)

    @pytest.mark.parametrize(
        "junk", ["any text at all", "../../etc/passwd", "INC-\u202e", "a\ud800", 5, ["INC"]]
    )
    def test_junk(self, drive: Drive, flow: IncidentFlow, junk: object) -> None:
        """duplicate_of that is not an incident id is refused, naming duplicate_of."""
        inc = drive("triaging")
        with unchanged(flow, inc.id):
            refused(
                "duplicate_of",
                lambda: flow.dismiss(inc.id, reason="dup", duplicate_of=junk, actor="a"),  # type: ignore[arg-type]
            )

    def test_another_incident(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """A real other incident is accepted and recorded."""
        first = declare(flow)
        clock.advance(minutes=1)
        second = flow.declare("Checkout fails again", severity="P2", commander="a", actor="a")
        dismissed = flow.dismiss(second.id, reason="dup", duplicate_of=first.id, actor="a")
        assert dismissed.state.value == "dismissed"
        assert flow.history(second.id)[-1].data.duplicate_of == first.id  # type: ignore[attr-defined]
