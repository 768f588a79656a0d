"""The policy: the process's numbers and switches, and the checks it implies."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from ._model import Incident, Severity
from .exceptions import ConfigError, ValidationError

__all__ = ["BlameCheck", "CommandRequest", "Guard", "Policy", "find_blame"]


class BlameCheck(enum.Enum):
    """What to do when a post-mortem seems to blame a person."""

    OFF = "off"
    WARN = "warn"
    REJECT = "reject"


@attrs.frozen
class CommandRequest:
    """What a custom guard is told about the command being decided.

    Attributes:
        command: The command name, e.g. ``"resolve"``.
        actor: Who runs it.
        now: The flow clock's time (aware UTC).
        args: The command's validated arguments.

    """

    command: str
    actor: str
    now: datetime
    args: Mapping[str, Any]


#: A custom guard: returns ``None`` (or nothing) when satisfied, else one reason
#: or several. ``incident`` is ``None`` for ``declare``.
Guard = Callable[[Incident | None, CommandRequest], str | Iterable[str] | None]

_DEFAULT_TARGETS = MappingProxyType(
    {
        Severity.P1: timedelta(minutes=5),
        Severity.P2: timedelta(minutes=30),
        Severity.P3: timedelta(hours=2),
        Severity.P4: timedelta(days=14),
    }
)


def _severity(value: object, key: str) -> Severity:
    from ._validate import severity

    try:
        return severity(value, key)
    except ValidationError as exc:
        raise ConfigError(key, str(exc).split(": ", 1)[-1]) from None


def _targets(value: Mapping[Severity | str, timedelta]) -> Mapping[Severity, timedelta]:
    if not isinstance(value, Mapping):
        raise ConfigError("response_targets", "expected a mapping of severity to timedelta")
    targets = dict(_DEFAULT_TARGETS)
    for key, target in value.items():
        if not isinstance(target, timedelta) or target <= timedelta(0):
            raise ConfigError("response_targets", f"{key}: expected a positive timedelta")
        targets[_severity(key, "response_targets")] = target
    return MappingProxyType(targets)


def _severities(value: Iterable[Severity | str]) -> frozenset[Severity]:
    if isinstance(value, (str, Severity)) or not isinstance(value, Iterable):
        raise ConfigError("postmortem_severities", "expected a list of severities")
    return frozenset(_severity(v, "postmortem_severities") for v in value)


def _bool(instance: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(attribute.name, f"expected True or False, got {value!r}")


def _duration(name: str, value: timedelta) -> timedelta:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise ConfigError(name, f"expected a timedelta of zero or more, got {value!r}")
    return value


def _watch_window(value: timedelta) -> timedelta:
    return _duration("watch_window", value)


def _postmortem_due(value: timedelta) -> timedelta:
    return _duration("postmortem_due", value)


def _blame_check(value: BlameCheck | str) -> BlameCheck:
    try:
        return BlameCheck(value)
    except ValueError:
        accepted = ", ".join(b.value for b in BlameCheck)
        raise ConfigError("blame_check", f"{value!r} is not one of {accepted}") from None


def _answers(value: Iterable[str]) -> tuple[str, ...]:
    from ._validate import triage_key

    if isinstance(value, str):
        raise ConfigError("required_triage_answers", "expected a list of question names")
    answers = tuple(value)
    if any(not isinstance(a, str) or not a.strip() for a in answers):
        raise ConfigError("required_triage_answers", "each answer name must be non-empty text")
    return tuple(triage_key(a) for a in answers)


@attrs.frozen(kw_only=True)
class Policy:
    """The process's numbers and switches. Immutable; derive variants with ``attrs.evolve``.

    Attributes:
        response_targets: Time from declaration to the start of triage, per severity.
        required_triage_answers: Triage questions that must be answered before ``contain``.
        watch_window: How long after the last deploy before ``resolve`` is allowed.
        confirmer_must_differ: The user who confirms the fix may not be the commander.
        postmortem_severities: Severities whose incidents need a completed post-mortem.
        blame_check: Warn on (default), reject, or ignore blaming language.
        postmortem_due: How long after resolution the post-mortem is due.
        guards: Extra guards per command, added with :meth:`with_guard`.

    """

    response_targets: Mapping[Severity, timedelta] = attrs.field(
        default=_DEFAULT_TARGETS, converter=_targets
    )
    required_triage_answers: tuple[str, ...] = attrs.field(
        default=("symptom", "started_at", "scope"), converter=_answers
    )
    watch_window: timedelta = attrs.field(default=timedelta(minutes=15), converter=_watch_window)
    confirmer_must_differ: bool = attrs.field(default=True, validator=_bool)
    postmortem_severities: frozenset[Severity] = attrs.field(
        default=frozenset({Severity.P1, Severity.P2}), converter=_severities
    )
    blame_check: BlameCheck = attrs.field(default=BlameCheck.WARN, converter=_blame_check)
    postmortem_due: timedelta = attrs.field(default=timedelta(hours=24), converter=_postmortem_due)
    guards: Mapping[str, tuple[Guard, ...]] = attrs.field(
        factory=lambda: MappingProxyType({}), eq=False, repr=False
    )

    def needs_postmortem(self, severity: Severity) -> bool:
        """True when incidents of this severity need a completed post-mortem."""
        return severity in self.postmortem_severities

    def response_target(self, severity: Severity) -> timedelta:
        """The time allowed from declaration to the start of triage."""
        return self.response_targets[severity]

    def with_guard(self, command: str, guard: Guard) -> Policy:
        """A copy of this policy with ``guard`` added to ``command``'s guards.

        >>> def two_person_rule(incident, request):
        ...     if request.actor == "intern":
        ...         return "an intern may not resolve incidents alone"
        >>> policy = Policy().with_guard("resolve", two_person_rule)
        >>> len(policy.guards["resolve"])
        1
        """
        from ._lifecycle import COMMANDS

        if command not in COMMANDS:
            raise ConfigError(
                "guards", f"{command!r} is not a command; use one of {', '.join(COMMANDS)}"
            )
        if not callable(guard):
            raise ConfigError("guards", f"a guard must be callable, got {type(guard).__name__}")
        guards = dict(self.guards)
        guards[command] = (*guards.get(command, ()), guard)
        return attrs.evolve(self, guards=MappingProxyType(guards))

    # -- TOML ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain TOML-ready values (durations in minutes)."""
        return {
            "response_minutes": {
                s.value: self.response_targets[s] / timedelta(minutes=1) for s in Severity
            },
            "required_triage_answers": list(self.required_triage_answers),
            "watch_window_minutes": self.watch_window / timedelta(minutes=1),
            "confirmer_must_differ": self.confirmer_must_differ,
            "postmortem_severities": sorted(s.value for s in self.postmortem_severities),
            "blame_check": self.blame_check.value,
            "postmortem_due_hours": self.postmortem_due / timedelta(hours=1),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "policy") -> Policy:
        """Build a policy from :meth:`to_dict`'s shape; keys left out keep their defaults.

        An unknown key or a wrong value raises ConfigError keyed
        ``"<source>: <key>"``, saying what the key accepts.
        """
        from ._config import policy_from_table

        return policy_from_table(data, source=source)

    def to_toml(self) -> str:
        """The policy as a TOML document."""
        import tomli_w

        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, path: str | Path) -> Policy:
        """Load a policy from a TOML file (the whole file, or its ``[policy]`` table)."""
        from ._config import policy_from_table, read_toml

        path = Path(path)
        data = read_toml(path)
        if "policy" not in data:
            return policy_from_table(data, source=str(path))
        return policy_from_table(data["policy"], source=str(path), prefix=("policy",))


