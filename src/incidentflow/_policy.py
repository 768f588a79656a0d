"""The policy: the process's numbers and switches, and the checks it implies.

Each setting is declared once, as a field of :class:`Policy` whose metadata holds
its TOML form (a :class:`TomlForm`: the key, what it accepts, how a value is read
and written). :meth:`Policy.to_dict`, :meth:`Policy.from_dict`, the TOML files,
the configuration's ``[policy]`` table, the errors naming a wrong key and the
starter file's comments are all derived from those forms.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from . import _policy_checks as check
from . import _policy_toml as pt
from ._authz import Authorizer
from ._blame import BlameCheck, find_blame
from ._fields import FIELD_TYPES
from ._model import FieldValue, Incident, Severity
from ._process import Process, ProcessOverride
from ._reasons import Reason
from ._toml import (
    SEVERITY_NAMES,
    TomlForm,
    form,
    in_unit,
    read_count,
    read_flag,
    read_questions,
    read_toml,
    toml_forms_of,
    toml_key,
    toml_shown,
    unknown_key_message,
)
from ._validate import severity as _valid_severity
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
        authorizer: Who may run what (:class:`~incidentflow.Access`, or your own
            :class:`~incidentflow.Authorizer`); asked before any guard. ``None``:
            everyone may run everything.

    """

    response_targets: Mapping[Severity, timedelta] = attrs.field(
        default=check.DEFAULT_TARGETS,
        converter=check.targets,
        metadata=form(
            "response_minutes",
            "Time from declaration to the start of triage, per severity, in minutes.",
            pt.TARGETS_ACCEPT,
            pt.read_targets,
            pt.write_targets,
        ),
    )
    required_triage_answers: tuple[str, ...] = attrs.field(
        default=("symptom", "started_at", "scope"),
        converter=check.answers,
        metadata=form(
            "required_triage_answers",
            "Triage questions answered before contain (add your own, e.g. customer_impact).",
            'a list of question names, e.g. ["symptom", "started_at", "scope"]',
            read_questions,
            list,
        ),
    )
    watch_window: timedelta = attrs.field(
        default=timedelta(minutes=15),
        converter=check.watch_window,
        metadata=in_unit(
            "watch_window_minutes",
            "minutes",
            "How long after the last deploy before resolve is allowed.",
        ),
    )
    confirmer_must_differ: bool = attrs.field(
        default=True,
        validator=check.flag,
        metadata=form(
            "confirmer_must_differ",
            "The user who confirms the fix may not be the incident commander.",
            "true or false",
            read_flag,
            bool,
        ),
    )
    postmortem_severities: frozenset[Severity] = attrs.field(
        default=frozenset({Severity.P1, Severity.P2}),
        converter=check.severities,
        metadata=form(
            "postmortem_severities",
            "Severities whose incidents need a completed post-mortem.",
            f"a list of severities ({SEVERITY_NAMES})",
            pt.read_severities,
            lambda value: sorted(s.value for s in value),
        ),
    )
    blame_check: BlameCheck = attrs.field(
        default=BlameCheck.WARN,
        converter=check.blame_check,
        metadata=form(
            "blame_check",
            "Blaming language in a post-mortem: warn on the event, reject the command, or off.",
            f"one of {check.BLAME_CHECKS}",
            pt.read_blame_check,
            lambda value: value.value,
        ),
    )
    postmortem_due: timedelta = attrs.field(
        default=timedelta(hours=24),
        converter=check.postmortem_due,
        metadata=in_unit(
            "postmortem_due_hours", "hours", "How long after resolution the post-mortem is due."
        ),
    )
    staging_required: bool = attrs.field(
        default=True,
        validator=check.flag,
        metadata=form(
            "staging_required",
            "The fix must be verified on staging before mark_fixed.",
            "true or false",
            read_flag,
            bool,
        ),
    )
    min_action_items: int = attrs.field(
        default=1,
        converter=check.min_action_items,
        metadata=form(
            "min_action_items",
            "Live action items needed before closing: 1 or more (a hard rule where a "
            "post-mortem is written; a severity without one may set 0 in its override).",
            "a whole number, 1 or more",
            read_count,
            int,
        ),
    )
    update_cadence: timedelta | None = attrs.field(
        default=None,
        converter=check.update_cadence,
        metadata=form(
            "update_cadence_minutes",
            "How often a status update is due while an incident is open, in minutes "
            "(0: no cadence).",
            "a number of minutes, 0 or more (0: no cadence)",
            pt.read_cadence,
            pt.write_cadence,
        ),
    )
    incident_types: tuple[str, ...] = attrs.field(
        default=("availability", "security", "data", "performance"),
        converter=check.incident_types,
        metadata=pt.keys_form(
            "incident_types",
            "The incident types; the first is the default at declare.",
            '["availability", "security"]',
        ),
    )
    triage_questions: tuple[str, ...] = attrs.field(
        default=(),
        converter=check.questions,
        metadata=form(
            "triage_questions",
            "Optional triage questions the policy knows besides the required ones.",
            'a list of question names, e.g. ["customer_impact"]',
            read_questions,
            list,
        ),
    )
    roles: tuple[str, ...] = attrs.field(
        default=("commander", "communications_lead", "operations_lead", "scribe"),
        converter=check.roles,
        metadata=pt.keys_form(
            "roles", "The roles of an incident; commander among them.", '["commander", "scribe"]'
        ),
    )
    severities: Mapping[Severity, ProcessOverride] = attrs.field(
        factory=lambda: MappingProxyType({}),
        converter=check.severity_overrides,
        metadata=pt.overrides_form(
            "severity",
            "A process per severity: [policy.severity.P3] sets what P3 incidents do differently.",
            "severity",
            by_severity=True,
        ),
    )
    types: Mapping[str, ProcessOverride] = attrs.field(
        factory=lambda: MappingProxyType({}),
        converter=check.type_overrides,
        metadata=pt.overrides_form(
            "type",
            "A process per incident type: [policy.type.security] sets what security "
            "incidents add (its triage questions add to the severity's).",
            "incident type",
            by_severity=False,
        ),
    )
    custom_fields: Mapping[str, str] = attrs.field(
        factory=lambda: MappingProxyType({}),
        converter=check.custom_fields,
        metadata=form(
            "fields",
            f"Custom fields an incident may carry, each with its type ({', '.join(FIELD_TYPES)}).",
            pt.FIELDS_ACCEPT,
            pt.read_fields,
            dict,
        ),
    )
    labels: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=lambda: MappingProxyType({}),
        converter=check.labels,
        metadata=form(
            "labels",
            "Allowed labels, each key with its allowed values (an empty list allows any "
            "value); without this table any label is allowed.",
            pt.LABELS_ACCEPT,
            pt.read_labels,
            lambda value: {key: list(allowed) for key, allowed in value.items()},
        ),
    )
    # Guards are code: they have no TOML form and are added after loading.
    guards: Mapping[str, tuple[Guard, ...]] = attrs.field(
        factory=lambda: MappingProxyType({}),
        converter=check.guards,
        eq=False,
        repr=False,
        metadata={"toml": None},
    )
    # The authorizer is code too: asked before any guard (see incidentflow._authz).
    authorizer: Authorizer | None = attrs.field(
        default=None, eq=False, repr=False, metadata={"toml": None}
    )
    # Guards resolve a process on every command: each (severity, type) is resolved once.
    _processes: dict[tuple[Severity, str | None], Process] = attrs.field(
        init=False, factory=dict, eq=False, repr=False, metadata={"toml": None}
    )
    # Asked on every command: whether any severity or type requires roles.
    _requires_roles: bool = attrs.field(init=False, eq=False, repr=False, metadata={"toml": None})

    # Asked on every command: no custom guard, authorizer or required role to consult.
    _unchecked: bool = attrs.field(init=False, eq=False, repr=False, metadata={"toml": None})

    # Asked on every answer_triage.
    _known_questions: tuple[str, ...] = attrs.field(
        init=False, eq=False, repr=False, metadata={"toml": None}
    )

    @_known_questions.default
    def _every_question(self) -> tuple[str, ...]:
        found = [*self.required_triage_answers, *self.triage_questions]
        for override in (*self.severities.values(), *self.types.values()):
            found.extend(override.triage_questions or ())
        return tuple(dict.fromkeys(found))

    @_requires_roles.default
    def _any_required_roles(self) -> bool:
        return any(o.required_roles for o in (*self.severities.values(), *self.types.values()))

    @_unchecked.default
    def _nothing_but_the_guards(self) -> bool:
        return not self.guards and self.authorizer is None and not self._requires_roles

    def __attrs_post_init__(self) -> None:
        check.check_rules(self)

    def needs_postmortem(self, severity: Severity | str, type: str | None = None) -> bool:
        """True when incidents of this severity (and type) need a completed post-mortem."""
        return self.process(severity, type).postmortem_required

    def response_target(self, severity: Severity | str, type: str | None = None) -> timedelta:
        """The time allowed from declaration to the start of triage."""
        return self.process(severity, type).response_target

    def process(self, severity: Severity | str, type: str | None = None) -> Process:
        """The settings an incident of ``severity`` and ``type`` runs under.

        The base settings, then the severity's overrides, then the type's (a
        type's triage questions are added to the severity's). Resolved once per
        pair and kept: the policy is immutable. ``severity`` may be a
        :class:`Severity` or ``"P1"``..``"P4"``; anything else is a ValidationError.

        >>> light = ProcessOverride(staging_required=False, min_action_items=0)
        >>> policy = Policy(severities={"P4": light})
        >>> p1, p4 = policy.process(Severity.P1), policy.process("P4")
        >>> p1.staging_required, p4.staging_required
        (True, False)
        """
        if not isinstance(severity, Severity):
            severity = _valid_severity(severity)
        if type is not None and not isinstance(type, str):
            raise ValidationError(
                "type", f"expected an incident type (str) or None, got {type.__class__.__name__}"
            )
        if type not in self.types:
            type = None  # an incident type without overrides runs its severity's process
        key = (severity, type)
        found = self._processes.get(key)
        if found is None:
            found = self._processes[key] = self._resolve(severity, type)
        return found

    def _resolve(self, severity: Severity, type: str | None) -> Process:
        base = Process(
            response_target=self.response_targets[severity],
            required_triage_answers=self.required_triage_answers,
            staging_required=self.staging_required,
            watch_window=self.watch_window,
            postmortem_required=severity in self.postmortem_severities,
            min_action_items=self.min_action_items,
            update_cadence=self.update_cadence,
        )
        by_severity = self.severities.get(severity)
        if by_severity is not None:
            base = by_severity.over(base)
        by_type = self.types.get(type) if type is not None else None
        if by_type is not None:
            base = by_type.over(base, add_questions=True)
        if base.postmortem_required and base.min_action_items < 1:
            # a hard rule: a type adding a post-mortem to a lighter severity brings an action item
            base = attrs.evolve(base, min_action_items=1)
        return base

    def process_of(self, incident: Incident) -> Process:
        """The settings ``incident`` runs under now, for its severity and type."""
        return self.process(incident.severity, incident.type)

    @property
    def requires_roles(self) -> bool:
        """True when some severity or type requires roles before a command."""
        return self._requires_roles

    @property
    def default_type(self) -> str:
        """The type an incident declared without one gets: the first of ``incident_types``."""
        return self.incident_types[0]

    @property
    def known_triage_questions(self) -> tuple[str, ...]:
        """Every triage question the policy knows: required anywhere, or added as optional."""
        return self._known_questions

    def check_type(self, value: str, field: str = "type") -> str:
        """``value`` if it is an incident type of this policy, else ValidationError."""
        if value in self.incident_types:
            return value
        raise ValidationError(
            field,
            f"{value!r} is not an incident type; use one of {', '.join(self.incident_types)} "
            "(the policy's incident_types lists them)",
        )

    def check_role(self, value: str, field: str = "role") -> str:
        """``value`` if it is a role of this policy, else ValidationError."""
        if value in self.roles:
            return value
        raise ValidationError(
            field,
            f"{value!r} is not a role; use one of {', '.join(self.roles)} "
            "(the policy's roles lists them)",
        )

    def check_label(self, key: str, value: str) -> str:
        """``value`` if the policy allows it for the label ``key``, else ValidationError.

        Without restrictions every label is allowed; once the policy lists label
        keys, only those keys, each with its listed values (any value when the
        list is empty).
        """
        if not self.labels:
            return value
        allowed = self.labels.get(key)
        if allowed is None:
            raise ValidationError(
                f"labels.{key}",
                f"{key!r} is not a label this policy allows; use one of {', '.join(self.labels)}",
            )
        if allowed and value not in allowed:
            raise ValidationError(
                f"labels.{key}",
                f"{value!r} is not allowed for {key}; use one of {', '.join(allowed)}",
            )
        return value

    def check_field(self, name: str, value: object) -> FieldValue:
        """``value`` checked against the custom field ``name`` the policy declares."""
        from ._fields import check_field

        return check_field(self.custom_fields, name, value)

    def with_guard(self, command: str, guard: Guard) -> Policy:
        """A copy of this policy with ``guard`` added to ``command``'s guards.

        >>> def two_person_rule(incident, request):
        ...     if request.actor == "intern":
        ...         return "an intern may not resolve incidents alone"
        >>> policy = Policy().with_guard("resolve", two_person_rule)
        >>> len(policy.guards["resolve"])
        1
        """
        command = check.guard_command(command)
        guards = dict(self.guards)
        guards[command] = (*guards.get(command, ()), check.guard(guard))
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
        for name, setting in forms.items():  # in field order, so the first wrong key is named
            if setting.key in data:
                try:
                    settings[name] = setting.read(data[setting.key], toml_key(*prefix, setting.key))
                except ConfigError as exc:
                    raise ConfigError(where(exc.key), exc.message) from None
        try:
            return cls(**settings)
        except ConfigError as exc:  # a check of the constructor that the reader did not make
            raise ConfigError(where(toml_key(*prefix, *_toml_path(exc.key))), exc.message) from None

    def to_toml(self) -> str:
        """The policy as a TOML document, which :meth:`from_toml` reads back."""
        import tomli_w

        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, path: str | Path) -> Policy:
        """Load a policy from a TOML file (the whole file, or its ``[policy]`` table).

        In a file with a ``[policy]`` table, a policy key outside it is refused
        (ConfigError naming it): only the table would be read, and the key lost.
        """
        path = Path(path)
        data = read_toml(path)
        if "policy" not in data:
            return cls.from_dict(data, source=str(path))
        keys = {form.key for form in toml_forms().values()}
        stray = [str(key) for key in data if key in keys]
        if stray:
            also = f" (also outside it: {', '.join(stray[1:])})" if stray[1:] else ""
            raise ConfigError(
                f"{path}: {toml_key(stray[0])}",
                f"a policy setting outside [policy]{also}; move it under [policy] (in a file "
                "with a [policy] table, only that table is read)",
            )
        return cls.from_dict(data["policy"], source=str(path), prefix=("policy",))


@functools.cache
def toml_forms() -> Mapping[str, TomlForm]:
    """Each policy setting's TOML form, by field name, in field order."""
    return toml_forms_of(Policy)


def _toml_path(key: str) -> list[str]:
    """The TOML key parts of a constructor's key.

    ``severities.P1.watch_window`` → ``severity``, ``P1``, ``watch_window_minutes``.
    """
    head, _, rest = key.partition(".")
    named = toml_forms().get(head)
    parts = [named.key if named is not None else head]
    if not rest:
        return parts
    if head not in ("severities", "types"):
        return [*parts, rest]
    settings = toml_forms_of(ProcessOverride)
    tail = rest.split(".")
    at = max((i for i, part in enumerate(tail) if part in settings), default=None)
    if at is None:
        return [*parts, rest]
    return [*parts, ".".join(tail[:at]), settings[tail[at]].key, *tail[at + 1 :]]
