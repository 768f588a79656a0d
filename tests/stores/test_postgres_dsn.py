"""PostgresStore hands the libpq parameters of a URL to libpq exactly as given.

A URL's query mixes the store's own options (schema, pool sizes) with libpq's;
the store takes its own out and passes the rest on. libpq reads that query as
percent-encoded text only, so a space must reach it as ``%20`` (never ``+``) and
a ``+`` must stay a plus. These tests connect to the server named by
INCIDENTFLOW_TEST_POSTGRES_DSN and ask it what it received.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import store_workers
from store_workers import postgres_dsn, postgres_schema

from incidentflow import IncidentFlow
from incidentflow.stores import open_store

#: Holds a space, a plus and a slash, each of which a careless re-encoding changes.
APPLICATION = "on+call rota/eu"


def as_url(dsn: str) -> str:
    """The test server's DSN as a postgresql:// URL (a key=value DSN becomes its query)."""
    if "://" in dsn:
        return dsn
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    return "postgresql:///?" + "&".join(
        f"{name}={quote(str(value), safe='')}" for name, value in params.items()
    )


def with_query(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query


def settings(store: Any) -> tuple[str, str, str]:
    """What the server received on one of the store's connections."""
    with store._connection() as conn:
        row = conn.execute(
            "SELECT current_setting('application_name'), "
            "current_setting('statement_timeout'), current_setting('lock_timeout')"
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


class TestLibpqParameters:
    """libpq parameters on a store's URL reach the server unchanged."""

    def test_spaces_and_pluses_arrive_as_given(self, tmp_path: Path) -> None:
        """application_name with a space and a plus, and options=-c ..., arrive verbatim."""
        schema = postgres_schema(tmp_path)
        store_workers._postgres_schemas.add(schema)  # dropped after the test
        url = with_query(
            as_url(postgres_dsn()),
            f"schema={schema}&application_name={quote(APPLICATION, safe='+')}"
            "&options=-c%20statement_timeout%3D4321%20-c%20lock_timeout%3D1234",
        )
        store = open_store(url)
        try:
            assert getattr(store, "schema", None) == schema  # the store's own option, taken out
            assert settings(store) == (APPLICATION, "4321ms", "1234ms")
            incident = IncidentFlow(store).declare(
                "Checkout returns 500", severity="P2", commander="alice", actor="alice"
            )
            assert store.load(incident.id) == incident
        finally:
            store.close()

    def test_a_percent_encoded_equals_sign_and_slash_survive(self, tmp_path: Path) -> None:
        """options=-c search_path=... written fully percent-encoded connects and applies."""
        schema = postgres_schema(tmp_path)
        store_workers._postgres_schemas.add(schema)
        url = with_query(
            as_url(postgres_dsn()),
            "options=" + quote(f"-c search_path={schema},public", safe=""),
        )
        from incidentflow.stores.postgres import PostgresStore

        store = PostgresStore(url, schema=schema)
        try:
            with store._connection() as conn:
                row = conn.execute("SHOW search_path").fetchone()
            assert row is not None
            assert row[0] == f"{schema},public"
        finally:
            store.close()
