"""The facade's alert ingestion: parse a webhook, then attach each alert or declare for it.

Deduplication rests on two things the stores already guarantee: a reference is
held by at most one open incident (``("alert", "source:kind:key")``, so that two
sources, or a fingerprint and a group key, never meet), and a keyed command runs
once. Every write ``ingest`` makes carries an idempotency key made from the
alert (source, key, fingerprint, start, status), so a re-sent alert, also after a
restart or from a second ingester, changes nothing.

An incident restricted to others still takes the alerts it holds (see
``Access._check_access``), but the report, which goes back to the sender, never
names it: its outcome has no incident id, and no error about it leaves ``ingest``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from loguru import logger

from . import _validate as v
from ._model import Incident, Reference, Severity
from .commands import DEFINITIONS
from .exceptions import (
    ConcurrencyConflict,
    ConfigError,
    IdempotencyConflict,
    IncidentFlowError,
    InvalidTransition,
    ReferenceTaken,
    StoreError,
    Unauthorized,
    ValidationError,
)

if TYPE_CHECKING:
    from ._flow_commands import CommandOptions
    from ._policy import Policy
    from ._reasons import Outcome
    from .alerts._alert import Alert
    from .alerts._report import AlertAction, AlertOutcome, IngestReport
    from .alerts._rules import AlertRules
    from .commands import Command
    from .stores._protocols import EventStore, QueryIndex

__all__ = ["Ingestion"]

#: The reference kind alerts are kept under: ``flow.find("alert", "alertmanager:fp:abc1")``.
REFERENCE_KIND = "alert"
#: How often a write is tried when the incident changed meanwhile (keyed: never twice).
_TRIES = 3

#: While set (by ``ingest``), commits leave their snapshot here instead of writing its files.
DEFERRED_FILES: ContextVar[dict[str, Incident] | None] = ContextVar("deferred_files", default=None)


def files_deferred(snapshot: Incident) -> bool:
    """True when an ingest in progress will write ``snapshot``'s files itself, once, at its end."""
    deferred = DEFERRED_FILES.get()
    if deferred is None:
        return False
    deferred[snapshot.id] = snapshot
    return True


#: Said of an incident the sender may not see, instead of its id.
_UNSEEN = "the incident is restricted to others: its id is not shown"


@attrs.frozen
class _Plan:
    """One alert, with everything its commands need, checked before anything is written."""

    alert: Alert
    key: str
    reference: str
    legacy: str
    title: str
    severity: Severity
    labels: Mapping[str, str]
    skipped: tuple[str, ...]
    evidence: str
    declare_key: str

    @property
    def started(self) -> str:
        return self.alert.starts_at.isoformat() if self.alert.starts_at is not None else ""

    def detection_key(self, salt: str) -> str:
        """The detection's key; ``salt`` tells apart incidents of a start-less alert."""
        parts = (self.alert.source, self.key, self.alert.fingerprint, self.started)
        return "alert-detect:" + _digest(*parts, *((salt,) if salt else ()))

    def evidence_key(self, salt: str, episode: int) -> str:
        """The evidence's key; ``episode``: resolves of a start-less alert seen before it."""
        parts = (self.alert.source, self.key, self.alert.fingerprint, self.started)
        extra = ((salt,) if salt else ()) + ((f"episode {episode}",) if episode else ())
        return "alert:" + _digest(*parts, self.alert.status, *extra)

    def marker(self) -> str:
        """The line of the evidence text that names the alert's source and key."""
        return f"source: {self.alert.source}; key: {self.key}"


