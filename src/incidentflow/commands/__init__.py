"""Every command, defined once, grouped by the lifecycle phase it belongs to.

A :class:`Command` holds a command's name, its typed and documented
:class:`Argument` list, the states it runs in and where it leads (its
:class:`Move` list), the event it records, its :class:`Guard` list (each with a
stable reason code) and how its event folds into the snapshot. The shared
``transitions`` machine, ``decide``, the facade, the CLI and the command
reference all read these definitions.

>>> from incidentflow.commands import definition
>>> command = definition("contain")
>>> [guard.code for guard in command.guards]
['evidence.missing', 'triage.unanswered', 'containment.missing']
>>> [state.value for state in command.runs_in]
['triaging']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from .._events import Event as _Event
from .._events import EventData as _EventData
from .._events import event_types as _event_types
from .._model import Incident as _Incident
from .._model import State as _State
from ..exceptions import InvalidTransition as _InvalidTransition
from ..exceptions import ValidationError as _ValidationError
from . import (
    _access,
    _anytime,
    _closure,
    _coordination,
    _corrections,
    _followups,
    _labels,
    _links,
    _rca,
    _resolve,
    _triage,
)
from ._anytime import DEADLINE_KINDS, DETECTION_METHODS
from ._coordination import AUDIENCES
from ._corrections import CORRECTABLE
from ._define import NOW, Argument, Command, Context, Guard, Move, Recorded, Unmet, unmet
from ._links import LINK_KINDS
from ._rca import MAX_WHYS

__all__ = [
    "APPLY",
    "AUDIENCES",
    "CORRECTABLE",
    "DEADLINE_KINDS",
    "DEFINITIONS",
    "DETECTION_METHODS",
    "LINK_KINDS",
    "MAX_WHYS",
    "NOW",
    "Argument",
    "Command",
    "Context",
    "Guard",
    "Move",
    "Recorded",
    "Unmet",
    "definition",
    "reason_codes",
    "recorded_by",
    "unmet",
]

_Fold = Callable[[_Incident, _Event, Any], _Incident]


def _by_name(*commands: Command[Any]) -> Mapping[str, Command[Any]]:
    found: dict[str, Command[Any]] = {}
    for command in commands:
        if command.name in found:
            raise ValueError(f"the command {command.name!r} is defined twice")
        found[command.name] = command
    return MappingProxyType(found)


#: Every command by name, phase by phase. A command added to a phase's ``PHASE`` is here.
DEFINITIONS: Mapping[str, Command[Any]] = _by_name(
    *_triage.PHASE,
    *_rca.PHASE,
    *_resolve.PHASE,
    *_closure.PHASE,
    *_followups.PHASE,
    *_anytime.PHASE,
    *_labels.PHASE,
    *_coordination.PHASE,
    *_corrections.PHASE,
    *_links.PHASE,
    *_access.PHASE,
)


def _folds(commands: Mapping[str, Command[Any]]) -> Mapping[type[_EventData], _Fold]:
    """Each event type's fold; every event type has exactly one."""
    folds: dict[type[_EventData], _Fold] = {}

    def add(event: type[_EventData], fold: _Fold, owner: str) -> None:
        if event in folds:
            raise ValueError(f"{owner}: the event {event.TYPE!r} is folded twice")
        folds[event] = fold

    for command in commands.values():
        if command.fold is not None:
            add(command.event, command.fold, command.name)
        for recorded in command.records:
            add(recorded.event, recorded.fold, command.name)
    unfolded = sorted(set(_event_types()) - {e.TYPE for e in folds})
    if unfolded:
        raise ValueError(f"no command folds the events {', '.join(unfolded)}")
    return MappingProxyType(folds)


_FOLDS = _folds(DEFINITIONS)


def _destinations(commands: Mapping[str, Command[Any]]) -> Mapping[type[_EventData], _State]:
    """The state an event type always leads to: its command's one destination."""
    found: dict[type[_EventData], _State] = {}
    for command in commands.values():
        dests = {move.dest for move in command.moves}
        dest = dests.pop() if len(dests) == 1 else None
        if command.fold is not None and dest is not None:
            found[command.event] = dest
    return MappingProxyType(found)


_DESTINATIONS = _destinations(DEFINITIONS)


#: Each event type's fold and the state it always leads to (``None``: its fold decides).
APPLY: Mapping[type[_EventData], tuple[_Fold, _State | None]] = MappingProxyType(
    {event: (fold, _DESTINATIONS.get(event)) for event, fold in _FOLDS.items()}
)


def recorded_by(event_type: type[_EventData]) -> Command[Any]:
    """The command whose definition records (and folds) events of ``event_type``."""
    return _RECORDED_BY[event_type]


_RECORDED_BY: Mapping[type[_EventData], Command[Any]] = MappingProxyType(
    {c.event: c for c in DEFINITIONS.values() if c.fold is not None}
    | {r.event: c for c in DEFINITIONS.values() for r in c.records}
)


def definition(name: object) -> Command[Any]:
    """The definition of the command called ``name``.

    Raises:
        InvalidTransition: There is no such command; the message lists them all.
        ValidationError: ``name`` is not text.

    """
    if not isinstance(name, str):
        raise _ValidationError(
            "command", f"expected a command name (str), got {type(name).__name__}"
        )
    found = DEFINITIONS.get(name)
    if found is None:
        raise _InvalidTransition.unknown_command(name, tuple(DEFINITIONS))
    return found


def reason_codes() -> dict[str, str]:
    """Every reason code a built-in guard gives, with what it requires, sorted by code.

    Custom guards added through the policy give ``policy.guard`` unless they
    return :class:`~incidentflow.Reason` objects with codes of their own;
    ``flow.can`` answers a command the incident's state does not allow with
    ``state.not_allowed`` (the command itself raises InvalidTransition), and
    ``add_reference`` of a reference another open incident holds with
    ``reference.taken`` (the command itself raises ReferenceTaken).
    """
    codes = {g.code: g.summary for c in DEFINITIONS.values() for g in c.guards}
    codes["policy.guard"] = "a custom guard of the policy"
    codes["roles.missing"] = "the roles the policy requires before the command are held"
    codes["reference.taken"] = "no other open incident holds the reference (flow.can)"
    codes["access.denied"] = "the policy's authorizer allows the actor the command (flow.can)"
    codes["state.not_allowed"] = "the incident is in a state the command runs in (flow.can)"
    return dict(sorted(codes.items()))
