"""The shape of a command definition: arguments, moves, guards, event and fold in one place.

A command is one :class:`Command` value. Everything else reads it: the shared
``transitions`` machine (its moves and guards), ``decide`` (validation,
guards, the events it records), ``evolve`` (the fold of its event), the facade,
the CLI and the docs' command reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Generic, NamedTuple, TypeVar

import attrs

from .. import _validate as v
from .._builders import builder
from .._events import Event, EventData
from .._model import Incident, State
from .._reasons import Reason
from ..exceptions import ValidationError

if TYPE_CHECKING:
    from .._policy import Policy

__all__ = [
    "NOW",
    "Argument",
    "Command",
    "Context",
    "Guard",
    "Move",
    "Recorded",
    "Unmet",
    "unmet",
]

E = TypeVar("E", bound=EventData)
# A context only hands its payload out; a guard only takes a context in.
E_co = TypeVar("E_co", bound=EventData, covariant=True)
E_contra = TypeVar("E_contra", bound=EventData, contravariant=True)

#: The states in which work on an incident is still under way (not terminal).
NOT_TERMINAL: tuple[State, ...] = tuple(s for s in State if not s.is_terminal)
#: Every state.
EVERY_STATE: tuple[State, ...] = tuple(State)


class _Now:
    """Marks an optional time argument that defaults to the flow clock's time."""

    def __repr__(self) -> str:
        return "NOW"


#: Default of a time argument: the flow clock's time when the command runs.
NOW: Final[_Now] = _Now()


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


_REQUIRED: Final[_Required] = _Required()


class Context(NamedTuple, Generic[E_co]):
    """What a guard or a command's decision sees. Pure data: no store, no I/O.

    A named tuple: built once per decision, on the hot path of every command.

    Attributes:
        incident: The incident's snapshot the command is decided on.
        payload: The command's validated payload; ``None`` when asked through
            ``flow.can`` without arguments (guards that need it then pass).
        policy: The flow's policy.
        now: The flow clock's time (aware UTC).
        actor: Who runs the command (``""`` when ``can`` was not told).
        others: The states of the incidents this one links to, by id, for the
            commands whose guards read them (:attr:`Guard.sees`); else empty.

    """

    incident: Incident
    payload: E_co | None
    policy: Policy
    now: datetime
    actor: str
    others: Mapping[str, State] = MappingProxyType({})


@attrs.frozen
class Unmet:
    """A guard's answer when its requirement does not hold: the sentence and its data."""

    message: str
    data: Mapping[str, Any] = attrs.field(factory=dict)


def unmet(message: str, **data: Any) -> Unmet:
    """An unmet requirement: ``message`` for people, ``data`` (JSON-ready) for programs."""
    return Unmet(message, data)


@attrs.frozen
class Guard(Generic[E_contra]):
    """One requirement of a command, with its stable reason code.

    ``check`` returns ``None`` when the requirement holds, else an :class:`Unmet`
    (or a plain message). A guard is also a ``transitions`` condition: calling it
    with a :class:`Context` answers whether it holds.

    Attributes:
        code: The public, stable reason code, e.g. ``"triage.unanswered"``.
        check: The requirement itself.
        summary: What it requires, in a few words (drawn on the lifecycle diagram).
        sees: The kinds of links whose other incidents' states the check reads
            from ``Context.others`` (the facade reads them only then).

    """

    code: str
    summary: str
    check: Callable[[Context[E_contra]], Unmet | str | Sequence[Unmet] | None]
    sees: tuple[str, ...] = attrs.field(default=(), kw_only=True)

    def reasons(self, context: Context[E_contra]) -> tuple[Reason, ...]:
        """The :class:`~incidentflow.Reason` objects it is unmet for; none when it holds."""
        found = self.check(context)
        if found is None:
            return ()
        if isinstance(found, str):
            return (Reason(self.code, found),)
        if isinstance(found, Unmet):
            return (Reason(self.code, found.message, found.data),)
        return tuple(Reason(self.code, u.message, u.data) for u in found)

    def __call__(self, context: Context[E_contra]) -> bool:
        return not self.reasons(context)


@attrs.frozen
class Move:
    """Where a command leads from some states.

    Attributes:
        sources: The states it runs in.
        dest: Where it leads (``None``: it records without changing state).
        when: Picks this move among several of one command from one state (e.g.
            ``reopen``'s ``to``); it is told the payload, ``None`` in ``can``.

    """

    sources: tuple[State, ...]
    dest: State | None = None
    when: Callable[[Any], bool] | None = None