def _digest(*parts: object) -> str:
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    import hashlib  # here, not at import: the parsers and their keys load on first use

    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _reference(key: str) -> str:
    """The alert's key as a reference value; one too long or not on one line is hashed."""
    try:
        return v.reference_value("reference", key)
    except ValidationError:
        import hashlib

        return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class Ingestion:
    """``flow.ingest``: alerts from monitoring in, incidents out; see :class:`IncidentFlow`."""

    #: The rules ``ingest`` uses when given none (``None``: the default rules;
    #: ``Config.alerts`` holds the configured ones). The parsers load on first use.
    alert_rules: AlertRules | None = None

    if TYPE_CHECKING:
        store: EventStore
        policy: Policy
        incidents_dir: Path | None
        knowledge_dir: Path | None

        def _write_files(self, incident: Incident) -> Sequence[Path]:
            """Write the incident's Markdown file and KB gotcha."""

        def execute(self, command: str, incident_id: str | None = None, **args: Any) -> Outcome:
            """Run a command by name."""

        def _perform(
            self,
            command: Command[Any],
            incident_id: str,
            options: CommandOptions,
            args: dict[str, Any],
            through: Reference | None = None,
        ) -> tuple[Incident, bool]:
            """Run a command; through: the alert reference that admits it."""

        def _sees(self, actor: str, incident: Incident) -> bool:
            """True when ``actor`` may see ``incident``."""

        def _index(self) -> QueryIndex:
            """The store's query index."""

        def now(self) -> datetime:
            """The flow clock's time."""

    def ingest(
        self,
        payload: object,
        *,
        source: str,
        actor: str = "alerts",
        rules: AlertRules | None = None,
    ) -> IngestReport:
        """Ingest a monitoring webhook: attach each firing alert, or declare an incident for it.

        ``payload`` is the webhook's body (a mapping, or JSON text or bytes) in
        the format ``source`` names: ``alertmanager``, ``grafana``,
        ``pagerduty``, ``datadog`` or ``generic``. The whole payload is parsed
        and checked first; a malformed one raises ValidationError naming the
        field (``alerts[3].startsAt``) and nothing is written. Then, per alert:

        - firing, and an open incident holds the reference
          ``("alert", "source:kind:key")`` (kind ``fp`` or ``group``): the alert
          is attached to it as evidence;
        - firing, and none does: an incident is declared (severity from
          ``rules``, title from the summary or the alert's name, the alert's
          labels, the reference), with its detection (``method="alert"``, first
          occurred at ``startsAt``) and the alert as first evidence;
        - resolved (or acknowledged): evidence on the open incident that holds
          it, else ignored; so is a resolve of a firing that started before the
          holder's first one. Resolving stays a person's decision.

        An incident restricted to others (``actor`` not among them) that
        holds the alert still takes it as evidence, with what the authorizer
        allows ``actor``; but the report, which goes back to the sender, does
        not name it: that outcome's ``incident_id`` is ``None``, its detail
        says why, and the other alerts go on as usual.

        The key is the alert's fingerprint, or its group key with
        ``rules.group_by = "group"``. Every write is keyed by the alert, so the
        same alert sent again changes nothing (``replayed`` says so). An alert
        without a start time (PagerDuty, Datadog without ``date``) that fires
        after a resolve, or after its incident closed, is a new firing.

        >>> from incidentflow import IncidentFlow
        >>> flow = IncidentFlow.in_memory()
        >>> alert = {"fingerprint": "fp-1", "status": "firing", "title": "Disk full on db-7",
        ...          "severity": "critical", "started_at": "2020-01-01T00:00:00Z"}
        >>> [(o.action, o.replayed) for o in flow.ingest({"alerts": [alert]}, source="generic")]
        [('declared', False)]
        >>> [(o.action, o.replayed) for o in flow.ingest({"alerts": [alert]}, source="generic")]
        [('declared', True)]
        >>> flow.find("alert", "generic:fp:fp-1").severity.value
        'P1'
        """
        from .alerts._parsers import parse
        from .alerts._report import IngestReport
        from .alerts._rules import AlertRules

        rules = self.alert_rules if rules is None else rules
        rules = AlertRules() if rules is None else rules
        if not isinstance(rules, AlertRules):
            raise ConfigError("rules", f"expected AlertRules, got {type(rules).__name__}")
        actor = v.actor(actor)
        alerts = parse(payload, source)
        plans = [self._plan(alert, rules) for alert in alerts]
        commander = rules.commander or actor
        if self.incidents_dir is None and self.knowledge_dir is None:
            return IngestReport([self._ingest_one(plan, actor, commander) for plan in plans])
        # An incident's files are written once for the whole payload, not after each of its
        # alerts: a storm of 2,000 alerts on one incident rewrote its file 2,000 times.
        deferred: dict[str, Incident] = {}
        token = DEFERRED_FILES.set(deferred)
        try:
            return IngestReport([self._ingest_one(plan, actor, commander) for plan in plans])
        finally:
            DEFERRED_FILES.reset(token)
            for snapshot in deferred.values():
                try:
                    self._write_files(snapshot)
                except Exception:
                    logger.exception("could not write the files of {}", snapshot.id)

    # -- planning: pure, before any write --------------------------------------------------

    def _plan(self, alert: Alert, rules: AlertRules) -> _Plan:
        from .alerts._alert import evidence_text

        key = alert.key(rules.group_by)
        start = alert.starts_at.isoformat() if alert.starts_at is not None else ""
        labels, skipped = self._labels(alert)
        title = v.text("title", alert.title, max_len=v.TITLE_MAX, multiline=False)
        return _Plan(
            alert=alert,
            key=key,
            reference=_reference(alert.reference(rules.group_by)),
            legacy=_reference(key),
            title=title,
            severity=rules.severity_of(alert),
            labels=labels,
            skipped=skipped,
            evidence=evidence_text(alert, key),
            declare_key="alert-declare:" + _digest(alert.source, key, alert.fingerprint, start),
        )

    def _labels(self, alert: Alert) -> tuple[dict[str, str], tuple[str, ...]]:
        """The alert's labels as incident labels, and the ones left out, with why."""
        from .alerts._alert import label_key, label_value

        copied: dict[str, str] = {}
        skipped: list[str] = []
        for name, raw in alert.labels.items():
            key, value = label_key(name), label_value(raw)
            if key is None or value is None:
                skipped.append(f"{name} (empty once made a label)")
                continue
            if key in copied:
                skipped.append(f"{name} (same label as another: {key})")
                continue
            if len(copied) == v.ENTRIES_MAX:
                skipped.append(f"{name} (more than {v.ENTRIES_MAX} labels)")
                continue
            try:
                copied[key] = self.policy.check_label(v.key("labels", key), value)
            except ValidationError as exc:
                skipped.append(f"{name} ({exc.message})")
        return copied, tuple(skipped)

    # -- one alert -------------------------------------------------------------------------

    def _ingest_one(self, plan: _Plan, actor: str, commander: str) -> AlertOutcome:
        from .alerts._report import AlertOutcome

        alert = plan.alert
        if alert.status == "firing":
            return self._firing(plan, actor, commander)
        holder = self._holding(plan)
        if holder is None:
            detail = f"{alert.status}, and no open incident holds alert {plan.reference}"
            return AlertOutcome(alert=alert, action="ignored", incident_id=None, detail=detail)
        first = _first_start(self._history(plan, self.store.load(holder)))
        if alert.status == "resolved" and _before(alert.starts_at, first):
            # a late resolve of an earlier firing: the holder's firing goes on
            detail = "resolves a firing that started before the open incident's first: not noted"
            return AlertOutcome(alert=alert, action="ignored", incident_id=None, detail=detail)
        action: AlertAction = "noted_resolved" if alert.status == "resolved" else "attached"
        return self._attach(plan, actor, holder, action)

    def _firing(self, plan: _Plan, actor: str, commander: str) -> AlertOutcome:
        declare_key = plan.declare_key
        record = self.store.idempotency(declare_key)
        if plan.alert.starts_at is None:
            # Without a start time the key repeats for every trigger: past a closed
            # incident it is chained with that incident's id, so the trigger declares anew.
            while record is not None and not self.store.load(record.incident_id).is_open:
                declare_key = "alert-declare:" + _digest(declare_key, record.incident_id)
                record = self.store.idempotency(declare_key)
        if record is not None:  # this very alert declared before: finish, never redo
            declared = self.store.load(record.incident_id)
            if plan.alert.starts_at is not None or not self._episode(plan, declared):
                return self._declared(plan, actor, record.incident_id, replayed=True)
        holder = self._holding(plan)
        if holder is not None:
            return self._attach(plan, actor, holder, "attached")
        try:
            outcome = self.execute(
                "declare",
                title=plan.title,
                severity=plan.severity,
                commander=commander,
                labels=plan.labels,
                references={REFERENCE_KIND: plan.reference},
                actor=actor,
                idempotency_key=declare_key,
            )
        except ReferenceTaken as exc:  # another ingester declared it first
            holder = exc.holder or self._holder(plan.reference)  # unnamed: restricted
            if holder is None:
                raise
            return self._attach(plan, actor, holder, "attached")
        return self._declared(plan, actor, outcome.incident.id, replayed=outcome.replayed)

    def _holder(self, reference: str) -> str | None:
        """The open incident holding the alert reference, if one does."""
        found = self._index().find_reference(Reference(REFERENCE_KIND, reference), open_only=True)
        return found[0].id if found else None

    def _holding(self, plan: _Plan) -> str | None:
        """The open incident holding the alert: by its reference, else by a legacy one.

        A legacy reference (the bare key, written before references named the
        source and kind of key) is matched only when the incident's first alert
        evidence came from the same source with the same key.
        """
        holder = self._holder(plan.reference)
        if holder is not None or plan.legacy == plan.reference:
            return holder
        legacy = Reference(REFERENCE_KIND, plan.legacy)
        for incident in self._index().find_reference(legacy, open_only=True):
            if _declared_by(plan, self.store.load(incident.id)):
                return incident.id
        return None

    def _history(self, plan: _Plan, incident: Incident) -> list[tuple[str, str]]:
        """The status and start of each of ``plan``'s alerts recorded on ``incident``, in order."""
        found = []
        for item in incident.evidence:
            lines = item.content.split("\n")
            if item.source != plan.alert.source or plan.marker() not in lines:
                continue
            status = lines[0][1 : lines[0].find("]")] if lines[0].startswith("[") else ""
            start = next((ln[len("started: ") :] for ln in lines if ln.startswith("started: ")), "")
            found.append((status, start))
        return found

    def _episode(self, plan: _Plan, incident: Incident) -> int:
        """How many resolves of a start-less alert came before it on ``incident``.

        A trigger after a resolve is a new firing, not a resend of the first:
        its key counts the resolves. A resolve sent again keeps its own count.
        """
        if plan.alert.starts_at is not None:
            return 0
        statuses = [status for status, _ in self._history(plan, incident)]
        resolves = statuses.count("resolved")
        if plan.alert.status == "resolved" and statuses and statuses[-1] == "resolved":
            return resolves - 1
        return resolves

    def _salt(self, plan: _Plan, incident_id: str) -> str:
        """What tells apart the keys of a start-less alert on two incidents ("": the first)."""
        if plan.alert.starts_at is not None:
            return ""
        record = self.store.idempotency(plan.declare_key)
        return "" if record is not None and record.incident_id == incident_id else incident_id

    def _declared(
        self, plan: _Plan, actor: str, incident_id: str, *, replayed: bool
    ) -> AlertOutcome:
        """Record detection and the first evidence of the incident declared for ``plan``."""
        incident = self._incident_at_declaration(incident_id)
        shown = self._sees(actor, incident)
        first = plan.alert.starts_at
        if first is not None and first > incident.declared_at:
            first = None  # the source's clock is ahead: keep the detection consistent
        details = []
        salt = self._salt(plan, incident_id)
        through = _through(plan, incident)
        try:
            detection = self._keyed(
                "record_detection",
                incident_id,
                plan.detection_key(salt),
                actor,
                through,
                method="alert",
                first_occurred_at=first,
                detected_at=incident.declared_at,
            )
            evidence = self._keyed(
                "add_evidence",
                incident_id,
                plan.evidence_key(salt, 0),
                actor,
                through,
                source=plan.alert.source,
                content=plan.evidence,
            )
            replayed = replayed and detection and evidence
        except InvalidTransition as exc:  # closed since: nothing more may be recorded
            details.append(
                f"not recorded on {incident_id}: {exc.message}" if shown else "not recorded: closed"
            )
        except (StoreError, Unauthorized):
            raise
        except IncidentFlowError as exc:
            if shown:
                raise
            details.append(_not_recorded(exc))
        if plan.skipped:
            details.append("labels left out: " + "; ".join(plan.skipped))
        return _outcome(plan, "declared", incident_id, shown, details, replayed=replayed)

    def _incident_at_declaration(self, incident_id: str) -> Incident:
        return self.store.load(incident_id)

    def _attach(
        self, plan: _Plan, actor: str, incident_id: str, action: AlertAction
    ) -> AlertOutcome:
        incident = self.store.load(incident_id)
        shown = self._sees(actor, incident)
        key = plan.evidence_key(self._salt(plan, incident_id), self._episode(plan, incident))
        try:
            replayed = self._keyed(
                "add_evidence",
                incident_id,
                key,
                actor,
                _through(plan, incident),
                source=plan.alert.source,
                content=plan.evidence,
            )
        except InvalidTransition as exc:  # closed between the lookup and the write
            why = f"{incident_id} closed meanwhile: {exc.message}" if shown else "closed meanwhile"
            return _outcome(plan, "ignored", incident_id, shown, [why])
        except (StoreError, Unauthorized):
            raise
        except IncidentFlowError as exc:
            if shown:
                raise
            return _outcome(plan, "ignored", incident_id, shown, [_not_recorded(exc)])
        details = ["resolving stays a person's decision"] if action == "noted_resolved" else []
        return _outcome(plan, action, incident_id, shown, details, replayed=replayed)

    def _keyed(
        self,
        command: str,
        incident_id: str,
        key: str,
        actor: str,
        through: Reference,
        **args: Any,
    ) -> bool:
        """Run ``command`` once under ``key``; True when it had run before (a replay).

        The write is admitted through the alert's reference ``through`` (an
        incident restricted to others takes the alerts it holds), and tried
        again if the incident changed meanwhile: its key keeps a retry from
        recording twice.
        """
        options: CommandOptions = {"actor": actor, "idempotency_key": key}
        tries = _TRIES
        while True:
            tries -= 1
            try:
                return self._perform(DEFINITIONS[command], incident_id, options, args, through)[1]
            except IdempotencyConflict:
                return True  # the alert was sent again with other text: the first is kept
            except ConcurrencyConflict:
                if not tries:
                    raise


