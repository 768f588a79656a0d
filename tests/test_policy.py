"""The policy: the process's defaults, TOML round-trips, config errors, and the blame check."""

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

from incidentflow import BlameCheck, ConfigError, Policy, Severity
from incidentflow._policy import find_blame, toml_forms


class TestDefaults:
    def test_response_targets_match_the_severity_table(self) -> None:
        """P1 5 min, P2 30 min, P3 2 h, P4 14 days to start triage."""
        policy = Policy()
        assert {s: policy.response_target(s) for s in Severity} == {
            Severity.P1: timedelta(minutes=5),
            Severity.P2: timedelta(minutes=30),
            Severity.P3: timedelta(hours=2),
            Severity.P4: timedelta(days=14),
        }

    def test_process_switches(self) -> None:
        """15-minute watch window, a confirmer other than the commander, blame warnings."""
        policy = Policy()
        assert policy.watch_window == timedelta(minutes=15)
        assert policy.confirmer_must_differ is True
        assert policy.blame_check is BlameCheck.WARN
        assert policy.required_triage_answers == ("symptom", "started_at", "scope")

    def test_p1_and_p2_need_a_postmortem(self) -> None:
        """Only P1 and P2 incidents need a post-mortem by default."""
        policy = Policy()
        assert [s for s in Severity if policy.needs_postmortem(s)] == [Severity.P1, Severity.P2]

    def test_policy_is_immutable(self) -> None:
        """A policy cannot be changed in place; variants are derived."""
        policy = Policy()
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            policy.watch_window = timedelta(0)  # type: ignore[misc]
        longer = attrs.evolve(policy, watch_window=timedelta(hours=1))
        assert (policy.watch_window, longer.watch_window) == (
            timedelta(minutes=15),
            timedelta(hours=1),
        )

    def test_response_targets_can_be_overridden_one_by_one(self) -> None:
        """Overriding one severity's target keeps the defaults of the others."""
        policy = Policy(response_targets={"P1": timedelta(minutes=2)})
        assert policy.response_target(Severity.P1) == timedelta(minutes=2)
        assert policy.response_target(Severity.P4) == timedelta(days=14)


