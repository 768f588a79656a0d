"""A process per severity and per type: resolution, TOML, the hard rules it cannot loosen."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from incidentflow import ConfigError, Policy, ProcessOverride, Severity
from incidentflow._fields import FIELD_TYPES

P1, P2, P3, P4 = Severity.P1, Severity.P2, Severity.P3, Severity.P4


def load(tmp_path: Path, text: str) -> Policy:
    path = tmp_path / "incidentflow.toml"
    path.write_text(text, encoding="utf-8")
    return Policy.from_toml(path)


def toml_error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value


class TestDefaults:
    def test_every_severity_and_type_runs_the_seed_process(self) -> None:
        """Without overrides, every severity and type gets the seed's numbers and switches."""
        policy = Policy()
        targets = {P1: 5, P2: 30, P3: 120, P4: 14 * 24 * 60}
        for severity in Severity:
            for type in (None, *policy.incident_types):
                process = policy.process(severity, type)
                assert process.response_target == timedelta(minutes=targets[severity])
                assert process.required_triage_answers == ("symptom", "started_at", "scope")
                assert process.staging_required is True
                assert process.watch_window == timedelta(minutes=15)
                assert process.postmortem_required is (severity in (P1, P2))
                assert process.min_action_items == 1
                assert dict(process.required_roles) == {}
                assert process.update_cadence is None

    def test_default_types_and_roles(self) -> None:
        """Four incident types (availability first, the default) and four roles."""
        policy = Policy()
        assert policy.incident_types == ("availability", "security", "data", "performance")
        assert policy.default_type == "availability"
        assert policy.roles == ("commander", "communications_lead", "operations_lead", "scribe")
        assert policy.requires_roles is False


class TestResolution:
    def test_severity_overrides_the_base(self) -> None:
        """A severity's settings replace the base ones; what it leaves out is inherited."""
        policy = Policy(
            severities={"P3": ProcessOverride(staging_required=False, watch_window=timedelta(0))}
        )
        light = policy.process(P3)
        assert (light.staging_required, light.watch_window) == (False, timedelta(0))
        assert light.response_target == timedelta(hours=2)
        assert policy.process(P2).staging_required is True

    def test_type_overrides_the_severity(self) -> None:
        """A type's settings win over its severity's: base < severity < type."""
        policy = Policy(
            severities={"P3": ProcessOverride(watch_window=timedelta(minutes=5))},
            types={"security": ProcessOverride(watch_window=timedelta(minutes=60))},
        )
        assert policy.process(P3).watch_window == timedelta(minutes=5)
        assert policy.process(P3, "security").watch_window == timedelta(minutes=60)
        assert policy.process(P3, "data").watch_window == timedelta(minutes=5)

    def test_type_questions_add_to_the_severitys(self) -> None:
        """A severity replaces the required questions; a type adds its own to them."""
        policy = Policy(
            severities={"P4": ProcessOverride(triage_questions=("symptom",))},
            types={"security": ProcessOverride(triage_questions=("Attack vector",))},
        )
        assert policy.process(P4).required_triage_answers == ("symptom",)
        assert policy.process(P4, "security").required_triage_answers == (
            "symptom",
            "attack_vector",
        )
        assert policy.process(P1, "security").required_triage_answers == (
            "symptom",
            "started_at",
            "scope",
            "attack_vector",
        )
        assert "attack_vector" in policy.known_triage_questions

    def test_required_roles_add_up(self) -> None:
        """Roles a severity requires and roles a type requires are both required."""
        policy = Policy(
            severities={"P1": ProcessOverride(required_roles={"contain": ["communications_lead"]})},
            types={"security": ProcessOverride(required_roles={"contain": ["scribe"]})},
        )
        roles = policy.process(P1, "security").required_roles
        assert dict(roles) == {"contain": ("communications_lead", "scribe")}
        assert dict(policy.process(P2, "security").required_roles) == {"contain": ("scribe",)}
        assert policy.requires_roles is True

    def test_a_zero_cadence_turns_an_inherited_one_off(self) -> None:
        """update_cadence=0 in an override means no cadence for that severity."""
        policy = Policy(
            update_cadence=timedelta(minutes=30),
            severities={"P4": ProcessOverride(update_cadence=timedelta(0))},
        )
        assert policy.process(P1).update_cadence == timedelta(minutes=30)
        assert policy.process(P4).update_cadence is None

    def test_a_type_without_overrides_runs_its_severitys_process(self) -> None:
        """A type the policy has no table for gets its severity's process."""
        policy = Policy(severities={"P3": ProcessOverride(staging_required=False)})
        assert policy.process(P3, "performance") == policy.process(P3)
        assert policy.process(P3, "no-such-type") == policy.process(P3)

    def test_stricter_is_allowed(self) -> None:
        """A policy may require a post-mortem and more action items for P3 and P4."""
        policy = Policy(
            postmortem_severities=["P1", "P2", "P3"],
            min_action_items=2,
            severities={"P4": ProcessOverride(postmortem_required=True, min_action_items=3)},
        )
        assert [policy.needs_postmortem(s) for s in Severity] == [True, True, True, True]
        assert policy.process(P4).min_action_items == 3


