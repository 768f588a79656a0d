"""The query index contract: listings, summaries, milestones and similar incidents.

The filters on types, labels, fields and references are in :mod:`._contract_labels`,
what a viewer may see (restricted incidents) in :mod:`._contract_access`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta, timezone
from pathlib import Path

import pytest

from .._events import (
    CommanderAssigned,
    Dismissed,
    EventData,
    EvidenceAdded,
    KbUpdated,
    Reclassified,
    RootCauseSet,
    TriageAnswered,
    TriageStarted,
)
from .._flow import IncidentFlow
from .._metrics import milestones
from .._model import Incident, Severity, State
from .._similar import SearchText
from ..stores._base import (
    IncidentQuery,
    IncidentSummary,
    Store,
)
from ..stores._scanning import TermSearch
from ._builders import (
    AWKWARD_TEXT,
    CHECKOUT,
    START,
    declare_commit,
    next_commit,
    write,
)
from ._clock import FrozenClock
from ._contract_access import AccessContract
from ._contract_labels import LabelsContract
from ._suite import ContractFixtures

_GATEWAY = "INC-2026-10-01-checkout-gateway"
_DEPLOY = "INC-2026-10-09-checkout-deploy"
_DISK = "INC-2026-10-14-disk-full"
_LOGIN = "INC-2026-10-20-login-slow"
_DNS = "INC-2026-10-27-dns-staging"
_CERT = "INC-2026-11-03-cert-expired"
_QUEUE = "INC-2026-11-10-queue-lag"
_SYNTAX = "INC-2026-11-17-syntax"
_PAST: tuple[
    tuple[
        str,
        int,
        Severity,
        str,
        str,
        tuple[str, str] | None,
        tuple[str, str, str, str, str] | None,
        str,
    ],
    ...,
] = (
    (
        _GATEWAY,
        57,
        Severity.P1,
        "Checkout returns 500: payment gateway timeout",
        "every checkout request answers HTTP 500 after 30 seconds",
        ("the payment gateway client waited 30 s with no retry", "no budget for third-party calls"),
        (
            "payment-gateway-timeout",
            "checkout 500 with gateway timeouts in the logs",
            "client timeout longer than the load balancer's",
            "a 5 s timeout with one retry",
            "gateway p99 latency above 2 s",
        ),
        "",
    ),
    (
        _DEPLOY,
        49,
        Severity.P1,
        "Checkout 500 errors after deploy of release 41",
        "orders fail with 500 since the deploy",
        ("release 41 opened a connection per request", "no load test before a release"),
        None,
        "",
    ),
    (
        _DISK,
        44,
        Severity.P2,
        "Disk full on db host",
        "postgres refuses writes: no space left on device",
        ("WAL archive never pruned", "no alert on disk usage"),
        (
            "disk-full-wal-archive",
            "writes fail with no space left",
            "WAL archive never pruned",
            "prune the archive nightly",
            "disk usage above 80 percent",
        ),
        "",
    ),
    (
        _LOGIN,
        38,
        Severity.P3,
        "Login slow for EU users",
        "login takes 10 seconds in Frankfurt",
        ("session cache evicted after the certificate rotation", "runbook skips cache warm-up"),
        None,
        "",
    ),
    (_DNS, 31, Severity.P3, "DNS resolution failing in staging", "", None, None, "false alarm"),
    (
        _CERT,
        24,
        Severity.P2,
        "TLS certificate expired on api host",
        "browsers show certificate errors",
        None,
        None,
        "",
    ),
    (
        _QUEUE,
        17,
        Severity.P3,
        "Queue consumer lag 40k messages",
        "notifications arrive an hour late",
        None,
        None,
        "",
    ),
    (
        _SYNTAX,
        10,
        Severity.P4,
        "Search \"NEAR\" AND (title:*) - OR NOT ^col: {x} [y] | & ! <-> \\ 'quoted'",
        "",
        None,
        None,
        "",
    ),
)

#: Queries written in FTS5 or tsquery syntax; every store reads them as plain words.
_SYNTAX_QUERIES = (
    '"checkout" NEAR/2 gateway*',
    "NOT checkout",
    "checkout AND -deploy OR :",
    "title:checkout",
    "{title symptom}: checkout",
    "checkout & !deploy | (500 <-> gateway):*",
    "'checkout' \\ \"500\"",
    "^checkout + - ( ) [ ]",
)


class QueryIndexContract(LabelsContract, AccessContract, ContractFixtures):
    """The tests every :class:`~incidentflow.stores.QueryIndex` passes.

    The tests of types, labels, fields, references and open action items come
    from :class:`~incidentflow.testing._contract_labels.LabelsContract`.
    """

    @pytest.fixture
    def fleet(self, store: Store) -> dict[str, Incident]:
        """Seven incidents of every severity, in open and closed states, for list()."""
        # id, title, severity, commander, days before START, then: triage / dismiss / nothing
        plans = [
            ("INC-2026-11-20-db", "Database outage", Severity.P1, "alice", 7, "triage"),
            ("INC-2026-11-21-tiles", "Straße map tiles missing", Severity.P3, "bob", 6, ""),
            ("INC-2026-11-22-login", "Login slow", Severity.P2, "alice", 5, "dismiss"),
            ("INC-2026-11-23-checkout", "Checkout returns 500", Severity.P1, "carol", 4, ""),
            ("INC-2026-11-24-typo", "Typo on pricing page", Severity.P4, "bob", 3, "dismiss"),
            ("INC-2026-11-25-search", "Search is SLOW", Severity.P2, "alice", 2, "triage"),
            ("INC-2026-11-25-cache", "Cache stampede", Severity.P2, "carol", 2, ""),
        ]
        found = {}
        for incident_id, title, severity, commander, days, then in plans:
            at = START - timedelta(days=days)
            snapshot = write(
                store,
                declare_commit(
                    incident_id, title=title, severity=severity, commander=commander, at=at
                ),
            )
            if then == "triage":
                snapshot = write(store, next_commit(snapshot, TriageStarted()))
            elif then == "dismiss":
                snapshot = write(store, next_commit(snapshot, Dismissed("false alarm")))
            found[incident_id] = snapshot
        return found

    # -- list --------------------------------------------------------------------------------

    def assert_list(
        self, store: Store, fleet: dict[str, Incident], query: IncidentQuery, ids: Sequence[str]
    ) -> None:
        """list(query) gives the incidents ``ids`` in that order, as IncidentQuery.apply does."""
        found = store.list(query)
        assert [i.id for i in found] == list(ids)
        assert list(found) == query.apply(fleet.values())
        # The cheap readings agree with the snapshots: summaries in order, milestones as a set.
        assert list(store.summaries(query)) == [IncidentSummary.of(i) for i in found]
        assert {m.incident_id: m for m in store.milestones(query)} == {
            i.id: milestones(i) for i in found
        }

    def test_list_all_newest_first(self, store: Store, fleet: dict[str, Incident]) -> None:
        """By default every incident is listed, newest declaration first, ties by id."""
        ids = [
            "INC-2026-11-25-search",
            "INC-2026-11-25-cache",
            "INC-2026-11-24-typo",
            "INC-2026-11-23-checkout",
            "INC-2026-11-22-login",
            "INC-2026-11-21-tiles",
            "INC-2026-11-20-db",
        ]
        self.assert_list(store, fleet, IncidentQuery(), ids)

    def test_list_oldest_first(self, store: Store, fleet: dict[str, Incident]) -> None:
        """newest_first=False reverses the order."""
        query = IncidentQuery(newest_first=False, limit=3)
        self.assert_list(
            store,
            fleet,
            query,
            ["INC-2026-11-20-db", "INC-2026-11-21-tiles", "INC-2026-11-22-login"],
        )

    def test_list_by_state(self, store: Store, fleet: dict[str, Incident]) -> None:
        """states= keeps incidents in any of the given states."""
        query = IncidentQuery(states=frozenset({State.TRIAGING}))
        self.assert_list(store, fleet, query, ["INC-2026-11-25-search", "INC-2026-11-20-db"])
        both = IncidentQuery(states=frozenset({State.TRIAGING, State.DISMISSED}))
        assert len(store.list(both)) == 4
        assert list(store.list(both)) == both.apply(fleet.values())

    def test_list_by_severity(self, store: Store, fleet: dict[str, Incident]) -> None:
        """severities= keeps incidents of any of the given severities."""
        query = IncidentQuery(severities=frozenset({Severity.P1}))
        self.assert_list(store, fleet, query, ["INC-2026-11-23-checkout", "INC-2026-11-20-db"])
        several = IncidentQuery(severities=frozenset({Severity.P3, Severity.P4}))
        self.assert_list(store, fleet, several, ["INC-2026-11-24-typo", "INC-2026-11-21-tiles"])

    def test_list_open_only(self, store: Store, fleet: dict[str, Incident]) -> None:
        """open_only=True drops dismissed (closed) incidents."""
        ids = [
            "INC-2026-11-25-search",
            "INC-2026-11-25-cache",
            "INC-2026-11-23-checkout",
            "INC-2026-11-21-tiles",
            "INC-2026-11-20-db",
        ]
        self.assert_list(store, fleet, IncidentQuery(open_only=True), ids)

    def test_list_open_p1(self, store: Store, fleet: dict[str, Incident]) -> None:
        """The dashboard query: open P1 incidents."""
        query = IncidentQuery(open_only=True, severities=frozenset({Severity.P1}))
        self.assert_list(store, fleet, query, ["INC-2026-11-23-checkout", "INC-2026-11-20-db"])

    def test_list_by_commander(self, store: Store, fleet: dict[str, Incident]) -> None:
        """commander= keeps the incidents that commander leads."""
        query = IncidentQuery(commander="carol")
        self.assert_list(store, fleet, query, ["INC-2026-11-25-cache", "INC-2026-11-23-checkout"])

    def test_list_declared_between(self, store: Store, fleet: dict[str, Incident]) -> None:
        """declared_after is inclusive, declared_before exclusive."""
        query = IncidentQuery(
            declared_after=START - timedelta(days=5), declared_before=START - timedelta(days=3)
        )
        self.assert_list(store, fleet, query, ["INC-2026-11-23-checkout", "INC-2026-11-22-login"])

    def test_list_declared_after_other_timezone(
        self, store: Store, fleet: dict[str, Incident]
    ) -> None:
        """Bounds in another time zone compare by instant."""
        bound = (START - timedelta(days=2)).astimezone(timezone(timedelta(hours=2)))
        query = IncidentQuery(declared_after=bound)
        self.assert_list(store, fleet, query, ["INC-2026-11-25-search", "INC-2026-11-25-cache"])

    def test_list_text_in_title(self, store: Store, fleet: dict[str, Incident]) -> None:
        """text= matches part of the title, ignoring case (casefolded: "STRASSE" finds "Straße")."""
        slow = ["INC-2026-11-25-search", "INC-2026-11-22-login"]
        self.assert_list(store, fleet, IncidentQuery(text="slow"), slow)
        self.assert_list(store, fleet, IncidentQuery(text="STRASSE"), ["INC-2026-11-21-tiles"])
        self.assert_list(store, fleet, IncidentQuery(text="%"), [])
        self.assert_list(store, fleet, IncidentQuery(text="_"), [])

    def test_list_paging(self, store: Store, fleet: dict[str, Incident]) -> None:
        """Pages of ``limit`` from ``offset`` cover the ordered results without gaps or overlaps."""
        pages = [
            [i.id for i in store.list(IncidentQuery(limit=3, offset=offset))]
            for offset in (0, 3, 6)
        ]
        assert [len(page) for page in pages] == [3, 3, 1]
        assert [i for page in pages for i in page] == [i.id for i in store.list(IncidentQuery())]

    def test_list_offset_beyond_the_end(self, store: Store, fleet: dict[str, Incident]) -> None:
        """An offset past the last match gives an empty page."""
        assert list(store.list(IncidentQuery(offset=50))) == []

    def test_list_combined_filters(self, store: Store, fleet: dict[str, Incident]) -> None:
        """Filters combine with AND."""
        query = IncidentQuery(
            open_only=True,
            commander="alice",
            severities=frozenset({Severity.P1, Severity.P2}),
            declared_after=START - timedelta(days=6),
        )
        self.assert_list(store, fleet, query, ["INC-2026-11-25-search"])

    def test_list_follows_changes(self, store: Store, fleet: dict[str, Incident]) -> None:
        """A reclassified, reassigned, dismissed incident moves between filters."""
        checkout = fleet["INC-2026-11-23-checkout"]
        changed = write(
            store,
            next_commit(
                checkout,
                Reclassified(
                    severity=Severity.P3,
                    previous=Severity.P1,
                    reason="fewer users",
                    postmortem_required=False,
                ),
                CommanderAssigned("dave"),
                Dismissed("duplicate", "INC-2026-11-20-db"),
            ),
        )
        fleet[checkout.id] = changed
        query = IncidentQuery(open_only=True, severities=frozenset({Severity.P1}))
        self.assert_list(store, fleet, query, ["INC-2026-11-20-db"])
        self.assert_list(store, fleet, IncidentQuery(commander="dave"), [checkout.id])
        assert store.list(IncidentQuery(commander="dave"))[0] == changed

    def test_list_empty_store(self, store: Store) -> None:
        """An empty store lists nothing."""
        assert list(store.list(IncidentQuery())) == []
        assert list(store.list(IncidentQuery(open_only=True, text="x"))) == []

    def test_list_through_flow(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """flow.list() filters with the store."""
        p1 = flow.declare("Checkout returns 500", severity="P1", commander="alice", actor="a")
        clock.advance(minutes=1)
        flow.declare("Search is slow", severity="P3", commander="bob", actor="b")
        assert [i.id for i in flow.list(severity="P1", open_only=True)] == [p1.id]
        assert len(flow.list()) == 2

    def test_milestones_follow_every_commit(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Milestones and summaries reflect the latest event, checkpointed or not."""
        inc = flow.declare("Checkout returns 500", severity="P2", commander="alice", actor="a")
        clock.advance(minutes=3)
        flow.start_triage(inc.id, actor="a")
        clock.advance(minutes=1)
        # Neither a note nor a detection changes the state: no new checkpoint is due.
        flow.add_note(inc.id, "paged the DBA", actor="a")
        detected = flow.record_detection(
            inc.id,
            method="alert",
            actor="a",
            first_occurred_at=inc.declared_at - timedelta(minutes=20),
            detected_at=inc.declared_at - timedelta(minutes=2),
        )
        flow.reclassify(inc.id, "P1", reason="all regions", actor="a")
        latest = flow.get(inc.id)
        [found] = flow.milestones()
        assert found == milestones(latest)
        assert found.detected_at == detected.detection.detected_at  # type: ignore[union-attr]
        assert found.severity is Severity.P1
        assert flow.summaries() == [IncidentSummary.of(latest)]
        [summary] = flow.metrics()
        assert summary.time_to_acknowledge.mean == timedelta(minutes=3)
        assert summary.time_to_detect.mean == timedelta(minutes=18)

    # -- similar incidents -------------------------------------------------------------------

    @pytest.fixture
    def past(self, store: Store) -> dict[str, Incident]:
        """Eight past incidents with symptoms, root causes and KB gotchas, for search()."""
        found = {}
        for incident_id, days, severity, title, symptom, cause, gotcha, dismissal in _PAST:
            at = START - timedelta(days=days)
            snapshot = write(
                store, declare_commit(incident_id, title=title, severity=severity, at=at)
            )
            steps: list[EventData] = [TriageStarted()]
            if symptom:
                steps += [TriageAnswered("symptom", symptom), TriageAnswered("scope", "everyone")]
            if cause is not None:
                steps.append(RootCauseSet(*cause))
            if gotcha is not None:
                slug, symptom_, cause_, fix, signs = gotcha
                steps.append(
                    KbUpdated(
                        slug=slug, symptom=symptom_, root_cause=cause_, fix=fix, early_signs=signs
                    )
                )
            if dismissal:
                steps.append(Dismissed(dismissal))
            for step in steps:  # one commit each: the index follows every change
                snapshot = write(store, next_commit(snapshot, step, at=at))
            found[incident_id] = snapshot
        return found

    def ids(self, found: Sequence[object]) -> list[str]:
        """The incident ids of a search's answer, in order."""
        return [getattr(item, "incident_id", None) or "" for item in found]

    def test_search_ranks_the_checkout_incidents_first(
        self, store: Store, past: dict[str, Incident]
    ) -> None:
        """A new "checkout returns 500 after deploy" finds the two past checkout incidents first."""
        new = write(store, declare_commit(title="Checkout returns 500 after deploy"))
        found = store.search(SearchText.of(new).query, exclude=new.id, limit=2)
        assert set(self.ids(found)) == {_GATEWAY, _DEPLOY}

    def test_search_orders_by_relevance(self, store: Store, past: dict[str, Incident]) -> None:
        """The incident sharing more words comes first, and the scores never rise down the list."""
        found = store.search("TLS certificate expired")
        assert self.ids(found)[:2] == [_CERT, _LOGIN]
        scores = [item.score for item in found]
        assert scores == sorted(scores, reverse=True)
        assert all(score > 0 for score in scores)

    def test_search_leaves_out_the_excluded_incident(
        self, store: Store, past: dict[str, Incident]
    ) -> None:
        """exclude= leaves the incident being compared out; without it, it comes first."""
        title = past[_QUEUE].title
        assert self.ids(store.search(title))[0] == _QUEUE
        assert _QUEUE not in self.ids(store.search(title, exclude=_QUEUE))

    def test_search_finds_dismissed_and_closed_incidents(
        self, store: Store, past: dict[str, Incident]
    ) -> None:
        """Past incidents are found whatever their state: dismissed and kb_updated ones too."""
        [dismissed] = store.search("DNS resolution staging")
        assert (dismissed.incident_id, dismissed.state) == (_DNS, State.DISMISSED)
        [closed] = store.search("nightly prune")
        assert (closed.incident_id, closed.state) == (_DISK, State.KB_UPDATED)

    def test_search_answer_carries_the_gotcha(
        self, store: Store, past: dict[str, Incident]
    ) -> None:
        """An answer names the fields that matched, the symptom, root cause and gotcha slug."""
        [best] = store.search("p99 latency")
        gateway = past[_GATEWAY]
        assert best.incident_id == _GATEWAY
        assert best.matched == ("gotcha",)
        assert best.gotcha_slug == "payment-gateway-timeout"
        assert best.title == gateway.title
        assert (best.severity, best.state) == (Severity.P1, State.KB_UPDATED)
        assert best.declared_at == gateway.declared_at
        assert best.symptom == "every checkout request answers HTTP 500 after 30 seconds"
        assert best.root_cause == (
            "the payment gateway client waited 30 s with no retry\nno budget for third-party calls"
        )
        [login] = store.search("Frankfurt rotation")
        assert login.matched == ("symptom", "root_cause")
        assert login.gotcha_slug is None

    def test_search_honours_limit(self, store: Store, past: dict[str, Incident]) -> None:
        """limit= caps the answer, which starts as a longer answer does."""
        query = "checkout 500 deploy disk login queue certificate"
        longer = self.ids(store.search(query, limit=8))
        assert set(longer) == {_GATEWAY, _DEPLOY, _DISK, _LOGIN, _CERT, _QUEUE}
        assert self.ids(store.search(query, limit=3)) == longer[:3]
        assert self.ids(store.search(query, limit=1)) == longer[:1]

    def test_search_without_a_match_is_empty(self, store: Store, past: dict[str, Incident]) -> None:
        """Words no incident holds, stop words alone, or no words at all find nothing."""
        for query in ("kubernetes etcd quorum", "the and of", "!!! ... ---", ""):
            assert list(store.search(query)) == []

    def test_search_on_an_empty_store(self, store: Store) -> None:
        """An empty store finds nothing."""
        assert list(store.search("checkout returns 500")) == []

    @pytest.mark.parametrize("query", _SYNTAX_QUERIES)
    def test_search_reads_query_syntax_as_words(
        self, store: Store, past: dict[str, Incident], query: str
    ) -> None:
        """FTS5 and tsquery operators in a query neither fail nor act: they are words."""
        found = self.ids(store.search(query, limit=8))
        assert _GATEWAY in found
        assert _DEPLOY in found

    def test_search_primitive_quotes_its_terms(
        self, store: Store, past: dict[str, Incident]
    ) -> None:
        """Even terms full of syntax reach the backend's ranking as words, never as operators."""
        if not isinstance(store, TermSearch):
            pytest.skip(f"{type(store).__name__} ranks without the TermSearch primitive")
        terms = ("checkout", 'x" OR "y', "title:disk", "NEAR(a b)", "a'b", "!&|<->", "*", ")")
        assert _GATEWAY in self.ids(store._search(terms, exclude=None, limit=8))

    def test_search_finds_titles_full_of_syntax(
        self, store: Store, past: dict[str, Incident]
    ) -> None:
        """An incident whose title is full of query syntax is found by its own words."""
        found = store.search(past[_SYNTAX].title)
        assert self.ids(found)[0] == _SYNTAX
        assert found[0].title == past[_SYNTAX].title

    def test_search_follows_changes(self, store: Store) -> None:
        """The symptom, root cause and gotcha are searchable as they change; evidence is not."""
        snapshot = write(store, declare_commit(title="Checkout returns 500"))
        snapshot = write(
            store,
            next_commit(snapshot, TriageStarted(), EvidenceAdded("journalctl", "zebra stampede")),
        )
        snapshot = write(store, next_commit(snapshot, TriageAnswered("scope", "walrus users")))
        assert list(store.search("zebra walrus")) == []
        snapshot = write(store, next_commit(snapshot, TriageAnswered("symptom", "carts vanish")))
        assert [item.matched for item in store.search("carts vanish")] == [("symptom",)]
        snapshot = write(store, next_commit(snapshot, TriageAnswered("symptom", "double charge")))
        assert list(store.search("carts vanish")) == []
        assert self.ids(store.search("double charge")) == [CHECKOUT]
        cause = RootCauseSet("idempotency key dropped by the proxy", "no contract test")
        snapshot = write(store, next_commit(snapshot, cause))
        [found] = store.search("idempotency proxy")
        assert (found.matched, found.root_cause) == (
            ("root_cause",),
            "idempotency key dropped by the proxy\nno contract test",
        )
        gotcha = KbUpdated(
            slug="double-charge",
            symptom="billed twice",
            root_cause="proxy",
            fix="keep keys",
            early_signs="dup alerts",
        )
        write(store, next_commit(snapshot, gotcha))
        [found] = store.search("billed twice")
        assert (found.matched, found.gotcha_slug) == (("gotcha",), "double-charge")
        assert found.state is State.KB_UPDATED

    def test_search_unicode(self, store: Store) -> None:
        """Awkward Unicode is searchable by its words and comes back unchanged."""
        declared = write(store, declare_commit(title=AWKWARD_TEXT[:200]))
        [found] = store.search("Zahlung schlägt fehl")
        assert found.incident_id == declared.id
        assert found.title == AWKWARD_TEXT[:200]

    def test_search_after_reopening(
        self, store: Store, past: dict[str, Incident], tmp_path: Path
    ) -> None:
        """A store made again on the same location searches what was written before."""
        before = self.ids(store.search("checkout 500 deploy"))
        reopened = self.reopen(store, tmp_path)
        try:
            assert self.ids(reopened.search("checkout 500 deploy")) == before
        finally:
            reopened.close()

    def test_search_sees_another_store_writing(self, store: Store, tmp_path: Path) -> None:
        """What another store object (another process) writes is searchable at once."""
        other = self.second(tmp_path)
        try:
            first = write(other, declare_commit(title="Checkout returns 500"))
            assert self.ids(store.search("checkout")) == [CHECKOUT]
            write(other, next_commit(first, TriageStarted(), TriageAnswered("symptom", "carts")))
            assert [item.matched for item in store.search("carts")] == [("symptom",)]
        finally:
            other.close()

    def test_similar_through_flow(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """flow.similar() finds past incidents by the new one's text, never the new one itself."""
        old = flow.declare("Payment gateway timeout", severity="P2", commander="bob", actor="b")
        flow.start_triage(old.id, actor="bob")
        flow.answer_triage(old.id, "symptom", "checkout hangs, then 500", actor="bob")
        clock.advance(days=1)
        flow.declare("Disk full on db host", severity="P3", commander="bob", actor="bob")
        new = flow.declare("Checkout returns 500", severity="P1", commander="al", actor="al")
        found = flow.similar(new.id)
        assert [(item.incident_id, item.matched) for item in found] == [(old.id, ("symptom",))]
        assert self.ids(flow.similar(text="disk")) == ["INC-2026-11-28-disk-full-on-db-host"]
