"""Which incident a command is about: an id, a unique prefix or slug, or the current one.

``incidentflow use ID`` keeps the current incident of a working folder in
``.agent/current-incident`` under the configuration's root; ``-i/--incident``
overrides it for one command, and a command that takes an ID may then omit it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._app import AmbiguousIncident, App, pass_app

if TYPE_CHECKING:
    from ..stores import IncidentSummary

__all__ = [
    "COMMANDS",
    "AmbiguousIncident",
    "complete_incident",
    "current_file",
    "current_incident",
    "given_config",
    "insert_incident",
    "resolve",
]

# ``INC-2026-12-01-`` before the slug.
_ID_HEAD = re.compile(r"INC-\d{4}-\d{2}-\d{2}-", re.IGNORECASE)
# What can be (part of) an id or a slug: a word with another shape is the command's own argument.
_ID_LIKE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
# Matches listed in an ambiguity before "..." says how many more.
_SHOWN = 10


def current_file(app: App) -> Path:
    """The file holding the working folder's current incident."""
    return app.config.root / ".agent" / "current-incident"


def current_incident(app: App) -> str | None:
    """``-i/--incident``, else the id ``incidentflow use`` set for this folder, else None."""
    if app.incident_option is not None:
        return app.incident_option
    try:
        text = current_file(app).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def slug_of(incident_id: str) -> str:
    """The slug part of an id: ``payments-api-503s`` of ``INC-2026-12-01-payments-api-503s``."""
    head = _ID_HEAD.match(incident_id)
    return incident_id[head.end() :] if head else incident_id


def _matches(word: str, summary: IncidentSummary) -> bool:
    wanted = word.lower()
    ident = summary.id.lower()
    slug = slug_of(ident)
    return ident.startswith(wanted) or slug.startswith(wanted) or f"-{wanted}" in f"-{slug}"


def resolve(app: App, word: str) -> str:
    """The id ``word`` names: the id itself, or the one incident whose id or slug it begins.

    A slug matches from its start or from any of its words (``api-503s``).
    Raises ``IncidentNotFound`` when nothing matches, :class:`AmbiguousIncident`
    (exit 2, the matches listed) when more than one does.
    """
    from ..exceptions import IncidentNotFound

    reader = app.reader
    if reader.store.exists(word):
        return word
    if not _ID_LIKE.fullmatch(word):
        raise IncidentNotFound(word)
    found = [s for s in reader.summaries() if _matches(word, s)]
    wanted = word.lower()
    exact = [s for s in found if wanted in (slug_of(s.id).lower(), s.id.lower())]
    if len(exact) == 1:
        return exact[0].id
    if len(found) == 1:
        return found[0].id
    if not found:
        raise IncidentNotFound(word)
    raise AmbiguousIncident(_ambiguity(word, found))


def _ambiguity(word: str, found: Sequence[IncidentSummary]) -> str:
    lines = [f"{word!r} matches {len(found)} incidents; give more of the id:"]
    lines.extend(
        f"  {s.id}  ({s.severity.value}, {s.state.value}) {s.title}" for s in found[:_SHOWN]
    )
    if len(found) > _SHOWN:
        lines.append(f"  ... and {len(found) - _SHOWN} more (incidentflow list --text ...)")
    return "\n".join(lines)


