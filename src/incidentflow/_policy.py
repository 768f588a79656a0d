"""The policy: the process's numbers and switches, and the checks it implies.

Each setting is declared once, as a field of :class:`Policy` whose metadata holds
its TOML form (a :class:`TomlForm`: the key, what it accepts, how a value is read
and written). :meth:`Policy.to_dict`, :meth:`Policy.from_dict`, the TOML files,
the configuration's ``[policy]`` table, the errors naming a wrong key and the
starter file's comments are all derived from those forms.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import attrs

from ._blame import BlameCheck, find_blame
from ._model import Incident, Severity
from ._reasons import Reason
from ._validate import severity as _valid_severity
from ._validate import triage_key
from .exceptions import ConfigError, ValidationError

__all__ = ["BlameCheck", "CommandRequest", "Guard", "Policy", "find_blame"]


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
Guard = Callable[
    [Incident | None, CommandRequest], str | Reason | bool | Iterable[str | Reason] | None
]

_DEFAULT_TARGETS = MappingProxyType(
    {
        Severity.P1: timedelta(minutes=5),
        Severity.P2: timedelta(minutes=30),
        Severity.P3: timedelta(hours=2),
        Severity.P4: timedelta(days=14),
    }
)

# -- TOML text: shared with the configuration, which reads the same files ----------

# Durations beyond a century are typing mistakes, and beyond timedelta's range errors.
_MAX_DAYS: Final = 36_500
_UNIT_LIMITS: Final = MappingProxyType(
    {"seconds": _MAX_DAYS * 86_400, "minutes": _MAX_DAYS * 1_440, "hours": _MAX_DAYS * 24}
)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
#: The severities' names, as messages list them.
SEVERITY_NAMES: Final = ", ".join(s.value for s in Severity)


def toml_shown(value: object, limit: int = 60) -> str:
    """``value`` as it would be written in TOML, cut to ``limit`` characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, (datetime, date, time)):
        text = f"{value.isoformat()} (a date or time)"
    elif isinstance(value, Mapping):
        text = "a table"
    elif isinstance(value, (list, tuple)):
        shown = ", ".join(toml_shown(v, limit) for v in value[:5])
        text = f"[{shown}, ...]" if len(value) > 5 else f"[{shown}]"
    else:
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def toml_key(*parts: str | int) -> str:
    """A dotted TOML key from names and 1-based list positions: ``routes[2].notifier``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            shown = part if _BARE_KEY.match(part) else json.dumps(part, ensure_ascii=False)
            text += ("." if text else "") + shown
    return text


def toml_number(key: str, value: object, *, unit: str, above: bool = False) -> float:
    """``value``, a finite number of ``unit`` from 0 (or above 0) up to a century."""
    bound = "greater than 0" if above else "0 or more"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, f"expected a number of {unit}, {bound}, got {toml_shown(value)}")
    if (value <= 0 if above else value < 0) or value > _UNIT_LIMITS.get(unit, math.inf):
        raise ConfigError(
            key,
            f"expected a number of {unit}, {bound} (at most 100 years), got {toml_shown(value)}",
        )
    return value


def toml_severity(key: str, value: object) -> Severity:
    """``value``, the name of a severity (``"P1"`` .. ``"P4"``, any case)."""
    if isinstance(value, str) and value.strip().upper() in SEVERITY_NAMES.split(", "):
        return Severity(value.strip().upper())
    raise ConfigError(key, f"expected a severity ({SEVERITY_NAMES}), got {toml_shown(value)}")


def unknown_key_message(
    unknown: Sequence[str],
    accepted: Sequence[str],
    label: str,
    elsewhere: Mapping[str, str] = MappingProxyType({}),
) -> str:
    """What to say about ``unknown`` keys in the table ``label`` that takes ``accepted``.

    The hint is a near spelling of the first unknown key, else the table
    ``elsewhere`` says it belongs in.
    """
    import difflib

    if not accepted:
        return f"unknown key; {label} takes no keys"
    first = unknown[0]
    close = difflib.get_close_matches(first, accepted, n=1)
    if close:
        hint = f" (did you mean {close[0]}?)"
    elif first in elsewhere:
        hint = f" ({first} belongs in {elsewhere[first]})"
    else:
        hint = ""
    also = f" (also unknown: {', '.join(unknown[1:])})" if unknown[1:] else ""
    return f"unknown key{also}; {label} accepts {', '.join(accepted)}{hint}"


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's content; ConfigError naming the file if unreadable or not TOML."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            str(path),
            "cannot read the file: no such file; check the path, or run incidentflow init",
        ) from None
    except IsADirectoryError:
        raise ConfigError(str(path), "is a folder; give the path of a TOML file") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(path), f"is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    return loads_toml(text, str(path))


def loads_toml(text: str, name: str) -> dict[str, Any]:
    """The TOML document ``text``; ConfigError keyed ``name`` (its file) if it is not TOML."""
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, f"not valid TOML: {exc}; fix the file there") from None


def _whole(value: float) -> float:
    """Whole numbers as integers, so the TOML reads ``15`` rather than ``15.0``."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _items(key: str, value: object, accepts: str) -> Sequence[object]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(key, f"expected {accepts}, got {toml_shown(value)}")
    return value


