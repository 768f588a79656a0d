"""Random command sequences on a few incidents never break the process rules.

A Hypothesis state machine drives every command of :class:`IncidentFlow` with
generated inputs — good and bad text, aware and naive times, actors,
severities — against an in-memory flow on a :class:`FrozenClock`, under a
policy drawn per run. It keeps almost no model of its own: after every step the
invariants are checked from each incident's history and snapshot alone.

Hostile input (lone surrogates, bidirectional overrides, line separators in
one-line fields, huge strings and integers, wrong types, a ``duplicate_of``
naming the incident itself or nothing, unknown commands in ``can``) must be
refused with an :class:`IncidentFlowError` that changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from incidentflow import (
    BlameCheck,
    Event,
    Incident,
    IncidentFlow,
    IncidentFlowError,
    InvalidTransition,
    Policy,
    ProcessOverride,
    Reason,
    Severity,
    State,
    ValidationError,
    replay,
)
from incidentflow._policy import find_blame
from incidentflow._validate import INT_MAX, LIMIT_MAX
from incidentflow.commands import LINK_KINDS
from incidentflow.testing import FrozenClock

MAX_INCIDENTS = 4
#: Examples per run of TestLifecycle: set here, so no settings profile can lower it.
#: 200, not 300, since the machine drives the corrections, roles and updates too: the
#: file still runs in about 10 s on one core.
MAX_EXAMPLES = 200
WATCH_WINDOW = timedelta(minutes=15)
TERMINAL_EVENTS = {
    "kb_updated": State.KB_UPDATED,
    "dismissed": State.DISMISSED,
    "merged": State.DISMISSED,
}
PAST_TRIAGE = frozenset(
    {State.CONTAINED, State.RCA, State.FIXED, State.RESOLVED, State.POSTMORTEM, State.KB_UPDATED}
)
COMMANDS = (
    "start_triage",
    "add_evidence",
    "answer_triage",
    "record_containment",
    "contain",
    "start_rca",
    "add_why",
    "set_root_cause",
    "record_fix",
    "record_deploy",
    "mark_fixed",
    "confirm_by_user",
    "resolve",
    "draft_postmortem",
    "complete_postmortem",
    "add_action_item",
    "complete_action_item",
    "update_kb",
    "reopen",
    "dismiss",
    "reclassify",
    "assign_commander",
    "record_detection",
    "add_note",
    "amend",
    "retract",
    "reassign_action_item",
    "redate_action_item",
    "decline_action_item",
    "link_action_item",
    "change_type",
    "set_labels",
    "add_reference",
    "assign_role",
    "release_role",
    "post_update",
    "link",
    "unlink",
    "merge",
)
HIGH = frozenset({Severity.P1, Severity.P2})
COMMS = "communications_lead"
#: What may still be recorded once an incident is closed: notes, follow-ups, corrections, labels.
AFTER_CLOSURE = frozenset(
    {
        "note_added",
        "action_item_completed",
        "action_item_reassigned",
        "action_item_redated",
        "action_item_declined",
        "action_item_linked",
        "amended",
        "retracted",
        "labels_set",
        "fields_set",
        "reference_added",
        "reference_removed",
        "linked",
        "unlinked",
    }
)
#: Item names for amend and retract: most name something that may exist, some nothing.
ITEMS = (
    "why:1",
    "why:2",
    "evidence:1",
    "containment:1",
    "containment:2",
    "action_item:1",
    "action_item:2",
    "triage:scope",
    "triage:symptom",
    "root_cause:statement",
    "fix:test",
    "postmortem:summary",
    "postmortem:went_well",
)
BAD_ITEMS: tuple[object, ...] = ("why", "why:0", "why:x", "fix:colour", "nonsense:1", "", None, 3)


# -- generated inputs ----------------------------------------------------------


class _Long(str):
    """A very long string that prints as its length, so failure reports stay readable."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{self[0]!r} * {len(self):,}>"


class _NoOffset(tzinfo):
    """A tzinfo whose utcoffset is None: the datetime counts as naive."""

    def utcoffset(self, dt: datetime | None) -> None:
        return None

    def dst(self, dt: datetime | None) -> None:
        return None

    def tzname(self, dt: datetime | None) -> str:
        return "no-offset"

    def __repr__(self) -> str:
        return "_NoOffset()"


@attrs.frozen
class Ago:
    """A time relative to the flow clock, resolved when the rule runs."""

    delta: timedelta
    tz: tzinfo | None  # None gives a naive datetime

    def resolve(self, now: datetime) -> datetime:
        when = now - self.delta
        return when.replace(tzinfo=None) if self.tz is None else when.astimezone(self.tz)


@attrs.frozen
class DaysAhead:
    """A due date relative to the flow clock's day, resolved when the rule runs."""

    days: int

    def resolve(self, now: datetime) -> date:
        return now.date() + timedelta(days=self.days)


@attrs.frozen
class Version:
    """An expected_version relative to the incident's current one (0: current)."""

    offset: int


@attrs.frozen
class Hostile:
    """A call with hostile input in ``field``: it must be refused and change nothing.

    ``on_incident`` puts the incident's id first; ``strict`` demands a ValidationError
    (the command runs in every state, so nothing else may refuse it first).
    """

    field: str
    command: str
    args: tuple[object, ...] = ()
    kwargs: dict[str, object] = attrs.field(factory=dict)
    on_incident: bool = True
    strict: bool = False


OFFSETS: tuple[tzinfo, ...] = (
    UTC,
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-8)),
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-12)),
)
EDGE_TIMES = (
    datetime.min.replace(tzinfo=timezone(timedelta(hours=14))),
    datetime.max.replace(tzinfo=timezone(timedelta(hours=-12))),
    datetime.min.replace(tzinfo=UTC),
    datetime.max.replace(tzinfo=UTC),
)
RESPONSE_TIMES = (
    timedelta(0),
    timedelta(minutes=4),
    timedelta(minutes=20),
    timedelta(hours=1, minutes=30),
    timedelta(days=3),
)
NAMES = ("alice", "bob", "carol", "dave", "Zoë", "李雷")
GOOD_TEXTS = (
    "Checkout returns 500",
    "Zahlungsseite lädt nicht — Kunden betroffen",
    "支付失败，退款队列卡住",
    "🔥 primary database down",
    "line one\nline two",
    "# not a heading | not | a cell",
    "  padded with spaces  ",
)
# Refused by every text field, one-line or not.
HOSTILE_TEXTS: tuple[object, ...] = (
    "lone \ud800 surrogate",
    "\udfff",
    "pair reversed \udc00\ud800",
    _Long("x" * 20_001),
    _Long("h" * 5_000_000),
    b"bytes",
    bytearray(b"bytes"),
    {"a": "dict"},
    object(),
    10**30,
)
# Accepted in free text, refused in one-line fields (titles, names, keys, questions).
NOT_ONE_LINE = (
    "right-to-left \u202e override",
    "\u202aembedding",
    "\u2066isolate\u2069",
    "first-strong \u2068isolate",
    "line\u2028separator",
    "paragraph\u2029separator",
    "next\x85line",
    "file\x1cseparator",
    "record\x1eseparator",
    "carriage\rreturn",
)
BAD_TEXTS: tuple[object, ...] = (
    "",
    "   ",
    "\n\t",
    "nul\x00byte",
    "bell\x07",
    None,
    42,
    3.5,
    ["a list"],
    True,
    *HOSTILE_TEXTS,
)
BAD_NAMES: tuple[object, ...] = (
    "",
    " ",
    None,
    7,
    "two\nlines",
    "tab\there",
    _Long("n" * 201),
    ("tuple",),
    *HOSTILE_TEXTS,
    *NOT_ONE_LINE,
)
BAD_IDS: tuple[object, ...] = (
    "INC-2026-01-01-nope",
    "",
    "../../etc/passwd",
    None,
    5,
    "a\nb",
    "INC-2026-01-01-\ud800",
    "INC-2026-01-01-\u202e",
    _Long("I" * 1_000_000),
)
HUGE_INTS = (2**63, 2**64, 10**30, -(10**30), 2**200)
HUGE_LIMITS = (LIMIT_MAX + 1, 2**63, 10**30, 2**200)
POSTMORTEM_TEXTS = (
    "The deploy script skipped the migration",
    "Alerts fired late because the threshold was too high",
    "Rollback took two minutes",
    "Runbook was out of date",
    "Rückrollen hat funktioniert ✓",
    "human error",
    "It was alice's fault",
    "bob forgot to rotate the key",
    "Zoë broke the build",
    "carol then ignored the page",
    "李雷 missed the alert",
)