@attrs.frozen
class Recorded(Generic[E]):
    """Another event type a command records, with the fold that applies it.

    Attributes:
        event: The payload class.
        fold: Applies it to a snapshot.

    """

    event: type[E]
    fold: Callable[[Incident, Event, E], Incident]


@attrs.frozen
class Argument:
    """One typed, documented argument of a command.

    Attributes:
        name: The keyword the facade method takes.
        check: Validates the raw value, given the argument's name; raises ValidationError.
        doc: What it is, for the API and the command reference.
        default: The default when left out (absent: the argument is required;
            :data:`NOW`: the flow clock's time).
        field: The payload field it fills (default: ``name``).
        incident_ref: It names another incident, which must exist.

    """

    name: str
    check: Callable[[str, Any], Any]
    doc: str
    default: object = _REQUIRED
    field: str = attrs.field()
    incident_ref: bool = False

    @field.default
    def _field(self) -> str:
        return self.name

    @property
    def required(self) -> bool:
        """True when the caller must give it."""
        return self.default is _REQUIRED


def _no_extra_events(context: Context[E], payload: E) -> Sequence[EventData]:
    return (payload,)


@attrs.frozen
class Command(Generic[E]):
    """Everything about one command, declared once.

    Attributes:
        name: The command's name, e.g. ``"add_evidence"`` (the facade method's name).
        summary: One sentence: what it does.
        event: The payload class of the event it records.
        moves: The states it runs in and where it leads from each.
        arguments: Its typed, documented arguments, in order.
        guards: Its requirements, each with a reason code; every unmet one is reported.
        fold: Applies its event to a snapshot, the state change included
            (``None`` when another command's definition folds that event type).
        records: Other event types it records that no other command defines.
        prepare: Completes or checks the payload against the incident (fills in
            derived fields; raises ValidationError for a value that does not fit
            this incident). Runs after the guards.
        emit: The events it records, from the prepared payload (default: just it).
        system: Run by the library itself (``check_deadlines``), not by people.

    """

    name: str
    summary: str
    event: type[E]
    moves: tuple[Move, ...]
    fold: Callable[[Incident, Event, E], Incident] | None
    arguments: tuple[Argument, ...] = ()
    records: tuple[Recorded[Any], ...] = ()
    guards: tuple[Guard[E], ...] = ()
    prepare: Callable[[Context[E], E], E] | None = None
    emit: Callable[[Context[E], E], Sequence[EventData]] = _no_extra_events
    system: bool = False
    _names: frozenset[str] = attrs.field(init=False, eq=False, repr=False)

    references: tuple[Argument, ...] = attrs.field(init=False, eq=False, repr=False)
    #: The kinds of links whose other incidents' states its guards read.
    sees_links: frozenset[str] = attrs.field(init=False, eq=False, repr=False)

    @sees_links.default
    def _sees_links(self) -> frozenset[str]:
        return frozenset(kind for guard in self.guards for kind in guard.sees)

    _fields_by_name: bool = attrs.field(init=False, eq=False, repr=False)
    #: True when it has no guards and records its payload as given: nothing to decide.
    plain: bool = attrs.field(init=False, eq=False, repr=False)

    #: True when ``emit`` records more than the payload.
    emits_more: bool = attrs.field(init=False, eq=False, repr=False)

    #: Builds its payload: what ``event(...)`` builds, faster (see :mod:`incidentflow._builders`).
    _build_payload: Callable[..., E] = attrs.field(init=False, eq=False, repr=False)

    @_build_payload.default
    def _payload_builder(self) -> Callable[..., E]:
        return builder(self.event)

    @emits_more.default
    def _emits_more(self) -> bool:
        return self.emit is not _no_extra_events

    @plain.default
    def _nothing_to_decide(self) -> bool:
        return not self.guards and self.prepare is None and self.emit is _no_extra_events

    @_fields_by_name.default
    def _fills_by_name(self) -> bool:
        return all(a.field == a.name and a.default is not NOW for a in self.arguments)

    # (name, check, default) of each argument, read once: validate runs on every command.
    _checks: tuple[tuple[str, Callable[[str, Any], Any], object], ...] = attrs.field(
        init=False, eq=False, repr=False
    )

    #: :meth:`validate`, compiled for this command's arguments: the same values and errors.
    validated: Callable[[Mapping[str, Any]], dict[str, Any]] = attrs.field(
        init=False, eq=False, repr=False
    )

    @validated.default
    def _compiled_validate(self) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
        return _compile_validate(self)

    @_checks.default
    def _argument_checks(self) -> tuple[tuple[str, Callable[[str, Any], Any], object], ...]:
        return tuple((a.name, a.check, a.default) for a in self.arguments)

    @_names.default
    def _argument_names(self) -> frozenset[str]:
        return frozenset(a.name for a in self.arguments)

    @references.default
    def _references(self) -> tuple[Argument, ...]:
        """The arguments that name another incident."""
        return tuple(a for a in self.arguments if a.incident_ref)

    @property
    def runs_in(self) -> tuple[State, ...]:
        """Every state it is allowed in, in lifecycle order."""
        sources = {s for move in self.moves for s in move.sources}
        return tuple(s for s in State if s in sources)

    @property
    def changes_state(self) -> bool:
        """True when some move of it leads to another state."""
        return any(move.dest is not None for move in self.moves)

    def validate(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Each argument checked, keyed by name; left-out optional ones keep their default.

        This is what an idempotency key fingerprints: two calls that mean the
        same (``"p1"`` and ``Severity.P1``, the same instant in two UTC offsets)
        validate to the same values. Raises ValidationError naming the field.
        """
        if not self._names.issuperset(args):
            unknown = [name for name in args if name not in self._names]
            raise ValidationError(
                unknown[0], f"{self.name} takes no such argument; it takes {self._accepted()}"
            )
        values: dict[str, Any] = {}
        for name, check, default in self._checks:
            given = args.get(name, default)
            if given is None:
                if default is NOW:
                    given = NOW  # None leaves a time argument to the clock, as leaving it out does
                elif default is None:
                    values[name] = None
                    continue
            elif given is _REQUIRED:
                missing = [a.name for a in self.arguments if a.required and a.name not in args]
                raise ValidationError(missing[0], f"{self.name} needs {', '.join(missing)}")
            values[name] = given if given is NOW else check(name, given)
        return values

    def payload(self, values: Mapping[str, Any], now: datetime) -> E:
        """The payload the validated ``values`` propose (:data:`NOW` becomes ``now``)."""
        if self._fields_by_name:  # every argument fills the field of its name, none defaults to now
            return self._build_payload(**values)
        fields = {a.field: now if values[a.name] is NOW else values[a.name] for a in self.arguments}
        return self._build_payload(**fields)

    def _accepted(self) -> str:
        return ", ".join(a.name for a in self.arguments) or "no arguments"


def _compile_validate(command: Command[Any]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """``command.validate`` unrolled: each argument read, defaulted and checked in turn.

    Anything unusual (an unknown or missing argument) is handed to ``validate``
    itself, which raises what it raises; the checks are pure, so asking again is safe.
    """
    namespace: dict[str, Any] = {
        "_names": frozenset(a.name for a in command.arguments),
        "_general": command.validate,
        "_NOW": NOW,
        "_REQUIRED": _REQUIRED,
    }
    lines = [
        "def validated(args):",
        "    if not _names.issuperset(args):",
        "        return _general(args)",
    ]
    lines.append("    values = {}")
    for i, argument in enumerate(command.arguments):
        name, check = repr(argument.name), f"_check_{i}"
        namespace[check] = argument.check
        assign = [f"values[{name}] = given if given is _NOW else {check}({name}, given)"]
        seen = v.remembered(argument.check)
        if seen is not None:
            # A text the check accepted before is answered here, without calling it again.
            namespace[f"_seen_{i}"], namespace[f"_max_{i}"] = seen[0].get, seen[1]
            assign = [
                f"if given.__class__ is str and (found := _seen_{i}(given)) is not None "
                f"and len(found) <= _max_{i}:",
                f"    values[{name}] = found",
                "else:",
                *(f"    {line}" for line in assign),
            ]
        if argument.default is None or argument.default is NOW:
            left_out = "None" if argument.default is None else "_NOW"
            lines += [
                f"    given = args.get({name})",
                "    if given is None:",
                f"        values[{name}] = {left_out}",
                "    else:",
                *(f"        {line}" for line in assign),
            ]
            continue
        namespace[f"_default_{i}"] = argument.default
        lines.append(f"    given = args.get({name}, _default_{i})")
        if argument.default is _REQUIRED:
            lines += ["    if given is _REQUIRED:", "        return _general(args)"]
        lines += [f"    {line}" for line in assign]
    lines.append("    return values")
    source = "\n".join(lines)
    exec(compile(source, f"<incidentflow validate of {command.name}>", "exec"), namespace)
    compiled: Callable[[Mapping[str, Any]], dict[str, Any]] = namespace["validated"]
    return compiled
