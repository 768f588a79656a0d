"""Configuration files: discovery, relative paths, errors that name file and key, secrets."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incidentflow import (
    BlameCheck,
    ConfigError,
    IncidentFlow,
    IncidentFlowError,
    Policy,
    Severity,
)
from incidentflow.alerts import AlertRules
from incidentflow.config import (
    Config,
    EmailNotifierSpec,
    LogNotifierSpec,
    SlackNotifierSpec,
    WebhookNotifierSpec,
    default_config_toml,
    load_config,
)
from incidentflow.delivery import RetryPolicy, Route
from incidentflow.stores import MemoryStore, SQLiteStore
from incidentflow.testing import FrozenClock

FULL = """
store = "sqlite:///data/incidents.db"
incidents_dir = "records/incidents"
knowledge_dir = "records/gotchas"
actor = "alice"

[policy]
watch_window_minutes = 30
blame_check = "reject"
postmortem_severities = ["P1", "P2", "P3"]

[policy.response_minutes]
P1 = 10

[delivery]
inline = false
max_attempts = 3
first_delay_seconds = 2
max_delay_seconds = 60
lease_seconds = 30
max_in_flight = 4
poll_seconds = 0.5

[notifiers.pager]
type = "webhook"
url = "https://pager.example.com/hooks/incidents?token=tok3n-in-url"
secret_env = "PAGER_SECRET"
headers_env = { Authorization = "PAGER_TOKEN" }

[notifiers.chat]
type = "slack"
webhook_url_env = "SLACK_WEBHOOK_URL"

[notifiers.mail]
type = "email"
host = "smtp.example.com"
sender = "incidents@example.com"
recipients = ["oncall@example.com"]
username = "incidents"
password_env = "SMTP_PASSWORD"

[notifiers.log]
type = "log"
level = "warning"

[[routes]]
notifier = "pager"
severities = ["P1"]
events = ["declared"]

[[routes]]
notifier = "chat"
"""

SECRETS = {
    "PAGER_SECRET": "pager-signing-s3cret",
    "PAGER_TOKEN": "Bearer pager-t0ken",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/slack-t0ken",
    "SMTP_PASSWORD": "smtp-passw0rd",
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No configuration or store URL leaks in from the environment running the tests."""
    monkeypatch.delenv("INCIDENTFLOW_CONFIG", raising=False)
    monkeypatch.delenv("INCIDENTFLOW_URL", raising=False)
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def open_flow(config: Config, **overrides: Any) -> IncidentFlow:
    """The flow ``config`` describes, as ``IncidentFlow.from_config`` builds it."""
    return config.open_with(IncidentFlow, **overrides)


