"""Export and import of whole histories, to move incidents between stores.

The format is JSON Lines: a header line ``{"format": "incidentflow-export",
"version": 1, ...}``, then every event of every exported incident, each
incident's events together and in order. Importing checks each history before
writing anything of it: well-formed events, seq 1..n, one declaration and only
first, an id that matches the declaration, and every command replayed through
the pure core under the importing flow's policy, so that a history is accepted
only if the live flow would have written it. Each history is written in one
commit, without notifications. An incident already stored with the same history
is left as it is; one stored with the start of the imported history is brought
up to date; one whose stored history goes on from the imported one (an older
export) is left as it is and reported as older; one stored with another
history is reported as a conflict and not touched.

Events are in commit order, which is their ``seq``: two hosts whose clocks
differ write times that may step back from one event to the next, and such a
history imports as it was written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import IO, TYPE_CHECKING

import attrs
from loguru import logger

from . import _events as ev
from . import _validate as v
from ._decide import decide, evolve, incident_id_for, replay
from ._model import Incident
from ._policy import Policy
from ._serialization import event_from_dict, event_to_dict, event_to_json
from .commands import definition, recorded_by
from .exceptions import (
    ConcurrencyConflict,
    DuplicateIncident,
    IncidentFlowError,
    InvalidTransition,
    TransitionRejected,
    ValidationError,
    _either,
)
from .stores._base import Commit

if TYPE_CHECKING:
    from ._flow import IncidentFlow

#: The ``format`` of an export's header line.
EXPORT_FORMAT = "incidentflow-export"
#: The export format version this release reads and writes.
EXPORT_VERSION = 1

#: How often an import looks again at an incident that another writer changed meanwhile.
_ATTEMPTS = 5
#: How far ahead of the importing clock an event may be dated (hosts' clocks differ).
FUTURE_TOLERANCE = timedelta(hours=1)


@attrs.frozen
class History:
    """One incident's whole history, read from an export."""

    incident_id: str
    events: tuple[ev.Event, ...]


@attrs.frozen
class ImportOutcome:
    """What an import did with each incident.

    Attributes:
        imported: Incidents that were not stored and now are.
        present: Incidents stored with exactly the imported history, left as they were.
        conflicts: Incidents stored with a history that is not the start of the
            imported one; they were not touched.
        extended: Incidents stored with the start of the imported history (the
            source moved on since an earlier import): the missing events were
            appended.
        older: Incidents stored with the whole imported history and more (the
            export is older than the store); left as they were.
        unwritten: Incidents imported or extended whose files (the Markdown
            incident file, the KB gotcha) could not be written. Their histories
            are stored all the same; the files are written again by the next
            command on the incident or by ``flow.render``.

    """

    imported: tuple[str, ...] = ()
    present: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    extended: tuple[str, ...] = ()
    unwritten: tuple[str, ...] = ()
    older: tuple[str, ...] = ()


def export_lines(flow: IncidentFlow, incident_ids: Iterable[str]) -> Iterator[str]:
    """The export of ``incident_ids``: the header line, then each one's events."""
    header = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "exported_at": flow.now()}
    yield json.dumps(header, default=lambda moment: moment.isoformat())
    for incident_id in incident_ids:
        for event in flow.history(incident_id):
            yield event_to_json(event)


def read_export(
    stream: IO[bytes] | IO[str],
    name: str,
    policy: Policy | None = None,
    *,
    now: datetime | None = None,
) -> list[History]:
    """Every history of an export, checked; ValidationError names the line at fault.

    Each history is replayed command by command through the pure core, as the
    live flow would have decided it under ``policy`` (the default policy when
    not given), at the time and by the actor its events record: a history the
    live flow would have refused at any step is refused, with the unmet guards.
    Given ``now`` (the importing flow's clock), an event dated more than
    :data:`FUTURE_TOLERANCE` after it is refused. :func:`iter_export` reads the
    same one history at a time.
    """
    return list(iter_export(stream, name, policy, now=now))