class TestProcessCache:
    def test_each_pair_is_resolved_once(self) -> None:
        """Guards ask on every command; the same pair gives back the same resolved object."""
        policy = Policy(types={"security": ProcessOverride(staging_required=False)})
        assert policy.process(P1, "security") is policy.process(P1, "security")
        assert policy.process(P1, "data") is policy.process(P1)

    def test_the_cache_is_not_part_of_the_policy(self) -> None:
        """The cache is in no comparison, repr or TOML, and a derived policy starts afresh."""
        policy = Policy()
        policy.process(P1)
        assert policy == Policy()
        assert "_processes" not in repr(policy)
        assert "processes" not in policy.to_dict()
        slower = attrs.evolve(policy, watch_window=timedelta(hours=1))
        assert slower.process(P1).watch_window == timedelta(hours=1)
        assert policy.process(P1).watch_window == timedelta(minutes=15)


HARD_RULES_PYTHON: list[tuple[dict[str, Any], str, str]] = [
    ({"postmortem_severities": ["P1"]}, "postmortem_severities", "every P1 and P2"),
    ({"postmortem_severities": []}, "postmortem_severities", "every P1 and P2"),
    (
        {"severities": {"P2": ProcessOverride(postmortem_required=False)}},
        "severities.P2.postmortem_required",
        "every P1 and P2",
    ),
    (
        {"types": {"data": ProcessOverride(postmortem_required=False)}},
        "types.data.postmortem_required",
        "every P1 and P2",
    ),
    ({"min_action_items": 0}, "min_action_items", "at least one action item"),
    (
        {"severities": {"P1": ProcessOverride(min_action_items=0)}},
        "severities.P1.min_action_items",
        "at least one action item",
    ),
    (
        {
            "postmortem_severities": ["P1", "P2", "P3"],
            "severities": {"P3": ProcessOverride(min_action_items=0)},
        },
        "severities.P3.min_action_items",
        "at least one action item",
    ),
    (
        {"types": {"security": ProcessOverride(min_action_items=0)}},
        "types.security.min_action_items",
        "at least one action item",
    ),
]

HARD_RULES_TOML = [
    (
        '[policy]\npostmortem_severities = ["P1"]\n',
        "policy.postmortem_severities",
        "every P1 and P2",
    ),
    (
        "[policy.severity.P1]\npostmortem_required = false\n",
        "policy.severity.P1.postmortem_required",
        "every P1 and P2",
    ),
    (
        '[policy.type."security"]\npostmortem_required = false\n',
        "policy.type.security.postmortem_required",
        "every P1 and P2",
    ),
    ("[policy]\nmin_action_items = 0\n", "policy.min_action_items", "at least one action item"),
    (
        "[policy.severity.P2]\nmin_action_items = 0\n",
        "policy.severity.P2.min_action_items",
        "at least one action item",
    ),
    (
        "[policy.type.data]\nmin_action_items = 0\n",
        "policy.type.data.min_action_items",
        "at least one action item",
    ),
]