class TestToml:
    def test_default_round_trip(self, tmp_path: Path) -> None:
        """to_toml then from_toml gives the same policy."""
        path = tmp_path / "policy.toml"
        path.write_text(Policy().to_toml(), encoding="utf-8")
        assert Policy.from_toml(path) == Policy()

    def test_custom_round_trip(self, tmp_path: Path) -> None:
        """Every setting survives the round-trip."""
        policy = Policy(
            response_targets={"P1": timedelta(minutes=1), "P3": timedelta(hours=4)},
            required_triage_answers=("symptom", "blast_radius"),
            watch_window=timedelta(minutes=45),
            confirmer_must_differ=False,
            postmortem_severities=["P1", "P2", "P3"],
            blame_check="reject",
            postmortem_due=timedelta(hours=48),
        )
        path = tmp_path / "policy.toml"
        path.write_text(policy.to_toml(), encoding="utf-8")
        loaded = Policy.from_toml(path)
        assert loaded == policy
        assert loaded.blame_check is BlameCheck.REJECT
        assert loaded.response_target(Severity.P3) == timedelta(hours=4)

    def test_policy_table_in_a_larger_file(self, tmp_path: Path) -> None:
        """A [policy] table inside a bigger config file is read."""
        path = tmp_path / "incidentflow.toml"
        path.write_text(
            '[store]\nurl = "sqlite:///x"\n\n[policy]\nwatch_window_minutes = 30\n',
            encoding="utf-8",
        )
        assert Policy.from_toml(path).watch_window == timedelta(minutes=30)

    def test_partial_file_keeps_defaults(self, tmp_path: Path) -> None:
        """Settings not in the file keep their defaults."""
        path = tmp_path / "policy.toml"
        path.write_text('blame_check = "off"\n', encoding="utf-8")
        policy = Policy.from_toml(path)
        assert policy.blame_check is BlameCheck.OFF
        assert policy.watch_window == timedelta(minutes=15)

    def test_unknown_key_names_the_key(self, tmp_path: Path) -> None:
        """An unknown key is refused, naming it and the accepted keys."""
        path = tmp_path / "policy.toml"
        path.write_text("watch_window = 15\n", encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            Policy.from_toml(path)
        assert "watch_window" in info.value.key
        assert "watch_window_minutes" in str(info.value)

    @pytest.mark.parametrize(
        ("key", "toml"),
        [
            ("watch_window_minutes", 'watch_window_minutes = "15"'),
            ("watch_window_minutes", "watch_window_minutes = -5"),
            ("watch_window_minutes", "watch_window_minutes = true"),
            ("confirmer_must_differ", 'confirmer_must_differ = "yes"'),
            ("postmortem_severities", 'postmortem_severities = "P1"'),
            ("postmortem_severities", 'postmortem_severities = ["P5"]'),
            ("blame_check", 'blame_check = "loud"'),
            ("blame_check", "blame_check = 1"),
            ("required_triage_answers", 'required_triage_answers = "symptom"'),
            ("required_triage_answers", "required_triage_answers = [1, 2]"),
            ("postmortem_due_hours", 'postmortem_due_hours = "a day"'),
            ("response_minutes", "response_minutes = 5"),
            ("response_minutes", 'response_minutes = "fast"'),
            ("response_minutes.P1", 'response_minutes = { P1 = "five" }'),
        ],
    )
    def test_wrong_type_names_the_key(self, tmp_path: Path, key: str, toml: str) -> None:
        """A value of the wrong type or range is a ConfigError naming its key."""
        path = tmp_path / "policy.toml"
        path.write_text(toml + "\n", encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            Policy.from_toml(path)
        assert key in str(info.value)
        assert str(path) in str(info.value)

    def test_unknown_severity_in_response_minutes(self, tmp_path: Path) -> None:
        """A severity that does not exist is refused, naming it."""
        path = tmp_path / "policy.toml"
        path.write_text("[response_minutes]\nP9 = 5\n", encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            Policy.from_toml(path)
        assert "P9" in str(info.value)

    def test_invalid_toml(self, tmp_path: Path) -> None:
        """A file that is not TOML is a ConfigError naming the file."""
        path = tmp_path / "policy.toml"
        path.write_text("watch_window_minutes = = 3\n", encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            Policy.from_toml(path)
        assert str(path) in str(info.value)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is a ConfigError naming the file."""
        path = tmp_path / "nope.toml"
        with pytest.raises(ConfigError) as info:
            Policy.from_toml(path)
        assert str(path) in str(info.value)


_durations = st.integers(min_value=0, max_value=100 * 365 * 86_400 * 10**6).map(
    lambda us: timedelta(microseconds=us)
)
policies = st.builds(
    Policy,
    response_targets=st.dictionaries(
        st.sampled_from(list(Severity)), _durations.filter(lambda d: d > timedelta(0))
    ),
    required_triage_answers=st.lists(
        st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True), max_size=5
    ).map(tuple),
    watch_window=_durations,
    confirmer_must_differ=st.booleans(),
    postmortem_severities=st.frozensets(st.sampled_from(list(Severity))).map(
        lambda chosen: chosen | {Severity.P1, Severity.P2}
    ),
    blame_check=st.sampled_from(list(BlameCheck)),
    postmortem_due=_durations,
)


class TestDescribedOnce:
    @settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(policy=policies)
    def test_any_policy_round_trips_through_toml(self, tmp_path: Path, policy: Policy) -> None:
        """Any policy written by to_toml loads back equal with from_toml, and via from_dict."""
        path = tmp_path / "policy.toml"
        path.write_text(policy.to_toml(), encoding="utf-8")
        assert Policy.from_toml(path) == policy
        assert Policy.from_dict(policy.to_dict()) == policy

    def test_every_setting_has_a_toml_form(self) -> None:
        """Each field declares its TOML form (guards declare that they have none)."""
        assert all("toml" in field.metadata for field in attrs.fields(Policy))
        # Guards and the authorizer are code: they declare that they have no TOML form.
        settings = {field.name for field in attrs.fields(Policy) if field.init}
        settings -= {"guards", "authorizer"}
        assert set(toml_forms()) == settings

    def test_toml_keys_are_the_settings_keys(self) -> None:
        """to_dict, to_toml and the keys from_dict accepts are the same set: one per setting."""
        keys = {form.key for form in toml_forms().values()}
        assert len(keys) == len(toml_forms())
        assert set(Policy().to_dict()) == keys
        assert set(tomllib.loads(Policy().to_toml())) == keys
        for key in keys:
            Policy.from_dict({key: Policy().to_dict()[key]})
        with pytest.raises(ConfigError) as info:
            Policy.from_dict({"guards": {}})
        assert all(key in str(info.value) for key in keys)

    def test_config_file_policy_table_accepts_the_same_keys(self, tmp_path: Path) -> None:
        """The configuration's [policy] table takes every key to_dict writes, and only those."""
        from incidentflow.config import load_config

        path = tmp_path / "incidentflow.toml"
        policy = Policy(blame_check="off", watch_window=timedelta(minutes=1))
        path.write_text(tomli_w.dumps({"policy": policy.to_dict()}), encoding="utf-8")
        assert load_config(path).policy == policy

    def test_to_toml_writes_whole_numbers_plainly(self) -> None:
        """Durations are numbers of minutes or hours, whole ones without a decimal point."""
        text = Policy().to_toml()
        assert "watch_window_minutes = 15\n" in text
        assert "postmortem_due_hours = 24\n" in text
        assert "P4 = 20160\n" in text


class TestConstructor:
    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("watch_window", 15),
            ("watch_window", timedelta(minutes=-1)),
            ("postmortem_due", "24h"),
            ("blame_check", "loud"),
            ("required_triage_answers", ["symptom", ""]),
            ("response_targets", {"P1": 5}),
            ("response_targets", {"P1": timedelta(0)}),
            ("response_targets", {"P9": timedelta(minutes=5)}),
            ("postmortem_severities", ["P5"]),
            ("confirmer_must_differ", "no"),
        ],
    )
    def test_bad_value_is_a_config_error_naming_the_setting(self, key: str, value: Any) -> None:
        """Policy(...) refuses a bad setting with a ConfigError whose key names it."""
        with pytest.raises(ConfigError) as info:
            Policy(**{key: value})
        assert info.value.key == key


class TestFindBlame:
    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("The outage was caused by human error.", "human error"),
            ("Root cause: operator error during the migration", "operator error"),
            ("Honestly it was Bob's fault.", "Bob's fault"),
            ("It was the fault of bob", "fault of bob"),
            ("bob forgot to run the migration", "bob forgot"),
            ("Bob broke the deploy pipeline", "Bob broke"),
            ("Alice accidentally deleted the index", "Alice accidentally deleted"),
            ("carol simply ignored the alert", "carol simply ignored"),
        ],
    )
    def test_catches_blame(self, text: str, fragment: str) -> None:
        """Human error, someone's fault, and a participant next to a failure verb are caught."""
        found = find_blame(text, ["alice", "bob", "carol"])
        assert found
        assert any(fragment in warning for warning in found)

    def test_curly_apostrophe_fault(self) -> None:
        """ "Bob’s fault" with a typographic apostrophe, as docs editors write it, is caught."""
        assert find_blame("It was Bob’s fault.", ["bob"])

    @pytest.mark.parametrize(
        "text",
        [
            "The deploy script skipped the migration.",
            "Our runbook had no rollback step for the order service.",
            "bob restored the backup within ten minutes",
            "Alice noticed the alert and paged the on-call",
            "The alert threshold was too high, so the page fired late.",
            "The health check failed to detect the exhausted pool.",
            "Bobby tables",
            "A blameless review was held with everyone involved.",
        ],
    )
    def test_leaves_process_language_alone(self, text: str) -> None:
        """Text about the process, tools and people doing their job is not flagged."""
        assert find_blame(text, ["alice", "bob", "carol"]) == []

    def test_participants_are_whole_words(self) -> None:
        """A participant's name inside another word is not a person."""
        assert find_blame("The albob job failed", ["bob"]) == []

    def test_every_blame_is_reported(self) -> None:
        """Several blaming phrases give several warnings."""
        found = find_blame(
            "bob forgot the flag; human error; alice broke staging", ["alice", "bob"]
        )
        assert len(found) == 3


class TestCore:
    def test_policy_imports_only_the_core(self) -> None:
        """The policy imports only core modules: no configuration, store, notifier or facade."""
        import ast

        import incidentflow._policy as module

        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        imported = {
            node.module or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1
            for alias in node.names
        }
        assert imported <= {
            "_authz",
            "_blame",
            "_fields",
            "_lifecycle",
            "_model",
            "_policy_checks",
            "_policy_toml",
            "_process",
            "_reasons",
            "_toml",
            "_validate",
            "exceptions",
        }