def iter_export(
    stream: IO[bytes] | IO[str],
    name: str,
    policy: Policy | None = None,
    *,
    now: datetime | None = None,
) -> Iterator[History]:
    """The histories of an export, each checked as :func:`read_export` checks them, in turn.

    Only one history is held at a time, so an export of any size is read in
    bounded memory. Each incident's events must stand together from its
    declaration, as ``export`` writes them; events that start again later are
    refused, naming the line.
    """
    latest = None if now is None else now + FUTURE_TOLERANCE
    checked_policy = policy if policy is not None else Policy()
    lines = _numbered(stream, name)
    first = next(lines, None)
    if first is None:
        raise ValidationError(name, "is empty; expected an incidentflow export")
    header = _json(name, *first)
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
        raise ValidationError(
            f"{name}:1", f"not an incidentflow export (no {EXPORT_FORMAT} header)"
        )
    version = header.get("version")
    if type(version) is not int or version != EXPORT_VERSION:
        raise ValidationError(
            f"{name}:1",
            f"export version {version!r} is not one this release reads "
            f"({EXPORT_VERSION}); import it with the release that wrote it",
        )
    events: list[tuple[int, ev.Event]] = []
    for number, line in lines:
        if not line.strip():
            continue
        where = f"{name}:{number}"
        event = _event(where, _json(name, number, line))
        if latest is not None and event.at > latest:
            raise ValidationError(
                where,
                f"{event.incident_id} event {event.seq} is dated {event.at.isoformat()}, "
                f"after now by more than {FUTURE_TOLERANCE}; check the writer's clock",
            )
        if events and event.incident_id != events[0][1].incident_id:
            yield _checked(name, events, checked_policy)
            events = []
        if not events and event.seq != 1:
            raise ValidationError(
                where,
                f"the events of {event.incident_id} start again here at seq {event.seq}; "
                "each history's events stand together from its declaration (export again)",
            )
        if event.seq != len(events) + 1:
            raise ValidationError(
                where,
                f"{event.incident_id} event seq {event.seq} follows seq {len(events)}; "
                "each history must run 1, 2, 3, ... without gaps",
            )
        events.append((number, event))
    if events:
        yield _checked(name, events, checked_policy)


def import_histories(flow: IncidentFlow, histories: Iterable[History]) -> ImportOutcome:
    """Write each history that is new or has moved on; report the rest.

    A history stored already is left as it is; one whose stored part is the
    start of it gets the missing events appended in one commit; one stored
    with another history is a conflict. Files that cannot be written do not
    undo a commit: the incident is listed in ``unwritten`` and the import goes on.
    """
    found: dict[str, list[str]] = {
        "imported": [],
        "present": [],
        "conflicts": [],
        "extended": [],
        "unwritten": [],
        "older": [],
    }
    for history in histories:
        outcome = _import_one(flow, history)
        found[outcome].append(history.incident_id)
        if outcome in ("imported", "extended") and not _rendered(flow, history.incident_id):
            found["unwritten"].append(history.incident_id)
    return ImportOutcome(**{key: tuple(ids) for key, ids in found.items()})


def _import_one(flow: IncidentFlow, history: History) -> str:
    """Store one history; which field of ImportOutcome lists it."""
    incident_id, events = history.incident_id, history.events
    attempts = 0
    while True:
        stored = tuple(flow.store.history(incident_id)) if flow.store.exists(incident_id) else ()
        if stored == events:
            return "present"
        if len(stored) > len(events) and stored[: len(events)] == events:
            return "older"
        if stored != events[: len(stored)]:
            return "conflicts"
        commit = Commit(incident_id, len(stored), events[len(stored) :], replay(events))
        try:
            flow.store.append(commit)
        except (ConcurrencyConflict, DuplicateIncident):
            attempts += 1
            if attempts == _ATTEMPTS:
                raise
            continue  # another writer changed it meanwhile: compare again
        return "extended" if stored else "imported"


def _rendered(flow: IncidentFlow, incident_id: str) -> bool:
    """Write the incident's files as a command would; False when they could not be written."""
    try:
        flow.render(incident_id)
    except (OSError, IncidentFlowError):
        # As after any commit: the history is stored, the files can be written later.
        logger.exception("could not write the files of {}", incident_id)
        return False
    return True


def _numbered(stream: IO[bytes] | IO[str], name: str) -> Iterator[tuple[int, str]]:
    """The lines of ``stream`` with their numbers; text that is not UTF-8 names its line."""
    lines: Iterable[bytes | str] = stream
    for number, line in enumerate(lines, start=1):
        if isinstance(line, str):
            yield number, line
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(f"{name}:{number}", "is not UTF-8 text") from None
        yield number, text


def _json(name: str, number: int, line: str) -> object:
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"{name}:{number}", f"not JSON: {exc}") from None