class TestHardRules:
    @pytest.mark.parametrize(("settings", "key", "rule"), HARD_RULES_PYTHON)
    def test_python_policy_cannot_loosen_a_rule(
        self, settings: dict[str, Any], key: str, rule: str
    ) -> None:
        """Policy(...) refuses a loosened hard rule, naming the setting and the rule."""
        with pytest.raises(ConfigError) as info:
            Policy(**settings)
        assert info.value.key == key
        assert rule in info.value.message
        assert "hard rule" in info.value.message

    @pytest.mark.parametrize(("text", "key", "rule"), HARD_RULES_TOML)
    def test_toml_cannot_loosen_a_rule(
        self, tmp_path: Path, text: str, key: str, rule: str
    ) -> None:
        """A TOML file that loosens a hard rule is a ConfigError naming its dotted key and rule."""
        error = toml_error(tmp_path, text)
        assert error.key == f"{tmp_path / 'incidentflow.toml'}: {key}"
        assert rule in error.message
        assert "hard rule" in error.message

    def test_a_severity_without_postmortem_may_need_no_action_item(self) -> None:
        """P3 and P4, which need no post-mortem, may close without an action item."""
        policy = Policy(severities={"P3": ProcessOverride(min_action_items=0)})
        assert policy.process(P3).min_action_items == 0
        assert policy.process(P3, "security").min_action_items == 0

    def test_a_type_adding_a_postmortem_brings_an_action_item(self) -> None:
        """A type that adds a post-mortem to a lighter severity lifts its minimum to one."""
        policy = Policy(
            severities={"P4": ProcessOverride(min_action_items=0)},
            types={"security": ProcessOverride(postmortem_required=True)},
        )
        assert policy.process(P4).min_action_items == 0
        secure = policy.process(P4, "security")
        assert (secure.postmortem_required, secure.min_action_items) == (True, 1)

    def test_no_setting_switches_off_the_other_rules(self) -> None:
        """Contain before root cause and a user's confirmation have no setting to turn off."""
        names = {f.name for f in attrs.fields(Policy)} | {
            f.name for f in attrs.fields(ProcessOverride)
        }
        assert not [
            n for n in names if "contain" in n or ("confirm" in n and n != "confirmer_must_differ")
        ]


class TestConstructor:
    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("staging_required", "no"),
            ("min_action_items", "1"),
            ("min_action_items", True),
            ("update_cadence", 30),
            ("update_cadence", timedelta(minutes=-1)),
            ("incident_types", []),
            ("incident_types", "security"),
            ("incident_types", ["Security Incidents"]),
            ("roles", ["scribe"]),
            ("roles", ["commander", ""]),
            ("triage_questions", "customer_impact"),
            ("severities", {"P9": ProcessOverride()}),
            ("severities", {"P3": {"staging_required": False}}),
            ("types", {"security": "strict"}),
            ("custom_fields", {"customer": "txt"}),
            ("custom_fields", {"Customer Name": "text"}),
            ("labels", {"service": "checkout"}),
            ("labels", {"service": ["check\nout"]}),
        ],
    )
    def test_bad_value_is_a_config_error_naming_the_setting(self, key: str, value: Any) -> None:
        """Policy(...) refuses a bad new setting with a ConfigError whose key names it."""
        with pytest.raises(ConfigError) as info:
            Policy(**{key: value})
        assert info.value.key.split(".")[0] == key

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("response_target", timedelta(0)),
            ("watch_window", 15),
            ("staging_required", "yes"),
            ("min_action_items", -1),
            ("triage_questions", "scope"),
            ("required_roles", {"contain": "scribe"}),
            ("update_cadence", timedelta(minutes=-5)),
        ],
    )
    def test_bad_override_is_a_config_error_naming_the_setting(self, key: str, value: Any) -> None:
        """ProcessOverride(...) checks the type and range of each setting."""
        with pytest.raises(ConfigError) as info:
            ProcessOverride(**{key: value})
        assert info.value.key.split(".")[0] == key

    def test_triage_questions_are_normalised(self) -> None:
        """Question names are stored normalised: "Customer impact"."""
        policy = Policy(triage_questions=["Customer impact"])
        assert policy.triage_questions == ("customer_impact",)
        assert ProcessOverride(triage_questions=["Attack Vector"]).triage_questions == (
            "attack_vector",
        )

    @pytest.mark.parametrize(
        ("override", "key", "fragment"),
        [
            ({"contian": ["scribe"]}, "severities.P1.required_roles", "did you mean contain?"),
            ({"declare": ["scribe"]}, "severities.P1.required_roles", "not a command"),
            ({"contain": ["boss"]}, "severities.P1.required_roles.contain", "'boss' is not a role"),
        ],
    )
    def test_required_roles_name_known_commands_and_roles(
        self, override: dict[str, list[str]], key: str, fragment: str
    ) -> None:
        """A required role names a command of the process and a role of the policy."""
        with pytest.raises(ConfigError) as info:
            Policy(severities={"P1": ProcessOverride(required_roles=override)})
        assert info.value.key == key
        assert fragment in info.value.message

    def test_a_type_override_names_a_known_type(self) -> None:
        """A table for a type the policy does not list is refused with the known types."""
        with pytest.raises(ConfigError) as info:
            Policy(types={"secrity": ProcessOverride()})
        assert info.value.key == "types.secrity"
        assert "availability, security, data, performance" in info.value.message


