"""The lifecycle, defined once with ``transitions``.

This is the only module that imports ``transitions``. One machine holds the
definition: every command, the states it is allowed in, and where it leads
(``dest=None`` marks a command that records without changing state). No
incident ever gets a machine of its own or is decorated by one; the tables
below are read off the shared definition once and consulted by the pure core.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from transitions import Machine

from ._model import State

__all__ = ["COMMANDS", "SYSTEM_COMMANDS", "Lifecycle", "lifecycle", "mermaid_diagram"]

_ALL = list(State)
_NOT_TERMINAL = [s for s in State if not s.is_terminal]

# (command, sources, destination); destination None records without moving.
_DEFINITION: list[tuple[str, Iterable[State], State | None]] = [
    ("start_triage", [State.DECLARED], State.TRIAGING),
    ("contain", [State.TRIAGING], State.CONTAINED),
    ("start_rca", [State.CONTAINED], State.RCA),
    ("mark_fixed", [State.RCA], State.FIXED),
    ("resolve", [State.FIXED], State.RESOLVED),
    ("complete_postmortem", [State.RESOLVED], State.POSTMORTEM),
    ("update_kb", [State.POSTMORTEM, State.RESOLVED], State.KB_UPDATED),
    ("reopen", [State.FIXED, State.RESOLVED], State.TRIAGING),
    ("reopen", [State.FIXED, State.RESOLVED], State.RCA),
    ("dismiss", [State.DECLARED, State.TRIAGING], State.DISMISSED),
    # A negative confirmation sends the incident back to root-cause analysis.
    ("confirm_by_user", [State.FIXED], None),
    ("confirm_by_user", [State.FIXED], State.RCA),
    (
        "add_evidence",
        [State.DECLARED, State.TRIAGING, State.CONTAINED, State.RCA, State.FIXED],
        None,
    ),
    ("answer_triage", [State.DECLARED, State.TRIAGING, State.CONTAINED, State.RCA], None),
    ("record_containment", [State.TRIAGING, State.CONTAINED, State.RCA], None),
    ("add_why", [State.RCA], None),
    ("set_root_cause", [State.RCA], None),
    ("record_fix", [State.RCA], None),
    ("record_deploy", [State.RCA], None),
    ("draft_postmortem", [State.FIXED, State.RESOLVED], None),
    ("reclassify", _NOT_TERMINAL, None),
    ("assign_commander", _NOT_TERMINAL, None),
    ("record_detection", _NOT_TERMINAL, None),
    ("add_action_item", _NOT_TERMINAL, None),
    ("complete_action_item", _NOT_TERMINAL, None),
    ("record_breach", _NOT_TERMINAL, None),
    ("add_note", _ALL, None),
]

#: Commands the library runs itself (``check_deadlines``), not facade methods.
SYSTEM_COMMANDS = frozenset({"record_breach"})

#: Every command name, in definition order.
COMMANDS: tuple[str, ...] = tuple(dict.fromkeys(["declare", *(c for c, _, _ in _DEFINITION)]))


class Lifecycle:
    """Read-only view of the shared ``transitions`` machine.

    Attributes:
        machine: The one ``transitions.Machine`` that defines the lifecycle.

    """

    def __init__(self) -> None:
        self.machine = Machine(
            model=None,
            states=[s.value for s in State],
            initial=State.DECLARED.value,
            auto_transitions=False,
            transitions=[
                {
                    "trigger": command,
                    "source": [s.value for s in sources],
                    "dest": dest.value if dest is not None else None,
                }
                for command, sources, dest in _DEFINITION
            ],
        )
        self._allowed: dict[str, tuple[State, ...]] = {}
        self._destinations: dict[tuple[str, State], tuple[State | None, ...]] = {}
        for command, event in self.machine.events.items():
            sources: set[State] = set()
            for source_name, transitions in event.transitions.items():
                source = State(source_name)
                sources.add(source)
                self._destinations[command, source] = tuple(
                    State(t.dest) if t.dest is not None else None for t in transitions
                )
            self._allowed[command] = tuple(s for s in State if s in sources)

    def allowed_states(self, command: str) -> tuple[State, ...]:
        """The states in which ``command`` is allowed, in lifecycle order."""
        return self._allowed.get(command, ())

    def destinations(self, command: str, state: State) -> tuple[State | None, ...]:
        """Where ``command`` may lead from ``state`` (``None``: stays put)."""
        return self._destinations.get((command, state), ())

    def transitions(self) -> list[tuple[State, str, State]]:
        """Every state-changing (source, command, destination) triple."""
        triples = []
        for command, event in self.machine.events.items():
            for source_name, transitions in event.transitions.items():
                for t in transitions:
                    if t.dest is not None:
                        triples.append((State(source_name), command, State(t.dest)))
        return triples


@functools.cache
def lifecycle() -> Lifecycle:
    """The shared lifecycle, built on first use."""
    return Lifecycle()


def mermaid_diagram() -> str:
    """The lifecycle as a Mermaid ``stateDiagram-v2``, generated from the definition.

    >>> print(mermaid_diagram().splitlines()[0])
    stateDiagram-v2
    """
    lines = ["stateDiagram-v2", f"    [*] --> {State.DECLARED.value}"]
    for source, command, dest in lifecycle().transitions():
        lines.append(f"    {source.value} --> {dest.value}: {command}")
    for state in State:
        if state.is_terminal:
            lines.append(f"    {state.value} --> [*]")
    return "\n".join(lines) + "\n"
