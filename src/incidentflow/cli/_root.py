"""The ``incidentflow`` group: its global options, and every subcommand in the process's order.

The group knows its subcommands' names and one-line helps from :data:`SUBCOMMANDS`
and imports a subcommand's module only when that subcommand is run, completed or
asked for its own ``--help``: ``incidentflow --help`` loads little beyond click.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, MutableMapping
from gettext import gettext as _
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

from .._version import __version__
from ._app import App
from ._params import Group, set_app

__all__ = ["EXAMPLES", "SHORTENED", "SUBCOMMANDS", "cli"]

#: Each subcommand's name, the module under ``incidentflow.cli`` that defines it, and
#: its one-line help, in the order of the process, which ``--help`` lists as it is.
#: A test checks this against the commands themselves (names, order, helps).
SUBCOMMANDS: tuple[tuple[str, str, str], ...] = (
    ("init", "_setup", "Write a commented incidentflow.toml."),
    ("config", "_setup", "Inspect the configuration in effect."),
    ("declare", "_incidents", "Declare an incident."),
    ("list", "_incidents", "List incidents, newest first."),
    ("show", "_incidents", "Show an incident and what its next step needs."),
    ("timeline", "_incidents", "Show an incident's history, event by event."),
    ("similar", "_incidents", "Past incidents and KB gotchas like this one."),
    ("use", "_current", "Set the current incident of this folder."),
    ("triage", "_triage", "Start triage and answer its checklist."),
    ("evidence", "_triage", "Add evidence, or collect it with commands."),
    ("contain", "_remediation", "Record containment; --done declares it contained."),
    ("rca", "_remediation", "Root-cause analysis: start, why, root-cause."),
    ("fix", "_remediation", "Record the fix; --done marks the incident fixed."),
    ("deploy", "_remediation", "Record the fix's deploy."),
    ("confirm", "_closing", "Record a real user's answer."),
    ("resolve", "_closing", "Resolve, after confirmation and watch window."),
    ("reopen", "_closing", "Reopen a fixed or resolved incident."),
    ("dismiss", "_closing", "Dismiss a false alarm or a duplicate."),
    ("postmortem", "_learning", "Draft and complete the post-mortem."),
    ("action", "_learning", "Follow-up action items, in every state."),
    ("kb", "_learning", "Write the KB gotcha and close the incident."),
    ("note", "_records", "Add a note (allowed in every state)."),
    ("reclassify", "_records", "Change the severity."),
    ("assign", "_records", "Hand the incident to another commander."),
    ("detect", "_records", "Record when it began and how it was seen."),
    ("amend", "_corrections", "Correct something recorded, with a reason."),
    ("retract", "_corrections", "Withdraw something recorded in error, with a reason."),
    ("type", "_labels", "Change the incident type, with a reason."),
    ("label", "_labels", "Set labels (KEY=VALUE) or remove them."),
    ("field", "_labels", "Set custom fields (NAME=VALUE) or remove them."),
    ("ref", "_labels", "Attach or detach external references."),
    ("find", "_labels", "Find the incident holding an external reference."),
    ("link", "_links", "Link to another incident (the other records the inverse)."),
    ("unlink", "_links", "Remove a link to another incident."),
    ("merge", "_links", "Merge a duplicate into another incident."),
    ("restrict", "_links", "Restrict an incident to named actors or groups."),
    ("unrestrict", "_links", "Lift an incident's restriction."),
    ("role", "_coordination", "Assign, hand over and release roles."),
    ("update", "_coordination", "Post a status update; --next sets when the next is due."),
    ("deadlines", "_timing", "List an incident's deadlines."),
    ("check-deadlines", "_timing", "Record every newly missed deadline."),
    ("metrics", "_timing", "MTTA, MTTR and each duration's figures."),
    ("deliver", "_delivery", "Deliver pending notifications once."),
    ("dispatch", "_delivery", "Deliver notifications until stopped."),
    ("diagram", "_diagram", "The lifecycle or an incident as Mermaid."),
    ("export", "_transfer", "Export histories as JSON Lines."),
    ("import", "_transfer", "Import histories from an export."),
    ("verify", "_transfer", "Check histories replay to their snapshots."),
    ("serve", "_serve", "Run the HTTP service: JSON API, alert endpoints, pages."),
)

#: The subcommands whose one-line help is their help's first sentence (no ``short_help``):
#: click shortens those to fit a narrow terminal, and ``--help`` must do the same.
SHORTENED = frozenset({"config", "deploy", "reopen", "reclassify"})

_ONE_LINE = {name: text for name, _module, text in SUBCOMMANDS}

#: ``incidentflow --help``'s examples: kept here, as ``--help`` imports no command module
#: (the commands' own are in ``_usage``). They run as written, in this order, in a new folder.
EXAMPLES = (
    "incidentflow init",
    'incidentflow declare "Payments API 503s" -s P1 -c alice',
    "incidentflow use payments",
    "incidentflow show",
    "incidentflow list --open",
)


class _Subcommands(MutableMapping[str, click.Command]):
    """The root's subcommands by name: a module is imported when one of its commands is read.

    Names, ``in`` and ``len`` come from :data:`SUBCOMMANDS` without importing anything;
    reading a command (``[name]``, ``get``, ``items``) imports its module and registers
    every command of it with ``register`` (which adds the global options and examples).
    """

    def __init__(self, register: Callable[[click.Command], None]) -> None:
        self._register = register
        self._modules = {name: module for name, module, _ in SUBCOMMANDS}
        self._names: dict[str, None] = dict.fromkeys(self._modules)  # ordered, as dict keys
        self._loaded: dict[str, click.Command] = {}

    def loaded(self, name: str) -> click.Command | None:
        """The command called ``name`` if its module is imported already, else ``None``."""
        return self._loaded.get(name)

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded and name in self._modules:
            # By name, from the table; no command module imports this one (a test imports each).
            module = importlib.import_module(f"{__package__}.{self._modules[name]}")
            for command in module.COMMANDS:
                if command.name not in self._loaded:
                    self._register(command)
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command
        self._names[name] = None

    def __delitem__(self, name: str) -> None:
        if name not in self._names:
            raise KeyError(name)
        del self._names[name]
        self._modules.pop(name, None)
        self._loaded.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)


class _Root(Group):
    """The root group: lists and completes its subcommands from :data:`SUBCOMMANDS`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = self._subcommands = _Subcommands(self._register)

    def _register(self, command: click.Command) -> None:
        """Add a command of a module just imported, with its examples (``_usage.examples``)."""
        self.add_command(command)
        _add_examples(command, command.name or "")

    def _one_line(self, name: str) -> click.Command | None:
        """The command, or a stand-in carrying its name and one-line help when not imported.

        The stand-in gives click's own ``get_short_help_str`` what the command would.
        """
        command = self._subcommands.loaded(name)
        if command is not None or name not in _ONE_LINE:
            return command
        if name in SHORTENED:
            return click.Command(name, help=_ONE_LINE[name])
        return click.Command(name, short_help=_ONE_LINE[name])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the subcommands as click does, importing none of them."""
        rows = [
            (name, command)
            for name in self.list_commands(ctx)
            if (command := self._one_line(name)) is not None and not command.hidden
        ]
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _command in rows)
            with formatter.section(_("Commands")):
                formatter.write_dl([(name, c.get_short_help_str(limit)) for name, c in rows])

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Complete subcommand names (with their one-line helps) and options, importing none."""
        from click.shell_completion import CompletionItem

        results = [
            CompletionItem(name, help=command.get_short_help_str())
            for name in self.list_commands(ctx)
            if name.startswith(incomplete)
            and (command := self._one_line(name)) is not None
            and not command.hidden
        ]
        results.extend(click.Command.shell_complete(self, ctx, incomplete))
        return results