def _event(where: str, value: object) -> ev.Event:
    """The event a line holds, exactly as incidentflow writes events (types included)."""
    if not isinstance(value, dict):
        raise ValidationError(where, "not an event: expected a JSON object")
    try:
        event = event_from_dict(value)
        canonical = event_to_dict(event)
    except (IncidentFlowError, TypeError, ValueError, AttributeError) as exc:
        raise ValidationError(where, f"not an event: {exc}") from None
    # JSON's true is Python's 1, so compare the texts, which keep the types apart.
    if json.dumps(canonical, sort_keys=True) != json.dumps(value, sort_keys=True):
        differing = sorted(
            key
            for key in set(canonical) | set(value)
            if json.dumps(canonical.get(key), sort_keys=True)
            != json.dumps(value.get(key), sort_keys=True)
        )
        raise ValidationError(
            where, f"not an event as incidentflow writes it: check {', '.join(differing)}"
        )
    for field, number in (("seq", event.seq), ("schema_version", event.schema_version)):
        if type(number) is not int:  # a JSON true passes for 1 everywhere else
            raise ValidationError(where, f"{field} must be a whole number, got {number!r}")
    if not 1 <= event.schema_version <= ev.SCHEMA_VERSION:
        raise ValidationError(
            where,
            f"schema_version {event.schema_version} is not one this release reads "
            f"(1 to {ev.SCHEMA_VERSION}); import it with the release that wrote it",
        )
    key = event.idempotency_key
    if key is not None and not isinstance(key, str):
        raise ValidationError(
            f"{where}: idempotency_key", f"must be text or null, got {type(key).__name__}"
        )
    if key is not None:
        v.optional_key(f"{where}: idempotency_key", key)
    v.name(f"{where}: incident_id", event.incident_id)
    try:
        v.actor(event.actor)
    except ValidationError as exc:  # the check names only its field: add the file and line
        raise ValidationError(f"{where}: {exc.field}", exc.message) from None
    v.aware(f"{where}: at", event.at)
    _check_fields(where, event.data)
    return event


def _check_fields(where: str, data: ev.EventData) -> None:
    """Each argument an event's data holds passes the check its command applies."""
    command = recorded_by(type(data))
    arguments = command.arguments if command.event is type(data) else ()
    for argument in arguments:
        value = getattr(data, argument.field)
        if value is None or value == argument.default == "":
            continue  # left out when the command ran
        # Exports from before references were checked name any one-line text.
        check = v.name if argument.incident_ref else argument.check
        if isinstance(data, ev.UpdatePosted) and argument.field == "next_update_at":
            check = v.aware  # the command turned next_update_in into this time
        check(f"{where}: {data.TYPE}.{argument.field}", value)
    for derived in ("slug", "number"):
        value = getattr(data, derived, None)
        if derived == "slug" and value is not None:
            try:
                v.slug(value)
            except ValidationError as exc:
                raise ValidationError(f"{where}: {data.TYPE}.slug", exc.message) from None
        if derived == "number" and value is not None and type(value) is not int:
            raise ValidationError(
                f"{where}: {data.TYPE}.number", f"must be a whole number, got {value!r}"
            )


def _checked(name: str, numbered: list[tuple[int, ev.Event]], policy: Policy) -> History:
    """One incident's events, checked as a whole history before anything is written."""
    first_line, first = numbered[0]
    incident_id = first.incident_id
    declared = first.data
    if not isinstance(declared, ev.Declared):
        raise ValidationError(
            f"{name}:{first_line}", f"{incident_id}: the history must start with its declaration"
        )
    expected_id = incident_id_for(first.at, declared.slug)
    if incident_id != expected_id:
        raise ValidationError(
            f"{name}:{first_line}",
            f"{incident_id}: the id does not match its declaration (expected {expected_id})",
        )
    for number, event in numbered[1:]:
        if isinstance(event.data, ev.Declared):
            raise ValidationError(
                f"{name}:{number}",
                f"{incident_id}: event {event.seq} declares the incident again; only the "
                "first event of a history is its declaration",
            )
    incident: Incident | None = None
    start = 0
    while start < len(numbered):
        incident, start = _replay_commit(name, numbered, start, incident, policy)
    return History(incident_id, tuple(event for _, event in numbered))


def _replay_commit(
    name: str,
    numbered: Sequence[tuple[int, ev.Event]],
    start: int,
    incident: Incident | None,
    policy: Policy,
) -> tuple[Incident, int]:
    """Decide the command that wrote the event at ``start`` as the live flow would.

    Returns the incident after that command's events and where the next command's
    events start. A ``postmortem_drafted`` followed at once, in the same commit,
    by ``postmortem_completed`` was written either by ``complete_postmortem``
    with fields or by ``draft_postmortem`` then ``complete_postmortem``: the
    history is accepted if either is.
    """
    event = numbered[start][1]
    data = event.data
    command = recorded_by(type(data)).name
    readings = [(command, _proposal(data))]
    following = numbered[start + 1][1] if start + 1 < len(numbered) else None
    if (
        isinstance(data, ev.PostmortemDrafted)
        and following is not None
        and isinstance(following.data, ev.PostmortemCompleted)
        and _same_commit(event, following)
    ):
        readings.insert(0, ("complete_postmortem", data))
    refusal: ValidationError | None = None
    for reading_command, payload in readings:
        try:
            recorded = _decided(name, numbered, start, incident, reading_command, payload, policy)
        except ValidationError as exc:
            refusal = refusal or exc
            continue
        for line, written in numbered[start : start + recorded]:
            try:
                incident = evolve(incident, written)
            except (IncidentFlowError, ValueError, TypeError, AttributeError, LookupError) as exc:
                raise ValidationError(
                    f"{name}:{line}", f"the history does not replay: {exc}"
                ) from None
        assert incident is not None
        return incident, start + recorded
    assert refusal is not None
    raise refusal


