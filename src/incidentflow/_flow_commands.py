"""The facade's command methods: a typed signature and one line each.

Everything else about a command (its checks, states, guards, event and fold)
is its definition in :mod:`incidentflow.commands`; ``_run`` is the pipeline.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, TypedDict, Unpack, cast

from ._model import Incident, Severity
from .commands import DEFINITIONS, Command

__all__ = ["CommandOptions", "Commands", "Coordination", "Pipeline", "PostmortemFields"]


class CommandOptions(TypedDict, total=False):
    """The keywords every command takes besides its own arguments.

    Attributes:
        actor: Who runs the command (required; a one-line name).
        idempotency_key: Running the command again with this key and the same
            arguments returns the first result instead of recording twice; with
            other arguments it raises IdempotencyConflict.
        expected_version: Raise ConcurrencyConflict unless the incident is at
            this version (the version the caller decided on).

    """

    actor: str | None
    idempotency_key: str | None
    expected_version: int | None


class PostmortemFields(CommandOptions, total=False):
    """The post-mortem's fields, each optional, with the options every command takes.

    Attributes:
        summary: What happened and its impact, in a paragraph.
        root_cause: The root cause, as the process gap.
        went_well: What went well.
        went_poorly: What went poorly.

    """

    summary: str | None
    root_cause: str | None
    went_well: Sequence[str] | None
    went_poorly: Sequence[str] | None


_D = DEFINITIONS
_OPTION_NAMES = frozenset(CommandOptions.__annotations__)


class Pipeline(abc.ABC):
    """What the command methods run on: the facade's pipeline."""

    @abc.abstractmethod
    def _run(
        self,
        command: Command[Any],
        incident_id: str,
        options: CommandOptions,
        args: dict[str, Any],
    ) -> Incident:
        """Validate, decide, commit and announce one command."""


