"""The authorizer in the policy: roles, permissions, API tokens, and refusals before any guard."""

from __future__ import annotations

import hmac
import pickle
from collections.abc import Callable

import pytest

from incidentflow import ConfigError, IncidentFlow, IncidentNotFound
from incidentflow._authz import Access, Permission, can_see, hash_token, permission_for
from incidentflow._policy import Policy
from incidentflow.exceptions import Unauthorized
from incidentflow.notifiers import RecordingNotifier

TOKEN = "tok-3f9a1c"

ACCESS = {
    "groups": {"sre": ["alice", "bob"]},
    "roles": [
        {"name": "sre", "permission": "command", "members": ["group:sre"]},
        {"name": "leads", "permission": "admin", "members": ["carol"]},
        {"name": "support", "permission": "respond", "members": ["dave"]},
        {"name": "viewers", "permission": "read", "members": ["erin"]},
        {
            "name": "bots",
            "permission": "respond",
            "tokens": [{"actor": "pager-bot", "sha256": hash_token(TOKEN)}],
        },
    ],
}


def guarded_flow(**kwargs: object) -> IncidentFlow:
    return IncidentFlow.in_memory(policy=Policy(authorizer=Access.from_mapping(ACCESS)), **kwargs)


class TestPermissions:
    def test_each_permission_includes_the_ones_before_it(self) -> None:
        """admin allows everything command, respond and read allow; read allows only reads."""
        assert Permission.ADMIN.includes(Permission.READ)
        assert Permission.COMMAND.includes(Permission.RESPOND)
        assert not Permission.READ.includes(Permission.RESPOND)

    def test_commands_need_the_permission_of_their_kind(self) -> None:
        """Recording evidence is responding; lifecycle commands command; restricting is admin."""
        assert permission_for("add_evidence") is Permission.RESPOND
        assert permission_for("contain") is Permission.COMMAND
        assert permission_for("restrict") is Permission.ADMIN
        assert permission_for("list") is Permission.READ

    def test_groups_give_their_members_the_role(self) -> None:
        """A role naming group:sre applies to every actor of the sre group."""
        access = Access.from_mapping(ACCESS)
        assert access.permission("bob") is Permission.COMMAND
        assert access.principals("bob") == {"bob", "group:sre"}
        assert access.permission("mallory") is None

    def test_a_default_permission_covers_actors_no_role_names(self) -> None:
        """default = "read" lets anyone read and nothing more."""
        access = Access.from_mapping({**ACCESS, "default": "read"})
        assert access.permission("mallory") is Permission.READ


class TestConfiguration:
    @pytest.mark.parametrize(
        ("table", "key"),
        [
            ({"roles": [{"name": "x", "permission": "root"}]}, "access.roles[0].permission"),
            ({"roles": [{"permission": "read"}]}, "access.roles[0].name"),
            ({"roles": [{"name": "x", "permission": "read", "members": "al"}]}, "members"),
            ({"roles": "x"}, "access.roles"),
            ({"owner": "x"}, "access.owner"),
            ({"default": "everything"}, "access.default"),
            (
                {"roles": [{"name": "b", "permission": "read", "tokens": [{"actor": "b"}]}]},
                "access.roles[0].tokens[0].sha256",
            ),
        ],
    )
    def test_a_wrong_access_table_names_its_key(self, table: dict[str, object], key: str) -> None:
        """Every mistake in [access] raises ConfigError naming the key to fix."""
        with pytest.raises(ConfigError) as caught:
            Access.from_mapping(table)
        assert key in caught.value.key

    def test_a_plain_token_in_place_of_its_digest_is_refused(self) -> None:
        """Tokens are kept hashed: a value that is no SHA-256 digest is refused, saying how."""
        table = {
            "roles": [
                {"name": "b", "permission": "read", "tokens": [{"actor": "b", "sha256": TOKEN}]}
            ]
        }
        with pytest.raises(ConfigError, match="hash_token"):
            Access.from_mapping(table)