def _through(plan: _Plan, incident: Incident) -> Reference:
    """The alert reference ``incident`` holds for ``plan``: its own, else the legacy one."""
    own = Reference(REFERENCE_KIND, plan.reference)
    legacy = Reference(REFERENCE_KIND, plan.legacy)
    return legacy if own not in incident.references and legacy in incident.references else own


def _declared_by(plan: _Plan, incident: Incident) -> bool:
    """True when the first alert recorded on ``incident`` came from ``plan``'s source and key."""
    for item in incident.evidence:
        lines = item.content.split("\n")
        if any(ln.startswith("source: ") and "; key: " in ln for ln in lines[1:]):
            return item.source == plan.alert.source and plan.marker() in lines
    return False


def _first_start(history: list[tuple[str, str]]) -> datetime | None:
    """When the first recorded firing started, if it said."""
    for status, start in history:
        if status == "firing":
            try:
                return datetime.fromisoformat(start) if start else None
            except ValueError:
                return None
    return None


def _before(start: datetime | None, first: datetime | None) -> bool:
    return start is not None and first is not None and start < first


def _not_recorded(error: IncidentFlowError) -> str:
    """Why an alert was not recorded on an incident its sender may not see: its kind alone."""
    return f"not recorded there ({type(error).__name__})"


def _outcome(
    plan: _Plan,
    action: AlertAction,
    incident_id: str,
    shown: bool,
    details: list[str],
    *,
    replayed: bool = False,
) -> AlertOutcome:
    """What became of ``plan``'s alert; an incident the sender may not see goes unnamed."""
    from .alerts._report import AlertOutcome

    if not shown:
        details.append(_UNSEEN)
    return AlertOutcome(
        alert=plan.alert,
        action=action,
        incident_id=incident_id if shown else None,
        replayed=replayed,
        detail=" | ".join(d for d in details if d),
    )