class TestToml:
    def test_every_new_setting_reads_from_toml(self, tmp_path: Path) -> None:
        """Each new setting and table is read from its TOML form."""
        policy = load(
            tmp_path,
            """
[policy]
staging_required = false
min_action_items = 2
update_cadence_minutes = 30
incident_types = ["availability", "security", "privacy"]
triage_questions = ["customer_impact"]
roles = ["commander", "communications_lead", "scribe"]

[policy.severity.P3]
response_minutes = 240
watch_window_minutes = 5
postmortem_required = false
min_action_items = 0
update_cadence_minutes = 0

[policy.severity.P1]
required_roles = { contain = ["communications_lead"] }

[policy.type.security]
triage_questions = ["attack_vector"]
staging_required = true

[policy.fields]
customer = "text"
affected_users = "int"

[policy.labels]
service = ["checkout", "search"]
team = []
""",
        )
        assert policy.staging_required is False
        assert policy.update_cadence == timedelta(minutes=30)
        assert policy.process(P3).update_cadence is None
        assert policy.process(P3).response_target == timedelta(hours=4)
        assert policy.process(P3, "security").staging_required is True
        assert dict(policy.process(P1).required_roles) == {"contain": ("communications_lead",)}
        assert dict(policy.custom_fields) == {"customer": "text", "affected_users": "int"}
        assert dict(policy.labels) == {"service": ("checkout", "search"), "team": ()}
        assert policy.check_field("affected_users", 12) == 12
        assert policy.check_label("team", "payments") == "payments"

    def test_no_cadence_is_written_as_zero(self) -> None:
        """The default (no cadence) is written as 0, and 0 reads back as no cadence."""
        assert Policy().to_dict()["update_cadence_minutes"] == 0
        assert Policy.from_dict({"update_cadence_minutes": 0}).update_cadence is None

    def test_an_override_writes_only_what_it_sets(self) -> None:
        """Inherited settings are left out of a severity's table."""
        policy = Policy(severities={"P4": ProcessOverride(watch_window=timedelta(0))})
        assert policy.to_dict()["severity"] == {"P4": {"watch_window_minutes": 0}}

    @pytest.mark.parametrize(
        ("text", "key", "fragment"),
        [
            ("[policy.severity.P3]\nwatch_window = 5\n", "policy.severity.P3.watch_window",
             "did you mean watch_window_minutes?"),
            ("[policy.type.security]\ntriage_question = []\n",
             "policy.type.security.triage_question", "did you mean triage_questions?"),
            ("[policy]\nstaging_requird = true\n", "policy.staging_requird",
             "did you mean staging_required?"),
            ("[policy]\nupdate_cadence = 30\n", "policy.update_cadence",
             "did you mean update_cadence_minutes?"),
            ("[policy.severities.P3]\nstaging_required = false\n", "policy.severities",
             "did you mean severity?"),
            ("[policy.severity.P9]\nstaging_required = false\n", "policy.severity.P9",
             "P1, P2, P3, P4"),
            ("[policy.severity]\nP3 = 5\n", "policy.severity.P3", "expected a table"),
            ("[policy.severity.P3]\nmin_action_items = -1\n",
             "policy.severity.P3.min_action_items", "whole number"),
            ("[policy.severity.P3]\nresponse_minutes = 0\n",
             "policy.severity.P3.response_minutes", "greater than 0"),
            ('[policy.severity.P3]\nstaging_required = "no"\n',
             "policy.severity.P3.staging_required", "true or false"),
            ('[policy.type.security]\nrequired_roles = ["scribe"]\n',
             "policy.type.security.required_roles", "command = roles"),
            ("[policy.type.security]\nrequired_roles = { contain = [\"Boss Man\"] }\n",
             "policy.type.security.required_roles.contain[1]", "not a key"),
            ("[policy.type.secrity]\nstaging_required = true\n", "policy.type.secrity",
             "not an incident type"),
            ('[policy.fields]\ncustomer = "txt"\n', "policy.fields.customer",
             "text, int, float, bool, date"),
            ('[policy.labels]\nservice = "checkout"\n', "policy.labels.service",
             "list of allowed values"),
            ("[policy]\nincident_types = []\n", "policy.incident_types", "at least one"),
            ('[policy]\nroles = ["scribe"]\n', "policy.roles", "commander"),
            ("[policy]\nupdate_cadence_minutes = -1\n", "policy.update_cadence_minutes",
             "0 or more"),
        ],
    )  # fmt: skip
    def test_wrong_key_or_value_names_the_dotted_key(
        self, tmp_path: Path, text: str, key: str, fragment: str
    ) -> None:
        """A wrong key or value in a nested table is named by its dotted key, with a hint."""
        error = toml_error(tmp_path, text)
        assert error.key == f"{tmp_path / 'incidentflow.toml'}: {key}"
        assert fragment in error.message

    def test_config_file_reads_the_same_tables(self, tmp_path: Path) -> None:
        """The configuration's [policy] table takes the per-severity and per-type tables."""
        from incidentflow.config import load_config

        policy = Policy(
            severities={"P4": ProcessOverride(staging_required=False)},
            types={"security": ProcessOverride(triage_questions=("attack_vector",))},
            labels={"service": ("checkout",)},
        )
        path = tmp_path / "incidentflow.toml"
        path.write_text(tomli_w.dumps({"policy": policy.to_dict()}), encoding="utf-8")
        assert load_config(path).policy == policy


