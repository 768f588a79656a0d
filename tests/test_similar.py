"""flow.similar(): past incidents and KB gotchas like an incident, and what each store keeps for it.

Every store's ranking is checked by the store contract (``test_search_*`` in
``incidentflow.testing.contract``); here are the flow method, the text it
searches, the in-memory ranking, and what only SQLite and PostgreSQL do: the
schema migrations that backfill the index, the fallback without FTS5, and
commands that leave the index alone.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import START, drive_to
from incidentflow import (
    Incident,
    IncidentFlow,
    IncidentFlowError,
    IncidentNotFound,
    Severity,
    SimilarIncident,
    State,
    ValidationError,
)
from incidentflow._similar import (
    MAX_QUERY_TERMS,
    SearchDocument,
    SearchText,
    query_terms,
    rank,
    search_text_changed,
)
from incidentflow.stores import SQLiteStore
from incidentflow.stores.sqlite import _schema as sqlite_module
from incidentflow.testing import FrozenClock


def past_incidents(flow: IncidentFlow, clock: FrozenClock) -> dict[str, Incident]:
    """A closed checkout incident with a KB gotcha, a dismissed one, and an unrelated one."""
    gateway = drive_to(
        flow,
        clock,
        "kb_updated",
        texts={
            "title": "Checkout returns 500: payment gateway timeout",
            "symptom": "every checkout answers HTTP 500 after 30 seconds",
            "root_cause": "the gateway client waited 30 s without a retry",
            "kb_symptom": "checkout 500 with gateway timeouts in the logs",
            "kb_early_signs": "gateway p99 latency above 2 s",
        },
    )
    clock.advance(days=1)
    duplicate = flow.declare("Checkout broken", severity="P2", commander="bob", actor="bob")
    duplicate = flow.dismiss(duplicate.id, reason="duplicate", actor="bob")
    clock.advance(days=1)
    disk = flow.declare("Disk full on db host", severity="P3", commander="bob", actor="bob")
    clock.advance(days=1)
    return {"gateway": gateway, "duplicate": duplicate, "disk": disk}


class TestSimilar:
    def test_finds_past_incidents_best_first(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """A new checkout incident finds the closed and the dismissed checkout incidents first."""
        past = past_incidents(flow, clock)
        new = flow.declare("Checkout returns 500", severity="P1", commander="al", actor="al")
        found = flow.similar(new.id)
        assert [s.incident_id for s in found] == [past["gateway"].id, past["duplicate"].id]
        assert all(isinstance(s, SimilarIncident) for s in found)
        assert found[0].score > found[1].score > 0

    def test_answer_shows_the_gotcha_and_what_matched(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The best match names its KB gotcha, symptom, root cause and the fields that matched."""
        past = past_incidents(flow, clock)
        new = flow.declare("Gateway timeout", severity="P2", commander="al", actor="al")
        [best] = flow.similar(new.id, limit=1)
        gateway = past["gateway"]
        assert best.incident_id == gateway.id
        assert best.title == gateway.title
        assert (best.severity, best.state) == (Severity.P1, State.KB_UPDATED)
        assert best.declared_at == gateway.declared_at
        assert best.matched == ("title", "root_cause", "gotcha")
        assert best.gotcha_slug == gateway.slug
        assert best.symptom == "every checkout answers HTTP 500 after 30 seconds"
        assert best.root_cause == (
            "the gateway client waited 30 s without a retry\n"
            "no load test ran against the release candidate"
        )

    def test_never_returns_the_incident_itself(self, flow: IncidentFlow) -> None:
        """Its own text matches itself best, yet the incident is left out of its answer."""
        only = flow.declare("Queue consumer lag", severity="P3", commander="al", actor="al")
        assert list(flow.similar(only.id)) == []

    def test_text_searches_before_an_incident_exists(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """text= alone searches every incident, so a responder can look before declaring."""
        past = past_incidents(flow, clock)
        found = flow.similar(text="disk full, writes fail")
        assert [s.incident_id for s in found] == [past["disk"].id]

    def test_text_adds_words_to_the_incident(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """With an incident, text= adds words (a log line) to its own, still leaving it out."""
        past = past_incidents(flow, clock)
        new = flow.declare("Writes fail", severity="P2", commander="al", actor="al")
        assert list(flow.similar(new.id)) == []
        found = flow.similar(new.id, text="ENOSPC: disk full on /var/lib/postgresql")
        assert [s.incident_id for s in found] == [past["disk"].id]

    def test_symptom_answered_later_is_searched(
        self, flow: IncidentFlow, clock: FrozenClock
    ) -> None:
        """The triage answer to ``symptom`` joins the query once it is given."""
        past = past_incidents(flow, clock)
        new = flow.declare("Basket page blank", severity="P2", commander="al", actor="al")
        assert list(flow.similar(new.id)) == []
        flow.start_triage(new.id, actor="al")
        flow.answer_triage(new.id, "Symptom", "HTTP 500 from the payment gateway", actor="al")
        assert flow.similar(new.id)[0].incident_id == past["gateway"].id

    def test_text_without_words_finds_nothing(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Punctuation and stop words alone give an empty answer, not an error."""
        past_incidents(flow, clock)
        assert list(flow.similar(text="?! -- the of and")) == []

    def test_limit(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """limit= caps the answer."""
        past_incidents(flow, clock)
        assert len(flow.similar(text="checkout disk", limit=3)) == 3
        assert len(flow.similar(text="checkout disk", limit=1)) == 1
        assert len(flow.similar(text="checkout disk", limit=100)) == 3


class TestSimilarRefuses:
    def test_unknown_incident(self, flow: IncidentFlow) -> None:
        """An unknown id raises IncidentNotFound naming it."""
        with pytest.raises(IncidentNotFound, match="INC-2026-01-01-nothing"):
            flow.similar("INC-2026-01-01-nothing")

    def test_neither_incident_nor_text(self, flow: IncidentFlow) -> None:
        """Without an incident or text there is nothing to compare; the error says what to give."""
        with pytest.raises(ValidationError, match="text=") as caught:
            flow.similar()
        assert caught.value.field == "incident_id"

    @pytest.mark.parametrize("limit", [0, -1, True, False, 101, 10**9, 2.5, "5", None])
    def test_bad_limit(self, flow: IncidentFlow, limit: Any) -> None:
        """limit must be a whole number from 1 to 100; the error names the field."""
        inc = flow.declare("Search is slow", severity="P3", commander="al", actor="al")
        with pytest.raises(ValidationError) as caught:
            flow.similar(inc.id, limit=limit)
        assert caught.value.field == "limit"

    def test_limit_is_checked_before_the_incident(self, flow: IncidentFlow) -> None:
        """A bad limit is reported even for an unknown incident."""
        with pytest.raises(ValidationError, match="limit"):
            flow.similar("INC-2026-01-01-nothing", limit=0)

    @pytest.mark.parametrize("text", ["", "   ", 42, b"bytes", "x" * 20_001, "bell\x07"])
    def test_bad_text(self, flow: IncidentFlow, text: Any) -> None:
        """text must be non-empty text of at most 20,000 characters without control characters."""
        with pytest.raises(ValidationError) as caught:
            flow.similar(text=text)
        assert caught.value.field == "text"

    @pytest.mark.parametrize("incident_id", ["", 42, "two\nlines"])
    def test_bad_incident_id(self, flow: IncidentFlow, incident_id: Any) -> None:
        """An incident id that is not a one-line text is a ValidationError naming incident_id."""
        with pytest.raises(ValidationError) as caught:
            flow.similar(incident_id)
        assert caught.value.field == "incident_id"


class TestSearchText:
    def test_fields_of_a_closed_incident(self, flow: IncidentFlow, clock: FrozenClock) -> None:
        """Title, symptom answer, root cause with process gap, and the gotcha's four texts."""
        inc = drive_to(flow, clock, "kb_updated")
        text = SearchText.of(inc)
        assert text.title == inc.title
        assert text.symptom == inc.triage["symptom"]
        assert inc.root_cause is not None
        assert inc.kb_entry is not None
        assert text.root_cause == f"{inc.root_cause.statement}\n{inc.root_cause.process_gap}"
        kb = inc.kb_entry
        assert text.gotcha == "\n".join((kb.symptom, kb.root_cause, kb.fix, kb.early_signs))
        assert text.gotcha_slug == kb.slug
        assert text.fields == (text.title, text.symptom, text.root_cause, text.gotcha)

    def test_fields_of_a_new_incident(self, flow: IncidentFlow) -> None:
        """A declared incident has only its title to search by."""
        inc = flow.declare("Search is slow", severity="P3", commander="al", actor="al")
        assert SearchText.of(inc) == SearchText("Search is slow", "", "", "", None)
        assert SearchText.of(inc).query == "Search is slow"

    def test_only_searchable_changes_count(self, flow: IncidentFlow) -> None:
        """Evidence, notes and other triage answers change nothing searchable; the symptom does."""
        inc = flow.start_triage(
            flow.declare("Search is slow", severity="P3", commander="al", actor="al").id,
            actor="al",
        )
        evidence = flow.add_evidence(inc.id, source="ps", content="cpu 100%", actor="al")
        assert not search_text_changed(inc, evidence)
        scope = flow.answer_triage(inc.id, "scope", "everyone", actor="al")
        assert not search_text_changed(evidence, scope)
        symptom = flow.answer_triage(inc.id, "symptom", "results take 9 s", actor="al")
        assert search_text_changed(scope, symptom)
        assert search_text_changed(None, symptom)


class TestQueryTerms:
    def test_words_lowercased_without_stop_words_or_repeats(self) -> None:
        """Terms are lower-cased, stop words and one-letter words dropped, each kept once."""
        assert query_terms("The API is DOWN: a 500, then another 500 on the API") == (
            "api",
            "500",
            "another",
        )

    def test_syntax_is_not_a_term(self) -> None:
        """Operators and punctuation of any query language are separators."""
        assert query_terms('"NEAR" AND (title:*) - ^col: {x} [y] | & ! <-> p99') == (
            "near",
            "title",
            "col",
            "p99",
        )

    def test_unicode_is_composed(self) -> None:
        """Decomposed accents are composed (NFC), so both spellings give one term."""
        assert query_terms("cafe\u0301 café Straße 決済") == ("café", "straße", "決済")

    def test_at_most_max_query_terms(self) -> None:
        """A long text keeps its first MAX_QUERY_TERMS distinct words."""
        text = " ".join(f"word{n}" for n in range(200))
        assert query_terms(text) == tuple(f"word{n}" for n in range(MAX_QUERY_TERMS))


def document(incident_id: str, title: str, days: int = 0) -> SearchDocument:
    """An incident with only a title, declared ``days`` before START, for rank()."""
    at = START - timedelta(days=days)
    text = SearchText(title, "", "", "", None)
    return SearchDocument(incident_id, Severity.P2, State.DECLARED, at, text)


class TestRank:
    def test_rarer_words_count_more(self) -> None:
        """A match on a rare word outranks a match on a word most incidents hold."""
        documents = [
            document("A", "checkout slow"),
            document("B", "checkout gateway"),
            document("C", "checkout down"),
            document("D", "login slow"),
        ]
        found = rank(documents, ("checkout", "gateway"))
        assert [s.incident_id for s in found] == ["B", "C", "A"]

    def test_ties_go_to_the_newest_then_the_greatest_id(self) -> None:
        """Equal scores are ordered by declaration, newest first, then by id, descending."""
        documents = [
            document("A", "disk full", days=2),
            document("C", "disk full", days=1),
            document("B", "disk full", days=1),
        ]
        assert [s.incident_id for s in rank(documents, ("disk",))] == ["C", "B", "A"]

    def test_light_stemming(self) -> None:
        """Plurals and -ed/-ing endings match their stem."""
        documents = [document("A", "gateway timeouts"), document("B", "deploy failing")]
        assert [s.incident_id for s in rank(documents, ("timeout",))] == ["A"]
        assert [s.incident_id for s in rank(documents, ("failed",))] == ["B"]

    def test_accents_are_folded(self) -> None:
        """The in-memory ranking finds "café" by "cafe" and the other way round."""
        documents = [document("A", "café menu broken"), document("B", "cafe menu")]
        assert {s.incident_id for s in rank(documents, ("cafe",))} == {"A", "B"}

    def test_nothing_to_rank(self) -> None:
        """No documents, no terms, or limit 0 give an empty answer."""
        assert rank([], ("disk",)) == []
        assert rank([document("A", "disk")], ()) == []
        assert rank([document("A", "disk")], ("disk",), limit=0) == []


# -- property tests -----------------------------------------------------------------------

#: Text mixing words with every operator of FTS5 and tsquery syntax.
syntax_text = st.lists(
    st.sampled_from(
        [*"\"'*:()-^{}[]|&!<>\\/+ ~_.,", "NEAR", "AND", "OR", "NOT", "checkout", "500", "é", "決済"]
    ),
    max_size=25,
).map("".join)

#: Text without control characters or surrogates: what a person can type or paste.
printable = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=220
)

_slugs = itertools.count()


def slug() -> str:
    """A fresh slug: titles that make no slug of their own would run out of numbered ones."""
    return f"similar-{next(_slugs)}"


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def any_flow(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IncidentFlow]:
    """A flow on the memory store or on SQLite with FTS5, shared by a test's examples."""
    clock = FrozenClock(START)
    if request.param == "memory":
        flow = IncidentFlow.in_memory(clock=clock)
    else:
        path = tmp_path_factory.mktemp("similar") / "incidents.db"
        flow = IncidentFlow(SQLiteStore(path), clock=clock)
    flow.declare("Checkout returns 500", severity="P1", commander="al", actor="al")
    yield flow
    flow.close()


class TestProperties:
    @settings(max_examples=150, deadline=None)
    @given(title=printable | st.text(max_size=220), text=printable | st.text(max_size=300))
    def test_any_text_gives_an_answer_or_an_incidentflow_error(
        self, any_flow: IncidentFlow, title: str, text: str
    ) -> None:
        """Whatever the title or query text, similar() answers or raises an IncidentFlowError."""
        with contextlib.suppress(IncidentFlowError):
            inc = any_flow.declare(title, severity="P3", commander="al", actor="al", slug=slug())
            found = any_flow.similar(inc.id)
            assert inc.id not in [s.incident_id for s in found]
        with contextlib.suppress(IncidentFlowError):
            found = any_flow.similar(text=text, limit=100)
            assert all(s.matched for s in found)
            scores = [s.score for s in found]
            assert scores == sorted(scores, reverse=True)

    @settings(max_examples=150, deadline=None)
    @given(query=syntax_text)
    def test_query_syntax_never_fails(self, any_flow: IncidentFlow, query: str) -> None:
        """Strings of FTS5 and tsquery operators are searched as words, never fail."""
        with contextlib.suppress(ValidationError):  # empty or blank text
            found = any_flow.similar(text=query, limit=100)
            if {"checkout", "500"} & set(query_terms(query)):
                assert "INC-2026-11-27-checkout-returns-500" in [s.incident_id for s in found]

    @settings(max_examples=100, deadline=None)
    @given(
        title=printable,
        others=st.lists(st.text(max_size=60), max_size=4),
    )
    def test_a_twin_is_always_found(
        self, any_flow: IncidentFlow, title: str, others: list[str]
    ) -> None:
        """An incident titled like a past one finds that one, whatever else is in the store."""
        if not query_terms(title):
            return  # a title without searchable words finds nothing by design
        for other in others:
            with contextlib.suppress(ValidationError):
                any_flow.declare(other, severity="P4", commander="al", actor="al", slug=slug())
        # The twin is the newest incident, so ties go to it.
        cast(FrozenClock, any_flow.clock).advance(minutes=1)
        try:
            twin = any_flow.declare(title, severity="P3", commander="al", actor="al", slug=slug())
        except ValidationError:
            return  # blank after stripping
        new = any_flow.declare(title, severity="P2", commander="al", actor="al", slug=slug())
        found = [s.incident_id for s in any_flow.similar(new.id, limit=100)]
        assert twin.id in found


# -- SQLite ---------------------------------------------------------------------------------


def statements_of(store: SQLiteStore, work: Callable[[], object]) -> list[str]:
    """The SQL statements ``store`` runs while ``work`` runs."""
    seen: list[str] = []
    store._conn.set_trace_callback(seen.append)
    try:
        work()
    finally:
        store._conn.set_trace_callback(None)
    return seen


def fill(flow: IncidentFlow, clock: FrozenClock) -> dict[str, Incident]:
    """The past incidents, and one in triage whose symptom is in no checkpoint yet."""
    past = past_incidents(flow, clock)
    inc = flow.declare("Orders vanish", severity="P2", commander="al", actor="al")
    flow.start_triage(inc.id, actor="al")
    for n in range(20):
        flow.add_note(inc.id, f"note {n}", actor="al")
    past["vanish"] = flow.answer_triage(inc.id, "symptom", "carts emptied on reload", actor="al")
    return past


class TestSQLite:
    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        return tmp_path / "incidents.db"

    def test_version_2_database_gets_search(
        self,
        path: Path,
        clock: FrozenClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A file written at schema 2 (no search tables) is migrated and backfilled."""
        monkeypatch.setattr(sqlite_module, "_MIGRATIONS", sqlite_module._MIGRATIONS[:2])
        monkeypatch.setattr(sqlite_module, "SCHEMA_VERSION", 2)
        old_store = SQLiteStore(path)
        with IncidentFlow(old_store, clock=clock) as old:
            past = fill(old, clock)
            assert old_store.schema_version() == 2
            tables = {r[0] for r in old_store._conn.execute("SELECT name FROM sqlite_master")}
            assert not any(name.startswith("search") for name in tables)
        monkeypatch.undo()

        store = SQLiteStore(path)
        with IncidentFlow(store, clock=clock) as flow:
            assert store.schema_version() == sqlite_module.SCHEMA_VERSION
            assert store._fts
            found = flow.similar(text="carts emptied")
            assert [(s.incident_id, s.matched) for s in found] == [
                (past["vanish"].id, ("symptom",))
            ]
            [gotcha] = flow.similar(text="p99 latency")
            assert gotcha.gotcha_slug == past["gateway"].slug
            new = flow.declare("Checkout returns 500", severity="P1", commander="al", actor="al")
            assert [s.incident_id for s in flow.similar(new.id)][:2] == [
                past["gateway"].id,
                past["duplicate"].id,
            ]

    def test_add_evidence_does_not_touch_the_index(self, path: Path, clock: FrozenClock) -> None:
        """Commands that change no searchable text neither read nor write the search tables."""
        store = SQLiteStore(path)
        flow = IncidentFlow(store, clock=clock)
        inc = flow.start_triage(
            flow.declare("Orders vanish", severity="P2", commander="al", actor="al").id,
            actor="al",
        )
        for work in (
            lambda: flow.add_evidence(inc.id, source="ps", content="cpu 100%", actor="al"),
            lambda: flow.add_note(inc.id, "paging payments", actor="al"),
            lambda: flow.answer_triage(inc.id, "scope", "everyone", actor="al"),
        ):
            assert not [sql for sql in statements_of(store, work) if "search" in sql]
        symptom = statements_of(
            store, lambda: flow.answer_triage(inc.id, "symptom", "carts empty", actor="al")
        )
        assert any("search_index" in sql for sql in symptom)
        flow.close()

    def test_without_a_cached_snapshot_the_stored_text_decides(
        self, path: Path, clock: FrozenClock
    ) -> None:
        """Without the snapshot before a commit, the stored text decides whether to write."""
        store = SQLiteStore(path, cache_size=0)
        flow = IncidentFlow(store, clock=clock)
        other = IncidentFlow(SQLiteStore(path), clock=clock)
        inc = flow.start_triage(
            flow.declare("Orders vanish", severity="P2", commander="al", actor="al").id,
            actor="al",
        )
        other.answer_triage(inc.id, "symptom", "carts emptied", actor="al")
        note = statements_of(store, lambda: flow.add_note(inc.id, "a note", actor="al"))
        assert [sql.split(" ", 1)[0] for sql in note if "search" in sql] == ["SELECT"]
        flow.answer_triage(inc.id, "symptom", "orders double charged", actor="al")
        for each in (flow, other):
            assert list(each.similar(text="carts emptied")) == []
            assert [s.incident_id for s in each.similar(text="double charged")] == [inc.id]
        flow.close()
        other.close()

    def test_without_fts5_search_ranks_in_memory(
        self, path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without FTS5 the stored text is ranked in memory; FTS5 later rebuilds its index."""
        monkeypatch.setattr(sqlite_module, "_fts5_available", lambda: False)
        store = SQLiteStore(path)
        with IncidentFlow(store, clock=clock) as flow:
            assert not store._fts
            past = fill(flow, clock)
            found = flow.similar(text="carts emptied")
            assert [(s.incident_id, s.matched) for s in found] == [
                (past["vanish"].id, ("symptom",))
            ]
        monkeypatch.undo()

        store = SQLiteStore(path)
        with IncidentFlow(store, clock=clock) as flow:
            assert store._fts
            with_fts = flow.similar(text="carts emptied")
            assert [(s.incident_id, s.matched) for s in with_fts] == [
                (past["vanish"].id, ("symptom",))
            ]
            flow.answer_triage(past["vanish"].id, "symptom", "parcels lost", actor="al")
        monkeypatch.setattr(sqlite_module, "_fts5_available", lambda: False)
        with IncidentFlow(SQLiteStore(path), clock=clock) as flow:  # writes without FTS5
            flow.answer_triage(past["vanish"].id, "symptom", "baskets dropped", actor="al")
        monkeypatch.undo()
        with IncidentFlow(SQLiteStore(path), clock=clock) as flow:  # and FTS5 catches up
            assert [s.incident_id for s in flow.similar(text="baskets")] == [past["vanish"].id]
            assert list(flow.similar(text="parcels lost")) == []

    def test_fts5_is_detected(self) -> None:
        """This Python's sqlite3 has FTS5, so the tests above exercise the index."""
        assert sqlite_module._fts5_available()
        with contextlib.closing(sqlite3.connect(":memory:")) as conn:
            conn.execute("CREATE VIRTUAL TABLE t USING fts5(x)")


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
def postgres_schema() -> Iterator[tuple[str, str]]:
    """The test server's DSN and a throwaway schema, dropped afterwards; skips without a server."""
    import pg

    dsn = pg.postgres_dsn()
    psycopg = pytest.importorskip("psycopg")
    schema = f"test_similar_{uuid.uuid4().hex[:16]}"
    yield dsn, schema
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class TestPostgres:
    def test_version_1_schema_gets_search(
        self,
        postgres_schema: tuple[str, str],
        clock: FrozenClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A schema written at version 1 is migrated and backfilled from its histories."""
        from incidentflow.stores.postgres import PostgresStore
        from incidentflow.stores.postgres import _schema as postgres_module

        dsn, schema = postgres_schema
        monkeypatch.setattr(postgres_module, "_MIGRATIONS", postgres_module._MIGRATIONS[:1])
        monkeypatch.setattr(postgres_module, "SCHEMA_VERSION", 1)
        with IncidentFlow(PostgresStore(dsn, schema=schema), clock=clock) as old:
            past = fill(old, clock)
        monkeypatch.undo()

        store = PostgresStore(dsn, schema=schema)
        with IncidentFlow(store, clock=clock) as flow:
            assert store.schema_version() == postgres_module.SCHEMA_VERSION
            found = flow.similar(text="carts emptied")
            assert [(s.incident_id, s.matched) for s in found] == [
                (past["vanish"].id, ("symptom",))
            ]
            [gotcha] = flow.similar(text="p99 latency")
            assert gotcha.gotcha_slug == past["gateway"].slug

    def test_add_evidence_does_not_rewrite_the_search_row(
        self, postgres_schema: tuple[str, str], clock: FrozenClock
    ) -> None:
        """Commands that change no searchable text leave the search row as it was, cached or not."""
        from incidentflow.stores.postgres import PostgresStore

        dsn, schema = postgres_schema
        first = IncidentFlow(PostgresStore(dsn, schema=schema), clock=clock)
        second = IncidentFlow(PostgresStore(dsn, schema=schema, cache_size=0), clock=clock)
        inc = first.start_triage(
            first.declare("Orders vanish", severity="P2", commander="al", actor="al").id,
            actor="al",
        )

        def row_version() -> Any:
            import psycopg

            with psycopg.connect(dsn) as conn:
                return conn.execute(
                    f'SELECT xmin::text FROM "{schema}".search WHERE incident_id = %s', (inc.id,)
                ).fetchone()

        before = row_version()
        first.add_evidence(inc.id, source="ps", content="cpu 100%", actor="al")
        second.add_note(inc.id, "no cache here", actor="al")  # the path without a snapshot
        first.answer_triage(inc.id, "scope", "everyone", actor="al")
        assert row_version() == before
        second.answer_triage(inc.id, "symptom", "carts emptied", actor="al")
        assert row_version() != before
        assert [s.incident_id for s in first.similar(text="carts")] == [inc.id]
        first.close()
        second.close()
