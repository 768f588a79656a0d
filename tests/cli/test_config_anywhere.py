"""``--config`` after the subcommand acts as before it: the store, zone and current incident."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_terminal import Terminal, ok

from incidentflow import IncidentFlow
from incidentflow.cli import EXIT_OK, _clock

TITLE = "Payments down"


@pytest.fixture(autouse=True)
def _no_configured_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever zone a configuration of another test set, none is set here."""
    monkeypatch.setattr(_clock, "_configured", None)


def other_config(folder: Path, *, extra: str = "") -> Path:
    """A configuration in ``folder`` whose store is a JSONL folder there."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "other.toml"
    path.write_text(f'store = "file://jsonl-store"\n{extra}', encoding="utf-8")
    return path


def declare(term: Terminal, *before: str) -> str:
    """Declare the incident on the store the words ``before`` the subcommand choose."""
    return ok(term(*before, "declare", TITLE, "-s", "P2", "-c", "alice", "-q", bare=True)).out


def notes(config: Path | None, incident_id: str) -> list[str]:
    """The notes of the incident on the store ``config`` names (the default store for ``None``)."""
    url = (
        f"file://{config.parent / 'jsonl-store'}"
        if config
        else "sqlite:///" + str(Path(".agent/incidents/incidentflow.db").resolve())
    )
    flow = IncidentFlow.open(url, incidents_dir=None, knowledge_dir=None)
    try:
        return [note.text for note in flow.get(incident_id).notes]
    finally:
        flow.close()


class TestConfigAfterTheSubcommand:
    """``note ID TEXT --config FILE`` writes to the store FILE names, as ``--config FILE note``."""

    def test_a_note_goes_to_the_named_store(self, term: Terminal, tmp_path: Path) -> None:
        """The same id on both stores: the note lands on the one ``--config`` names."""
        config = other_config(tmp_path)
        default_id = declare(term).strip()
        other_id = declare(term, "--config", str(config)).strip()
        assert default_id == other_id
        ok(term("note", "payments", "for the other store", "--config", str(config), bare=True))
        assert notes(config, other_id) == ["for the other store"]
        assert notes(None, default_id) == []

    def test_an_incident_only_on_the_named_store(self, term: Terminal, tmp_path: Path) -> None:
        """``show ID --config FILE`` finds an incident that only FILE's store holds."""
        config = other_config(tmp_path / "elsewhere")
        incident_id = declare(term, "--config", str(config)).strip()
        shown = ok(term("show", "payments", "--json", "--config", str(config), bare=True)).json()
        assert shown["incident"]["id"] == incident_id

    def test_in_a_group_and_with_equals(self, term: Terminal, tmp_path: Path) -> None:
        """``action add ID ... --config=FILE``: a subcommand of a group, the value after ``=``."""
        config = other_config(tmp_path)
        incident_id = declare(term, "--config", str(config)).strip()
        argv = ["action", "add", "payments", "Alert on 503s", "--owner", "bob", "--due", "+3d"]
        ok(term(*argv, f"--config={config}", bare=True))
        shown = ok(term("--config", str(config), "--json", "show", incident_id, bare=True)).json()
        assert [item["description"] for item in shown["incident"]["action_items"]] == [
            "Alert on 503s"
        ]

    def test_the_last_config_wins(self, term: Terminal, tmp_path: Path) -> None:
        """``--config A note ... --config B``: B, as click takes the last value of an option."""
        first, second = other_config(tmp_path / "a"), other_config(tmp_path / "b")
        incident_id = declare(term, "--config", str(second)).strip()
        argv = ["--config", str(first), "note", "payments", "to b", "--config", str(second)]
        ok(term(*argv, bare=True))
        assert notes(second, incident_id) == ["to b"]

    def test_a_broken_default_configuration_is_not_read(
        self, term: Terminal, tmp_path: Path
    ) -> None:
        """A damaged incidentflow.toml here does not matter when ``--config`` names another."""
        config = other_config(tmp_path / "elsewhere")
        incident_id = declare(term, "--config", str(config)).strip()
        Path("incidentflow.toml").write_text("this is = = not toml\n", encoding="utf-8")
        ok(term("note", "payments", "still works", "--config", str(config), bare=True))
        assert notes(config, incident_id) == ["still works"]

    def test_the_zone_of_the_named_configuration(
        self, term: Terminal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``timeline ID --config FILE`` shows times in FILE's ``display_timezone``."""
        config = other_config(tmp_path, extra='display_timezone = "Asia/Tokyo"\n')
        declare(term, "--config", str(config))
        monkeypatch.delenv("TZ")
        outcome = term("timeline", "payments", "--config", str(config), bare=True)
        assert outcome.code == EXIT_OK, outcome.err
        assert "TIME (JST)" in outcome.out.splitlines()[0]


class TestCurrentIncidentOfTheNamedConfiguration:
    """A left-out ID is the current incident of the folder the named configuration is in."""

    def test_use_then_leave_the_id_out(self, term: Terminal, tmp_path: Path) -> None:
        """``use`` and ``note TEXT``, both with ``--config`` last: the note is on that incident."""
        config = other_config(tmp_path / "elsewhere")
        incident_id = declare(term, "--config", str(config)).strip()
        ok(term("use", "payments", "--config", str(config), bare=True))
        assert (config.parent / ".agent" / "current-incident").read_text().strip() == incident_id
        ok(term("note", "on the current one", "--config", str(config), bare=True))
        assert notes(config, incident_id) == ["on the current one"]