_names = st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True)
_minutes = st.integers(min_value=0, max_value=100 * 365 * 1440).map(lambda m: timedelta(minutes=m))
_positive = _minutes.filter(bool)
_ROLES = ("commander", "communications_lead", "operations_lead", "scribe")


def overrides(*, loosen: bool) -> st.SearchStrategy[ProcessOverride]:
    """Overrides; with ``loosen``, also those only a severity without a post-mortem may set."""
    return st.builds(
        ProcessOverride,
        response_target=st.none() | _positive,
        triage_questions=st.none() | st.lists(_names, max_size=3).map(tuple),
        staging_required=st.none() | st.booleans(),
        watch_window=st.none() | _minutes,
        postmortem_required=st.none() | (st.booleans() if loosen else st.just(True)),
        min_action_items=st.none() | st.integers(min_value=0 if loosen else 1, max_value=5),
        required_roles=st.none()
        | st.dictionaries(
            st.sampled_from(["contain", "start_rca", "resolve", "post_update"]),
            st.lists(st.sampled_from(_ROLES), min_size=1, max_size=2).map(tuple),
            max_size=2,
        ),
        update_cadence=st.none() | _minutes,
    )


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    """Valid policies with overrides, custom fields and labels."""
    severities = {
        **draw(st.dictionaries(st.sampled_from([P1, P2]), overrides(loosen=False))),
        **draw(st.dictionaries(st.sampled_from([P3, P4]), overrides(loosen=True))),
    }
    settings = {
        "postmortem_severities": draw(st.frozensets(st.sampled_from([P3, P4]))) | {P1, P2},
        "min_action_items": draw(st.integers(min_value=1, max_value=5)),
        "staging_required": draw(st.booleans()),
        "update_cadence": draw(st.none() | _positive),
        "triage_questions": draw(st.lists(_names, max_size=3)),
        "severities": severities,
        "types": draw(
            st.dictionaries(
                st.sampled_from(["availability", "security", "data"]), overrides(loosen=False)
            )
        ),
        "custom_fields": draw(st.dictionaries(_names, st.sampled_from(FIELD_TYPES), max_size=3)),
        "labels": draw(
            st.dictionaries(
                _names, st.lists(st.from_regex(r"[a-z0-9-]{1,8}", fullmatch=True), max_size=3)
            )
        ),
    }
    try:
        return Policy(**settings)
    except ConfigError:
        assume(False)
        raise


