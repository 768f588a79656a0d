"""``init``, ``config show``, the actor, the files, and reading without secrets."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from cli_terminal import TITLE, Library, Terminal, declared, ok, one_line_error, sqlite_url

from incidentflow import default_config_toml, load_config
from incidentflow.cli import EXIT_USAGE

# -- configuration --------------------------------------------------------------------------


class TestInitAndConfig:
    """``init``, ``config show`` and where the configuration is found."""

    def test_init_writes_the_default_file(self, term: Terminal, tmp_path: Path) -> None:
        """``init`` writes the commented default incidentflow.toml, once."""
        result = ok(term("init", bare=True))
        assert "wrote incidentflow.toml" in result.out
        path = tmp_path / "incidentflow.toml"
        assert path.read_text(encoding="utf-8") == default_config_toml()

        path.write_text("# mine\n", encoding="utf-8")
        error = one_line_error(term("init", bare=True), EXIT_USAGE)
        assert "--force" in error
        assert path.read_text(encoding="utf-8") == "# mine\n"

        ok(term("init", "--force", bare=True))
        assert path.read_text(encoding="utf-8") == default_config_toml()

    def test_init_path(self, term: Terminal, tmp_path: Path) -> None:
        """``init --path`` writes the file elsewhere, and that file loads."""
        (tmp_path / "ops").mkdir()
        ok(term("init", "--path", "ops/team.toml", bare=True))
        assert load_config(tmp_path / "ops" / "team.toml").source == tmp_path / "ops" / "team.toml"

    def test_init_makes_missing_folders(self, term: Terminal, tmp_path: Path) -> None:
        """``init --path ops/incidentflow.toml`` (an example of its --help) makes ``ops/``."""
        ok(term("init", "--path", "ops/incidentflow.toml", "--force", bare=True))
        written = tmp_path / "ops" / "incidentflow.toml"
        assert written.read_text(encoding="utf-8") == default_config_toml()

    def test_config_show_masks_every_url(self, term: Terminal, tmp_path: Path) -> None:
        """A credential in any URL setting (incident_url too) is masked; the template stays."""
        (tmp_path / "incidentflow.toml").write_text(
            "[notifiers.pager]\n"
            'type = "webhook"\n'
            'url = "https://user:Pw-Hook-1@pager.example.com/hooks/incidents?token=Tok-Hook-2"\n'
            'incident_url = "https://ops:Pw-Link-3@ops.example.com/i/{id}?password=Pw-Q-4&view=full"\n'
            "[notifiers.chat]\n"
            'type = "slack"\n'
            'webhook_url_env = "SLACK_WEBHOOK_URL"\n'
            'incident_url = "https://Tok-User-5@ops.example.com/i/{slug}?access_token=Tok-Q-6"\n',
            encoding="utf-8",
        )
        text = ok(term("config", "show", bare=True)).out
        data = ok(term("--json", "config", "show", bare=True)).json()
        for shown in (text, json.dumps(data)):
            for secret in (
                "Pw-Hook-1",
                "Tok-Hook-2",
                "Pw-Link-3",
                "Pw-Q-4",
                "Tok-User-5",
                "Tok-Q-6",
            ):
                assert secret not in shown
        notifiers = data["config"]["notifiers"]
        assert notifiers["pager"]["incident_url"] == (
            "https://***@ops.example.com/i/{id}?password=***&view=full"
        )
        assert notifiers["chat"]["incident_url"] == (
            "https://***@ops.example.com/i/{slug}?access_token=***"
        )

    def test_config_show_masks_secrets(
        self, term: Terminal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``config show`` names the file and never prints a secret."""
        monkeypatch.setenv("PAGER_SIGNING_SECRET", "s3cret-signing-value")
        path = tmp_path / "incidentflow.toml"
        path.write_text(
            "actor = 'alice'\n"
            "[notifiers.pager]\n"
            "type = 'webhook'\n"
            "url = 'https://hooks.example.com/services/T0001/B0002/XoXoTokenInThePath'\n"
            "secret_env = 'PAGER_SIGNING_SECRET'\n",
            encoding="utf-8",
        )
        text = ok(term("config", "show", bare=True)).out
        assert text.startswith(f"# configuration file: {path}")
        assert "PAGER_SIGNING_SECRET" in text
        assert 'actor = "alice"' in text
        data = ok(term("--json", "config", "show", bare=True)).json()
        assert data["source"] == str(path)
        assert data["config"]["notifiers"]["pager"]["secret_env"] == "PAGER_SIGNING_SECRET"
        for shown in (text, json.dumps(data)):
            assert "s3cret-signing-value" not in shown
            assert "XoXoTokenInThePath" not in shown

    def test_config_show_without_a_file(self, term: Terminal) -> None:
        """Without a file, ``config show`` says the defaults are in effect."""
        text = ok(term("config", "show", bare=True)).out
        assert text.startswith("# configuration file: none found; the defaults apply")
        assert (
            "# store in effect: sqlite:///.agent/incidents/incidentflow.db (from the default)"
            in text
        )
        assert ok(term("--json", "config", "show", bare=True)).json()["source"] is None

    def test_config_option(self, term: Terminal, tmp_path: Path) -> None:
        """``--config PATH`` is read: its store and actor are used."""
        team = tmp_path / "team"
        team.mkdir()
        (team / "team.toml").write_text(
            "store = 'sqlite:///team.db'\nactor = 'team-actor'\n", encoding="utf-8"
        )
        incident_id = ok(
            term(
                "--config",
                "team/team.toml",
                "declare",
                TITLE,
                "-s",
                "P2",
                "-c",
                "a",
                "-q",
                bare=True,
            )
        ).out.strip()
        stored = Library(sqlite_url(team / "team.db"))
        assert stored.ids() == [incident_id]
        assert stored.history(incident_id)[0].actor == "team-actor"

    def test_config_environment_variable(
        self, term: Terminal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """INCIDENTFLOW_CONFIG names the file to read."""
        (tmp_path / "elsewhere.toml").write_text(
            "store = 'sqlite:///from-env.db'\nactor = 'env-config-actor'\n", encoding="utf-8"
        )
        monkeypatch.setenv("INCIDENTFLOW_CONFIG", str(tmp_path / "elsewhere.toml"))
        incident_id = ok(term("declare", TITLE, "-s", "P2", "-c", "a", "-q", bare=True)).out.strip()
        stored = Library(sqlite_url(tmp_path / "from-env.db"))
        assert stored.history(incident_id)[0].actor == "env-config-actor"
        text = ok(term("config", "show", bare=True)).out
        assert text.startswith(f"# configuration file: {tmp_path / 'elsewhere.toml'}")

    def test_store_environment_variable(
        self, term: Terminal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """INCIDENTFLOW_URL chooses the store when ``--store`` is not given."""
        monkeypatch.setenv("INCIDENTFLOW_URL", sqlite_url(tmp_path / "from-url.db"))
        result = ok(term("declare", TITLE, "-s", "P2", "-c", "a", "-q", bare=True))
        assert Library(sqlite_url(tmp_path / "from-url.db")).ids() == [result.out.strip()]

    def test_pyproject_found_from_a_subfolder(
        self, term: Terminal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``[tool.incidentflow]`` in pyproject.toml is found from a folder below it."""
        project = tmp_path / "project"
        deep = project / "src" / "pkg"
        deep.mkdir(parents=True)
        (project / "pyproject.toml").write_text(
            "[project]\nname = 'shop'\n\n[tool.incidentflow]\nactor = 'py-actor'\n",
            encoding="utf-8",
        )
        monkeypatch.chdir(deep)
        text = ok(term("config", "show", bare=True)).out
        assert text.startswith(f"# configuration file: {project / 'pyproject.toml'}")
        incident_id = ok(term("declare", TITLE, "-s", "P2", "-c", "a", "-q", bare=True)).out.strip()
        stored = Library(sqlite_url(project / ".agent" / "incidents" / "incidentflow.db"))
        assert stored.history(incident_id)[0].actor == "py-actor"


class TestActor:
    """Who runs a command: ``--actor``, then INCIDENTFLOW_ACTOR, then the config, then the login."""

    def test_precedence(
        self, term: Terminal, library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each source is used only when the ones before it are silent."""
        incident_id = declared(term)

        def last_actor(*options: str) -> str:
            ok(term(*options, "note", incident_id, "who am I"))
            return library.history(incident_id)[-1].actor

        assert last_actor() == getpass.getuser()
        (tmp_path / "incidentflow.toml").write_text("actor = 'from-config'\n", encoding="utf-8")
        assert last_actor() == "from-config"
        monkeypatch.setenv("INCIDENTFLOW_ACTOR", "from-env")
        assert last_actor() == "from-env"
        assert last_actor("--actor", "from-flag") == "from-flag"

    def test_actor_is_validated(self, term: Terminal, library: Library) -> None:
        """An actor the library refuses exits 2 and records nothing."""
        incident_id = declared(term)
        result = term("--actor", "bad\nname", "note", incident_id, "x")
        one_line_error(result, EXIT_USAGE)
        assert library.get(incident_id).version == 1


class TestFiles:
    """The incident's Markdown file, and ``--no-files``."""

    def test_files_are_written_by_default(self, term: Terminal, tmp_path: Path) -> None:
        """Without ``--no-files`` the incident's file appears under .agent/incidents/."""
        incident_id = ok(term("declare", TITLE, "-s", "P1", "-c", "a", "-q", bare=True)).out
        path = tmp_path / ".agent" / "incidents" / f"{incident_id.strip()}.md"
        assert path.is_file()
        assert TITLE in path.read_text(encoding="utf-8")

    def test_no_files(self, term: Terminal, tmp_path: Path) -> None:
        """``--no-files`` writes no Markdown, on declare nor on later commands."""
        incident_id = ok(
            term("--no-files", "declare", TITLE, "-s", "P1", "-c", "a", "-q", bare=True)
        ).out.strip()
        ok(term("--no-files", "note", incident_id, "quiet", bare=True))
        assert (tmp_path / ".agent" / "incidents" / "incidentflow.db").is_file()
        assert list(tmp_path.rglob("*.md")) == []


class TestReadingNeedsNoSecrets:
    """Commands that only read build no notifier, so they need none of its secrets."""

    def test_list_without_the_webhook_secret(self, term: Terminal, tmp_path: Path) -> None:
        """With a webhook whose secret variable is unset, reading and writing work; it says why
        the webhook is not used, and its notification waits as a dead letter."""
        (tmp_path / "incidentflow.toml").write_text(
            '[notifiers.pager]\ntype = "webhook"\nurl = "https://hooks.example.com/x"\n'
            'secret_env = "PAGER_SIGNING_SECRET"\n',
            encoding="utf-8",
        )
        for command in (("list",), ("metrics",), ("export",), ("verify",)):
            ok(term(*command))
        declared = term("declare", TITLE, "-s", "P1", "-c", "a")
        assert declared.code == 0, declared
        assert "notifier pager is unavailable" in declared.err
        assert "PAGER_SIGNING_SECRET is not set" in declared.err


class TestCheapNames:
    """The names the CLI keeps so that building its commands imports none of the library."""

    def test_severities_and_states_match_the_model(self) -> None:
        """The choices offered are exactly the library's severities and states."""
        from incidentflow import Severity, State
        from incidentflow.cli._params import SEVERITIES, STATES

        assert tuple(s.value for s in Severity) == SEVERITIES
        assert tuple(s.value for s in State) == STATES

    def test_bounds_match_the_validation(self) -> None:
        """The numeric bounds are the library's own."""
        from incidentflow import _validate
        from incidentflow.cli._params import INT_MAX, LIMIT_MAX

        assert (INT_MAX, LIMIT_MAX) == (_validate.INT_MAX, _validate.LIMIT_MAX)

    def test_link_kinds_match_the_commands(self) -> None:
        """Every kind of link the library knows is offered, and no other."""
        from incidentflow.cli._links import LINK_KIND_NAMES
        from incidentflow.commands import LINK_KINDS

        assert set(LINK_KIND_NAMES) == set(LINK_KINDS)
