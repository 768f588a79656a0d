"""The facade's relations: links recorded on both incidents, and merges of duplicates.

Each is two commits, one per incident, in an order that a re-run completes:
a link is recorded here, then its inverse on the other incident; a merge
closes the duplicate first (which frees its external references, unique
among open incidents), then the target absorbs what it had.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Unpack

from . import _events as ev
from . import _validate as v
from ._flow_commands import CommandOptions
from ._model import Incident, State
from ._reasons import Outcome
from .commands import DEFINITIONS, Command
from .commands._links import inverse, linked
from .exceptions import IncidentNotFound, TransitionRejected, ValidationError
from .stores._protocols import EventStore

__all__ = ["RELATIONS", "Relations"]

#: The commands that take two commits, one on each incident: ``execute`` runs them here.
RELATIONS = frozenset({"link", "unlink", "merge"})

_LINK = DEFINITIONS["link"]
_UNLINK = DEFINITIONS["unlink"]
_MERGE = DEFINITIONS["merge"]
_ABSORB = DEFINITIONS["absorb"]
_NO_OTHERS: Mapping[str, State] = MappingProxyType({})


class Relations(abc.ABC):
    """Links between incidents and merges; see :class:`IncidentFlow`."""

    store: EventStore

    @abc.abstractmethod
    def _execute(
        self,
        command: Command[Any],
        incident_id: str,
        options: CommandOptions,
        args: dict[str, Any],
    ) -> Outcome:
        """Validate, decide, commit and announce one command."""

    def link(
        self, incident_id: str, kind: str, other: str, **options: Unpack[CommandOptions]
    ) -> Incident:
        """Link to another incident; the other records the inverse kind.

        ``kind`` is ``duplicate_of``, ``caused_by``, ``related_to``,
        ``parent_of`` or ``child_of`` (or an inverse: ``duplicated_by``,
        ``causes``). Linking twice is refused (``links.present``); a call
        that stopped after the first of its two commits is completed by
        running it again. A parent cannot be resolved while a child is open.
        """
        args = {"kind": kind, "other": other}
        return self._relation(_LINK, incident_id, options, args).incident

    def unlink(
        self, incident_id: str, kind: str, other: str, **options: Unpack[CommandOptions]
    ) -> Incident:
        """Remove a link to another incident, and its inverse on the other."""
        args = {"kind": kind, "other": other}
        return self._relation(_UNLINK, incident_id, options, args).incident

    def merge(
        self, incident_id: str, *, into: str, reason: str, **options: Unpack[CommandOptions]
    ) -> Incident:
        """Merge this duplicate into ``into``, at any open state; returns the closed duplicate.

        The duplicate is dismissed (reason ``"merged into <into>: <reason>"``,
        ``duplicate_of=into``) and gives up its external references; then
        ``into`` records one event taking its live evidence, its labels (its
        own keep their values) and those references, so later alerts for the
        duplicate's fingerprint find ``into``. A merge that stopped between
        the two commits is completed by running it again.
        """
        args = {"into": into, "reason": reason}
        return self._relation(_MERGE, incident_id, options, args).incident

    # -- the halves -----------------------------------------------------------

    def _relation(
        self,
        command: Command[Any],
        incident_id: str,
        options: CommandOptions,
        args: dict[str, Any],
    ) -> Outcome:
        """Run ``link``, ``unlink`` or ``merge``: both of its commits (``flow.execute`` too)."""
        if command is _MERGE:
            return self._merge(incident_id, args, options)
        return self._both_sides(command, incident_id, args, options)

    def _merge(self, incident_id: str, args: dict[str, Any], options: CommandOptions) -> Outcome:
        here = v.name("incident_id", incident_id)
        target = _MERGE.validate(args)["into"]
        actor = options.get("actor")
        duplicate = self.store.load(here)
        done = self._merged_into(duplicate, target)
        if done is not None and not self._absorbed(target, here):
            # The duplicate closed and the target never took its share: complete the merge.
            self._absorb(duplicate, done, actor)
            return Outcome(duplicate)
        if done is None and self.store.exists(target):
            closed = self.store.load(target).state
            if closed.is_terminal:
                raise ValidationError(
                    "into", f"{target} is {closed.value}; merge into an incident not closed"
                )
        outcome = self._execute(_MERGE, here, options, args)  # a complete merge: replay or refusal
        merged = self._merged_into(outcome.incident, target)
        assert merged is not None
        if not self._absorbed(target, here):
            self._absorb(outcome.incident, merged, actor)
        return outcome

    def _both_sides(
        self,
        command: Command[Any],
        incident_id: str,
        args: dict[str, Any],
        options: CommandOptions,
    ) -> Outcome:
        here = v.name("incident_id", incident_id)
        values = command.validate(args)
        kind, other = values["kind"], values["other"]
        linking = command is _LINK
        if (
            linked(self.store.load(here), kind, other) is linking
            and other != here
            and self.store.exists(other)
            and linked(self.store.load(other), inverse(kind), here) is not linking
        ):
            # The first commit landed and the second did not: complete it.
            self._other_side(command, other, inverse(kind), here, options)
            return Outcome(self.store.load(here))
        outcome = self._execute(command, here, options, args)
        self._other_side(command, other, inverse(kind), here, options)
        return outcome

    def _other_side(
        self,
        command: Command[Any],
        incident_id: str,
        kind: str,
        other: str,
        options: CommandOptions,
    ) -> None:
        linking = command is _LINK
        try:
            if linked(self.store.load(incident_id), kind, other) is linking:
                return  # recorded already (a replayed key, or a twin finished it)
            self._execute(
                command,
                incident_id,
                {"actor": options.get("actor")},
                {"kind": kind, "other": other},
            )
        except IncidentNotFound:
            if linking:
                raise
            # Unlinking from an incident not in this store, or one the caller may not
            # see: this side is done; the other keeps its half for whoever can reach it.
        except TransitionRejected:
            if linked(self.store.load(incident_id), kind, other) is not linking:
                raise

    def _merged_into(self, duplicate: Incident, target: str) -> ev.Merged | None:
        """The merge of ``duplicate`` into ``target`` its history records, if it was merged."""
        if duplicate.state is not State.DISMISSED or duplicate.duplicate_of != target:
            return None
        for event in reversed(self.store.history(duplicate.id)):
            if isinstance(event.data, ev.Merged):
                return event.data if event.data.into == target else None
        return None

    def _absorbed(self, target: str, duplicate: str) -> bool:
        """True when ``target``'s history records taking in ``duplicate``."""
        if not linked(self.store.load(target), "duplicated_by", duplicate):
            return False  # the usual answer, without reading the history
        return any(
            isinstance(e.data, ev.Absorbed) and e.data.source == duplicate
            for e in self.store.history(target)
        )

    def _absorb(self, duplicate: Incident, merged: ev.Merged, actor: str | None) -> None:
        """The target takes the live evidence, the labels and the references of ``duplicate``."""
        args: dict[str, Any] = {
            "source": duplicate.id,
            "evidence": tuple(x for x in duplicate.evidence if x.retracted is None),
            "labels": dict(duplicate.labels),
            "references": merged.references,
        }
        self._execute(_ABSORB, merged.into, {"actor": actor}, args)

    def _linked_states(self, incident: Incident, command: Command[Any]) -> Mapping[str, State]:
        """The states of the linked incidents ``command``'s guards read; nothing read otherwise."""
        if not command.sees_links or not incident.links or incident.state not in command.runs_in:
            return _NO_OTHERS
        states = {}
        for link in incident.links:
            if link.kind in command.sees_links:
                try:
                    states[link.other] = self.store.load(link.other).state
                except IncidentNotFound:
                    continue  # not in this store (an export of one side): it holds nothing up
        return states
