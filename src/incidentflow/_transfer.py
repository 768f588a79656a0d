"""Export and import of whole histories, to move incidents between stores.

The format is JSON Lines: a header line ``{"format": "incidentflow-export",
"version": 1, ...}``, then every event of every exported incident, each
incident's events together and in order. Importing checks each history before
writing anything of it (well-formed events, seq 1..n, a declaration first,
an id that matches the declaration, a history that replays) and writes it in
one commit, without notifications. An incident already stored with the same
history is left as it is; one stored with another history is reported as a
conflict and not touched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING

import attrs

from . import _events as ev
from . import _validate as v
from ._decide import evolve, incident_id_for, replay
from ._lifecycle import lifecycle
from ._model import Incident, State
from ._policy import Policy
from ._serialization import event_from_dict, event_to_dict, event_to_json
from .exceptions import IncidentFlowError, ValidationError
from .stores._base import Commit

if TYPE_CHECKING:
    from ._flow import IncidentFlow

#: The ``format`` of an export's header line.
EXPORT_FORMAT = "incidentflow-export"
#: The export format version this release reads and writes.
EXPORT_VERSION = 1


@attrs.frozen
class History:
    """One incident's whole history, read from an export."""

    incident_id: str
    events: tuple[ev.Event, ...]


@attrs.frozen
class ImportOutcome:
    """What an import did with each incident."""

    imported: tuple[str, ...] = ()
    present: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()


def export_lines(flow: IncidentFlow, incident_ids: Iterable[str]) -> Iterator[str]:
    """The export of ``incident_ids``: the header line, then each one's events."""
    header = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "exported_at": flow.now()}
    yield json.dumps(header, default=lambda moment: moment.isoformat())
    for incident_id in incident_ids:
        for event in flow.history(incident_id):
            yield event_to_json(event)


def read_export(
    stream: IO[bytes] | IO[str], name: str, policy: Policy | None = None
) -> list[History]:
    """Every history of an export, checked; ValidationError names the line at fault.

    ``policy`` says which severities need a post-mortem before closing (the
    default policy's when not given), whatever the export's events claim.
    """
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
    grouped: dict[str, list[tuple[int, ev.Event]]] = {}
    for number, line in lines:
        if not line.strip():
            continue
        where = f"{name}:{number}"
        event = _event(where, _json(name, number, line))
        events = grouped.setdefault(event.incident_id, [])
        if event.seq != len(events) + 1:
            raise ValidationError(
                where,
                f"{event.incident_id} event seq {event.seq} follows seq {len(events)}; "
                "each history must run 1, 2, 3, ... without gaps",
            )
        events.append((number, event))
    checked_policy = policy if policy is not None else Policy()
    return [_checked(name, events, checked_policy) for events in grouped.values()]


def import_histories(flow: IncidentFlow, histories: Iterable[History]) -> ImportOutcome:
    """Write each history that is not stored yet; report those present or conflicting."""
    imported: list[str] = []
    present: list[str] = []
    conflicts: list[str] = []
    for history in histories:
        if flow.store.exists(history.incident_id):
            stored = tuple(flow.store.history(history.incident_id))
            (present if stored == history.events else conflicts).append(history.incident_id)
            continue
        snapshot = replay(history.events)
        flow.store.append(Commit(history.incident_id, 0, history.events, snapshot))
        flow.render(history.incident_id)
        imported.append(history.incident_id)
    return ImportOutcome(tuple(imported), tuple(present), tuple(conflicts))


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
    v.name(f"{where}: incident_id", event.incident_id)
    v.actor(event.actor)
    v.aware(f"{where}: at", event.at)
    _check_fields(where, event.data)
    return event


#: Event fields held to one line, as the commands that write them require.
_ONE_LINE = frozenset(
    {
        "commander",
        "source",
        "question",
        "user",
        "owner",
        "method",
        "kind",
        "subject",
        "duplicate_of",
    }
)
#: Event fields that may be empty.
_MAY_BE_EMPTY = frozenset({"ref", "comment"})


def _check_fields(where: str, data: ev.EventData) -> None:
    """The texts of an event's data pass the checks their command applies."""
    for field in attrs.fields(type(data)):
        value = getattr(data, field.name)
        label = f"{where}: {data.TYPE}.{field.name}"
        if isinstance(value, str):
            if field.name in _MAY_BE_EMPTY and not value:
                continue
            if field.name == "title":
                v.text(label, value, max_len=v.TITLE_MAX, multiline=False)
            elif field.name == "slug":
                try:
                    v.slug(value)
                except ValidationError as exc:
                    raise ValidationError(label, str(exc).split(": ", 1)[-1]) from None
            elif field.name in _ONE_LINE:
                v.name(label, value)
            elif field.name == "content":
                v.text(label, value, max_len=v.EVIDENCE_MAX)
            else:
                v.text(label, value)
        elif isinstance(value, tuple) and field.name in ("went_well", "went_poorly"):
            v.texts(label, value)
        elif field.name == "number" and type(value) is not int:
            raise ValidationError(label, f"must be a whole number, got {value!r}")


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
    moves = {(source, dest) for source, _, dest in lifecycle().transitions()}
    incident: Incident | None = None
    previous_at = first.at
    for number, event in numbered:
        where = f"{name}:{number}"
        if event.at < previous_at:
            raise ValidationError(where, f"event {event.seq} is dated before the event before it")
        previous_at = event.at
        before = incident
        try:
            incident = evolve(incident, event)
        except (IncidentFlowError, ValueError, TypeError, AttributeError) as exc:
            raise ValidationError(where, f"the history does not replay: {exc}") from None
        if before is None:
            continue
        if before.state.is_terminal and not isinstance(event.data, ev.NoteAdded):
            raise ValidationError(
                where, f"event {event.seq} ({event.type}) follows the closing of the incident"
            )
        if before.state is not incident.state and (before.state, incident.state) not in moves:
            raise ValidationError(
                where,
                f"event {event.seq} ({event.type}) moves {before.state.value} → "
                f"{incident.state.value}, which the lifecycle does not allow",
            )
    assert incident is not None
    _check_closed(f"{name}:{numbered[-1][0]}", incident, policy)
    return History(incident_id, tuple(event for _, event in numbered))


def _check_closed(where: str, incident: Incident, policy: Policy) -> None:
    """The process rules a closed incident must satisfy (DESIGN §1, rules 2-4)."""
    if incident.state is not State.KB_UPDATED:
        return
    missing = []
    if incident.confirmation is None or not incident.confirmation.positive:
        missing.append("a positive user confirmation")
    needs_postmortem = incident.postmortem_required or policy.needs_postmortem(incident.severity)
    if needs_postmortem and (
        incident.postmortem is None or incident.postmortem.completed_at is None
    ):
        missing.append("a completed post-mortem")
    if not incident.action_items:
        missing.append("an action item")
    if missing:
        raise ValidationError(
            where,
            f"{incident.id} closed without {', '.join(missing)}; the process does not allow that",
        )