def resolve_argument(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """The ``ID`` argument's callback: the full id its word names (none while completing)."""
    if value is None or ctx.resilient_parsing:
        return value
    return resolve(ctx.ensure_object(App), str(value))


def complete_incident(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    """Open incidents whose id or slug begins with what was typed, for shell completion."""
    from click.shell_completion import CompletionItem

    app = ctx.find_object(App) or App()
    try:
        open_ones = app.reader.summaries(open_only=True, limit=200)
    except Exception:  # completion never prints a traceback into the shell
        return []
    finally:
        app.close()
    return [
        CompletionItem(s.id, help=f"{s.severity.value} {s.state.value}: {s.title}")
        for s in open_ones
        if not incomplete or _matches(incomplete, s)
    ]


def insert_incident(
    app: App, command: click.Command, args: list[str], *, path: str | None = None
) -> list[str]:
    """``args`` with the current incident put in as the ID when the command's ID is left out.

    With ``-i/--incident`` the ID is always that one, and an ID given as well
    is a usage error naming both; with only a ``use`` incident, when fewer
    words are given than the command needs, or the first cannot be an id
    (``service=checkout``).
    """
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if not arguments or arguments[0].name != "incident_id":
        return args
    words, option_value, _config = _positionals(command, args)
    given = option_value if option_value is not None else app.incident_option
    if given is not None:
        _refuse_a_second_id(path or str(command.name), arguments[1:], words, given)
        return [given, *args]
    current = current_incident(app)
    if current is None:
        return args
    needed = sum(max(p.nargs, 1) for p in arguments if p.required)
    if len(words) < needed or (words and not _ID_LIKE.fullmatch(words[0])):
        return [current, *args]
    return args


def _refuse_a_second_id(
    path: str, others: Sequence[click.Argument], words: Sequence[str], given: str
) -> None:
    """A usage error when ``words`` hold an ID besides ``-i/--incident``'s ``given`` one.

    Certain when there are more words than the command's other arguments
    take; with a list argument (``label``), when the first word is a whole
    id (``INC-2026-12-01-...``).
    """
    if not words:
        return
    variadic = any(p.nargs < 0 for p in others)
    room = sum(p.nargs for p in others if p.nargs > 0)
    whole_id = _ID_HEAD.match(words[0]) is not None and _ID_LIKE.fullmatch(words[0]) is not None
    if (len(words) > room and not variadic) or (variadic and whole_id):
        raise click.UsageError(
            f"the incident is named twice: -i/--incident {given!r} and the ID {words[0]!r}; "
            f"give one of them ('{path} ID ...' or '{path} -i ID ...')"
        )


def given_config(command: click.Command, args: Sequence[str]) -> str | None:
    """The last ``--config`` among a subcommand's words, read before click parses them.

    The current incident is found under that configuration's root, before the
    subcommand's options are parsed; ``None`` when it is not given there.
    """
    return _positionals(command, args)[2]


def _positionals(
    command: click.Command, args: Sequence[str]
) -> tuple[list[str], str | None, str | None]:
    """The words of ``args`` that are not options, and the values of ``-i`` and ``--config``."""
    valued: set[str] = set()
    for param in command.params:
        if isinstance(param, click.Option) and not param.is_flag and not param.count:
            valued.update(param.opts)
    words: list[str] = []
    incident = config = None
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            words.extend(tokens)
            break
        name, equals, value = token.partition("=")
        if name in ("-i", "--incident"):
            incident = value if equals else next(tokens, None)
        elif token.startswith("-i") and len(token) > 2 and not token.startswith("--"):
            incident = token[2:]
        elif name == "--config" and "--config" in valued:
            config = value if equals else next(tokens, None)
        elif token in valued:
            next(tokens, None)
        elif not token.startswith("-") or token == "-":
            words.append(token)
    return words, incident, config


@click.command(short_help="Set the current incident of this folder.")
@click.argument("target", metavar="[ID]", required=False, shell_complete=complete_incident)
@click.option("--clear", is_flag=True, help="Forget the current incident.")
@pass_app
def use(app: App, target: str | None, clear: bool) -> None:
    """Set the incident that commands here are about when their ID is left out.

    Without ID, print the current incident. -i/--incident ID overrides it for one command.
    """
    path = current_file(app)
    if clear:
        path.unlink(missing_ok=True)
        app.emit({"current": None}, "no current incident")
        return
    if target is None:
        current = current_incident(app)
        unset = "no current incident; set one: incidentflow use ID"
        app.emit({"current": current}, current or unset)
        return
    resolved = resolve(app, target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(resolved + "\n", encoding="utf-8")
    app.emit({"current": resolved}, f"current incident: {resolved}")


COMMANDS: tuple[click.Command, ...] = (use,)