def config_error(path: Path, text: str) -> ConfigError:
    write(path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


class TestDiscovery:
    def test_no_file_gives_the_defaults(self, tmp_path: Path) -> None:
        """Without any file up to the root, the configuration is Config() with no source."""
        assert load_config(start=tmp_path) == Config()

    def test_incidentflow_toml_in_the_start_folder(self, tmp_path: Path) -> None:
        """incidentflow.toml in the start folder is read."""
        path = write(tmp_path / "incidentflow.toml", 'actor = "alice"\n')
        config = load_config(start=tmp_path)
        assert (config.actor, config.source) == ("alice", path)

    def test_found_from_a_subfolder(self, tmp_path: Path) -> None:
        """The nearest file up the tree is found from a subfolder."""
        path = write(tmp_path / "incidentflow.toml", 'actor = "alice"\n')
        deep = tmp_path / "src" / "pkg"
        deep.mkdir(parents=True)
        assert load_config(start=deep).source == path

    def test_current_folder_by_default(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without start, the search begins in the current folder."""
        path = write(tmp_path / "incidentflow.toml", 'actor = "alice"\n')
        (tmp_path / "sub").mkdir()
        monkeypatch.chdir(tmp_path / "sub")
        assert load_config().source == path

    def test_incidentflow_toml_wins_over_pyproject_in_the_same_folder(self, tmp_path: Path) -> None:
        """In one folder, incidentflow.toml is read rather than pyproject.toml."""
        write(tmp_path / "pyproject.toml", '[tool.incidentflow]\nactor = "bob"\n')
        write(tmp_path / "incidentflow.toml", 'actor = "alice"\n')
        assert load_config(start=tmp_path).actor == "alice"

    def test_nearer_pyproject_wins_over_a_parent_incidentflow_toml(self, tmp_path: Path) -> None:
        """A pyproject.toml with [tool.incidentflow] nearer the start wins over a parent's file."""
        write(tmp_path / "incidentflow.toml", 'actor = "alice"\n')
        path = write(tmp_path / "app" / "pyproject.toml", '[tool.incidentflow]\nactor = "bob"\n')
        config = load_config(start=tmp_path / "app")
        assert (config.actor, config.source) == ("bob", path)

    def test_pyproject_without_the_table_is_passed_over(self, tmp_path: Path) -> None:
        """A pyproject.toml without [tool.incidentflow] is ignored and the search goes on."""
        write(tmp_path / "incidentflow.toml", 'actor = "alice"\n')
        write(tmp_path / "app" / "pyproject.toml", '[project]\nname = "app"\n')
        write(tmp_path / "lib" / "pyproject.toml", '[tool.ruff]\nsrc = ["incidentflow"]\n')
        assert load_config(start=tmp_path / "app").actor == "alice"
        assert load_config(start=tmp_path / "lib").actor == "alice"

    def test_environment_variable_names_the_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """INCIDENTFLOW_CONFIG wins over the search."""
        write(tmp_path / "incidentflow.toml", 'actor = "alice"\n')
        other = write(tmp_path / "elsewhere" / "team.toml", 'actor = "carol"\n')
        monkeypatch.setenv("INCIDENTFLOW_CONFIG", str(other))
        assert load_config(start=tmp_path).actor == "carol"

    def test_explicit_path_wins_over_the_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A path given to load_config wins over INCIDENTFLOW_CONFIG."""
        monkeypatch.setenv("INCIDENTFLOW_CONFIG", str(write(tmp_path / "a.toml", 'actor = "a"\n')))
        assert load_config(write(tmp_path / "b.toml", 'actor = "b"\n')).actor == "b"

    def test_explicit_pyproject_reads_its_table(self, tmp_path: Path) -> None:
        """An explicit pyproject.toml is read for its [tool.incidentflow] table."""
        path = write(
            tmp_path / "pyproject.toml",
            '[project]\nname = "x"\n\n[tool.incidentflow.policy]\nblame_check = "off"\n',
        )
        assert load_config(path).policy.blame_check is BlameCheck.OFF

    def test_explicit_pyproject_without_the_table_is_an_error(self, tmp_path: Path) -> None:
        """An explicit pyproject.toml without [tool.incidentflow] is refused, naming the table."""
        error = config_error(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
        assert str(tmp_path / "pyproject.toml") in str(error)
        assert "[tool.incidentflow]" in str(error)

    def test_missing_explicit_file(self, tmp_path: Path) -> None:
        """A path that does not exist is a ConfigError naming it."""
        with pytest.raises(ConfigError) as info:
            load_config(tmp_path / "nope.toml")
        assert info.value.key == str(tmp_path / "nope.toml")

    def test_environment_naming_a_missing_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """INCIDENTFLOW_CONFIG naming a missing file is a ConfigError naming the variable."""
        monkeypatch.setenv("INCIDENTFLOW_CONFIG", str(tmp_path / "gone.toml"))
        with pytest.raises(ConfigError) as info:
            load_config()
        assert info.value.key == "INCIDENTFLOW_CONFIG"
        assert "gone.toml" in str(info.value)

    def test_start_may_be_a_file(self, tmp_path: Path) -> None:
        """A file as start searches from its folder."""
        path = write(tmp_path / "incidentflow.toml", 'actor = "alice"\n')
        assert load_config(start=write(tmp_path / "main.py", "")).source == path


class TestRelativePaths:
    def test_paths_are_relative_to_the_file(self, tmp_path: Path) -> None:
        """incidents_dir, knowledge_dir and a sqlite:/// store are resolved against the file."""
        config = load_config(write(tmp_path / "team" / "incidentflow.toml", FULL))
        folder = tmp_path / "team"
        assert config.incidents_dir == folder / "records" / "incidents"
        assert config.knowledge_dir == folder / "records" / "gotchas"
        assert config.store == f"sqlite:///{folder.as_posix()}/data/incidents.db"

    def test_a_jsonl_folder_is_relative_to_the_file(self, tmp_path: Path) -> None:
        """A file://relative store becomes the folder next to the configuration."""
        config = load_config(write(tmp_path / "incidentflow.toml", 'store = "file://history"\n'))
        assert config.store == f"file://{tmp_path.as_posix()}/history"

    @pytest.mark.parametrize(
        "url",
        [
            "sqlite:////var/lib/incidents.db",
            "file:///var/lib/incidents",
            "postgresql://ops@db.example.com/incidents",
            "memory://",
            "sqlite:///incidents.db?synchronous=NORMAL",
        ],
    )
    def test_other_urls_are_kept(self, tmp_path: Path, url: str) -> None:
        """Absolute paths and server URLs are kept; a query survives the anchoring."""
        config = load_config(write(tmp_path / "incidentflow.toml", f'store = "{url}"\n'))
        if url.endswith("NORMAL"):
            assert (
                config.store == f"sqlite:///{tmp_path.as_posix()}/incidents.db?synchronous=NORMAL"
            )
        else:
            assert config.store == url

    def test_open_flow_works_from_a_subfolder(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """From a subfolder, the store and the files land next to the configuration file."""
        write(tmp_path / "incidentflow.toml", 'store = "sqlite:///incidents.db"\n')
        (tmp_path / "src").mkdir()
        monkeypatch.chdir(tmp_path / "src")
        with IncidentFlow.from_config() as flow:
            flow.declare("Checkout down", severity="P3", commander="alice", actor="alice")
            assert flow.incidents_dir == tmp_path / ".agent" / "incidents"
            assert flow.knowledge_dir == tmp_path / ".agent" / "knowledge" / "gotchas"
        assert (tmp_path / "incidents.db").exists()
        assert list((tmp_path / ".agent" / "incidents").glob("INC-*.md"))
        assert list((tmp_path / "src").iterdir()) == []

    def test_default_store_is_next_to_the_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without store, the embedded SQLite default is in the configuration file's folder."""
        write(tmp_path / "incidentflow.toml", 'actor = "alice"\n')
        (tmp_path / "sub").mkdir()
        monkeypatch.chdir(tmp_path / "sub")
        config = load_config()
        assert (
            config.store_url()
            == f"sqlite:///{tmp_path.as_posix()}/.agent/incidents/incidentflow.db"
        )
        with open_flow(config) as flow:
            assert isinstance(flow.store, SQLiteStore)
        assert (tmp_path / ".agent" / "incidents" / "incidentflow.db").exists()


MAIL = """
[notifiers.mail]
type = 'email'
host = 'h'
sender = 'a@b.example'
recipients = ['c@d.example']
"""
LOG = "[notifiers.log]\ntype = 'log'\n"

ERRORS = [
    # (file text, the key after "<file>: ", fragments the message holds)
    ("colour = 1\n", "colour", ["unknown key", "store", "policy", "notifiers", "routes"]),
    ("[policy]\nwatch_window = 15\n", "policy.watch_window", ["did you mean watch_window_minutes"]),
    ("[delivery]\nretries = 3\n", "delivery.retries", ["max_attempts", "first_delay_seconds"]),
    ('blame_check = "off"\n', "blame_check", ["unknown key", "belongs in [policy]"]),
    (
        "[notifiers.log]\ntype = 'log'\nseverities = ['P1']\n",
        "notifiers.log.severities",
        ["[[routes]]"],
    ),
    ("actor = 5\n", "actor", ["expected a name", "got 5"]),
    ("store = 5\n", "store", ["store URL", "got 5"]),
    ('store = "nope"\n', "store", ["sqlite:///PATH", '"nope"']),
    ('[policy]\nwatch_window_minutes = "15"\n', "policy.watch_window_minutes", ['got "15"']),
    ("[policy]\nwatch_window_minutes = -5\n", "policy.watch_window_minutes", ["0 or more", "-5"]),
    (
        "[policy]\npostmortem_due_hours = true\n",
        "policy.postmortem_due_hours",
        ["hours", "got true"],
    ),
    ("[policy]\nconfirmer_must_differ = 1\n", "policy.confirmer_must_differ", ["true or false"]),
    ('[policy]\nblame_check = "loud"\n', "policy.blame_check", ["off, warn, reject", '"loud"']),
    ("[policy]\nresponse_minutes = 5\n", "policy.response_minutes", ["severity = minutes"]),
    ("[policy]\nresponse_minutes = { P9 = 5 }\n", "policy.response_minutes.P9", ["P1, P2, P3, P4"]),
    ("[policy]\nresponse_minutes = { P1 = 0 }\n", "policy.response_minutes.P1", ["greater than 0"]),
    ('[policy]\npostmortem_severities = ["P5"]\n', "policy.postmortem_severities[1]", ["P1, P2"]),
    ('[policy]\npostmortem_severities = "P1"\n', "policy.postmortem_severities", ["a list of"]),
    ("[policy]\nrequired_triage_answers = [1]\n", "policy.required_triage_answers[1]", ["text"]),
    ("policy = 5\n", "policy", ["expected a table", "got 5"]),
    ("[delivery]\nmax_attempts = 0\n", "delivery.max_attempts", ["at least 1"]),
    ("[delivery]\nmax_attempts = 2.5\n", "delivery.max_attempts", ["whole number", "2.5"]),
    ("[delivery]\njitter = 1\n", "delivery.jitter", ["fraction"]),
    (
        "[delivery]\nfirst_delay_seconds = 60\nmax_delay_seconds = 5\n",
        "delivery.max_delay_seconds",
        ["first_delay_seconds"],
    ),
    ("[delivery]\nlease_seconds = 0\n", "delivery.lease_seconds", ["greater than 0"]),
    (
        "[notifiers.pager]\nurl = 'https://x.example'\n",
        "notifiers.pager.type",
        ["email, log, slack, webhook"],
    ),
    (
        "[notifiers.pager]\ntype = 'pagerduty'\n",
        "notifiers.pager.type",
        ["email, log, slack, webhook", '"pagerduty"'],
    ),
    (
        "[notifiers.pager]\ntype = 'webhook'\nurl = 'ftp://x.example/hook'\n",
        "notifiers.pager.url",
        ["http:// or https://"],
    ),
    (
        "[notifiers.pager]\ntype = 'webhook'\nurl = 'https://x.example'\nsecret = 'x'\n",
        "notifiers.pager.secret",
        ["secret_env", "url_env", "type"],
    ),
    ("[notifiers.pager]\ntype = 'webhook'\n", "notifiers.pager.url", ["url or as url_env"]),
    (
        "[notifiers.pager]\ntype = 'webhook'\nurl = 'https://x.example'\ntimeout = 0\n",
        "notifiers.pager.timeout",
        ["above 0"],
    ),
    (
        "[notifiers.pager]\ntype = 'webhook'\nurl = 'https://x.example'\nincident_url = 'x'\n",
        "notifiers.pager.incident_url",
        ["{id}"],
    ),
    (
        "[notifiers.chat]\ntype = 'slack'\n",
        "notifiers.chat.webhook_url_env",
        ["missing", "environment variable"],
    ),
    (
        "[notifiers.mail]\ntype = 'email'\nhost = 'h'\nsender = 'a@b.example'\n"
        "recipients = 'c@d.example'\n",
        "notifiers.mail.recipients",
        ["a list of email addresses"],
    ),
    (
        "[notifiers.mail]\ntype = 'email'\nhost = 'h'\nsender = 'nobody'\n"
        "recipients = ['c@d.example']\n",
        "notifiers.mail.sender",
        ["email address", '"nobody"'],
    ),
    (
        MAIL + "username = 'u'\n",
        "notifiers.mail.password_env",
        ["together"],
    ),
    (
        MAIL + "port = 70000\n",
        "notifiers.mail.port",
        ["1 to 65535"],
    ),
    (
        MAIL + "security = 'tls'\n",
        "notifiers.mail.security",
        ["starttls, ssl, none"],
    ),
    ("[notifiers.log]\ntype = 'log'\nlevel = 'LOUD'\n", "notifiers.log.level", ["INFO", "WARNING"]),
    ("notifiers = 5\n", "notifiers", ["a table"]),
    ("[notifiers]\npager = 'webhook'\n", "notifiers.pager", ["a table with type"]),
    (
        "[[routes]]\nnotifier = 'sms'\n",
        "routes[1].notifier",
        ["no notifier is named 'sms'", "(none)"],
    ),
    (
        LOG + "[[routes]]\nnotifier = 'log'\n[[routes]]\nnotifier = 'sms'\n",
        "routes[2].notifier",
        ["'sms'", "(log)"],
    ),
    (
        "[notifiers.log]\ntype = 'log'\n[[routes]]\nnotifier = 'log'\nseverities = ['P7']\n",
        "routes[1].severities[1]",
        ["P1, P2, P3, P4"],
    ),
    (
        "[notifiers.log]\ntype = 'log'\n[[routes]]\nnotifier = 'log'\nevents = ['exploded']\n",
        "routes[1].events[1]",
        ["declared", '"exploded"'],
    ),
    ("[[routes]]\nseverities = ['P1']\n", "routes[1].notifier", ["missing", "[[routes]]"]),
    (
        "[[routes]]\nnotifier = 'log'\nchannel = 'x'\n",
        "routes[1].channel",
        ["notifier, severities, events"],
    ),
    ("routes = { notifier = 'log' }\n", "routes", ["[[routes]] tables", "got a table"]),
]


class TestErrors:
    @pytest.mark.parametrize(("text", "key", "fragments"), ERRORS, ids=[e[1] for e in ERRORS])
    def test_error_names_file_key_and_what_is_accepted(
        self, tmp_path: Path, text: str, key: str, fragments: list[str]
    ) -> None:
        """Each wrong setting is one ConfigError: the file and dotted key, then what is accepted."""
        path = tmp_path / "incidentflow.toml"
        error = config_error(path, text)
        assert error.key == f"{path}: {key}"
        assert str(error).startswith(f"{path}: {key}: ")
        for fragment in fragments:
            assert fragment in str(error)

    def test_a_relative_path_is_named_as_given(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file given by a relative path is named in the error as it was given."""
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "ops" / "team.toml", "[policy]\nblame_check = 1\n")
        with pytest.raises(ConfigError) as info:
            load_config("ops/team.toml")
        assert info.value.key == "ops/team.toml: policy.blame_check"

    def test_pyproject_keys_are_named_in_full(self, tmp_path: Path) -> None:
        """In a pyproject.toml the key is named from tool.incidentflow down."""
        path = tmp_path / "pyproject.toml"
        error = config_error(path, '[tool.incidentflow.policy]\nblame_check = "loud"\n')
        assert error.key == f"{path}: tool.incidentflow.policy.blame_check"

    def test_pyproject_table_that_is_not_a_table(self, tmp_path: Path) -> None:
        """[tool] incidentflow = 5 is refused, naming tool.incidentflow."""
        error = config_error(tmp_path / "pyproject.toml", "[tool]\nincidentflow = 5\n")
        assert error.key == f"{tmp_path / 'pyproject.toml'}: tool.incidentflow"

    def test_invalid_toml_names_the_line(self, tmp_path: Path) -> None:
        """A file that is not TOML is a ConfigError naming the file and the line."""
        path = tmp_path / "incidentflow.toml"
        error = config_error(path, 'actor = "alice"\n\nstore = = 1\n')
        assert error.key == str(path)
        assert "line 3" in str(error)

    def test_not_utf8(self, tmp_path: Path) -> None:
        """A file that is not UTF-8 is a ConfigError naming the file."""
        path = tmp_path / "incidentflow.toml"
        path.write_bytes(b'actor = "\xff"\n')
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.key == str(path)
        assert "UTF-8" in str(info.value)

    def test_a_folder_is_not_a_file(self, tmp_path: Path) -> None:
        """Naming a folder is a ConfigError saying a file is wanted."""
        with pytest.raises(ConfigError, match="folder"):
            load_config(tmp_path)

    def test_store_url_with_a_password_is_refused(self, tmp_path: Path) -> None:
        """A password in the file's store URL is refused and never echoed."""
        error = config_error(
            tmp_path / "incidentflow.toml", 'store = "postgresql://ops:hunter22@db/incidents"\n'
        )
        assert error.key.endswith(": store")
        assert "INCIDENTFLOW_URL" in str(error)
        assert "hunter22" not in str(error)

    def test_a_secret_written_as_an_env_name_is_not_echoed(self, tmp_path: Path) -> None:
        """A secret pasted where the variable's name belongs is refused without showing it."""
        error = config_error(
            tmp_path / "incidentflow.toml",
            "[notifiers.pager]\ntype = 'webhook'\nurl = 'https://x.example'\n"
            "secret_env = 'whsec-9f8e7d6c'\n",
        )
        assert error.key.endswith("notifiers.pager.secret_env")
        assert "whsec-9f8e7d6c" not in str(error)
        assert "environment variable" in str(error)

    def test_a_missing_secret_never_blocks_a_command(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An unset *_env variable: the P1 is declared; its page is a dead letter saying why."""
        monkeypatch.delenv("PAGER_SECRET", raising=False)
        path = write(
            tmp_path / "incidentflow.toml",
            "[notifiers.pager]\ntype = 'webhook'\nurl = 'https://x.example/h'\n"
            "secret_env = 'PAGER_SECRET'\n",
        )
        config = load_config(path)  # loading does not need the secret
        with open_flow(config, store="memory://") as flow:
            inc = flow.declare("DB down", severity="P1", commander="al", actor="al")
            assert flow.get(inc.id).version == 1
            [dead] = flow.dead_letters()
        assert dead.id == f"{inc.id}:1:pager"
        assert "notifiers.pager.secret_env" in dead.last_error
        assert "PAGER_SECRET is not set" in dead.last_error

    def test_strict_building_names_the_key(self, tmp_path: Path) -> None:
        """build_notifiers(strict=True) raises ConfigError naming the key and the variable."""
        path = write(
            tmp_path / "incidentflow.toml",
            "[notifiers.pager]\ntype = 'webhook'\nurl = 'https://x.example/h'\n"
            "secret_env = 'PAGER_SECRET'\n",
        )
        with pytest.raises(ConfigError) as info:
            load_config(path).build_notifiers(environ={}, strict=True)
        assert info.value.key == f"{path}: notifiers.pager.secret_env"
        assert "PAGER_SECRET is not set" in str(info.value)

    @pytest.mark.parametrize(
        ("spec", "key", "variable"),
        [
            (
                SlackNotifierSpec(webhook_url_env="SLACK_WEBHOOK_URL"),
                "webhook_url_env",
                "SLACK_WEBHOOK_URL",
            ),
            (WebhookNotifierSpec(url_env="PAGER_URL"), "url_env", "PAGER_URL"),
            (
                WebhookNotifierSpec(
                    url="https://x.example", headers_env={"Authorization": "PAGER_TOKEN"}
                ),
                "headers_env.Authorization",
                "PAGER_TOKEN",
            ),
            (
                EmailNotifierSpec(
                    host="smtp.example.com",
                    sender="a@example.com",
                    recipients=["b@example.com"],
                    username="a",
                    password_env="SMTP_PASSWORD",
                ),
                "password_env",
                "SMTP_PASSWORD",
            ),
        ],
    )
    def test_every_env_key_is_named_when_unset(self, spec: Any, key: str, variable: str) -> None:
        """Each kind of *_env key, unset, is named with its variable."""
        config = Config(notifiers={"n": spec})
        with pytest.raises(ConfigError) as info:
            config.build_notifiers(environ={}, strict=True)
        assert info.value.key == f"notifiers.n.{key}"
        assert variable in str(info.value)

    def test_empty_secret_is_refused(self) -> None:
        """A variable that is set but empty is refused too."""
        config = Config(notifiers={"chat": SlackNotifierSpec(webhook_url_env="SLACK_WEBHOOK_URL")})
        with pytest.raises(ConfigError, match="SLACK_WEBHOOK_URL is empty"):
            config.build_notifiers(environ={"SLACK_WEBHOOK_URL": " "}, strict=True)

    def test_bad_url_from_the_environment_is_keyed_and_masked(self) -> None:
        """A bad URL read from a variable names the *_env key and hides the URL's token."""
        config = Config(notifiers={"chat": SlackNotifierSpec(webhook_url_env="SLACK_WEBHOOK_URL")})
        with pytest.raises(ConfigError) as info:
            config.build_notifiers(
                environ={"SLACK_WEBHOOK_URL": "ftp://hooks.example/T0/s3cr3t-token"}, strict=True
            )
        assert info.value.key == "notifiers.chat.webhook_url_env"
        assert "s3cr3t-token" not in str(info.value)

    def test_bad_store_in_the_environment_names_the_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A bad INCIDENTFLOW_URL is reported under that name, not the file's store."""
        monkeypatch.setenv("INCIDENTFLOW_URL", "nonsense")
        with pytest.raises(ConfigError) as info:
            open_flow(Config(store="memory://"))
        assert info.value.key == "INCIDENTFLOW_URL"

    def test_bad_store_in_the_file_names_the_key(self, tmp_path: Path) -> None:
        """A store the file names that cannot be opened is reported under <file>: store."""
        path = write(tmp_path / "incidentflow.toml", 'store = "cassandra://db/x"\n')
        with pytest.raises(ConfigError) as info:
            open_flow(load_config(path))
        assert info.value.key == f"{path}: store"
        assert "sqlite://" in str(info.value)

    @pytest.mark.parametrize(
        ("kwargs", "key"),
        [
            ({"policy": "strict"}, "policy"),
            ({"retry": 3}, "retry"),
            ({"deliver_inline": "yes"}, "deliver_inline"),
            ({"max_in_flight": 0}, "delivery.max_in_flight"),
            ({"poll_interval": 0}, "delivery.poll_seconds"),
            ({"delivery_lease": timedelta(0)}, "delivery.lease_seconds"),
            ({"notifiers": {"x": object()}}, "notifiers.x"),
            ({"routes": [Route("pager")]}, "routes[1].notifier"),
        ],
    )
    def test_config_constructor_checks(self, kwargs: dict[str, Any], key: str) -> None:
        """Config(...) built in code refuses bad values with a ConfigError naming the key."""
        with pytest.raises(ConfigError) as info:
            Config(**kwargs)
        assert info.value.key == key

    @pytest.mark.parametrize(
        ("build", "key"),
        [
            (lambda: WebhookNotifierSpec(url="https://x.example", url_env="X"), "url"),
            (lambda: WebhookNotifierSpec(url="https://x.example", timeout="5"), "timeout"),  # type: ignore[arg-type]
            (lambda: SlackNotifierSpec(webhook_url_env="not a name"), "webhook_url_env"),
            (
                lambda: EmailNotifierSpec(host="h", sender="a@b.example", recipients="c@d.example"),
                "recipients",
            ),
            (
                lambda: EmailNotifierSpec(host="h", sender="a@b.example", recipients=[]),
                "recipients",
            ),
            (
                lambda: EmailNotifierSpec(
                    host="h",
                    sender="a@b.example",
                    recipients=["c@d.example"],
                    username="u",
                    password_env="P",
                    security="none",
                ),
                "security",
            ),
            (lambda: LogNotifierSpec(level="LOUD"), "level"),
        ],
    )
    def test_spec_constructor_checks(self, build: Any, key: str) -> None:
        """The notifier specs check their values when built in code too."""
        with pytest.raises(ConfigError) as info:
            build()
        assert info.value.key == key


class TestFlowArguments:
    def test_everything_configured_is_built(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Policy, delivery, notifiers (secrets from the environment) and routes reach the flow."""
        for name, value in SECRETS.items():
            monkeypatch.setenv(name, value)
        config = load_config(write(tmp_path / "incidentflow.toml", FULL))
        with open_flow(config) as flow:
            assert isinstance(flow.store, SQLiteStore)
            assert flow.policy.watch_window == timedelta(minutes=30)
            assert flow.policy.response_target(Severity.P1) == timedelta(minutes=10)
            assert flow.policy.response_target(Severity.P2) == timedelta(minutes=30)
            assert flow.retry == RetryPolicy(
                max_attempts=3, first_delay=timedelta(seconds=2), max_delay=timedelta(seconds=60)
            )
            assert flow.deliver_inline is False
            assert flow.delivery_lease == timedelta(seconds=30)
            names = {n.name: type(n).__name__ for n in flow.notifiers}
            assert names == {
                "pager": "WebhookNotifier",
                "chat": "SlackNotifier",
                "mail": "EmailNotifier",
                "log": "LogNotifier",
            }
            assert flow.router.routes == (
                Route("pager", severities={"P1"}, events={"declared"}),
                Route("chat"),
            )
            assert flow.incidents_dir == tmp_path / "records" / "incidents"
        assert (config.max_in_flight, config.poll_interval) == (4, 0.5)

    def test_keyword_overrides_win(self, tmp_path: Path) -> None:
        """Keywords given win over the file: store, clock, folders, notifiers."""
        config = load_config(write(tmp_path / "incidentflow.toml", FULL))
        clock = FrozenClock()
        store = MemoryStore()
        with open_flow(
            config, store=store, clock=clock, incidents_dir=None, knowledge_dir=None, notifiers=()
        ) as flow:
            assert flow.store is store
            assert flow.clock is clock
            assert (flow.incidents_dir, flow.knowledge_dir) == (None, None)
            assert flow.notifiers == []
            assert flow.router.routes is None
        with open_flow(config, store="memory://", notifiers=()) as flow:
            assert isinstance(flow.store, MemoryStore)

    def test_environment_wins_over_the_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """INCIDENTFLOW_URL wins over the file's store; a store= keyword wins over both."""
        path = write(tmp_path / "incidentflow.toml", 'store = "sqlite:///incidents.db"\n')
        monkeypatch.setenv("INCIDENTFLOW_URL", "memory://")
        config = load_config(path)
        assert config.store_url() == "memory://"
        with open_flow(config, incidents_dir=None, knowledge_dir=None) as flow:
            assert isinstance(flow.store, MemoryStore)
        with open_flow(
            config, store=f"sqlite:///{tmp_path / 'cli.db'}", incidents_dir=None
        ) as flow:
            assert isinstance(flow.store, SQLiteStore)
        assert not (tmp_path / "incidents.db").exists()

    def test_from_config(self, tmp_path: Path) -> None:
        """IncidentFlow.from_config(path, **overrides) builds the flow the file describes."""
        path = write(tmp_path / "incidentflow.toml", '[policy]\nblame_check = "reject"\n')
        with IncidentFlow.from_config(path, store="memory://", incidents_dir=None) as flow:
            assert flow.policy.blame_check is BlameCheck.REJECT

    def test_a_notifier_that_cannot_be_built_stands_in_as_unavailable(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A missing secret opens the store and the flow all the same, reporting the notifier."""
        from incidentflow.notifiers import UnavailableNotifier

        monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
        path = write(
            tmp_path / "incidentflow.toml",
            'store = "sqlite:///x.db"\n[notifiers.chat]\ntype = "slack"\n'
            'webhook_url_env = "SLACK_WEBHOOK_URL"\n',
        )
        with open_flow(load_config(path)) as flow:
            [chat] = flow.notifiers
            assert isinstance(chat, UnavailableNotifier)
            assert "SLACK_WEBHOOK_URL" in chat.reason
        assert (tmp_path / "x.db").exists()

    def test_arguments_are_incidentflows_keywords(self) -> None:
        """flow_arguments gives IncidentFlow's keywords: the configured ones and those given."""
        clock = FrozenClock()
        arguments = Config(store="memory://").flow_arguments(clock=clock)
        assert set(arguments) == {
            "store",
            "policy",
            "retry",
            "deliver_inline",
            "delivery_lease",
            "alert_rules",
            "incidents_dir",
            "knowledge_dir",
            "notifiers",
            "routes",
            "clock",
        }
        assert isinstance(arguments["store"], MemoryStore)
        assert (arguments["policy"], arguments["retry"]) == (Policy(), RetryPolicy())
        assert arguments["alert_rules"] == AlertRules()
        assert arguments["incidents_dir"] == Path(".agent/incidents")
        assert arguments["knowledge_dir"] == Path(".agent/knowledge/gotchas")
        assert (arguments["notifiers"], arguments["routes"], arguments["clock"]) == (
            [],
            None,
            clock,
        )
        with IncidentFlow(**arguments) as flow:
            assert flow.clock is clock

    def test_folders_are_next_to_the_file(self, tmp_path: Path) -> None:
        """Without folders in the file, the default folders are in the file's folder."""
        config = load_config(write(tmp_path / "incidentflow.toml", 'store = "memory://"\n'))
        arguments = config.flow_arguments()
        assert arguments["incidents_dir"] == tmp_path / ".agent" / "incidents"
        assert arguments["knowledge_dir"] == tmp_path / ".agent" / "knowledge" / "gotchas"

    def test_a_flow_that_cannot_be_built_closes_the_store_opened_for_it(
        self, tmp_path: Path
    ) -> None:
        """open_with closes the store it opened when the factory raises, and re-raises."""
        opened: list[Any] = []

        def failing(**arguments: Any) -> IncidentFlow:
            opened.append(arguments["store"])
            raise ConfigError("clock", "expected a callable")

        config = Config(store=f"sqlite:///{tmp_path / 'x.db'}")
        with pytest.raises(ConfigError, match="expected a callable"):
            config.open_with(failing)
        with pytest.raises(IncidentFlowError):
            opened[0].exists("INC-2026-11-27-x")

    def test_a_given_store_is_left_open(self) -> None:
        """A Store given to open_with is the caller's: it stays open when the factory raises."""
        store = MemoryStore()

        def failing(**arguments: Any) -> IncidentFlow:
            raise ConfigError("clock", "expected a callable")

        with pytest.raises(ConfigError):
            Config().open_with(failing, store=store)
        with IncidentFlow(store) as flow:
            flow.declare("Still open", severity="P3", commander="alice", actor="alice")


class TestSecrets:
    def test_masked_toml_holds_no_secret(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """to_toml(masked=True) shows variable names, never the URL's token or any secret."""
        for name, value in SECRETS.items():
            monkeypatch.setenv(name, value)
        config = load_config(write(tmp_path / "incidentflow.toml", FULL))
        text = config.to_toml(masked=True)
        assert "tok3n-in-url" not in text
        for value in SECRETS.values():
            assert value not in text
        assert "PAGER_SECRET" in text
        assert "SMTP_PASSWORD" in text
        tomllib.loads(text)  # still TOML: config show --json parses it

    def test_repr_holds_no_secret(self) -> None:
        """Neither a store password nor a webhook URL's token appears in repr."""
        config = Config(
            store="postgresql://ops:hunter22@db.example.com/incidents",
            notifiers={"pager": WebhookNotifierSpec(url="https://x.example/hooks/abc?token=t0k3n")},
        )
        assert "hunter22" not in repr(config)
        assert "t0k3n" not in repr(config)
        assert "hunter22" not in config.to_toml()
        assert "hunter22" in config.to_toml(masked=False)

    def test_store_url_masked(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """store_url(masked=True) hides the password of INCIDENTFLOW_URL."""
        monkeypatch.setenv("INCIDENTFLOW_URL", "postgresql://ops:hunter22@db/incidents")
        assert Config().store_url(masked=True) == "postgresql://ops:***@db/incidents"


class TestRoundTrip:
    def test_starter_file_is_the_defaults(self, tmp_path: Path) -> None:
        """default_config_toml() loads to exactly Config()."""
        path = write(tmp_path / "incidentflow.toml", default_config_toml())
        assert attrs.evolve(load_config(path), source=None) == Config()

    def test_starter_file_examples_are_valid(self, tmp_path: Path) -> None:
        """Uncommented, the starter's example settings load without error."""
        lines = []
        for line in default_config_toml().splitlines():
            if line.startswith("# ") and ("=" in line or line.startswith(("# [", "#     "))):
                line = line[2:]
            lines.append(line)
        text = "\n".join(lines)
        config = load_config(write(tmp_path / "incidentflow.toml", text))
        assert set(config.notifiers) == {"pager", "chat", "mail"}
        assert config.actor == "alice"
        assert config.routes is not None
        assert len(config.routes) == 3

    def test_starter_file_says_what_each_key_is(self) -> None:
        """Every key and table of the starter file has a comment line above it."""
        lines = default_config_toml().splitlines()
        for number, line in enumerate(lines):
            if line and not line.startswith(("#", " ", "]", "P")) and number:
                assert lines[number - 1].startswith("#"), line

    def test_full_file_round_trips(self, tmp_path: Path) -> None:
        """to_toml(masked=False) then load_config gives the same configuration."""
        config = load_config(write(tmp_path / "a" / "incidentflow.toml", FULL))
        again = load_config(
            write(tmp_path / "b" / "incidentflow.toml", config.to_toml(masked=False))
        )
        assert attrs.evolve(again, source=config.source) == config

    def test_empty_routes_round_trip(self, tmp_path: Path) -> None:
        """routes = [] (nobody hears anything) survives the round trip."""
        config = Config(routes=())
        again = load_config(write(tmp_path / "incidentflow.toml", config.to_toml()))
        assert again.routes == ()

    def test_policy_from_dict_still_works(self) -> None:
        """Policy.from_dict reads to_dict's shape through the same checks."""
        policy = Policy(blame_check="reject", watch_window=timedelta(minutes=45))
        assert Policy.from_dict(policy.to_dict()) == policy
        with pytest.raises(ConfigError) as info:
            Policy.from_dict({"watch_window": 5}, source="team.toml")
        assert info.value.key == "team.toml: watch_window"


class TestReferencePage:
    def test_every_key_is_documented(self) -> None:
        """docs/reference/configuration.md names every key the file accepts."""
        from incidentflow._policy import toml_forms
        from incidentflow.config import _alerts, _delivery, _load, _routes, _web

        page = Path(__file__).resolve().parents[1] / "docs" / "reference" / "configuration.md"
        text = page.read_text(encoding="utf-8")
        tables = [
            _load.FileTable,
            _delivery.DeliveryTable,
            _routes.RouteTable,
            _alerts.AlertsTable,
            _alerts.SeverityRuleTable,
            _web.WebTable,
            WebhookNotifierSpec,
            SlackNotifierSpec,
            EmailNotifierSpec,
            LogNotifierSpec,
        ]
        keys = [
            f"{table.__name__}.{field.name}" for table in tables for field in attrs.fields(table)
        ]
        keys += [f"Policy.{form.key}" for form in toml_forms().values()]
        missing = [
            key
            for key in keys
            if not any(
                f"`{form}" in text
                for name in [key.partition(".")[2]]
                for form in (name + "`", f"[{name}", f"[[{name}")
            )
        ]
        assert missing == []


# -- properties -------------------------------------------------------------------

_durations = st.integers(min_value=1, max_value=10 * 365 * 86_400 * 10**6).map(
    lambda us: timedelta(microseconds=us)
)

policies = st.builds(
    Policy,
    response_targets=st.dictionaries(st.sampled_from(list(Severity)), _durations),
    required_triage_answers=st.lists(
        st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True), max_size=5
    ).map(tuple),
    watch_window=_durations | st.just(timedelta(0)),
    confirmer_must_differ=st.booleans(),
    postmortem_severities=st.frozensets(st.sampled_from(list(Severity))).map(
        lambda chosen: chosen | {Severity.P1, Severity.P2}  # a hard rule: never looser
    ),
    blame_check=st.sampled_from(list(BlameCheck)),
    postmortem_due=_durations,
)

_KEYS = [
    "store", "incidents_dir", "knowledge_dir", "actor", "policy", "delivery", "notifiers",
    "routes", "type", "url", "url_env", "secret_env", "headers_env", "level", "host", "sender",
    "recipients", "port", "security", "username", "password_env", "timeout", "incident_url",
    "webhook_url_env", "notifier", "severities", "events", "response_minutes",
    "required_triage_answers", "watch_window_minutes", "confirmer_must_differ",
    "postmortem_severities", "blame_check", "postmortem_due_hours", "inline", "lease_seconds",
    "max_attempts", "first_delay_seconds", "multiplier", "max_delay_seconds", "jitter",
    "max_in_flight", "poll_seconds", "P1", "P5", "",
]  # fmt: skip

_scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "webhook",
            "slack",
            "email",
            "log",
            "P1",
            "declared",
            "https://x.example/h",
            "memory://",
            "sqlite:///x.db",
            "a@b.example",
            "INFO",
            "PAGER_SECRET",
            "~nobody-here/x",
        ]
    )
    | st.dates()
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
documents = st.dictionaries(st.sampled_from(_KEYS), _values, max_size=5)


class TestProperties:
    @settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(policy=policies)
    def test_any_valid_policy_round_trips_through_the_file(
        self, tmp_path: Path, policy: Policy
    ) -> None:
        """Any policy written by to_toml loads back equal."""
        path = write(tmp_path / "incidentflow.toml", Config(policy=policy).to_toml())
        assert load_config(path).policy == policy

    @settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(document=documents)
    def test_any_document_loads_or_raises_config_error(
        self, tmp_path: Path, document: dict[str, Any]
    ) -> None:
        """Whatever TOML the file holds, loading gives a Config or a ConfigError naming the file."""
        path = write(tmp_path / "incidentflow.toml", tomli_w.dumps(document))
        try:
            load_config(path)
        except ConfigError as exc:
            error: ConfigError | None = exc
        else:
            error = None
        assert error is None or error.key.startswith(str(path))

    @settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(text=st.text(max_size=80))
    def test_any_text_loads_or_raises_config_error(self, tmp_path: Path, text: str) -> None:
        """Arbitrary text is a Config or a ConfigError naming the file, never another exception."""
        path = write(tmp_path / "incidentflow.toml", text)
        try:
            load_config(path)
        except ConfigError as exc:
            error: ConfigError | None = exc
        else:
            error = None
        assert error is None or error.key.startswith(str(path))


class TestLayout:
    def test_the_configuration_does_not_import_the_facade(self) -> None:
        """No module of incidentflow.config imports incidentflow._flow, even inside a function."""
        import ast

        import incidentflow.config as package

        for path in Path(package.__file__).parent.glob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom):
                    names = {node.module or ""} | {
                        f"{node.module or ''}.{alias.name}" for alias in node.names
                    }
                else:
                    continue
                assert not any(name.strip(".").endswith("_flow") for name in names), path.name


class TestAlertsFromConfig:
    def test_the_configured_alert_rules_reach_the_flow(self, tmp_path: Path) -> None:
        """[alerts] in the file is what flow.ingest uses: from_config passes it on."""
        config = tmp_path / "incidentflow.toml"
        config.write_text(
            'store = "memory://"\n[alerts]\ncommander = "oncall"\n'
            '[[alerts.severity]]\nmatch = { service = "checkout" }\nseverity = "P1"\n',
            encoding="utf-8",
        )
        with IncidentFlow.from_config(config) as flow:
            assert flow.alert_rules is not None
            assert flow.alert_rules.commander == "oncall"
            alert = {
                "fingerprint": "fp-9",
                "status": "firing",
                "title": "Checkout slow",
                "severity": "warning",
                "labels": {"service": "checkout"},
                "started_at": "2026-11-27T13:55:00Z",
            }
            [outcome] = flow.ingest({"alerts": [alert]}, source="generic")
            incident = flow.get(outcome.incident_id)
        assert (incident.severity.value, incident.commander) == ("P1", "oncall")


class TestAccessFromConfig:
    def test_access_becomes_the_policys_authorizer(self, tmp_path: Path) -> None:
        """[access] in the file decides who may run what on the configured flow."""
        from incidentflow import Unauthorized

        config = tmp_path / "incidentflow.toml"
        config.write_text(
            'store = "memory://"\n[access]\ndefault = "read"\n'
            '[[access.roles]]\nname = "oncall"\npermission = "command"\nmembers = ["alice"]\n',
            encoding="utf-8",
        )
        with IncidentFlow.from_config(config) as flow:
            inc = flow.declare("Checkout down", severity="P2", commander="alice", actor="alice")
            with pytest.raises(Unauthorized):
                flow.start_triage(inc.id, actor="bob")
            assert flow.start_triage(inc.id, actor="alice").state.value == "triaging"

    def test_a_wrong_access_table_names_its_key(self, tmp_path: Path) -> None:
        """A permission that does not exist is a ConfigError naming the key in the file."""
        config = tmp_path / "incidentflow.toml"
        config.write_text('[access]\ndefault = "superuser"\n', encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_config(config)
        assert "access.default" in info.value.key
