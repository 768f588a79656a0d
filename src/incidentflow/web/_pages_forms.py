"""The pages' command forms: built from the command definitions, read back into arguments.

Each form field comes from an :class:`~incidentflow.commands.Argument`: its
check says which input it needs (a date, a time, a checkbox, lines of text).
Arguments that a plain form cannot hold (label maps, custom fields) are left
out; a command that requires one gets no form (the JSON API runs it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import attrs

from .. import _validate as v
from .._model import Severity, State
from ..commands import (
    AUDIENCES,
    DEFINITIONS,
    DETECTION_METHODS,
    LINK_KINDS,
    Argument,
    Command,
)
from ..commands._access import principals
from ..exceptions import ValidationError
from ._bodies import NUMBER_DIGITS, whole_number

__all__ = ["Field", "Form", "declare_form", "form_arguments", "forms_for"]

#: Arguments a form cannot hold: their commands run through the JSON API.
_UNSUPPORTED = frozenset(
    {"labels", "fields", "references", "remove", "evidence", "value", "next_update_in"}
)
#: Commands the pages never offer: the system records them, or they act on two incidents.
_HIDDEN = frozenset({"declare", "absorb", "merge", "amend", "retract"})
#: The choices of arguments checked against a fixed set, by argument name.
_CHOICES: Mapping[str, tuple[str, ...]] = {
    "severity": tuple(s.value for s in Severity),
    "method": tuple(DETECTION_METHODS),
    "audience": tuple(AUDIENCES),
}
_CHOICES_OF_COMMAND: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("reopen", "to"): (State.RCA.value, State.TRIAGING.value),
    ("link", "kind"): tuple(LINK_KINDS),
    ("unlink", "kind"): tuple(LINK_KINDS),
}
_LINES = frozenset({"went_well", "went_poorly"})
_LONG_TEXT = frozenset({"content"})


@attrs.frozen
class Field:
    """One input of a form.

    Attributes:
        name: The argument's keyword.
        label: What the input is labelled with.
        kind: ``text``, ``textarea``, ``lines`` (one item a line), ``select``,
            ``checkbox``, ``datetime`` (UTC), ``date`` or ``number``.
        required: The command needs it.
        doc: The argument's documentation, shown as a hint.
        choices: The options of a ``select``.
        checked: A checkbox's initial state.

    """

    name: str
    label: str
    kind: str
    required: bool
    doc: str
    choices: tuple[str, ...] = ()
    checked: bool = False


@attrs.frozen
class Form:
    """A command's form on the incident page.

    Attributes:
        command: The command it runs.
        summary: What the command does.
        fields: Its inputs, in the definition's order.

    """

    command: str
    summary: str
    fields: tuple[Field, ...]


def _kind(command: str, argument: Argument) -> tuple[str, tuple[str, ...]]:
    check = argument.check
    choices = _CHOICES_OF_COMMAND.get((command, argument.name)) or _CHOICES.get(argument.name)
    if choices:
        return "select", choices
    if check is v.boolean:
        return "checkbox", ()
    if check is v.aware:
        return "datetime", ()
    if check is v.day:
        return "date", ()
    if check is v.positive_int:
        return "number", ()
    if argument.name in _LINES or check is principals:
        return "lines", ()
    if check in (v.text, v.optional_text) or argument.name in _LONG_TEXT:
        return "textarea", ()
    return "text", ()


def _form(definition: Command[Any]) -> Form | None:
    fields = []
    for argument in definition.arguments:
        required = argument.required
        if argument.name in _UNSUPPORTED:
            if required:
                return None
            continue
        kind, choices = _kind(definition.name, argument)
        fields.append(
            Field(
                name=argument.name,
                label=argument.name.replace("_", " "),
                kind=kind,
                required=required and kind != "checkbox",
                doc=argument.doc,
                choices=choices,
                checked=argument.default is True,
            )
        )
    if definition.arguments and not fields:
        return None  # every argument needs the JSON API (set_labels, set_fields)
    return Form(definition.name, definition.summary, tuple(fields))


_FORMS: Mapping[str, Form] = {
    name: form
    for name, definition in DEFINITIONS.items()
    if name not in _HIDDEN and not definition.system and (form := _form(definition)) is not None
}


#: The declare form's optional restriction (``declare`` records it as a ``restrict``).
_RESTRICTED_TO = Field(
    name="restricted_to",
    label="restricted to",
    kind="lines",
    required=False,
    doc="Only these actors and groups (group:sre) see it; you are added. Empty: everyone.",
)


def declare_form() -> Form:
    """The board's form to declare an incident: title, severity, commander, restricted to."""
    definition = DEFINITIONS["declare"]
    form = _form(definition)
    assert form is not None
    wanted = ("title", "severity", "commander")
    fields = tuple(f for f in form.fields if f.name in wanted)
    return attrs.evolve(form, fields=(*fields, _RESTRICTED_TO))


def forms_for(state: State, first: str | None = None) -> Sequence[Form]:
    """The forms of the commands that run in ``state``; ``first`` (the next step) leads."""
    found = [form for name, form in _FORMS.items() if state in DEFINITIONS[name].runs_in]
    return sorted(found, key=lambda form: form.command != first)


def form_arguments(command: str, values: Mapping[str, str]) -> dict[str, Any]:
    """The keyword arguments of ``command`` read from its submitted form ``values``.

    Empty optional inputs are left out (the command's default applies); times
    are read as UTC; the command's own checks then validate every value.

    Raises:
        ValidationError: ``command`` has no form, or an input cannot be read
            (a malformed date, time or number), naming the input.

    """
    form = declare_form() if command == "declare" else _FORMS.get(command)
    if form is None:
        raise ValidationError("command", f"{command!r} has no form; use the JSON API")
    found: dict[str, Any] = {}
    for field in form.fields:
        raw = values.get(field.name, "")
        if field.kind == "checkbox":
            found[field.name] = raw in ("on", "true", "1")
            continue
        if not raw.strip() and not field.required:
            continue
        found[field.name] = _read(field, raw)
    return found


def _read(field: Field, raw: str) -> object:
    text = raw.strip()
    if field.kind == "datetime":
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(
                field.name, f"{v._shown(raw)} is not a time; use YYYY-MM-DDTHH:MM in UTC"
            ) from None
        return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if field.kind == "date":
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValidationError(
                field.name, f"{v._shown(raw)} is not a date; use YYYY-MM-DD"
            ) from None
    if field.kind == "number":
        number = whole_number(text)
        if number is None:
            raise ValidationError(
                field.name,
                f"{v._shown(raw)} is not a whole number; write up to {NUMBER_DIGITS} digits 0-9,"
                " e.g. 1",
            )
        return number
    if field.kind == "lines":
        return tuple(line.strip() for line in raw.splitlines() if line.strip())
    return raw if field.kind == "textarea" else text
