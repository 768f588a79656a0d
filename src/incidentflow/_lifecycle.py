"""The guarded lifecycle, held by one shared ``transitions`` machine.

This is the only module that imports ``transitions``. The machine is built
once from the command definitions (:mod:`incidentflow.commands`): every state,
every transition with its guards attached as conditions, and every recording
command as an internal transition (``dest=None``). No incident gets a machine
of its own and nothing is decorated by one: ``decide`` asks the machine which
transitions a command has from an incident's state and evaluates all of their
conditions itself, so every unmet guard is reported, not only the first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from transitions import Machine

from ._model import State
from .commands import DEFINITIONS, Command, Guard

__all__ = [
    "COMMANDS",
    "SYSTEM_COMMANDS",
    "Lifecycle",
    "Step",
    "lifecycle",
    "mermaid_diagram",
    "next_command",
]

#: Every command name, in definition order.
COMMANDS: tuple[str, ...] = tuple(DEFINITIONS)
#: Commands the library runs itself (``check_deadlines``), not facade methods.
SYSTEM_COMMANDS = frozenset(name for name, c in DEFINITIONS.items() if c.system)


@attrs.frozen
class _When:
    """A condition that picks one of a command's transitions by its payload."""

    select: Callable[[Any], bool]

    def __call__(self, payload: object) -> bool:
        return self.select(payload)


@attrs.frozen
class Step:
    """One transition of a command from one state, read off the machine.

    Attributes:
        dest: Where it leads; ``None`` for a recording command (internal transition).
        guards: Its guard conditions, in definition order.
        when: Its selecting conditions (all must accept the payload).

    """

    dest: State | None
    guards: tuple[Guard[Any], ...]
    when: tuple[_When, ...]

    def selected_by(self, payload: object) -> bool:
        """True when this transition is the one the payload asks for."""
        return not self.when or all(select(payload) for select in self.when)


class Lifecycle:
    """The shared ``transitions`` machine and fast lookups read off it once.

    Attributes:
        machine: The one ``transitions.Machine`` holding the guarded lifecycle.

    Raises:
        ValueError: A definition names a state that does not exist.

    """

    def __init__(self, definitions: Mapping[str, Command[Any]] = DEFINITIONS) -> None:
        self.definitions = definitions
        self.machine = Machine(
            model=None,
            states=[s.value for s in State],
            initial=State.DECLARED.value,
            auto_transitions=False,
            transitions=[
                {
                    "trigger": command.name,
                    "source": [_state(command.name, s) for s in move.sources],
                    "dest": None if move.dest is None else _state(command.name, move.dest),
                    "conditions": [
                        *command.guards,
                        *([_When(move.when)] if move.when is not None else []),
                    ],
                }
                for command in definitions.values()
                for move in command.moves
            ],
        )
        self._steps: dict[tuple[str, State], tuple[Step, ...]] = {}
        self._allowed: dict[str, tuple[State, ...]] = {}
        for name, event in self.machine.events.items():
            sources = set()
            for source, transitions in event.transitions.items():
                state = State(source)
                sources.add(state)
                self._steps[name, state] = tuple(_step(t) for t in transitions)
            self._allowed[name] = tuple(s for s in State if s in sources)

    def steps(self, command: str, state: State) -> tuple[Step, ...]:
        """The transitions ``command`` has from ``state`` (none: not allowed there)."""
        return self._steps.get((command, state), ())

    def allowed_states(self, command: str) -> tuple[State, ...]:
        """The states in which ``command`` is allowed, in lifecycle order."""
        return self._allowed.get(command, ())

    def transitions(self) -> list[tuple[State, str, State, tuple[Guard[Any], ...]]]:
        """Every state-changing (source, command, destination, guards), in definition order."""
        found = []
        for name, event in self.machine.events.items():
            for source, transitions in event.transitions.items():
                for t in transitions:
                    if t.dest is not None:
                        step = _step(t)
                        assert step.dest is not None
                        found.append((State(source), name, step.dest, step.guards))
        return found


def _state(command: str, state: object) -> str:
    if not isinstance(state, State):
        known = ", ".join(s.value for s in State)
        raise ValueError(f"{command}: {state!r} is not a state; the states are {known}")
    return state.value


def _step(transition: Any) -> Step:
    conditions = [c.func for c in transition.conditions]
    return Step(
        dest=None if transition.dest is None else State(transition.dest),
        guards=tuple(c for c in conditions if isinstance(c, Guard)),
        when=tuple(c for c in conditions if isinstance(c, _When)),
    )


@functools.cache
def lifecycle() -> Lifecycle:
    """The shared lifecycle, built on first use."""
    return Lifecycle()


def mermaid_diagram() -> str:
    """The lifecycle as a Mermaid ``stateDiagram-v2``, drawn from the machine.

    Each arrow carries its command and, in brackets, what its guards require.

    >>> print(mermaid_diagram().splitlines()[0])
    stateDiagram-v2
    """
    lines = ["stateDiagram-v2", f"    [*] --> {State.DECLARED.value}"]
    for source, command, dest, guards in lifecycle().transitions():
        label = command
        if guards:
            label += " [" + ", ".join(g.summary for g in guards) + "]"
        lines.append(f"    {source.value} --> {dest.value}: {label}")
    for state in State:
        if state.is_terminal:
            lines.append(f"    {state.value} --> [*]")
    return "\n".join(lines) + "\n"


_FORWARD = {
    State.DECLARED: "start_triage",
    State.TRIAGING: "contain",
    State.CONTAINED: "start_rca",
    State.RCA: "mark_fixed",
    State.FIXED: "resolve",
    State.POSTMORTEM: "update_kb",
}
if not set(_FORWARD.values()) <= set(DEFINITIONS):  # a renamed command must fail at import
    raise ValueError(f"unknown commands in the forward path: {set(_FORWARD.values())}")


def next_command(state: State, *, postmortem_required: bool) -> str | None:
    """The command that moves an incident on from ``state``; ``None`` once it is closed.

    >>> next_command(State.RESOLVED, postmortem_required=True)
    'complete_postmortem'
    >>> next_command(State.RESOLVED, postmortem_required=False)
    'update_kb'
    """
    if state is State.RESOLVED:
        return "complete_postmortem" if postmortem_required else "update_kb"
    return _FORWARD.get(state)
