"""Authorization: who may read, respond to, command and administer incidents.

A policy may carry an :class:`Authorizer`. The facade asks it before any
guard runs, with the actor, the command (or read) and the incident (``None``
for ``declare`` and listings); a refusal raises
:class:`~incidentflow.Unauthorized` and nothing is recorded. An incident
restricted to named actors and groups (``restricted_to``) is another matter:
for everyone else it does not exist (``IncidentNotFound``, never
``Unauthorized``), so its existence is not disclosed.

:class:`Access` is the authorizer built in: roles map actors, groups
(``group:sre``) and API tokens to one of four permissions, each including
the ones before it::

    read < respond < command < admin

- ``read``: get, history, list, summaries, similar, metrics, export;
- ``respond``: what responders record (evidence, notes, triage answers,
  status updates, ...; :data:`RESPOND_COMMANDS`);
- ``command``: every other command (the lifecycle, corrections, links, ...);
- ``admin``: restricting incidents (:data:`ADMIN_COMMANDS`).

API tokens are kept as their SHA-256 digests and compared with
:func:`hmac.compare_digest` against every known digest, so neither the
comparison nor the number of tokens tried tells how close a guess was.

>>> access = Access.from_mapping({
...     "groups": {"sre": ["alice", "bob"]},
...     "roles": [
...         {"name": "sre", "permission": "command", "members": ["group:sre"]},
...         {"name": "bots", "permission": "respond",
...          "tokens": [{"actor": "pager-bot", "sha256": hash_token("s3cret")}]},
...     ],
... })
>>> access.permission("alice").value, access.check_token("s3cret")
('command', 'pager-bot')
>>> access.authorize("pager-bot", "contain", None)
Traceback (most recent call last):
...
incidentflow.exceptions.Unauthorized: 'pager-bot' may not run contain (it needs the command ...
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from ._model import Incident
from .exceptions import ConfigError, Unauthorized

__all__ = [
    "ADMIN_COMMANDS",
    "READS",
    "RESPOND_COMMANDS",
    "Access",
    "ApiToken",
    "Authorizer",
    "Permission",
    "Role",
    "can_see",
    "hash_token",
    "permission_for",
]


class Permission(enum.Enum):
    """What a role allows; each permission includes the ones before it."""

    READ = "read"
    RESPOND = "respond"
    COMMAND = "command"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Its place in ``read < respond < command < admin``."""
        return _RANKS[self]

    def includes(self, other: Permission) -> bool:
        """True when this permission allows what ``other`` allows."""
        return self.rank >= other.rank


_RANKS = {p: i for i, p in enumerate(Permission)}

#: The reads an authorizer is asked about (with the ``read`` permission).
READS = frozenset(
    {"get", "history", "list", "summaries", "similar", "metrics", "milestones", "export", "find"}
)

#: Commands responders run while working an incident: the ``respond`` permission.
RESPOND_COMMANDS = frozenset(
    {
        "add_evidence",
        "add_note",
        "answer_triage",
        "confirm_by_user",
        "post_update",
        "record_containment",
        "record_detection",
        "add_why",
        "draft_postmortem",
        "complete_action_item",
    }
)

#: Commands that change who may see an incident: the ``admin`` permission.
ADMIN_COMMANDS = frozenset({"restrict", "unrestrict"})


def permission_for(command: str) -> Permission:
    """The permission ``command`` (or read) needs.

    >>> permission_for("add_note").value, permission_for("contain").value
    ('respond', 'command')
    """
    if command in READS:
        return Permission.READ
    if command in RESPOND_COMMANDS:
        return Permission.RESPOND
    if command in ADMIN_COMMANDS:
        return Permission.ADMIN
    return Permission.COMMAND


def hash_token(token: str) -> str:
    """The SHA-256 hex digest an API token is stored as (``incidentflow`` never keeps the token)."""
    import hashlib  # here, not at import: import incidentflow stays light

    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def can_see(incident: Incident, principals: frozenset[str] | None) -> bool:
    """True when ``principals`` may see ``incident`` (``None``: no viewer named, sees all)."""
    if principals is None or not incident.restricted_to:
        return True
    return not principals.isdisjoint(incident.restricted_to)


@runtime_checkable
class Authorizer(Protocol):
    """Decides who may run what; set as ``Policy(authorizer=...)``."""

    def authorize(self, actor: str, command: str, incident: Incident | None) -> None:
        """Return if ``actor`` may run ``command`` on ``incident``; else raise Unauthorized.

        ``incident`` is ``None`` for ``declare`` and for listings. It is asked
        before any guard, so a refusal records nothing.
        """

    def principals(self, actor: str) -> frozenset[str]:
        """The names ``actor`` is seen by: itself and its groups as ``group:<name>``."""


@attrs.frozen
class ApiToken:
    """An API token, kept as its SHA-256 hex digest, and the actor it stands for."""

    actor: str
    sha256: str = attrs.field(repr=False)


@attrs.frozen
class Role:
    """A permission granted to actors, groups (``group:<name>``) and API tokens."""

    name: str
    permission: Permission
    members: frozenset[str] = frozenset()
    tokens: tuple[ApiToken, ...] = ()