class TestTokens:
    def test_a_known_token_gives_its_actor(self) -> None:
        """check_token answers the actor the token stands for."""
        assert Access.from_mapping(ACCESS).check_token(TOKEN) == "pager-bot"

    @pytest.mark.parametrize("token", ["", "tok-3f9a1d", TOKEN.upper(), hash_token(TOKEN)])
    def test_an_unknown_token_is_unauthorized(self, token: str) -> None:
        """A wrong token, and the stored digest itself, are refused."""
        with pytest.raises(Unauthorized):
            Access.from_mapping(ACCESS).check_token(token)

    def test_tokens_are_compared_in_constant_time_against_every_digest(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Every stored digest is compared with hmac.compare_digest, even after a match."""
        calls: list[tuple[str, str]] = []
        real: Callable[[str, str], bool] = hmac.compare_digest

        def spy(a: str, b: str) -> bool:
            calls.append((a, b))
            return real(a, b)

        monkeypatch.setattr(hmac, "compare_digest", spy)
        two = {
            "roles": [
                {
                    "name": "bots",
                    "permission": "read",
                    "tokens": [
                        {"actor": "a", "sha256": hash_token(TOKEN)},
                        {"actor": "b", "sha256": hash_token("other")},
                    ],
                }
            ]
        }
        assert Access.from_mapping(two).check_token(TOKEN) == "a"
        assert len(calls) == 2
        assert all(a == hash_token(TOKEN) for a, _ in calls)

    def test_the_token_actor_holds_its_role(self) -> None:
        """The actor of a token has the token's role: the bot may respond, not command."""
        access = Access.from_mapping(ACCESS)
        assert access.permission("pager-bot") is Permission.RESPOND


class TestAuthorizedCommands:
    def test_an_unauthorized_command_raises_before_any_guard_and_records_nothing(self) -> None:
        """contain by a responder raises Unauthorized, not TransitionRejected; no event."""
        flow = guarded_flow()
        inc = flow.declare("DB down", severity="P1", commander="alice", actor="alice")
        flow.start_triage(inc.id, actor="alice")
        before = len(flow.history(inc.id))
        with pytest.raises(Unauthorized) as caught:
            flow.contain(inc.id, actor="dave")
        assert (caught.value.actor, caught.value.command) == ("dave", "contain")
        assert caught.value.permission == "command"
        assert len(flow.history(inc.id)) == before

    def test_a_responder_may_record_what_responders_record(self) -> None:
        """respond allows evidence and notes; read does not."""
        flow = guarded_flow()
        inc = flow.declare("DB down", severity="P1", commander="alice", actor="alice")
        flow.add_note(inc.id, text="looking", actor="dave")
        with pytest.raises(Unauthorized):
            flow.add_note(inc.id, text="me too", actor="erin")

    def test_declare_needs_the_command_permission(self) -> None:
        """An actor without a role cannot declare; nothing is stored."""
        flow = guarded_flow()
        with pytest.raises(Unauthorized, match="mallory"):
            flow.declare("DB down", severity="P1", commander="alice", actor="mallory")
        assert flow.list() == []

    def test_execute_and_idempotent_retries_are_checked_too(self) -> None:
        """A replayed idempotency key does not bypass the authorizer."""
        flow = guarded_flow()
        inc = flow.declare("DB down", severity="P1", commander="alice", actor="alice")
        flow.execute("start_triage", inc.id, actor="alice", idempotency_key="k1")
        with pytest.raises(Unauthorized):
            flow.execute("start_triage", inc.id, actor="erin", idempotency_key="k1")

    def test_can_answers_access_denied(self) -> None:
        """can() with an actor lacking the permission gives the access.denied reason."""
        flow = guarded_flow()
        inc = flow.declare("DB down", severity="P1", commander="alice", actor="alice")
        verdict = flow.can(inc.id, "start_triage", actor="erin")
        assert not verdict.allowed
        assert [r.code for r in verdict.reasons] == ["access.denied"]
        assert flow.can(inc.id, "start_triage", actor="bob").allowed

    def test_restricting_needs_admin(self) -> None:
        """A commander can run the lifecycle but not restrict; an admin can."""
        flow = guarded_flow()
        inc = flow.declare("Breach", severity="P1", commander="alice", actor="alice")
        with pytest.raises(Unauthorized):
            flow.restrict(inc.id, to=["group:sre"], actor="alice")
        assert flow.restrict(inc.id, to=["group:sre"], actor="carol").restricted_to == (
            "carol",
            "group:sre",
        )

    def test_reads_by_a_viewer_without_read_are_unauthorized(self) -> None:
        """A named viewer with no role may not list; the trusted host (no viewer) may."""
        flow = guarded_flow()
        flow.declare("DB down", severity="P1", commander="alice", actor="alice")
        with pytest.raises(Unauthorized):
            flow.list(viewer="mallory")
        assert len(flow.list()) == 1

    def test_unauthorized_pickles(self) -> None:
        """The error crosses process boundaries with its actor and command."""
        error = Unauthorized("dave", "contain", "command", "INC-1")
        assert pickle.loads(pickle.dumps(error)) == error
        assert "grant a role" in str(error)


class TestRestrictedByGroup:
    def test_a_group_member_sees_and_others_get_not_found(self) -> None:
        """Restricted to group:sre: bob (in sre) sees it; dave gets IncidentNotFound, not 403."""
        flow = guarded_flow()
        inc = flow.declare("Breach", severity="P1", commander="alice", actor="alice")
        flow.restrict(inc.id, to=["group:sre"], actor="carol")
        assert flow.get(inc.id, viewer="bob").id == inc.id
        with pytest.raises(IncidentNotFound):
            flow.get(inc.id, viewer="dave")
        with pytest.raises(IncidentNotFound):
            flow.add_note(inc.id, text="hi", actor="dave")
        with pytest.raises(IncidentNotFound):
            flow.can(inc.id, "add_note", actor="dave")
        assert can_see(flow.get(inc.id), frozenset({"group:sre"}))

    def test_notifications_of_a_restricted_incident_skip_ordinary_notifiers(self) -> None:
        """Without a route marked restricted, nobody hears about a restricted incident."""
        recorder = RecordingNotifier()
        flow = guarded_flow(notifiers=[recorder])
        inc = flow.declare("Breach", severity="P1", commander="alice", actor="alice")
        flow.restrict(inc.id, to=["carol"], actor="carol")
        recorder.clear()
        flow.add_note(inc.id, text="secret", actor="carol")
        assert recorder.types() == []