class Commands(Pipeline):
    """Every command of the lifecycle as a method; see :class:`IncidentFlow`."""

    def start_triage(self, incident_id: str, **options: Unpack[CommandOptions]) -> Incident:
        """Acknowledge the incident and start triage (stops the response-time clock)."""
        return self._run(_D["start_triage"], incident_id, options, {})

    def add_evidence(
        self, incident_id: str, *, source: str, content: str, **options: Unpack[CommandOptions]
    ) -> Incident:
        """Attach evidence: where it came from and what it shows (up to 1,000,000 chars)."""
        args = {"source": source, "content": content}
        return self._run(_D["add_evidence"], incident_id, options, args)

    def answer_triage(
        self, incident_id: str, question: str, answer: str, **options: Unpack[CommandOptions]
    ) -> Incident:
        """Answer one triage checklist question (e.g. ``symptom``, ``started_at``, ``scope``)."""
        args = {"question": question, "answer": answer}
        return self._run(_D["answer_triage"], incident_id, options, args)

    def record_containment(
        self,
        incident_id: str,
        description: str,
        *,
        taken_at: datetime | None = None,
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Record a containment action, taken now or at ``taken_at``."""
        args = {"description": description, **_given(taken_at=taken_at)}
        return self._run(_D["record_containment"], incident_id, options, args)

    def contain(self, incident_id: str, **options: Unpack[CommandOptions]) -> Incident:
        """Declare the incident contained: evidence, triage answers and containment needed."""
        return self._run(_D["contain"], incident_id, options, {})

    def start_rca(self, incident_id: str, **options: Unpack[CommandOptions]) -> Incident:
        """Start root-cause analysis."""
        return self._run(_D["start_rca"], incident_id, options, {})

    def add_why(self, incident_id: str, answer: str, **options: Unpack[CommandOptions]) -> Incident:
        """Add the next link of the 5-Whys chain (at most five)."""
        return self._run(_D["add_why"], incident_id, options, {"answer": answer})

    def set_root_cause(
        self,
        incident_id: str,
        statement: str,
        *,
        process_gap: str,
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """State the root cause and the process gap that let it through."""
        args = {"statement": statement, "process_gap": process_gap}
        return self._run(_D["set_root_cause"], incident_id, options, args)

    def record_fix(
        self,
        incident_id: str,
        description: str,
        *,
        test: str,
        staging_verified: bool,
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Record the fix, the test that would have caught the bug, and staging status."""
        args = {"description": description, "test": test, "staging_verified": staging_verified}
        return self._run(_D["record_fix"], incident_id, options, args)

    def record_deploy(
        self,
        incident_id: str,
        *,
        deployed_at: datetime | None = None,
        ref: str = "",
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Record the fix's deploy, now or at ``deployed_at``; ``ref`` names the release."""
        args = {"ref": ref, **_given(deployed_at=deployed_at)}
        return self._run(_D["record_deploy"], incident_id, options, args)

    def mark_fixed(self, incident_id: str, **options: Unpack[CommandOptions]) -> Incident:
        """Mark the incident fixed: needs whys, root cause, a verified fix and a deploy."""
        return self._run(_D["mark_fixed"], incident_id, options, {})

    def confirm_by_user(
        self,
        incident_id: str,
        *,
        user: str,
        positive: bool = True,
        comment: str = "",
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Record a user's answer; a negative one reopens the incident to rca."""
        args = {"user": user, "positive": positive, "comment": comment}
        return self._run(_D["confirm_by_user"], incident_id, options, args)

    def resolve(self, incident_id: str, **options: Unpack[CommandOptions]) -> Incident:
        """Resolve: needs a positive user confirmation and the watch window passed."""
        return self._run(_D["resolve"], incident_id, options, {})

    def draft_postmortem(self, incident_id: str, **fields: Unpack[PostmortemFields]) -> Incident:
        """Fill in post-mortem fields; those left out (or ``None``) keep their value."""
        return self._run(_D["draft_postmortem"], incident_id, *_split(fields))

    def complete_postmortem(self, incident_id: str, **fields: Unpack[PostmortemFields]) -> Incident:
        """Complete the post-mortem, filling in any fields given first."""
        return self._run(_D["complete_postmortem"], incident_id, *_split(fields))

    def add_action_item(
        self,
        incident_id: str,
        description: str,
        *,
        owner: str,
        due: date,
        ref: str | None = None,
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Add a follow-up with an owner and a due date; items are numbered from 1.

        ``ref`` is the issue URL or key that tracks it, if any.
        """
        args = {"description": description, "owner": owner, "due": due, **_given(ref=ref)}
        return self._run(_D["add_action_item"], incident_id, options, args)

    def complete_action_item(
        self, incident_id: str, number: int, **options: Unpack[CommandOptions]
    ) -> Incident:
        """Mark action item ``number`` done; in every state, after closure too."""
        return self._run(_D["complete_action_item"], incident_id, options, {"number": number})

    def reassign_action_item(
        self,
        incident_id: str,
        number: int,
        *,
        owner: str,
        reason: str | None = None,
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Hand open action item ``number`` to another owner."""
        args = {"number": number, "owner": owner, **_given(reason=reason)}
        return self._run(_D["reassign_action_item"], incident_id, options, args)

    def redate_action_item(
        self,
        incident_id: str,
        number: int,
        *,
        due: date,
        reason: str | None = None,
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Give open action item ``number`` another due date."""
        args = {"number": number, "due": due, **_given(reason=reason)}
        return self._run(_D["redate_action_item"], incident_id, options, args)

    def decline_action_item(
        self, incident_id: str, number: int, *, reason: str, **options: Unpack[CommandOptions]
    ) -> Incident:
        """Decline open action item ``number``: it will not be done, for ``reason``."""
        args = {"number": number, "reason": reason}
        return self._run(_D["decline_action_item"], incident_id, options, args)

    def link_action_item(
        self, incident_id: str, number: int, ref: str, **options: Unpack[CommandOptions]
    ) -> Incident:
        """Link action item ``number`` to the issue that tracks it (a URL or a key)."""
        args = {"number": number, "ref": ref}
        return self._run(_D["link_action_item"], incident_id, options, args)

    def update_kb(
        self,
        incident_id: str,
        *,
        symptom: str,
        early_signs: str,
        root_cause: str | None = None,
        fix: str | None = None,
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Write the knowledge-base gotcha and close the incident.

        ``root_cause`` and ``fix`` default to the incident's own.
        """
        args: dict[str, object] = {"symptom": symptom, "early_signs": early_signs}
        args |= _given(root_cause=root_cause, fix=fix)
        return self._run(_D["update_kb"], incident_id, options, args)

    def reopen(
        self, incident_id: str, *, reason: str, to: str = "rca", **options: Unpack[CommandOptions]
    ) -> Incident:
        """Reopen a fixed or resolved incident to ``"rca"`` or ``"triaging"``."""
        return self._run(_D["reopen"], incident_id, options, {"reason": reason, "to": to})

    def dismiss(
        self,
        incident_id: str,
        *,
        reason: str,
        duplicate_of: str | None = None,
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Dismiss a false alarm, or a duplicate of an existing incident, before containment."""
        args = {"reason": reason, "duplicate_of": duplicate_of}
        return self._run(_D["dismiss"], incident_id, options, args)

    def reclassify(
        self,
        incident_id: str,
        severity: Severity | str,
        *,
        reason: str,
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Change the severity, with a reason."""
        args = {"severity": severity, "reason": reason}
        return self._run(_D["reclassify"], incident_id, options, args)

    def assign_commander(
        self, incident_id: str, commander: str, **options: Unpack[CommandOptions]
    ) -> Incident:
        """Hand the incident to another commander."""
        return self._run(_D["assign_commander"], incident_id, options, {"commander": commander})

    def record_detection(
        self,
        incident_id: str,
        *,
        method: str,
        first_occurred_at: datetime | None = None,
        detected_at: datetime | None = None,
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Record when the issue first occurred and how it was detected.

        ``method`` is ``"alert"``, ``"user_report"`` or ``"other"``.
        """
        args = {"method": method, "first_occurred_at": first_occurred_at}
        args["detected_at"] = detected_at
        return self._run(_D["record_detection"], incident_id, options, args)

    def add_note(self, incident_id: str, text: str, **options: Unpack[CommandOptions]) -> Incident:
        """Add a free-form note; allowed in every state."""
        return self._run(_D["add_note"], incident_id, options, {"text": text})


class Coordination(Pipeline):
    """Corrections, the type, labels, fields, references, roles and status updates."""

    def amend(
        self,
        incident_id: str,
        item: str,
        value: str | Sequence[str],
        *,
        reason: str,
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Correct something recorded: ``"why:2"``, ``"triage:scope"``, ``"postmortem:summary"``.

        The history keeps the original; the snapshot shows ``value`` marked
        amended. See :data:`incidentflow.commands.CORRECTABLE` for every item.
        """
        args = {"item": item, "value": value, "reason": reason}
        return self._run(_D["amend"], incident_id, options, args)

    def retract(
        self, incident_id: str, item: str, *, reason: str, **options: Unpack[CommandOptions]
    ) -> Incident:
        """Withdraw something recorded in error (``"why:3"``); guards stop counting it."""
        return self._run(_D["retract"], incident_id, options, {"item": item, "reason": reason})

    def change_type(
        self, incident_id: str, type: str, *, reason: str, **options: Unpack[CommandOptions]
    ) -> Incident:
        """Change the incident type (one of the policy's ``incident_types``), with a reason."""
        return self._run(_D["change_type"], incident_id, options, {"type": type, "reason": reason})

    def set_labels(
        self,
        incident_id: str,
        labels: Mapping[str, str] | None = None,
        *,
        remove: Sequence[str] = (),
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Set labels (``{"service": "checkout"}``) and remove others by key."""
        args = {"labels": labels or {}, "remove": remove}
        return self._run(_D["set_labels"], incident_id, options, args)

    def set_fields(
        self,
        incident_id: str,
        fields: Mapping[str, object] | None = None,
        *,
        remove: Sequence[str] = (),
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Set custom fields the policy declares (checked against their types), or remove them."""
        args = {"fields": fields or {}, "remove": remove}
        return self._run(_D["set_fields"], incident_id, options, args)

    def add_reference(
        self, incident_id: str, kind: str, value: str, **options: Unpack[CommandOptions]
    ) -> Incident:
        """Attach an external reference; no other open incident may hold the same one."""
        return self._run(_D["add_reference"], incident_id, options, {"kind": kind, "value": value})

    def remove_reference(
        self, incident_id: str, kind: str, value: str, **options: Unpack[CommandOptions]
    ) -> Incident:
        """Detach an external reference."""
        args = {"kind": kind, "value": value}
        return self._run(_D["remove_reference"], incident_id, options, args)

    def assign_role(
        self,
        incident_id: str,
        role: str,
        person: str,
        *,
        note: str | None = None,
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Assign ``role``, or hand it over from whoever holds it, with a handoff note."""
        args = {"role": role, "person": person, **_given(note=note)}
        return self._run(_D["assign_role"], incident_id, options, args)

    def release_role(
        self,
        incident_id: str,
        role: str,
        *,
        note: str | None = None,
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Release ``role`` (never the commander's): it is vacant again."""
        args = {"role": role, **_given(note=note)}
        return self._run(_D["release_role"], incident_id, options, args)

    def post_update(
        self,
        incident_id: str,
        audience: str,
        text: str,
        *,
        next_update_in: timedelta | None = None,
        **options: Unpack[CommandOptions],
    ) -> Incident:
        """Post a status update (``"internal"`` or ``"external"``) and set when the next is due.

        Without ``next_update_in`` the next one is due after the cadence the
        policy sets for the incident's severity and type, if any.
        """
        args = {"audience": audience, "text": text, "next_update_in": next_update_in}
        return self._run(_D["post_update"], incident_id, options, args)


def _split(fields: PostmortemFields) -> tuple[CommandOptions, dict[str, Any]]:
    """The options and the post-mortem fields of a call, apart."""
    options = cast(CommandOptions, {k: v for k, v in fields.items() if k in _OPTION_NAMES})
    args = {k: v for k, v in fields.items() if k not in _OPTION_NAMES}
    return options, args


def _given(**args: object) -> dict[str, object]:
    """The optional arguments that were given (``None`` means left out)."""
    return {name: value for name, value in args.items() if value is not None}