one_line = st.sampled_from([t for t in GOOD_TEXTS if "\n" not in t])
good_text = st.one_of(
    st.sampled_from(GOOD_TEXTS),
    st.sampled_from([t for t in NOT_ONE_LINE if not t.isascii() and "\x85" not in t]),
    st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=30).filter(
        str.strip
    ),
)
# Each generated argument is valid about three times in four.
texts = st.one_of(good_text, good_text, st.text(max_size=20), st.sampled_from(BAD_TEXTS))
names = st.sampled_from(NAMES)
any_names = st.one_of(names, names, names, st.sampled_from(BAD_NAMES))
severities = st.sampled_from(
    ["P1", "P2", "P3", "P4", "p2", " P3 ", *Severity, "P5", "", None, "P0", 1, "critical"]
)
recent = st.builds(
    Ago,
    st.timedeltas(min_value=timedelta(hours=-1), max_value=timedelta(hours=3)),
    st.one_of(st.sampled_from(OFFSETS), st.sampled_from(OFFSETS), st.none()),
)
times = st.one_of(
    st.none(),
    st.none(),
    recent,
    recent,
    st.sampled_from(EDGE_TIMES),
    st.datetimes(timezones=st.sampled_from((*OFFSETS, _NoOffset()))),
    st.datetimes(),
    st.sampled_from(["2026-01-01T00:00:00Z", 0, date(2026, 1, 1)]),
)
due_dates = st.one_of(
    st.builds(DaysAhead, st.integers(-3, 60)),
    st.dates(),
    st.sampled_from([None, "2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)]),
)
postmortem_texts = st.one_of(st.sampled_from(POSTMORTEM_TEXTS), texts)
postmortem_lists = st.one_of(
    st.none(),
    st.lists(postmortem_texts, max_size=3),
    postmortem_texts,
    st.just(("x",) * 101),
)
options = st.one_of(
    st.just({}),
    st.just({}),
    st.just({}),
    st.fixed_dictionaries(
        {
            "idempotency_key": st.one_of(
                st.sampled_from(["key-1", "key-2", "", 9]),
                st.sampled_from(["key-\ud800", "key\u202e-1", "key\u2028-2", _Long("k" * 201)]),
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "expected_version": st.one_of(
                st.builds(Version, st.integers(-1, 1)),
                st.sampled_from([0, -1, True, "1", 1.0, *HUGE_INTS]),
            )
        }
    ),
)
clock_steps = st.one_of(
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(minutes=1)),
    st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(minutes=20)),
    st.sampled_from([WATCH_WINDOW - timedelta(seconds=1), WATCH_WINDOW]),
    st.timedeltas(min_value=timedelta(hours=1), max_value=timedelta(days=3)),
)


def _resolve(value: object, now: datetime) -> Any:
    return value.resolve(now) if isinstance(value, (Ago, DaysAhead)) else value


def _whole(value: object, minimum: int) -> bool:
    """A real int (not a bool) from ``minimum`` to the largest a store can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= INT_MAX


# Each command refuses hostile input in its own fields (unless its state refuses first).
HOSTILE_CALLS = tuple(
    Hostile(field, command, args, kwargs)
    for field, command, args, kwargs in (
        ("source", "add_evidence", (), {"source": "\u202elogs", "content": "c"}),
        ("content", "add_evidence", (), {"source": "logs", "content": "a\udc80b"}),
        ("content", "add_evidence", (), {"source": "logs", "content": _Long("e" * 5_000_000)}),
        ("question", "answer_triage", ("scope\u2028x", "a"), {}),
        ("answer", "answer_triage", ("scope", "\ud800"), {}),
        ("description", "record_containment", ("\udbff rollback",), {}),
        ("taken_at", "record_containment", ("rollback",), {"taken_at": Ago(timedelta(0), None)}),
        ("taken_at", "record_containment", ("rollback",), {"taken_at": "2026-11-27T14:00Z"}),
        ("answer", "add_why", (_Long("w" * 2_000_000),), {}),
        ("process_gap", "set_root_cause", ("leak",), {"process_gap": "\udfff"}),
        ("deployed_at", "record_deploy", (), {"deployed_at": Ago(timedelta(minutes=1), None)}),
        ("ref", "record_deploy", (), {"ref": "v1\ud800"}),
        ("user", "confirm_by_user", (), {"user": "bob\u2066", "positive": True}),
        ("owner", "add_action_item", ("d",), {"owner": "a\u2029b", "due": DaysAhead(7)}),
        ("due", "add_action_item", ("d",), {"owner": "dana", "due": 10**30}),
        ("commander", "assign_commander", ("\u202dcarol",), {}),
        ("reason", "reclassify", ("P3",), {"reason": b"scope"}),
        ("severity", "reclassify", ("P3\u202e",), {"reason": "scope"}),
        ("number", "complete_action_item", (10**30,), {}),
        ("number", "complete_action_item", (2**63,), {}),
        ("reason", "reopen", (), {"reason": "\ud800", "to": "rca"}),
        ("to", "reopen", (), {"reason": "it came back", "to": "rca\u202e"}),
        ("reason", "dismiss", (), {"reason": _Long("r" * 5_000_000)}),
        (
            "first_occurred_at",
            "record_detection",
            (),
            {"method": "alert", "first_occurred_at": Ago(timedelta(hours=1), None)},
        ),
        ("method", "record_detection", (), {"method": "alert\u2028"}),
        ("item", "amend", ("why:1\u202e", "x"), {"reason": "typo"}),
        ("value", "amend", ("why:1", "a\ud800"), {"reason": "typo"}),
        ("reason", "retract", ("why:1",), {"reason": _Long("r" * 5_000_000)}),
        ("owner", "reassign_action_item", (1,), {"owner": "a\u2028b"}),
        ("due", "redate_action_item", (1,), {"due": 10**30}),
        ("reason", "decline_action_item", (1,), {"reason": "\udfff"}),
        ("ref", "link_action_item", (1, "OPS\u202e-1"), {}),
        ("type", "change_type", ("security\u202e",), {"reason": "scope"}),
        ("kind", "add_reference", ("alert\u2066", "fp-1"), {}),
        ("value", "add_reference", ("alert", "fp\ud800"), {}),
        ("role", "assign_role", ("scribe\u2028", "bob"), {}),
        ("person", "assign_role", ("scribe", "\u202ebob"), {}),
        ("audience", "post_update", ("internal\u202e", "x"), {}),
        ("text", "post_update", ("internal", _Long("u" * 5_000_000)), {}),
    )
)


def _declare_hostile(field: str, value: object) -> Hostile:
    kwargs: dict[str, object] = {"severity": "P2", "commander": "alice", "actor": "alice"}
    if field == "title":
        return Hostile(field, "declare", (value,), kwargs, on_incident=False, strict=True)
    return Hostile(
        field,
        "declare",
        ("Checkout returns 500",),
        {**kwargs, field: value},
        on_incident=False,
        strict=True,
    )


def _note_hostile(field: str, value: object) -> Hostile:
    if field == "text":
        return Hostile(field, "add_note", (value,), {"actor": "alice"}, strict=True)
    kwargs = {"actor": "alice", field: value}
    return Hostile(field, "add_note", ("Customer support informed",), kwargs, strict=True)


one_line_hostile = st.sampled_from((*HOSTILE_TEXTS, *NOT_ONE_LINE))
hostile_inputs = st.one_of(
    st.builds(
        _declare_hostile,
        st.sampled_from(["title", "commander", "actor", "slug", "idempotency_key"]),
        one_line_hostile,
    ),
    st.builds(_note_hostile, st.just("text"), st.sampled_from(HOSTILE_TEXTS)),
    st.builds(_note_hostile, st.sampled_from(["actor", "idempotency_key"]), one_line_hostile),
    st.sampled_from(HOSTILE_CALLS),
    st.builds(
        lambda reader, bad: Hostile("incident_id", reader, (bad,), on_incident=False, strict=True),
        st.sampled_from(["get", "history", "verify", "deadlines"]),
        st.sampled_from(
            ["INC-\ud800", "INC-\u202e", "INC-\u2028-x", _Long("I" * 1_000_000), 10**30, b"INC"]
        ),
    ),
    # Page sizes and outbox calls: whole numbers a store can hold, ids that are text.
    st.builds(
        lambda query, limit: Hostile("limit", query, (), {"limit": limit}, False, True),
        st.sampled_from(["list", "summaries"]),
        st.sampled_from(HUGE_LIMITS),
    ),
    st.builds(
        lambda limit: Hostile("limit", "dead_letters", (limit,), on_incident=False, strict=True),
        st.sampled_from([0, -1, True, "5", None, 1.5, *HUGE_LIMITS]),
    ),
    st.builds(
        lambda ids: Hostile("ids", "redrive", (ids,), on_incident=False, strict=True),
        st.sampled_from([5, b"x", ["\ud800"], [5], "not-a-list", [["x"]], {"a": 1}]),
    ),
)


# -- what the invariants read off a history ------------------------------------


def _participants(history: Sequence[Event]) -> set[str]:
    """Everyone who took part in ``history``: actors, commanders, users, action-item owners.

    The post-mortem's own authors are left out: writing it is not taking part in the response.
    """
    people = set()
    for event in history:
        if event.type not in ("postmortem_drafted", "postmortem_completed"):
            people.add(event.actor)
        for field in ("commander", "user", "owner", "person"):
            value = getattr(event.data, field, None)
            if isinstance(value, str):
                people.add(value)
    return people


def _is_utc(when: object) -> bool:
    return (
        isinstance(when, datetime) and when.tzinfo is not None and when.utcoffset() == timedelta(0)
    )


def _live(records: Sequence[Any]) -> int:
    """How many of ``records`` are live (not retracted): what the guards count."""
    return sum(1 for record in records if record.retracted is None)


def _correction(inc: Incident, data: st.DataObject) -> tuple[str, dict[str, Any]]:
    """A valid amend or retract of something ``inc`` holds (a note when it holds nothing)."""
    numbered = [
        f"{kind}:{n}"
        for kind, records in (
            ("why", inc.whys),
            ("evidence", inc.evidence),
            ("containment", inc.containment),
            ("action_item", inc.action_items),
        )
        for n, record in enumerate(records, 1)
        if record.retracted is None
    ]
    numbered += [f"triage:{a.question}" for a in inc.triage_answers if a.retracted is None]
    parts = []
    if inc.root_cause is not None:
        parts += ["root_cause:statement", "root_cause:process_gap"]
    if inc.fix is not None:
        parts += ["fix:description", "fix:test"]
    if inc.postmortem is not None:
        parts += ["postmortem:summary", "postmortem:went_well", "postmortem:went_poorly"]
    if not numbered and not parts:
        return "add_note", {"text": "nothing to correct yet"}
    if numbered and data.draw(st.integers(1, 3), label="retract?") == 1:
        item = data.draw(st.sampled_from(numbered), label="item")
        return "retract", {"item": item, "reason": "recorded in error"}
    item = data.draw(st.sampled_from(numbered + parts), label="item")
    value: object = data.draw(st.sampled_from(GOOD_TEXTS), label="value")
    if item.startswith("postmortem:"):
        pm_text = st.sampled_from(POSTMORTEM_TEXTS)
        many = item.endswith(("went_well", "went_poorly"))
        value = data.draw(st.lists(pm_text, min_size=1, max_size=2) if many else pm_text)
    return "amend", {"item": item, "value": value, "reason": "a typo"}


def _coordination(inc: Incident, policy: Policy, data: st.DataObject) -> tuple[str, dict[str, Any]]:
    """A valid role change, status update, label, reference or type change."""
    kinds = ["post_update", "assign_role", "set_labels", "add_reference", "change_type"]
    held = [role for role in inc.roles if role != "commander"]
    if held:
        kinds.append("release_role")
    kind = data.draw(st.sampled_from(kinds), label="coordinate")
    if kind == "post_update":
        args: dict[str, Any] = {
            "audience": data.draw(st.sampled_from(["internal", "external"]), label="audience"),
            "text": "Investigating; next update soon",
        }
        if data.draw(st.booleans(), label="promise"):
            args["next_update_in"] = timedelta(minutes=20)
        return kind, args
    if kind == "assign_role":
        role = data.draw(st.sampled_from(policy.roles), label="role")
        holder = inc.roles.get(role)
        person = data.draw(st.sampled_from([n for n in NAMES if n != holder]), label="person")
        return kind, {"role": role, "person": person, "note": "handover"}
    if kind == "release_role":
        return kind, {"role": data.draw(st.sampled_from(held), label="role"), "note": "done"}
    if kind == "set_labels":
        service = data.draw(st.sampled_from(["checkout", "search"]), label="service")
        return kind, {"labels": {"service": service}}
    if kind == "add_reference":
        value = data.draw(st.sampled_from(["fp-1", "fp-2", "fp-3"]), label="fingerprint")
        return kind, {"kind": "alert", "value": value}
    others = [t for t in policy.incident_types if t != inc.type]
    return kind, {"type": data.draw(st.sampled_from(others), label="type"), "reason": "scope"}


def _follow_up(inc: Incident, now: datetime, data: st.DataObject) -> tuple[str, dict[str, Any]]:
    """A valid follow-up on one of ``inc``'s action items (refused if it is closed)."""
    number = data.draw(st.sampled_from([a.number for a in inc.action_items]), label="number")
    kind = data.draw(
        st.sampled_from(
            [
                "complete_action_item",
                "reassign_action_item",
                "redate_action_item",
                "decline_action_item",
                "link_action_item",
            ]
        ),
        label="follow-up",
    )
    if kind == "reassign_action_item":
        return kind, {"number": number, "owner": data.draw(names, label="owner")}
    if kind == "redate_action_item":
        days = data.draw(st.integers(1, 60), label="days")
        return kind, {"number": number, "due": now.date() + timedelta(days=days)}
    if kind == "decline_action_item":
        return kind, {"number": number, "reason": "accepted risk"}
    if kind == "link_action_item":
        return kind, {"number": number, "ref": f"OPS-{number}"}
    return kind, {"number": number}


class IncidentMachine(RuleBasedStateMachine):
    """Drives all commands at random, biased toward the happy path, on up to four incidents."""

    incidents = Bundle("incidents")

    def __init__(self) -> None:
        super().__init__()
        self.flow: IncidentFlow | None = None
        self.clock = FrozenClock(datetime(2026, 11, 27, 14, 0, tzinfo=UTC))
        self.policy = Policy()
        self.ids: list[str] = []
        self._seen: dict[str, tuple[Incident, tuple[Event, ...]]] | None = None
        self._passed: dict[str, set[tuple[str, int, int]]] = {}
        self._histories: dict[str, tuple[Event, ...]] = {}

    # -- the call wrapper: invariants 9 and 10 -----------------------------

    def _world(self) -> dict[str, tuple[Incident, tuple[Event, ...]]]:
        """Every incident in the store: its snapshot and its history."""
        assert self.flow is not None
        ids = set(self.ids) | {inc.id for inc in self.flow.list()}
        return {i: (self.flow.get(i), tuple(self.flow.history(i))) for i in sorted(ids)}

    def _call(
        self, command: str, *args: Any, must_refuse: str | None = None, **kwargs: Any
    ) -> Incident | None:
        """Run one facade command; an IncidentFlowError must leave every incident untouched.

        Any other exception escapes and fails the test. With ``must_refuse`` (why
        the call is hostile) the call must be refused.
        """
        assert self.flow is not None
        if isinstance(kwargs.get("expected_version"), Version):
            target = args[0] if args else None
            current = self.flow.get(target).version if target in self.ids else 1
            kwargs["expected_version"] = current + kwargs["expected_version"].offset
        before = self._world()
        self._seen = None
        try:
            result = getattr(self.flow, command)(*args, **kwargs)
        except IncidentFlowError:
            self._seen = self._world()
            assert self._seen == before, f"a refused {command} changed the store"
            return None
        assert must_refuse is None, f"{command} accepted {must_refuse}"
        assert isinstance(result, Incident)
        if "idempotency_key" not in kwargs:  # an idempotent replay returns the first result
            assert result == self.flow.get(result.id)
        self._seen = self._world()
        for other, entry in before.items():
            if other != result.id:
                assert self._seen[other] == entry, f"{command} on {result.id} changed {other}"
        return result

    def _refuse(
        self, fields: tuple[str, ...], command: str, *args: Any, **kwargs: Any
    ) -> IncidentFlowError:
        """Run a command with hostile input in one of ``fields``: refused, nothing changed.

        A ValidationError must name one of ``fields``; the refusal may also come
        first from the state or the incident id, which are checked independently.
        """
        assert self.flow is not None
        before = self._world()
        self._seen = None
        refusal: IncidentFlowError | None = None
        try:
            getattr(self.flow, command)(*args, **kwargs)
        except IncidentFlowError as exc:
            refusal = exc
        assert refusal is not None, f"{command} accepted hostile {fields}"
        str(refusal).encode("utf-8")  # the message itself can be printed or logged
        self._seen = self._world()
        assert self._seen == before, f"a refused {command} changed the store"
        if isinstance(refusal, ValidationError):
            named = refusal.field.partition("[")[0].partition(".")[0]  # value[0], labels.team
            assert named in fields, f"{command}: refused {refusal.field!r}, not {fields}"
            assert len(str(refusal)) < 1000, f"{command}: the message echoes the input"
        return refusal

    def _now(self) -> datetime:
        return self.clock()

    # -- set-up ---------------------------------------------------------------

    @initialize(
        target=incidents,
        start=st.datetimes(
            min_value=datetime(2000, 1, 1),
            max_value=datetime(2090, 12, 31),
            timezones=st.sampled_from(OFFSETS),
        ),
        blame_check=st.sampled_from(list(BlameCheck)),
        confirmer_must_differ=st.booleans(),
        postmortem_severities=st.sets(st.sampled_from([Severity.P3, Severity.P4])),
        lighter=st.sets(st.sampled_from([Severity.P3, Severity.P4])),
        comms_before_contain=st.booleans(),
        extra_questions=st.booleans(),
        cadence=st.sampled_from([None, timedelta(minutes=30)]),
        title=one_line,
        severity=st.sampled_from(Severity),
        commander=names,
    )
    def open_flow(
        self,
        start: datetime,
        blame_check: BlameCheck,
        confirmer_must_differ: bool,
        postmortem_severities: set[Severity],
        lighter: set[Severity],
        comms_before_contain: bool,
        extra_questions: bool,
        cadence: timedelta | None,
        title: str,
        severity: Severity,
        commander: str,
    ) -> object:
        """An in-memory flow on a frozen clock, under a policy drawn per run, with one incident.

        The policy may lighten P3/P4 (no staging, no watch window, no action items), require
        a communications lead before a P1 is contained, add triage questions (one optional,
        one required for security incidents, which also need a post-mortem) and set an
        update cadence; it can never loosen the seed's hard rules.
        """
        self.clock = FrozenClock(start)
        # No action items only where no post-mortem can be required (a hard rule).
        severities = {
            level: ProcessOverride(
                staging_required=False,
                watch_window=timedelta(0),
                min_action_items=None if extra_questions or level in postmortem_severities else 0,
            )
            for level in lighter
        }
        if comms_before_contain:
            severities[Severity.P1] = ProcessOverride(required_roles={"contain": (COMMS,)})
        types = {}
        if extra_questions:
            types["security"] = ProcessOverride(
                triage_questions=("attack_vector",), postmortem_required=True
            )
        self.policy = Policy(
            blame_check=blame_check,
            confirmer_must_differ=confirmer_must_differ,
            postmortem_severities=HIGH | postmortem_severities,
            watch_window=WATCH_WINDOW,
            severities=severities,
            types=types,
            triage_questions=("customer_impact",) if extra_questions else (),
            update_cadence=cadence,
        )
        self.flow = IncidentFlow.in_memory(clock=self.clock, policy=self.policy)
        return self._declare(title, severity=severity, commander=commander, actor=commander)

    def _declare(self, title: object, **kwargs: Any) -> object:
        inc = self._call("declare", title, **kwargs)
        if inc is None or inc.id in self.ids:
            return multiple()
        self.ids.append(inc.id)
        return inc.id

    @precondition(lambda self: len(self.ids) < MAX_INCIDENTS)
    @rule(
        target=incidents,
        title=one_line,
        severity=st.sampled_from(["P1", "p2", " P3 ", "P4", *Severity]),
        type=st.sampled_from([None, "availability", "security", "data"]),
        commander=names,
        actor=names,
    )
    def declare_valid(
        self, title: str, severity: object, type: str | None, commander: str, actor: str
    ) -> object:
        """Valid declarations, including a repeated title, each create a new incident."""
        return self._declare(title, severity=severity, type=type, commander=commander, actor=actor)

    # -- time -----------------------------------------------------------------

    @rule(step=clock_steps)
    def advance_clock(self, step: timedelta) -> None:
        """Time moves forward, so the watch window and due dates sometimes pass."""
        self.clock.advance(step)

    # -- the happy path, so that deep states are reached often -----------------

    def _next_step(self, inc: Incident, data: st.DataObject) -> tuple[str, dict[str, Any]]:
        """The command (with valid arguments) that moves ``inc`` along the main path."""

        def text(label: str) -> str:
            # Fixed per step rather than drawn: fewer draws make failures shrink much faster.
            return GOOD_TEXTS[(inc.version + len(label)) % len(GOOD_TEXTS)]

        state = inc.state
        process = self.policy.process_of(inc)
        if state is State.DECLARED:
            # Responders take a while to acknowledge, so later times can be backdated.
            self.clock.advance(data.draw(st.sampled_from(RESPONSE_TIMES), label="response"))
            return "start_triage", {}
        if state is State.TRIAGING:
            missing = [q for q in process.required_triage_answers if q not in inc.triage]
            vacant = [r for r in process.required_roles.get("contain", ()) if r not in inc.roles]
            if not _live(inc.evidence):
                return "add_evidence", {"source": "journalctl", "content": text("content")}
            if missing:
                return "answer_triage", {"question": missing[0], "answer": text("answer")}
            if not _live(inc.containment):
                return "record_containment", {"description": text("containment")}
            if vacant:
                return "assign_role", {"role": vacant[0], "person": data.draw(names, label="lead")}
            return "contain", {}
        if state is State.CONTAINED:
            return "start_rca", {}
        if state is State.RCA:
            if not _live(inc.whys):
                return "add_why", {"answer": text("why")}
            if inc.root_cause is None:
                return "set_root_cause", {
                    "statement": text("statement"),
                    "process_gap": text("gap"),
                }
            if inc.fix is None or (process.staging_required and not inc.fix.staging_verified):
                return "record_fix", {
                    "description": text("fix"),
                    "test": "test_checkout_survives_restart",
                    "staging_verified": process.staging_required or data.draw(st.booleans()),
                }
            if not inc.deploys:
                return "record_deploy", {"ref": "v1.2.3"}
            return "mark_fixed", {}
        if state is State.FIXED:
            confirmation = inc.confirmation
            if (
                confirmation is None
                or not confirmation.positive
                or (self.policy.confirmer_must_differ and confirmation.user == inc.commander)
            ):
                others = [n for n in NAMES if n != inc.commander]
                return "confirm_by_user", {"user": data.draw(st.sampled_from(others), label="user")}
            self.clock.advance(data.draw(clock_steps, label="wait"))
            return "resolve", {}
        if state is State.RESOLVED:
            # A post-mortem that is not required is sometimes written anyway: then it too
            # needs a live action item, whatever the policy's minimum.
            write_one = inc.postmortem_required or data.draw(st.booleans(), label="optional pm")
            needed = max(process.min_action_items, 1 if write_one else 0)
            if _live(inc.action_items) < needed:
                return "add_action_item", {
                    "description": text("action"),
                    "owner": data.draw(names, label="owner"),
                    "due": self._now().date() + timedelta(days=7),
                }
            if write_one:
                return "complete_postmortem", {
                    "summary": data.draw(st.sampled_from(POSTMORTEM_TEXTS), label="summary"),
                    "root_cause": text("pm root cause"),
                    "went_well": [data.draw(st.sampled_from(POSTMORTEM_TEXTS), label="well")],
                    "went_poorly": [data.draw(st.sampled_from(POSTMORTEM_TEXTS), label="poorly")],
                }
        return "update_kb", {"symptom": text("symptom"), "early_signs": text("early signs")}

    def _detour(self, inc: Incident, data: st.DataObject) -> tuple[str, dict[str, Any]]:
        """A valid step off the main path: dismiss, reopen, a negative answer, a late deploy..."""
        now = self._now()
        others = [n for n in NAMES if n != inc.commander]
        kinds = ["assign_commander", "reclassify", "record_detection", "add_note"]
        kinds += ["correct", "coordinate", "coordinate"]
        if inc.action_items:
            kinds.append("follow_up")
        if inc.state in (State.DECLARED, State.TRIAGING):
            kinds.append("dismiss")
        if inc.state is State.RCA and inc.deploys:
            kinds += ["record_deploy"] * 3
        if inc.state is State.FIXED:
            kinds += ["confirm_by_user", "confirm_by_user"]
        if inc.state in (State.FIXED, State.RESOLVED):
            kinds += ["reopen", "draft_postmortem"]
        if inc.action_items:
            kinds.append("complete_action_item")
        kind = data.draw(st.sampled_from(kinds), label="detour")
        if kind == "assign_commander":
            return kind, {"commander": data.draw(st.sampled_from(others), label="commander")}
        if kind == "reclassify":
            return kind, {"severity": data.draw(st.sampled_from(Severity)), "reason": "scope"}
        if kind == "record_detection":
            return kind, {"method": "alert", "first_occurred_at": now - timedelta(days=1)}
        if kind == "add_note":
            return kind, {"text": "Customer support informed"}
        if kind == "dismiss":
            return kind, {"reason": "false alarm"}
        if kind == "record_deploy":
            # A deploy logged late: its time lies between the declaration and now.
            after = data.draw(st.timedeltas(timedelta(0), timedelta(hours=1)), label="logged late")
            return kind, {"deployed_at": min(now, inc.declared_at + after), "ref": "hotfix"}
        if kind == "confirm_by_user":
            user = data.draw(st.sampled_from([inc.commander, *others]), label="user")
            return kind, {"user": user, "positive": data.draw(st.booleans(), label="positive")}
        if kind == "reopen":
            return kind, {
                "reason": "it came back",
                "to": data.draw(st.sampled_from(["rca", "triaging"])),
            }
        if kind == "draft_postmortem":
            return kind, {"summary": "Checkout failed for 20 minutes"}
        if kind == "correct":
            return _correction(inc, data)
        if kind == "coordinate":
            return _coordination(inc, self.policy, data)
        if kind == "follow_up":
            return _follow_up(inc, now, data)
        numbers = [a.number for a in inc.action_items]
        return kind, {"number": data.draw(st.sampled_from(numbers), label="number")}

    def _drive(self, incident: str, steps: int, data: st.DataObject) -> None:
        assert self.flow is not None
        for _ in range(steps):
            inc = self.flow.get(incident)
            if inc.state.is_terminal:
                return
            odds = 6 if inc.state in (State.RCA, State.FIXED, State.RESOLVED) else 15
            if data.draw(st.integers(1, odds), label="roll") == 1:
                command, kwargs = self._detour(inc, data)
            else:
                command, kwargs = self._next_step(inc, data)
            actor = data.draw(names, label="actor")
            self._call(command, incident, actor=actor, **kwargs)

    @rule(incident=incidents, steps=st.integers(1, 20), data=st.data())
    def drive(self, incident: str, steps: int, data: st.DataObject) -> None:
        """Valid inputs for the next step of the path move incidents deep into the lifecycle."""
        self._drive(incident, steps, data)

    @rule(incident=incidents, steps=st.integers(1, 20), data=st.data())
    def drive_again(self, incident: str, steps: int, data: st.DataObject) -> None:
        """A second entry to the happy path, to weight rule choice toward deep states."""
        self._drive(incident, steps, data)

    @rule(incident=incidents, steps=st.integers(1, 20), data=st.data())
    def drive_on(self, incident: str, steps: int, data: st.DataObject) -> None:
        """A third entry to the happy path, to weight rule choice toward deep states."""
        self._drive(incident, steps, data)

    # -- every command, with generated inputs ----------------------------------

    incident_ids = st.one_of(incidents, incidents, st.sampled_from(BAD_IDS))

    @precondition(lambda self: len(self.ids) < MAX_INCIDENTS)
    @rule(
        target=incidents,
        title=st.one_of(good_text, texts, st.just(_Long("t" * 10_000_000))),
        severity=severities,
        commander=any_names,
        actor=any_names,
        slug=st.one_of(
            st.none(),
            st.none(),
            st.sampled_from(["db-down", "../../etc/passwd", "nul\x00", "a" * 500, "Upper", 3]),
        ),
        opts=options,
    )
    def declare(
        self,
        title: object,
        severity: object,
        commander: object,
        actor: object,
        slug: object,
        opts: dict[str, Any],
    ) -> object:
        """Declaring takes any input and either creates one incident or changes nothing."""
        opts = {k: v for k, v in opts.items() if k != "expected_version"}
        return self._declare(
            title, severity=severity, commander=commander, actor=actor, slug=slug, **opts
        )

    @rule(incident=incident_ids, actor=any_names, opts=options)
    def start_triage(self, incident: object, actor: object, opts: dict[str, Any]) -> None:
        """Starting triage is accepted only from declared."""
        self._call("start_triage", incident, actor=actor, **opts)

    @rule(
        incident=incident_ids,
        source=any_names,
        content=st.one_of(texts, st.just(_Long("e" * 1_000_001))),
        actor=any_names,
        opts=options,
    )
    def add_evidence(
        self, incident: object, source: object, content: object, actor: object, opts: dict
    ) -> None:
        """Evidence of any shape is recorded or refused without a trace."""
        self._call("add_evidence", incident, source=source, content=content, actor=actor, **opts)

    @rule(
        incident=incident_ids,
        question=st.sampled_from(
            ["symptom", "started_at", "scope", "Symptom", "Started At", "impact", "", None, 3]
        ),
        answer=texts,
        actor=any_names,
        opts=options,
    )
    def answer_triage(
        self, incident: object, question: object, answer: object, actor: object, opts: dict
    ) -> None:
        """Triage answers of any shape are recorded or refused without a trace."""
        self._call("answer_triage", incident, question, answer, actor=actor, **opts)

    @rule(incident=incident_ids, description=texts, taken_at=times, actor=any_names, opts=options)
    def record_containment(
        self, incident: object, description: object, taken_at: object, actor: object, opts: dict
    ) -> None:
        """Containment actions at any time, aware or naive, are recorded or refused cleanly."""
        taken_at = _resolve(taken_at, self._now())
        self._call(
            "record_containment", incident, description, taken_at=taken_at, actor=actor, **opts
        )

    @rule(incident=incident_ids, actor=any_names, opts=options)
    def contain(self, incident: object, actor: object, opts: dict) -> None:
        """Containing is refused until evidence, triage answers and a containment action exist."""
        self._call("contain", incident, actor=actor, **opts)

    @rule(incident=incident_ids, actor=any_names, opts=options)
    def start_rca(self, incident: object, actor: object, opts: dict) -> None:
        """Root-cause analysis starts only from contained."""
        self._call("start_rca", incident, actor=actor, **opts)

    @rule(incident=incident_ids, answer=texts, actor=any_names, opts=options)
    def add_why(self, incident: object, answer: object, actor: object, opts: dict) -> None:
        """The 5-Whys chain grows by valid answers, at most five."""
        self._call("add_why", incident, answer, actor=actor, **opts)

    @rule(incident=incident_ids, statement=texts, gap=texts, actor=any_names, opts=options)
    def set_root_cause(
        self, incident: object, statement: object, gap: object, actor: object, opts: dict
    ) -> None:
        """A root cause needs a statement and a process gap."""
        self._call("set_root_cause", incident, statement, process_gap=gap, actor=actor, **opts)

    @rule(
        incident=incident_ids,
        description=texts,
        test=texts,
        staging=st.one_of(st.booleans(), st.sampled_from([1, "yes", None])),
        actor=any_names,
        opts=options,
    )
    def record_fix(
        self,
        incident: object,
        description: object,
        test: object,
        staging: object,
        actor: object,
        opts: dict,
    ) -> None:
        """A fix is recorded with its test and a real bool for staging, or refused cleanly."""
        self._call(
            "record_fix",
            incident,
            description,
            test=test,
            staging_verified=staging,
            actor=actor,
            **opts,
        )

    @rule(
        incident=incident_ids,
        deployed_at=times,
        ref=st.one_of(st.just(""), texts),
        actor=any_names,
        opts=options,
    )
    def record_deploy(
        self, incident: object, deployed_at: object, ref: object, actor: object, opts: dict
    ) -> None:
        """Deploys at any time, aware or naive, are recorded or refused cleanly."""
        deployed_at = _resolve(deployed_at, self._now())
        self._call("record_deploy", incident, deployed_at=deployed_at, ref=ref, actor=actor, **opts)

    @rule(incident=incident_ids, actor=any_names, opts=options)
    def mark_fixed(self, incident: object, actor: object, opts: dict) -> None:
        """Marking fixed needs the whys, a root cause, a verified fix and a deploy."""
        self._call("mark_fixed", incident, actor=actor, **opts)

    @rule(
        incident=incident_ids,
        who=st.sampled_from(["commander", "other", "junk"]),
        other=names,
        junk=st.sampled_from(BAD_NAMES),
        positive=st.one_of(st.booleans(), st.booleans(), st.sampled_from([None, 0, "no"])),
        comment=st.one_of(st.just(""), texts),
        actor=any_names,
        opts=options,
    )
    def confirm_by_user(
        self,
        incident: object,
        who: str,
        other: str,
        junk: object,
        positive: object,
        comment: object,
        actor: object,
        opts: dict,
    ) -> None:
        """User confirmations, positive or negative, by the commander or another, are recorded."""
        assert self.flow is not None
        user: object = junk
        if who == "other":
            user = other
        elif who == "commander":
            user = self.flow.get(incident).commander if incident in self.ids else other
        self._call(
            "confirm_by_user",
            incident,
            user=user,
            positive=positive,
            comment=comment,
            actor=actor,
            **opts,
        )

    @rule(incident=incident_ids, actor=any_names, opts=options)
    def resolve(self, incident: object, actor: object, opts: dict) -> None:
        """Resolving is refused without confirmation after the deploy and a full watch window."""
        self._call("resolve", incident, actor=actor, **opts)

    @rule(
        incident=incident_ids,
        summary=st.one_of(st.none(), postmortem_texts),
        root_cause=st.one_of(st.none(), postmortem_texts),
        went_well=postmortem_lists,
        went_poorly=postmortem_lists,
        actor=any_names,
        opts=options,
    )
    def draft_postmortem(
        self,
        incident: object,
        summary: object,
        root_cause: object,
        went_well: object,
        went_poorly: object,
        actor: object,
        opts: dict,
    ) -> None:
        """Post-mortem drafts of any shape are recorded or refused cleanly."""
        self._call(
            "draft_postmortem",
            incident,
            summary=summary,
            root_cause=root_cause,
            went_well=went_well,
            went_poorly=went_poorly,
            actor=actor,
            **opts,
        )

    @rule(
        incident=incident_ids,
        summary=st.one_of(st.none(), postmortem_texts),
        root_cause=st.one_of(st.none(), postmortem_texts),
        went_well=postmortem_lists,
        went_poorly=postmortem_lists,
        actor=any_names,
        opts=options,
    )
    def complete_postmortem(
        self,
        incident: object,
        summary: object,
        root_cause: object,
        went_well: object,
        went_poorly: object,
        actor: object,
        opts: dict,
    ) -> None:
        """Completing the post-mortem needs every section and an action item, and no blame."""
        self._call(
            "complete_postmortem",
            incident,
            summary=summary,
            root_cause=root_cause,
            went_well=went_well,
            went_poorly=went_poorly,
            actor=actor,
            **opts,
        )

    @rule(
        incident=incident_ids,
        description=texts,
        owner=any_names,
        due=due_dates,
        actor=any_names,
        opts=options,
    )
    def add_action_item(
        self,
        incident: object,
        description: object,
        owner: object,
        due: object,
        actor: object,
        opts: dict,
    ) -> None:
        """Action items need a description, an owner and a due date not before the declaration."""
        due = _resolve(due, self._now())
        self._call(
            "add_action_item", incident, description, owner=owner, due=due, actor=actor, **opts
        )

    @rule(
        incident=incident_ids,
        number=st.one_of(st.integers(-1, 4), st.sampled_from([True, "1", 1.0, None, 2**70])),
        actor=any_names,
        opts=options,
    )
    def complete_action_item(
        self, incident: object, number: object, actor: object, opts: dict
    ) -> None:
        """Only an existing, open action item can be completed."""
        self._call("complete_action_item", incident, number, actor=actor, **opts)

    @rule(
        incident=incident_ids,
        symptom=texts,
        early_signs=texts,
        root_cause=st.one_of(st.none(), texts),
        fix=st.one_of(st.none(), texts),
        actor=any_names,
        opts=options,
    )
    def update_kb(
        self,
        incident: object,
        symptom: object,
        early_signs: object,
        root_cause: object,
        fix: object,
        actor: object,
        opts: dict,
    ) -> None:
        """The KB is updated only after the post-mortem, or after resolution when none is due."""
        self._call(
            "update_kb",
            incident,
            symptom=symptom,
            early_signs=early_signs,
            root_cause=root_cause,
            fix=fix,
            actor=actor,
            **opts,
        )

    @rule(
        incident=incident_ids,
        reason=texts,
        to=st.sampled_from(["rca", "triaging", State.RCA, State.TRIAGING, "resolved", None]),
        actor=any_names,
        opts=options,
    )
    def reopen(
        self, incident: object, reason: object, to: object, actor: object, opts: dict
    ) -> None:
        """Reopening a fixed or resolved incident needs a reason and goes to triaging or rca."""
        self._call("reopen", incident, reason=reason, to=to, actor=actor, **opts)

    @rule(
        incident=incident_ids,
        reason=texts,
        duplicate_of=st.one_of(st.none(), incidents, st.sampled_from(BAD_IDS)),
        actor=any_names,
        opts=options,
    )
    def dismiss(
        self, incident: object, reason: object, duplicate_of: object, actor: object, opts: dict
    ) -> None:
        """Dismissing needs a reason and is allowed only before containment.

        A ``duplicate_of`` naming the incident itself, no incident, or junk is refused.
        """
        hostile = None
        if duplicate_of is not None and (duplicate_of == incident or duplicate_of not in self.ids):
            hostile = f"duplicate_of={duplicate_of!r}"
        self._call(
            "dismiss",
            incident,
            reason=reason,
            duplicate_of=duplicate_of,
            actor=actor,
            must_refuse=hostile,
            **opts,
        )

    @rule(incident=incident_ids, severity=severities, reason=texts, actor=any_names, opts=options)
    def reclassify(
        self, incident: object, severity: object, reason: object, actor: object, opts: dict
    ) -> None:
        """Reclassifying to a valid, different severity with a reason is recorded."""
        self._call("reclassify", incident, severity, reason=reason, actor=actor, **opts)

    @rule(incident=incident_ids, commander=any_names, actor=any_names, opts=options)
    def assign_commander(
        self, incident: object, commander: object, actor: object, opts: dict
    ) -> None:
        """The commander can be handed to another named person."""
        self._call("assign_commander", incident, commander, actor=actor, **opts)

    @rule(
        incident=incident_ids,
        method=st.sampled_from(
            ["alert", "user_report", "other", "alert", "pager", None, ["alert"]]
        ),
        first_occurred_at=times,
        detected_at=times,
        actor=any_names,
        opts=options,
    )
    def record_detection(
        self,
        incident: object,
        method: object,
        first_occurred_at: object,
        detected_at: object,
        actor: object,
        opts: dict,
    ) -> None:
        """Detection times in any form are recorded or refused cleanly."""
        now = self._now()
        self._call(
            "record_detection",
            incident,
            method=method,
            first_occurred_at=_resolve(first_occurred_at, now),
            detected_at=_resolve(detected_at, now),
            actor=actor,
            **opts,
        )

    @rule(incident=incident_ids, text=texts, actor=any_names, opts=options)
    def add_note(self, incident: object, text: object, actor: object, opts: dict) -> None:
        """Notes are accepted in every state, terminal ones included."""
        self._call("add_note", incident, text, actor=actor, **opts)

    # -- corrections, follow-ups, labels, roles and updates, with generated inputs ----
    # Two rules draw the arguments of the command they pick, so that adding commands
    # adds little to the cost of choosing a rule.

    @rule(
        incident=incident_ids,
        command=st.sampled_from(["amend", "amend", "retract"]),
        item=st.one_of(st.sampled_from(ITEMS), st.sampled_from(ITEMS), st.sampled_from(BAD_ITEMS)),
        data=st.data(),
    )
    def correct(self, incident: object, command: str, item: object, data: st.DataObject) -> None:
        """Amending or retracting any item, in any state, is recorded or refused cleanly."""
        args: dict[str, Any] = {"reason": data.draw(texts, label="reason")}
        if command == "amend":
            value = st.one_of(postmortem_texts, st.lists(postmortem_texts, max_size=2))
            args["value"] = data.draw(value, label="value")
        args["actor"] = data.draw(any_names, label="actor")
        self._call(command, incident, item, **args, **data.draw(options, label="options"))

    @rule(
        incident=incident_ids,
        command=st.sampled_from(
            [
                "reassign_action_item",
                "redate_action_item",
                "decline_action_item",
                "link_action_item",
                "change_type",
                "set_labels",
                "add_reference",
                "remove_reference",
                "assign_role",
                "release_role",
                "post_update",
                "post_update",
            ]
        ),
        data=st.data(),
    )
    def coordinate(self, incident: object, command: str, data: st.DataObject) -> None:
        """Follow-ups, type, labels, references, roles and updates of any shape, in any state.

        Each is recorded or refused (a reference another open incident holds too) cleanly.
        """
        draw = data.draw
        args: tuple[object, ...] = ()
        kwargs: dict[str, Any] = {}
        if command.endswith("action_item"):
            number = st.one_of(st.integers(1, 3), st.sampled_from([0, -1, True, "1", None, 2**63]))
            args = (draw(number, label="number"),)
            kwargs = {
                "reassign_action_item": lambda: {
                    "owner": draw(any_names),
                    "reason": draw(st.one_of(st.none(), texts)),
                },
                "redate_action_item": lambda: {"due": _resolve(draw(due_dates), self._now())},
                "decline_action_item": lambda: {"reason": draw(texts)},
                "link_action_item": lambda: {
                    "ref": draw(st.one_of(st.sampled_from(["OPS-1", "https://ex.com/2"]), texts))
                },
            }[command]()
        elif command == "change_type":
            kinds = ["availability", "security", "data", "performance", "outage", "", None, "Data"]
            args = (draw(st.sampled_from(kinds), label="type"),)
            kwargs = {"reason": draw(texts, label="reason")}
        elif command == "set_labels":
            keys = st.sampled_from(["service", "team", "", "a b"])
            values = st.one_of(one_line, st.sampled_from(["", "x\u202e", "checkout"]))
            labels = st.one_of(
                st.dictionaries(keys, values, max_size=2),
                st.sampled_from([None, "service=checkout", ["service"]]),
            )
            remove = st.one_of(
                st.just(()),
                st.lists(st.sampled_from(["service", "team", "region"]), max_size=2),
                st.sampled_from(["service", None, [3]]),
            )
            args = (draw(labels, label="labels"),)
            kwargs = {"remove": draw(remove, label="remove")}
        elif command.endswith("reference"):
            kind = st.sampled_from(["alert", "alert", "ticket", "", "Alert", "a b", None])
            value = st.one_of(st.sampled_from(["fp-1", "fp-2", "OPS-1"]), texts)
            args = (draw(kind, label="kind"), draw(value, label="value"))
        elif command.endswith("role"):
            roles = ["commander", COMMS, "operations_lead", "scribe", "deputy", "", None, "Scribe"]
            args = (draw(st.sampled_from(roles), label="role"),)
            if command == "assign_role":
                args += (draw(any_names, label="person"),)
            kwargs = {"note": draw(st.one_of(st.none(), texts), label="note")}
        else:
            audience = st.sampled_from(["internal", "external", "internal", "everyone", "", None])
            next_in = st.sampled_from(
                [None, None, timedelta(minutes=30), timedelta(0), timedelta(minutes=-1), 30, "3m"]
            )
            args = (draw(audience, label="audience"), draw(texts, label="text"))
            kwargs = {"next_update_in": draw(next_in, label="next_update_in")}
        kwargs["actor"] = draw(any_names, label="actor")
        self._call(command, incident, *args, **kwargs, **draw(options, label="options"))

    @rule(incident=incidents, data=st.data())
    def after_closure(self, incident: str, data: st.DataObject) -> None:
        """Valid corrections, follow-ups and labels, in every state, closed ones included."""
        assert self.flow is not None
        inc = self.flow.get(incident)
        kind = data.draw(st.sampled_from(["correct", "follow_up", "labels"]), label="after")
        if kind == "follow_up" and inc.action_items:
            command, kwargs = _follow_up(inc, self._now(), data)
        elif kind == "labels":
            command, kwargs = "set_labels", {"labels": {"team": "payments"}}
        else:
            command, kwargs = _correction(inc, data)
        self._call(command, incident, actor=data.draw(names, label="actor"), **kwargs)

    @rule(incident=incident_ids, command=st.sampled_from([*COMMANDS, "declare"]))
    def ask_can(self, incident: object, command: str) -> None:
        """Asking whether a command is allowed answers with coded reasons and changes nothing."""
        assert self.flow is not None
        before = self._world()
        try:
            verdict = self.flow.can(incident, command)  # type: ignore[arg-type]
        except IncidentFlowError:
            pass
        else:
            assert verdict.allowed == (not verdict.reasons)
            for reason in verdict.reasons:
                assert isinstance(reason, Reason), reason
                assert reason.code, reason
                assert str(reason) == reason.message, reason
        assert self._world() == before

    @rule(
        incident=incidents,
        command=st.sampled_from(
            [
                *("fly", "", "_decide", "__init__", "contain\u202e", "\ud800"),
                *(["contain"], ("contain",), 5, None, b"contain", 1.5, {"x": 1}),
            ]
        ),
    )
    def ask_can_unknown(self, incident: str, command: object) -> None:
        """An unknown command is refused, naming the commands there are; junk names the field."""
        exc = self._refuse(("command",), "can", incident, command)
        if not isinstance(command, str):
            assert isinstance(exc, ValidationError), repr(exc)
            return
        assert isinstance(exc, (InvalidTransition, ValidationError)), repr(exc)
        if isinstance(exc, InvalidTransition):
            assert "add_note" in str(exc), f"the refusal names no known command: {exc}"

    @rule(incident=incidents, hostile=hostile_inputs)
    def hostile_input(self, incident: str, hostile: Hostile) -> None:
        """Hostile input is refused with an IncidentFlowError and changes nothing."""
        now = self._now()
        args = (incident, *hostile.args) if hostile.on_incident else hostile.args
        kwargs = {key: _resolve(value, now) for key, value in hostile.kwargs.items()}
        if hostile.on_incident and "actor" not in kwargs:
            kwargs["actor"] = "alice"
        exc = self._refuse((hostile.field,), hostile.command, *args, **kwargs)
        if hostile.strict:
            assert isinstance(exc, ValidationError), repr(exc)

    @rule(
        query=st.sampled_from(["list", "summaries"]),
        limit=st.one_of(st.none(), st.integers(1, 5), st.sampled_from([0, -1, True, "5", 1.5])),
        offset=st.one_of(st.integers(0, 5), st.sampled_from([-1, True, "0", 1.0, *HUGE_INTS])),
    )
    def query_numbers(self, query: str, limit: object, offset: object) -> None:
        """A page is asked for with whole numbers a store can hold, or refused."""
        assert self.flow is not None
        before = self._world()
        refused = ""
        try:
            found = getattr(self.flow, query)(limit=limit, offset=offset)
        except ValidationError as exc:
            refused = exc.field
        assert self._world() == before
        if refused:
            assert refused in ("limit", "offset"), refused
            return
        assert limit is None or _whole(limit, 1), f"{query} accepted limit={limit!r}"
        assert _whole(offset, 0), f"{query} accepted offset={offset!r}"
        assert len(found) <= len(before)

    # -- links and merges: two commits, on two incidents ---------------------------

    def _relate(self, command: str, incident: object, partner: object, **kwargs: Any) -> Any:
        """Run link, unlink or merge: a refusal changes nothing; else only the two incidents."""
        assert self.flow is not None
        before = self._world()
        self._seen = None
        try:
            result = getattr(self.flow, command)(incident, **kwargs)
        except IncidentFlowError:
            self._seen = self._world()
            assert self._seen == before, f"a refused {command} changed the store"
            return None
        self._seen = self._world()
        for each, entry in before.items():
            if each not in (incident, partner):
                assert self._seen[each] == entry, f"{command} {incident} {partner} changed {each}"
        return result

    @rule(
        incident=incident_ids,
        kind=st.sampled_from(sorted(LINK_KINDS)),
        other=incident_ids,
        actor=names,
    )
    def link(self, incident: object, kind: str, other: object, actor: str) -> None:
        """A link is recorded here and its inverse there; itself or no incident is refused."""
        result = self._relate("link", incident, other, kind=kind, other=other, actor=actor)
        if result is None:
            return
        assert incident in self.ids, f"linked the unknown {incident!r}"
        assert other in self.ids, f"linked to the unknown {other!r}"
        assert other != incident, "linked to itself"
        assert any((x.kind, x.other) == (kind, other) for x in result.links)

    @rule(incident=incidents, data=st.data(), actor=names)
    def unlink(self, incident: str, data: st.DataObject, actor: str) -> None:
        """Unlinking removes a link from both incidents; a link that is not there is refused."""
        assert self.flow is not None
        links = self.flow.get(incident).links
        if links and data.draw(st.booleans(), label="existing"):
            chosen = data.draw(st.sampled_from(list(links)), label="link")
            kind, other = chosen.kind, chosen.other
        else:
            kind = data.draw(st.sampled_from(sorted(LINK_KINDS)), label="kind")
            other = data.draw(st.sampled_from(self.ids), label="other")
        known = any((x.kind, x.other) == (kind, other) for x in links)
        result = self._relate("unlink", incident, other, kind=kind, other=other, actor=actor)
        assert (result is not None) == known, f"unlink {kind} {other}: linked={known}"

    @rule(incident=incident_ids, into=incident_ids, reason=one_line, actor=names)
    def merge(self, incident: object, into: object, reason: str, actor: str) -> None:
        """A merged duplicate is dismissed as "merged into X"; its references are X's now."""
        assert self.flow is not None
        before = self.flow.get(incident) if incident in self.ids else None  # type: ignore[arg-type]
        result = self._relate("merge", incident, into, into=into, reason=reason, actor=actor)
        if result is None:
            return
        assert before is not None
        assert before.is_open, f"merged {before.id} while {before.state.value}"
        assert result.state is State.DISMISSED
        assert result.dismissal_reason == f"merged into {into}: {reason.strip()}"
        assert not result.references
        assert set(before.references) <= set(self.flow.get(into).references)  # type: ignore[arg-type]

    @rule(incident=incidents, actor=names)
    def resolve_a_parent(self, incident: str, actor: str) -> None:
        """A parent is never resolved while one of its children is open."""
        assert self.flow is not None
        inc = self.flow.get(incident)
        open_children = [
            x.other for x in inc.links if x.kind == "parent_of" and self.flow.get(x.other).is_open
        ]
        resolved = self._call("resolve", incident, actor=actor)
        assert resolved is None or not open_children, f"{incident} resolved with {open_children}"

    @invariant()
    def links_are_mutual(self) -> None:
        """Every link has its inverse on the other incident."""
        if self.flow is None:
            return
        if self._seen is None:
            self._seen = self._world()
        world = {i: inc for i, (inc, _) in self._seen.items()}
        for inc in world.values():
            for x in inc.links:
                inverse = (LINK_KINDS[x.kind], inc.id)
                assert inverse in {(y.kind, y.other) for y in world[x.other].links}, (
                    f"{inc.id} {x.kind} {x.other} has no inverse"
                )

    # -- invariants, read off histories and snapshots ----------------------------

    def _incidents(self, check: str) -> Iterator[tuple[Incident, tuple[Event, ...]]]:
        """Each incident ``check`` has not yet passed at its current version.

        _call and _refuse assert that a refused command changes nothing and a command
        changes only its own incident, so a version that passed once passes again.
        """
        if self.flow is None:
            return
        if self._seen is None:  # read the store once per step, not once per invariant
            self._seen = self._world()
        passed = self._passed.setdefault(check, set())
        for inc, history in self._seen.values():
            key = (inc.id, inc.version, len(history))
            if key not in passed:
                yield inc, history
                passed.add(key)  # reached only when the check's loop body did not fail

    @invariant()
    def contain_before_rca(self) -> None:
        """Rule 1: every rca_started follows a containment action: contain, then diagnose."""
        for inc, history in self._incidents("contain_before_rca"):
            contained = False
            for event in history:
                if event.type == "containment_recorded":
                    contained = True
                if event.type == "rca_started":
                    assert contained, f"{inc.id}: rca started at seq {event.seq} before containment"
            if inc.state in PAST_TRIAGE:
                assert _live(inc.containment), f"{inc.id} is {inc.state.value}, nothing contained"

    @invariant()
    def resolved_only_after_confirmation_and_watch(self) -> None:
        """Rule 2: resolving needs a positive confirmation by a non-commander and a full watch."""
        for inc, history in self._incidents("resolved_only_after_confirmation_and_watch"):
            commander = ""
            since_reopen: list[Event] = []
            for i, event in enumerate(history):
                data: Any = event.data
                if event.type in ("declared", "commander_assigned"):
                    commander = data.commander
                if event.type == "role_assigned" and data.role == "commander":
                    commander = data.person
                if event.type == "reopened":
                    since_reopen = []
                    continue
                if event.type == "resolved":
                    where = f"{inc.id} resolved at seq {event.seq}"
                    answers = [e for e in since_reopen if e.type == "user_confirmed"]
                    deploys: list[Any] = [
                        e.data for e in since_reopen if e.type == "deploy_recorded"
                    ]
                    assert answers, f"{where} without a user confirmation"
                    assert deploys, f"{where} without a deploy"
                    answer: Any = answers[-1].data
                    latest_deploy = max(d.deployed_at for d in deploys)
                    assert answer.positive, f"{where} after a negative confirmation"
                    if self.policy.confirmer_must_differ:
                        assert answer.user != commander, f"{where}: confirmed by the commander"
                    assert answers[-1].at >= latest_deploy, f"{where}: confirmed before the deploy"
                    watch = self.policy.process_of(replay(history[:i])).watch_window
                    assert event.at >= latest_deploy + watch, (
                        f"{where} at {event.at:%H:%M}, inside the watch window of the "
                        f"latest deploy at {latest_deploy:%H:%M}"
                    )
                since_reopen.append(event)

    @invariant()
    def postmortem_before_kb_when_severe(self) -> None:
        """Rule 3: a P1/P2 (or a post-mortem type) reaches kb_updated only with one completed."""
        for inc, history in self._incidents("postmortem_before_kb_when_severe"):
            if inc.state is not State.KB_UPDATED:
                continue
            if inc.severity in HIGH | self.policy.postmortem_severities or inc.postmortem_required:
                assert any(e.type == "postmortem_completed" for e in history), inc.id
                assert inc.postmortem is not None
                assert inc.postmortem.completed, inc.id

    @invariant()
    def action_items_where_a_postmortem_is_written(self) -> None:
        """Rule 4: a completed post-mortem has a live action item; kb_updated has the minimum."""
        for inc, history in self._incidents("action_items_where_a_postmortem_is_written"):
            live = _live(inc.action_items)
            if any(e.type == "postmortem_completed" for e in history):
                assert live >= 1, f"{inc.id}: a post-mortem without a live action item"
            if inc.state is State.KB_UPDATED:
                minimum = self.policy.process_of(inc).min_action_items
                assert live >= minimum, f"{inc.id}: closed with {live} of {minimum} action items"

    @invariant()
    def no_blame_in_postmortems(self) -> None:
        """Rule 5: blame in a completed post-mortem is rejected or warned about, as policy says."""
        if self.policy.blame_check is BlameCheck.OFF:
            return
        for inc, history in self._incidents("no_blame_in_postmortems"):
            for i, event in enumerate(history):
                if event.type != "postmortem_completed":
                    continue
                pm = replay(history[: i + 1]).postmortem
                assert pm is not None
                body = "\n".join([pm.summary, pm.root_cause, *pm.went_well, *pm.went_poorly])
                blame = find_blame(body, _participants(history[:i]))
                if self.policy.blame_check is BlameCheck.REJECT:
                    assert not blame, f"{inc.id}: post-mortem completed with blame {blame}"
                else:
                    warnings = event.data.blame_warnings  # type: ignore[attr-defined]
                    assert set(blame) <= set(warnings), (
                        f"{inc.id}: blame {blame} not among the warnings {warnings}"
                    )
            self._no_blame_in_amendments(inc, history)

    def _no_blame_in_amendments(self, inc: Incident, history: tuple[Event, ...]) -> None:
        """Rule 5 after completion: an amendment of the post-mortem is checked for blame too."""
        completed = False
        for i, event in enumerate(history):
            completed = completed or event.type == "postmortem_completed"
            data: Any = event.data
            if not completed or event.type != "amended" or not data.item.startswith("postmortem:"):
                continue
            pm = replay(history[: i + 1]).postmortem
            assert pm is not None
            body = "\n".join([pm.summary, pm.root_cause, *pm.went_well, *pm.went_poorly])
            blame = find_blame(body, _participants(history[:i]))
            where = f"{inc.id} seq {event.seq}"
            if self.policy.blame_check is BlameCheck.REJECT:
                assert not blame, f"{where}: post-mortem amended to blame {blame}"
            else:
                assert set(blame) <= set(data.blame_warnings), f"{where}: blame {blame} unwarned"
                assert pm.blame_warnings == data.blame_warnings, where

    @invariant()
    def terminal_states_absorb(self) -> None:
        """Rule 6: once closed, only notes, follow-ups, corrections and labels; the state holds."""
        for inc, history in self._incidents("terminal_states_absorb"):
            for i, event in enumerate(history):
                if event.type in TERMINAL_EVENTS:
                    later = {e.type for e in history[i + 1 :]} - AFTER_CLOSURE
                    assert not later, f"{inc.id}: {later} after {event.type}"
                    assert inc.state is TERMINAL_EVENTS[event.type]
                    break

    @invariant()
    def corrections_never_erase_history(self) -> None:
        """The history only grows: every event once read is still there, unchanged."""
        for inc, history in self._incidents("corrections_never_erase_history"):
            earlier = self._histories.get(inc.id, ())
            assert history[: len(earlier)] == earlier, f"{inc.id}: an earlier event changed"
            self._histories[inc.id] = history

    @invariant()
    def replay_gives_snapshot(self) -> None:
        """Replaying the history gives exactly the stored snapshot, and verify() agrees."""
        for inc, history in self._incidents("replay_gives_snapshot"):
            assert replay(history) == inc, inc.id
            assert self.flow is not None
            assert self.flow.verify(inc.id)

    @invariant()
    def envelopes_are_well_formed(self) -> None:
        """version == len(history), seq is 1..n, every time is aware UTC, every actor named."""
        for inc, history in self._incidents("envelopes_are_well_formed"):
            assert inc.version == len(history), inc.id
            assert [e.seq for e in history] == list(range(1, len(history) + 1)), inc.id
            assert history[0].type == "declared"
            for event in history:
                assert event.incident_id == inc.id
                assert _is_utc(event.at), f"{inc.id} seq {event.seq}: at={event.at!r}"
                assert isinstance(event.actor, str)
                assert event.actor.strip(), f"{inc.id} seq {event.seq}: no actor"
                for field in attrs.fields(type(event.data)):
                    value = getattr(event.data, field.name)
                    if isinstance(value, datetime):
                        assert _is_utc(value), f"{inc.id} seq {event.seq}: {field.name}={value!r}"
            times_ = [e.at for e in history]
            assert times_ == sorted(times_), f"{inc.id}: event times go backwards"


# Explicit settings, not a profile: a run in CI cannot end up with fewer examples.
# Thirty steps suffice: each drive rule runs up to twenty commands, so a third of the
# examples reach kb_updated; fifty steps cost 60% more time for few deeper sequences.
IncidentMachine.TestCase.settings = settings(
    max_examples=MAX_EXAMPLES,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLifecycle = IncidentMachine.TestCase


class TestLifecycleDerandomized:
    """The same machine on a fixed seed, so every run checks the same sequences."""

    def test_fixed_sequences_keep_the_rules(self) -> None:
        """Fifteen derandomised runs of forty steps break no invariant."""
        run_state_machine_as_test(
            IncidentMachine,
            settings=settings(
                derandomize=True,
                max_examples=15,
                stateful_step_count=40,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