# -- each setting's TOML form ----------------------------------------------------------


@attrs.frozen
class TomlForm:
    """How one policy setting is written in TOML: declared in the field's metadata.

    Attributes:
        key: Its key in a ``[policy]`` table, e.g. ``"watch_window_minutes"``.
        help: One line saying what it sets (for comments and docs).
        accepts: What the key accepts, as errors and docs say it.
        read: The TOML value and its dotted key (for errors) → the Policy argument.
        write: The Policy value → the TOML value.

    """

    key: str
    help: str
    accepts: str
    read: Callable[[object, str], Any]
    write: Callable[[Any], Any]


def _toml(
    key: str,
    help: str,
    accepts: str,
    read: Callable[[object, str], Any],
    write: Callable[[Any], Any],
) -> dict[str, TomlForm]:
    return {"toml": TomlForm(key, help, accepts, read, write)}


def _in_unit(key: str, unit: str, help: str) -> dict[str, TomlForm]:
    """A duration written as a number of ``unit`` (0 or more)."""
    one = timedelta(**{unit: 1})

    def read(value: object, where: str) -> timedelta:
        return timedelta(**{unit: toml_number(where, value, unit=unit)})

    def write(value: timedelta) -> float:
        return _whole(value / one)

    return _toml(key, help, f"a number of {unit}, 0 or more", read, write)


_TARGETS_ACCEPT: Final = "a table of severity = minutes, e.g. { P1 = 5, P2 = 30 }"


def _read_targets(value: object, where: str) -> dict[Severity, timedelta]:
    if not isinstance(value, Mapping):
        raise ConfigError(where, f"expected {_TARGETS_ACCEPT}, got {toml_shown(value)}")
    targets = {}
    for name, minutes in value.items():
        at = f"{where}.{toml_key(str(name))}"
        severity = toml_severity(at, name)
        targets[severity] = timedelta(minutes=toml_number(at, minutes, unit="minutes", above=True))
    return targets


def _write_targets(value: Mapping[Severity, timedelta]) -> dict[str, float]:
    return {s.value: _whole(value[s] / timedelta(minutes=1)) for s in Severity}


_ANSWERS_ACCEPT: Final = 'a list of question names, e.g. ["symptom", "started_at", "scope"]'


def _read_answers(value: object, where: str) -> tuple[str, ...]:
    items = _items(where, value, _ANSWERS_ACCEPT)
    for number, item in enumerate(items, start=1):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(
                f"{where}[{number}]",
                f'expected a question name (text), e.g. "customer_impact", got {toml_shown(item)}',
            )
    return tuple(str(item) for item in items)


def _read_severities(value: object, where: str) -> frozenset[Severity]:
    items = _items(where, value, f"a list of severities ({SEVERITY_NAMES})")
    return frozenset(toml_severity(f"{where}[{n}]", v) for n, v in enumerate(items, start=1))


def _read_flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(where, f"expected true or false, got {toml_shown(value)}")
    return value


_BLAME_CHECKS: Final = ", ".join(b.value for b in BlameCheck)


def _read_blame_check(value: object, where: str) -> BlameCheck:
    if not isinstance(value, str) or value not in _BLAME_CHECKS.split(", "):
        raise ConfigError(where, f"expected one of {_BLAME_CHECKS}, got {toml_shown(value)}")
    return BlameCheck(value)


# -- the checks of the Python constructor ----------------------------------------------


def _severity(value: object, key: str) -> Severity:
    try:
        return _valid_severity(value, key)
    except ValidationError as exc:
        raise ConfigError(key, exc.message) from None


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
        raise ConfigError("blame_check", f"{value!r} is not one of {_BLAME_CHECKS}") from None


