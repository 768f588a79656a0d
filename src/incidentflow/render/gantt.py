"""An incident's phases as a Mermaid gantt chart, for its post-mortem.

The phases follow the lifecycle, one section each:

- **Detection**: the issue first occurred → it was detected, then → declared;
- **Response**: declared → acknowledged (triage started);
- **Triage**: acknowledged → contained, with each mitigation as a milestone;
- **Root cause analysis**: contained → fixed, with the root cause and each
  deploy as milestones;
- **Verification**: fixed → resolved, with the users' answers as milestones;
- **Post-mortem**: resolved → post-mortem completed → knowledge base updated.

A reopen cuts the phase it interrupts short (marked ``crit``), adds a
``crit`` milestone, and the phases after it come again as extra bars named
"(after reopen N)". The phase the incident is in is marked ``active``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

import attrs

from .. import _events as ev
from .._model import Incident, State
from ..exceptions import ValidationError

__all__ = ["incident_gantt"]

DETECTION = "Detection"
RESPONSE = "Response"
TRIAGE = "Triage"
RCA = "Root cause analysis"
VERIFICATION = "Verification"
POSTMORTEM = "Post-mortem"
_SECTIONS = (DETECTION, RESPONSE, TRIAGE, RCA, VERIFICATION, POSTMORTEM)

#: The events that move an incident along the happy path, and where to.
_ENTERED = {
    ev.TriageStarted: State.TRIAGING,
    ev.Contained: State.CONTAINED,
    ev.RcaStarted: State.RCA,
    ev.MarkedFixed: State.FIXED,
    ev.Resolved: State.RESOLVED,
    ev.PostmortemCompleted: State.POSTMORTEM,
}
_DETECTED_BY = {"alert": "alert", "user_report": "user report"}

#: Longest piece of user text in a task name; the post-mortem has the full text.
_TEXT_MAX = 60
# The gantt lexer ends a task name at ':' '#' ';' and a line break, '#' and '%%'
# start comments, and a backtick could end the Markdown fence around the chart.
_REPLACEMENTS = str.maketrans({":": "：", "#": "＃", ";": "；", "%": "％", "`": "'"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def _text(text: str) -> str:
    """User text made safe for a gantt task name or title: one line, no syntax."""
    text = " ".join(_CONTROL.sub(" ", text).split()).translate(_REPLACEMENTS)
    if len(text) > _TEXT_MAX:
        text = text[: _TEXT_MAX - 1].rstrip() + "…"
    return text


@attrs.frozen
class _Task:
    section: str
    name: str
    start: datetime
    end: datetime
    tags: tuple[str, ...] = ()

    def line(self) -> str:
        data = [*self.tags, _when(self.start), _when(self.end)]
        return f"    {self.name} :{', '.join(data)}"


def _when(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def incident_gantt(
    incident: Incident, history: Sequence[ev.Event], *, now: datetime | None = None
) -> str:
    """The incident's phases as a Mermaid ``gantt`` chart, times in UTC.

    Embed the text in a ```` ```mermaid ```` fence. Multi-day incidents get
    dates on the axis; user text in task names (mitigations, reasons, deploy
    refs) is cut to one short line, and the characters that would break the
    chart (``:`` ``#`` ``;`` ``%`` and backticks) are replaced by look-alikes.

    Args:
        incident: The snapshot: its title, id and recorded detection.
        history: Its whole event history, as ``flow.history(incident.id)``
            returns it: the phases and reopens are read from the events.
        now: Where the bar of the phase the incident is still in ends; by
            default at its last event.

    Returns:
        The Mermaid source, ending with a newline.

    Raises:
        ValidationError: The history is empty or belongs to another incident,
            or ``now`` is naive.

    """
    if now is not None and (now.tzinfo is None or now.utcoffset() is None):
        raise ValidationError("now", "is a naive datetime; pass an aware one, e.g. flow.now()")
    if not history:
        raise ValidationError("history", f"is empty; pass flow.history({incident.id!r})")
    strangers = {e.incident_id for e in history} - {incident.id}
    if strangers:
        raise ValidationError(
            "history",
            f"holds events of {', '.join(sorted(strangers))}; "
            f"pass the history of {incident.id} alone",
        )

    tasks = _detection(incident) + _phases(incident, history, now)
    times = [t for task in tasks for t in (task.start, task.end)]
    one_day = len({at.astimezone(UTC).date() for at in times}) == 1
    lines = [
        "gantt",
        f"    title {_text(incident.title)} ({incident.id})",
        "    dateFormat YYYY-MM-DD HH:mm:ss",
        f"    axisFormat {'%H:%M' if one_day else '%m-%d %H:%M'}",
        "    todayMarker off",
    ]
    for section in _SECTIONS:
        in_section = sorted((t for t in tasks if t.section == section), key=lambda t: t.start)
        if in_section:
            lines.append(f"    section {section}")
            lines.extend(task.line() for task in in_section)
    return "\n".join(lines) + "\n"


def _detection(inc: Incident) -> list[_Task]:
    detection = inc.detection
    if detection is None:
        return []
    how = _DETECTED_BY.get(detection.method, "detection")
    first, detected = detection.first_occurred_at, detection.detected_at
    tasks = []
    if first is not None and detected is not None:
        tasks.append(_Task(DETECTION, f"Until the first {how}", first, detected, ("done",)))
    elif first is not None:
        tasks.append(_Task(DETECTION, "Issue first occurred", first, first, ("milestone",)))
    if detected is not None:
        if detected < inc.declared_at:
            tasks.append(_Task(DETECTION, "Until declared", detected, inc.declared_at, ("done",)))
        else:
            tasks.append(_Task(DETECTION, f"First {how}", detected, detected, ("milestone",)))
    return tasks


def _phase(state: State, ended_by: type[ev.EventData] | None, inc: Incident) -> tuple[str, str]:
    """The section and bar name of the time spent in ``state``, by what ended it."""
    if state is State.DECLARED:
        return RESPONSE, "Acknowledge"
    if state is State.TRIAGING:
        return TRIAGE, "Triage"
    if state in (State.CONTAINED, State.RCA):
        return RCA, "Root cause analysis"
    if state is State.FIXED:
        return VERIFICATION, "Verify the fix"
    if state is State.RESOLVED:
        if ended_by is ev.Reopened:
            return VERIFICATION, "Resolved until reopened"
        if ended_by is ev.PostmortemCompleted or (ended_by is None and inc.postmortem_required):
            return POSTMORTEM, "Post-mortem"
    # resolved without a post-mortem, or post-mortem done: the KB entry is what is left
    return POSTMORTEM, "Knowledge base entry"


def _phases(inc: Incident, history: Sequence[ev.Event], now: datetime | None) -> list[_Task]:
    tasks: list[_Task] = []
    # The state the incident is in, and since when.
    state, since = State.DECLARED, inc.declared_at
    reopens = 0

    def milestone(section: str, name: str, at: datetime, *tags: str) -> None:
        tasks.append(_Task(section, name, at, at, (*tags, "milestone")))

    def bar(section: str, name: str, end: datetime, tag: str) -> None:
        # A phase that comes again after a reopen is told apart by the reopen's number.
        if reopens and any(t.name == name and "milestone" not in t.tags for t in tasks):
            name += f" (after reopen {reopens})"
        tasks.append(_Task(section, name, since, end, (tag,)))

    def close(at: datetime, ended_by: type[ev.EventData], tag: str) -> str:
        section, name = _phase(state, ended_by, inc)
        bar(section, name, at, tag)
        return section

    for event in history:
        data, at = event.data, event.at
        match data:
            case ev.ContainmentRecorded(description=description, taken_at=taken_at):
                milestone(TRIAGE, f"Mitigation ({_text(description)})", taken_at)
            case ev.RootCauseSet():
                milestone(RCA, "Root cause identified", at)
            case ev.DeployRecorded(ref=ref, deployed_at=deployed_at):
                name = f"Fix deployed ({_text(ref)})" if ref else "Fix deployed"
                milestone(RCA, name, deployed_at)
            case ev.UserConfirmed(user=user, positive=True):
                milestone(VERIFICATION, f"User {_text(user)} confirmed the fix", at)
            case ev.UserConfirmed(user=user, positive=False):
                milestone(VERIFICATION, f"User {_text(user)} says it still fails", at, "crit")
            case ev.Reopened(to_state=to_state, reason=reason):
                # The phase the reopen interrupts did not hold: crit, not done.
                close(at, ev.Reopened, "crit")
                reopens += 1
                state, since = to_state, at
                section, _ = _phase(to_state, None, inc)
                milestone(section, f"Reopened ({_text(reason)})", at, "crit")
            case ev.Dismissed(reason=reason):
                section = close(at, ev.Dismissed, "done")
                milestone(section, f"Dismissed ({_text(reason)})", at)
                state = State.DISMISSED
            case ev.KbUpdated():
                close(at, ev.KbUpdated, "done")
                milestone(POSTMORTEM, "Knowledge base updated", at)
                state = State.KB_UPDATED
            case _:
                entered = _ENTERED.get(type(data))
                # Contained runs straight into root-cause analysis: one bar for both.
                if entered is not None and not (entered is State.RCA and state is State.CONTAINED):
                    close(at, type(data), "done")
                    state, since = entered, at
    if not state.is_terminal:
        section, name = _phase(state, None, inc)
        bar(section, name, max(since, now or history[-1].at), "active")
    return tasks
