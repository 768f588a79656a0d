"""IncidentFlow.verify: the stored snapshot against the replay of the history."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from incidentflow import IncidentFlow
from incidentflow.stores import MemoryStore, SQLiteStore, Store
from incidentflow.testing import FrozenClock

TITLE = "Checkout returns 500"


@pytest.fixture(params=["memory", "sqlite"])
def flows(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock
) -> Iterator[tuple[IncidentFlow, IncidentFlow]]:
    """The flow under test, and another writing to the same incidents (another process)."""
    if request.param == "memory":
        store = MemoryStore()
        yield IncidentFlow(store, clock=clock), IncidentFlow(store, clock=clock)
        return
    path = tmp_path / "incidents.db"
    with (
        IncidentFlow(SQLiteStore(path), clock=clock) as flow,
        IncidentFlow(SQLiteStore(path), clock=clock) as other,
    ):
        yield flow, other


def commit_between(
    monkeypatch: pytest.MonkeyPatch,
    store: Store,
    read: str,
    when: str,
    commit: Callable[[], object],
) -> list[str]:
    """Make ``store.<read>`` run ``commit`` once, ``when`` ("before" or "after") it reads.

    Returns a list that records the commit when it happens.
    """
    original = getattr(store, read)
    done: list[str] = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        if done:
            return original(*args, **kwargs)
        done.append(f"{when} {read}")
        if when == "before":
            commit()
            return original(*args, **kwargs)
        found = original(*args, **kwargs)
        commit()
        return found

    monkeypatch.setattr(store, read, racing)
    return done


class TestConcurrentCommit:
    """A command committed while verify reads is not a mismatch."""

    @pytest.mark.parametrize(
        ("read", "when"),
        [("history", "after"), ("history", "before"), ("load", "after"), ("load", "before")],
    )
    def test_healthy_incident_verifies(
        self,
        flows: tuple[IncidentFlow, IncidentFlow],
        monkeypatch: pytest.MonkeyPatch,
        read: str,
        when: str,
    ) -> None:
        """A note landing before or after either read still verifies True."""
        flow, other = flows
        inc = flow.declare(TITLE, severity="P2", commander="alice", actor="alice")
        flow.start_triage(inc.id, actor="alice")
        before = len(flow.history(inc.id))

        def note() -> None:
            other.add_note(inc.id, "paged the DBA", actor="bob")

        raced = commit_between(monkeypatch, flow.store, read, when, note)
        assert flow.verify(inc.id)
        assert raced == [f"{when} {read}"]
        monkeypatch.undo()
        assert len(flow.history(inc.id)) == before + 1
        assert flow.verify(inc.id)


class TestMismatch:
    """A snapshot the history does not give is reported."""

    def test_tampered_snapshot(self, tmp_path: Path, clock: FrozenClock) -> None:
        """A snapshot edited behind the library's back verifies False; its neighbour True."""
        path = tmp_path / "incidents.db"
        with IncidentFlow(SQLiteStore(path), clock=clock) as flow:
            tampered = flow.declare(TITLE, severity="P1", commander="alice", actor="a").id
            intact = flow.declare("Search is slow", severity="P3", commander="bob", actor="b").id
        db = sqlite3.connect(path)
        with db:
            changed = db.execute(
                "UPDATE snapshots SET body = replace(body, ?, ?) WHERE incident_id = ?",
                (TITLE, "Tampered title", tampered),
            ).rowcount
        db.close()
        assert changed == 1

        with IncidentFlow(SQLiteStore(path), clock=clock) as flow:
            assert flow.get(tampered).title == "Tampered title"
            assert not flow.verify(tampered)
            assert flow.verify(intact)

    def test_history_shorter_than_the_snapshot(
        self, flow: IncidentFlow, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A snapshot at a version the history does not reach is a mismatch, not an error."""
        inc = flow.declare(TITLE, severity="P2", commander="alice", actor="alice")
        flow.start_triage(inc.id, actor="alice")
        history = flow.store.history
        monkeypatch.setattr(flow.store, "history", lambda incident_id: history(incident_id)[:-1])
        assert not flow.verify(inc.id)