def _answers(value: Iterable[str]) -> tuple[str, ...]:
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
        default=_DEFAULT_TARGETS,
        converter=_targets,
        metadata=_toml(
            "response_minutes",
            "Time from declaration to the start of triage, per severity, in minutes.",
            _TARGETS_ACCEPT,
            _read_targets,
            _write_targets,
        ),
    )
    required_triage_answers: tuple[str, ...] = attrs.field(
        default=("symptom", "started_at", "scope"),
        converter=_answers,
        metadata=_toml(
            "required_triage_answers",
            "Triage questions answered before contain (add your own, e.g. customer_impact).",
            _ANSWERS_ACCEPT,
            _read_answers,
            list,
        ),
    )
    watch_window: timedelta = attrs.field(
        default=timedelta(minutes=15),
        converter=_watch_window,
        metadata=_in_unit(
            "watch_window_minutes",
            "minutes",
            "How long after the last deploy before resolve is allowed.",
        ),
    )
    confirmer_must_differ: bool = attrs.field(
        default=True,
        validator=_bool,
        metadata=_toml(
            "confirmer_must_differ",
            "The user who confirms the fix may not be the incident commander.",
            "true or false",
            _read_flag,
            bool,
        ),
    )
    postmortem_severities: frozenset[Severity] = attrs.field(
        default=frozenset({Severity.P1, Severity.P2}),
        converter=_severities,
        metadata=_toml(
            "postmortem_severities",
            "Severities whose incidents need a completed post-mortem.",
            f"a list of severities ({SEVERITY_NAMES})",
            _read_severities,
            lambda value: sorted(s.value for s in value),
        ),
    )
    blame_check: BlameCheck = attrs.field(
        default=BlameCheck.WARN,
        converter=_blame_check,
        metadata=_toml(
            "blame_check",
            "Blaming language in a post-mortem: warn on the event, reject the command, or off.",
            f"one of {_BLAME_CHECKS}",
            _read_blame_check,
            lambda value: value.value,
        ),
    )
    postmortem_due: timedelta = attrs.field(
        default=timedelta(hours=24),
        converter=_postmortem_due,
        metadata=_in_unit(
            "postmortem_due_hours", "hours", "How long after resolution the post-mortem is due."
        ),
    )
    # Guards are code: they have no TOML form and are added after loading.
    guards: Mapping[str, tuple[Guard, ...]] = attrs.field(
        factory=lambda: MappingProxyType({}), eq=False, repr=False, metadata={"toml": None}
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
        """The policy as plain TOML-ready values (durations in minutes, the due time in hours).

        >>> Policy().to_dict()["watch_window_minutes"]
        15
        """
        return {form.key: form.write(getattr(self, name)) for name, form in toml_forms().items()}

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str = "policy", prefix: Sequence[str] = ()
    ) -> Policy:
        """Build a policy from :meth:`to_dict`'s shape; keys left out keep their defaults.

        An unknown key or a wrong value raises ConfigError keyed
        ``"<source>: <key>"`` (``prefix`` is the table's own dotted key in a
        larger file, e.g. ``("policy",)``), saying what the key accepts.

        >>> Policy.from_dict({"blame_check": "reject"}).blame_check.value
        'reject'
        """
        forms = toml_forms()
        fields = {form.key: name for name, form in forms.items()}

        def where(key: str) -> str:
            return f"{source}: {key}" if key else source

        if not isinstance(data, Mapping):
            raise ConfigError(where(toml_key(*prefix)), f"expected a table, got {toml_shown(data)}")
        unknown = sorted(str(key) for key in data if key not in fields)
        if unknown:
            label = f"[{toml_key(*prefix)}]" if prefix else "the top level"
            raise ConfigError(
                where(toml_key(*prefix, unknown[0])),
                unknown_key_message(unknown, list(fields), label),
            )
        settings: dict[str, Any] = {}
        for name, form in forms.items():  # in field order, so the first wrong key is named
            if form.key in data:
                try:
                    settings[name] = form.read(data[form.key], toml_key(*prefix, form.key))
                except ConfigError as exc:
                    raise ConfigError(where(exc.key), exc.message) from None
        try:
            return cls(**settings)
        except ConfigError as exc:  # a check of the constructor that the reader did not make
            named = forms.get(exc.key)
            key = toml_key(*prefix, named.key if named is not None else exc.key)
            raise ConfigError(where(key), exc.message) from None

    def to_toml(self) -> str:
        """The policy as a TOML document, which :meth:`from_toml` reads back."""
        import tomli_w

        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, path: str | Path) -> Policy:
        """Load a policy from a TOML file (the whole file, or its ``[policy]`` table)."""
        path = Path(path)
        data = read_toml(path)
        if "policy" not in data:
            return cls.from_dict(data, source=str(path))
        return cls.from_dict(data["policy"], source=str(path), prefix=("policy",))


@functools.cache
def toml_forms() -> Mapping[str, TomlForm]:
    """Each policy setting's TOML form, by field name, in field order."""
    forms = {field.name: field.metadata["toml"] for field in attrs.fields(Policy)}
    return MappingProxyType({name: form for name, form in forms.items() if form is not None})