class TestRoundTrip:
    @settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(policy=policies())
    def test_any_policy_with_overrides_round_trips(self, tmp_path: Path, policy: Policy) -> None:
        """to_dict/from_dict and to_toml/from_toml give back an equal policy, overrides included."""
        assert Policy.from_dict(policy.to_dict()) == policy
        path = tmp_path / "policy.toml"
        path.write_text(policy.to_toml(), encoding="utf-8")
        loaded = Policy.from_toml(path)
        assert loaded == policy
        for severity in Severity:
            for type in (None, *policy.types):
                assert loaded.process(severity, type) == policy.process(severity, type)

    @settings(max_examples=50)
    @given(policy=policies())
    def test_no_policy_loosens_the_hard_rules(self, policy: Policy) -> None:
        """Under any valid policy, P1/P2 need a post-mortem, and a post-mortem an action item."""
        for severity in Severity:
            for type in (None, *policy.incident_types):
                process = policy.process(severity, type)
                if severity in (P1, P2):
                    assert process.postmortem_required
                if process.postmortem_required:
                    assert process.min_action_items >= 1

    def test_to_toml_is_a_policy_table(self) -> None:
        """The per-severity and per-type tables are written under severity and type."""
        policy = Policy(
            severities={"P3": ProcessOverride(staging_required=False)},
            types={"security": ProcessOverride(required_roles={"contain": ["scribe"]})},
        )
        data = tomllib.loads(policy.to_toml())
        assert data["severity"] == {"P3": {"staging_required": False}}
        assert data["type"] == {"security": {"required_roles": {"contain": ["scribe"]}}}


class TestRolesThatCannotWait:
    @pytest.mark.parametrize(
        "command", ["assign_role", "release_role", "assign_commander", "record_breach"]
    )
    def test_these_commands_never_require_a_role(self, command: str) -> None:
        """A role required before assigning roles (or recording breaches) could never be met."""
        with pytest.raises(ConfigError) as info:
            Policy(severities={"P1": ProcessOverride(required_roles={command: ["scribe"]})})
        assert command in info.value.message

    def test_closed_incidents_never_wait_for_a_role(self) -> None:
        """A role required before add_note does not block notes once the incident is closed."""
        from datetime import UTC, datetime

        from incidentflow import IncidentFlow
        from incidentflow.testing import FrozenClock

        policy = Policy(severities={"P3": ProcessOverride(required_roles={"add_note": ["scribe"]})})
        clock = FrozenClock(datetime(2026, 11, 27, 14, tzinfo=UTC))
        flow = IncidentFlow.in_memory(clock=clock, policy=policy)
        inc = flow.declare("Slow search", severity="P3", commander="al", actor="al")
        assert not flow.can(inc.id, "add_note").allowed  # open: the scribe is needed
        flow.dismiss(inc.id, reason="false alarm", actor="al")
        noted = flow.add_note(inc.id, "closed for good", actor="al")
        assert noted.notes[-1].text == "closed for good"