_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@attrs.frozen(kw_only=True)
class Access:
    """The built-in authorizer: roles from the configuration's ``[access]`` table.

    Attributes:
        roles: Who holds which permission.
        groups: Each group's actors; a role names a group as ``group:<name>``.
        default: The permission of an actor no role names (``None``: none at all).

    """

    roles: tuple[Role, ...] = ()
    groups: Mapping[str, frozenset[str]] = attrs.field(factory=dict)
    default: Permission | None = None

    def principals(self, actor: str) -> frozenset[str]:
        """``actor`` and ``group:<name>`` for each group it belongs to."""
        found = {actor}
        found.update(f"group:{name}" for name, actors in self.groups.items() if actor in actors)
        return frozenset(found)

    def permission(self, actor: str) -> Permission | None:
        """The highest permission ``actor`` holds, or ``None``."""
        names = self.principals(actor)
        held = [r.permission for r in self.roles if not names.isdisjoint(r.members)]
        held.extend(r.permission for r in self.roles for t in r.tokens if t.actor == actor)
        if self.default is not None:
            held.append(self.default)
        return max(held, key=lambda p: p.rank, default=None)

    def authorize(self, actor: str, command: str, incident: Incident | None) -> None:
        """Raise Unauthorized unless ``actor`` holds the permission ``command`` needs."""
        needed = permission_for(command)
        held = self.permission(actor)
        if held is None or not held.includes(needed):
            raise Unauthorized(
                actor, command, needed.value, None if incident is None else incident.id
            )

    def check_token(self, token: str) -> str:
        """The actor an API token stands for; raises Unauthorized for an unknown token.

        Every stored digest is compared, each with :func:`hmac.compare_digest`.
        """
        import hmac

        if not isinstance(token, str) or not token:
            raise Unauthorized("", "check_token")
        presented = hash_token(token)
        found = ""
        for role in self.roles:
            for stored in role.tokens:
                if hmac.compare_digest(presented, stored.sha256) and not found:
                    found = stored.actor
        if not found:
            raise Unauthorized("", "check_token")
        return found

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], *, key: str = "access") -> Access:
        """Read an ``[access]`` table: ``default``, ``[access.groups]``, ``[[access.roles]]``.

        Each role has a ``name``, a ``permission`` (read, respond, command,
        admin), ``members`` (actors and ``group:<name>``) and ``tokens``
        (``{actor = "...", sha256 = "<hex digest>"}``; make one with
        ``incidentflow.hash_token``). A wrong value raises ConfigError naming
        its key.
        """
        _known(table, {"default", "groups", "roles"}, key)
        default = table.get("default")
        groups_table = table.get("groups", {})
        if not isinstance(groups_table, Mapping):
            raise ConfigError(f"{key}.groups", "expected a table of group = [actors]")
        groups = {
            str(name): frozenset(_names(f"{key}.groups.{name}", actors))
            for name, actors in groups_table.items()
        }
        roles_list = table.get("roles", [])
        if not isinstance(roles_list, list):
            raise ConfigError(f"{key}.roles", "expected an array of tables ([[access.roles]])")
        roles = tuple(_role(f"{key}.roles[{i}]", role) for i, role in enumerate(roles_list))
        return cls(
            roles=roles,
            groups=groups,
            default=None if default in (None, "none") else _permission(f"{key}.default", default),
        )


def _known(table: Mapping[str, Any], allowed: set[str], key: str) -> None:
    if not isinstance(table, Mapping):
        raise ConfigError(key, f"expected a table, got {type(table).__name__}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{key}.{unknown[0]}", f"is not a setting; use {', '.join(sorted(allowed))}"
        )


def _permission(key: str, value: object) -> Permission:
    try:
        return Permission(value)
    except ValueError:
        names = ", ".join(p.value for p in Permission)
        raise ConfigError(key, f"{value!r} is not a permission; use one of {names}") from None


def _names(key: str, values: object) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise ConfigError(key, "expected a list of names, e.g. ['alice', 'group:sre']")
    return list(values)


def _role(key: str, table: object) -> Role:
    if not isinstance(table, Mapping):
        raise ConfigError(key, "expected a table with name, permission, members, tokens")
    _known(table, {"name", "permission", "members", "tokens"}, key)
    name = table.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{key}.name", "every role needs a name, e.g. 'responders'")
    tokens = table.get("tokens", [])
    if not isinstance(tokens, list):
        raise ConfigError(f"{key}.tokens", "expected a list of {actor = ..., sha256 = ...}")
    return Role(
        name,
        _permission(f"{key}.permission", table.get("permission")),
        frozenset(_names(f"{key}.members", table.get("members", []))),
        tuple(_token(f"{key}.tokens[{i}]", t) for i, t in enumerate(tokens)),
    )


def _token(key: str, table: object) -> ApiToken:
    if not isinstance(table, Mapping):
        raise ConfigError(key, "expected {actor = 'bot', sha256 = '<hex digest>'}")
    _known(table, {"actor", "sha256"}, key)
    actor, digest = table.get("actor"), table.get("sha256")
    if not isinstance(actor, str) or not actor:
        raise ConfigError(f"{key}.actor", "name the actor the token stands for")
    if not isinstance(digest, str) or not _DIGEST.match(digest.lower()):
        raise ConfigError(
            f"{key}.sha256",
            "expected the token's SHA-256 hex digest (64 hex digits), never the token itself; "
            "make it with incidentflow.hash_token(token) or `sha256sum`",
        )
    return ApiToken(actor, digest.lower())