def _add_examples(command: click.Command, path: str) -> None:
    """Give ``command``'s ``--help`` (and its subcommands') their examples, unless it has some."""
    from ._usage import examples

    if command.epilog is None:
        command.epilog = examples(path) or None
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            _add_examples(sub, f"{path} {name}")


@click.group(
    cls=_Root,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="\b\nExamples:\n" + "\n".join(f"  {line}" for line in EXAMPLES),
)
@click.option(
    "--store",
    metavar="URL",
    callback=set_app("store"),
    help="Store URL (sqlite:///PATH, file://DIR, postgresql://..., memory://). "
    "Default: INCIDENTFLOW_URL, then the config's store, then SQLite under .agent/incidents/.",
)
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    callback=set_app("config_path"),  # read before the subcommand: its ID may be left out
    help="Configuration file. Default: INCIDENTFLOW_CONFIG, then the nearest "
    "incidentflow.toml or pyproject.toml with [tool.incidentflow].",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables and text.")
@click.option(
    "--actor",
    metavar="NAME",
    help="Who runs the command. Default: INCIDENTFLOW_ACTOR, the config's actor, your login.",
)
@click.option("--no-files", is_flag=True, help="Do not rewrite the incident's Markdown files.")
@click.option(
    "-i",
    "--incident",
    metavar="ID",
    expose_value=False,
    callback=set_app("incident_option"),
    help="The incident of a command whose ID is left out (default: 'incidentflow use').",
)
@click.version_option(__version__, "--version", prog_name="incidentflow")
@click.pass_context
def cli(
    ctx: click.Context,
    store: str | None,
    config_path: str | None,
    as_json: bool,
    actor: str | None,
    no_files: bool,
) -> None:
    """Run the incident-response process from a terminal.

    \b
    declare → triage → contain → rca → fix → resolve → postmortem → kb
    Global options go anywhere on the line; an ID may be any unique prefix or slug.
    Exit codes: 0 done, 1 rejected (every reason printed), 2 usage or input
    error, 3 the store or the environment failed.
    """  # noqa: D301 - "\b" is click's marker for a paragraph kept as written
    app = ctx.ensure_object(App)
    app.store, app.config_path, app.as_json = store, config_path, as_json
    app.actor_option, app.write_files = actor, not no_files
    ctx.call_on_close(app.close)