_FAILURE_VERBS = (
    "forgot|forget|broke|break|failed|fail|missed|miss|messed|screwed|neglected|ignored|"
    "caused|deleted|dropped|botched|overlooked|skipped"
)
_GENERIC_BLAME = re.compile(
    r"\bhuman error\b|\boperator error\b|\b(\w+)['’]s fault\b|\bfault of (\w+)\b",
    re.IGNORECASE,
)
# Shorter names ("a", "jo") would match ordinary words next to a failure verb.
_MIN_NAME_LENGTH = 3


def find_blame(text: str, participants: Iterable[str]) -> list[str]:
    """Phrases in ``text`` that blame a person rather than the process.

    >>> find_blame("Bob forgot to run the migration", ["bob"])
    ['"Bob forgot" names a person next to a failure; describe the process gap instead']
    >>> find_blame("The deploy script skipped the migration", ["bob"])
    []
    """
    found: list[str] = []
    for match in _GENERIC_BLAME.finditer(text):
        found.append(f'"{match.group(0)}" assigns blame; describe the process gap instead')
    for person in sorted({p for p in participants if len(p) >= _MIN_NAME_LENGTH}):
        pattern = re.compile(
            rf"\b{re.escape(person)}\b(?:\W+\w+){{0,2}}?\W+(?:{_FAILURE_VERBS})\b",
            re.IGNORECASE,
        )
        for match in pattern.finditer(text):
            found.append(
                f'"{match.group(0)}" names a person next to a failure; '
                "describe the process gap instead"
            )
    return found