def _proposal(data: ev.EventData) -> ev.EventData:
    """What the command that recorded ``data`` was given, before ``decide`` filled it in."""
    match data:
        case ev.Declared():
            return attrs.evolve(data, postmortem_required=False)
        case ev.ActionItemAdded():
            return attrs.evolve(data, number=0)
        case ev.Reclassified():
            return attrs.evolve(data, previous=None, postmortem_required=False)
        case ev.KbUpdated():
            return attrs.evolve(data, slug="")
        case ev.TypeChanged():
            return attrs.evolve(data, previous="", postmortem_required=False)
        case ev.RoleAssigned():
            return attrs.evolve(data, previous=None)
        case ev.RoleReleased():
            return attrs.evolve(data, previous="")
        case ev.PostmortemCompleted():
            return ev.PostmortemDrafted()  # complete_postmortem without fields
    return data


def _same_commit(first: ev.Event, other: ev.Event) -> bool:
    """Whether ``other`` can belong to the same command as ``first``."""
    return (first.at, first.actor, first.idempotency_key) == (
        other.at,
        other.actor,
        other.idempotency_key,
    )


def _decided(
    name: str,
    numbered: Sequence[tuple[int, ev.Event]],
    start: int,
    incident: Incident | None,
    command: str,
    payload: ev.EventData,
    policy: Policy,
) -> int:
    """Check that ``command`` wrote the events from ``start``; how many it wrote.

    The command is decided against ``incident`` as it stood before it, at the
    time and by the actor its first event records, under ``policy``.
    """
    number, event = numbered[start]
    where = f"{name}:{number}"
    label = f"{event.incident_id}: event {event.seq} ({event.type})"
    try:
        expected = decide(incident, definition(command), payload, policy, event.at, event.actor)
    except InvalidTransition as exc:
        raise ValidationError(
            where,
            f"{label} cannot have happened: {command} is allowed only when the incident is "
            f"{_either(exc.allowed_states) or 'never'}, and it was {exc.state}",
        ) from None
    except TransitionRejected as exc:
        raise ValidationError(
            where,
            f"{label} breaks the process rules of this policy; {command} needs: "
            + "; ".join(str(r) for r in exc.reasons),
        ) from None
    except ValidationError as exc:
        raise ValidationError(where, f"{label} was not accepted by {command}: {exc}") from None
    except (ValueError, TypeError, AttributeError, LookupError) as exc:
        raise ValidationError(where, f"{label} does not replay: {exc}") from None
    for offset, wanted in enumerate(expected):
        if start + offset >= len(numbered):
            raise ValidationError(
                where, f"{label}: {command} also records {wanted.TYPE}, which the history lacks"
            )
        line, written = numbered[start + offset]
        if offset and not _same_commit(event, written):
            raise ValidationError(
                f"{name}:{line}",
                f"{label}: {command} also records {wanted.TYPE} in the same commit, at the "
                f"same time and by the same actor, but event {written.seq} is not that",
            )
        _check_written(f"{name}:{line}", written, wanted, command)
    return len(expected)


def _check_written(where: str, written: ev.Event, wanted: ev.EventData, command: str) -> None:
    """``written`` records what ``command`` decided (``wanted``), up to the writer's policy."""
    label = f"{written.incident_id}: event {written.seq} ({written.type})"
    if (
        isinstance(written.data, ev.CommanderAssigned)
        and isinstance(wanted, ev.RoleAssigned)
        and (wanted.role, wanted.person) == ("commander", written.data.commander)
    ):
        return  # written before roles: assign_commander recorded commander_assigned
    if type(written.data) is not type(wanted):
        raise ValidationError(
            where, f"{label}: {command} records {wanted.TYPE} here, not {written.type}"
        )
    differing = []
    for field in attrs.fields(type(wanted)):
        expected, actual = getattr(wanted, field.name), getattr(written.data, field.name)
        if expected == actual or field.name == "blame_warnings":
            continue  # the warnings follow the blame check of the policy that wrote them
        if field.name == "postmortem_required":
            if actual:
                continue  # a stricter policy wrote it; it stays
            severity = getattr(wanted, "severity", None)
            raise ValidationError(
                where,
                f"{label} says no post-mortem is needed, but this policy requires one for "
                f"{severity.value if severity else 'these'} incidents; the history was edited "
                "or written under other postmortem_severities: import it under that policy",
            )
        differing.append(f"{field.name} (expected {expected!r})")
    if differing:
        raise ValidationError(
            where,
            f"{label} is not what {command} records here; check {', '.join(differing)}",
        )
